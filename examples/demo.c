// SPDX-License-Identifier: MIT
/*
 * demo - two processes exchange data through one memfd segment that each
 * maps at a different address: the parent publishes a linked list of orders
 * built with offset pointers, the child walks and totals it, then the two
 * ping-pong on a futex word and report round-trip percentiles.
 */
#include <fcntl.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcx.h>

#define SEG_SIZE (1u << 20)
#define ORDERS 1000
#define ROUNDS 20000

struct order {
	struct ipcx_offptr next;
	uint64_t id;
	int64_t qty;
	int64_t price;
};

struct seg {
	_Atomic uint32_t turn;		/* ping-pong: 0 parent, 1 child, 2 done */
	uint32_t pad[15];
	struct ipcx_offptr orders;	/* list head */
	struct order pool[ORDERS];
};

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

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

static int child(int fd, struct seg *inherited)
{
	/* A fresh mapping made while the inherited one still stands: another address. */
	struct seg *s = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct order *o;
	int64_t notional = 0;
	int n = 0, i;

	if (s == MAP_FAILED)
		return 1;
	munmap(inherited, SEG_SIZE);
	for (o = IPCX_OFFPTR_GET(&s->orders, struct order); o;
	     o = IPCX_OFFPTR_GET(&o->next, struct order)) {
		notional += o->qty * o->price;
		n++;
	}
	printf("child : mapped at %p, walked %d orders, notional %lld\n", (void *)s, n,
	       (long long)notional);
	fflush(stdout);
	for (i = 0; i < ROUNDS; i++) {
		while (atomic_load(&s->turn) != 1)
			futex_wait(&s->turn, 0);
		atomic_store(&s->turn, 0);
		futex_wake(&s->turn);
	}
	return 0;
}

int main(void)
{
	static uint64_t rtt[ROUNDS];
	int64_t expect = 0;
	struct seg *s;
	pid_t pid;
	int fd, i, st;

	printf("ipcx %s demo: two processes, one memfd segment\n", ipcx_version());
	fd = memfd_create("ipcx-demo", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, SEG_SIZE) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		perror("demo: memfd");
		return 1;
	}
	s = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED) {
		perror("demo: mmap");
		return 1;
	}
	for (i = ORDERS - 1; i >= 0; i--) {
		struct order *o = &s->pool[(i * 37) % ORDERS];

		o->id = (uint64_t)i;
		o->qty = 100 + i;
		o->price = 10000 - i;
		expect += o->qty * o->price;
		ipcx_offptr_copy(&o->next, &s->orders);
		ipcx_offptr_set(&s->orders, o);
	}
	printf("parent: mapped at %p, published %d orders, notional %lld\n", (void *)s,
	       ORDERS, (long long)expect);
	fflush(stdout);

	pid = fork();
	if (pid < 0) {
		perror("demo: fork");
		return 1;
	}
	if (pid == 0) {
		_exit(child(fd, s));
	}
	for (i = 0; i < ROUNDS; i++) {
		uint64_t t0 = now_ns();

		atomic_store(&s->turn, 1);
		futex_wake(&s->turn);
		while (atomic_load(&s->turn) != 0)
			futex_wait(&s->turn, 1);
		rtt[i] = now_ns() - t0;
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "demo: child failed\n");
		return 1;
	}
	qsort(rtt, ROUNDS, sizeof(rtt[0]), cmp_u64);
	printf("futex ping-pong, %d round trips: p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       ROUNDS, rtt[ROUNDS / 2] / 1e3, rtt[ROUNDS * 99 / 100] / 1e3,
	       rtt[ROUNDS - 1] / 1e3);
	return 0;
}
