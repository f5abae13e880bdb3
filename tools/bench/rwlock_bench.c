// SPDX-License-Identifier: MIT
/*
 * rwlock_bench.c - rows for the sharable/upgradable mutex, uncontended:
 * one shared (or exclusive) lock + unlock, ipcx beside a process-shared
 * pthread rwlock. Samples are per-operation averages over batches.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcx/rwlock.h>

#include "bench.h"

#define BATCH 1000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t batches(const struct bench_env *env, const struct bench_run *run)
{
	uint64_t n = (env->iters ? env->iters : (env->quick ? 200000 : 2000000)) / BATCH;

	if (n > run->cap)
		n = run->cap;
	return n ? n : 1;
}

static void *shared_mem(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int ipcx_row(const struct bench_env *env, struct bench_run *run, int exclusive)
{
	struct ipcx_rwlock *l = shared_mem(sizeof(*l));
	uint64_t b, nb = batches(env, run), t0;
	int k, bad = 0;

	if (!l || ipcx_rwlock_init(l, NULL))
		return -1;
	for (b = 0; b < nb; b++) {
		t0 = now_ns();
		for (k = 0; k < BATCH; k++) {
			if (exclusive) {
				bad |= ipcx_rwlock_lock(l);
				bad |= ipcx_rwlock_unlock(l);
			} else {
				bad |= ipcx_rwlock_lock_shared(l);
				bad |= ipcx_rwlock_unlock_shared(l);
			}
		}
		run->samples[b] = (now_ns() - t0) / BATCH;
	}
	run->n = nb;
	snprintf(run->note, sizeof(run->note), "owner-death aware, %d reader slots",
		 IPCX_RWLOCK_SLOTS);
	munmap(l, sizeof(*l));
	return bad ? -1 : 0;
}

static int pthread_row(const struct bench_env *env, struct bench_run *run, int exclusive)
{
	pthread_rwlock_t *l = shared_mem(sizeof(*l));
	pthread_rwlockattr_t a;
	uint64_t b, nb = batches(env, run), t0;
	int k, bad = 0;

	if (!l)
		return -1;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	/* Writer preference, as ipcx has (glibc's default prefers readers). */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(l, &a))
		return -1;
	for (b = 0; b < nb; b++) {
		t0 = now_ns();
		for (k = 0; k < BATCH; k++) {
			bad |= exclusive ? pthread_rwlock_wrlock(l) : pthread_rwlock_rdlock(l);
			bad |= pthread_rwlock_unlock(l);
		}
		run->samples[b] = (now_ns() - t0) / BATCH;
	}
	run->n = nb;
	snprintf(run->note, sizeof(run->note), "process-shared, prefer writer; not robust");
	pthread_rwlock_destroy(l);
	munmap(l, sizeof(*l));
	return bad ? -1 : 0;
}

static int ipcx_read(const struct bench_env *env, struct bench_run *run)
{
	return ipcx_row(env, run, 0);
}

static int ipcx_write(const struct bench_env *env, struct bench_run *run)
{
	return ipcx_row(env, run, 1);
}

static int pthread_read(const struct bench_env *env, struct bench_run *run)
{
	return pthread_row(env, run, 0);
}

static int pthread_write(const struct bench_env *env, struct bench_run *run)
{
	return pthread_row(env, run, 1);
}

BENCH_CASE("rwlock_read_uncontended", "ipcx", "ns/op", ipcx_read);
BENCH_CASE("rwlock_read_uncontended", "pthread", "ns/op", pthread_read);
BENCH_CASE("rwlock_write_uncontended", "ipcx", "ns/op", ipcx_write);
BENCH_CASE("rwlock_write_uncontended", "pthread", "ns/op", pthread_write);
