/* SPDX-License-Identifier: MIT */
/*
 * lock.h - private: the lock + undo log that guards every structure the
 * allocator and the segment manager keep in shared memory.
 *
 * The lock is an ipcx robust mutex (lib/sync) placed in the segment: when
 * its holder dies, the kernel's robust-list walk marks it and the next
 * locker gets -EOWNERDEAD. This wrapper is the only place that knows which
 * lock it is (callers use init, lock / lock_repair, trylock, unlock).
 *
 * Crash repair, for users that log (the large allocator, the segment
 * index; the size classes rebuild their derived state instead, see mem.c):
 * every store to guarded shared state goes through ipcx_lk_write(), which
 * first appends (offset, old value) to the lock's undo log, then stores. ipcx_lk_commit() empties the log (one store), which
 * is the op's commit point. If a holder dies, the next locker finds the log
 * non-empty and restores the old values newest-first, so the structure is
 * exactly as before the dying op (roll back), then marks the lock
 * consistent. A process killed by SIGKILL loses no store it executed, so
 * only compiler ordering matters; the log and the data are in the same
 * mapping. Offsets are relative to a base given by the caller so that a
 * survivor mapping the segment elsewhere can repair it.
 */
#ifndef IPCX_MEM_LOCK_H
#define IPCX_MEM_LOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <ipcx/sync.h>

struct ipcx_ulog_ent {
	uint64_t off;		/* offset of the word from the log's base */
	uint64_t old;		/* its value before the op */
};

struct ipcx_lk {
	struct ipcx_mutex mtx;
	uint64_t repairs;	/* dead holders rolled back so far (for check/tools) */
	uint64_t n;		/* live undo entries; 0 = committed */
	uint64_t cap;		/* entries in the log that follows the lock */
	uint64_t pad[5];
};

_Static_assert(sizeof(struct ipcx_lk) == 128, "ipcx_lk is ABI");

#define ipcx_barrier() __asm__ __volatile__("" ::: "memory")

static inline struct ipcx_ulog_ent *ipcx_lk_log(struct ipcx_lk *lk)
{
	return (struct ipcx_ulog_ent *)(lk + 1);
}

/* @recursive: the segment lock nests (atomic functions call back in). */
/*
 * @recursive: the segment lock nests (atomic functions call back in).
 * Return: 0, or -errno (-EOPNOTSUPP when the thread's robust list cannot be
 * shared: the lock would not be robust).
 */
static inline int ipcx_lk_init(struct ipcx_lk *lk, uint64_t cap, bool recursive)
{
	IPCX_OPTS(ipcx_mutex_opts, o,
		  .type = recursive ? IPCX_MUTEX_RECURSIVE : IPCX_MUTEX_NORMAL);

	__builtin_memset(lk, 0, sizeof(*lk));
	lk->cap = cap;
	return ipcx_mutex_init(&lk->mtx, &o);
}

/*
 * Roll back a dead holder's op. Entries are untrusted: each offset is
 * bounds-checked against [0, @size) and 8-byte alignment; a bad entry is
 * skipped (the check tool will report what is left).
 */
static inline void ipcx_lk_rollback(struct ipcx_lk *lk, void *base, uint64_t size)
{
	struct ipcx_ulog_ent *e = ipcx_lk_log(lk);
	uint64_t n = lk->n;

	if (n > lk->cap)
		n = lk->cap;
	while (n--) {
		uint64_t off = e[n].off;

		if (off < size && size - off >= 8 && !(off & 7))
			*(uint64_t *)((char *)base + off) = e[n].old;
		ipcx_barrier();
		lk->n = n;
	}
	lk->n = 0;
}

static inline int ipcx_lk_acquired(struct ipcx_lk *lk, int ret, void *base, uint64_t size)
{
	if (__builtin_expect(ret == 0, 1))
		return 0;
	if (ret == -EOWNERDEAD) {
		ipcx_lk_rollback(lk, base, size);
		lk->repairs++;
		ipcx_mutex_consistent(&lk->mtx);
		return 1;
	}
	return ret;	/* -ENOTRECOVERABLE, -EAGAIN (trylock), -EDEADLK, ... */
}

/*
 * 0, 1 if a dead holder's op was rolled back (the lock is held and
 * consistent), or -errno (-ENOTRECOVERABLE).
 */
static inline int ipcx_lk_lock_repair(struct ipcx_lk *lk, void *base, uint64_t size)
{
	return ipcx_lk_acquired(lk, ipcx_mutex_lock(&lk->mtx), base, size);
}

/* 0, or -errno (-ENOTRECOVERABLE). A dead holder's op is rolled back first. */
static inline int ipcx_lk_lock(struct ipcx_lk *lk, void *base, uint64_t size)
{
	int ret = ipcx_lk_lock_repair(lk, base, size);

	return ret > 0 ? 0 : ret;
}

/* 0, 1 (repaired, as ipcx_lk_lock_repair), -EAGAIN if held, or -errno. */
static inline int ipcx_lk_trylock(struct ipcx_lk *lk, void *base, uint64_t size)
{
	return ipcx_lk_acquired(lk, ipcx_mutex_trylock(&lk->mtx), base, size);
}

static inline void ipcx_lk_commit(struct ipcx_lk *lk)
{
	ipcx_barrier();
	lk->n = 0;
	ipcx_barrier();
}

static inline void ipcx_lk_unlock(struct ipcx_lk *lk)
{
	ipcx_lk_commit(lk);
	ipcx_mutex_unlock(&lk->mtx);
}

/* Logged store of one 64-bit word at @p (inside [base, base+size)). */
static inline void ipcx_lk_write(struct ipcx_lk *lk, void *base, uint64_t *p, uint64_t v)
{
	uint64_t n = lk->n;
	struct ipcx_ulog_ent *e = ipcx_lk_log(lk);

	if (__builtin_expect(n < lk->cap, 1)) {
		e[n].off = (uint64_t)((char *)p - (char *)base);
		e[n].old = *p;
		ipcx_barrier();
		lk->n = n + 1;
		ipcx_barrier();
	}
	*p = v;
}

#endif /* IPCX_MEM_LOCK_H */
