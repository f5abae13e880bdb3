/* SPDX-License-Identifier: MIT */
/*
 * ipcx/uring.h - io_uring futex operations, filled into the caller's ring.
 *
 * An event loop built on io_uring can wait on an ipcx futex word (a queue's
 * sequence word, for instance) as one more completion beside its sockets.
 * These helpers fill a zeroed or fresh SQE obtained from the caller's own
 * ring (io_uring_get_sqe()); they do not set user_data and do not submit.
 * They work with any io_uring library: ipcx itself does not link liburing.
 *
 * The kernel ops (6.7+) have no timeout of their own: link an
 * IORING_OP_LINK_TIMEOUT, or cancel, where a dead peer could otherwise leave
 * the wait pending forever. A wait whose expected value is already stale
 * completes at once with -EAGAIN.
 */
#ifndef IPCX_URING_H
#define IPCX_URING_H

#include <linux/futex.h>
#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring_sqe;

/**
 * ipcx_uring_prep_futex_wait() - wait until *@uaddr != @expected, or a wake
 * @sqe: SQE from the caller's ring
 * @uaddr: 32-bit futex word in (shared) memory
 * @expected: value the word must still hold for the wait to sleep
 *
 * The completion's res is 0 when woken, -EAGAIN if the word already changed,
 * -ECANCELED when cancelled or timed out by a linked timeout.
 *
 * Return: 0, or -EOPNOTSUPP when the kernel lacks IORING_OP_FUTEX_WAIT
 * (the SQE is then left untouched).
 */
IPCX_API int ipcx_uring_prep_futex_wait(struct io_uring_sqe *sqe,
					const uint32_t *uaddr, uint32_t expected);

/**
 * ipcx_uring_prep_futex_wake() - wake up to @nr waiters of @uaddr
 *
 * Return: 0, or -EOPNOTSUPP as above. The completion's res is the number woken.
 */
IPCX_API int ipcx_uring_prep_futex_wake(struct io_uring_sqe *sqe,
					const uint32_t *uaddr, uint32_t nr);

/**
 * ipcx_futex_waitv_fill() - describe one word of a futex_waitv array
 * @w: array element to fill
 * @uaddr: 32-bit futex word in shared memory
 * @expected: value the word must hold for the wait to sleep
 */
IPCX_API void ipcx_futex_waitv_fill(struct futex_waitv *w, const uint32_t *uaddr,
				    uint32_t expected);

/**
 * ipcx_uring_prep_futex_waitv() - wait on any of @nr words
 * @v: array filled with ipcx_futex_waitv_fill(); must stay valid until the
 *     completion arrives
 * @nr: 1..128 entries
 *
 * The completion's res is the index of the word that woke the wait.
 *
 * Return: 0, -EINVAL for a bad @nr, -EOPNOTSUPP when the kernel lacks
 * IORING_OP_FUTEX_WAITV.
 */
IPCX_API int ipcx_uring_prep_futex_waitv(struct io_uring_sqe *sqe,
					 struct futex_waitv *v, unsigned int nr);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_URING_H */
