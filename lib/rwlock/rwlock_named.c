// SPDX-License-Identifier: MIT
/*
 * rwlock_named.c - named sharable and upgradable mutexes: a file in the
 * shm directory holding the common object header and the lock, created
 * atomically through ipcx_named_open().
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ipcx/rwlock.h>

#include "../shm/named.h"
#include "../shm/shm_priv.h"
#include "../sys/sys.h"

struct rwlock_file {
	struct ipcx_obj_header h;
	struct ipcx_rwlock lock;
};

_Static_assert(__builtin_offsetof(struct rwlock_file, lock) == 64, "named rwlock is ABI");

struct ipcx_named_rwlock {
	struct rwlock_file *f;
};

struct create_arg {
	enum ipcx_kind kind;
	uint32_t check_ms;
};

static int build(int fd, void *arg)
{
	const struct create_arg *a = arg;
	IPCX_OPTS(ipcx_rwlock_opts, o, .check_ms = a->check_ms);
	struct rwlock_file *f = calloc(1, sizeof(*f));
	ssize_t n;
	int ret;

	if (!f)
		return -ENOMEM;
	ipcx_obj_header_init(&f->h, a->kind, sizeof(f->lock), sizeof(*f));
	ret = ipcx_rwlock_init(&f->lock, &o);
	if (!ret) {
		n = pwrite(fd, f, sizeof(*f), 0);
		if (n != (ssize_t)sizeof(*f))
			ret = n < 0 ? -errno : -EIO;
	}
	free(f);
	return ret;
}

/* Copy the caller's options (any struct size), rejecting unknown non-zero tails. */
static int get_opts(const struct ipcx_named_rwlock_opts *in, struct ipcx_named_rwlock_opts *o)
{
	int ret = ipcx_opts_copy(o, sizeof(*o), in);

	if (ret)
		return ret;
	return (o->perm & ~07777u) ? -EINVAL : 0;
}

static int named_open(enum ipcx_kind kind, struct ipcx_named_rwlock **out, const char *name,
		      unsigned int mode, const struct ipcx_named_rwlock_opts *opts)
{
	struct ipcx_named_rwlock_opts o;
	struct create_arg arg = { kind, 0 };
	struct ipcx_named_req req = { .kind = kind, .name = name, .mode = mode,
				      .size = sizeof(struct rwlock_file),
				      .init = build, .arg = &arg };
	struct ipcx_named_rwlock *h;
	struct rwlock_file *f;
	struct stat st;
	int fd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (mode & ~IPCX_OPEN_MODE_MASK || !(mode & IPCX_OPEN_MODE_MASK))
		return -EINVAL;	/* the lock is written by every user: no read-only */
	ret = get_opts(opts, &o);
	if (ret)
		return ret;
	if (o.check_ms > 60000)
		return -EINVAL;
	arg.check_ms = o.check_ms;
	req.perm = o.perm;
	req.dir = o.dir;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	/* ipcx_named_open() refuses a name held by another sync kind. */
	fd = ipcx_named_open(&req, NULL);
	if (fd < 0) {
		ret = fd;
		goto out_free;
	}
	/* Never map past the end of a short (foreign or truncated) file: SIGBUS. */
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out_close;
	}
	if ((uint64_t)st.st_size < sizeof(*f)) {
		ret = -EPROTO;
		goto out_close;
	}
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		ret = -errno;
		goto out_close;
	}
	if (ipcx_obj_header_check(&f->h, kind) || f->h.header_size != sizeof(f->lock) ||
	    f->h.total_size != sizeof(*f) ||
	    __atomic_load_n(&f->lock.magic, __ATOMIC_ACQUIRE) == 0) {
		munmap(f, sizeof(*f));
		ret = -EPROTO;
		goto out_close;
	}
	close(fd);
	h->f = f;
	*out = h;
	return 0;

out_close:
	close(fd);
out_free:
	free(h);
	return ret;
}

int ipcx_named_rwlock_open(struct ipcx_named_rwlock **out, const char *name,
			   unsigned int mode, const struct ipcx_named_rwlock_opts *opts)
{
	return named_open(IPCX_KIND_RWLOCK, out, name, mode, opts);
}

int ipcx_named_upgradable_open(struct ipcx_named_rwlock **out, const char *name,
			       unsigned int mode, const struct ipcx_named_rwlock_opts *opts)
{
	return named_open(IPCX_KIND_UPGRADABLE, out, name, mode, opts);
}

struct ipcx_rwlock *ipcx_named_rwlock_get(struct ipcx_named_rwlock *h)
{
	return h ? &h->f->lock : NULL;
}

int ipcx_named_rwlock_close(struct ipcx_named_rwlock *h)
{
	if (!h)
		return 0;
	munmap(h->f, sizeof(*h->f));
	free(h);
	return 0;
}

static int named_unlink(enum ipcx_kind kind, const char *name,
			const struct ipcx_named_rwlock_opts *opts)
{
	struct ipcx_named_rwlock_opts o;
	int ret = get_opts(opts, &o);

	return ret ? ret : ipcx_named_unlink(kind, name, o.dir);
}

int ipcx_named_rwlock_unlink(const char *name, const struct ipcx_named_rwlock_opts *opts)
{
	return named_unlink(IPCX_KIND_RWLOCK, name, opts);
}

int ipcx_named_upgradable_unlink(const char *name, const struct ipcx_named_rwlock_opts *opts)
{
	return named_unlink(IPCX_KIND_UPGRADABLE, name, opts);
}
