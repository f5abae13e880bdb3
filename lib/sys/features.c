// SPDX-License-Identifier: MIT
/*
 * features.c - probe once what this kernel and libc offer.
 *
 * Each probe is the cheapest call that tells "supported" from "missing"
 * (mostly -ENOSYS / -EINVAL on an argument the new code path accepts).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <ipcx/features.h>
#include "sys.h"

#define PROBED (1ull << 63)

static _Atomic uint64_t feature_cache;

static long read_sysfs_long(const char *path)
{
	char buf[64];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%ld", &v) != 1)
		return -1;
	return v;
}

static bool hugetlb_free(const char *size_dir)
{
	char path[128];
	long free_pages, resv;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/free_hugepages", size_dir);
	free_pages = read_sysfs_long(path);
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/resv_hugepages", size_dir);
	resv = read_sysfs_long(path);
	return free_pages > 0 && free_pages - (resv > 0 ? resv : 0) > 0;
}

/* "always within_size advise [never] deny force" -> is the choice usable? */
static bool shmem_thp_enabled(void)
{
	char buf[256], *l, *r;
	int fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
		      O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	l = strchr(buf, '[');
	r = l ? strchr(l, ']') : NULL;
	if (!r)
		return false;
	*r = '\0';
	return strcmp(l + 1, "never") && strcmp(l + 1, "deny");
}

static uint64_t probe_uring(void)
{
	struct io_uring_params p;
	/* struct io_uring_probe ends in a flexible array of 256 ops here. */
	union {
		struct io_uring_probe probe;
		char bytes[sizeof(struct io_uring_probe) +
			   256 * sizeof(struct io_uring_probe_op)];
	} pr;
	uint64_t f = 0;
	int fd, ret;

	memset(&p, 0, sizeof(p));
	fd = (int)ipcx_sys(__NR_io_uring_setup, 2, &p, 0, 0, 0, 0);
	if (fd < 0)
		return 0;
	f |= IPCX_FEAT_IO_URING;
	memset(&pr, 0, sizeof(pr));
	ret = (int)ipcx_sys(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, &pr, 256, 0, 0);
	if (ret == 0) {
		unsigned int last = pr.probe.last_op;

		if (last >= IPCX_IORING_OP_FUTEX_WAKE &&
		    (pr.probe.ops[IPCX_IORING_OP_FUTEX_WAIT].flags & IO_URING_OP_SUPPORTED) &&
		    (pr.probe.ops[IPCX_IORING_OP_FUTEX_WAKE].flags & IO_URING_OP_SUPPORTED))
			f |= IPCX_FEAT_URING_FUTEX;
		if (last >= IPCX_IORING_OP_FUTEX_WAITV &&
		    (pr.probe.ops[IPCX_IORING_OP_FUTEX_WAITV].flags & IO_URING_OP_SUPPORTED))
			f |= IPCX_FEAT_URING_FUTEXV;
	}
	close(fd);
	return f;
}

static uint64_t probe_memfd(void)
{
	uint64_t f = 0;
	struct flock fl;
	int fd;

	fd = ipcx_memfd_create("ipcx-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return 0;
	f |= IPCX_FEAT_MEMFD;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
		f |= IPCX_FEAT_MEMFD_SEAL;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_GETLK, &fl) == 0)
		f |= IPCX_FEAT_OFD_LOCKS;
	close(fd);

	fd = ipcx_memfd_create("ipcx-probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
	if (fd >= 0) {
		f |= IPCX_FEAT_MEMFD_NOEXEC;
		close(fd);
	}
	return f;
}

static uint64_t probe_futex(void)
{
	uint32_t word = 0;
	uint64_t f = 0;
	struct ipcx_robust_head *head = NULL;
	size_t len = 0;

	/* Unlocking a word we do not own: -EPERM when PI exists, -ENOSYS when not. */
	if (ipcx_futex_unlock_pi(&word, false) != -ENOSYS)
		f |= IPCX_FEAT_FUTEX_PI;
	/* Zero waiters is -EINVAL for a kernel that has the call. */
	if (ipcx_futex_waitv(NULL, 0, NULL) == -EINVAL)
		f |= IPCX_FEAT_FUTEX_WAITV;
	/* The mask must fit the word size: a 64-bit mask is -EINVAL for U32. */
	if (ipcx_sys(SYS_futex_wake, &word, 0xffffffffu, 1, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
		     0, 0) >= 0)
		f |= IPCX_FEAT_FUTEX2;
	if (ipcx_get_robust_list(&head, &len) == 0 && head &&
	    len == sizeof(struct ipcx_robust_head) &&
	    head->futex_offset == IPCX_ROBUST_FUTEX_OFFSET)
		f |= IPCX_FEAT_ROBUST_COTENANT;
	return f;
}

static uint64_t probe_mm(void)
{
	uint64_t f = 0;
	struct utsname u;
	int major, minor;

	if (hugetlb_free("hugepages-2048kB"))
		f |= IPCX_FEAT_HUGETLB_2M;
	if (hugetlb_free("hugepages-1048576kB"))
		f |= IPCX_FEAT_HUGETLB_1G;
	if (shmem_thp_enabled())
		f |= IPCX_FEAT_SHMEM_THP;

	/*
	 * MADV_COLLAPSE (6.1+) cannot be probed cheaply: on an untouched range
	 * it answers -EINVAL just like a kernel without it, and a touched
	 * range costs a page fault per page. Go by version and THP presence.
	 */
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major > 6 || (major == 6 && minor >= 1)) &&
	    access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
		f |= IPCX_FEAT_MADV_COLLAPSE;
	return f;
}

uint64_t ipcx_features_reprobe(void)
{
	uint64_t f = probe_futex() | probe_memfd() | probe_uring() | probe_mm();
	int pfd = ipcx_pidfd_open(getpid(), 0);

	if (pfd >= 0) {
		f |= IPCX_FEAT_PIDFD;
		close(pfd);
	}
	atomic_store_explicit(&feature_cache, f | PROBED, memory_order_release);
	return f;
}

uint64_t ipcx_features(void)
{
	uint64_t f = atomic_load_explicit(&feature_cache, memory_order_acquire);

	if (likely(f & PROBED))
		return f & ~PROBED;
	return ipcx_features_reprobe();
}

static const char *const feature_names[IPCX_FEAT_COUNT] = {
	"futex_pi", "futex_waitv", "futex2", "robust_cotenant",
	"memfd", "memfd_seal", "memfd_noexec", "io_uring",
	"uring_futex", "uring_futexv", "hugetlb_2m", "hugetlb_1g",
	"shmem_thp", "ofd_locks", "pidfd", "madv_collapse",
};

const char *ipcx_feature_name(uint64_t feat)
{
	if (!feat || (feat & (feat - 1)) || feat >= (1ull << IPCX_FEAT_COUNT))
		return NULL;
	return feature_names[__builtin_ctzll(feat)];
}
