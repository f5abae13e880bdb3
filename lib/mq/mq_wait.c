// SPDX-License-Identifier: MIT
/*
 * mq_wait.c - queue readiness for event loops: io_uring futex SQEs on a
 * queue's sequence words, futex_waitv descriptions, and a many-queue wait.
 *
 * Receivers sleep on rseq, senders on wseq. A waiter first sets the word's
 * WAITERS bit, then re-checks the queue, then sleeps on the value it saw:
 * the other side changes the word (and wakes) only when that bit is set, so
 * a queue nobody waits on costs its peers no syscall, and a waiter that
 * dies at any point leaves nothing behind but one spare wake-up.
 */
#include <string.h>

#include <ipcx/features.h>
#include <ipcx/uring.h>
#include "mq.h"

static int mq_arm(struct ipcx_mq *q, int writable, uint32_t **word, uint32_t *val)
{
	uint32_t *seq = writable ? &q->h->wseq : &q->h->rseq;
	uint32_t *fw = writable ? &q->h->wseq_fence : &q->h->rseq_fence;
	uint32_t v, gen;
	bool ready, fenced;

	/*
	 * Only the arm and the re-check need fencing publishers: once the
	 * bit is visible, a publisher that tests it later wakes us anyway.
	 */
	fenced = ipcx_mq_fences_begin(fw, &gen);
	v = ipcx_mq_seq_arm(seq);
	ready = writable ? ipcx_mq_writable(q) : ipcx_mq_readable(q);
	fenced &= ipcx_mq_fences_end(fw, gen);
	/*
	 * Without the barrier (or with our count dropped before the re-check
	 * ended) a publisher's store may still have been on its way: say
	 * "look again" rather than let the caller sleep on it.
	 */
	if (ready || !fenced)
		return 1;
	*word = seq;
	*val = v;
	return 0;
}

static int mq_prep(struct ipcx_mq *q, struct io_uring_sqe *sqe, int writable)
{
	uint32_t *w, v;
	int r;

	if (!q || !sqe)
		return -EINVAL;
	if (!(ipcx_features() & IPCX_FEAT_URING_FUTEX))
		return -EOPNOTSUPP;
	r = mq_arm(q, writable, &w, &v);
	if (r)
		return r;
	return ipcx_uring_prep_futex_wait(sqe, w, v);
}

int ipcx_mq_prep_readable(struct ipcx_mq *q, struct io_uring_sqe *sqe)
{
	return mq_prep(q, sqe, 0);
}

int ipcx_mq_prep_writable(struct ipcx_mq *q, struct io_uring_sqe *sqe)
{
	return mq_prep(q, sqe, 1);
}

int ipcx_mq_waitv_fill(struct ipcx_mq *q, struct futex_waitv *w, int writable)
{
	uint32_t *word, v;
	int r;

	if (!q || !w)
		return -EINVAL;
	r = mq_arm(q, writable, &word, &v);
	if (r)
		return r;
	ipcx_futex_waitv_fill(w, word, v);
	return 0;
}

int ipcx_mq_wait_any(struct ipcx_mq *const *qs, unsigned int nr,
		     const struct timespec *abs_mono)
{
	struct futex_waitv v[128];
	unsigned int i;
	uint64_t dln;
	int r;

	if (!qs || nr == 0 || nr > 128 || (abs_mono && !ipcx_timespec_valid(abs_mono)))
		return -EINVAL;
	for (i = 0; i < nr; i++)
		if (!qs[i])
			return -EINVAL;
	if (!(ipcx_features() & IPCX_FEAT_FUTEX_WAITV))
		return -EOPNOTSUPP;
	dln = abs_mono ? (uint64_t)abs_mono->tv_sec * 1000000000ull + (uint64_t)abs_mono->tv_nsec
		       : UINT64_MAX;
	for (;;) {
		struct timespec t;
		uint64_t now, until;

		for (i = 0; i < nr; i++) {
			int tries = 0;

			/*
			 * 1 without a message: the re-check was not covered
			 * by fences (barrier failed, or our count dropped);
			 * arming again is, as fences are on by then.
			 */
			do
				r = ipcx_mq_waitv_fill(qs[i], &v[i], 0);
			while (r == 1 && !ipcx_mq_readable(qs[i]) && ++tries < 4);
			if (r == 1)
				return (int)i;
		}
		/* slices, so a sender that died before waking us is found */
		now = ipcx_now_ns(CLOCK_MONOTONIC);
		if (now >= dln)
			return -ETIMEDOUT;
		until = now + 100000000ull;
		if (until > dln)
			until = dln;
		t.tv_sec = (time_t)(until / 1000000000ull);
		t.tv_nsec = (long)(until % 1000000000ull);
		r = ipcx_futex_waitv(v, nr, &t);
		for (i = 0; i < nr; i++)
			if (ipcx_mq_readable(qs[i]))
				return (int)i;
		if (r == -ETIMEDOUT) {
			for (i = 0; i < nr; i++)
				ipcx_mq_recover(qs[i]);
			continue;
		}
		if (r < 0 && r != -EAGAIN && r != -EINTR)
			return r;
	}
}

int ipcx_mq_prep_link_timeout(struct io_uring_sqe *sqe, const struct __kernel_timespec *ts)
{
	if (!sqe || !ts)
		return -EINVAL;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_LINK_TIMEOUT;
	sqe->fd = -1;
	sqe->addr = (uint64_t)(uintptr_t)ts;
	sqe->len = 1;
	return 0;
}
