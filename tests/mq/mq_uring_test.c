// SPDX-License-Identifier: MIT
/*
 * mq_uring_test - queue readiness as io_uring completions, in a real ring
 * owned by another process than the one sending or receiving; the
 * many-queue waits (IORING_OP_FUTEX_WAITV and ipcx_mq_wait_any).
 */
#include <liburing.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx.h>

#define NEED(feat)							\
	do {								\
		if (!(ipcx_features() & (feat)))			\
			SKIP(return, "kernel lacks %s",			\
			     ipcx_feature_name(feat));			\
	} while (0)

FIXTURE(ur) {
	struct ipcx_mq *a, *b;
};

FIXTURE_SETUP(ur)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 2, .max_size = 16);

	ASSERT_EQ(0, ipcx_mq_open_memfd(&self->a, &o));
	ASSERT_EQ(0, ipcx_mq_open_memfd(&self->b, &o));
}

FIXTURE_TEARDOWN(ur)
{
	ipcx_mq_close(self->a);
	ipcx_mq_close(self->b);
}

static int wait_cqe_ms(struct io_uring *r, struct io_uring_cqe **cqe, long ms)
{
	struct __kernel_timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return io_uring_wait_cqe_timeout(r, cqe, &ts);
}

/*
 * Child: arm "readable" (or "writable") on @q in its own ring, tell the
 * parent, wait for the completion, then do the operation with a try call.
 */
static int child_wait_ready(struct ipcx_mq *q, int writable, int wfd)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[16];
	int r, round;

	if (io_uring_queue_init(4, &ring, 0))
		return 10;
	for (round = 0; round < 100; round++) {
		sqe = io_uring_get_sqe(&ring);
		r = writable ? ipcx_mq_prep_writable(q, sqe) : ipcx_mq_prep_readable(q, sqe);
		if (r < 0)
			return 11;
		if (r == 0) {
			if (io_uring_submit(&ring) != 1)
				return 12;
			if (round == 0 && write(wfd, "a", 1) != 1)
				return 13;
			if (wait_cqe_ms(&ring, &cqe, 5000))
				return 14;	/* never completed */
			if (cqe->res != 0 && cqe->res != -EAGAIN)
				return 15;
			io_uring_cqe_seen(&ring, cqe);
		} else if (round == 0) {
			return 16;	/* was not supposed to be ready yet */
		}
		r = writable ? ipcx_mq_trysend(q, "w", 1, 0)
			     : (int)ipcx_mq_tryreceive(q, buf, sizeof(buf), NULL);
		if (r >= 0)
			return writable ? 0 : (r == 5 && !memcmp(buf, "ready", 5) ? 0 : 17);
		if (r != -EAGAIN)
			return 18;
	}
	return 19;
}

TEST_F(ur, readable_in_another_process)
{
	int p[2];
	char c;
	pid_t pid;

	NEED(IPCX_FEAT_URING_FUTEX);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_wait_ready(self->a, 0, p[1]));
	ASSERT_EQ(1, read(p[0], &c, 1));
	t_sleep_ms(20);
	ASSERT_EQ(0, ipcx_mq_send(self->a, "ready", 5, 0));
	ASSERT_EQ(0, t_wait(pid));
	close(p[0]);
	close(p[1]);
}

TEST_F(ur, writable_in_another_process)
{
	char buf[16];
	int p[2];
	char c;
	pid_t pid;

	NEED(IPCX_FEAT_URING_FUTEX);
	ASSERT_EQ(0, ipcx_mq_send(self->a, "x", 1, 0));
	ASSERT_EQ(0, ipcx_mq_send(self->a, "y", 1, 0));
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_wait_ready(self->a, 1, p[1]));
	ASSERT_EQ(1, read(p[0], &c, 1));
	t_sleep_ms(20);
	ASSERT_EQ(1, ipcx_mq_receive(self->a, buf, sizeof(buf), NULL));
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(2, ipcx_mq_get_num_msg(self->a));
	close(p[0]);
	close(p[1]);
}

TEST_F(ur, already_ready_leaves_sqe)
{
	struct io_uring_sqe sqe;

	NEED(IPCX_FEAT_URING_FUTEX);
	memset(&sqe, 0xee, sizeof(sqe));
	ASSERT_EQ(0, ipcx_mq_prep_writable(self->a, &sqe) == 1 ? 0 : -1);
	ASSERT_EQ(0xee, sqe.opcode);
	ASSERT_EQ(0, ipcx_mq_send(self->a, "x", 1, 0));
	ASSERT_EQ(1, ipcx_mq_prep_readable(self->a, &sqe));
	ASSERT_EQ(-EINVAL, ipcx_mq_prep_readable(NULL, &sqe));
	ASSERT_EQ(-EINVAL, ipcx_mq_prep_readable(self->a, NULL));
}

TEST_F(ur, linked_timeout_guard)
{
	struct __kernel_timespec ts = { 0, 30 * 1000000L };
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int i, futex_res = 1;

	NEED(IPCX_FEAT_URING_FUTEX);
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	sqe = io_uring_get_sqe(&ring);
	ASSERT_EQ(0, ipcx_mq_prep_readable(self->a, sqe));
	io_uring_sqe_set_data64(sqe, 1);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&ring);
	ASSERT_EQ(0, ipcx_mq_prep_link_timeout(sqe, &ts));
	io_uring_sqe_set_data64(sqe, 2);
	ASSERT_EQ(2, io_uring_submit(&ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, wait_cqe_ms(&ring, &cqe, 2000));
		if (cqe->user_data == 1)
			futex_res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
	}
	ASSERT_EQ(-ECANCELED, futex_res);
	io_uring_queue_exit(&ring);
}

TEST_F(ur, waitv_many_queues)
{
	struct ipcx_mq *qs[2] = { self->a, self->b };
	struct futex_waitv v[2];
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	pid_t pid;
	int i;

	NEED(IPCX_FEAT_URING_FUTEXV);
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, ipcx_mq_waitv_fill(qs[i], &v[i], 0));
	sqe = io_uring_get_sqe(&ring);
	ASSERT_EQ(0, ipcx_uring_prep_futex_waitv(sqe, v, 2));
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(-ETIME, wait_cqe_ms(&ring, &cqe, 30));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(ipcx_mq_send(self->b, "b", 1, 0) ? 1 : 0);
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(0, wait_cqe_ms(&ring, &cqe, 2000));
	ASSERT_EQ(1, cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
}

TEST_F(ur, wait_any)
{
	struct ipcx_mq *qs[2] = { self->a, self->b };
	struct timespec dl = t_deadline_ms(50);
	pid_t pid;

	NEED(IPCX_FEAT_FUTEX_WAITV);
	ASSERT_EQ(-ETIMEDOUT, ipcx_mq_wait_any(qs, 2, &dl));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		t_sleep_ms(30);
		_exit(ipcx_mq_send(self->b, "b", 1, 0) ? 1 : 0);
	}
	dl = t_deadline_ms(5000);
	ASSERT_EQ(1, ipcx_mq_wait_any(qs, 2, &dl));
	ASSERT_EQ(0, t_wait(pid));
	ASSERT_EQ(-EINVAL, ipcx_mq_wait_any(qs, 0, NULL));
}

TEST_HARNESS_MAIN
