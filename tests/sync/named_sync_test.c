// SPDX-License-Identifier: MIT
/*
 * named_sync_test - named mutexes, recursive mutexes, conditions and
 * semaphores (lib/sync/named_sync.c): create-only / open-only /
 * open-or-create, close, unlink, permissions (0600 default, explicit mode
 * exact under any umask), a semaphore's count persisting across close and
 * open, robustness through the name, kind mismatches, bad input.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

FIXTURE(named) {
	char dir[64];
	struct ipcx_sync_named_opts o;
};

FIXTURE_SETUP(named)
{
	strcpy(self->dir, "/dev/shm/ipcx-sync-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	memset(&self->o, 0, sizeof(self->o));
	self->o.sz = sizeof(self->o);
	self->o.dir = self->dir;
}

FIXTURE_TEARDOWN(named)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

static mode_t file_mode(const char *dir, const char *prefix, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s%s", dir, prefix, name);
	if (stat(path, &st))
		return (mode_t)-1;
	return st.st_mode & 07777;
}

TEST_F(named, mutex_lifecycle_and_modes)
{
	struct ipcx_mutex *m, *m2;

	EXPECT_EQ(-ENOENT, ipcx_named_mutex_open("m1", IPCX_OPEN_ONLY, &self->o, &m));
	ASSERT_EQ(0, ipcx_named_mutex_open("m1", IPCX_CREATE_ONLY, &self->o, &m));
	EXPECT_EQ(-EEXIST, ipcx_named_mutex_open("m1", IPCX_CREATE_ONLY, &self->o, &m2));
	ASSERT_EQ(0, ipcx_named_mutex_open("m1", IPCX_OPEN_ONLY, &self->o, &m2));
	EXPECT_NE(m, m2);
	/* Two mappings, one lock. */
	ASSERT_EQ(0, ipcx_mutex_lock(m));
	EXPECT_EQ(-EDEADLK, ipcx_mutex_trylock(m2));
	EXPECT_EQ(-EBUSY, ipcx_named_mutex_close(m));
	EXPECT_EQ(0, ipcx_mutex_unlock(m2));
	EXPECT_EQ(0, ipcx_named_mutex_close(m2));
	EXPECT_EQ(0, ipcx_named_mutex_close(m));
	ASSERT_EQ(0, ipcx_named_mutex_open("m1", IPCX_OPEN_OR_CREATE, &self->o, &m));
	EXPECT_EQ(0, ipcx_named_mutex_close(m));
	EXPECT_EQ(0600, file_mode(self->dir, "ipcx.mtx.", "m1"));
	EXPECT_EQ(0, ipcx_named_mutex_unlink("m1", &self->o));
	EXPECT_EQ(-ENOENT, ipcx_named_mutex_unlink("m1", &self->o));
	EXPECT_EQ(-ENOENT, ipcx_named_mutex_open("m1", IPCX_OPEN_ONLY, &self->o, &m));
	EXPECT_EQ(0, t_count_entries(self->dir, "ipcx."));
}

TEST_F(named, explicit_mode_is_exact)
{
	struct ipcx_sem *s;
	mode_t old = umask(077);

	self->o.perm = 0664;
	ASSERT_EQ(0, ipcx_named_sem_open("perm", IPCX_CREATE_ONLY, &self->o, &s));
	umask(old);
	EXPECT_EQ(0664, file_mode(self->dir, "ipcx.sem.", "perm"));
	EXPECT_EQ(0, ipcx_named_sem_close(s));
	EXPECT_EQ(0, ipcx_named_sem_unlink("perm", &self->o));
}

TEST_F(named, sem_value_persists)
{
	struct ipcx_sem *s;
	pid_t pid;

	self->o.sem_value = 3;
	ASSERT_EQ(0, ipcx_named_sem_open("s", IPCX_CREATE_ONLY, &self->o, &s));
	EXPECT_EQ(3, ipcx_sem_value(s));
	EXPECT_EQ(0, ipcx_sem_wait(s));
	EXPECT_EQ(0, ipcx_named_sem_close(s));
	/* Another process opens it by name and posts twice. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_sem *t;

		if (ipcx_named_sem_open("s", IPCX_OPEN_ONLY, &self->o, &t))
			_exit(1);
		if (ipcx_sem_post(t) || ipcx_sem_post(t) || ipcx_named_sem_close(t))
			_exit(2);
		_exit(0);
	}
	EXPECT_EQ(0, t_wait(pid));
	/* sem_value only applies on create */
	self->o.sem_value = 100;
	ASSERT_EQ(0, ipcx_named_sem_open("s", IPCX_OPEN_OR_CREATE, &self->o, &s));
	EXPECT_EQ(4, ipcx_sem_value(s));
	EXPECT_EQ(0, ipcx_named_sem_close(s));
	EXPECT_EQ(0, ipcx_named_sem_unlink("s", &self->o));
	self->o.sem_value = IPCX_SEM_VALUE_MAX + 1u;
	EXPECT_EQ(-EINVAL, ipcx_named_sem_open("s", IPCX_CREATE_ONLY, &self->o, &s));
}

TEST_F(named, robust_through_the_name)
{
	struct ipcx_mutex *m;
	pid_t pid;
	int p[2];
	char c;

	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, ipcx_named_mutex_open("r", IPCX_CREATE_ONLY, &self->o, &m));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_mutex *t;

		if (ipcx_named_mutex_open("r", IPCX_OPEN_ONLY, &self->o, &t) ||
		    ipcx_mutex_lock(t))
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(p[0], &c, 1));
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, t_wait(pid));
	EXPECT_EQ(-EOWNERDEAD, ipcx_mutex_lock(m));
	EXPECT_EQ(0, ipcx_mutex_consistent(m));
	EXPECT_EQ(0, ipcx_mutex_unlock(m));
	EXPECT_EQ(0, ipcx_named_mutex_close(m));
	EXPECT_EQ(0, ipcx_named_mutex_unlink("r", &self->o));
	close(p[0]);
	close(p[1]);
}

TEST_F(named, rmutex_and_cond_together)
{
	struct ipcx_mutex *m;
	struct ipcx_cond *c;
	struct timespec dl = t_deadline_ms(20);

	ASSERT_EQ(0, ipcx_named_rmutex_open("x", IPCX_CREATE_ONLY, &self->o, &m));
	/* Sync kinds share one name space: "x" is taken by the mutex. */
	ASSERT_EQ(-EEXIST, ipcx_named_cond_open("x", IPCX_CREATE_ONLY, &self->o, &c));
	ASSERT_EQ(-EEXIST, ipcx_named_cond_open("x", IPCX_OPEN_OR_CREATE, &self->o, &c));
	ASSERT_EQ(-ENOENT, ipcx_named_cond_open("x", IPCX_OPEN_ONLY, &self->o, &c));
	ASSERT_EQ(0, ipcx_named_cond_open("x.cond", IPCX_CREATE_ONLY, &self->o, &c));
	ASSERT_EQ(0, ipcx_mutex_lock(m));
	ASSERT_EQ(0, ipcx_mutex_lock(m));	/* recursive */
	EXPECT_EQ(-ETIMEDOUT, ipcx_cond_timedwait(c, m, &dl));
	EXPECT_EQ(0, ipcx_mutex_unlock(m));
	EXPECT_EQ(0, ipcx_mutex_unlock(m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_close(m));	/* wrong kind's close */
	EXPECT_EQ(0, ipcx_named_rmutex_close(m));
	EXPECT_EQ(0, ipcx_named_cond_close(c));
	EXPECT_EQ(0, ipcx_named_rmutex_unlink("x", &self->o));
	EXPECT_EQ(0, ipcx_named_cond_unlink("x.cond", &self->o));
}

/* A file of another kind at a kind's path is refused, not misused. */
TEST_F(named, other_kind_is_eproto)
{
	struct ipcx_sem *s;
	struct ipcx_mutex *m;
	char from[256], to[256];

	ASSERT_EQ(0, ipcx_named_sem_open("k", IPCX_CREATE_ONLY, &self->o, &s));
	EXPECT_EQ(0, ipcx_named_sem_close(s));
	snprintf(from, sizeof(from), "%s/ipcx.sem.k", self->dir);
	snprintf(to, sizeof(to), "%s/ipcx.mtx.k", self->dir);
	ASSERT_EQ(0, link(from, to));
	EXPECT_EQ(-EPROTO, ipcx_named_mutex_open("k", IPCX_OPEN_ONLY, &self->o, &m));
	EXPECT_EQ(-EPROTO, ipcx_named_mutex_open("k", IPCX_OPEN_OR_CREATE, &self->o, &m));
	EXPECT_EQ(-EEXIST, ipcx_named_mutex_open("k", IPCX_CREATE_ONLY, &self->o, &m));
	EXPECT_EQ(0, ipcx_named_mutex_unlink("k", &self->o));
	EXPECT_EQ(0, ipcx_named_sem_unlink("k", &self->o));
}

TEST_F(named, corrupted_or_short_file_is_eproto)
{
	struct ipcx_cond *c;
	char path[256];
	int fd;

	ASSERT_EQ(0, ipcx_named_cond_open("bad", IPCX_CREATE_ONLY, &self->o, &c));
	EXPECT_EQ(0, ipcx_named_cond_close(c));
	snprintf(path, sizeof(path), "%s/ipcx.cond.bad", self->dir);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(4, pwrite(fd, "junk", 4, 68));	/* the object's magic */
	EXPECT_EQ(-EPROTO, ipcx_named_cond_open("bad", IPCX_OPEN_ONLY, &self->o, &c));
	ASSERT_EQ(0, ftruncate(fd, 100));
	EXPECT_EQ(-EPROTO, ipcx_named_cond_open("bad", IPCX_OPEN_ONLY, &self->o, &c));
	ASSERT_EQ(0, ftruncate(fd, 0));
	EXPECT_EQ(-EPROTO, ipcx_named_cond_open("bad", IPCX_OPEN_ONLY, &self->o, &c));
	close(fd);
	EXPECT_EQ(0, ipcx_named_cond_unlink("bad", &self->o));
}

TEST_F(named, bad_input)
{
	struct ipcx_mutex *m;
	struct ipcx_mutex local;
	struct { struct ipcx_sync_named_opts o; uint64_t extra; } big;

	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("a/b", IPCX_CREATE_ONLY, &self->o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("", IPCX_CREATE_ONLY, &self->o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open(NULL, IPCX_CREATE_ONLY, &self->o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("ok", 0, &self->o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("ok", IPCX_OPEN_OR_CREATE | IPCX_READ_ONLY,
						 &self->o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("ok", IPCX_CREATE_ONLY, &self->o, NULL));
	self->o.flags = 0x100;
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("ok", IPCX_CREATE_ONLY, &self->o, &m));
	self->o.flags = IPCX_MUTEX_PI;
	EXPECT_EQ(-EINVAL, ipcx_named_sem_open("ok", IPCX_CREATE_ONLY, &self->o,
					       (struct ipcx_sem **)&m));
	self->o.flags = 0;
	self->o.perm = 010000;
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_open("ok", IPCX_CREATE_ONLY, &self->o, &m));
	self->o.perm = 0;
	memset(&big, 0, sizeof(big));
	big.o = self->o;
	big.o.sz = sizeof(big);
	big.extra = 9;
	EXPECT_EQ(-E2BIG, ipcx_named_mutex_open("ok", IPCX_CREATE_ONLY, &big.o, &m));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_close(NULL));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_close(&local));
	EXPECT_EQ(-EINVAL, ipcx_named_mutex_unlink("../x", &self->o));
	EXPECT_EQ(0, t_count_entries(self->dir, "ipcx."));
}

TEST_HARNESS_MAIN
