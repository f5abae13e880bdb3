// SPDX-License-Identifier: MIT
/*
 * shm_bench - ipcx rows of the shared memory benchmarks.
 *
 * segment_create: create, size, map, unmap and unlink a 1 MiB named object
 *   (one sample per cycle). Row "ipcx" creates it sparse
 *   (IPCX_SHM_NORESERVE), the same guarantee the posix and boost peers
 *   give; row "ipcx_reserved" uses the default, which reserves every page
 *   at creation (-ENOSPC instead of a later SIGBUS) and pays for it.
 * segment_touch_64m: create and map a 64 MiB segment with hugepages
 *   preferred and write every byte once (one sample per segment). Run as
 *   root, the row grows vm.nr_hugepages for its run when the pool is short
 *   and puts the old value back before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipcx.h>
#include "bench.h"
#include "bench_util.h"

#define MB (1ull << 20)

static size_t cap_samples(const struct bench_run *run, size_t want)
{
	return want < run->cap ? want : run->cap;
}

static int create_cycles(const struct bench_env *env, struct bench_run *run,
			 uint32_t flags)
{
	IPCX_OPTS(ipcx_shm_opts, o, .size = MB, .flags = flags);
	size_t i, n = cap_samples(run, env->iters ? env->iters : (env->quick ? 300 : 2000));
	char name[64];

	snprintf(name, sizeof(name), "bench-create-%d", (int)getpid());
	ipcx_shm_unlink(name, NULL);	/* a leftover of a killed run */
	for (i = 0; i < n; i++) {
		struct ipcx_region *r;
		struct ipcx_shm *s;
		uint64_t t0 = bench_now_ns();
		int ret;

		ret = ipcx_shm_open(&s, name, IPCX_CREATE_ONLY, &o);
		if (ret)
			return ret;
		ret = ipcx_region_map(&r, ipcx_shm_fd(s), NULL);
		if (!ret)
			ret = ipcx_region_unmap(r);
		ipcx_shm_close(s);
		if (ipcx_shm_unlink(name, NULL) || ret)
			return ret ? ret : -EIO;
		run->samples[i] = bench_now_ns() - t0;
	}
	run->n = n;
	return 0;
}

static int segment_create_ipcx(const struct bench_env *env, struct bench_run *run)
{
	snprintf(run->note, sizeof(run->note), "sparse (IPCX_SHM_NORESERVE), as the peers");
	return create_cycles(env, run, IPCX_SHM_NORESERVE);
}
BENCH_CASE("segment_create", "ipcx", "ns/op", segment_create_ipcx);

static int segment_create_ipcx_reserved(const struct bench_env *env, struct bench_run *run)
{
	snprintf(run->note, sizeof(run->note), "default: all pages reserved (fallocate)");
	return create_cycles(env, run, 0);
}
BENCH_CASE("segment_create", "ipcx_reserved", "ns/op", segment_create_ipcx_reserved);

/* ---- segment_touch_64m ---------------------------------------------------- */

#define NR_HUGE		"/proc/sys/vm/nr_hugepages"
#define HP_DIR		"/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define TOUCH_SIZE	(64 * MB)

static long read_long(const char *path)
{
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 10);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), n, ret;

	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	ret = write(fd, buf, (size_t)n) == n ? 0 : -1;
	close(fd);
	return ret;
}

static long free_2m(void)
{
	long f = read_long(HP_DIR "free_hugepages"), r = read_long(HP_DIR "resv_hugepages");

	return f < 0 ? 0 : f - (r > 0 ? r : 0);
}

static int segment_touch_ipcx(const struct bench_env *env, struct bench_run *run)
{
	IPCX_OPTS(ipcx_memfd_opts, mo, .size = TOUCH_SIZE, .huge = IPCX_HUGE_PREFER,
		  .flags = IPCX_MEMFD_FIXED, .name = "bench-touch");
	IPCX_OPTS(ipcx_region_opts, ro, .huge = IPCX_HUGE_PREFER, .flags = IPCX_MAP_PREFAULT);
	long need = (long)(TOUCH_SIZE / (2 * MB)), old = -1, cur;
	size_t i, n = cap_samples(run, env->quick ? 3 : 8), pgsz = 0;
	uint64_t huge = 0;
	int ret = 0;

	/* Root may lend the run some hugepages; put the pool back afterwards. */
	cur = read_long(NR_HUGE);
	if (cur >= 0 && free_2m() < need && write_long(NR_HUGE, cur + need - free_2m()) == 0)
		old = cur;
	for (i = 0; i < n; i++) {
		struct ipcx_region *r;
		uint64_t t0 = bench_now_ns();
		int fd;

		fd = ipcx_memfd_new(&mo);
		if (fd < 0) {
			ret = fd;
			break;
		}
		ret = ipcx_region_map(&r, fd, &ro);
		if (ret) {
			close(fd);
			break;
		}
		memset(ipcx_region_addr(r), (int)i + 1, TOUCH_SIZE);
		__asm__ volatile("" ::: "memory");
		run->samples[i] = bench_now_ns() - t0;
		if (i == 0) {
			pgsz = ipcx_region_page_size(r);
			ipcx_region_huge_bytes(r, &huge);
		}
		ipcx_region_unmap(r);
		close(fd);
	}
	if (old >= 0 && write_long(NR_HUGE, old))
		ret = ret ? ret : -EIO;
	if (ret)
		return ret;
	run->n = n;
	if (huge >= TOUCH_SIZE)
		snprintf(run->note, sizeof(run->note), "%zu KiB hugetlb pages%s",
			 pgsz >> 10, old >= 0 ? " (pool grown for the run)" : "");
	else
		snprintf(run->note, sizeof(run->note),
			 "4 KiB pages + prefault (no hugepages: %llu MiB huge)",
			 (unsigned long long)(huge >> 20));
	return 0;
}
BENCH_CASE("segment_touch_64m", "ipcx", "ns/op", segment_touch_ipcx);
