/* SPDX-License-Identifier: MIT */
/*
 * ipcx/managed.h - managed segments: an allocator and a directory of named
 * objects inside one piece of memory (Boost's managed_shared_memory,
 * managed_heap_memory, managed_external_buffer), as a C API.
 *
 * A segment starts with a header (magic, ABI, kind, sizes) checked on every
 * open (-EPROTO). Everything inside is an offset, so the segment works at any
 * address and a heap or buffer segment copied byte for byte elsewhere opens
 * and works. Backings: named shared memory (atomic create: the segment is
 * built before its name appears), an anonymous memfd (fork, fd passing), the
 * process heap, a caller's buffer.
 *
 * Objects: named (a name), unique (one per type tag) and anonymous, each an
 * array of @count elements with a user type tag checked on find. Name lookup
 * is a hash index in the segment (O(1) expected). Operations on the index
 * run under the segment's robust lock with an undo log: a process killed
 * inside any of them leaves the segment consistent (at most the dying
 * call's block leaks; ipcx_managed_check() reports it).
 *
 * Read-only opens find objects without taking locks and never write; every
 * modifying call returns -EROFS (or NULL) on them.
 */
#ifndef IPCX_MANAGED_H
#define IPCX_MANAGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipcx/common.h>
#include <ipcx/mem.h>
#include <ipcx/offptr.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipcx_managed;	/* process-local handle of an open segment */

/* Options (IPCX_OPTS): a larger struct from a newer caller must have its unknown tail zero (-E2BIG). */
struct ipcx_managed_opts {
	size_t sz;
	/* enum ipcx_open_mode | IPCX_READ_ONLY | IPCX_COPY_ON_WRITE (0: open-or-create) */
	unsigned int mode;
	unsigned int perm;	/* create: permissions, 0 = IPCX_DEFAULT_PERM */
	uint64_t size;		/* create: bytes (rounded up to the page size) */
	/*
	 * create: the segment may grow online up to this many bytes; every
	 * opener reserves this much address space so the base never moves.
	 * 0 = size (no online growth).
	 */
	uint64_t max_size;
	const char *dir;	/* NULL: $IPCX_SHM_DIR or /dev/shm */
	uint64_t huge_align;	/* create: see struct ipcx_mem_opts */
};

/**
 * ipcx_managed_open() - open or atomically create a named managed segment
 * @name: object name (letters, digits, '.', '_', '-')
 * @opts: NULL for open-or-create defaults (then a size is required: -EINVAL)
 * @out: the handle
 *
 * Return: 0, or -EEXIST / -ENOENT (create-only / open-only), -EPROTO (not a
 * segment of this ABI), -EINVAL, -ENOSPC, -ENOMEM, -errno of the system.
 */
IPCX_API int ipcx_managed_open(const char *name, const struct ipcx_managed_opts *opts,
			       struct ipcx_managed **out);

/**
 * ipcx_managed_open_file() - open or atomically create a segment in the
 * file at @path (Boost's managed_mapped_file): created unnamed in the
 * file's directory, built, then linked to @path
 * @opts: as for ipcx_managed_open() (dir is ignored)
 *
 * Return: 0, -EEXIST, -ENOENT, -EPROTO, -EINVAL, -errno (-EOPNOTSUPP if the
 * filesystem has no O_TMPFILE).
 */
IPCX_API int ipcx_managed_open_file(const char *path, const struct ipcx_managed_opts *opts,
				    struct ipcx_managed **out);

/**
 * ipcx_managed_unlink() - remove a named segment's name
 * @dir: NULL for the default directory
 *
 * Return: 0 or -errno (-ENOENT).
 */
IPCX_API int ipcx_managed_unlink(const char *name, const char *dir);

/**
 * ipcx_managed_create_memfd() - a new anonymous segment in a sealed memfd
 * (F_SEAL_SHRINK): share it by fork or by passing ipcx_managed_fd()
 *
 * Return: 0 or -errno.
 */
IPCX_API int ipcx_managed_create_memfd(const struct ipcx_managed_opts *opts,
				       struct ipcx_managed **out);

/**
 * ipcx_managed_open_fd() - open the segment in file @fd (not consumed: it
 * is duplicated); mode bits IPCX_READ_ONLY / IPCX_COPY_ON_WRITE apply
 *
 * Return: 0, -EPROTO, -EBADF, -errno.
 */
IPCX_API int ipcx_managed_open_fd(int fd, const struct ipcx_managed_opts *opts,
				  struct ipcx_managed **out);

/**
 * ipcx_managed_create_heap() - a segment in private process memory
 * (opts->size, growable up to opts->max_size)
 *
 * Return: 0 or -errno.
 */
IPCX_API int ipcx_managed_create_heap(const struct ipcx_managed_opts *opts,
				      struct ipcx_managed **out);

/**
 * ipcx_managed_open_buffer() - a segment in the caller's memory
 * @buf: 64-byte aligned (page alignment recommended)
 * @mode: IPCX_CREATE_ONLY builds a new segment (overwriting @buf);
 *        IPCX_OPEN_ONLY opens the one already there (e.g. copied from
 *        another address), optionally | IPCX_READ_ONLY
 *
 * Return: 0, -EPROTO (no valid segment in @buf), -EINVAL.
 */
IPCX_API int ipcx_managed_open_buffer(void *buf, size_t size, unsigned int mode,
				      struct ipcx_managed **out);

/**
 * ipcx_managed_close() - unmap and free the handle (NULL is a no-op).
 * Objects stay in the segment.
 */
IPCX_API void ipcx_managed_close(struct ipcx_managed *s);

/** ipcx_managed_fd() - the segment's file descriptor, or -EBADF (heap, buffer). */
IPCX_API int ipcx_managed_fd(const struct ipcx_managed *s);
/** ipcx_managed_base() - where the segment is mapped in this process. */
IPCX_API void *ipcx_managed_base(const struct ipcx_managed *s);
/** ipcx_managed_size() - the segment's current size in bytes. */
IPCX_API uint64_t ipcx_managed_size(const struct ipcx_managed *s);
/** ipcx_managed_mem() - the segment's allocator (for the ipcx_mem_* calls). */
IPCX_API struct ipcx_mem *ipcx_managed_mem(const struct ipcx_managed *s);

/* ---- raw memory --------------------------------------------------------- */

/** ipcx_managed_alloc() - ipcx_mem_alloc() on the segment; NULL if full or read-only. */
IPCX_API void *ipcx_managed_alloc(struct ipcx_managed *s, size_t size);
/** ipcx_managed_alloc_aligned() - ipcx_mem_alloc_aligned() on the segment. */
IPCX_API void *ipcx_managed_alloc_aligned(struct ipcx_managed *s, size_t size, size_t align);
/** ipcx_managed_free() - ipcx_mem_free(); -EROFS on a read-only open. */
IPCX_API int ipcx_managed_free(struct ipcx_managed *s, void *p);

/* ---- handles -------------------------------------------------------------- */

/** ipcx_managed_belongs() - true if @p points inside the segment. */
IPCX_API bool ipcx_managed_belongs(const struct ipcx_managed *s, const void *p);
/** ipcx_managed_handle() - segment-relative handle of @p (null handle if outside). */
IPCX_API struct ipcx_handle ipcx_managed_handle(const struct ipcx_managed *s, const void *p);
/**
 * ipcx_managed_ptr() - address of handle @h in this process, or NULL if the
 * handle is null or @len bytes there do not fit in the segment
 */
IPCX_API void *ipcx_managed_ptr(const struct ipcx_managed *s, struct ipcx_handle h,
				size_t len);

/* ---- objects -------------------------------------------------------------- */

enum ipcx_obj_kind {
	IPCX_OBJ_NAMED		= 1,
	IPCX_OBJ_UNIQUE		= 2,	/* one per type tag */
	IPCX_OBJ_ANON		= 3,	/* no name, not in the index */
};

/* A type tag that matches any stored tag on find. */
#define IPCX_TYPE_ANY		UINT64_MAX

struct ipcx_obj_spec {
	size_t sz;
	uint64_t type_tag;	/* stored; find with another tag is -EPROTOTYPE */
	size_t elem_size;	/* bytes per element (0 allowed) */
	size_t count;		/* elements (0 = 1) */
	size_t align;		/* power of two up to 2 MiB, 0 = 16 */
	/*
	 * Optional: build element @idx; 0 or -errno. On the first failure the
	 * elements already built are handed to @fini in reverse order, the
	 * memory is freed and construct returns that error: nothing is named.
	 * Runs under the segment lock (exactly once across processes for
	 * find-or-construct); it may call the segment's other functions.
	 * Without @init the memory is zeroed.
	 */
	int (*init)(void *elem, size_t idx, void *arg);
	void (*fini)(void *elem, size_t idx, void *arg);	/* optional */
	void *arg;
};

struct ipcx_obj_info {
	enum ipcx_obj_kind kind;
	const char *name;	/* in the segment; "" for unique and anonymous */
	size_t name_len;
	void *ptr;
	size_t count;
	size_t elem_size;
	uint64_t type_tag;
};

/**
 * ipcx_managed_construct() - create named object @name
 * @out: the first element
 *
 * Return: 0, -EEXIST (the name exists), -ENOMEM, -EINVAL, -EROFS, or the
 * error @init returned.
 */
IPCX_API int ipcx_managed_construct(struct ipcx_managed *s, const char *name,
				    const struct ipcx_obj_spec *spec, void **out);

/**
 * ipcx_managed_find_or_construct() - find @name or create it, atomically
 * across processes (init runs exactly once)
 * @created: NULL or out: true if this call built it
 *
 * Return: 0, -EPROTOTYPE (found with another type tag), or as construct.
 */
IPCX_API int ipcx_managed_find_or_construct(struct ipcx_managed *s, const char *name,
					    const struct ipcx_obj_spec *spec, void **out,
					    bool *created);

/**
 * ipcx_managed_find() - look up named object @name
 * @type_tag: the tag it must have, or IPCX_TYPE_ANY
 * @out, @count: out (either may be NULL): first element and element count
 *
 * Return: 0, -ENOENT, -EPROTOTYPE, -EINVAL.
 */
IPCX_API int ipcx_managed_find(struct ipcx_managed *s, const char *name, uint64_t type_tag,
			       void **out, size_t *count);

/**
 * ipcx_managed_destroy() - destroy named object @name
 * @fini: NULL or called for each element (reverse order) before freeing
 *
 * Return: 0, -ENOENT, -EPROTOTYPE, -EROFS.
 */
IPCX_API int ipcx_managed_destroy(struct ipcx_managed *s, const char *name, uint64_t type_tag,
				  void (*fini)(void *elem, size_t idx, void *arg), void *arg);

/** ipcx_managed_construct_unique() - create the unique object of spec->type_tag (-EEXIST). */
IPCX_API int ipcx_managed_construct_unique(struct ipcx_managed *s,
					   const struct ipcx_obj_spec *spec, void **out);
/** ipcx_managed_find_or_construct_unique() - as find_or_construct, keyed by the type tag. */
IPCX_API int ipcx_managed_find_or_construct_unique(struct ipcx_managed *s,
						   const struct ipcx_obj_spec *spec, void **out,
						   bool *created);
/** ipcx_managed_find_unique() - the unique object of @type_tag (-ENOENT). */
IPCX_API int ipcx_managed_find_unique(struct ipcx_managed *s, uint64_t type_tag, void **out,
				      size_t *count);
/** ipcx_managed_destroy_unique() - destroy the unique object of @type_tag (-ENOENT). */
IPCX_API int ipcx_managed_destroy_unique(struct ipcx_managed *s, uint64_t type_tag,
					 void (*fini)(void *elem, size_t idx, void *arg),
					 void *arg);

/** ipcx_managed_construct_anon() - create an anonymous object (destroy it by pointer). */
IPCX_API int ipcx_managed_construct_anon(struct ipcx_managed *s,
					 const struct ipcx_obj_spec *spec, void **out);

/**
 * ipcx_managed_destroy_ptr() - destroy the object whose first element is @p
 * (named, unique or anonymous)
 *
 * Return: 0, -EINVAL (not an object of this segment), -EROFS.
 */
IPCX_API int ipcx_managed_destroy_ptr(struct ipcx_managed *s, void *p,
				      void (*fini)(void *elem, size_t idx, void *arg), void *arg);

/**
 * ipcx_managed_obj_info() - kind, name, count and tag of the object at @p
 *
 * Return: 0 or -EINVAL (not an object's first element).
 */
IPCX_API int ipcx_managed_obj_info(const struct ipcx_managed *s, const void *p,
				   struct ipcx_obj_info *info);

/**
 * ipcx_managed_count() - number of live objects of @kind
 *
 * Return: the count, or -EINVAL.
 */
IPCX_API long ipcx_managed_count(const struct ipcx_managed *s, enum ipcx_obj_kind kind);

/**
 * ipcx_managed_foreach() - call @fn for every named (IPCX_OBJ_NAMED) or
 * unique (IPCX_OBJ_UNIQUE) object, under the segment lock (without it on a
 * read-only open); a non-zero return of @fn stops the walk and is returned
 *
 * Return: 0, @fn's value, or -errno.
 */
IPCX_API int ipcx_managed_foreach(struct ipcx_managed *s, enum ipcx_obj_kind kind,
				  int (*fn)(const struct ipcx_obj_info *info, void *arg),
				  void *arg);

/**
 * ipcx_managed_reserve() - make room in the index for @n objects in all,
 * so that many constructs do not rehash
 *
 * Return: 0, -ENOMEM, -EROFS.
 */
IPCX_API int ipcx_managed_reserve(struct ipcx_managed *s, size_t n);

/**
 * ipcx_managed_atomic() - run @fn(@arg) under the segment lock: other
 * processes see all of its effects on objects or none (Boost's atomic_func).
 * The lock nests: @fn may call the segment's functions.
 *
 * Return: 0 or -errno (-ENOTRECOVERABLE, -EROFS).
 */
IPCX_API int ipcx_managed_atomic(struct ipcx_managed *s, void (*fn)(void *arg), void *arg);

/** ipcx_managed_try_atomic() - as ipcx_managed_atomic(), -EAGAIN if the lock is taken. */
IPCX_API int ipcx_managed_try_atomic(struct ipcx_managed *s, void (*fn)(void *arg), void *arg);

/* ---- growth --------------------------------------------------------------- */

/**
 * ipcx_managed_grow() - grow the open segment to @new_size bytes while
 * mapped (up to its max_size). Other processes use the new memory with no
 * call of their own: every opener has the whole max_size range mapped, so
 * no address changes.
 *
 * Return: 0, -ENOSPC (beyond max_size or the filesystem is full),
 * -EOPNOTSUPP (buffer or copy-on-write), -EROFS, -EINVAL.
 */
IPCX_API int ipcx_managed_grow(struct ipcx_managed *s, uint64_t new_size);

/**
 * ipcx_managed_grow_offline() - grow named segment @name by @extra bytes;
 * no process may have it open (Boost's grow)
 *
 * Return: 0 or -errno.
 */
IPCX_API int ipcx_managed_grow_offline(const char *name, const char *dir, uint64_t extra);

/**
 * ipcx_managed_shrink_to_fit() - cut named segment @name to the smallest
 * page-multiple size holding its blocks; no process may have it open
 *
 * Return: the new size, or -errno.
 */
IPCX_API int64_t ipcx_managed_shrink_to_fit(const char *name, const char *dir);

/* ---- checking ------------------------------------------------------------- */

struct ipcx_managed_report {
	size_t sz;
	struct ipcx_mem_report mem;
	uint64_t named, unique, anon;	/* counted in the index / counters */
	uint64_t errors;		/* index inconsistencies */
	const char *first_error;
	uint64_t repairs;		/* segment-lock holders' calls rolled back */
};

/**
 * ipcx_managed_check() - verify the header, the index and the allocator;
 * bounds-checks every offset (never crashes on a corrupted segment)
 * @r: NULL or the report (set r->sz)
 *
 * Return: 0 if consistent, -EUCLEAN (see @r), -EPROTO, -errno.
 */
IPCX_API int ipcx_managed_check(struct ipcx_managed *s, struct ipcx_managed_report *r);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_MANAGED_H */
