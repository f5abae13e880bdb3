// SPDX-License-Identifier: MIT
/*
 * robust.c - per-thread identity for the robust locks: TID and the robust
 * list head libc registered, cached in TLS (gettid and get_robust_list are
 * syscalls, far too slow for a lock fast path) and forgotten in a forked
 * child, whose only thread has a new TID.
 */
#include <pthread.h>
#include <unistd.h>

#include "robust.h"
#include "sync_priv.h"

__thread struct ipcx_self ipcx_self_tls __attribute__((tls_model("initial-exec")));

/* In the child of fork() only the forking thread exists: forget its TID. */
static void forget_self(void)
{
	ipcx_self_tls.tid = 0;
	ipcx_self_tls.ok = 0;
	ipcx_self_tls.head = NULL;
	ipcx_self_tls.defer_m = NULL;	/* the child owns none of the parent's locks */
}

/* At load time, not on first use: see lib/rwlock/liveness.c. */
static void __attribute__((constructor)) register_fork_hook(void)
{
	pthread_atfork(NULL, NULL, forget_self);
}

struct ipcx_self *ipcx_self_init(void)
{
	struct ipcx_self *s = &ipcx_self_tls;
	struct ipcx_robust_head *head = NULL;
	size_t len = 0;

	s->ok = -EOPNOTSUPP;
	if (ipcx_get_robust_list(&head, &len) == 0 && head &&
	    len == sizeof(struct ipcx_robust_head) &&
	    head->futex_offset == IPCX_ROBUST_FUTEX_OFFSET) {
		s->head = head;
		s->ok = 1;
	}
	s->tid = (uint32_t)ipcx_gettid();
	return s->ok > 0 ? s : NULL;
}

/* The kernel's limit on a robust-list walk (ROBUST_LIST_LIMIT). */
#define WALK_LIMIT	2048

/*
 * Find @node by walking the calling thread's list from its head, which is
 * the thread's own memory. An entry is @node itself, or an alias of it (the
 * same memory mapped twice: same page offset, same links); the entry's
 * successor must point back at the entry. Only the link that led to the
 * entry (the head or a node the walk reached) and a successor's checked
 * back-link are written.
 */
bool ipcx_robust_dequeue_slow(uint64_t *node)
{
	struct ipcx_robust_head *h = ipcx_self_tls.head;
	uint64_t *slot, *e;
	uintptr_t next;
	unsigned int i;

	if (!h)
		return false;
	slot = (uint64_t *)&h->next;	/* the link that leads to the entry */
	for (i = 0; i < WALK_LIMIT; i++) {
		e = (uint64_t *)(uintptr_t)(*slot & ~(uint64_t)1);
		if ((uintptr_t)e == (uintptr_t)h || !e || ((uintptr_t)e & 7))
			return false;
		if (e == node || (!(((uintptr_t)e ^ (uintptr_t)node) & 4095) &&
				  e[0] == node[0] && e[-1] == node[-1])) {
			next = (uintptr_t)e[0] & ~(uintptr_t)1;
			if (!next || (next & 7) ||
			    (*(uint64_t *)(next - 8) & ~(uint64_t)1) != (uint64_t)(uintptr_t)e)
				return false;
			*(uint64_t *)(next - 8) = (uint64_t)(uintptr_t)slot;
			*slot = e[0];
			ipcx_barrier_compiler();
			e[0] = 0;
			e[-1] = 0;
			return true;
		}
		slot = e;
	}
	return false;
}

int ipcx_robust_check(void)
{
	return ipcx_self() ? 0 : -EOPNOTSUPP;
}

int ipcx_ncpus(void)
{
	static int ncpus;
	int n = __atomic_load_n(&ncpus, __ATOMIC_RELAXED);

	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		n = c > 0 ? (int)c : 1;
		__atomic_store_n(&ncpus, n, __ATOMIC_RELAXED);
	}
	return n;
}
