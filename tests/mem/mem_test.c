// SPDX-License-Identifier: MIT
/*
 * mem_test - the in-region allocator (lib/mem): Boost's memory-algorithm
 * scenarios (exhaustion then forward/reverse/random frees, alignments,
 * allocation command, zero free memory, batches), bad pointers, corruption
 * that the check must report without crashing, several processes at once,
 * and SIGKILL in the middle of allocator calls.
 */
#include <stdio.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx/mem.h>

#define REGION	(8u << 20)
#define MAXB	200000

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void *region(size_t len)
{
	return t_shared(len);
}

static int check_clean(struct ipcx_mem *m, struct ipcx_mem_report *r)
{
	memset(r, 0, sizeof(*r));
	r->sz = sizeof(*r);
	return ipcx_mem_check(m, r, 0);
}

TEST(bad_arguments)
{
	char *buf = region(REGION);
	struct ipcx_mem *m;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(NULL, ipcx_mem_init(NULL, REGION, NULL));
	ASSERT_EQ(NULL, ipcx_mem_alloc(NULL, 10));
	ASSERT_EQ(NULL, ipcx_mem_alloc_aligned(NULL, 10, 64));
	ASSERT_EQ(-EINVAL, ipcx_mem_free(NULL, buf));
	ASSERT_EQ(0, ipcx_mem_size_of(NULL, buf));
	ASSERT_EQ(0, ipcx_mem_free_memory(NULL));
	ASSERT_EQ(-EINVAL, ipcx_mem_trim(NULL));
	ASSERT_EQ(-EINVAL, ipcx_mem_zero_free(NULL));
	ASSERT_EQ(-EINVAL, ipcx_mem_grow(NULL, REGION));
	ASSERT_EQ(-EINVAL, ipcx_mem_check(NULL, NULL, 0));
	ASSERT_EQ(NULL, ipcx_mem_init(buf + 8, REGION - 64, NULL));
	ASSERT_EQ(NULL, ipcx_mem_init(buf, 1024, NULL));
	ASSERT_EQ(-EPROTO, ipcx_mem_attach(buf, REGION));	/* all zero */
	m = ipcx_mem_init(buf, REGION, NULL);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, ipcx_mem_attach(buf, REGION));
	ASSERT_EQ(-EPROTO, ipcx_mem_attach(buf, REGION / 2));	/* claims more than mapped */
	ASSERT_EQ(-EINVAL, ipcx_mem_free(m, buf + REGION / 2));	/* never allocated */
	ASSERT_EQ(-EINVAL, ipcx_mem_free(m, buf + 3));
	ASSERT_EQ(-EINVAL, ipcx_mem_free(m, buf - 4096));
	ASSERT_EQ(0, ipcx_mem_free(m, NULL));
	ASSERT_EQ(NULL, ipcx_mem_alloc_aligned(m, 10, 48));
	munmap(buf, REGION);
}

TEST(double_free_and_size_of)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	void *a, *b;

	ASSERT_NE(NULL, m);
	a = ipcx_mem_alloc(m, 100);
	b = ipcx_mem_alloc(m, 100000);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, (uintptr_t)a % 16);
	ASSERT_EQ(0, (uintptr_t)b % 16);
	ASSERT_GE(ipcx_mem_size_of(m, a), 100);
	ASSERT_GE(ipcx_mem_size_of(m, b), 100000);
	ASSERT_EQ(0, ipcx_mem_size_of(m, (char *)b + 16));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	ASSERT_EQ(-EINVAL, ipcx_mem_free(m, a));
	ASSERT_EQ(0, ipcx_mem_free(m, b));
	ASSERT_EQ(-EINVAL, ipcx_mem_free(m, b));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	munmap(buf, REGION);
}

FIXTURE(exhaust) {
	char *buf;
	struct ipcx_mem *m;
	void **p;
};

FIXTURE_VARIANT(exhaust) {
	int order;	/* 0 forward, 1 reverse, 2 random */
	size_t maxsz;
};

FIXTURE_VARIANT_ADD(exhaust, forward_small) { .order = 0, .maxsz = 300 };
FIXTURE_VARIANT_ADD(exhaust, reverse_small) { .order = 1, .maxsz = 300 };
FIXTURE_VARIANT_ADD(exhaust, random_small) { .order = 2, .maxsz = 300 };
FIXTURE_VARIANT_ADD(exhaust, forward_mixed) { .order = 0, .maxsz = 20000 };
FIXTURE_VARIANT_ADD(exhaust, reverse_mixed) { .order = 1, .maxsz = 20000 };
FIXTURE_VARIANT_ADD(exhaust, random_mixed) { .order = 2, .maxsz = 20000 };

FIXTURE_SETUP(exhaust)
{
	self->buf = region(REGION);
	ASSERT_NE(NULL, self->buf);
	self->m = ipcx_mem_init(self->buf, REGION, NULL);
	ASSERT_NE(NULL, self->m);
	self->p = calloc(MAXB, sizeof(void *));
	ASSERT_NE(NULL, self->p);
}

FIXTURE_TEARDOWN(exhaust)
{
	munmap(self->buf, REGION);
	free(self->p);
}

TEST_F(exhaust, back_to_start)
{
	struct ipcx_mem_report r;
	uint64_t free0 = ipcx_mem_free_memory(self->m);
	uint64_t large0 = ipcx_mem_largest_free(self->m);
	size_t n = 0, i;
	int round;

	rng_state = 0x1234567 + variant->order;
	for (round = 0; round < 2; round++) {
		for (n = 0; n < MAXB; n++) {
			self->p[n] = ipcx_mem_alloc(self->m, 1 + rnd() % variant->maxsz);
			if (!self->p[n])
				break;
			memset(self->p[n], 0xa5, 16);
		}
		ASSERT_LT(n, MAXB);
		ASSERT_GT(n, 100);
		/* Exhausted: most of the region is handed out. */
		ASSERT_LT(ipcx_mem_free_memory(self->m), REGION / 4);
		ASSERT_EQ(0, check_clean(self->m, &r));
		if (variant->order == 2)
			for (i = n; i > 1; i--) {
				size_t j = rnd() % i;
				void *t = self->p[i - 1];

				self->p[i - 1] = self->p[j];
				self->p[j] = t;
			}
		for (i = 0; i < n; i++) {
			size_t k = variant->order == 1 ? n - 1 - i : i;

			ASSERT_EQ(0, ipcx_mem_free(self->m, self->p[k]));
		}
		ASSERT_TRUE(ipcx_mem_all_freed(self->m));
		ASSERT_EQ(free0, ipcx_mem_free_memory(self->m));
		ASSERT_EQ(large0, ipcx_mem_largest_free(self->m));
		ASSERT_EQ(0, check_clean(self->m, &r));
		ASSERT_EQ(1, r.free_blocks);
		ASSERT_EQ(0, r.leaked);
	}
}

/* Live blocks never overlap: fill each completely, free half, refill, verify all. */
TEST(blocks_do_not_overlap)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	static unsigned char *p[30000];
	static size_t sz[30000];
	size_t i, j, n;

	ASSERT_NE(NULL, m);
	rng_state = 4242;
	for (n = 0; n < 30000; n++) {
		sz[n] = rnd() % 4 ? 1 + rnd() % 600 : 1 + rnd() % 9000;
		p[n] = ipcx_mem_alloc(m, sz[n]);
		if (!p[n])
			break;
		ASSERT_GE(ipcx_mem_size_of(m, p[n]), sz[n]);
		memset(p[n], (int)(n & 0xff), ipcx_mem_size_of(m, p[n]));
	}
	ASSERT_GT(n, 1000);
	for (i = 0; i < n; i += 2) {
		ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
		p[i] = ipcx_mem_alloc(m, sz[i]);
		ASSERT_NE(NULL, p[i]);
		memset(p[i], (int)(i & 0xff), ipcx_mem_size_of(m, p[i]));
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < ipcx_mem_size_of(m, p[i]); j++)
			ASSERT_EQ((unsigned char)(i & 0xff), p[i][j]);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	munmap(buf, REGION);
}

TEST(every_alignment)
{
	size_t len = 16u << 20, align;
	char *buf = region(len);
	struct ipcx_mem *m = ipcx_mem_init(buf, len, NULL);
	struct ipcx_mem_report r;
	void *p[4096];
	uint64_t free0;

	ASSERT_NE(NULL, m);
	free0 = ipcx_mem_free_memory(m);
	for (align = 1; align <= (4u << 20); align <<= 1) {
		size_t n, i, sz;

		for (sz = 1; sz < 3 * align && sz < (4u << 20); sz = sz * 3 + 7) {
			for (n = 0; n < 4096; n++) {
				p[n] = ipcx_mem_alloc_aligned(m, sz, align);
				if (!p[n])
					break;
				ASSERT_EQ(0, (uintptr_t)p[n] % align);
				ASSERT_GE(ipcx_mem_size_of(m, p[n]), sz);
			}
			ASSERT_GT(n, 0);
			for (i = 0; i < n; i++)
				ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
			ASSERT_EQ(free0, ipcx_mem_free_memory(m));
		}
	}
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	munmap(buf, len);
}

TEST(hugepage_alignment_of_large_blocks)
{
	size_t len = 16u << 20;
	char *raw = region(len + (2u << 20)), *buf;
	struct ipcx_mem_opts o = { .sz = sizeof(o), .huge_align = 2u << 20 };
	struct ipcx_mem *m;
	void *a, *b, *c;

	ASSERT_NE(NULL, raw);
	buf = (char *)(((uintptr_t)raw + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	m = ipcx_mem_init(buf, len, &o);
	ASSERT_NE(NULL, m);
	a = ipcx_mem_alloc(m, 100);
	b = ipcx_mem_alloc(m, 2u << 20);
	c = ipcx_mem_alloc(m, 5u << 20);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, (uintptr_t)b % (2u << 20));
	ASSERT_EQ(0, (uintptr_t)c % (2u << 20));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	ASSERT_EQ(0, ipcx_mem_free(m, b));
	ASSERT_EQ(0, ipcx_mem_free(m, c));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	munmap(raw, len + (2u << 20));
}

TEST(allocation_command)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	struct ipcx_mem_report r;
	void *a, *b, *c, *out;
	size_t got;

	ASSERT_NE(NULL, m);
	/* a | b | c, then free b: a can expand forward into b's space. */
	a = ipcx_mem_alloc(m, 4000);
	b = ipcx_mem_alloc(m, 8000);
	c = ipcx_mem_alloc(m, 4000);
	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, ipcx_mem_free(m, b));
	ASSERT_EQ(0, ipcx_mem_command(m, IPCX_MEM_EXPAND_FWD, 6000, 9000, a, &got, &out));
	ASSERT_EQ(a, out);
	ASSERT_GE(got, 6000);
	ASSERT_EQ(got, ipcx_mem_size_of(m, a));
	/* Beyond what is free next to it: fails, block unchanged. */
	ASSERT_EQ(-ENOMEM, ipcx_mem_command(m, IPCX_MEM_EXPAND_FWD, 100000, 100000, a, &got, &out));
	ASSERT_EQ(got, 0);
	/* Shrink in place to 1000 bytes. */
	ASSERT_EQ(0, ipcx_mem_command(m, IPCX_MEM_SHRINK_IN_PLACE, 2000, 1000, a, &got, &out));
	ASSERT_EQ(a, out);
	ASSERT_GE(got, 1000);
	ASSERT_LE(got, 2000);
	/* c expands backward into the space a gave up. */
	ASSERT_EQ(0, ipcx_mem_command(m, IPCX_MEM_EXPAND_BWD, 8000, 10000, c, &got, &out));
	ASSERT_LT((char *)out, (char *)c);
	ASSERT_GE(got, 8000);
	ASSERT_GT((char *)out, (char *)a);
	c = out;
	/* Allocate-new fallback when in place is impossible. */
	ASSERT_EQ(0, ipcx_mem_command(m, IPCX_MEM_EXPAND_FWD | IPCX_MEM_ALLOCATE_NEW,
				      1u << 20, 2u << 20, a, &got, &out));
	ASSERT_NE(a, out);
	ASSERT_GE(got, 1u << 20);
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(0, ipcx_mem_free(m, out));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	ASSERT_EQ(0, ipcx_mem_free(m, c));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(1, r.free_blocks);
	/* Bad commands. */
	ASSERT_EQ(-EINVAL, ipcx_mem_command(m, 0, 1, 1, NULL, &got, &out));
	ASSERT_EQ(-EINVAL, ipcx_mem_command(m, IPCX_MEM_EXPAND_FWD, 10, 5, NULL, &got, &out));
	/* A small block: shrink fits, expansion beyond its class fails. */
	a = ipcx_mem_alloc(m, 20);
	ASSERT_EQ(0, ipcx_mem_command(m, IPCX_MEM_SHRINK_IN_PLACE, 64, 10, a, &got, &out));
	ASSERT_EQ(-ENOMEM, ipcx_mem_command(m, IPCX_MEM_EXPAND_FWD, 4000, 4000, a, &got, &out));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	munmap(buf, REGION);
}

TEST(zero_free_memory)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	static void *p[MAXB];
	size_t n, i, j;

	ASSERT_NE(NULL, m);
	rng_state = 99;
	for (n = 0; n < MAXB; n++) {
		size_t sz = 1 + rnd() % 5000;

		p[n] = ipcx_mem_alloc(m, sz);
		if (!p[n])
			break;
		memset(p[n], 0xff, ipcx_mem_size_of(m, p[n]));
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
	ASSERT_EQ(0, ipcx_mem_zero_free(m));
	for (n = 0; n < MAXB; n++) {
		size_t sz = 1 + rnd() % 5000;
		unsigned char *q = ipcx_mem_alloc(m, sz);

		if (!q)
			break;
		p[n] = q;
		for (j = 0; j < sz; j++)
			if (q[j])
				break;
		ASSERT_EQ(sz, j);
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
	munmap(buf, REGION);
}

TEST(batch)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	size_t sizes[64], i;
	void *out[64];
	uint64_t free0;

	ASSERT_NE(NULL, m);
	free0 = ipcx_mem_free_memory(m);
	for (i = 0; i < 64; i++)
		sizes[i] = 8 + i * 100;
	ASSERT_EQ(0, ipcx_mem_alloc_batch(m, sizes, 64, out));
	for (i = 0; i < 64; i++) {
		ASSERT_NE(NULL, out[i]);
		ASSERT_GE(ipcx_mem_size_of(m, out[i]), sizes[i]);
		memset(out[i], (int)i, sizes[i]);
	}
	ASSERT_EQ(0, ipcx_mem_free_batch(m, out, 64));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ASSERT_EQ(free0, ipcx_mem_free_memory(m));
	/* All or nothing: one impossible size fails the batch, nothing stays. */
	sizes[40] = REGION * 2;
	ASSERT_EQ(-ENOMEM, ipcx_mem_alloc_batch(m, sizes, 64, out));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ASSERT_EQ(free0, ipcx_mem_free_memory(m));
	munmap(buf, REGION);
}

TEST(grow_and_shrink_to_fit)
{
	size_t len = 4u << 20;
	char *buf = region(len);
	struct ipcx_mem *m = ipcx_mem_init(buf, len / 2, NULL);
	struct ipcx_mem_report r;
	void *a, *big;
	int64_t ns;

	ASSERT_NE(NULL, m);
	a = ipcx_mem_alloc(m, 1000);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(NULL, ipcx_mem_alloc(m, 3u << 20));
	ASSERT_EQ(0, ipcx_mem_grow(m, len));
	ASSERT_EQ(len, ipcx_mem_size(m));
	big = ipcx_mem_alloc(m, 3u << 20);
	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(0, ipcx_mem_free(m, big));
	ns = ipcx_mem_shrink_to_fit(m, 4096);
	ASSERT_GT(ns, 0);
	ASSERT_LT(ns, 256 * 1024);
	ASSERT_EQ(0, ns % 4096);
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ASSERT_EQ(0, check_clean(m, &r));
	munmap(buf, len);
}

/* Random corruption: the check reports, never crashes (NOLOCK: locks may be garbage). */
TEST(check_survives_corruption)
{
	char *buf = region(REGION), *copy = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	struct ipcx_mem_report r;
	static void *p[20000];
	void *big;
	int i, errors = 0, trial;

	ASSERT_NE(NULL, m);
	rng_state = 7;
	for (i = 0; i < 20000; i++) {
		p[i] = ipcx_mem_alloc(m, 1 + rnd() % 600);
		ASSERT_NE(NULL, p[i]);
	}
	for (i = 0; i < 20000; i += 3)
		ASSERT_EQ(0, ipcx_mem_free(m, p[i]));
	big = ipcx_mem_alloc(m, 5000);
	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, check_clean(m, &r));
	for (trial = 0; trial < 300; trial++) {
		struct ipcx_mem *c = (struct ipcx_mem *)copy;
		int k, ret;

		memcpy(copy, buf, REGION);
		for (k = 0; k < 1 + trial % 20; k++) {
			size_t off = 64 + rnd() % (REGION - 72);

			off &= ~(size_t)7;
			*(uint64_t *)(copy + off) = trial & 1 ? rnd() : *(uint64_t *)(copy + off) ^
								      (1ull << (rnd() % 64));
		}
		memset(&r, 0, sizeof(r));
		r.sz = sizeof(r);
		ret = ipcx_mem_check(c, &r, IPCX_MEM_CHECK_NOLOCK);
		ASSERT_TRUE(ret == 0 || ret == -EUCLEAN || ret == -EPROTO);
		if (ret == -EUCLEAN) {
			ASSERT_NE(NULL, r.first_error);
			errors++;
		}
	}
	TH_LOG("%d of 300 corrupted copies reported", errors);
	ASSERT_GT(errors, 10);
	/* A targeted corruption: a block header's size. */
	memcpy(copy, buf, REGION);
	*(uint64_t *)(copy + ((char *)big - buf) - 8) ^= 0x10;
	ASSERT_EQ(-EUCLEAN, ipcx_mem_check((struct ipcx_mem *)copy, &r, IPCX_MEM_CHECK_NOLOCK));
	munmap(buf, REGION);
	munmap(copy, REGION);
}

static int churn(struct ipcx_mem *m, uint64_t seed, long ops, bool forever)
{
	void *p[512] = { 0 };
	long i;

	rng_state = seed;
	for (i = 0; forever || i < ops; i++) {
		unsigned int j = (unsigned int)(rnd() % 512);

		if (p[j]) {
			if (ipcx_mem_free(m, p[j]))
				return 2;
			p[j] = NULL;
		} else {
			size_t sz = rnd() % 8 ? 16 + rnd() % 500 : 1 + rnd() % 70000;

			p[j] = ipcx_mem_alloc(m, sz);
			if (p[j])
				memset(p[j], (int)j, sz < 64 ? sz : 64);
		}
	}
	for (i = 0; i < 512; i++)
		if (p[i] && ipcx_mem_free(m, p[i]))
			return 3;
	return 0;
}

TEST(four_processes)
{
	size_t len = 32u << 20;
	char *buf = region(len);
	struct ipcx_mem *m = ipcx_mem_init(buf, len, NULL);
	struct ipcx_mem_report r;
	uint64_t free0;
	pid_t pid[4];
	int i;

	ASSERT_NE(NULL, m);
	free0 = ipcx_mem_free_memory(m);
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (!pid[i])
			_exit(churn(m, 1000 + i, 200000, false));
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, t_wait(pid[i]));
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ipcx_mem_trim(m);
	ASSERT_EQ(free0, ipcx_mem_free_memory(m));
	munmap(buf, len);
}

/*
 * Death at a chosen point: inside the creation of a size-class run, after
 * the run header is written and before the large allocator's commit. The
 * run's block is the free block right after an existing run, so its header
 * words are that free block's bin links; the next locker rolls the op back
 * and the block must come back as a free block with intact links.
 *
 * The point is found with page protection, no hooks in the library: the
 * child's mapping of the new run's chunk page is read-only, so the first
 * run-header store faults; the handler opens that page and closes the
 * region's first page (the large lock and its log length), so the next
 * store there (the commit) faults and the handler kills the process.
 */
static char *kr_chunk, *kr_hdr;
static volatile sig_atomic_t kr_stage;

static void kr_segv(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;

	if (kr_stage == 0 && a >= kr_chunk && a < kr_chunk + 4096) {
		kr_stage = 1;
		if (mprotect(kr_chunk, 4096, PROT_READ | PROT_WRITE) ||
		    mprotect(kr_hdr, 4096, PROT_READ))
			_exit(91);
		return;
	}
	if (kr_stage == 1 && a >= kr_hdr && a < kr_hdr + 4096) {
		/* Writable again for the kernel's robust-list walk (the store
		 * itself never runs: SIGKILL to self ends us in the syscall). */
		mprotect(kr_hdr, 4096, PROT_READ | PROT_WRITE);
		kill(getpid(), SIGKILL);
	}
	_exit(90);	/* a fault nobody planned */
}

TEST(kill_in_new_run)
{
	char *buf = region(REGION);
	struct ipcx_mem *m = ipcx_mem_init(buf, REGION, NULL);
	struct ipcx_mem_report r;
	void *a, *b, *big[64];
	uint64_t free0;
	pid_t pid;
	int i, n;

	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, (uintptr_t)buf % 4096);
	free0 = ipcx_mem_free_memory(m);
	a = ipcx_mem_alloc(m, 16);		/* the first run */
	ASSERT_NE(NULL, a);
	/* The next run goes right after it: its header is the free tail's links. */
	kr_chunk = buf + (((char *)a - buf) & ~(size_t)0xffff) + 0x10000;	/* chunks: 64 KiB of offset */
	kr_hdr = buf;
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct sigaction sa = { .sa_sigaction = kr_segv, .sa_flags = SA_SIGINFO };

		if (sigaction(SIGSEGV, &sa, NULL) || mprotect(kr_chunk, 4096, PROT_READ))
			_exit(92);
		ipcx_mem_alloc(m, 1000);	/* another class: a new run */
		_exit(kr_stage == 0 ? 93 : 94);
	}
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	/* The survivor repairs: consistent, and the free lists are walkable. */
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_GT(r.repairs, 0);
	/* Rolled back exactly: the run is made again where the dead call put it. */
	b = ipcx_mem_alloc(m, 1000);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(kr_chunk, buf + (((char *)b - buf) & ~(size_t)0xffff));
	for (n = 0; n < 64; n++) {
		big[n] = ipcx_mem_alloc(m, 3000 + (size_t)n * 1000);
		if (!big[n])
			break;
	}
	ASSERT_GT(n, 10);
	ASSERT_EQ(0, check_clean(m, &r));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, ipcx_mem_free(m, big[i]));
	ASSERT_EQ(0, ipcx_mem_free(m, a));
	ASSERT_EQ(0, ipcx_mem_free(m, b));
	ASSERT_TRUE(ipcx_mem_all_freed(m));
	ipcx_mem_trim(m);
	ASSERT_EQ(free0, ipcx_mem_free_memory(m));
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(1, r.free_blocks);
	munmap(buf, REGION);
}

/*
 * Every crash point of one call, swept. A child runs one allocator call
 * with the whole region read-only: each store into the region faults, the
 * handler lets that one store through (region writable, one single step
 * with the x86-64 trap flag, then read-only again), and at store K the
 * child is killed before the store happens. K = 1, 2, ... until the call
 * completes, so every store of the call is a death point: lock words and
 * robust-list links, logged stores and plain ones. After each death the
 * survivor's check must be clean and the whole region usable again.
 * (t_die_at_store() in ipcx_test.h does the stepping.)
 */
#define SW_LEN		(2u << 20)
#define SW_MAXK		4000

struct sw_ctx {
	struct ipcx_mem *m;
	void *p[80];
};

static void sw_fill(struct sw_ctx *x, size_t sz, int n)
{
	int i;

	for (i = 0; i < n; i++)
		x->p[i] = ipcx_mem_alloc(x->m, sz);
}

static void sw_setup_none(struct sw_ctx *x)
{
}

static void sw_setup_run(struct sw_ctx *x)
{
	x->p[0] = ipcx_mem_alloc(x->m, 16);
}

static void sw_op_small(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_alloc(x->m, 16);
}

static void sw_op_new_run(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_alloc(x->m, 1000);
}

static void sw_op_free0(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_free(x->m, x->p[0]);
}

static void sw_op_free1(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_free(x->m, x->p[1]);
}

static void sw_op_large(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_alloc(x->m, 5000);
}

static void sw_op_aligned(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_alloc_aligned(x->m, 5000, 65536);
}

static void sw_op_trim(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_trim(x->m);
}

static void sw_op_grow(void *arg)
{
	struct sw_ctx *x = arg;

	ipcx_mem_grow(x->m, SW_LEN);
}

/* Two empty runs of the 1024 B class would be one too many: freeing the last
 * block of the first run gives that run back to the large allocator. */
static void sw_setup_release(struct sw_ctx *x)
{
	int i;

	sw_fill(x, 1000, 64);		/* 63 per run: the 64th opens a second run */
	ipcx_mem_free(x->m, x->p[63]);	/* second run empty (kept) */
	for (i = 1; i < 63; i++)
		ipcx_mem_free(x->m, x->p[i]);
}

/* used | free | b | free | used: freeing b coalesces both sides. */
static void sw_setup_three(struct sw_ctx *x)
{
	void *q[5];
	int i;

	for (i = 0; i < 5; i++)
		q[i] = ipcx_mem_alloc(x->m, 5000);
	ipcx_mem_free(x->m, q[1]);
	ipcx_mem_free(x->m, q[3]);
	x->p[0] = q[2];			/* between two free blocks */
	x->p[1] = q[0];
	x->p[2] = q[4];
}

static void sw_op_expand_fwd(void *arg)
{
	struct sw_ctx *x = arg;
	size_t got;
	void *out;

	ipcx_mem_command(x->m, IPCX_MEM_EXPAND_FWD, 6000, 9000, x->p[0], &got, &out);
}

static void sw_op_expand_bwd(void *arg)
{
	struct sw_ctx *x = arg;
	size_t got;
	void *out;

	ipcx_mem_command(x->m, IPCX_MEM_EXPAND_BWD | IPCX_MEM_EXPAND_FWD, 12000, 14000, x->p[0],
			 &got, &out);
}

static void sw_op_shrink(void *arg)
{
	struct sw_ctx *x = arg;
	size_t got;
	void *out;

	ipcx_mem_command(x->m, IPCX_MEM_SHRINK_IN_PLACE, 3000, 1000, x->p[1], &got, &out);
}

static void sw_setup_trim(struct sw_ctx *x)
{
	sw_fill(x, 16, 1);
	x->p[1] = ipcx_mem_alloc(x->m, 20000);	/* used: the run's neighbour */
	ipcx_mem_free(x->m, x->p[0]);		/* one empty run, kept */
}

FIXTURE(crash_points) {
	char *buf;
};

FIXTURE_VARIANT(crash_points) {
	size_t init_size;
	void (*setup)(struct sw_ctx *x);
	void (*op)(void *x);
	/* if set, a call that repairs what @op leaves (it takes the same
	 * locks), killed in turn at each of its stores */
	void (*fix)(void *x);
};

FIXTURE_VARIANT_ADD(crash_points, first_run) { 0, sw_setup_none, sw_op_small };
FIXTURE_VARIANT_ADD(crash_points, run_after_run) { 0, sw_setup_run, sw_op_new_run, sw_op_new_run };
FIXTURE_VARIANT_ADD(crash_points, small_free) { 0, sw_setup_run, sw_op_free0 };
FIXTURE_VARIANT_ADD(crash_points, release_run) { 0, sw_setup_release, sw_op_free0, sw_op_new_run };
FIXTURE_VARIANT_ADD(crash_points, trim) { 0, sw_setup_trim, sw_op_trim, sw_op_small };
FIXTURE_VARIANT_ADD(crash_points, large_alloc) { 0, sw_setup_three, sw_op_large };
FIXTURE_VARIANT_ADD(crash_points, large_free_coalesce) { 0, sw_setup_three, sw_op_free0, sw_op_large };
FIXTURE_VARIANT_ADD(crash_points, large_free_used_sides) { 0, sw_setup_three, sw_op_free1 };
FIXTURE_VARIANT_ADD(crash_points, aligned_alloc) { 0, sw_setup_run, sw_op_aligned };
FIXTURE_VARIANT_ADD(crash_points, expand_fwd) { 0, sw_setup_three, sw_op_expand_fwd };
FIXTURE_VARIANT_ADD(crash_points, expand_bwd) { 0, sw_setup_three, sw_op_expand_bwd, sw_op_large };
FIXTURE_VARIANT_ADD(crash_points, shrink_in_place) { 0, sw_setup_trim, sw_op_shrink };
FIXTURE_VARIANT_ADD(crash_points, grow) { SW_LEN / 2, sw_setup_three, sw_op_grow, sw_op_large };

FIXTURE_SETUP(crash_points)
{
	self->buf = region(SW_LEN);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(crash_points)
{
	munmap(self->buf, SW_LEN);
}

/* Use the whole region, then give everything back: every list is walked. */
static int sw_workout(struct ipcx_mem *m)
{
	static void *q[8192];
	int n, i;

	rng_state = 77;
	for (n = 0; n < 8192; n++) {
		q[n] = ipcx_mem_alloc(m, rnd() % 4 ? 1 + rnd() % 2000 : 1 + rnd() % 30000);
		if (!q[n])
			break;
	}
	for (i = 0; i < n; i++)
		if (ipcx_mem_free(m, q[i]))
			return -1;
	return n;
}

/*
 * A fresh region with the variant's setup, then @op killed before its
 * store @k1 and, if @k2, the variant's repairing call killed before its
 * store @k2. Returns the last child's status, or -1.
 */
static int sw_round(char *buf, const FIXTURE_VARIANT(crash_points) *v, struct sw_ctx *x,
		    long k1, long k2)
{
	struct ipcx_mem_report r;
	int ret;

	memset(buf, 0, SW_LEN);
	memset(x, 0, sizeof(*x));
	x->m = ipcx_mem_init(buf, v->init_size ? v->init_size : SW_LEN, NULL);
	if (!x->m)
		return -1;
	v->setup(x);
	if (check_clean(x->m, &r))
		return -1;
	ret = t_die_at_store(buf, SW_LEN, k1, v->op, x);
	if (ret != 128 + SIGKILL || !k2)
		return ret;
	return t_die_at_store(buf, SW_LEN, k2, v->fix, x);
}

/* After a death: clean check, the region usable, clean again. */
static int sw_verify(struct ipcx_mem *m, const char **what, uint64_t *off)
{
	struct ipcx_mem_report r;
	int ret = check_clean(m, &r);

	if (!ret) {
		if (sw_workout(m) <= 10)
			return -ENOMEM;
		ret = check_clean(m, &r);
	}
	if (ret) {
		*what = r.first_error;
		*off = r.first_error_off;
	}
	return ret;
}

TEST_F_TIMEOUT(crash_points, every_store, 120)
{
#if defined(__x86_64__)
	const char *what = NULL;
	uint64_t off = 0;
	struct sw_ctx x;
	long k, n, k1, k2, deep = 0;
	int ret;

	for (k = 1; k <= SW_MAXK; k++) {
		ret = sw_round(self->buf, variant, &x, k, 0);
		if (ret == 0)
			break;		/* the call completed: every point done */
		ASSERT_EQ(128 + SIGKILL, ret);
		ret = sw_verify(x.m, &what, &off);
		if (ret)
			TH_LOG("died before store %ld: %s at %#llx", k, what,
			       (unsigned long long)off);
		ASSERT_EQ(0, ret);
	}
	n = k - 1;
	ASSERT_LT(k, SW_MAXK);
	ASSERT_GT(n, 3);
	/* The repairer dies too: at each store of its call, for three first deaths. */
	for (k1 = n / 3; variant->fix && k1 < n; k1 += n / 3) {
		for (k2 = 1; k2 <= SW_MAXK; k2++, deep++) {
			ret = sw_round(self->buf, variant, &x, k1, k2);
			if (ret == 0)
				break;
			ASSERT_EQ(128 + SIGKILL, ret);
			ret = sw_verify(x.m, &what, &off);
			if (ret)
				TH_LOG("died before store %ld, repairer before %ld: %s at %#llx",
				       k1, k2, what, (unsigned long long)off);
			ASSERT_EQ(0, ret);
		}
		ASSERT_LT(k2, SW_MAXK);
	}
	TH_LOG("%ld crash points, %ld more with a dying repairer", n, deep);
#else
	SKIP(return, "single-stepping is x86-64 only here");
#endif
}

/* SIGKILL children at random points of alloc/free; the region stays consistent. */
TEST(kill_torture)
{
	size_t len = 32u << 20;
	char *buf = region(len);
	struct ipcx_mem *m = ipcx_mem_init(buf, len, NULL);
	struct ipcx_mem_report r;
	uint64_t end = t_now_ns() + 6000000000ull;
	int kills = 0, i;

	ASSERT_NE(NULL, m);
	while (t_now_ns() < end) {
		pid_t pid[3];

		for (i = 0; i < 3; i++) {
			pid[i] = fork();
			ASSERT_GE(pid[i], 0);
			if (!pid[i])
				_exit(churn(m, t_now_ns() + (uint64_t)i, 0, true));
		}
		usleep(2000 + rnd() % 20000);
		for (i = 0; i < 3; i++) {
			kill(pid[i], SIGKILL);
			ASSERT_EQ(128 + SIGKILL, t_wait(pid[i]));
			kills++;
		}
		ASSERT_EQ(0, check_clean(m, &r));
	}
	TH_LOG("%d kills, %llu calls rolled back; %llu small + %llu large blocks left by the dead",
	       kills, (unsigned long long)r.repairs, (unsigned long long)r.small_live,
	       (unsigned long long)r.used_blocks);
	/* The repair path ran: some victims died holding a lock. */
	ASSERT_GT(r.repairs, 0);
	/* Survivors still work and the region is still consistent. */
	ASSERT_EQ(0, churn(m, 5, 100000, false));
	ASSERT_EQ(0, check_clean(m, &r));
	ASSERT_EQ(0, r.errors);
	munmap(buf, len);
}

TEST_HARNESS_MAIN
