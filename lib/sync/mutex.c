// SPDX-License-Identifier: MIT
/*
 * mutex.c - robust process-shared mutexes on futex(2).
 *
 * Lock word (offset 0): 0 when free, else the owner's TID, plus
 * FUTEX_WAITERS once somebody sleeps (or may sleep) on it, plus
 * FUTEX_OWNER_DIED set by the kernel when the owner died holding it (the
 * kernel then clears the TID and wakes one waiter). IPCX_MUTEX_NOTREC_WORD
 * (a TID no thread can have) marks a mutex that was unlocked after
 * -EOWNERDEAD without being made consistent.
 *
 * Every owner links the mutex into its thread's robust list (robust.h)
 * before the lock is considered taken, with list_op_pending naming it from
 * before the CAS until after the list update: a death anywhere in between
 * is seen by the kernel, which looks at the pending entry too.
 *
 * The PI variant keeps the same word format, which is the kernel's own for
 * FUTEX_LOCK_PI2/UNLOCK_PI: user space only does the uncontended CAS, the
 * kernel does the rest (and the priority boosting). Its list link has bit 0
 * set, so the kernel's death handling treats it as PI.
 */
#include <limits.h>
#include <unistd.h>

#include "sync_priv.h"

enum { ST_CONSISTENT = 0, ST_INCONSISTENT = 1, ST_NOTREC = 2 };

#define LK_TRY		1
#define LK_CONTENDED	2

_Static_assert(sizeof(struct ipcx_mutex) == 64, "struct ipcx_mutex is ABI");
_Static_assert(offsetof(struct ipcx_mutex, lock) == 0, "lock word first");
_Static_assert(offsetof(struct ipcx_mutex, robust_next) - offsetof(struct ipcx_mutex, lock) ==
	       -IPCX_ROBUST_FUTEX_OFFSET, "node at glibc's futex offset");
_Static_assert(offsetof(struct ipcx_mutex, robust_prev) + 8 ==
	       offsetof(struct ipcx_mutex, robust_next), "node is {prev, next}");
_Static_assert(offsetof(struct ipcx_mutex, spin_ns) == 40, "struct ipcx_mutex is ABI");

/* The owner TID in a held mutex's word, or 0 (free, or not recoverable). */
static inline uint32_t owner_tid(const struct ipcx_mutex *m)
{
	uint32_t tid = IPCX_LOAD(&m->lock) & FUTEX_TID_MASK;

	return tid == IPCX_MUTEX_NOTREC_WORD ? 0 : tid;
}

int ipcx_mutex_held_here(const struct ipcx_mutex *m)
{
	uint32_t tid = owner_tid(m);

	return tid && ipcx_sys(SYS_tgkill, getpid(), tid, 0, 0, 0, 0) == 0;
}

/*
 * A tag naming this mutex to condition variables (cond.c: a signal sent
 * while holding the waiters' mutex is deferred to its release). Unique in
 * practice, never 0 (0: a mutex from before tags, never deferred to).
 */
static uint64_t mutex_tag(const struct ipcx_mutex *m)
{
	static uint64_t counter;
	uint64_t x = ipcx_now_ns(CLOCK_MONOTONIC) ^ (uint64_t)(uintptr_t)m ^
		     ((uint64_t)getpid() << 40) ^
		     (__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull);

	/* splitmix64's finaliser */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x ? x : 1;
}

int ipcx_mutex_init(struct ipcx_mutex *m, const struct ipcx_mutex_opts *opts)
{
	uint32_t type, flags, tid;
	int ret;

	if (!m || ((uintptr_t)m & 7))
		return -EINVAL;
	/*
	 * Refuse to wipe a mutex that a live thread holds: its node is linked
	 * into that thread's robust list, and zeroing it would cut the list.
	 * (kill(tid, 0) fails with ESRCH only for a TID nobody has: a stale
	 * word left in a file by a dead machine or process does not block.)
	 */
	if (IPCX_LOAD_RELAXED(&m->magic) == IPCX_MUTEX_MAGIC) {
		tid = owner_tid(m);
		if (tid && ipcx_sys(SYS_kill, tid, 0, 0, 0, 0, 0) != -ESRCH)
			return -EBUSY;
	}
	ret = ipcx_opts_check(opts, sizeof(*opts));
	if (ret)
		return ret;
	type = IPCX_OPT(opts, type, IPCX_MUTEX_NORMAL);
	flags = IPCX_OPT(opts, flags, 0u);
	if (type > IPCX_MUTEX_ERRORCHECK || (flags & ~(IPCX_SYNC_BLOCK | IPCX_MUTEX_PI)))
		return -EINVAL;
	/* Robust or nothing: never hand out a lock that a death would wedge. */
	if (!(ipcx_features() & IPCX_FEAT_ROBUST_COTENANT) || ipcx_robust_check())
		return -EOPNOTSUPP;
	if ((flags & IPCX_MUTEX_PI) && !(ipcx_features() & IPCX_FEAT_FUTEX_PI))
		return -EOPNOTSUPP;
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)type;
	m->flags = (uint16_t)flags;
	/* PI waiters sleep in the kernel, which spins on a running owner itself. */
	m->spin_ns = (flags & IPCX_MUTEX_PI) ? 0 :
		ipcx_spin_setting(flags, IPCX_OPT(opts, spin_ns, 0u));
	m->owner_cpu = UINT32_MAX;
	m->tag = mutex_tag(m);
	IPCX_STORE(&m->magic, IPCX_MUTEX_MAGIC);
	return 0;
}

int ipcx_mutex_destroy(struct ipcx_mutex *m)
{
	uint32_t v;

	if (!m || IPCX_LOAD_RELAXED(&m->magic) != IPCX_MUTEX_MAGIC)
		return -EINVAL;
	v = IPCX_LOAD(&m->lock);
	if ((v & FUTEX_TID_MASK) && v != IPCX_MUTEX_NOTREC_WORD)
		return -EBUSY;
	IPCX_STORE(&m->magic, 0u);
	return 0;
}

static inline void took(struct ipcx_mutex *m, struct ipcx_self *s, uintptr_t pi)
{
	ipcx_robust_enqueue(s, &m->robust_next, pi);
	ipcx_robust_pending_clear(s);
	IPCX_STORE_RELAXED(&m->owner_cpu, ipcx_cpu());
}

/* The owner locks again. */
static int relock(struct ipcx_mutex *m)
{
	if (m->type != IPCX_MUTEX_RECURSIVE)
		return -EDEADLK;
	if (m->count >= UINT32_MAX - 1)
		return -EAGAIN;
	m->count++;
	return 0;
}

/*
 * Release a non-PI word held by the caller. With sleepers announced, the
 * word becomes FUTEX_WAITERS with owner 0, not 0: a locker that barges in
 * before the woken waiter runs then takes the lock with FUTEX_WAITERS kept,
 * so its own unlock wakes again. (Releasing to 0 let a barger take the lock
 * silently; if the woken waiter was then killed, the kernel saw a live
 * owner and woke nobody, and the barger's unlock woke nobody either: the
 * other sleepers slept on a free mutex.) A wake that finds nobody clears
 * the flag again, unless somebody took the lock or announced meanwhile.
 */
static void __attribute__((noinline)) release_contended(struct ipcx_mutex *m, uint32_t v)
{
	/* Only waiters (setting FUTEX_WAITERS) race with the owner here. */
	while (!__atomic_compare_exchange_n(&m->lock, &v, v & FUTEX_WAITERS, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	if (ipcx_futex_wake(&m->lock, 1, true) == 0) {
		v = FUTEX_WAITERS;
		IPCX_CAS(&m->lock, &v, 0u);
	}
}

/*
 * @v: the word as the caller last saw it (no second look at a line the
 * waiters are spinning on). A CAS, not an exchange: the flag must never
 * leave the word, even for an instant, while somebody may sleep (an owner
 * killed in such an instant, with a locker barging in, would strand the
 * sleepers). It costs about 0.9 ns more than an exchange here.
 */
static inline void release_word(struct ipcx_mutex *m, uint32_t v)
{
	if (likely(!(v & FUTEX_WAITERS)) &&
	    likely(__atomic_compare_exchange_n(&m->lock, &v, 0u, false, __ATOMIC_RELEASE,
					       __ATOMIC_RELAXED)))
		return;
	release_contended(m, v);
}

static int unlock_slow(struct ipcx_mutex *m, struct ipcx_self *s);

static int pi_lock(struct ipcx_mutex *m, struct ipcx_self *s, const struct timespec *dl,
		   int how)
{
	uint32_t v = 0, tid = s->tid;
	int ret;

	ipcx_robust_pending(s, &m->robust_next, 1);
	if (IPCX_CAS(&m->lock, &v, tid))
		goto acquired;
	if ((v & FUTEX_TID_MASK) == tid) {
		ret = relock(m);
		goto out;
	}
	if (how & LK_TRY) {
		ret = (v & FUTEX_TID_MASK) ? -EAGAIN : ipcx_futex_trylock_pi(&m->lock, true);
	} else {
		do
			ret = ipcx_futex_lock_pi(&m->lock, dl, true);
		while (ret == -EINTR);
	}
	if (ret) {
		if (ret == -EWOULDBLOCK || ret == -EBUSY)
			ret = -EAGAIN;
		goto out;
	}
acquired:
	took(m, s, 1);
	if (unlikely(m->state == ST_NOTREC)) {
		unlock_slow(m, s);
		return -ENOTRECOVERABLE;
	}
	v = IPCX_LOAD(&m->lock);
	if (unlikely(v & FUTEX_OWNER_DIED)) {
		__atomic_fetch_and(&m->lock, ~(uint32_t)FUTEX_OWNER_DIED, __ATOMIC_ACQ_REL);
		m->count = 0;
		m->state = ST_INCONSISTENT;
		return -EOWNERDEAD;
	}
	return 0;
out:
	ipcx_robust_pending_clear(s);
	return ret;
}

/*
 * Longest pause between two looks of a spinning locker, in pause
 * instructions (about 26 ns each on the machine measured; 128 is about
 * 3.3 us). See spin_until_free().
 */
#define SPIN_MAX_DELAY	128u

/*
 * Spin until the word shows no owner (or says not recoverable), or until
 * @end (CLOCK_MONOTONIC ns); the caller then tries one CAS
 * (test-and-test-and-set). A spinner only reads, and reads less and less
 * often: *@delay pauses between two looks, doubled after each look up to
 * SPIN_MAX_DELAY and kept across the calls of one spin phase. Every look
 * pulls the line the owner is writing (lock word and list node) away from
 * the owner's CPU, and each costs the owner a cache miss on its next write:
 * looking every pause let a waiter steal the line from an owner locking
 * and unlocking in a loop every few operations (one hand-off every 3-4
 * lock+unlock, about 15 M/s in mutex_handoff_2proc), backing off cut the
 * hand-offs to about one in a hundred (45-65 M/s).
 * Return: the word last read.
 */
static inline uint32_t spin_until_free(const uint32_t *w, uint64_t end, unsigned int *delayp)
{
	unsigned int delay = *delayp, i, since = 0;
	uint32_t v;

	for (;;) {
		v = IPCX_LOAD_RELAXED(w);
		if (!(v & FUTEX_TID_MASK) || v == IPCX_MUTEX_NOTREC_WORD)
			break;
		for (i = 0; i < delay; i++)
			ipcx_cpu_relax();
		since += delay;
		if (delay < SPIN_MAX_DELAY)
			delay <<= 1;
		if (since >= 32) {	/* a clock read (vDSO) per 32 pauses at most */
			since = 0;
			if (ipcx_now_ns(CLOCK_MONOTONIC) >= end)
				break;
		}
	}
	*delayp = delay;
	return v;
}

static int __attribute__((noinline))
lock_slow(struct ipcx_mutex *m, struct ipcx_self *s, uint32_t v, const struct timespec *dl,
	  int how)
{
	uint32_t tid = s->tid, extra = (how & LK_CONTENDED) ? FUTEX_WAITERS : 0;
	bool may_spin = !(how & LK_TRY);
	uint64_t end = 0;	/* end of the current spin phase; 0: not spinning */
	unsigned int delay = 1;
	int ret;

	for (;;) {
		if (unlikely(v == IPCX_MUTEX_NOTREC_WORD)) {
			ret = -ENOTRECOVERABLE;
			goto out;
		}
		if (!(v & FUTEX_TID_MASK)) {
			/*
			 * Free (perhaps left by a dead owner). Keep FUTEX_WAITERS:
			 * others may sleep. A waiter that slept needs no more: the
			 * flag leaves the word only when a wake found nobody in
			 * the kernel (release_contended()), and then every waiter
			 * not yet asleep fails its sleep on the changed word.
			 */
			uint32_t nv = tid | extra | (v & FUTEX_WAITERS);

			if (!IPCX_CAS(&m->lock, &v, nv))
				continue;
			took(m, s, 0);
			if (end)
				ipcx_spin_account(&m->spin_fail, true);
			if (unlikely(v & FUTEX_OWNER_DIED)) {
				m->count = 0;
				m->state = ST_INCONSISTENT;
				return -EOWNERDEAD;
			}
			return 0;
		}
		if ((v & FUTEX_TID_MASK) == tid) {
			ret = relock(m);
			goto out;
		}
		if (how & LK_TRY) {
			ret = -EAGAIN;
			goto out;
		}
		/*
		 * One spin phase when the wait starts and one after every
		 * wake-up: read until the word looks free, try one CAS, and go
		 * on reading after a lost race, until the phase's budget is
		 * spent (an owner that unlocks and relocks at once is caught
		 * between the two, without a sleep or a wake).
		 */
		if (may_spin) {
			uint32_t budget = ipcx_spin_budget(m->spin_ns, &m->spin_fail,
							   IPCX_LOAD_RELAXED(&m->owner_cpu));

			may_spin = false;
			delay = 1;
			if (budget) {
				end = ipcx_now_ns(CLOCK_MONOTONIC) + budget;
				if (dl && ipcx_deadline_ns(dl) < end)
					end = ipcx_deadline_ns(dl);
			}
		}
		if (end) {
			v = spin_until_free(&m->lock, end, &delay);
			if (!(v & FUTEX_TID_MASK) || v == IPCX_MUTEX_NOTREC_WORD)
				continue;
			ipcx_spin_account(&m->spin_fail, false);
			end = 0;
		}
		/* Announce the sleeper first: unlock and the kernel's death
		 * handling wake only words that say FUTEX_WAITERS. */
		if (!(v & FUTEX_WAITERS)) {
			if (!IPCX_CAS(&m->lock, &v, v | FUTEX_WAITERS))
				continue;
			v |= FUTEX_WAITERS;
		}
		ret = ipcx_wait(&m->lock, v, dl);
		if (ret == -ETIMEDOUT)
			goto out;
		if (ret && ret != -EAGAIN) {
			ret = -EINVAL;	/* a fault: the word is not usable memory */
			goto out;
		}
		may_spin = true;
		v = IPCX_LOAD(&m->lock);
	}
out:
	ipcx_robust_pending_clear(s);
	return ret;
}

static inline __attribute__((always_inline)) int
lock_common(struct ipcx_mutex *m, const struct timespec *dl, int how)
{
	struct ipcx_self *s;
	uint32_t v = 0;

	if (unlikely(!m || IPCX_LOAD_RELAXED(&m->magic) != IPCX_MUTEX_MAGIC))
		return -EINVAL;
	if (unlikely(dl && !ipcx_timespec_valid(dl)))
		return -EINVAL;
	s = ipcx_self();
	if (unlikely(!s))
		return -EOPNOTSUPP;
	if (unlikely(m->flags & IPCX_MUTEX_PI))
		return pi_lock(m, s, dl, how);
	ipcx_robust_pending(s, &m->robust_next, 0);
	if (likely(IPCX_CAS(&m->lock, &v, s->tid | ((how & LK_CONTENDED) ? FUTEX_WAITERS : 0)))) {
		took(m, s, 0);
		return 0;
	}
	return lock_slow(m, s, v, dl, how);
}

int ipcx_mutex_lock(struct ipcx_mutex *m)
{
	return lock_common(m, NULL, 0);
}

int ipcx_mutex_trylock(struct ipcx_mutex *m)
{
	return lock_common(m, NULL, LK_TRY);
}

int ipcx_mutex_timedlock(struct ipcx_mutex *m, const struct timespec *abs_mono)
{
	return lock_common(m, abs_mono, 0);
}

int ipcx_mutex_lock_contended(struct ipcx_mutex *m)
{
	return lock_common(m, NULL, LK_CONTENDED);
}

/*
 * Release after the list update; @linked is false when the mutex's robust
 * links were found corrupted (a peer wrote them): the mutex is then made
 * not recoverable, since its shared state cannot be trusted.
 */
static int __attribute__((noinline))
release_slow(struct ipcx_mutex *m, struct ipcx_self *s, bool linked)
{
	uintptr_t pi = (m->flags & IPCX_MUTEX_PI) ? 1 : 0;
	bool notrec = m->state != ST_CONSISTENT || !linked;
	uint32_t v;

	if (notrec)
		m->state = ST_NOTREC;
	if (pi) {
		/* Later PI lockers take it and see the state (see pi_lock). */
		v = s->tid;
		if (!IPCX_CAS(&m->lock, &v, 0u))
			ipcx_futex_unlock_pi(&m->lock, true);
	} else if (notrec) {
		__atomic_store_n(&m->lock, IPCX_MUTEX_NOTREC_WORD, __ATOMIC_RELEASE);
		ipcx_futex_wake(&m->lock, INT_MAX, true);
	} else {
		release_word(m, IPCX_LOAD_RELAXED(&m->lock));
	}
	ipcx_robust_pending_clear(s);
	ipcx_mutex_released(s, m);
	return linked ? 0 : -ENOTRECOVERABLE;
}

static int unlock_slow(struct ipcx_mutex *m, struct ipcx_self *s)
{
	ipcx_robust_pending(s, &m->robust_next, (m->flags & IPCX_MUTEX_PI) ? 1 : 0);
	return release_slow(m, s, ipcx_robust_dequeue(&m->robust_next));
}

int ipcx_mutex_unlock(struct ipcx_mutex *m)
{
	struct ipcx_self *s;
	uint32_t v;

	if (unlikely(!m || IPCX_LOAD_RELAXED(&m->magic) != IPCX_MUTEX_MAGIC))
		return -EINVAL;
	s = ipcx_self();
	if (unlikely(!s))
		return -EOPNOTSUPP;
	v = IPCX_LOAD_RELAXED(&m->lock);
	if (unlikely((v & FUTEX_TID_MASK) != s->tid))
		return -EPERM;
	if (unlikely(m->count)) {
		m->count--;
		return 0;
	}
	if (unlikely(m->state != ST_CONSISTENT || (m->flags & IPCX_MUTEX_PI)))
		return unlock_slow(m, s);
	ipcx_robust_pending(s, &m->robust_next, 0);
	if (unlikely(!ipcx_robust_dequeue(&m->robust_next)))
		return release_slow(m, s, false);
	release_word(m, v);
	ipcx_robust_pending_clear(s);
	ipcx_mutex_released(s, m);
	return 0;
}

int ipcx_mutex_owned(const struct ipcx_mutex *m)
{
	struct ipcx_self *s = ipcx_self();

	return s && (IPCX_LOAD_RELAXED(&m->lock) & FUTEX_TID_MASK) == s->tid;
}

int ipcx_mutex_consistent(struct ipcx_mutex *m)
{
	if (!m || IPCX_LOAD_RELAXED(&m->magic) != IPCX_MUTEX_MAGIC)
		return -EINVAL;
	if (!ipcx_mutex_owned(m))
		return -EPERM;
	if (m->state != ST_INCONSISTENT)
		return -EINVAL;
	m->state = ST_CONSISTENT;
	return 0;
}
