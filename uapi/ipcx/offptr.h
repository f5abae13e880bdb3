/* SPDX-License-Identifier: MIT */
/*
 * ipcx/offptr.h - pointers that stay valid in shared memory.
 *
 * A segment is mapped at a different address in every process, so shared
 * structures never hold raw pointers. Two kinds of reference are offered:
 *
 * struct ipcx_offptr - self-relative: stores (target - &self). Valid at any
 *   mapping address as long as the pointer and its target move together
 *   (both inside one segment). The stored word is the difference with its
 *   top bit flipped, so:
 *     - all-zero bits mean NULL (zero-filled memory holds null pointers, and
 *       a freshly truncated segment needs no initialisation pass);
 *     - a pointer to itself (difference 0) is distinct from NULL;
 *     - NULL would need a difference of -2^63, which no address space has.
 *
 * struct ipcx_handle - segment-relative: stores (offset from the segment
 *   base + 1), 0 meaning NULL. Handles can be passed between processes in
 *   messages and resolved against each process's own mapping; the resolver
 *   bounds-checks them against the mapping's size.
 *
 * Both are plain 8-byte values of fixed layout, safe in shared layouts.
 */
#ifndef IPCX_OFFPTR_H
#define IPCX_OFFPTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipcx_offptr {
	uint64_t raw;
};

#define IPCX_OFFPTR_NULL	((struct ipcx_offptr){ 0 })
#define IPCX_OFFPTR_BIAS	(UINT64_C(1) << 63)

/**
 * ipcx_offptr_set() - make @p point at @target (NULL allowed)
 */
static inline void ipcx_offptr_set(struct ipcx_offptr *p, const void *target)
{
	p->raw = target ? ((uint64_t)(uintptr_t)target - (uint64_t)(uintptr_t)p) ^
			  IPCX_OFFPTR_BIAS : 0;
}

/**
 * ipcx_offptr_get() - the address @p points at in this process, or NULL
 */
static inline void *ipcx_offptr_get(const struct ipcx_offptr *p)
{
	uint64_t raw = p->raw;

	if (!raw)
		return NULL;
	return (void *)(uintptr_t)((uint64_t)(uintptr_t)p + (raw ^ IPCX_OFFPTR_BIAS));
}

static inline bool ipcx_offptr_is_null(const struct ipcx_offptr *p)
{
	return p->raw == 0;
}

/**
 * ipcx_offptr_copy() - make @dst point where @src points
 *
 * Copying the raw word would be wrong: the offset is relative to the
 * pointer's own address.
 */
static inline void ipcx_offptr_copy(struct ipcx_offptr *dst,
				    const struct ipcx_offptr *src)
{
	ipcx_offptr_set(dst, ipcx_offptr_get(src));
}

/* Typed read: IPCX_OFFPTR_GET(&node->next, struct node). */
#define IPCX_OFFPTR_GET(p, type) ((type *)ipcx_offptr_get(p))

struct ipcx_handle {
	uint64_t raw;
};

#define IPCX_HANDLE_NULL	((struct ipcx_handle){ 0 })

/**
 * ipcx_handle_from_ptr() - handle of @ptr inside [@base, @base + @size)
 *
 * Return: the handle; IPCX_HANDLE_NULL for a NULL @ptr or one outside the
 * range (check with ipcx_handle_is_null()).
 */
static inline struct ipcx_handle ipcx_handle_from_ptr(const void *base, size_t size,
						      const void *ptr)
{
	uintptr_t b = (uintptr_t)base, q = (uintptr_t)ptr;

	if (!ptr || q < b || q - b >= size)
		return IPCX_HANDLE_NULL;
	return (struct ipcx_handle){ (uint64_t)(q - b) + 1 };
}

/**
 * ipcx_handle_to_ptr() - address of handle @h in a mapping at @base of @size
 * @len: bytes the caller will access at the result; the whole span must be
 *       inside the mapping
 *
 * Return: the address, or NULL for a null handle or one that does not fit
 * (a handle read from shared memory is untrusted input).
 */
static inline void *ipcx_handle_to_ptr(const void *base, size_t size,
				       struct ipcx_handle h, size_t len)
{
	uint64_t off;

	if (!h.raw)
		return NULL;
	off = h.raw - 1;
	if (off >= size || len > size - off)
		return NULL;
	return (char *)(uintptr_t)base + off;
}

static inline bool ipcx_handle_is_null(struct ipcx_handle h)
{
	return h.raw == 0;
}

/* Segment offset (for tools and logs) of a non-null handle. */
static inline uint64_t ipcx_handle_offset(struct ipcx_handle h)
{
	return h.raw - 1;
}

#ifdef __cplusplus
}
#endif
#endif /* IPCX_OFFPTR_H */
