// SPDX-License-Identifier: MIT
/*
 * sem.c - counting semaphores on one futex word: the count in bits 0-23,
 * an arrivals counter in bits 24-30, bit 31 saying "somebody may be
 * asleep".
 *
 * A waiter that finds the count at zero bumps the arrivals counter and sets
 * the bit in one CAS, then sleeps expecting exactly that word: any post in
 * between changes the word, the sleep fails with EAGAIN and the waiter
 * looks again. A post adds one and wakes one sleeper only when the bit is
 * set. When that wake finds nobody in the kernel, the post clears the bit
 * with a CAS that expects the word it wrote: a waiter that registered in
 * the meantime changed the arrivals, so the CAS fails and the bit stays.
 * (Clearing without the arrivals counter loses wake-ups: a waiter that saw
 * the bit already set would not write the word, and could be cleared away
 * while it enters the kernel.) Posts therefore cost no syscall once the
 * sleepers are gone.
 *
 * A waiter killed anywhere leaves at most a stale bit (one wasted wake);
 * the count only ever changes by a successful CAS, so it is never lost or
 * doubled.
 */
#include "sync_priv.h"

#define SLEEPERS	0x80000000u
#define ARRIVALS	0x7f000000u
#define ARRIVAL		0x01000000u
#define COUNT		0x00ffffffu

_Static_assert(COUNT == IPCX_SEM_VALUE_MAX, "count field holds the maximum");

_Static_assert(sizeof(struct ipcx_sem) == 64, "struct ipcx_sem is ABI");
_Static_assert(offsetof(struct ipcx_sem, value) == 0, "futex word first");

static inline bool sem_ok(const struct ipcx_sem *s)
{
	return s && IPCX_LOAD_RELAXED(&s->magic) == IPCX_SEM_MAGIC;
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
	s->value = value;
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
	uint32_t v;

	if (unlikely(!sem_ok(s)))
		return -EINVAL;
	v = IPCX_LOAD_RELAXED(&s->value);
	do {
		if ((v & COUNT) == COUNT)
			return -EOVERFLOW;
	} while (!IPCX_CAS(&s->value, &v, v + 1));
	IPCX_STORE_RELAXED(&s->post_cpu, ipcx_cpu());
	if (v & SLEEPERS) {
		if (ipcx_futex_wake(&s->value, 1, true) == 0) {
			uint32_t nv = v + 1;

			/* Nobody asleep and nobody arrived since: clear the bit. */
			IPCX_CAS(&s->value, &nv, nv & ~SLEEPERS);
		}
	}
	return 0;
}

static int sem_wait(struct ipcx_sem *s, const struct timespec *dl, bool try)
{
	uint32_t v, nv;
	bool spun = try;
	int ret;

	if (unlikely(!sem_ok(s)))
		return -EINVAL;
	if (dl && !ipcx_timespec_valid(dl))
		return -EINVAL;
	v = IPCX_LOAD_RELAXED(&s->value);
	for (;;) {
		if (v & COUNT) {
			if (IPCX_CAS(&s->value, &v, v - 1))
				return 0;
			continue;
		}
		if (try)
			return -EAGAIN;
		if (!spun) {
			uint32_t budget = ipcx_spin_budget(IPCX_LOAD_RELAXED(&s->spin_ns),
							   &s->spin_fail,
							   IPCX_LOAD_RELAXED(&s->post_cpu));

			spun = true;
			if (budget) {
				ipcx_spin_account(&s->spin_fail,
						  ipcx_spin_while(&s->value, COUNT, 0, budget));
				v = IPCX_LOAD_RELAXED(&s->value);
				continue;
			}
		}
		nv = (v & ~ARRIVALS) | ((v + ARRIVAL) & ARRIVALS) | SLEEPERS;
		if (!IPCX_CAS(&s->value, &v, nv))
			continue;
		ret = ipcx_wait_capped(&s->value, nv, dl);
		if (ret && ret != -EAGAIN)
			return ret == -ETIMEDOUT ? ret : -EINVAL;
		v = IPCX_LOAD_RELAXED(&s->value);
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
	return (int)(IPCX_LOAD_RELAXED(&s->value) & COUNT);
}
