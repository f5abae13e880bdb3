// SPDX-License-Identifier: MIT
/*
 * liveness.c - process identity and death checks for locks that record
 * their owners (see liveness.h). Only slow paths come here: a waiter that
 * has waited one check period, or a first use per process/thread.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "liveness.h"
#include "../sys/sys.h"

uint64_t ipcx_self_ident_cache;		/* 0 = not computed in this process */
/* initial-exec: no __tls_get_addr call on the lock paths (the archive is -fPIC). */
__thread pid_t ipcx_self_tid_cache __attribute__((tls_model("initial-exec")));

static void after_fork_child(void)
{
	__atomic_store_n(&ipcx_self_ident_cache, 0, __ATOMIC_RELAXED);
	ipcx_self_tid_cache = 0;	/* only the forking thread exists in the child */
}

/*
 * Registered when the library is loaded, not on first use: a
 * pthread_once() in progress in another thread at fork() time would leave
 * the child's once-guard "running" for good under runtimes whose once is
 * not fork-aware (ThreadSanitizer's is not), deadlocking the child.
 */
static void __attribute__((constructor)) register_atfork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

/*
 * Read /proc/<path>/stat: the state letter, thread count and start time.
 * Return 0, -ENOENT when the task does not exist, other -errno when unknown.
 */
static int read_stat(const char *path, char *state, uint64_t *start, long *threads)
{
	char buf[1024], *p;
	ssize_t n;
	int fd, field;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -EIO;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ENOENT : -EIO;	/* reading a reaped task: ESRCH */
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p;
	/* p is at field 3 (state); thread count is field 20, start time 22. */
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
		if (field + 1 == 20)
			*threads = strtol(p, NULL, 10);
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

uint64_t ipcx_self_ident_slow(void)
{
	uint64_t id;
	char path[64], st;
	uint64_t start = 0;
	long threads;
	pid_t pid;

	/*
	 * No lock: racing threads compute the same value. (A process-local
	 * mutex here could be left locked in a fork child.)
	 */
	pid = (pid_t)ipcx_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_stat(path, &st, &start, &threads))
		start = 0;	/* no /proc: pid-only identity */
	id = ((uint64_t)pid << 40) | (start & IPCX_IDENT_START_MASK);
	__atomic_store_n(&ipcx_self_ident_cache, id, __ATOMIC_RELEASE);
	return id;
}

pid_t ipcx_self_tid_slow(void)
{
	ipcx_self_tid_cache = ipcx_gettid();
	return ipcx_self_tid_cache;
}

/*
 * @process: @path is a process (its leader's stat): a zombie leader whose
 * other threads still run is a live process, not a dead one.
 */
static bool stat_says_dead(const char *path, uint64_t want_start, bool check_start,
			   bool process)
{
	uint64_t start;
	long threads = 0;
	char st;
	int ret = read_stat(path, &st, &start, &threads);

	/*
	 * Callers ask kill()/tgkill() first, which say ESRCH for a gone task.
	 * The task existed a moment ago: ENOENT here means it just went (the
	 * next check sees ESRCH) or /proc hides it (hidepid): unknown, alive.
	 */
	if (ret)
		return false;
	if (st == 'Z' || st == 'X' || st == 'x') {
		if (!process || threads <= 1)
			return true;		/* killed, not yet reaped */
	}
	if (check_start && (start & IPCX_IDENT_START_MASK) != want_start)
		return true;			/* pid reused */
	return false;
}

bool ipcx_ident_dead(uint64_t ident)
{
	pid_t pid = IPCX_IDENT_PID(ident);
	uint64_t start = ident & IPCX_IDENT_START_MASK;
	char path[64];

	if (pid <= 0)
		return true;			/* not a process: corrupted record */
	if (ipcx_sys(SYS_kill, pid, 0, 0, 0, 0, 0) == -ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return stat_says_dead(path, start, start != 0, true);
}

bool ipcx_task_dead(pid_t tid, uint64_t ident)
{
	pid_t pid = IPCX_IDENT_PID(ident);
	char path[96];

	if (tid <= 0)
		return true;
	if (ident) {
		if (ipcx_ident_dead(ident))
			return true;
		if (ipcx_sys(SYS_tgkill, pid, tid, 0, 0, 0, 0) == -ESRCH)
			return true;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
		return stat_says_dead(path, 0, false, false);
	}
	/*
	 * No record yet (owner between acquiring and recording): the tid alone.
	 * kill() accepts any thread's id and signals (here: checks) its group.
	 */
	if (ipcx_sys(SYS_kill, tid, 0, 0, 0, 0, 0) == -ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	return stat_says_dead(path, 0, false, false);
}
