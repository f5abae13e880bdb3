// SPDX-License-Identifier: MIT
/*
 * managed.c - managed segments: header, open protocol, growth, and the
 * object directory (named / unique / anonymous objects).
 *
 * Segment layout (offsets from the segment base):
 *
 *   0     struct seg_hdr (common ipcx header, sizes, index state, the
 *         segment lock and its undo log)
 *   4096  struct ipcx_mem: the allocator, managing [4096, size)
 *
 * Objects live in allocator blocks: [name NUL][pad][struct mobj (48 B)][data];
 * the data is aligned as asked, the control block sits right before it, so
 * "pointer -> name, count, kind" is O(1). The index is an open-addressing
 * hash table (linear probing, tombstones) of {hash, data offset} slots in
 * its own block; it is rebuilt into a fresh block and published with one
 * logged store, so a crash during a rehash can only leak a block.
 *
 * Locks: the segment lock (recursive, robust) guards the index and the
 * object counters; order: segment lock -> allocator locks.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ipcx/managed.h>

#include "../mem/mem_int.h"
#include "../shm/named.h"
#include "../sys/sys.h"

#define SEG_LOG		32
#define MEM_OFF		4096ull
#define OBJ_MAGIC	0x4f424a58u	/* "XOBJ" */
#define OBJ_DEAD	0x44454144u
#define TOMB		1ull
#define MAP_ALIGN	(2ull << 20)
#define OBJ_NAME_MAX	1024

struct seg_hdr {
	struct ipcx_obj_header obj;
	uint64_t size;		/* current bytes */
	uint64_t max_size;	/* bytes every opener maps */
	uint64_t mem_off;
	uint64_t table;		/* index slots (segment offset), 0 = none yet */
	uint64_t cap;		/* slots, a power of two */
	uint64_t used;		/* live + tombstones */
	uint64_t named, unique;
	uint64_t anon;
	uint64_t gen;		/* index generation: odd while a writer changes it */
	uint64_t pad[6];
	struct ipcx_lk lk;
	struct ipcx_ulog_ent log[SEG_LOG];
};

struct slot {
	uint64_t hash;
	uint64_t obj;		/* segment offset of the data; 0 empty, TOMB removed */
};

struct mobj {
	uint32_t magic;
	uint32_t kind;
	uint32_t name_len;
	uint32_t data_back;	/* data - block start */
	uint64_t hash;
	uint64_t count;
	uint64_t elem_size;
	uint64_t type_tag;
};

_Static_assert(sizeof(struct seg_hdr) == 832, "seg_hdr is ABI");
_Static_assert(__builtin_offsetof(struct seg_hdr, lk) == 192, "seg_hdr is ABI");
_Static_assert(sizeof(struct mobj) == 48, "mobj is ABI");
_Static_assert(sizeof(struct slot) == 16, "slot is ABI");

enum {
	S_RO = 1, S_COW = 2, S_HEAP = 4, S_BUFFER = 8, S_FILE = 16,
};

struct ipcx_managed {
	char *base;
	struct seg_hdr *h;
	struct ipcx_mem *mem;
	uint64_t map_len;	/* bytes mapped (max_size) */
	int fd;
	unsigned int flags;
};

#define SW(s, p, v)	ipcx_lk_write(&(s)->h->lk, (s)->base, (p), (v))

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline uint64_t seg_size(const struct ipcx_managed *s)
{
	return __atomic_load_n(&s->h->size, __ATOMIC_RELAXED);
}

/* ---- building and validating ------------------------------------------- */

static int seg_build(void *base, uint64_t size, uint64_t max, uint64_t huge)
{
	struct seg_hdr *h = base;
	struct ipcx_mem_opts mo = { .sz = sizeof(mo), .huge_align = huge, .max_size = max - MEM_OFF };
	int ret;

	memset(h, 0, sizeof(*h));
	ret = ipcx_lk_init(&h->lk, SEG_LOG, true);
	if (ret)
		return ret;
	h->size = size;
	h->max_size = max;
	h->mem_off = MEM_OFF;
	if (!ipcx_mem_init((char *)base + MEM_OFF, size - MEM_OFF, &mo))
		return -EINVAL;
	/* The common header last: a segment is recognisable only when complete. */
	ipcx_obj_header_init(&h->obj, IPCX_KIND_MANAGED, sizeof(*h), size);
	return 0;
}

static int seg_validate(const void *base, uint64_t mapped)
{
	const struct seg_hdr *h = base;

	if (mapped < MEM_OFF + IPCX_MEM_MIN_SIZE)
		return -EPROTO;
	if (ipcx_obj_header_check(&h->obj, IPCX_KIND_MANAGED) ||
	    h->obj.header_size != sizeof(*h) || h->mem_off != MEM_OFF ||
	    h->size > mapped || h->size < MEM_OFF + IPCX_MEM_MIN_SIZE ||
	    h->max_size < h->size || h->lk.cap != SEG_LOG)
		return -EPROTO;
	if (h->table && (h->cap & (h->cap - 1) || !h->cap || h->table < MEM_OFF ||
			 h->table >= h->size || h->cap > (h->size - h->table) / sizeof(struct slot)))
		return -EPROTO;
	return ipcx_mem_attach((const char *)base + MEM_OFF, h->size - MEM_OFF);
}

/*
 * Map @len bytes at an address aligned to 2 MiB (so offset alignment equals
 * address alignment in every process, up to the hugepage size).
 */
static void *map_aligned(uint64_t len, int prot, int flags, int fd)
{
	char *resv, *a;
	void *p;

	resv = mmap(NULL, len + MAP_ALIGN, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return NULL;
	a = (char *)round_up((uint64_t)(uintptr_t)resv, MAP_ALIGN);
	p = mmap(a, len, prot, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		munmap(resv, len + MAP_ALIGN);
		return NULL;
	}
	if (a > resv)
		munmap(resv, (size_t)(a - resv));
	if (resv + len + MAP_ALIGN > a + len)
		munmap(a + len, (size_t)(resv + len + MAP_ALIGN - (a + len)));
	return a;
}

static struct ipcx_managed *handle_new(void *base, uint64_t map_len, int fd, unsigned int flags)
{
	struct ipcx_managed *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->h = base;
	s->mem = (struct ipcx_mem *)((char *)base + MEM_OFF);
	s->map_len = map_len;
	s->fd = fd;
	s->flags = flags;
	return s;
}

/*
 * A copy-on-write view gets fresh locks: copies of locks that other
 * processes held when the pages were copied would never be released.
 */
static int cow_reset(void *base)
{
	struct seg_hdr *h = base;
	int ret;

	if (h->lk.n)
		ipcx_lk_rollback(&h->lk, base, h->size);
	ret = ipcx_lk_init(&h->lk, SEG_LOG, true);
	if (ret)
		return ret;
	h->gen = (h->gen | 1) + 1;
	return ipcx_mem_private_reset((struct ipcx_mem *)((char *)base + MEM_OFF));
}

/* Read the header of the segment in @fd, map all of its max_size and validate. */
static int map_fd(int fd, unsigned int mode, struct ipcx_managed **out)
{
	struct seg_hdr h;
	struct stat st;
	unsigned int flags = S_FILE;
	int prot = PROT_READ | PROT_WRITE, mflags = MAP_SHARED, ret;
	uint64_t len;
	void *base;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EPROTO;
	if (fstat(fd, &st))
		return -errno;
	if (ipcx_obj_header_check(&h.obj, IPCX_KIND_MANAGED) || h.max_size < h.size ||
	    h.size > (uint64_t)st.st_size || h.max_size > (1ull << 46))
		return -EPROTO;
	if (mode & IPCX_READ_ONLY) {
		prot = PROT_READ;
		flags |= S_RO;
	} else if (mode & IPCX_COPY_ON_WRITE) {
		mflags = MAP_PRIVATE;
		flags |= S_COW;
	}
	len = round_up(h.max_size, page_size());
	base = map_aligned(len, prot, mflags, fd);
	if (!base)
		return -ENOMEM;
	ret = seg_validate(base, len);
	if (!ret && (flags & S_COW))
		ret = cow_reset(base);
	if (ret) {
		munmap(base, len);
		return ret;
	}
	*out = handle_new(base, len, fd, flags);
	if (!*out) {
		munmap(base, len);
		return -ENOMEM;
	}
	return 0;
}

/* Reserve @size bytes (fallocate: a full filesystem fails now, not with SIGBUS later). */
static int backing_reserve(int fd, uint64_t size)
{
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return ftruncate(fd, (off_t)size) ? -errno : 0;
}

struct create_arg {
	uint64_t size, max, huge;
};

static int create_sizes(const struct ipcx_managed_opts *o, struct create_arg *a)
{
	size_t pg = page_size();

	if (!o || !o->size || o->size > (1ull << 46))
		return -EINVAL;
	uint64_t min;

	a->max = o->max_size > o->size ? round_up(o->max_size, pg) : round_up(o->size, pg);
	/* room for the allocator's header and chunk map (at most 1/16 of it) */
	min = MEM_OFF + IPCX_MEM_MIN_SIZE + 16384;
	a->size = round_up(o->size < min ? min : o->size, pg);
	if (a->max < a->size)
		a->max = a->size;
	a->huge = o->huge_align;
	if (a->max > (1ull << 46) || (a->huge & (a->huge - 1)))
		return -EINVAL;
	return 0;
}

static int init_file(int fd, void *arg)
{
	struct create_arg *a = arg;
	void *p = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int ret;

	if (p == MAP_FAILED)
		return -errno;
	ret = seg_build(p, a->size, a->max, a->huge);
	munmap(p, a->size);
	return ret;
}

/* A caller's struct larger than ours must have an all-zero tail (IPCX_OPTS contract). */
static int tail_zero(const void *p, size_t sz, size_t ours)
{
	const unsigned char *c = p;

	for (; ours < sz && ours < 4096; ours++)
		if (c[ours])
			return -E2BIG;
	return sz > 4096 ? -E2BIG : 0;
}

/* Only the fields a caller's (possibly older, smaller) opts struct has. */
static int opts_copy(struct ipcx_managed_opts *dst, const struct ipcx_managed_opts *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return 0;
	if (src->sz < sizeof(size_t))
		return -EINVAL;
	memcpy(dst, src, src->sz < sizeof(*dst) ? src->sz : sizeof(*dst));
	return tail_zero(src, src->sz, sizeof(*dst));
}

int ipcx_managed_open(const char *name, const struct ipcx_managed_opts *opts,
		      struct ipcx_managed **out)
{
	struct ipcx_managed_opts o;
	struct create_arg a = { 0 };
	struct ipcx_named_req req = { .kind = IPCX_KIND_MANAGED, .name = name };
	bool created;
	int fd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = opts_copy(&o, opts);
	if (ret)
		return ret;
	if (!(o.mode & IPCX_OPEN_MODE_MASK))
		o.mode |= IPCX_OPEN_OR_CREATE;
	if ((o.mode & IPCX_READ_ONLY) && (o.mode & IPCX_COPY_ON_WRITE))
		return -EINVAL;
	if ((o.mode & IPCX_CREATE_ONLY) && !(o.mode & (IPCX_READ_ONLY | IPCX_COPY_ON_WRITE))) {
		ret = create_sizes(&o, &a);
		if (ret)
			return ret;
		req.size = a.size;
		req.init = init_file;
		req.arg = &a;
	} else if (o.mode & IPCX_CREATE_ONLY) {
		/* read-only / private openers cannot create */
		if ((o.mode & IPCX_OPEN_MODE_MASK) == IPCX_CREATE_ONLY)
			return -EINVAL;
		o.mode = (o.mode & ~IPCX_OPEN_MODE_MASK) | IPCX_OPEN_ONLY;
	}
	req.mode = o.mode & (IPCX_OPEN_MODE_MASK | IPCX_READ_ONLY);
	req.perm = o.perm;
	req.dir = o.dir;
	fd = ipcx_named_open(&req, &created);
	if (fd < 0)
		return fd;
	ret = map_fd(fd, o.mode, out);
	if (ret)
		close(fd);
	return ret;
}

/* Build a segment file at @path atomically: unnamed file in its directory, then linkat. */
static int file_create(const char *path, const struct create_arg *a, unsigned int perm)
{
	char dir[IPCX_PATH_MAX], proc[64];
	const char *slash = strrchr(path, '/');
	size_t dl;
	int fd, ret;

	if (!slash) {
		strcpy(dir, ".");
	} else {
		dl = slash == path ? 1 : (size_t)(slash - path);
		if (dl >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, perm ? perm : IPCX_DEFAULT_PERM)) {
		ret = -errno;
		goto fail;
	}
	ret = backing_reserve(fd, a->size);
	if (!ret)
		ret = init_file(fd, (void *)a);
	if (ret)
		goto fail;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int ipcx_managed_open_file(const char *path, const struct ipcx_managed_opts *opts,
			   struct ipcx_managed **out)
{
	struct ipcx_managed_opts o;
	struct create_arg a = { 0 };
	unsigned int how;
	int fd = -1, ret, tries;

	if (!out || !path || !*path || strlen(path) >= IPCX_PATH_MAX)
		return -EINVAL;
	*out = NULL;
	ret = opts_copy(&o, opts);
	if (ret)
		return ret;
	how = o.mode & IPCX_OPEN_MODE_MASK;
	if (!how)
		how = IPCX_OPEN_OR_CREATE;
	if ((o.mode & IPCX_READ_ONLY) && (o.mode & IPCX_COPY_ON_WRITE))
		return -EINVAL;
	if (o.mode & (IPCX_READ_ONLY | IPCX_COPY_ON_WRITE)) {
		if (how == IPCX_CREATE_ONLY)
			return -EINVAL;
		how = IPCX_OPEN_ONLY;
	}
	if (how & IPCX_CREATE_ONLY) {
		ret = create_sizes(&o, &a);
		if (ret)
			return ret;
	}
	/* open-or-create: lose a create race (EEXIST) -> open the winner's, bounded. */
	fd = -EAGAIN;
	for (tries = 0; tries < 64; tries++) {
		if (how & IPCX_OPEN_ONLY) {
			fd = open(path, ((o.mode & IPCX_READ_ONLY) ? O_RDONLY : O_RDWR) |
				  O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				fd = -errno;
			if (fd != -ENOENT || how == IPCX_OPEN_ONLY)
				break;
		}
		fd = file_create(path, &a, o.perm);
		if (fd != -EEXIST || how == IPCX_CREATE_ONLY)
			break;
	}
	if (fd < 0)
		return fd;
	ret = map_fd(fd, o.mode, out);
	if (ret)
		close(fd);
	return ret;
}

int ipcx_managed_unlink(const char *name, const char *dir)
{
	return ipcx_named_unlink(IPCX_KIND_MANAGED, name, dir);
}

int ipcx_managed_create_memfd(const struct ipcx_managed_opts *opts, struct ipcx_managed **out)
{
	struct ipcx_managed_opts o;
	struct create_arg a;
	int fd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = opts_copy(&o, opts);
	if (ret)
		return ret;
	ret = create_sizes(opts ? &o : NULL, &a);
	if (ret)
		return ret;
	fd = ipcx_memfd_create("ipcx.seg", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	ret = backing_reserve(fd, a.size);
	if (!ret)
		ret = init_file(fd, &a);
	if (ret)
		goto fail;
	/* No peer may shrink it under a mapping (SIGBUS); growth stays allowed. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		ret = -errno;
		goto fail;
	}
	ret = map_fd(fd, 0, out);
	if (!ret)
		return 0;
fail:
	close(fd);
	return ret;
}

int ipcx_managed_open_fd(int fd, const struct ipcx_managed_opts *opts, struct ipcx_managed **out)
{
	struct ipcx_managed_opts o;
	int nfd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = opts_copy(&o, opts);
	if (ret)
		return ret;
	if ((o.mode & IPCX_READ_ONLY) && (o.mode & IPCX_COPY_ON_WRITE))
		return -EINVAL;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0)
		return -errno;
	ret = map_fd(nfd, o.mode, out);
	if (ret)
		close(nfd);
	return ret;
}

int ipcx_managed_create_heap(const struct ipcx_managed_opts *opts, struct ipcx_managed **out)
{
	struct ipcx_managed_opts o;
	struct create_arg a;
	void *base;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = opts_copy(&o, opts);
	if (ret)
		return ret;
	ret = create_sizes(opts ? &o : NULL, &a);
	if (ret)
		return ret;
	base = map_aligned(a.max, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	if (!base)
		return -ENOMEM;
	ret = seg_build(base, a.size, a.max, a.huge);
	if (!ret) {
		*out = handle_new(base, a.max, -1, S_HEAP);
		if (*out)
			return 0;
		ret = -ENOMEM;
	}
	munmap(base, a.max);
	return ret;
}

int ipcx_managed_open_buffer(void *buf, size_t size, unsigned int mode, struct ipcx_managed **out)
{
	unsigned int how = mode & IPCX_OPEN_MODE_MASK;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!buf || ((uintptr_t)buf & 63) || (how != IPCX_CREATE_ONLY && how != IPCX_OPEN_ONLY) ||
	    (mode & IPCX_COPY_ON_WRITE) || (how == IPCX_CREATE_ONLY && (mode & IPCX_READ_ONLY)))
		return -EINVAL;
	size &= ~(size_t)15;
	if (how == IPCX_CREATE_ONLY) {
		if (size < MEM_OFF + IPCX_MEM_MIN_SIZE)
			return -EINVAL;
		ret = seg_build(buf, size, size, 0);
	} else {
		ret = seg_validate(buf, size);
	}
	if (ret)
		return ret;
	*out = handle_new(buf, size, -1, S_BUFFER | ((mode & IPCX_READ_ONLY) ? S_RO : 0));
	return *out ? 0 : -ENOMEM;
}

void ipcx_managed_close(struct ipcx_managed *s)
{
	if (!s)
		return;
	if (!(s->flags & S_BUFFER))
		munmap(s->base, s->map_len);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

int ipcx_managed_fd(const struct ipcx_managed *s)
{
	return s && s->fd >= 0 ? s->fd : -EBADF;
}

void *ipcx_managed_base(const struct ipcx_managed *s)
{
	return s ? s->base : NULL;
}

uint64_t ipcx_managed_size(const struct ipcx_managed *s)
{
	return s ? seg_size(s) : 0;
}

struct ipcx_mem *ipcx_managed_mem(const struct ipcx_managed *s)
{
	return s ? s->mem : NULL;
}

/* ---- raw memory and handles --------------------------------------------- */

void *ipcx_managed_alloc(struct ipcx_managed *s, size_t size)
{
	return s && !(s->flags & S_RO) ? ipcx_mem_alloc(s->mem, size) : NULL;
}

void *ipcx_managed_alloc_aligned(struct ipcx_managed *s, size_t size, size_t align)
{
	return s && !(s->flags & S_RO) ? ipcx_mem_alloc_aligned(s->mem, size, align) : NULL;
}

int ipcx_managed_free(struct ipcx_managed *s, void *p)
{
	if (!s)
		return -EINVAL;
	if (s->flags & S_RO)
		return -EROFS;
	return ipcx_mem_free(s->mem, p);
}

bool ipcx_managed_belongs(const struct ipcx_managed *s, const void *p)
{
	uintptr_t a = (uintptr_t)p, b;

	if (!s || !p)
		return false;
	b = (uintptr_t)s->base;
	return a >= b && a - b < seg_size(s);
}

struct ipcx_handle ipcx_managed_handle(const struct ipcx_managed *s, const void *p)
{
	if (!s)
		return IPCX_HANDLE_NULL;
	return ipcx_handle_from_ptr(s->base, seg_size(s), p);
}

void *ipcx_managed_ptr(const struct ipcx_managed *s, struct ipcx_handle h, size_t len)
{
	if (!s)
		return NULL;
	return ipcx_handle_to_ptr(s->base, seg_size(s), h, len);
}

/* ---- locking -------------------------------------------------------------- */

/*
 * After a dead holder's op is rolled back the generation is back to a value
 * an optimistic reader may have seen before the op: move it on, so that
 * reader retries.
 */
static inline int seg_locked(struct ipcx_managed *s, int ret)
{
	if (ret == 1) {
		__atomic_store_n(&s->h->gen, (s->h->gen | 1) + 1, __ATOMIC_RELEASE);
		ret = 0;
	}
	return ret;
}

static inline int seg_lock(struct ipcx_managed *s)
{
	if (s->flags & S_RO)
		return 0;
	return seg_locked(s, ipcx_lk_lock_repair(&s->h->lk, s->base, seg_size(s)));
}

/* Lock for a call that writes the segment: -EROFS on a read-only open. */
static inline int seg_lock_writer(struct ipcx_managed *s)
{
	return (s->flags & S_RO) ? -EROFS : seg_lock(s);
}

/* Index changes are bracketed by an odd generation (logged: rolled back too). */
static inline void gen_begin(struct ipcx_managed *s)
{
	SW(s, &s->h->gen, s->h->gen | 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);	/* odd before any index store */
}

static inline void gen_end(struct ipcx_managed *s)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);	/* index stores before even */
	SW(s, &s->h->gen, s->h->gen + 1);
}

static inline void seg_unlock(struct ipcx_managed *s)
{
	if (!(s->flags & S_RO))
		ipcx_lk_unlock(&s->h->lk);
}

/* ---- the index -------------------------------------------------------------- */

struct key {
	enum ipcx_obj_kind kind;
	const char *name;
	size_t len;
	uint64_t tag;
	uint64_t hash;
};

static inline uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_name(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;

	while (len >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
		s += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, s, len);
	return mix(h ^ w);
}

static int key_named(struct key *k, const char *name)
{
	if (!name)
		return -EINVAL;
	k->len = strnlen(name, OBJ_NAME_MAX + 1);
	if (!k->len || k->len > OBJ_NAME_MAX)
		return -EINVAL;
	k->kind = IPCX_OBJ_NAMED;
	k->name = name;
	k->tag = 0;
	k->hash = hash_name(name, k->len);
	return 0;
}

static void key_unique(struct key *k, uint64_t tag)
{
	k->kind = IPCX_OBJ_UNIQUE;
	k->name = "";
	k->len = 0;
	k->tag = tag;
	k->hash = mix(tag ^ 0x756e69717565ull);
}

/* Control block of the object whose data is at segment offset @off, or NULL. */
static struct mobj *ctrl_at(const struct ipcx_managed *s, uint64_t off)
{
	uint64_t size = seg_size(s);
	struct mobj *c;

	if (off < MEM_OFF + 128 || off >= size || (off & 15))
		return NULL;
	c = (struct mobj *)(s->base + off - sizeof(*c));
	if (c->magic != OBJ_MAGIC || c->kind < IPCX_OBJ_NAMED || c->kind > IPCX_OBJ_ANON ||
	    c->data_back < sizeof(*c) + c->name_len + 1 || c->data_back > off - MEM_OFF ||
	    c->name_len > OBJ_NAME_MAX)
		return NULL;
	{
		uint64_t bytes;

		if (__builtin_mul_overflow(c->count, c->elem_size, &bytes) || bytes > size - off)
			return NULL;
	}
	return c;
}

static inline const char *ctrl_name(const struct mobj *c)
{
	return (const char *)c + sizeof(*c) - c->data_back;
}

static inline struct slot *slots(const struct ipcx_managed *s)
{
	return (struct slot *)(s->base + s->h->table);
}

/*
 * A bounds-checked snapshot of the index (a read-only opener reads it while
 * writers may swap it). Returns false when there is none or it is invalid.
 */
static bool index_get(const struct ipcx_managed *s, const struct slot **t, uint64_t *capp)
{
	uint64_t table = __atomic_load_n(&s->h->table, __ATOMIC_ACQUIRE);
	uint64_t cap = __atomic_load_n(&s->h->cap, __ATOMIC_ACQUIRE), size = seg_size(s);

	if (!table || !cap || (cap & (cap - 1)) || table < MEM_OFF || table >= size ||
	    cap > (size - table) / sizeof(struct slot))
		return false;
	*t = (const struct slot *)(s->base + table);
	*capp = cap;
	return true;
}

/*
 * Find @k. Returns the slot index of the match or -1; *@ins gets the slot
 * an insert should use (first tombstone or the empty slot ending the probe).
 */
static long lookup(const struct ipcx_managed *s, const struct key *k, long *ins,
		   uint64_t *objp)
{
	uint64_t cap, mask, i, n;
	const struct slot *t;

	*ins = -1;
	if (!index_get(s, &t, &cap))
		return -1;
	mask = cap - 1;
	for (i = k->hash & mask, n = 0; n < cap; n++, i = (i + 1) & mask) {
		uint64_t obj = t[i].obj;
		const struct mobj *c;

		if (!obj) {
			if (*ins < 0)
				*ins = (long)i;
			return -1;
		}
		if (obj == TOMB) {
			if (*ins < 0)
				*ins = (long)i;
			continue;
		}
		if (t[i].hash != k->hash)
			continue;
		c = ctrl_at(s, obj);
		if (!c || c->kind != (uint32_t)k->kind)
			continue;
		if (k->kind == IPCX_OBJ_UNIQUE ? c->type_tag == k->tag :
		    (c->name_len == k->len && !memcmp(ctrl_name(c), k->name, k->len))) {
			if (objp)
				*objp = obj;
			return (long)i;
		}
	}
	return -1;
}

/* Rebuild the index with @ncap slots (lock held). */
static int rehash(struct ipcx_managed *s, uint64_t ncap)
{
	struct seg_hdr *h = s->h;
	uint64_t i, old = h->table, cap = h->cap, live = 0;
	struct slot *t, *ot = old ? slots(s) : NULL;

	t = ipcx_mem_alloc_aligned(s->mem, ncap * sizeof(*t), 64);
	if (!t)
		return -ENOMEM;
	memset(t, 0, ncap * sizeof(*t));
	for (i = 0; ot && i < cap; i++) {
		uint64_t j;

		if (ot[i].obj <= TOMB)
			continue;
		for (j = ot[i].hash & (ncap - 1); t[j].obj; j = (j + 1) & (ncap - 1))
			;
		t[j] = ot[i];
		live++;
	}
	/*
	 * Publish: the new table is complete before these stores. Their order
	 * keeps the header valid for seg_validate() after each store and each
	 * step of a rollback (a process killed in between leaves a segment
	 * that must still open, to be rolled back by its next locker): the
	 * table first when it grows (the old cap fits the new table), the cap
	 * first for the first table (no table: the cap is not looked at) and
	 * when it shrinks (the new cap fits the old table).
	 */
	gen_begin(s);
	if (old && ncap >= cap) {
		SW(s, &h->table, (uint64_t)((char *)t - s->base));
		SW(s, &h->cap, ncap);
	} else {
		SW(s, &h->cap, ncap);
		SW(s, &h->table, (uint64_t)((char *)t - s->base));
	}
	SW(s, &h->used, live);
	gen_end(s);
	ipcx_lk_commit(&h->lk);
	if (ot)
		ipcx_mem_free(s->mem, ot);
	return 0;
}

static int ensure_room(struct ipcx_managed *s, uint64_t more)
{
	struct seg_hdr *h = s->h;
	uint64_t live = h->named + h->unique, ncap = 64;

	/* Load up to 4/5 (linear probing stays short); rebuild at about 1/2. */
	if (h->table && (h->used + more) * 5 <= h->cap * 4)
		return 0;
	while (ncap < (live + more) * 2)
		ncap *= 2;
	return rehash(s, ncap);
}

static void obj_fini(void *data, const struct mobj *c, size_t upto,
		     void (*fini)(void *, size_t, void *), void *arg)
{
	while (fini && upto--)
		fini((char *)data + upto * c->elem_size, upto, arg);
}

static int spec_read(const struct ipcx_obj_spec *spec, struct ipcx_obj_spec *o)
{
	memset(o, 0, sizeof(*o));
	if (!spec || spec->sz < offsetof(struct ipcx_obj_spec, elem_size))
		return -EINVAL;
	if (tail_zero(spec, spec->sz, sizeof(*o)))
		return -E2BIG;
	memcpy(o, spec, spec->sz < sizeof(*o) ? spec->sz : sizeof(*o));
	if (!o->count)
		o->count = 1;
	if (!o->align)
		o->align = 16;
	/* Alignment up to the mapping's own (2 MiB): beyond, it would not hold in other processes. */
	if (o->align & (o->align - 1) || o->align > MAP_ALIGN ||
	    (o->elem_size && o->count > (SIZE_MAX >> 2) / o->elem_size))
		return -EINVAL;
	return 0;
}

/* Allocate and build an object (lock held, nothing published). */
static int obj_build(struct ipcx_managed *s, const struct key *k, const struct ipcx_obj_spec *sp,
		     void **data)
{
	size_t align = sp->align < 16 ? 16 : sp->align;
	size_t head = round_up(k->len + 1 + sizeof(struct mobj), align);
	size_t bytes = sp->elem_size * sp->count, i;
	struct mobj *c;
	char *blk, *d;
	int ret;

	if (bytes > (SIZE_MAX >> 2) - head)
		return -ENOMEM;
	blk = ipcx_mem_alloc_aligned(s->mem, head + bytes, align);
	if (!blk)
		return -ENOMEM;
	d = blk + head;
	c = (struct mobj *)(d - sizeof(*c));
	memcpy(blk, k->name, k->len);
	blk[k->len] = '\0';
	c->kind = (uint32_t)k->kind;
	c->name_len = (uint32_t)k->len;
	c->data_back = (uint32_t)head;
	c->hash = k->hash;
	c->count = sp->count;
	c->elem_size = sp->elem_size;
	c->type_tag = k->kind == IPCX_OBJ_UNIQUE ? k->tag : sp->type_tag;
	c->magic = OBJ_MAGIC;
	if (!sp->init) {
		memset(d, 0, bytes);
	} else {
		for (i = 0; i < sp->count; i++) {
			ret = sp->init(d + i * sp->elem_size, i, sp->arg);
			if (ret) {
				obj_fini(d, c, i, sp->fini, sp->arg);
				c->magic = OBJ_DEAD;
				ipcx_mem_free(s->mem, blk);
				return ret < 0 ? ret : -EINVAL;
			}
		}
	}
	*data = d;
	return 0;
}

static int obj_create(struct ipcx_managed *s, const struct key *k,
		      const struct ipcx_obj_spec *spec, void **out, bool *created, bool find_ok)
{
	struct ipcx_obj_spec sp;
	struct seg_hdr *h;
	uint64_t obj = 0;
	long idx, ins;
	void *d;
	int ret;

	if (created)
		*created = false;
	if (!s || !out)
		return -EINVAL;
	*out = NULL;
	ret = spec_read(spec, &sp);
	if (ret)
		return ret;
	if (s->flags & S_RO) {
		if (!find_ok)
			return -EROFS;
	}
	h = s->h;
	ret = seg_lock(s);
	if (ret)
		return ret;
	idx = lookup(s, k, &ins, &obj);
	if (idx >= 0) {
		struct mobj *c = ctrl_at(s, obj);

		if (!find_ok || !c) {
			ret = -EEXIST;
		} else if (sp.type_tag != IPCX_TYPE_ANY && c->type_tag != sp.type_tag) {
			ret = -EPROTOTYPE;
		} else {
			*out = (char *)c + sizeof(*c);
			ret = 0;
		}
		goto out;
	}
	if (s->flags & S_RO) {
		ret = -EROFS;
		goto out;
	}
	ret = ensure_room(s, 1);
	if (ret)
		goto out;
	ret = obj_build(s, k, &sp, &d);
	if (ret)
		goto out;
	/* @init may have called back into the segment: probe again. */
	ret = ensure_room(s, 1);
	if (!ret && lookup(s, k, &ins, NULL) >= 0)
		ret = -EEXIST;
	if (ret) {
		struct mobj *c = (struct mobj *)((char *)d - sizeof(struct mobj));

		obj_fini(d, c, c->count, sp.fini, sp.arg);
		c->magic = OBJ_DEAD;
		ipcx_mem_free(s->mem, (char *)d - c->data_back);
		goto out;
	}
	{
		struct slot *t = &slots(s)[ins];

		gen_begin(s);
		SW(s, &t->hash, k->hash);
		if (!t->obj)
			SW(s, &h->used, h->used + 1);
		SW(s, &t->obj, (uint64_t)((char *)d - s->base));
		if (k->kind == IPCX_OBJ_NAMED)
			SW(s, &h->named, h->named + 1);
		else
			SW(s, &h->unique, h->unique + 1);
		gen_end(s);
	}
	*out = d;
	if (created)
		*created = true;
out:
	seg_unlock(s);
	return ret;
}

/*
 * Lock-free find: read the generation, look up with every offset checked
 * against the segment (the table may be swapped or entries removed under
 * us; freed memory stays mapped), read the generation again. Equal and even
 * means nothing changed: the answer is what a locked find would have given.
 * Return 1 when the caller must fall back to the lock.
 */
static int find_optimistic(struct ipcx_managed *s, const struct key *k, uint64_t tag,
			   void **out, size_t *count)
{
	const struct seg_hdr *h = s->h;
	uint64_t g1, g2, table, cap, size = seg_size(s), mask, i, n, cnt = 0, ttag = 0;
	const struct slot *t;
	const struct mobj *c = NULL;

	g1 = __atomic_load_n(&h->gen, __ATOMIC_ACQUIRE);
	if (g1 & 1)
		return 1;
	table = __atomic_load_n(&h->table, __ATOMIC_RELAXED);
	cap = __atomic_load_n(&h->cap, __ATOMIC_RELAXED);
	if (!table)
		goto answer;
	if (!cap || (cap & (cap - 1)) || table < MEM_OFF || table >= size ||
	    cap > (size - table) / sizeof(*t))
		return 1;
	t = (const struct slot *)(s->base + table);
	mask = cap - 1;
	for (i = k->hash & mask, n = 0; n < cap; n++, i = (i + 1) & mask) {
		uint64_t obj = __atomic_load_n(&t[i].obj, __ATOMIC_RELAXED);

		if (!obj)
			break;
		if (obj == TOMB || __atomic_load_n(&t[i].hash, __ATOMIC_RELAXED) != k->hash)
			continue;
		c = ctrl_at(s, obj);
		if (c && c->kind == (uint32_t)k->kind &&
		    (k->kind == IPCX_OBJ_UNIQUE ? c->type_tag == k->tag :
		     (c->name_len == k->len && !memcmp(ctrl_name(c), k->name, k->len)))) {
			cnt = c->count;
			ttag = c->type_tag;
			break;
		}
		c = NULL;
	}
answer:
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	g2 = __atomic_load_n(&h->gen, __ATOMIC_RELAXED);
	if (g1 != g2)
		return 1;
	if (!c)
		return -ENOENT;
	if (tag != IPCX_TYPE_ANY && ttag != tag)
		return -EPROTOTYPE;
	if (out)
		*out = (char *)c + sizeof(*c);
	if (count)
		*count = cnt;
	return 0;
}

/*
 * Under the segment lock: the object of @k with type @tag. Return 0 with
 * *@cp and *@idxp set, -ENOENT or -EPROTOTYPE.
 */
static int find_locked(struct ipcx_managed *s, const struct key *k, uint64_t tag,
		       struct mobj **cp, long *idxp)
{
	uint64_t obj = 0;
	long ins;

	*idxp = lookup(s, k, &ins, &obj);
	*cp = *idxp >= 0 ? ctrl_at(s, obj) : NULL;
	if (!*cp)
		return -ENOENT;
	if (tag != IPCX_TYPE_ANY && (*cp)->type_tag != tag)
		return -EPROTOTYPE;
	return 0;
}

static int obj_find(struct ipcx_managed *s, const struct key *k, uint64_t tag, void **out,
		    size_t *count)
{
	struct mobj *c = NULL;
	long idx;
	int ret, tries;

	for (tries = 0; tries < 3; tries++) {
		ret = find_optimistic(s, k, tag, out, count);
		if (ret != 1)
			return ret;
	}
	ret = seg_lock(s);
	if (ret)
		return ret;
	ret = find_locked(s, k, tag, &c, &idx);
	seg_unlock(s);
	if (ret)
		return ret;
	if (out)
		*out = (char *)c + sizeof(*c);
	if (count)
		*count = c->count;
	return 0;
}

/* Unlink (if indexed), finalise and free the object with control block @c (lock held). */
static void obj_remove(struct ipcx_managed *s, struct mobj *c, long idx,
		       void (*fini)(void *, size_t, void *), void *arg)
{
	struct seg_hdr *h = s->h;
	char *d = (char *)c + sizeof(*c);

	if (idx >= 0) {
		gen_begin(s);
		SW(s, &slots(s)[idx].obj, TOMB);
		if (c->kind == IPCX_OBJ_NAMED)
			SW(s, &h->named, h->named - 1);
		else
			SW(s, &h->unique, h->unique - 1);
		SW(s, (uint64_t *)c, ((uint64_t)c->kind << 32) | OBJ_DEAD);
		gen_end(s);
	} else {
		SW(s, &h->anon, h->anon - 1);
		SW(s, (uint64_t *)c, ((uint64_t)c->kind << 32) | OBJ_DEAD);
	}
	ipcx_lk_commit(&h->lk);
	/* Unreachable from now on: a crash past here leaks this block only. */
	obj_fini(d, c, c->count, fini, arg);
	ipcx_mem_free(s->mem, d - c->data_back);
}

static int obj_destroy(struct ipcx_managed *s, const struct key *k, uint64_t tag,
		       void (*fini)(void *, size_t, void *), void *arg)
{
	struct mobj *c = NULL;
	long idx;
	int ret;

	if (!s)
		return -EINVAL;
	ret = seg_lock_writer(s);
	if (ret)
		return ret;
	ret = find_locked(s, k, tag, &c, &idx);
	if (!ret)
		obj_remove(s, c, idx, fini, arg);
	seg_unlock(s);
	return ret;
}

int ipcx_managed_construct(struct ipcx_managed *s, const char *name,
			   const struct ipcx_obj_spec *spec, void **out)
{
	struct key k;
	int ret = key_named(&k, name);

	return ret ? ret : obj_create(s, &k, spec, out, NULL, false);
}

int ipcx_managed_find_or_construct(struct ipcx_managed *s, const char *name,
				   const struct ipcx_obj_spec *spec, void **out, bool *created)
{
	struct key k;
	int ret = key_named(&k, name);

	return ret ? ret : obj_create(s, &k, spec, out, created, true);
}

int ipcx_managed_find(struct ipcx_managed *s, const char *name, uint64_t type_tag,
		      void **out, size_t *count)
{
	struct key k;
	int ret;

	if (!s)
		return -EINVAL;
	ret = key_named(&k, name);
	return ret ? ret : obj_find(s, &k, type_tag, out, count);
}

int ipcx_managed_destroy(struct ipcx_managed *s, const char *name, uint64_t type_tag,
			 void (*fini)(void *elem, size_t idx, void *arg), void *arg)
{
	struct key k;
	int ret = key_named(&k, name);

	return ret ? ret : obj_destroy(s, &k, type_tag, fini, arg);
}

int ipcx_managed_construct_unique(struct ipcx_managed *s, const struct ipcx_obj_spec *spec,
				  void **out)
{
	struct key k;

	if (!spec || !spec->sz || spec->sz < offsetof(struct ipcx_obj_spec, elem_size))
		return -EINVAL;
	key_unique(&k, spec->type_tag);
	return obj_create(s, &k, spec, out, NULL, false);
}

int ipcx_managed_find_or_construct_unique(struct ipcx_managed *s,
					  const struct ipcx_obj_spec *spec, void **out,
					  bool *created)
{
	struct key k;

	if (!spec || !spec->sz || spec->sz < offsetof(struct ipcx_obj_spec, elem_size))
		return -EINVAL;
	key_unique(&k, spec->type_tag);
	return obj_create(s, &k, spec, out, created, true);
}

int ipcx_managed_find_unique(struct ipcx_managed *s, uint64_t type_tag, void **out,
			     size_t *count)
{
	struct key k;

	if (!s)
		return -EINVAL;
	key_unique(&k, type_tag);
	return obj_find(s, &k, IPCX_TYPE_ANY, out, count);
}

int ipcx_managed_destroy_unique(struct ipcx_managed *s, uint64_t type_tag,
				void (*fini)(void *elem, size_t idx, void *arg), void *arg)
{
	struct key k;

	key_unique(&k, type_tag);
	return obj_destroy(s, &k, IPCX_TYPE_ANY, fini, arg);
}

int ipcx_managed_construct_anon(struct ipcx_managed *s, const struct ipcx_obj_spec *spec,
				void **out)
{
	struct ipcx_obj_spec sp;
	struct key k = { .kind = IPCX_OBJ_ANON, .name = "" };
	int ret;

	if (!s || !out)
		return -EINVAL;
	*out = NULL;
	if (s->flags & S_RO)
		return -EROFS;
	ret = spec_read(spec, &sp);
	if (ret)
		return ret;
	ret = seg_lock(s);
	if (ret)
		return ret;
	ret = obj_build(s, &k, &sp, out);
	if (!ret)
		SW(s, &s->h->anon, s->h->anon + 1);
	seg_unlock(s);
	return ret;
}

/* The index slot holding the object at data offset @off, or -1. */
static long slot_of(const struct ipcx_managed *s, const struct mobj *c, uint64_t off)
{
	uint64_t cap, mask, i, n;
	const struct slot *t;

	if (!index_get(s, &t, &cap))
		return -1;
	mask = cap - 1;
	for (i = c->hash & mask, n = 0; n < cap && t[i].obj; n++, i = (i + 1) & mask)
		if (t[i].obj == off)
			return (long)i;
	return -1;
}

int ipcx_managed_destroy_ptr(struct ipcx_managed *s, void *p,
			     void (*fini)(void *elem, size_t idx, void *arg), void *arg)
{
	struct mobj *c;
	uint64_t off;
	long idx = -1;
	int ret;

	if (!s || !ipcx_managed_belongs(s, p))
		return -EINVAL;
	off = (uint64_t)((char *)p - s->base);
	ret = seg_lock_writer(s);
	if (ret)
		return ret;
	c = ctrl_at(s, off);
	if (c && c->kind != IPCX_OBJ_ANON) {
		idx = slot_of(s, c, off);
		if (idx < 0)
			c = NULL;
	}
	if (c)
		obj_remove(s, c, idx, fini, arg);
	else
		ret = -EINVAL;
	seg_unlock(s);
	return ret;
}

static void info_fill(const struct mobj *c, struct ipcx_obj_info *info)
{
	info->kind = (enum ipcx_obj_kind)c->kind;
	info->name = ctrl_name(c);
	info->name_len = c->name_len;
	info->ptr = (char *)c + sizeof(*c);
	info->count = c->count;
	info->elem_size = c->elem_size;
	info->type_tag = c->type_tag;
}

int ipcx_managed_obj_info(const struct ipcx_managed *s, const void *p, struct ipcx_obj_info *info)
{
	const struct mobj *c;

	if (!s || !info || !ipcx_managed_belongs(s, p))
		return -EINVAL;
	c = ctrl_at(s, (uint64_t)((const char *)p - s->base));
	if (!c)
		return -EINVAL;
	info_fill(c, info);
	return 0;
}

long ipcx_managed_count(const struct ipcx_managed *s, enum ipcx_obj_kind kind)
{
	if (!s)
		return -EINVAL;
	switch (kind) {
	case IPCX_OBJ_NAMED:
		return (long)__atomic_load_n(&s->h->named, __ATOMIC_RELAXED);
	case IPCX_OBJ_UNIQUE:
		return (long)__atomic_load_n(&s->h->unique, __ATOMIC_RELAXED);
	case IPCX_OBJ_ANON:
		return (long)__atomic_load_n(&s->h->anon, __ATOMIC_RELAXED);
	}
	return -EINVAL;
}

int ipcx_managed_foreach(struct ipcx_managed *s, enum ipcx_obj_kind kind,
			 int (*fn)(const struct ipcx_obj_info *info, void *arg), void *arg)
{
	struct ipcx_obj_info info;
	const struct slot *t = NULL;
	uint64_t i, cap;
	int ret;

	if (!s || !fn || (kind != IPCX_OBJ_NAMED && kind != IPCX_OBJ_UNIQUE))
		return -EINVAL;
	ret = seg_lock(s);
	if (ret)
		return ret;
	if (!index_get(s, &t, &cap))
		cap = 0;
	for (i = 0; i < cap && !ret; i++) {
		const struct mobj *c;

		if (t[i].obj <= TOMB)
			continue;
		c = ctrl_at(s, t[i].obj);
		if (!c || c->kind != (uint32_t)kind)
			continue;
		info_fill(c, &info);
		ret = fn(&info, arg);
	}
	seg_unlock(s);
	return ret;
}

int ipcx_managed_reserve(struct ipcx_managed *s, size_t n)
{
	uint64_t live;
	int ret;

	if (!s)
		return -EINVAL;
	ret = seg_lock_writer(s);
	if (ret)
		return ret;
	live = s->h->named + s->h->unique;
	if (n > live)
		ret = ensure_room(s, n - live);
	seg_unlock(s);
	return ret;
}

int ipcx_managed_atomic(struct ipcx_managed *s, void (*fn)(void *arg), void *arg)
{
	int ret;

	if (!s || !fn)
		return -EINVAL;
	ret = seg_lock_writer(s);
	if (ret)
		return ret;
	fn(arg);
	seg_unlock(s);
	return 0;
}

int ipcx_managed_try_atomic(struct ipcx_managed *s, void (*fn)(void *arg), void *arg)
{
	int ret;

	if (!s || !fn)
		return -EINVAL;
	if (s->flags & S_RO)
		return -EROFS;
	ret = seg_locked(s, ipcx_lk_trylock(&s->h->lk, s->base, seg_size(s)));
	if (ret)
		return ret;
	fn(arg);
	seg_unlock(s);
	return 0;
}

/* ---- growth ------------------------------------------------------------------ */

static int backing_extend(int fd, uint64_t size)
{
	return backing_reserve(fd, size);
}

/* Grow to @new_size (lock not held); @limit is the mapped range. */
static int grow_to(struct ipcx_managed *s, uint64_t new_size, uint64_t limit)
{
	struct seg_hdr *h = s->h;
	uint64_t old;
	int ret;

	new_size = round_up(new_size, page_size());
	ret = seg_lock(s);
	if (ret)
		return ret;
	old = h->size;
	if (new_size <= old) {
		seg_unlock(s);
		return new_size == old ? 0 : -EINVAL;
	}
	if (new_size > limit || new_size > h->max_size) {
		seg_unlock(s);
		return -ENOSPC;
	}
	if (s->fd >= 0) {
		ret = backing_extend(s->fd, new_size);
		if (ret) {
			seg_unlock(s);
			return ret;
		}
	}
	/*
	 * Header first: a crash before the allocator grows leaves a header
	 * larger than the allocator's region, which is harmless.
	 */
	SW(s, &h->size, new_size);
	ipcx_lk_commit(&h->lk);
	ret = ipcx_mem_grow(s->mem, new_size - MEM_OFF);
	seg_unlock(s);
	return ret;
}

int ipcx_managed_grow(struct ipcx_managed *s, uint64_t new_size)
{
	if (!s)
		return -EINVAL;
	if (s->flags & S_RO)
		return -EROFS;
	if (s->flags & (S_COW | S_BUFFER))
		return -EOPNOTSUPP;
	return grow_to(s, new_size, s->map_len);
}

/* Open a named segment exclusively-by-convention for an offline change. */
static int open_offline(const char *name, const char *dir, int *fdp, struct seg_hdr *h)
{
	struct ipcx_named_req req = {
		.kind = IPCX_KIND_MANAGED, .name = name, .mode = IPCX_OPEN_ONLY, .dir = dir,
	};
	int fd = ipcx_named_open(&req, NULL);

	if (fd < 0)
		return fd;
	if (pread(fd, h, sizeof(*h), 0) != (ssize_t)sizeof(*h) ||
	    ipcx_obj_header_check(&h->obj, IPCX_KIND_MANAGED) || h->max_size < h->size) {
		close(fd);
		return -EPROTO;
	}
	*fdp = fd;
	return 0;
}

int ipcx_managed_grow_offline(const char *name, const char *dir, uint64_t extra)
{
	struct ipcx_managed *s = NULL;
	struct seg_hdr h;
	uint64_t nsize;
	int fd, ret;

	ret = open_offline(name, dir, &fd, &h);
	if (ret)
		return ret;
	nsize = round_up(h.size + extra, page_size());
	if (nsize > (1ull << 46)) {
		close(fd);
		return -EINVAL;
	}
	if (nsize > h.max_size) {
		/* Nobody maps it: the reservation may grow with the segment. */
		uint64_t nmax = nsize;

		ret = backing_extend(fd, nsize);
		if (!ret && pwrite(fd, &nmax, sizeof(nmax), offsetof(struct seg_hdr, max_size)) !=
			    (ssize_t)sizeof(nmax))
			ret = -EIO;
		if (ret) {
			close(fd);
			return ret;
		}
	}
	ret = map_fd(fd, 0, &s);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = grow_to(s, nsize, s->map_len);
	ipcx_managed_close(s);
	return ret;
}

int64_t ipcx_managed_shrink_to_fit(const char *name, const char *dir)
{
	struct ipcx_managed *s = NULL;
	struct seg_hdr h;
	int64_t msz;
	uint64_t nsize;
	int fd, ret;

	ret = open_offline(name, dir, &fd, &h);
	if (ret)
		return ret;
	ret = map_fd(fd, 0, &s);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = seg_lock(s);
	if (ret) {
		ipcx_managed_close(s);
		return ret;
	}
	msz = ipcx_mem_shrink_to_fit(s->mem, page_size());
	if (msz < 0) {
		ret = (int)msz;
		goto out;
	}
	nsize = MEM_OFF + (uint64_t)msz;
	if (nsize < s->h->size) {
		SW(s, &s->h->size, nsize);
		ipcx_lk_commit(&s->h->lk);
		if (ftruncate(s->fd, (off_t)nsize))
			ret = -errno;
	}
out:
	nsize = s->h->size;
	seg_unlock(s);
	ipcx_managed_close(s);
	return ret ? ret : (int64_t)nsize;
}

/* ---- checking ---------------------------------------------------------------- */

int ipcx_managed_check(struct ipcx_managed *s, struct ipcx_managed_report *rep)
{
	struct ipcx_managed_report r = { .sz = sizeof(r) };
	uint64_t i, named = 0, unique = 0, tombs = 0, cap;
	const struct slot *tab = NULL;
	int ret, mret;

	if (!s)
		return -EINVAL;
	ret = seg_validate(s->base, s->map_len);
	if (ret)
		return ret;
	r.mem.sz = sizeof(r.mem);
	ret = seg_lock(s);
	if (ret)
		return ret;
	mret = ipcx_mem_check(s->mem, &r.mem, (s->flags & S_RO) ? IPCX_MEM_CHECK_NOLOCK : 0);
	if (!index_get(s, &tab, &cap)) {
		cap = 0;
		if (s->h->table && !r.errors++)
			r.first_error = "index: table out of the segment";
	}
	for (i = 0; i < cap; i++) {
		const struct slot *t = &tab[i];
		const struct mobj *c;

		if (t->obj == TOMB) {
			tombs++;
			continue;
		}
		if (!t->obj)
			continue;
		c = ctrl_at(s, t->obj);
		if (!c || c->kind == IPCX_OBJ_ANON || c->hash != t->hash ||
		    (c->kind == IPCX_OBJ_NAMED && hash_name(ctrl_name(c), c->name_len) != c->hash)) {
			if (!r.errors++)
				r.first_error = "index: slot does not lead to a valid object";
			continue;
		}
		if (c->kind == IPCX_OBJ_NAMED)
			named++;
		else
			unique++;
	}
	if ((named != s->h->named || unique != s->h->unique ||
	     named + unique + tombs != s->h->used) && !r.errors++)
		r.first_error = "index: counters disagree with the slots";
	seg_unlock(s);
	r.named = named;
	r.unique = unique;
	r.anon = s->h->anon;
	r.repairs = s->h->lk.repairs;
	if (rep) {
		size_t n = rep->sz && rep->sz < sizeof(r) ? rep->sz : sizeof(r);

		memcpy(rep, &r, n);
		rep->sz = n;
	}
	if (r.errors)
		return -EUCLEAN;
	return mret == -EUCLEAN ? -EUCLEAN : mret;
}
