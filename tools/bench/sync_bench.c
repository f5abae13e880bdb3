// SPDX-License-Identifier: MIT
/*
 * sync_bench.c - the ipcx rows of the synchronization benchmarks:
 *
 *   mutex_uncontended    ipcx          ns per lock+unlock (robust, one process)
 *   mutex_handoff_2proc  ipcx          lock+unlock per second, two processes contending
 *   cond_pingpong        ipcx          round trip through mutex + two conditions
 *                        ipcx_block    the same, never spinning
 *   sem_pingpong         ipcx          round trip through two semaphores
 *                        ipcx_block    the same, never spinning
 *
 * Two-process rows pin the sides to env->cpu[0] and env->cpu[1] when set.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcx/sync.h>

#include "bench.h"
#include "bench_util.h"

#define BATCH 1000u

static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Operations per run: the harness's suggestion, bounded by 5x our default
 * (a sleeping ping-pong round trip can take 80 us on a noisy host). */
static uint64_t iters_or(const struct bench_env *env, uint64_t def)
{
	uint64_t n = env->iters ? env->iters : def;

	if (n > 5 * def)
		n = 5 * def;
	return env->quick && n > def / 4 ? def / 4 : n;
}

/* ---- mutex_uncontended ---------------------------------------------- */

static int mutex_uncontended_ipcx(const struct bench_env *env, struct bench_run *run)
{
	struct unc {
		struct ipcx_mutex m;
		uint64_t counter;	/* guarded: checks the lock is taken */
	} *s = bench_shared(sizeof(struct unc));
	uint64_t b, i, nb = iters_or(env, 2000000) / BATCH, warm = bench_warmup(env);
	int ret;

	if (!s)
		return bench_fail(run, "mmap");
	ret = ipcx_mutex_init(&s->m, NULL);
	if (ret) {
		bench_shared_free(s, sizeof(*s));
		return bench_fail(run, "ipcx_mutex_init: %d", ret);
	}
	bench_pin(env->cpu[0]);
	/* Same loop as the pthread rows (peers_sync.c): count inside. */
	for (i = 0; i < warm; i++) {
		ret |= ipcx_mutex_lock(&s->m);
		s->counter++;
		ret |= ipcx_mutex_unlock(&s->m);
	}
	run->per_sample = BATCH;
	for (b = 0; b < nb && !ret; b++) {
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < BATCH; i++) {
			ret |= ipcx_mutex_lock(&s->m);
			s->counter++;
			ret |= ipcx_mutex_unlock(&s->m);
		}
		bench_sample(run, bench_now_ns() - t0);
	}
	if (ret)
		ret = bench_fail(run, "ipcx_mutex_lock/unlock failed: %d", ret);
	else if (s->counter != warm + nb * BATCH)
		ret = bench_fail(run, "counter %llu != %llu", (unsigned long long)s->counter,
				 (unsigned long long)(warm + nb * BATCH));
	snprintf(run->note, sizeof(run->note), "robust, ns per lock+unlock (batches of %u)",
		 BATCH);
	bench_shared_free(s, sizeof(*s));
	return ret;
}
BENCH_CASE("mutex_uncontended", "ipcx", "ns/op", mutex_uncontended_ipcx);

/* ---- mutex_handoff_2proc -------------------------------------------- */

struct handoff {
	struct ipcx_mutex m;
	uint64_t counter;
	uint32_t go;
	uint32_t ready;
};

static int mutex_handoff_2proc_ipcx(const struct bench_env *env, struct bench_run *run)
{
	uint64_t n = iters_or(env, 1000000), i, t0, dt;
	struct handoff *h = bench_shared(4096);
	pid_t pid;
	int ret;

	if (!h)
		return -ENOMEM;
	ret = ipcx_mutex_init(&h->m, NULL);
	if (ret)
		goto out;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		bench_pin(env->cpu[1]);
		__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&h->go, __ATOMIC_ACQUIRE))
			;
		for (i = 0; i < n; i++) {
			if (ipcx_mutex_lock(&h->m))
				_exit(1);
			h->counter++;
			if (ipcx_mutex_unlock(&h->m))
				_exit(2);
		}
		_exit(0);
	}
	bench_pin(env->cpu[0]);
	while (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE))
		;
	t0 = bench_now_ns();
	__atomic_store_n(&h->go, 1, __ATOMIC_RELEASE);
	for (i = 0; i < n; i++) {
		if (ipcx_mutex_lock(&h->m) || (h->counter++, ipcx_mutex_unlock(&h->m))) {
			kill(pid, SIGKILL);
			reap(pid);
			ret = -EIO;
			goto out;
		}
	}
	ret = reap(pid);
	dt = bench_now_ns() - t0;
	if (!ret && h->counter != 2 * n)
		ret = -EIO;
	if (!ret) {
		run->ops_per_s = (double)(2 * n) * 1e9 / (double)dt;
		run->n = 0;
		if (run->cap)
			run->samples[run->n++] = dt / (2 * n);
		snprintf(run->note, sizeof(run->note), "robust, 2 x %llu lock+unlock",
			 (unsigned long long)n);
	}
out:
	munmap(h, 4096);
	return ret;
}
BENCH_CASE("mutex_handoff_2proc", "ipcx", "ops/s", mutex_handoff_2proc_ipcx);

/* ---- ping-pongs ------------------------------------------------------- */

struct pingpong {
	struct ipcx_mutex m;
	struct ipcx_cond c[2];
	struct ipcx_sem s[2];
	uint32_t turn;
	uint32_t stop;
};

/* One round trip: side 0 hands the turn to side 1 and waits to get it back. */
static int cond_pass(struct pingpong *p, int me)
{
	if (ipcx_mutex_lock(&p->m))
		return -1;
	p->turn = !me;
	if (ipcx_cond_signal(&p->c[!me]))
		return -1;
	while (p->turn != (uint32_t)me && !p->stop)
		if (ipcx_cond_wait(&p->c[me], &p->m))
			return -1;
	return ipcx_mutex_unlock(&p->m);
}

static int sem_pass(struct pingpong *p, int me)
{
	if (ipcx_sem_post(&p->s[!me]))
		return -1;
	return ipcx_sem_wait(&p->s[me]);
}

static int pingpong(const struct bench_env *env, struct bench_run *run, bool cond,
		    uint32_t flags)
{
	uint64_t n = iters_or(env, 20000), warm = n / 10 + 100, i, t0;
	struct pingpong *p = bench_shared(4096);
	IPCX_OPTS(ipcx_mutex_opts, mo, .flags = flags);
	IPCX_OPTS(ipcx_cond_opts, co, .flags = flags);
	IPCX_OPTS(ipcx_sem_opts, so, .flags = flags);
	pid_t pid;
	int ret;

	if (!p)
		return -ENOMEM;
	ret = ipcx_mutex_init(&p->m, &mo);
	if (!ret)
		ret = ipcx_cond_init(&p->c[0], &co);
	if (!ret)
		ret = ipcx_cond_init(&p->c[1], &co);
	if (!ret)
		ret = ipcx_sem_init(&p->s[0], 0, &so);
	if (!ret)
		ret = ipcx_sem_init(&p->s[1], 0, &so);
	if (ret)
		goto out;
	p->turn = 0;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		bench_pin(env->cpu[1]);
		if (cond) {
			if (ipcx_mutex_lock(&p->m))
				_exit(1);
			for (;;) {
				while (p->turn != 1)
					if (ipcx_cond_wait(&p->c[1], &p->m))
						_exit(2);
				if (p->stop)
					break;
				p->turn = 0;
				if (ipcx_cond_signal(&p->c[0]))
					_exit(3);
			}
			ipcx_mutex_unlock(&p->m);
		} else {
			for (;;) {
				if (ipcx_sem_wait(&p->s[1]))
					_exit(2);
				if (p->stop)
					break;
				if (ipcx_sem_post(&p->s[0]))
					_exit(3);
			}
		}
		_exit(0);
	}
	bench_pin(env->cpu[0]);
	run->n = 0;
	for (i = 0; i < warm + n; i++) {
		t0 = bench_now_ns();
		if (cond ? cond_pass(p, 0) : sem_pass(p, 0)) {
			kill(pid, SIGKILL);
			reap(pid);
			ret = -EIO;
			goto out;
		}
		if (i >= warm && run->n < run->cap)
			run->samples[run->n++] = bench_now_ns() - t0;
	}
	/* stop the partner */
	if (cond) {
		ipcx_mutex_lock(&p->m);
		p->stop = 1;
		p->turn = 1;
		ipcx_cond_signal(&p->c[1]);
		ipcx_mutex_unlock(&p->m);
	} else {
		p->stop = 1;
		ipcx_sem_post(&p->s[1]);
	}
	ret = reap(pid);
	snprintf(run->note, sizeof(run->note), "%s", flags & IPCX_SYNC_BLOCK ?
		 "no spinning" : "spins only when the peer ran on another CPU");
out:
	munmap(p, 4096);
	return ret;
}

static int cond_pingpong_ipcx(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, true, 0);
}
BENCH_CASE("cond_pingpong", "ipcx", "ns/rtt", cond_pingpong_ipcx);

static int cond_pingpong_ipcx_block(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, true, IPCX_SYNC_BLOCK);
}
BENCH_CASE("cond_pingpong", "ipcx_block", "ns/rtt", cond_pingpong_ipcx_block);

static int sem_pingpong_ipcx(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, false, 0);
}
BENCH_CASE("sem_pingpong", "ipcx", "ns/rtt", sem_pingpong_ipcx);

static int sem_pingpong_ipcx_block(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, false, IPCX_SYNC_BLOCK);
}
BENCH_CASE("sem_pingpong", "ipcx_block", "ns/rtt", sem_pingpong_ipcx_block);
