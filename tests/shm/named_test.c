// SPDX-License-Identifier: MIT
/*
 * named_test - names, the shm directory and atomic publication of named
 * objects (lib/shm/named.c), which every named kind is built on.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include "shm/named.h"

/* Every test works in a private directory under /dev/shm. */
FIXTURE(dir) {
	char path[64];
};

FIXTURE_SETUP(dir)
{
	strcpy(self->path, "/dev/shm/ipcx-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
}

FIXTURE_TEARDOWN(dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->path);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->path);
}

TEST(names)
{
	char longname[IPCX_NAME_MAX + 2];

	ASSERT_EQ(0, ipcx_name_check("orders.v2_A-1"));
	ASSERT_EQ(-EINVAL, ipcx_name_check(NULL));
	ASSERT_EQ(-EINVAL, ipcx_name_check(""));
	ASSERT_EQ(-EINVAL, ipcx_name_check("../x"));
	ASSERT_EQ(-EINVAL, ipcx_name_check("a/b"));
	ASSERT_EQ(-EINVAL, ipcx_name_check("."));
	ASSERT_EQ(-EINVAL, ipcx_name_check(".."));
	ASSERT_EQ(-EINVAL, ipcx_name_check("sp ace"));
	ASSERT_EQ(-EINVAL, ipcx_name_check("nl\n"));
	ASSERT_EQ(-EINVAL, ipcx_name_check("\xc3\xa9"));
	memset(longname, 'a', sizeof(longname));
	longname[IPCX_NAME_MAX] = '\0';
	ASSERT_EQ(0, ipcx_name_check(longname));
	longname[IPCX_NAME_MAX] = 'a';
	longname[IPCX_NAME_MAX + 1] = '\0';
	ASSERT_EQ(-EINVAL, ipcx_name_check(longname));
}

TEST(dir_env_redirects)
{
	unsetenv(IPCX_SHM_DIR_ENV);
	ASSERT_STREQ("/dev/shm", ipcx_shm_dir());
	setenv(IPCX_SHM_DIR_ENV, "/tmp/elsewhere", 1);
	ASSERT_STREQ("/tmp/elsewhere", ipcx_shm_dir());
	unsetenv(IPCX_SHM_DIR_ENV);
}

TEST(kinds_never_collide)
{
	char a[256], b[256];
	int k, j;

	for (k = 1; k < IPCX_KIND_MAX; k++) {
		ASSERT_EQ(0, ipcx_named_path(k, "x", "/d", a, sizeof(a)));
		for (j = 1; j < k; j++) {
			ASSERT_EQ(0, ipcx_named_path(j, "x", "/d", b, sizeof(b)));
			ASSERT_STRNE(a, b);
		}
	}
	ASSERT_EQ(-EINVAL, ipcx_named_path(IPCX_KIND_MAX, "x", "/d", a, sizeof(a)));
	ASSERT_EQ(-ENAMETOOLONG, ipcx_named_path(IPCX_KIND_SHM, "x", "/d", a, 8));
}

TEST_F(dir, create_open_matrix)
{
	struct ipcx_named_req r = { .kind = IPCX_KIND_SHM, .name = "m", .dir = self->path,
				    .size = 8192 };
	bool created;
	struct stat st;
	int fd, fd2;

	r.mode = IPCX_OPEN_ONLY;
	ASSERT_EQ(-ENOENT, ipcx_named_open(&r, &created));
	r.mode = IPCX_CREATE_ONLY;
	fd = ipcx_named_open(&r, &created);
	ASSERT_GE(fd, 0);
	ASSERT_TRUE(created);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(8192, st.st_size);
	ASSERT_GE(st.st_blocks * 512, 8192);	/* pages reserved, not sparse */
	ASSERT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(-EEXIST, ipcx_named_open(&r, &created));
	r.mode = IPCX_OPEN_ONLY;
	fd2 = ipcx_named_open(&r, &created);
	ASSERT_GE(fd2, 0);
	ASSERT_FALSE(created);
	close(fd2);
	r.mode = IPCX_OPEN_OR_CREATE;
	fd2 = ipcx_named_open(&r, &created);
	ASSERT_GE(fd2, 0);
	ASSERT_FALSE(created);
	close(fd2);
	r.mode = IPCX_OPEN_ONLY | IPCX_READ_ONLY;
	fd2 = ipcx_named_open(&r, &created);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(O_RDONLY, fcntl(fd2, F_GETFL) & O_ACCMODE);
	close(fd2);
	r.mode = IPCX_CREATE_ONLY | IPCX_READ_ONLY;
	ASSERT_EQ(-EINVAL, ipcx_named_open(&r, &created));
	r.mode = 0;
	ASSERT_EQ(-EINVAL, ipcx_named_open(&r, &created));

	ASSERT_EQ(0, ipcx_named_unlink(IPCX_KIND_SHM, "m", self->path));
	ASSERT_EQ(-ENOENT, ipcx_named_unlink(IPCX_KIND_SHM, "m", self->path));
	/* The name can be created again at once; the old fd stays valid. */
	r.mode = IPCX_CREATE_ONLY;
	fd2 = ipcx_named_open(&r, &created);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	close(fd2);
	close(fd);
}

TEST_F(dir, permissions_exact_despite_umask)
{
	struct ipcx_named_req r = { .kind = IPCX_KIND_SHM, .dir = self->path,
				    .mode = IPCX_CREATE_ONLY };
	struct stat st;
	mode_t old = umask(077);
	int fd;

	r.name = "p1";
	fd = ipcx_named_open(&r, NULL);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(0600, st.st_mode & 07777);
	close(fd);
	r.name = "p2";
	r.perm = 0664;
	fd = ipcx_named_open(&r, NULL);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(0664, st.st_mode & 07777);
	close(fd);
	umask(old);
}

static int init_fails(int fd, void *arg)
{
	(void)fd;
	return -*(int *)arg;
}

TEST_F(dir, failed_create_leaves_nothing)
{
	int err = EIO, fds = t_count_fds();
	struct ipcx_named_req r = { .kind = IPCX_KIND_SHM, .name = "f", .dir = self->path,
				    .mode = IPCX_CREATE_ONLY, .size = 4096,
				    .init = init_fails, .arg = &err };

	ASSERT_EQ(-EIO, ipcx_named_open(&r, NULL));
	ASSERT_EQ(0, t_count_entries(self->path, "ipcx."));
	ASSERT_EQ(fds, t_count_fds());
	r.name = "../escape";
	ASSERT_EQ(-EINVAL, ipcx_named_open(&r, NULL));
	r.name = "nodir";
	r.dir = "/nonexistent-ipcx-dir";
	r.init = NULL;
	ASSERT_EQ(-ENOENT, ipcx_named_open(&r, NULL));
	ASSERT_EQ(fds, t_count_fds());
}

struct hdr_obj {
	struct ipcx_obj_header h;
	uint64_t payload;
};

static int init_hdr(int fd, void *arg)
{
	struct hdr_obj o;

	ipcx_obj_header_init(&o.h, IPCX_KIND_SEM, sizeof(o), sizeof(o));
	o.payload = *(uint64_t *)arg;
	return pwrite(fd, &o, sizeof(o), 0) == sizeof(o) ? 0 : -EIO;
}

TEST_F(dir, header_checked_on_open)
{
	uint64_t v = 77;
	struct ipcx_named_req r = { .kind = IPCX_KIND_SEM, .name = "h", .dir = self->path,
				    .mode = IPCX_CREATE_ONLY, .size = sizeof(struct hdr_obj),
				    .init = init_hdr, .arg = &v };
	struct hdr_obj o;
	char path[256];
	int fd, wfd;

	fd = ipcx_named_open(&r, NULL);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(sizeof(o), pread(fd, &o, sizeof(o), 0));
	ASSERT_EQ(77, o.payload);
	ASSERT_EQ(0, ipcx_obj_header_check(&o.h, IPCX_KIND_SEM));
	ASSERT_EQ(-EPROTO, ipcx_obj_header_check(&o.h, IPCX_KIND_MQ));
	close(fd);

	r.mode = IPCX_OPEN_ONLY;
	fd = ipcx_named_open(&r, NULL);
	ASSERT_GE(fd, 0);
	close(fd);
	/* Corrupt the magic through the file: open refuses with -EPROTO. */
	ASSERT_EQ(0, ipcx_named_path(IPCX_KIND_SEM, "h", self->path, path, sizeof(path)));
	wfd = open(path, O_WRONLY);
	ASSERT_GE(wfd, 0);
	ASSERT_EQ(4, pwrite(wfd, "XXXX", 4, 0));
	ASSERT_EQ(-EPROTO, ipcx_named_open(&r, NULL));
	/* A file too short to hold a header is refused too. */
	ASSERT_EQ(0, ftruncate(wfd, 10));
	ASSERT_EQ(-EPROTO, ipcx_named_open(&r, NULL));
	close(wfd);
}

#define RACERS 6
#define ROUNDS 100

static int init_once(int fd, void *arg)
{
	(void)fd;
	atomic_fetch_add((_Atomic int *)arg, 1);
	return 0;
}

TEST_F(dir, open_or_create_race_builds_once)
{
	_Atomic int *shared = t_shared(4096);	/* [0] inits, [1] errors, [2] go */
	pid_t pid[RACERS];
	int i;

	ASSERT_NE(NULL, shared);
	for (i = 0; i < RACERS; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			char name[16];
			int round;

			while (!atomic_load(&shared[2]))
				;
			for (round = 0; round < ROUNDS; round++) {
				struct ipcx_named_req r = {
					.kind = IPCX_KIND_SHM, .name = name, .dir = self->path,
					.mode = IPCX_OPEN_OR_CREATE, .size = 4096,
					.init = init_once, .arg = (void *)&shared[3 + round],
				};
				int fd;

				snprintf(name, sizeof(name), "race%d", round);
				fd = ipcx_named_open(&r, NULL);
				if (fd < 0)
					atomic_fetch_add(&shared[1], 1);
				else
					close(fd);
			}
			_exit(0);
		}
	}
	atomic_store(&shared[2], 1);
	for (i = 0; i < RACERS; i++)
		ASSERT_EQ(0, t_wait(pid[i]));
	ASSERT_EQ(0, atomic_load(&shared[1]));
	/* Losing creators build too (in their own unnamed file) but only one links. */
	ASSERT_EQ(ROUNDS, t_count_entries(self->path, "ipcx.shm.race"));
	for (i = 0; i < ROUNDS; i++)
		ASSERT_GE(atomic_load(&shared[3 + i]), 1);
	munmap(shared, 4096);
}

TEST_HARNESS_MAIN
