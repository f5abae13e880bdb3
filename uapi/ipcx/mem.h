/* SPDX-License-Identifier: MIT */
/*
 * ipcx/mem.h - an allocator that lives inside the memory it manages.
 *
 * struct ipcx_mem sits at the start of a region (shared memory, a heap
 * buffer, a file mapping) and manages the rest of it. Every piece of its
 * metadata is an offset inside the region, so the region works at any
 * address in any process, and can be copied byte for byte elsewhere.
 *
 * Small blocks (up to 2048 bytes) come from size classes: 64 KiB runs cut
 * into equal blocks tracked by a bitmap, one lock per class; a small block
 * has no header and free() does not touch it. Larger blocks come from a good-fit
 * allocator with boundary tags and segregated bins (one lock). Every lock is
 * robust and every guarded store is undo-logged: a process killed inside an
 * allocator call leaves the region consistent for the others (at most the
 * dying call's block leaks, and ipcx_mem_check() reports it).
 *
 * Returned blocks are 16-byte aligned. Functions that take a region are not
 * safe on a read-only mapping except ipcx_mem_check(..., IPCX_MEM_CHECK_NOLOCK).
 */
#ifndef IPCX_MEM_H
#define IPCX_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipcx_mem;

/* Smallest region ipcx_mem_init() accepts. */
#define IPCX_MEM_MIN_SIZE	(64u * 1024)
/* Largest request served by a size class; larger ones are best-fit. */
#define IPCX_MEM_SMALL_MAX	2048u

struct ipcx_mem_opts {
	size_t sz;
	/*
	 * Requests of at least this many bytes get blocks aligned to it
	 * (power of two, 0 = off): set to the hugepage size for a segment
	 * backed by hugepages so large blocks start on a hugepage.
	 */
	uint64_t huge_align;
	/*
	 * The region may later grow (ipcx_mem_grow()) up to this size; size
	 * classes can use memory up to it (a map of 1 byte per 64 KiB is kept
	 * for it, no larger than 1/16 of the initial size nor 1 MiB). 0 = the
	 * initial size; growth beyond what the map covers still works, for
	 * large blocks only.
	 */
	uint64_t max_size;
};

/**
 * ipcx_mem_init() - build an allocator over [@base, @base + @size)
 * @base: 64-byte aligned start of the region
 * @size: bytes, at least IPCX_MEM_MIN_SIZE (rounded down to 16)
 * @opts: NULL or options
 *
 * Return: the allocator (== @base), or NULL on bad arguments.
 */
IPCX_API struct ipcx_mem *ipcx_mem_init(void *base, size_t size,
					const struct ipcx_mem_opts *opts);

/**
 * ipcx_mem_attach() - check the allocator header at @base
 * @size: bytes mapped at @base
 *
 * Return: 0, -EINVAL for NULL, -EPROTO for a foreign or newer layout or a
 * header that claims more than @size bytes.
 */
IPCX_API int ipcx_mem_attach(const void *base, size_t size);

/**
 * ipcx_mem_alloc() - allocate @size bytes (16-byte aligned)
 *
 * Return: the block, or NULL when no block fits (or the region's lock is
 * not recoverable). A @size of 0 gives a minimal block.
 */
IPCX_API void *ipcx_mem_alloc(struct ipcx_mem *m, size_t size);

/**
 * ipcx_mem_alloc_aligned() - allocate @size bytes aligned to @align
 * @align: power of two (any size; alignments above the mapping's own
 *         alignment hold only at this process's address)
 *
 * Return: the block or NULL (no room, @align not a power of two).
 */
IPCX_API void *ipcx_mem_alloc_aligned(struct ipcx_mem *m, size_t size, size_t align);

/**
 * ipcx_mem_free() - give back a block (NULL is a no-op)
 *
 * Return: 0, or -EINVAL for a pointer that is not a live block of @m
 * (outside the region, misaligned, bad header, double free).
 */
IPCX_API int ipcx_mem_free(struct ipcx_mem *m, void *p);

/**
 * ipcx_mem_size_of() - usable bytes of block @p (at least what was asked)
 *
 * Return: the size, or 0 for a pointer that is not a block of @m.
 */
IPCX_API size_t ipcx_mem_size_of(const struct ipcx_mem *m, const void *p);

/** ipcx_mem_size() - bytes of the region, header included. */
IPCX_API uint64_t ipcx_mem_size(const struct ipcx_mem *m);

/**
 * ipcx_mem_free_memory() - bytes not handed out (free blocks plus the free
 * space of size-class runs; a run with no live block counts whole)
 */
IPCX_API uint64_t ipcx_mem_free_memory(const struct ipcx_mem *m);

/**
 * ipcx_mem_largest_free() - largest block ipcx_mem_alloc() could return now
 *
 * Releases empty size-class runs first (takes the locks).
 */
IPCX_API uint64_t ipcx_mem_largest_free(struct ipcx_mem *m);

/** ipcx_mem_all_freed() - true when no block is allocated. */
IPCX_API bool ipcx_mem_all_freed(const struct ipcx_mem *m);

/**
 * ipcx_mem_trim() - give empty size-class runs back to the large allocator
 *
 * Return: bytes released, or -errno (-ENOTRECOVERABLE).
 */
IPCX_API long ipcx_mem_trim(struct ipcx_mem *m);

/**
 * ipcx_mem_zero_free() - zero every byte of free memory outside the
 * allocator's own headers, so blocks allocated afterwards come back zeroed
 *
 * Return: 0 or -errno.
 */
IPCX_API int ipcx_mem_zero_free(struct ipcx_mem *m);

/**
 * ipcx_mem_alloc_batch() - allocate @n blocks, all or nothing
 * @sizes: @n sizes; @out receives the @n blocks
 *
 * Return: 0, -ENOMEM (nothing allocated), -EINVAL.
 */
IPCX_API int ipcx_mem_alloc_batch(struct ipcx_mem *m, const size_t *sizes, size_t n,
				  void **out);

/**
 * ipcx_mem_free_batch() - free @n blocks (NULL entries skipped)
 *
 * Return: 0, or the first error met (the other blocks are still freed).
 */
IPCX_API int ipcx_mem_free_batch(struct ipcx_mem *m, void *const *ptrs, size_t n);

/* Allocation command bits (Boost's allocation_command). */
#define IPCX_MEM_ALLOCATE_NEW		0x01u	/* fall back to a new block */
#define IPCX_MEM_EXPAND_FWD		0x02u	/* grow in place towards higher addresses */
#define IPCX_MEM_EXPAND_BWD		0x04u	/* grow by moving the start down */
#define IPCX_MEM_SHRINK_IN_PLACE	0x08u	/* give back the tail */

/**
 * ipcx_mem_command() - expand, shrink or reallocate in one call
 * @cmd: IPCX_MEM_* bits; EXPAND_* and SHRINK_IN_PLACE need @reuse
 * @limit: expanding / allocating: the least acceptable size;
 *         shrinking: the largest acceptable resulting size
 * @preferred: the size wanted
 * @reuse: the block to expand or shrink (may be NULL with ALLOCATE_NEW)
 * @received: out: usable bytes of the resulting block
 * @out: out: the resulting block. Equal to @reuse for EXPAND_FWD and
 *       SHRINK_IN_PLACE; lower than @reuse after EXPAND_BWD (the contents
 *       are NOT moved: the caller moves them, as with Boost); a different,
 *       new block after ALLOCATE_NEW (the old one is untouched and live).
 *
 * Expansion tries forward first, then backward (both sides if allowed).
 *
 * Return: 0 on success, -ENOMEM when nothing acceptable is possible,
 * -EINVAL for bad arguments.
 */
IPCX_API int ipcx_mem_command(struct ipcx_mem *m, unsigned int cmd, size_t limit,
			      size_t preferred, void *reuse, size_t *received, void **out);

/**
 * ipcx_mem_grow() - the region now extends to @new_size bytes: add the
 * new tail to the free memory (the caller mapped it first)
 *
 * Return: 0, -EINVAL if @new_size is smaller than the region.
 */
IPCX_API int ipcx_mem_grow(struct ipcx_mem *m, uint64_t new_size);

/**
 * ipcx_mem_shrink_to_fit() - cut the free tail of the region
 * @gran: the new size is a multiple of this (e.g. the page size)
 *
 * Return: the new region size (the caller may truncate its backing), or
 * -errno.
 */
IPCX_API int64_t ipcx_mem_shrink_to_fit(struct ipcx_mem *m, uint64_t gran);

struct ipcx_mem_report {
	size_t sz;
	uint64_t blocks;	/* large blocks walked (free, used, runs) */
	uint64_t free_blocks;
	uint64_t free_bytes;	/* in large free blocks */
	uint64_t used_blocks;	/* large blocks handed out */
	uint64_t runs;		/* size-class runs */
	uint64_t small_live;	/* small blocks handed out */
	uint64_t leaked;	/* blocks unreachable from any structure (e.g. a killed op's) */
	uint64_t errors;	/* inconsistencies found */
	uint64_t first_error_off; /* region offset of the first one */
	const char *first_error;  /* static text describing it, or NULL */
	uint64_t repairs;	/* calls of killed processes rolled back so far */
};

#define IPCX_MEM_CHECK_NOLOCK	0x1u	/* do not lock (read-only mapping; racy) */

/**
 * ipcx_mem_check() - walk and verify the whole region
 * @r: NULL or a report to fill (set r->sz)
 * @flags: IPCX_MEM_CHECK_*
 *
 * Every offset is bounds-checked before it is followed; a corrupted region
 * gives an error report, never a crash. Leaks are counted, not errors.
 *
 * Return: 0 if consistent, -EUCLEAN if errors were found (see @r),
 * -EPROTO for a bad header, -errno on lock failure.
 */
IPCX_API int ipcx_mem_check(struct ipcx_mem *m, struct ipcx_mem_report *r,
			    unsigned int flags);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_MEM_H */
