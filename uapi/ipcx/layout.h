/* SPDX-License-Identifier: MIT */
/*
 * ipcx/layout.h - the common header of every ipcx object in shared memory.
 *
 * Segments outlive binaries. Every named object file and every managed
 * segment starts with this 64-byte header, so an opener can refuse a layout
 * it does not understand (-EPROTO) and tools can identify any ipcx file.
 */
#ifndef IPCX_LAYOUT_H
#define IPCX_LAYOUT_H

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPCX_MAGIC		0x58435049u	/* "IPCX" little-endian */
#define IPCX_ABI_VERSION	1

/* Kinds of shared objects; also selects the file-name prefix. */
enum ipcx_kind {
	IPCX_KIND_NONE		= 0,
	IPCX_KIND_SHM		= 1,	/* raw shared memory object */
	IPCX_KIND_MUTEX		= 2,
	IPCX_KIND_RMUTEX	= 3,	/* recursive mutex */
	IPCX_KIND_COND		= 4,
	IPCX_KIND_SEM		= 5,
	IPCX_KIND_RWLOCK	= 6,	/* sharable mutex */
	IPCX_KIND_UPGRADABLE	= 7,	/* upgradable mutex */
	IPCX_KIND_BARRIER	= 8,
	IPCX_KIND_MQ		= 9,
	IPCX_KIND_MANAGED	= 10,
	IPCX_KIND_MAX
};

struct ipcx_obj_header {
	uint32_t magic;		/* IPCX_MAGIC */
	uint16_t abi;		/* IPCX_ABI_VERSION */
	uint16_t kind;		/* enum ipcx_kind */
	uint32_t header_size;	/* sizeof the kind's own header */
	uint32_t flags;		/* kind-specific */
	uint64_t total_size;	/* bytes of the object as created */
	uint32_t creator_pid;
	uint32_t reserved0;
	uint64_t created_ns;	/* CLOCK_REALTIME at creation, for tools */
	uint64_t reserved[3];
};

IPCX_STATIC_ASSERT(sizeof(struct ipcx_obj_header) == 64, "ipcx_obj_header is ABI");

#ifdef __cplusplus
}
#endif
#endif /* IPCX_LAYOUT_H */
