/* SPDX-License-Identifier: MIT */
/*
 * shm_priv.h - private helpers shared by the lib/shm files.
 */
#ifndef IPCX_SHM_PRIV_H
#define IPCX_SHM_PRIV_H

#include <stddef.h>
#include <stdint.h>

/*
 * Check an extensible opts struct: @opts may be NULL; its first member is
 * its size; bytes past the @known size this library was built with must be
 * zero. Return: 0, -EINVAL (size field too small), -E2BIG.
 */
int ipcx_opts_check(const void *opts, size_t known);

/*
 * Copy a caller's opts struct into @dst (@known bytes, this library's
 * sizeof) after ipcx_opts_check(): fields the caller's older struct lacks
 * read as zero. @src NULL gives all zeros. Return as ipcx_opts_check().
 */
int ipcx_opts_copy(void *dst, size_t known, const void *src);

/* Free hugetlb pages of a size (log2) in the pool right now, or 0. */
uint64_t ipcx_hugetlb_free_pages(unsigned int huge_shift);

#endif /* IPCX_SHM_PRIV_H */
