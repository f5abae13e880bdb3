/* SPDX-License-Identifier: MIT */
/*
 * rwlock_priv.h - private: the bits of struct ipcx_rwlock's state word
 * (shared with the white-box tests that simulate deaths at exact points).
 */
#ifndef IPCX_RWLOCK_PRIV_H
#define IPCX_RWLOCK_PRIV_H

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

#endif /* IPCX_RWLOCK_PRIV_H */
