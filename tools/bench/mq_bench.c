// SPDX-License-Identifier: MIT
/*
 * mq_bench.c - ipcx message queue rows: throughput (64 B, 64 B with random
 * priorities 0..31, 1 KiB; one producer process -> one consumer process,
 * capacity 1024) and round trip (64 B through two queues), each for three
 * wait policies: ipcx (the default: spin only while the peer runs on
 * another CPU), ipcx_block (sleep at once) and ipcx_spin (busy poll).
 *
 * The queues are anonymous (memfd) queues created before fork(), in SPSC
 * mode (one sender, one receiver: what these benches are).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcx.h>
#include "bench.h"
#include "bench_util.h"

#define MQ_CAP		1024
#define MQ_TPUT_MSGS	1000000ull
#define MQ_RTT_ROUNDS	100000ull
#ifndef MQB_FLAGS
#define MQB_FLAGS	IPCX_MQ_SPSC	/* -DMQB_FLAGS=0 measures the MPMC mode */
#endif

static uint64_t mqb_xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

struct mqb_shared {
	volatile uint64_t t_end;
	volatile int fail;
};

static unsigned int mqb_policy(const char *impl)
{
	if (!strcmp(impl, "ipcx_block"))
		return IPCX_MQ_WAIT_SLEEP;
	if (!strcmp(impl, "ipcx_spin"))
		return IPCX_MQ_WAIT_POLL;
	return IPCX_MQ_WAIT_DEFAULT;
}

static uint64_t mqb_count(const struct bench_env *env, uint64_t dflt)
{
	uint64_t n = env->iters ? env->iters : dflt;

	if (env->quick && n > dflt / 5)
		n = dflt / 5;
	return n;
}

/* One producer process (the caller) -> one consumer process. */
static int mqb_throughput(const struct bench_env *env, struct bench_run *run,
			  const char *impl, uint32_t size, bool prio)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = MQ_CAP, .max_size = size,
		  .flags = MQB_FLAGS, .wait = mqb_policy(impl));
	uint64_t n = mqb_count(env, MQ_TPUT_MSGS), i, t0, seed = env->seed | 1;
	struct mqb_shared *sh;
	struct ipcx_mq *q;
	char buf[1024];
	pid_t pid;
	int ret, st;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	ret = ipcx_mq_open_memfd(&q, &o);
	if (ret)
		goto out_unmap;
	memset(buf, 0x5a, sizeof(buf));
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out_close;
	}
	if (pid == 0) {
		unsigned int p, last = 0;
		uint64_t got = 0;

		bench_pin(env->cpu[1]);
		for (i = 0; i < n; i++) {
			ssize_t len = ipcx_mq_receive(q, buf, sizeof(buf), &p);

			if (len != (ssize_t)size) {
				sh->fail = 1;
				break;
			}
			got++;
			last = p;
		}
		(void)last;
		sh->t_end = bench_now_ns();
		_exit(got == n ? 0 : 1);
	}
	bench_pin(env->cpu[0]);
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		unsigned int p = prio ? (unsigned int)(mqb_xorshift(&seed) & 31) : 0;

		ret = ipcx_mq_send(q, buf, size, p);
		if (ret)
			break;
	}
	if (ret)
		kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) || sh->fail) {
		if (!ret)
			ret = -EIO;
	}
	if (!ret) {
		run->ops_per_s = (double)n * 1e9 / (double)(sh->t_end - t0);
		snprintf(run->note, sizeof(run->note), "%s, capacity %u%s",
			 MQB_FLAGS ? "spsc" : "mpmc", MQ_CAP,
			 prio ? ", priorities 0..31" : "");
	}
out_close:
	ipcx_mq_close(q);
out_unmap:
	munmap(sh, sizeof(*sh));
	return ret;
}

/* Ping-pong: the caller sends on a, the child echoes on b. */
static int mqb_rtt(const struct bench_env *env, struct bench_run *run, const char *impl)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = MQ_CAP, .max_size = 64,
		  .flags = MQB_FLAGS, .wait = mqb_policy(impl));
	uint64_t n = mqb_count(env, MQ_RTT_ROUNDS), i;
	struct ipcx_mq *a, *b;
	char buf[64];
	pid_t pid;
	int ret, st;

	ret = ipcx_mq_open_memfd(&a, &o);
	if (ret)
		return ret;
	ret = ipcx_mq_open_memfd(&b, &o);
	if (ret) {
		ipcx_mq_close(a);
		return ret;
	}
	memset(buf, 0x5a, sizeof(buf));
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		bench_pin(env->cpu[1]);
		for (i = 0; i < n + 1000; i++) {
			if (ipcx_mq_receive(a, buf, sizeof(buf), NULL) != 64 ||
			    ipcx_mq_send(b, buf, 64, 0))
				_exit(1);
		}
		_exit(0);
	}
	bench_pin(env->cpu[0]);
	run->n = 0;
	for (i = 0; i < n + 1000; i++) {
		uint64_t t0 = bench_now_ns();

		if (ipcx_mq_send(a, buf, 64, 0) ||
		    ipcx_mq_receive(b, buf, sizeof(buf), NULL) != 64) {
			ret = -EIO;
			kill(pid, SIGKILL);
			break;
		}
		if (i >= 1000 && run->n < run->cap)	/* 1000 warm-up rounds */
			run->samples[run->n++] = bench_now_ns() - t0;
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		if (!ret)
			ret = -EIO;
	if (!ret)
		snprintf(run->note, sizeof(run->note), "%s, two queues",
			 MQB_FLAGS ? "spsc" : "mpmc");
out:
	ipcx_mq_close(a);
	ipcx_mq_close(b);
	return ret;
}

#define MQB_ROWS(IMPL, SFX)							\
static int mqb_t64_##SFX(const struct bench_env *e, struct bench_run *r)	\
{ return mqb_throughput(e, r, IMPL, 64, false); }				\
static int mqb_t64p_##SFX(const struct bench_env *e, struct bench_run *r)	\
{ return mqb_throughput(e, r, IMPL, 64, true); }				\
static int mqb_t1k_##SFX(const struct bench_env *e, struct bench_run *r)	\
{ return mqb_throughput(e, r, IMPL, 1024, false); }				\
static int mqb_rtt_##SFX(const struct bench_env *e, struct bench_run *r)	\
{ return mqb_rtt(e, r, IMPL); }							\
BENCH_CASE("mq_throughput_64", IMPL, "msg/s", mqb_t64_##SFX);			\
BENCH_CASE("mq_throughput_64_prio", IMPL, "msg/s", mqb_t64p_##SFX);		\
BENCH_CASE("mq_throughput_1k", IMPL, "msg/s", mqb_t1k_##SFX);			\
BENCH_CASE("mq_rtt_64", IMPL, "ns/rtt", mqb_rtt_##SFX)

MQB_ROWS("ipcx", def);
MQB_ROWS("ipcx_block", block);
MQB_ROWS("ipcx_spin", spin);
