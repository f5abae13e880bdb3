// SPDX-License-Identifier: MIT
/*
 * mq.c - message queues: layout, creation, zero-copy and copying send/receive.
 *
 * Design (Documentation/mq.md has the long form):
 * - A pool of max_msgs slots. Free slot indices sit in the free ring:
 *   senders take at send.pos, receivers give back at recv_pos.
 * - One ring of slot indices per priority level (head: receivers, tail:
 *   senders). The tails are packed in one or two lines, next to a mask of
 *   the levels senders ever used: a receive compares them with its heads
 *   from the highest used level down and takes the oldest entry of the
 *   first non-empty one. Neither side ever writes the other's words; a
 *   single-priority queue never looks past level 0.
 * - Senders and receivers each have their own side (cache line) and, in
 *   MPMC mode, their own robust owner lock (olock.h): a sender and a
 *   receiver never contend on a lock. In SPSC mode the side's lock word is
 *   a plain owner mark with no atomic read-modify-write.
 * - Waiting: receivers sleep on rseq, senders on wseq, after setting the
 *   word's WAITERS bit; a peer that changed the queue wakes only if that
 *   bit is set, so nobody makes a syscall while the other side is awake.
 * - Crash safety: each commit/release writes a one-record intent before
 *   its first shared change; whoever takes a side over from a dead owner
 *   rolls that operation forward (a published message stays published,
 *   the free ring catches up) or back (a receive that had not yet freed its
 *   slot leaves the message queued). A reservation or peek that was never
 *   committed changed nothing shared, so it simply vanishes with its owner.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <ipcx/features.h>
#include "mq.h"
#include "../shm/shm_priv.h"
#include "olock.h"
#include "../shm/named.h"

#define HDR_SIZE	sizeof(struct ipcx_mq_header)
/* Longest sleep between two looks at a peer side that might have died. */
#define MQ_IDLE_SLICE_NS	100000000ull

struct mq_shape {
	uint32_t ring_size;
	uint32_t free_size;
	uint32_t slot_size;
	uint64_t off_free;
	uint64_t off_rings;
	uint64_t off_slots;
	uint64_t total;
};

static uint64_t align64(uint64_t x)
{
	return (x + 63) & ~63ull;
}

static int mq_shape(uint32_t max_msgs, uint32_t max_size, uint32_t levels,
		    struct mq_shape *s)
{
	uint32_t ring = 1;

	if (max_msgs == 0 || max_msgs > IPCX_MQ_MAX_MSGS || max_size > IPCX_MQ_MAX_SIZE ||
	    levels == 0 || levels > IPCX_MQ_MAX_LEVELS)
		return -EINVAL;
	while (ring < max_msgs)
		ring <<= 1;
	s->ring_size = ring;
	/*
	 * The free ring is twice as long (at least one line): the sender
	 * reads free slots about max_msgs positions behind where the receiver
	 * writes them back, so the two work on different lines instead of
	 * passing one line back and forth on every message.
	 */
	s->free_size = ring < 8 ? 16 : 2 * ring;
	s->slot_size = (uint32_t)align64(sizeof(struct ipcx_mq_slot) + (uint64_t)max_size);
	s->off_free = align64(HDR_SIZE);
	s->off_rings = s->off_free + align64((uint64_t)s->free_size * 4);
	s->off_slots = s->off_rings + align64((uint64_t)levels * ring * 4);
	s->total = s->off_slots + (uint64_t)max_msgs * s->slot_size;
	if (s->total > (1ull << 46))
		return -EINVAL;
	return 0;
}

size_t ipcx_mq_size(uint32_t max_msgs, uint32_t max_size, uint32_t levels)
{
	struct mq_shape s;

	if (mq_shape(max_msgs, max_size, levels ? levels : IPCX_MQ_DEFAULT_LEVELS, &s))
		return 0;
	return (size_t)s.total;
}

/* Copy the caller's options (any struct size) into a full, zeroed struct. */
static int mq_opts(const struct ipcx_mq_opts *in, struct ipcx_mq_opts *o)
{
	int ret = ipcx_opts_copy(o, sizeof(*o), in);

	if (ret)
		return ret;
	o->sz = sizeof(*o);
	return o->wait > IPCX_MQ_WAIT_POLL ? -EINVAL : 0;
}

/* A new queue's levels and shape from checked options. */
static int mq_new_shape(const struct ipcx_mq_opts *o, uint32_t *levels, struct mq_shape *s)
{
	if (o->flags & ~IPCX_MQ_SPSC)
		return -EINVAL;
	*levels = o->levels ? o->levels : IPCX_MQ_DEFAULT_LEVELS;
	return mq_shape(o->max_msgs, o->max_size, *levels, s);
}

/* Build a fresh queue in @mem (at least s->total bytes). */
static void mq_build(void *mem, const struct ipcx_mq_opts *o, uint32_t levels,
		     const struct mq_shape *s, bool fresh)
{
	struct ipcx_mq_header *h = mem;
	uint32_t *free_ring = (uint32_t *)((char *)mem + s->off_free);
	uint32_t i;

	memset(mem, 0, (size_t)s->off_slots);
	ipcx_obj_header_init(&h->obj, IPCX_KIND_MQ, (uint32_t)HDR_SIZE, s->total);
	h->obj.flags = o->flags & IPCX_MQ_SPSC;
	h->max_msgs = o->max_msgs;
	h->max_size = o->max_size;
	h->slot_size = s->slot_size;
	h->levels = levels;
	h->ring_size = s->ring_size;
	h->free_size = s->free_size;
	h->flags = o->flags & IPCX_MQ_SPSC;
	for (i = 0; i < o->max_msgs; i++)
		free_ring[i] = i;
	/*
	 * Caller memory may hold an old queue: its slot stamps must not pass
	 * for new messages. Files and memfds start zeroed.
	 */
	if (!fresh)
		for (i = 0; i < o->max_msgs; i++)
			((struct ipcx_mq_slot *)((char *)mem + s->off_slots +
						 (size_t)i * s->slot_size))->seq = 0;
	h->recv_pos = o->max_msgs;
	h->send.pos_seen = o->max_msgs;
	ipcx_mq_fence();
}

/* Validate a queue at @mem and fill a handle from it. */
static int mq_attach(struct ipcx_mq *q, void *mem, size_t len, const struct ipcx_mq_opts *o)
{
	struct ipcx_mq_header *h = mem;
	struct mq_shape s;

	if (!mem || ((uintptr_t)mem & 63))
		return -EINVAL;
	if (len < HDR_SIZE)
		return -EPROTO;
	if (ipcx_obj_header_check(&h->obj, IPCX_KIND_MQ) || h->obj.header_size != HDR_SIZE)
		return -EPROTO;
	if (mq_shape(h->max_msgs, h->max_size, h->levels, &s) || h->ring_size != s.ring_size ||
	    h->free_size != s.free_size ||
	    h->slot_size != s.slot_size || (h->flags & ~IPCX_MQ_SPSC) ||
	    h->obj.total_size != s.total || s.total > len)
		return -EPROTO;
	q->h = h;
	q->free_ring = (uint32_t *)((char *)mem + s.off_free);
	q->rings = (uint32_t *)((char *)mem + s.off_rings);
	q->slots = (uint8_t *)mem + s.off_slots;
	q->max_msgs = h->max_msgs;
	q->max_size = h->max_size;
	q->slot_size = s.slot_size;
	q->levels = h->levels;
	q->mask = s.ring_size - 1;
	q->fmask = s.free_size - 1;
	q->spsc = h->flags & IPCX_MQ_SPSC;
	q->wait = o->wait;
	q->spin_ns = o->spin_ns ? o->spin_ns : IPCX_MQ_DEFAULT_SPIN_NS;
	return 0;
}

static struct ipcx_mq *mq_alloc(void)
{
	struct ipcx_mq *q = calloc(1, sizeof(*q));

	if (q)
		q->fd = -1;
	return q;
}

int ipcx_mq_init_at(struct ipcx_mq **out, void *mem, size_t len,
		    const struct ipcx_mq_opts *opts)
{
	struct ipcx_mq_opts o;
	struct mq_shape s;
	struct ipcx_mq *q;
	uint32_t levels;
	int ret;

	if (!out || !mem || ((uintptr_t)mem & 63))
		return -EINVAL;
	ret = mq_opts(opts, &o);
	if (ret)
		return ret;
	ret = mq_new_shape(&o, &levels, &s);
	if (ret)
		return ret;
	if (len < s.total)
		return -ENOSPC;
	q = mq_alloc();
	if (!q)
		return -ENOMEM;
	mq_build(mem, &o, levels, &s, false);
	ret = mq_attach(q, mem, len, &o);
	if (ret) {
		free(q);
		return ret;
	}
	*out = q;
	return 0;
}

int ipcx_mq_attach_at(struct ipcx_mq **out, void *mem, size_t len,
		      const struct ipcx_mq_opts *opts)
{
	struct ipcx_mq_opts o;
	struct ipcx_mq *q;
	int ret;

	if (!out)
		return -EINVAL;
	ret = mq_opts(opts, &o);
	if (ret)
		return ret;
	q = mq_alloc();
	if (!q)
		return -ENOMEM;
	ret = mq_attach(q, mem, len, &o);
	if (ret) {
		free(q);
		return ret;
	}
	*out = q;
	return 0;
}

/* Map all of @fd and attach; the handle keeps the mapping. */
static int mq_map_fd(struct ipcx_mq **out, int fd, bool own_fd, const struct ipcx_mq_opts *o)
{
	struct ipcx_mq *q;
	struct stat st;
	void *mem;
	int ret;

	if (fstat(fd, &st))
		return -errno;
	if (st.st_size < (off_t)HDR_SIZE)
		return -EPROTO;
	mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	q = mq_alloc();
	if (!q) {
		munmap(mem, (size_t)st.st_size);
		return -ENOMEM;
	}
	ret = mq_attach(q, mem, (size_t)st.st_size, o);
	if (ret) {
		munmap(mem, (size_t)st.st_size);
		free(q);
		return ret;
	}
	q->map = mem;
	q->map_len = (size_t)st.st_size;
	q->fd = fd;
	q->own_fd = own_fd;
	*out = q;
	return 0;
}

struct mq_init_arg {
	const struct ipcx_mq_opts *o;
	uint32_t levels;
	struct mq_shape s;
};

static int mq_init_file(int fd, void *arg)
{
	struct mq_init_arg *a = arg;
	void *mem;

	if (ftruncate(fd, (off_t)a->s.total))
		return -errno;
	mem = mmap(NULL, (size_t)a->s.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	mq_build(mem, a->o, a->levels, &a->s, true);
	munmap(mem, (size_t)a->s.total);
	return 0;
}

int ipcx_mq_open(struct ipcx_mq **out, const char *name, unsigned int mode,
		 const struct ipcx_mq_opts *opts)
{
	struct ipcx_named_req req = { .kind = IPCX_KIND_MQ };
	unsigned int how = mode & IPCX_OPEN_MODE_MASK;
	struct mq_init_arg a;
	struct ipcx_mq_opts o;
	bool created;
	int fd, ret;

	if (!out || !how || (mode & ~IPCX_OPEN_MODE_MASK))
		return -EINVAL;
	ret = mq_opts(opts, &o);
	if (ret)
		return ret;
	a.o = &o;
	if (how & IPCX_CREATE_ONLY) {
		ret = mq_new_shape(&o, &a.levels, &a.s);
		if (ret)
			return ret;
		req.size = a.s.total;
		req.init = mq_init_file;
		req.arg = &a;
	}
	req.name = name;
	req.mode = how;
	req.perm = (mode_t)o.perm;
	req.dir = o.dir;
	fd = ipcx_named_open(&req, &created);
	if (fd < 0)
		return fd;
	ret = mq_map_fd(out, fd, true, &o);
	if (ret)
		close(fd);
	return ret;
}

int ipcx_mq_open_memfd(struct ipcx_mq **out, const struct ipcx_mq_opts *opts)
{
	struct ipcx_mq_opts o;
	struct mq_shape s;
	uint32_t levels;
	void *mem;
	int fd, ret;

	if (!out)
		return -EINVAL;
	ret = mq_opts(opts, &o);
	if (ret)
		return ret;
	ret = mq_new_shape(&o, &levels, &s);
	if (ret)
		return ret;
	fd = ipcx_memfd_create("ipcx.mq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)s.total)) {
		ret = -errno;
		goto fail;
	}
	if (fallocate(fd, 0, 0, (off_t)s.total) && errno != EOPNOTSUPP) {
		ret = -errno;
		goto fail;
	}
	mem = mmap(NULL, (size_t)s.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto fail;
	}
	mq_build(mem, &o, levels, &s, true);
	munmap(mem, (size_t)s.total);
	/* No peer can shrink the file under our mappings (SIGBUS). */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	ret = mq_map_fd(out, fd, true, &o);
	if (ret)
		goto fail;
	return 0;
fail:
	close(fd);
	return ret;
}

int ipcx_mq_open_fd(struct ipcx_mq **out, int fd, const struct ipcx_mq_opts *opts)
{
	struct ipcx_mq_opts o;
	int ret;

	if (!out || fd < 0)
		return -EINVAL;
	ret = mq_opts(opts, &o);
	if (ret)
		return ret;
	return mq_map_fd(out, fd, false, &o);
}

int ipcx_mq_unlink(const char *name, const char *dir)
{
	return ipcx_named_unlink(IPCX_KIND_MQ, name, dir);
}

int ipcx_mq_fd(const struct ipcx_mq *q)
{
	return q && q->fd >= 0 ? q->fd : -EINVAL;
}

int ipcx_mq_set_wait(struct ipcx_mq *q, unsigned int wait, uint64_t spin_ns)
{
	if (!q || wait > IPCX_MQ_WAIT_POLL)
		return -EINVAL;
	q->wait = wait;
	q->spin_ns = spin_ns ? spin_ns : IPCX_MQ_DEFAULT_SPIN_NS;
	return 0;
}

long ipcx_mq_get_num_msg(const struct ipcx_mq *q)
{
	long n = 0;
	uint32_t l;

	if (!q)
		return -EINVAL;
	for (l = 0; l < q->levels; l++) {
		uint32_t d = MQ_TAIL(q->h, l) - MQ_LD(&q->h->rlevel[l].head);

		n += d > q->max_msgs ? q->max_msgs : d;
	}
	return n > (long)q->max_msgs ? (long)q->max_msgs : n;
}

long ipcx_mq_get_max_msg(const struct ipcx_mq *q)
{
	return q ? (long)q->max_msgs : -EINVAL;
}

long ipcx_mq_get_max_msg_size(const struct ipcx_mq *q)
{
	return q ? (long)q->max_size : -EINVAL;
}

long ipcx_mq_get_levels(const struct ipcx_mq *q)
{
	return q ? (long)q->levels : -EINVAL;
}

/* ---- sides: enter, leave, repair ------------------------------------------ */

static inline struct ipcx_mq_slot *mq_slot(const struct ipcx_mq *q, uint32_t idx)
{
	return (struct ipcx_mq_slot *)(q->slots + (size_t)idx * q->slot_size);
}

static inline uint32_t *mq_ring(const struct ipcx_mq *q, uint32_t lvl)
{
	return q->rings + (size_t)lvl * (q->mask + 1);
}

/* The slot the send at free-ring position @p filled, if stamped; else UINT32_MAX. */
static inline uint32_t mq_stamped(const struct ipcx_mq *q, uint32_t p)
{
	uint32_t idx = MQ_LD(&q->free_ring[p & q->fmask]);

	return idx < q->max_msgs && MQ_LD(&mq_slot(q, idx)->seq) == p + 1 ? idx : UINT32_MAX;
}

/*
 * In-order prediction (SPSC). A sender takes slots in free-ring order, so
 * the send at free-ring position p lands in slot free_ring[p], and commit
 * stamps it p + 1 after publishing its level tail. Once a receiver has
 * seen the queue empty (recv.inorder), every message before position
 * p = recv_pos - max_msgs has been taken, so the next one to arrive is the
 * one at p: polling its stamp reads one line the message travels in
 * anyway, while the level tail and ring entry stay in the sender's cache.
 * It is the next message to deliver only while it is the only one pending
 * (no stamp at p + 1 yet); otherwise priorities decide and the full scan
 * runs. Return: the slot (its level in *lvl); UINT32_MAX - 1 when it has
 * arrived but is not alone (scan); UINT32_MAX otherwise.
 */
static inline uint32_t mq_predict(const struct ipcx_mq *q, uint32_t *lvl)
{
	uint32_t p = q->h->recv_pos - q->max_msgs, idx = mq_stamped(q, p);
	const struct ipcx_mq_slot *sl;

	if (idx == UINT32_MAX)
		return UINT32_MAX;
	/*
	 * Another message pending could outrank this one, unless senders
	 * have only ever used one level (then the order is FIFO).
	 */
	if (q->max_msgs > 1 &&
	    __builtin_popcountll(__atomic_load_n(&q->h->used, __ATOMIC_RELAXED)) > 1 &&
	    mq_stamped(q, p + 1) != UINT32_MAX)
		return UINT32_MAX - 1;	/* arrived, not alone: scan */
	sl = mq_slot(q, idx);
	if (unlikely(sl->prio >= q->levels || sl->len > q->max_size))
		return UINT32_MAX;	/* the scan reports it */
	*lvl = sl->prio;
	return idx;
}

/* Spinning receiver, in order: has the predicted message arrived? */
static inline bool mq_predict_ready(const struct ipcx_mq *q)
{
	uint32_t idx = mq_stamped(q, MQ_LD(&q->h->recv_pos) - q->max_msgs);

	if (idx == UINT32_MAX)
		return false;
	/* the message's next line is on its way while the caller takes it */
	__builtin_prefetch((const char *)mq_slot(q, idx) + 64);
	return true;
}

/*
 * Take over a side whose owner died. Senders: a commit whose level entry
 * was published is finished (the free ring catches up). Receivers: a
 * release that had not yet returned its slot to the free ring is undone, so
 * the message stays queued for the next receiver. Then every level that
 * holds messages gets its bit, and every sleeper is woken to look again.
 */
static void mq_repair(struct ipcx_mq *q, bool send)
{
	struct ipcx_mq_header *h = q->h;
	struct ipcx_mq_side *s = send ? &h->send : &h->recv;
	uint32_t l;

	if (MQ_LD(&s->intent)) {
		l = MQ_LD(&s->i_lvl);
		if (l < q->levels) {
			uint32_t fpos = MQ_LD(&s->i_fpos);

			if (send) {
				/*
				 * Published: finish the stamp before any later
				 * send. Without it an in-order receiver would
				 * take the message before it for the only one
				 * pending, ahead of a later, higher priority.
				 */
				if (MQ_TAIL(h, l) != MQ_LD(&s->i_lpos) &&
				    MQ_LD(&s->pos) == fpos) {
					uint32_t i = MQ_LD(&s->i_idx);

					if (i < q->max_msgs)
						MQ_ST(&mq_slot(q, i)->seq, fpos + 1);
					MQ_ST(&s->pos, fpos + 1);
				}
			} else {
				struct ipcx_mq_rlevel *R = &h->rlevel[l];

				if (MQ_LD(&R->head) != MQ_LD(&s->i_lpos) &&
				    MQ_LD(&h->recv_pos) == fpos)
					MQ_ST(&R->head, MQ_LD(&s->i_lpos));
			}
		}
		MQ_ST(&s->intent, 0);
	}
	MQ_ST(&s->zc, 0);
	if (send) {
		uint64_t used = MQ_LD(&h->used);

		MQ_ST(&s->pos_seen, MQ_LD(&h->recv_pos));
		for (l = 0; l < q->levels; l++)
			if (MQ_TAIL(h, l) != MQ_LD(&h->rlevel[l].head))
				used |= 1ull << l;
		MQ_ST(&h->used, used);
	} else {
		MQ_ST(&s->inorder, 0);	/* a rolled-back message is out of order */
		for (l = 0; l < q->levels; l++)
			MQ_ST(&h->rlevel[l].tail_seen, MQ_LD(&h->rlevel[l].head));
	}
	ipcx_mq_seq_wake(&h->rseq, true);
	ipcx_mq_seq_wake(&h->wseq, true);
}

static inline void mq_note_cpu(struct ipcx_mq_side *s)
{
	int c = ipcx_cpu_now();
	uint32_t v = c < 0 ? 0 : (uint32_t)c + 1;

	if (__atomic_load_n(&s->cpu, __ATOMIC_RELAXED) != v)
		__atomic_store_n(&s->cpu, v, __ATOMIC_RELAXED);
}

/*
 * SPSC side found marked. Our own mark: -EDEADLK. A dead thread's: take it
 * over (CAS, since the other side may be reclaiming it too) and repair. A
 * live thread's: the other side may be repairing ours for a moment, so
 * wait up to a few ms; a side still held after that has a second live
 * user, which SPSC forbids: -EBUSY.
 */
static int mq_enter_spsc_slow(struct ipcx_mq *q, bool send, struct ipcx_mq_side *s,
			      uint32_t me)
{
	uint64_t until = 0;

	for (;;) {
		uint32_t v = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
		uint32_t o = v & ~IPCX_OLOCK_WAITERS;

		if (!v) {
			if (__atomic_compare_exchange_n(&s->lock, &v, me, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				return 0;
			continue;
		}
		if (o == me)
			return -EDEADLK;
		if (!ipcx_tid_alive(o)) {
			if (!__atomic_compare_exchange_n(&s->lock, &v, me, false,
							 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				continue;
			mq_repair(q, send);
			return 0;
		}
		if (!until)
			until = ipcx_now_ns(CLOCK_MONOTONIC) + IPCX_OLOCK_SLICE_NS;
		else if (ipcx_now_ns(CLOCK_MONOTONIC) > until)
			return -EBUSY;
		sched_yield();
	}
}

/*
 * If the side (@send: the senders') is held by a thread that no longer
 * exists, take it over, repair, and let go. Waiters call this for the
 * other side when they have slept a while: a peer that died after
 * changing the queue but before waking them can not strand them.
 * Return: 1 repaired, 0 nothing to do.
 */
static int mq_reclaim(struct ipcx_mq *q, bool send, uint32_t me)
{
	struct ipcx_mq_side *s = send ? &q->h->send : &q->h->recv;
	uint32_t v = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);
	uint32_t o = v & ~IPCX_OLOCK_WAITERS;

	if (!o || o == me || ipcx_tid_alive(o))
		return 0;
	if (!__atomic_compare_exchange_n(&s->lock, &v,
					 q->spsc ? me : (me | (v & IPCX_OLOCK_WAITERS)),
					 false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return 0;
	mq_repair(q, send);
	if (q->spsc)
		__atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
	else
		ipcx_olock_unlock(&s->lock, me);
	return 1;
}

int ipcx_mq_recover(struct ipcx_mq *q)
{
	uint32_t me;

	if (!q)
		return -EINVAL;
	me = ipcx_olock_tid();
	return mq_reclaim(q, true, me) | mq_reclaim(q, false, me);
}

/*
 * Become the owner of a side. Return: 0, -EDEADLK (we already own it),
 * -EBUSY (SPSC: another live thread owns it), -ETIMEDOUT.
 */
static int mq_enter(struct ipcx_mq *q, bool send, const struct timespec *dl, uint32_t me)
{
	struct ipcx_mq_side *s = send ? &q->h->send : &q->h->recv;
	uint32_t n;
	int r;

	if (q->spsc) {
		uint32_t o = __atomic_load_n(&s->lock, __ATOMIC_ACQUIRE);

		if (likely(!o))
			__atomic_store_n(&s->lock, me, __ATOMIC_RELAXED);
		else if ((r = mq_enter_spsc_slow(q, send, s, me)))
			return r;
	} else {
		r = ipcx_olock_lock(&s->lock, me, dl);
		if (unlikely(r < 0))
			return r;
		if (unlikely(r == 1))
			mq_repair(q, send);
	}
	/*
	 * The CPU note only steers a waiting peer's choice to spin; every
	 * 64th entry keeps it fresh enough (a stale one costs the peer at
	 * most one spin budget), and mq_wait notes ours before waiting.
	 */
	n = __atomic_load_n(&q->enters, __ATOMIC_RELAXED);
	__atomic_store_n(&q->enters, n + 1, __ATOMIC_RELAXED);
	if (unlikely(!(n % 64)))
		mq_note_cpu(s);
	return 0;
}

static inline void mq_leave(struct ipcx_mq *q, bool send, uint32_t me)
{
	struct ipcx_mq_side *s = send ? &q->h->send : &q->h->recv;

	if (q->spsc)
		__atomic_store_n(&s->lock, 0, __ATOMIC_RELEASE);
	else
		ipcx_olock_unlock(&s->lock, me);
}

/* ---- waiting --------------------------------------------------------------- */

static inline bool mq_ready(const struct ipcx_mq *q, bool send)
{
	return send ? ipcx_mq_writable(q) : ipcx_mq_readable(q);
}

static int mq_ncpus(void)
{
	static int n;
	int v = __atomic_load_n(&n, __ATOMIC_RELAXED);

	if (!v) {
		v = get_nprocs();
		__atomic_store_n(&n, v, __ATOMIC_RELAXED);
	}
	return v;
}

/*
 * Wait until the queue may be ready for @send's side (0), or the deadline
 * (-ETIMEDOUT). Spins first as the handle's policy says: by default only
 * while the peer side last ran on another CPU, because spinning on the CPU
 * the peer needs only delays it.
 */
static int mq_wait(struct ipcx_mq *q, bool send, const struct timespec *dl)
{
	struct ipcx_mq_header *h = q->h;
	uint32_t *seq = send ? &h->wseq : &h->rseq;
	const struct ipcx_mq_side *peer = send ? &h->recv : &h->send;
	uint64_t spin = 0, dln = dl ? ipcx_deadline_ns(dl) : UINT64_MAX;
	int r;

	switch (q->wait) {
	case IPCX_MQ_WAIT_POLL:
		spin = UINT64_MAX;
		break;
	case IPCX_MQ_WAIT_SPIN:
		spin = q->spin_ns;
		break;
	case IPCX_MQ_WAIT_DEFAULT: {
		uint32_t pc = __atomic_load_n(&peer->cpu, __ATOMIC_RELAXED);
		int c = ipcx_cpu_now();

		mq_note_cpu(send ? &h->send : &h->recv);

		if (pc && c >= 0 && pc != (uint32_t)c + 1 && mq_ncpus() > 1)
			spin = q->spin_ns;
		break;
	}
	default:
		break;
	}
	if (spin) {
		uint64_t start = ipcx_now_ns(CLOCK_MONOTONIC), end;
		bool predict = !send && q->spsc && h->recv.inorder;
		unsigned int relax = predict ? 1 : send ? 16 : 4, i = 0, k;
		/*
		 * A sender that found the queue full waits, for its first
		 * ~2 us of spinning, for a batch of room: taking slots one
		 * at a time as the receiver frees them would pass the
		 * free-ring line and the receiver's side line back and
		 * forth on every message.
		 */
		uint32_t batch = send && q->max_msgs >= 64 ? 32 : 1;

		end = spin == UINT64_MAX || start + spin < start ? UINT64_MAX : start + spin;
		if (end > dln)
			end = dln;
		for (;;) {
			/*
			 * An in-order receiver polls the predicted slot, one
			 * line the message brings anyway, after every pause;
			 * the levels themselves only now and then (a sender
			 * killed between tail and stamp leaves no stamp).
			 * Others look every ~4 pauses, not every one: each
			 * look pulls the lines the peer writes per message
			 * back into shared state, and a peer that finds them
			 * still exclusive publishes several messages per
			 * transfer. A sender waiting for room looks only every
			 * 16: the receiver has a full queue to work through,
			 * and each look at recv_pos costs the receiver a
			 * transfer on its next release (random priorities
			 * 0..31 through a full queue: +20% messages/s).
			 */
			if (send ? MQ_LD(&h->recv_pos) - MQ_LD(&h->send.pos) >= (i < 16 ? batch : 1)
				 : predict ? mq_predict_ready(q) || ((i & 63) == 63 && mq_ready(q, false))
					   : mq_ready(q, false))
				return 0;
			for (k = 0; k < relax; k++)
				ipcx_cpu_relax();
			if ((++i & 15) == 0) {
				uint64_t now = ipcx_now_ns(CLOCK_MONOTONIC);

				if (now >= dln)
					return -ETIMEDOUT;
				if (now >= end)
					break;
			}
		}
	}
	/*
	 * Sleep in slices: short ones while the other side is marked busy
	 * (its owner may be dead before it could wake us), long ones
	 * otherwise; after each slice, reclaim the other side if its owner
	 * is gone.
	 */
	for (;;) {
		uint32_t *fw = send ? &h->wseq_fence : &h->rseq_fence, gen;
		bool fenced = ipcx_mq_fences_begin(fw, &gen), ready;
		uint32_t v = ipcx_mq_seq_arm(seq);
		uint64_t now, until;
		struct timespec t;

		ready = mq_ready(q, send);
		if (!ipcx_mq_fences_end(fw, gen) && !ready) {
			/* counted out while re-checking: again */
			if (ipcx_now_ns(CLOCK_MONOTONIC) >= dln)
				return -ETIMEDOUT;
			continue;
		}
		if (ready)
			return 0;
		now = ipcx_now_ns(CLOCK_MONOTONIC);
		if (now >= dln)
			return -ETIMEDOUT;
		until = now + (__atomic_load_n(&peer->lock, __ATOMIC_RELAXED) || !fenced ?
			       IPCX_OLOCK_SLICE_NS : MQ_IDLE_SLICE_NS);
		if (until > dln)
			until = dln;
		t.tv_sec = (time_t)(until / 1000000000ull);
		t.tv_nsec = (long)(until % 1000000000ull);
		r = ipcx_futex_wait(seq, v, &t, true);
		if (mq_ready(q, send))
			return 0;
		if (r == -ETIMEDOUT)
			mq_reclaim(q, !send, ipcx_olock_tid());
	}
}

/* ---- zero-copy core --------------------------------------------------------- */

static inline int mq_check_dl(const struct timespec *dl)
{
	return dl && !ipcx_timespec_valid(dl) ? -EINVAL : 0;
}

static __attribute__((always_inline)) inline int
mq_reserve_in(struct ipcx_mq *q, uint32_t me, void **buf, unsigned int flags,
	      const struct timespec *dl)
{
	struct ipcx_mq_side *s = &q->h->send;
	int r;

	for (;;) {
		uint32_t pos, idx;

		r = mq_enter(q, true, dl, me);
		if (unlikely(r))
			return r;
		pos = s->pos;
		if (pos == s->pos_seen)
			s->pos_seen = MQ_LD(&q->h->recv_pos);
		if (likely(pos != s->pos_seen)) {
			idx = MQ_LD(&q->free_ring[pos & q->fmask]);
			if (unlikely(idx >= q->max_msgs)) {
				mq_leave(q, true, me);
				return -EPROTO;
			}
			s->zc_idx = idx;
			MQ_ST(&s->zc, 1);
			*buf = mq_slot(q, idx) + 1;
			return 0;
		}
		mq_leave(q, true, me);
		if (flags & IPCX_MQ_TRY)
			return -EAGAIN;
		r = mq_wait(q, true, dl);
		if (r)
			return r;
	}
}

int ipcx_mq_reserve(struct ipcx_mq *q, void **buf, unsigned int flags,
		    const struct timespec *dl)
{
	if (unlikely(!q || !buf || (flags & ~IPCX_MQ_TRY) || mq_check_dl(dl)))
		return -EINVAL;
	return mq_reserve_in(q, ipcx_olock_tid(), buf, flags, dl);
}

static inline bool mq_holds(const struct ipcx_mq_side *s, uint32_t me)
{
	return ipcx_olock_held(&s->lock, me) && __atomic_load_n(&s->zc, __ATOMIC_RELAXED);
}

/* Publish the held reservation (sender side held, arguments checked). */
static __attribute__((always_inline)) inline void
mq_commit_in(struct ipcx_mq *q, uint32_t me, size_t len, unsigned int prio)
{
	struct ipcx_mq_header *h = q->h;
	struct ipcx_mq_side *s = &h->send;
	struct ipcx_mq_slot *sl;
	uint32_t idx, t, pos;
	uint64_t used;

	idx = s->zc_idx;
	sl = mq_slot(q, idx);
	sl->len = (uint32_t)len;
	sl->prio = prio;
	t = (uint32_t)h->tl[prio];
	pos = s->pos;
	/* a level's first message: its bit goes up before its tail moves */
	used = __atomic_load_n(&h->used, __ATOMIC_RELAXED);
	if (unlikely(!(used & (1ull << prio))))
		MQ_ST(&h->used, used | (1ull << prio));
	MQ_ST(&mq_ring(q, prio)[t & q->mask], idx);
	/* intent first: a death from here on is rolled forward */
	MQ_ST(&s->i_idx, idx);
	MQ_ST(&s->i_lvl, prio);
	MQ_ST(&s->i_lpos, t);
	MQ_ST(&s->i_fpos, pos);
	MQ_ST(&s->intent, 1);
	MQ_ST(&h->tl[prio], (uint64_t)idx << 32 | (t + 1));	/* published */
	MQ_ST(&sl->seq, pos + 1);	/* the stamp an in-order receiver polls */
	MQ_ST(&s->pos, pos + 1);
	/*
	 * Wake sleepers while still holding the side: a sender that dies
	 * before this leaves its mark on the side, and whoever reclaims it
	 * wakes everybody (mq_repair), so no wake-up dies with it.
	 */
	ipcx_mq_pub_fence(&h->rseq_fence);
	if (unlikely(__atomic_load_n(&h->rseq, __ATOMIC_RELAXED) & MQ_W))
		ipcx_mq_seq_wake(&h->rseq, false);
	ipcx_mq_fences_idle(&h->rseq_fence, &q->pubs[0], &q->fseen[0]);
	MQ_ST(&s->intent, 0);
	MQ_ST(&s->zc, 0);
	mq_leave(q, true, me);
}

int ipcx_mq_commit(struct ipcx_mq *q, size_t len, unsigned int prio)
{
	uint32_t me;

	if (unlikely(!q))
		return -EINVAL;
	me = ipcx_olock_tid();
	if (unlikely(!mq_holds(&q->h->send, me)))
		return -EPERM;
	if (unlikely(len > q->max_size))
		return -EMSGSIZE;
	if (unlikely(prio >= q->levels))
		return -EINVAL;
	mq_commit_in(q, me, len, prio);
	return 0;
}

/* Drop a reservation (@send) or a peek: nothing shared changed yet. */
static int mq_zc_cancel(struct ipcx_mq *q, bool send)
{
	struct ipcx_mq_side *s;
	uint32_t me;

	if (!q)
		return -EINVAL;
	s = send ? &q->h->send : &q->h->recv;
	me = ipcx_olock_tid();
	if (!mq_holds(s, me))
		return -EPERM;
	MQ_ST(&s->zc, 0);
	mq_leave(q, send, me);
	return 0;
}

int ipcx_mq_abort(struct ipcx_mq *q)
{
	return mq_zc_cancel(q, true);
}

/*
 * Full scan (receiver side held): highest set bit, oldest entry.
 * Return 1 found, 0 empty, -EPROTO on a corrupted index.
 */
static int mq_scan(struct ipcx_mq *q, uint32_t *lvl, uint32_t *idx)
{
	struct ipcx_mq_header *h = q->h;
	uint64_t used = __atomic_load_n(&h->used, __ATOMIC_ACQUIRE);

	used &= q->levels == 64 ? ~0ull : (1ull << q->levels) - 1;
	while (used) {
		uint32_t l = 63 - (uint32_t)__builtin_clzll(used);
		struct ipcx_mq_rlevel *R = &h->rlevel[l];
		uint32_t head = R->head;

		/*
		 * A level known to hold messages is taken as is: every level
		 * above it was just looked at. One known empty is looked at
		 * again (its tail may have moved).
		 */
		if (head == R->tail_seen) {
			uint64_t tl = MQ_LD(&h->tl[l]);

			R->tail_seen = (uint32_t)tl;
			if (head == R->tail_seen) {
				used &= ~(1ull << l);
				continue;
			}
			/* one message: the word names its slot, no ring look */
			*idx = head + 1 == (uint32_t)tl ? (uint32_t)(tl >> 32)
							: MQ_LD(&mq_ring(q, l)[head & q->mask]);
		} else {
			*idx = MQ_LD(&mq_ring(q, l)[head & q->mask]);
		}
		/*
		 * More queued at this level: start pulling the next one's
		 * lines from the sender's cache now, so its transfer overlaps
		 * this message's copy instead of stalling the next receive.
		 */
		if (R->tail_seen - head >= 2) {
			uint32_t n = MQ_LD(&mq_ring(q, l)[(head + 1) & q->mask]);

			if (n < q->max_msgs) {
				const char *p = (const char *)mq_slot(q, n);

				__builtin_prefetch(p);
				__builtin_prefetch(p + 64);
			}
		}
		*lvl = l;
		if (unlikely(*idx >= q->max_msgs || mq_slot(q, *idx)->len > q->max_size))
			return -EPROTO;
		return 1;
	}
	return 0;
}

/*
 * Find the next message (receiver side held). Return 1 found, 0 empty,
 * -EPROTO on a corrupted index. An empty scan makes an SPSC receiver
 * in order; a message found by the scan may have been taken out of send
 * order, which ends it. With !@scan an in-order receiver trusts a missing
 * stamp (a blocking receive's first look: the scan would pull the level
 * lines the sender is about to write); after waiting it scans, since a
 * sender killed between its tail and its stamp leaves a message only the
 * scan sees.
 */
static int mq_find(struct ipcx_mq *q, uint32_t *lvl, uint32_t *idx, bool scan)
{
	struct ipcx_mq_side *s = &q->h->recv;
	uint32_t inorder;
	int r;

	if (q->spsc && s->inorder) {
		uint32_t i = mq_predict(q, lvl);

		if (i < UINT32_MAX - 1) {
			struct ipcx_mq_rlevel *R = &q->h->rlevel[*lvl];

			/* the stamp is stored after the tail: tail > head */
			if (R->tail_seen == R->head)
				R->tail_seen = R->head + 1;
			*idx = i;
			return 1;
		}
		if (!scan && i == UINT32_MAX)
			return 0;
	}
	r = mq_scan(q, lvl, idx);
	inorder = q->spsc && r == 0;
	if (s->inorder != inorder)
		MQ_ST(&s->inorder, inorder);
	return r;
}

static __attribute__((always_inline)) inline int
mq_peek_in(struct ipcx_mq *q, uint32_t me, const void **buf, size_t *len, unsigned int *prio,
	   unsigned int flags, const struct timespec *dl)
{
	struct ipcx_mq_side *s = &q->h->recv;
	bool scan = flags & IPCX_MQ_TRY;
	int r;

	for (;;) {
		uint32_t l, idx;

		r = mq_enter(q, false, dl, me);
		if (unlikely(r))
			return r;
		r = mq_find(q, &l, &idx, scan);
		if (likely(r == 1)) {
			struct ipcx_mq_slot *sl = mq_slot(q, idx);

			s->zc_idx = idx;
			s->zc_lvl = l;
			MQ_ST(&s->zc, 1);
			*buf = sl + 1;
			*len = sl->len;
			if (prio)
				*prio = l;
			return 0;
		}
		mq_leave(q, false, me);
		if (r < 0)
			return r;
		if (flags & IPCX_MQ_TRY)
			return -EAGAIN;
		r = mq_wait(q, false, dl);
		if (r)
			return r;
		scan = true;
	}
}

int ipcx_mq_peek(struct ipcx_mq *q, const void **buf, size_t *len, unsigned int *prio,
		 unsigned int flags, const struct timespec *dl)
{
	if (unlikely(!q || !buf || !len || (flags & ~IPCX_MQ_TRY) || mq_check_dl(dl)))
		return -EINVAL;
	return mq_peek_in(q, ipcx_olock_tid(), buf, len, prio, flags, dl);
}

/* Free the held message's slot (receiver side held). */
static __attribute__((always_inline)) inline void mq_release_in(struct ipcx_mq *q, uint32_t me)
{
	struct ipcx_mq_header *h = q->h;
	struct ipcx_mq_side *s = &h->recv;
	struct ipcx_mq_rlevel *R;
	uint32_t idx, l, head, pos;

	idx = s->zc_idx;
	l = s->zc_lvl;
	R = &h->rlevel[l];
	head = R->head;
	pos = h->recv_pos;
	/* intent first: a death before the slot is freed is rolled back */
	MQ_ST(&s->i_idx, idx);
	MQ_ST(&s->i_lvl, l);
	MQ_ST(&s->i_lpos, head);
	MQ_ST(&s->i_fpos, pos);
	MQ_ST(&s->intent, 1);
	MQ_ST(&R->head, head + 1);
	MQ_ST(&q->free_ring[pos & q->fmask], idx);
	MQ_ST(&h->recv_pos, pos + 1);	/* consumed */
	/* as in commit: wake while the side still bears our mark */
	ipcx_mq_pub_fence(&h->wseq_fence);
	if (unlikely(__atomic_load_n(&h->wseq, __ATOMIC_RELAXED) & MQ_W))
		ipcx_mq_seq_wake(&h->wseq, false);
	ipcx_mq_fences_idle(&h->wseq_fence, &q->pubs[1], &q->fseen[1]);
	MQ_ST(&s->intent, 0);
	MQ_ST(&s->zc, 0);
	mq_leave(q, false, me);
}

int ipcx_mq_release(struct ipcx_mq *q)
{
	uint32_t me;

	if (unlikely(!q))
		return -EINVAL;
	me = ipcx_olock_tid();
	if (unlikely(!mq_holds(&q->h->recv, me)))
		return -EPERM;
	mq_release_in(q, me);
	return 0;
}

int ipcx_mq_unpeek(struct ipcx_mq *q)
{
	return mq_zc_cancel(q, false);
}

/* ---- copying API, built on the zero-copy one ------------------------------------- */

static int mq_send(struct ipcx_mq *q, const void *buf, size_t len, unsigned int prio,
		   unsigned int flags, const struct timespec *dl)
{
	void *slot;
	uint32_t me;
	int r;

	if (unlikely(!q || (!buf && len) || mq_check_dl(dl)))
		return -EINVAL;
	if (unlikely(len > q->max_size))
		return -EMSGSIZE;
	if (unlikely(prio >= q->levels))
		return -EINVAL;
	me = ipcx_olock_tid();
	r = mq_reserve_in(q, me, &slot, flags, dl);
	if (unlikely(r))
		return r;
	if (len)
		memcpy(slot, buf, len);
	mq_commit_in(q, me, len, prio);
	return 0;
}

int ipcx_mq_send(struct ipcx_mq *q, const void *buf, size_t len, unsigned int prio)
{
	return mq_send(q, buf, len, prio, 0, NULL);
}

int ipcx_mq_trysend(struct ipcx_mq *q, const void *buf, size_t len, unsigned int prio)
{
	return mq_send(q, buf, len, prio, IPCX_MQ_TRY, NULL);
}

int ipcx_mq_timedsend(struct ipcx_mq *q, const void *buf, size_t len, unsigned int prio,
		      const struct timespec *abs_mono)
{
	if (!abs_mono)
		return -EINVAL;
	return mq_send(q, buf, len, prio, 0, abs_mono);
}

static ssize_t mq_receive(struct ipcx_mq *q, void *buf, size_t cap, unsigned int *prio,
			  unsigned int flags, const struct timespec *dl)
{
	const void *p;
	uint32_t me;
	size_t len;
	int r;

	if (unlikely(!q || (!buf && cap) || mq_check_dl(dl)))
		return -EINVAL;
	me = ipcx_olock_tid();
	r = mq_peek_in(q, me, &p, &len, prio, flags, dl);
	if (unlikely(r))
		return r;
	if (unlikely(len > cap)) {
		MQ_ST(&q->h->recv.zc, 0);	/* unpeek */
		mq_leave(q, false, me);
		return -EMSGSIZE;
	}
	if (len)
		memcpy(buf, p, len);
	mq_release_in(q, me);
	return (ssize_t)len;
}

ssize_t ipcx_mq_receive(struct ipcx_mq *q, void *buf, size_t cap, unsigned int *prio)
{
	return mq_receive(q, buf, cap, prio, 0, NULL);
}

ssize_t ipcx_mq_tryreceive(struct ipcx_mq *q, void *buf, size_t cap, unsigned int *prio)
{
	return mq_receive(q, buf, cap, prio, IPCX_MQ_TRY, NULL);
}

ssize_t ipcx_mq_timedreceive(struct ipcx_mq *q, void *buf, size_t cap, unsigned int *prio,
			     const struct timespec *abs_mono)
{
	if (!abs_mono)
		return -EINVAL;
	return mq_receive(q, buf, cap, prio, 0, abs_mono);
}

int ipcx_mq_close(struct ipcx_mq *q)
{
	uint32_t me;

	if (!q)
		return -EINVAL;
	me = ipcx_olock_tid();
	if (mq_holds(&q->h->send, me))
		ipcx_mq_abort(q);
	if (mq_holds(&q->h->recv, me))
		ipcx_mq_unpeek(q);
	if (q->map)
		munmap(q->map, q->map_len);
	if (q->own_fd && q->fd >= 0)
		close(q->fd);
	free(q);
	return 0;
}
