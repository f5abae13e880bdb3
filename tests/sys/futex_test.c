// SPDX-License-Identifier: MIT
/*
 * futex_test - the private futex wrappers of lib/sys, across processes:
 * wait/wake with absolute monotonic deadlines, requeue, PI lock, waitv,
 * and the robust-list head glibc registers.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include "sys/sys.h"

TEST(wait_stale_value_is_eagain)
{
	uint32_t w = 1;

	ASSERT_EQ(-EAGAIN, ipcx_futex_wait(&w, 0, NULL, false));
}

TEST(wait_past_deadline_times_out)
{
	uint32_t w = 0;
	struct timespec past = t_deadline_ms(-10);

	ASSERT_EQ(-ETIMEDOUT, ipcx_futex_wait(&w, 0, &past, true));
}

TEST(wait_deadline_is_absolute_and_not_early)
{
	uint32_t w = 0;
	struct timespec dl = t_deadline_ms(100);
	uint64_t t0 = t_now_ns(), dt;
	int ret;

	do
		ret = ipcx_futex_wait(&w, 0, &dl, true);
	while (ret == 0 || ret == -EINTR);	/* spurious wakes are allowed */
	dt = t_now_ns() - t0;
	ASSERT_EQ(-ETIMEDOUT, ret);
	ASSERT_GE(dt, 95000000ull);
	ASSERT_LT(dt, 2000000000ull);
}

TEST(bad_timespec_is_einval)
{
	uint32_t w = 0;
	struct timespec bad = { 0, 1000000000L };

	ASSERT_EQ(-EINVAL, ipcx_futex_wait(&w, 0, &bad, true));
}

TEST(wake_crosses_processes)
{
	_Atomic uint32_t *w = t_shared(4096);
	pid_t pid;
	int woken = 0, i;

	ASSERT_NE(NULL, w);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		while (atomic_load(w) == 0)
			ipcx_futex_wait((uint32_t *)w, 0, NULL, true);
		_exit(atomic_load(w) == 7 ? 0 : 1);
	}
	t_sleep_ms(50);
	atomic_store(w, 7);
	/* The child may not be asleep yet; it re-checks the word either way. */
	for (i = 0; i < 100 && woken == 0; i++)
		woken = ipcx_futex_wake((uint32_t *)w, 1, true);
	ASSERT_EQ(0, t_wait(pid));
	/* A private wake must not reach a shared waiter's queue, and vice versa. */
	ASSERT_EQ(0, ipcx_futex_wake((uint32_t *)w, 1, false));
	munmap(w, 4096);
}

struct rq {
	_Atomic uint32_t cond;
	_Atomic uint32_t target;
	_Atomic int ready;
	_Atomic int done;
};

TEST(cmp_requeue_moves_waiters)
{
	struct rq *r = t_shared(4096);
	pid_t pid[2];
	int i, n, moved = 0;

	ASSERT_NE(NULL, r);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			atomic_fetch_add(&r->ready, 1);
			/* Sleep on cond; after the requeue we are woken via target. */
			while (atomic_load(&r->target) == 0)
				ipcx_futex_wait((uint32_t *)&r->cond, 0, NULL, true);
			atomic_fetch_add(&r->done, 1);
			_exit(0);
		}
	}
	while (atomic_load(&r->ready) < 2)
		t_sleep_ms(1);
	t_sleep_ms(50);
	/* Stale compare value: nothing moves. */
	ASSERT_EQ(-EAGAIN, ipcx_futex_cmp_requeue((uint32_t *)&r->cond, 0,
			   (uint32_t *)&r->target, 2, 1, true));
	for (i = 0; i < 100 && moved < 2; i++) {
		n = ipcx_futex_cmp_requeue((uint32_t *)&r->cond, 0, (uint32_t *)&r->target,
					   2, 0, true);
		ASSERT_GE(n, 0);
		moved += n;
		if (moved < 2)
			t_sleep_ms(10);
	}
	ASSERT_EQ(2, moved);
	/* Both now sleep on target: a wake of cond finds nobody. */
	ASSERT_EQ(0, ipcx_futex_wake((uint32_t *)&r->cond, 2, true));
	ASSERT_EQ(0, atomic_load(&r->done));
	atomic_store(&r->target, 1);
	ASSERT_EQ(2, ipcx_futex_wake((uint32_t *)&r->target, 2, true));
	ASSERT_EQ(0, t_wait(pid[0]));
	ASSERT_EQ(0, t_wait(pid[1]));
	ASSERT_EQ(2, atomic_load(&r->done));
	munmap(r, 4096);
}

TEST(pi_lock_trylock_unlock)
{
	_Atomic uint32_t *w = t_shared(4096);
	pid_t pid;

	ASSERT_NE(NULL, w);
	ASSERT_EQ(0, ipcx_futex_lock_pi((uint32_t *)w, NULL, true));
	ASSERT_EQ((uint32_t)ipcx_gettid(), atomic_load(w) & FUTEX_TID_MASK);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct timespec dl = t_deadline_ms(50);

		if (ipcx_futex_trylock_pi((uint32_t *)w, true) != -EWOULDBLOCK)
			_exit(1);
		if (ipcx_futex_lock_pi((uint32_t *)w, &dl, true) != -ETIMEDOUT)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	/* Only the owner may unlock. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_futex_unlock_pi((uint32_t *)w, true) == -EPERM ? 0 : 1);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_futex_unlock_pi((uint32_t *)w, true));
	ASSERT_EQ(0, atomic_load(w));
	munmap(w, 4096);
}

TEST(waitv_reports_woken_index)
{
	_Atomic uint32_t *w = t_shared(4096);
	struct futex_waitv v[2];
	struct timespec dl;
	pid_t pid;
	int i, ret;

	ASSERT_NE(NULL, w);
	memset(v, 0, sizeof(v));
	for (i = 0; i < 2; i++) {
		v[i].uaddr = (uintptr_t)&w[i * 16];
		v[i].val = 0;
		v[i].flags = FUTEX_32;
	}
	dl = t_deadline_ms(20);
	ret = ipcx_futex_waitv(v, 2, &dl);
	if (ret == -ENOSYS)
		SKIP(return, "futex_waitv not supported by this kernel");
	ASSERT_EQ(-ETIMEDOUT, ret);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		t_sleep_ms(50);
		atomic_store(&w[16], 1);
		ipcx_futex_wake((uint32_t *)&w[16], 1, true);
		_exit(0);
	}
	dl = t_deadline_ms(5000);
	ret = ipcx_futex_waitv(v, 2, &dl);
	/* Either woken (index 1) or the child was first (-EAGAIN). */
	ASSERT_TRUE(ret == 1 || ret == -EAGAIN);
	ASSERT_EQ(1, atomic_load(&w[16]));
	ASSERT_EQ(0, t_wait(pid));
	munmap((void *)w, 4096);
}

TEST(robust_list_head_is_glibcs)
{
	struct ipcx_robust_head *head = NULL;
	size_t len = 0;

	ASSERT_EQ(0, ipcx_get_robust_list(&head, &len));
	ASSERT_NE(NULL, head);
	ASSERT_EQ(sizeof(struct ipcx_robust_head), len);
	/* glibc's layout: the lock word sits 32 bytes before the list node. */
	ASSERT_EQ(IPCX_ROBUST_FUTEX_OFFSET, head->futex_offset);
}

static void *robust_thread(void *arg)
{
	struct ipcx_robust_head *head = NULL;
	size_t len = 0;

	*(long *)arg = ipcx_get_robust_list(&head, &len) == 0 && head ? (long)(uintptr_t)head : 0;
	return NULL;
}

TEST(every_thread_has_its_own_head)
{
	struct ipcx_robust_head *mine = NULL;
	size_t len;
	pthread_t th;
	long other = 0;

	ASSERT_EQ(0, ipcx_get_robust_list(&mine, &len));
	ASSERT_EQ(0, pthread_create(&th, NULL, robust_thread, &other));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_NE(0, other);
	ASSERT_NE((long)(uintptr_t)mine, other);
}

TEST(raw_syscalls_leave_errno_alone)
{
	uint32_t w = 1;

	errno = 1234;
	ASSERT_EQ(-EAGAIN, ipcx_futex_wait(&w, 0, NULL, false));
	ASSERT_EQ(1234, errno);
}

/* The rseq read names the CPU the caller is pinned to, on every CPU. */
TEST(cpu_now_follows_the_pinned_cpu)
{
	cpu_set_t old, one;
	int cpu, seen = 0;

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(old), &old));
	for (cpu = 0; cpu < CPU_SETSIZE && seen < 8; cpu++) {
		if (!CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
		EXPECT_EQ(cpu, ipcx_cpu_now());
		EXPECT_EQ(sched_getcpu(), ipcx_cpu_now());
		seen++;
	}
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(old), &old));
	ASSERT_LT(0, seen);
}

TEST_HARNESS_MAIN
