// SPDX-License-Identifier: MIT
/*
 * mq_test - message queues: creation matrix, priority order and FIFO,
 * sizes, try and timed operations with real clocks, zero-copy, sharing by
 * fork and fd, corrupted layouts, and many senders/receivers through a
 * capacity-1 queue with exact accounting.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

static void rm_rf(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

/* ---- named queues: the creation matrix -------------------------------------- */

FIXTURE(named) {
	char dir[64];
	char path[128];
};

FIXTURE_SETUP(named)
{
	strcpy(self->dir, "/dev/shm/ipcx-mqtest.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/ipcx.mq.q", self->dir);
}

FIXTURE_TEARDOWN(named)
{
	rm_rf(self->dir);
}

TEST_F(named, creation_matrix)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 8, .max_size = 100, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, other, .max_msgs = 50, .max_size = 7, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, only_dir, .dir = self->dir);
	struct ipcx_mq *q, *q2;
	char buf[100];
	unsigned int prio;

	ASSERT_EQ(-ENOENT, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(-EEXIST, ipcx_mq_open(&q2, "q", IPCX_CREATE_ONLY, &o));
	/* open ignores the sizes it is given */
	ASSERT_EQ(0, ipcx_mq_open(&q2, "q", IPCX_OPEN_OR_CREATE, &other));
	ASSERT_EQ(8, ipcx_mq_get_max_msg(q2));
	ASSERT_EQ(100, ipcx_mq_get_max_msg_size(q2));
	ASSERT_EQ(IPCX_MQ_DEFAULT_LEVELS, ipcx_mq_get_levels(q2));
	ASSERT_EQ(0, ipcx_mq_send(q, "hello", 5, 3));
	ASSERT_EQ(1, ipcx_mq_get_num_msg(q2));
	ASSERT_EQ(5, ipcx_mq_receive(q2, buf, sizeof(buf), &prio));
	ASSERT_EQ(3, prio);
	ASSERT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(0, ipcx_mq_close(q2));
	ASSERT_EQ(0, ipcx_mq_open(&q2, "q", IPCX_OPEN_ONLY, &only_dir));
	ASSERT_EQ(0, ipcx_mq_close(q2));
	ASSERT_EQ(0, ipcx_mq_close(q));
	ASSERT_EQ(0, ipcx_mq_unlink("q", self->dir));
	ASSERT_EQ(-ENOENT, ipcx_mq_unlink("q", self->dir));
	ASSERT_EQ(-ENOENT, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	/* open-or-create creates */
	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_OPEN_OR_CREATE, &other));
	ASSERT_EQ(50, ipcx_mq_get_max_msg(q));
	ASSERT_EQ(0, ipcx_mq_close(q));
	ASSERT_EQ(0, ipcx_mq_unlink("q", self->dir));
	ASSERT_EQ(0, t_count_entries(self->dir, "ipcx."));
}

TEST_F(named, bad_arguments)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 8, .max_size = 100, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, zero, .max_msgs = 0, .max_size = 100, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, lv, .max_msgs = 8, .max_size = 1, .levels = 65, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, big, .max_msgs = IPCX_MQ_MAX_MSGS + 1, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, fl, .max_msgs = 8, .flags = 0x80, .dir = self->dir);
	struct ipcx_mq *q;

	ASSERT_EQ(-EINVAL, ipcx_mq_open(NULL, "q", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "a/b", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, NULL, IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", 0, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY | IPCX_READ_ONLY, &o));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &zero));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &lv));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &big));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &fl));
	ASSERT_EQ(-EINVAL, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, NULL));
	ASSERT_EQ(0, ipcx_mq_size(0, 1, 0));
	ASSERT_EQ(-EINVAL, ipcx_mq_close(NULL));
	ASSERT_EQ(-EINVAL, ipcx_mq_send(NULL, "x", 1, 0));
	ASSERT_EQ(-EINVAL, ipcx_mq_receive(NULL, NULL, 0, NULL));
	ASSERT_EQ(-EINVAL, ipcx_mq_get_num_msg(NULL));
	ASSERT_EQ(0, t_count_entries(self->dir, "ipcx."));
}

TEST_F(named, permissions)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 2, .max_size = 8, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, p, .max_msgs = 2, .max_size = 8, .dir = self->dir,
		  .perm = 0644);
	struct ipcx_mq *q;
	struct stat st;
	mode_t old = umask(077);

	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &o));
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
	ipcx_mq_close(q);
	ASSERT_EQ(0, ipcx_mq_unlink("q", self->dir));
	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &p));
	ASSERT_EQ(0, stat(self->path, &st));
	EXPECT_EQ(0644, st.st_mode & 07777);	/* exact, umask 077 notwithstanding */
	ipcx_mq_close(q);
	umask(old);
}

TEST_F(named, corrupted_header_is_eproto)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 16, .dir = self->dir);
	IPCX_OPTS(ipcx_mq_opts, only_dir, .dir = self->dir);
	struct ipcx_mq_header h;
	struct ipcx_mq *q;
	uint32_t bad;
	int fd;

	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_CREATE_ONLY, &o));
	ipcx_mq_close(q);
	fd = open(self->path, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(sizeof(h), pread(fd, &h, sizeof(h), 0));

	bad = 0xdeadbeef;	/* magic */
	ASSERT_EQ(4, pwrite(fd, &bad, 4, 0));
	EXPECT_EQ(-EPROTO, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	ASSERT_EQ(sizeof(h), pwrite(fd, &h, sizeof(h), 0));
	ASSERT_EQ(0, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	ipcx_mq_close(q);

	bad = 1u << 20;		/* max_msgs: the file is far too small */
	ASSERT_EQ(4, pwrite(fd, &bad, 4, offsetof(struct ipcx_mq_header, max_msgs)));
	EXPECT_EQ(-EPROTO, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	bad = 0;		/* levels */
	ASSERT_EQ(sizeof(h), pwrite(fd, &h, sizeof(h), 0));
	ASSERT_EQ(4, pwrite(fd, &bad, 4, offsetof(struct ipcx_mq_header, levels)));
	EXPECT_EQ(-EPROTO, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	bad = 3;		/* ring size not matching */
	ASSERT_EQ(sizeof(h), pwrite(fd, &h, sizeof(h), 0));
	ASSERT_EQ(4, pwrite(fd, &bad, 4, offsetof(struct ipcx_mq_header, ring_size)));
	EXPECT_EQ(-EPROTO, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	ASSERT_EQ(sizeof(h), pwrite(fd, &h, sizeof(h), 0));
	ASSERT_EQ(0, ftruncate(fd, 100));	/* truncated file */
	EXPECT_EQ(-EPROTO, ipcx_mq_open(&q, "q", IPCX_OPEN_ONLY, &only_dir));
	close(fd);
}

TEST(corrupted_memory_is_eproto)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 16);
	size_t sz = ipcx_mq_size(4, 16, 0);
	struct ipcx_mq_header *h;
	struct ipcx_mq *q;
	void *const mem = t_shared(sz);

	ASSERT_NE(0, sz);
	ASSERT_NE(NULL, mem);
	memset(mem, 0xa5, sz);
	EXPECT_EQ(-EPROTO, ipcx_mq_attach_at(&q, mem, sz, NULL));
	EXPECT_EQ(-ENOSPC, ipcx_mq_init_at(&q, mem, sz - 1, &o));
	EXPECT_EQ(-EINVAL, ipcx_mq_init_at(&q, (char *)mem + 8, sz - 8, &o));
	ASSERT_EQ(0, ipcx_mq_init_at(&q, mem, sz, &o));
	ipcx_mq_close(q);
	ASSERT_EQ(0, ipcx_mq_attach_at(&q, mem, sz, NULL));
	ipcx_mq_close(q);
	EXPECT_EQ(-EPROTO, ipcx_mq_attach_at(&q, mem, sz - 64, NULL));
	h = mem;
	h->slot_size = 8;
	EXPECT_EQ(-EPROTO, ipcx_mq_attach_at(&q, mem, sz, NULL));
	munmap(mem, sz);
}

/* A corrupted index entry must give -EPROTO, never a wild access. */
TEST(corrupted_index_is_eproto)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 16);
	size_t sz = ipcx_mq_size(4, 16, 0);
	struct ipcx_mq_header *h;
	uint32_t *ring;
	uint64_t good;
	struct ipcx_mq *q;
	char buf[16];
	void *const mem = t_shared(sz);

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, ipcx_mq_init_at(&q, mem, sz, &o));
	h = mem;
	/* one message: its slot is named by the level's tail word */
	ASSERT_EQ(0, ipcx_mq_send(q, "abc", 3, 0));
	good = h->tl[0];
	h->tl[0] = (uint64_t)999 << 32 | (uint32_t)good;
	EXPECT_EQ(-EPROTO, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	h->tl[0] = good;
	EXPECT_EQ(3, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	/* more than one: by the level's ring, which follows the free ring */
	ASSERT_EQ(0, ipcx_mq_send(q, "abc", 3, 0));
	ASSERT_EQ(0, ipcx_mq_send(q, "de", 2, 0));
	ring = (uint32_t *)((char *)mem + sizeof(struct ipcx_mq_header) + 64);
	good = ring[1];
	ring[1] = 999;
	EXPECT_EQ(-EPROTO, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	ring[1] = (uint32_t)good;
	EXPECT_EQ(3, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	ring[2] = 999;
	EXPECT_EQ(-EPROTO, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	ring[2] = 2;
	EXPECT_EQ(2, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
	/* free ring corrupted where the next send takes its slot: refused */
	ring = (uint32_t *)((char *)mem + sizeof(struct ipcx_mq_header));
	ring[3] = 12345;
	EXPECT_EQ(-EPROTO, ipcx_mq_trysend(q, "x", 1, 0));
	ipcx_mq_close(q);
	munmap(mem, sz);
}

/* A queue built over an old one must not take its slots for messages. */
TEST(init_at_over_an_old_queue)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 8, .max_size = 16, .flags = IPCX_MQ_SPSC);
	size_t sz = ipcx_mq_size(8, 16, 0);
	void *const mem = t_shared(sz);
	struct ipcx_mq *q;
	char buf[16];
	int i, old;

	ASSERT_NE(NULL, mem);
	for (old = 1; old <= 9; old++) {
		ASSERT_EQ(0, ipcx_mq_init_at(&q, mem, sz, &o));
		for (i = 0; i < old; i++) {
			ASSERT_EQ(0, ipcx_mq_send(q, "old", 3, 0));
			ASSERT_EQ(3, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
		}
		ipcx_mq_close(q);
		ASSERT_EQ(0, ipcx_mq_init_at(&q, mem, sz, &o));
		for (i = 0; i < 3; i++)
			EXPECT_EQ(-EAGAIN, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL))
				TH_LOG("%d old messages", old);
		ASSERT_EQ(0, ipcx_mq_send(q, "new", 3, 0));
		ASSERT_EQ(3, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
		EXPECT_EQ(0, memcmp(buf, "new", 3));
		EXPECT_EQ(-EAGAIN, ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL));
		ipcx_mq_close(q);
	}
	munmap(mem, sz);
}

/*
 * The first sleep of each direction races the first publish: publishers
 * skip their fence until a waiter has announced itself with a membarrier
 * (lib/mq/mq.h, asymmetric fences). Fresh queues, so every round is a
 * first sleep; a lost wake-up shows as a waiter released only by its
 * 100 ms re-check slice.
 */
#define FS_ROUNDS 150

struct fs_shared {
	uint64_t published[FS_ROUNDS];	/* when the parent published round i */
	uint64_t freed[FS_ROUNDS];	/* when it made room in round i */
	uint64_t worst_ns;		/* the child's longest wait after either */
	int bad;
};

TEST(first_sleep_races_first_publish)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 1, .max_size = 8, .flags = IPCX_MQ_SPSC,
		  .wait = IPCX_MQ_WAIT_SLEEP);
	size_t one = (ipcx_mq_size(1, 8, 0) + 63) & ~(size_t)63;
	struct fs_shared *sh = t_shared(sizeof(*sh));
	char *mem = t_shared(2 * FS_ROUNDS * one);
	struct ipcx_mq *rq[FS_ROUNDS], *wq[FS_ROUNDS];
	char buf[8] = "x";
	pid_t pid;
	int i;

	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, mem);
	for (i = 0; i < FS_ROUNDS; i++) {
		ASSERT_EQ(0, ipcx_mq_init_at(&rq[i], mem + (size_t)(2 * i) * one, one, &o));
		ASSERT_EQ(0, ipcx_mq_init_at(&wq[i], mem + (size_t)(2 * i + 1) * one, one, &o));
		ASSERT_EQ(0, ipcx_mq_send(wq[i], buf, 1, 0));	/* full: its sender waits */
	}
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (i = 0; i < FS_ROUNDS; i++) {
			struct timespec dl = t_deadline_ms(5000);
			uint64_t t;

			/* receiver asleep on an empty queue, then sender on a full one */
			if (ipcx_mq_timedreceive(rq[i], buf, sizeof(buf), NULL, &dl) != 1)
				_exit(2);
			t = t_now_ns() - __atomic_load_n(&sh->published[i], __ATOMIC_ACQUIRE);
			if (t > sh->worst_ns)
				sh->worst_ns = t;
			if (ipcx_mq_timedsend(wq[i], buf, 1, 0, &dl))
				_exit(3);
			t = t_now_ns() - __atomic_load_n(&sh->freed[i], __ATOMIC_ACQUIRE);
			if (t > sh->worst_ns)
				sh->worst_ns = t;
		}
		_exit(0);
	}
	for (i = 0; i < FS_ROUNDS; i++) {
		struct timespec pause = { 0, (long)(rand() % 200) * 1000 };

		nanosleep(&pause, NULL);
		__atomic_store_n(&sh->published[i], t_now_ns(), __ATOMIC_RELEASE);
		ASSERT_EQ(0, ipcx_mq_send(rq[i], buf, 1, 0));
		nanosleep(&pause, NULL);
		/* room for the child's sender, which may be asleep already */
		__atomic_store_n(&sh->freed[i], t_now_ns(), __ATOMIC_RELEASE);
		ASSERT_EQ(1, ipcx_mq_receive(wq[i], buf, sizeof(buf), NULL));
		ASSERT_EQ(1, ipcx_mq_receive(wq[i], buf, sizeof(buf), NULL));
	}
	ASSERT_EQ(0, t_wait(pid));
	TH_LOG("longest wait after a publish or a release: %.1f ms", sh->worst_ns / 1e6);
	EXPECT_LT(sh->worst_ns, 50000000ull);	/* a lost wake-up waits out 100 ms */
	for (i = 0; i < FS_ROUNDS; i++) {
		ipcx_mq_close(rq[i]);
		ipcx_mq_close(wq[i]);
	}
	munmap(mem, 2 * FS_ROUNDS * one);
	munmap(sh, sizeof(*sh));
}

/* ---- one queue, in each kind of memory and each mode ------------------------- */

enum where { W_MEMFD, W_NAMED, W_MEM };

FIXTURE(q) {
	char dir[64];
	struct ipcx_mq *q;
	void *mem;
};

FIXTURE_VARIANT(q) {
	enum where where;
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(q, memfd_mpmc) { .where = W_MEMFD, .flags = 0 };
FIXTURE_VARIANT_ADD(q, memfd_spsc) { .where = W_MEMFD, .flags = IPCX_MQ_SPSC };
FIXTURE_VARIANT_ADD(q, named_mpmc) { .where = W_NAMED, .flags = 0 };
FIXTURE_VARIANT_ADD(q, mem_spsc) { .where = W_MEM, .flags = IPCX_MQ_SPSC };

#define QCAP 16
#define QMAX 100

FIXTURE_SETUP(q)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = QCAP, .max_size = QMAX,
		  .flags = variant->flags);
	size_t sz;

	self->mem = NULL;
	strcpy(self->dir, "/dev/shm/ipcx-mqtest.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	o.dir = self->dir;
	switch (variant->where) {
	case W_MEMFD:
		ASSERT_EQ(0, ipcx_mq_open_memfd(&self->q, &o));
		break;
	case W_NAMED:
		ASSERT_EQ(0, ipcx_mq_open(&self->q, "q", IPCX_CREATE_ONLY, &o));
		break;
	case W_MEM:
		sz = ipcx_mq_size(QCAP, QMAX, 0);
		self->mem = t_shared(sz);
		ASSERT_NE(NULL, self->mem);
		ASSERT_EQ(0, ipcx_mq_init_at(&self->q, self->mem, sz, &o));
		break;
	}
}

FIXTURE_TEARDOWN(q)
{
	ipcx_mq_close(self->q);
	if (self->mem)
		munmap(self->mem, ipcx_mq_size(QCAP, QMAX, 0));
	rm_rf(self->dir);
}

TEST_F(q, queries)
{
	ASSERT_EQ(QCAP, ipcx_mq_get_max_msg(self->q));
	ASSERT_EQ(QMAX, ipcx_mq_get_max_msg_size(self->q));
	ASSERT_EQ(0, ipcx_mq_get_num_msg(self->q));
	ASSERT_EQ(0, ipcx_mq_send(self->q, "a", 1, 0));
	ASSERT_EQ(0, ipcx_mq_send(self->q, "b", 1, 5));
	ASSERT_EQ(2, ipcx_mq_get_num_msg(self->q));
}

TEST_F(q, priority_order_and_fifo)
{
	unsigned int prio, last_prio = ~0u;
	uint32_t i, v, last[32];
	int n = 0;

	/* Fill and drain many times, priorities interleaved 7 apart. */
	memset(last, 0, sizeof(last));
	for (i = 0; i < 4000; i++) {
		uint32_t val = i + 1;

		ASSERT_EQ(0, ipcx_mq_send(self->q, &val, sizeof(val), (i * 7) % 32));
		if (ipcx_mq_get_num_msg(self->q) == QCAP) {
			last_prio = ~0u;
			while (ipcx_mq_tryreceive(self->q, &v, sizeof(v), &prio) == sizeof(v)) {
				ASSERT_LE(prio, last_prio);	/* highest first */
				ASSERT_EQ(prio, ((v - 1) * 7) % 32);
				ASSERT_GT(v, last[prio]);	/* FIFO within a priority */
				last[prio] = v;
				last_prio = prio;
				n++;
			}
		}
	}
	ASSERT_EQ(4000, n);
}

/*
 * A receiver that saw the queue empty predicts where the next message
 * lands (SPSC); with two pending, the higher priority still comes first,
 * and an unpeeked message is found again.
 */
TEST_F(q, in_order_receiver_keeps_priorities)
{
	unsigned int prio;
	const void *p;
	char buf[QMAX];
	size_t len;
	int round;

	for (round = 0; round < 3 * QCAP; round++) {
		ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		ASSERT_EQ(0, ipcx_mq_send(self->q, "lo", 2, 0));
		ASSERT_EQ(0, ipcx_mq_send(self->q, "hi", 2, 5));
		ASSERT_EQ(2, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		ASSERT_EQ(5, prio) TH_LOG("round %d", round);
		ASSERT_EQ(0, memcmp(buf, "hi", 2));
		ASSERT_EQ(2, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		ASSERT_EQ(0, prio);
		ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		/* one at a time: each found where predicted, in order */
		ASSERT_EQ(0, ipcx_mq_send(self->q, "one", 3, 3));
		ASSERT_EQ(0, ipcx_mq_peek(self->q, &p, &len, &prio, IPCX_MQ_TRY, NULL));
		ASSERT_EQ(3, len);
		ASSERT_EQ(0, ipcx_mq_unpeek(self->q));
		ASSERT_EQ(0, ipcx_mq_send(self->q, "two", 3, 7));
		ASSERT_EQ(3, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		ASSERT_EQ(7, prio);
		ASSERT_EQ(3, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), &prio));
		ASSERT_EQ(0, memcmp(buf, "one", 3));
		ASSERT_EQ(0, ipcx_mq_get_num_msg(self->q));
	}
}

TEST_F(q, zero_length_and_sizes)
{
	char buf[QMAX + 1], big[QMAX + 1];
	unsigned int prio = 99;

	memset(big, 'x', sizeof(big));
	ASSERT_EQ(-EMSGSIZE, ipcx_mq_send(self->q, big, QMAX + 1, 0));
	ASSERT_EQ(-EINVAL, ipcx_mq_send(self->q, big, 1, 32));
	ASSERT_EQ(0, ipcx_mq_send(self->q, NULL, 0, 2));
	ASSERT_EQ(0, ipcx_mq_receive(self->q, buf, sizeof(buf), &prio));
	ASSERT_EQ(2, prio);
	ASSERT_EQ(0, ipcx_mq_send(self->q, "", 0, 0));
	ASSERT_EQ(0, ipcx_mq_tryreceive(self->q, NULL, 0, NULL));
	/* a buffer smaller than the maximum is fine when the message fits */
	ASSERT_EQ(0, ipcx_mq_send(self->q, big, 10, 0));
	ASSERT_EQ(10, ipcx_mq_receive(self->q, buf, 10, NULL));
	/* and -EMSGSIZE, message kept, when it does not */
	ASSERT_EQ(0, ipcx_mq_send(self->q, big, QMAX, 1));
	ASSERT_EQ(-EMSGSIZE, ipcx_mq_receive(self->q, buf, QMAX - 1, NULL));
	ASSERT_EQ(1, ipcx_mq_get_num_msg(self->q));
	ASSERT_EQ(QMAX, ipcx_mq_receive(self->q, buf, QMAX, &prio));
	ASSERT_EQ(1, prio);
	ASSERT_EQ(0, memcmp(buf, big, QMAX));
}

TEST_F(q, try_and_timed_on_empty_and_full)
{
	struct timespec dl, bad = { 0, 1000000000L };
	char buf[QMAX];
	uint64_t t0, el;
	pid_t pid;
	int i;

	ASSERT_EQ(-EAGAIN, ipcx_mq_tryreceive(self->q, buf, sizeof(buf), NULL));
	dl = t_deadline_ms(100);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &dl));
	el = t_now_ns() - t0;
	EXPECT_GE(el, 95000000ull);
	EXPECT_LT(el, 5000000000ull);
	dl = t_deadline_ms(-10);	/* already past: fails at once */
	ASSERT_EQ(-ETIMEDOUT, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &dl));
	ASSERT_EQ(-EINVAL, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &bad));
	ASSERT_EQ(-EINVAL, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, NULL));

	for (i = 0; i < QCAP; i++) {
		ASSERT_EQ(0, ipcx_mq_trysend(self->q, &i, sizeof(i), 0));
	}
	ASSERT_EQ(-EAGAIN, ipcx_mq_trysend(self->q, &i, sizeof(i), 0));
	dl = t_deadline_ms(100);
	t0 = t_now_ns();
	ASSERT_EQ(-ETIMEDOUT, ipcx_mq_timedsend(self->q, &i, sizeof(i), 0, &dl));
	el = t_now_ns() - t0;
	EXPECT_GE(el, 95000000ull);
	EXPECT_LT(el, 5000000000ull);
	ASSERT_EQ(-EINVAL, ipcx_mq_timedsend(self->q, &i, sizeof(i), 0, &bad));
	/* a timed send on a full queue succeeds once another process receives */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		t_sleep_ms(100);
		_exit(ipcx_mq_receive(self->q, buf, sizeof(buf), NULL) == sizeof(int) ? 0 : 1);
	}
	dl = t_deadline_ms(10000);
	ASSERT_EQ(0, ipcx_mq_timedsend(self->q, &i, sizeof(i), 0, &dl));
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(QCAP, ipcx_mq_get_num_msg(self->q));
}

TEST_F(q, timed_receive_woken_by_other_process)
{
	struct timespec dl = t_deadline_ms(10000);
	char buf[QMAX];
	pid_t pid;
	uint64_t t0 = t_now_ns();

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		t_sleep_ms(100);
		_exit(ipcx_mq_send(self->q, "wake", 4, 1) ? 1 : 0);
	}
	ASSERT_EQ(4, ipcx_mq_timedreceive(self->q, buf, sizeof(buf), NULL, &dl));
	ASSERT_GE(t_now_ns() - t0, 90000000ull);
	ASSERT_EQ(0, t_wait(pid));
}

TEST_F(q, zero_copy_round_trip)
{
	const void *p;
	void *w;
	size_t len;
	unsigned int prio;
	pid_t pid;

	ASSERT_EQ(-EPERM, ipcx_mq_commit(self->q, 1, 0));
	ASSERT_EQ(-EPERM, ipcx_mq_release(self->q));
	ASSERT_EQ(0, ipcx_mq_reserve(self->q, &w, 0, NULL));
	ASSERT_EQ(-EDEADLK, ipcx_mq_reserve(self->q, &w, IPCX_MQ_TRY, NULL));
	memcpy(w, "in place", 8);
	ASSERT_EQ(-EMSGSIZE, ipcx_mq_commit(self->q, QMAX + 1, 0));
	ASSERT_EQ(-EINVAL, ipcx_mq_commit(self->q, 8, 40));
	ASSERT_EQ(0, ipcx_mq_commit(self->q, 8, 4));
	/* aborted reservations are never delivered */
	ASSERT_EQ(0, ipcx_mq_reserve(self->q, &w, IPCX_MQ_TRY, NULL));
	memcpy(w, "aborted!", 8);
	ASSERT_EQ(0, ipcx_mq_abort(self->q));
	ASSERT_EQ(1, ipcx_mq_get_num_msg(self->q));

	/* peek in another process, unpeek, then release */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (ipcx_mq_peek(self->q, &p, &len, &prio, 0, NULL) || len != 8 || prio != 4 ||
		    memcmp(p, "in place", 8))
			_exit(1);
		if (ipcx_mq_unpeek(self->q))
			_exit(2);
		if (ipcx_mq_peek(self->q, &p, &len, &prio, IPCX_MQ_TRY, NULL) || len != 8)
			_exit(3);
		if (ipcx_mq_release(self->q))
			_exit(4);
		_exit(ipcx_mq_peek(self->q, &p, &len, &prio, IPCX_MQ_TRY, NULL) == -EAGAIN ?
		      0 : 5);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_mq_get_num_msg(self->q));
	/* many round trips: every slot is reused */
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(0, ipcx_mq_reserve(self->q, &w, IPCX_MQ_TRY, NULL));
		memcpy(w, &i, sizeof(i));
		ASSERT_EQ(0, ipcx_mq_commit(self->q, sizeof(i), i % 3));
		ASSERT_EQ(0, ipcx_mq_peek(self->q, &p, &len, &prio, IPCX_MQ_TRY, NULL));
		ASSERT_EQ(sizeof(i), len);
		ASSERT_EQ(i % 3, prio);
		ASSERT_EQ(0, memcmp(p, &i, sizeof(i)));
		ASSERT_EQ(0, ipcx_mq_release(self->q));
	}
}

/* Stream between two processes, checking order and contents. */
TEST_F(q, stream_between_processes)
{
	const uint32_t n = 200000;
	uint32_t i, v;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (i = 0; i < n; i++)
			if (ipcx_mq_send(self->q, &i, sizeof(i), 0))
				_exit(1);
		_exit(0);
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(sizeof(v), ipcx_mq_receive(self->q, &v, sizeof(v), NULL));
		ASSERT_EQ(i, v);
	}
	ASSERT_EQ(0, t_wait(pid));
}

/* A queue passed as an fd maps elsewhere and still works. */
TEST(open_fd_other_mapping)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 8);
	struct ipcx_mq *a, *b;
	char buf[8];

	ASSERT_EQ(0, ipcx_mq_open_memfd(&a, &o));
	ASSERT_EQ(0, ipcx_mq_open_fd(&b, ipcx_mq_fd(a), NULL));
	ASSERT_EQ(0, ipcx_mq_send(a, "abc", 3, 0));
	ASSERT_EQ(3, ipcx_mq_receive(b, buf, sizeof(buf), NULL));
	ipcx_mq_close(b);
	ipcx_mq_close(a);
}

/* SPSC: a second live sender is refused rather than corrupting the queue. */
TEST(spsc_second_sender_is_ebusy)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 4, .max_size = 8, .flags = IPCX_MQ_SPSC);
	struct ipcx_mq *q;
	void *w;
	pid_t pid;

	ASSERT_EQ(0, ipcx_mq_open_memfd(&q, &o));
	ASSERT_EQ(0, ipcx_mq_reserve(q, &w, 0, NULL));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_mq_trysend(q, "x", 1, 0) == -EBUSY ? 0 : 1);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, ipcx_mq_commit(q, 0, 0));
	ipcx_mq_close(q);
}

/* ---- many to many through capacity 1, exact accounting ------------------------ */

#define NS 10
#define NR 10
#define PER 10000

TEST(ten_by_ten_capacity_one)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 1, .max_size = 8);
	uint32_t *seen = t_shared(NS * PER * sizeof(uint32_t));
	struct ipcx_mq *q;
	pid_t pids[NS + NR];
	int i, k;

	ASSERT_NE(NULL, seen);
	ASSERT_EQ(0, ipcx_mq_open_memfd(&q, &o));
	for (i = 0; i < NR; i++) {
		pids[NS + i] = fork();
		ASSERT_GE(pids[NS + i], 0);
		if (pids[NS + i] == 0) {
			uint32_t id;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			unsigned int prio;

			for (;;) {
				if (ipcx_mq_receive(q, &id, sizeof(id), &prio) != sizeof(id))
					_exit(1);
				if (id == 0xffffffffu)
					_exit(0);
				if (id >= NS * PER || prio != id % 4)
					_exit(2);
				__atomic_fetch_add(&seen[id], 1, __ATOMIC_RELAXED);
			}
		}
	}
	for (i = 0; i < NS; i++) {
		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (k = 0; k < PER; k++) {
				uint32_t id = (uint32_t)(i * PER + k);

				if (ipcx_mq_send(q, &id, sizeof(id), id % 4))
					_exit(1);
			}
			_exit(0);
		}
	}
	for (i = 0; i < NS; i++)
		ASSERT_EQ(0, t_wait(pids[i]));
	for (i = 0; i < NR; i++) {
		uint32_t stop = 0xffffffffu;

		ASSERT_EQ(0, ipcx_mq_send(q, &stop, sizeof(stop), 0));
	}
	for (i = 0; i < NR; i++)
		ASSERT_EQ(0, t_wait(pids[NS + i]));
	for (k = 0; k < NS * PER; k++)
		ASSERT_EQ(1, seen[k]);
	ASSERT_EQ(0, ipcx_mq_get_num_msg(q));
	ipcx_mq_close(q);
	munmap(seen, NS * PER * sizeof(uint32_t));
}

/* Threads of one process share a handle; each is its own owner. */
#define TH_N 4
#define TH_PER 20000

struct th_arg {
	struct ipcx_mq *q;
	int idx;
	uint32_t *seen;
	int err;
};

static void *th_send(void *p)
{
	struct th_arg *a = p;
	uint32_t k;

	for (k = 0; k < TH_PER; k++) {
		uint32_t id = (uint32_t)a->idx * TH_PER + k;

		if (ipcx_mq_send(a->q, &id, sizeof(id), id % 3))
			a->err = 1;
	}
	return NULL;
}

static void *th_recv(void *p)
{
	struct th_arg *a = p;
	uint32_t k, id;

	for (k = 0; k < TH_PER; k++) {
		if (ipcx_mq_receive(a->q, &id, sizeof(id), NULL) != sizeof(id) ||
		    id >= TH_N * TH_PER) {
			a->err = 1;
			continue;
		}
		__atomic_fetch_add(&a->seen[id], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(threads_share_a_handle)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 2, .max_size = 4);
	static uint32_t seen[TH_N * TH_PER];
	struct th_arg a[2 * TH_N];
	pthread_t t[2 * TH_N];
	struct ipcx_mq *q;
	int i;

	ASSERT_EQ(0, ipcx_mq_open_memfd(&q, &o));
	for (i = 0; i < 2 * TH_N; i++) {
		a[i] = (struct th_arg){ .q = q, .idx = i % TH_N, .seen = seen };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, i < TH_N ? th_send : th_recv, &a[i]));
	}
	for (i = 0; i < 2 * TH_N; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		ASSERT_EQ(0, a[i].err);
	}
	for (i = 0; i < TH_N * TH_PER; i++)
		ASSERT_EQ(1, seen[i]);
	ipcx_mq_close(q);
}

/*
 * The default wait policy spins only while the peer was last seen on
 * another CPU: a receiver waiting 300 ms for a sender that noted another
 * CPU burns about its spin budget (set to 200 ms here) before sleeping;
 * with the sender noted on the receiver's own CPU it sleeps at once. The
 * budget is wall-clock time and the check is CPU time, so a loaded machine
 * (the suite runs tests in parallel) only has to give the spinner a quarter
 * of a CPU.
 */
static uint64_t default_wait_cpu_ns(int sender_cpu, int receiver_cpu)
{
	struct ipcx_mq_opts o = { .sz = sizeof(o), .max_msgs = 4, .max_size = 8,
				  .flags = IPCX_MQ_SPSC, .wait = IPCX_MQ_WAIT_DEFAULT,
				  .spin_ns = 200000000 };
	struct ipcx_mq *q;
	struct timespec c0, c1;
	cpu_set_t cs;
	char buf[8];
	pid_t pid;
	int r;

	if (ipcx_mq_open_memfd(&q, &o))
		return UINT64_MAX;
	pid = fork();
	if (pid == 0) {
		CPU_ZERO(&cs);
		CPU_SET(sender_cpu, &cs);
		if (sched_setaffinity(0, sizeof(cs), &cs) ||
		    ipcx_mq_send(q, "hi", 2, 0))	/* the first entry notes the CPU */
			_exit(1);
		t_sleep_ms(300);
		_exit(ipcx_mq_send(q, "hi", 2, 0) ? 1 : 0);
	}
	CPU_ZERO(&cs);
	CPU_SET(receiver_cpu, &cs);
	r = sched_setaffinity(0, sizeof(cs), &cs);
	r = r ? -1 : (int)ipcx_mq_receive(q, buf, sizeof(buf), NULL);	/* the first */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	if (r == 2)
		r = (int)ipcx_mq_receive(q, buf, sizeof(buf), NULL);	/* waits ~300 ms */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	if (t_wait(pid) || r != 2)
		r = -1;
	ipcx_mq_close(q);
	return r == 2 ? (uint64_t)(c1.tv_sec - c0.tv_sec) * 1000000000ull + c1.tv_nsec - c0.tv_nsec
		      : UINT64_MAX;
}

TEST(default_wait_spins_only_for_a_peer_on_another_cpu)
{
	cpu_set_t old;
	int a = -1, b = -1, i;
	uint64_t same, other;

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(old), &old));
	for (i = 0; i < CPU_SETSIZE && b < 0; i++)
		if (CPU_ISSET(i, &old)) {
			if (a < 0)
				a = i;
			else
				b = i;
		}
	if (b < 0)
		SKIP(return, "needs two CPUs");
	same = default_wait_cpu_ns(a, a);
	other = default_wait_cpu_ns(b, a);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(old), &old));
	ASSERT_NE(UINT64_MAX, same);
	ASSERT_NE(UINT64_MAX, other);
	TH_LOG("receiver CPU time while waiting: peer on its CPU %llu us, elsewhere %llu us",
	       (unsigned long long)same / 1000, (unsigned long long)other / 1000);
	EXPECT_LT(same, 5000000ull);	/* slept at once (a few us of work) */
	EXPECT_GT(other, 50000000ull);	/* spun ~200 ms first */
}

TEST_HARNESS_MAIN
