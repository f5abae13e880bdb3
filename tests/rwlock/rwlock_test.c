// SPDX-License-Identifier: MIT
/*
 * rwlock_test - the sharable/upgradable mutex across real processes:
 * exact totals under contention with concurrent readers, every ownership
 * transfer, try/timed semantics on real clocks, writer starvation, and
 * owner death (SIGKILL of exclusive, upgradable and sharable owners,
 * thread exit) with -EOWNERDEAD, repair and the not-recoverable path, a
 * reaper killed halfway through releasing a dead reader's slot, and
 * deadlines too far to count in 64-bit nanoseconds.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx/rwlock.h>
#include "rwlock/rwlock_priv.h"
#include "rwlock/liveness.h"

/* Liveness check period used by the death tests (ms). */
#define CHECK_MS 20

struct shm {
	struct ipcx_rwlock l;
	volatile uint64_t a, b;
	_Atomic int stage;
	_Atomic int stop;
	_Atomic int errors;
	_Atomic uint64_t max_wait_ns;
	_Atomic int inside;
};

static struct shm *new_shm(uint32_t check_ms)
{
	struct shm *s = t_shared(sizeof(*s));
	IPCX_OPTS(ipcx_rwlock_opts, o, .check_ms = check_ms);

	if (!s || ipcx_rwlock_init(&s->l, &o))
		return NULL;
	return s;
}

/* Wait (in any process) until *stage >= v; false after 10 s. */
static bool wait_stage(_Atomic int *stage, int v)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (atomic_load(stage) >= v)
			return true;
		t_sleep_ms(1);
	}
	return false;
}

static uint64_t ms_since(uint64_t t0)
{
	return (t_now_ns() - t0) / 1000000ull;
}

TEST(bad_input)
{
	struct ipcx_rwlock l, junk;
	struct timespec bad1 = { 0, 1000000000L }, bad2 = { 0, -1 }, bad3 = { -1, 0 };
	struct {
		struct ipcx_rwlock_opts o;
		uint64_t extra;
	} big = { { .sz = sizeof(big) }, 7 };
	IPCX_OPTS(ipcx_rwlock_opts, far, .check_ms = 60001);

	ASSERT_EQ(-EINVAL, ipcx_rwlock_init(NULL, NULL));
	ASSERT_EQ(-E2BIG, ipcx_rwlock_init(&l, &big.o));
	big.extra = 0;
	ASSERT_EQ(0, ipcx_rwlock_init(&l, &big.o));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_init(&l, &far));
	ASSERT_EQ(0, ipcx_rwlock_init(&l, NULL));

	/* NULL and never-initialised (garbage) locks. */
	memset(&junk, 0xa5, sizeof(junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_lock(NULL));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_lock(&junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_trylock_shared(&junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_lock_upgradable(&junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_unlock(&junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_unlock_shared(NULL));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_unlock_upgradable(NULL));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_consistent(NULL));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_destroy(&junk));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_unlock_and_lock_shared(NULL));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_try_unlock_shared_and_lock(&junk));

	/* Out-of-range deadlines: -EINVAL, on a free and on a held lock. */
	ASSERT_EQ(-EINVAL, ipcx_rwlock_timedlock(&l, &bad1));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_timedlock_shared(&l, &bad2));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_timedlock_upgradable(&l, &bad3));
	ASSERT_EQ(0, ipcx_rwlock_lock_upgradable(&l));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_timed_unlock_upgradable_and_lock(&l, &bad1));
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable(&l));

	/* Releasing what is not held. */
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_shared(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_upgradable(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_and_lock_shared(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_and_lock_upgradable(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_upgradable_and_lock(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_try_unlock_shared_and_lock(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_try_unlock_shared_and_lock_upgradable(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_consistent(&l));
	ASSERT_EQ(0, ipcx_rwlock_lock(&l));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_consistent(&l));	/* not inconsistent */
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_upgradable(&l));

	/* Relocking by the owner: -EDEADLK, never a hang. */
	ASSERT_EQ(-EDEADLK, ipcx_rwlock_lock(&l));
	ASSERT_EQ(-EDEADLK, ipcx_rwlock_lock_shared(&l));
	ASSERT_EQ(-EDEADLK, ipcx_rwlock_lock_upgradable(&l));

	/* Destroying a held lock: -EBUSY, the lock stays usable. */
	ASSERT_EQ(-EBUSY, ipcx_rwlock_destroy(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&l));
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(&l));
	ASSERT_EQ(-EBUSY, ipcx_rwlock_destroy(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&l));
	ASSERT_EQ(-EINVAL, ipcx_rwlock_lock(&l));

	/* Corrupted magic after init. */
	ASSERT_EQ(0, ipcx_rwlock_init(&l, NULL));
	l.magic ^= 1;
	ASSERT_EQ(-EINVAL, ipcx_rwlock_lock_shared(&l));
}

TEST(kinds_exclude_each_other)
{
	struct ipcx_rwlock l;

	ASSERT_EQ(0, ipcx_rwlock_init(&l, NULL));
	/* Shares stack; upgradable coexists with shares. */
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(&l));
	ASSERT_EQ(0, ipcx_rwlock_trylock_shared(&l));
	ASSERT_EQ(0, ipcx_rwlock_trylock_upgradable(&l));
	ASSERT_EQ(-EDEADLK, ipcx_rwlock_trylock(&l));	/* use the upgrade */
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable(&l));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_shared(&l));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&l));
}

/* Another process's view: which kinds can it take right now? Bits: 1 excl, 2 shared, 4 upg. */
static int probe_other(struct ipcx_rwlock *l)
{
	pid_t pid = fork();

	if (pid == 0) {
		int bits = 0;

		if (ipcx_rwlock_trylock(l) == 0) {
			bits |= 1;
			ipcx_rwlock_unlock(l);
		}
		if (ipcx_rwlock_trylock_shared(l) == 0) {
			bits |= 2;
			ipcx_rwlock_unlock_shared(l);
		}
		if (ipcx_rwlock_trylock_upgradable(l) == 0) {
			bits |= 4;
			ipcx_rwlock_unlock_upgradable(l);
		}
		_exit(bits);
	}
	return t_wait(pid);
}

TEST(every_transfer)
{
	struct shm *s = new_shm(0);
	struct ipcx_rwlock *l;
	struct timespec past = t_deadline_ms(-5), soon = t_deadline_ms(2000);

	ASSERT_NE(NULL, s);
	l = &s->l;
	ASSERT_EQ(7, probe_other(l));

	/* exclusive -> upgradable -> sharable */
	ASSERT_EQ(0, ipcx_rwlock_lock(l));
	ASSERT_EQ(0, probe_other(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(l));
	ASSERT_EQ(2, probe_other(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable_and_lock_shared(l));
	ASSERT_EQ(6, probe_other(l));
	/* sharable -> upgradable (try) -> exclusive (blocking) */
	ASSERT_EQ(0, ipcx_rwlock_try_unlock_shared_and_lock_upgradable(l));
	ASSERT_EQ(2, probe_other(l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock_shared(l));	/* the share was converted */
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable_and_lock(l));
	ASSERT_EQ(0, probe_other(l));
	/* exclusive -> sharable -> exclusive (try, sole owner) */
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_shared(l));
	ASSERT_EQ(6, probe_other(l));
	ASSERT_EQ(0, ipcx_rwlock_try_unlock_shared_and_lock(l));
	ASSERT_EQ(0, probe_other(l));
	/* exclusive -> upgradable -> exclusive (try, then timed with a past deadline) */
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(l));
	ASSERT_EQ(0, ipcx_rwlock_try_unlock_upgradable_and_lock(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(l));
	ASSERT_EQ(0, ipcx_rwlock_timed_unlock_upgradable_and_lock(l, &past));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(l));
	ASSERT_EQ(0, ipcx_rwlock_timed_unlock_upgradable_and_lock(l, &soon));
	ASSERT_EQ(0, ipcx_rwlock_unlock(l));
	ASSERT_EQ(7, probe_other(l));

	/* Transfers that must fail and keep what is held. */
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(l));
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(l));	/* two shares: not sole */
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_try_unlock_shared_and_lock(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(l));
	ASSERT_EQ(0, ipcx_rwlock_lock_upgradable(l));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_try_unlock_shared_and_lock(l));	/* upgradable owner */
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_try_unlock_upgradable_and_lock(l));	/* our own share */
	past = t_deadline_ms(-5);
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timed_unlock_upgradable_and_lock(l, &past));
	ASSERT_EQ(2, probe_other(l));	/* still upgradable + shared */
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(l));
	ASSERT_EQ(7, probe_other(l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(l));
}

/*
 * An upgrader waits for a reader of another process to leave, keeping new
 * readers out meanwhile; the timed form gives up and stays upgradable.
 */
TEST(upgrade_waits_for_readers)
{
	struct shm *s = new_shm(0);
	struct timespec dl;
	uint64_t t0, dt;
	pid_t pid;

	ASSERT_NE(NULL, s);
	pid = fork();
	if (pid == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_store(&s->stage, 1);
		wait_stage(&s->stage, 2);
		t_sleep_ms(150);
		ipcx_rwlock_unlock_shared(&s->l);
		_exit(0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	ASSERT_EQ(0, ipcx_rwlock_lock_upgradable(&s->l));
	dl = t_deadline_ms(30);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timed_unlock_upgradable_and_lock(&s->l, &dl));
	ASSERT_GE(t_now_ns() - t0, 29000000ull);
	atomic_store(&s->stage, 2);
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable_and_lock(&s->l));
	dt = ms_since(t0);
	EXPECT_GE(dt, 100);
	EXPECT_LT(dt, 5000);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
}

static void hammer(struct shm *s, int id, int iters)
{
	int k;

	for (k = 0; k < iters; k++) {
		if (k % 3 == 0) {
			/* A reader between writes: the pair must always match. */
			if (ipcx_rwlock_lock_shared(&s->l))
				atomic_fetch_add(&s->errors, 1);
			if (s->a != s->b)
				atomic_fetch_add(&s->errors, 1);
			ipcx_rwlock_unlock_shared(&s->l);
		}
		if ((k + id) % 16 == 0) {
			if (ipcx_rwlock_lock_upgradable(&s->l))
				atomic_fetch_add(&s->errors, 1);
			if (s->a != s->b)
				atomic_fetch_add(&s->errors, 1);
			if (ipcx_rwlock_unlock_upgradable_and_lock(&s->l))
				atomic_fetch_add(&s->errors, 1);
		} else if (ipcx_rwlock_lock(&s->l)) {
			atomic_fetch_add(&s->errors, 1);
		}
		s->a = s->a + 1;
		s->b = s->b + 1;
		if (ipcx_rwlock_unlock(&s->l))
			atomic_fetch_add(&s->errors, 1);
	}
}

static void *reader_thread(void *arg)
{
	struct shm *s = arg;

	while (!atomic_load(&s->stop)) {
		if (ipcx_rwlock_lock_shared(&s->l))
			atomic_fetch_add(&s->errors, 1);
		if (s->a != s->b)
			atomic_fetch_add(&s->errors, 1);
		ipcx_rwlock_unlock_shared(&s->l);
	}
	return NULL;
}

/* 8 processes increment a pair under the lock, while readers check it. */
TEST(eight_processes_exact_total)
{
	enum { NPROC = 8, ITERS = 100000 };
	struct shm *s = new_shm(0);
	pthread_t rd;
	pid_t pids[NPROC];
	int i;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, pthread_create(&rd, NULL, reader_thread, s));
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			hammer(s, i, ITERS);
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	atomic_store(&s->stop, 1);
	pthread_join(rd, NULL);
	ASSERT_EQ(0, atomic_load(&s->errors));
	ASSERT_EQ((uint64_t)NPROC * ITERS, s->a);
	ASSERT_EQ(s->a, s->b);
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

struct hammer_arg {
	struct shm *s;
	int id, iters;
};

static void *hammer_thread(void *arg)
{
	struct hammer_arg *h = arg;

	hammer(h->s, h->id, h->iters);
	return NULL;
}

/* Threads of several processes contend (shares of one process share a slot). */
TEST(threads_and_processes_exact_total)
{
	enum { NPROC = 4, NTHR = 4, ITERS = 20000 };
	struct shm *s = new_shm(0);
	pid_t pids[NPROC];
	int i;

	ASSERT_NE(NULL, s);
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct hammer_arg a[NTHR];
			pthread_t t[NTHR];
			int k;

			for (k = 0; k < NTHR; k++) {
				a[k] = (struct hammer_arg){ s, i * NTHR + k, ITERS };
				if (pthread_create(&t[k], NULL, hammer_thread, &a[k]))
					_exit(1);
			}
			for (k = 0; k < NTHR; k++)
				pthread_join(t[k], NULL);
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	ASSERT_EQ(0, atomic_load(&s->errors));
	ASSERT_EQ((uint64_t)NPROC * NTHR * ITERS, s->a);
	ASSERT_EQ(s->a, s->b);
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

TEST(try_and_timed_on_real_clocks)
{
	struct shm *s = new_shm(0);
	struct timespec dl;
	uint64_t t0, dt;
	pid_t pid;

	ASSERT_NE(NULL, s);
	/* A deadline in the past still takes a free lock, in every kind. */
	dl = t_deadline_ms(-1000);
	ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_timedlock_shared(&s->l, &dl));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_timedlock_upgradable(&s->l, &dl));
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable(&s->l));
	dl.tv_sec = 0;
	dl.tv_nsec = 0;
	ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));

	/* Another process holds it exclusively. */
	pid = fork();
	if (pid == 0) {
		if (ipcx_rwlock_lock(&s->l))
			_exit(1);
		atomic_store(&s->stage, 1);
		wait_stage(&s->stage, 2);
		ipcx_rwlock_unlock(&s->l);
		_exit(0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	/* Try and past deadlines fail promptly. */
	t0 = t_now_ns();
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_shared(&s->l));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_upgradable(&s->l));
	dl = t_deadline_ms(-10);
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock_shared(&s->l, &dl));
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock_upgradable(&s->l, &dl));
	EXPECT_LT(ms_since(t0), 200);	/* no waiting at all; margin for a loaded VM */
	/* A timed wait lasts until its deadline, not less (and not much more). */
	dl = t_deadline_ms(120);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock_shared(&s->l, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 119000000ull);
	EXPECT_LT(dt, 1000000000ull);
	dl = t_deadline_ms(120);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 119000000ull);
	EXPECT_LT(dt, 1000000000ull);
	dl = t_deadline_ms(120);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock_upgradable(&s->l, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 119000000ull);
	EXPECT_LT(dt, 1000000000ull);
	/* A timed wait that the release ends early succeeds. */
	dl = t_deadline_ms(5000);
	atomic_store(&s->stage, 2);
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
	EXPECT_LT(ms_since(t0), 2000);
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, t_wait(pid));
}

/*
 * Readers of 4 processes keep the lock shared without a gap (each holds
 * 2 ms, overlapping). A writer must still get in, within a bound.
 */
TEST(writer_not_starved)
{
	enum { NREAD = 4, ROUNDS = 10 };
	struct shm *s = new_shm(0);
	pid_t pids[NREAD];
	uint64_t t0, worst = 0, dt;
	struct timespec dl;
	int i, r;

	ASSERT_NE(NULL, s);
	for (i = 0; i < NREAD; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			while (!atomic_load(&s->stop)) {
				if (ipcx_rwlock_lock_shared(&s->l))
					_exit(1);
				atomic_fetch_add(&s->inside, 1);
				t_sleep_ms(2);
				atomic_fetch_sub(&s->inside, 1);
				ipcx_rwlock_unlock_shared(&s->l);
			}
			_exit(0);
		}
	}
	/* Wait until the readers overlap. */
	for (i = 0; i < 2000 && atomic_load(&s->inside) < 2; i++)
		t_sleep_ms(1);
	for (r = 0; r < ROUNDS; r++) {
		dl = t_deadline_ms(3000);
		t0 = t_now_ns();
		ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
		dt = t_now_ns() - t0;
		EXPECT_EQ(0, atomic_load(&s->inside));
		ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
		if (dt > worst)
			worst = dt;
		t_sleep_ms(5);
	}
	atomic_store(&s->stop, 1);
	for (i = 0; i < NREAD; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	TH_LOG("worst writer wait among readers: %.1f ms", worst / 1e6);
	/* A reader holds 2 ms; on a noisy 2-vCPU machine allow a lot more. */
	EXPECT_LT(worst, 1000000000ull);
}

enum held_kind { HOLD_EXCL, HOLD_UPG, HOLD_SHARED, HOLD_UPGRADING };

/* A child that takes @kind and waits to be killed. */
static pid_t holder(struct shm *s, enum held_kind kind)
{
	pid_t pid = fork();

	if (pid == 0) {
		int ret = -1;

		if (kind == HOLD_EXCL)
			ret = ipcx_rwlock_lock(&s->l);
		else if (kind == HOLD_UPG)
			ret = ipcx_rwlock_lock_upgradable(&s->l);
		else if (kind == HOLD_SHARED)
			ret = ipcx_rwlock_lock_shared(&s->l);
		if (ret)
			_exit(1);
		s->a = 1;	/* "half-updated": b lags */
		atomic_store(&s->stage, 1);
		for (;;)
			pause();
	}
	return pid;
}

/* Exclusive owner SIGKILLed (and reaped): next locker repairs and goes on. */
TEST(exclusive_owner_killed)
{
	struct shm *s = new_shm(CHECK_MS);
	uint64_t t0;
	pid_t pid;

	ASSERT_NE(NULL, s);
	pid = holder(s, HOLD_EXCL);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	t0 = t_now_ns();
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock(&s->l));
	TH_LOG("owner death reported after %llu ms of waiting",
	       (unsigned long long)ms_since(t0));
	EXPECT_LT(ms_since(t0), 2000);
	/* Repair, mark consistent, go on. */
	ASSERT_NE(s->a, s->b);
	s->b = s->a;
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/*
 * The owner dies while a reader of another process already waits, and is
 * not reaped (a zombie): the waiting reader takes the lock over
 * exclusively, repairs, and downgrades to the share it asked for.
 */
TEST(waiting_reader_sees_owner_death)
{
	struct shm *s = new_shm(CHECK_MS);
	pid_t pid, rd;

	ASSERT_NE(NULL, s);
	pid = holder(s, HOLD_EXCL);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	rd = fork();
	if (rd == 0) {
		int ret = ipcx_rwlock_lock_shared(&s->l);

		if (ret != -EOWNERDEAD)
			_exit(10);
		s->b = s->a;
		if (ipcx_rwlock_consistent(&s->l))
			_exit(11);
		if (ipcx_rwlock_unlock_and_lock_shared(&s->l))
			_exit(12);
		if (s->a != s->b)
			_exit(13);
		if (ipcx_rwlock_unlock_shared(&s->l))
			_exit(14);
		_exit(0);
	}
	t_sleep_ms(60);	/* the reader is asleep on the lock */
	kill(pid, SIGKILL);
	ASSERT_EQ(0, t_wait(rd));	/* pid is still a zombie here */
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
}

/* Unlocking without consistent(): not recoverable for everyone, every kind. */
TEST(not_recoverable)
{
	struct shm *s = new_shm(CHECK_MS);
	pid_t pid;

	ASSERT_NE(NULL, s);
	pid = holder(s, HOLD_EXCL);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_lock_shared(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_trylock_shared(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_lock_upgradable(&s->l));
	ASSERT_EQ(-EPERM, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));	/* allowed: nobody can hold it */

	/* Leaving exclusive ownership by a transfer is the same as unlocking. */
	ASSERT_EQ(0, ipcx_rwlock_init(&s->l, NULL));
	atomic_store(&s->stage, 0);
	pid = holder(s, HOLD_EXCL);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock_upgradable(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_unlock_and_lock_shared(&s->l));
	ASSERT_EQ(-ENOTRECOVERABLE, ipcx_rwlock_lock_shared(&s->l));
}

/* Upgradable owner SIGKILLed while readers are inside. */
TEST(upgradable_owner_killed)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	pid_t pid, rd;

	ASSERT_NE(NULL, s);
	pid = holder(s, HOLD_UPG);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	/* A live reader of another process holds a share for 200 ms. */
	rd = fork();
	if (rd == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_store(&s->stage, 2);
		t_sleep_ms(200);
		ipcx_rwlock_unlock_shared(&s->l);
		_exit(0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 2));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_upgradable(&s->l));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	/* Readers are not disturbed by the death. */
	ASSERT_EQ(0, ipcx_rwlock_trylock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	/* The next upgradable locker is told, holding the lock exclusively. */
	dl = t_deadline_ms(5000);
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_timedlock_upgradable(&s->l, &dl));
	ASSERT_EQ(0, t_wait(rd));	/* it waited for the live reader */
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable_and_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/*
 * A reader SIGKILLed holding a share: its process's share is released by
 * the next writer after one check period; that is no owner death (readers
 * change nothing), so the writer gets 0. Live readers' shares are kept.
 */
TEST(reader_killed_share_released)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	uint64_t t0, dt;
	pid_t pid, live;

	ASSERT_NE(NULL, s);
	pid = holder(s, HOLD_SHARED);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	live = fork();
	if (live == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_store(&s->stage, 2);
		wait_stage(&s->stage, 3);
		ipcx_rwlock_unlock_shared(&s->l);
		_exit(0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 2));
	kill(pid, SIGKILL);	/* not reaped: a zombie */
	/* The live reader still holds: the writer must wait for it. */
	dl = t_deadline_ms(300);
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	atomic_store(&s->stage, 3);
	ASSERT_EQ(0, t_wait(live));
	/* The dead share went while the timed writer waited. */
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	EXPECT_LT(ms_since(t0), 2000);
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));

	/* A dead reader alone: the writer waits about one check period. */
	atomic_store(&s->stage, 0);
	pid = holder(s, HOLD_SHARED);
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	dt = ms_since(t0);
	TH_LOG("dead reader's share released after %llu ms", (unsigned long long)dt);
	EXPECT_GE(dt, CHECK_MS - 1);
	EXPECT_LT(dt, 2000);
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

static void *exit_holding(void *arg)
{
	struct shm *s = arg;

	if (ipcx_rwlock_lock(&s->l))
		atomic_fetch_add(&s->errors, 1);
	return NULL;	/* the thread ends, the process lives on */
}

/* A thread that exits holding the lock exclusively is a dead owner too. */
TEST(owner_thread_exit)
{
	struct shm *s = new_shm(CHECK_MS);
	pthread_t t;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, pthread_create(&t, NULL, exit_holding, s));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, atomic_load(&s->errors));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
}

/* A thread of another process may release a share a sibling thread took. */
static void *unlock_shared_thread(void *arg)
{
	return (void *)(intptr_t)ipcx_rwlock_unlock_shared(arg);
}

TEST(shares_are_per_process)
{
	struct ipcx_rwlock l;
	pthread_t t;
	void *ret;

	ASSERT_EQ(0, ipcx_rwlock_init(&l, NULL));
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(&l));
	ASSERT_EQ(0, pthread_create(&t, NULL, unlock_shared_thread, &l));
	ASSERT_EQ(0, pthread_join(t, &ret));
	ASSERT_EQ(0, (int)(intptr_t)ret);
	ASSERT_EQ(0, ipcx_rwlock_trylock(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&l));
}

/* More reading processes than slots: the extra ones are counted anonymously. */
TEST(more_readers_than_slots)
{
	enum { N = IPCX_RWLOCK_SLOTS + 4 };
	struct shm *s = new_shm(0);
	pid_t pids[N];
	int i;

	ASSERT_NE(NULL, s);
	for (i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			if (ipcx_rwlock_lock_shared(&s->l))
				_exit(1);
			atomic_fetch_add(&s->inside, 1);
			wait_stage(&s->stage, 1);
			_exit(ipcx_rwlock_unlock_shared(&s->l) ? 2 : 0);
		}
	}
	for (i = 0; i < 5000 && atomic_load(&s->inside) < N; i++)
		t_sleep_ms(1);
	ASSERT_EQ(N, atomic_load(&s->inside));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	atomic_store(&s->stage, 1);
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* Scoped helpers; each returns a bitmask of what went wrong (0 = fine). */
static int scope_exclusive(struct ipcx_rwlock *l)
{
	IPCX_SCOPED_RWLOCK(g, l);

	return (g.ret != 0) | (ipcx_rwlock_trylock_shared(l) != -EDEADLK) << 1;
}

static int scope_shared_then_upgradable(struct ipcx_rwlock *l)
{
	IPCX_SCOPED_RWLOCK_SHARED(g, l);
	int bad = (g.ret != 0) | (ipcx_rwlock_trylock(l) != -EAGAIN) << 1;

	{
		IPCX_SCOPED_RWLOCK_UPGRADABLE(u, l);

		bad |= (u.ret != 0) << 2;
		bad |= (ipcx_rwlock_trylock_upgradable(l) != -EDEADLK) << 3;
	}
	bad |= (ipcx_rwlock_trylock_upgradable(l) != 0) << 4;
	bad |= (ipcx_rwlock_unlock_upgradable(l) != 0) << 5;
	return bad;
}

static int scope_with_transfer(struct ipcx_rwlock *l)
{
	IPCX_SCOPED_RWLOCK_UPGRADABLE(u, l);
	int bad = u.ret != 0;

	/* A transfer inside the scope: tell the guard. */
	bad |= (ipcx_rwlock_unlock_upgradable_and_lock(l) != 0) << 1;
	u.kind = IPCX_RWLOCK_EXCLUSIVE;
	return bad;
}

TEST(scoped_guards)
{
	struct ipcx_rwlock l;

	ASSERT_EQ(0, ipcx_rwlock_init(&l, NULL));
	ASSERT_EQ(0, scope_exclusive(&l));
	ASSERT_EQ(0, scope_shared_then_upgradable(&l));
	ASSERT_EQ(0, scope_with_transfer(&l));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&l));
}

/* A pid that certainly belonged to a process that is gone now. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	t_wait(pid);
	return pid;
}

/*
 * Deaths at the exact instructions where the lock's record is incomplete,
 * written into the lock as the dead process would have left it.
 */
TEST(death_between_cas_and_owner_record)
{
	struct shm *s = new_shm(CHECK_MS);
	pid_t dead = dead_pid();

	ASSERT_NE(NULL, s);
	/* Exclusive claimed by CAS, owner record not yet written. */
	s->l.state = ST_EXCL | (uint32_t)dead;
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	/* Upgradable claimed, no record; a reader is not blocked by it. */
	s->l.state = ST_UPG | (uint32_t)dead;
	ASSERT_EQ(0, ipcx_rwlock_trylock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock_upgradable(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_upgradable(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_upgradable(&s->l));
	/* Upgrading (EXCL | UPG) while readers drained, then died. */
	s->l.state = ST_EXCL | ST_UPG | ST_DRAIN | (uint32_t)dead;
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* A reader that died right after adding its share (before anything else). */
TEST(death_after_reader_increment)
{
	struct shm *s = new_shm(CHECK_MS);
	pid_t dead = dead_pid();
	uint64_t t0;

	ASSERT_NE(NULL, s);
	s->l.slot[5].ident = ((uint64_t)dead << 40) | 12345;
	s->l.slot[5].count = 3;
	s->l.slot_mask = 1u << 5;
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(&s->l));
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	EXPECT_GE(ms_since(t0), CHECK_MS - 1);
	ASSERT_EQ(0, s->l.slot[5].count);
	ASSERT_EQ(0, s->l.slot[5].ident);
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	/* Same pid, other start time: a reused pid is not the reader. */
	s->l.slot[7].ident = ipcx_self_ident() ^ 1;
	s->l.slot[7].count = 1;
	s->l.slot_mask |= 1u << 7;
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/*
 * A reader process that took a share and was SIGKILLed: the index of the
 * slot it left (ident of the dead process, count 1, mask bit set), or -1.
 */
static int killed_reader_slot(struct shm *s)
{
	pid_t pid;
	int i;

	atomic_store(&s->stage, 0);
	pid = holder(s, HOLD_SHARED);
	if (!wait_stage(&s->stage, 1))
		return -1;
	kill(pid, SIGKILL);
	if (t_wait(pid) != 128 + SIGKILL)
		return -1;
	for (i = 0; i < IPCX_RWLOCK_SLOTS; i++)
		if (s->l.slot[i].ident && s->l.slot[i].count == 1)
			return i;
	return -1;
}

/*
 * A reaper killed in the middle of releasing slot @i: a child performs the
 * first @steps steps of the library's release by hand, exactly as the
 * library does them (1: mark the slot with its own reaper marker, 2: zero
 * the count, 3: clear the mask bit; the last step, freeing the slot, is
 * never reached), then SIGKILLs itself. @steps 0: step 1 with the marker an
 * older library wrote (1, no reaper identity). Return the child's status.
 */
static int reap_and_die(struct shm *s, int i, int steps)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct ipcx_rwlock_slot *sl = &s->l.slot[i];
		uint64_t id = __atomic_load_n(&sl->ident, __ATOMIC_SEQ_CST);
		uint64_t mark = steps ? RW_REAP_MARK(ipcx_self_ident()) : 1;

		if (!__atomic_compare_exchange_n(&sl->ident, &id, mark, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			_exit(1);
		if (steps >= 2)
			__atomic_exchange_n(&sl->count, 0, __ATOMIC_SEQ_CST);
		if (steps >= 3)
			__atomic_and_fetch(&s->l.slot_mask, ~(1u << i), __ATOMIC_SEQ_CST);
		raise(SIGKILL);
		_exit(2);
	}
	return t_wait(pid);
}

/*
 * With every slot but @i taken by a live process, a new reading process
 * must get slot @i (not the anonymous counter): the slot was not leaked.
 * Return 0 if so, else the child's status.
 */
static int slot_is_reusable(struct shm *s, int i)
{
	uint64_t me = ipcx_self_ident();
	pid_t pid;
	int j, ret;

	for (j = 0; j < IPCX_RWLOCK_SLOTS; j++)
		if (j != i)
			s->l.slot[j].ident = me;
	pid = fork();
	if (pid == 0) {
		bool ok;

		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		ok = s->l.anon_readers == 0 && s->l.slot[i].ident == ipcx_self_ident() &&
		     s->l.slot[i].count == 1 && (s->l.slot_mask & (1u << i));
		if (ipcx_rwlock_unlock_shared(&s->l))
			_exit(2);
		_exit(ok ? 0 : 3);
	}
	ret = t_wait(pid);
	for (j = 0; j < IPCX_RWLOCK_SLOTS; j++)
		if (j != i)
			s->l.slot[j].ident = 0;
	return ret;
}

/*
 * A waiting writer releasing a dead reader's slot is SIGKILLed after each
 * step of the release: the next writer must still get the lock within a
 * few check periods, and the slot must not leak.
 */
TEST(reaper_killed_mid_reap)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	uint64_t t0;
	int steps, i, ret;

	ASSERT_NE(NULL, s);
	for (steps = 0; steps <= 3; steps++) {
		ASSERT_EQ(0, ipcx_rwlock_init(&s->l, NULL));
		s->l.check_ms = CHECK_MS;
		i = killed_reader_slot(s);
		ASSERT_LE(0, i);
		ASSERT_EQ(128 + SIGKILL, reap_and_die(s, i, steps));
		ASSERT_NE(0, s->l.slot[i].ident);
		dl = t_deadline_ms(3000);
		t0 = t_now_ns();
		ret = ipcx_rwlock_timedlock(&s->l, &dl);
		EXPECT_EQ(0, ret) {
			TH_LOG("steps %d: writer wedged: slot %d ident %#llx count %u mask %#x",
			       steps, i, (unsigned long long)s->l.slot[i].ident,
			       s->l.slot[i].count, s->l.slot_mask);
		}
		if (ret)
			continue;
		TH_LOG("steps %d: writer in after %llu ms", steps,
		       (unsigned long long)ms_since(t0));
		EXPECT_LT(ms_since(t0), 2000);
		ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
		EXPECT_EQ(0, slot_is_reusable(s, i)) {
			TH_LOG("steps %d: slot %d leaked: ident %#llx count %u mask %#x",
			       steps, i, (unsigned long long)s->l.slot[i].ident,
			       s->l.slot[i].count, s->l.slot_mask);
		}
		EXPECT_EQ(0, ipcx_rwlock_destroy(&s->l));
	}
}

/*
 * Every slot left marked by dead reapers (half with a share still counted):
 * a new reader still gets a slot, and a writer gets in after the reap.
 */
TEST(all_slots_marked_by_dead_reapers)
{
	struct shm *s = new_shm(CHECK_MS);
	uint64_t dead = ((uint64_t)dead_pid() << 40) | 12345;
	struct timespec dl;
	pid_t pid;
	int i;

	ASSERT_NE(NULL, s);
	for (i = 0; i < IPCX_RWLOCK_SLOTS; i++) {
		s->l.slot[i].ident = RW_REAP_MARK(dead);
		if (i & 1) {
			s->l.slot[i].count = 1;
			s->l.slot_mask |= 1u << i;
		}
	}
	pid = fork();
	if (pid == 0) {
		uint64_t me = ipcx_self_ident();
		int n = 0;

		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		for (i = 0; i < IPCX_RWLOCK_SLOTS; i++)
			n += s->l.slot[i].ident == me && s->l.slot[i].count == 1;
		if (n != 1 || s->l.anon_readers)
			_exit(2);
		_exit(ipcx_rwlock_unlock_shared(&s->l) ? 3 : 0);
	}
	ASSERT_EQ(0, t_wait(pid));
	dl = t_deadline_ms(3000);
	ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* A reaper that is alive is never overtaken; once it dies, it is. */
TEST(live_reaper_is_not_overtaken)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	pid_t reaper;
	int i;

	ASSERT_NE(NULL, s);
	i = killed_reader_slot(s);
	ASSERT_LE(0, i);
	reaper = fork();
	if (reaper == 0) {
		uint64_t mark = RW_REAP_MARK(ipcx_self_ident());

		__atomic_store_n(&s->l.slot[i].ident, mark, __ATOMIC_SEQ_CST);
		s->a = mark;
		atomic_store(&s->stage, 2);
		for (;;)
			pause();
	}
	ASSERT_TRUE(wait_stage(&s->stage, 2));
	/* Several check periods: the writer must leave the live reaper's slot alone. */
	dl = t_deadline_ms(10 * CHECK_MS);
	EXPECT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	EXPECT_EQ(s->a, s->l.slot[i].ident);
	EXPECT_EQ(1, s->l.slot[i].count);
	kill(reaper, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(reaper));
	dl = t_deadline_ms(3000);
	ASSERT_EQ(0, ipcx_rwlock_timedlock(&s->l, &dl));
	EXPECT_EQ(0, s->l.slot[i].ident);
	EXPECT_EQ(0, s->l.slot[i].count);
	EXPECT_EQ(0, s->l.slot_mask & (1u << i));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* Deadlines whose nanosecond count does not fit in 64 bits (2^34 s does, barely). */
static const struct timespec far_deadlines[] = {
	{ (time_t)1 << 34, 0 },
	{ (time_t)1 << 62, 0 },
	{ (time_t)INT64_MAX, 999999999L },
};
#define NFAR (int)(sizeof(far_deadlines) / sizeof(far_deadlines[0]))

/* A child that makes timed call @kind with far_deadlines[@d], then releases. */
static pid_t far_waiter(struct shm *s, enum held_kind kind, int d)
{
	pid_t pid = fork();

	if (pid == 0) {
		const struct timespec *dl = &far_deadlines[d];
		int ret = -1;

		if (kind == HOLD_EXCL) {
			ret = ipcx_rwlock_timedlock(&s->l, dl);
			if (!ret)
				ret = ipcx_rwlock_unlock(&s->l);
		} else if (kind == HOLD_SHARED) {
			ret = ipcx_rwlock_timedlock_shared(&s->l, dl);
			if (!ret)
				ret = ipcx_rwlock_unlock_shared(&s->l);
		} else if (kind == HOLD_UPG) {
			ret = ipcx_rwlock_timedlock_upgradable(&s->l, dl);
			if (!ret)
				ret = ipcx_rwlock_unlock_upgradable(&s->l);
		} else {
			if (ipcx_rwlock_lock_upgradable(&s->l))
				_exit(99);
			atomic_fetch_add(&s->inside, 1);
			ret = ipcx_rwlock_timed_unlock_upgradable_and_lock(&s->l, dl);
			if (!ret)
				ret = ipcx_rwlock_unlock(&s->l);
			else
				ipcx_rwlock_unlock_upgradable(&s->l);	/* a failed upgrade keeps it */
		}
		_exit(ret < 0 ? -ret : ret);
	}
	return pid;
}

/* Is child @pid still running (blocked)? Reaps it if not. */
static bool still_waiting(pid_t pid, int *status)
{
	int st;

	if (waitpid(pid, &st, WNOHANG) != pid)
		return true;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return false;
}

/* A deadline centuries away waits like no deadline, for every timed call. */
TEST(far_future_deadlines)
{
	static const enum held_kind kinds[] = { HOLD_EXCL, HOLD_SHARED, HOLD_UPG };
	struct shm *s = new_shm(CHECK_MS);
	pid_t pids[3 * NFAR];
	bool gone[3 * NFAR];
	int k, d, n = 0;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	for (k = 0; k < 3; k++)
		for (d = 0; d < NFAR; d++)
			pids[n++] = far_waiter(s, kinds[k], d);
	t_sleep_ms(5 * CHECK_MS);
	for (n = 0; n < 3 * NFAR; n++) {
		int st = 0;

		gone[n] = !still_waiting(pids[n], &st);
		EXPECT_FALSE(gone[n]) {
			TH_LOG("kind %d, deadline %d returned at once: %d", (int)kinds[n / NFAR],
			       n % NFAR, -st);
		}
	}
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	for (n = 0; n < 3 * NFAR; n++)
		if (!gone[n])
			EXPECT_EQ(0, t_wait(pids[n]));

	/* Upgrade, waiting for a share of ours to go. */
	for (d = 0; d < NFAR; d++) {
		bool waiting;
		int st = 0;
		pid_t pid;

		atomic_store(&s->inside, 0);
		ASSERT_EQ(0, ipcx_rwlock_lock_shared(&s->l));
		pid = far_waiter(s, HOLD_UPGRADING, d);
		for (n = 0; n < 5000 && !atomic_load(&s->inside); n++)
			t_sleep_ms(1);
		t_sleep_ms(5 * CHECK_MS);
		waiting = still_waiting(pid, &st);
		EXPECT_TRUE(waiting) {
			TH_LOG("upgrade, deadline %d returned at once: %d", d, -st);
		}
		ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
		if (waiting)
			EXPECT_EQ(0, t_wait(pid));
	}
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* Hostile or corrupted lock words: every call returns, with an errno or 0. */
TEST(corrupted_words_never_hang)
{
	static const uint32_t states[] = {
		0xffffffffu, ST_EXCL | ST_UPG, ST_EXCL, ST_UPG | ST_RDWAIT | ST_WRWAIT,
		ST_INCONS, ST_DRAIN, ST_EXCL | ST_TID, 0x80000000u | ST_EXCL | 1,
	};
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	unsigned int i;
	int ret;

	ASSERT_NE(NULL, s);
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		ASSERT_EQ(0, ipcx_rwlock_init(&s->l, NULL));
		s->l.check_ms = 0xffffffffu;	/* out of range: the default is used */
		s->l.state = states[i];
		s->l.slot[3].ident = 42;		/* pid 0: not a process */
		s->l.slot[3].count = 0xffffffffu;
		s->l.anon_readers = 0;
		dl = t_deadline_ms(1500);
		ret = ipcx_rwlock_timedlock(&s->l, &dl);
		TH_LOG("state %#x: timedlock %d", states[i], ret);
		/* tid 1 (init) is alive: waiting for it until the deadline is right. */
		EXPECT_TRUE(ret == 0 || ret == -EOWNERDEAD || ret == -ENOTRECOVERABLE ||
			    ret == -ETIMEDOUT);
		if (ret == 0 || ret == -EOWNERDEAD)
			EXPECT_EQ(0, ipcx_rwlock_unlock(&s->l));
		dl = t_deadline_ms(200);
		ret = ipcx_rwlock_timedlock_shared(&s->l, &dl);
		EXPECT_TRUE(ret <= 0);
	}
}

/* Killed while upgrading (waiting for a reader to leave): next locker is told. */
TEST(upgrader_killed_while_draining)
{
	struct shm *s = new_shm(CHECK_MS);
	pid_t up, rd;

	ASSERT_NE(NULL, s);
	rd = fork();
	if (rd == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_store(&s->stage, 1);
		wait_stage(&s->stage, 3);
		_exit(ipcx_rwlock_unlock_shared(&s->l) ? 2 : 0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	up = fork();
	if (up == 0) {
		if (ipcx_rwlock_lock_upgradable(&s->l))
			_exit(1);
		atomic_store(&s->stage, 2);
		ipcx_rwlock_unlock_upgradable_and_lock(&s->l);	/* blocks: the reader */
		_exit(3);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 2));
	t_sleep_ms(30);
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_shared(&s->l));	/* upgrade pending */
	kill(up, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(up));
	atomic_store(&s->stage, 3);
	ASSERT_EQ(0, t_wait(rd));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

static void *hold_share_thread(void *arg)
{
	struct shm *s = arg;

	if (ipcx_rwlock_lock_shared(&s->l))
		_exit(1);
	atomic_store(&s->stage, 1);
	wait_stage(&s->stage, 2);
	ipcx_rwlock_unlock_shared(&s->l);
	_exit(0);
}

/*
 * A process whose main thread has exited (a zombie leader) while another
 * thread holds a share is alive: its share is not taken away.
 */
TEST(zombie_leader_with_live_thread_keeps_share)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	pid_t pid;

	ASSERT_NE(NULL, s);
	pid = fork();
	if (pid == 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, hold_share_thread, s))
			_exit(1);
		pthread_exit(NULL);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	dl = t_deadline_ms(5 * CHECK_MS);
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	atomic_store(&s->stage, 2);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
}

/*
 * A timed locker takes a dead owner's lock over but times out waiting for
 * a live reader: the lock stays marked, the next locker is told.
 */
TEST(takeover_then_timeout_keeps_death_report)
{
	struct shm *s = new_shm(CHECK_MS);
	struct timespec dl;
	pid_t pid, rd;

	ASSERT_NE(NULL, s);
	rd = fork();
	if (rd == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_store(&s->stage, 1);
		wait_stage(&s->stage, 3);
		_exit(ipcx_rwlock_unlock_shared(&s->l) ? 2 : 0);
	}
	ASSERT_TRUE(wait_stage(&s->stage, 1));
	/* An upgradable owner (compatible with the reader) dies. */
	pid = fork();
	if (pid == 0) {
		if (ipcx_rwlock_lock_upgradable(&s->l))
			_exit(1);
		atomic_store(&s->stage, 2);
		for (;;)
			pause();
	}
	ASSERT_TRUE(wait_stage(&s->stage, 2));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	dl = t_deadline_ms(10 * CHECK_MS);
	ASSERT_EQ(-ETIMEDOUT, ipcx_rwlock_timedlock(&s->l, &dl));
	/* Readers still get in meanwhile? No: the lock must be repaired first. */
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_shared(&s->l));
	atomic_store(&s->stage, 3);
	ASSERT_EQ(0, t_wait(rd));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/* A child using the lock in every kind and transfer, forever. */
static void random_user(struct shm *s, unsigned int seed)
{
	struct timespec dl;
	int ret;

	for (;;) {
		unsigned int r = rand_r(&seed) % 8;

		switch (r) {
		case 0:
		case 1:
			ret = ipcx_rwlock_lock_shared(&s->l);
			if (ret == 0) {
				if (s->a != s->b)
					atomic_fetch_add(&s->errors, 1);
				ipcx_rwlock_unlock_shared(&s->l);
				continue;
			}
			break;
		case 2:
			ret = ipcx_rwlock_lock_upgradable(&s->l);
			if (ret == 0) {
				if (rand_r(&seed) & 1) {
					ipcx_rwlock_unlock_upgradable(&s->l);
					continue;
				}
				ret = ipcx_rwlock_unlock_upgradable_and_lock(&s->l);
			}
			break;
		case 3:
			ret = ipcx_rwlock_trylock_shared(&s->l);
			if (ret == 0) {
				if (ipcx_rwlock_try_unlock_shared_and_lock(&s->l) == 0)
					break;
				ipcx_rwlock_unlock_shared(&s->l);
			}
			continue;
		case 4:
			dl = t_deadline_ms(5);
			ret = ipcx_rwlock_timedlock(&s->l, &dl);
			if (ret == -ETIMEDOUT)
				continue;
			break;
		default:
			ret = ipcx_rwlock_lock(&s->l);
			break;
		}
		if (ret == -EOWNERDEAD) {
			s->b = s->a;
			ipcx_rwlock_consistent(&s->l);
		} else if (ret) {
			atomic_fetch_add(&s->errors, 1);
			continue;
		}
		/* Exclusive: a half-done update a kill can interrupt. */
		s->a = s->a + 1;
		s->b = s->b + 1;
		if (rand_r(&seed) & 1) {
			ipcx_rwlock_unlock_and_lock_shared(&s->l);
			ipcx_rwlock_unlock_shared(&s->l);
		} else {
			ipcx_rwlock_unlock(&s->l);
		}
	}
}

/*
 * SIGKILL at random points of random use, round after round: the survivor
 * always gets the lock back (0 or -EOWNERDEAD) within a bound, and the
 * protected pair is never seen torn by a reader of a consistent lock.
 */
TEST(random_kills)
{
	enum { ROUNDS = 12, NCHILD = 3 };
	struct shm *s = new_shm(CHECK_MS);
	pid_t pids[NCHILD];
	struct timespec dl;
	int round, i, ret, deaths = 0;

	ASSERT_NE(NULL, s);
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < NCHILD; i++) {
			pids[i] = fork();
			if (pids[i] == 0)
				random_user(s, (unsigned int)(round * 31 + i));
		}
		t_sleep_ms(5 + (round * 7) % 20);
		for (i = 0; i < NCHILD; i++) {
			kill(pids[i], SIGKILL);
			if (i == 0)
				t_sleep_ms(3);	/* the others run on a moment */
		}
		for (i = 0; i < NCHILD; i++)
			ASSERT_EQ(128 + SIGKILL, t_wait(pids[i]));
		dl = t_deadline_ms(3000);
		ret = ipcx_rwlock_timedlock(&s->l, &dl);
		ASSERT_TRUE(ret == 0 || ret == -EOWNERDEAD);
		if (ret == -EOWNERDEAD) {
			deaths++;
			s->b = s->a;
			ASSERT_EQ(0, ipcx_rwlock_consistent(&s->l));
		}
		ASSERT_EQ(s->a, s->b);
		ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	}
	TH_LOG("%d of %d rounds killed an owner; %llu updates", deaths, ROUNDS,
	       (unsigned long long)s->a);
	ASSERT_EQ(0, atomic_load(&s->errors));
	ASSERT_EQ(0, ipcx_rwlock_trylock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, ipcx_rwlock_destroy(&s->l));
}

/*
 * Waiters SIGKILLed while asleep (their waiter bits left set) never cost a
 * later waiter its wake-up. The check period is 5 s here, so a lost wake-up
 * could not hide behind a liveness check.
 */
TEST(killed_waiters_do_not_break_wakeups)
{
	struct shm *s = new_shm(5000);
	pid_t dead[3], rd, wr;
	uint64_t t0;
	int i;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, ipcx_rwlock_lock(&s->l));
	for (i = 0; i < 3; i++) {
		dead[i] = fork();
		if (dead[i] == 0) {
			if (i == 2)
				ipcx_rwlock_lock(&s->l);
			else
				ipcx_rwlock_lock_shared(&s->l);
			_exit(99);
		}
	}
	t_sleep_ms(50);
	for (i = 0; i < 3; i++) {
		kill(dead[i], SIGKILL);
		ASSERT_EQ(128 + SIGKILL, t_wait(dead[i]));
	}
	rd = fork();
	if (rd == 0) {
		if (ipcx_rwlock_lock_shared(&s->l))
			_exit(1);
		atomic_fetch_add(&s->stage, 1);
		ipcx_rwlock_unlock_shared(&s->l);
		_exit(0);
	}
	wr = fork();
	if (wr == 0) {
		if (ipcx_rwlock_lock(&s->l))
			_exit(1);
		atomic_fetch_add(&s->stage, 1);
		ipcx_rwlock_unlock(&s->l);
		_exit(0);
	}
	t_sleep_ms(50);
	ASSERT_EQ(0, atomic_load(&s->stage));
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_rwlock_unlock(&s->l));
	ASSERT_EQ(0, t_wait(rd));
	ASSERT_EQ(0, t_wait(wr));
	TH_LOG("both woken within %.1f ms", (t_now_ns() - t0) / 1e6);
	EXPECT_LT(t_now_ns() - t0, 2000000000ull);	/* far below the 5 s period */
	ASSERT_EQ(2, atomic_load(&s->stage));
}

TEST_HARNESS_MAIN
