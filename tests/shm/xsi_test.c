// SPDX-License-Identifier: MIT
/*
 * xsi_test - System V shared memory with Boost's rules: keys from a path
 * and an id, the create/open matrix by key, whole-segment maps, read-only
 * maps, fixed addresses, removal by id while attached.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>

/* ASSERT_*() expands to a for clause; a block after one is not guarded by it. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wempty-body"
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

FIXTURE(key) {
	char path[64];
	key_t key;
	int id;		/* segment to remove in teardown, or -1 */
};

FIXTURE_SETUP(key)
{
	int fd;

	strcpy(self->path, "/tmp/ipcx-xsi.XXXXXX");
	fd = mkstemp(self->path);
	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_EQ(0, ipcx_xsi_key(self->path, 0x5a, &self->key));
	self->id = -1;
	/* A stale segment from an earlier crashed run with this key: remove it. */
	fd = shmget(self->key, 0, 0);
	if (fd >= 0)
		shmctl(fd, IPC_RMID, NULL);
}

FIXTURE_TEARDOWN(key)
{
	if (self->id >= 0)
		ipcx_xsi_remove(self->id);
	unlink(self->path);
}

TEST_F(key, keys)
{
	key_t k2, k3;

	ASSERT_EQ(0, ipcx_xsi_key(self->path, 0x5a, &k2));
	ASSERT_EQ(self->key, k2);
	ASSERT_EQ(0, ipcx_xsi_key(self->path, 0x5b, &k3));
	ASSERT_NE(self->key, k3);
	ASSERT_EQ(ftok(self->path, 0x5a), self->key);	/* ftok's rules */
	ASSERT_EQ(-EINVAL, ipcx_xsi_key(self->path, 0, &k2));
	ASSERT_EQ(-EINVAL, ipcx_xsi_key(self->path, 256, &k2));
	ASSERT_EQ(-ENOENT, ipcx_xsi_key("/nonexistent-ipcx", 1, &k2));
	ASSERT_EQ(-EINVAL, ipcx_xsi_key(NULL, 1, &k2));
}

TEST_F(key, matrix_and_maps)
{
	IPCX_OPTS(ipcx_xsi_opts, o, .size = 10000, .perm = 0600);
	struct ipcx_region *r, *r2;
	uint64_t size;
	pid_t pid;
	int id;

	ASSERT_EQ(-ENOENT, ipcx_xsi_open(self->key, IPCX_OPEN_ONLY, NULL));
	self->id = ipcx_xsi_open(self->key, IPCX_CREATE_ONLY, &o);
	ASSERT_GE(self->id, 0);
	ASSERT_EQ(-EEXIST, ipcx_xsi_open(self->key, IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(self->id, ipcx_xsi_open(self->key, IPCX_OPEN_ONLY, NULL));
	ASSERT_EQ(self->id, ipcx_xsi_open(self->key, IPCX_OPEN_OR_CREATE, &o));
	ASSERT_EQ(0, ipcx_xsi_size(self->id, &size));
	ASSERT_EQ(10000, size);

	ASSERT_EQ(0, ipcx_xsi_map(&r, self->id, 0, NULL));
	ASSERT_EQ(10000, ipcx_region_size(r));	/* always the whole segment */
	strcpy((char *)ipcx_region_addr(r) + 9000, "xsi");
	/* A fixed address that is taken: -EBUSY. */
	ASSERT_EQ(-EBUSY, ipcx_xsi_map(&r2, self->id, 0, ipcx_region_addr(r)));
	ASSERT_EQ(-EINVAL, ipcx_xsi_map(&r2, self->id, 0, (char *)ipcx_region_addr(r) + 1));
	ASSERT_EQ(-EINVAL, ipcx_region_shrink(r, 10, false));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_region *cr;
		int cid = ipcx_xsi_open(self->key, IPCX_OPEN_ONLY, NULL);

		if (cid < 0 || ipcx_xsi_map(&cr, cid, IPCX_READ_ONLY, NULL))
			_exit(1);
		if (strcmp((char *)ipcx_region_addr(cr) + 9000, "xsi"))
			_exit(2);
		signal(SIGSEGV, SIG_DFL);	/* sanitizers catch it otherwise */
		*(volatile char *)ipcx_region_addr(cr) = 1;	/* read-only: SIGSEGV */
		_exit(3);
	}
	ASSERT_EQ(128 + SIGSEGV, t_wait(pid));

	/* Removed while attached: the id goes, the map stays. */
	ASSERT_EQ(0, ipcx_xsi_remove(self->id));
	ASSERT_EQ(-ENOENT, ipcx_xsi_open(self->key, IPCX_OPEN_ONLY, NULL));
	ASSERT_STREQ("xsi", (char *)ipcx_region_addr(r) + 9000);
	ASSERT_EQ(0, ipcx_region_unmap(r));
	ASSERT_EQ(-EINVAL, ipcx_xsi_remove(self->id));
	self->id = -1;

	/* open-or-create makes one; IPC_PRIVATE always makes a new one. */
	id = ipcx_xsi_open(self->key, IPCX_OPEN_OR_CREATE, &o);
	ASSERT_GE(id, 0);
	self->id = id;
	id = ipcx_xsi_open(IPC_PRIVATE, IPCX_CREATE_ONLY, &o);
	ASSERT_GE(id, 0);
	ASSERT_NE(self->id, id);
	ASSERT_EQ(0, ipcx_xsi_remove(id));

	/* Bad input. */
	ASSERT_EQ(-EINVAL, ipcx_xsi_open(IPC_PRIVATE, IPCX_OPEN_ONLY, NULL));
	ASSERT_EQ(-EINVAL, ipcx_xsi_open(self->key, 0, &o));
	ASSERT_EQ(-EINVAL, ipcx_xsi_open(self->key + 1, IPCX_CREATE_ONLY, NULL));	/* no size */
	ASSERT_EQ(-EINVAL, ipcx_xsi_remove(-1));
	ASSERT_EQ(-EINVAL, ipcx_xsi_size(-1, &size));
	ASSERT_EQ(-EINVAL, ipcx_xsi_map(&r, self->id, 0x40, NULL));
}

TEST_HARNESS_MAIN
