// SPDX-License-Identifier: MIT
/*
 * olock.c - slow paths of the queue's robust owner lock (see olock.h).
 */
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "olock.h"

__thread uint32_t ipcx_olock_tls_tid __attribute__((tls_model("initial-exec")));

int ipcx_mq_mb;

static void tid_reset_child(void)
{
	ipcx_olock_tls_tid = 0;
	ipcx_mq_mb = 0;		/* register the child too */
}

/* At load time, not on first use: see lib/rwlock/liveness.c. */
static void __attribute__((constructor)) tid_register(void)
{
	pthread_atfork(NULL, NULL, tid_reset_child);
}

/*
 * First queue call of a thread (and of a fork child): register the process
 * for MEMBARRIER_CMD_GLOBAL_EXPEDITED, so its publishes may skip their
 * fence until a waiter asks for it (ipcx_mq_pub_fence()).
 */
uint32_t ipcx_olock_tid_slow(void)
{
	if (!__atomic_load_n(&ipcx_mq_mb, __ATOMIC_RELAXED)) {
		const char *off = secure_getenv("IPCX_MQ_NO_MEMBARRIER");
		int r = -1;

		/* opted out (no IPIs into this process, ever): always fence */
		if (!off || !*off || !strcmp(off, "0"))
			r = ipcx_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 ? 1 : -1;
		__atomic_store_n(&ipcx_mq_mb, r, __ATOMIC_RELAXED);
	}
	ipcx_olock_tls_tid = (uint32_t)ipcx_gettid();
	return ipcx_olock_tls_tid;
}

bool ipcx_tid_alive(uint32_t tid)
{
	struct timespec zero = { 0, 0 };
	struct pollfd p;
	long r;
	int fd;

	if (tid == 0 || tid >= 0x40000000u)
		return false;
	/*
	 * kill(tid, 0) succeeds on a zombie, whose parent may never reap it:
	 * a pidfd polls readable as soon as the process has exited. pidfds
	 * exist for thread-group leaders only; other threads are reaped by
	 * the kernel when they exit, so kill() is exact for them.
	 */
	fd = ipcx_pidfd_open((pid_t)tid, 0);
	if (fd == -ESRCH)
		return false;
	if (fd >= 0) {
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		r = ipcx_sys(SYS_ppoll, &p, 1, &zero, NULL, 8, 0);
		ipcx_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		if (r >= 0)
			return !(r == 1 && (p.revents & POLLIN));
	}
	r = ipcx_sys(SYS_kill, tid, 0, 0, 0, 0, 0);
	return r != -ESRCH;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

int ipcx_olock_lock_slow(uint32_t *w, uint32_t me, const struct timespec *abs_mono)
{
	uint64_t deadline = abs_mono ? ts_ns(abs_mono) : UINT64_MAX;
	uint32_t want = me;	/* after sleeping, others may sleep too */
	int spins = 0;

	for (;;) {
		uint32_t v = __atomic_load_n(w, __ATOMIC_RELAXED);
		uint32_t owner = v & ~IPCX_OLOCK_WAITERS;
		struct timespec t;
		uint64_t now, until;
		int r;

		if (v == 0) {
			if (__atomic_compare_exchange_n(w, &v, want, false, __ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				return 0;
			continue;
		}
		if (owner == me)
			return -EDEADLK;
		if (spins < 100) {
			spins++;
			ipcx_cpu_relax();
			continue;
		}
		if (!(v & IPCX_OLOCK_WAITERS)) {
			if (!__atomic_compare_exchange_n(w, &v, v | IPCX_OLOCK_WAITERS, false,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				continue;
			v |= IPCX_OLOCK_WAITERS;
		}
		now = ipcx_now_ns(CLOCK_MONOTONIC);
		if (now >= deadline)
			return -ETIMEDOUT;
		until = now + IPCX_OLOCK_SLICE_NS;
		if (until > deadline)
			until = deadline;
		t.tv_sec = (time_t)(until / 1000000000ull);
		t.tv_nsec = (long)(until % 1000000000ull);
		r = ipcx_futex_wait(w, v, &t, true);
		want = me | IPCX_OLOCK_WAITERS;
		if (r != -ETIMEDOUT)
			continue;
		/* A slice passed with the lock held: is its owner still there? */
		v = __atomic_load_n(w, __ATOMIC_RELAXED);
		owner = v & ~IPCX_OLOCK_WAITERS;
		if (owner && owner != me && !ipcx_tid_alive(owner) &&
		    __atomic_compare_exchange_n(w, &v, me | IPCX_OLOCK_WAITERS, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return 1;
	}
}
