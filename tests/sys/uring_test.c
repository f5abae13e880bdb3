// SPDX-License-Identifier: MIT
/*
 * uring_test - io_uring futex SQEs filled by ipcx, in a real ring, woken
 * by another process that maps the same memfd at a different address.
 */
#include <liburing.h>
#include <stdatomic.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>
#include "sys/sys.h"

#define NEED(feat)							\
	do {								\
		if (!(ipcx_features() & (feat)))			\
			SKIP(return, "kernel lacks %s",			\
			     ipcx_feature_name(feat));			\
	} while (0)

/* A memfd page mapped twice: the child uses the second mapping. */
FIXTURE(ring) {
	struct io_uring ring;
	int fd;
	uint32_t *a;	/* parent's view */
	uint32_t *b;	/* another address, same page */
};

FIXTURE_SETUP(ring)
{
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
	self->fd = memfd_create("uring_test", MFD_CLOEXEC);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, ftruncate(self->fd, 4096));
	self->a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	self->b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->a);
	ASSERT_NE(MAP_FAILED, self->b);
	ASSERT_NE(self->a, self->b);
}

FIXTURE_TEARDOWN(ring)
{
	io_uring_queue_exit(&self->ring);
	munmap(self->a, 4096);
	munmap(self->b, 4096);
	close(self->fd);
}

static int wait_cqe_ms(struct io_uring *r, struct io_uring_cqe **cqe, long ms)
{
	struct __kernel_timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return io_uring_wait_cqe_timeout(r, cqe, &ts);
}

TEST_F(ring, stale_value_completes_eagain)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;

	NEED(IPCX_FEAT_URING_FUTEX);
	self->a[0] = 5;
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_EQ(0, ipcx_uring_prep_futex_wait(sqe, self->a, 4));
	io_uring_sqe_set_data64(sqe, 42);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, wait_cqe_ms(&self->ring, &cqe, 2000));
	ASSERT_EQ(42, cqe->user_data);
	ASSERT_EQ(-EAGAIN, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
}

TEST_F(ring, woken_by_other_process)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	pid_t pid;

	NEED(IPCX_FEAT_URING_FUTEX);
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_EQ(0, ipcx_uring_prep_futex_wait(sqe, self->a, 0));
	io_uring_sqe_set_data64(sqe, 7);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	/* Nothing completes while the word is unchanged. */
	ASSERT_EQ(-ETIME, wait_cqe_ms(&self->ring, &cqe, 50));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		__atomic_store_n(&self->b[0], 1, __ATOMIC_SEQ_CST);
		_exit(ipcx_futex_wake(self->b, 1, true) == 1 ? 0 : 1);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, wait_cqe_ms(&self->ring, &cqe, 2000));
	ASSERT_EQ(7, cqe->user_data);
	ASSERT_EQ(0, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
}

TEST_F(ring, wake_sqe_wakes_a_futex_waiter)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	pid_t pid;
	int woken = 0, i;

	NEED(IPCX_FEAT_URING_FUTEX);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct timespec dl = t_deadline_ms(5000);
		int r;

		do
			r = ipcx_futex_wait(self->b, 0, &dl, true);
		while (r == 0 && __atomic_load_n(&self->b[0], __ATOMIC_SEQ_CST) == 0);
		_exit(__atomic_load_n(&self->b[0], __ATOMIC_SEQ_CST) == 9 ? 0 : 1);
	}
	t_sleep_ms(50);
	__atomic_store_n(&self->a[0], 9, __ATOMIC_SEQ_CST);
	for (i = 0; i < 50 && !woken; i++) {
		sqe = io_uring_get_sqe(&self->ring);
		ASSERT_EQ(0, ipcx_uring_prep_futex_wake(sqe, self->a, 1));
		ASSERT_EQ(1, io_uring_submit(&self->ring));
		ASSERT_EQ(0, wait_cqe_ms(&self->ring, &cqe, 2000));
		ASSERT_GE(cqe->res, 0);
		woken = cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
		if (!woken)
			t_sleep_ms(10);
	}
	ASSERT_EQ(0, t_wait(pid));
}

TEST_F(ring, linked_timeout_cancels_wait)
{
	struct __kernel_timespec ts = { 0, 30 * 1000000L };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int i, futex_res = 1;

	NEED(IPCX_FEAT_URING_FUTEX);
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_EQ(0, ipcx_uring_prep_futex_wait(sqe, self->a, 0));
	io_uring_sqe_set_data64(sqe, 1);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_link_timeout(sqe, &ts, 0);
	io_uring_sqe_set_data64(sqe, 2);
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, wait_cqe_ms(&self->ring, &cqe, 2000));
		if (cqe->user_data == 1)
			futex_res = cqe->res;
		io_uring_cqe_seen(&self->ring, cqe);
	}
	/* Judge by the futex CQE: it was cancelled by the timeout. */
	ASSERT_EQ(-ECANCELED, futex_res);
}

TEST_F(ring, waitv_reports_index)
{
	struct futex_waitv v[3];
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	pid_t pid;
	int i;

	NEED(IPCX_FEAT_URING_FUTEXV);
	for (i = 0; i < 3; i++)
		ipcx_futex_waitv_fill(&v[i], &self->a[i * 16], 0);
	sqe = io_uring_get_sqe(&self->ring);
	ASSERT_EQ(0, ipcx_uring_prep_futex_waitv(sqe, v, 3));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(-ETIME, wait_cqe_ms(&self->ring, &cqe, 30));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		__atomic_store_n(&self->b[32], 1, __ATOMIC_SEQ_CST);
		_exit(ipcx_futex_wake(&self->b[32], 1, true) == 1 ? 0 : 1);
	}
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, wait_cqe_ms(&self->ring, &cqe, 2000));
	ASSERT_EQ(2, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
}

TEST(bad_arguments)
{
	struct io_uring_sqe sqe;
	struct futex_waitv v;
	uint32_t w = 0;

	ASSERT_EQ(-EINVAL, ipcx_uring_prep_futex_wait(NULL, &w, 0));
	ASSERT_EQ(-EINVAL, ipcx_uring_prep_futex_wait(&sqe, NULL, 0));
	ASSERT_EQ(-EINVAL, ipcx_uring_prep_futex_waitv(&sqe, &v, 0));
	ASSERT_EQ(-EINVAL, ipcx_uring_prep_futex_waitv(&sqe, &v, 129));
}

TEST_HARNESS_MAIN
