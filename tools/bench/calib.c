// SPDX-License-Identifier: MIT
/*
 * calib.c - the machine's costs, measured at the start of every run so that
 * runs on different days (or hosts) can be compared: a bare syscall, the
 * clock read, FUTEX_WAKE with nobody waiting, a first touch of a shared
 * page, and a cache line bouncing between the two benchmark CPUs.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "harness.h"

#define CB 1000u

static uint64_t nbatches(const struct bench_env *env)
{
	return env->quick ? 40 : 200;
}

static int cal_syscall(const struct bench_env *env, struct bench_run *run)
{
	uint64_t b, i;

	run->per_sample = CB;
	for (b = 0; b < nbatches(env); b++) {
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < CB; i++)
			syscall(SYS_getppid);
		bench_sample(run, bench_now_ns() - t0);
	}
	bench_note(run, "getppid");
	return 0;
}

static int cal_clock(const struct bench_env *env, struct bench_run *run)
{
	struct timespec ts;
	uint64_t b, i;

	run->per_sample = CB;
	for (b = 0; b < nbatches(env); b++) {
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < CB; i++)
			clock_gettime(CLOCK_MONOTONIC, &ts);
		bench_sample(run, bench_now_ns() - t0);
	}
	bench_note(run, "CLOCK_MONOTONIC (vDSO)");
	return 0;
}

static int cal_wake(const struct bench_env *env, struct bench_run *run)
{
	uint32_t *w = bench_shared(4096);
	uint64_t b, i;

	if (!w)
		return bench_fail(run, "mmap");
	run->per_sample = CB / 10;
	for (b = 0; b < nbatches(env); b++) {
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < CB / 10; i++)
			bench_futex_wake(w, 1);
		bench_sample(run, bench_now_ns() - t0);
	}
	bench_shared_free(w, 4096);
	bench_note(run, "FUTEX_WAKE, nobody waiting");
	return 0;
}

static int cal_fault(const struct bench_env *env, struct bench_run *run)
{
	size_t len = (env->quick ? 8u : 32u) << 20, off;
	char *p = bench_shared(len);

	if (!p)
		return bench_fail(run, "mmap");
	for (off = 0; off < len; off += 4096) {
		uint64_t t0 = bench_now_ns();

		p[off] = 1;
		bench_sample(run, bench_now_ns() - t0);
	}
	bench_shared_free(p, len);
	bench_note(run, "first write to a shared 4 KiB page");
	return 0;
}

struct bounce {
	_Alignas(64) atomic_uint word;
	struct bench_run *run;
	uint64_t batches;
};

static int bounce_side(void *arg, int side)
{
	struct bounce *b = arg;
	uint64_t k, i, r = 0;
	unsigned spins = 0;

	for (k = 0; k < b->batches + 1; k++) {	/* batch 0: warm-up */
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < CB; i++, r++) {
			unsigned want = (unsigned)(2 * r + 1 + (uint64_t)side);

			if (side == 0)
				atomic_store_explicit(&b->word, want, memory_order_release);
			want = side == 0 ? want + 1 : want - 1;
			while (atomic_load_explicit(&b->word, memory_order_acquire) != want) {
				if (++spins % 4096 == 0)
					sched_yield();
				else
					bench_relax();
			}
			if (side == 1)
				atomic_store_explicit(&b->word, want + 1, memory_order_release);
		}
		if (side == 0 && k)
			bench_sample(b->run, bench_now_ns() - t0);
	}
	return 0;
}

static int cal_bounce(const struct bench_env *env, struct bench_run *run)
{
	struct bounce *b = bench_shared(sizeof(*b));
	int ret;

	if (!b)
		return bench_fail(run, "mmap");
	b->run = run;
	b->batches = env->quick ? 30 : 100;
	run->per_sample = CB;
	ret = bench_two_procs(env, bounce_side, b);
	bench_shared_free(b, sizeof(*b));
	if (!ret)
		bench_note(run, "round trip between CPU %d and CPU %d", env->cpu[0], env->cpu[1]);
	return ret;
}

const struct bench_case bench_calib[] = {
	{ "calibration", "syscall", "ns/op", cal_syscall },
	{ "calibration", "clock_gettime", "ns/op", cal_clock },
	{ "calibration", "futex_wake", "ns/op", cal_wake },
	{ "calibration", "page_fault", "ns/op", cal_fault },
	{ "calibration", "cacheline_rtt", "ns/rtt", cal_bounce },
};
const int bench_ncalib = sizeof(bench_calib) / sizeof(bench_calib[0]);
