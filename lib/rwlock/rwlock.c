// SPDX-License-Identifier: MIT
/*
 * rwlock.c - sharable and upgradable mutex on futex words, with owner-death
 * detection and per-process reader accounting. Documentation/rwlock.md has
 * the full design; the short version:
 *
 * state (futex word):  bits 0-21 tid of the exclusive/upgradable owner,
 *	EXCL (exclusive claimed or held), UPG (upgradable held), RDWAIT and
 *	WRWAIT (readers / writers sleep on state), DRAIN (a writer sleeps on
 *	drain_seq until readers leave), INCONS (owner died, not yet repaired),
 *	NOTREC (not recoverable).
 *
 * Readers are not counted in state: each process has a slot (ident =
 * pid + start time, and a count). A reader increments its slot, then loads
 * state; a writer sets EXCL, then sums the slots. Both sides use seq_cst
 * read-modify-writes followed by loads, so either the reader sees EXCL and
 * backs off or the writer sees the reader's count (the Dekker pattern).
 * Because each share is recorded in exactly one place, the share of a dead
 * process is exact: a draining writer that waited one check period zeroes
 * the slots of processes that are gone.
 *
 * A writer claims EXCL as soon as no exclusive/upgradable owner exists,
 * before waiting for readers to leave: from then on no new reader enters,
 * so a stream of readers cannot starve it.
 *
 * Every waiter sleeps at most one check period (l->check_ms) at a time and
 * then checks that the owner recorded in state is alive (liveness.c); a
 * dead owner's lock is taken over with a CAS and the taker gets
 * -EOWNERDEAD holding the lock exclusively.
 */
#include <limits.h>
#include <string.h>

#include <ipcx/rwlock.h>

#include "liveness.h"
#include "rwlock_priv.h"
#include "../shm/shm_priv.h"
#include "../sys/sys.h"

#define CHECK_MS_DEFAULT 50u
#define CHECK_MS_MAX	60000u
#define NSLOTS		IPCX_RWLOCK_SLOTS

struct wctx {
	bool try;
	bool has_abs;
	const struct ipcx_rwlock *l;
	const struct timespec *abs;
	uint64_t abs_ns;
	uint64_t next_check;	/* 0 until the first sleep */
	uint64_t period_ns;
};

static inline uint32_t ld(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline bool cas(uint32_t *p, uint32_t *old, uint32_t new)
{
	return __atomic_compare_exchange_n(p, old, new, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}

static inline int check_lock(const struct ipcx_rwlock *l)
{
	if (unlikely(!l || __atomic_load_n(&l->magic, __ATOMIC_RELAXED) != RW_MAGIC))
		return -EINVAL;
	return 0;
}

/* Cheap: the clock and period are read only when the caller has to wait. */
static inline int wctx_init(struct wctx *w, const struct ipcx_rwlock *l,
			    const struct timespec *abs, bool try)
{
	w->try = try;
	w->has_abs = abs != NULL;
	w->l = l;
	w->abs = abs;
	w->next_check = 0;
	if (abs && unlikely(!ipcx_timespec_valid(abs)))
		return -EINVAL;
	return 0;
}

/*
 * What a caller that cannot proceed does next. Return 0 with *ts set: sleep
 * until then; 1: time to check liveness; -EAGAIN (try), -ETIMEDOUT.
 */
static int step(struct wctx *w, struct timespec *ts)
{
	uint64_t now, end;

	if (w->try)
		return -EAGAIN;
	now = ipcx_now_ns(CLOCK_MONOTONIC);
	if (!w->next_check) {
		uint32_t ms = __atomic_load_n(&w->l->check_ms, __ATOMIC_RELAXED);

		if (!ms || ms > CHECK_MS_MAX)	/* the lock is untrusted memory */
			ms = CHECK_MS_DEFAULT;
		w->period_ns = (uint64_t)ms * 1000000ull;
		/* A deadline too far to count in nanoseconds saturates to never. */
		if (w->has_abs)
			w->abs_ns = ipcx_rw_deadline_ns(w->abs);
	}
	if (w->has_abs && now >= w->abs_ns)
		return -ETIMEDOUT;
	if (!w->next_check) {
		w->next_check = now + w->period_ns;
	} else if (now >= w->next_check) {
		w->next_check = now + w->period_ns;
		return 1;
	}
	end = w->next_check;
	if (w->has_abs && w->abs_ns < end)
		end = w->abs_ns;
	ts->tv_sec = (time_t)(end / 1000000000ull);
	ts->tv_nsec = (long)(end % 1000000000ull);
	return 0;
}

/* ---- owner record ------------------------------------------------------- */

static inline void set_owner(struct ipcx_rwlock *l, pid_t me)
{
	__atomic_store_n(&l->owner_ident, ipcx_self_ident(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->owner_tid, (uint32_t)me, __ATOMIC_RELEASE);
}

static inline void clear_owner(struct ipcx_rwlock *l)
{
	__atomic_store_n(&l->owner_tid, 0, __ATOMIC_RELEASE);
}

static bool owner_dead(struct ipcx_rwlock *l, uint32_t tid)
{
	uint32_t rt = __atomic_load_n(&l->owner_tid, __ATOMIC_ACQUIRE);
	uint64_t id = __atomic_load_n(&l->owner_ident, __ATOMIC_RELAXED);

	/* rt != tid: the owner has not recorded itself yet; check the tid alone. */
	return ipcx_task_dead((pid_t)tid, rt == tid ? id : 0);
}

/* ---- state transitions ---------------------------------------------------- */

/* Clear @clear (and the waiter bits), set @set, wake sleepers. Return the old state. */
static uint32_t st_update(struct ipcx_rwlock *l, uint32_t clear, uint32_t set)
{
	uint32_t s = ld(&l->state);

	while (!cas(&l->state, &s, (s & ~(clear | ST_WAITERS)) | set))
		;
	if (s & ST_WAITERS)
		ipcx_futex_wake(&l->state, INT_MAX, true);
	return s;
}

static void make_notrec(struct ipcx_rwlock *l)
{
	clear_owner(l);
	__atomic_store_n(&l->state, ST_NOTREC | ST_EXCL | ST_UPG, __ATOMIC_SEQ_CST);
	ipcx_futex_wake(&l->state, INT_MAX, true);
}

/* ---- reader slots --------------------------------------------------------- */

static inline unsigned int slot_home(uint64_t id)
{
	return (unsigned int)IPCX_IDENT_PID(id) % NSLOTS;
}

static struct ipcx_rwlock_slot *find_slot(struct ipcx_rwlock *l, uint64_t id)
{
	unsigned int h = slot_home(id), i;

	for (i = 0; i < NSLOTS; i++) {
		struct ipcx_rwlock_slot *sl = &l->slot[(h + i) % NSLOTS];

		if (__atomic_load_n(&sl->ident, __ATOMIC_RELAXED) == id)
			return sl;
	}
	return NULL;
}

/*
 * Shares held now. Only claimed slots are read: a reader sets its slot's
 * mask bit before its first increment, and the reaper clears the bit
 * while the slot cannot be claimed (ident = a reaper's mark).
 */
static inline uint64_t readers(const struct ipcx_rwlock *l)
{
	uint64_t n = ld(&l->anon_readers);
	uint32_t mask = ld(&l->slot_mask);

	while (mask) {
		n += ld(&l->slot[__builtin_ctz(mask)].count);
		mask &= mask - 1;
	}
	return n;
}

static void kick_drainer(struct ipcx_rwlock *l)
{
	if (unlikely(ld(&l->state) & ST_DRAIN)) {
		__atomic_add_fetch(&l->drain_seq, 1, __ATOMIC_SEQ_CST);
		ipcx_futex_wake(&l->drain_seq, INT_MAX, true);
	}
}

/*
 * Release the slots of processes that are gone (only slots with shares
 * when @busy_only), zeroing their shares. Each check reads /proc: slow
 * paths only.
 *
 * A release is four steps, and a reaper may die after any of them:
 *   1. CAS ident -> RW_REAP_MARK(reaper): the slot can no longer be
 *      claimed, and no live process adds to it (its owner is gone);
 *   2. count = 0;  3. clear the slot's mask bit;  4. ident = 0 (free).
 * Steps 2-4 are idempotent, so a slot left marked by a dead reaper (found
 * dead like an owner: pid and start time) is taken over with another CAS
 * and the steps are redone. A slot marked by a live reaper is its own.
 */
static void reap_dead_readers(struct ipcx_rwlock *l, bool busy_only)
{
	uint64_t me = ipcx_self_ident(), mark = RW_REAP_MARK(me);
	bool freed = false;
	unsigned int i;

	for (i = 0; i < NSLOTS; i++) {
		struct ipcx_rwlock_slot *sl = &l->slot[i];
		uint64_t id = __atomic_load_n(&sl->ident, __ATOMIC_ACQUIRE);
		uint32_t bit = 1u << i;

		if (id == me || id == mark)
			continue;		/* ours, or a sibling thread's reap */
		if (RW_IS_REAP_MARK(id)) {
			/* Whatever busy_only says: a stuck mark leaks the slot. */
			if (!ipcx_ident_dead(RW_REAPER(id)))
				continue;
		} else if (id == 0) {
			/*
			 * Free. Shares or a mask bit on a free slot are never
			 * written by a live process (corruption): clear them.
			 */
			if (!ld(&sl->count) && !(ld(&l->slot_mask) & bit))
				continue;
		} else {
			if (busy_only && !ld(&sl->count))
				continue;
			if (!ipcx_ident_dead(id))
				continue;
		}
		if (!__atomic_compare_exchange_n(&sl->ident, &id, mark, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			continue;
		if (__atomic_exchange_n(&sl->count, 0, __ATOMIC_SEQ_CST))
			freed = true;
		__atomic_and_fetch(&l->slot_mask, ~bit, __ATOMIC_SEQ_CST);
		__atomic_store_n(&sl->ident, 0, __ATOMIC_RELEASE);
	}
	if (freed)
		kick_drainer(l);
}

/*
 * The counter this process adds its shares to: its slot (claimed on first
 * use), or the anonymous counter if every slot belongs to a live process.
 */
static uint32_t *reader_counter(struct ipcx_rwlock *l)
{
	uint64_t id = ipcx_self_ident();
	struct ipcx_rwlock_slot *sl = find_slot(l, id);
	unsigned int h, i, pass, bit;

	if (likely(sl)) {
		/*
		 * Another thread of ours may have claimed the slot and not yet
		 * published it in the mask: make sure before adding a share.
		 */
		bit = 1u << (unsigned int)(sl - l->slot);
		if (unlikely(!(ld(&l->slot_mask) & bit)))
			__atomic_or_fetch(&l->slot_mask, bit, __ATOMIC_SEQ_CST);
		return &sl->count;
	}
	/*
	 * Claim a free slot. Two threads of one process may claim two slots;
	 * that is harmless (unlock_shared takes a share from any slot of the
	 * process, and the reaper frees both).
	 */
	h = slot_home(id);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < NSLOTS; i++) {
			unsigned int idx = (h + i) % NSLOTS;
			uint64_t zero = 0;

			sl = &l->slot[idx];
			if (__atomic_load_n(&sl->ident, __ATOMIC_RELAXED) == id)
				goto mark;
			if (__atomic_compare_exchange_n(&sl->ident, &zero, id, false,
							__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				goto mark;
			continue;
mark:
			/* Before the first share is added: see readers(). */
			__atomic_or_fetch(&l->slot_mask, 1u << idx, __ATOMIC_SEQ_CST);
			return &sl->count;
		}
		reap_dead_readers(l, false);
	}
	return &l->anon_readers;
}

/* Decrement *@c if positive; false if it was 0. */
static bool dec_if_positive(uint32_t *c)
{
	uint32_t v = ld(c);

	while (v)
		if (cas(c, &v, v - 1))
			return true;
	return false;
}

/* A counter of this process holding at least one share, or NULL. */
static uint32_t *held_counter(struct ipcx_rwlock *l)
{
	uint64_t id = ipcx_self_ident();
	unsigned int h = slot_home(id), i;

	for (i = 0; i < NSLOTS; i++) {
		struct ipcx_rwlock_slot *sl = &l->slot[(h + i) % NSLOTS];

		if (__atomic_load_n(&sl->ident, __ATOMIC_RELAXED) == id && ld(&sl->count))
			return &sl->count;
	}
	return ld(&l->anon_readers) ? &l->anon_readers : NULL;
}

static inline void reader_leave(struct ipcx_rwlock *l, uint32_t *cnt)
{
	__atomic_sub_fetch(cnt, 1, __ATOMIC_SEQ_CST);
	kick_drainer(l);
}

/* ---- acquiring ------------------------------------------------------------ */

/*
 * We hold EXCL (from free, a takeover, or an upgrade): wait until no share
 * is left. On failure the claim is undone (an upgrader keeps upgradable
 * ownership; INCONS stays for the next locker).
 */
static int drain(struct ipcx_rwlock *l, struct wctx *w, bool upgrading)
{
	struct timespec ts;
	uint32_t seq;
	int ret;

	if (likely(!readers(l)))
		goto done;
	for (;;) {
		__atomic_or_fetch(&l->state, ST_DRAIN, __ATOMIC_SEQ_CST);
		seq = ld(&l->drain_seq);
		if (!readers(l))
			break;
		ret = step(w, &ts);
		if (ret == 1) {
			reap_dead_readers(l, true);
			continue;
		}
		if (ret < 0) {
			if (upgrading) {
				st_update(l, ST_EXCL | ST_DRAIN, 0);
			} else {
				clear_owner(l);
				st_update(l, ST_EXCL | ST_TID | ST_DRAIN, 0);
			}
			return ret;
		}
		ipcx_futex_wait(&l->drain_seq, seq, &ts, true);
	}
	__atomic_and_fetch(&l->state, ~ST_DRAIN, __ATOMIC_SEQ_CST);
done:
	if (upgrading)
		__atomic_and_fetch(&l->state, ~ST_UPG, __ATOMIC_SEQ_CST);
	return 0;
}

/*
 * Sleep while the lock is held (state @s), with @bit announcing us. After
 * each check period, check the owner; if it is dead, take the lock over.
 * Return 1 (taken over: EXCL | INCONS, ours), 0 (look again), -errno.
 */
static int block(struct ipcx_rwlock *l, uint32_t s, uint32_t bit, struct wctx *w,
		 pid_t me)
{
	struct timespec ts;
	int ret = step(w, &ts);

	if (ret == 1) {
		if (!owner_dead(l, s & ST_TID))
			return 0;
		return cas(&l->state, &s, (s & ~(ST_TID | ST_HELD | ST_DRAIN)) |
						  ST_EXCL | ST_INCONS | (uint32_t)me);
	}
	if (ret < 0)
		return ret;
	if (!(s & bit)) {
		if (!cas(&l->state, &s, s | bit))
			return 0;
		s |= bit;
	}
	ipcx_futex_wait(&l->state, s, &ts, true);
	return 0;
}

/* After a takeover: wait out the live readers, report the death. */
static int took_over(struct ipcx_rwlock *l, struct wctx *w, pid_t me)
{
	int ret;

	set_owner(l, me);
	ret = drain(l, w, false);
	return ret ? ret : -EOWNERDEAD;
}

static int lock_excl(struct ipcx_rwlock *l, struct wctx *w)
{
	pid_t me = ipcx_self_tid();
	uint32_t s = ld(&l->state), n;
	int ret;

	for (;;) {
		if (unlikely(s & ST_NOTREC))
			return -ENOTRECOVERABLE;
		if (likely(!(s & ST_HELD))) {
			n = (s & ~ST_TID) | ST_EXCL | (uint32_t)me;
			if (!cas(&l->state, &s, n))
				continue;
			set_owner(l, me);
			if (unlikely(readers(l))) {
				ret = drain(l, w, false);
				if (ret)
					return ret;
			}
			return (n & ST_INCONS) ? -EOWNERDEAD : 0;
		}
		if ((s & ST_TID) == (uint32_t)me)
			return -EDEADLK;
		ret = block(l, s, ST_WRWAIT, w, me);
		if (ret == 1)
			return took_over(l, w, me);
		if (ret < 0)
			return ret;
		s = ld(&l->state);
	}
}

static int excl_to_shared(struct ipcx_rwlock *l);
static int excl_to_upgradable(struct ipcx_rwlock *l);

static int lock_shared(struct ipcx_rwlock *l, struct wctx *w)
{
	uint32_t *cnt = reader_counter(l);
	uint32_t s;
	pid_t me;
	int ret;

	for (;;) {
		__atomic_add_fetch(cnt, 1, __ATOMIC_SEQ_CST);
		s = ld(&l->state);
		if (likely(!(s & (ST_EXCL | ST_INCONS))))
			return 0;
		reader_leave(l, cnt);
		if (s & ST_NOTREC)
			return -ENOTRECOVERABLE;
		me = ipcx_self_tid();
		if (!(s & ST_EXCL)) {
			/* Free but inconsistent: whoever comes first repairs it. */
			ret = lock_excl(l, w);
			return ret == 0 ? excl_to_shared(l) : ret;
		}
		if ((s & ST_TID) == (uint32_t)me)
			return -EDEADLK;
		ret = block(l, s, ST_RDWAIT, w, me);
		if (ret == 1)
			return took_over(l, w, me);
		if (ret < 0)
			return ret;
	}
}

static int lock_upgradable(struct ipcx_rwlock *l, struct wctx *w)
{
	pid_t me = ipcx_self_tid();
	uint32_t s = ld(&l->state);
	int ret;

	for (;;) {
		if (unlikely(s & ST_NOTREC))
			return -ENOTRECOVERABLE;
		if (likely(!(s & ST_HELD))) {
			if (s & ST_INCONS) {
				ret = lock_excl(l, w);
				return ret == 0 ? excl_to_upgradable(l) : ret;
			}
			if (!cas(&l->state, &s, (s & ~ST_TID) | ST_UPG | (uint32_t)me))
				continue;
			set_owner(l, me);
			return 0;
		}
		if ((s & ST_TID) == (uint32_t)me)
			return -EDEADLK;
		ret = block(l, s, ST_WRWAIT, w, me);
		if (ret == 1)
			return took_over(l, w, me);
		if (ret < 0)
			return ret;
		s = ld(&l->state);
	}
}

/* ---- public: setup -------------------------------------------------------- */

int ipcx_rwlock_init(struct ipcx_rwlock *l, const struct ipcx_rwlock_opts *opts)
{
	struct ipcx_rwlock_opts o;
	uint32_t ms;
	int ret;

	if (!l)
		return -EINVAL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	ms = o.check_ms;
	if (ms > CHECK_MS_MAX)
		return -EINVAL;
	memset(l, 0, sizeof(*l));
	l->check_ms = ms ? ms : CHECK_MS_DEFAULT;
	__atomic_store_n(&l->magic, RW_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int ipcx_rwlock_destroy(struct ipcx_rwlock *l)
{
	uint32_t s;
	int ret = check_lock(l);

	if (ret)
		return ret;
	s = ld(&l->state);
	if ((s & ST_HELD) && !(s & ST_NOTREC))
		return -EBUSY;
	if (readers(l)) {
		reap_dead_readers(l, true);
		if (readers(l))
			return -EBUSY;
	}
	__atomic_store_n(&l->magic, 0, __ATOMIC_RELEASE);
	return 0;
}

/* ---- public: exclusive ---------------------------------------------------- */

static int excl_timed(struct ipcx_rwlock *l, const struct timespec *abs, bool try)
{
	struct wctx w;
	int ret = check_lock(l);

	if (ret)
		return ret;
	ret = wctx_init(&w, l, abs, try);
	return ret ? ret : lock_excl(l, &w);
}

int ipcx_rwlock_lock(struct ipcx_rwlock *l)
{
	return excl_timed(l, NULL, false);
}

int ipcx_rwlock_trylock(struct ipcx_rwlock *l)
{
	return excl_timed(l, NULL, true);
}

int ipcx_rwlock_timedlock(struct ipcx_rwlock *l, const struct timespec *abs)
{
	return excl_timed(l, abs, false);
}

/* Does the calling thread hold @l exclusively (state @s)? */
static inline bool holds_excl(uint32_t s, pid_t me)
{
	return (s & (ST_HELD | ST_NOTREC)) == ST_EXCL && (s & ST_TID) == (uint32_t)me;
}

static inline bool holds_upg(uint32_t s, pid_t me)
{
	return (s & (ST_HELD | ST_NOTREC)) == ST_UPG && (s & ST_TID) == (uint32_t)me;
}

int ipcx_rwlock_unlock(struct ipcx_rwlock *l)
{
	uint32_t s;
	int ret = check_lock(l);

	if (ret)
		return ret;
	s = ld(&l->state);
	if (!holds_excl(s, ipcx_self_tid()))
		return -EPERM;
	if (s & ST_INCONS) {
		make_notrec(l);
		return 0;
	}
	clear_owner(l);
	st_update(l, ST_EXCL | ST_TID, 0);
	return 0;
}

int ipcx_rwlock_consistent(struct ipcx_rwlock *l)
{
	uint32_t s;
	int ret = check_lock(l);

	if (ret)
		return ret;
	s = ld(&l->state);
	if (!holds_excl(s, ipcx_self_tid()))
		return -EPERM;
	if (!(s & ST_INCONS))
		return -EINVAL;
	__atomic_and_fetch(&l->state, ~ST_INCONS, __ATOMIC_SEQ_CST);
	return 0;
}

/* ---- public: sharable ----------------------------------------------------- */

static int shared_timed(struct ipcx_rwlock *l, const struct timespec *abs, bool try)
{
	struct wctx w;
	int ret = check_lock(l);

	if (ret)
		return ret;
	ret = wctx_init(&w, l, abs, try);
	return ret ? ret : lock_shared(l, &w);
}

int ipcx_rwlock_lock_shared(struct ipcx_rwlock *l)
{
	return shared_timed(l, NULL, false);
}

int ipcx_rwlock_trylock_shared(struct ipcx_rwlock *l)
{
	return shared_timed(l, NULL, true);
}

int ipcx_rwlock_timedlock_shared(struct ipcx_rwlock *l, const struct timespec *abs)
{
	return shared_timed(l, abs, false);
}

int ipcx_rwlock_unlock_shared(struct ipcx_rwlock *l)
{
	uint64_t id;
	unsigned int h, i;
	int ret = check_lock(l);

	if (ret)
		return ret;
	id = ipcx_self_ident();
	h = slot_home(id);
	for (i = 0; i < NSLOTS; i++) {
		struct ipcx_rwlock_slot *sl = &l->slot[(h + i) % NSLOTS];

		if (__atomic_load_n(&sl->ident, __ATOMIC_RELAXED) == id &&
		    dec_if_positive(&sl->count))
			goto out;
	}
	if (!dec_if_positive(&l->anon_readers))
		return -EPERM;
out:
	kick_drainer(l);
	return 0;
}

/* ---- public: upgradable --------------------------------------------------- */

static int upg_timed(struct ipcx_rwlock *l, const struct timespec *abs, bool try)
{
	struct wctx w;
	int ret = check_lock(l);

	if (ret)
		return ret;
	ret = wctx_init(&w, l, abs, try);
	return ret ? ret : lock_upgradable(l, &w);
}

int ipcx_rwlock_lock_upgradable(struct ipcx_rwlock *l)
{
	return upg_timed(l, NULL, false);
}

int ipcx_rwlock_trylock_upgradable(struct ipcx_rwlock *l)
{
	return upg_timed(l, NULL, true);
}

int ipcx_rwlock_timedlock_upgradable(struct ipcx_rwlock *l, const struct timespec *abs)
{
	return upg_timed(l, abs, false);
}

int ipcx_rwlock_unlock_upgradable(struct ipcx_rwlock *l)
{
	int ret = check_lock(l);

	if (ret)
		return ret;
	if (!holds_upg(ld(&l->state), ipcx_self_tid()))
		return -EPERM;
	clear_owner(l);
	st_update(l, ST_UPG | ST_TID, 0);
	return 0;
}

/* ---- public: transfers ---------------------------------------------------- */

static int excl_to_upgradable(struct ipcx_rwlock *l)
{
	uint32_t s = ld(&l->state);

	if (!holds_excl(s, ipcx_self_tid()))
		return -EPERM;
	if (s & ST_INCONS) {
		make_notrec(l);
		return -ENOTRECOVERABLE;
	}
	/* Readers waiting on our EXCL may enter now; the tid stays ours. */
	st_update(l, ST_EXCL, ST_UPG);
	return 0;
}

static int excl_to_shared(struct ipcx_rwlock *l)
{
	uint32_t s = ld(&l->state);

	if (!holds_excl(s, ipcx_self_tid()))
		return -EPERM;
	if (s & ST_INCONS) {
		make_notrec(l);
		return -ENOTRECOVERABLE;
	}
	/* Count our share first: no writer can slip in between. */
	__atomic_add_fetch(reader_counter(l), 1, __ATOMIC_SEQ_CST);
	clear_owner(l);
	st_update(l, ST_EXCL | ST_TID, 0);
	return 0;
}

int ipcx_rwlock_unlock_and_lock_upgradable(struct ipcx_rwlock *l)
{
	int ret = check_lock(l);

	return ret ? ret : excl_to_upgradable(l);
}

int ipcx_rwlock_unlock_and_lock_shared(struct ipcx_rwlock *l)
{
	int ret = check_lock(l);

	return ret ? ret : excl_to_shared(l);
}

int ipcx_rwlock_unlock_upgradable_and_lock_shared(struct ipcx_rwlock *l)
{
	int ret = check_lock(l);

	if (ret)
		return ret;
	if (!holds_upg(ld(&l->state), ipcx_self_tid()))
		return -EPERM;
	__atomic_add_fetch(reader_counter(l), 1, __ATOMIC_SEQ_CST);
	clear_owner(l);
	st_update(l, ST_UPG | ST_TID, 0);
	return 0;
}

static int upg_to_excl(struct ipcx_rwlock *l, const struct timespec *abs, bool try)
{
	struct wctx w;
	uint32_t s;
	pid_t me;
	int ret = check_lock(l);

	if (ret)
		return ret;
	ret = wctx_init(&w, l, abs, try);
	if (ret)
		return ret;
	me = ipcx_self_tid();
	s = ld(&l->state);
	do {
		if (!holds_upg(s, me))
			return -EPERM;
	} while (!cas(&l->state, &s, s | ST_EXCL));
	/* New readers now back off; wait for the ones inside. */
	return drain(l, &w, true);
}

int ipcx_rwlock_unlock_upgradable_and_lock(struct ipcx_rwlock *l)
{
	return upg_to_excl(l, NULL, false);
}

int ipcx_rwlock_try_unlock_upgradable_and_lock(struct ipcx_rwlock *l)
{
	return upg_to_excl(l, NULL, true);
}

int ipcx_rwlock_timed_unlock_upgradable_and_lock(struct ipcx_rwlock *l,
						 const struct timespec *abs)
{
	return upg_to_excl(l, abs, false);
}

int ipcx_rwlock_try_unlock_shared_and_lock(struct ipcx_rwlock *l)
{
	uint32_t *cnt, s;
	pid_t me;
	int ret = check_lock(l);

	if (ret)
		return ret;
	cnt = held_counter(l);
	if (!cnt)
		return -EPERM;
	me = ipcx_self_tid();
	s = ld(&l->state);
	do {
		if (s & ST_NOTREC)
			return -ENOTRECOVERABLE;
		if (s & (ST_HELD | ST_INCONS))
			return -EAGAIN;
	} while (!cas(&l->state, &s, (s & ~ST_TID) | ST_EXCL | (uint32_t)me));
	/* Ours must be the only share (transient back-offs make this fail: a try). */
	if (readers(l) != 1 || !ld(cnt)) {
		st_update(l, ST_EXCL | ST_TID, 0);
		return -EAGAIN;
	}
	set_owner(l, me);
	__atomic_sub_fetch(cnt, 1, __ATOMIC_SEQ_CST);
	return 0;
}

int ipcx_rwlock_try_unlock_shared_and_lock_upgradable(struct ipcx_rwlock *l)
{
	uint32_t *cnt, s;
	pid_t me;
	int ret = check_lock(l);

	if (ret)
		return ret;
	cnt = held_counter(l);
	if (!cnt)
		return -EPERM;
	me = ipcx_self_tid();
	s = ld(&l->state);
	do {
		if (s & ST_NOTREC)
			return -ENOTRECOVERABLE;
		if (s & (ST_HELD | ST_INCONS))
			return -EAGAIN;
	} while (!cas(&l->state, &s, (s & ~ST_TID) | ST_UPG | (uint32_t)me));
	set_owner(l, me);
	reader_leave(l, cnt);
	return 0;
}
