// SPDX-License-Identifier: MIT
/*
 * file_test - mapped files: the open/create matrix, reserved sizes, empty
 * files, flush then read() from another process, copy-on-write, read-only
 * maps, unlink while mapped.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

/* ASSERT_*() expands to a for clause; a block after one is not guarded by it. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wempty-body"
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

FIXTURE(dir) {
	char path[64];
	char file[128];
	int fds;
};

/* A real disk-backed directory when /var/tmp has one, else /tmp. */
FIXTURE_SETUP(dir)
{
	strcpy(self->path, "/var/tmp/ipcx-file.XXXXXX");
	if (!mkdtemp(self->path)) {
		strcpy(self->path, "/tmp/ipcx-file.XXXXXX");
		ASSERT_NE(NULL, mkdtemp(self->path));
	}
	snprintf(self->file, sizeof(self->file), "%s/data", self->path);
	self->fds = t_count_fds();
}

FIXTURE_TEARDOWN(dir)
{
	char cmd[128];

	EXPECT_EQ(self->fds, t_count_fds());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->path);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->path);
}

TEST_F(dir, open_create_matrix)
{
	IPCX_OPTS(ipcx_file_opts, o, .size = 40000, .perm = 0640);
	struct stat st;
	int fd, fd2;

	ASSERT_EQ(-ENOENT, ipcx_file_open(self->file, IPCX_OPEN_ONLY, NULL));
	fd = ipcx_file_open(self->file, IPCX_CREATE_ONLY, &o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(40000, st.st_size);
	ASSERT_GE(st.st_blocks * 512, 40000);	/* blocks reserved */
	ASSERT_EQ(0640, st.st_mode & 07777);
	ASSERT_EQ(-EEXIST, ipcx_file_open(self->file, IPCX_CREATE_ONLY, &o));
	fd2 = ipcx_file_open(self->file, IPCX_OPEN_OR_CREATE, &o);
	ASSERT_GE(fd2, 0);
	close(fd2);
	fd2 = ipcx_file_open(self->file, IPCX_OPEN_ONLY | IPCX_READ_ONLY, NULL);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(O_RDONLY, fcntl(fd2, F_GETFL) & O_ACCMODE);
	{
		struct ipcx_region *r;

		ASSERT_EQ(-EACCES, ipcx_region_map(&r, fd2, NULL));
		/* Copy-on-write of a read-only file is allowed. */
		ASSERT_EQ(0, ipcx_region_map(&r, fd2, &(struct ipcx_region_opts){
			.sz = sizeof(struct ipcx_region_opts), .flags = IPCX_COPY_ON_WRITE }));
		((char *)ipcx_region_addr(r))[0] = 1;
		ipcx_region_unmap(r);
	}
	close(fd2);
	close(fd);
	ASSERT_EQ(-EINVAL, ipcx_file_open(self->file, IPCX_CREATE_ONLY | IPCX_READ_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_file_open(self->file, 0, NULL));
	ASSERT_EQ(-EINVAL, ipcx_file_open(NULL, IPCX_OPEN_ONLY, NULL));
	ASSERT_EQ(-EINVAL, ipcx_file_open("", IPCX_OPEN_ONLY, NULL));
	ASSERT_EQ(0, ipcx_file_unlink(self->file));
	ASSERT_EQ(-ENOENT, ipcx_file_unlink(self->file));
	ASSERT_EQ(-ENOENT, ipcx_file_open("/nonexistent-ipcx/x", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(2, t_count_entries(self->path, ""));	/* "." and ".." */
}

TEST_F(dir, empty_file_fails_cleanly)
{
	struct ipcx_region *r = (void *)1;
	int fd = ipcx_file_open(self->file, IPCX_CREATE_ONLY, NULL);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(-EINVAL, ipcx_region_map(&r, fd, NULL));
	ASSERT_EQ(NULL, r);
	close(fd);
}

TEST_F(dir, flush_then_read_by_another_process)
{
	IPCX_OPTS(ipcx_file_opts, o, .size = 3 * 4096);
	struct ipcx_region *r;
	char *p;
	pid_t pid;
	int fd;

	fd = ipcx_file_open(self->file, IPCX_CREATE_ONLY, &o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&r, fd, NULL));
	close(fd);
	p = ipcx_region_addr(r);
	strcpy(p + 5000, "synced");
	ASSERT_EQ(0, ipcx_region_flush(r, 5000, 7, false));
	strcpy(p + 9000, "async");
	ASSERT_EQ(0, ipcx_region_flush(r, 8192, 0, true));
	ASSERT_EQ(-EINVAL, ipcx_region_flush(r, 3 * 4096 + 1, 0, false));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char buf[8] = { 0 };
		int cfd = open(self->file, O_RDONLY);

		if (cfd < 0 || pread(cfd, buf, 7, 5000) != 7 || strcmp(buf, "synced"))
			_exit(1);
		if (pread(cfd, buf, 6, 9000) != 6 || strcmp(buf, "async"))
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_region_unmap(r));
}

TEST_F(dir, copy_on_write_and_unlink_while_mapped)
{
	IPCX_OPTS(ipcx_file_opts, o, .size = 8192);
	IPCX_OPTS(ipcx_region_opts, cow, .flags = IPCX_COPY_ON_WRITE, .offset = 4096);
	struct ipcx_region *r, *w;
	char buf[4];
	int fd;

	fd = ipcx_file_open(self->file, IPCX_CREATE_ONLY, &o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&w, fd, NULL));
	ASSERT_EQ(0, ipcx_region_map(&r, fd, &cow));
	ASSERT_EQ(4096, ipcx_region_size(r));
	strcpy(ipcx_region_addr(r), "cow");
	ASSERT_EQ(0, ipcx_region_flush(w, 0, 0, false));
	ASSERT_EQ(4, pread(fd, buf, 4, 4096));
	ASSERT_EQ(0, buf[0]);	/* the private write never reached the file */
	ASSERT_EQ(0, ((char *)ipcx_region_addr(w))[4096]);
	ASSERT_EQ(0, ipcx_file_unlink(self->file));
	strcpy((char *)ipcx_region_addr(w) + 10, "alive");
	ASSERT_STREQ("alive", (char *)ipcx_region_addr(w) + 10);
	ASSERT_STREQ("cow", ipcx_region_addr(r));
	ipcx_region_unmap(r);
	ipcx_region_unmap(w);
	close(fd);
}

TEST_HARNESS_MAIN
