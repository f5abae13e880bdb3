// SPDX-License-Identifier: MIT
/*
 * sem.c - counting semaphores on one 64-bit state word: the count in bits
 * 0-23, a generation in bits 24-31 (together the low half, the futex word
 * sleepers wait on), the number of registered sleepers in bits 32-63.
 *
 * A waiter that finds the count at zero registers (sleepers + 1, one CAS)
 * and sleeps expecting the low half it saw: any post in between moves the
 * count, the sleep fails with EAGAIN and the waiter looks again. A waiter
 * that takes a token takes its registration back in the same CAS. A post
 * adds one and wakes one sleeper only while sleepers are registered, so
 * once the last sleeper has left, posts make no syscall (a sleepers bit
 * that stayed set after its sleeper woke cost a wake-up that found nobody
 * whenever the peer was fast).
 *
 * A registration can outlive its waiter (SIGKILLed while registered), and
 * then every post would make a futex_wake that finds nobody. So once
 * SEM_DROP_EVERY posts found nobody since the last drop, such a post drops
 * all registrations and bumps the generation (a CAS that keeps the count,
 * retried while the generation and the sleepers stay as the post saw them),
 * then wakes every sleeper. Anybody asleep at that point can only hold a
 * registration of the old generation (a sleep expecting the old generation
 * fails once it moved), so the wake-all sends each of them back to register
 * again; waiters on their way in see the generation move, their sleep
 * fails, and they register again too. The wake-all is what makes the drop
 * safe whenever it runs: no CAS can tell whether a sleeper that left the
 * futex queue (a signal, the re-check) went back to sleep on its old
 * registration.
 *
 * Late, not lost: a dropping post held between its CAS and its wake-all
 * (preempted, stopped, killed) leaves such sleepers unregistered until it
 * resumes or their re-check; a generation that wraps while one waiter is
 * on its way in (256 drops) can leave a sleeper unregistered until its
 * re-check.
 *
 * The count only ever changes by a successful CAS, so a process killed
 * anywhere never loses or doubles a token.
 */
#include <limits.h>

#include "sync_priv.h"

#define COUNT		0x00ffffffu
#define GEN1		0x01000000u
#define SLEEPER		(1ull << 32)
#define NO_GEN		(-1)
#define SEM_DROP_EVERY	4	/* empty wake-ups per drop of the registrations */

_Static_assert(COUNT == IPCX_SEM_VALUE_MAX, "count field holds the maximum");

_Static_assert(sizeof(struct ipcx_sem) == 64, "struct ipcx_sem is ABI");
_Static_assert(offsetof(struct ipcx_sem, state) == 0, "state word first");

static inline uint32_t low(uint64_t st) { return (uint32_t)st; }
static inline uint32_t sleepers(uint64_t st) { return (uint32_t)(st >> 32); }
static inline int gen(uint64_t st) { return (int)(low(st) >> 24); }

_Static_assert(__atomic_always_lock_free(8, 0), "the state word needs a lock-free 64-bit CAS");

static inline bool sem_ok(const struct ipcx_sem *s)
{
	return s && !((uintptr_t)s & 7) && IPCX_LOAD_RELAXED(&s->magic) == IPCX_SEM_MAGIC;
}

int ipcx_sem_init(struct ipcx_sem *s, unsigned int value, const struct ipcx_sem_opts *opts)
{
	uint32_t flags;
	int ret;

	if (!s || ((uintptr_t)s & 7) || value > IPCX_SEM_VALUE_MAX)
		return -EINVAL;
	ret = ipcx_opts_check(opts, sizeof(*opts));
	if (ret)
		return ret;
	flags = IPCX_OPT(opts, flags, 0u);
	if (flags & ~IPCX_SYNC_BLOCK)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->state = value;
	s->flags = flags;
	s->spin_ns = ipcx_spin_setting(flags, IPCX_OPT(opts, spin_ns, 0u));
	s->post_cpu = UINT32_MAX;
	IPCX_STORE(&s->magic, IPCX_SEM_MAGIC);
	return 0;
}

int ipcx_sem_destroy(struct ipcx_sem *s)
{
	if (!sem_ok(s))
		return -EINVAL;
	IPCX_STORE(&s->magic, 0u);
	return 0;
}

int ipcx_sem_post(struct ipcx_sem *s)
{
	uint64_t st, nst;

	if (unlikely(!sem_ok(s)))
		return -EINVAL;
	st = IPCX_LOAD_RELAXED(&s->state);
	do {
		if ((low(st) & COUNT) == COUNT)
			return -EOVERFLOW;
		nst = st + 1;
	} while (!IPCX_CAS(&s->state, &st, nst));
	IPCX_STORE_RELAXED(&s->post_cpu, ipcx_cpu());
	if (sleepers(nst) && ipcx_futex_wake(ipcx_low_half(&s->state), 1, true) == 0 &&
	    __atomic_add_fetch(&s->empty_wakes, 1u, __ATOMIC_RELAXED) >= SEM_DROP_EVERY) {
		/* Whatever the count: the wake-all covers anybody asleep. */
		st = nst;
		while (gen(st) == gen(nst) && sleepers(st) == sleepers(nst)) {
			uint64_t dropped = (uint64_t)((low(st) & COUNT) | ((low(st) + GEN1) & ~COUNT));

			if (IPCX_CAS(&s->state, &st, dropped)) {
				IPCX_STORE_RELAXED(&s->empty_wakes, 0u);
				ipcx_futex_wake(ipcx_low_half(&s->state), INT_MAX, true);
				break;
			}
		}
	}
	return 0;
}

/* Take back the registration made in generation @g, unless it was dropped. */
static void unregister(struct ipcx_sem *s, int g)
{
	uint64_t st = IPCX_LOAD_RELAXED(&s->state);

	while (g != NO_GEN && gen(st) == g && sleepers(st))
		if (IPCX_CAS(&s->state, &st, st - SLEEPER))
			break;
}

static int sem_wait(struct ipcx_sem *s, const struct timespec *dl, bool try)
{
	uint32_t *word;
	uint64_t st, nst;
	int reg = NO_GEN;	/* generation of this caller's registration */
	bool spun = try, timed_out = false;
	int ret;

	if (unlikely(!sem_ok(s)))
		return -EINVAL;
	if (dl && !ipcx_timespec_valid(dl))
		return -EINVAL;
	word = ipcx_low_half(&s->state);
	st = IPCX_LOAD_RELAXED(&s->state);
	for (;;) {
		if (low(st) & COUNT) {
			nst = st - 1;
			if (reg == gen(st) && sleepers(st))
				nst -= SLEEPER;
			if (IPCX_CAS(&s->state, &st, nst))
				return 0;
			continue;
		}
		if (try)
			return -EAGAIN;
		if (timed_out) {
			unregister(s, reg);
			return -ETIMEDOUT;
		}
		if (!spun) {
			uint32_t budget = ipcx_spin_budget(IPCX_LOAD_RELAXED(&s->spin_ns),
							   &s->spin_fail,
							   IPCX_LOAD_RELAXED(&s->post_cpu));

			spun = true;
			if (budget && !ipcx_deadline_passed(dl)) {
				ipcx_spin_account(&s->spin_fail,
					IPCX_SPIN_WHILE(!(low(IPCX_LOAD_RELAXED(&s->state)) & COUNT),
							budget));
				st = IPCX_LOAD_RELAXED(&s->state);
				continue;
			}
		}
		if (reg != gen(st)) {
			if (!IPCX_CAS(&s->state, &st, st + SLEEPER))
				continue;
			st += SLEEPER;
			reg = gen(st);
		}
		ret = ipcx_wait_capped(word, low(st), dl);
		if (ret == -ETIMEDOUT) {
			timed_out = true;	/* one more look: a token may be there */
		} else if (ret && ret != -EAGAIN) {
			unregister(s, reg);
			return -EINVAL;
		}
		st = IPCX_LOAD_RELAXED(&s->state);
	}
}

int ipcx_sem_wait(struct ipcx_sem *s)
{
	return sem_wait(s, NULL, false);
}

int ipcx_sem_trywait(struct ipcx_sem *s)
{
	return sem_wait(s, NULL, true);
}

int ipcx_sem_timedwait(struct ipcx_sem *s, const struct timespec *abs_mono)
{
	return sem_wait(s, abs_mono, false);
}

int ipcx_sem_value(const struct ipcx_sem *s)
{
	if (!sem_ok(s))
		return -EINVAL;
	return (int)(low(IPCX_LOAD_RELAXED(&s->state)) & COUNT);
}
