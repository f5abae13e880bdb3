// SPDX-License-Identifier: MIT
/*
 * shm_test - named shared memory objects and mapped regions: the create/
 * open matrix, persistence, unlink while mapped, racing creators, a tiny
 * tmpfs (-ENOSPC, never SIGBUS), offsets, access modes, fixed addresses,
 * advice, shrink, prefault/mlock, reservations and growth in place, and
 * anonymous shared memory across fork.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* ASSERT_*() expands to a for clause; a block after one is not guarded by it. */
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wempty-body"
#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define MB (1ul << 20)

FIXTURE(dir) {
	char path[64];
	int fds;
};

FIXTURE_SETUP(dir)
{
	strcpy(self->path, "/dev/shm/ipcx-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->path));
	self->fds = t_count_fds();
}

FIXTURE_TEARDOWN(dir)
{
	char cmd[128];

	/* Every test closes what it opened. */
	EXPECT_EQ(self->fds, t_count_fds());
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->path);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->path);
}

/* Mappings of this process (lines of /proc/self/maps), for leak checks. */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int c, n = 0;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static struct ipcx_shm *open_shm(const char *dir, const char *name, unsigned int mode,
				 uint64_t size, int *err)
{
	IPCX_OPTS(ipcx_shm_opts, o, .size = size, .dir = dir);
	struct ipcx_shm *s = NULL;

	*err = ipcx_shm_open(&s, name, mode, &o);
	return s;
}

TEST_F(dir, create_open_matrix)
{
	struct ipcx_shm *a, *b;
	struct ipcx_region *r;
	uint64_t size;
	struct stat st;
	int err;

	a = open_shm(self->path, "m", IPCX_OPEN_ONLY, 0, &err);
	ASSERT_EQ(-ENOENT, err);
	ASSERT_EQ(NULL, a);
	a = open_shm(self->path, "m", IPCX_CREATE_ONLY, 3 * 4096, &err);
	ASSERT_EQ(0, err);
	ASSERT_TRUE(ipcx_shm_created(a));
	ASSERT_EQ(0, ipcx_shm_size(a, &size));
	ASSERT_EQ(3 * 4096, size);
	ASSERT_EQ(0, fstat(ipcx_shm_fd(a), &st));
	ASSERT_GE(st.st_blocks * 512, 3 * 4096);	/* reserved, not sparse */
	ASSERT_EQ(0600, st.st_mode & 0777);
	b = open_shm(self->path, "m", IPCX_CREATE_ONLY, 4096, &err);
	ASSERT_EQ(-EEXIST, err);
	b = open_shm(self->path, "m", IPCX_OPEN_OR_CREATE, 4096, &err);
	ASSERT_EQ(0, err);
	ASSERT_FALSE(ipcx_shm_created(b));
	ASSERT_EQ(0, ipcx_shm_size(b, &size));
	ASSERT_EQ(3 * 4096, size);	/* an opener does not resize */
	ipcx_shm_close(b);
	b = open_shm(self->path, "m", IPCX_OPEN_ONLY, 0, &err);
	ASSERT_EQ(0, err);
	ipcx_shm_close(b);

	/* Read-only: opens, maps read-only, cannot resize or map writable. */
	b = open_shm(self->path, "m", IPCX_OPEN_ONLY | IPCX_READ_ONLY, 0, &err);
	ASSERT_EQ(0, err);
	ASSERT_EQ(-EBADF, ipcx_shm_truncate(b, 8192));
	ASSERT_EQ(-EACCES, ipcx_region_map(&r, ipcx_shm_fd(b), NULL));
	{
		IPCX_OPTS(ipcx_region_opts, ro, .flags = IPCX_READ_ONLY);

		ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(b), &ro));
		ASSERT_EQ(3 * 4096, ipcx_region_size(r));
		ASSERT_EQ(0, ipcx_region_unmap(r));
	}
	ipcx_shm_close(b);
	b = open_shm(self->path, "m", IPCX_CREATE_ONLY | IPCX_READ_ONLY, 0, &err);
	ASSERT_EQ(-EINVAL, err);
	b = open_shm(self->path, "m", 0, 0, &err);
	ASSERT_EQ(-EINVAL, err);
	b = open_shm(self->path, "m", IPCX_OPEN_ONLY | 0x8000, 0, &err);
	ASSERT_EQ(-EINVAL, err);

	/* Truncate grows (reserved) and shrinks. */
	ASSERT_EQ(0, ipcx_shm_truncate(a, 5 * 4096));
	ASSERT_EQ(0, fstat(ipcx_shm_fd(a), &st));
	ASSERT_EQ(5 * 4096, st.st_size);
	ASSERT_GE(st.st_blocks * 512, 5 * 4096);
	ASSERT_EQ(0, ipcx_shm_truncate(a, 4096));
	ASSERT_EQ(0, ipcx_shm_size(a, &size));
	ASSERT_EQ(4096, size);
	ipcx_shm_close(a);
	ASSERT_EQ(0, ipcx_shm_unlink("m", self->path));
	ASSERT_EQ(-ENOENT, ipcx_shm_unlink("m", self->path));
	ASSERT_EQ(0, t_count_entries(self->path, "ipcx."));
	ASSERT_EQ(0, ipcx_shm_close(NULL));
	ASSERT_EQ(-EINVAL, ipcx_shm_fd(NULL));

	/* NORESERVE: sparse like shm_open + ftruncate, and stays sparse on growth. */
	{
		IPCX_OPTS(ipcx_shm_opts, o, .size = MB, .dir = self->path,
			  .flags = IPCX_SHM_NORESERVE);

		ASSERT_EQ(0, ipcx_shm_open(&a, "sparse", IPCX_CREATE_ONLY, &o));
		ASSERT_EQ(0, fstat(ipcx_shm_fd(a), &st));
		ASSERT_EQ(MB, st.st_size);
		ASSERT_EQ(0, st.st_blocks);
		ASSERT_EQ(0, ipcx_shm_truncate(a, 2 * MB));
		ASSERT_EQ(0, fstat(ipcx_shm_fd(a), &st));
		ASSERT_EQ(0, st.st_blocks);
		ipcx_shm_close(a);
		ASSERT_EQ(0, ipcx_shm_unlink("sparse", self->path));
	}
}

TEST_F(dir, hostile_names_and_opts)
{
	static const char *const bad[] = { "../x", "a/b", "", "..", ".", "/abs", "sp ace",
					   "tab\t", "\xff" };
	char longname[IPCX_NAME_MAX + 2];
	struct ipcx_shm *s;
	size_t i;
	int err;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		open_shm(self->path, bad[i], IPCX_OPEN_OR_CREATE, 4096, &err);
		{
			EXPECT_EQ(-EINVAL, err) TH_LOG("name '%s'", bad[i]);
		}
		EXPECT_EQ(-EINVAL, ipcx_shm_unlink(bad[i], self->path));
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	open_shm(self->path, longname, IPCX_OPEN_OR_CREATE, 4096, &err);
	ASSERT_EQ(-EINVAL, err);
	open_shm(self->path, NULL, IPCX_OPEN_OR_CREATE, 4096, &err);
	ASSERT_EQ(-EINVAL, err);
	ASSERT_EQ(-EINVAL, ipcx_shm_open(NULL, "x", IPCX_CREATE_ONLY, NULL));
	/* Unknown non-zero option bytes past the known struct: -E2BIG. */
	{
		struct { struct ipcx_shm_opts o; uint64_t extra; } big = {
			.o = { .sz = sizeof(big), .dir = self->path }, .extra = 1 };

		ASSERT_EQ(-E2BIG, ipcx_shm_open(&s, "x", IPCX_CREATE_ONLY, &big.o));
		big.extra = 0;
		ASSERT_EQ(0, ipcx_shm_open(&s, "x", IPCX_CREATE_ONLY, &big.o));
		ipcx_shm_close(s);
	}
	{
		IPCX_OPTS(ipcx_shm_opts, o, .dir = self->path, .flags = 0x80);

		ASSERT_EQ(-EINVAL, ipcx_shm_open(&s, "y", IPCX_CREATE_ONLY, &o));
	}
	/*
	 * Too big for the filesystem: -ENOSPC at once, nothing left behind
	 * (only where the tmpfs has a size limit: unlimited ones would try).
	 */
	{
		struct statvfs sv;

		ASSERT_EQ(0, statvfs(self->path, &sv));
		if (sv.f_blocks && (uint64_t)sv.f_blocks * sv.f_frsize < (1ull << 46)) {
			open_shm(self->path, "huge", IPCX_CREATE_ONLY, 1ull << 46, &err);
			ASSERT_EQ(-ENOSPC, err);
		}
	}
	ASSERT_EQ(1, t_count_entries(self->path, "ipcx."));
	ASSERT_EQ(0, ipcx_shm_unlink("x", self->path));
}

TEST_F(dir, permissions_exact)
{
	IPCX_OPTS(ipcx_shm_opts, o, .dir = self->path, .perm = 0640, .size = 4096);
	mode_t old = umask(077);
	struct ipcx_shm *s;
	struct stat st;

	ASSERT_EQ(0, ipcx_shm_open(&s, "p", IPCX_CREATE_ONLY, &o));
	umask(old);
	ASSERT_EQ(0, fstat(ipcx_shm_fd(s), &st));
	ASSERT_EQ(0640, st.st_mode & 07777);
	ipcx_shm_close(s);
}

TEST_F(dir, persists_and_unlink_while_mapped)
{
	struct ipcx_shm *s;
	struct ipcx_region *r;
	char *p;
	pid_t pid;
	int err;

	s = open_shm(self->path, "pers", IPCX_CREATE_ONLY, 64 * 1024, &err);
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), NULL));
	ipcx_shm_close(s);	/* the mapping outlives the handle */
	p = ipcx_region_addr(r);
	strcpy(p + 60000, "hello");

	/* Another process finds it by name and sees (and adds) data. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct ipcx_region *cr;
		struct ipcx_shm *cs = open_shm(self->path, "pers", IPCX_OPEN_ONLY, 0, &err);

		if (err)
			_exit(1);
		if (ipcx_region_map(&cr, ipcx_shm_fd(cs), NULL))
			_exit(2);
		ipcx_shm_close(cs);
		if (strcmp((char *)ipcx_region_addr(cr) + 60000, "hello"))
			_exit(3);
		strcpy((char *)ipcx_region_addr(cr) + 100, "world");
		ipcx_region_unmap(cr);
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_STREQ("world", p + 100);

	ASSERT_EQ(0, ipcx_shm_unlink("pers", self->path));
	/* Still mapped and usable; the name is free at once for a new object. */
	strcpy(p + 200, "still");
	ASSERT_STREQ("still", p + 200);
	s = open_shm(self->path, "pers", IPCX_CREATE_ONLY, 64 * 1024, &err);
	ASSERT_EQ(0, err);
	{
		struct ipcx_region *r2;

		ASSERT_EQ(0, ipcx_region_map(&r2, ipcx_shm_fd(s), NULL));
		ASSERT_EQ(0, ((char *)ipcx_region_addr(r2))[100]);	/* a new, zeroed object */
		ipcx_region_unmap(r2);
	}
	ipcx_shm_close(s);
	ASSERT_EQ(0, ipcx_region_unmap(r));
	ASSERT_EQ(0, ipcx_shm_unlink("pers", self->path));
}

#define RACERS 4
#define ROUNDS 150

TEST_F(dir, racing_open_or_create)
{
	_Atomic int *sh = t_shared(4096);	/* [0] go, [1] errors, [2..] creators per round */
	pid_t pid[RACERS];
	int i;

	ASSERT_NE(NULL, sh);
	for (i = 0; i < RACERS; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			int round, err;

			while (!atomic_load(&sh[0]))
				;
			for (round = 0; round < ROUNDS; round++) {
				struct ipcx_shm *s;
				struct ipcx_region *r;
				char name[16];

				snprintf(name, sizeof(name), "race%d", round);
				s = open_shm(self->path, name, IPCX_OPEN_OR_CREATE, 8192, &err);
				if (err) {
					atomic_fetch_add(&sh[1], 1);
					continue;
				}
				if (ipcx_shm_created(s))
					atomic_fetch_add(&sh[2 + round], 1);
				/* Whoever opens sees a complete object: full size. */
				if (ipcx_region_map(&r, ipcx_shm_fd(s), NULL) ||
				    ipcx_region_size(r) != 8192)
					atomic_fetch_add(&sh[1], 1);
				else
					ipcx_region_unmap(r);
				ipcx_shm_close(s);
			}
			_exit(0);
		}
	}
	atomic_store(&sh[0], 1);
	for (i = 0; i < RACERS; i++)
		ASSERT_EQ(0, t_wait(pid[i]));
	ASSERT_EQ(0, atomic_load(&sh[1]));
	for (i = 0; i < ROUNDS; i++)
		{
			ASSERT_EQ(1, atomic_load(&sh[2 + i])) TH_LOG("round %d", i);
		}
	ASSERT_EQ(ROUNDS, t_count_entries(self->path, "ipcx.shm.race"));
	munmap(sh, 4096);
}

/*
 * A 1 MiB tmpfs in a private mount namespace: creating or growing past it
 * is -ENOSPC with nothing left behind, and a created object's pages are
 * all there (touching every byte never raises SIGBUS).
 */
static int tiny_tmpfs_child(void)
{
	char dir[] = "/tmp/ipcx-tiny.XXXXXX";
	struct ipcx_shm *s, *s2;
	struct ipcx_region *r;
	int err, fds;

	if (unshare(CLONE_NEWNS))
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 77;
	if (!mkdtemp(dir))
		return 77;
	if (mount("ipcx-tiny", dir, "tmpfs", 0, "size=1m,mode=0700")) {
		rmdir(dir);
		return 77;
	}
	fds = t_count_fds();
	s = open_shm(dir, "big", IPCX_CREATE_ONLY, 2 * MB, &err);
	if (err != -ENOSPC || s)
		return 10;
	if (t_count_entries(dir, "") != 2 || t_count_fds() != fds)	/* "." and ".." */
		return 11;
	s = open_shm(dir, "a", IPCX_CREATE_ONLY, 768 * 1024, &err);
	if (err)
		return 12;
	/* Only 256 KiB left: a 512 KiB object does not fit. */
	s2 = open_shm(dir, "b", IPCX_CREATE_ONLY, 512 * 1024, &err);
	if (err != -ENOSPC)
		return 13;
	if (ipcx_shm_truncate(s, 2 * MB) != -ENOSPC)
		return 14;
	if (ipcx_region_map(&r, ipcx_shm_fd(s), NULL))
		return 15;
	memset(ipcx_region_addr(r), 0xa5, ipcx_region_size(r));	/* no SIGBUS */
	ipcx_region_unmap(r);
	ipcx_shm_close(s);
	(void)s2;
	if (t_count_entries(dir, "ipcx.") != 1 || t_count_fds() != fds)
		return 16;
	umount(dir);
	rmdir(dir);
	return 0;
}

TEST(tiny_tmpfs_enospc_not_sigbus)
{
	pid_t pid = fork();
	int st;

	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(tiny_tmpfs_child());
	st = t_wait(pid);
	if (st == 77)
		SKIP(return, "needs root to mount a tmpfs in a private mount namespace");
	ASSERT_EQ(0, st);
}

/* An object of @pages pages whose every byte holds (offset & 0xff) ^ 0x5a. */
static int pattern_object(const char *dir, const char *name, size_t bytes,
			  struct ipcx_shm **out)
{
	struct ipcx_region *r;
	unsigned char *p;
	size_t i;
	int err;

	*out = open_shm(dir, name, IPCX_CREATE_ONLY, bytes, &err);
	if (err)
		return err;
	err = ipcx_region_map(&r, ipcx_shm_fd(*out), NULL);
	if (err)
		return err;
	p = ipcx_region_addr(r);
	for (i = 0; i < bytes; i++)
		p[i] = (unsigned char)((i & 0xff) ^ 0x5a);
	return ipcx_region_unmap(r);
}

TEST_F(dir, region_offsets_and_bounds)
{
	struct ipcx_region *r;
	struct ipcx_shm *s, *e;
	unsigned char *p;
	int err;

	ASSERT_EQ(0, pattern_object(self->path, "o", 3 * 4096, &s));
	{
		IPCX_OPTS(ipcx_region_opts, o, .offset = 100, .size = 5000);

		ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		p = ipcx_region_addr(r);
		ASSERT_EQ(5000, ipcx_region_size(r));
		ASSERT_EQ(100 % 4096, (uintptr_t)p % 4096);
		ASSERT_EQ((100 & 0xff) ^ 0x5a, p[0]);
		ASSERT_EQ(((100 + 4999) & 0xff) ^ 0x5a, p[4999]);
		ASSERT_EQ(4096, ipcx_region_page_size(r));
		ASSERT_EQ(0, ipcx_region_unmap(r));
	}
	{
		IPCX_OPTS(ipcx_region_opts, o, .offset = 4097);	/* size 0: to the end */

		ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		ASSERT_EQ(3 * 4096 - 4097, ipcx_region_size(r));
		p = ipcx_region_addr(r);
		ASSERT_EQ((4097 & 0xff) ^ 0x5a, p[0]);
		ASSERT_EQ(((3 * 4096 - 1) & 0xff) ^ 0x5a, p[ipcx_region_size(r) - 1]);
		ASSERT_EQ(0, ipcx_region_unmap(r));
	}
	{
		IPCX_OPTS(ipcx_region_opts, o, .offset = 3 * 4096);
		int maps = count_maps();

		ASSERT_EQ(-EINVAL, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		o.offset = 4096;
		o.size = 2 * 4096 + 1;	/* one byte past the end */
		ASSERT_EQ(-EINVAL, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		o.size = 0;
		o.flags = 0x4000;
		ASSERT_EQ(-EINVAL, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		o.flags = 0;
		o.huge = IPCX_HUGE_REQUIRE;	/* a tmpfs file has no hugetlb pages */
		ASSERT_EQ(-EOPNOTSUPP, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
		ASSERT_EQ(maps, count_maps());
	}
	ASSERT_EQ(-EBADF, ipcx_region_map(&r, -1, NULL));
	ASSERT_EQ(-EINVAL, ipcx_region_map(NULL, ipcx_shm_fd(s), NULL));
	/* An empty object cannot be mapped. */
	e = open_shm(self->path, "empty", IPCX_CREATE_ONLY, 0, &err);
	ASSERT_EQ(0, err);
	ASSERT_EQ(-EINVAL, ipcx_region_map(&r, ipcx_shm_fd(e), NULL));
	ipcx_shm_close(e);
	ipcx_shm_close(s);
}

TEST_F(dir, copy_on_write_stays_private)
{
	IPCX_OPTS(ipcx_region_opts, cow, .flags = IPCX_COPY_ON_WRITE);
	struct ipcx_region *r, *w;
	struct ipcx_shm *s;
	unsigned char *p;

	ASSERT_EQ(0, pattern_object(self->path, "cow", 8192, &s));
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &cow));
	ASSERT_EQ(0, ipcx_region_map(&w, ipcx_shm_fd(s), NULL));
	p = ipcx_region_addr(r);
	p[10] = 0xee;
	ASSERT_EQ((10 ^ 0x5a), ((unsigned char *)ipcx_region_addr(w))[10]);
	/* DONTNEED would discard the private copy: refused. */
	ASSERT_EQ(-EINVAL, ipcx_region_advise(r, IPCX_ADV_DONTNEED));
	ASSERT_EQ(0xee, p[10]);
	ipcx_region_unmap(r);
	ipcx_region_unmap(w);
	ipcx_shm_close(s);
}

TEST_F(dir, read_only_write_is_sigsegv)
{
	IPCX_OPTS(ipcx_region_opts, ro, .flags = IPCX_READ_ONLY);
	struct ipcx_region *r;
	struct ipcx_shm *s;
	pid_t pid;

	ASSERT_EQ(0, pattern_object(self->path, "ro", 4096, &s));
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &ro));
	ASSERT_EQ(0x5a, *(volatile unsigned char *)ipcx_region_addr(r));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);	/* sanitizers catch it otherwise */
		*(volatile char *)ipcx_region_addr(r) = 1;
		_exit(0);
	}
	ASSERT_EQ(128 + SIGSEGV, t_wait(pid));
	ipcx_region_unmap(r);
	ipcx_shm_close(s);
}

TEST_F(dir, fixed_address)
{
	struct ipcx_region *a, *b;
	struct ipcx_shm *s;
	void *hole;

	ASSERT_EQ(0, pattern_object(self->path, "fx", 4 * 4096, &s));
	ASSERT_EQ(0, ipcx_region_map(&a, ipcx_shm_fd(s), NULL));
	{
		IPCX_OPTS(ipcx_region_opts, o, .addr = ipcx_region_addr(a));
		int maps = count_maps();

		ASSERT_EQ(-EBUSY, ipcx_region_map(&b, ipcx_shm_fd(s), &o));
		ASSERT_EQ(maps, count_maps());	/* nothing mapped, nothing split */
		/* Overlapping only its last page: busy too, nothing replaced. */
		o.addr = (char *)ipcx_region_addr(a) + 3 * 4096;
		ASSERT_EQ(-EBUSY, ipcx_region_map(&b, ipcx_shm_fd(s), &o));
		ASSERT_EQ(0x5a, ((unsigned char *)ipcx_region_addr(a))[0]);
		ASSERT_EQ(0, msync(ipcx_region_addr(a), 4 * 4096, MS_ASYNC));
		/* A misaligned address for the offset: -EINVAL. */
		o.addr = (char *)ipcx_region_addr(a) + 8;
		ASSERT_EQ(-EINVAL, ipcx_region_map(&b, ipcx_shm_fd(s), &o));
	}
	/* A free range is used exactly, with a non-aligned offset. */
	hole = mmap(NULL, 16 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 16 * 4096));
	{
		IPCX_OPTS(ipcx_region_opts, o, .addr = (char *)hole + 4096 + 10, .offset = 10);

		ASSERT_EQ(0, ipcx_region_map(&b, ipcx_shm_fd(s), &o));
		ASSERT_EQ((char *)hole + 4096 + 10, ipcx_region_addr(b));
		ASSERT_EQ(10 ^ 0x5a, ((unsigned char *)ipcx_region_addr(b))[0]);
		ipcx_region_unmap(b);
	}
	ipcx_region_unmap(a);
	ipcx_shm_close(s);
}

TEST_F(dir, advice_shrink_prefault_lock)
{
	IPCX_OPTS(ipcx_region_opts, o, .flags = IPCX_MAP_PREFAULT | IPCX_MAP_LOCK);
	struct ipcx_region *r;
	struct ipcx_shm *s;
	unsigned char vec[8];
	char *base;
	int a;

	ASSERT_EQ(0, pattern_object(self->path, "adv", 8 * 4096, &s));
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
	ASSERT_EQ(0, mincore(ipcx_region_addr(r), 8 * 4096, vec));
	for (a = 0; a < 8; a++)
		ASSERT_EQ(1, vec[a] & 1);
	/* (Locked pages cannot be dropped: unlock before the DONTNEED advice.) */
	ASSERT_EQ(0, munlock(ipcx_region_addr(r), 8 * 4096));
	for (a = IPCX_ADV_NORMAL; a <= IPCX_ADV_NOHUGEPAGE; a++) {
		if (a == IPCX_ADV_HUGEPAGE || a == IPCX_ADV_NOHUGEPAGE) {
			int ret = ipcx_region_advise(r, a);

			{
				EXPECT_TRUE(ret == 0 || ret == -EINVAL) TH_LOG("advice %d: %d", a, ret);
			}
			continue;
		}
		{
			ASSERT_EQ(0, ipcx_region_advise(r, a)) TH_LOG("advice %d", a);
		}
	}
	ASSERT_EQ(-EINVAL, ipcx_region_advise(r, 99));
	/* DONTNEED on a shared map keeps the data in the object. */
	ASSERT_EQ(0x5a ^ 5, ((unsigned char *)ipcx_region_addr(r))[5]);

	/* Shrink from the back: the last 2.5 pages go, 2 whole pages unmapped. */
	base = ipcx_region_addr(r);
	ASSERT_EQ(0, ipcx_region_shrink(r, 2 * 4096 + 2048, false));
	ASSERT_EQ(base, ipcx_region_addr(r));
	ASSERT_EQ(5 * 4096 + 2048, ipcx_region_size(r));
	ASSERT_EQ(0, msync(base + 5 * 4096, 4096, MS_ASYNC));	/* partial page stays */
	ASSERT_EQ(-1, msync(base + 6 * 4096, 4096, MS_ASYNC));
	ASSERT_EQ(ENOMEM, errno);
	/* From the front: 4096 + 100 bytes; the first page goes. */
	ASSERT_EQ(0, ipcx_region_shrink(r, 4096 + 100, true));
	ASSERT_EQ(base + 4096 + 100, ipcx_region_addr(r));
	ASSERT_EQ(4 * 4096 + 2048 - 100, ipcx_region_size(r));
	ASSERT_EQ(((4096 + 100) & 0xff) ^ 0x5a, ((unsigned char *)ipcx_region_addr(r))[0]);
	ASSERT_EQ(-1, msync(base, 4096, MS_ASYNC));
	ASSERT_EQ(-EINVAL, ipcx_region_shrink(r, ipcx_region_size(r), true));
	ASSERT_EQ(-EINVAL, ipcx_region_shrink(r, 0, true));
	ASSERT_EQ(0, ipcx_region_flush(r, 0, 0, false));
	ASSERT_EQ(-EINVAL, ipcx_region_flush(r, 1, ipcx_region_size(r), true));
	ASSERT_EQ(0, ipcx_region_unmap(r));
	ipcx_shm_close(s);
	ASSERT_EQ(0, ipcx_region_unmap(NULL));
	ASSERT_GE(ipcx_page_size(), 4096);
}

TEST_F(dir, reservation_grows_in_place)
{
	IPCX_OPTS(ipcx_region_opts, o);
	struct ipcx_reserve *res;
	struct ipcx_region *r, *r2;
	struct ipcx_shm *s;
	char *base;
	int err;

	ASSERT_EQ(0, ipcx_reserve_new(&res, 64 * MB, 2 * MB));
	base = ipcx_reserve_addr(res);
	ASSERT_EQ(0, (uintptr_t)base % (2 * MB));
	ASSERT_EQ(64 * MB, ipcx_reserve_size(res));
	s = open_shm(self->path, "grow", IPCX_CREATE_ONLY, MB, &err);
	ASSERT_EQ(0, err);
	o.reserve = res;
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
	ASSERT_EQ(base, ipcx_region_addr(r));
	ASSERT_EQ(-EBUSY, ipcx_region_map(&r2, ipcx_shm_fd(s), &o));	/* one user */
	base[MB - 1] = 7;
	/* The object must grow first. */
	ASSERT_EQ(-EINVAL, ipcx_region_grow(r, ipcx_shm_fd(s), 4 * MB));
	ASSERT_EQ(0, ipcx_shm_truncate(s, 4 * MB));
	ASSERT_EQ(0, ipcx_region_grow(r, ipcx_shm_fd(s), 4 * MB));
	ASSERT_EQ(base, ipcx_region_addr(r));
	ASSERT_EQ(4 * MB, ipcx_region_size(r));
	base[4 * MB - 1] = 9;
	ASSERT_EQ(7, base[MB - 1]);
	ASSERT_EQ(0, ipcx_shm_truncate(s, 80 * MB));
	ASSERT_EQ(-ENOSPC, ipcx_region_grow(r, ipcx_shm_fd(s), 80 * MB));
	ASSERT_EQ(-EINVAL, ipcx_region_grow(r, ipcx_shm_fd(s), MB));	/* smaller */
	ASSERT_EQ(0, ipcx_region_grow(r, ipcx_shm_fd(s), 64 * MB));
	base[64 * MB - 1] = 1;
	ASSERT_EQ(0, ipcx_region_unmap(r));
	/* The range is reserved again, not given away. */
	{
		void *p = mmap(base, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
			       MAP_FIXED_NOREPLACE, -1, 0);

		ASSERT_EQ(MAP_FAILED, p);
		ASSERT_EQ(EEXIST, errno);
	}
	o.size = 4 * MB;
	ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &o));
	ASSERT_EQ(9, base[4 * MB - 1]);
	ASSERT_EQ(0, ipcx_region_unmap(r));
	ASSERT_EQ(0, ipcx_reserve_free(res));

	/* Without a reservation, growing needs the next range free. */
	ASSERT_EQ(0, ipcx_shm_truncate(s, 3 * 4096));
	{
		IPCX_OPTS(ipcx_region_opts, small, .size = 4096);
		IPCX_OPTS(ipcx_region_opts, fixed, .offset = 0, .size = 4096);

		ASSERT_EQ(0, ipcx_region_map(&r, ipcx_shm_fd(s), &small));
		fixed.addr = (char *)ipcx_region_addr(r) + 4096;
		err = ipcx_region_map(&r2, ipcx_shm_fd(s), &fixed);
		if (err == 0) {
			ASSERT_EQ(-EBUSY, ipcx_region_grow(r, ipcx_shm_fd(s), 2 * 4096));
			ipcx_region_unmap(r2);
			ASSERT_EQ(0, ipcx_region_grow(r, ipcx_shm_fd(s), 2 * 4096));
		} else {
			ASSERT_EQ(-EBUSY, err);	/* something else already lives there */
		}
		ASSERT_EQ(-EBADF, ipcx_region_grow(r, -1, 2 * 4096));
		ipcx_region_unmap(r);
	}
	ipcx_shm_close(s);
	ASSERT_EQ(-EINVAL, ipcx_reserve_new(&res, 0, 0));
	ASSERT_EQ(-EINVAL, ipcx_reserve_new(&res, 4096, 3000));
}

TEST(anonymous_shared_across_fork)
{
	struct ipcx_region *r;
	volatile int *p;
	pid_t pid;
	int fds = t_count_fds();

	ASSERT_EQ(0, ipcx_region_map_anon(&r, 3 * MB, NULL));
	ASSERT_EQ(3 * MB, ipcx_region_size(r));
	p = ipcx_region_addr(r);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		p[0] = 42;
		p[3 * MB / sizeof(int) - 1] = 43;
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(42, p[0]);
	ASSERT_EQ(43, p[3 * MB / sizeof(int) - 1]);
	ASSERT_EQ(0, ipcx_region_unmap(r));
	{
		IPCX_OPTS(ipcx_region_opts, o, .huge = IPCX_HUGE_PREFER,
			  .flags = IPCX_MAP_PREFAULT);

		/* Prefer never fails for lack of hugepages. */
		ASSERT_EQ(0, ipcx_region_map_anon(&r, 4 * MB, &o));
		ASSERT_GE(ipcx_region_page_size(r), 4096);
		((char *)ipcx_region_addr(r))[4 * MB - 1] = 1;
		ASSERT_EQ(0, ipcx_region_unmap(r));
		o.flags = IPCX_COPY_ON_WRITE;
		ASSERT_EQ(-EINVAL, ipcx_region_map_anon(&r, 4096, &o));
	}
	ASSERT_EQ(-EINVAL, ipcx_region_map_anon(&r, 0, NULL));
	ASSERT_EQ(fds, t_count_fds());
}

/*
 * Transparent huge pages on shmem: on a tmpfs mounted huge=always (in a
 * private mount namespace), "prefer" aligns the mapping for 2 MiB pages
 * and the kernel maps them with PMDs.
 */
static int thp_child(void)
{
	IPCX_OPTS(ipcx_region_opts, ro, .huge = IPCX_HUGE_PREFER, .flags = IPCX_MAP_PREFAULT);
	char dir[] = "/tmp/ipcx-thp.XXXXXX";
	struct ipcx_region *r;
	struct ipcx_shm *s;
	uint64_t huge = 0;
	int err, ret;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 77;
	if (!mkdtemp(dir))
		return 77;
	if (mount("ipcx-thp", dir, "tmpfs", 0, "size=16m,huge=always,mode=0700")) {
		rmdir(dir);
		return 78;
	}
	ret = 10;
	s = open_shm(dir, "t", IPCX_CREATE_ONLY, 8 * MB, &err);
	if (err)
		goto out;
	ret = 11;
	if (ipcx_region_map(&r, ipcx_shm_fd(s), &ro))
		goto out;
	ret = 12;
	if (ipcx_region_page_size(r) != 2 * MB || (uintptr_t)ipcx_region_addr(r) % (2 * MB))
		goto out;
	memset(ipcx_region_addr(r), 3, 8 * MB);
	ret = 13;
	if (ipcx_region_huge_bytes(r, &huge) || huge < 2 * MB)
		goto out;
	ipcx_region_unmap(r);
	ipcx_shm_close(s);
	ret = 0;
out:
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	return ret;
}

TEST(thp_on_huge_tmpfs)
{
	char buf[128] = "";
	int st, fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled", O_RDONLY);
	pid_t pid;

	if (fd >= 0) {
		st = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (!buf[0] || strstr(buf, "[deny]"))
		SKIP(return, "shmem THP is not available (shmem_enabled)");
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(thp_child());
	st = t_wait(pid);
	if (st == 77)
		SKIP(return, "needs root to mount a tmpfs in a private mount namespace");
	if (st == 78)
		SKIP(return, "this kernel's tmpfs has no huge= option");
	ASSERT_EQ(0, st);
}

TEST(named_kind_from_file_name)
{
	const char *name = NULL;

	ASSERT_EQ(IPCX_KIND_SHM, ipcx_named_kind("ipcx.shm.orders", &name));
	ASSERT_STREQ("orders", name);
	ASSERT_EQ(IPCX_KIND_MQ, ipcx_named_kind("ipcx.mq.q", NULL));
	ASSERT_EQ(IPCX_KIND_RMUTEX, ipcx_named_kind("ipcx.rmtx.r", NULL));
	ASSERT_EQ(-ENOENT, ipcx_named_kind("ipcx.shm.", NULL));
	ASSERT_EQ(-ENOENT, ipcx_named_kind("ipcx.zzz.a", NULL));
	ASSERT_EQ(-ENOENT, ipcx_named_kind("other", NULL));
	ASSERT_EQ(-EINVAL, ipcx_named_kind(NULL, NULL));
	ASSERT_STREQ("shm", ipcx_kind_name(IPCX_KIND_SHM));
	ASSERT_STREQ("?", ipcx_kind_name(0));
	ASSERT_STREQ("?", ipcx_kind_name(IPCX_KIND_MAX));
	ASSERT_NE(NULL, ipcx_shm_dir());
}

/* THP without a huge tmpfs: MADV_COLLAPSE after the prefault (6.1+). */
TEST(thp_collapse_on_request)
{
	IPCX_OPTS(ipcx_memfd_opts, mo, .size = 8 * MB);
	IPCX_OPTS(ipcx_region_opts, ro, .huge = IPCX_HUGE_PREFER,
		  .flags = IPCX_MAP_PREFAULT | IPCX_MAP_COLLAPSE);
	struct ipcx_region *r;
	uint64_t huge = 0;
	int fd;

	if (!(ipcx_features() & IPCX_FEAT_MADV_COLLAPSE))
		SKIP(return, "no MADV_COLLAPSE on this kernel");
	fd = ipcx_memfd_new(&mo);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ipcx_region_map(&r, fd, &ro));
	close(fd);
	ASSERT_EQ(0, (uintptr_t)ipcx_region_addr(r) % (2 * MB));
	ASSERT_EQ(0, ipcx_region_huge_bytes(r, &huge));
	ASSERT_GE(huge, 2 * MB);
	ASSERT_EQ(0, ipcx_region_unmap(r));
}

TEST_HARNESS_MAIN
