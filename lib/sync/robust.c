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

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* In the child of fork() only the forking thread exists: forget its TID. */
static void forget_self(void)
{
	ipcx_self_tls.tid = 0;
	ipcx_self_tls.ok = 0;
	ipcx_self_tls.head = NULL;
}

static void register_fork_hook(void)
{
	pthread_atfork(NULL, NULL, forget_self);
}

struct ipcx_self *ipcx_self_init(void)
{
	struct ipcx_self *s = &ipcx_self_tls;
	struct ipcx_robust_head *head = NULL;
	size_t len = 0;

	pthread_once(&fork_once, register_fork_hook);
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
