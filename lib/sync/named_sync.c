// SPDX-License-Identifier: MIT
/*
 * named_sync.c - named mutexes, recursive mutexes, conditions and
 * semaphores: a file "<dir>/ipcx.<kind>.<name>" holding the common object
 * header and the object, created atomically by ipcx_named_open() (the
 * object is fully initialised before the name appears) and mapped by each
 * opener. The object pointer returned is the handle: every ipcx_mutex_*,
 * ipcx_cond_* and ipcx_sem_* call works on it.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync_priv.h"
#include "shm/named.h"

#define OBJ_OFF		64u
#define FILE_SIZE	128u

union named_obj {
	struct ipcx_mutex m;
	struct ipcx_cond c;
	struct ipcx_sem s;
};

struct named_file {
	struct ipcx_obj_header h;
	union named_obj o;
};

_Static_assert(sizeof(struct named_file) == FILE_SIZE, "named sync file is ABI");
_Static_assert(offsetof(struct named_file, o) == OBJ_OFF, "named sync file is ABI");

struct init_arg {
	enum ipcx_kind kind;
	uint32_t flags;
	uint32_t spin_ns;
	uint32_t sem_value;
};

static int init_obj(union named_obj *o, const struct init_arg *a)
{
	switch (a->kind) {
	case IPCX_KIND_MUTEX:
	case IPCX_KIND_RMUTEX: {
		IPCX_OPTS(ipcx_mutex_opts, mo,
			  .type = a->kind == IPCX_KIND_RMUTEX ? IPCX_MUTEX_RECURSIVE
							      : IPCX_MUTEX_NORMAL,
			  .flags = a->flags, .spin_ns = a->spin_ns);
		return ipcx_mutex_init(&o->m, &mo);
	}
	case IPCX_KIND_COND: {
		IPCX_OPTS(ipcx_cond_opts, co, .flags = a->flags, .spin_ns = a->spin_ns);
		return ipcx_cond_init(&o->c, &co);
	}
	case IPCX_KIND_SEM: {
		IPCX_OPTS(ipcx_sem_opts, so, .flags = a->flags, .spin_ns = a->spin_ns);
		return ipcx_sem_init(&o->s, a->sem_value, &so);
	}
	default:
		return -EINVAL;
	}
}

static int named_init(int fd, void *arg)
{
	const struct init_arg *a = arg;
	struct named_file f;
	ssize_t n;
	int ret;

	memset(&f, 0, sizeof(f));
	ret = init_obj(&f.o, a);
	if (ret)
		return ret;
	ipcx_obj_header_init(&f.h, a->kind, sizeof(f.o), FILE_SIZE);
	n = pwrite(fd, &f, sizeof(f), 0);
	if (n != (ssize_t)sizeof(f))
		return n < 0 ? -errno : -EIO;
	return 0;
}

/* Does the file hold an initialised object of @kind? */
static bool obj_magic_ok(const union named_obj *o, enum ipcx_kind kind)
{
	switch (kind) {
	case IPCX_KIND_MUTEX:
	case IPCX_KIND_RMUTEX:
		return IPCX_LOAD_RELAXED(&o->m.magic) == IPCX_MUTEX_MAGIC;
	case IPCX_KIND_COND:
		return IPCX_LOAD_RELAXED(&o->c.magic) == IPCX_COND_MAGIC;
	default:
		return IPCX_LOAD_RELAXED(&o->s.magic) == IPCX_SEM_MAGIC;
	}
}

static bool is_mutex(enum ipcx_kind kind)
{
	return kind == IPCX_KIND_MUTEX || kind == IPCX_KIND_RMUTEX;
}

static int named_open(enum ipcx_kind kind, const char *name, unsigned int mode,
		      const struct ipcx_sync_named_opts *opts, void **out)
{
	struct init_arg a = { .kind = kind };
	struct ipcx_named_req req = { .kind = kind, .name = name, .mode = mode };
	const struct named_file *f;
	struct stat st;
	uint32_t perm;
	void *p;
	int fd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = ipcx_opts_check(opts, sizeof(*opts));
	if (ret)
		return ret;
	if (mode & ~IPCX_OPEN_MODE_MASK)	/* read-only makes no sense for a lock */
		return -EINVAL;
	a.flags = IPCX_OPT(opts, flags, 0u);
	a.spin_ns = IPCX_OPT(opts, spin_ns, 0u);
	a.sem_value = IPCX_OPT(opts, sem_value, 0u);
	perm = IPCX_OPT(opts, perm, 0u);
	if (perm & ~07777u)
		return -EINVAL;
	if (a.flags & ~(is_mutex(kind) ? (IPCX_SYNC_BLOCK | IPCX_MUTEX_PI) : IPCX_SYNC_BLOCK))
		return -EINVAL;
	if (kind == IPCX_KIND_SEM && a.sem_value > IPCX_SEM_VALUE_MAX)
		return -EINVAL;
	if (is_mutex(kind) && ipcx_robust_check())
		return -EOPNOTSUPP;

	req.perm = perm;
	req.size = FILE_SIZE;
	req.dir = IPCX_OPT(opts, dir, (const char *)NULL);
	req.init = named_init;
	req.arg = &a;
	fd = ipcx_named_open(&req, NULL);
	if (fd < 0)
		return fd;
	/* Never map past the end of a file a peer may have truncated. */
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (st.st_size < (off_t)FILE_SIZE) {
		close(fd);
		return -EPROTO;
	}
	p = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ret = p == MAP_FAILED ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	f = p;
	if (ipcx_obj_header_check(&f->h, kind) || f->h.total_size != FILE_SIZE ||
	    f->h.header_size != sizeof(union named_obj) ||
	    !obj_magic_ok(&f->o, kind)) {
		munmap(p, FILE_SIZE);
		return -EPROTO;
	}
	*out = (char *)p + OBJ_OFF;
	return 0;
}

/* The mapping's start if @obj is an object of @kind that we mapped, else NULL. */
static char *named_base(void *obj, enum ipcx_kind kind)
{
	char *base;

	if (!obj)
		return NULL;
	base = (char *)obj - OBJ_OFF;
	if ((uintptr_t)base & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1))
		return NULL;
	if (ipcx_obj_header_check((const struct ipcx_obj_header *)base, kind))
		return NULL;
	return base;
}

static int named_close(void *obj, enum ipcx_kind kind)
{
	char *base = named_base(obj, kind);

	if (!base)
		return -EINVAL;
	return munmap(base, FILE_SIZE) ? -errno : 0;
}

static int named_unlink(enum ipcx_kind kind, const char *name,
			const struct ipcx_sync_named_opts *opts)
{
	int ret = ipcx_opts_check(opts, sizeof(*opts));

	if (ret)
		return ret;
	return ipcx_named_unlink(kind, name, IPCX_OPT(opts, dir, (const char *)NULL));
}

int ipcx_named_mutex_open(const char *name, unsigned int mode,
			  const struct ipcx_sync_named_opts *opts, struct ipcx_mutex **out)
{
	return named_open(IPCX_KIND_MUTEX, name, mode, opts, (void **)out);
}

/*
 * A mutex held by any thread of this process is linked into that thread's
 * robust list: unmapping it would leave the kernel a node it cannot read
 * when the thread dies, and the walk would stop there (robust locks linked
 * behind it would never be released). Refuse with -EBUSY.
 */
static int mutex_close(struct ipcx_mutex *m, enum ipcx_kind kind)
{
	if (!named_base(m, kind))
		return -EINVAL;
	if (IPCX_LOAD_RELAXED(&m->magic) == IPCX_MUTEX_MAGIC && ipcx_mutex_held_here(m))
		return -EBUSY;
	return named_close(m, kind);
}

int ipcx_named_mutex_close(struct ipcx_mutex *m)
{
	return mutex_close(m, IPCX_KIND_MUTEX);
}

int ipcx_named_mutex_unlink(const char *name, const struct ipcx_sync_named_opts *opts)
{
	return named_unlink(IPCX_KIND_MUTEX, name, opts);
}

int ipcx_named_rmutex_open(const char *name, unsigned int mode,
			   const struct ipcx_sync_named_opts *opts, struct ipcx_mutex **out)
{
	return named_open(IPCX_KIND_RMUTEX, name, mode, opts, (void **)out);
}

int ipcx_named_rmutex_close(struct ipcx_mutex *m)
{
	return mutex_close(m, IPCX_KIND_RMUTEX);
}

int ipcx_named_rmutex_unlink(const char *name, const struct ipcx_sync_named_opts *opts)
{
	return named_unlink(IPCX_KIND_RMUTEX, name, opts);
}

int ipcx_named_cond_open(const char *name, unsigned int mode,
			 const struct ipcx_sync_named_opts *opts, struct ipcx_cond **out)
{
	return named_open(IPCX_KIND_COND, name, mode, opts, (void **)out);
}

int ipcx_named_cond_close(struct ipcx_cond *c)
{
	return named_close(c, IPCX_KIND_COND);
}

int ipcx_named_cond_unlink(const char *name, const struct ipcx_sync_named_opts *opts)
{
	return named_unlink(IPCX_KIND_COND, name, opts);
}

int ipcx_named_sem_open(const char *name, unsigned int mode,
			const struct ipcx_sync_named_opts *opts, struct ipcx_sem **out)
{
	return named_open(IPCX_KIND_SEM, name, mode, opts, (void **)out);
}

int ipcx_named_sem_close(struct ipcx_sem *s)
{
	return named_close(s, IPCX_KIND_SEM);
}

int ipcx_named_sem_unlink(const char *name, const struct ipcx_sync_named_opts *opts)
{
	return named_unlink(IPCX_KIND_SEM, name, opts);
}
