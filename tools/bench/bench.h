/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the contract between the benchmark harness (tools/bench) and
 * the files that add rows to it.
 *
 * A row is one (bench, impl) pair: a function that measures one
 * implementation of one benchmark once. The harness runs every row of a
 * bench several times, interleaving the impls (A B C A B C ...) so machine
 * drift hits them alike, and reports medians over the repetitions.
 *
 * Adding a row: in any file of tools/bench (C or C++), write
 *
 *	static int my_row(const struct bench_env *env, struct bench_run *run)
 *	{ ... fill run->samples / run->ops_per_s ...; return 0; }
 *	BENCH_CASE("sem_pingpong", "ipcx", "ns/rtt", my_row);
 *
 * and list the file in tools/bench/Kbuild. Bench and impl names are a
 * contract (see Documentation/bench.md). The harness calls fn in a fresh
 * process pinned to env->cpu[0], with a watchdog; the row may fork (pin the
 * other side to env->cpu[1]). Optional helpers: bench_util.h.
 */
#ifndef IPCX_BENCH_H
#define IPCX_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_env {
	bool quick;		/* --quick: the whole set in under 60 s */
	int cpu[2];		/* CPUs for the two sides of a 2-process bench; -1: unpinned */
	uint64_t iters;		/* suggested operations per run (bench-specific scale) */
	uint64_t seed;		/* fixed seed for randomised workloads */
};

struct bench_run {
	/*
	 * Latency samples in ns per operation (per round trip for ping-pongs;
	 * per batch average for benches too fast to time singly). The harness
	 * provides the buffer (cap >= env->iters + 10% + 100k); set n.
	 * Percentiles come from these.
	 */
	uint64_t *samples;
	size_t cap;
	size_t n;
	/* Throughput benches: operations per second (0 if not a throughput bench). */
	double ops_per_s;
	/* Free text shown beside the row: "capacity 731 (kernel limit)", "2M pages". */
	char note[96];
	/*
	 * Operations per sample (0 or 1: each sample is one operation). A row
	 * timing batches may store the batch's total ns and set this to the
	 * batch size; the harness divides, keeping sub-ns precision.
	 */
	uint32_t per_sample;
};

typedef int (*bench_fn)(const struct bench_env *env, struct bench_run *run);

struct bench_case {
	const char *bench;	/* "mutex_uncontended", ... */
	const char *impl;	/* "ipcx", "ipcx_block", "boost", "pthread", ... */
	const char *unit;	/* what a sample measures, e.g. "ns/op", "ns/rtt" */
	bench_fn fn;		/* 0 on success; <0 = row failed (wrong result, setup error) */
};

/* Registration through a linker section: no central list to edit. */
#define BENCH_CASE(BENCH, IMPL, UNIT, FN)					\
	static const struct bench_case bench_case_##FN				\
	__attribute__((used, section("bench_cases"), aligned(8))) =		\
		{ BENCH, IMPL, UNIT, FN }

extern const struct bench_case __start_bench_cases[];
extern const struct bench_case __stop_bench_cases[];

#ifdef __cplusplus
}
#endif
#endif /* IPCX_BENCH_H */
