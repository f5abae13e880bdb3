// SPDX-License-Identifier: MIT
/*
 * memfd_test - anonymous segments on memfd: seals that stop a peer from
 * truncating a mapped segment (no SIGBUS, ever), sharing by SCM_RIGHTS and
 * /proc/PID/fd, the noexec seal, and hugetlb segments (require fails
 * cleanly on an empty pool and works once the test grows the pool).
 */
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* ASSERT_*() expands to a for clause; a block after one is not guarded by it. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wempty-body"
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#ifndef F_SEAL_SHRINK
#define F_SEAL_SEAL	0x0001
#define F_SEAL_SHRINK	0x0002
#define F_SEAL_GROW	0x0004
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC	0x0020
#endif

#define MB (1ul << 20)

TEST(seals_and_resize)
{
	IPCX_OPTS(ipcx_memfd_opts, o, .size = 3 * 4096 + 5, .name = "t");
	int fds = t_count_fds(), fd;
	struct stat st;

	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(3 * 4096 + 5, st.st_size);
	ASSERT_GE(st.st_blocks * 512, 3 * 4096 + 5);	/* reserved */
	ASSERT_EQ(F_SEAL_SHRINK, ipcx_memfd_seals(fd) & (F_SEAL_SHRINK | F_SEAL_GROW));
	ASSERT_EQ(-EPERM, ipcx_memfd_resize(fd, 4096));
	ASSERT_EQ(-1, ftruncate(fd, 0));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(0, ipcx_memfd_resize(fd, 8 * 4096));	/* growing is allowed */
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(8 * 4096, st.st_size);
	close(fd);

	o.flags = IPCX_MEMFD_FIXED | IPCX_MEMFD_SEAL_SEAL;
	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, ipcx_memfd_seals(fd) &
		  (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	ASSERT_EQ(-EPERM, ipcx_memfd_resize(fd, 8 * 4096));
	ASSERT_EQ(-1, fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));	/* seals frozen */
	close(fd);

	o.flags = IPCX_MEMFD_NOSEAL;
	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_memfd_seals(fd) & (F_SEAL_SHRINK | F_SEAL_GROW));
	ASSERT_EQ(0, ipcx_memfd_resize(fd, 4096));
	close(fd);

	o.flags = IPCX_MEMFD_NOEXEC;
	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	if (ipcx_features() & IPCX_FEAT_MEMFD_NOEXEC) {
		ASSERT_EQ(F_SEAL_EXEC, ipcx_memfd_seals(fd) & F_SEAL_EXEC);
		ASSERT_EQ(0, fstat(fd, &st));
		ASSERT_EQ(0, st.st_mode & 0111);
	}
	close(fd);

	/* Bad input. */
	o.flags = 0;
	o.size = 0;
	ASSERT_EQ(-EINVAL, ipcx_memfd_new(&o));
	o.size = 4096;
	o.flags = 0x1000;
	ASSERT_EQ(-EINVAL, ipcx_memfd_new(&o));
	o.flags = IPCX_MEMFD_NOSEAL | IPCX_MEMFD_FIXED;
	ASSERT_EQ(-EINVAL, ipcx_memfd_new(&o));
	o.flags = 0;
	o.reserved = 1;
	ASSERT_EQ(-EINVAL, ipcx_memfd_new(&o));
	ASSERT_EQ(-EINVAL, ipcx_memfd_new(NULL));
	ASSERT_EQ(-EBADF, ipcx_memfd_resize(-1, 4096));
	ASSERT_EQ(fds, t_count_fds());
}

/*
 * A hostile peer that reopened the segment through /proc cannot truncate
 * it (EPERM), and the mapping process touches every page afterwards: if a
 * truncation had gone through, that touch would be SIGBUS.
 */
TEST(peer_cannot_truncate_no_sigbus)
{
	IPCX_OPTS(ipcx_memfd_opts, o, .size = 4 * MB, .flags = IPCX_MEMFD_FIXED);
	struct ipcx_region *r;
	volatile char *p;
	size_t i;
	pid_t pid;
	int fd;

	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&r, fd, NULL));
	p = ipcx_region_addr(r);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int pfd = ipcx_fd_open_pid(getppid(), fd, 0);

		if (pfd < 0)
			_exit(1);
		if (ftruncate(pfd, 0) == 0 || errno != EPERM)
			_exit(2);
		if (ftruncate(pfd, 4096) == 0 || errno != EPERM)
			_exit(3);
		if (ftruncate(pfd, 8 * MB) == 0 || errno != EPERM)
			_exit(4);
		if (ipcx_memfd_resize(pfd, 0) != -EPERM)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	for (i = 0; i < 4 * MB; i += 4096)
		p[i] = 1;
	ASSERT_EQ(0, ipcx_region_unmap(r));
	close(fd);
}

TEST(scm_rights_to_child)
{
	IPCX_OPTS(ipcx_memfd_opts, o, .size = MB);
	struct ipcx_region *r;
	int sv[2], fd, fds;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	fds = t_count_fds();
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_region *cr;
		int cfd;

		close(sv[0]);
		cfd = ipcx_fd_recv(sv[1]);
		if (cfd < 0)
			_exit(1);
		if (!(fcntl(cfd, F_GETFD) & FD_CLOEXEC))
			_exit(2);
		if (ipcx_region_map(&cr, cfd, NULL))
			_exit(3);
		close(cfd);
		strcpy(ipcx_region_addr(cr), "from child");
		ipcx_region_unmap(cr);
		/* A peer that closes without sending: -ENODATA. */
		_exit(ipcx_fd_recv(sv[1]) == -ENODATA ? 0 : 4);
	}
	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&r, fd, NULL));
	ASSERT_EQ(0, ipcx_fd_send(sv[0], fd));
	close(fd);
	close(sv[0]);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_STREQ("from child", ipcx_region_addr(r));
	ASSERT_EQ(0, ipcx_region_unmap(r));
	close(sv[1]);
	ASSERT_EQ(fds - 2, t_count_fds());
	ASSERT_EQ(-EBADF, ipcx_fd_send(-1, 0));
	ASSERT_EQ(-EBADF, ipcx_fd_recv(-1));
}

TEST(proc_pid_fd_open)
{
	IPCX_OPTS(ipcx_memfd_opts, o, .size = 8192);
	struct ipcx_region *r;
	int fd, ro;
	pid_t pid;

	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&r, fd, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_region *cr;
		int cfd;

		close(fd);	/* reopen from the parent, not our inherited copy */
		cfd = ipcx_fd_open_pid(getppid(), fd, 0);
		if (cfd < 0)
			_exit(1);
		if (ipcx_region_map(&cr, cfd, NULL))
			_exit(2);
		strcpy((char *)ipcx_region_addr(cr) + 4096, "via proc");
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_STREQ("via proc", (char *)ipcx_region_addr(r) + 4096);
	ro = ipcx_fd_open_pid(getpid(), fd, IPCX_READ_ONLY);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(O_RDONLY, fcntl(ro, F_GETFL) & O_ACCMODE);
	close(ro);
	ASSERT_EQ(-ENOENT, ipcx_fd_open_pid(getpid(), 9999, 0));
	ASSERT_EQ(-EINVAL, ipcx_fd_open_pid(0, fd, 0));
	ASSERT_EQ(-EINVAL, ipcx_fd_open_pid(getpid(), fd, 0x4));
	ipcx_region_unmap(r);
	close(fd);
}

/* ---- hugetlb ------------------------------------------------------------ */

#define NR_HUGE "/proc/sys/vm/nr_hugepages"

static long read_long(const char *path)
{
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtol(buf, NULL, 10);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY), n, ret;

	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	ret = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return ret;
}

static long free_2m(void)
{
	return read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") -
	       read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");
}

FIXTURE(pool) {
	long old;	/* vm.nr_hugepages before the test; -1: untouched */
	int lock;	/* held from before reading the pool until it is restored */
};

FIXTURE_SETUP(pool)
{
	self->old = -1;
	self->lock = t_machine_lock();
}

FIXTURE_TEARDOWN(pool)
{
	/* Runs even when the test failed: put the pool back. */
	if (self->old >= 0 && write_long(NR_HUGE, self->old))
		TH_LOG("could not restore vm.nr_hugepages to %ld", self->old);
	if (self->lock >= 0)
		close(self->lock);
}

TEST_F(pool, hugetlb_require_and_prefer)
{
	IPCX_OPTS(ipcx_memfd_opts, o, .size = 3 * MB, .huge = IPCX_HUGE_REQUIRE);
	IPCX_OPTS(ipcx_region_opts, ro, .huge = IPCX_HUGE_REQUIRE);
	int fds = t_count_fds(), fd;
	struct ipcx_region *r;
	uint64_t huge = 0;
	long cur;
	struct stat st;

	cur = read_long(NR_HUGE);
	if (cur < 0 || access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK))
		SKIP(return, "no 2 MiB hugetlb support");
	if (free_2m() <= 0) {
		/* An empty pool: require fails cleanly, prefer falls back. */
		ASSERT_EQ(-ENOMEM, ipcx_memfd_new(&o));
		ASSERT_EQ(-ENOMEM, ipcx_region_map_anon(&r, 2 * MB, &ro));
		ASSERT_EQ(fds, t_count_fds());
		o.huge = IPCX_HUGE_PREFER;
		fd = ipcx_memfd_new(&o);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, fstat(fd, &st));
		ASSERT_EQ(3 * MB, st.st_size);	/* normal pages: not rounded */
		close(fd);
		o.huge = IPCX_HUGE_REQUIRE;
		/* Grow the pool for this test; the teardown restores it. */
		self->old = cur;
		if (write_long(NR_HUGE, cur + 4) || free_2m() < 4) {
			SKIP(return, "cannot grow vm.nr_hugepages (needs root and free memory)");
		}
	}
	fd = ipcx_memfd_new(&o);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fstat(fd, &st));
	ASSERT_EQ(4 * MB, st.st_size);	/* rounded up to whole hugepages */
	ASSERT_EQ(F_SEAL_SHRINK, ipcx_memfd_seals(fd) & F_SEAL_SHRINK);
	ro.offset = 100;	/* a non-aligned offset still works */
	ro.size = 3 * MB;
	ASSERT_EQ(0, ipcx_region_map(&r, fd, &ro));
	ASSERT_EQ(2 * MB, ipcx_region_page_size(r));
	ASSERT_EQ(3 * MB, ipcx_region_size(r));
	memset(ipcx_region_addr(r), 1, 3 * MB);
	ASSERT_EQ(0, ipcx_region_huge_bytes(r, &huge));
	ASSERT_EQ(4 * MB, huge);
	ASSERT_EQ(0, ipcx_region_shrink(r, 2 * MB, false));	/* whole hugepages */
	ASSERT_EQ(0, ipcx_region_unmap(r));
	close(fd);

	ASSERT_EQ(0, ipcx_region_map_anon(&r, 2 * MB, &(struct ipcx_region_opts){
		.sz = sizeof(struct ipcx_region_opts), .huge = IPCX_HUGE_REQUIRE,
		.flags = IPCX_MAP_PREFAULT }));
	ASSERT_EQ(2 * MB, ipcx_region_page_size(r));
	ASSERT_EQ(0, ipcx_region_huge_bytes(r, &huge));
	ASSERT_EQ(2 * MB, huge);
	ASSERT_EQ(0, ipcx_region_unmap(r));
	ASSERT_EQ(fds, t_count_fds());
}

/*
 * Named objects on hugetlbfs: with huge REQUIRE and no directory, the
 * object goes to a mounted hugetlbfs (mounted here in a private mount
 * namespace), and its mapping uses 2 MiB pages.
 */
static int hugetlbfs_child(void)
{
	IPCX_OPTS(ipcx_shm_opts, o, .size = 3 * MB, .huge = IPCX_HUGE_REQUIRE);
	char dir[] = "/tmp/ipcx-huge.XXXXXX", found[256];
	struct ipcx_region *r;
	struct ipcx_shm *s;
	uint64_t huge = 0;
	int ret;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 77;
	if (!mkdtemp(dir))
		return 77;
	if (mount("ipcx-huge", dir, "hugetlbfs", 0, "pagesize=2M,mode=0700")) {
		rmdir(dir);
		return 77;
	}
	ret = 10;
	if (ipcx_hugetlbfs_dir(IPCX_HUGE_2MB, found, sizeof(found)))
		goto out;
	ret = 11;
	if (ipcx_shm_open(&s, "h", IPCX_CREATE_ONLY, &o))
		goto out;
	ret = 12;
	if (ipcx_region_map(&r, ipcx_shm_fd(s), NULL) || ipcx_region_size(r) != 3 * MB ||
	    ipcx_region_page_size(r) != 2 * MB)
		goto out;
	memset(ipcx_region_addr(r), 7, 3 * MB);
	ret = 13;
	if (ipcx_region_huge_bytes(r, &huge) || huge != 4 * MB)
		goto out;
	ipcx_region_unmap(r);
	ipcx_shm_close(s);
	ret = 14;
	if (t_count_entries(dir, "ipcx.shm.h") != 1 || ipcx_shm_unlink("h", dir))
		goto out;
	ret = 0;
out:
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	return ret;
}

TEST_F(pool, named_on_hugetlbfs)
{
	IPCX_OPTS(ipcx_shm_opts, o, .size = MB, .huge = IPCX_HUGE_REQUIRE);
	char buf[256];
	struct ipcx_shm *s;
	long cur = read_long(NR_HUGE);
	pid_t pid;
	int st;

	/* Nothing mounted (usually): require is -EOPNOTSUPP, prefer falls back. */
	if (ipcx_hugetlbfs_dir(0, buf, sizeof(buf)) == -ENOENT) {
		char dir[] = "/dev/shm/ipcx-test.XXXXXX";

		ASSERT_EQ(-EOPNOTSUPP, ipcx_shm_open(&s, "n", IPCX_CREATE_ONLY, &o));
		ASSERT_NE(NULL, mkdtemp(dir));
		setenv("IPCX_SHM_DIR", dir, 1);
		o.huge = IPCX_HUGE_PREFER;
		ASSERT_EQ(0, ipcx_shm_open(&s, "n", IPCX_CREATE_ONLY, &o));
		ipcx_shm_close(s);
		ASSERT_EQ(0, ipcx_shm_unlink("n", NULL));
		unsetenv("IPCX_SHM_DIR");
		rmdir(dir);
	}
	if (cur < 0)
		SKIP(return, "no hugetlb support");
	if (free_2m() < 2) {
		self->old = cur;
		if (write_long(NR_HUGE, cur + 2) || free_2m() < 2)
			SKIP(return, "cannot grow vm.nr_hugepages (needs root and free memory)");
	}
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(hugetlbfs_child());
	st = t_wait(pid);
	if (st == 77)
		SKIP(return, "needs root to mount hugetlbfs in a private mount namespace");
	ASSERT_EQ(0, st);
}

TEST_HARNESS_MAIN
