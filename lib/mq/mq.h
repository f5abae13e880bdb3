/* SPDX-License-Identifier: MIT */
/*
 * mq.h - private: the process-local queue handle and the helpers shared by
 * mq.c (queue operations) and mq_wait.c (readiness, io_uring).
 */
#ifndef IPCX_MQ_PRIV_H
#define IPCX_MQ_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/membarrier.h>

#include <ipcx/mq.h>
#include "../sys/sys.h"

struct ipcx_mq {
	struct ipcx_mq_header *h;
	uint32_t *free_ring;	/* free_size entries */
	uint32_t *rings;	/* levels * ring_size entries */
	uint8_t *slots;		/* max_msgs * slot_size bytes */
	/* configuration copied and validated at open: never re-read from shm */
	uint32_t max_msgs;
	uint32_t max_size;
	uint32_t slot_size;
	uint32_t levels;
	uint32_t mask;		/* ring_size - 1 */
	uint32_t fmask;		/* free_size - 1 */
	bool spsc;
	unsigned int wait;	/* enum ipcx_mq_wait */
	uint64_t spin_ns;
	/* mapping owned by the handle (NULL for init_at/attach_at memory) */
	void *map;
	size_t map_len;
	int fd;
	bool own_fd;
	uint32_t pubs[2];	/* commits, releases through this handle (fences_idle) */
	uint32_t fseen[2];	/* rseq_fence, wseq_fence as this handle's last idle check left them */
	uint32_t enters;	/* side entries through this handle (CPU note every 64th) */
};

/*
 * Slot header in front of every message's bytes. @seq is the stamp of the
 * send that last filled the slot: its free-ring position + 1, stored after
 * the level tail (see mq_find_next()).
 */
struct ipcx_mq_slot {
	uint32_t len;
	uint32_t prio;
	uint32_t seq;
	uint32_t reserved;
};
_Static_assert(sizeof(struct ipcx_mq_slot) == 16, "ipcx_mq_slot is ABI");

#define MQ_LD(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define MQ_ST(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define MQ_W		IPCX_MQ_WAITERS
/* A level's tail (low half of its tl word). */
#define MQ_TAIL(h, l)	((uint32_t)MQ_LD(&(h)->tl[l]))

/*
 * A full fence (store -> load ordering). GCC's ThreadSanitizer rejects
 * atomic_thread_fence; there a seq_cst read-modify-write stands in for it.
 */
static inline void ipcx_mq_fence(void)
{
#ifdef __SANITIZE_THREAD__
	static uint32_t dummy;

	__atomic_fetch_add(&dummy, 0, __ATOMIC_SEQ_CST);
#elif defined(__x86_64__)
	/*
	 * A locked no-op on the stack orders stores before loads like
	 * mfence, at a fraction of its cost (mfence also waits for
	 * non-temporal stores and clflush, which nothing here uses).
	 */
	__asm__ volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/*
 * May a receiver find a message? Looks at the levels senders have used:
 * their packed tails against the receivers' heads.
 */
static inline bool ipcx_mq_readable(const struct ipcx_mq *q)
{
	uint64_t used = MQ_LD(&q->h->used);

	used &= q->levels == 64 ? ~0ull : (1ull << q->levels) - 1;
	while (used) {
		uint32_t l = 63 - (uint32_t)__builtin_clzll(used);

		if (MQ_TAIL(q->h, l) != MQ_LD(&q->h->rlevel[l].head))
			return true;
		used &= ~(1ull << l);
	}
	return false;
}

static inline bool ipcx_mq_writable(const struct ipcx_mq *q)
{
	return MQ_LD(&q->h->send.pos) != MQ_LD(&q->h->recv_pos);
}

/*
 * Asymmetric fences. A publisher (commit, release) stores the new state and
 * then tests the waiters bit of the other direction; a waiter sets that bit
 * and then re-checks the state. Each needs its store ordered before its
 * load, but a full fence in every commit and release stalls the publisher
 * until its stores reach the peer, which on a busy queue is most of the
 * cost of a message. So publishers fence only once a waiter of that
 * direction has said it may sleep (the queue's sticky rseq_fence /
 * wseq_fence flag). The first such waiter sets the flag and issues
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full barrier on
 * every CPU running a registered process: a publisher that read the flag
 * clear did so before that barrier, so its earlier store is visible when
 * the waiter re-checks; one that reads it set fences. Processes whose
 * registration failed (ipcx_mq_mb < 0) always fence.
 */
extern int ipcx_mq_mb;	/* 1: registered for GLOBAL_EXPEDITED, -1: cannot be, 0: not yet */

/*
 * The fence word of a direction (rseq_fence, wseq_fence): bits 0-1 the
 * state (0 publishers skip the fence, 1 a barrier is being issued, 2
 * publishers fence), bit 2 "a waiter came since the last idle check",
 * bits 3-15 the waiters between arming and re-checking, bits 16-31 a
 * generation, bumped when a publisher drops counts that outlived a whole
 * idle period (a waiter killed between arming and re-checking). An 8192nd
 * waiter counted at once would carry into the generation: every waiter
 * counted then finds its generation gone and looks again (safe, and far
 * beyond any real number of threads in that window).
 */
#define MQ_FENCE_STATE	3u
#define MQ_FENCE_ON	2u
#define MQ_FENCE_RECENT	4u
#define MQ_FENCE_ONE	8u
#define MQ_FENCE_COUNT	0xfff8u
#define MQ_FENCE_GEN1	0x10000u
#define MQ_FENCE_GEN	0xffff0000u
/* Publishes between a publisher's attempts to turn fences off again. */
#define MQ_FENCE_IDLE	256u

static inline void ipcx_mq_pub_fence(const uint32_t *fw)
{
	/*
	 * Acquire: on weakly ordered CPUs the test of the waiters bit that
	 * follows must not be satisfied before this load (x86 keeps loads in
	 * order anyway).
	 */
	if (__atomic_load_n(&ipcx_mq_mb, __ATOMIC_RELAXED) != 1 ||
	    (__atomic_load_n(fw, __ATOMIC_ACQUIRE) & MQ_FENCE_STATE))
		ipcx_mq_fence();
	else
		__asm__ volatile("" ::: "memory");
}

/*
 * A waiter is about to arm and re-check: publishers must fence until
 * ipcx_mq_fences_end(). If they may not have been fencing, issue the
 * barrier (once state 2 is reached, later waiters skip it). *@gen receives
 * the generation the waiter was counted in, for ipcx_mq_fences_end().
 * Return: false if the barrier could not be issued (membarrier unavailable
 * or failing): fences are on from now (state 2) but a publisher may have
 * skipped its fence just before, so the caller must not sleep long on this
 * re-check.
 */
static inline void ipcx_mq_fences_promote(uint32_t *fw, uint32_t gen);

static inline bool ipcx_mq_fences_begin(uint32_t *fw, uint32_t *gen)
{
	uint32_t v = __atomic_add_fetch(fw, MQ_FENCE_ONE, __ATOMIC_SEQ_CST);
	bool ok;

	*gen = v & MQ_FENCE_GEN;
	if (!(v & MQ_FENCE_RECENT))
		__atomic_fetch_or(fw, MQ_FENCE_RECENT, __ATOMIC_RELAXED);
	if ((v & MQ_FENCE_STATE) == MQ_FENCE_ON)
		return true;
	while (!(v & MQ_FENCE_STATE) &&
	       !__atomic_compare_exchange_n(fw, &v, v | 1, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED))
		;
	ok = ipcx_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
	ipcx_mq_fences_promote(fw, *gen);
	return ok;
}

/*
 * After a waiter's barrier: state 1 becomes 2. State 2 must mean "a barrier
 * completed since the state last left 0", so only a waiter still counted
 * in the generation it counted in promotes (a dropped one's barrier may
 * predate a later 1).
 */
static inline void ipcx_mq_fences_promote(uint32_t *fw, uint32_t gen)
{
	uint32_t v = __atomic_load_n(fw, __ATOMIC_RELAXED);

	while ((v & MQ_FENCE_STATE) == 1 && (v & MQ_FENCE_GEN) == gen &&
	       !__atomic_compare_exchange_n(fw, &v, (v & ~MQ_FENCE_STATE) | MQ_FENCE_ON, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
}

/*
 * Count the waiter out. Return: false if its count was dropped meanwhile
 * (it stayed between arm and re-check for a whole idle period, say
 * preempted): fences may have stopped before its re-check, which therefore
 * proves nothing; the caller looks again from ipcx_mq_fences_begin().
 */
static inline bool ipcx_mq_fences_end(uint32_t *fw, uint32_t gen)
{
	uint32_t v = __atomic_load_n(fw, __ATOMIC_RELAXED);

	do {
		if ((v & MQ_FENCE_GEN) != gen || !(v & MQ_FENCE_COUNT))
			return false;
	} while (!__atomic_compare_exchange_n(fw, &v, v - MQ_FENCE_ONE, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	return true;
}

/*
 * A publisher, every MQ_FENCE_IDLE publishes through its handle: fences
 * stop once the word has stayed "fencing, nobody counted" for one of the
 * handle's whole periods (a waiter arriving later finds state 0 and issues
 * the barrier itself). A waiter arriving only clears the "recent" mark, so
 * a peer that sleeps often does not pay a membarrier per sleep. Counts
 * that stayed unchanged, with no waiter arriving, for a whole period of
 * this handle belong to waiters killed between arming and re-checking (or
 * stalled there, who then look again: see ipcx_mq_fences_end): they are
 * dropped under the next generation, the state kept as it is (a 1 goes to
 * 0 at a later check; a 2 stays on one more period). "Unchanged for a
 * whole period of this handle" (@seen: the word this handle left at its
 * last check) keeps two handles checking a moment apart from dropping a
 * live waiter's count. Only exact words are replaced (CAS).
 */
static inline void ipcx_mq_fences_idle(uint32_t *fw, uint32_t *pubs, uint32_t *seen)
{
	uint32_t n = __atomic_load_n(pubs, __ATOMIC_RELAXED) + 1, v, nv;

	__atomic_store_n(pubs, n, __ATOMIC_RELAXED);
	if (likely(n % MQ_FENCE_IDLE))
		return;
	v = __atomic_load_n(fw, __ATOMIC_RELAXED);
	if (v & MQ_FENCE_RECENT)
		nv = v & ~MQ_FENCE_RECENT;
	else if (v != __atomic_load_n(seen, __ATOMIC_RELAXED) ||
		 !(v & (MQ_FENCE_STATE | MQ_FENCE_COUNT)))
		nv = v;
	else if (v & MQ_FENCE_COUNT)
		nv = ((v & MQ_FENCE_GEN) + MQ_FENCE_GEN1) | (v & MQ_FENCE_STATE);
	else
		nv = v & MQ_FENCE_GEN;
	if (nv != v && !__atomic_compare_exchange_n(fw, &v, nv, false, __ATOMIC_SEQ_CST,
						    __ATOMIC_RELAXED))
		nv = v;		/* changed meanwhile: remember that instead */
	__atomic_store_n(seen, nv, __ATOMIC_RELAXED);
}

static inline uint32_t ipcx_mq_seq_arm(uint32_t *seq)
{
	uint32_t v = MQ_LD(seq);

	while (!(v & MQ_W)) {
		if (__atomic_compare_exchange_n(seq, &v, v | MQ_W, false,
						__ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
			return v | MQ_W;
	}
	ipcx_mq_fence();
	return v;
}

/*
 * Change @seq and wake everybody sleeping on it, if anybody said it
 * sleeps (@force: even if not). Clearing the flag and waking all is what
 * keeps a dead or slow waiter from ever stranding the others.
 */
static inline void ipcx_mq_seq_wake(uint32_t *seq, bool force)
{
	uint32_t v = MQ_LD(seq);

	while (force || (v & MQ_W)) {
		uint32_t n = ((v & ~MQ_W) + 1) & ~MQ_W;

		if (__atomic_compare_exchange_n(seq, &v, n, false, __ATOMIC_SEQ_CST,
						__ATOMIC_ACQUIRE)) {
			ipcx_futex_wake(seq, 0x7fffffff, true);
			return;
		}
	}
}

#endif /* IPCX_MQ_PRIV_H */
