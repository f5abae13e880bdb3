// SPDX-License-Identifier: MIT
/*
 * mq_crash_test - SIGKILL of senders and receivers: at chosen points
 * (holding a reservation, holding a peek, asleep) and at random points
 * (kill torture with restarts and full accounting of every message id).
 *
 * IPCX_MQ_TORTURE_KILLS overrides the number of kills of the torture
 * (a longer soak: IPCX_MQ_TORTURE_KILLS=100000).
 */
#include <stdio.h>
#include <sys/prctl.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

FIXTURE(crash) {
	struct ipcx_mq *q;
};

FIXTURE_VARIANT(crash) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(crash, mpmc) { .flags = 0 };
FIXTURE_VARIANT_ADD(crash, spsc) { .flags = IPCX_MQ_SPSC };

FIXTURE_SETUP(crash)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 16, .flags = variant->flags);

	ASSERT_EQ(0, ipcx_mq_open_memfd(&self->q, &o));
}

FIXTURE_TEARDOWN(crash)
{
	ipcx_mq_close(self->q);
}

/* Run @fn in a child that signals readiness through a pipe, then kill it. */
static int run_and_kill(void (*fn)(struct ipcx_mq *q, int wfd), struct ipcx_mq *q)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		fn(q, p[1]);
		_exit(99);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		t_wait(pid);
		return -1;
	}
	close(p[0]);
	t_sleep_ms(5);
	kill(pid, SIGKILL);
	return t_wait(pid) == 128 + SIGKILL ? 0 : -1;
}

static void hold_reservation(struct ipcx_mq *q, int wfd)
{
	void *w;

	if (ipcx_mq_reserve(q, &w, 0, NULL))
		_exit(1);
	memcpy(w, "half-writ", 9);	/* never committed */
	if (write(wfd, "r", 1) != 1)
		_exit(2);
	pause();
}

static void hold_peek(struct ipcx_mq *q, int wfd)
{
	const void *p;
	size_t len;

	if (ipcx_mq_peek(q, &p, &len, NULL, 0, NULL))
		_exit(1);
	if (write(wfd, "p", 1) != 1)
		_exit(2);
	pause();
}

static void sleep_receiving(struct ipcx_mq *q, int wfd)
{
	char buf[16];

	if (write(wfd, "s", 1) != 1)
		_exit(2);
	ipcx_mq_receive(q, buf, sizeof(buf), NULL);
	_exit(3);
}

TEST_F(crash, sender_dies_holding_reservation)
{
	struct timespec dl;
	char buf[16];
	int i;

	ASSERT_EQ(0, run_and_kill(hold_reservation, self->q));
	/* The queue works, nothing half-written is delivered, capacity is whole. */
	dl = t_deadline_ms(5000);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, ipcx_mq_timedsend(self->q, &i, sizeof(i), 0, &dl));
	ASSERT_EQ(-EAGAIN, ipcx_mq_trysend(self->q, &i, sizeof(i), 0));
	for (i = 0; i < 4; i++) {
		int v;

		ASSERT_EQ(sizeof(v), ipcx_mq_tryreceive(self->q, &v, sizeof(v), NULL));
		ASSERT_EQ(i, v);
	}
	ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), NULL));
}

TEST_F(crash, receiver_dies_holding_peek)
{
	struct timespec dl;
	char buf[16];

	ASSERT_EQ(0, ipcx_mq_send(self->q, "keep me", 7, 1));
	ASSERT_EQ(0, run_and_kill(hold_peek, self->q));
	/* The message the dead receiver was looking at is still there. */
	dl = t_deadline_ms(5000);
	ASSERT_EQ(7, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &dl));
	ASSERT_EQ(0, memcmp(buf, "keep me", 7));
	ASSERT_EQ(0, ipcx_mq_get_num_msg(self->q));
}

TEST_F(crash, sleeping_receiver_dies)
{
	struct timespec dl;
	char buf[16];
	pid_t pid;

	ASSERT_EQ(0, run_and_kill(sleep_receiving, self->q));
	/* Its waiter flag may be left behind: a later receiver is still woken. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		dl = t_deadline_ms(5000);
		_exit(ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &dl) == 3 ? 0 : 1);
	}
	t_sleep_ms(50);
	ASSERT_EQ(0, ipcx_mq_send(self->q, "abc", 3, 0));
	ASSERT_EQ(0, t_wait(pid));
}

/* ---- kill torture ---------------------------------------------------------------- */

#define T_SEND		3
#define T_RECV		3
#define T_IDS		(1u << 22)	/* per sender */

struct torture {
	volatile uint32_t stop_send;
	volatile uint32_t stop_recv;
	uint32_t next[T_SEND];		/* next counter of each sender (persisted) */
	uint32_t pending[T_RECV];	/* id + 1 a receiver is between peek and count */
	uint8_t attempted[T_SEND * T_IDS];
	uint8_t confirmed[T_SEND * T_IDS];
	uint8_t received[T_SEND * T_IDS];
	uint8_t maybe_lost[T_SEND * T_IDS];
};

static void t_sender(struct ipcx_mq *q, struct torture *t, int i)
{
	while (!t->stop_send) {
		uint32_t ctr = __atomic_load_n(&t->next[i], __ATOMIC_SEQ_CST);
		uint32_t id = (uint32_t)i * T_IDS + ctr;

		if (ctr >= T_IDS)
			_exit(0);
		__atomic_store_n(&t->next[i], ctr + 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&t->attempted[id], 1, __ATOMIC_SEQ_CST);
		if (ipcx_mq_send(q, &id, sizeof(id), id % 5))
			_exit(1);
		__atomic_store_n(&t->confirmed[id], 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

static void t_receiver(struct ipcx_mq *q, struct torture *t, int j)
{
	for (;;) {
		struct timespec dl = t_deadline_ms(20);
		unsigned int prio;
		const void *p;
		size_t len;
		uint32_t id;
		int r;

		r = ipcx_mq_peek(q, &p, &len, &prio, 0, &dl);
		if (r == -ETIMEDOUT) {
			if (t->stop_recv)
				_exit(0);
			continue;
		}
		if (r || len != sizeof(id))
			_exit(1);
		memcpy(&id, p, sizeof(id));
		if (id >= T_SEND * T_IDS || prio != id % 5)
			_exit(2);
		__atomic_store_n(&t->pending[j], id + 1, __ATOMIC_SEQ_CST);
		if (ipcx_mq_release(q))
			_exit(3);
		if (__atomic_fetch_add(&t->received[id], 1, __ATOMIC_SEQ_CST) != 0)
			_exit(4);	/* duplicate */
		__atomic_store_n(&t->pending[j], 0, __ATOMIC_SEQ_CST);
	}
}

static pid_t t_spawn(struct ipcx_mq *q, struct torture *t, int who)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* die with the test, even when it fails half-way */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (who < T_SEND)
			t_sender(q, t, who);
		else
			t_receiver(q, t, who - T_SEND);
		_exit(0);
	}
	return pid;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

TEST_F_TIMEOUT(crash, kill_torture, 3600)
{
	struct torture *t = t_shared(sizeof(*t));
	int nsend = variant->flags & IPCX_MQ_SPSC ? 1 : T_SEND;
	int nrecv = variant->flags & IPCX_MQ_SPSC ? 1 : T_RECV;
	const char *env = getenv("IPCX_MQ_TORTURE_KILLS");
	long kills = env ? atol(env) : 1500, k;
	pid_t pids[T_SEND + T_RECV];
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	uint64_t n_conf = 0, n_recv = 0, n_lost = 0, id;
	int i, st;

	ASSERT_NE(NULL, t);
	for (i = 0; i < T_SEND + T_RECV; i++)
		pids[i] = -1;
	for (i = 0; i < nsend; i++)
		ASSERT_GT(pids[i] = t_spawn(self->q, t, i), 0);
	for (i = 0; i < nrecv; i++)
		ASSERT_GT(pids[T_SEND + i] = t_spawn(self->q, t, T_SEND + i), 0);

	for (k = 0; k < kills; k++) {
		int who = (int)(rnd(&seed) % (uint64_t)(nsend + nrecv));
		struct timespec d = { 0, (long)(rnd(&seed) % 1000) * 1000L };

		if (who >= nsend)
			who = T_SEND + (who - nsend);
		nanosleep(&d, NULL);
		kill(pids[who], SIGKILL);
		st = t_wait(pids[who]);
		/* A child may only die by our SIGKILL (or end its ids). */
		ASSERT_TRUE(st == 128 + SIGKILL || st == 0) TH_LOG("child %d status %d", who, st);
		if (who >= T_SEND) {
			uint32_t pend = t->pending[who - T_SEND];

			if (pend)
				t->maybe_lost[pend - 1] = 1;
			t->pending[who - T_SEND] = 0;
		}
		ASSERT_GT(pids[who] = t_spawn(self->q, t, who), 0);
	}
	/* Quiesce: senders stop, receivers drain, then stop. */
	t->stop_send = 1;
	for (i = 0; i < nsend; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	while (ipcx_mq_get_num_msg(self->q) > 0)
		t_sleep_ms(10);
	t->stop_recv = 1;
	for (i = 0; i < nrecv; i++)
		ASSERT_EQ(0, t_wait(pids[T_SEND + i]));

	for (id = 0; id < (uint64_t)T_SEND * T_IDS; id++) {
		if (t->received[id]) {
			ASSERT_EQ(1, t->received[id]);		/* never duplicated */
			ASSERT_EQ(1, t->attempted[id]);		/* never invented */
			n_recv++;
		}
		if (t->confirmed[id]) {
			n_conf++;
			if (!t->received[id]) {
				/* only a receiver killed between taking and counting it */
				ASSERT_EQ(1, t->maybe_lost[id]) TH_LOG("id %lu lost", (unsigned long)id);
				n_lost++;
			}
		}
	}
	TH_LOG("%ld kills: %lu confirmed sends, %lu received, %lu taken by killed receivers",
	       kills, (unsigned long)n_conf, (unsigned long)n_recv, (unsigned long)n_lost);
	ASSERT_GT(n_recv, 100);
	/* The queue is whole afterwards: full capacity, then full. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, ipcx_mq_trysend(self->q, &i, sizeof(i), 0));
	ASSERT_EQ(-EAGAIN, ipcx_mq_trysend(self->q, &i, sizeof(i), 0));
	munmap(t, sizeof(*t));
}

/* ---- death at each store of commit and release (white box) ------------------------ */

/*
 * A child reserves (peeks) through the library, then performs the first
 * @step stores of ipcx_mq_commit() (ipcx_mq_release()) by hand, as the
 * library orders them, and exits holding the side. It is left a zombie
 * while the parent works: a dead but unreaped owner must count as dead.
 */
struct wb {
	struct ipcx_mq_header *h;
	struct ipcx_mq *q;
	uint32_t *free_ring;
	uint32_t *rings;
	uint32_t mask;
	uint32_t fmask;
};

static void wb_open(struct wb *w, uint32_t flags)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 16, .levels = 4, .flags = flags);
	size_t sz = ipcx_mq_size(4, 16, 4);

	w->h = t_shared(sz);
	if (!w->h || ipcx_mq_init_at(&w->q, w->h, sz, &o))
		abort();
	w->mask = w->h->ring_size - 1;
	w->fmask = w->h->free_size - 1;
	w->free_ring = (uint32_t *)((char *)w->h + sizeof(struct ipcx_mq_header));
	w->rings = w->free_ring + w->h->free_size;	/* 64-byte aligned here */
}

static void wb_close(struct wb *w)
{
	ipcx_mq_close(w->q);
	munmap(w->h, ipcx_mq_size(4, 16, 4));
}

static void die_in_commit(struct wb *w, int step)
{
	struct ipcx_mq_side *s = &w->h->send;
	uint32_t idx, t, pos, *hdr;
	void *buf;

	if (ipcx_mq_reserve(w->q, &buf, 0, NULL))
		_exit(1);
	memcpy(buf, "MSG!", 4);
	idx = s->zc_idx;
	hdr = (uint32_t *)buf - 4;
	hdr[0] = 4;	/* len */
	hdr[1] = 2;	/* prio */
	t = (uint32_t)w->h->tl[2];
	pos = s->pos;
	if (step >= 1) {
		w->h->used |= 1u << 2;	/* a level's first message */
		w->rings[2 * (w->mask + 1) + (t & w->mask)] = idx;
		s->i_idx = idx;
		s->i_lvl = 2;
		s->i_lpos = t;
		s->i_fpos = pos;
		s->intent = 1;
	}
	if (step >= 2)
		w->h->tl[2] = (uint64_t)idx << 32 | (t + 1);
	if (step >= 3)
		hdr[2] = pos + 1;	/* stamp */
	if (step >= 4)
		s->pos = pos + 1;
	_exit(0);
}

static void die_in_release(struct wb *w, int step)
{
	struct ipcx_mq_side *s = &w->h->recv;
	struct ipcx_mq_rlevel *L = &w->h->rlevel[1];
	uint32_t idx, head, pos;
	const void *p;
	size_t len;

	if (ipcx_mq_peek(w->q, &p, &len, NULL, 0, NULL) || len != 1 || memcmp(p, "A", 1))
		_exit(1);
	idx = s->zc_idx;
	head = L->head;
	pos = w->h->recv_pos;
	if (step >= 1) {
		s->i_idx = idx;
		s->i_lvl = 1;
		s->i_lpos = head;
		s->i_fpos = pos;
		s->intent = 1;
	}
	if (step >= 2)
		L->head = head + 1;
	if (step >= 3) {
		w->free_ring[pos & w->fmask] = idx;
		w->h->recv_pos = pos + 1;
	}
	_exit(0);
}

/* The queue holds its full capacity again, and then is full. */
static int wb_capacity_whole(struct wb *w)
{
	char buf[16];
	int i;

	while (ipcx_mq_tryreceive(w->q, buf, sizeof(buf), NULL) >= 0)
		;
	for (i = 0; i < 4; i++)
		if (ipcx_mq_trysend(w->q, "c", 1, 0))
			return 0;
	return ipcx_mq_trysend(w->q, "c", 1, 0) == -EAGAIN;
}

TEST(death_at_each_commit_store)
{
	uint32_t modes[2] = { 0, IPCX_MQ_SPSC };
	int m, step;

	for (m = 0; m < 2; m++) {
		for (step = 0; step <= 4; step++) {
			struct timespec dl = t_deadline_ms(5000);
			unsigned int prio;
			struct wb w;
			char buf[16];
			pid_t pid;

			wb_open(&w, modes[m]);
			/* an SPSC receiver that saw the queue empty polls stamps */
			ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(w.q, buf, sizeof(buf), &prio));
			pid = fork();
			ASSERT_GE(pid, 0);
			if (pid == 0)
				die_in_commit(&w, step);
			t_sleep_ms(20);		/* the child is a zombie now */
			/*
			 * A receiver alone finds a published message although its
			 * sender died before stamping it or waking anybody.
			 */
			if (step >= 2) {	/* published: delivered, once */
				ASSERT_EQ(4, ipcx_mq_timedreceive(w.q, buf, sizeof(buf), &prio,
								  &dl));
				ASSERT_EQ(2, prio);
				ASSERT_EQ(0, memcmp(buf, "MSG!", 4));
			} else {
				struct timespec soon = t_deadline_ms(100);

				ASSERT_EQ(-ETIMEDOUT, ipcx_mq_timedreceive(w.q, buf, sizeof(buf),
									   &prio, &soon));
			}
			ASSERT_EQ(0, ipcx_mq_timedsend(w.q, "next", 4, 0, &dl));
			ASSERT_EQ(4, ipcx_mq_tryreceive(w.q, buf, sizeof(buf), &prio));
			ASSERT_EQ(0, memcmp(buf, "next", 4)) TH_LOG("mode %d step %d", m, step);
			ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(w.q, buf, sizeof(buf), &prio));
			ASSERT_TRUE(wb_capacity_whole(&w)) TH_LOG("mode %d step %d", m, step);
			ASSERT_EQ(0, t_wait(pid));
			wb_close(&w);
		}
	}
}

TEST(death_at_each_release_store)
{
	uint32_t modes[2] = { 0, IPCX_MQ_SPSC };
	int m, step;

	for (m = 0; m < 2; m++) {
		for (step = 0; step <= 3; step++) {
			struct timespec dl = t_deadline_ms(5000);
			struct wb w;
			char buf[16];
			pid_t pid;

			wb_open(&w, modes[m]);
			ASSERT_EQ(0, ipcx_mq_send(w.q, "A", 1, 1));
			ASSERT_EQ(0, ipcx_mq_send(w.q, "B", 1, 1));
			pid = fork();
			ASSERT_GE(pid, 0);
			if (pid == 0)
				die_in_release(&w, step);
			t_sleep_ms(20);
			ASSERT_EQ(1, ipcx_mq_timedreceive(w.q, buf, sizeof(buf), NULL, &dl));
			if (step <= 2) {	/* slot not freed: the message stays queued */
				ASSERT_EQ('A', buf[0]) TH_LOG("mode %d step %d", m, step);
				ASSERT_EQ(1, ipcx_mq_tryreceive(w.q, buf, sizeof(buf), NULL));
			}
			ASSERT_EQ('B', buf[0]) TH_LOG("mode %d step %d", m, step);
			ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(w.q, buf, sizeof(buf), NULL));
			ASSERT_TRUE(wb_capacity_whole(&w)) TH_LOG("mode %d step %d", m, step);
			ASSERT_EQ(0, t_wait(pid));
			wb_close(&w);
		}
	}
}

TEST_HARNESS_MAIN
