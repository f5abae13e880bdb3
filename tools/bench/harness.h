/* SPDX-License-Identifier: MIT */
/*
 * harness.h - state the harness (main.c) shares with bench_util.c.
 */
#ifndef IPCX_BENCH_HARNESS_H
#define IPCX_BENCH_HARNESS_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_NAME_PREFIX	"ipcxbench."
#define BENCH_MAX_MQ		16
#define MSG_MAX_PATH		"/proc/sys/fs/mqueue/msg_max"

/* Shared between the harness and the processes running rows. */
struct bench_shared_state {
	char mq[BENCH_MAX_MQ][64];	/* POSIX mqueue names to unlink after a run */
	int msg_max_changed;		/* a row raised msg_max: restore it */
	char fail[96];			/* the first failure of the run, any process */
};

/* Calibration rows (calib.c): run first, reported as bench "calibration". */
struct bench_case;
extern const struct bench_case bench_calib[];
extern const int bench_ncalib;

extern pid_t bench_harness_pid;
extern struct bench_shared_state *bench_state;

#ifdef __cplusplus
}
#endif
#endif
