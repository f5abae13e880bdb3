// SPDX-License-Identifier: MIT
/*
 * sem.c - counting semaphores on one futex word: the count in bits 0-30,
 * bit 31 saying "somebody may be asleep".
 *
 * A post adds one and wakes one sleeper only when the bit is set; when that
 * wake finds nobody in the kernel it clears the bit again, so posts cost no
 * syscall once the sleepers are gone. A waiter sets the bit before it
 * sleeps with the value it saw; any post in between changes the word, so
 * the sleep fails with EAGAIN and the waiter looks again: no lost wake-up.
 * A waiter killed anywhere leaves at most a stale bit; the count itself
 * only ever changes by a successful CAS, so it is never lost or doubled.
 */
#include "sync_priv.h"

#define SLEEPERS	0x80000000u
#define COUNT		0x7fffffffu

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

	if (!s || value > IPCX_SEM_VALUE_MAX)
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

			/* Nobody was asleep: later posts need not call the kernel. */
			while (nv & SLEEPERS) {
				if (IPCX_CAS(&s->value, &nv, nv & ~SLEEPERS))
					break;
			}
		}
	}
	return 0;
}

static int sem_wait(struct ipcx_sem *s, const struct timespec *dl, bool try)
{
	uint32_t v;
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
		if (!(v & SLEEPERS)) {
			if (!IPCX_CAS(&s->value, &v, v | SLEEPERS))
				continue;
			v |= SLEEPERS;
		}
		ret = ipcx_wait_capped(&s->value, v, dl);
		if (ret == -ETIMEDOUT)
			return ret;
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
