/* SPDX-License-Identifier: MIT */
/*
 * peers.h - workload drivers shared by the C and C++ (Boost) peer rows, so
 * every implementation of a bench runs exactly the same workload.
 */
#ifndef IPCX_BENCH_PEERS_H
#define IPCX_BENCH_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MQ_CAPACITY	1024u

/*
 * A message transport under test. create() runs in the harness-side process
 * before the fork and must leave ctx usable by both processes afterwards
 * (shared memory, inherited fds or mappings). Queue 0 carries side 1 -> side 0
 * in throughput runs; in round trips queue 0 carries 0 -> 1 and queue 1 back.
 * All return 0 or -1 (after bench_fail()).
 */
struct mq_transport {
	int (*create)(void *ctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run);
	int (*send)(void *ctx, int q, const void *msg, size_t len, unsigned prio);
	int (*recv)(void *ctx, int q, void *msg, size_t len, unsigned *prio);
	void (*destroy)(void *ctx);
};

/* 1 producer process -> 1 consumer process, env->iters messages timed. */
int mq_drive_throughput(const struct bench_env *env, struct bench_run *run,
			const struct mq_transport *t, void *ctx, size_t msgsize, bool prio);
/* Round trips through two queues, env->iters timed. */
int mq_drive_rtt(const struct bench_env *env, struct bench_run *run,
		 const struct mq_transport *t, void *ctx, size_t msgsize);

/* alloc_random: sizes 16..512, ~100k live blocks, env->iters alloc-or-free ops. */
#define ALLOC_LIVE	100000u
int alloc_drive_random(const struct bench_env *env, struct bench_run *run,
		       void *(*alloc)(void *ctx, size_t size),
		       void (*release)(void *ctx, void *p), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
