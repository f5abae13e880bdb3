// SPDX-License-Identifier: MIT
/*
 * robust_lifetime_test - an ipcx mutex shares each thread's robust list
 * with glibc's robust pthread mutexes (lib/sync/robust.h, mutex.c,
 * named_sync.c). Lifetime operations must not cut that list: closing a
 * named mutex that another thread of the process holds is -EBUSY,
 * re-initialising a mutex that a live thread holds is -EBUSY (a stale
 * owner left by a dead process is not), and an unlock that finds the
 * mutex's links corrupted by a peer writes nothing through them (a bad
 * back link is repaired from the thread's own list; a bad forward link
 * makes the mutex not recoverable). Each
 * list is then checked the hard way: SIGKILL the holder, and the robust
 * pthread mutex linked behind the ipcx node must come back EOWNERDEAD.
 */
#include <pthread.h>
#include <stdio.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define MAP_LEN 4096

struct shared {
	pthread_mutex_t g;		/* a robust pthread mutex, linked behind ours */
	struct ipcx_mutex m;
	int close_ret;
	int held;
};

static int robust_pthread_init(pthread_mutex_t *g)
{
	pthread_mutexattr_t a;

	return pthread_mutexattr_init(&a) ||
	       pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
	       pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
	       pthread_mutex_init(g, &a);
}

/* EOWNERDEAD expected from a robust pthread mutex whose holder was killed. */
static int pthread_lock_2s(pthread_mutex_t *g)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 2;
	return pthread_mutex_timedlock(g, &dl);
}

FIXTURE(life) {
	char dir[64];
	struct ipcx_sync_named_opts o;
	struct shared *sh;
};

FIXTURE_SETUP(life)
{
	strcpy(self->dir, "/dev/shm/ipcx-life-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	memset(&self->o, 0, sizeof(self->o));
	self->o.sz = sizeof(self->o);
	self->o.dir = self->dir;
	self->sh = t_shared(MAP_LEN);
	ASSERT_NE(NULL, self->sh);
	ASSERT_EQ(0, robust_pthread_init(&self->sh->g));
	self->sh->close_ret = 1;
}

FIXTURE_TEARDOWN(life)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

static struct ipcx_mutex *named_m;
static struct shared *child_sh;

static void *holder(void *arg)
{
	pthread_mutex_lock(&child_sh->g);	/* list: head -> g */
	ipcx_mutex_lock(named_m);		/* list: head -> m -> g */
	__atomic_store_n(&child_sh->held, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return arg;
}

TEST_F(life, close_while_a_sibling_thread_holds_is_ebusy)
{
	struct ipcx_mutex *m;
	pthread_t t;
	pid_t pid;
	int i;

	ASSERT_EQ(0, ipcx_named_mutex_open("m", IPCX_CREATE_ONLY, &self->o, &m));
	ASSERT_EQ(0, ipcx_named_mutex_close(m));
	pid = fork();
	if (pid == 0) {
		child_sh = self->sh;
		if (ipcx_named_mutex_open("m", IPCX_OPEN_ONLY, &self->o, &named_m))
			_exit(2);
		if (pthread_create(&t, NULL, holder, NULL))
			_exit(3);
		while (!__atomic_load_n(&child_sh->held, __ATOMIC_ACQUIRE))
			usleep(1000);
		__atomic_store_n(&child_sh->close_ret, ipcx_named_mutex_close(named_m),
				 __ATOMIC_RELEASE);
		for (;;)
			pause();
	}
	ASSERT_GT(pid, 0);
	for (i = 0; i < 5000 && __atomic_load_n(&self->sh->close_ret, __ATOMIC_ACQUIRE) == 1; i++)
		t_sleep_ms(1);
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(pid));
	EXPECT_EQ(-EBUSY, self->sh->close_ret);
	/* The kernel walked the dead thread's whole list. */
	EXPECT_EQ(EOWNERDEAD, pthread_lock_2s(&self->sh->g));
	ASSERT_EQ(0, ipcx_named_mutex_open("m", IPCX_OPEN_ONLY, &self->o, &m));
	EXPECT_EQ(-EOWNERDEAD, ipcx_mutex_lock(m));
	EXPECT_EQ(0, ipcx_mutex_consistent(m));
	/* Held by the caller itself: -EBUSY too; free: closes. */
	EXPECT_EQ(-EBUSY, ipcx_named_mutex_close(m));
	EXPECT_EQ(0, ipcx_mutex_unlock(m));
	EXPECT_EQ(0, ipcx_named_mutex_close(m));
	EXPECT_EQ(0, ipcx_named_mutex_unlink("m", &self->o));
}

TEST_F(life, init_of_a_held_mutex_is_ebusy)
{
	struct shared *sh = self->sh;
	pid_t pid;

	ASSERT_EQ(0, ipcx_mutex_init(&sh->m, NULL));
	ASSERT_EQ(0, ipcx_mutex_lock(&sh->m));
	EXPECT_EQ(-EBUSY, ipcx_mutex_init(&sh->m, NULL));	/* we hold it */
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
	EXPECT_EQ(0, ipcx_mutex_init(&sh->m, NULL));		/* free */

	/* Held by a live process behind a robust pthread mutex: refused, and
	 * its list is intact when it dies. */
	pid = fork();
	if (pid == 0) {
		if (pthread_mutex_lock(&sh->g) || ipcx_mutex_lock(&sh->m))
			_exit(2);
		__atomic_store_n(&sh->held, 1, __ATOMIC_RELEASE);
		for (;;)
			pause();
	}
	ASSERT_GT(pid, 0);
	while (!__atomic_load_n(&sh->held, __ATOMIC_ACQUIRE))
		t_sleep_ms(1);
	EXPECT_EQ(-EBUSY, ipcx_mutex_init(&sh->m, NULL));
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(pid));
	EXPECT_EQ(EOWNERDEAD, pthread_lock_2s(&sh->g));
	EXPECT_EQ(0, ipcx_mutex_init(&sh->m, NULL));		/* owner died: free */

	/* A word naming a thread that no longer exists (a stale file): init ok. */
	pid = fork();
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(0, t_wait(pid));
	__atomic_store_n(&sh->m.lock, (uint32_t)pid, __ATOMIC_RELEASE);
	EXPECT_EQ(0, ipcx_mutex_init(&sh->m, NULL));
	EXPECT_EQ(0, ipcx_mutex_lock(&sh->m));
	EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
}

TEST_F(life, unlock_with_corrupted_links_writes_nothing_through_them)
{
	struct shared *sh = self->sh;
	uint64_t decoy[4] = { 0x1111, 0x2222, 0x3333, 0x4444 };
	pthread_mutex_t *g;
	pid_t pid;
	int which;

	for (which = 0; which < 2; which++) {
		g = t_shared(MAP_LEN);	/* a fresh one each round */
		ASSERT_NE(NULL, g);
		ASSERT_EQ(0, robust_pthread_init(g));
		/* In a child: its robust list is left with the corrupted node. */
		ASSERT_EQ(0, ipcx_mutex_init(&sh->m, NULL));
		pid = fork();
		if (pid == 0) {
			int r;

			if (pthread_mutex_lock(g) || ipcx_mutex_lock(&sh->m))
				_exit(2);
			/* A peer overwrites one link of the held mutex. */
			if (which)
				sh->m.robust_next = (uint64_t)(uintptr_t)&decoy[2];
			else
				sh->m.robust_prev = (uint64_t)(uintptr_t)&decoy[1];
			r = ipcx_mutex_unlock(&sh->m);
			if (r != (which ? -ENOTRECOVERABLE : 0))
				_exit(3);
			if (decoy[0] != 0x1111 || decoy[1] != 0x2222 || decoy[2] != 0x3333 ||
			    decoy[3] != 0x4444)
				_exit(4);
			/* prev: found from the head and unlinked, the mutex works;
			 * next: its successor is unknown, the mutex is given up. */
			r = ipcx_mutex_lock(&sh->m);
			if (r != (which ? -ENOTRECOVERABLE : 0) ||
			    (!which && ipcx_mutex_unlock(&sh->m)))
				_exit(5);
			__atomic_store_n(&sh->held, 1, __ATOMIC_RELEASE);
			for (;;)
				pause();
		}
		ASSERT_GT(pid, 0);
		while (!__atomic_load_n(&sh->held, __ATOMIC_ACQUIRE) &&
		       waitpid(pid, NULL, WNOHANG) == 0)
			t_sleep_ms(1);
		kill(pid, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, t_wait(pid)) TH_LOG("corrupted %s", which ? "next" : "prev");
		__atomic_store_n(&sh->held, 0, __ATOMIC_RELEASE);
		if (!which) {
			/* Repaired: the list is whole, the dead child's g comes back. */
			EXPECT_EQ(0, ipcx_mutex_lock(&sh->m));
			EXPECT_EQ(0, ipcx_mutex_unlock(&sh->m));
			EXPECT_EQ(EOWNERDEAD, pthread_lock_2s(g));
		} else {
			/* (g stays held: the node left with a wild link hides
			 * what lies behind it from the kernel's walk.) */
			EXPECT_EQ(-ENOTRECOVERABLE, ipcx_mutex_lock(&sh->m));
		}
		munmap(g, MAP_LEN);
	}
}

TEST_HARNESS_MAIN
