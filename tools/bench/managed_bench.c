// SPDX-License-Identifier: MIT
/*
 * managed_bench.c - ipcx rows of the managed-segment benchmarks:
 *
 *   alloc_random     free a random live block and allocate a new one, sizes
 *                    16..512 B, 100k live blocks, 2M operations (1M free +
 *                    1M allocate), in a 256 MiB named segment; ns per op
 *   named_construct  construct 100k named objects (8 bytes each); ns per construct
 *   named_find       find each of those 100k names once, in creation order
 *                    (the workload of the boost row); ns per find
 *
 * Samples are per-batch averages (1000 operations): single operations are
 * too fast to time one by one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipcx/managed.h>

#include "bench.h"
#include "bench_util.h"

#define SEG_SIZE	(256ull << 20)
#define LIVE		100000
#define BATCH		1000
#define NAMES		100000

static int seg_open(struct ipcx_managed **s, char *name, size_t len)
{
	IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_CREATE_ONLY, .size = SEG_SIZE);

	snprintf(name, len, "bench-managed-%d", getpid());
	ipcx_managed_unlink(name, NULL);
	return ipcx_managed_open(name, &o, s);
}

static void seg_done(struct ipcx_managed *s, const char *name)
{
	ipcx_managed_close(s);
	ipcx_managed_unlink(name, NULL);
}

static void add_sample(struct bench_run *run, uint64_t ns, uint64_t ops)
{
	if (run->n < run->cap)
		run->samples[run->n++] = ops ? ns / ops : 0;
}

static int alloc_random_ipcx(const struct bench_env *env, struct bench_run *run)
{
	uint64_t ops = env->quick ? 400000 : 2000000, seed = env->seed ? env->seed : 42;
	uint64_t i, t0, total0;
	struct ipcx_managed *s;
	struct ipcx_mem *m;
	void **live;
	char name[64];
	int ret;

	ret = seg_open(&s, name, sizeof(name));
	if (ret)
		return ret;
	m = ipcx_managed_mem(s);
	live = calloc(LIVE, sizeof(*live));
	if (!live) {
		seg_done(s, name);
		return -ENOMEM;
	}
	for (i = 0; i < LIVE; i++) {
		live[i] = ipcx_mem_alloc(m, 16 + bench_rand(&seed) % 497);
		if (!live[i]) {
			ret = -ENOMEM;
			goto out;
		}
	}
	run->n = 0;
	total0 = bench_now_ns();
	for (i = 0; i < ops / 2; i += BATCH / 2) {
		uint64_t k;

		t0 = bench_now_ns();
		for (k = 0; k < BATCH / 2; k++) {
			uint64_t j = bench_rand(&seed) % LIVE;

			ipcx_mem_free(m, live[j]);
			live[j] = ipcx_mem_alloc(m, 16 + bench_rand(&seed) % 497);
			if (!live[j]) {
				ret = -ENOMEM;
				goto out;
			}
		}
		add_sample(run, bench_now_ns() - t0, BATCH);
	}
	run->ops_per_s = (double)ops * 1e9 / (double)(bench_now_ns() - total0);
	snprintf(run->note, sizeof(run->note), "256 MiB segment, 100k live, %llu ops",
		 (unsigned long long)ops);
	for (i = 0; i < LIVE; i++)
		ipcx_mem_free(m, live[i]);
	if (!ipcx_mem_all_freed(m))
		ret = -EUCLEAN;
out:
	free(live);
	seg_done(s, name);
	return ret;
}
BENCH_CASE("alloc_random", "ipcx", "ns/op", alloc_random_ipcx);

#define NAME_LEN	24

/* "obj<i, 7 digits>" for every i (the boost row's names), formatted before timing. */
static char *names_make(uint64_t n)
{
	char *v = malloc(n * NAME_LEN);
	uint64_t i;

	for (i = 0; v && i < n; i++)
		snprintf(v + i * NAME_LEN, NAME_LEN, "obj%07llu", (unsigned long long)i);
	return v;
}

static int build_names(struct ipcx_managed *s, struct bench_run *run, const char *names,
		       uint64_t n)
{
	struct ipcx_obj_spec sp = { .sz = sizeof(sp), .type_tag = 1, .elem_size = 8, .count = 1 };
	uint64_t i, k, t0;
	void *p;
	int ret;

	for (i = 0; i < n; i += BATCH) {
		t0 = bench_now_ns();
		for (k = i; k < i + BATCH && k < n; k++) {
			ret = ipcx_managed_construct(s, names + k * NAME_LEN, &sp, &p);
			if (ret)
				return ret;
		}
		if (run)
			add_sample(run, bench_now_ns() - t0, k - i);
	}
	return 0;
}

/* Names are formatted outside the timed loops (only the segment is measured). */
static int named_construct_ipcx(const struct bench_env *env, struct bench_run *run)
{
	uint64_t n = env->iters ? env->iters : NAMES, t0;
	struct ipcx_managed *s;
	char name[64], *names = names_make(n);
	int ret;

	if (!names)
		return -ENOMEM;
	ret = seg_open(&s, name, sizeof(name));
	if (ret) {
		free(names);
		return ret;
	}
	run->n = 0;
	t0 = bench_now_ns();
	ret = build_names(s, run, names, n);
	run->ops_per_s = (double)n * 1e9 / (double)(bench_now_ns() - t0);
	if (!ret && ipcx_managed_count(s, IPCX_OBJ_NAMED) != (long)n)
		ret = -EUCLEAN;
	seg_done(s, name);
	free(names);
	return ret;
}
BENCH_CASE("named_construct", "ipcx", "ns/op", named_construct_ipcx);

static int named_find_ipcx(const struct bench_env *env, struct bench_run *run)
{
	uint64_t n = env->iters ? env->iters : NAMES;
	uint64_t i, k, e, t0, total0;
	struct ipcx_managed *s;
	char name[64], *names = names_make(n);
	size_t count;
	void *p;
	int ret;

	if (!names)
		return -ENOMEM;
	ret = seg_open(&s, name, sizeof(name));
	if (ret) {
		free(names);
		return ret;
	}
	ret = build_names(s, NULL, names, n);
	run->n = 0;
	total0 = bench_now_ns();
	for (i = 0; !ret && i < n; i += BATCH) {
		e = i + BATCH < n ? i + BATCH : n;
		t0 = bench_now_ns();
		for (k = i; k < e; k++) {
			ret = ipcx_managed_find(s, names + k * NAME_LEN, 1, &p, &count);
			if (ret || !p || count != 1) {
				ret = ret ? ret : -EUCLEAN;
				break;
			}
		}
		add_sample(run, bench_now_ns() - t0, e - i);
	}
	run->ops_per_s = (double)n * 1e9 / (double)(bench_now_ns() - total0);
	seg_done(s, name);
	free(names);
	return ret;
}
BENCH_CASE("named_find", "ipcx", "ns/op", named_find_ipcx);
