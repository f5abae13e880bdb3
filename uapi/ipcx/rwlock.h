/* SPDX-License-Identifier: MIT */
/*
 * ipcx/rwlock.h - sharable and upgradable mutex in shared memory (Boost's
 * interprocess_sharable_mutex and interprocess_upgradable_mutex in one
 * object), with owner-death detection, and its named versions.
 *
 * Ownership kinds: exclusive (one owner, nobody else), sharable (many
 * owners) and upgradable (one owner, together with sharable owners; it may
 * later become exclusive without letting another writer in first).
 *
 * Death: a waiter that has waited one check period (opts.check_ms, default
 * 50 ms) checks whether the exclusive or upgradable owner is still alive;
 * if not, it takes the lock over and gets -EOWNERDEAD. -EOWNERDEAD always
 * means "you now hold the lock EXCLUSIVELY, whatever kind you asked for":
 * repair the data, call ipcx_rwlock_consistent(), then ipcx_rwlock_unlock()
 * (or downgrade). Unlocking without ipcx_rwlock_consistent() makes the lock
 * -ENOTRECOVERABLE for everyone. Sharable owners are counted per process,
 * so the share of a process that died holding it is released by the next
 * exclusive locker that waits one check period. See Documentation/rwlock.md.
 *
 * Timeouts are absolute CLOCK_MONOTONIC deadlines; NULL waits forever, and
 * so does a deadline whose nanoseconds do not fit in 64 bits (tv_sec above
 * about 1.8e10: 584 years).
 */
#ifndef IPCX_RWLOCK_H
#define IPCX_RWLOCK_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Processes that can hold shares at once with exact death accounting. */
#define IPCX_RWLOCK_SLOTS	32

/* One process's sharable holds. ABI. */
struct ipcx_rwlock_slot {
	uint64_t ident;		/* pid << 40 | start time; 0 free */
	uint32_t count;		/* shares held by the process */
	uint32_t reserved;
};

/*
 * The lock, initialised in place by ipcx_rwlock_init(); any address, any
 * process. All fields are private; the layout is ABI (asserted below).
 */
struct ipcx_rwlock {
	uint32_t state;		/* futex: owner tid, kind and waiter bits */
	uint32_t drain_seq;	/* futex: a writer waits here for readers to leave */
	uint32_t magic;
	uint32_t check_ms;	/* liveness check period of waiters */
	uint64_t owner_ident;	/* process of the exclusive/upgradable owner */
	uint32_t owner_tid;	/* tid owner_ident belongs to (0: none) */
	uint32_t anon_readers;	/* shares of processes that found no free slot */
	uint32_t slot_mask;	/* bit i: slot[i] is claimed */
	uint32_t reserved0;
	uint64_t reserved[3];
	struct ipcx_rwlock_slot slot[IPCX_RWLOCK_SLOTS];
} __attribute__((aligned(64)));

IPCX_STATIC_ASSERT(sizeof(struct ipcx_rwlock_slot) == 16, "ipcx_rwlock_slot is ABI");
IPCX_STATIC_ASSERT(sizeof(struct ipcx_rwlock) == 64 + 16 * IPCX_RWLOCK_SLOTS,
		   "ipcx_rwlock is ABI");
IPCX_STATIC_ASSERT(__builtin_offsetof(struct ipcx_rwlock, slot) == 64, "ipcx_rwlock is ABI");
IPCX_STATIC_ASSERT(__builtin_offsetof(struct ipcx_rwlock, owner_ident) == 16,
		   "ipcx_rwlock is ABI");
IPCX_STATIC_ASSERT(__builtin_offsetof(struct ipcx_rwlock, slot_mask) == 32,
		   "ipcx_rwlock is ABI");
#undef IPCX_RWLOCK_ASSERT

/* Options of ipcx_rwlock_init(); declare with IPCX_OPTS(ipcx_rwlock_opts, o, ...). */
struct ipcx_rwlock_opts {
	size_t sz;
	/*
	 * How long a waiter sleeps before checking that the owner (or, for an
	 * exclusive locker, each reading process) is alive: 1..60000 ms,
	 * 0 = default (50 ms). This bounds how late a death is noticed.
	 */
	uint32_t check_ms;
};

/**
 * ipcx_rwlock_init() - initialise a lock in place
 * @l: memory for the lock (shared or private)
 * @opts: options, or NULL for defaults
 *
 * Return: 0; -EINVAL (NULL @l, check_ms out of range), -E2BIG (unknown
 * non-zero option fields).
 */
IPCX_API int ipcx_rwlock_init(struct ipcx_rwlock *l, const struct ipcx_rwlock_opts *opts);

/**
 * ipcx_rwlock_destroy() - invalidate an unused lock
 * @l: the lock
 *
 * Return: 0; -EBUSY if it is held in any kind (it stays valid), -EINVAL
 * if @l is NULL or not an initialised lock.
 */
IPCX_API int ipcx_rwlock_destroy(struct ipcx_rwlock *l);

/*
 * Exclusive ownership. A writer that starts waiting stops new sharable
 * owners from entering, so a stream of readers cannot starve it.
 */

/**
 * ipcx_rwlock_lock() - take exclusive ownership, waiting as long as needed
 * @l: the lock
 *
 * Return: 0; -EOWNERDEAD (held exclusively; the previous exclusive or
 * upgradable owner died: repair, then ipcx_rwlock_consistent());
 * -ENOTRECOVERABLE; -EDEADLK (the calling thread already holds it
 * exclusively or upgradably); -EINVAL (NULL or uninitialised lock).
 */
IPCX_API int ipcx_rwlock_lock(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_trylock() - take exclusive ownership if possible at once
 * @l: the lock
 *
 * Return: as ipcx_rwlock_lock(), or -EAGAIN if another owner (of any
 * kind) holds it now.
 */
IPCX_API int ipcx_rwlock_trylock(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_timedlock() - take exclusive ownership before a deadline
 * @l: the lock
 * @abs: absolute CLOCK_MONOTONIC deadline; NULL waits forever. A deadline
 *	in the past still takes a free lock.
 *
 * Return: as ipcx_rwlock_lock(), or -ETIMEDOUT; -EINVAL for a tv_nsec
 * outside [0, 1e9) or a negative tv_sec.
 */
IPCX_API int ipcx_rwlock_timedlock(struct ipcx_rwlock *l, const struct timespec *abs);

/**
 * ipcx_rwlock_unlock() - release exclusive ownership
 * @l: the lock
 *
 * Return: 0; -EPERM if the calling thread does not hold it exclusively;
 * -EINVAL. Released while inconsistent (after -EOWNERDEAD without
 * ipcx_rwlock_consistent()), the lock becomes not recoverable.
 */
IPCX_API int ipcx_rwlock_unlock(struct ipcx_rwlock *l);

/*
 * Sharable ownership. Shares are counted per process: a thread may release
 * a share another thread of its process took.
 */

/**
 * ipcx_rwlock_lock_shared() - take sharable ownership, waiting as needed
 * @l: the lock
 *
 * Return: 0; -EOWNERDEAD (the lock is held EXCLUSIVELY by the caller: the
 * exclusive or upgradable owner died; repair, ipcx_rwlock_consistent(),
 * then ipcx_rwlock_unlock() or ipcx_rwlock_unlock_and_lock_shared());
 * -ENOTRECOVERABLE; -EDEADLK (the caller holds it exclusively); -EINVAL.
 */
IPCX_API int ipcx_rwlock_lock_shared(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_trylock_shared() - take sharable ownership if possible at once
 * @l: the lock
 *
 * Return: as ipcx_rwlock_lock_shared(), or -EAGAIN when a writer holds or
 * waits for the lock.
 */
IPCX_API int ipcx_rwlock_trylock_shared(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_timedlock_shared() - take sharable ownership before a deadline
 * @l: the lock
 * @abs: absolute CLOCK_MONOTONIC deadline, NULL = forever
 *
 * Return: as ipcx_rwlock_lock_shared(), or -ETIMEDOUT; -EINVAL (bad @abs).
 */
IPCX_API int ipcx_rwlock_timedlock_shared(struct ipcx_rwlock *l, const struct timespec *abs);

/**
 * ipcx_rwlock_unlock_shared() - release one share of the calling process
 * @l: the lock
 *
 * Return: 0; -EPERM if the calling process holds no share; -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_shared(struct ipcx_rwlock *l);

/* Upgradable ownership: one owner at a time, alongside sharable owners. */

/**
 * ipcx_rwlock_lock_upgradable() - take upgradable ownership, waiting as needed
 * @l: the lock
 *
 * Return: 0; -EOWNERDEAD (held EXCLUSIVELY, see ipcx_rwlock_lock());
 * -ENOTRECOVERABLE; -EDEADLK; -EINVAL.
 */
IPCX_API int ipcx_rwlock_lock_upgradable(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_trylock_upgradable() - take upgradable ownership if possible at once
 * @l: the lock
 *
 * Return: as ipcx_rwlock_lock_upgradable(), or -EAGAIN.
 */
IPCX_API int ipcx_rwlock_trylock_upgradable(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_timedlock_upgradable() - take upgradable ownership before a deadline
 * @l: the lock
 * @abs: absolute CLOCK_MONOTONIC deadline, NULL = forever
 *
 * Return: as ipcx_rwlock_lock_upgradable(), or -ETIMEDOUT; -EINVAL.
 */
IPCX_API int ipcx_rwlock_timedlock_upgradable(struct ipcx_rwlock *l,
					      const struct timespec *abs);

/**
 * ipcx_rwlock_unlock_upgradable() - release upgradable ownership
 * @l: the lock
 *
 * Return: 0; -EPERM if the calling thread is not the upgradable owner; -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_upgradable(struct ipcx_rwlock *l);

/*
 * Ownership transfers (Boost's names). Downgrades never block. A transfer
 * out of exclusive ownership while the lock is inconsistent (after
 * -EOWNERDEAD, before ipcx_rwlock_consistent()) releases it and makes it
 * not recoverable, exactly like ipcx_rwlock_unlock(), and returns
 * -ENOTRECOVERABLE.
 */

/**
 * ipcx_rwlock_unlock_and_lock_upgradable() - exclusive -> upgradable
 * @l: the lock, held exclusively by the caller
 *
 * Return: 0; -EPERM (not the exclusive owner); -ENOTRECOVERABLE; -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_and_lock_upgradable(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_unlock_and_lock_shared() - exclusive -> sharable
 * @l: the lock, held exclusively by the caller
 *
 * Return: 0; -EPERM; -ENOTRECOVERABLE; -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_and_lock_shared(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_unlock_upgradable_and_lock_shared() - upgradable -> sharable
 * @l: the lock, held upgradably by the caller
 *
 * Return: 0; -EPERM (not the upgradable owner); -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_upgradable_and_lock_shared(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_unlock_upgradable_and_lock() - upgradable -> exclusive, waiting
 * @l: the lock, held upgradably by the caller
 *
 * New sharable owners are kept out at once; waits for current ones to leave.
 *
 * The shares of reading processes that died are released while waiting
 * (that is no owner death: the call still returns 0).
 *
 * Return: 0; -EPERM (not the upgradable owner); -EINVAL.
 */
IPCX_API int ipcx_rwlock_unlock_upgradable_and_lock(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_try_unlock_upgradable_and_lock() - upgradable -> exclusive if no reader
 * @l: the lock, held upgradably by the caller
 *
 * Return: 0 (exclusive); -EAGAIN (readers present: still upgradable);
 * -EPERM; -EINVAL.
 */
IPCX_API int ipcx_rwlock_try_unlock_upgradable_and_lock(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_timed_unlock_upgradable_and_lock() - upgradable -> exclusive before a deadline
 * @l: the lock, held upgradably by the caller
 * @abs: absolute CLOCK_MONOTONIC deadline, NULL = forever
 *
 * Return: 0 (exclusive); -ETIMEDOUT (still upgradable); -EPERM; -EINVAL.
 */
IPCX_API int ipcx_rwlock_timed_unlock_upgradable_and_lock(struct ipcx_rwlock *l,
							  const struct timespec *abs);

/**
 * ipcx_rwlock_try_unlock_shared_and_lock() - sharable -> exclusive if sole owner
 * @l: the lock, with a share held by the caller
 *
 * Succeeds only when the caller's share is the only one and nobody holds
 * upgradable ownership.
 *
 * Return: 0 (exclusive, share gone); -EAGAIN (share kept); -EPERM (the
 * process holds no share); -EINVAL.
 */
IPCX_API int ipcx_rwlock_try_unlock_shared_and_lock(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_try_unlock_shared_and_lock_upgradable() - sharable -> upgradable if free
 * @l: the lock, with a share held by the caller
 *
 * Return: 0 (upgradable, share gone); -EAGAIN (an upgradable or exclusive
 * owner exists: share kept); -EPERM; -EINVAL.
 */
IPCX_API int ipcx_rwlock_try_unlock_shared_and_lock_upgradable(struct ipcx_rwlock *l);

/**
 * ipcx_rwlock_consistent() - mark the protected data repaired
 * @l: the lock, held exclusively after -EOWNERDEAD
 *
 * Return: 0; -EPERM (the caller is not the exclusive owner); -EINVAL (the
 * lock is not inconsistent, or not a lock).
 */
IPCX_API int ipcx_rwlock_consistent(struct ipcx_rwlock *l);

/*
 * Scoped ownership with the cleanup attribute:
 *
 *	{
 *		IPCX_SCOPED_RWLOCK_SHARED(g, &obj->lock);
 *		if (g.ret < 0 && g.ret != -EOWNERDEAD)
 *			return g.ret;
 *		...	released when g goes out of scope
 *	}
 *
 * g.ret is the locking call's result. After -EOWNERDEAD the guard holds
 * the lock exclusively (g.kind says so) and releases it as such. A caller
 * that transfers ownership inside the scope sets g.kind to the new kind.
 */
enum ipcx_rwlock_kind {
	IPCX_RWLOCK_NONE	= 0,
	IPCX_RWLOCK_EXCLUSIVE	= 1,
	IPCX_RWLOCK_SHARED	= 2,
	IPCX_RWLOCK_UPGRADABLE	= 3,
};

struct ipcx_rwlock_guard {
	struct ipcx_rwlock *lock;
	enum ipcx_rwlock_kind kind;	/* what the guard releases */
	int ret;			/* result of the locking call */
};

static inline struct ipcx_rwlock_guard
ipcx_rwlock_guard_take(struct ipcx_rwlock *l, enum ipcx_rwlock_kind kind)
{
	struct ipcx_rwlock_guard g = { l, IPCX_RWLOCK_NONE, -EINVAL };

	if (kind == IPCX_RWLOCK_EXCLUSIVE)
		g.ret = ipcx_rwlock_lock(l);
	else if (kind == IPCX_RWLOCK_SHARED)
		g.ret = ipcx_rwlock_lock_shared(l);
	else if (kind == IPCX_RWLOCK_UPGRADABLE)
		g.ret = ipcx_rwlock_lock_upgradable(l);
	if (g.ret == 0)
		g.kind = kind;
	else if (g.ret == -EOWNERDEAD)
		g.kind = IPCX_RWLOCK_EXCLUSIVE;
	return g;
}

static inline void ipcx_rwlock_guard_release(struct ipcx_rwlock_guard *g)
{
	if (g->kind == IPCX_RWLOCK_EXCLUSIVE)
		ipcx_rwlock_unlock(g->lock);
	else if (g->kind == IPCX_RWLOCK_SHARED)
		ipcx_rwlock_unlock_shared(g->lock);
	else if (g->kind == IPCX_RWLOCK_UPGRADABLE)
		ipcx_rwlock_unlock_upgradable(g->lock);
	g->kind = IPCX_RWLOCK_NONE;
}

#define IPCX_SCOPED_RWLOCK_KIND(g, l, kind)					\
	struct ipcx_rwlock_guard g						\
	__attribute__((cleanup(ipcx_rwlock_guard_release))) =			\
		ipcx_rwlock_guard_take((l), (kind))
#define IPCX_SCOPED_RWLOCK(g, l)	IPCX_SCOPED_RWLOCK_KIND(g, l, IPCX_RWLOCK_EXCLUSIVE)
#define IPCX_SCOPED_RWLOCK_SHARED(g, l)	IPCX_SCOPED_RWLOCK_KIND(g, l, IPCX_RWLOCK_SHARED)
#define IPCX_SCOPED_RWLOCK_UPGRADABLE(g, l) \
	IPCX_SCOPED_RWLOCK_KIND(g, l, IPCX_RWLOCK_UPGRADABLE)

/*
 * Named versions: a file in the shm directory holding a struct
 * ipcx_obj_header then the lock. IPCX_KIND_RWLOCK ("sharable mutex") and
 * IPCX_KIND_UPGRADABLE ("upgradable mutex") are separate name spaces with
 * the same lock inside; every operation above works on either.
 */
struct ipcx_named_rwlock;

/* Options of the named open calls; IPCX_OPTS(ipcx_named_rwlock_opts, o, ...). */
struct ipcx_named_rwlock_opts {
	size_t sz;
	unsigned int perm;	/* permissions on create, applied exactly; 0 = 0600 */
	const char *dir;	/* shm directory; NULL = $IPCX_SHM_DIR or /dev/shm */
	uint32_t check_ms;	/* lock option on create (see ipcx_rwlock_opts) */
};

/**
 * ipcx_named_rwlock_open() - open or create a named sharable mutex
 * @out: receives the handle
 * @name: object name (letters, digits, '.', '_', '-'; at most IPCX_NAME_MAX)
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: options or NULL
 *
 * Creation is atomic: nobody opens a half-built lock.
 *
 * Return: 0; -EEXIST (create-only and the name exists, or a create finds
 * the name used by another synchronization kind: mutex, condition,
 * semaphore, barrier, sharable or upgradable mutex); -ENOENT (open-only, no
 * such name); -EINVAL (bad name, mode or option); -EPROTO (the file is not
 * a lock of this kind and layout); -EACCES; -ENOMEM; other -errno.
 */
IPCX_API int ipcx_named_rwlock_open(struct ipcx_named_rwlock **out, const char *name,
				    unsigned int mode,
				    const struct ipcx_named_rwlock_opts *opts);

/**
 * ipcx_named_upgradable_open() - open or create a named upgradable mutex
 * @out: receives the handle
 * @name: object name
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: options or NULL
 *
 * Return: as ipcx_named_rwlock_open().
 */
IPCX_API int ipcx_named_upgradable_open(struct ipcx_named_rwlock **out, const char *name,
					unsigned int mode,
					const struct ipcx_named_rwlock_opts *opts);

/**
 * ipcx_named_rwlock_get() - the lock of an open named handle
 * @h: handle
 *
 * Return: the lock (valid until ipcx_named_rwlock_close()), NULL for NULL @h.
 */
IPCX_API struct ipcx_rwlock *ipcx_named_rwlock_get(struct ipcx_named_rwlock *h);

/**
 * ipcx_named_rwlock_close() - unmap a named lock (the name stays)
 * @h: handle from either open call; NULL is a no-op
 *
 * Ownership held through the handle is not released (as with Boost).
 *
 * Return: 0.
 */
IPCX_API int ipcx_named_rwlock_close(struct ipcx_named_rwlock *h);

/**
 * ipcx_named_rwlock_unlink() - remove a named sharable mutex's name
 * @name: object name
 * @opts: for opts->dir; NULL = default directory
 *
 * Open handles stay usable; a later create makes a new lock.
 *
 * Return: 0; -ENOENT; -EINVAL (bad name); other -errno.
 */
IPCX_API int ipcx_named_rwlock_unlink(const char *name,
				      const struct ipcx_named_rwlock_opts *opts);

/**
 * ipcx_named_upgradable_unlink() - remove a named upgradable mutex's name
 * @name: object name
 * @opts: for opts->dir; NULL = default directory
 *
 * Return: as ipcx_named_rwlock_unlink().
 */
IPCX_API int ipcx_named_upgradable_unlink(const char *name,
					  const struct ipcx_named_rwlock_opts *opts);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_RWLOCK_H */
