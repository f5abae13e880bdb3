/* SPDX-License-Identifier: MIT */
/*
 * olock.h - private: a small robust lock for one side of a queue.
 *
 * The word holds the owner's thread id (| IPCX_MQ_WAITERS when somebody
 * sleeps on it). Uncontended lock and unlock are one CAS each, with no
 * syscall. A waiter sleeps in slices; after each slice it checks that the
 * owner still exists (kill(tid, 0)) and, if not, takes the lock over and is
 * told so (1), so the caller repairs the state the dead owner guarded.
 * This lock does not join the kernel's robust list: the cost of a death is
 * one slice of delay (IPCX_OLOCK_SLICE_NS), not a kernel wake-up. All users
 * must share one pid namespace.
 */
#ifndef IPCX_MQ_OLOCK_H
#define IPCX_MQ_OLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../sys/sys.h"

#define IPCX_OLOCK_WAITERS	0x80000000u
#define IPCX_OLOCK_SLICE_NS	2000000ull

static inline void ipcx_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

/* The calling thread's id, cached per thread (reset in fork children). */
extern __thread uint32_t ipcx_olock_tls_tid __attribute__((tls_model("initial-exec")));
uint32_t ipcx_olock_tid_slow(void);

static inline uint32_t ipcx_olock_tid(void)
{
	uint32_t t = ipcx_olock_tls_tid;

	return likely(t) ? t : ipcx_olock_tid_slow();
}

/*
 * Is thread @tid still there? A process that exited but was not reaped yet
 * (a zombie) counts as gone. When unsure (permissions), yes.
 */
bool ipcx_tid_alive(uint32_t tid);

int ipcx_olock_lock_slow(uint32_t *w, uint32_t me, const struct timespec *abs_mono);

/*
 * Return: 0 locked; 1 locked, the previous owner died holding it (repair
 * first); -ETIMEDOUT; -EDEADLK (the caller already holds it).
 */
static inline int ipcx_olock_lock(uint32_t *w, uint32_t me, const struct timespec *abs_mono)
{
	uint32_t v = 0;

	if (likely(__atomic_compare_exchange_n(w, &v, me, false, __ATOMIC_ACQUIRE,
					       __ATOMIC_RELAXED)))
		return 0;
	return ipcx_olock_lock_slow(w, me, abs_mono);
}

static inline void ipcx_olock_unlock(uint32_t *w, uint32_t me)
{
	uint32_t v = me;

	if (likely(__atomic_compare_exchange_n(w, &v, 0, false, __ATOMIC_RELEASE,
					       __ATOMIC_RELAXED)))
		return;
	__atomic_store_n(w, 0, __ATOMIC_SEQ_CST);
	ipcx_futex_wake(w, 1, true);
}

static inline bool ipcx_olock_held(const uint32_t *w, uint32_t me)
{
	return (__atomic_load_n(w, __ATOMIC_RELAXED) & ~IPCX_OLOCK_WAITERS) == me;
}

#endif /* IPCX_MQ_OLOCK_H */
