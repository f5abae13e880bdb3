// SPDX-License-Identifier: MIT
/*
 * cond_test - condition variables (lib/sync/cond.c) across processes:
 * signal, broadcast and the requeueing broadcast, timed waits on real
 * clocks, waiters SIGKILLed mid-wait (later signals must still work, the
 * glibc bug 21422 scenario), a mutex owner dying while others wait,
 * recursive mutexes, a bounded buffer with no lost wake-up, bad input.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>
#include "sync/robust.h"

#define MAP_LEN 8192

struct shared {
	struct ipcx_mutex m;
	struct ipcx_cond c;
	struct ipcx_cond c2;
	uint32_t waiting;
	uint32_t flag;
	uint32_t turn;
	uint32_t woken;
	uint64_t ring[4];
	uint32_t head, tail;
	uint64_t sum;
};

static struct shared *new_shared(uint32_t flags)
{
	struct shared *sh = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, mo, .flags = flags);
	IPCX_OPTS(ipcx_cond_opts, co, .flags = flags & IPCX_SYNC_BLOCK);

	if (!sh || ipcx_mutex_init(&sh->m, &mo) || ipcx_cond_init(&sh->c, &co) ||
	    ipcx_cond_init(&sh->c2, &co))
		return NULL;
	return sh;
}

static int lock_repair(struct ipcx_mutex *m)
{
	int ret = ipcx_mutex_lock(m);

	if (ret == -EOWNERDEAD)
		ret = ipcx_mutex_consistent(m);
	return ret;
}

/* Child: wait until sh->flag, counting itself in sh->waiting first. */
static pid_t flag_waiter(struct shared *sh)
{
	pid_t pid = fork();

	if (pid == 0) {
		int ret;

		if (lock_repair(&sh->m))
			_exit(1);
		sh->waiting++;
		while (!sh->flag) {
			ret = ipcx_cond_wait(&sh->c, &sh->m);
			if (ret == -EOWNERDEAD)
				ret = ipcx_mutex_consistent(&sh->m);
			if (ret)
				_exit(2);
		}
		sh->woken++;
		_exit(ipcx_mutex_unlock(&sh->m) ? 3 : 0);
	}
	return pid;
}

static void wait_for_waiters(struct shared *sh, uint32_t n)
{
	int i;

	for (i = 0; i < 5000 && __atomic_load_n(&sh->waiting, __ATOMIC_ACQUIRE) < n; i++)
		usleep(1000);
	t_sleep_ms(100);	/* and let them fall asleep */
}

TEST(bad_input)
{
	struct shared *sh = new_shared(0);
	struct ipcx_cond junk;
	struct timespec bad = { 1, -1 };

	ASSERT_NE(NULL, sh);
	memset(&junk, 0xa5, sizeof(junk));
	EXPECT_EQ(-EINVAL, ipcx_cond_init(NULL, NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_init((struct ipcx_cond *)((char *)sh + 2), NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_signal(NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_broadcast(NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_signal(&junk));
	EXPECT_EQ(-EINVAL, ipcx_cond_broadcast(&junk));
	EXPECT_EQ(-EINVAL, ipcx_cond_wait(&junk, &sh->m));
	EXPECT_EQ(-EINVAL, ipcx_cond_wait(&sh->c, NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_destroy(&junk));
	/* waiting without holding the mutex */
	EXPECT_EQ(-EPERM, ipcx_cond_wait(&sh->c, &sh->m));
	EXPECT_EQ(-EPERM, ipcx_cond_broadcast_mutex(&sh->c, &sh->m));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	EXPECT_EQ(-EINVAL, ipcx_cond_timedwait(&sh->c, &sh->m, &bad));
	EXPECT_EQ(0, ipcx_cond_broadcast_mutex(&sh->c, &sh->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, ipcx_cond_signal(&sh->c));
	EXPECT_EQ(0, ipcx_cond_broadcast(&sh->c));
	EXPECT_EQ(0, ipcx_cond_destroy(&sh->c));
	EXPECT_EQ(-EINVAL, ipcx_cond_signal(&sh->c));
	munmap(sh, MAP_LEN);
}

TEST(timedwait_times_out_with_mutex_held)
{
	struct shared *sh = new_shared(0);
	struct timespec dl, past = t_deadline_ms(-5);
	uint64_t t0, dt;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	EXPECT_EQ(-ETIMEDOUT, ipcx_cond_timedwait(&sh->c, &sh->m, &past));
	dl = t_deadline_ms(150);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_cond_timedwait(&sh->c, &sh->m, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 145000000ull);
	EXPECT_LT(dt, 2000000000ull);
	EXPECT_EQ(-EDEADLK, ipcx_mutex_trylock(&sh->m));	/* still ours */
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	munmap(sh, MAP_LEN);
}

/* A deadline already passed is not spun past, whatever the spin budget. */
TEST(past_deadline_does_not_spin)
{
	struct shared *sh = new_shared(0);
	IPCX_OPTS(ipcx_cond_opts, co, .spin_ns = 400000000u);
	struct timespec past;
	uint64_t t0;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_cond_init(&sh->c, &co));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	past = t_deadline_ms(-10);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_cond_timedwait(&sh->c, &sh->m, &past));
	EXPECT_LT(t_now_ns() - t0, 100000000ull);	/* the spin would take 400 ms */
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	munmap(sh, MAP_LEN);
}

TEST(recursive_mutex_depth_restored)
{
	struct shared *sh = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, mo, .type = IPCX_MUTEX_RECURSIVE);
	struct timespec dl;
	pid_t pid;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_mutex_init(&sh->m, &mo));
	ASSERT_EQ(0, ipcx_cond_init(&sh->c, NULL));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	/* The whole depth is released while we wait: another process gets in. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		sh->flag = 1;
		ipcx_cond_signal(&sh->c);
		_exit(ipcx_mutex_unlock(&sh->m) ? 2 : 0);
	}
	dl = t_deadline_ms(10000);
	while (!sh->flag)
		ASSERT_EQ(0, ipcx_cond_timedwait(&sh->c, &sh->m, &dl));
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(&sh->m));
	munmap(sh, MAP_LEN);
}

FIXTURE(cv) {
	struct shared *sh;
};

FIXTURE_VARIANT(cv) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(cv, spin) { .flags = 0 };
FIXTURE_VARIANT_ADD(cv, block) { .flags = IPCX_SYNC_BLOCK };
FIXTURE_VARIANT_ADD(cv, pi) { .flags = IPCX_MUTEX_PI };

FIXTURE_SETUP(cv)
{
	self->sh = new_shared(variant->flags);
	ASSERT_NE(NULL, self->sh);
}

FIXTURE_TEARDOWN(cv)
{
	munmap(self->sh, MAP_LEN);
}

/* Two processes take turns 5000 times: a lost wake-up would hang. */
TEST_F(cv, pingpong)
{
	struct shared *sh = self->sh;
	pid_t pid = fork();
	int i, me;

	ASSERT_GE(pid, 0);
	me = pid == 0;
	for (i = 0; i < 5000; i++) {
		if (ipcx_mutex_lock(&sh->m))
			goto fail;
		while (sh->turn != (uint32_t)me)
			if (ipcx_cond_wait(me ? &sh->c : &sh->c2, &sh->m))
				goto fail;
		sh->turn = !me;
		if (ipcx_cond_signal(me ? &sh->c2 : &sh->c) || ipcx_mutex_unlock(&sh->m))
			goto fail;
	}
	if (pid == 0)
		_exit(0);
	EXPECT_EQ(0, t_wait(pid));
	return;
fail:
	if (pid == 0)
		_exit(1);
	kill(pid, SIGKILL);
	t_wait(pid);
	ASSERT_TRUE(0);
}

TEST_F(cv, broadcast_wakes_all)
{
	struct shared *sh = self->sh;
	pid_t pid[6];
	int i;

	for (i = 0; i < 6; i++)
		ASSERT_GE(pid[i] = flag_waiter(sh), 0);
	wait_for_waiters(sh, 6);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	ASSERT_EQ(0, ipcx_cond_broadcast(&sh->c));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ(6u, sh->woken);
}

TEST_F(cv, broadcast_mutex_requeues_all)
{
	struct shared *sh = self->sh;
	pid_t pid[6];
	int i;

	for (i = 0; i < 6; i++)
		ASSERT_GE(pid[i] = flag_waiter(sh), 0);
	wait_for_waiters(sh, 6);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_cond_broadcast_mutex(&sh->c, &sh->m));
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ(6u, sh->woken);
}

/*
 * A requeued waiter is woken by the mutex unlock and killed before it takes
 * the mutex: the unlock's one wake-up died with it. The waiter's
 * list_op_pending names the mutex, so the kernel wakes the next requeued
 * waiter. Simulated: release the mutex without a wake, kill a waiter.
 */
TEST_F(cv, requeued_waiter_killed_does_not_stall_the_rest)
{
	struct shared *sh = self->sh;
	struct ipcx_self *s;
	pid_t pid[3];
	int i;

	if (variant->flags & IPCX_MUTEX_PI)
		SKIP(return, "no requeue for PI mutexes");
	for (i = 0; i < 3; i++)
		ASSERT_GE(pid[i] = flag_waiter(sh), 0);
	wait_for_waiters(sh, 3);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_cond_broadcast_mutex(&sh->c, &sh->m));
	/* all three now sleep on the mutex word; release it silently */
	s = ipcx_self();
	ASSERT_NE(NULL, s);
	ipcx_robust_pending(s, &sh->m.robust_next, 0);
	ipcx_robust_dequeue(&sh->m.robust_next);
	__atomic_store_n(&sh->m.lock, 0, __ATOMIC_RELEASE);
	ipcx_robust_pending_clear(s);
	kill(pid[0], SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(pid[0]));
	for (i = 1; i < 3; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ(2u, sh->woken);
}

/* Waiters SIGKILLed while asleep: later signals and broadcasts still work. */
TEST_F(cv, dead_waiters_do_not_break_signals)
{
	struct shared *sh = self->sh;
	pid_t dead[3], live[2];
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_GE(dead[i] = flag_waiter(sh), 0);
	wait_for_waiters(sh, 3);
	for (i = 0; i < 3; i++) {
		kill(dead[i], SIGKILL);
		EXPECT_EQ(128 + SIGKILL, t_wait(dead[i]));
	}
	/* Signals with nobody left: must not wedge anything. */
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	for (i = 0; i < 2; i++)
		ASSERT_GE(live[i] = flag_waiter(sh), 0);
	wait_for_waiters(sh, 5);
	ASSERT_EQ(0, lock_repair(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	/* One signal per waiter is enough: no signal may be eaten by the dead. */
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, t_wait(live[i]));
	EXPECT_EQ(2u, sh->woken);
}

/* Waiters killed at random points of their wait loop, many times. */
TEST_F(cv, waiters_killed_at_random_points)
{
	struct shared *sh = self->sh;
	int round;

	srand(getpid());
	for (round = 0; round < 16; round++) {
		pid_t victim, live;

		victim = fork();
		ASSERT_GE(victim, 0);
		if (victim == 0) {
			struct timespec dl;

			for (;;) {
				if (lock_repair(&sh->m))
					_exit(1);
				dl = t_deadline_ms(rand() % 3);
				ipcx_cond_timedwait(&sh->c, &sh->m, &dl);
				ipcx_mutex_unlock(&sh->m);
			}
		}
		usleep(rand() % 4000);
		kill(victim, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, t_wait(victim));

		/* A fresh waiter must be woken by one signal after the flag is set. */
		sh->waiting = 0;
		sh->flag = 0;
		live = flag_waiter(sh);
		ASSERT_GE(live, 0);
		wait_for_waiters(sh, 1);
		ASSERT_EQ(0, lock_repair(&sh->m));
		sh->flag = 1;
		ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
		ASSERT_EQ(0, (round & 1) ? ipcx_cond_broadcast(&sh->c) : ipcx_cond_signal(&sh->c));
		ASSERT_EQ(0, t_wait(live)) TH_LOG("round %d", round);
	}
}

/* The mutex owner dies while a waiter sleeps: the waiter gets EOWNERDEAD. */
TEST_F(cv, mutex_owner_dies_while_waiting)
{
	struct shared *sh = self->sh;
	pid_t waiter, killer;

	waiter = fork();
	ASSERT_GE(waiter, 0);
	if (waiter == 0) {
		int ret;

		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		sh->waiting = 1;
		do
			ret = ipcx_cond_wait(&sh->c, &sh->m);
		while (ret == 0 && !sh->flag);
		if (ret != -EOWNERDEAD)
			_exit(2);
		/* held: repair and go on */
		if (ipcx_mutex_consistent(&sh->m) || ipcx_mutex_unlock(&sh->m))
			_exit(3);
		_exit(0);
	}
	wait_for_waiters(sh, 1);
	killer = fork();
	ASSERT_GE(killer, 0);
	if (killer == 0) {
		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		sh->flag = 1;
		ipcx_cond_signal(&sh->c);
		sh->turn = 1;
		for (;;)
			pause();
	}
	while (!__atomic_load_n(&sh->turn, __ATOMIC_ACQUIRE))
		usleep(1000);
	t_sleep_ms(50);
	kill(killer, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(killer));
	EXPECT_EQ(0, t_wait(waiter));
	EXPECT_EQ(0, ipcx_mutex_lock(&sh->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
}

/* condition_any: a semaphore used as the lock, through callbacks. */
static int sem_unlock_cb(void *arg)
{
	return ipcx_sem_post(arg);
}

static int sem_lock_cb(void *arg)
{
	return ipcx_sem_wait(arg);
}

TEST_F(cv, wait_any_with_a_semaphore_lock)
{
	struct shared *sh = self->sh;
	struct ipcx_sem *lk = (struct ipcx_sem *)((char *)sh + 4096);
	struct timespec dl = t_deadline_ms(30);
	pid_t pid;
	int i;

	ASSERT_EQ(0, ipcx_sem_init(lk, 1, NULL));
	EXPECT_EQ(-EINVAL, ipcx_cond_timedwait_any(&sh->c, NULL, sem_lock_cb, lk, NULL));
	ASSERT_EQ(0, ipcx_sem_wait(lk));
	EXPECT_EQ(-ETIMEDOUT, ipcx_cond_timedwait_any(&sh->c, sem_unlock_cb, sem_lock_cb, lk, &dl));
	EXPECT_EQ(0, ipcx_sem_value(lk));	/* re-acquired */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (i = 0; i < 2000; i++) {
			if (ipcx_sem_wait(lk))
				_exit(1);
			while (sh->turn != 1)
				if (ipcx_cond_timedwait_any(&sh->c2, sem_unlock_cb, sem_lock_cb,
							    lk, NULL))
					_exit(2);
			sh->turn = 0;
			ipcx_cond_signal(&sh->c);
			if (ipcx_sem_post(lk))
				_exit(3);
		}
		_exit(0);
	}
	for (i = 0; i < 2000; i++) {
		if (i) {
			ASSERT_EQ(0, ipcx_sem_wait(lk));
		}
		sh->turn = 1;
		ipcx_cond_signal(&sh->c2);
		while (sh->turn != 0)
			ASSERT_EQ(0, ipcx_cond_timedwait_any(&sh->c, sem_unlock_cb, sem_lock_cb,
							     lk, NULL));
		ASSERT_EQ(0, ipcx_sem_post(lk));
	}
	EXPECT_EQ(0, t_wait(pid));
}

/* Bounded buffer, 2 producers and 2 consumers: every item arrives once. */
TEST_F(cv, bounded_buffer)
{
	struct shared *sh = self->sh;
	const uint64_t per = 10000;
	pid_t pid[4];
	int i;

	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			uint64_t n;

			for (n = 1; n <= per; n++) {
				if (ipcx_mutex_lock(&sh->m))
					_exit(1);
				if (i < 2) {	/* producer: c2 = not full */
					while (sh->head - sh->tail == 4)
						if (ipcx_cond_wait(&sh->c2, &sh->m))
							_exit(2);
					sh->ring[sh->head++ % 4] = n;
					ipcx_cond_signal(&sh->c);
				} else {	/* consumer: c = not empty */
					while (sh->head == sh->tail)
						if (ipcx_cond_wait(&sh->c, &sh->m))
							_exit(3);
					sh->sum += sh->ring[sh->tail++ % 4];
					ipcx_cond_signal(&sh->c2);
				}
				if (ipcx_mutex_unlock(&sh->m))
					_exit(4);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ(per * (per + 1), sh->sum);
}

/* ---- signals deferred to the release of the held mutex --------------------- */

/*
 * The futex word a sleeping process waits on (first argument of its futex
 * call, from /proc/PID/syscall), 0 if it is not in futex, -1 if that file
 * cannot be read. Shared mappings sit at the same address in a forked
 * child.
 */
static long futex_word_of(pid_t pid)
{
	char path[64], buf[256];
	unsigned long nr, a0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (sscanf(buf, "%lu %lx", &nr, &a0) == 2)
		return nr == SYS_futex ? (long)a0 : 0;
	return strncmp(buf, "running", 7) ? -1 : 0;
}

/* Poll until @pid sleeps on @word (2 s at most): 1, 0 (it did not), -1. */
static int asleep_on(pid_t pid, const void *word)
{
	int i;

	for (i = 0; i < 2000; i++) {
		long w = futex_word_of(pid);

		if (w == -1)
			return -1;
		if (w == (long)(uintptr_t)word)
			return 1;
		usleep(1000);
	}
	return 0;
}

/*
 * Child: once sh->turn says go, wait on @c with sh->m until sh->flag; note
 * when cond_wait returned (sh->sum, ns) and exit 0.
 */
static pid_t timed_waiter_on(struct shared *sh, struct ipcx_cond *c)
{
	pid_t pid = fork();

	if (pid == 0) {
		while (!__atomic_load_n(&sh->turn, __ATOMIC_ACQUIRE))
			usleep(100);
		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		while (!sh->flag)
			if (ipcx_cond_wait(c, &sh->m))
				_exit(2);
		__atomic_store_n(&sh->sum, t_now_ns(), __ATOMIC_RELEASE);
		sh->woken++;
		_exit(ipcx_mutex_unlock(&sh->m) ? 3 : 0);
	}
	return pid;
}

/*
 * Let the timed waiters @pid[0..n) go (sh->turn) and wait until each
 * sleeps on its condition's word, then 10 ms more. Return 1; 0 if one did
 * not get there; -1 if /proc/PID/syscall cannot be read (the waiters are
 * then killed and reaped: the caller skips).
 */
static int release_waiters_until_asleep(struct shared *sh, const pid_t *pid,
					struct ipcx_cond *const *c, int n)
{
	int i, r = 1;

	__atomic_store_n(&sh->turn, 1, __ATOMIC_RELEASE);
	for (i = 0; i < n && r > 0; i++)
		r = asleep_on(pid[i], &c[i]->seq);
	if (r < 0) {
		for (i = 0; i < n; i++) {
			kill(pid[i], SIGKILL);
			t_wait(pid[i]);
		}
	} else if (r > 0) {
		t_sleep_ms(10);
	}
	return r;
}

/*
 * Signalled by the holder of its mutex, a waiter is woken only when that
 * mutex is released: 30 ms after the signal it still sleeps on the
 * condition's word (woken at once, it would sleep on the mutex word), and
 * it gets through within 30 ms of the release, well before its own 100 ms
 * re-check (a release that forgot the wake would leave it to that).
 * @alias: lock through one mapping of the memory, release through another.
 */
static void deferred_case(struct __test_metadata *_metadata, bool alias)
{
	struct shared *sh, *sh2 = NULL;
	struct ipcx_cond *c;
	uint64_t t_unlock;
	pid_t pid;
	int r;

	if (alias) {
		int fd = memfd_create("cond-alias", 0);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, MAP_LEN));
		sh = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		sh2 = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		ASSERT_NE(MAP_FAILED, sh);
		ASSERT_NE(MAP_FAILED, sh2);
		IPCX_OPTS(ipcx_mutex_opts, mo, .flags = IPCX_SYNC_BLOCK);
		IPCX_OPTS(ipcx_cond_opts, co, .flags = IPCX_SYNC_BLOCK);
		ASSERT_EQ(0, ipcx_mutex_init(&sh->m, &mo));
		ASSERT_EQ(0, ipcx_cond_init(&sh->c, &co));
	} else {
		sh = new_shared(IPCX_SYNC_BLOCK);
		ASSERT_NE(NULL, sh);
	}
	c = &sh->c;
	ASSERT_GE(pid = timed_waiter_on(sh, c), 0);
	r = release_waiters_until_asleep(sh, &pid, &c, 1);
	if (r < 0)
		SKIP(return, "/proc/PID/syscall is not readable here");
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	t_sleep_ms(30);
	EXPECT_EQ((long)(uintptr_t)&sh->c.seq, futex_word_of(pid));
	EXPECT_EQ(0u, sh->woken);
	t_unlock = t_now_ns();
	ASSERT_EQ(0, ipcx_mutex_unlock(alias ? &sh2->m : &sh->m));
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(1u, sh->woken);
	EXPECT_LT(__atomic_load_n(&sh->sum, __ATOMIC_ACQUIRE) - t_unlock, 30000000ull);
	if (sh2)
		munmap(sh2, MAP_LEN);
	munmap(sh, MAP_LEN);
}

TEST(signal_under_the_mutex_wakes_at_its_release)
{
	deferred_case(_metadata, false);
}

TEST(deferred_signal_released_through_another_mapping)
{
	deferred_case(_metadata, true);
}

/* Without the mutex held the wake-up is immediate, as before. */
TEST(signal_without_the_mutex_wakes_at_once)
{
	struct shared *sh = new_shared(IPCX_SYNC_BLOCK);
	struct ipcx_cond *c;
	uint64_t t0;
	pid_t pid;
	int r;

	ASSERT_NE(NULL, sh);
	c = &sh->c;
	ASSERT_GE(pid = timed_waiter_on(sh, c), 0);
	r = release_waiters_until_asleep(sh, &pid, &c, 1);
	if (r < 0)
		SKIP(return, "/proc/PID/syscall is not readable here");
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_LT(__atomic_load_n(&sh->sum, __ATOMIC_ACQUIRE) - t0, 30000000ull);
	munmap(sh, MAP_LEN);
}

/*
 * A recursive mutex defers to its final release; two conditions signalled
 * under one mutex both wake (the first is issued when the second comes).
 */
TEST(deferred_signals_recursive_and_two_conditions)
{
	IPCX_OPTS(ipcx_mutex_opts, mo, .type = IPCX_MUTEX_RECURSIVE, .flags = IPCX_SYNC_BLOCK);
	struct shared *sh = new_shared(IPCX_SYNC_BLOCK);
	struct ipcx_cond *c[2];
	uint64_t t_unlock;
	pid_t pid[2];
	int r;

	ASSERT_NE(NULL, sh);
	c[0] = &sh->c;
	c[1] = &sh->c2;
	ASSERT_EQ(0, ipcx_mutex_destroy(&sh->m));
	ASSERT_EQ(0, ipcx_mutex_init(&sh->m, &mo));
	ASSERT_GE(pid[0] = timed_waiter_on(sh, &sh->c), 0);
	ASSERT_GE(pid[1] = timed_waiter_on(sh, &sh->c2), 0);
	r = release_waiters_until_asleep(sh, pid, c, 2);	/* both go to sleep now */
	if (r < 0)
		SKIP(return, "/proc/PID/syscall is not readable here");
	ASSERT_EQ(1, r);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->flag = 1;
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c2));
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));	/* depth 1: not released */
	t_sleep_ms(30);
	EXPECT_EQ((long)(uintptr_t)&sh->c.seq, futex_word_of(pid[0]));
	EXPECT_EQ(0u, sh->woken);
	t_unlock = t_now_ns();
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, t_wait(pid[0]));
	EXPECT_EQ(0, t_wait(pid[1]));
	EXPECT_EQ(2u, sh->woken);
	EXPECT_LT(__atomic_load_n(&sh->sum, __ATOMIC_ACQUIRE) - t_unlock, 30000000ull);
	munmap(sh, MAP_LEN);
}

/*
 * A deferred wake-up must not write to the condition: by the release, the
 * condition may be destroyed and its memory reused (here: nobody waits, a
 * timed-out waiter left the sleepers bit, the memory is remapped read-only
 * at the same address before the release).
 */
TEST(deferred_signal_after_the_condition_is_gone)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct shared *sh = new_shared(IPCX_SYNC_BLOCK);
		struct ipcx_cond *c = t_shared(4096);
		IPCX_OPTS(ipcx_cond_opts, co, .flags = IPCX_SYNC_BLOCK);
		struct timespec dl = t_deadline_ms(5);
		void *ro;

		if (!sh || !c || ipcx_cond_init(c, &co) || ipcx_mutex_lock(&sh->m))
			_exit(1);
		if (ipcx_cond_timedwait(c, &sh->m, &dl) != -ETIMEDOUT)
			_exit(2);
		if (ipcx_cond_signal(c) || ipcx_cond_destroy(c) || munmap(c, 4096))
			_exit(3);
		ro = mmap(c, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			  -1, 0);
		if (ro != (void *)c)
			_exit(4);
		_exit(ipcx_mutex_unlock(&sh->m) ? 5 : 0);
	}
	EXPECT_EQ(0, t_wait(pid));
}

/*
 * A signaller killed after signalling, still holding the mutex: the
 * deferred wake-up dies with it, and the waiter gets through on its
 * re-check, with the mutex's owner-died report.
 */
TEST(signaller_killed_before_the_release)
{
	struct shared *sh = new_shared(IPCX_SYNC_BLOCK);
	pid_t w, s;
	uint64_t t0;
	int st;

	ASSERT_NE(NULL, sh);
	w = fork();
	ASSERT_GE(w, 0);
	if (w == 0) {
		int ret;

		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		__atomic_add_fetch(&sh->waiting, 1, __ATOMIC_RELEASE);
		do
			ret = ipcx_cond_wait(&sh->c, &sh->m);
		while (ret == 0 && !sh->flag);
		_exit(ret == -EOWNERDEAD && sh->flag ? 0 : 10 + (ret & 0x7f));
	}
	wait_for_waiters(sh, 1);
	t0 = t_now_ns();
	s = fork();
	ASSERT_GE(s, 0);
	if (s == 0) {
		if (ipcx_mutex_lock(&sh->m))
			_exit(1);
		sh->flag = 1;
		ipcx_cond_signal(&sh->c);
		raise(SIGKILL);
		_exit(2);
	}
	ASSERT_EQ(s, waitpid(s, &st, 0));
	ASSERT_TRUE(WIFSIGNALED(st));
	EXPECT_EQ(0, t_wait(w));
	EXPECT_LT(t_now_ns() - t0, 2000000000ull);
	munmap(sh, MAP_LEN);
}

TEST_HARNESS_MAIN
