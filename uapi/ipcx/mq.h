/* SPDX-License-Identifier: MIT */
/*
 * ipcx/mq.h - message queues: Boost.Interprocess message_queue semantics
 * (fixed maximum count and size, unsigned priorities, highest first, FIFO
 * within a priority) on shared memory and futexes, with zero-copy
 * reserve/commit and peek/release, a per-handle spin-then-sleep policy,
 * io_uring readiness and crash safety (SIGKILL of any sender or receiver at
 * any instruction leaves the queue usable, delivers no torn or duplicated
 * message, and loses none whose send returned).
 *
 * A queue lives in one memory region: a named file in the shm directory
 * (ipcx_mq_open), an anonymous memfd to share by fork or SCM_RIGHTS
 * (ipcx_mq_open_memfd / ipcx_mq_open_fd), or memory the caller provides
 * (ipcx_mq_init_at / ipcx_mq_attach_at). The handle (struct ipcx_mq) is
 * process-local and may be used by several threads.
 *
 * Deadlines are absolute CLOCK_MONOTONIC times; NULL waits forever.
 * Limits: all users of one queue must share a pid namespace (the liveness
 * of a dead peer is checked by thread id).
 */
#ifndef IPCX_MQ_H
#define IPCX_MQ_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <linux/futex.h>
#include <ipcx/common.h>
#include <ipcx/layout.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ipcx_mq;
struct io_uring_sqe;

/* ---- the shared layout (ABI) -------------------------------------------- */

#define IPCX_MQ_MAX_LEVELS	64	/* priorities 0..63 at most */
#define IPCX_MQ_DEFAULT_LEVELS	32	/* priorities 0..31 by default */
#define IPCX_MQ_MAX_MSGS	(1u << 24)
#define IPCX_MQ_MAX_SIZE	(1u << 30)

/* Creation flags (struct ipcx_mq_opts.flags, stored in the queue). */
#define IPCX_MQ_SPSC		0x1u	/* one sender thread and one receiver thread at a time */

/* Bit 31 of the sequence and lock words: somebody sleeps (or will) on it. */
#define IPCX_MQ_WAITERS		0x80000000u

/* One side (senders or receivers): its own cache line. */
struct ipcx_mq_side {
	uint32_t lock;		/* owner tid | IPCX_MQ_WAITERS; 0 = free */
	uint32_t cpu;		/* CPU this side last ran on, + 1 (0 = unknown) */
	uint32_t pos;		/* senders: free-ring head; receivers: unused (the
				 * free-ring tail is recv_pos, on a line of its own
				 * that a sender waiting for room can poll) */
	uint32_t pos_seen;	/* cached copy of the other side's pos */
	uint32_t intent;	/* 1 while a commit/release is half done */
	uint32_t i_idx;		/* slot of that operation */
	uint32_t i_lvl;		/* its priority level */
	uint32_t i_lpos;	/* level tail (senders) / head (receivers) before it */
	uint32_t i_fpos;	/* free-ring pos before it */
	uint32_t zc;		/* 1 while a reservation / peek is held */
	uint32_t zc_idx;
	uint32_t zc_lvl;
	uint32_t inorder;	/* receivers, SPSC: every message before free-ring
				 * position pos - max_msgs has been taken */
	uint32_t reserved[3];
};

/* Receivers' state of one priority level (the senders' is its tail). */
struct ipcx_mq_rlevel {
	uint32_t head;		/* next position to take */
	uint32_t tail_seen;	/* cached copy of the level's tail */
};

struct ipcx_mq_header {
	struct ipcx_obj_header obj;	/* kind IPCX_KIND_MQ */
	/* configuration, fixed at creation */
	uint32_t max_msgs;
	uint32_t max_size;
	uint32_t slot_size;		/* 16-byte slot header + payload, 64-aligned */
	uint32_t levels;		/* priorities 0..levels-1 */
	uint32_t ring_size;		/* power of two >= max_msgs */
	uint32_t flags;			/* IPCX_MQ_SPSC */
	uint32_t free_size;		/* free-ring entries: power of two >= 2 * ring_size, >= 16 */
	uint32_t cfg_reserved[9];
	struct ipcx_mq_side send;	/* 128 */
	struct ipcx_mq_side recv;	/* 192 */
	uint32_t rseq;			/* 256: receivers sleep here ("readable") */
	uint32_t rseq_fence;		/* receivers arming << 3 | recent << 2 | state (2: commits fence) */
	uint32_t rseq_pad[14];
	uint32_t wseq;			/* 320: senders sleep here ("writable") */
	uint32_t wseq_fence;		/* senders arming << 3 | recent << 2 | state (2: releases fence) */
	uint32_t wseq_pad[14];
	uint64_t used;			/* 384: levels ever published to (senders; only grows) */
	uint64_t used_pad[7];
	uint32_t recv_pos;		/* 448: free-ring tail (receivers give slots back) */
	uint32_t recv_pos_pad[15];
	/*
	 * Per level, written by senders only: the tail (next position to
	 * fill, low 32 bits) and the slot of the last message published there
	 * (high 32 bits), in one word so a receiver reads both at once. Packed
	 * so that a receiver finds the highest non-empty level by reading a
	 * few lines and comparing with its heads (no read-modify-write by
	 * either side); a level holding one message hands over its slot
	 * without a look at the level's ring.
	 */
	uint64_t tl[IPCX_MQ_MAX_LEVELS];			/* 512 */
	struct ipcx_mq_rlevel rlevel[IPCX_MQ_MAX_LEVELS];	/* 1024: receivers only */
	/*
	 * Followed, each 64-byte aligned, by: the free ring (free_size u32 slot
	 * indices), one ring per level (levels * ring_size u32), and max_msgs
	 * slots of slot_size bytes each.
	 */
};

#ifdef __cplusplus
#define IPCX_MQ_ASSERT(c, m) static_assert(c, m)
#else
#define IPCX_MQ_ASSERT(c, m) _Static_assert(c, m)
#endif
IPCX_MQ_ASSERT(sizeof(struct ipcx_mq_side) == 64, "ipcx_mq_side is ABI");
IPCX_MQ_ASSERT(sizeof(struct ipcx_mq_rlevel) == 8, "ipcx_mq_rlevel is ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, send) == 128, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, recv) == 192, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, rseq) == 256, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, wseq) == 320, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, used) == 384, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, recv_pos) == 448, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, tl) == 512, "mq ABI");
IPCX_MQ_ASSERT(offsetof(struct ipcx_mq_header, rlevel) == 1024, "mq ABI");
IPCX_MQ_ASSERT(sizeof(struct ipcx_mq_header) == 1536, "mq ABI");

/* ---- options -------------------------------------------------------------- */

/* Wait policies of a handle (what a send/receive does when it must wait). */
enum ipcx_mq_wait {
	IPCX_MQ_WAIT_DEFAULT	= 0,	/* spin up to spin_ns (default 20 us) only while
					 * the peer last ran on another CPU, then sleep */
	IPCX_MQ_WAIT_SLEEP	= 1,	/* sleep at once */
	IPCX_MQ_WAIT_SPIN	= 2,	/* spin up to spin_ns, then sleep, always */
	IPCX_MQ_WAIT_POLL	= 3,	/* busy poll until ready or the deadline */
};

#define IPCX_MQ_DEFAULT_SPIN_NS	20000u

/**
 * struct ipcx_mq_opts - creation and open options (IPCX_OPTS(ipcx_mq_opts, o, ...))
 * @sz: sizeof(struct ipcx_mq_opts), set by IPCX_OPTS()
 * @max_msgs: capacity, 1..IPCX_MQ_MAX_MSGS (creation only; ignored on open)
 * @max_size: largest message in bytes, 0..IPCX_MQ_MAX_SIZE (creation only)
 * @levels: priority levels, 1..64; 0 = IPCX_MQ_DEFAULT_LEVELS (creation only)
 * @flags: IPCX_MQ_SPSC (creation only)
 * @perm: permissions of a created file; 0 = 0600 (applied exactly, no umask)
 * @dir: shm directory; NULL = $IPCX_SHM_DIR or /dev/shm
 * @wait: enum ipcx_mq_wait of the handle
 * @spin_ns: spin budget for IPCX_MQ_WAIT_DEFAULT/SPIN; 0 = IPCX_MQ_DEFAULT_SPIN_NS
 */
struct ipcx_mq_opts {
	size_t sz;
	uint32_t max_msgs;
	uint32_t max_size;
	uint32_t levels;
	uint32_t flags;
	unsigned int perm;
	const char *dir;
	unsigned int wait;
	uint64_t spin_ns;
};

/* ---- creation, opening, closing ------------------------------------------ */

/**
 * ipcx_mq_open() - open or atomically create a named queue
 * @out: receives the handle
 * @name: object name (letters, digits, '.', '_', '-')
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: sizes for creation, permissions, directory, wait policy (NULL: defaults,
 *        which only suffice for IPCX_OPEN_ONLY)
 *
 * Return: 0; -EEXIST (create-only, name taken), -ENOENT (open-only, absent),
 * -EINVAL (bad name, mode or sizes), -EPROTO (the file is not a queue this
 * library understands), -ENOSPC (the shm filesystem is full), -ENOMEM, -errno.
 */
IPCX_API int ipcx_mq_open(struct ipcx_mq **out, const char *name, unsigned int mode,
			  const struct ipcx_mq_opts *opts);

/**
 * ipcx_mq_open_memfd() - create an anonymous queue in a new memfd
 *
 * The memfd (ipcx_mq_fd()) is sealed against shrinking and growing; share it
 * by fork() (the handle stays valid in the child) or SCM_RIGHTS and
 * ipcx_mq_open_fd().
 *
 * Return: 0, -EINVAL (sizes), -ENOMEM, -errno.
 */
IPCX_API int ipcx_mq_open_memfd(struct ipcx_mq **out, const struct ipcx_mq_opts *opts);

/**
 * ipcx_mq_open_fd() - attach to the queue in @fd (a memfd or a queue file)
 *
 * The handle maps @fd and does not keep or close it.
 *
 * Return: 0, -EPROTO (not a valid queue), -errno.
 */
IPCX_API int ipcx_mq_open_fd(struct ipcx_mq **out, int fd, const struct ipcx_mq_opts *opts);

/**
 * ipcx_mq_size() - bytes a queue of this shape needs (for ipcx_mq_init_at)
 *
 * Return: the size, or 0 when the shape is invalid.
 */
IPCX_API size_t ipcx_mq_size(uint32_t max_msgs, uint32_t max_size, uint32_t levels);

/**
 * ipcx_mq_init_at() - build a new queue in caller memory and open it
 * @mem: 64-byte aligned, shared however the caller likes
 * @len: at least ipcx_mq_size() of the shape in @opts
 *
 * Return: 0, -EINVAL (alignment, sizes), -ENOSPC (@len too small), -ENOMEM.
 */
IPCX_API int ipcx_mq_init_at(struct ipcx_mq **out, void *mem, size_t len,
			     const struct ipcx_mq_opts *opts);

/**
 * ipcx_mq_attach_at() - open the queue already built at @mem
 *
 * Return: 0, -EPROTO (not a queue, or inconsistent with @len), -ENOMEM.
 */
IPCX_API int ipcx_mq_attach_at(struct ipcx_mq **out, void *mem, size_t len,
			       const struct ipcx_mq_opts *opts);

/**
 * ipcx_mq_close() - release a handle (unmap, close its fd); the queue stays
 *
 * A reservation or peek still held by this thread is abandoned first.
 *
 * Return: 0, or -EINVAL for NULL.
 */
IPCX_API int ipcx_mq_close(struct ipcx_mq *q);

/**
 * ipcx_mq_unlink() - remove a named queue's name (@dir NULL: default directory)
 *
 * Return: 0, -ENOENT, -EINVAL, -errno.
 */
IPCX_API int ipcx_mq_unlink(const char *name, const char *dir);

/** ipcx_mq_fd() - the handle's fd (named or memfd queues), or -EINVAL */
IPCX_API int ipcx_mq_fd(const struct ipcx_mq *q);

/**
 * ipcx_mq_set_wait() - change the handle's wait policy (enum ipcx_mq_wait)
 *
 * Return: 0, -EINVAL.
 */
IPCX_API int ipcx_mq_set_wait(struct ipcx_mq *q, unsigned int wait, uint64_t spin_ns);

/* ---- queries -------------------------------------------------------------- */

/** ipcx_mq_get_num_msg() - messages queued now (a snapshot), or -EINVAL */
IPCX_API long ipcx_mq_get_num_msg(const struct ipcx_mq *q);
/** ipcx_mq_get_max_msg() - capacity, or -EINVAL */
IPCX_API long ipcx_mq_get_max_msg(const struct ipcx_mq *q);
/** ipcx_mq_get_max_msg_size() - largest message in bytes, or -EINVAL */
IPCX_API long ipcx_mq_get_max_msg_size(const struct ipcx_mq *q);
/** ipcx_mq_get_levels() - number of priority levels (priorities 0..n-1), or -EINVAL */
IPCX_API long ipcx_mq_get_levels(const struct ipcx_mq *q);

/* ---- copying send / receive ---------------------------------------------- */

/**
 * ipcx_mq_send() - send a copy of @len bytes with priority @prio, waiting for room
 *
 * Return: 0; -EMSGSIZE (@len > max size), -EINVAL (@prio >= levels, NULL),
 * -EPROTO (the shared layout is corrupted), -EBUSY (SPSC queue used by a
 * second live sender at once).
 */
IPCX_API int ipcx_mq_send(struct ipcx_mq *q, const void *buf, size_t len, unsigned int prio);
/** ipcx_mq_trysend() - as ipcx_mq_send(), but -EAGAIN at once when full */
IPCX_API int ipcx_mq_trysend(struct ipcx_mq *q, const void *buf, size_t len,
			     unsigned int prio);
/** ipcx_mq_timedsend() - as ipcx_mq_send(), -ETIMEDOUT after @abs_mono */
IPCX_API int ipcx_mq_timedsend(struct ipcx_mq *q, const void *buf, size_t len,
			       unsigned int prio, const struct timespec *abs_mono);

/**
 * ipcx_mq_receive() - take the highest-priority, oldest message into @buf
 * @cap: room in @buf; may be smaller than the maximum size
 * @prio: receives the message's priority (may be NULL)
 *
 * Return: the message's length; -EMSGSIZE when it is longer than @cap (the
 * message stays queued), -EINVAL, -EPROTO, -EBUSY as for send.
 */
IPCX_API ssize_t ipcx_mq_receive(struct ipcx_mq *q, void *buf, size_t cap,
				 unsigned int *prio);
/** ipcx_mq_tryreceive() - as ipcx_mq_receive(), but -EAGAIN at once when empty */
IPCX_API ssize_t ipcx_mq_tryreceive(struct ipcx_mq *q, void *buf, size_t cap,
				    unsigned int *prio);
/** ipcx_mq_timedreceive() - as ipcx_mq_receive(), -ETIMEDOUT after @abs_mono */
IPCX_API ssize_t ipcx_mq_timedreceive(struct ipcx_mq *q, void *buf, size_t cap,
				      unsigned int *prio, const struct timespec *abs_mono);

/* ---- zero-copy ------------------------------------------------------------ */

/*
 * A reservation (or a peek) belongs to the calling thread until commit or
 * abort (release or unpeek). In MPMC mode it excludes the other senders
 * (receivers) meanwhile: keep it short. If the holder dies, the next sender
 * (receiver) takes over after a liveness check, and a reservation that was
 * never committed is never delivered. One reservation and one peek per
 * thread per queue at a time.
 */

/**
 * ipcx_mq_reserve() - wait for a free slot and lend it: write up to max size bytes at *@buf
 * @flags: 0, or IPCX_MQ_TRY (-EAGAIN instead of waiting)
 * @abs_mono: deadline (NULL: none)
 *
 * Return: 0; -EAGAIN, -ETIMEDOUT, -EDEADLK (this thread already holds a
 * reservation on @q), -EBUSY, -EPROTO, -EINVAL.
 */
IPCX_API int ipcx_mq_reserve(struct ipcx_mq *q, void **buf, unsigned int flags,
			     const struct timespec *abs_mono);

#define IPCX_MQ_TRY	0x1u

/**
 * ipcx_mq_commit() - publish the reserved slot as a message of @len bytes, priority @prio
 *
 * Return: 0; -EMSGSIZE or -EINVAL (bad @prio) leave the reservation held;
 * -EPERM when this thread holds no reservation.
 */
IPCX_API int ipcx_mq_commit(struct ipcx_mq *q, size_t len, unsigned int prio);

/** ipcx_mq_abort() - give the reserved slot back unsent. Return: 0 or -EPERM */
IPCX_API int ipcx_mq_abort(struct ipcx_mq *q);

/**
 * ipcx_mq_peek() - wait for the next message and show it in place
 * @buf, @len, @prio: receive its address (valid until release/unpeek), length, priority
 *
 * Return: 0; -EAGAIN (IPCX_MQ_TRY, empty), -ETIMEDOUT, -EDEADLK, -EBUSY, -EPROTO.
 */
IPCX_API int ipcx_mq_peek(struct ipcx_mq *q, const void **buf, size_t *len,
			  unsigned int *prio, unsigned int flags,
			  const struct timespec *abs_mono);

/** ipcx_mq_release() - consume the peeked message. Return: 0 or -EPERM */
IPCX_API int ipcx_mq_release(struct ipcx_mq *q);

/** ipcx_mq_unpeek() - leave the peeked message queued (first in line). Return: 0 or -EPERM */
IPCX_API int ipcx_mq_unpeek(struct ipcx_mq *q);

/* ---- readiness: io_uring and futex_waitv --------------------------------- */

/*
 * "Readable" means the queue may hold a message, "writable" that it may have
 * room; after a completion, use the try variants (another receiver may have
 * been faster). Each prep publishes the caller as a waiter, so senders
 * (receivers) wake it with one FUTEX_WAKE; they never make a syscall when
 * nobody waits. Pair the SQE with a liveness guard where a dead peer could
 * leave it pending: an IORING_OP_LINK_TIMEOUT linked to it
 * (ipcx_mq_prep_link_timeout()), or an IORING_OP_POLL_ADD on the peer's
 * pidfd in the same ring.
 */

/**
 * ipcx_mq_prep_readable() - fill @sqe with a futex wait for "readable"
 *
 * Return: 1 when the queue is already readable, or may be (the SQE is left
 * untouched: try to receive now; -EAGAIN then means prepare again), 0 when
 * the SQE was filled (IORING_OP_FUTEX_WAIT; its
 * completion's res is 0 or -EAGAIN, both mean "look again"), -EOPNOTSUPP
 * (kernel lacks IORING_OP_FUTEX_WAIT), -EINVAL.
 */
IPCX_API int ipcx_mq_prep_readable(struct ipcx_mq *q, struct io_uring_sqe *sqe);
/** ipcx_mq_prep_writable() - as ipcx_mq_prep_readable(), for "has room" */
IPCX_API int ipcx_mq_prep_writable(struct ipcx_mq *q, struct io_uring_sqe *sqe);

/**
 * ipcx_mq_waitv_fill() - describe a wait for readable (@writable false) or
 * writable in @w, for futex_waitv(2) or ipcx_uring_prep_futex_waitv()
 *
 * Return: 1 ready now or maybe (@w untouched: try now), 0 filled, -EINVAL.
 */
IPCX_API int ipcx_mq_waitv_fill(struct ipcx_mq *q, struct futex_waitv *w, int writable);

/**
 * ipcx_mq_wait_any() - sleep until one of @nr queues is readable
 * @qs: up to 128 queues
 *
 * Return: index of a queue that is (or just was) readable, -ETIMEDOUT,
 * -EOPNOTSUPP (no futex_waitv), -EINVAL.
 */
IPCX_API int ipcx_mq_wait_any(struct ipcx_mq *const *qs, unsigned int nr,
			      const struct timespec *abs_mono);

/**
 * ipcx_mq_recover() - reclaim a side of @q whose owner died, if any
 *
 * Blocking calls do this themselves while they wait. An event loop calls it
 * when a readiness wait's guard (linked timeout) expires: a peer that died
 * between changing the queue and waking the loop is then found, its
 * operation repaired, and every waiter woken.
 *
 * Return: 1 when something was repaired, 0 when nothing needed it, -EINVAL.
 */
IPCX_API int ipcx_mq_recover(struct ipcx_mq *q);

/**
 * ipcx_mq_prep_link_timeout() - fill @sqe with an IORING_OP_LINK_TIMEOUT of @ts
 * (relative; the caller keeps @ts alive until submission and sets IOSQE_IO_LINK
 * on the preceding futex SQE)
 *
 * Return: 0 or -EINVAL.
 */
struct __kernel_timespec;
IPCX_API int ipcx_mq_prep_link_timeout(struct io_uring_sqe *sqe,
				       const struct __kernel_timespec *ts);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_MQ_H */
