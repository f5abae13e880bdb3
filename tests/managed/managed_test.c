// SPDX-License-Identifier: MIT
/*
 * managed_test - managed segments (lib/managed): open modes and header
 * checks, named/unique/anonymous objects, init rollback, find-or-construct
 * across processes, churn, atomic functions, growth (offline and online),
 * read-only and copy-on-write opens, relocation of a heap segment, memfd
 * sharing, handles, and SIGKILL during named operations.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx/managed.h>

#define MB (1ull << 20)

FIXTURE(seg) {
	char dir[64];
	struct ipcx_managed *s;
	char name[64];
};

FIXTURE_SETUP(seg)
{
	IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_CREATE_ONLY, .size = 4 * MB,
		  .max_size = 64 * MB);

	strcpy(self->dir, "/dev/shm/ipcx-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->name, sizeof(self->name), "seg-%d", getpid());
	o.dir = self->dir;
	ASSERT_EQ(0, ipcx_managed_open(self->name, &o, &self->s));
}

FIXTURE_TEARDOWN(seg)
{
	char cmd[128];

	ipcx_managed_close(self->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cleanup of %s failed", self->dir);
}

static int open_seg(const char *dir, const char *name, unsigned int mode, uint64_t size,
		    struct ipcx_managed **s)
{
	IPCX_OPTS(ipcx_managed_opts, o, .mode = mode, .size = size, .dir = dir);

	return ipcx_managed_open(name, &o, s);
}

static int check(struct ipcx_managed *s, struct ipcx_managed_report *r)
{
	memset(r, 0, sizeof(*r));
	r->sz = sizeof(*r);
	return ipcx_managed_check(s, r);
}

static struct ipcx_obj_spec spec_of(uint64_t tag, size_t elem, size_t count)
{
	struct ipcx_obj_spec s = { .sz = sizeof(s), .type_tag = tag, .elem_size = elem,
				   .count = count };

	return s;
}

TEST_F(seg, open_modes_and_header_check)
{
	struct ipcx_managed *t = NULL;
	char path[256];
	uint32_t junk = 0xdeadbeef;
	int fd;

	ASSERT_EQ(-EEXIST, open_seg(self->dir, self->name, IPCX_CREATE_ONLY, MB, &t));
	ASSERT_EQ(-ENOENT, open_seg(self->dir, "nope", IPCX_OPEN_ONLY, 0, &t));
	ASSERT_EQ(-EINVAL, open_seg(self->dir, "bad/name", IPCX_OPEN_OR_CREATE, MB, &t));
	ASSERT_EQ(-EINVAL, open_seg(self->dir, "nosize", IPCX_CREATE_ONLY, 0, &t));
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_OR_CREATE, MB, &t));
	ASSERT_EQ(4 * MB, ipcx_managed_size(t));
	ipcx_managed_close(t);
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t));
	ipcx_managed_close(t);
	/* A segment with a foreign magic is refused. */
	ASSERT_EQ(0, open_seg(self->dir, "other", IPCX_CREATE_ONLY, MB, &t));
	ipcx_managed_close(t);
	snprintf(path, sizeof(path), "%s/ipcx.seg.other", self->dir);
	fd = open(path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(4, pwrite(fd, &junk, 4, 0));
	ASSERT_EQ(-EPROTO, open_seg(self->dir, "other", IPCX_OPEN_ONLY, 0, &t));
	/* A valid common header over a wrong segment header: still refused. */
	junk = 0x58435049;
	ASSERT_EQ(4, pwrite(fd, &junk, 4, 0));
	ASSERT_EQ(0, open_seg(self->dir, "other", IPCX_OPEN_ONLY, 0, &t));
	ipcx_managed_close(t);
	ASSERT_EQ(8, pwrite(fd, "garbage!", 8, 80));	/* max_size < size */
	ASSERT_EQ(-EPROTO, open_seg(self->dir, "other", IPCX_OPEN_ONLY, 0, &t));
	close(fd);
	ASSERT_EQ(0, ipcx_managed_unlink("other", self->dir));
	ASSERT_EQ(-ENOENT, ipcx_managed_unlink("other", self->dir));
}

static int collect(const struct ipcx_obj_info *info, void *arg)
{
	char *seen = arg;
	int i;

	if (sscanf(info->name, "obj%d", &i) != 1 || i < 0 || i >= 200)
		return -1;
	seen[i]++;
	return 0;
}

TEST_F(seg, named_lifecycle)
{
	struct ipcx_obj_spec sp = spec_of(42, sizeof(uint64_t), 1);
	struct ipcx_managed_report r;
	struct ipcx_obj_info info;
	char seen[200] = { 0 }, name[32];
	uint64_t *a, *b;
	void *p;
	size_t n;
	bool created;
	int i;

	ASSERT_EQ(0, ipcx_managed_construct(self->s, "counter", &sp, (void **)&a));
	ASSERT_EQ(0, *a);
	*a = 7;
	ASSERT_EQ(-EEXIST, ipcx_managed_construct(self->s, "counter", &sp, &p));
	ASSERT_EQ(0, ipcx_managed_find(self->s, "counter", 42, (void **)&b, &n));
	ASSERT_EQ(a, b);
	ASSERT_EQ(1, n);
	ASSERT_EQ(-EPROTOTYPE, ipcx_managed_find(self->s, "counter", 43, &p, &n));
	ASSERT_EQ(0, ipcx_managed_find(self->s, "counter", IPCX_TYPE_ANY, &p, NULL));
	ASSERT_EQ(0, ipcx_managed_find_or_construct(self->s, "counter", &sp, &p, &created));
	ASSERT_EQ(a, p);
	ASSERT_FALSE(created);
	ASSERT_EQ(0, ipcx_managed_obj_info(self->s, a, &info));
	ASSERT_EQ(IPCX_OBJ_NAMED, info.kind);
	ASSERT_STREQ("counter", info.name);
	ASSERT_EQ(1, info.count);
	ASSERT_EQ(42, info.type_tag);
	ASSERT_EQ(-EINVAL, ipcx_managed_obj_info(self->s, (char *)a + 16, &info));
	ASSERT_EQ(-EPROTOTYPE, ipcx_managed_destroy(self->s, "counter", 1, NULL, NULL));
	ASSERT_EQ(0, ipcx_managed_destroy(self->s, "counter", 42, NULL, NULL));
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "counter", 42, &p, &n));
	ASSERT_EQ(-ENOENT, ipcx_managed_destroy(self->s, "counter", 42, NULL, NULL));

	/* Arrays. */
	sp = spec_of(7, 24, 1000);
	ASSERT_EQ(0, ipcx_managed_construct(self->s, "array", &sp, &p));
	ASSERT_EQ(0, ipcx_managed_find(self->s, "array", 7, NULL, &n));
	ASSERT_EQ(1000, n);
	memset(p, 1, 24000);
	ASSERT_EQ(0, ipcx_managed_destroy_ptr(self->s, p, NULL, NULL));
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "array", 7, NULL, &n));

	/* Unique instances: one per type tag. */
	sp = spec_of(1001, 64, 1);
	ASSERT_EQ(0, ipcx_managed_construct_unique(self->s, &sp, (void **)&a));
	ASSERT_EQ(-EEXIST, ipcx_managed_construct_unique(self->s, &sp, &p));
	ASSERT_EQ(0, ipcx_managed_find_unique(self->s, 1001, &p, &n));
	ASSERT_EQ(a, p);
	ASSERT_EQ(-ENOENT, ipcx_managed_find_unique(self->s, 1002, &p, &n));
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "", 1001, &p, &n) == -EINVAL ? -ENOENT : 0);
	ASSERT_EQ(0, ipcx_managed_obj_info(self->s, a, &info));
	ASSERT_EQ(IPCX_OBJ_UNIQUE, info.kind);
	ASSERT_EQ(1, ipcx_managed_count(self->s, IPCX_OBJ_UNIQUE));

	/* Anonymous instances. */
	sp = spec_of(5, 100, 3);
	ASSERT_EQ(0, ipcx_managed_construct_anon(self->s, &sp, &p));
	ASSERT_EQ(0, ipcx_managed_obj_info(self->s, p, &info));
	ASSERT_EQ(IPCX_OBJ_ANON, info.kind);
	ASSERT_EQ(3, info.count);
	ASSERT_EQ(1, ipcx_managed_count(self->s, IPCX_OBJ_ANON));
	ASSERT_EQ(0, ipcx_managed_destroy_ptr(self->s, p, NULL, NULL));
	ASSERT_EQ(-EINVAL, ipcx_managed_destroy_ptr(self->s, p, NULL, NULL));
	ASSERT_EQ(0, ipcx_managed_count(self->s, IPCX_OBJ_ANON));

	/* Iteration lists exactly the live ones. */
	sp = spec_of(9, 8, 1);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "obj%d", i);
		ASSERT_EQ(0, ipcx_managed_construct(self->s, name, &sp, &p));
	}
	for (i = 0; i < 200; i += 2) {
		snprintf(name, sizeof(name), "obj%d", i);
		ASSERT_EQ(0, ipcx_managed_destroy(self->s, name, 9, NULL, NULL));
	}
	ASSERT_EQ(100, ipcx_managed_count(self->s, IPCX_OBJ_NAMED));
	ASSERT_EQ(0, ipcx_managed_foreach(self->s, IPCX_OBJ_NAMED, collect, seen));
	for (i = 0; i < 200; i++)
		ASSERT_EQ(i % 2, seen[i]);
	ASSERT_EQ(0, ipcx_managed_destroy_unique(self->s, 1001, NULL, NULL));
	ASSERT_EQ(0, check(self->s, &r));
	ASSERT_EQ(100, r.named);
	ASSERT_EQ(0, r.unique);
}

struct init_log {
	int fail_at;
	int inits, finis;
	int order_ok;
	int last_fini;
};

static int init_elem(void *elem, size_t idx, void *arg)
{
	struct init_log *l = arg;

	if ((int)idx == l->fail_at)
		return -ENOTSUP;
	*(uint32_t *)elem = 0xabc0000 + (uint32_t)idx;
	l->inits++;
	return 0;
}

static void fini_elem(void *elem, size_t idx, void *arg)
{
	struct init_log *l = arg;

	if (*(uint32_t *)elem != 0xabc0000 + (uint32_t)idx || (int)idx != l->last_fini - 1)
		l->order_ok = 0;
	l->last_fini = (int)idx;
	l->finis++;
}

TEST_F(seg, init_rollback)
{
	struct init_log l = { .fail_at = 5, .order_ok = 1, .last_fini = 5 };
	struct ipcx_obj_spec sp = spec_of(1, 4, 10);
	struct ipcx_managed_report r;
	uint64_t free0;
	uint32_t *p;
	int i;

	sp.init = init_elem;
	sp.fini = fini_elem;
	sp.arg = &l;
	ASSERT_EQ(0, ipcx_managed_reserve(self->s, 16));
	free0 = ipcx_mem_free_memory(ipcx_managed_mem(self->s));
	ASSERT_EQ(-ENOTSUP, ipcx_managed_construct(self->s, "x", &sp, (void **)&p));
	ASSERT_EQ(5, l.inits);
	ASSERT_EQ(5, l.finis);
	ASSERT_TRUE(l.order_ok);
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "x", 1, NULL, NULL));
	ASSERT_EQ(free0, ipcx_mem_free_memory(ipcx_managed_mem(self->s)));
	/* Succeeds once nothing fails; destroy finalises every element. */
	l = (struct init_log){ .fail_at = -1, .order_ok = 1, .last_fini = 10 };
	ASSERT_EQ(0, ipcx_managed_construct(self->s, "x", &sp, (void **)&p));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0xabc0000 + i, p[i]);
	ASSERT_EQ(0, ipcx_managed_destroy(self->s, "x", 1, fini_elem, &l));
	ASSERT_EQ(10, l.finis);
	ASSERT_TRUE(l.order_ok);
	ASSERT_EQ(free0, ipcx_mem_free_memory(ipcx_managed_mem(self->s)));
	ASSERT_EQ(0, check(self->s, &r));
}

static int *g_inits;

static int count_init(void *elem, size_t idx, void *arg)
{
	__atomic_fetch_add(g_inits, 1, __ATOMIC_SEQ_CST);
	usleep(20000);	/* widen the window for a racing constructor */
	*(uint64_t *)elem = 77;
	return 0;
}

TEST_F(seg, find_or_construct_once_across_processes)
{
	struct ipcx_managed_report r;
	uint64_t *offs = t_shared(4096);
	pid_t pid[4];
	int i;

	g_inits = t_shared(4096);
	ASSERT_NE(NULL, g_inits);
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (!pid[i]) {
			struct ipcx_managed *t;
			struct ipcx_obj_spec sp = spec_of(3, 8, 1);
			void *p;
			bool created;

			sp.init = count_init;
			if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t))
				_exit(1);
			if (ipcx_managed_find_or_construct(t, "once", &sp, &p, &created))
				_exit(2);
			if (*(uint64_t *)p != 77)
				_exit(3);
			offs[i] = (uint64_t)((char *)p - (char *)ipcx_managed_base(t));
			ipcx_managed_close(t);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, t_wait(pid[i]));
	ASSERT_EQ(1, *g_inits);
	for (i = 1; i < 4; i++)
		ASSERT_EQ(offs[0], offs[i]);
	ASSERT_EQ(0, check(self->s, &r));
}

TEST_F(seg, four_processes_churn_one_name)
{
	struct ipcx_managed_report r;
	uint64_t free0;
	pid_t pid[4];
	int i;

	ASSERT_EQ(0, ipcx_managed_reserve(self->s, 8));
	free0 = ipcx_mem_free_memory(ipcx_managed_mem(self->s));
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (!pid[i]) {
			struct ipcx_managed *t;
			struct ipcx_obj_spec sp = spec_of(11, 16 + (size_t)i * 300, 1);
			void *p;
			int k, ret;

			if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t))
				_exit(1);
			for (k = 0; k < 5000; k++) {
				ret = ipcx_managed_construct(t, "hot", &sp, &p);
				if (ret == -EEXIST)
					ret = ipcx_managed_destroy(t, "hot", 11, NULL, NULL);
				if (ret && ret != -ENOENT)
					_exit(2);
			}
			ipcx_managed_close(t);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, t_wait(pid[i]));
	ipcx_managed_destroy(self->s, "hot", 11, NULL, NULL);
	ASSERT_EQ(0, check(self->s, &r));
	ASSERT_EQ(0, r.named);
	ASSERT_EQ(0, r.mem.leaked);
	ipcx_mem_trim(ipcx_managed_mem(self->s));
	ASSERT_EQ(free0, ipcx_mem_free_memory(ipcx_managed_mem(self->s)));
}

struct pair {
	volatile uint64_t a, b;
	volatile uint64_t bad, stop;
};

static struct pair *g_pair;

static void bump_pair(void *arg)
{
	g_pair->a++;
	usleep(100);
	g_pair->b++;
}

static void read_pair(void *arg)
{
	if (g_pair->a != g_pair->b)
		g_pair->bad++;
}

static volatile int *g_holding;

/* Say "holding" only once inside the lock, then keep it 300 ms. */
static void hold_lock(void *arg)
{
	*g_holding = 1;
	usleep(300000);
}

static int wait_holding(void)
{
	uint64_t end = t_now_ns() + 10000000000ull;

	while (!*g_holding && t_now_ns() < end)
		usleep(1000);
	return *g_holding;
}

TEST_F(seg, atomic_function_all_or_nothing)
{
	struct ipcx_obj_spec sp = spec_of(21, sizeof(struct pair), 1);
	struct pair *pr;
	uint64_t end;
	pid_t pid;
	int i;

	ASSERT_EQ(0, ipcx_managed_construct(self->s, "pair", &sp, (void **)&pr));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ipcx_managed *t;

		if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t) ||
		    ipcx_managed_find(t, "pair", 21, (void **)&g_pair, NULL))
			_exit(1);
		while (!g_pair->stop)
			if (ipcx_managed_atomic(t, bump_pair, NULL))
				_exit(2);
		_exit(0);
	}
	g_pair = pr;
	end = t_now_ns() + 10000000000ull;
	for (i = 0; (i < 3000 || pr->a < 200) && t_now_ns() < end; i++)
		ASSERT_EQ(0, ipcx_managed_atomic(self->s, read_pair, NULL));
	pr->stop = 1;
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, pr->bad);
	ASSERT_GT(pr->a, 0);
	ASSERT_EQ(pr->a, pr->b);

	/* try variant: busy while another process holds the segment lock. */
	g_holding = t_shared(4096);
	ASSERT_NE(NULL, g_holding);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ipcx_managed *t;

		if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t))
			_exit(1);
		_exit(ipcx_managed_atomic(t, hold_lock, NULL) ? 2 : 0);
	}
	ASSERT_TRUE(wait_holding());
	ASSERT_EQ(-EAGAIN, ipcx_managed_try_atomic(self->s, read_pair, NULL));
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_managed_try_atomic(self->s, read_pair, NULL));
}

TEST_F(seg, offline_growth_and_shrink)
{
	struct ipcx_obj_spec sp = spec_of(1, 1, 100000);
	struct ipcx_managed_report r;
	struct ipcx_managed *t;
	unsigned char *p;
	size_t n;
	int64_t ns;
	int i;

	ASSERT_EQ(0, ipcx_managed_construct(self->s, "data", &sp, (void **)&p));
	for (i = 0; i < 100000; i++)
		p[i] = (unsigned char)i;
	ipcx_managed_close(self->s);
	self->s = NULL;
	ASSERT_EQ(0, ipcx_managed_grow_offline(self->name, self->dir, 100 * MB));
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t));
	ASSERT_EQ(104 * MB, ipcx_managed_size(t));
	ASSERT_EQ(0, ipcx_managed_find(t, "data", 1, (void **)&p, &n));
	for (i = 0; i < 100000; i++)
		ASSERT_EQ((unsigned char)i, p[i]);
	p = ipcx_managed_alloc(t, 80 * MB);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, ipcx_managed_free(t, p));
	ASSERT_EQ(0, check(t, &r));
	ipcx_managed_close(t);
	ns = ipcx_managed_shrink_to_fit(self->name, self->dir);
	ASSERT_GT(ns, 0);
	ASSERT_LT(ns, 2 * MB);
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t));
	ASSERT_EQ((uint64_t)ns, ipcx_managed_size(t));
	ASSERT_EQ(0, ipcx_managed_find(t, "data", 1, (void **)&p, &n));
	for (i = 0; i < 100000; i++)
		ASSERT_EQ((unsigned char)i, p[i]);
	ASSERT_EQ(0, check(t, &r));
	self->s = t;
}

TEST_F(seg, online_growth)
{
	struct ipcx_obj_spec sp = spec_of(2, 1, 8 * MB);
	struct ipcx_managed_report r;
	int go[2], done[2];
	unsigned char *p;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ipcx_managed *t;
		unsigned char *q;
		void *base;
		size_t n, i;

		if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t))
			_exit(1);
		base = ipcx_managed_base(t);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		/* The parent grew the segment: use it with no call of our own. */
		if (ipcx_managed_find(t, "big", 2, (void **)&q, &n) || n != 8 * MB)
			_exit(3);
		for (i = 0; i < n; i += 4096)
			if (q[i] != (unsigned char)(i >> 12))
				_exit(4);
		if (ipcx_managed_size(t) != 32 * MB || ipcx_managed_base(t) != base)
			_exit(5);
		q = ipcx_managed_alloc(t, 6 * MB);
		if (!q)
			_exit(6);
		memset(q, 1, 6 * MB);
		ipcx_managed_free(t, q);
		ipcx_managed_close(t);
		_exit(0);
	}
	ASSERT_EQ(-ENOMEM, ipcx_managed_construct(self->s, "big", &sp, (void **)&p));
	ASSERT_EQ(-ENOSPC, ipcx_managed_grow(self->s, 128 * MB));
	ASSERT_EQ(0, ipcx_managed_grow(self->s, 32 * MB));
	ASSERT_EQ(0, ipcx_managed_construct(self->s, "big", &sp, (void **)&p));
	for (size_t i = 0; i < 8 * MB; i += 4096)
		p[i] = (unsigned char)(i >> 12);
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, check(self->s, &r));
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

static uint64_t file_sum(const char *path)
{
	unsigned char buf[65536];
	uint64_t h = 1469598103934665603ull;
	ssize_t n, i;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ull;
	close(fd);
	return h;
}

TEST_F(seg, read_only_and_copy_on_write)
{
	struct ipcx_obj_spec sp = spec_of(4, 8, 4);
	struct ipcx_managed_report r;
	struct ipcx_managed *ro, *cow;
	char path[256];
	uint64_t *p, *q, sum;
	size_t n;

	ASSERT_EQ(0, ipcx_managed_construct(self->s, "v", &sp, (void **)&p));
	p[3] = 99;
	snprintf(path, sizeof(path), "%s/ipcx.seg.%s", self->dir, self->name);
	sum = file_sum(path);
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY | IPCX_READ_ONLY, 0, &ro));
	ASSERT_EQ(0, ipcx_managed_find(ro, "v", 4, (void **)&q, &n));
	ASSERT_EQ(99, q[3]);
	ASSERT_EQ(4, n);
	ASSERT_EQ(-ENOENT, ipcx_managed_find(ro, "w", 4, (void **)&q, &n));
	ASSERT_EQ(-EROFS, ipcx_managed_construct(ro, "w", &sp, (void **)&q));
	ASSERT_EQ(-EROFS, ipcx_managed_destroy(ro, "v", 4, NULL, NULL));
	ASSERT_EQ(NULL, ipcx_managed_alloc(ro, 10));
	ASSERT_EQ(-EROFS, ipcx_managed_grow(ro, 8 * MB));
	ASSERT_EQ(0, check(ro, &r));
	ipcx_managed_close(ro);
	ASSERT_EQ(sum, file_sum(path));

	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY | IPCX_COPY_ON_WRITE, 0, &cow));
	ASSERT_EQ(0, ipcx_managed_construct(cow, "private", &sp, (void **)&q));
	ASSERT_EQ(0, ipcx_managed_find(cow, "v", 4, (void **)&q, &n));
	q[3] = 1000;
	ASSERT_EQ(0, check(cow, &r));
	ASSERT_EQ(-EOPNOTSUPP, ipcx_managed_grow(cow, 8 * MB));
	ipcx_managed_close(cow);
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "private", 4, NULL, NULL));
	ASSERT_EQ(99, p[3]);
	ASSERT_EQ(sum, file_sum(path));
}

/* A copy-on-write view opened while another process holds the segment lock. */
TEST_F(seg, copy_on_write_while_locked_elsewhere)
{
	struct ipcx_obj_spec sp = spec_of(4, 8, 1);
	struct ipcx_managed *cow;
	void *p;
	pid_t pid;

	g_holding = t_shared(4096);
	ASSERT_NE(NULL, g_holding);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ipcx_managed *t;

		if (open_seg(self->dir, self->name, IPCX_OPEN_ONLY, 0, &t))
			_exit(1);
		_exit(ipcx_managed_atomic(t, hold_lock, NULL) ? 2 : 0);	/* 300 ms */
	}
	ASSERT_TRUE(wait_holding());
	ASSERT_EQ(-EAGAIN, ipcx_managed_try_atomic(self->s, read_pair, NULL));
	ASSERT_EQ(0, open_seg(self->dir, self->name, IPCX_OPEN_ONLY | IPCX_COPY_ON_WRITE, 0, &cow));
	/* Would hang on the copied lock without the reset. */
	ASSERT_EQ(0, ipcx_managed_construct(cow, "mine", &sp, &p));
	ASSERT_EQ(0, ipcx_managed_check(cow, NULL));
	ipcx_managed_close(cow);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(-ENOENT, ipcx_managed_find(self->s, "mine", 4, NULL, NULL));
}

struct node {
	struct ipcx_offptr next;
	uint64_t v;
};

TEST(heap_segment_relocates)
{
	IPCX_OPTS(ipcx_managed_opts, o, .size = 2 * MB, .max_size = 4 * MB);
	struct ipcx_obj_spec sp = spec_of(8, sizeof(struct node), 1);
	struct ipcx_managed_report r;
	struct ipcx_managed *h, *b;
	struct node *head, *nd, *prev = NULL;
	uint64_t sum = 0;
	void *copy = NULL;
	size_t sz;
	int i;

	ASSERT_EQ(0, ipcx_managed_create_heap(&o, &h));
	ASSERT_EQ(0, ipcx_managed_construct(h, "list", &sp, (void **)&head));
	prev = head;
	for (i = 1; i <= 100; i++) {
		nd = ipcx_managed_alloc(h, sizeof(*nd));
		ASSERT_NE(NULL, nd);
		nd->v = (uint64_t)i;
		ipcx_offptr_set(&nd->next, NULL);
		ipcx_offptr_set(&prev->next, nd);
		prev = nd;
	}
	ASSERT_EQ(0, ipcx_managed_grow(h, 3 * MB));
	sz = ipcx_managed_size(h);
	copy = aligned_alloc(4096, sz);
	ASSERT_NE(NULL, copy);
	memcpy(copy, ipcx_managed_base(h), sz);
	ipcx_managed_close(h);

	ASSERT_EQ(-EPROTO, ipcx_managed_open_buffer(copy, sz / 4, IPCX_OPEN_ONLY, &b));
	ASSERT_EQ(0, ipcx_managed_open_buffer(copy, sz, IPCX_OPEN_ONLY, &b));
	ASSERT_EQ(0, ipcx_managed_find(b, "list", 8, (void **)&head, NULL));
	ASSERT_TRUE(ipcx_managed_belongs(b, head));
	for (nd = IPCX_OFFPTR_GET(&head->next, struct node); nd;
	     nd = IPCX_OFFPTR_GET(&nd->next, struct node)) {
		ASSERT_TRUE(ipcx_managed_belongs(b, nd));
		sum += nd->v;
	}
	ASSERT_EQ(5050, sum);
	ASSERT_EQ(0, ipcx_managed_construct(b, "more", &sp, (void **)&nd));
	ASSERT_EQ(-EOPNOTSUPP, ipcx_managed_grow(b, sz * 2));
	ASSERT_EQ(0, check(b, &r));
	ipcx_managed_close(b);
	free(copy);
}

TEST(buffer_segment)
{
	struct ipcx_managed *b;
	void *buf = aligned_alloc(4096, MB), *p;
	struct ipcx_obj_spec sp = spec_of(1, 8, 1);

	ASSERT_NE(NULL, buf);
	memset(buf, 0x5a, MB);
	ASSERT_EQ(-EPROTO, ipcx_managed_open_buffer(buf, MB, IPCX_OPEN_ONLY, &b));
	ASSERT_EQ(-EINVAL, ipcx_managed_open_buffer(buf, 1000, IPCX_CREATE_ONLY, &b));
	ASSERT_EQ(-EINVAL, ipcx_managed_open_buffer((char *)buf + 8, MB / 2, IPCX_CREATE_ONLY, &b));
	ASSERT_EQ(0, ipcx_managed_open_buffer(buf, MB, IPCX_CREATE_ONLY, &b));
	ASSERT_EQ(-EBADF, ipcx_managed_fd(b));
	ASSERT_EQ(0, ipcx_managed_construct(b, "x", &sp, &p));
	ipcx_managed_close(b);
	ASSERT_EQ(0, ipcx_managed_open_buffer(buf, MB, IPCX_OPEN_ONLY | IPCX_READ_ONLY, &b));
	ASSERT_EQ(0, ipcx_managed_find(b, "x", 1, NULL, NULL));
	ipcx_managed_close(b);
	free(buf);
}

TEST(memfd_shared_with_a_child)
{
	IPCX_OPTS(ipcx_managed_opts, o, .size = 2 * MB, .max_size = 8 * MB);
	struct ipcx_obj_spec sp = spec_of(6, 8, 1);
	struct ipcx_managed *m;
	uint64_t *p;
	pid_t pid;
	int fd;

	ASSERT_EQ(0, ipcx_managed_create_memfd(&o, &m));
	fd = ipcx_managed_fd(m);
	ASSERT_GE(fd, 0);
	ASSERT_NE(0, ftruncate(fd, 4096));	/* sealed against shrinking */
	ASSERT_EQ(0, ipcx_managed_construct(m, "x", &sp, (void **)&p));
	*p = 12345;
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct ipcx_managed *t;
		uint64_t *q;

		/* A separate mapping from the inherited fd, as after SCM_RIGHTS. */
		if (ipcx_managed_open_fd(fd, NULL, &t))
			_exit(1);
		if (ipcx_managed_find(t, "x", 6, (void **)&q, NULL) || *q != 12345)
			_exit(2);
		*q = 54321;
		if (ipcx_managed_grow(t, 4 * MB))
			_exit(3);
		ipcx_managed_close(t);
		_exit(0);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(54321, *p);
	ASSERT_EQ(4 * MB, ipcx_managed_size(m));
	ASSERT_NE(NULL, ipcx_managed_alloc(m, 3 * MB));
	ipcx_managed_close(m);
}

TEST(mapped_file)
{
	char dir[] = "/tmp/ipcx-test.XXXXXX", path[96], cmd[128];
	struct ipcx_obj_spec sp = spec_of(3, 8, 1);
	struct ipcx_managed_report r;
	struct ipcx_managed *f, *g;
	uint64_t *p, *q;

	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seg.bin", dir);
	{
		IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_OPEN_ONLY);

		ASSERT_EQ(-ENOENT, ipcx_managed_open_file(path, &o, &f));
	}
	{
		IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_CREATE_ONLY, .size = MB,
			  .max_size = 4 * MB);

		ASSERT_EQ(0, ipcx_managed_open_file(path, &o, &f));
		ASSERT_EQ(-EEXIST, ipcx_managed_open_file(path, &o, &g));
	}
	ASSERT_EQ(0, ipcx_managed_construct(f, "v", &sp, (void **)&p));
	*p = 4242;
	ASSERT_EQ(0, ipcx_managed_grow(f, 2 * MB));
	ipcx_managed_close(f);
	{
		IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_OPEN_OR_CREATE, .size = MB);

		ASSERT_EQ(0, ipcx_managed_open_file(path, &o, &g));
	}
	ASSERT_EQ(2 * MB, ipcx_managed_size(g));
	ASSERT_EQ(0, ipcx_managed_find(g, "v", 3, (void **)&q, NULL));
	ASSERT_EQ(4242, *q);
	ASSERT_EQ(0, check(g, &r));
	ipcx_managed_close(g);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ASSERT_EQ(0, system(cmd));
}

TEST_F(seg, hostile_arguments)
{
	struct ipcx_obj_spec sp = spec_of(1, SIZE_MAX / 2, 3);
	char longname[2000];
	void *p;

	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, "x", &sp, &p));
	sp = spec_of(1, 8, 1);
	sp.align = 48;
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, "x", &sp, &p));
	sp.align = 4 * MB;
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, "x", &sp, &p));
	sp.align = 2 * MB;
	sp.elem_size = 100 * MB;
	ASSERT_EQ(-ENOMEM, ipcx_managed_construct(self->s, "x", &sp, &p));
	sp = spec_of(1, 8, 1);
	sp.sz = 0;
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, "x", &sp, &p));
	sp = spec_of(1, 8, 1);
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, NULL, &sp, &p));
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, "", &sp, &p));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ASSERT_EQ(-EINVAL, ipcx_managed_construct(self->s, longname, &sp, &p));
	ASSERT_EQ(-EINVAL, ipcx_managed_find(NULL, "x", 1, &p, NULL));
	ASSERT_EQ(-EINVAL, ipcx_managed_destroy_ptr(self->s, &sp, NULL, NULL));
	ASSERT_EQ(-EINVAL, ipcx_managed_free(self->s, (char *)ipcx_managed_base(self->s) + 12345));
	ASSERT_EQ(NULL, ipcx_managed_alloc(self->s, SIZE_MAX));
	ASSERT_EQ(NULL, ipcx_managed_alloc_aligned(self->s, 1, (size_t)1 << 63));
	ASSERT_EQ(NULL, ipcx_managed_alloc_aligned(self->s, SIZE_MAX / 2, 4096));
	ASSERT_EQ(-EINVAL, ipcx_managed_open(NULL, NULL, NULL));
	ASSERT_EQ(-EINVAL, ipcx_managed_count(self->s, 0));
	/* Segment still healthy. */
	ASSERT_EQ(0, ipcx_managed_construct(self->s, "ok", &sp, &p));
	ASSERT_EQ(0, ipcx_managed_check(self->s, NULL));
}

/* A newer caller's larger opts: unknown non-zero fields are refused. */
TEST_F(seg, opts_from_a_newer_caller)
{
	struct {
		struct ipcx_managed_opts o;
		uint64_t future;
	} big = { .o = { .sz = sizeof(big), .mode = IPCX_OPEN_ONLY }, .future = 1 };
	struct ipcx_managed *t;

	big.o.dir = self->dir;
	ASSERT_EQ(-E2BIG, ipcx_managed_open(self->name, &big.o, &t));
	big.future = 0;
	ASSERT_EQ(0, ipcx_managed_open(self->name, &big.o, &t));
	ipcx_managed_close(t);
}

TEST_F(seg, terabyte_reservation)
{
	IPCX_OPTS(ipcx_managed_opts, o, .mode = IPCX_CREATE_ONLY, .size = MB,
		  .max_size = 1ull << 40);
	struct ipcx_obj_spec sp = spec_of(1, 100, 1000);
	struct ipcx_managed *t;
	void *p;
	int ret;

	o.dir = self->dir;
	ret = ipcx_managed_open("big", &o, &t);
#if IPCX_TEST_TSAN
	/* TSan maps its shadow over most of the address space: no 1 TiB hole. */
	if (ret == -ENOMEM)
		SKIP(return, "ThreadSanitizer leaves no room for a 1 TiB reservation");
#endif
	ASSERT_EQ(0, ret);
	ASSERT_GE(ipcx_managed_size(t), MB);
	ASSERT_LT(ipcx_managed_size(t), 3 * MB);
	ASSERT_EQ(0, ipcx_managed_construct(t, "a", &sp, &p));
	ASSERT_EQ(0, ipcx_managed_grow(t, 64 * MB));
	ASSERT_NE(NULL, ipcx_managed_alloc(t, 40 * MB));
	ASSERT_NE(NULL, ipcx_managed_alloc(t, 100));
	ASSERT_EQ(0, ipcx_managed_check(t, NULL));
	ipcx_managed_close(t);
}

TEST_F(seg, handles)
{
	struct ipcx_handle h;
	char *p = ipcx_managed_alloc(self->s, 100), local;

	ASSERT_NE(NULL, p);
	ASSERT_TRUE(ipcx_managed_belongs(self->s, p));
	ASSERT_FALSE(ipcx_managed_belongs(self->s, &local));
	h = ipcx_managed_handle(self->s, p);
	ASSERT_FALSE(ipcx_handle_is_null(h));
	ASSERT_EQ(p, ipcx_managed_ptr(self->s, h, 100));
	ASSERT_EQ(NULL, ipcx_managed_ptr(self->s, h, 8 * MB));
	ASSERT_TRUE(ipcx_handle_is_null(ipcx_managed_handle(self->s, &local)));
	ASSERT_EQ(0, ipcx_managed_free(self->s, p));
}

static int named_churn(const char *dir, const char *name, uint64_t seed)
{
	struct ipcx_managed *t;
	struct ipcx_obj_spec sp = spec_of(5, 1, 1);
	void *anon[16] = { 0 };
	char nm[32];
	void *p;
	int ret;

	if (open_seg(dir, name, IPCX_OPEN_ONLY, 0, &t))
		return 1;
	for (;;) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(nm, sizeof(nm), "n%u", (unsigned int)(seed >> 33) % 300);
		sp.elem_size = 1 + (seed >> 40) % 3000;
		switch ((seed >> 20) % 4) {
		case 0:
			ret = ipcx_managed_construct(t, nm, &sp, &p);
			break;
		case 1:
			ret = ipcx_managed_destroy(t, nm, 5, NULL, NULL);
			break;
		case 2:
			ret = ipcx_managed_find_or_construct(t, nm, &sp, &p, NULL);
			break;
		default: {
			unsigned int k = (seed >> 50) % 16;

			if (anon[k]) {
				ret = ipcx_managed_destroy_ptr(t, anon[k], NULL, NULL);
				anon[k] = NULL;
			} else {
				ret = ipcx_managed_construct_anon(t, &sp, &anon[k]);
			}
		}
		}
		if (ret && ret != -EEXIST && ret != -ENOENT && ret != -ENOMEM)
			return 2;
	}
}

TEST_F(seg, kill_torture_named)
{
	struct ipcx_managed_report r;
	struct ipcx_obj_spec sp = spec_of(5, 8, 1);
	uint64_t end = t_now_ns() + 5000000000ull;
	int kills = 0, i;
	void *p;

	while (t_now_ns() < end) {
		pid_t pid[3];

		for (i = 0; i < 3; i++) {
			pid[i] = fork();
			ASSERT_GE(pid[i], 0);
			if (!pid[i])
				_exit(named_churn(self->dir, self->name, t_now_ns() + (uint64_t)i));
		}
		usleep(5000 + (unsigned int)(t_now_ns() % 30000));
		for (i = 0; i < 3; i++) {
			kill(pid[i], SIGKILL);
			ASSERT_EQ(128 + SIGKILL, t_wait(pid[i]));
			kills++;
		}
		ASSERT_EQ(0, check(self->s, &r));
		ASSERT_EQ(0, r.errors);
	}
	TH_LOG("%d kills, %llu + %llu calls rolled back: %llu named, %llu anonymous left; "
	       "%llu leaked blocks", kills, (unsigned long long)r.repairs,
	       (unsigned long long)r.mem.repairs, (unsigned long long)r.named,
	       (unsigned long long)r.anon, (unsigned long long)r.mem.leaked);
	ASSERT_GT(r.repairs + r.mem.repairs, 0);
	ASSERT_EQ(0, ipcx_managed_find_or_construct(self->s, "after", &sp, &p, NULL));
	ASSERT_EQ(0, ipcx_managed_destroy(self->s, "after", 5, NULL, NULL));
	ASSERT_EQ(0, check(self->s, &r));
}

TEST_F(seg, check_reports_corrupted_index)
{
	struct ipcx_obj_spec sp = spec_of(5, 8, 1);
	struct ipcx_managed_report r;
	struct ipcx_managed *b;
	uint64_t sz = ipcx_managed_size(self->s), *w;
	char *copy;
	void *p;
	int i, trial, reported = 0;

	for (i = 0; i < 50; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "k%d", i);
		ASSERT_EQ(0, ipcx_managed_construct(self->s, nm, &sp, &p));
	}
	ASSERT_EQ(0, ipcx_managed_find(self->s, "k7", 5, &p, NULL));
	copy = t_shared(sz);
	for (trial = 0; trial < 50; trial++) {
		memcpy(copy, ipcx_managed_base(self->s), sz);
		/* Smash the control block in front of the object. */
		w = (uint64_t *)(copy + ((char *)p - (char *)ipcx_managed_base(self->s)) - 48);
		w[trial % 6] ^= 0x40000ull << (trial % 20);
		if (ipcx_managed_open_buffer(copy, sz, IPCX_OPEN_ONLY | IPCX_READ_ONLY, &b))
			continue;
		if (check(b, &r) == -EUCLEAN) {
			ASSERT_NE(NULL, r.first_error ? r.first_error : r.mem.first_error);
			reported++;
		}
		ipcx_managed_close(b);
	}
	TH_LOG("%d of 50 corruptions reported", reported);
	ASSERT_GT(reported, 10);
	munmap(copy, sz);
}

/*
 * Every crash point of one segment call (t_die_at_store() in ipcx_test.h):
 * a buffer segment in shared memory; a child runs the call with the
 * segment read-only and is killed before its store K, for K = 1, 2, ...
 * until the call completes (segment lock, index, allocator, robust links).
 * After each death the segment must open again, check clean, hold the
 * object the call made or destroyed whole or not at all, and still work.
 */
#define MSW_LEN		(1u << 20)
#define MSW_MAXK	6000

struct msw {
	struct ipcx_managed *s;
	void *anon;
};

static int msw_init(void *p, size_t i, void *arg)
{
	*(uint64_t *)p = 0x1234 + i;
	return 0;
}

static struct ipcx_obj_spec msw_spec(void)
{
	struct ipcx_obj_spec sp = spec_of(9, 8, 4);

	sp.init = msw_init;
	return sp;
}

static void msw_some(struct msw *x, int n)
{
	struct ipcx_obj_spec sp = spec_of(9, 8, 1);
	char nm[16];
	void *p;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(nm, sizeof(nm), "k%d", i);
		ipcx_managed_construct(x->s, nm, &sp, &p);
	}
}

static void msw_setup_none(struct msw *x)
{
}

static void msw_setup_one(struct msw *x)
{
	msw_some(x, 1);
}

/* 51 names: the next construct rebuilds the 64-slot index. */
static void msw_setup_full(struct msw *x)
{
	msw_some(x, 51);
}

static void msw_setup_x(struct msw *x)
{
	struct ipcx_obj_spec sp = msw_spec();
	void *p;

	msw_some(x, 1);
	ipcx_managed_construct(x->s, "x", &sp, &p);
	ipcx_managed_construct_anon(x->s, &sp, &x->anon);
}

static void msw_construct(void *arg)
{
	struct ipcx_obj_spec sp = msw_spec();
	struct msw *x = arg;
	void *p;

	ipcx_managed_construct(x->s, "x", &sp, &p);
}

static void msw_find_or_construct(void *arg)
{
	struct ipcx_obj_spec sp = msw_spec();
	struct msw *x = arg;
	void *p;

	ipcx_managed_find_or_construct(x->s, "x", &sp, &p, NULL);
}

static void msw_destroy(void *arg)
{
	struct msw *x = arg;

	ipcx_managed_destroy(x->s, "x", 9, NULL, NULL);
}

static void msw_anon(void *arg)
{
	struct ipcx_obj_spec sp = msw_spec();
	struct msw *x = arg;
	void *p;

	ipcx_managed_construct_anon(x->s, &sp, &p);
}

static void msw_destroy_anon(void *arg)
{
	struct msw *x = arg;

	ipcx_managed_destroy_ptr(x->s, x->anon, NULL, NULL);
}

FIXTURE(seg_crash_points) {
	char *buf;
};

FIXTURE_VARIANT(seg_crash_points) {
	void (*setup)(struct msw *x);
	void (*op)(void *x);
	int named;		/* names the setup made besides "x" */
};

FIXTURE_VARIANT_ADD(seg_crash_points, first_construct) { msw_setup_none, msw_construct, 0 };
FIXTURE_VARIANT_ADD(seg_crash_points, construct) { msw_setup_one, msw_construct, 1 };
FIXTURE_VARIANT_ADD(seg_crash_points, construct_rehash) { msw_setup_full, msw_construct, 51 };
FIXTURE_VARIANT_ADD(seg_crash_points, find_or_construct) { msw_setup_one, msw_find_or_construct, 1 };
FIXTURE_VARIANT_ADD(seg_crash_points, destroy) { msw_setup_x, msw_destroy, 1 };
FIXTURE_VARIANT_ADD(seg_crash_points, construct_anon) { msw_setup_one, msw_anon, 1 };
FIXTURE_VARIANT_ADD(seg_crash_points, destroy_anon) { msw_setup_x, msw_destroy_anon, 1 };

FIXTURE_SETUP(seg_crash_points)
{
	self->buf = t_shared(MSW_LEN);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(seg_crash_points)
{
	munmap(self->buf, MSW_LEN);
}

static int msw_err;

/* After a death: 0, or a line number of what failed. */
static int msw_verify(char *buf, int named, struct ipcx_managed_report *r)
{
	struct ipcx_obj_spec sp = spec_of(9, 8, 1);
	struct ipcx_managed *b;
	uint64_t *p;
	size_t n, i;
	int ret, fail = 0;

	memset(r, 0, sizeof(*r));
	msw_err = ipcx_managed_open_buffer(buf, MSW_LEN, IPCX_OPEN_ONLY, &b);
	if (msw_err)
		return __LINE__;
	if (check(b, r) || r->errors)
		fail = __LINE__;
	ret = ipcx_managed_find(b, "x", 9, (void **)&p, &n);
	if (!fail && ret == 0) {
		if (n != 4)
			fail = __LINE__;
		for (i = 0; i < n && !fail; i++)
			if (p[i] != 0x1234 + i)
				fail = __LINE__;
		named++;
	} else if (!fail && ret != -ENOENT) {
		fail = __LINE__;
	}
	if (!fail && ipcx_managed_count(b, IPCX_OBJ_NAMED) != named)
		fail = __LINE__;
	if (!fail && (ipcx_managed_construct(b, "y", &sp, (void **)&p) ||
		      ipcx_managed_destroy(b, "y", 9, NULL, NULL) ||
		      (ret == 0 && ipcx_managed_destroy(b, "x", 9, NULL, NULL))))
		fail = __LINE__;
	if (!fail && (check(b, r) || r->errors))
		fail = __LINE__;
	ipcx_managed_close(b);
	return fail;
}

TEST_F_TIMEOUT(seg_crash_points, every_store, 120)
{
#if defined(__x86_64__)
	struct ipcx_managed_report r;
	struct msw x;
	long k;
	int ret;

	memset(&x, 0, sizeof(x));
	for (k = 1; k <= MSW_MAXK; k++) {
		memset(self->buf, 0, MSW_LEN);
		ASSERT_EQ(0, ipcx_managed_open_buffer(self->buf, MSW_LEN, IPCX_CREATE_ONLY, &x.s));
		variant->setup(&x);
		ret = t_die_at_store(self->buf, MSW_LEN, k, variant->op, &x);
		ipcx_managed_close(x.s);
		if (ret == 0)
			break;		/* the call completed: every point done */
		ASSERT_EQ(128 + SIGKILL, ret);
		ret = msw_verify(self->buf, variant->named, &r);
		if (ret)
			TH_LOG("died before store %ld: failed at line %d (open %d, %s / %s)", k,
			       ret, msw_err, r.first_error ? r.first_error : "-",
			       r.mem.first_error ? r.mem.first_error : "-");
		ASSERT_EQ(0, ret);
	}
	ASSERT_LT(k, MSW_MAXK);
	ASSERT_GT(k, 3);
	TH_LOG("%ld crash points", k - 1);
#else
	SKIP(return, "single-stepping is x86-64 only here");
#endif
}

TEST_HARNESS_MAIN
