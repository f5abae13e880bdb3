// SPDX-License-Identifier: MIT
/*
 * rwlock_bench.c - rows for the sharable/upgradable mutex, uncontended:
 * one shared (or exclusive) lock + unlock, ipcx beside a process-shared
 * pthread rwlock. Samples are per-operation averages over batches.
 * rwlock_read_2proc: two pinned processes take and release shares as fast
 * as they can (ipcx counts each process's shares on its own cache line;
 * a single reader count bounces between the CPUs).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <ipcx/rwlock.h>

#include "bench.h"
#include "bench_util.h"

#define BATCH 1000

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
		t0 = bench_now_ns();
		for (k = 0; k < BATCH; k++) {
			if (exclusive) {
				bad |= ipcx_rwlock_lock(l);
				bad |= ipcx_rwlock_unlock(l);
			} else {
				bad |= ipcx_rwlock_lock_shared(l);
				bad |= ipcx_rwlock_unlock_shared(l);
			}
		}
		run->samples[b] = (bench_now_ns() - t0) / BATCH;
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
		t0 = bench_now_ns();
		for (k = 0; k < BATCH; k++) {
			bad |= exclusive ? pthread_rwlock_wrlock(l) : pthread_rwlock_rdlock(l);
			bad |= pthread_rwlock_unlock(l);
		}
		run->samples[b] = (bench_now_ns() - t0) / BATCH;
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

struct two {
	union {
		struct ipcx_rwlock ipcx;
		pthread_rwlock_t pt;
	} u;
	_Atomic int ready;
	_Atomic int go;
	_Atomic int bad;
	uint64_t start_ns[2], end_ns[2];
};

static void read_loop(struct two *t, int side, int use_ipcx, uint64_t nb,
		      struct bench_run *run)
{
	uint64_t b, t0, start;
	int k, bad = 0;

	atomic_fetch_add(&t->ready, 1);
	while (!atomic_load(&t->go))
		;
	start = bench_now_ns();
	for (b = 0; b < nb; b++) {
		t0 = bench_now_ns();
		for (k = 0; k < BATCH; k++) {
			if (use_ipcx) {
				bad |= ipcx_rwlock_lock_shared(&t->u.ipcx);
				bad |= ipcx_rwlock_unlock_shared(&t->u.ipcx);
			} else {
				bad |= pthread_rwlock_rdlock(&t->u.pt);
				bad |= pthread_rwlock_unlock(&t->u.pt);
			}
		}
		if (run)
			run->samples[b] = (bench_now_ns() - t0) / BATCH;
	}
	t->start_ns[side] = start;
	t->end_ns[side] = bench_now_ns();
	if (bad)
		atomic_store(&t->bad, 1);
}

static int two_proc_row(const struct bench_env *env, struct bench_run *run, int use_ipcx)
{
	struct two *t = shared_mem(sizeof(*t));
	uint64_t nb = batches(env, run), first, last;
	pthread_rwlockattr_t a;
	pid_t pid;
	int st, ret = 0;

	if (!t)
		return -1;
	if (use_ipcx) {
		if (ipcx_rwlock_init(&t->u.ipcx, NULL))
			return -1;
	} else {
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		if (pthread_rwlock_init(&t->u.pt, &a))
			return -1;
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		bench_pin(env->cpu[1]);
		read_loop(t, 1, use_ipcx, nb, NULL);
		_exit(0);
	}
	bench_pin(env->cpu[0]);
	while (atomic_load(&t->ready) < 1)
		;
	atomic_store(&t->go, 1);
	read_loop(t, 0, use_ipcx, nb, run);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		ret = -1;
	if (atomic_load(&t->bad))
		ret = -1;
	run->n = nb;
	/* Both sides' work over the span from the first start to the last end. */
	first = t->start_ns[0] < t->start_ns[1] ? t->start_ns[0] : t->start_ns[1];
	last = t->end_ns[0] > t->end_ns[1] ? t->end_ns[0] : t->end_ns[1];
	run->ops_per_s = last > first ? 2.0 * (double)(nb * BATCH) * 1e9 / (double)(last - first) : 0;
	snprintf(run->note, sizeof(run->note), "2 processes, shares only; samples: one side");
	munmap(t, sizeof(*t));
	return ret;
}

static int ipcx_read_2proc(const struct bench_env *env, struct bench_run *run)
{
	return two_proc_row(env, run, 1);
}

static int pthread_read_2proc(const struct bench_env *env, struct bench_run *run)
{
	return two_proc_row(env, run, 0);
}

BENCH_CASE("rwlock_read_uncontended", "ipcx", "ns/op", ipcx_read);
BENCH_CASE("rwlock_read_uncontended", "pthread", "ns/op", pthread_read);
BENCH_CASE("rwlock_write_uncontended", "ipcx", "ns/op", ipcx_write);
BENCH_CASE("rwlock_write_uncontended", "pthread", "ns/op", pthread_write);
BENCH_CASE("rwlock_read_2proc", "ipcx", "ns/op", ipcx_read_2proc);
BENCH_CASE("rwlock_read_2proc", "pthread", "ns/op", pthread_read_2proc);
