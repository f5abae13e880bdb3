// SPDX-License-Identifier: MIT
/*
 * filelock.c - whole-file locks on open file description (OFD) locks.
 *
 * Why OFD locks: POSIX record locks belong to the process, so a second
 * open() of the same file in the process silently shares the lock and
 * closing *any* descriptor of the file drops it. OFD locks belong to the
 * open file description: each handle is an owner, and only closing the
 * handle (or the death of every process holding the description) releases.
 *
 * Timed locks: the kernel offers only F_OFD_SETLK (try) and F_OFD_SETLKW
 * (forever). A timed SETLKW would need a signal to interrupt it (a handler
 * and a timer owned by the library: unacceptable in someone else's
 * process) or a helper thread (which could acquire the lock after the
 * caller gave up, racing with the caller's next call on the handle). We
 * poll F_OFD_SETLK instead, sleeping on absolute CLOCK_MONOTONIC times
 * with a backoff from 50 us to 1 ms: bounded error (about 1 ms), no
 * threads, no signals; the cost is at most ~1000 cheap syscalls a second
 * per waiter, and no FIFO fairness against blocking SETLKW waiters.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ipcx/filelock.h>

#include "rwlock_priv.h"
#include "../shm/shm_priv.h"
#include "../sys/sys.h"

#define BACKOFF_MIN_NS	50000ull
#define BACKOFF_MAX_NS	1000000ull

struct ipcx_filelock {
	int fd;
};

static int ofd(int fd, int cmd, short type, struct flock *out)
{
	struct flock fl;
	int ret;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;		/* whole file, including future growth */
	ret = (int)ipcx_sys(SYS_fcntl, fd, cmd, &fl, 0, 0, 0);
	if (out)
		*out = fl;
	if (ret == -EACCES)
		ret = -EAGAIN;	/* F_SETLK reports a conflict as either */
	return ret < 0 ? ret : 0;
}

static int lock_wait(struct ipcx_filelock *h, short type)
{
	int ret;

	if (!h)
		return -EINVAL;
	do
		ret = ofd(h->fd, F_OFD_SETLKW, type, NULL);
	while (ret == -EINTR);
	return ret;
}

static int lock_try(struct ipcx_filelock *h, short type)
{
	return h ? ofd(h->fd, F_OFD_SETLK, type, NULL) : -EINVAL;
}

static int lock_timed(struct ipcx_filelock *h, short type, const struct timespec *abs)
{
	uint64_t end, now, wake, backoff = BACKOFF_MIN_NS;
	struct timespec ts;
	int ret;

	if (!h)
		return -EINVAL;
	if (!abs)
		return lock_wait(h, type);
	if (!ipcx_timespec_valid(abs))
		return -EINVAL;
	end = ipcx_rw_deadline_ns(abs);
	if (end == UINT64_MAX)
		return lock_wait(h, type);	/* beyond 64-bit nanoseconds: never */
	for (;;) {
		ret = ofd(h->fd, F_OFD_SETLK, type, NULL);
		if (ret != -EAGAIN)
			return ret;
		now = ipcx_now_ns(CLOCK_MONOTONIC);
		if (now >= end)
			return -ETIMEDOUT;
		wake = now + backoff < end ? now + backoff : end;
		ts.tv_sec = (time_t)(wake / 1000000000ull);
		ts.tv_nsec = (long)(wake % 1000000000ull);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		if (backoff < BACKOFF_MAX_NS)
			backoff *= 2;
	}
}

int ipcx_filelock_open(struct ipcx_filelock **out, const char *path, unsigned int mode,
		       const struct ipcx_filelock_opts *opts)
{
	struct ipcx_filelock_opts o;
	struct ipcx_filelock *h;
	unsigned int how = mode & IPCX_OPEN_MODE_MASK;
	int fd = -1, tries, acc, ret;
	bool created = false;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !*path || !how || (mode & ~IPCX_OPEN_MODE_MASK))
		return -EINVAL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	if (o.perm & ~07777u)
		return -EINVAL;
	acc = O_RDWR;
	for (tries = 0; tries < 16 && fd < 0; tries++) {
		if (how & IPCX_CREATE_ONLY) {
			fd = open(path, acc | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
			if (fd >= 0) {
				created = true;
				break;
			}
			if (errno != EEXIST || how == IPCX_CREATE_ONLY)
				return -errno;
		}
		fd = open(path, acc | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && (errno == EACCES || errno == EROFS) && acc == O_RDWR) {
			acc = O_RDONLY;
			fd = open(path, acc | O_CLOEXEC | O_NOCTTY);
		}
		if (fd < 0 && (errno != ENOENT || how == IPCX_OPEN_ONLY))
			return -errno;
	}
	if (fd < 0)
		return -EAGAIN;	/* the file kept appearing and vanishing */
	if (created && fchmod(fd, o.perm ? o.perm : IPCX_DEFAULT_PERM)) {
		ret = -errno;
		close(fd);
		unlink(path);
		return ret;
	}
	h = malloc(sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	*out = h;
	return 0;
}

int ipcx_filelock_close(struct ipcx_filelock *h)
{
	if (!h)
		return 0;
	close(h->fd);
	free(h);
	return 0;
}

int ipcx_filelock_lock(struct ipcx_filelock *h)
{
	return lock_wait(h, F_WRLCK);
}

int ipcx_filelock_trylock(struct ipcx_filelock *h)
{
	return lock_try(h, F_WRLCK);
}

int ipcx_filelock_timedlock(struct ipcx_filelock *h, const struct timespec *abs)
{
	return lock_timed(h, F_WRLCK, abs);
}

int ipcx_filelock_unlock(struct ipcx_filelock *h)
{
	return h ? ofd(h->fd, F_OFD_SETLK, F_UNLCK, NULL) : -EINVAL;
}

int ipcx_filelock_lock_shared(struct ipcx_filelock *h)
{
	return lock_wait(h, F_RDLCK);
}

int ipcx_filelock_trylock_shared(struct ipcx_filelock *h)
{
	return lock_try(h, F_RDLCK);
}

int ipcx_filelock_timedlock_shared(struct ipcx_filelock *h, const struct timespec *abs)
{
	return lock_timed(h, F_RDLCK, abs);
}

int ipcx_filelock_unlock_shared(struct ipcx_filelock *h)
{
	return ipcx_filelock_unlock(h);
}

int ipcx_filelock_test(struct ipcx_filelock *h, int exclusive)
{
	struct flock fl;
	int ret;

	if (!h)
		return -EINVAL;
	ret = ofd(h->fd, F_OFD_GETLK, exclusive ? F_WRLCK : F_RDLCK, &fl);
	if (ret)
		return ret;
	return fl.l_type == F_UNLCK ? 0 : 1;
}
