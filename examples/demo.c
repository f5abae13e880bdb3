// SPDX-License-Identifier: MIT
/*
 * demo - an ipcx message queue between two processes, beside a POSIX
 * message queue doing the same work: throughput of 64-byte messages from a
 * producer process to a consumer process, then round-trip latency
 * percentiles of a ping-pong through two queues, then priorities.
 * Runs for a few seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcx.h>

#define MSG		64
#define TPUT_MSGS	400000
#define ROUNDS		20000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The two transports behind one tiny interface. */
struct chan {
	struct ipcx_mq *q;
	mqd_t mq;
	char name[32];
};

static int chan_open(struct chan *c, int posix, long cap, int idx)
{
	if (!posix) {
		IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = (uint32_t)cap, .max_size = MSG,
			  .flags = IPCX_MQ_SPSC);
		int r = ipcx_mq_open_memfd(&c->q, &o);

		if (r)
			fprintf(stderr, "demo: ipcx_mq_open_memfd: %s\n", strerror(-r));
		return r;
	}
	struct mq_attr a = { .mq_maxmsg = cap, .mq_msgsize = MSG };

	c->q = NULL;
	snprintf(c->name, sizeof(c->name), "/ipcx-demo-%d-%d", (int)getpid(), idx);
	mq_unlink(c->name);
	/* The kernel caps POSIX queues (msg_max, RLIMIT_MSGQUEUE): halve until it fits. */
	for (; cap >= 1; cap /= 2) {
		a.mq_maxmsg = cap;
		c->mq = mq_open(c->name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
		if (c->mq != (mqd_t)-1)
			return (int)cap;
	}
	perror("demo: mq_open");
	return -1;
}

static void chan_close(struct chan *c)
{
	if (c->q) {
		ipcx_mq_close(c->q);
	} else {
		mq_close(c->mq);
		mq_unlink(c->name);
	}
}

static int chan_send(struct chan *c, const void *b, size_t n)
{
	return c->q ? ipcx_mq_send(c->q, b, n, 0) : mq_send(c->mq, b, n, 0);
}

static long chan_recv(struct chan *c, void *b)
{
	return c->q ? (long)ipcx_mq_receive(c->q, b, MSG, NULL)
		    : (long)mq_receive(c->mq, b, MSG, NULL);
}

static double throughput(int posix, long *cap_out)
{
	volatile uint64_t *t_end = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char buf[MSG] = { 0 };
	struct chan c;
	uint64_t t0;
	pid_t pid;
	int i, cap;

	cap = chan_open(&c, posix, 1024, 0);
	if (cap < 0 || t_end == MAP_FAILED)
		return 0;
	*cap_out = posix ? cap : 1024;
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < TPUT_MSGS; i++)
			if (chan_recv(&c, buf) != MSG)
				_exit(1);
		*t_end = now_ns();
		_exit(0);
	}
	t0 = now_ns();
	for (i = 0; i < TPUT_MSGS; i++)
		if (chan_send(&c, buf, MSG))
			break;
	waitpid(pid, NULL, 0);
	chan_close(&c);
	return *t_end > t0 ? TPUT_MSGS * 1e9 / (double)(*t_end - t0) : 0;
}

static int pingpong(int posix, uint64_t *rtt)
{
	char buf[MSG] = { 0 };
	struct chan a, b;
	pid_t pid;
	int i, st;

	if (chan_open(&a, posix, 8, 1) < 0 || chan_open(&b, posix, 8, 2) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < ROUNDS; i++)
			if (chan_recv(&a, buf) != MSG || chan_send(&b, buf, MSG))
				_exit(1);
		_exit(0);
	}
	for (i = 0; i < ROUNDS; i++) {
		uint64_t t0 = now_ns();

		if (chan_send(&a, buf, MSG) || chan_recv(&b, buf) != MSG)
			break;
		rtt[i] = now_ns() - t0;
	}
	waitpid(pid, &st, 0);
	chan_close(&a);
	chan_close(&b);
	if (i < ROUNDS)
		return -1;
	qsort(rtt, ROUNDS, sizeof(rtt[0]), cmp_u64);
	return 0;
}

static void priorities(void)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 8, .max_size = 32);
	static const struct { unsigned int prio; const char *text; } in[] = {
		{ 1, "limit order A" }, { 5, "cancel B" }, { 1, "limit order C" },
		{ 9, "kill switch" }, { 5, "cancel D" },
	};
	struct ipcx_mq *q;
	unsigned int prio;
	char buf[32];
	ssize_t n;
	size_t i;

	if (ipcx_mq_open_memfd(&q, &o))
		return;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		ipcx_mq_send(q, in[i].text, strlen(in[i].text), in[i].prio);
	printf("\npriorities: sent A(1) B(5) C(1) kill(9) D(5), received:");
	while ((n = ipcx_mq_tryreceive(q, buf, sizeof(buf), &prio)) >= 0)
		printf(" \"%.*s\"(%u)", (int)n, buf, prio);
	printf("\n");
	ipcx_mq_close(q);
}

int main(void)
{
	static uint64_t rtt[ROUNDS];
	const char *name[2] = { "ipcx mq", "POSIX mq" };
	double tput[2];
	long cap[2] = { 0, 0 };
	int k;

	printf("ipcx %s demo: producer and consumer processes, %d-byte messages\n\n",
	       ipcx_version(), MSG);
	for (k = 0; k < 2; k++)
		tput[k] = throughput(k, &cap[k]);
	printf("throughput, %d messages, 1 producer -> 1 consumer\n", TPUT_MSGS);
	for (k = 0; k < 2; k++)
		printf("  %-9s %6.2f M msg/s   (capacity %ld%s)\n", name[k], tput[k] / 1e6, cap[k],
		       k && cap[k] < 1024 ? ": the kernel's fs.mqueue limits" : "");
	if (tput[1] > 0)
		printf("  ipcx / POSIX: %.1fx\n", tput[0] / tput[1]);

	printf("\nround trip through two queues, %d ping-pongs (us)\n", ROUNDS);
	printf("  %-9s %8s %8s %8s %8s\n", "", "p50", "p99", "p99.9", "max");
	for (k = 0; k < 2; k++) {
		if (pingpong(k, rtt)) {
			printf("  %-9s failed\n", name[k]);
			continue;
		}
		printf("  %-9s %8.2f %8.2f %8.2f %8.1f\n", name[k], rtt[ROUNDS / 2] / 1e3,
		       rtt[ROUNDS * 99 / 100] / 1e3, rtt[ROUNDS * 999 / 1000] / 1e3,
		       rtt[ROUNDS - 1] / 1e3);
	}
	priorities();
	return 0;
}
