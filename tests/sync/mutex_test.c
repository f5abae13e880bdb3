// SPDX-License-Identifier: MIT
/*
 * mutex_test - robust process-shared mutexes (lib/sync/mutex.c): exact
 * totals under contention for every kind, try/timed semantics on real
 * clocks, owners SIGKILLed at chosen points (holding, between the CAS and
 * the robust-list insert, between the list removal and the release, while
 * others sleep), the not-recoverable path, recursion, error checking,
 * co-tenancy with robust pthread mutexes, PI boosting, bad input.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>
#include "sync/robust.h"

#define MAP_LEN 4096

static struct ipcx_mutex *new_mutex(uint32_t type, uint32_t flags)
{
	struct ipcx_mutex *m = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, o, .type = type, .flags = flags);

	if (!m || ipcx_mutex_init(m, &o))
		return NULL;
	return m;
}

/* A child that takes @m and then waits to be killed. */
static pid_t hold_and_hang(struct ipcx_mutex *m, volatile uint32_t *ready)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (ipcx_mutex_lock(m))
			_exit(1);
		__atomic_store_n(ready, 1, __ATOMIC_RELEASE);
		for (;;)
			pause();
	}
	while (pid > 0 && !__atomic_load_n(ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	return pid;
}

static int kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	return t_wait(pid);
}

TEST(bad_input)
{
	struct ipcx_mutex *m = new_mutex(IPCX_MUTEX_NORMAL, 0);
	struct ipcx_mutex junk;
	struct timespec bad = { 0, 1000000000L }, neg = { -1, 0 };
	struct { struct ipcx_mutex_opts o; uint64_t extra; } big;
	IPCX_OPTS(ipcx_mutex_opts, o7);

	ASSERT_NE(NULL, m);
	memset(&junk, 0x5a, sizeof(junk));
	EXPECT_EQ(-EINVAL, ipcx_mutex_init(NULL, NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_init((struct ipcx_mutex *)((char *)m + 4), NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_lock(NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_trylock(NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_unlock(NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_consistent(NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_destroy(NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_lock(&junk));
	EXPECT_EQ(-EINVAL, ipcx_mutex_unlock(&junk));
	EXPECT_EQ(-EINVAL, ipcx_mutex_timedlock(&junk, NULL));
	EXPECT_EQ(-EINVAL, ipcx_mutex_timedlock(m, &bad));
	EXPECT_EQ(-EINVAL, ipcx_mutex_timedlock(m, &neg));
	o7.type = 7;
	EXPECT_EQ(-EINVAL, ipcx_mutex_init(&junk, &o7));
	o7.type = 0;
	o7.flags = 0x80;
	EXPECT_EQ(-EINVAL, ipcx_mutex_init(&junk, &o7));
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	EXPECT_EQ(0, ipcx_mutex_init(&junk, &big.o));
	big.extra = 1;
	EXPECT_EQ(-E2BIG, ipcx_mutex_init(&junk, &big.o));
	/* Unlock of an unlocked mutex; consistent on a consistent one. */
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(m));
	ASSERT_EQ(0, ipcx_mutex_lock(m));
	EXPECT_EQ(-EINVAL, ipcx_mutex_consistent(m));
	EXPECT_EQ(-EBUSY, ipcx_mutex_destroy(m));
	EXPECT_EQ(-EDEADLK, ipcx_mutex_lock(m));
	ASSERT_EQ(0, ipcx_mutex_unlock(m));
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(m));
	EXPECT_EQ(0, ipcx_mutex_destroy(m));
	EXPECT_EQ(-EINVAL, ipcx_mutex_lock(m));
	munmap(m, MAP_LEN);
}

/* ---- exact totals under contention, for every kind ---- */

struct counter {
	struct ipcx_mutex m;
	uint64_t count;
	uint32_t ready;
};

FIXTURE(contend) {
	struct counter *c;
};

FIXTURE_VARIANT(contend) {
	uint32_t type;
	uint32_t flags;
	int iters;
};

FIXTURE_VARIANT_ADD(contend, normal) { .type = IPCX_MUTEX_NORMAL, .iters = 100000 };
FIXTURE_VARIANT_ADD(contend, recursive) { .type = IPCX_MUTEX_RECURSIVE, .iters = 100000 };
FIXTURE_VARIANT_ADD(contend, errorcheck) { .type = IPCX_MUTEX_ERRORCHECK, .iters = 100000 };
FIXTURE_VARIANT_ADD(contend, block) { .flags = IPCX_SYNC_BLOCK, .iters = 100000 };
/* Every contended PI lock is a kernel round trip: fewer, still 8 processes. */
FIXTURE_VARIANT_ADD(contend, pi) { .flags = IPCX_MUTEX_PI, .iters = 20000 };

FIXTURE_SETUP(contend)
{
	IPCX_OPTS(ipcx_mutex_opts, o, .type = variant->type, .flags = variant->flags);

	self->c = t_shared(MAP_LEN);
	ASSERT_NE(NULL, self->c);
	ASSERT_EQ(0, ipcx_mutex_init(&self->c->m, &o));
}

FIXTURE_TEARDOWN(contend)
{
	munmap(self->c, MAP_LEN);
}

TEST_F(contend, eight_processes_exact_total)
{
	pid_t pid[8];
	int i, n;

	for (i = 0; i < 8; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			for (n = 0; n < variant->iters; n++) {
				if (ipcx_mutex_lock(&self->c->m))
					_exit(1);
				if (variant->type == IPCX_MUTEX_RECURSIVE && (n & 7) == 0) {
					if (ipcx_mutex_lock(&self->c->m))
						_exit(2);
					self->c->count++;
					if (ipcx_mutex_unlock(&self->c->m))
						_exit(3);
				}
				self->c->count++;
				if (ipcx_mutex_unlock(&self->c->m))
					_exit(4);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	n = variant->iters;
	if (variant->type == IPCX_MUTEX_RECURSIVE)
		n += (variant->iters + 7) / 8;
	EXPECT_EQ((uint64_t)n * 8, self->c->count);
	EXPECT_EQ(0u, self->c->m.lock);
}

/* ---- try and timed ---- */

TEST(try_and_timed)
{
	struct counter *c = t_shared(MAP_LEN);
	struct timespec past = t_deadline_ms(-100), dl;
	uint64_t t0, dt;
	pid_t pid;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, NULL));
	/* A deadline in the past on a free lock succeeds. */
	ASSERT_EQ(0, ipcx_mutex_timedlock(&c->m, &past));
	ASSERT_EQ(0, ipcx_mutex_unlock(&c->m));
	ASSERT_EQ(0, ipcx_mutex_trylock(&c->m));
	ASSERT_EQ(0, ipcx_mutex_unlock(&c->m));

	pid = hold_and_hang(&c->m, &c->ready);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(-EAGAIN, ipcx_mutex_trylock(&c->m));
	/* On a held lock a past deadline fails promptly. */
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_mutex_timedlock(&c->m, &past));
	EXPECT_LT(t_now_ns() - t0, 50000000ull);
	/* A timed wait does not return early, nor very late. */
	dl = t_deadline_ms(150);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_mutex_timedlock(&c->m, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 145000000ull);
	EXPECT_LT(dt, 2000000000ull);
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(&c->m));	/* not the owner */
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	EXPECT_EQ(-EOWNERDEAD, ipcx_mutex_trylock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	munmap(c, MAP_LEN);
}

TEST(timed_lock_is_woken_by_unlock)
{
	struct counter *c = t_shared(MAP_LEN);
	struct timespec dl;
	uint64_t t0;
	pid_t pid;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (ipcx_mutex_lock(&c->m))
			_exit(1);
		__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
		t_sleep_ms(100);
		_exit(ipcx_mutex_unlock(&c->m) ? 2 : 0);
	}
	while (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	dl = t_deadline_ms(5000);
	t0 = t_now_ns();
	EXPECT_EQ(0, ipcx_mutex_timedlock(&c->m, &dl));
	EXPECT_LT(t_now_ns() - t0, 3000000000ull);
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(0, t_wait(pid));
	munmap(c, MAP_LEN);
}

/* ---- spin policy ---- */

/* Two CPUs this process may run on, or -1 (then waiters never spin). */
static int two_cpus(int cpu[2])
{
	cpu_set_t set;
	int i, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			cpu[n++] = i;
	return n == 2 ? 0 : -1;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static uint32_t word(struct ipcx_mutex *m)
{
	return __atomic_load_n(&m->lock, __ATOMIC_ACQUIRE);
}

/*
 * A waiter on another CPU than the holder spins for its budget without
 * writing the word (it stays exactly the holder's TID: no FUTEX_WAITERS,
 * no CAS that changes it), then announces itself and sleeps, and an
 * unlock hands it the lock. Fails if the waiter does not spin, writes
 * while spinning, or spins past its budget.
 */
TEST(spinning_waiter_only_reads_then_sleeps)
{
	IPCX_OPTS(ipcx_mutex_opts, o, .spin_ns = 400000000u);	/* 400 ms */
	struct counter *c = t_shared(MAP_LEN);
	uint64_t t0, t_announced;
	uint32_t held, w;
	int cpu[2];
	pid_t pid;

	ASSERT_NE(NULL, c);
	if (two_cpus(cpu))
		SKIP(return, "needs two CPUs (a waiter never spins on one)");
	pin_to(cpu[0]);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, &o));
	ASSERT_EQ(0, ipcx_mutex_lock(&c->m));
	held = word(&c->m);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		pin_to(cpu[1]);
		__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
		if (ipcx_mutex_lock(&c->m))
			_exit(1);
		_exit(ipcx_mutex_unlock(&c->m) ? 2 : 0);
	}
	while (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE))
		usleep(100);
	t0 = t_now_ns();
	do
		w = word(&c->m);
	while (w == held && t_now_ns() - t0 < 200000000ull);
	EXPECT_EQ(held, w);	/* 200 ms into a 400 ms spin: not touched */
	while (!(word(&c->m) & FUTEX_WAITERS) && t_now_ns() - t0 < 10000000000ull)
		usleep(1000);
	t_announced = t_now_ns();
	EXPECT_EQ(held | FUTEX_WAITERS, word(&c->m));	/* asleep after the budget */
	EXPECT_GE(t_announced - t0, 300000000ull);
	EXPECT_LT(t_announced - t0, 3000000000ull);	/* 400 ms, with a margin */
	ASSERT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0u, word(&c->m) & FUTEX_TID_MASK);
	munmap(c, MAP_LEN);
}

/* A timed lock's deadline also ends its spin: a 2 s spin budget does not
 * make a 100 ms timedlock take 2 s. */
TEST(timed_lock_spin_stops_at_the_deadline)
{
	IPCX_OPTS(ipcx_mutex_opts, o, .spin_ns = 2000000000u);	/* 2 s */
	struct counter *c = t_shared(MAP_LEN);
	struct timespec dl;
	int cpu[2], r;
	uint64_t t0;
	pid_t pid;

	ASSERT_NE(NULL, c);
	if (two_cpus(cpu))
		SKIP(return, "needs two CPUs (a waiter never spins on one)");
	pin_to(cpu[0]);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, &o));
	ASSERT_EQ(0, ipcx_mutex_lock(&c->m));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		pin_to(cpu[1]);
		dl = t_deadline_ms(100);
		t0 = t_now_ns();
		r = ipcx_mutex_timedlock(&c->m, &dl);
		if (r != -ETIMEDOUT)
			_exit(1);
		if (t_now_ns() - t0 < 90000000ull)
			_exit(2);	/* early */
		_exit(t_now_ns() - t0 > 1500000000ull ? 3 : 0);
	}
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	munmap(c, MAP_LEN);
}

/* ---- recursion and error checking ---- */

TEST(recursive_depth)
{
	struct counter *c = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, o, .type = IPCX_MUTEX_RECURSIVE);
	pid_t pid;
	int i;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, &o));
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(0, ipcx_mutex_lock(&c->m));
	ASSERT_EQ(0, ipcx_mutex_trylock(&c->m));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_mutex_trylock(&c->m) == -EAGAIN &&
		      ipcx_mutex_unlock(&c->m) == -EPERM ? 0 : 1);
	EXPECT_EQ(0, t_wait(pid));
	for (i = 0; i < 1001; i++)
		ASSERT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(&c->m));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_mutex_trylock(&c->m) == 0 && ipcx_mutex_unlock(&c->m) == 0 ? 0 : 1);
	EXPECT_EQ(0, t_wait(pid));
	munmap(c, MAP_LEN);
}

TEST(errorcheck_eperm_edeadlk)
{
	struct counter *c = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, o, .type = IPCX_MUTEX_ERRORCHECK);
	pid_t pid;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, &o));
	ASSERT_EQ(0, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(-EDEADLK, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(-EDEADLK, ipcx_mutex_trylock(&c->m));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)	/* a forked child is another owner, even with cached identity */
		_exit(ipcx_mutex_unlock(&c->m) == -EPERM ? 0 : 1);
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(-EPERM, ipcx_mutex_unlock(&c->m));
	munmap(c, MAP_LEN);
}

/* ---- owner death ---- */

FIXTURE(death) {
	struct counter *c;
};

FIXTURE_VARIANT(death) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(death, plain) { .flags = 0 };
FIXTURE_VARIANT_ADD(death, block) { .flags = IPCX_SYNC_BLOCK };
FIXTURE_VARIANT_ADD(death, pi) { .flags = IPCX_MUTEX_PI };

FIXTURE_SETUP(death)
{
	IPCX_OPTS(ipcx_mutex_opts, o, .flags = variant->flags);

	self->c = t_shared(MAP_LEN);
	ASSERT_NE(NULL, self->c);
	ASSERT_EQ(0, ipcx_mutex_init(&self->c->m, &o));
}

FIXTURE_TEARDOWN(death)
{
	munmap(self->c, MAP_LEN);
}

TEST_F(death, holder_killed_survivor_repairs)
{
	struct counter *c = self->c;
	pid_t pid = hold_and_hang(&c->m, &c->ready);

	ASSERT_GT(pid, 0);
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
}

TEST_F(death, sleeping_waiters_woken_on_death)
{
	struct counter *c = self->c;
	pid_t pid = hold_and_hang(&c->m, &c->ready), w[3];
	int i, dead = 0, st;

	ASSERT_GT(pid, 0);
	for (i = 0; i < 3; i++) {
		w[i] = fork();
		ASSERT_GE(w[i], 0);
		if (w[i] == 0) {
			int ret = ipcx_mutex_lock(&c->m);

			if (ret == -EOWNERDEAD) {
				if (ipcx_mutex_consistent(&c->m))
					_exit(3);
				ret = 10;
			} else if (ret) {
				_exit(2);
			}
			c->count++;
			if (ipcx_mutex_unlock(&c->m))
				_exit(4);
			_exit(ret);
		}
	}
	t_sleep_ms(200);	/* let them go to sleep */
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	for (i = 0; i < 3; i++) {
		st = t_wait(w[i]);
		EXPECT_TRUE(st == 0 || st == 10);
		dead += st == 10;
	}
	EXPECT_EQ(1, dead);
	EXPECT_EQ(3u, c->count);
}

TEST_F(death, not_recoverable)
{
	struct counter *c = self->c;
	pid_t pid = hold_and_hang(&c->m, &c->ready), w;

	ASSERT_GT(pid, 0);
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&c->m));
	/* A sleeper that is waiting when the mutex turns unrecoverable. */
	w = fork();
	ASSERT_GE(w, 0);
	if (w == 0)
		_exit(ipcx_mutex_lock(&c->m) == -ENOTRECOVERABLE ? 0 : 1);
	t_sleep_ms(100);
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));	/* without consistent() */
	EXPECT_EQ(0, t_wait(w));
	EXPECT_EQ(-ENOTRECOVERABLE, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(-ENOTRECOVERABLE, ipcx_mutex_trylock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_destroy(&c->m));
	EXPECT_EQ(0, ipcx_mutex_init(&c->m, NULL));
	EXPECT_EQ(0, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
}

/* Try and timed variants on a held lock, then on a dead owner's lock. */
TEST_F(death, try_timed_then_trylock_after_death)
{
	struct counter *c = self->c;
	struct timespec past = t_deadline_ms(-1), dl;
	uint64_t t0, dt;
	pid_t pid = hold_and_hang(&c->m, &c->ready);

	ASSERT_GT(pid, 0);
	EXPECT_EQ(-EAGAIN, ipcx_mutex_trylock(&c->m));
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_mutex_timedlock(&c->m, &past));
	EXPECT_LT(t_now_ns() - t0, 50000000ull);
	dl = t_deadline_ms(100);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_mutex_timedlock(&c->m, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 95000000ull);
	EXPECT_LT(dt, 2000000000ull);
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_trylock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_timedlock(&c->m, &past));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
}

/*
 * Death between the CAS that takes the word and the robust-list insert,
 * and between the list removal and the release: only list_op_pending
 * names the mutex then. Done by hand with the same steps the lock takes.
 */
TEST_F(death, between_cas_and_list_insert)
{
	struct counter *c = self->c;
	uintptr_t pi = (variant->flags & IPCX_MUTEX_PI) ? 1 : 0;
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_self *s = ipcx_self();
		uint32_t zero = 0;

		if (!s)
			_exit(1);
		ipcx_robust_pending(s, &c->m.robust_next, pi);
		if (!__atomic_compare_exchange_n(&c->m.lock, &zero, s->tid, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			_exit(2);
		raise(SIGKILL);
		_exit(3);
	}
	EXPECT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
}

TEST_F(death, between_list_remove_and_release)
{
	struct counter *c = self->c;
	uintptr_t pi = (variant->flags & IPCX_MUTEX_PI) ? 1 : 0;
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_self *s;

		if (ipcx_mutex_lock(&c->m))
			_exit(1);
		s = ipcx_self();
		ipcx_robust_pending(s, &c->m.robust_next, pi);
		ipcx_robust_dequeue(&c->m.robust_next);
		raise(SIGKILL);
		_exit(3);
	}
	EXPECT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&c->m));
}

/*
 * A waiter woken by an unlock and killed before it takes the lock: the
 * unlock cleared the word and spent its one wake-up on the dead process.
 * The victim's list_op_pending names the ownerless mutex, so the kernel
 * wakes the next sleeper. Simulated by hand: the holder releases the word
 * without waking anybody, the "woken" process dies with the mutex pending.
 */
TEST_F(death, woken_waiter_killed_before_taking_it)
{
	struct counter *c = self->c;
	struct ipcx_self *s;
	pid_t w, victim;
	uint64_t t0;

	if (variant->flags & IPCX_MUTEX_PI)
		SKIP(return, "PI hand-over is done by the kernel");
	ASSERT_EQ(0, ipcx_mutex_lock(&c->m));
	w = fork();
	ASSERT_GE(w, 0);
	if (w == 0)
		_exit(ipcx_mutex_lock(&c->m) == 0 && ipcx_mutex_unlock(&c->m) == 0 ? 0 : 1);
	/* wait until the waiter sleeps (FUTEX_WAITERS set) */
	while (!(__atomic_load_n(&c->m.lock, __ATOMIC_ACQUIRE) & FUTEX_WAITERS))
		usleep(1000);
	t_sleep_ms(50);
	/* release without a wake-up, as if it went to the victim */
	s = ipcx_self();
	ASSERT_NE(NULL, s);
	ipcx_robust_pending(s, &c->m.robust_next, 0);
	ipcx_robust_dequeue(&c->m.robust_next);
	__atomic_store_n(&c->m.lock, 0, __ATOMIC_RELEASE);
	ipcx_robust_pending_clear(s);
	victim = fork();
	ASSERT_GE(victim, 0);
	if (victim == 0) {
		struct ipcx_self *vs = ipcx_self();

		if (!vs)
			_exit(1);
		ipcx_robust_pending(vs, &c->m.robust_next, 0);
		raise(SIGKILL);
		_exit(2);
	}
	EXPECT_EQ(128 + SIGKILL, t_wait(victim));
	t0 = t_now_ns();
	EXPECT_EQ(0, t_wait(w));
	EXPECT_LT(t_now_ns() - t0, 5000000000ull);
}

/* Kill a busy locker at random instants, many times: never a wedge. */
TEST_F(death, killed_at_random_points)
{
	struct counter *c = self->c;
	int round, dead = 0;

	srand(getpid());
	for (round = 0; round < 60; round++) {
		struct timespec dl;
		pid_t pid = fork();
		int ret;

		ASSERT_GE(pid, 0);
		if (pid == 0) {
			for (;;) {
				int r = ipcx_mutex_lock(&c->m);

				if (r == -EOWNERDEAD)
					r = ipcx_mutex_consistent(&c->m);
				if (r)
					_exit(1);
				c->count++;
				if (ipcx_mutex_unlock(&c->m))
					_exit(2);
			}
		}
		usleep(200 + rand() % 3000);
		EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
		dl = t_deadline_ms(5000);
		ret = ipcx_mutex_timedlock(&c->m, &dl);
		ASSERT_TRUE(ret == 0 || ret == -EOWNERDEAD) TH_LOG("round %d: %d", round, ret);
		if (ret == -EOWNERDEAD) {
			dead++;
			ASSERT_EQ(0, ipcx_mutex_consistent(&c->m));
		}
		ASSERT_EQ(0, ipcx_mutex_unlock(&c->m));
	}
	TH_LOG("%d of 60 kills landed while holding", dead);
}

static void *thread_lock_and_exit(void *arg)
{
	return (void *)(intptr_t)ipcx_mutex_lock(arg);
}

TEST_F(death, thread_exit_while_holding)
{
	pthread_t t;
	void *ret;

	ASSERT_EQ(0, pthread_create(&t, NULL, thread_lock_and_exit, &self->c->m));
	ASSERT_EQ(0, pthread_join(t, &ret));
	ASSERT_EQ(0, (int)(intptr_t)ret);
	ASSERT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&self->c->m));
	EXPECT_EQ(0, ipcx_mutex_consistent(&self->c->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&self->c->m));
}

/*
 * One thread holds robust pthread mutexes and ipcx mutexes together,
 * interleaved in glibc's list, releases one from the middle, and is then
 * SIGKILLed: every lock it still held is recovered.
 */
TEST(cotenant_with_pthread_robust)
{
	struct shared {
		pthread_mutex_t p[2];
		struct ipcx_mutex m[3];
		uint32_t ready;
	} *sh = t_shared(MAP_LEN);
	pthread_mutexattr_t a;
	pid_t pid;
	int i;

	ASSERT_NE(NULL, sh);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_mutex_init(&sh->p[i], &a));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, ipcx_mutex_init(&sh->m[i], NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (pthread_mutex_lock(&sh->p[0]) || ipcx_mutex_lock(&sh->m[0]) ||
		    pthread_mutex_lock(&sh->p[1]) || ipcx_mutex_lock(&sh->m[1]) ||
		    ipcx_mutex_lock(&sh->m[2]))
			_exit(1);
		/* out of order: one from the middle of the list, of each kind */
		if (ipcx_mutex_unlock(&sh->m[1]) || pthread_mutex_unlock(&sh->p[1]))
			_exit(2);
		if (pthread_mutex_lock(&sh->p[1]))
			_exit(3);
		__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
		for (;;)
			pause();
	}
	while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(pid));
	EXPECT_EQ(EOWNERDEAD, pthread_mutex_lock(&sh->p[0]));
	EXPECT_EQ(EOWNERDEAD, pthread_mutex_lock(&sh->p[1]));
	EXPECT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&sh->m[0]));
	EXPECT_EQ(0, ipcx_mutex_lock(&sh->m[1]));
	EXPECT_EQ(-EOWNERDEAD, ipcx_mutex_lock(&sh->m[2]));
	/* And our own list, mixed the same way, stays intact. */
	EXPECT_EQ(0, pthread_mutex_consistent(&sh->p[0]));
	EXPECT_EQ(0, pthread_mutex_consistent(&sh->p[1]));
	EXPECT_EQ(0, ipcx_mutex_consistent(&sh->m[0]));
	EXPECT_EQ(0, ipcx_mutex_consistent(&sh->m[2]));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m[1]));
	EXPECT_EQ(0, pthread_mutex_unlock(&sh->p[0]));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m[0]));
	EXPECT_EQ(0, pthread_mutex_unlock(&sh->p[1]));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m[2]));
	munmap(sh, MAP_LEN);
}

/* ---- scoped lock ---- */

static int c_owned(struct ipcx_mutex *m)
{
	return (m->lock & FUTEX_TID_MASK) == (uint32_t)gettid();
}

static int scoped_user(struct ipcx_mutex *m, int early)
{
	int ret;
	IPCX_SCOPED_LOCK(m, ret);

	if (ret)
		return ret;
	if (early)
		return 1;	/* released on this return too */
	return (c_owned(m) ? 2 : 3);
}

TEST(scoped_lock)
{
	struct counter *c = t_shared(MAP_LEN);
	int ret;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, NULL));
	EXPECT_EQ(1, scoped_user(&c->m, 1));
	EXPECT_EQ(0u, c->m.lock);
	EXPECT_EQ(2, scoped_user(&c->m, 0));
	EXPECT_EQ(0u, c->m.lock);
	do {
		IPCX_SCOPED_LOCK(&c->m, ret);
		EXPECT_EQ(0, ret);
		EXPECT_NE(0u, c->m.lock);
	} while (0);
	EXPECT_EQ(0u, c->m.lock);
	munmap(c, MAP_LEN);
}

/* ---- priority inheritance ---- */

/* Effective priority of @pid from /proc (field 18): < 0 means real-time. */
static long proc_prio(pid_t pid)
{
	char path[64], buf[1024], *p;
	long prio = 1000;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return prio;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		for (i = 2; p && i < 18; i++)
			p = strchr(p + 1, ' ');
		if (p)
			prio = strtol(p + 1, NULL, 10);
	}
	fclose(f);
	return prio;
}

TEST(pi_boost_observable)
{
	struct counter *c;
	struct sched_param sp = { .sched_priority = 10 };
	pid_t holder, waiter;
	long prio = 1000;
	int i;
	IPCX_OPTS(ipcx_mutex_opts, pio, .flags = IPCX_MUTEX_PI);

	if (geteuid() != 0)
		SKIP(return, "needs root for SCHED_FIFO");
	c = t_shared(MAP_LEN);
	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mutex_init(&c->m, &pio));
	holder = hold_and_hang(&c->m, &c->ready);
	ASSERT_GT(holder, 0);
	EXPECT_GE(proc_prio(holder), 0);
	waiter = fork();
	ASSERT_GE(waiter, 0);
	if (waiter == 0) {
		if (sched_setscheduler(0, SCHED_FIFO, &sp))
			_exit(7);
		_exit(ipcx_mutex_lock(&c->m) == -EOWNERDEAD ? 0 : 1);
	}
	for (i = 0; i < 200; i++) {
		prio = proc_prio(holder);
		if (prio < 0)
			break;
		t_sleep_ms(10);
	}
	EXPECT_LT(prio, 0) TH_LOG("holder priority %ld, never boosted", prio);
	EXPECT_EQ(128 + SIGKILL, kill_and_reap(holder));
	i = t_wait(waiter);
	if (i == 7)
		SKIP(return, "SCHED_FIFO not permitted here");
	EXPECT_EQ(0, i);
	munmap(c, MAP_LEN);
}

TEST_HARNESS_MAIN
