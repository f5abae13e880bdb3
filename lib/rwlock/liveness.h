/* SPDX-License-Identifier: MIT */
/*
 * liveness.h - private: who is this process/thread, and is a recorded
 * process or thread still alive?
 *
 * A process is identified by its pid and its start time (field 22 of
 * /proc/PID/stat, clock ticks since boot), packed into one 64-bit "ident":
 * pid in the top 24 bits, the low 40 bits of the start time below. A pid
 * reused by a new process has another start time, so a stale ident never
 * looks alive. Own ident and tid are cached (reset in a fork child).
 */
#ifndef IPCX_RWLOCK_LIVENESS_H
#define IPCX_RWLOCK_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define IPCX_IDENT_START_MASK	((1ull << 40) - 1)
#define IPCX_IDENT_PID(id)	((pid_t)((id) >> 40))

/* Caches (reset in a fork child); read through the inline accessors. */
extern uint64_t ipcx_self_ident_cache;
extern __thread pid_t ipcx_self_tid_cache __attribute__((tls_model("initial-exec")));

uint64_t ipcx_self_ident_slow(void);
pid_t ipcx_self_tid_slow(void);

/* This process's ident (never 0 or 1), computed once per process. */
static inline uint64_t ipcx_self_ident(void)
{
	uint64_t id = __atomic_load_n(&ipcx_self_ident_cache, __ATOMIC_ACQUIRE);

	return __builtin_expect(id != 0, 1) ? id : ipcx_self_ident_slow();
}

/* This thread's tid, cached per thread. */
static inline pid_t ipcx_self_tid(void)
{
	pid_t tid = ipcx_self_tid_cache;

	return __builtin_expect(tid != 0, 1) ? tid : ipcx_self_tid_slow();
}

/*
 * True only when the process of @ident is known to be gone: no such pid,
 * a zombie, or a pid now used by a process with another start time.
 * Unknown (e.g. /proc unreadable) counts as alive.
 */
bool ipcx_ident_dead(uint64_t ident);

/*
 * True only when thread @tid is known to be gone. When @ident is non-zero
 * it is the ident of @tid's process (checked too); otherwise only the tid
 * itself is checked.
 */
bool ipcx_task_dead(pid_t tid, uint64_t ident);

#endif /* IPCX_RWLOCK_LIVENESS_H */
