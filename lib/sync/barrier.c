// SPDX-License-Identifier: MIT
/*
 * barrier.c - a generation barrier: arrivals are counted with fetch-add,
 * the last arrival of a round resets the count, bumps the generation (the
 * futex word) and wakes everybody; the others sleep until the generation
 * moves. The reset happens before the bump, and a participant reads the
 * generation before it arrives, so a fast participant's next round can
 * never mix with the current one.
 */
#include <limits.h>

#include "sync_priv.h"

_Static_assert(sizeof(struct ipcx_barrier) == 64, "struct ipcx_barrier is ABI");
_Static_assert(offsetof(struct ipcx_barrier, gen) == 0, "futex word first");

static inline bool barrier_ok(const struct ipcx_barrier *b)
{
	return b && IPCX_LOAD_RELAXED(&b->magic) == IPCX_BARRIER_MAGIC &&
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
	if (IPCX_LOAD(&b->arrived))
		return -EBUSY;
	IPCX_STORE(&b->magic, 0u);
	return 0;
}

int ipcx_barrier_wait(struct ipcx_barrier *b)
{
	uint32_t g, n;

	if (!barrier_ok(b))
		return -EINVAL;
	g = IPCX_LOAD(&b->gen);
	n = __atomic_add_fetch(&b->arrived, 1u, __ATOMIC_ACQ_REL);
	if (n >= b->count) {
		IPCX_STORE(&b->arrived, 0u);
		IPCX_STORE(&b->gen, g + 1);
		ipcx_futex_wake(&b->gen, INT_MAX, true);
		return IPCX_BARRIER_SERIAL;
	}
	while (IPCX_LOAD(&b->gen) == g) {
		int ret = ipcx_wait_capped(&b->gen, g, NULL);

		if (ret && ret != -EAGAIN)
			return -EINVAL;	/* not a usable futex word */
	}
	return 0;
}
