/* SPDX-License-Identifier: MIT */
/*
 * sys.h - private system-call layer: raw syscalls returning -errno, typed
 * futex wrappers, robust-list access, memfd. Everything here is static
 * inline: the sync and queue fast paths call these directly.
 *
 * Raw syscalls never touch errno (the library's contract), and cost no TLS
 * write on the futex paths.
 */
#ifndef IPCX_SYS_H
#define IPCX_SYS_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"

#define IPCX_HIDDEN __attribute__((visibility("hidden")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define IPCX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__x86_64__)
static inline long ipcx_sys6(long nr, long a1, long a2, long a3, long a4, long a5,
			     long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static inline long ipcx_sys6(long nr, long a1, long a2, long a3, long a4, long a5,
			     long a6)
{
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#else
/* Fallback: libc's syscall(), with errno saved and restored. */
static inline long ipcx_sys6(long nr, long a1, long a2, long a3, long a4, long a5,
			     long a6)
{
	int saved = errno;
	long ret = syscall(nr, a1, a2, a3, a4, a5, a6);

	if (ret == -1)
		ret = -errno;
	errno = saved;
	return ret;
}
#endif

#define ipcx_sys(nr, a1, a2, a3, a4, a5, a6) \
	ipcx_sys6((long)(nr), (long)(a1), (long)(a2), (long)(a3), (long)(a4), \
		  (long)(a5), (long)(a6))

/* A timespec a caller passed us: normalised and non-negative? */
static inline bool ipcx_timespec_valid(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}

static inline uint64_t ipcx_now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* An absolute deadline in ns, saturated (a far-future tv_sec must not wrap). */
static inline uint64_t ipcx_deadline_ns(const struct timespec *abs_mono)
{
	if ((uint64_t)abs_mono->tv_sec >= UINT64_MAX / 1000000000ull - 1)
		return UINT64_MAX;
	return (uint64_t)abs_mono->tv_sec * 1000000000ull + (uint64_t)abs_mono->tv_nsec;
}

/* glibc (2.35+) registers an rseq area per thread at this offset from the
 * thread pointer; __rseq_size is 0 when it did not (tunable off, old
 * kernel). Declared here rather than through <sys/rseq.h>, whose struct
 * rseq clashes with <linux/rseq.h> where both are included. */
extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

/*
 * CPU the caller runs on now, or -1 if unknown. The kernel keeps the rseq
 * area's cpu_id (offset 4) current at every return to user space, so a
 * load answers; sched_getcpu() reads the same word behind a library call.
 */
static inline int ipcx_cpu_now(void)
{
	if (likely(__rseq_size >= 8)) {
		const volatile int32_t *id = (const volatile int32_t *)
			((char *)__builtin_thread_pointer() + __rseq_offset + 4);
		int32_t c = *id;

		if (likely(c >= 0))
			return c;
	}
	return sched_getcpu();
}

static inline pid_t ipcx_gettid(void)
{
	return (pid_t)ipcx_sys(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

/*
 * Futex operations. @shared selects the shared (inter-process) form: every
 * word in shared memory must use it. Waits take an absolute CLOCK_MONOTONIC
 * deadline (NULL = forever) and return 0 (woken, possibly spuriously),
 * -EAGAIN (*uaddr != val), -ETIMEDOUT or -EINTR.
 */
static inline int ipcx_futex_op(bool shared, int op)
{
	return shared ? op : (op | FUTEX_PRIVATE_FLAG);
}

static inline int ipcx_futex_wait(const uint32_t *uaddr, uint32_t val,
				  const struct timespec *abs_mono, bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_WAIT_BITSET),
			     val, abs_mono, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Return: number of waiters woken, or -errno. */
static inline int ipcx_futex_wake(const uint32_t *uaddr, int nr, bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_WAKE),
			     nr, NULL, NULL, 0);
}

/*
 * Wake @nr_wake waiters of @uaddr and move up to @nr_requeue others to wait
 * on @uaddr2, if *@uaddr still equals @val (-EAGAIN otherwise).
 * Return: woken + requeued, or -errno.
 */
static inline int ipcx_futex_cmp_requeue(const uint32_t *uaddr, int nr_wake,
					 const uint32_t *uaddr2, int nr_requeue,
					 uint32_t val, bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_CMP_REQUEUE),
			     nr_wake, (long)nr_requeue, uaddr2, val);
}

/*
 * Priority-inheritance lock (FUTEX_LOCK_PI2: the deadline is on
 * CLOCK_MONOTONIC, unlike FUTEX_LOCK_PI's CLOCK_REALTIME).
 * Return: 0 (owned; may carry FUTEX_OWNER_DIED), -ETIMEDOUT, -EDEADLK, ...
 */
static inline int ipcx_futex_lock_pi(uint32_t *uaddr, const struct timespec *abs_mono,
				     bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_LOCK_PI2),
			     0, abs_mono, NULL, 0);
}

static inline int ipcx_futex_trylock_pi(uint32_t *uaddr, bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_TRYLOCK_PI),
			     0, NULL, NULL, 0);
}

static inline int ipcx_futex_unlock_pi(uint32_t *uaddr, bool shared)
{
	return (int)ipcx_sys(SYS_futex, uaddr, ipcx_futex_op(shared, FUTEX_UNLOCK_PI),
			     0, NULL, NULL, 0);
}

/*
 * Wait on several words at once (futex_waitv, 5.16+). @abs_mono NULL =
 * forever. Return: index of the woken word, or -errno (-EAGAIN when one
 * word already differs from its expected value).
 */
static inline int ipcx_futex_waitv(struct futex_waitv *w, unsigned int nr,
				   const struct timespec *abs_mono)
{
	return (int)ipcx_sys(SYS_futex_waitv, w, nr, 0, abs_mono,
			     abs_mono ? CLOCK_MONOTONIC : 0, 0);
}

/*
 * The calling thread's robust-list head, as registered by libc (glibc
 * registers one per thread at creation). Never replace it: that would
 * silently disable robust pthread mutexes in the same thread.
 */
struct ipcx_robust_head {
	void *next;		/* list of held robust locks (points at node's next) */
	long futex_offset;	/* lock word = node + futex_offset */
	void *list_op_pending;	/* node being added or removed */
};

/*
 * Offset from a robust-list node to its lock word that ipcx locks use. It
 * mirrors pthread_mutex_t on 64-bit glibc (__lock at 0, __list.__next at 32),
 * so our nodes can share libc's per-thread list; ipcx_features() checks the
 * live head at run time (IPCX_FEAT_ROBUST_COTENANT).
 */
#define IPCX_ROBUST_FUTEX_OFFSET (-32L)

static inline int ipcx_get_robust_list(struct ipcx_robust_head **head, size_t *len)
{
	return (int)ipcx_sys(SYS_get_robust_list, 0, head, len, 0, 0, 0);
}

/* Return: a new fd, or -errno. */
/* membarrier(2); Return: >= 0 or -errno. */
static inline int ipcx_membarrier(int cmd)
{
	return (int)ipcx_sys6(__NR_membarrier, cmd, 0, 0, 0, 0, 0);
}

static inline int ipcx_memfd_create(const char *name, unsigned int flags)
{
	return (int)ipcx_sys(SYS_memfd_create, name, flags, 0, 0, 0, 0);
}

static inline int ipcx_pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)ipcx_sys(SYS_pidfd_open, pid, flags, 0, 0, 0, 0);
}

#endif /* IPCX_SYS_H */
