// SPDX-License-Identifier: MIT
/*
 * cond.c - condition variables that survive dead waiters.
 *
 * The only shared state is one sequence word: bits 8-31 count signals,
 * bits 1-7 count arrivals of sleepers, bit 0 says "somebody may be asleep".
 * A signal always bumps the signal count; it wakes (a syscall) only when
 * the bit is set, and when that wake finds nobody in the kernel it clears
 * the bit with a CAS expecting the word it wrote, so that a sleeper that
 * arrived meanwhile (and changed the arrivals) keeps it set.
 *
 * A waiter reads the signal count while it still holds the mutex, releases
 * the mutex, optionally spins until the count moves, then bumps the
 * arrivals and sets the bit in one CAS that fails if the count moved, and
 * sleeps expecting that exact word. Any signal after the mutex release
 * either moves the count before the waiter's CAS (the waiter leaves), or
 * after it (the signaller sees the bit and wakes, and the waiter's sleep
 * fails with EAGAIN if it was not in the kernel yet).
 *
 * Nothing here belongs to a waiter: no waiter count to decrement, no group
 * to switch (the state glibc bug 21422 is about). A waiter SIGKILLed at any
 * instruction leaves at most a stale bit, which costs the next signal one
 * futex_wake that finds nobody and then clears it.
 */
#include <limits.h>

#include "sync_priv.h"

_Static_assert(sizeof(struct ipcx_cond) == 64, "struct ipcx_cond is ABI");
_Static_assert(offsetof(struct ipcx_cond, seq) == 0, "futex word first");
_Static_assert(offsetof(struct ipcx_cond, requeued) == 24, "struct ipcx_cond is ABI");

#define SLEEPERS	0x00000001u
#define ARRIVALS	0x000000feu
#define ARRIVAL		0x00000002u
#define SIGNALS		0xffffff00u
#define SIGNAL		0x00000100u

static inline bool cond_ok(const struct ipcx_cond *c)
{
	return c && IPCX_LOAD_RELAXED(&c->magic) == IPCX_COND_MAGIC;
}

static inline bool mutex_ok(const struct ipcx_mutex *m)
{
	return m && IPCX_LOAD_RELAXED(&m->magic) == IPCX_MUTEX_MAGIC;
}

int ipcx_cond_init(struct ipcx_cond *c, const struct ipcx_cond_opts *opts)
{
	uint32_t flags;
	int ret;

	if (!c || ((uintptr_t)c & 7))
		return -EINVAL;
	ret = ipcx_opts_check(opts, sizeof(*opts));
	if (ret)
		return ret;
	flags = IPCX_OPT(opts, flags, 0u);
	if (flags & ~IPCX_SYNC_BLOCK)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->flags = flags;
	c->spin_ns = ipcx_spin_setting(flags, IPCX_OPT(opts, spin_ns, 0u));
	c->sig_cpu = UINT32_MAX;
	IPCX_STORE(&c->magic, IPCX_COND_MAGIC);
	return 0;
}

int ipcx_cond_destroy(struct ipcx_cond *c)
{
	if (!cond_ok(c))
		return -EINVAL;
	IPCX_STORE(&c->magic, 0u);
	return 0;
}

/*
 * Wait, after the caller's lock was released, until the signal count moves
 * away from @s0 (or a spurious wake-up). Return: 0 or -ETIMEDOUT;
 * *@slept says whether we were woken by the kernel (so may have been
 * requeued) rather than seeing the count move ourselves.
 */
static int cond_sleep(struct ipcx_cond *c, uint32_t s0, const struct timespec *abs_mono,
		      bool *slept)
{
	uint32_t v, nv, budget;
	int ret;

	*slept = false;
	budget = ipcx_spin_budget(IPCX_LOAD_RELAXED(&c->spin_ns), &c->spin_fail,
				  IPCX_LOAD_RELAXED(&c->sig_cpu));
	if (budget && !ipcx_deadline_passed(abs_mono)) {
		bool ok = ipcx_spin_while(&c->seq, SIGNALS, s0, budget);

		ipcx_spin_account(&c->spin_fail, ok);
		if (ok)
			return 0;
	}
	for (;;) {
		v = IPCX_LOAD(&c->seq);
		if ((v & SIGNALS) != s0)
			return 0;
		nv = (v & ~ARRIVALS) | ((v + ARRIVAL) & ARRIVALS) | SLEEPERS;
		if (!IPCX_CAS(&c->seq, &v, nv))
			continue;
		/*
		 * 0 also when the re-check period ran out: we may have been
		 * requeued onto the mutex meanwhile, so count it as a sleep.
		 */
		ret = ipcx_wait_capped(&c->seq, nv, abs_mono);
		if (ret == -ETIMEDOUT)
			return ret;
		if (ret == 0)
			*slept = true;
		else if (ret != -EAGAIN)
			return 0;	/* cannot sleep here: report a spurious wake-up */
	}
}

int ipcx_cond_timedwait(struct ipcx_cond *c, struct ipcx_mutex *m,
			const struct timespec *abs_mono)
{
	uint32_t s0, depth;
	bool slept;
	int ret, waited;

	if (!cond_ok(c) || !mutex_ok(m))
		return -EINVAL;
	if (abs_mono && !ipcx_timespec_valid(abs_mono))
		return -EINVAL;
	if (!ipcx_mutex_owned(m))
		return -EPERM;

	s0 = IPCX_LOAD(&c->seq) & SIGNALS;	/* under the mutex */
	/* name our mutex to signallers (see defer_to_held_mutex) */
	if (__atomic_load_n(&c->mtag, __ATOMIC_RELAXED) != m->tag)
		__atomic_store_n(&c->mtag, m->tag, __ATOMIC_RELAXED);
	depth = m->count;
	m->count = 0;
	ret = ipcx_mutex_unlock(m);
	if (ret) {
		m->count = depth;
		return ret;
	}

	/*
	 * Name the mutex in list_op_pending while we wait: if we are killed
	 * after a requeue moved us onto the mutex word and its unlock woke
	 * us, the kernel sees a pending, ownerless mutex and wakes the next
	 * sleeper, so the chain of requeued waiters does not stall.
	 */
	if (!(m->flags & IPCX_MUTEX_PI))
		ipcx_robust_pending(ipcx_self(), &m->robust_next, 0);
	waited = cond_sleep(c, s0, abs_mono, &slept);

	/*
	 * A waiter that was requeued onto the mutex word must take the mutex
	 * with FUTEX_WAITERS set, so its unlock wakes the next one.
	 */
	if (slept && IPCX_LOAD_RELAXED(&c->requeued))
		ret = ipcx_mutex_lock_contended(m);
	else
		ret = ipcx_mutex_lock(m);
	if (ret == 0 || ret == -EOWNERDEAD)
		m->count = depth;
	else if (ipcx_self())	/* the mutex was destroyed under us */
		ipcx_robust_pending_clear(ipcx_self());
	if (ret)
		return ret;
	return waited;
}

int ipcx_cond_timedwait_any(struct ipcx_cond *c, int (*unlock)(void *arg),
			    int (*lock)(void *arg), void *arg,
			    const struct timespec *abs_mono)
{
	uint32_t s0;
	bool slept;
	int ret, waited;

	if (!cond_ok(c) || !unlock || !lock)
		return -EINVAL;
	if (abs_mono && !ipcx_timespec_valid(abs_mono))
		return -EINVAL;
	s0 = IPCX_LOAD(&c->seq) & SIGNALS;	/* under the caller's lock */
	ret = unlock(arg);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	waited = cond_sleep(c, s0, abs_mono, &slept);
	ret = lock(arg);
	if (ret)
		return ret < 0 ? ret : -EINVAL;
	return waited;
}

int ipcx_cond_wait(struct ipcx_cond *c, struct ipcx_mutex *m)
{
	return ipcx_cond_timedwait(c, m, NULL);
}

/* After a wake of everybody (or of nobody): clear the sleepers bit, unless
 * the word moved on meanwhile. */
static inline void clear_sleepers(struct ipcx_cond *c, uint32_t v)
{
	IPCX_CAS(&c->seq, &v, v & ~SLEEPERS);
}

/*
 * Signalling while holding the waiters' mutex, the common pattern, used to
 * cost a woken waiter a second sleep: it woke while the signaller was still
 * returning from the wake syscall, found the mutex held, slept on it and
 * was woken again by the unlock (a mutex+condition ping-pong made 6 futex
 * calls per round trip instead of 4, and took ~1.5-2x as long). So when
 * the calling thread holds the mutex the latest waiter waited with (its
 * tag in c->mtag), the wake-up is deferred until that mutex is released
 * (ipcx_mutex_released): the waiter then wakes to a free mutex. The mutex
 * is the one most recently locked by this thread, found at the head of its
 * robust list (ipcx and glibc locks share it: the magic, owner and tag
 * must all match). A signaller that dies before releasing costs the
 * waiter one re-check period (they wake every 100 ms anyway), as a death
 * between the count and the wake always could.
 */
static bool defer_to_held_mutex(struct ipcx_cond *c)
{
	uint64_t tag = __atomic_load_n(&c->mtag, __ATOMIC_RELAXED);
	struct ipcx_self *s;
	struct ipcx_mutex *m;
	uintptr_t node;

	if (!tag)
		return false;
	s = ipcx_self();
	if (!s)
		return false;
	node = (uintptr_t)s->head->next;
	if ((node & 1) || node == (uintptr_t)s->head || !node)
		return false;	/* PI lock first, or no lock held */
	m = (struct ipcx_mutex *)(node - offsetof(struct ipcx_mutex, robust_next));
	if (IPCX_LOAD_RELAXED(&m->magic) != IPCX_MUTEX_MAGIC ||
	    (IPCX_LOAD_RELAXED(&m->lock) & FUTEX_TID_MASK) != s->tid ||
	    m->tag != tag || (m->flags & IPCX_MUTEX_PI))
		return false;
	if (s->defer_m && (s->defer_m != m || s->defer_seq != &c->seq))
		ipcx_cond_fire_deferred(s);	/* one deferred condition at a time */
	if (s->defer_m) {
		s->defer_n++;
	} else {
		s->defer_seq = &c->seq;
		s->defer_n = 1;
		s->defer_tag = tag;
		s->defer_m = m;
	}
	return true;
}

/*
 * Only the wake: by the release, a waiter may have taken the mutex,
 * returned and destroyed (even unmapped) the condition, so its word must
 * not be written; a wake on memory reused meanwhile is at worst a
 * spurious wake-up for whoever sleeps there. The sleepers bit a wake that
 * finds nobody leaves set costs the next signal one futex call, which then
 * clears it.
 */
void ipcx_cond_fire_deferred(struct ipcx_self *s)
{
	uint32_t *seq = s->defer_seq;
	int n = (int)s->defer_n;

	s->defer_m = NULL;
	ipcx_futex_wake(seq, n, true);
}

int ipcx_cond_signal(struct ipcx_cond *c)
{
	uint32_t old;

	if (!cond_ok(c))
		return -EINVAL;
	old = __atomic_fetch_add(&c->seq, SIGNAL, __ATOMIC_ACQ_REL);
	IPCX_STORE_RELAXED(&c->sig_cpu, ipcx_cpu());
	if (old & SLEEPERS) {
		if (defer_to_held_mutex(c))
			return 0;
		if (ipcx_futex_wake(&c->seq, 1, true) == 0)
			clear_sleepers(c, old + SIGNAL);
	}
	return 0;
}

int ipcx_cond_broadcast(struct ipcx_cond *c)
{
	uint32_t old;

	if (!cond_ok(c))
		return -EINVAL;
	old = __atomic_fetch_add(&c->seq, SIGNAL, __ATOMIC_ACQ_REL);
	IPCX_STORE_RELAXED(&c->sig_cpu, ipcx_cpu());
	if (old & SLEEPERS) {
		ipcx_futex_wake(&c->seq, INT_MAX, true);
		clear_sleepers(c, old + SIGNAL);
	}
	return 0;
}

int ipcx_cond_broadcast_mutex(struct ipcx_cond *c, struct ipcx_mutex *m)
{
	uint32_t old;
	int ret;

	if (!cond_ok(c) || !mutex_ok(m))
		return -EINVAL;
	if (!ipcx_mutex_owned(m))
		return -EPERM;
	if (m->flags & IPCX_MUTEX_PI)
		return ipcx_cond_broadcast(c);
	old = __atomic_fetch_add(&c->seq, SIGNAL, __ATOMIC_ACQ_REL);
	IPCX_STORE_RELAXED(&c->sig_cpu, ipcx_cpu());
	if (!(old & SLEEPERS))
		return 0;
	if (!IPCX_LOAD_RELAXED(&c->requeued))
		IPCX_STORE(&c->requeued, 1u);
	/* We hold m: our unlock will see FUTEX_WAITERS and wake the first. */
	__atomic_fetch_or(&m->lock, (uint32_t)FUTEX_WAITERS, __ATOMIC_ACQ_REL);
	ret = ipcx_futex_cmp_requeue(&c->seq, 0, &m->lock, INT_MAX, old + SIGNAL, true);
	if (ret < 0)	/* the word moved (another signal): wake them all instead */
		ipcx_futex_wake(&c->seq, INT_MAX, true);
	clear_sleepers(c, old + SIGNAL);
	return 0;
}
