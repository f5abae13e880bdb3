// SPDX-License-Identifier: MIT
/*
 * bench_util.c - helpers for benchmark rows; see bench_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "harness.h"

pid_t bench_harness_pid;
struct bench_shared_state *bench_state;

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void *bench_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

int bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	return 0;
}

int bench_two_procs(const struct bench_env *env, bench_side_fn side, void *arg)
{
	pid_t parent = getpid();
	int st, ret0, ret = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return bench_fail(NULL, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		if (bench_pin(env->cpu[1]))
			_exit(4);
		if (side(arg, 1)) {
			/* the caller may wait for us forever: end it, the run fails */
			kill(parent, SIGUSR1);
			_exit(1);
		}
		_exit(0);
	}
	if (bench_pin(env->cpu[0])) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return bench_fail(NULL, "cannot pin to CPU %d", env->cpu[0]);
	}
	ret0 = side(arg, 0);
	if (ret0)
		kill(pid, SIGKILL);	/* it may be waiting for us forever */
	if (waitpid(pid, &st, 0) != pid)
		return bench_fail(NULL, "waitpid: %s", strerror(errno));
	if (ret0)
		return -1;
	if (WIFSIGNALED(st))
		ret = bench_fail(NULL, "peer process killed by signal %d", WTERMSIG(st));
	else if (!WIFEXITED(st) || WEXITSTATUS(st))
		ret = bench_fail(NULL, "peer process failed (exit %d)", WEXITSTATUS(st));
	return ret;
}

int bench_futex_wait(uint32_t *w, uint32_t val)
{
	return (int)syscall(SYS_futex, w, FUTEX_WAIT, val, NULL, NULL, 0);
}

int bench_futex_wake(uint32_t *w, int n)
{
	return (int)syscall(SYS_futex, w, FUTEX_WAKE, n, NULL, NULL, 0);
}

const char *bench_name(char *buf, size_t len, const char *tag, int slash)
{
	snprintf(buf, len, "%s%s%d.%s", slash ? "/" : "", BENCH_NAME_PREFIX,
		 (int)(bench_harness_pid ? bench_harness_pid : getpid()), tag);
	return buf;
}

void bench_track_mq(const char *name)
{
	struct bench_shared_state *s = bench_state;
	int i;

	if (!s)
		return;
	for (i = 0; i < BENCH_MAX_MQ; i++) {
		if (!strcmp(s->mq[i], name))
			return;
		if (!s->mq[i][0]) {
			snprintf(s->mq[i], sizeof(s->mq[i]), "%s", name);
			return;
		}
	}
}

uint64_t bench_warmup(const struct bench_env *env)
{
	uint64_t w = env->iters / 20;

	if (w < 100)
		w = env->iters < 100 ? env->iters : 100;
	if (w > 20000)
		w = 20000;
	return w;
}

/* Append to a fixed buffer, truncating. */
static void append(char *dst, size_t cap, const char *src)
{
	size_t l = strnlen(dst, cap - 1), n = strlen(src);

	if (n > cap - 1 - l)
		n = cap - 1 - l;
	memcpy(dst + l, src, n);
	dst[l + n] = 0;
}

static void vnote(struct bench_run *run, const char *prefix, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (run) {
		if (run->note[0])
			append(run->note, sizeof(run->note), "; ");
		append(run->note, sizeof(run->note), prefix);
		append(run->note, sizeof(run->note), msg);
	}
	if (*prefix) {
		fprintf(stderr, "ipcx-bench: FAILED: %s\n", msg);
		if (bench_state && !bench_state->fail[0])
			append(bench_state->fail, sizeof(bench_state->fail), msg);
	}
}

void bench_note(struct bench_run *run, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(run, "", fmt, ap);
	va_end(ap);
}

int bench_fail(struct bench_run *run, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(run, "FAILED: ", fmt, ap);
	va_end(ap);
	return -1;
}

void bench_mq_raise_msg_max(long want)
{
	char buf[32];
	long cur;
	int fd, n;

	fd = open(MSG_MAX_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	cur = strtol(buf, NULL, 10);
	if (cur >= want)
		return;
	fd = open(MSG_MAX_PATH, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;		/* not root: live with the limit */
	n = snprintf(buf, sizeof(buf), "%ld\n", want);
	if (write(fd, buf, (size_t)n) == n && bench_state)
		bench_state->msg_max_changed = 1;
	close(fd);
}
