/* SPDX-License-Identifier: MIT */
/*
 * ipcx_test.h - small helpers shared by the kselftest programs.
 *
 * In a child forked by a test, never ASSERT (the harness would report from
 * the wrong process): _exit() with a code and let the parent check waitpid.
 */
#ifndef IPCX_TEST_H
#define IPCX_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Built with ThreadSanitizer (gcc defines the macro, clang has the feature test). */
#if defined(__SANITIZE_THREAD__)
#define IPCX_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPCX_TEST_TSAN 1
#endif
#endif
#ifndef IPCX_TEST_TSAN
#define IPCX_TEST_TSAN 0
#endif

/* Exit status of a child: its exit code, or 128 + signal, or -1. */
static inline int t_wait(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Memory shared with children forked after the call. */
static inline void *t_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Absolute CLOCK_MONOTONIC deadline @ms from now (negative: in the past). */
static inline struct timespec t_deadline_ms(long ms)
{
	struct timespec ts;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + (int64_t)ms * 1000000LL;
	if (ns < 0)
		ns = 0;
	ts.tv_sec = ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	return ts;
}

static inline void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The state letter of /proc/PID/stat ('S' sleeping, 'T' stopped, ...); '?'. */
static inline char t_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[1] && p[2] ? p[2] : '?';
}

/* Until @pid's state is @state, at most @ms milliseconds: 0, or -1. */
static inline int t_until_state(pid_t pid, char state, int ms)
{
	int i;

	for (i = 0; i < ms; i++) {
		if (t_proc_state(pid) == state)
			return 0;
		t_sleep_ms(1);
	}
	return -1;
}

/* Open file descriptors of this process (for leak checks). */
static inline int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own fd */
}

/* Entries of directory @path whose name starts with @prefix. */
static inline int t_count_entries(const char *path, const char *prefix)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/*
 * Serialise tests that change machine-wide settings (vm.nr_hugepages) across
 * concurrently running suites: without it, two suites that each raise the
 * pool and then restore "their" old value can leave it raised. Returns an
 * fd to close when done (or -1: no lock file, run unserialised).
 */
static inline int t_machine_lock(void)
{
	int fd = open("/tmp/ipcx-test-machine.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0)
		while (flock(fd, LOCK_EX) && errno == EINTR)
			;
	return fd;
}

/*
 * Crash points without hooks in the library: run @fn(@arg) in a child whose
 * mapping of [@lo, @lo + @len) (page aligned) is read-only. Each store into
 * the range faults; the handler makes the range writable, lets that one
 * store run with a single step (x86-64 trap flag) and protects the range
 * again from the SIGTRAP handler. Before store number @k (1-based) the child
 * makes the range writable again (so the kernel's robust-list walk can mark
 * the locks it holds) and kills itself with SIGKILL. @k = 0: never.
 * Returns the child's status as t_wait() does: 128 + SIGKILL when it died,
 * 0 when @fn returned before store @k, -1 if it could not run (also on
 * other architectures: the caller SKIPs).
 */
#if defined(__x86_64__)
#include <ucontext.h>

static char *t_store_lo;
static size_t t_store_len;
static volatile long t_store_left;
static bool t_store_stop;	/* stop (SIGSTOP) instead of dying */

static inline void t_store_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	char *a = si->si_addr;

	(void)sig;
	if (a < t_store_lo || a >= t_store_lo + t_store_len)
		_exit(90);	/* a fault nobody planned */
	mprotect(t_store_lo, t_store_len, PROT_READ | PROT_WRITE);
	if (--t_store_left == 0)
		raise(t_store_stop ? SIGSTOP : SIGKILL);
	uc->uc_mcontext.gregs[REG_EFL] |= 0x100;
}

static inline void t_store_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;

	(void)sig;
	(void)si;
	uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
	mprotect(t_store_lo, t_store_len, PROT_READ);
}
#endif

/* Fork a child that runs @fn(@arg) under the store watch (see above). */
static inline pid_t t_store_watch(void *lo, size_t len, long k, bool stop,
				  void (*fn)(void *arg), void *arg)
{
#if defined(__x86_64__)
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		struct sigaction sa = { .sa_sigaction = t_store_segv,
					.sa_flags = SA_SIGINFO | SA_NODEFER };
		struct sigaction st = { .sa_sigaction = t_store_trap,
					.sa_flags = SA_SIGINFO | SA_NODEFER };

		t_store_lo = lo;
		t_store_len = len;
		t_store_left = k ? k : -1;
		t_store_stop = stop;
		if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGTRAP, &st, NULL) ||
		    mprotect(lo, len, PROT_READ))
			_exit(92);
		fn(arg);
		mprotect(lo, len, PROT_READ | PROT_WRITE);
		_exit(0);
	}
	return pid;
#else
	(void)lo; (void)len; (void)k; (void)stop; (void)fn; (void)arg;
	return -1;
#endif
}

static inline int t_die_at_store(void *lo, size_t len, long k, void (*fn)(void *arg), void *arg)
{
	pid_t pid = t_store_watch(lo, len, k, false, fn, arg);

	return pid < 0 ? -1 : t_wait(pid);
}

/*
 * Like t_die_at_store(), but the child stops (SIGSTOP) before store @k and
 * the call returns once it has: the caller acts, then sends SIGCONT and the
 * store goes ahead. Returns the child's pid; -1 if it could not run or
 * ended before store @k (then it was reaped).
 */
static inline pid_t t_stop_at_store(void *lo, size_t len, long k, void (*fn)(void *arg),
				    void *arg)
{
	pid_t pid = t_store_watch(lo, len, k, true, fn, arg);
	int st = 0;

	if (pid < 0)
		return -1;
	if (waitpid(pid, &st, WUNTRACED) != pid) {
		kill(pid, SIGKILL);
		t_wait(pid);
		return -1;
	}
	return WIFSTOPPED(st) ? pid : -1;
}

#endif /* IPCX_TEST_H */
