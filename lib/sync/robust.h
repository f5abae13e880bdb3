/* SPDX-License-Identifier: MIT */
/*
 * robust.h - private: the calling thread's identity (TID, robust-list head,
 * CPU) and joining/leaving the kernel robust list that libc registered.
 *
 * Co-tenancy with glibc (x86-64, checked at run time): a node is glibc's
 * __pthread_list_t, { prev, next }, and the lock word sits 32 bytes before
 * the node's `next` (the head's futex_offset). Every link (head->next, a
 * node's next and prev) points at a node's `next` field or at the head
 * itself; bit 0 of a forward link marks the node it points to as PI. Like
 * glibc's enqueue/dequeue we update both neighbours (for an empty list,
 * "the node before the head" is the word 8 bytes before it, which glibc
 * reserves for exactly this), and list_op_pending names the node for the
 * whole of each change, so a death between the lock-word CAS and the list
 * update is still seen by the kernel.
 *
 * Only the owning thread touches its list; the kernel reads it when the
 * thread dies. Plain stores in program order plus compiler barriers are
 * therefore enough (the kernel never walks a running thread's list).
 *
 * Used by the mutexes here and by any other lock that wants robust owners.
 */
#ifndef IPCX_SYNC_ROBUST_H
#define IPCX_SYNC_ROBUST_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "sys/sys.h"

struct ipcx_self {
	uint32_t tid;			/* 0: not yet known (or after fork) */
	int ok;				/* 1: the robust head is shareable; -errno otherwise */
	struct ipcx_robust_head *head;
	/*
	 * A condition signalled while this thread held the waiters' mutex:
	 * its wake-up is issued when that mutex is released (cond.c).
	 */
	const void *defer_m;		/* the mutex (NULL: nothing deferred) */
	uint64_t defer_tag;		/* its tag (a release through another mapping) */
	uint32_t *defer_seq;		/* the condition's futex word */
	uint32_t defer_n;		/* wake-ups owed */
};

extern __thread struct ipcx_self ipcx_self_tls __attribute__((tls_model("initial-exec")));

/* Slow path of ipcx_self(): look up TID and head, register the fork hook. */
struct ipcx_self *ipcx_self_init(void);

/*
 * The calling thread's identity; NULL if its robust list cannot be shared
 * (no head registered, or another futex_offset): robust locks then refuse
 * with -EOPNOTSUPP rather than run silently non-robust.
 */
static inline struct ipcx_self *ipcx_self(void)
{
	struct ipcx_self *s = &ipcx_self_tls;

	if (likely(s->tid))
		return s->ok > 0 ? s : NULL;
	return ipcx_self_init();
}

/* Whether the robust list of the calling thread can be shared. */
int ipcx_robust_check(void);

/* CPU the caller runs on now (a load from the rseq area). */
static inline uint32_t ipcx_cpu(void)
{
	return (uint32_t)ipcx_cpu_now();
}

#define ipcx_barrier_compiler() __asm__ __volatile__("" ::: "memory")

/* @node is the address of the node's `next` field; @pi is 0 or 1. */
static inline void ipcx_robust_pending(struct ipcx_self *s, uint64_t *node, uintptr_t pi)
{
	s->head->list_op_pending = (void *)((uintptr_t)node | pi);
	ipcx_barrier_compiler();
}

static inline void ipcx_robust_pending_clear(struct ipcx_self *s)
{
	ipcx_barrier_compiler();
	s->head->list_op_pending = NULL;
}

static inline void ipcx_robust_enqueue(struct ipcx_self *s, uint64_t *node, uintptr_t pi)
{
	struct ipcx_robust_head *h = s->head;
	uintptr_t first = (uintptr_t)h->next;

	/* first's prev (for an empty list: the word before the head) */
	*(uint64_t *)((first & ~(uintptr_t)1) - 8) = (uint64_t)(uintptr_t)node;
	node[0] = first;				/* node->next */
	node[-1] = (uint64_t)(uintptr_t)h;		/* node->prev */
	ipcx_barrier_compiler();
	h->next = (void *)((uintptr_t)node | pi);
}

bool ipcx_robust_dequeue_slow(uint64_t *node);

/*
 * Unlink @node from the calling thread's list. The links sit in shared
 * memory, where a peer may have overwritten them: before writing through
 * them, check that both neighbours point back at @node (prev->next and
 * next->prev), as list debugging does. When they do not (corrupted links,
 * or the node was linked through another mapping of the same memory), the
 * slow path finds the node by walking the list from the thread's own head.
 * Return: true if unlinked; false if the node is not in the list or its
 * links are corrupted, and then nothing was written (a wild link that
 * points at unmapped memory can still fault on a read, but no write ever
 * goes through an unchecked link).
 */
static inline bool ipcx_robust_dequeue(uint64_t *node)
{
	uintptr_t next = (uintptr_t)node[0] & ~(uintptr_t)1;
	uintptr_t prev = (uintptr_t)node[-1] & ~(uintptr_t)1;

	if (unlikely(!next || !prev || ((next | prev) & 7) ||
		     (*(uint64_t *)(next - 8) & ~(uint64_t)1) != (uint64_t)(uintptr_t)node ||
		     (*(uint64_t *)prev & ~(uint64_t)1) != (uint64_t)(uintptr_t)node))
		return ipcx_robust_dequeue_slow(node);
	*(uint64_t *)(next - 8) = node[-1];	/* next->prev */
	*(uint64_t *)prev = node[0];		/* prev->next (keeps next's PI bit) */
	ipcx_barrier_compiler();
	node[0] = 0;
	node[-1] = 0;
	return true;
}

#endif /* IPCX_SYNC_ROBUST_H */
