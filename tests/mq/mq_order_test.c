// SPDX-License-Identifier: MIT
/*
 * mq_order_test - in-order (SPSC) receivers against deaths and fences:
 * an SPSC sender killed at any store of a commit must not let an in-order
 * receiver deliver an older, lower-priority message ahead of a
 * higher-priority one that a later send (that returned) published; a
 * receiver killed at any store of a receive loses or reorders nothing; a
 * blocking in-order receive with two messages pending takes the higher one
 * without arming a wait; a handle that alternately sends and receives lets
 * both directions' fences turn off; a waiter killed while counted into a
 * fence word does not keep fences on forever. The sweeps kill a child before its
 * K-th store (t_die_at_store, x86-64 only: SKIP elsewhere).
 */
#include <signal.h>
#include <sys/mman.h>
#include <sched.h>
#include <string.h>
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>
#include "mq/mq.h"		/* the fence word's layout and helpers */

struct rv { struct ipcx_mq *q; };

#if defined(__x86_64__)
#define NEED_STEPPING()
#else
#define NEED_STEPPING() SKIP(return, "killing at a store needs x86-64 single-stepping")
#endif

/* Bytes of the mapping each test's queue lives in. */
#define QLEN	((ipcx_mq_size(8, 16, 4) + 4095) & ~4095ul)

/* A queue of 8 x 16-byte messages, 4 levels, in a fresh shared mapping. */
static void *queue_at(struct ipcx_mq **q, uint32_t flags, unsigned int wait)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 8, .max_size = 16, .levels = 4,
		  .flags = flags, .wait = wait);
	void *mem = mmap(NULL, QLEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return NULL;
	if (ipcx_mq_init_at(q, mem, QLEN, &o)) {
		munmap(mem, QLEN);
		return NULL;
	}
	return mem;
}

/*
 * An SPSC queue whose receiver has seen it empty (so it takes messages in
 * order) holding one message, "A" at priority 0; NULL on any failure.
 */
static void *inorder_queue_holding_a(struct ipcx_mq **q)
{
	void *mem = queue_at(q, IPCX_MQ_SPSC, 0);
	char buf[16];

	if (mem && (ipcx_mq_tryreceive(*q, buf, sizeof(buf), NULL) != -EAGAIN ||
		    ipcx_mq_send(*q, "A", 1, 0))) {
		ipcx_mq_close(*q);
		munmap(mem, QLEN);
		mem = NULL;
	}
	return mem;
}

/* one CPU: the side's cpu note is then never stored, so store counts repeat */
static void pin(void)
{
	cpu_set_t c;

	CPU_ZERO(&c);
	CPU_SET(sched_getcpu(), &c);
	sched_setaffinity(0, sizeof(c), &c);
}

static void send_b(void *arg)
{
	struct rv *x = arg;

	ipcx_mq_send(x->q, "B", 1, 0);
}

TEST(spsc_inorder_priority_after_sender_death)
{
	int k, died = 0, bad = 0;

	NEED_STEPPING();

	pin();

	for (k = 1; k < 200; k++) {
		struct rv x;
		void *mem = inorder_queue_holding_a(&x.q);
		unsigned int prio;
		char buf[16];
		int st;

		ASSERT_NE(NULL, mem);
		st = t_die_at_store(mem, QLEN, k, send_b, &x);
		if (st == 0) {	/* B's send completed: every store was a death point */
			munmap(mem, QLEN);
			break;
		}
		ASSERT_EQ(128 + SIGKILL, st);
		died++;
		/* a new sender: C, priority 1, returns before the receive starts */
		ASSERT_EQ(0, ipcx_mq_send(x.q, "C", 1, 1));
		ASSERT_EQ(1, ipcx_mq_tryreceive(x.q, buf, sizeof(buf), &prio));
		if (buf[0] != 'C') {
			bad++;
			TH_LOG("death at store %d: got '%c' prio %u before 'C' prio 1",
			       k, buf[0], prio);
		}
		ipcx_mq_close(x.q);
		munmap(mem, QLEN);
	}
	ASSERT_GT(died, 0);
	ASSERT_EQ(0, bad);
}


static void send_b2(void *arg)
{
	struct rv *x = arg;

	ipcx_mq_send(x->q, "B", 1, 2);
}

static void recv_one(void *arg)
{
	struct rv *x = arg;
	char buf[16];

	ipcx_mq_receive(x->q, buf, sizeof(buf), NULL);
}

static int drain(struct ipcx_mq *q, char *out, int max)
{
	char buf[16];
	int n = 0;

	while (n < max && ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL) == 1)
		out[n++] = buf[0];
	out[n] = 0;
	return n;
}

/* Sender killed at every store of a commit (B, prio 2), in order receiver. */
TEST(spsc_sender_death_sweep_order)
{
	int k;

	NEED_STEPPING();

	pin();

	for (k = 1; k < 200; k++) {
		struct rv x;
		void *mem = inorder_queue_holding_a(&x.q);
		char got[16];
		int st;

		ASSERT_NE(NULL, mem);
		st = t_die_at_store(mem, QLEN, k, send_b2, &x);
		ASSERT_EQ(0, ipcx_mq_send(x.q, "C", 1, 1));
		drain(x.q, got, 8);
		if (strcmp(got, "BCA") && strcmp(got, "CA"))
			TH_LOG("k %d (status %d): order %s", k, st, got);
		EXPECT_TRUE(!strcmp(got, "BCA") || !strcmp(got, "CA"));
		ipcx_mq_close(x.q);
		munmap(mem, QLEN);
		if (st == 0)
			break;
	}
}

/* Receiver killed at every store of a receive, then a new receiver. */
TEST(spsc_receiver_death_sweep)
{
	int k;

	NEED_STEPPING();

	for (k = 1; k < 200; k++) {
		struct rv x;
		void *mem = inorder_queue_holding_a(&x.q);
		char got[16];
		int st;

		ASSERT_NE(NULL, mem);
		ASSERT_EQ(0, ipcx_mq_send(x.q, "B", 1, 0));
		st = t_die_at_store(mem, QLEN, k, recv_one, &x);
		ASSERT_EQ(0, ipcx_mq_send(x.q, "C", 1, 3));
		ASSERT_EQ(0, ipcx_mq_send(x.q, "D", 1, 0));
		drain(x.q, got, 8);
		EXPECT_TRUE(!strcmp(got, "CABD") || !strcmp(got, "CBD")) TH_LOG("k %d: %s", k, got);
		ipcx_mq_close(x.q);
		munmap(mem, QLEN);
		if (st == 0)
			break;
	}
}

/*
 * In order, two messages pending at different levels: a blocking receive
 * must not go through the sleep path (membarrier, WAITERS bit left set, so
 * the next commit makes a futex syscall for nobody).
 */
TEST(inorder_blocking_receive_with_two_pending)
{
	struct ipcx_mq *q;
	struct ipcx_mq_header *h = queue_at(&q, IPCX_MQ_SPSC, IPCX_MQ_WAIT_SLEEP);
	unsigned int prio;
	char buf[16];

	ASSERT_NE(NULL, h);
	ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(q, buf, sizeof(buf), &prio));
	ASSERT_EQ(0, ipcx_mq_send(q, "A", 1, 0));
	ASSERT_EQ(0, ipcx_mq_send(q, "B", 1, 1));
	ASSERT_EQ(1, ipcx_mq_receive(q, buf, sizeof(buf), &prio));
	ASSERT_EQ('B', buf[0]);
	EXPECT_EQ(0u, h->rseq & IPCX_MQ_WAITERS);
	EXPECT_EQ(0u, h->rseq_fence & 3) TH_LOG("rseq_fence %#x", h->rseq_fence);
	ipcx_mq_close(q);
	munmap(h, QLEN);
}

/* One handle that sends and receives in turn: commits must stop fencing. */
TEST(alternating_handle_fences_idle)
{
	struct ipcx_mq *q;
	struct ipcx_mq_header *h = queue_at(&q, 0, 0);
	char buf[16];
	int i;

	ASSERT_NE(NULL, h);
	h->rseq_fence = 2 | 4;	/* as a receiver that slept once leaves it */
	h->wseq_fence = 2 | 4;
	for (i = 0; i < 5000; i++) {
		ASSERT_EQ(0, ipcx_mq_send(q, "x", 1, 0));
		ASSERT_EQ(1, ipcx_mq_receive(q, buf, sizeof(buf), NULL));
	}
	EXPECT_EQ(0u, h->wseq_fence & 3);
	EXPECT_EQ(0u, h->rseq_fence & 3) TH_LOG("rseq_fence %#x", h->rseq_fence);
	ipcx_mq_close(q);
	munmap(h, QLEN);
}

static void timed_recv(void *arg)
{
	struct rv *x = arg;
	struct timespec dl = t_deadline_ms(30);
	char buf[16];

	ipcx_mq_timedreceive(x->q, buf, sizeof(buf), NULL, &dl);
}

/*
 * A receiver killed at every store of a timed receive on an empty queue:
 * deaths between counting itself into rseq_fence and counting itself out
 * leave a count behind. Publishes must drop it within a few idle periods
 * (before, commits fenced for the queue's whole life), and messages still
 * flow in order.
 */
TEST(killed_waiter_fence_count_is_dropped)
{
	int k, in_window = 0;

	NEED_STEPPING();

	pin();
	for (k = 1; k < 200; k++) {
		struct rv x;
		struct ipcx_mq_header *h = queue_at(&x.q, IPCX_MQ_SPSC, IPCX_MQ_WAIT_SLEEP);
		char buf[16];
		int st, i;

		ASSERT_NE(NULL, h);
		st = t_die_at_store(h, QLEN, k, timed_recv, &x);
		if (h->rseq_fence & MQ_FENCE_COUNT)
			in_window++;
		for (i = 0; i < 4 * MQ_FENCE_IDLE; i++) {
			buf[0] = (char)i;
			ASSERT_EQ(0, ipcx_mq_send(x.q, buf, 1, 0));
			buf[0] = 0;
			ASSERT_EQ(1, ipcx_mq_receive(x.q, buf, sizeof(buf), NULL));
			ASSERT_EQ((char)i, buf[0]);
		}
		EXPECT_EQ(0u, h->rseq_fence & (MQ_FENCE_COUNT | MQ_FENCE_STATE))
			TH_LOG("death at store %d: rseq_fence %#x", k, h->rseq_fence);
		ipcx_mq_close(x.q);
		munmap(h, QLEN);
		if (st == 0)
			break;
		ASSERT_EQ(128 + SIGKILL, st);
	}
	ASSERT_GT(in_window, 0);	/* the sweep did die between begin and end */
}

/* One handle's idle check, MQ_FENCE_IDLE publishes' worth of calls. */
static void idle_period(uint32_t *fw, uint32_t *pubs, uint32_t *seen)
{
	int i;

	for (i = 0; i < (int)MQ_FENCE_IDLE; i++)
		ipcx_mq_fences_idle(fw, pubs, seen);
}

/*
 * A live waiter stalled between arming and re-checking for a whole idle
 * period has its count dropped; counting out then says so, and its
 * re-check must not be trusted (the caller looks again).
 */
TEST(stalled_waiter_is_told_its_count_was_dropped)
{
	uint32_t fw = 0, pubs = 0, seen = 0, gen, gen2;

	ipcx_mq_fences_begin(&fw, &gen);
	EXPECT_EQ(MQ_FENCE_ON, fw & MQ_FENCE_STATE);
	EXPECT_EQ(MQ_FENCE_ONE, fw & MQ_FENCE_COUNT);
	/* a waiter that only passes through keeps its count */
	ipcx_mq_fences_begin(&fw, &gen2);
	ASSERT_TRUE(ipcx_mq_fences_end(&fw, gen2));
	idle_period(&fw, &pubs, &seen);		/* clears "recent" */
	EXPECT_EQ(MQ_FENCE_ONE, fw & MQ_FENCE_COUNT);
	idle_period(&fw, &pubs, &seen);		/* unchanged a whole period: dropped */
	EXPECT_EQ(0u, fw & MQ_FENCE_COUNT);
	EXPECT_EQ(MQ_FENCE_ON, fw & MQ_FENCE_STATE);	/* one more period on */
	EXPECT_FALSE(ipcx_mq_fences_end(&fw, gen));
	EXPECT_EQ(0u, fw & MQ_FENCE_COUNT);		/* no underflow */
	idle_period(&fw, &pubs, &seen);
	EXPECT_EQ(0u, fw & MQ_FENCE_STATE);
	/* the next waiter starts afresh */
	ipcx_mq_fences_begin(&fw, &gen2);
	EXPECT_NE(gen, gen2);
	EXPECT_TRUE(ipcx_mq_fences_end(&fw, gen2));
}

/*
 * A waiter dropped while its barrier was in flight (state 1) must not turn
 * a later state 1 into 2: 2 would tell the next waiters a barrier covered
 * them when only one that started before the state last left 0 had run.
 * The drop keeps state 1, a later check takes it to 0, and a stale waiter
 * finishing its barrier then leaves the state alone.
 */
TEST(dropped_waiter_does_not_promote_the_state)
{
	uint32_t pubs = 0, seen = 0, gen2, fw;

	/* a waiter counted in generation 0, its barrier in flight */
	fw = MQ_FENCE_ONE | MQ_FENCE_RECENT | 1;
	idle_period(&fw, &pubs, &seen);
	idle_period(&fw, &pubs, &seen);
	EXPECT_EQ(MQ_FENCE_GEN1 | 1, fw) TH_LOG("after the drop: %#x", fw);
	idle_period(&fw, &pubs, &seen);
	EXPECT_EQ(MQ_FENCE_GEN1, fw) TH_LOG("a check later: %#x", fw);
	/* a new waiter gets as far as state 1 ... */
	fw = (fw + MQ_FENCE_ONE) | 1;
	/* ... when the stale one (generation 0) finishes its barrier */
	ipcx_mq_fences_promote(&fw, 0);
	EXPECT_EQ(1u, fw & MQ_FENCE_STATE);
	ipcx_mq_fences_promote(&fw, MQ_FENCE_GEN1);	/* the new one's */
	EXPECT_EQ(MQ_FENCE_ON, fw & MQ_FENCE_STATE);
	/* the real helper: a waiter of the current generation promotes */
	fw = MQ_FENCE_GEN1 | 1;
	ipcx_mq_fences_begin(&fw, &gen2);
	EXPECT_EQ(MQ_FENCE_GEN1, gen2);
	EXPECT_EQ(MQ_FENCE_ON, fw & MQ_FENCE_STATE);
	EXPECT_TRUE(ipcx_mq_fences_end(&fw, gen2));
}

/*
 * Two publishing handles check a moment apart: the second must not drop a
 * live waiter's count just because the first cleared "recent"; only a
 * word unchanged over a whole period of the same handle is dropped.
 */
TEST(two_handles_do_not_drop_a_live_waiter)
{
	uint32_t fw = MQ_FENCE_ON | MQ_FENCE_RECENT | MQ_FENCE_ONE;
	uint32_t pa = 0, sa = 0, pb = 0, sb = 0;

	idle_period(&fw, &pa, &sa);	/* A: clears "recent" */
	EXPECT_EQ(MQ_FENCE_ON | MQ_FENCE_ONE, fw);
	idle_period(&fw, &pb, &sb);	/* B, just after: not B's whole period */
	EXPECT_EQ(MQ_FENCE_ON | MQ_FENCE_ONE, fw);
	idle_period(&fw, &pa, &sa);	/* A again: unchanged since A's last look */
	EXPECT_EQ(MQ_FENCE_GEN1 | MQ_FENCE_ON, fw);
}

TEST_HARNESS_MAIN
