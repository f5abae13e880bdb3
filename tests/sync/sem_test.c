// SPDX-License-Identifier: MIT
/*
 * sem_test - semaphores (lib/sync/sem.c) across processes: post/wait/try/
 * timed on real clocks, overflow, exact totals with a semaphore as the
 * lock, producers and consumers with no lost wake-up, waiters SIGKILLed
 * mid-wait, bad input; the sleeper registrations (white-box: bits 32-63 of
 * the state word) come back to zero however waiters leave.
 */
#include <linux/futex.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define MAP_LEN 4096

struct shared {
	struct ipcx_sem s;
	struct ipcx_sem items;
	uint64_t count;
	uint64_t got;
};

TEST(bad_input)
{
	struct shared *sh = t_shared(MAP_LEN);
	struct ipcx_sem junk, *mis;
	struct timespec bad = { 0, 1000000000L };

	ASSERT_NE(NULL, sh);
	memset(&junk, 0x11, sizeof(junk));
	EXPECT_EQ(-EINVAL, ipcx_sem_init(NULL, 0, NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_init((struct ipcx_sem *)((char *)sh + 1), 0, NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_init(&sh->s, IPCX_SEM_VALUE_MAX + 1u, NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_post(NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_wait(NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_trywait(&junk));
	EXPECT_EQ(-EINVAL, ipcx_sem_post(&junk));
	EXPECT_EQ(-EINVAL, ipcx_sem_value(&junk));
	EXPECT_EQ(-EINVAL, ipcx_sem_destroy(&junk));
	ASSERT_EQ(0, ipcx_sem_init(&sh->s, 0, NULL));
	EXPECT_EQ(-EINVAL, ipcx_sem_timedwait(&sh->s, &bad));
	/* a copy at a misaligned address is refused */
	mis = (struct ipcx_sem *)(void *)((char *)&sh->items + 4);
	memmove(mis, &sh->s, sizeof(sh->s));
	EXPECT_EQ(-EINVAL, ipcx_sem_post(mis));
	EXPECT_EQ(-EINVAL, ipcx_sem_trywait(mis));
	EXPECT_EQ(-EINVAL, ipcx_sem_value(mis));
	EXPECT_EQ(0, ipcx_sem_destroy(&sh->s));
	EXPECT_EQ(-EINVAL, ipcx_sem_post(&sh->s));
	munmap(sh, MAP_LEN);
}

TEST(post_wait_try_timed_value_overflow)
{
	struct shared *sh = t_shared(MAP_LEN);
	struct timespec past = t_deadline_ms(-1), dl;
	uint64_t t0, dt;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_sem_init(&sh->s, 2, NULL));
	EXPECT_EQ(2, ipcx_sem_value(&sh->s));
	EXPECT_EQ(0, ipcx_sem_trywait(&sh->s));
	EXPECT_EQ(0, ipcx_sem_timedwait(&sh->s, &past));	/* past deadline, available: ok */
	EXPECT_EQ(-EAGAIN, ipcx_sem_trywait(&sh->s));
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_sem_timedwait(&sh->s, &past));
	EXPECT_LT(t_now_ns() - t0, 50000000ull);
	dl = t_deadline_ms(150);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_sem_timedwait(&sh->s, &dl));
	dt = t_now_ns() - t0;
	EXPECT_GE(dt, 145000000ull);
	EXPECT_LT(dt, 2000000000ull);
	EXPECT_EQ(0, ipcx_sem_post(&sh->s));
	EXPECT_EQ(1, ipcx_sem_value(&sh->s));
	EXPECT_EQ(0, ipcx_sem_wait(&sh->s));
	ASSERT_EQ(0, ipcx_sem_init(&sh->s, IPCX_SEM_VALUE_MAX - 1, NULL));
	EXPECT_EQ(0, ipcx_sem_post(&sh->s));
	EXPECT_EQ(-EOVERFLOW, ipcx_sem_post(&sh->s));
	EXPECT_EQ((int)IPCX_SEM_VALUE_MAX, ipcx_sem_value(&sh->s));
	munmap(sh, MAP_LEN);
}

/* A deadline already passed is not spun past, whatever the spin budget. */
TEST(past_deadline_does_not_spin)
{
	struct shared *sh = t_shared(MAP_LEN);
	IPCX_OPTS(ipcx_sem_opts, o, .spin_ns = 400000000u);
	struct timespec past;
	uint64_t t0;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_sem_init(&sh->s, 0, &o));
	past = t_deadline_ms(-10);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_sem_timedwait(&sh->s, &past));
	EXPECT_LT(t_now_ns() - t0, 100000000ull);	/* the spin would take 400 ms */
	munmap(sh, MAP_LEN);
}

FIXTURE(sem) {
	struct shared *sh;
};

FIXTURE_VARIANT(sem) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(sem, spin) { .flags = 0 };
FIXTURE_VARIANT_ADD(sem, block) { .flags = IPCX_SYNC_BLOCK };

FIXTURE_SETUP(sem)
{
	IPCX_OPTS(ipcx_sem_opts, o, .flags = variant->flags);

	self->sh = t_shared(MAP_LEN);
	ASSERT_NE(NULL, self->sh);
	ASSERT_EQ(0, ipcx_sem_init(&self->sh->s, 1, &o));
	ASSERT_EQ(0, ipcx_sem_init(&self->sh->items, 0, &o));
}

FIXTURE_TEARDOWN(sem)
{
	munmap(self->sh, MAP_LEN);
}

/* A binary semaphore as the lock: 8 processes, exact total. */
TEST_F(sem, eight_processes_exact_total)
{
	struct shared *sh = self->sh;
	const int iters = 100000;
	pid_t pid[8];
	int i, n;

	for (i = 0; i < 8; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			for (n = 0; n < iters; n++) {
				if (ipcx_sem_wait(&sh->s))
					_exit(1);
				sh->count++;
				if (ipcx_sem_post(&sh->s))
					_exit(2);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ((uint64_t)iters * 8, sh->count);
	EXPECT_EQ(1, ipcx_sem_value(&sh->s));
}

/* 4 producers post, 4 consumers wait: every token is taken exactly once. */
TEST_F(sem, producers_consumers)
{
	struct shared *sh = self->sh;
	const int per = 20000;
	pid_t pid[8];
	int i, n;

	for (i = 0; i < 8; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			for (n = 0; n < per; n++) {
				if (i < 4 ? ipcx_sem_post(&sh->items) : ipcx_sem_wait(&sh->items))
					_exit(1);
				if (i >= 4)
					__atomic_fetch_add(&sh->got, 1, __ATOMIC_RELAXED);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	EXPECT_EQ((uint64_t)per * 4, sh->got);
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
}

/* Sleepers SIGKILLed mid-wait: the count is intact, posts still wake others. */
TEST_F(sem, dead_waiters_lose_nothing)
{
	struct shared *sh = self->sh;
	pid_t dead[3], live[2];
	int i;

	for (i = 0; i < 3; i++) {
		dead[i] = fork();
		ASSERT_GE(dead[i], 0);
		if (dead[i] == 0)
			_exit(ipcx_sem_wait(&sh->items) ? 1 : 5);
	}
	t_sleep_ms(150);
	for (i = 0; i < 3; i++) {
		kill(dead[i], SIGKILL);
		EXPECT_EQ(128 + SIGKILL, t_wait(dead[i]));
	}
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
	for (i = 0; i < 2; i++) {
		live[i] = fork();
		ASSERT_GE(live[i], 0);
		if (live[i] == 0) {
			struct timespec dl = t_deadline_ms(10000);

			_exit(ipcx_sem_timedwait(&sh->items, &dl) ? 1 : 0);
		}
	}
	t_sleep_ms(150);
	EXPECT_EQ(0, ipcx_sem_post(&sh->items));
	EXPECT_EQ(0, ipcx_sem_post(&sh->items));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, t_wait(live[i]));
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
}

/* Killed at random points of wait/post loops: value stays balanced. */
TEST_F(sem, killed_at_random_points)
{
	struct shared *sh = self->sh;
	int round;

	srand(getpid());
	for (round = 0; round < 30; round++) {
		struct timespec dl;
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (pid == 0) {
			for (;;) {
				if (ipcx_sem_wait(&sh->items))
					_exit(1);
				if (ipcx_sem_post(&sh->items))
					_exit(2);
			}
		}
		ASSERT_EQ(0, ipcx_sem_post(&sh->items));
		usleep(rand() % 3000);
		kill(pid, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, t_wait(pid));
		/* The token is either in the semaphore or died with the victim
		 * between its wait and its post: never two, never stuck. */
		EXPECT_LE(ipcx_sem_value(&sh->items), 1);
		dl = t_deadline_ms(0);
		if (ipcx_sem_value(&sh->items) == 1)
			ASSERT_EQ(0, ipcx_sem_timedwait(&sh->items, &dl));
	}
}

/* White-box views of the state word (see lib/sync/sem.c). */
static uint32_t *ipcx_test_low_half(uint64_t *w)
{
	return (uint32_t *)(void *)w + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 1 : 0);
}

static uint32_t sleepers(struct ipcx_sem *s)
{
	return (uint32_t)(__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) >> 32);
}

static uint32_t generation(struct ipcx_sem *s)
{
	return (uint32_t)__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) >> 24;
}

/* Until @n sleepers are registered (false after 5 s). */
static bool registered(struct ipcx_sem *s, uint32_t n)
{
	int i;

	for (i = 0; i < 5000 && sleepers(s) != n; i++)
		t_sleep_ms(1);
	return sleepers(s) == n;
}

/* A child blocked in ipcx_sem_wait() on @s, registered and asleep (exits 0
 * once it takes a token); -1 if it never got there. */
static pid_t asleep_waiter(struct ipcx_sem *s)
{
	pid_t w = fork();

	if (w == 0)
		_exit(ipcx_sem_wait(s) ? 1 : 0);
	if (w > 0 && (!registered(s, 1) || t_until_state(w, 'S', 5000))) {
		kill(w, SIGKILL);
		t_wait(w);
		w = -1;
	}
	return w;
}

/* A woken sleeper takes its registration back: later posts need no wake-up. */
TEST_F(sem, sleeper_leaves_no_registration)
{
	struct shared *sh = self->sh;
	pid_t w;

	w = asleep_waiter(&sh->items);
	ASSERT_GT(w, 0);
	t_sleep_ms(5);
	ASSERT_EQ(0, ipcx_sem_post(&sh->items));
	EXPECT_EQ(0, t_wait(w));
	EXPECT_EQ(0u, sleepers(&sh->items));
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
}

/*
 * Posts whose wake-up finds nobody until the registrations are dropped
 * (every few such posts do it; white-box): each token is taken back at
 * once. Returns how many posts it took, 0 if more than 64.
 */
static int post_until_dropped(struct ipcx_sem *s)
{
	uint32_t g = generation(s);
	int n;

	for (n = 1; n <= 64; n++) {
		if (ipcx_sem_post(s) || ipcx_sem_trywait(s))
			return 0;
		if (generation(s) != g)
			return n;
	}
	return 0;
}

/* A sleeper killed while registered: a few later posts drop its registration. */
TEST_F(sem, killed_sleeper_registration_is_dropped)
{
	struct shared *sh = self->sh;
	pid_t w;
	int n;

	w = asleep_waiter(&sh->items);
	ASSERT_GT(w, 0);
	kill(w, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(w));
	n = post_until_dropped(&sh->items);
	EXPECT_GT(n, 0);
	EXPECT_LE(n, 8);
	EXPECT_EQ(0u, sleepers(&sh->items));
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));

	/* A live sleeper after it registers and is woken as usual. */
	w = fork();
	ASSERT_GE(w, 0);
	if (w == 0) {
		struct timespec dl = t_deadline_ms(5000);

		_exit(ipcx_sem_timedwait(&sh->items, &dl) ? 1 : 0);
	}
	ASSERT_TRUE(registered(&sh->items, 1));
	ASSERT_EQ(0, ipcx_sem_post(&sh->items));
	EXPECT_EQ(0, t_wait(w));
	EXPECT_EQ(0u, sleepers(&sh->items));
}

/*
 * A sleeper out of the futex queue (stopped here; a signal or the re-check
 * in real life) while its registration is dropped: when it goes back to
 * sleep it must register again, or posts would never wake it.
 */
TEST_F(sem, dropped_sleeper_registers_again)
{
	struct shared *sh = self->sh;
	pid_t w;

	w = asleep_waiter(&sh->items);
	ASSERT_GT(w, 0);
	kill(w, SIGSTOP);
	ASSERT_EQ(0, t_until_state(w, 'T', 5000));
	EXPECT_GT(post_until_dropped(&sh->items), 0);
	EXPECT_EQ(0u, sleepers(&sh->items));
	kill(w, SIGCONT);
	EXPECT_TRUE(registered(&sh->items, 1));
	ASSERT_EQ(0, ipcx_sem_post(&sh->items));
	EXPECT_EQ(0, t_wait(w));
	EXPECT_EQ(0u, sleepers(&sh->items));
}

/*
 * A waiter on its way in (registered, not yet asleep) whose registration
 * posts dropped, each token taken by a thief: its sleep must fail (the
 * generation moved), so it registers again instead of sleeping unseen.
 */
TEST_F(sem, dropped_registration_fails_the_sleep)
{
	struct shared *sh = self->sh;
	struct timespec rel = { 0, 200000000L };
	uint64_t st = __atomic_load_n(&sh->items.state, __ATOMIC_ACQUIRE);
	long r;

	ASSERT_EQ(0u, (uint32_t)st & 0xffffffu);
	ASSERT_TRUE(__atomic_compare_exchange_n(&sh->items.state, &st, st + (1ull << 32), false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	EXPECT_GT(post_until_dropped(&sh->items), 0);	/* wake nobody: drop */
	EXPECT_EQ(0u, sleepers(&sh->items));
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
	r = syscall(SYS_futex, ipcx_test_low_half(&sh->items.state), FUTEX_WAIT, (uint32_t)st,
		    &rel, NULL, 0);
	EXPECT_EQ(-1, r);
	EXPECT_EQ(EAGAIN, errno);
}

static void post_items(void *arg)
{
	struct shared *sh = arg;

	if (ipcx_sem_post(&sh->items))
		_exit(1);
}

/*
 * The drop's CAS cannot see a word that came back to the same value. Two
 * registered sleepers are out of the futex queue; post P finds nobody and
 * stops just before its drop; a thief takes P's token; the sleepers go back
 * to sleep on their registrations; post Q's CAS writes exactly P's word and
 * Q stops before its wake-up; P's drop then succeeds. Both sleepers must
 * still get through at once (the drop wakes everybody asleep), not one of
 * them only at its 100 ms re-check. A post's stores into the page, in
 * order: its CAS, post_cpu, the empty-wake count, the drop's CAS.
 */
TEST_F(sem, drop_after_the_word_came_back_wakes_the_sleepers)
{
	struct shared *sh = self->sh;
	pid_t w[2], p, q;
	uint64_t t0;
	int i, st, first = -1;

	w[0] = w[1] = -1;
	for (i = 0; i < 2; i++) {
		w[i] = fork();
		ASSERT_GE(w[i], 0);
		if (w[i] == 0)
			_exit(ipcx_sem_wait(&sh->items) ? 1 : 0);
	}
	ASSERT_TRUE(registered(&sh->items, 2));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, t_until_state(w[i], 'S', 5000));
	/* the next post whose wake finds nobody drops (white-box: the count is due) */
	__atomic_store_n(&sh->items.empty_wakes, 1000u, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++) {
		kill(w[i], SIGSTOP);
		ASSERT_EQ(0, t_until_state(w[i], 'T', 5000));
	}
#if !defined(__x86_64__)
	for (i = 0; i < 2; i++) {
		kill(w[i], SIGKILL);
		t_wait(w[i]);
	}
	SKIP(return, "no store watch on this architecture");
#endif
	p = t_stop_at_store(sh, MAP_LEN, 4, post_items, sh);
	ASSERT_GT(p, 0) TH_LOG("the post ended before its drop");
	/* stopped before the drop: its token counted, both registrations */
	ASSERT_EQ(1u, (uint32_t)sh->items.state & 0xffffffu);
	ASSERT_EQ(2u, sleepers(&sh->items));
	ASSERT_EQ(1001u, sh->items.empty_wakes);
	ASSERT_EQ(0, ipcx_sem_trywait(&sh->items));	/* the thief */
	for (i = 0; i < 2; i++)
		kill(w[i], SIGCONT);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, t_until_state(w[i], 'S', 5000));
	q = t_stop_at_store(sh, MAP_LEN, 2, post_items, sh);
	ASSERT_GT(q, 0);
	ASSERT_EQ(2u, sleepers(&sh->items));	/* the word P wrote, again */
	t0 = t_now_ns();
	kill(p, SIGCONT);			/* P's drop, then its wake-up */
	EXPECT_EQ(0, t_wait(p));
	/* One sleeper takes Q's token: woken by P, not by its re-check. */
	while (first < 0 && t_now_ns() - t0 < 5000000000ull) {
		for (i = 0; i < 2 && first < 0; i++)
			if (waitpid(w[i], &st, WNOHANG) == w[i])
				first = i;
		t_sleep_ms(1);
	}
	ASSERT_GE(first, 0);
	EXPECT_LT(t_now_ns() - t0, 50000000ull) TH_LOG("a sleeper took %.1f ms",
						       (t_now_ns() - t0) / 1e6);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	kill(q, SIGCONT);
	EXPECT_EQ(0, t_wait(q));
	/* The other registered again: a post wakes it. */
	EXPECT_TRUE(registered(&sh->items, 1));
	t0 = t_now_ns();
	ASSERT_EQ(0, ipcx_sem_post(&sh->items));
	EXPECT_EQ(0, t_wait(w[!first]));
	EXPECT_LT(t_now_ns() - t0, 50000000ull);
	EXPECT_EQ(0u, sleepers(&sh->items));
	EXPECT_EQ(0, ipcx_sem_value(&sh->items));
}

/*
 * Three waiters with 0-200 us deadlines against a poster: every token is
 * taken once or left counted, and no registration is left behind.
 */
TEST_F(sem, timeouts_racing_posts_keep_the_count)
{
	struct shared *sh = self->sh;
	const int waits = 3000, posts = 6000;
	pid_t pid[4];
	int i;

	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			unsigned int seed = (unsigned int)getpid();
			int n;

			for (n = 0; n < (i ? waits : posts); n++) {
				uint64_t until = t_now_ns() + (uint64_t)(rand_r(&seed) % 200000);
				struct timespec dl = { (time_t)(until / 1000000000ull),
						       (long)(until % 1000000000ull) };
				int ret;

				if (i == 0) {	/* the poster, at a random pace */
					while (t_now_ns() < until - 100000)
						;
					if (ipcx_sem_post(&sh->items))
						_exit(1);
					continue;
				}
				ret = ipcx_sem_timedwait(&sh->items, &dl);
				if (ret == 0)
					__atomic_fetch_add(&sh->got, 1, __ATOMIC_RELAXED);
				else if (ret != -ETIMEDOUT)
					_exit(2);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	TH_LOG("%llu of %d posts taken", (unsigned long long)sh->got, posts);
	EXPECT_EQ((int)(posts - sh->got), ipcx_sem_value(&sh->items));
	EXPECT_EQ(0u, sleepers(&sh->items));
	EXPECT_GT(sh->got, 0u);
}

TEST_HARNESS_MAIN
