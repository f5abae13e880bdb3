/* SPDX-License-Identifier: MIT */
/*
 * compat.h - kernel ABI constants that Debian 12's linux-libc-dev (6.1) and
 * liburing 2.3 lack. Values are the kernel's uapi numbers; each is defined
 * only when the system headers do not already provide it.
 */
#ifndef IPCX_SYS_COMPAT_H
#define IPCX_SYS_COMPAT_H

#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv		449
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake		454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait		455
#endif
#ifndef SYS_futex_requeue
#define SYS_futex_requeue	456
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef SYS_memfd_create
#define SYS_memfd_create	319
#endif

#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32		0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE		128
#endif
#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2		13
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY	0xffffffffu
#endif

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC		0x0001u
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING	0x0002u
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB		0x0004u
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL		0x0008u
#endif
#ifndef MFD_EXEC
#define MFD_EXEC		0x0010u
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC		0x0020
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE	0x0010
#endif

#define IPCX_IORING_OP_FUTEX_WAIT	51
#define IPCX_IORING_OP_FUTEX_WAKE	52
#define IPCX_IORING_OP_FUTEX_WAITV	53

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif

#endif /* IPCX_SYS_COMPAT_H */
