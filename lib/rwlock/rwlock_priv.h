/* SPDX-License-Identifier: MIT */
/*
 * rwlock_priv.h - private: the bits of struct ipcx_rwlock's state word and
 * the reaper's slot marker (shared with the white-box tests that simulate
 * deaths at exact points), and the deadline conversion of lib/rwlock.
 */
#ifndef IPCX_RWLOCK_PRIV_H
#define IPCX_RWLOCK_PRIV_H

#include <stdint.h>
#include <time.h>

#define RW_MAGIC	0x4c575249u	/* "IRWL" */

#define ST_TID		0x003fffffu	/* pid_max is at most 2^22 */
#define ST_EXCL		(1u << 22)
#define ST_UPG		(1u << 23)
#define ST_RDWAIT	(1u << 24)
#define ST_WRWAIT	(1u << 25)
#define ST_DRAIN	(1u << 26)
#define ST_INCONS	(1u << 27)
#define ST_NOTREC	(1u << 28)
#define ST_HELD		(ST_EXCL | ST_UPG)
#define ST_WAITERS	(ST_RDWAIT | ST_WRWAIT)

/*
 * A reader slot being released by a reaper holds RW_REAP_MARK(reaper's
 * ident). A real ident has its pid (< 2^22) in bits 40-61, so bit 63 is
 * never set in one: the tag tells a marker from an ident, and the rest
 * names the reaper, so a marker whose reaper died can be taken over.
 */
#define RW_REAP_TAG		(1ull << 63)
#define RW_REAP_MARK(ident)	(RW_REAP_TAG | (uint64_t)(ident))
#define RW_IS_REAP_MARK(id)	(((id) & RW_REAP_TAG) != 0)
#define RW_REAPER(id)		((id) & ~RW_REAP_TAG)

/*
 * Nanoseconds of a valid (ipcx_timespec_valid) absolute deadline, or
 * UINT64_MAX, meaning "never", when they do not fit in 64 bits (tv_sec
 * beyond about 1.8e10 s, 584 years).
 */
static inline uint64_t ipcx_rw_deadline_ns(const struct timespec *ts)
{
	uint64_t sec = (uint64_t)ts->tv_sec, nsec = (uint64_t)ts->tv_nsec;

	if (sec > (UINT64_MAX - nsec) / 1000000000ull)
		return UINT64_MAX;
	return sec * 1000000000ull + nsec;
}

#endif /* IPCX_RWLOCK_PRIV_H */
