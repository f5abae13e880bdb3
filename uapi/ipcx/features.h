/* SPDX-License-Identifier: MIT */
/*
 * ipcx/features.h - what this kernel and libc offer, probed once.
 */
#ifndef IPCX_FEATURES_H
#define IPCX_FEATURES_H

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ipcx_feature {
	IPCX_FEAT_FUTEX_PI		= 1ull << 0,  /* FUTEX_LOCK_PI/UNLOCK_PI */
	IPCX_FEAT_FUTEX_WAITV		= 1ull << 1,  /* futex_waitv(2), 5.16+ */
	IPCX_FEAT_FUTEX2		= 1ull << 2,  /* futex_wake/wait/requeue, 6.7+ */
	IPCX_FEAT_ROBUST_COTENANT	= 1ull << 3,  /* our locks can join libc's robust list */
	IPCX_FEAT_MEMFD			= 1ull << 4,  /* memfd_create(2) */
	IPCX_FEAT_MEMFD_SEAL		= 1ull << 5,  /* MFD_ALLOW_SEALING + F_ADD_SEALS */
	IPCX_FEAT_MEMFD_NOEXEC		= 1ull << 6,  /* MFD_NOEXEC_SEAL, 6.3+ */
	IPCX_FEAT_IO_URING		= 1ull << 7,  /* io_uring_setup(2) allowed */
	IPCX_FEAT_URING_FUTEX		= 1ull << 8,  /* IORING_OP_FUTEX_WAIT/WAKE, 6.7+ */
	IPCX_FEAT_URING_FUTEXV		= 1ull << 9,  /* IORING_OP_FUTEX_WAITV, 6.7+ */
	IPCX_FEAT_HUGETLB_2M		= 1ull << 10, /* free 2 MiB hugetlb pages now */
	IPCX_FEAT_HUGETLB_1G		= 1ull << 11, /* free 1 GiB hugetlb pages now */
	IPCX_FEAT_SHMEM_THP		= 1ull << 12, /* shmem THP not "never"/"deny" */
	IPCX_FEAT_OFD_LOCKS		= 1ull << 13, /* F_OFD_SETLK/SETLKW */
	IPCX_FEAT_PIDFD			= 1ull << 14, /* pidfd_open(2) */
	IPCX_FEAT_MADV_COLLAPSE		= 1ull << 15, /* MADV_COLLAPSE, 6.1+ */
};

#define IPCX_FEAT_COUNT 16

/**
 * ipcx_features() - bitmask of enum ipcx_feature this machine supports
 *
 * Probed on first call (a few syscalls) and cached; thread-safe. Hugepage
 * availability is a snapshot of the first call: use ipcx_features_reprobe()
 * after changing vm.nr_hugepages.
 *
 * Return: the mask; never fails.
 */
IPCX_API uint64_t ipcx_features(void);

/**
 * ipcx_features_reprobe() - probe again and replace the cached mask
 *
 * Return: the new mask.
 */
IPCX_API uint64_t ipcx_features_reprobe(void);

/**
 * ipcx_feature_name() - short lower-case name of one feature bit
 * @feat: a single enum ipcx_feature bit
 *
 * Return: a static string ("futex_waitv", ...), or NULL for an unknown bit.
 */
IPCX_API const char *ipcx_feature_name(uint64_t feat);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_FEATURES_H */
