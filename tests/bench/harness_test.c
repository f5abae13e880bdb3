// SPDX-License-Identifier: MIT
/*
 * harness_test - ipcx-bench keeps its contract: every bench name, its peer
 * and floor rows, a JSON array with the agreed fields, nothing left in
 * /dev/shm, and a row that overruns its time fails loudly (non-zero exit).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

static pid_t last_pid;	/* the harness process of the last bench() */

/*
 * Run the harness (the shell execs it, so last_pid is the harness itself);
 * output in *out (malloc'd); exit code.
 */
static int bench(const char *args, char **out)
{
	char cmd[1024];
	size_t len = 0, cap = 1 << 16;
	int fds[2], st;
	ssize_t n;

	snprintf(cmd, sizeof(cmd), "exec '%s' %s 2>&1", IPCX_BENCH_BIN, args);
	*out = malloc(cap);
	if (!*out || pipe(fds))
		return -1;
	last_pid = fork();
	if (last_pid < 0)
		return -1;
	if (last_pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len + 1 < cap && (n = read(fds[0], *out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	(*out)[len] = 0;
	close(fds[0]);
	if (waitpid(last_pid, &st, 0) != last_pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Names the last harness run left in /dev/shm (other runs' are not ours). */
static int leftovers(void)
{
	char a[32], b[32];
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	snprintf(a, sizeof(a), "ipcxbench.%d.", (int)last_pid);
	snprintf(b, sizeof(b), "ipcx-bench.%d", (int)last_pid);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, a, strlen(a)) || !strcmp(e->d_name, b);
	closedir(d);
	return n;
}

static const char *const rows[][2] = {
	{ "mutex_uncontended", "boost pthread pthread_plain floor_spin" },
	{ "mutex_handoff_2proc", "boost pthread pthread_plain floor_spin" },
	{ "cond_pingpong", "boost pthread floor_futex" },
	{ "sem_pingpong", "boost posix floor_futex floor_spin" },
	{ "mq_throughput_64", "boost posix pipe floor_spin" },
	{ "mq_throughput_64_prio", "boost posix" },
	{ "mq_throughput_1k", "boost posix pipe floor_spin" },
	{ "mq_rtt_64", "boost posix pipe eventfd floor_futex floor_spin" },
	{ "alloc_random", "boost glibc_malloc" },
	{ "named_construct", "boost" },
	{ "named_find", "boost" },
	{ "segment_create", "boost posix" },
	{ "segment_touch_64m", "posix" },
};

TEST(list_has_every_bench_and_peer_row)
{
	char *out, *line, want[64];
	size_t i;

	ASSERT_EQ(0, bench("--list", &out));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char impls[128], *tok, *save = NULL;

		snprintf(want, sizeof(want), "%s ", rows[i][0]);
		line = strstr(out, want);
		ASSERT_NE(NULL, line) TH_LOG("no bench %s", rows[i][0]);
		snprintf(impls, sizeof(impls), "%s", rows[i][1]);
		for (tok = strtok_r(impls, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *eol = strchr(line, '\n'), *hit;

			snprintf(want, sizeof(want), " %s", tok);
			hit = strstr(line, want);
			EXPECT_TRUE(hit && hit < eol && (hit[strlen(want)] == ' ' ||
							 hit[strlen(want)] == '\n'))
				TH_LOG("%s has no %s row", rows[i][0], tok);
		}
	}
	free(out);
}

TEST(json_records_and_cleanup)
{
	char path[] = "/tmp/ipcx-bench-test-XXXXXX", args[256], *out, *js;
	const char *const fields[] = { "\"bench\": ", "\"impl\": ", "\"unit\": ", "\"p50\": ",
				       "\"p99\": ", "\"p999\": ", "\"max\": ",
				       "\"ops_per_s\": " };
	int fd;
	FILE *f;
	long len;
	size_t i;

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	close(fd);
	snprintf(args, sizeof(args), "--quick --reps 1 --scale 0.02 --only "
		 "mutex_handoff_2proc,sem_pingpong,mq_throughput_64,segment_create --json %s",
		 path);
	EXPECT_EQ(0, bench(args, &out)) TH_LOG("%s", out);
	free(out);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	js = calloc(1, (size_t)len + 1);
	ASSERT_EQ(1, fread(js, (size_t)len, 1, f));
	fclose(f);
	unlink(path);
	EXPECT_EQ('[', js[0]);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *fld = fields[i];

		EXPECT_NE(NULL, strstr(js, fld)) TH_LOG("no %s", fld);
	}
	EXPECT_NE(NULL, strstr(js, "\"bench\": \"calibration\", \"impl\": \"syscall\""));
	EXPECT_NE(NULL, strstr(js, "\"impl\": \"cacheline_rtt\""));
	EXPECT_NE(NULL, strstr(js, "\"bench\": \"mq_throughput_64\", \"impl\": \"floor_spin\""));
	EXPECT_NE(NULL, strstr(js, "\"bench\": \"sem_pingpong\", \"impl\": \"boost\""));
	EXPECT_EQ(NULL, strstr(js, "\"failed\": true"));
	EXPECT_EQ(0, leftovers());
	free(js);
}

static long nr_hugepages(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * The watchdog: a run over its time is killed, its row fails, the exit is
 * 1, and what the killed row changed (files, the hugepage pool it may have
 * grown as root) is put back by the harness.
 */
TEST(overrun_fails_loudly_and_cleans_up)
{
	long pool = nr_hugepages();
	char *out;

	EXPECT_EQ(1, bench("--reps 1 --scale 100 --timeout 1 --only segment_touch_64m", &out));
	EXPECT_NE(NULL, strstr(out, "FAILED")) TH_LOG("%s", out);
	free(out);
	EXPECT_EQ(0, leftovers());
	EXPECT_EQ(pool, nr_hugepages());
}

TEST_HARNESS_MAIN
