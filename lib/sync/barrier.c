// SPDX-License-Identifier: MIT
/*
 * barrier.c - a generation barrier on one 64-bit state word: the round
 * number in the low half (the futex word sleepers wait on), the arrivals of
 * the round in the high half.
 *
 * Every change is one CAS of the whole word:
 *   arrive           (g, a) -> (g, a + 1)
 *   complete a round (g, count - 1) -> (g + 1, 0), then wake everybody
 *   give up (timed)  (g, a) -> (g, a - 1), only while the round is still g
 * so a round completes exactly when its count-th arrival lands, no
 * arrival of the next round can mix with it, and a participant whose
 * deadline passes either takes its arrival back or finds its round already
 * complete (then it was released, and says so). A process killed anywhere
 * leaves a consistent word: counted if its arrival landed, not otherwise.
 */
#include <limits.h>

#include "sync_priv.h"

_Static_assert(sizeof(struct ipcx_barrier) == 64, "struct ipcx_barrier is ABI");
_Static_assert(offsetof(struct ipcx_barrier, state) == 0, "state word first");

#define ARRIVAL		(1ull << 32)

static inline uint32_t round_of(uint64_t s) { return (uint32_t)s; }
static inline uint32_t arrived_of(uint64_t s) { return (uint32_t)(s >> 32); }

_Static_assert(__atomic_always_lock_free(8, 0), "the state word needs a lock-free 64-bit CAS");

static inline bool barrier_ok(const struct ipcx_barrier *b)
{
	/* aligned too: a misaligned copy would count an arrival, then fail the futex */
	return b && !((uintptr_t)b & 7) && IPCX_LOAD_RELAXED(&b->magic) == IPCX_BARRIER_MAGIC &&
		b->count && b->count <= INT_MAX;
}

int ipcx_barrier_init(struct ipcx_barrier *b, unsigned int count)
{
	if (!b || ((uintptr_t)b & 7) || !count || count > INT_MAX)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->count = count;
	IPCX_STORE(&b->magic, IPCX_BARRIER_MAGIC);
	return 0;
}

int ipcx_barrier_destroy(struct ipcx_barrier *b)
{
	if (!barrier_ok(b))
		return -EINVAL;
	if (arrived_of(IPCX_LOAD(&b->state)))
		return -EBUSY;
	IPCX_STORE(&b->magic, 0u);
	return 0;
}

/* Take this caller's arrival back unless round @g already completed. */
static int withdraw(struct ipcx_barrier *b, uint32_t g)
{
	uint64_t s = IPCX_LOAD(&b->state);

	do {
		if (round_of(s) != g)
			return 0;	/* completed meanwhile: released */
	} while (!IPCX_CAS(&b->state, &s, s - ARRIVAL));
	return -ETIMEDOUT;
}

static int barrier_wait(struct ipcx_barrier *b, const struct timespec *dl)
{
	uint64_t s, ns;
	uint32_t g, count;

	if (!barrier_ok(b))
		return -EINVAL;
	if (dl && !ipcx_timespec_valid(dl))
		return -EINVAL;
	count = b->count;
	s = IPCX_LOAD(&b->state);
	do {
		if (arrived_of(s) + 1 >= count)
			ns = (uint64_t)(round_of(s) + 1);	/* next round, nobody arrived */
		else
			ns = s + ARRIVAL;
	} while (!IPCX_CAS(&b->state, &s, ns));
	g = round_of(s);
	if (round_of(ns) != g) {
		ipcx_futex_wake(ipcx_low_half(&b->state), INT_MAX, true);
		return IPCX_BARRIER_SERIAL;
	}
	while (round_of(IPCX_LOAD(&b->state)) == g) {
		int ret = ipcx_wait_capped(ipcx_low_half(&b->state), g, dl);

		if (ret == -ETIMEDOUT)
			return withdraw(b, g);
		if (ret && ret != -EAGAIN) {	/* not a usable futex word */
			withdraw(b, g);
			return -EINVAL;
		}
	}
	return 0;
}

int ipcx_barrier_wait(struct ipcx_barrier *b)
{
	return barrier_wait(b, NULL);
}

int ipcx_barrier_timedwait(struct ipcx_barrier *b, const struct timespec *abs_mono)
{
	return barrier_wait(b, abs_mono);
}
