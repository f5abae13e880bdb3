// SPDX-License-Identifier: MIT
/*
 * rwlock_named_test - named sharable and upgradable mutexes: open modes,
 * lifecycle, exact permissions, kinds, corrupted files, and a lock shared
 * by name between processes (including owner death).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx/rwlock.h>
#include <ipcx/layout.h>

FIXTURE(dir) {
	char path[64];
	struct ipcx_named_rwlock_opts o;
};

FIXTURE_SETUP(dir)
{
	strcpy(self->path, "/dev/shm/ipcx-rwtest.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
	memset(&self->o, 0, sizeof(self->o));
	self->o.sz = sizeof(self->o);
	self->o.dir = self->path;
}

FIXTURE_TEARDOWN(dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->path);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->path);
}

static int file_mode(const char *dir, const char *file)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	if (stat(p, &st))
		return -1;
	return st.st_mode & 07777;
}

TEST_F(dir, lifecycle)
{
	struct ipcx_named_rwlock *h, *h2;
	struct ipcx_rwlock *l;
	int fds = t_count_fds();

	ASSERT_EQ(-ENOENT, ipcx_named_rwlock_open(&h, "a", IPCX_OPEN_ONLY, &self->o));
	ASSERT_EQ(NULL, h);
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "a", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(1, t_count_entries(self->path, "ipcx.rw.a"));
	ASSERT_EQ(-EEXIST, ipcx_named_rwlock_open(&h2, "a", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h2, "a", IPCX_OPEN_ONLY, &self->o));
	/* Two handles, one lock. */
	l = ipcx_named_rwlock_get(h);
	ASSERT_NE(NULL, l);
	ASSERT_EQ(0, ipcx_rwlock_lock(l));
	ASSERT_EQ(-EDEADLK, ipcx_rwlock_trylock(ipcx_named_rwlock_get(h2)));
	ASSERT_EQ(0, ipcx_rwlock_unlock(ipcx_named_rwlock_get(h2)));
	ASSERT_EQ(0, ipcx_named_rwlock_close(h2));
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h2, "a", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_close(h2));
	/* Unlink: the name goes, handles stay usable, a new create is a new lock. */
	ASSERT_EQ(0, ipcx_rwlock_lock_shared(l));
	ASSERT_EQ(0, ipcx_named_rwlock_unlink("a", &self->o));
	ASSERT_EQ(-ENOENT, ipcx_named_rwlock_unlink("a", &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h2, "a", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(0, ipcx_rwlock_trylock(ipcx_named_rwlock_get(h2)));
	ASSERT_EQ(0, ipcx_rwlock_unlock(ipcx_named_rwlock_get(h2)));
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(l));
	ASSERT_EQ(0, ipcx_named_rwlock_close(h2));
	ASSERT_EQ(0, ipcx_named_rwlock_close(h));
	ASSERT_EQ(0, ipcx_named_rwlock_close(NULL));
	ASSERT_EQ(0, ipcx_named_rwlock_unlink("a", &self->o));
	ASSERT_EQ(0, t_count_entries(self->path, "ipcx."));
	ASSERT_EQ(fds, t_count_fds());	/* no descriptor kept per handle */
}

TEST_F(dir, permissions_exact)
{
	struct ipcx_named_rwlock *h;
	mode_t old = umask(0077);

	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "p1", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(0600, file_mode(self->path, "ipcx.rw.p1"));
	ipcx_named_rwlock_close(h);
	self->o.perm = 0644;
	ASSERT_EQ(0, ipcx_named_upgradable_open(&h, "p2", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(0644, file_mode(self->path, "ipcx.upg.p2"));
	ipcx_named_rwlock_close(h);
	umask(0);
	self->o.perm = 0640;
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "p3", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(0640, file_mode(self->path, "ipcx.rw.p3"));
	ipcx_named_rwlock_close(h);
	umask(old);
	self->o.perm = 01000000;
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "p4", IPCX_CREATE_ONLY, &self->o));
}

/*
 * A name is one synchronization object: creating it as another kind is
 * -EEXIST (not a second, unrelated lock), opening it as another kind is
 * -ENOENT, and a file of one kind under another kind's name is -EPROTO.
 */
TEST_F(dir, kinds)
{
	struct ipcx_named_rwlock *a, *b;
	char from[256], to[256];
	int fd;

	ASSERT_EQ(0, ipcx_named_rwlock_open(&a, "k", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-ENOENT, ipcx_named_upgradable_open(&b, "k", IPCX_OPEN_ONLY, &self->o));
	ASSERT_EQ(-EEXIST, ipcx_named_upgradable_open(&b, "k", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-EEXIST, ipcx_named_upgradable_open(&b, "k", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(0, t_count_entries(self->path, "ipcx.upg."));
	ipcx_named_rwlock_close(a);
	/* Other sync kinds' names count too (here a mutex's file). */
	snprintf(from, sizeof(from), "%s/ipcx.mtx.m", self->path);
	fd = open(from, O_CREAT | O_RDWR, 0600);
	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(-EEXIST, ipcx_named_rwlock_open(&b, "m", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(0, unlink(from));
	/* Put the sharable mutex's file under the upgradable name. */
	snprintf(from, sizeof(from), "%s/ipcx.rw.k", self->path);
	snprintf(to, sizeof(to), "%s/ipcx.upg.k", self->path);
	ASSERT_EQ(0, rename(from, to));
	ASSERT_EQ(-EPROTO, ipcx_named_upgradable_open(&b, "k", IPCX_OPEN_ONLY, &self->o));
	ASSERT_EQ(-EPROTO, ipcx_named_upgradable_open(&b, "k", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(-EEXIST, ipcx_named_upgradable_open(&b, "k", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(0, ipcx_named_upgradable_unlink("k", &self->o));
}

TEST_F(dir, bad_input)
{
	struct ipcx_named_rwlock *h;
	struct {
		struct ipcx_named_rwlock_opts o;
		uint64_t extra;
	} big;
	char path[256], zero[64] = { 0 };
	int fd;

	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(NULL, "x", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, NULL, IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "../x", IPCX_CREATE_ONLY, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "a/b", IPCX_OPEN_OR_CREATE, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "x", 0, &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_open(&h, "x", IPCX_OPEN_ONLY | IPCX_READ_ONLY,
						  &self->o));
	ASSERT_EQ(-EINVAL, ipcx_named_rwlock_unlink(NULL, &self->o));
	memset(&big, 0, sizeof(big));
	big.o = self->o;
	big.o.sz = sizeof(big);
	big.extra = 1;
	ASSERT_EQ(-E2BIG, ipcx_named_rwlock_open(&h, "x", IPCX_CREATE_ONLY, &big.o));
	big.extra = 0;
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "x", IPCX_CREATE_ONLY, &big.o));
	ipcx_named_rwlock_close(h);
	ASSERT_EQ(NULL, ipcx_named_rwlock_get(NULL));

	/* A truncated file: -EPROTO, not SIGBUS. */
	snprintf(path, sizeof(path), "%s/ipcx.rw.x", self->path);
	ASSERT_EQ(0, truncate(path, 100));
	ASSERT_EQ(-EPROTO, ipcx_named_rwlock_open(&h, "x", IPCX_OPEN_ONLY, &self->o));
	/* A header with bad magic, and a zeroed lock behind a good header. */
	ASSERT_EQ(0, truncate(path, 0));
	ASSERT_EQ(0, truncate(path, 4096));
	ASSERT_EQ(-EPROTO, ipcx_named_rwlock_open(&h, "x", IPCX_OPEN_ONLY, &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_unlink("x", &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "x", IPCX_CREATE_ONLY, &self->o));
	ipcx_named_rwlock_close(h);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(64, pwrite(fd, zero, 64, 64));	/* the lock's first line */
	close(fd);
	ASSERT_EQ(-EPROTO, ipcx_named_rwlock_open(&h, "x", IPCX_OPEN_ONLY, &self->o));
	ASSERT_EQ(0, ipcx_named_rwlock_unlink("x", &self->o));
}

/* Processes find the lock by name; an owner's death is reported through it. */
TEST_F(dir, across_processes)
{
	struct ipcx_named_rwlock *h;
	_Atomic int *stage = t_shared(4096);
	struct ipcx_rwlock *l;
	pid_t pid;

	ASSERT_NE(NULL, stage);
	self->o.check_ms = 20;
	ASSERT_EQ(0, ipcx_named_upgradable_open(&h, "x", IPCX_CREATE_ONLY, &self->o));
	l = ipcx_named_rwlock_get(h);
	pid = fork();
	if (pid == 0) {
		struct ipcx_named_rwlock *c;

		if (ipcx_named_upgradable_open(&c, "x", IPCX_OPEN_ONLY, &self->o))
			_exit(1);
		if (ipcx_rwlock_lock_upgradable(ipcx_named_rwlock_get(c)))
			_exit(2);
		if (ipcx_rwlock_unlock_upgradable_and_lock(ipcx_named_rwlock_get(c)))
			_exit(3);
		atomic_store(stage, 1);
		for (;;)
			pause();
	}
	while (!atomic_load(stage))
		t_sleep_ms(1);
	ASSERT_EQ(-EAGAIN, ipcx_rwlock_trylock_shared(l));
	kill(pid, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, t_wait(pid));
	ASSERT_EQ(-EOWNERDEAD, ipcx_rwlock_lock_shared(l));
	ASSERT_EQ(0, ipcx_rwlock_consistent(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_and_lock_shared(l));
	ASSERT_EQ(0, ipcx_rwlock_unlock_shared(l));
	ipcx_named_rwlock_close(h);
	ASSERT_EQ(0, ipcx_named_upgradable_unlink("x", &self->o));
}

/* The default directory is $IPCX_SHM_DIR (or /dev/shm) when opts->dir is NULL. */
TEST_F(dir, env_dir)
{
	struct ipcx_named_rwlock *h;

	setenv("IPCX_SHM_DIR", self->path, 1);
	ASSERT_EQ(0, ipcx_named_rwlock_open(&h, "e", IPCX_OPEN_OR_CREATE, NULL));
	ASSERT_EQ(1, t_count_entries(self->path, "ipcx.rw.e"));
	ipcx_named_rwlock_close(h);
	ASSERT_EQ(0, ipcx_named_rwlock_unlink("e", NULL));
	unsetenv("IPCX_SHM_DIR");
}

TEST_HARNESS_MAIN
