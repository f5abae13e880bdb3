// SPDX-License-Identifier: MIT
/*
 * ipcx-bench - ipcx beside Boost.Interprocess, POSIX and the hardware
 * floors, measured in one run.
 *
 * Rows register themselves with BENCH_CASE() (bench.h). For every bench the
 * harness runs its rows interleaved (A B C A B C ...) for several
 * repetitions, each run in a fresh process pinned to the first CPU and
 * watched by a timeout; it reports per-row medians over the repetitions of
 * p50, p99, p99.9, max and ops/s, and the ratio to the bench's ipcx row.
 * A calibration (syscall cost, cache-line round trip between the two CPUs,
 * ...) is measured first so runs on different days can be compared.
 *
 * Everything the rows create by name is removed after every run, even when
 * a row fails or is killed: names under the "ipcxbench.<pid>." prefix in
 * /dev/shm, tracked POSIX message queues, and a private IPCX_SHM_DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_util.h"
#include "harness.h"

#define MAX_REPS	32

/* ---- the benches: contract order and scale ------------------------------- */

struct bench_def {
	const char *name;
	uint64_t full, quick;	/* env.iters */
	const char *what;
	int rep_mult;		/* 0/1; N: N times the reps, each of these iters */
};

static const struct bench_def defs[] = {
	/*
	 * The host's noise comes in phases (from tens of ms to seconds) that
	 * make a whole repetition fast or slow: a 10 ns lock costs twice as
	 * much, a sleeping round trip 21 or 75 us. Benches whose rows share a
	 * bar run rep_mult times the repetitions (an odd count), most of them
	 * that much shorter, and report the interquartile mean (see run_bench).
	 */
	{ "mutex_uncontended", 600000, 300000, "lock+unlock, one process", 6 },
	{ "mutex_handoff_2proc", 4000000, 1000000, "2 pinned processes contending" },
	{ "cond_pingpong", 6667, 1000, "mutex+condvar round trip", 3 },
	{ "sem_pingpong", 6667, 1000, "semaphore round trip", 3 },
	/* the queue benches keep 1M messages per run (their issue's spec) */
	{ "mq_throughput_64", 1000000, 50000, "64 B, 1 -> 1 process, capacity 1024", 3 },
	{ "mq_throughput_64_prio", 1000000, 20000, "same, random priorities 0..31", 3 },
	{ "mq_throughput_1k", 1000000, 20000, "1 KiB, 1 -> 1 process, capacity 1024", 3 },
	{ "mq_rtt_64", 20000, 3000, "64 B round trip through two queues" },
	{ "alloc_random", 2000000, 300000, "alloc-or-free 16..512 B, ~100k live" },
	{ "named_construct", 100000, 100000, "construct 100k named objects" },
	{ "named_find", 100000, 100000, "find among 100k named objects" },
	{ "segment_create", 2000, 300, "create+size+map+unmap+unlink 1 MiB" },
	{ "segment_touch_64m", 4, 1, "map 64 MiB, write every byte" },
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

/* ---- options -------------------------------------------------------------- */

static struct {
	bool quick, list;
	const char *json, *plot, *only;
	int reps;
	double scale;
	int timeout_s;
	int cpu[2];
	bool unpinned;
} opt = { .cpu = { -1, -1 } };

/* ---- results ---------------------------------------------------------------- */

struct stats {
	double p50, p99, p999, max, ops;
};

struct row {
	const struct bench_case *c;
	struct stats rep[MAX_REPS];
	int nrep;
	size_t nsamples;	/* per run */
	bool failed;
	char note[96];
	struct stats med;
	double *pool;		/* every sample of every rep, for plots */
	size_t npool, pool_cap;
};

struct bench {
	const char *name;
	const struct bench_def *def;
	uint64_t iters;
	struct row *rows;
	int nrows;
	bool selected;
};

static struct bench *benches;
static int nbenches;

/* What a run process hands back. */
struct run_result {
	int rc;
	int finished;
	double ops_per_s;
	size_t n;
	uint32_t per_sample;
	char note[96];
};

static struct run_result *rres;
static uint64_t *rsamples;
static size_t sample_cap;	/* >= every selected bench's iters + 10% + 100k */
static pid_t runner = -1;
static volatile sig_atomic_t stop;
static char shm_dir_priv[256];
static char msg_max_orig[32];
static char nr_huge_orig[32];	/* vm.nr_hugepages at start ("" if unreadable) */
static int failures;

#define NR_HUGE_PATH "/proc/sys/vm/nr_hugepages"

/* ---- cleanup ------------------------------------------------------------------ */

static void sweep_dir(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		if (prefix && strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static void restore_msg_max(void)
{
	int fd;

	if (!bench_state || !bench_state->msg_max_changed || !msg_max_orig[0])
		return;
	fd = open(MSG_MAX_PATH, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, msg_max_orig, strlen(msg_max_orig)) > 0)
			bench_state->msg_max_changed = 0;
		close(fd);
	}
}

/*
 * Rows may grow the hugepage pool for their run and put it back; a row
 * killed by its timeout cannot, so the harness puts back what it saw at
 * start whenever the value differs after a run.
 */
static void restore_nr_huge(void)
{
	char cur[32];
	int fd, n;

	if (!nr_huge_orig[0])
		return;
	fd = open(NR_HUGE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	n = (int)read(fd, cur, sizeof(cur) - 1);
	cur[n > 0 ? n : 0] = 0;
	if (strcmp(cur, nr_huge_orig) && lseek(fd, 0, SEEK_SET) == 0 &&
	    write(fd, nr_huge_orig, strlen(nr_huge_orig)) < 0)
		fprintf(stderr, "ipcx-bench: could not restore vm.nr_hugepages\n");
	close(fd);
}

/* After every run: remove whatever the rows left behind. */
static void cleanup_run(void)
{
	char prefix[64];
	int i;

	snprintf(prefix, sizeof(prefix), "%s%d.", BENCH_NAME_PREFIX, (int)bench_harness_pid);
	sweep_dir("/dev/shm", prefix);
	if (shm_dir_priv[0])
		sweep_dir(shm_dir_priv, NULL);
	for (i = 0; bench_state && i < BENCH_MAX_MQ && bench_state->mq[i][0]; i++) {
		mq_unlink(bench_state->mq[i]);
		bench_state->mq[i][0] = 0;
	}
	restore_msg_max();
	restore_nr_huge();
}

static void cleanup_all(void)
{
	cleanup_run();
	if (shm_dir_priv[0]) {
		rmdir(shm_dir_priv);
		shm_dir_priv[0] = 0;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);

	return v[k ? k - 1 : 0];
}

/* ---- running one row once ------------------------------------------------------- */

/*
 * Every process of the finished run has been sent SIGKILL (its group); we
 * are their subreaper: wait for them all, so none outlives the run.
 */
static void reap_strays(void)
{
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

/* Wait for pid up to timeout_ms; 0 = exited (status in *st), -ETIMEDOUT, -EINTR. */
static int wait_timeout(pid_t pid, int *st, int timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		uint64_t now;

		if (r == pid)
			break;
		if (stop) {
			if (pfd >= 0)
				close(pfd);
			return -EINTR;
		}
		now = bench_now_ns();
		if (now >= end) {
			if (pfd >= 0)
				close(pfd);
			return -ETIMEDOUT;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			uint64_t left = (end - now) / 1000000ull + 1;

			poll(&p, 1, left > 1000 ? 1000 : (int)left);
		} else {
			usleep(1000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return 0;
}

/*
 * Run fn once in a fresh process (its own process group, pinned to cpu[0]);
 * fill *s. Returns 0, or -1 when the row failed (reason in note).
 */
static int run_once(const struct bench_case *c, const struct bench_env *env, struct row *row,
		    struct stats *s, bool keep)
{
	int st = 0, ret;
	double *v;
	size_t i, n;
	double per;

	memset(rres, 0, sizeof(*rres));
	bench_state->fail[0] = 0;
	fflush(NULL);
	runner = fork();
	if (runner < 0) {
		snprintf(row->note, sizeof(row->note), "fork: %s", strerror(errno));
		return -1;
	}
	if (runner == 0) {
		struct bench_run run = { .samples = rsamples, .cap = sample_cap };
		int rc;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		bench_pin(env->cpu[0]);
		rc = c->fn(env, &run);
		rres->rc = rc;
		rres->ops_per_s = run.ops_per_s;
		rres->n = run.n > run.cap ? run.cap : run.n;
		rres->per_sample = run.per_sample;
		memcpy(rres->note, run.note, sizeof(rres->note));
		rres->note[sizeof(rres->note) - 1] = 0;
		__atomic_store_n(&rres->finished, 1, __ATOMIC_RELEASE);
		fflush(NULL);
		_exit(rc ? 1 : 0);
	}
	setpgid(runner, runner);
	ret = wait_timeout(runner, &st, opt.timeout_s * 1000);
	kill(-runner, SIGKILL);		/* stragglers of the row, if any */
	if (ret) {
		waitpid(runner, &st, 0);
		runner = -1;
		reap_strays();
		cleanup_run();
		snprintf(row->note, sizeof(row->note), "%s",
			 ret == -ETIMEDOUT ? "FAILED: timed out" : "interrupted");
		if (ret == -ETIMEDOUT)
			fprintf(stderr, "ipcx-bench: FAILED: %s/%s timed out after %d s\n",
				c->bench, c->impl, opt.timeout_s);
		return -1;
	}
	runner = -1;
	reap_strays();
	cleanup_run();
	if (rres->note[0])
		memcpy(row->note, rres->note, sizeof(row->note));
	if (bench_state->fail[0] && (WIFSIGNALED(st) || rres->rc)) {
		snprintf(row->note, sizeof(row->note), "FAILED: %.80s", bench_state->fail);
		fprintf(stderr, "ipcx-bench: FAILED: %s/%s\n", c->bench, c->impl);
		return -1;
	}
	if (WIFSIGNALED(st) || !__atomic_load_n(&rres->finished, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "ipcx-bench: FAILED: %s/%s died (%s)\n", c->bench, c->impl,
			WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exit before result");
		snprintf(row->note, sizeof(row->note), "FAILED: crashed (%s)",
			 WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no result");
		return -1;
	}
	if (rres->rc || !WIFEXITED(st) || WEXITSTATUS(st)) {
		if (!row->note[0])
			snprintf(row->note, sizeof(row->note), "FAILED (%d)", rres->rc);
		fprintf(stderr, "ipcx-bench: FAILED: %s/%s: %s\n", c->bench, c->impl, row->note);
		return -1;
	}

	n = rres->n;
	per = rres->per_sample > 1 ? (double)rres->per_sample : 1.0;
	memset(s, 0, sizeof(*s));
	s->ops = rres->ops_per_s;
	row->nsamples = n;
	if (!n) {
		if (s->ops <= 0) {
			snprintf(row->note, sizeof(row->note), "FAILED: no samples, no ops/s");
			fprintf(stderr, "ipcx-bench: FAILED: %s/%s reported nothing\n", c->bench,
				c->impl);
			return -1;
		}
		s->p50 = s->p99 = s->p999 = s->max = 1e9 / s->ops;
		return 0;
	}
	v = malloc(n * sizeof(*v));
	if (!v)
		return -1;
	for (i = 0; i < n; i++)
		v[i] = (double)rsamples[i] / per;
	if (keep) {
		if (row->npool + n > row->pool_cap) {
			size_t cap = (row->npool + n) * 2;
			double *p = realloc(row->pool, cap * sizeof(*p));

			if (p) {
				row->pool = p;
				row->pool_cap = cap;
			}
		}
		if (row->npool + n <= row->pool_cap) {
			memcpy(row->pool + row->npool, v, n * sizeof(*v));
			row->npool += n;
		}
	}
	qsort(v, n, sizeof(*v), cmp_double);
	s->p50 = pct(v, n, 0.50);
	s->p99 = pct(v, n, 0.99);
	s->p999 = pct(v, n, 0.999);
	s->max = v[n - 1];
	free(v);
	return 0;
}

/* ---- formatting --------------------------------------------------------------- */

static const char *fmt_ns(char *b, size_t len, double ns)
{
	if (ns <= 0)
		snprintf(b, len, "-");
	else if (ns < 100)
		snprintf(b, len, "%.1fns", ns);
	else if (ns < 10000)
		snprintf(b, len, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(b, len, "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(b, len, "%.1fms", ns / 1e6);
	else
		snprintf(b, len, "%.2fs", ns / 1e9);
	return b;
}

static const char *fmt_ops(char *b, size_t len, double ops)
{
	if (ops <= 0)
		snprintf(b, len, "-");
	else if (ops >= 1e6)
		snprintf(b, len, "%.2fM/s", ops / 1e6);
	else
		snprintf(b, len, "%.1fk/s", ops / 1e3);
	return b;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	if (!n)
		return 0;
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Mean of the middle half of @v (sorted here): the interquartile mean. */
static double iq_mean(double *v, int n)
{
	double sum = 0;
	int i, lo = n / 4, hi = n - n / 4;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	if (!n)
		return 0;
	for (i = lo; i < hi; i++)
		sum += v[i];
	return sum / (hi - lo);
}

/*
 * Per row, the median over the repetitions of each statistic; for benches
 * with many short repetitions (rep_mult), the interquartile mean instead:
 * their repetitions fall into two modes (the host's fast and slow phases),
 * and a median then follows whichever mode holds one repetition more, while
 * the mean of the middle half moves only by the share of slow repetitions.
 */
static void row_medians(struct row *r, bool iqm)
{
	double v[MAX_REPS];
	int i;

#define MED(F) do {						\
		for (i = 0; i < r->nrep; i++)			\
			v[i] = r->rep[i].F;			\
		r->med.F = iqm ? iq_mean(v, r->nrep) : median(v, r->nrep);	\
	} while (0)
	MED(p50);
	MED(p99);
	MED(p999);
	MED(max);
	MED(ops);
#undef MED
}

static const struct row *ipcx_row(const struct bench *b)
{
	int i;

	for (i = 0; i < b->nrows; i++)
		if (!strcmp(b->rows[i].c->impl, "ipcx") && !b->rows[i].failed &&
		    b->rows[i].nrep)
			return &b->rows[i];
	return NULL;
}

/* ipcx / this row: p50 for latency benches, ops/s for throughput ones. */
static double ratio(const struct bench *b, const struct row *r)
{
	const struct row *x = ipcx_row(b);

	if (!x || r->failed || !r->nrep)
		return 0;
	if (x->med.ops > 0 && r->med.ops > 0)
		return x->med.ops / r->med.ops;
	if (x->med.p50 > 0 && r->med.p50 > 0)
		return x->med.p50 / r->med.p50;
	return 0;
}

static void print_header(void)
{
	printf("%-22s %-14s %9s %9s %9s %9s %10s %7s  %s\n", "bench", "impl", "p50", "p99",
	       "p99.9", "max", "ops/s", "ipcx/x", "note");
}

static void print_row(const struct bench *b, const struct row *r)
{
	char a[32], c[32], d[32], e[32], f[32], g[16];
	double q = ratio(b, r);

	if (q > 0)
		snprintf(g, sizeof(g), "%.2f", q);
	else
		snprintf(g, sizeof(g), "-");
	if (r->failed) {
		printf("%-22s %-14s %9s %9s %9s %9s %10s %7s  %s\n", b->name, r->c->impl,
		       "FAILED", "", "", "", "", "-", r->note);
		return;
	}
	printf("%-22s %-14s %9s %9s %9s %9s %10s %7s  %s\n", b->name, r->c->impl,
	       fmt_ns(a, sizeof(a), r->med.p50), fmt_ns(c, sizeof(c), r->med.p99),
	       fmt_ns(d, sizeof(d), r->med.p999), fmt_ns(e, sizeof(e), r->med.max),
	       fmt_ops(f, sizeof(f), r->med.ops), g, r->note);
}

/* ---- JSON ------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_row(FILE *f, bool *first, const char *bench, const struct row *r,
		     const char *when)
{
	fprintf(f, "%s\n  {\"bench\": ", *first ? "" : ",");
	*first = false;
	json_str(f, bench);
	fprintf(f, ", \"impl\": ");
	json_str(f, r->c->impl);
	fprintf(f, ", \"unit\": ");
	json_str(f, r->c->unit);
	if (r->failed) {
		fprintf(f, ", \"failed\": true");
	} else {
		fprintf(f, ", \"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, "
			"\"ops_per_s\": %.1f", r->med.p50, r->med.p99, r->med.p999, r->med.max,
			r->med.ops);
	}
	fprintf(f, ", \"reps\": %d, \"samples_per_rep\": %zu, \"note\": ", r->nrep, r->nsamples);
	json_str(f, r->note);
	if (when)
		fprintf(f, ", \"when\": \"%s\", \"cpus\": [%d, %d], \"mode\": \"%s\"", when,
			opt.cpu[0], opt.cpu[1], opt.quick ? "quick" : "full");
	fprintf(f, "}");
}

static int write_json(const char *path, struct row *cal, int ncal, const char *when)
{
	FILE *f = fopen(path, "w");
	bool first = true;
	int i, j;

	if (!f) {
		fprintf(stderr, "ipcx-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "[");
	for (i = 0; i < ncal; i++)
		json_row(f, &first, "calibration", &cal[i], when);
	for (i = 0; i < nbenches; i++)
		for (j = 0; benches[i].selected && j < benches[i].nrows; j++)
			if (benches[i].rows[j].nrep || benches[i].rows[j].failed)
				json_row(f, &first, benches[i].name, &benches[i].rows[j], NULL);
	fprintf(f, "\n]\n");
	if (fclose(f)) {
		fprintf(stderr, "ipcx-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- plots: latency by percentile, one curve per impl -------------------------- */

static bool is_pingpong(const struct bench *b)
{
	int i;

	for (i = 0; i < b->nrows; i++)
		if (strstr(b->rows[i].c->unit, "rtt"))
			return true;
	return false;
}

static int plot_bench(const struct bench *b, const char *dir)
{
	char path[512], png[512];
	FILE *gp, *f;
	int i, st, curves = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s.gp", dir, b->name);
	snprintf(png, sizeof(png), "%s/%s.png", dir, b->name);
	gp = fopen(path, "w");
	if (!gp)
		return -1;
	fprintf(gp, "set terminal pngcairo size 960,600 noenhanced\n"
		"set output '%s'\n"
		"set title '%s: round trip by percentile (all repetitions)'\n"
		"set logscale x 10\nset logscale y 10\nset grid\nset key top left\n"
		"set xlabel 'percentile'\nset ylabel 'round trip (us)'\n"
		"set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
		"'99.99%%%%' 10000, '99.999%%%%' 100000)\n", png, b->name);
	for (i = 0; i < b->nrows; i++) {
		const struct row *r = &b->rows[i];
		double *v;
		double x;

		if (r->failed || !r->npool)
			continue;
		v = malloc(r->npool * sizeof(*v));
		if (!v)
			continue;
		memcpy(v, r->pool, r->npool * sizeof(*v));
		qsort(v, r->npool, sizeof(*v), cmp_double);
		snprintf(path, sizeof(path), "%s/%s.%s.dat", dir, b->name, r->c->impl);
		f = fopen(path, "w");
		if (!f) {
			free(v);
			continue;
		}
		fprintf(f, "# 1/(1-q) latency_us (%zu samples)\n", r->npool);
		for (x = 1; x < (double)r->npool; x *= 1.05) {
			double q = 1 - 1 / x;

			fprintf(f, "%.6g %.6g\n", x, pct(v, r->npool, q) / 1e3);
		}
		fprintf(f, "%.6g %.6g\n", (double)r->npool, v[r->npool - 1] / 1e3);
		fclose(f);
		free(v);
		fprintf(gp, "%s '%s' using 1:2 with lines lw 2 title '%s'", curves ? ", \\\n  " :
			"plot ", path, r->c->impl);
		curves++;
	}
	fprintf(gp, "\n");
	fclose(gp);
	if (!curves)
		return 0;
	snprintf(path, sizeof(path), "%s/%s.gp", dir, b->name);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "ipcx-bench: gnuplot failed for %s%s\n", b->name,
			pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (not installed?)" : "");
		return -1;
	}
	printf("plot: %s\n", png);
	return 0;
}

/* ---- assembling the benches ---------------------------------------------------- */

static int impl_rank(const char *impl)
{
	static const char *const order[] = { "ipcx", "boost", "pthread", "pthread_plain",
					     "posix", "pipe", "eventfd", "glibc_malloc",
					     "floor_futex", "floor_spin" };
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (!strcmp(impl, order[i]))
			return (int)i * 2;
	if (!strncmp(impl, "ipcx_", 5))
		return 1;
	if (!strncmp(impl, "boost_", 6))
		return 3;
	return 100;
}

static int cmp_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int d = impl_rank(x->c->impl) - impl_rank(y->c->impl);

	return d ? d : strcmp(x->c->impl, y->c->impl);
}

static int bench_index(const char *name)
{
	int i;

	for (i = 0; i < nbenches; i++)
		if (!strcmp(benches[i].name, name))
			return i;
	return -1;
}

static int assemble(void)
{
	const struct bench_case *c;
	size_t ncases = (size_t)(__stop_bench_cases - __start_bench_cases);
	size_t i;
	int k;

	benches = calloc(NDEFS + ncases, sizeof(*benches));
	if (!benches)
		return -1;
	for (i = 0; i < NDEFS; i++) {
		benches[nbenches].name = defs[i].name;
		benches[nbenches].def = &defs[i];
		nbenches++;
	}
	for (c = __start_bench_cases; c < __stop_bench_cases; c++) {
		struct bench *b;
		struct row *rows;

		k = bench_index(c->bench);
		if (k < 0) {
			k = nbenches++;
			benches[k].name = c->bench;
		}
		b = &benches[k];
		for (i = 0; i < (size_t)b->nrows; i++) {
			if (!strcmp(b->rows[i].c->impl, c->impl)) {
				fprintf(stderr, "ipcx-bench: two rows for %s/%s\n", c->bench,
					c->impl);
				return -1;
			}
		}
		rows = realloc(b->rows, (size_t)(b->nrows + 1) * sizeof(*rows));
		if (!rows)
			return -1;
		b->rows = rows;
		memset(&rows[b->nrows], 0, sizeof(*rows));
		rows[b->nrows++].c = c;
	}
	for (k = 0; k < nbenches; k++) {
		struct bench *b = &benches[k];
		double it;

		qsort(b->rows, (size_t)b->nrows, sizeof(*b->rows), cmp_rows);
		it = b->def ? (double)(opt.quick ? b->def->quick : b->def->full)
			    : (opt.quick ? 10000.0 : 100000.0);
		it *= opt.scale;
		b->iters = it < 1 ? 1 : (uint64_t)it;
	}
	return 0;
}

static int select_benches(void)
{
	char *list, *tok, *save = NULL;
	int k, bad = 0;

	for (k = 0; k < nbenches; k++)
		benches[k].selected = !opt.only;
	if (!opt.only)
		return 0;
	list = strdup(opt.only);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		k = bench_index(tok);
		if (k < 0) {
			fprintf(stderr, "ipcx-bench: no bench named '%s' (see --list)\n", tok);
			bad = 1;
		} else {
			benches[k].selected = true;
		}
	}
	free(list);
	return bad ? -1 : 0;
}

static void list_benches(void)
{
	int k, i;

	for (k = 0; k < nbenches; k++) {
		printf("%-22s", benches[k].name);
		for (i = 0; i < benches[k].nrows; i++)
			printf(" %s", benches[k].rows[i].c->impl);
		if (!benches[k].nrows)
			printf(" (no rows)");
		printf("\n");
	}
}

/* ---- setup ---------------------------------------------------------------------- */

static void pick_cpus(void)
{
	cpu_set_t set;
	int i, n = 0;

	if (opt.unpinned) {
		opt.cpu[0] = opt.cpu[1] = -1;
		return;
	}
	if (opt.cpu[0] >= 0)
		return;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			opt.cpu[n++] = i;
	if (n == 1)
		opt.cpu[1] = opt.cpu[0];
}

static int setup(void)
{
	const char *base = getenv("IPCX_SHM_DIR");
	struct sigaction sa;
	int fd, n, k;

	bench_harness_pid = getpid();
	bench_state = bench_shared(sizeof(*bench_state));
	rres = bench_shared(sizeof(*rres));
	for (k = 0; k < nbenches; k++) {
		size_t cap = (size_t)(benches[k].iters + benches[k].iters / 10 + 100000);

		if (benches[k].selected && cap > sample_cap)
			sample_cap = cap;
	}
	if (sample_cap < (1u << 20))
		sample_cap = 1u << 20;
	/* untouched pages of the shared buffer cost nothing */
	rsamples = bench_shared(sample_cap * sizeof(*rsamples));
	if (!bench_state || !rres || !rsamples) {
		fprintf(stderr, "ipcx-bench: cannot map the result buffers\n");
		return -1;
	}
	/* Our rows' children are reparented to us if a row dies: reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	fd = open(MSG_MAX_PATH, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = (int)read(fd, msg_max_orig, sizeof(msg_max_orig) - 1);
		msg_max_orig[n > 0 ? n : 0] = 0;
		close(fd);
	}
	fd = open(NR_HUGE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = (int)read(fd, nr_huge_orig, sizeof(nr_huge_orig) - 1);
		nr_huge_orig[n > 0 ? n : 0] = 0;
		close(fd);
	}

	/* ipcx rows create their named objects in a private directory. */
	snprintf(shm_dir_priv, sizeof(shm_dir_priv), "%s/ipcx-bench.%d",
		 base && *base ? base : "/dev/shm", (int)bench_harness_pid);
	if (mkdir(shm_dir_priv, 0700)) {
		fprintf(stderr, "ipcx-bench: mkdir %s: %s\n", shm_dir_priv, strerror(errno));
		shm_dir_priv[0] = 0;
		return -1;
	}
	setenv("IPCX_SHM_DIR", shm_dir_priv, 1);
	pick_cpus();
	return 0;
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ipcx-bench [options]\n"
		"  --quick          the whole set in under a minute (fewer reps and iterations)\n"
		"  --only LIST      run only these benches (comma-separated names)\n"
		"  --json FILE      write a JSON array: one record per (bench, impl) + calibration\n"
		"  --plot DIR       write latency-by-percentile PNGs of the ping-pong benches\n"
		"  --list           list benches and their rows\n"
		"  --reps N         repetitions per row (default 5, quick 3)\n"
		"  --scale F        multiply every bench's iterations by F\n"
		"  --cpus A,B       CPUs of the two sides (default: the first two allowed)\n"
		"  --unpinned       do not pin (let the scheduler place the processes)\n"
		"  --timeout S      seconds before a run is killed and its row fails\n");
}

static int parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "json", required_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' },
		{ "list", no_argument, NULL, 'l' },
		{ "reps", required_argument, NULL, 'r' },
		{ "scale", required_argument, NULL, 's' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "unpinned", no_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int ch;

	opt.scale = 1;
	while ((ch = getopt_long(argc, argv, "qo:j:p:lr:s:c:ut:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'q': opt.quick = true; break;
		case 'o': opt.only = optarg; break;
		case 'j': opt.json = optarg; break;
		case 'p': opt.plot = optarg; break;
		case 'l': opt.list = true; break;
		case 'r': opt.reps = atoi(optarg); break;
		case 's': opt.scale = atof(optarg); break;
		case 'u': opt.unpinned = true; break;
		case 't': opt.timeout_s = atoi(optarg); break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &opt.cpu[0], &opt.cpu[1]) != 2 ||
			    opt.cpu[0] < 0 || opt.cpu[1] < 0) {
				fprintf(stderr, "ipcx-bench: --cpus wants A,B\n");
				return -1;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ipcx-bench: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!opt.reps)
		opt.reps = opt.quick ? 3 : 5;
	if (opt.reps < 1 || opt.reps > MAX_REPS || !(opt.scale > 0)) {
		fprintf(stderr, "ipcx-bench: bad --reps or --scale\n");
		return -1;
	}
	if (!opt.timeout_s)
		opt.timeout_s = opt.quick ? 20 : 120;
	return 0;
}

static int run_calibration(struct row *cal, const struct bench_env *base, char *when,
			   size_t wlen)
{
	struct bench_env env = *base;
	time_t now = time(NULL);
	struct tm tm;
	char a[32], b[32], c[32];
	int i;

	gmtime_r(&now, &tm);
	strftime(when, wlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("ipcx-bench %s: cpus %d,%d, %d reps%s; calibration:\n", when, opt.cpu[0],
	       opt.cpu[1], opt.reps, opt.quick ? " (quick)" : "");
	for (i = 0; i < bench_ncalib && !stop; i++) {
		cal[i].c = &bench_calib[i];
		env.iters = 0;
		if (run_once(&bench_calib[i], &env, &cal[i], &cal[i].rep[0], false)) {
			cal[i].failed = true;
			failures++;
			continue;
		}
		cal[i].nrep = 1;
		cal[i].med = cal[i].rep[0];
		printf("  %-14s p50 %9s  p99 %9s  max %9s  %s\n", bench_calib[i].impl,
		       fmt_ns(a, sizeof(a), cal[i].med.p50), fmt_ns(b, sizeof(b), cal[i].med.p99),
		       fmt_ns(c, sizeof(c), cal[i].med.max), cal[i].note);
	}
	printf("\n");
	return 0;
}

static void run_bench(struct bench *b, const struct bench_env *base)
{
	struct bench_env env = *base;
	bool keep = opt.plot && is_pingpong(b);
	int rep, i, nreps;

	env.iters = b->iters;
	if (!opt.quick) {	/* warm-up: one short run of each row, discarded */
		struct bench_env w = env;

		w.iters = env.iters / 10 ? env.iters / 10 : 1;
		for (i = 0; i < b->nrows && !stop; i++) {
			struct stats s;

			if (run_once(b->rows[i].c, &w, &b->rows[i], &s, false))
				b->rows[i].failed = true;
		}
	}
	nreps = opt.reps;
	if (b->def && b->def->rep_mult > 1) {
		/* odd: the median is one repetition, not a mean of two modes */
		nreps = opt.reps * b->def->rep_mult;
		nreps = nreps >= MAX_REPS ? MAX_REPS - 1 : nreps | 1;
	}
	for (rep = 0; rep < nreps && !stop; rep++) {
		for (i = 0; i < b->nrows && !stop; i++) {
			struct row *r = &b->rows[i];

			if (r->failed)
				continue;
			if (run_once(r->c, &env, r, &r->rep[r->nrep], keep))
				r->failed = true;
			else
				r->nrep++;
		}
	}
	for (i = 0; i < b->nrows; i++) {
		if (b->rows[i].failed && !stop)
			failures++;
		row_medians(&b->rows[i], b->def && b->def->rep_mult > 1);
	}
	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].nrep || b->rows[i].failed)
			print_row(b, &b->rows[i]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct bench_env env = { .seed = 0x1bc0ffee5eedull };
	struct row cal[8];
	char when[64] = "";
	uint64_t t0 = bench_now_ns();
	int k, ret = 0;

	if (parse(argc, argv) || assemble() || select_benches())
		return 2;
	if (opt.list) {
		list_benches();
		return 0;
	}
	if (opt.plot && mkdir(opt.plot, 0755) && errno != EEXIST) {
		fprintf(stderr, "ipcx-bench: mkdir %s: %s\n", opt.plot, strerror(errno));
		return 2;
	}
	if (setup()) {
		cleanup_all();
		return 2;
	}
	env.quick = opt.quick;
	env.cpu[0] = opt.cpu[0];
	env.cpu[1] = opt.cpu[1];

	memset(cal, 0, sizeof(cal));
	run_calibration(cal, &env, when, sizeof(when));
	printf("ipcx/x: ipcx p50 / this p50 (below 1: ipcx faster); "
	       "for ops/s rows ipcx ops/s / this ops/s (above 1: ipcx faster)\n");
	print_header();
	for (k = 0; k < nbenches && !stop; k++) {
		if (!benches[k].selected || !benches[k].nrows)
			continue;
		run_bench(&benches[k], &env);
		printf("\n");
	}
	cleanup_all();
	if (stop) {
		fprintf(stderr, "ipcx-bench: interrupted\n");
		return 130;
	}
	if (opt.json && write_json(opt.json, cal, bench_ncalib, when))
		ret = 1;
	if (opt.plot)
		for (k = 0; k < nbenches; k++)
			if (benches[k].selected && is_pingpong(&benches[k]) &&
			    plot_bench(&benches[k], opt.plot))
				ret = 1;
	printf("ipcx-bench: %.1f s, %d failed row%s\n", (double)(bench_now_ns() - t0) / 1e9,
	       failures, failures == 1 ? "" : "s");
	return failures ? 1 : ret;
}
