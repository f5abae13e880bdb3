// SPDX-License-Identifier: MIT
/*
 * features_test - ipcx_features() agrees with independent checks of the
 * machine, names every bit, and is cached.
 */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

TEST(every_bit_has_a_name)
{
	int i;

	for (i = 0; i < IPCX_FEAT_COUNT; i++) {
		const char *n = ipcx_feature_name(1ull << i);

		ASSERT_NE(NULL, n);
		ASSERT_GT(strlen(n), 0);
	}
	ASSERT_EQ(NULL, ipcx_feature_name(1ull << IPCX_FEAT_COUNT));
	ASSERT_EQ(NULL, ipcx_feature_name(0));
	ASSERT_EQ(NULL, ipcx_feature_name(3));
}

TEST(cached_and_stable)
{
	uint64_t a = ipcx_features(), b = ipcx_features();

	ASSERT_EQ(a, b);
	ASSERT_EQ(0, a >> IPCX_FEAT_COUNT);
	uint64_t huge = IPCX_FEAT_HUGETLB_2M | IPCX_FEAT_HUGETLB_1G;

	/* Hugepage counts may change between probes; nothing else does. */
	ASSERT_EQ(a & ~huge, ipcx_features_reprobe() & ~huge);
}

TEST(memfd_matches_libc)
{
	uint64_t f = ipcx_features();
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ASSERT_EQ(fd >= 0, !!(f & IPCX_FEAT_MEMFD));
	if (fd >= 0) {
		ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0,
			  !!(f & IPCX_FEAT_MEMFD_SEAL));
		close(fd);
	}
	fd = memfd_create("t", MFD_CLOEXEC | 0x0008u /* MFD_NOEXEC_SEAL */);
	ASSERT_EQ(fd >= 0, !!(f & IPCX_FEAT_MEMFD_NOEXEC));
	if (fd >= 0)
		close(fd);
}

TEST(uring_matches_liburing_probe)
{
	uint64_t f = ipcx_features();
	struct io_uring_probe *p = io_uring_get_probe();

	if (!p) {
		ASSERT_EQ(0, f & (IPCX_FEAT_URING_FUTEX | IPCX_FEAT_URING_FUTEXV));
		return;
	}
	ASSERT_TRUE(f & IPCX_FEAT_IO_URING);
	ASSERT_EQ(io_uring_opcode_supported(p, 51) && io_uring_opcode_supported(p, 52),
		  !!(f & IPCX_FEAT_URING_FUTEX));
	ASSERT_EQ(io_uring_opcode_supported(p, 53), !!(f & IPCX_FEAT_URING_FUTEXV));
	io_uring_free_probe(p);
}

static long sysfs_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

TEST(hugetlb_matches_sysfs_and_mmap)
{
	long fr = sysfs_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
	long rs = sysfs_long("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");
	uint64_t f = ipcx_features_reprobe();
	void *p;

	ASSERT_EQ(fr > 0 && fr - (rs > 0 ? rs : 0) > 0, !!(f & IPCX_FEAT_HUGETLB_2M));
	/* If the bit says pages are there, a hugetlb map must work. */
	if (f & IPCX_FEAT_HUGETLB_2M) {
		p = mmap(NULL, 2u << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		ASSERT_NE(MAP_FAILED, p);
		munmap(p, 2u << 20);
	}
}

TEST(pidfd_and_ofd)
{
	uint64_t f = ipcx_features();
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = memfd_create("t", MFD_CLOEXEC);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(fcntl(fd, F_OFD_GETLK, &fl) == 0, !!(f & IPCX_FEAT_OFD_LOCKS));
	close(fd);
	fd = (int)syscall(434 /* pidfd_open */, getpid(), 0);
	ASSERT_EQ(fd >= 0, !!(f & IPCX_FEAT_PIDFD));
	if (fd >= 0)
		close(fd);
}

TEST(version_string)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d.%d.%d", IPCX_VERSION_MAJOR, IPCX_VERSION_MINOR,
		 IPCX_VERSION_PATCH);
	ASSERT_STREQ(buf, ipcx_version());
}

TEST_HARNESS_MAIN
