// SPDX-License-Identifier: MIT
/*
 * uring.c - fill io_uring futex SQEs (IORING_OP_FUTEX_WAIT/WAKE/WAITV).
 *
 * SQE fields for the futex ops (kernel io_uring/futex.c):
 *   fd       futex2 flags: FUTEX2_SIZE_U32, without FUTEX2_PRIVATE because
 *            our words live in shared memory
 *   addr     the word (or the futex_waitv array for WAITV)
 *   off      expected value (WAIT) / number to wake (WAKE)
 *   addr3    bitset mask; must be non-zero
 *   len      number of entries (WAITV)
 *   rw_flags futex_flags: must be 0
 */
#include <string.h>

#include <ipcx/features.h>
#include <ipcx/uring.h>
#include "sys.h"

static void prep_futex(struct io_uring_sqe *sqe, uint8_t op, const void *addr,
		       uint64_t off)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = FUTEX2_SIZE_U32;
	sqe->addr = (uint64_t)(uintptr_t)addr;
	sqe->off = off;
	sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

int ipcx_uring_prep_futex_wait(struct io_uring_sqe *sqe, const uint32_t *uaddr,
			       uint32_t expected)
{
	if (!sqe || !uaddr)
		return -EINVAL;
	if (!(ipcx_features() & IPCX_FEAT_URING_FUTEX))
		return -EOPNOTSUPP;
	prep_futex(sqe, IPCX_IORING_OP_FUTEX_WAIT, uaddr, expected);
	return 0;
}

int ipcx_uring_prep_futex_wake(struct io_uring_sqe *sqe, const uint32_t *uaddr,
			       uint32_t nr)
{
	if (!sqe || !uaddr)
		return -EINVAL;
	if (!(ipcx_features() & IPCX_FEAT_URING_FUTEX))
		return -EOPNOTSUPP;
	prep_futex(sqe, IPCX_IORING_OP_FUTEX_WAKE, uaddr, nr);
	return 0;
}

void ipcx_futex_waitv_fill(struct futex_waitv *w, const uint32_t *uaddr,
			   uint32_t expected)
{
	memset(w, 0, sizeof(*w));
	w->val = expected;
	w->uaddr = (uint64_t)(uintptr_t)uaddr;
	w->flags = FUTEX_32;
}

int ipcx_uring_prep_futex_waitv(struct io_uring_sqe *sqe, struct futex_waitv *v,
				unsigned int nr)
{
	if (!sqe || !v || nr == 0 || nr > 128)
		return -EINVAL;
	if (!(ipcx_features() & IPCX_FEAT_URING_FUTEXV))
		return -EOPNOTSUPP;
	/* WAITV takes its flags per entry: fd and addr3 must stay zero. */
	prep_futex(sqe, IPCX_IORING_OP_FUTEX_WAITV, v, 0);
	sqe->fd = 0;
	sqe->addr3 = 0;
	sqe->len = nr;
	return 0;
}
