// SPDX-License-Identifier: MIT
/*
 * barrier_test - barriers (lib/sync/barrier.c): 8 processes over 1000
 * rounds, nobody passes early, exactly one serial return per round; timed
 * waits take their arrival back, and racing completions keep the count.
 */
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define NPROC	8
#define ROUNDS	1000

struct shared {
	struct ipcx_barrier b;
	uint32_t slot[NPROC];
	uint32_t serial[ROUNDS];
};

TEST(bad_input)
{
	static char buf[sizeof(struct ipcx_barrier) + 64] __attribute__((aligned(64)));
	struct timespec bad = { 0, 1000000000L }, neg = { -1, 0 }, dl;
	struct ipcx_barrier b, *m;

	memset(&b, 0x77, sizeof(b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init(NULL, 2));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init(&b, 0));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init((struct ipcx_barrier *)((char *)&b + 4), 2));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(NULL));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_destroy(&b));
	ASSERT_EQ(0, ipcx_barrier_init(&b, 1));
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(0, ipcx_barrier_destroy(&b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(&b, NULL));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(NULL, NULL));
	ASSERT_EQ(0, ipcx_barrier_init(&b, 2));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(&b, &bad));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(&b, &neg));
	EXPECT_EQ(0, b.state >> 32);	/* a refused call does not arrive */
	/* a copy at a misaligned address is refused before arriving */
	dl = t_deadline_ms(20);
	m = (struct ipcx_barrier *)(void *)(buf + 4);
	memcpy(m, &b, sizeof(b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(m));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(m, &dl));
	EXPECT_EQ(-EINVAL, ipcx_barrier_destroy(m));
	m = (struct ipcx_barrier *)(void *)(buf + 1);
	memcpy(m, &b, sizeof(b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_timedwait(m, &dl));
	ASSERT_EQ(0, ipcx_barrier_init(&b, 1));
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_timedwait(&b, NULL));
}

/* Arrivals of the current round, read from the state word. */
static uint32_t arrivals(struct ipcx_barrier *b)
{
	return (uint32_t)(__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) >> 32);
}

/* A child waiting on @b (exits 0 on a plain release), once its arrival counts. */
static pid_t arrived_waiter(struct ipcx_barrier *b)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(ipcx_barrier_wait(b) == 0 ? 0 : 1);
	while (pid > 0 && arrivals(b) == 0)
		usleep(1000);
	return pid;
}

TEST(timed_out_arrival_is_taken_back)
{
	struct ipcx_barrier *b = t_shared(4096);
	struct timespec dl;
	uint64_t t0, el;
	pid_t pid;
	int mine;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcx_barrier_init(b, 2));
	dl = t_deadline_ms(60);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_barrier_timedwait(b, &dl));
	el = t_now_ns() - t0;
	EXPECT_GE(el, 55000000ull);	/* not early (clock granularity aside) */
	EXPECT_LT(el, 2000000000ull);
	EXPECT_EQ(0u, arrivals(b));

	/* A past deadline on a round that cannot complete fails at once. */
	dl = t_deadline_ms(-10);
	t0 = t_now_ns();
	EXPECT_EQ(-ETIMEDOUT, ipcx_barrier_timedwait(b, &dl));
	EXPECT_LT(t_now_ns() - t0, 50000000ull);
	EXPECT_EQ(0u, arrivals(b));

	/*
	 * The round still needs two: a stale arrival would let this caller
	 * complete it alone and leave the child waiting.
	 */
	pid = arrived_waiter(b);
	ASSERT_GT(pid, 0);
	mine = ipcx_barrier_wait(b);
	EXPECT_EQ(IPCX_BARRIER_SERIAL, mine);
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_barrier_destroy(b));
	munmap(b, 4096);
}

TEST(completing_arrival_never_waits)
{
	struct ipcx_barrier *b = t_shared(4096);
	struct timespec past = t_deadline_ms(-1000);
	pid_t pid;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcx_barrier_init(b, 2));
	pid = arrived_waiter(b);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_timedwait(b, &past));
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0u, arrivals(b));
	munmap(b, 4096);
}

TEST(survivors_give_up_on_a_participant_killed_before_arriving)
{
	struct ipcx_barrier *b = t_shared(4096);
	struct timespec dl;
	pid_t gone, w, pid[3];
	int i, serial = 0;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcx_barrier_init(b, 3));
	gone = fork();		/* the third participant, killed before it arrives */
	ASSERT_GE(gone, 0);
	if (gone == 0) {
		pause();
		_exit(0);
	}
	w = fork();
	ASSERT_GE(w, 0);
	if (w == 0) {
		dl = t_deadline_ms(300);
		_exit(ipcx_barrier_timedwait(b, &dl) == -ETIMEDOUT ? 0 : 1);
	}
	kill(gone, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(gone));
	dl = t_deadline_ms(300);
	EXPECT_EQ(-ETIMEDOUT, ipcx_barrier_timedwait(b, &dl));
	EXPECT_EQ(0, t_wait(w));
	EXPECT_EQ(0u, arrivals(b));

	/* Three live participants use it again. */
	for (i = 0; i < 3; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			int r = ipcx_barrier_wait(b);

			_exit(r == IPCX_BARRIER_SERIAL ? 10 : r == 0 ? 0 : 1);
		}
	}
	for (i = 0; i < 3; i++) {
		int st = t_wait(pid[i]);

		EXPECT_TRUE(st == 0 || st == 10) TH_LOG("participant %d: %d", i, st);
		serial += st == 10;
	}
	EXPECT_EQ(1, serial);
	munmap(b, 4096);
}

/*
 * A completion that lands just after a waiter's deadline: the waiter's
 * timer has fired, and its round completes before it takes its arrival
 * back. It must then report the release (0), not a timeout, and must not
 * take an arrival from the next round. Rounds of two: W waits until D, C
 * arrives at D + delta for delta 0..190 us, so some completions land
 * between W's timer and W's withdrawal.
 */
#define EDGE_TRIALS	200

struct edge {
	struct ipcx_barrier b;
	int w_ret[EDGE_TRIALS], c_ret[EDGE_TRIALS];
};

static struct timespec ts_add_ns(struct timespec t, uint64_t ns)
{
	ns += (uint64_t)t.tv_nsec;
	t.tv_sec += (time_t)(ns / 1000000000ull);
	t.tv_nsec = (long)(ns % 1000000000ull);
	return t;
}

TEST(completion_at_the_deadline_is_a_release)
{
	struct edge *e = t_shared(sizeof(struct edge));
	int i, released = 0, timedout = 0;

	ASSERT_NE(NULL, e);
	ASSERT_EQ(0, ipcx_barrier_init(&e->b, 2));
	for (i = 0; i < EDGE_TRIALS; i++) {
		struct timespec d = t_deadline_ms(2);
		uint64_t at = (uint64_t)d.tv_sec * 1000000000ull + (uint64_t)d.tv_nsec +
			      (uint64_t)(i % 20) * 10000u;
		pid_t c = fork();

		ASSERT_GE(c, 0);
		if (c == 0) {
			struct timespec dl = ts_add_ns(d, 20000000u);

			while (t_now_ns() < at)
				;
			e->c_ret[i] = ipcx_barrier_timedwait(&e->b, &dl);
			_exit(0);
		}
		e->w_ret[i] = ipcx_barrier_timedwait(&e->b, &d);
		ASSERT_EQ(0, t_wait(c));
		ASSERT_EQ(0u, arrivals(&e->b)) TH_LOG("trial %d: w %d c %d", i,
						      e->w_ret[i], e->c_ret[i]);
		if (e->c_ret[i] >= 0 || e->w_ret[i] >= 0) {
			/* one round: one serial return, one plain release */
			ASSERT_EQ(IPCX_BARRIER_SERIAL, e->c_ret[i] + e->w_ret[i])
				TH_LOG("trial %d: w %d c %d", i, e->w_ret[i], e->c_ret[i]);
			ASSERT_GE(e->c_ret[i], 0) TH_LOG("trial %d", i);
			ASSERT_GE(e->w_ret[i], 0) TH_LOG("trial %d", i);
			released++;
		} else {
			ASSERT_EQ(-ETIMEDOUT, e->c_ret[i]) TH_LOG("trial %d", i);
			ASSERT_EQ(-ETIMEDOUT, e->w_ret[i]) TH_LOG("trial %d", i);
			timedout++;
		}
	}
	TH_LOG("%d released at the edge, %d timed out", released, timedout);
	munmap(e, sizeof(struct edge));
}

/*
 * Four processes, rounds of three, every wait with a deadline of 0-300 us:
 * rounds complete and arrivals are taken back in every interleaving. Each
 * completed round must account for exactly three released participants and
 * one serial return, and nothing may stay arrived at the end.
 */
#define RACE_PROCS	4
#define RACE_COUNT	3
#define RACE_ITERS	3000

struct race {
	struct ipcx_barrier b;
	uint64_t released, serial, timedout, failed;
};

TEST(timeouts_racing_completions_keep_the_count)
{
	struct race *r = t_shared(sizeof(struct race));
	pid_t pid[RACE_PROCS];
	uint32_t rounds;
	int i;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, ipcx_barrier_init(&r->b, RACE_COUNT));
	for (i = 0; i < RACE_PROCS; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			unsigned int seed = (unsigned int)getpid();
			int k;

			for (k = 0; k < RACE_ITERS; k++) {
				struct timespec dl;
				uint64_t ns;
				int ret;

				clock_gettime(CLOCK_MONOTONIC, &dl);
				ns = (uint64_t)dl.tv_nsec + (uint64_t)(rand_r(&seed) % 300000);
				dl.tv_sec += (time_t)(ns / 1000000000ull);
				dl.tv_nsec = (long)(ns % 1000000000ull);
				ret = ipcx_barrier_timedwait(&r->b, &dl);
				/* never more arrivals than a round holds (nor a wrap) */
				if (arrivals(&r->b) >= RACE_COUNT)
					__atomic_fetch_add(&r->failed, 1, __ATOMIC_RELAXED);
				if (ret == IPCX_BARRIER_SERIAL) {
					__atomic_fetch_add(&r->serial, 1, __ATOMIC_RELAXED);
					__atomic_fetch_add(&r->released, 1, __ATOMIC_RELAXED);
				} else if (ret == 0) {
					__atomic_fetch_add(&r->released, 1, __ATOMIC_RELAXED);
				} else if (ret == -ETIMEDOUT) {
					__atomic_fetch_add(&r->timedout, 1, __ATOMIC_RELAXED);
				} else {
					__atomic_fetch_add(&r->failed, 1, __ATOMIC_RELAXED);
				}
			}
			_exit(0);
		}
	}
	for (i = 0; i < RACE_PROCS; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	rounds = (uint32_t)r->b.state;
	TH_LOG("%u rounds, %llu released, %llu timed out", rounds,
	       (unsigned long long)r->released, (unsigned long long)r->timedout);
	EXPECT_EQ(0u, r->failed);
	EXPECT_EQ((uint64_t)RACE_PROCS * RACE_ITERS, r->released + r->timedout + r->failed);
	EXPECT_EQ((uint64_t)rounds, r->serial);
	EXPECT_EQ((uint64_t)rounds * RACE_COUNT, r->released);
	EXPECT_EQ(0u, arrivals(&r->b));
	EXPECT_GT(rounds, 0u);
	EXPECT_GT(r->timedout, 0u);
	munmap(r, sizeof(struct race));
}

TEST(destroy_busy)
{
	struct ipcx_barrier *b = t_shared(4096);
	pid_t pid;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcx_barrier_init(b, 2));
	pid = arrived_waiter(b);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(-EBUSY, ipcx_barrier_destroy(b));
	EXPECT_GE(ipcx_barrier_wait(b), 0);
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_barrier_destroy(b));
	munmap(b, 4096);
}

TEST(eight_processes_thousand_rounds)
{
	struct shared *sh = t_shared(sizeof(struct shared));
	pid_t pid[NPROC];
	int i, r;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_barrier_init(&sh->b, NPROC));
	for (i = 0; i < NPROC; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			for (r = 0; r < ROUNDS; r++) {
				int ret, j;

				__atomic_store_n(&sh->slot[i], r + 1, __ATOMIC_RELEASE);
				ret = ipcx_barrier_wait(&sh->b);
				if (ret < 0)
					_exit(1);
				if (ret == IPCX_BARRIER_SERIAL)
					__atomic_fetch_add(&sh->serial[r], 1, __ATOMIC_RELAXED);
				/* Everybody has arrived at round r; nobody is past r+1. */
				for (j = 0; j < NPROC; j++) {
					uint32_t s = __atomic_load_n(&sh->slot[j], __ATOMIC_ACQUIRE);

					if (s < (uint32_t)r + 1 || s > (uint32_t)r + 2)
						_exit(2);
				}
			}
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	for (r = 0; r < ROUNDS; r++)
		ASSERT_EQ(1u, sh->serial[r]) TH_LOG("round %d", r);
	munmap(sh, sizeof(struct shared));
}

TEST_HARNESS_MAIN
