/* SPDX-License-Identifier: MIT */
/*
 * ipcx/filelock.h - whole-file locks between processes on open file
 * description locks (F_OFD_SETLK/SETLKW/GETLK), Boost's file_lock without
 * the POSIX record-lock pitfalls.
 *
 * Each handle opens its own file description, so each handle is its own
 * owner: two handles in one process conflict like two processes, and
 * closing any other descriptor of the same file releases nothing. The
 * kernel releases the lock when the handle is closed or its process dies.
 * A handle inherited over fork() shares the description (and the lock)
 * with the parent: open a new handle in the child instead.
 *
 * Timeouts are absolute CLOCK_MONOTONIC deadlines; NULL waits forever, and
 * so does a deadline whose nanoseconds do not fit in 64 bits (tv_sec above
 * about 1.8e10: 584 years).
 */
#ifndef IPCX_FILELOCK_H
#define IPCX_FILELOCK_H

#include <errno.h>
#include <time.h>

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipcx_filelock;

/* Options of ipcx_filelock_open(); IPCX_OPTS(ipcx_filelock_opts, o, ...). */
struct ipcx_filelock_opts {
	size_t sz;
	unsigned int perm;	/* permissions of a file we create, applied exactly; 0 = 0600 */
};

/**
 * ipcx_filelock_open() - open a file to lock it
 * @out: receives the handle
 * @path: the file
 * @mode: IPCX_OPEN_ONLY (Boost's behaviour: the file must exist),
 *	IPCX_CREATE_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: options or NULL
 *
 * The file is opened read-write when permitted, else read-only (then only
 * sharable locks work; exclusive ones return -EBADF).
 *
 * Return: 0; -ENOENT, -EEXIST, -EACCES, -EINVAL (NULL argument, bad mode
 * or perm), -E2BIG (unknown option fields set), other -errno of open(2).
 */
IPCX_API int ipcx_filelock_open(struct ipcx_filelock **out, const char *path,
				unsigned int mode, const struct ipcx_filelock_opts *opts);

/**
 * ipcx_filelock_close() - close the handle, releasing its lock
 * @h: handle; NULL is a no-op
 *
 * Return: 0.
 */
IPCX_API int ipcx_filelock_close(struct ipcx_filelock *h);

/**
 * ipcx_filelock_lock() - take the exclusive lock, waiting as needed
 * @h: handle
 *
 * Converts a sharable lock held through @h. Interrupted waits are resumed.
 *
 * Return: 0; -EINVAL (NULL); -EBADF (file opened read-only); -ENOLCK.
 */
IPCX_API int ipcx_filelock_lock(struct ipcx_filelock *h);

/**
 * ipcx_filelock_trylock() - take the exclusive lock if free now
 * @h: handle
 *
 * Return: 0; -EAGAIN (another owner holds it); as ipcx_filelock_lock().
 */
IPCX_API int ipcx_filelock_trylock(struct ipcx_filelock *h);

/**
 * ipcx_filelock_timedlock() - take the exclusive lock before a deadline
 * @h: handle
 * @abs: absolute CLOCK_MONOTONIC deadline; NULL = forever; a past deadline
 *	still takes a free lock
 *
 * The kernel has no timed OFD lock: this polls with a backoff capped at
 * 1 ms, and the last attempt is made at the deadline, so it returns within
 * about 1 ms of the deadline and takes a released lock within about 1 ms.
 *
 * Return: 0; -ETIMEDOUT; -EINVAL (bad @abs); as ipcx_filelock_lock().
 */
IPCX_API int ipcx_filelock_timedlock(struct ipcx_filelock *h, const struct timespec *abs);

/**
 * ipcx_filelock_unlock() - release the lock held through @h (either kind)
 * @h: handle
 *
 * Return: 0 (also when nothing was held); -EINVAL.
 */
IPCX_API int ipcx_filelock_unlock(struct ipcx_filelock *h);

/**
 * ipcx_filelock_lock_shared() - take a sharable lock, waiting as needed
 * @h: handle
 *
 * Converts an exclusive lock held through @h.
 *
 * Return: 0; -EINVAL; -ENOLCK.
 */
IPCX_API int ipcx_filelock_lock_shared(struct ipcx_filelock *h);

/**
 * ipcx_filelock_trylock_shared() - take a sharable lock if possible now
 * @h: handle
 *
 * Return: 0; -EAGAIN (an exclusive owner holds it); as ipcx_filelock_lock_shared().
 */
IPCX_API int ipcx_filelock_trylock_shared(struct ipcx_filelock *h);

/**
 * ipcx_filelock_timedlock_shared() - take a sharable lock before a deadline
 * @h: handle
 * @abs: absolute CLOCK_MONOTONIC deadline, NULL = forever
 *
 * Return: 0; -ETIMEDOUT; -EINVAL; as ipcx_filelock_lock_shared().
 */
IPCX_API int ipcx_filelock_timedlock_shared(struct ipcx_filelock *h,
					    const struct timespec *abs);

/**
 * ipcx_filelock_unlock_shared() - same as ipcx_filelock_unlock()
 * @h: handle
 *
 * Return: 0; -EINVAL.
 */
IPCX_API int ipcx_filelock_unlock_shared(struct ipcx_filelock *h);

/**
 * ipcx_filelock_test() - would a lock request be granted now? (F_OFD_GETLK)
 * @h: handle
 * @exclusive: ask about an exclusive (true) or sharable (false) request
 *
 * Return: 0 if the request would be granted now; 1 if another owner
 * blocks it; -errno. (OFD locks have no owning pid to report.)
 */
IPCX_API int ipcx_filelock_test(struct ipcx_filelock *h, int exclusive);

/*
 * Scoped file locks: { IPCX_SCOPED_FILELOCK(g, h); if (g.ret) ...; }
 * releases at the end of the scope if g.ret == 0.
 */
struct ipcx_filelock_guard {
	struct ipcx_filelock *h;
	int ret;
};

static inline struct ipcx_filelock_guard ipcx_filelock_guard_take(struct ipcx_filelock *h,
								   int exclusive)
{
	struct ipcx_filelock_guard g = { h, 0 };

	g.ret = exclusive ? ipcx_filelock_lock(h) : ipcx_filelock_lock_shared(h);
	return g;
}

static inline void ipcx_filelock_guard_release(struct ipcx_filelock_guard *g)
{
	if (g->ret == 0)
		ipcx_filelock_unlock(g->h);
	g->ret = -ENOLCK;
}

#define IPCX_SCOPED_FILELOCK(g, h)						\
	struct ipcx_filelock_guard g						\
	__attribute__((cleanup(ipcx_filelock_guard_release))) =			\
		ipcx_filelock_guard_take((h), 1)
#define IPCX_SCOPED_FILELOCK_SHARED(g, h)					\
	struct ipcx_filelock_guard g						\
	__attribute__((cleanup(ipcx_filelock_guard_release))) =			\
		ipcx_filelock_guard_take((h), 0)

#ifdef __cplusplus
}
#endif
#endif /* IPCX_FILELOCK_H */
