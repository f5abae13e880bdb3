// SPDX-License-Identifier: MIT
/*
 * lost_wake_test - a process that dies in the middle of a wake-up must not
 * leave the other sleepers asleep (lib/sync: sem.c, cond.c, barrier.c,
 * mutex.c). Each case is driven white-box: a child does one side's atomic
 * step by hand (the same word update the library makes), then SIGKILLs
 * itself at the chosen point, and a real waiter in another process must
 * get through within a bound:
 *  - a woken waiter killed before it consumes the wake-up (semaphore,
 *    condition; mutex with a locker barging in before the woken waiter runs);
 *  - a waker killed between its word update and its futex_wake (semaphore
 *    post, condition signal/broadcast, barrier last arrival);
 *  - far-future deadlines (tv_sec = 2^62) really wait, on every timed call.
 */
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define MAP_LEN 4096

/* Word layouts (white-box: the same constants as sem.c and cond.c). */
#define SEM_SLEEPER	(1ull << 32)	/* registered sleepers: bits 32-63 */
#define SEM_COUNT	0x00ffffffu	/* of the low half, the futex word */
#define COND_SLEEPERS	0x00000001u
#define COND_ARRIVALS	0x000000feu
#define COND_ARRIVAL	0x00000002u
#define COND_SIGNALS	0xffffff00u
#define COND_SIGNAL	0x00000100u

/* How long the surviving waiter may take (the library re-checks every
 * 100 ms; the margin is for a loaded machine and sanitizers). */
#define BOUND_MS	3000

struct shared {
	struct ipcx_mutex m;
	struct ipcx_cond c;
	struct ipcx_sem s;
	struct ipcx_barrier b;
	uint32_t tokens;
};

static struct shared *new_shared(void)
{
	struct shared *sh = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_mutex_opts, mo, .flags = IPCX_SYNC_BLOCK);
	IPCX_OPTS(ipcx_cond_opts, co, .flags = IPCX_SYNC_BLOCK);
	IPCX_OPTS(ipcx_sem_opts, so, .flags = IPCX_SYNC_BLOCK);

	if (!sh || ipcx_mutex_init(&sh->m, &mo) || ipcx_cond_init(&sh->c, &co) ||
	    ipcx_sem_init(&sh->s, 0, &so) || ipcx_barrier_init(&sh->b, 2))
		return NULL;
	return sh;
}

static long futex_wait(uint32_t *w, uint32_t val)
{
	return syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void die(void)
{
	kill(getpid(), SIGKILL);
	_exit(99);
}

/* Wait until @pid sleeps (in its futex wait), then a little longer. */
static int wait_asleep(pid_t pid)
{
	int i;

	for (i = 0; i < 5000; i++) {
		if (t_proc_state(pid) == 'S') {
			t_sleep_ms(50);
			return 0;
		}
		t_sleep_ms(1);
	}
	return -1;
}

/* Exit status of @pid if it ends within @ms, else -2 (and it is killed). */
static int wait_exit_ms(pid_t pid, int ms)
{
	int st, i;

	for (i = 0; i < ms; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		t_sleep_ms(1);
	}
	kill(pid, SIGKILL);
	t_wait(pid);
	return -2;
}

/* Still running after @ms? */
static bool still_running(pid_t pid, int ms)
{
	int st;

	t_sleep_ms(ms);
	return waitpid(pid, &st, WNOHANG) == 0;
}

/* ---- woken waiters killed before they consume the wake-up ---- */

/* Registers as a semaphore sleeper like sem_wait, sleeps, dies when woken. */
static void hand_sem_waiter(struct ipcx_sem *s)
{
	uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

	do {
		if ((uint32_t)st & SEM_COUNT)
			_exit(3);
	} while (!__atomic_compare_exchange_n(&s->state, &st, st + SEM_SLEEPER, false,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	/* the futex word is the state's low half (little-endian here) */
	while (futex_wait((uint32_t *)&s->state, (uint32_t)st) && errno == EINTR)
		;
	die();		/* woken: killed before the decrement */
}

TEST(sem_woken_waiter_killed)
{
	struct shared *sh = new_shared();
	pid_t w1, w2;

	ASSERT_NE(NULL, sh);
	w1 = fork();
	if (w1 == 0)
		hand_sem_waiter(&sh->s);
	ASSERT_EQ(0, wait_asleep(w1));
	w2 = fork();
	if (w2 == 0)
		_exit(ipcx_sem_wait(&sh->s) ? 1 : 0);
	ASSERT_EQ(0, wait_asleep(w2));
	ASSERT_EQ(0, ipcx_sem_post(&sh->s));	/* wakes w1, queued first */
	EXPECT_EQ(128 + SIGKILL, t_wait(w1));
	EXPECT_EQ(1, ipcx_sem_value(&sh->s));	/* w1 took nothing */
	EXPECT_EQ(0, wait_exit_ms(w2, BOUND_MS));
	EXPECT_EQ(0, ipcx_sem_value(&sh->s));
	munmap(sh, MAP_LEN);
}

/* Waits on the condition like cond_wait, dies when woken. */
static void hand_cond_waiter(struct shared *sh)
{
	uint32_t s0, v, nv;

	if (ipcx_mutex_lock(&sh->m))
		_exit(3);
	s0 = __atomic_load_n(&sh->c.seq, __ATOMIC_ACQUIRE) & COND_SIGNALS;
	if (ipcx_mutex_unlock(&sh->m))
		_exit(4);
	v = __atomic_load_n(&sh->c.seq, __ATOMIC_ACQUIRE);
	do {
		if ((v & COND_SIGNALS) != s0)
			_exit(5);
		nv = (v & ~COND_ARRIVALS) | ((v + COND_ARRIVAL) & COND_ARRIVALS) | COND_SLEEPERS;
	} while (!__atomic_compare_exchange_n(&sh->c.seq, &v, nv, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	while (futex_wait(&sh->c.seq, nv) && errno == EINTR)
		;
	die();		/* woken: killed before it relocks */
}

static int cond_consumer(struct shared *sh)
{
	if (ipcx_mutex_lock(&sh->m))
		return 1;
	while (!sh->tokens)
		if (ipcx_cond_wait(&sh->c, &sh->m))
			return 2;
	sh->tokens--;
	return ipcx_mutex_unlock(&sh->m) ? 3 : 0;
}

static void put_token(struct shared *sh)
{
	ipcx_mutex_lock(&sh->m);
	sh->tokens++;
	ipcx_mutex_unlock(&sh->m);
}

TEST(cond_signalled_waiter_killed)
{
	struct shared *sh = new_shared();
	pid_t w1, w2;

	ASSERT_NE(NULL, sh);
	w1 = fork();
	if (w1 == 0)
		hand_cond_waiter(sh);
	ASSERT_EQ(0, wait_asleep(w1));
	w2 = fork();
	if (w2 == 0)
		_exit(cond_consumer(sh));
	ASSERT_EQ(0, wait_asleep(w2));
	put_token(sh);
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));	/* wakes w1, queued first */
	EXPECT_EQ(128 + SIGKILL, t_wait(w1));
	EXPECT_EQ(0, wait_exit_ms(w2, BOUND_MS));
	EXPECT_EQ(0, sh->tokens);
	munmap(sh, MAP_LEN);
}

/*
 * The mutex unlock wakes w1; a third locker barges in before w1 runs; w1 is
 * killed; the barger unlocks. w2 must be woken (the barger must inherit
 * FUTEX_WAITERS: the kernel wakes nobody for w1's death while the barger
 * owns the word).
 */
static void hand_mutex_waiter(struct ipcx_mutex *m)
{
	uint32_t v = __atomic_load_n(&m->lock, __ATOMIC_ACQUIRE);

	for (;;) {
		if (!(v & FUTEX_TID_MASK))
			_exit(3);
		if ((v & FUTEX_WAITERS) ||
		    __atomic_compare_exchange_n(&m->lock, &v, v | FUTEX_WAITERS, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
	}
	while (futex_wait(&m->lock, v | FUTEX_WAITERS) && errno == EINTR)
		;
	die();		/* woken: killed before it takes the lock */
}

TEST(mutex_woken_waiter_killed_while_a_locker_barges_in)
{
	struct shared *sh = new_shared();
	pid_t w1, w2;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	w1 = fork();
	if (w1 == 0)
		hand_mutex_waiter(&sh->m);
	ASSERT_EQ(0, wait_asleep(w1));
	w2 = fork();
	if (w2 == 0)
		_exit(ipcx_mutex_lock(&sh->m) || ipcx_mutex_unlock(&sh->m));
	ASSERT_EQ(0, wait_asleep(w2));
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));	/* wakes w1, queued first */
	ASSERT_EQ(0, ipcx_mutex_trylock(&sh->m));	/* barge in (w1 never takes it) */
	EXPECT_EQ(128 + SIGKILL, t_wait(w1));
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, wait_exit_ms(w2, BOUND_MS));
	EXPECT_EQ(0u, __atomic_load_n(&sh->m.lock, __ATOMIC_ACQUIRE) & FUTEX_TID_MASK);
	munmap(sh, MAP_LEN);
}

/* Takes a token; a dead holder's -EOWNERDEAD is repaired (a killed peer
 * may have held the mutex). */
static int requeue_consumer(struct shared *sh)
{
	int r = ipcx_mutex_lock(&sh->m);

	for (;;) {
		if (r == -EOWNERDEAD)
			r = ipcx_mutex_consistent(&sh->m);
		if (r)
			return 1;
		if (sh->tokens)
			break;
		r = ipcx_cond_wait(&sh->c, &sh->m);
	}
	sh->tokens--;
	return ipcx_mutex_unlock(&sh->m) ? 3 : 0;
}

/*
 * Same, with the waiters requeued onto the mutex by broadcast_mutex: the
 * first is killed as the unlock wakes it, while the signaller barges in
 * (timing-dependent; the mutex case above is the deterministic one).
 */
TEST(requeued_waiter_killed_while_a_locker_barges_in)
{
	struct shared *sh = new_shared();
	pid_t w[3];
	int i, r;

	ASSERT_NE(NULL, sh);
	for (i = 0; i < 3; i++) {
		w[i] = fork();
		if (w[i] == 0)
			_exit(requeue_consumer(sh));
		ASSERT_EQ(0, wait_asleep(w[i]));
	}
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	sh->tokens = 3;
	ASSERT_EQ(0, ipcx_cond_broadcast_mutex(&sh->c, &sh->m));	/* all onto m */
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	kill(w[0], SIGKILL);
	r = ipcx_mutex_trylock(&sh->m);
	if (r == -EOWNERDEAD)
		r = ipcx_mutex_consistent(&sh->m);
	if (r == 0) {
		t_sleep_ms(20);
		ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	}
	t_wait(w[0]);
	for (i = 1; i < 3; i++)
		EXPECT_EQ(0, wait_exit_ms(w[i], BOUND_MS));
	munmap(sh, MAP_LEN);
}

/* ---- wakers killed between their word update and their futex_wake ---- */

TEST(sem_poster_killed_before_its_wake)
{
	struct shared *sh = new_shared();
	pid_t w, p;

	ASSERT_NE(NULL, sh);
	w = fork();
	if (w == 0)
		_exit(ipcx_sem_wait(&sh->s) ? 1 : 0);
	ASSERT_EQ(0, wait_asleep(w));
	p = fork();
	if (p == 0) {		/* sem_post's CAS, then death before the wake */
		__atomic_fetch_add(&sh->s.state, 1u, __ATOMIC_ACQ_REL);
		die();
	}
	EXPECT_EQ(128 + SIGKILL, t_wait(p));
	EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));
	EXPECT_EQ(0, ipcx_sem_value(&sh->s));
	munmap(sh, MAP_LEN);
}

TEST(cond_signaller_killed_before_its_wake)
{
	struct shared *sh = new_shared();
	pid_t w, p;

	ASSERT_NE(NULL, sh);
	w = fork();
	if (w == 0)
		_exit(cond_consumer(sh));
	ASSERT_EQ(0, wait_asleep(w));
	put_token(sh);
	p = fork();
	if (p == 0) {		/* signal/broadcast's fetch-add, then death */
		__atomic_fetch_add(&sh->c.seq, COND_SIGNAL, __ATOMIC_ACQ_REL);
		die();
	}
	EXPECT_EQ(128 + SIGKILL, t_wait(p));
	EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));
	munmap(sh, MAP_LEN);
}

/* The last arrival's steps, then death before its wake; @timed: a timed waiter. */
static int barrier_last_arrival_killed(bool timed)
{
	struct shared *sh = new_shared();
	pid_t w, p;
	int ret;

	if (!sh)
		return -1;
	w = fork();
	if (w == 0) {
		struct timespec dl = t_deadline_ms(60000);

		_exit((timed ? ipcx_barrier_timedwait(&sh->b, &dl) : ipcx_barrier_wait(&sh->b)) ?
		      1 : 0);
	}
	if (wait_asleep(w))
		return -1;
	p = fork();
	if (p == 0) {
		uint64_t s = __atomic_load_n(&sh->b.state, __ATOMIC_ACQUIRE);

		/* round g with one arrival -> round g + 1 with none */
		if (s >> 32 != 1 ||
		    !__atomic_compare_exchange_n(&sh->b.state, &s, (uint64_t)((uint32_t)s + 1),
						 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			_exit(3);
		die();
	}
	ret = t_wait(p) == 128 + SIGKILL ? wait_exit_ms(w, BOUND_MS) : -1;
	munmap(sh, MAP_LEN);
	return ret;
}

TEST(barrier_last_arrival_killed_before_its_wake)
{
	EXPECT_EQ(0, barrier_last_arrival_killed(false));
}

TEST(barrier_last_arrival_killed_before_a_timed_waiters_wake)
{
	EXPECT_EQ(0, barrier_last_arrival_killed(true));
}

/* ---- far-future deadlines wait (no overflow into "already passed") ---- */

static const struct timespec far = { (time_t)1 << 62, 0 };

TEST(far_future_deadlines_wait)
{
	struct shared *sh = new_shared();
	IPCX_OPTS(ipcx_mutex_opts, po, .flags = IPCX_MUTEX_PI);
	pid_t w;

	ASSERT_NE(NULL, sh);

	w = fork();
	if (w == 0)
		_exit(ipcx_sem_timedwait(&sh->s, &far) ? 1 : 0);
	EXPECT_TRUE(still_running(w, 300));
	ASSERT_EQ(0, ipcx_sem_post(&sh->s));
	EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));

	w = fork();
	if (w == 0) {
		int r;

		if (ipcx_mutex_lock(&sh->m))
			_exit(3);
		while (!sh->tokens)
			if ((r = ipcx_cond_timedwait(&sh->c, &sh->m, &far)))
				_exit(r == -ETIMEDOUT ? 1 : 2);
		_exit(ipcx_mutex_unlock(&sh->m) ? 4 : 0);
	}
	EXPECT_TRUE(still_running(w, 300));
	put_token(sh);
	ASSERT_EQ(0, ipcx_cond_signal(&sh->c));
	EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));

	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	w = fork();
	if (w == 0)
		_exit(ipcx_mutex_timedlock(&sh->m, &far) || ipcx_mutex_unlock(&sh->m));
	EXPECT_TRUE(still_running(w, 300));
	ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));

	if (ipcx_mutex_init(&sh->m, &po) == 0) {	/* PI, where the kernel has it */
		ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
		w = fork();
		if (w == 0)
			_exit(ipcx_mutex_timedlock(&sh->m, &far) || ipcx_mutex_unlock(&sh->m));
		EXPECT_TRUE(still_running(w, 300));
		ASSERT_EQ(0, ipcx_mutex_unlock(&sh->m));
		EXPECT_EQ(0, wait_exit_ms(w, BOUND_MS));
	}
	munmap(sh, MAP_LEN);
}

TEST_HARNESS_MAIN
