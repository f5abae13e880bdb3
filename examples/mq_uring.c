// SPDX-License-Identifier: MIT
/*
 * mq_uring - one io_uring event loop serving a socket and two ipcx queues.
 *
 * Two producer processes feed an "orders" queue and a "cancels" queue; a
 * third writes text lines to a socket. The consumer never blocks in a
 * queue call: it arms "queue readable" in its own ring next to its socket
 * read, each arm guarded by a linked timeout (a dead producer can never
 * leave it asleep), and drains a queue with tryreceive when its completion
 * arrives.
 *
 * Build: cc -o mq_uring mq_uring.c -Iuapi libipcx.a -luring
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ipcx.h>

#define N_MSGS	100000
#define TAG_SOCK	1
#define TAG_Q0		2	/* + queue index */
#define TAG_GUARD	100

struct order {
	uint64_t seq;		/* UINT64_MAX: the producer is done */
	char text[24];
};

static void producer(struct ipcx_mq *q, const char *what)
{
	struct order o = { 0 };
	uint64_t i;

	for (i = 0; i < N_MSGS; i++) {
		o.seq = i;
		snprintf(o.text, sizeof(o.text), "%s %llu", what, (unsigned long long)i);
		if (ipcx_mq_send(q, &o, sizeof(o), (unsigned int)(i % 4)))
			_exit(1);
	}
	o.seq = UINT64_MAX;
	_exit(ipcx_mq_send(q, &o, sizeof(o), 0) ? 1 : 0);
}

/* Arm "readable" on queue @i with a 100 ms guard; 1 if readable already. */
static int arm_queue(struct io_uring *ring, struct ipcx_mq *q, int i,
		     struct __kernel_timespec *guard)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	int r = ipcx_mq_prep_readable(q, sqe);

	if (r != 0) {
		/* the SQE is unused: turn it into a no-op */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, TAG_GUARD);
		return r;
	}
	io_uring_sqe_set_data64(sqe, TAG_Q0 + i);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(ring);
	ipcx_mq_prep_link_timeout(sqe, guard);
	io_uring_sqe_set_data64(sqe, TAG_GUARD);
	return 0;
}

int main(void)
{
	IPCX_OPTS(ipcx_mq_opts, o, .max_msgs = 1024, .max_size = sizeof(struct order));
	struct __kernel_timespec guard = { 0, 100 * 1000000L };
	const char *names[2] = { "orders", "cancels" };
	uint64_t got[2] = { 0, 0 }, lines = 0, wakeups = 0;
	struct ipcx_mq *q[2];
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char sockbuf[256];
	int sv[2], i, done = 0, sock_open = 1, armed[2] = { 0, 0 };
	pid_t pids[3];

	if (!(ipcx_features() & IPCX_FEAT_URING_FUTEX)) {
		printf("this kernel lacks IORING_OP_FUTEX_WAIT (6.7+)\n");
		return 0;
	}
	for (i = 0; i < 2; i++) {
		int r = ipcx_mq_open_memfd(&q[i], &o);

		if (r) {
			fprintf(stderr, "ipcx_mq_open_memfd: %s\n", strerror(-r));
			return 1;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || io_uring_queue_init(16, &ring, 0)) {
		perror("setup");
		return 1;
	}
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			producer(q[i], names[i]);
	}
	pids[2] = fork();
	if (pids[2] == 0) {
		for (i = 0; i < 100; i++) {
			dprintf(sv[1], "status line %d\n", i);
			usleep(1000);
		}
		_exit(0);
	}
	close(sv[1]);

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv(sqe, sv[0], sockbuf, sizeof(sockbuf), 0);
	io_uring_sqe_set_data64(sqe, TAG_SOCK);
	while (done < 2 || sock_open) {
		for (i = 0; i < 2; i++) {
			if (armed[i] || got[i] == UINT64_MAX)
				continue;
			/* drain what is there, then arm */
			for (;;) {
				struct order m;
				ssize_t n = ipcx_mq_tryreceive(q[i], &m, sizeof(m), NULL);

				if (n < 0)
					break;
				if (m.seq == UINT64_MAX) {
					printf("%-8s %llu messages\n", names[i],
					       (unsigned long long)got[i]);
					got[i] = UINT64_MAX;
					done++;
					break;
				}
				got[i]++;
			}
			if (got[i] != UINT64_MAX && arm_queue(&ring, q[i], i, &guard) == 0)
				armed[i] = 1;
		}
		io_uring_submit_and_wait(&ring, 1);
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);

			if (tag == TAG_SOCK) {
				if (cqe->res > 0) {
					for (i = 0; i < cqe->res; i++)
						lines += sockbuf[i] == '\n';
					sqe = io_uring_get_sqe(&ring);
					io_uring_prep_recv(sqe, sv[0], sockbuf, sizeof(sockbuf), 0);
					io_uring_sqe_set_data64(sqe, TAG_SOCK);
				} else {
					sock_open = 0;
				}
			} else if (tag == TAG_Q0 || tag == TAG_Q0 + 1) {
				armed[tag - TAG_Q0] = 0;	/* woken, stale or timed out */
				wakeups++;
				/* guard expired: a producer may have died mid-send */
				if (cqe->res == -ECANCELED)
					ipcx_mq_recover(q[tag - TAG_Q0]);
			}
			io_uring_cqe_seen(&ring, cqe);
		}
	}
	printf("socket   %llu lines\n", (unsigned long long)lines);
	printf("queue wake-ups through the ring: %llu\n", (unsigned long long)wakeups);
	for (i = 0; i < 3; i++)
		waitpid(pids[i], NULL, 0);
	io_uring_queue_exit(&ring);
	for (i = 0; i < 2; i++)
		ipcx_mq_close(q[i]);
	return 0;
}
