/* SPDX-License-Identifier: MIT */
/*
 * sync_priv.h - private helpers of lib/sync: option structs, the spin
 * policy, and capped futex sleeps.
 */
#ifndef IPCX_SYNC_PRIV_H
#define IPCX_SYNC_PRIV_H

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <ipcx/features.h>
#include <ipcx/sync.h>

#include "sys/sys.h"
#include "robust.h"

#define IPCX_MUTEX_MAGIC	0x58544d49u	/* "IMTX" */
#define IPCX_COND_MAGIC		0x444e4349u	/* "ICND" */
#define IPCX_SEM_MAGIC		0x324d5349u	/* "ISM2": count, generation and waiters in one word */
#define IPCX_BARRIER_MAGIC	0x32524249u	/* "IBR2": round and arrivals in one word */

#define IPCX_LOAD(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define IPCX_LOAD_RELAXED(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define IPCX_STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define IPCX_STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define IPCX_CAS(p, expp, v)	\
	__atomic_compare_exchange_n((p), (expp), (v), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/*
 * Extensible options: 0 if @opts (whose first member is its size) can be
 * read as a struct of @known bytes; -EINVAL for a size smaller than the
 * size field; -E2BIG for a larger struct with a non-zero unknown tail.
 */
static inline int ipcx_opts_check(const void *opts, size_t known)
{
	const unsigned char *p = opts;
	size_t sz, i;

	if (!opts)
		return 0;
	memcpy(&sz, opts, sizeof(sz));
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (i = known; i < sz; i++)
		if (p[i])
			return -E2BIG;
	return 0;
}

/* A field of a caller's opts, or @def when absent or beyond its size. */
#define IPCX_OPT(opts, field, def)					\
	((opts) && offsetof(__typeof__(*(opts)), field) +		\
	 sizeof((opts)->field) <= (opts)->sz ? (opts)->field : (def))

static inline uint32_t ipcx_spin_setting(uint32_t flags, uint32_t spin_ns)
{
	if (flags & IPCX_SYNC_BLOCK)
		return 0;
	return spin_ns ? spin_ns : IPCX_SPIN_DEFAULT_NS;
}

int ipcx_ncpus(void);

/*
 * How long to spin before sleeping: nothing when the object says block,
 * on a single CPU, or when the peer we wait for last ran on our CPU (it
 * cannot run while we spin there); less after repeated failed spins.
 */
static inline uint32_t ipcx_spin_budget(uint32_t spin_ns, const uint32_t *fail,
					uint32_t peer_cpu)
{
	uint32_t f;

	if (!spin_ns || ipcx_ncpus() < 2 || peer_cpu == ipcx_cpu())
		return 0;
	f = IPCX_LOAD_RELAXED(fail);
	return spin_ns >> (f < 4 ? f : 4);
}

static inline void ipcx_spin_account(uint32_t *fail, bool ok)
{
	uint32_t f = IPCX_LOAD_RELAXED(fail);

	if (ok) {
		if (f)
			IPCX_STORE_RELAXED(fail, 0);
	} else if (f < 16) {
		IPCX_STORE_RELAXED(fail, f + 1);
	}
}

static inline void ipcx_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	ipcx_barrier_compiler();
#endif
}

/*
 * Spin while @cond holds (re-evaluated each time), for at most @budget_ns.
 * Yields true if it stopped holding, false if the budget ran out.
 */
#define IPCX_SPIN_WHILE(cond, budget_ns) ({					\
	uint64_t end_ = ipcx_now_ns(CLOCK_MONOTONIC) + (budget_ns);		\
	unsigned int i_;							\
	bool moved_;								\
										\
	for (i_ = 1;; i_++) {							\
		if (!(cond)) {							\
			moved_ = true;						\
			break;							\
		}								\
		ipcx_cpu_relax();						\
		if (!(i_ & 31) && ipcx_now_ns(CLOCK_MONOTONIC) >= end_) {	\
			moved_ = false;						\
			break;							\
		}								\
	}									\
	moved_;									\
})

/* Spin while (*w & mask) == val, for at most @budget_ns (IPCX_SPIN_WHILE). */
static inline bool ipcx_spin_while(const uint32_t *w, uint32_t mask, uint32_t val,
				   uint32_t budget_ns)
{
	return IPCX_SPIN_WHILE((IPCX_LOAD_RELAXED(w) & mask) == val, budget_ns);
}

/* The low half of a 64-bit word, whose other half changes with it: a futex word. */
static inline uint32_t *ipcx_low_half(uint64_t *w)
{
	return (uint32_t *)(void *)w + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 1 : 0);
}

/*
 * futex_wait on a shared word until @abs_mono (NULL: forever).
 * Return: 0 (woken, maybe spuriously: re-check), -EAGAIN (the word
 * changed), -ETIMEDOUT (the deadline passed), -EFAULT.
 *
 * For the robust mutex only: a mutex waiter woken and killed before it
 * takes the lock is covered by the kernel, since its list_op_pending names
 * the mutex, whose owner TID is then 0, and the kernel's death handling
 * wakes the next waiter.
 */
static inline int ipcx_wait(uint32_t *w, uint32_t val, const struct timespec *abs_mono)
{
	int ret = ipcx_futex_wait(w, val, abs_mono, true);

	return ret == -EINTR ? 0 : ret;
}

/*
 * Longest sleep of a semaphore, condition or barrier waiter before it looks
 * at the word again by itself. Nothing in the kernel wakes such a sleeper
 * when the process meant to wake it dies (a waker killed between its update
 * and its futex_wake, or a woken waiter killed before it consumed the
 * wake-up): the period bounds that stall.
 */
#define IPCX_RECHECK_NS		(100ull * 1000000ull)

/*
 * Like ipcx_wait(), but never sleeps longer than IPCX_RECHECK_NS.
 * Return: 0 (woken, spuriously or by the period: re-check), -EAGAIN (the
 * word changed), -ETIMEDOUT (the caller's deadline passed), -EFAULT.
 *
 * Without a deadline this is one relative FUTEX_WAIT: no clock read; with
 * one, one vDSO clock read per sleep picks the earlier of the two.
 */
static inline int ipcx_wait_capped(uint32_t *w, uint32_t val, const struct timespec *abs_mono)
{
	struct timespec ts;
	int ret;

	if (abs_mono) {
		uint64_t cap = ipcx_now_ns(CLOCK_MONOTONIC) + IPCX_RECHECK_NS;

		if (ipcx_deadline_ns(abs_mono) <= cap)
			return ipcx_wait(w, val, abs_mono);
		ts.tv_sec = (time_t)(cap / 1000000000ull);
		ts.tv_nsec = (long)(cap % 1000000000ull);
		ret = ipcx_futex_wait(w, val, &ts, true);
	} else {
		ts.tv_sec = (time_t)(IPCX_RECHECK_NS / 1000000000ull);
		ts.tv_nsec = (long)(IPCX_RECHECK_NS % 1000000000ull);
		ret = (int)ipcx_sys(SYS_futex, w, ipcx_futex_op(true, FUTEX_WAIT), val, &ts,
				    NULL, 0);
	}
	return ret == -ETIMEDOUT || ret == -EINTR ? 0 : ret;
}

/* Has the caller's absolute deadline passed? */
static inline bool ipcx_deadline_passed(const struct timespec *abs_mono)
{
	return abs_mono && ipcx_now_ns(CLOCK_MONOTONIC) >= ipcx_deadline_ns(abs_mono);
}

/* Mutex internals used by the condition variable. */
#define IPCX_MUTEX_NOTREC_WORD	FUTEX_TID_MASK	/* lock word of a not-recoverable mutex */
int ipcx_mutex_lock_contended(struct ipcx_mutex *m);

/* Issue the condition wake-up deferred to the release of s->defer_m (cond.c). */
void ipcx_cond_fire_deferred(struct ipcx_self *s);

/*
 * After @m's word was released by this thread: a deferred signal is due
 * (matched by address, or by tag when released through another mapping).
 */
static inline void ipcx_mutex_released(struct ipcx_self *s, const struct ipcx_mutex *m)
{
	if (unlikely(s->defer_m != NULL) && (s->defer_m == m || s->defer_tag == m->tag))
		ipcx_cond_fire_deferred(s);
}
int ipcx_mutex_owned(const struct ipcx_mutex *m);
/* Whether a thread of the calling process (any thread) holds @m. */
int ipcx_mutex_held_here(const struct ipcx_mutex *m);

#endif /* IPCX_SYNC_PRIV_H */
