// SPDX-License-Identifier: MIT
/*
 * barrier_test - barriers (lib/sync/barrier.c): 8 processes over 1000
 * rounds, nobody passes early, exactly one serial return per round.
 */
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define NPROC	8
#define ROUNDS	1000

struct shared {
	struct ipcx_barrier b;
	uint32_t slot[NPROC];
	uint32_t serial[ROUNDS];
};

TEST(bad_input)
{
	struct ipcx_barrier b;

	memset(&b, 0x77, sizeof(b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init(NULL, 2));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init(&b, 0));
	EXPECT_EQ(-EINVAL, ipcx_barrier_init((struct ipcx_barrier *)((char *)&b + 4), 2));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(NULL));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_destroy(&b));
	ASSERT_EQ(0, ipcx_barrier_init(&b, 1));
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(IPCX_BARRIER_SERIAL, ipcx_barrier_wait(&b));
	EXPECT_EQ(0, ipcx_barrier_destroy(&b));
	EXPECT_EQ(-EINVAL, ipcx_barrier_wait(&b));
}

TEST(destroy_busy)
{
	struct ipcx_barrier *b = t_shared(4096);
	pid_t pid;

	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, ipcx_barrier_init(b, 2));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_barrier_wait(b) < 0);
	while (__atomic_load_n(&b->arrived, __ATOMIC_ACQUIRE) == 0)
		usleep(1000);
	EXPECT_EQ(-EBUSY, ipcx_barrier_destroy(b));
	EXPECT_GE(ipcx_barrier_wait(b), 0);
	EXPECT_EQ(0, t_wait(pid));
	EXPECT_EQ(0, ipcx_barrier_destroy(b));
	munmap(b, 4096);
}

TEST(eight_processes_thousand_rounds)
{
	struct shared *sh = t_shared(sizeof(struct shared));
	pid_t pid[NPROC];
	int i, r;

	ASSERT_NE(NULL, sh);
	ASSERT_EQ(0, ipcx_barrier_init(&sh->b, NPROC));
	for (i = 0; i < NPROC; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			for (r = 0; r < ROUNDS; r++) {
				int ret, j;

				__atomic_store_n(&sh->slot[i], r + 1, __ATOMIC_RELEASE);
				ret = ipcx_barrier_wait(&sh->b);
				if (ret < 0)
					_exit(1);
				if (ret == IPCX_BARRIER_SERIAL)
					__atomic_fetch_add(&sh->serial[r], 1, __ATOMIC_RELAXED);
				/* Everybody has arrived at round r; nobody is past r+1. */
				for (j = 0; j < NPROC; j++) {
					uint32_t s = __atomic_load_n(&sh->slot[j], __ATOMIC_ACQUIRE);

					if (s < (uint32_t)r + 1 || s > (uint32_t)r + 2)
						_exit(2);
				}
			}
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++)
		EXPECT_EQ(0, t_wait(pid[i]));
	for (r = 0; r < ROUNDS; r++)
		ASSERT_EQ(1u, sh->serial[r]) TH_LOG("round %d", r);
	munmap(sh, sizeof(struct shared));
}

TEST_HARNESS_MAIN
