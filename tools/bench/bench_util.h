/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - helpers for benchmark rows (C and C++): clocks, shared
 * memory, pinned two-process runs, raw futex calls, names that the harness
 * cleans up, failure reporting. Optional: a row needs only bench.h.
 */
#ifndef IPCX_BENCH_UTIL_H
#define IPCX_BENCH_UTIL_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "bench.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

/* Memory shared with processes forked later (MAP_SHARED|MAP_ANONYMOUS), zeroed. */
void *bench_shared(size_t len);
void bench_shared_free(void *p, size_t len);

/* Pin the calling process to one CPU (-1: leave it). 0 or -errno. */
int bench_pin(int cpu);

/*
 * Two processes: fork a child pinned to env->cpu[1] that runs side(arg, 1),
 * run side(arg, 0) in the caller pinned to env->cpu[0], then wait for the
 * child. Returns 0 when both sides returned 0, else -1 (the failure is
 * reported on stderr). A side that returns non-zero should say why with
 * bench_fail(). The child dies with the caller (PR_SET_PDEATHSIG); when the
 * child's side fails, it kills the caller with SIGUSR1 (which may be blocked
 * waiting for it), and the harness reports the child's failure.
 */
typedef int (*bench_side_fn)(void *arg, int side);
int bench_two_procs(const struct bench_env *env, bench_side_fn side, void *arg);

/* Shared futex (not PRIVATE): wait while *w == val; wake n. */
int bench_futex_wait(uint32_t *w, uint32_t val);
int bench_futex_wake(uint32_t *w, int n);

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/*
 * A name for a named object (shm, mqueue, Boost segment) that the harness
 * removes after every run, even when the row fails or is killed:
 * "ipcxbench.<harness pid>.<tag>", with a leading '/' if slash is set.
 * POSIX message queue names must also be passed to bench_track_mq().
 */
const char *bench_name(char *buf, size_t len, const char *tag, int slash);
void bench_track_mq(const char *name);

/* Deterministic PRNG (splitmix64). */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Warm-up rounds a row runs untimed before its timed iters. */
uint64_t bench_warmup(const struct bench_env *env);

/* Append a sample if there is room. */
static inline void bench_sample(struct bench_run *run, uint64_t ns)
{
	if (run && run->n < run->cap)
		run->samples[run->n++] = ns;
}

/* Free text beside the row (printf format). */
void bench_note(struct bench_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report a failure loudly on stderr (and in the note if run); returns -1. */
int bench_fail(struct bench_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* POSIX mq: msg_max raised to want if root (restored at exit). */
void bench_mq_raise_msg_max(long want);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_BENCH_UTIL_H */
