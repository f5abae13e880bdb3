// SPDX-License-Identifier: MIT
/*
 * peers_mem.c - the alloc_random workload driver (also used by the Boost
 * row), glibc malloc, and the POSIX rows of segment_create and
 * segment_touch_64m.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "peers.h"

#define ALLOC_BATCH 1000u
#define ALLOC_SLOTS (2 * ALLOC_LIVE)
#define ALLOC_K 0x9e3779b97f4a7c15ull

/* A block carries its slot and size at both ends: checked before freeing. */
static void blk_tag(void *p, uint32_t slot, uint32_t size)
{
	uint64_t t = ((uint64_t)slot << 32 | size) * ALLOC_K;

	memcpy(p, &t, 8);
	((unsigned char *)p)[size - 1] = (unsigned char)(slot ^ size);
}

static int blk_check(const void *p, uint32_t slot, uint32_t size)
{
	uint64_t t;

	memcpy(&t, p, 8);
	return t == ((uint64_t)slot << 32 | size) * ALLOC_K &&
	       ((const unsigned char *)p)[size - 1] == (unsigned char)(slot ^ size) ? 0 : -1;
}

/*
 * ALLOC_SLOTS slots, ALLOC_LIVE filled first; then each op picks a random
 * slot: free it if it holds a block, else allocate 16..512 bytes into it.
 * About ALLOC_LIVE blocks stay live. Batches of ALLOC_BATCH ops are timed.
 */
int alloc_drive_random(const struct bench_env *env, struct bench_run *run,
		       void *(*alloc)(void *ctx, size_t size),
		       void (*release)(void *ctx, void *p), void *ctx)
{
	void **blk = calloc(ALLOC_SLOTS, sizeof(*blk));
	uint32_t *sz = calloc(ALLOC_SLOTS, sizeof(*sz));
	uint64_t seed = env->seed, i, b, nb = env->iters / ALLOC_BATCH;
	uint64_t warm = bench_warmup(env);
	int ret = 0;

	if (!blk || !sz) {
		ret = bench_fail(run, "out of memory");
		goto out;
	}
	for (i = 0; i < ALLOC_LIVE; i++) {
		uint32_t s = 16 + (uint32_t)(bench_rand(&seed) % 497);

		blk[i] = alloc(ctx, s);
		if (!blk[i]) {
			ret = bench_fail(run, "allocation of %u bytes failed", s);
			goto out;
		}
		sz[i] = s;
		blk_tag(blk[i], (uint32_t)i, s);
	}
	run->per_sample = ALLOC_BATCH;
	for (b = 0; b < nb + 1; b++) {
		uint64_t t0 = bench_now_ns();
		uint64_t n = b ? ALLOC_BATCH : warm;	/* batch 0: warm-up */

		for (i = 0; i < n; i++) {
			uint64_t r = bench_rand(&seed);
			uint32_t k = (uint32_t)(r % ALLOC_SLOTS);

			if (blk[k]) {
				if (blk_check(blk[k], k, sz[k])) {
					ret = bench_fail(run, "block %u corrupted", k);
					goto out;
				}
				release(ctx, blk[k]);
				blk[k] = NULL;
			} else {
				uint32_t s = 16 + (uint32_t)((r >> 32) % 497);

				blk[k] = alloc(ctx, s);
				if (!blk[k]) {
					ret = bench_fail(run, "allocation of %u bytes failed", s);
					goto out;
				}
				sz[k] = s;
				blk_tag(blk[k], k, s);
			}
		}
		if (b)
			bench_sample(run, bench_now_ns() - t0);
	}
out:
	for (i = 0; blk && i < ALLOC_SLOTS; i++) {
		if (blk[i]) {
			if (!ret && blk_check(blk[i], (uint32_t)i, sz[i]))
				ret = bench_fail(run, "block %u corrupted", (unsigned)i);
			release(ctx, blk[i]);
		}
	}
	free(blk);
	free(sz);
	return ret;
}

static void *glibc_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void glibc_release(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static int alloc_glibc(const struct bench_env *env, struct bench_run *run)
{
	return alloc_drive_random(env, run, glibc_alloc, glibc_release, NULL);
}
BENCH_CASE("alloc_random", "glibc_malloc", "ns/op", alloc_glibc);

/* ---- segments: shm_open path ------------------------------------------------ */

/* create, size, map, write the first word, unmap, close, unlink: one sample */
static int seg_cycle(const char *name, size_t size, bool touch_all, uint64_t seq)
{
	uint64_t *p;
	int fd;

	fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return bench_fail(NULL, "shm_open %s: %s", name, strerror(errno));
	if (ftruncate(fd, (off_t)size)) {
		bench_fail(NULL, "ftruncate: %s", strerror(errno));
		goto fail;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		bench_fail(NULL, "mmap: %s", strerror(errno));
		goto fail;
	}
	if (touch_all)
		memset(p, (int)(seq & 0xff) | 1, size);
	p[0] = seq;
	if (p[0] != seq || (touch_all && ((unsigned char *)p)[size - 1] != ((seq & 0xff) | 1))) {
		munmap(p, size);
		bench_fail(NULL, "segment content lost");
		goto fail;
	}
	munmap(p, size);
	close(fd);
	if (shm_unlink(name))
		return bench_fail(NULL, "shm_unlink: %s", strerror(errno));
	return 0;
fail:
	close(fd);
	shm_unlink(name);
	return -1;
}

static int seg_rows(const struct bench_env *env, struct bench_run *run, size_t size,
		    bool touch_all)
{
	uint64_t i, warm = touch_all ? 1 : bench_warmup(env);
	char name[80];

	bench_name(name, sizeof(name), "seg", 1);
	for (i = 0; i < warm + env->iters; i++) {
		uint64_t t0 = bench_now_ns();

		if (seg_cycle(name, size, touch_all, i))
			return bench_fail(run, "segment cycle %llu failed", (unsigned long long)i);
		if (i >= warm)
			bench_sample(run, bench_now_ns() - t0);
	}
	return 0;
}

static int segcreate_posix(const struct bench_env *env, struct bench_run *run)
{
	return seg_rows(env, run, 1 << 20, false);
}
BENCH_CASE("segment_create", "posix", "ns/seg", segcreate_posix);

static int segtouch_posix(const struct bench_env *env, struct bench_run *run)
{
	return seg_rows(env, run, 64 << 20, true);
}
BENCH_CASE("segment_touch_64m", "posix", "ns/seg", segtouch_posix);
