// SPDX-License-Identifier: MIT
/*
 * peers_mq.c - the queue workload drivers (used by the C and Boost rows) and
 * the POSIX mq, pipe, eventfd and floor rows of mq_throughput_64,
 * mq_throughput_64_prio, mq_throughput_1k and mq_rtt_64.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench_util.h"
#include "peers.h"

#define MSG_K	0x9e3779b97f4a7c15ull
#define TP_BATCH 1024u

/* ---- messages: sequence number at both ends ----------------------------- */

static void msg_fill(uint64_t *m, size_t len, uint64_t seq)
{
	m[0] = seq;
	m[len / 8 - 1] = (seq * MSG_K) ^ len;
}

static int msg_check(const uint64_t *m, size_t len, uint64_t *seq)
{
	*seq = m[0];
	return m[len / 8 - 1] == ((m[0] * MSG_K) ^ len) ? 0 : -1;
}

static unsigned msg_prio(uint64_t seq)
{
	return (unsigned)((seq * MSG_K) >> 59);	/* 0..31 */
}

/* ---- drivers ------------------------------------------------------------ */

struct mq_job {
	const struct mq_transport *t;
	void *ctx;
	size_t msgsize;
	bool prio;
	uint64_t warm, total;
	struct bench_run *run;
	double ops_per_s;
};

static int tp_side(void *arg, int side)
{
	struct mq_job *j = arg;
	uint64_t buf[1024 / 8] = { 0 };
	uint64_t i, seq, sum = 0, xr = 0, t0 = 0, tb = 0;
	unsigned prio;

	if (side == 1) {		/* producer */
		for (i = 0; i < j->total; i++) {
			msg_fill(buf, j->msgsize, i);
			if (j->t->send(j->ctx, 0, buf, j->msgsize, j->prio ? msg_prio(i) : 0))
				return -1;
		}
		return 0;
	}
	for (i = 0; i < j->total; i++) {	/* consumer */
		if (i == j->warm)
			tb = t0 = bench_now_ns();
		if (j->t->recv(j->ctx, 0, buf, j->msgsize, &prio))
			return -1;
		if (msg_check(buf, j->msgsize, &seq))
			return bench_fail(NULL, "message %llu: torn or corrupt payload",
					  (unsigned long long)i);
		if (j->prio) {
			if (seq >= j->total || prio != msg_prio(seq))
				return bench_fail(NULL, "message seq %llu: bad seq or priority %u",
						  (unsigned long long)seq, prio);
			sum += seq;
			xr ^= seq * MSG_K;
		} else if (seq != i) {
			return bench_fail(NULL, "message %llu arrived as %llu: lost or reordered",
					  (unsigned long long)i, (unsigned long long)seq);
		}
		if (i >= j->warm && (i - j->warm + 1) % TP_BATCH == 0) {
			uint64_t now = bench_now_ns();

			bench_sample(j->run, now - tb);
			tb = now;
		}
	}
	j->ops_per_s = (double)(j->total - j->warm) * 1e9 / (double)(bench_now_ns() - t0);
	if (j->prio) {
		uint64_t want = j->total * (j->total - 1) / 2, wx = 0;

		for (i = 0; i < j->total; i++)
			wx ^= i * MSG_K;
		if (sum != want || xr != wx)
			return bench_fail(NULL, "priority run: lost or duplicated messages");
	}
	return 0;
}

int mq_drive_throughput(const struct bench_env *env, struct bench_run *run,
			const struct mq_transport *t, void *ctx, size_t msgsize, bool prio)
{
	struct mq_job j = { .t = t, .ctx = ctx, .msgsize = msgsize, .prio = prio,
			    .warm = bench_warmup(env), .run = run };
	int ret;

	if (msgsize < 16 || msgsize > 1024 || msgsize % 8)
		return bench_fail(run, "bad message size");
	j.total = j.warm + env->iters;
	if (t->create(ctx, 1, MQ_CAPACITY, msgsize, run))
		return -1;
	run->per_sample = TP_BATCH;
	ret = bench_two_procs(env, tp_side, &j);
	t->destroy(ctx);
	if (ret)
		return bench_fail(run, "queue run failed");
	run->ops_per_s = j.ops_per_s;
	return 0;
}

static int rtt_side(void *arg, int side)
{
	struct mq_job *j = arg;
	uint64_t buf[1024 / 8] = { 0 };
	uint64_t i, seq;
	unsigned prio;

	for (i = 0; i < j->total; i++) {
		uint64_t t0 = bench_now_ns();

		if (side == 0) {
			msg_fill(buf, j->msgsize, i);
			if (j->t->send(j->ctx, 0, buf, j->msgsize, 0))
				return -1;
		}
		if (j->t->recv(j->ctx, side == 0, buf, j->msgsize, &prio))
			return -1;
		if (msg_check(buf, j->msgsize, &seq) || seq != i)
			return bench_fail(NULL, "round trip %llu: got seq %llu or corrupt payload",
					  (unsigned long long)i, (unsigned long long)seq);
		if (side == 1) {
			if (j->t->send(j->ctx, 1, buf, j->msgsize, 0))
				return -1;
		} else if (i >= j->warm) {
			bench_sample(j->run, bench_now_ns() - t0);
		}
	}
	return 0;
}

int mq_drive_rtt(const struct bench_env *env, struct bench_run *run,
		 const struct mq_transport *t, void *ctx, size_t msgsize)
{
	struct mq_job j = { .t = t, .ctx = ctx, .msgsize = msgsize,
			    .warm = bench_warmup(env), .run = run };
	int ret;

	j.total = j.warm + env->iters;
	if (t->create(ctx, 2, MQ_CAPACITY, msgsize, run))
		return -1;
	ret = bench_two_procs(env, rtt_side, &j);
	t->destroy(ctx);
	return ret ? bench_fail(run, "round trips failed") : 0;
}

/* ---- POSIX mq_* ---------------------------------------------------------- */

struct pmq {
	mqd_t q[2];
	int nq;
	size_t msgsize;
};

static mqd_t pmq_try(const char *name, unsigned cap, size_t msgsize)
{
	struct mq_attr a = { .mq_maxmsg = cap, .mq_msgsize = (long)msgsize };
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &a);

	if (q != (mqd_t)-1)
		mq_unlink(name);	/* the descriptors keep it alive; no name to leak */
	return q;
}

static int pmq_create(void *vctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run)
{
	struct pmq *c = vctx;
	char name[80], tag[16];
	unsigned lo, hi, got = cap;
	int i, err = 0;

	bench_mq_raise_msg_max(cap);
	c->nq = nq;
	c->msgsize = msgsize;
	for (i = 0; i < nq; i++) {
		snprintf(tag, sizeof(tag), "mq%d", i);
		bench_name(name, sizeof(name), tag, 1);
		bench_track_mq(name);
		c->q[i] = pmq_try(name, got, msgsize);
		if (c->q[i] != (mqd_t)-1)
			continue;
		err = errno;
		if (err != EMFILE && err != EINVAL && err != ENOMEM)
			goto fail;
		/* the largest capacity the limits allow */
		lo = 1;
		hi = got - 1;
		while (lo < hi) {
			unsigned mid = (lo + hi + 1) / 2;
			mqd_t q = pmq_try(name, mid, msgsize);

			if (q == (mqd_t)-1) {
				hi = mid - 1;
			} else {
				mq_close(q);
				lo = mid;
			}
		}
		got = lo;
		c->q[i] = pmq_try(name, got, msgsize);
		if (c->q[i] == (mqd_t)-1) {
			err = errno;
			goto fail;
		}
		if (i == 1) {
			/* queue 0 was made bigger than queue 1 could be: match them */
			mq_close(c->q[0]);
			bench_name(name, sizeof(name), "mq0", 1);
			c->q[0] = pmq_try(name, got, msgsize);
			if (c->q[0] == (mqd_t)-1) {
				err = errno;
				mq_close(c->q[1]);
				i = 0;
				goto fail;
			}
		}
	}
	if (got < cap)
		bench_note(run, "capacity %u (%s)", got,
			   err == EINVAL ? "msg_max" : "RLIMIT_MSGQUEUE");
	return 0;
fail:
	while (--i >= 0)
		mq_close(c->q[i]);
	return bench_fail(run, "mq_open: %s", strerror(err));
}

static int pmq_send(void *vctx, int q, const void *msg, size_t len, unsigned prio)
{
	struct pmq *c = vctx;

	while (mq_send(c->q[q], msg, len, prio))
		if (errno != EINTR)
			return bench_fail(NULL, "mq_send: %s", strerror(errno));
	return 0;
}

static int pmq_recv(void *vctx, int q, void *msg, size_t len, unsigned *prio)
{
	struct pmq *c = vctx;
	ssize_t n;

	while ((n = mq_receive(c->q[q], msg, c->msgsize, prio)) < 0)
		if (errno != EINTR)
			return bench_fail(NULL, "mq_receive: %s", strerror(errno));
	if ((size_t)n != len)
		return bench_fail(NULL, "mq_receive: %zd bytes, want %zu", n, len);
	return 0;
}

static void pmq_destroy(void *vctx)
{
	struct pmq *c = vctx;
	int i;

	for (i = 0; i < c->nq; i++)
		mq_close(c->q[i]);
}

static const struct mq_transport pmq_tp = { pmq_create, pmq_send, pmq_recv, pmq_destroy };

/* ---- pipe ------------------------------------------------------------------ */

struct pipes {
	int fd[2][2];
	int nq;
};

static int pipe_create(void *vctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run)
{
	struct pipes *c = vctx;
	int i, sz = 0;

	c->nq = nq;
	for (i = 0; i < nq; i++) {
		if (pipe2(c->fd[i], O_CLOEXEC)) {
			while (--i >= 0) {
				close(c->fd[i][0]);
				close(c->fd[i][1]);
			}
			return bench_fail(run, "pipe: %s", strerror(errno));
		}
		sz = fcntl(c->fd[i][1], F_SETPIPE_SZ, (int)(cap * msgsize));
		if (sz < 0)
			sz = fcntl(c->fd[i][1], F_GETPIPE_SZ);
	}
	if (sz > 0 && (size_t)sz / msgsize != cap)
		bench_note(run, "capacity %zu (pipe size %d)", (size_t)sz / msgsize, sz);
	return 0;
}

static int pipe_send(void *vctx, int q, const void *msg, size_t len, unsigned prio)
{
	struct pipes *c = vctx;
	const char *p = msg;
	ssize_t n;

	(void)prio;
	while (len) {
		n = write(c->fd[q][1], p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bench_fail(NULL, "pipe write: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int pipe_recv(void *vctx, int q, void *msg, size_t len, unsigned *prio)
{
	struct pipes *c = vctx;
	char *p = msg;
	ssize_t n;

	*prio = 0;
	while (len) {
		n = read(c->fd[q][0], p, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return bench_fail(NULL, "pipe read: %s", n ? strerror(errno) : "EOF");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void pipe_destroy(void *vctx)
{
	struct pipes *c = vctx;
	int i;

	for (i = 0; i < c->nq; i++) {
		close(c->fd[i][0]);
		close(c->fd[i][1]);
	}
}

static const struct mq_transport pipe_tp = { pipe_create, pipe_send, pipe_recv, pipe_destroy };

/* ---- one shared slot per direction + eventfd or raw futex (round trips) ---- */

struct slot_shared {
	_Alignas(64) uint32_t seq[2][16];	/* [q][0]: futex word, own cache line */
	_Alignas(64) uint8_t slot[2][1024];
};

struct slots {
	struct slot_shared *s;
	int efd[2];
	bool futex;
	uint32_t sent[2], seen[2];	/* process-local after fork */
};

static int slot_create(void *vctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run)
{
	struct slots *c = vctx;
	int i;

	(void)cap;
	(void)msgsize;
	if (nq != 2)
		return bench_fail(run, "slot transport is for round trips only");
	c->s = bench_shared(sizeof(*c->s));
	if (!c->s)
		return bench_fail(run, "mmap");
	c->efd[0] = c->efd[1] = -1;
	for (i = 0; !c->futex && i < 2; i++) {
		c->efd[i] = eventfd(0, EFD_CLOEXEC);
		if (c->efd[i] < 0)
			return bench_fail(run, "eventfd: %s", strerror(errno));
	}
	return 0;
}

static int slot_send(void *vctx, int q, const void *msg, size_t len, unsigned prio)
{
	struct slots *c = vctx;
	uint64_t one = 1;

	(void)prio;
	memcpy(c->s->slot[q], msg, len);
	if (c->futex) {
		__atomic_store_n(&c->s->seq[q][0], ++c->sent[q], __ATOMIC_RELEASE);
		bench_futex_wake(&c->s->seq[q][0], 1);
		return 0;
	}
	while (write(c->efd[q], &one, sizeof(one)) != sizeof(one))
		if (errno != EINTR)
			return bench_fail(NULL, "eventfd write: %s", strerror(errno));
	return 0;
}

static int slot_recv(void *vctx, int q, void *msg, size_t len, unsigned *prio)
{
	struct slots *c = vctx;
	uint32_t v, want = c->seen[q] + 1;
	uint64_t cnt;

	*prio = 0;
	if (c->futex) {
		while ((v = __atomic_load_n(&c->s->seq[q][0], __ATOMIC_ACQUIRE)) != want) {
			if (v != want - 1)
				return bench_fail(NULL, "futex slot: seq %u, want %u", v, want);
			bench_futex_wait(&c->s->seq[q][0], v);
		}
	} else {
		while (read(c->efd[q], &cnt, sizeof(cnt)) != sizeof(cnt))
			if (errno != EINTR)
				return bench_fail(NULL, "eventfd read: %s", strerror(errno));
		if (cnt != 1)
			return bench_fail(NULL, "eventfd count %llu, want 1",
					  (unsigned long long)cnt);
	}
	c->seen[q] = want;
	memcpy(msg, c->s->slot[q], len);
	return 0;
}

static void slot_destroy(void *vctx)
{
	struct slots *c = vctx;

	if (c->efd[0] >= 0)
		close(c->efd[0]);
	if (c->efd[1] >= 0)
		close(c->efd[1]);
	bench_shared_free(c->s, sizeof(*c->s));
}

static const struct mq_transport slot_tp = { slot_create, slot_send, slot_recv, slot_destroy };

/* ---- floor_spin: busy-poll SPSC ring ----------------------------------------- */

struct ring {
	_Alignas(64) _Atomic uint64_t head;	/* written by the producer */
	_Alignas(64) _Atomic uint64_t tail;	/* written by the consumer */
	_Alignas(64) uint8_t data[];
};

struct rings {
	struct ring *r[2];
	size_t len, msgsize;
	unsigned cap;
	int nq;
	uint64_t head_seen[2], tail_seen[2];	/* process-local caches */
};

static void spin_wait_step(unsigned *spins)
{
	if (++*spins % 4096 == 0)
		sched_yield();	/* the peer may need this CPU */
	else
		bench_relax();
}

static int ring_create(void *vctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run)
{
	struct rings *c = vctx;
	int i;

	c->nq = nq;
	c->cap = cap;
	c->msgsize = msgsize;
	c->len = sizeof(struct ring) + (size_t)cap * msgsize;
	for (i = 0; i < nq; i++) {
		c->r[i] = bench_shared(c->len);
		if (!c->r[i]) {
			while (--i >= 0)
				bench_shared_free(c->r[i], c->len);
			return bench_fail(run, "mmap");
		}
	}
	return 0;
}

static int ring_send(void *vctx, int q, const void *msg, size_t len, unsigned prio)
{
	struct rings *c = vctx;
	struct ring *r = c->r[q];
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	unsigned spins = 0;

	(void)prio;
	while (h - c->tail_seen[q] >= c->cap) {
		c->tail_seen[q] = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h - c->tail_seen[q] >= c->cap)
			spin_wait_step(&spins);
	}
	memcpy(r->data + (h % c->cap) * c->msgsize, msg, len);
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return 0;
}

static int ring_recv(void *vctx, int q, void *msg, size_t len, unsigned *prio)
{
	struct rings *c = vctx;
	struct ring *r = c->r[q];
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	unsigned spins = 0;

	*prio = 0;
	while (t == c->head_seen[q]) {
		c->head_seen[q] = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t == c->head_seen[q])
			spin_wait_step(&spins);
	}
	memcpy(msg, r->data + (t % c->cap) * c->msgsize, len);
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return 0;
}

static void ring_destroy(void *vctx)
{
	struct rings *c = vctx;
	int i;

	for (i = 0; i < c->nq; i++)
		bench_shared_free(c->r[i], c->len);
}

static const struct mq_transport ring_tp = { ring_create, ring_send, ring_recv, ring_destroy };

/* ---- rows ------------------------------------------------------------------ */

#define TP_ROWS(TP, CTX, IMPL)							\
static int tp64_##TP(const struct bench_env *env, struct bench_run *run)		\
{											\
	struct CTX c = { 0 };								\
	return mq_drive_throughput(env, run, &TP##_tp, &c, 64, false);			\
}											\
BENCH_CASE("mq_throughput_64", IMPL, "ns/msg", tp64_##TP);				\
static int tp1k_##TP(const struct bench_env *env, struct bench_run *run)		\
{											\
	struct CTX c = { 0 };								\
	return mq_drive_throughput(env, run, &TP##_tp, &c, 1024, false);		\
}											\
BENCH_CASE("mq_throughput_1k", IMPL, "ns/msg", tp1k_##TP);				\
static int rtt_##TP(const struct bench_env *env, struct bench_run *run)		\
{											\
	struct CTX c = { 0 };								\
	return mq_drive_rtt(env, run, &TP##_tp, &c, 64);				\
}											\
BENCH_CASE("mq_rtt_64", IMPL, "ns/rtt", rtt_##TP)

TP_ROWS(pmq, pmq, "posix");
TP_ROWS(pipe, pipes, "pipe");
TP_ROWS(ring, rings, "floor_spin");

static int tpprio_posix(const struct bench_env *env, struct bench_run *run)
{
	struct pmq c = { 0 };

	return mq_drive_throughput(env, run, &pmq_tp, &c, 64, true);
}
BENCH_CASE("mq_throughput_64_prio", "posix", "ns/msg", tpprio_posix);

static int rtt_eventfd(const struct bench_env *env, struct bench_run *run)
{
	struct slots c = { .futex = false };
	int ret = mq_drive_rtt(env, run, &slot_tp, &c, 64);

	if (!ret)
		bench_note(run, "64 B in a shared slot, eventfd wake-up");
	return ret;
}
BENCH_CASE("mq_rtt_64", "eventfd", "ns/rtt", rtt_eventfd);

static int rtt_futex(const struct bench_env *env, struct bench_run *run)
{
	struct slots c = { .futex = true };
	int ret = mq_drive_rtt(env, run, &slot_tp, &c, 64);

	if (!ret)
		bench_note(run, "64 B in a shared slot, futex wake-up");
	return ret;
}
BENCH_CASE("mq_rtt_64", "floor_futex", "ns/rtt", rtt_futex);
