/* SPDX-License-Identifier: MIT */
/*
 * ipcx/sync.h - process-shared synchronization on futex(2): robust mutexes
 * (normal, recursive, error-checking, priority inheritance), condition
 * variables, semaphores, barriers, their named versions, and scoped locks.
 *
 * Every object here is a plain 64-byte struct of fixed layout that lives in
 * shared memory, is initialised in place by its *_init() call, and holds no
 * process-local pointers. The fields are an ABI but private: use the calls.
 *
 * Mutexes are robust: they join the calling thread's kernel robust list
 * (the one glibc registers, shared the way glibc's own robust mutexes use
 * it), so when a holder dies the next locker gets -EOWNERDEAD and holds the
 * lock; it repairs the protected data and calls ipcx_mutex_consistent(),
 * or else its unlock makes the mutex -ENOTRECOVERABLE for everybody.
 *
 * Deadlines are absolute CLOCK_MONOTONIC times; NULL waits forever.
 */
#ifndef IPCX_SYNC_H
#define IPCX_SYNC_H

#include <errno.h>
#include <time.h>

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags shared by the sync objects' options. */
#define IPCX_SYNC_BLOCK		0x1u	/* never spin: sleep at once when the object is busy */
#define IPCX_MUTEX_PI		0x2u	/* priority inheritance (FUTEX_LOCK_PI2); mutex only */

/*
 * Default spin budget before sleeping, in ns. Spinning happens only while
 * the other side last ran on a different CPU than the spinner (spinning on
 * the CPU the holder needs only delays it), and an object whose spins keep
 * failing spins less (down to 1/16) until one succeeds again. A mutex
 * waiter spins one budget when it starts waiting and one after each
 * wake-up, only reading the lock word (less and less often) until it looks
 * free; a timed lock's deadline also ends the spin.
 */
#define IPCX_SPIN_DEFAULT_NS	20000u

/* ---- mutex ------------------------------------------------------------- */

enum ipcx_mutex_type {
	IPCX_MUTEX_NORMAL	= 0,	/* relock by the owner: -EDEADLK, never a hang */
	IPCX_MUTEX_RECURSIVE	= 1,	/* the owner may relock; unlock as often */
	IPCX_MUTEX_ERRORCHECK	= 2,	/* as NORMAL (ownership is always checked) */
};

struct ipcx_mutex {
	uint32_t lock;		/* futex word: owner TID | FUTEX_WAITERS | FUTEX_OWNER_DIED */
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t state;		/* consistent / inconsistent / not recoverable */
	uint32_t count;		/* recursion depth above the first lock */
	uint32_t owner_cpu;	/* CPU the owner last locked on (spin hint) */
	uint64_t robust_prev;	/* robust-list node, glibc's shape: */
	uint64_t robust_next;	/* lock word at node - 32 */
	uint32_t spin_ns;
	uint32_t spin_fail;
	uint64_t tag;		/* random at init: names this mutex to condition variables */
	uint8_t reserved[8];
} __attribute__((aligned(64)));

/* Initialisation options; IPCX_OPTS(ipcx_mutex_opts, o, .type = ...). */
struct ipcx_mutex_opts {
	size_t sz;
	uint32_t type;		/* enum ipcx_mutex_type */
	uint32_t flags;		/* IPCX_SYNC_BLOCK, IPCX_MUTEX_PI */
	uint32_t spin_ns;	/* 0: IPCX_SPIN_DEFAULT_NS */
};

/**
 * ipcx_mutex_init() - initialise a mutex in place (in shared memory)
 * @m: the mutex
 * @opts: options, or NULL for a normal, robust, spinning mutex
 *
 * Return: 0; -EINVAL for NULL, a misaligned @m, an unknown type or flag; -E2BIG for a larger
 * opts struct with non-zero unknown fields; -EOPNOTSUPP when the calling
 * thread's robust list cannot be shared (libc registered none, or at another
 * futex offset): ipcx mutexes are never silently non-robust; -EOPNOTSUPP
 * for IPCX_MUTEX_PI on a kernel without PI futexes; -EBUSY if @m is an
 * initialised mutex that a live thread holds (re-initialising it would cut
 * that thread's robust list; a word naming a thread that no longer exists
 * does not count).
 */
IPCX_API int ipcx_mutex_init(struct ipcx_mutex *m, const struct ipcx_mutex_opts *opts);

/**
 * ipcx_mutex_destroy() - mark an unused mutex dead
 * @m: the mutex
 *
 * Return: 0; -EBUSY if it is held; -EINVAL if it is not an initialised mutex.
 */
IPCX_API int ipcx_mutex_destroy(struct ipcx_mutex *m);

/**
 * ipcx_mutex_lock() - lock, waiting as long as needed
 * @m: the mutex
 *
 * Return: 0; -EOWNERDEAD: the caller holds the lock, its previous owner
 * died holding it (repair, then ipcx_mutex_consistent()); -ENOTRECOVERABLE
 * (not held); -EDEADLK: the caller already holds a non-recursive mutex;
 * -EAGAIN: recursion depth exhausted; -EINVAL: not an initialised mutex;
 * -EOPNOTSUPP: this thread has no shareable robust list.
 */
IPCX_API int ipcx_mutex_lock(struct ipcx_mutex *m);

/**
 * ipcx_mutex_trylock() - lock if free, never wait
 * @m: the mutex
 *
 * Return: as ipcx_mutex_lock(), and -EAGAIN if another thread holds it.
 */
IPCX_API int ipcx_mutex_trylock(struct ipcx_mutex *m);

/**
 * ipcx_mutex_timedlock() - lock, waiting until an absolute deadline
 * @m: the mutex
 * @abs_mono: CLOCK_MONOTONIC deadline; NULL waits forever. A deadline in
 *	the past still takes a free lock.
 *
 * Return: as ipcx_mutex_lock(), and -ETIMEDOUT; -EINVAL for a tv_nsec out
 * of range or a negative time.
 */
IPCX_API int ipcx_mutex_timedlock(struct ipcx_mutex *m, const struct timespec *abs_mono);

/**
 * ipcx_mutex_unlock() - unlock (once, for a recursive mutex)
 * @m: the mutex
 *
 * Unlocking after -EOWNERDEAD without ipcx_mutex_consistent() makes the
 * mutex not recoverable: every later lock fails with -ENOTRECOVERABLE.
 *
 * Return: 0; -EPERM if the caller does not hold it (also: not locked);
 * -EINVAL if it is not an initialised mutex; -ENOTRECOVERABLE if its
 * robust-list links were found corrupted (nothing was written through
 * them): it is released, and not recoverable from then on.
 */
IPCX_API int ipcx_mutex_unlock(struct ipcx_mutex *m);

/**
 * ipcx_mutex_consistent() - declare the data repaired after -EOWNERDEAD
 * @m: the mutex, held by the caller
 *
 * Return: 0; -EPERM if the caller does not hold it; -EINVAL if it was not
 * inconsistent or is not an initialised mutex.
 */
IPCX_API int ipcx_mutex_consistent(struct ipcx_mutex *m);

/* ---- condition variable ------------------------------------------------ */

struct ipcx_cond {
	uint32_t seq;		/* futex word: signal count, arrivals, sleepers bit */
	uint32_t magic;
	uint32_t flags;
	uint32_t spin_ns;
	uint32_t sig_cpu;	/* CPU of the last signaller (spin hint) */
	uint32_t spin_fail;
	uint32_t requeued;	/* waiters were ever requeued to a mutex */
	uint32_t reserved0;
	uint64_t mtag;		/* tag of the mutex its latest waiter waited with */
	uint8_t reserved[24];
} __attribute__((aligned(64)));

struct ipcx_cond_opts {
	size_t sz;
	uint32_t flags;		/* IPCX_SYNC_BLOCK */
	uint32_t spin_ns;	/* 0: IPCX_SPIN_DEFAULT_NS */
};

/**
 * ipcx_cond_init() - initialise a condition variable in place
 * @c: the condition variable
 * @opts: options, or NULL for defaults
 *
 * The condition keeps no per-waiter state in shared memory, so a waiter
 * killed at any instruction cannot break later signals or broadcasts.
 *
 * Return: 0; -EINVAL; -E2BIG (see struct ipcx_mutex_opts).
 */
IPCX_API int ipcx_cond_init(struct ipcx_cond *c, const struct ipcx_cond_opts *opts);

/**
 * ipcx_cond_destroy() - mark a condition variable dead
 * @c: the condition variable
 *
 * Return: 0; -EINVAL if it is not an initialised condition variable.
 */
IPCX_API int ipcx_cond_destroy(struct ipcx_cond *c);

/**
 * ipcx_cond_wait() - release @m, wait for a signal, re-acquire @m
 * @c: the condition variable
 * @m: a mutex the caller holds (one level of a recursive mutex is enough:
 *	its whole depth is released and restored)
 *
 * Wake-ups may be spurious: wait in a loop on the predicate. A sleeper
 * re-checks by itself at least every 100 ms, so a signaller or a signalled
 * waiter killed in the middle of a wake-up delays the others by at most
 * that much.
 *
 * Return: 0 with @m held; -EOWNERDEAD with @m held (its owner died while
 * we waited: repair as for ipcx_mutex_lock()); -ENOTRECOVERABLE (@m not
 * held); -EPERM if the caller does not hold @m; -EINVAL for bad objects.
 */
IPCX_API int ipcx_cond_wait(struct ipcx_cond *c, struct ipcx_mutex *m);

/**
 * ipcx_cond_timedwait() - ipcx_cond_wait() with an absolute deadline
 * @c: the condition variable
 * @m: a mutex the caller holds
 * @abs_mono: CLOCK_MONOTONIC deadline; NULL waits forever
 *
 * Return: as ipcx_cond_wait(), and -ETIMEDOUT with @m held; -EINVAL for a
 * timespec out of range.
 */
IPCX_API int ipcx_cond_timedwait(struct ipcx_cond *c, struct ipcx_mutex *m,
				 const struct timespec *abs_mono);

/**
 * ipcx_cond_timedwait_any() - wait with any kind of lock (Boost's condition_any)
 * @c: the condition variable
 * @unlock: releases the caller's lock; returns 0 or -errno
 * @lock: re-acquires it after the wait; returns 0 or -errno
 * @arg: passed to @unlock and @lock (the lock object)
 * @abs_mono: CLOCK_MONOTONIC deadline; NULL waits forever
 *
 * The caller holds its lock (a sharable lock, a file lock, ...) and
 * signallers change the predicate under the same lock. Without an ipcx
 * mutex there is no requeue and no owner-death report from the wait itself.
 *
 * Return: 0 with the lock re-acquired; -ETIMEDOUT with it re-acquired;
 * @unlock's error (nothing waited, lock still held) or @lock's error (not
 * held, unless @lock says otherwise, e.g. -EOWNERDEAD); -EINVAL for a bad
 * object, NULL callbacks or a timespec out of range.
 */
IPCX_API int ipcx_cond_timedwait_any(struct ipcx_cond *c, int (*unlock)(void *arg),
				     int (*lock)(void *arg), void *arg,
				     const struct timespec *abs_mono);

/**
 * ipcx_cond_signal() - wake at least one waiter, if any
 * @c: the condition variable
 *
 * Return: 0; -EINVAL if it is not an initialised condition variable.
 */
IPCX_API int ipcx_cond_signal(struct ipcx_cond *c);

/**
 * ipcx_cond_broadcast() - wake every waiter
 * @c: the condition variable
 *
 * Every sleeper is woken (they then contend for their mutex). When the
 * caller holds the waiters' mutex, ipcx_cond_broadcast_mutex() avoids that
 * stampede.
 *
 * Return: 0; -EINVAL if it is not an initialised condition variable.
 */
IPCX_API int ipcx_cond_broadcast(struct ipcx_cond *c);

/**
 * ipcx_cond_broadcast_mutex() - wake every waiter without a stampede
 * @c: the condition variable
 * @m: the mutex the waiters wait with, held by the caller
 *
 * Moves the sleepers onto @m's futex word (FUTEX_CMP_REQUEUE) instead of
 * waking them: each is woken in turn by the unlock of the one before it.
 * For a PI mutex this falls back to ipcx_cond_broadcast(). All waiters must
 * use @m (as POSIX requires of concurrent waits on one condition).
 *
 * Return: 0; -EPERM if the caller does not hold @m; -EINVAL for bad objects.
 */
IPCX_API int ipcx_cond_broadcast_mutex(struct ipcx_cond *c, struct ipcx_mutex *m);

/* ---- semaphore --------------------------------------------------------- */

#define IPCX_SEM_VALUE_MAX	0x00ffffffu	/* 16777215 */

struct ipcx_sem {
	uint64_t state;		/* bits 0-23 count, 24-31 generation (the low
				 * half is the futex word), 32-63 sleepers */
	uint32_t magic;
	uint32_t flags;
	uint32_t spin_ns;
	uint32_t post_cpu;	/* CPU of the last poster (spin hint) */
	uint32_t spin_fail;
	uint32_t empty_wakes;	/* posts whose wake-up found nobody */
	uint8_t reserved[32];
} __attribute__((aligned(64)));

struct ipcx_sem_opts {
	size_t sz;
	uint32_t flags;		/* IPCX_SYNC_BLOCK */
	uint32_t spin_ns;	/* 0: IPCX_SPIN_DEFAULT_NS */
};

/**
 * ipcx_sem_init() - initialise a counting semaphore in place
 * @s: the semaphore
 * @value: initial count, at most IPCX_SEM_VALUE_MAX
 * @opts: options, or NULL for defaults
 *
 * Return: 0; -EINVAL (NULL, value too large, unknown flag); -E2BIG.
 */
IPCX_API int ipcx_sem_init(struct ipcx_sem *s, unsigned int value,
			   const struct ipcx_sem_opts *opts);

/**
 * ipcx_sem_destroy() - mark a semaphore dead
 * @s: the semaphore
 *
 * Return: 0; -EINVAL if it is not an initialised semaphore.
 */
IPCX_API int ipcx_sem_destroy(struct ipcx_sem *s);

/**
 * ipcx_sem_post() - add one to the count and wake a waiter
 * @s: the semaphore
 *
 * Return: 0; -EOVERFLOW at IPCX_SEM_VALUE_MAX; -EINVAL for a bad object.
 */
IPCX_API int ipcx_sem_post(struct ipcx_sem *s);

/**
 * ipcx_sem_wait() - take one from the count, waiting while it is zero
 * @s: the semaphore
 *
 * A sleeper re-checks the count by itself at least every 100 ms, so a
 * poster or a woken waiter killed in the middle of a wake-up delays the
 * others by at most that much.
 *
 * Return: 0; -EINVAL for a bad object.
 */
IPCX_API int ipcx_sem_wait(struct ipcx_sem *s);

/**
 * ipcx_sem_trywait() - take one if the count is positive
 * @s: the semaphore
 *
 * Return: 0; -EAGAIN if the count is zero; -EINVAL for a bad object.
 */
IPCX_API int ipcx_sem_trywait(struct ipcx_sem *s);

/**
 * ipcx_sem_timedwait() - ipcx_sem_wait() with an absolute deadline
 * @s: the semaphore
 * @abs_mono: CLOCK_MONOTONIC deadline; NULL waits forever
 *
 * Return: 0; -ETIMEDOUT; -EINVAL for a bad object or timespec.
 */
IPCX_API int ipcx_sem_timedwait(struct ipcx_sem *s, const struct timespec *abs_mono);

/**
 * ipcx_sem_value() - current count
 * @s: the semaphore
 *
 * Return: the count (>= 0); -EINVAL for a bad object.
 */
IPCX_API int ipcx_sem_value(const struct ipcx_sem *s);

/* ---- barrier ----------------------------------------------------------- */

#define IPCX_BARRIER_SERIAL	1

struct ipcx_barrier {
	uint64_t state;		/* bits 0-31: round number (the futex word),
				 * bits 32-63: arrivals of this round */
	uint32_t magic;
	uint32_t count;
	uint8_t reserved[48];
} __attribute__((aligned(64)));

/**
 * ipcx_barrier_init() - initialise a barrier for @count participants
 * @b: the barrier
 * @count: participants per round, 1 .. 2^31-1
 *
 * A participant that dies before arriving leaves its round incomplete: the
 * barrier has no way to know it was expected. ipcx_barrier_timedwait()
 * lets the others give up.
 *
 * Return: 0; -EINVAL.
 */
IPCX_API int ipcx_barrier_init(struct ipcx_barrier *b, unsigned int count);

/**
 * ipcx_barrier_destroy() - mark a barrier dead
 * @b: the barrier
 *
 * Return: 0; -EBUSY while a round is partly arrived; -EINVAL.
 */
IPCX_API int ipcx_barrier_destroy(struct ipcx_barrier *b);

/**
 * ipcx_barrier_wait() - arrive and wait for the rest of the round
 * @b: the barrier
 *
 * Sleepers re-check the round number at least every 100 ms (a last arrival
 * killed before its wake-up delays the round's end by at most that much).
 *
 * Return: IPCX_BARRIER_SERIAL for exactly one participant of each round
 * (the last to arrive), 0 for the others; -EINVAL for a bad object (not
 * initialised, misaligned, or a word the kernel refuses to wait on: then
 * the arrival is taken back).
 */
IPCX_API int ipcx_barrier_wait(struct ipcx_barrier *b);

/**
 * ipcx_barrier_timedwait() - ipcx_barrier_wait() with an absolute deadline
 * @b: the barrier
 * @abs_mono: CLOCK_MONOTONIC deadline; NULL waits forever
 *
 * A participant whose deadline passes before the round completes takes its
 * arrival back: the round goes on without it (its arrival no longer counts
 * towards @count), and the caller may arrive again later. The arrival that
 * completes a round never waits, whatever the deadline.
 *
 * Return: IPCX_BARRIER_SERIAL or 0 as ipcx_barrier_wait(); -ETIMEDOUT
 * (arrival withdrawn); -EINVAL for a bad object or timespec.
 */
IPCX_API int ipcx_barrier_timedwait(struct ipcx_barrier *b, const struct timespec *abs_mono);

/* ---- named versions ---------------------------------------------------- */

/*
 * Named objects are files "<dir>/ipcx.<kind>.<name>" holding a struct
 * ipcx_obj_header and the object. The *_open calls map the object and
 * return a pointer to it, usable with every call above; *_close unmaps it.
 * Each kind has its own namespace (its own file prefix), so a named mutex
 * and a named condition may share a name; a file of another kind found at
 * a kind's path is refused with -EPROTO.
 */
struct ipcx_sync_named_opts {
	size_t sz;
	const char *dir;	/* NULL: $IPCX_SHM_DIR or /dev/shm */
	uint32_t perm;		/* permissions on create; 0: 0600, applied exactly */
	uint32_t flags;		/* on create: IPCX_SYNC_BLOCK, IPCX_MUTEX_PI (mutexes) */
	uint32_t spin_ns;	/* on create: 0 = IPCX_SPIN_DEFAULT_NS */
	uint32_t sem_value;	/* on create: a semaphore's initial count */
};

/**
 * ipcx_named_mutex_open() - open or create a named robust mutex
 * @name: letters, digits, '.', '_', '-'; at most IPCX_NAME_MAX
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: options, or NULL
 * @out: receives the mapped mutex
 *
 * Return: 0; -EEXIST (create-only), -ENOENT (open-only), -EINVAL (name,
 * mode, opts), -EPROTO (the file is not a mutex of this layout), -EACCES,
 * -ENOSPC, -EOPNOTSUPP (see ipcx_mutex_init()), other -errno of open/mmap.
 */
IPCX_API int ipcx_named_mutex_open(const char *name, unsigned int mode,
				   const struct ipcx_sync_named_opts *opts,
				   struct ipcx_mutex **out);

/**
 * ipcx_named_mutex_close() - unmap a named mutex (the name stays)
 * @m: a mutex returned by ipcx_named_mutex_open()
 *
 * Return: 0; -EBUSY if any thread of the calling process holds it (the
 * node in that thread's robust list would be unmapped, and the kernel could
 * not walk past it when the thread dies); -EINVAL if @m is not a mapped
 * named mutex.
 */
IPCX_API int ipcx_named_mutex_close(struct ipcx_mutex *m);

/**
 * ipcx_named_mutex_unlink() - remove a named mutex's name
 * @name: its name
 * @opts: options (only dir is used), or NULL
 *
 * Return: 0; -ENOENT; -EINVAL; other -errno of unlink.
 */
IPCX_API int ipcx_named_mutex_unlink(const char *name, const struct ipcx_sync_named_opts *opts);

/** ipcx_named_rmutex_open() - as ipcx_named_mutex_open(), a recursive mutex. */
IPCX_API int ipcx_named_rmutex_open(const char *name, unsigned int mode,
				    const struct ipcx_sync_named_opts *opts,
				    struct ipcx_mutex **out);
/** ipcx_named_rmutex_close() - as ipcx_named_mutex_close(). */
IPCX_API int ipcx_named_rmutex_close(struct ipcx_mutex *m);
/** ipcx_named_rmutex_unlink() - as ipcx_named_mutex_unlink(). */
IPCX_API int ipcx_named_rmutex_unlink(const char *name,
				      const struct ipcx_sync_named_opts *opts);

/** ipcx_named_cond_open() - as ipcx_named_mutex_open(), a condition variable. */
IPCX_API int ipcx_named_cond_open(const char *name, unsigned int mode,
				  const struct ipcx_sync_named_opts *opts,
				  struct ipcx_cond **out);
/** ipcx_named_cond_close() - unmap a named condition (0, or -EINVAL). */
IPCX_API int ipcx_named_cond_close(struct ipcx_cond *c);
/** ipcx_named_cond_unlink() - as ipcx_named_mutex_unlink(). */
IPCX_API int ipcx_named_cond_unlink(const char *name,
				    const struct ipcx_sync_named_opts *opts);

/**
 * ipcx_named_sem_open() - as ipcx_named_mutex_open(), a semaphore
 * @name: its name
 * @mode: open mode
 * @opts: options (sem_value is the initial count when created), or NULL
 * @out: receives the mapped semaphore
 *
 * The count lives in the file: it persists across close and open while the
 * name (or any mapping) exists.
 *
 * Return: as ipcx_named_mutex_open(); -EINVAL for sem_value too large.
 */
IPCX_API int ipcx_named_sem_open(const char *name, unsigned int mode,
				 const struct ipcx_sync_named_opts *opts,
				 struct ipcx_sem **out);
/** ipcx_named_sem_close() - unmap a named semaphore (0, or -EINVAL). */
IPCX_API int ipcx_named_sem_close(struct ipcx_sem *s);
/** ipcx_named_sem_unlink() - as ipcx_named_mutex_unlink(). */
IPCX_API int ipcx_named_sem_unlink(const char *name,
				   const struct ipcx_sync_named_opts *opts);

/* ---- scoped locking ---------------------------------------------------- */

/* Helpers of IPCX_SCOPED_LOCK; not for direct use. */
static inline struct ipcx_mutex *ipcx__scoped_lock(struct ipcx_mutex *m, int *ret)
{
	*ret = ipcx_mutex_lock(m);
	return (*ret == 0 || *ret == -EOWNERDEAD) ? m : NULL;
}

static inline void ipcx__scoped_unlock(struct ipcx_mutex **m)
{
	if (*m)
		(void)ipcx_mutex_unlock(*m);
}

#define IPCX__CAT2(a, b) a##b
#define IPCX__CAT(a, b) IPCX__CAT2(a, b)

/**
 * IPCX_SCOPED_LOCK() - lock @m until the end of the enclosing block
 * @m: struct ipcx_mutex *
 * @ret: an int lvalue that receives ipcx_mutex_lock()'s result
 *
 * The lock is held for the rest of the block when @ret is 0 or
 * -EOWNERDEAD (then repair and call ipcx_mutex_consistent() before the block
 * ends), and released however the block is left (return, break, goto).
 * On any other @ret the lock is not held and nothing is released.
 */
#define IPCX_SCOPED_LOCK(m, ret)						\
	struct ipcx_mutex *IPCX__CAT(ipcx__guard_, __LINE__)			\
	__attribute__((cleanup(ipcx__scoped_unlock), unused)) =		\
		ipcx__scoped_lock((m), &(ret))

#ifdef __cplusplus
}
#endif
#endif /* IPCX_SYNC_H */
