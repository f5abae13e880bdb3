/* SPDX-License-Identifier: MIT */
/*
 * region.h - private: the region handle, shared by region.c and xsi.c.
 */
#ifndef IPCX_SHM_REGION_H
#define IPCX_SHM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ipcx_region_kind {
	IPCX_REGION_MMAP = 1,	/* a mapping of an fd */
	IPCX_REGION_ANON,	/* MAP_SHARED | MAP_ANONYMOUS */
	IPCX_REGION_XSI,	/* shmat: detached with shmdt */
};

struct ipcx_region {
	void *addr;		/* first byte the caller asked for */
	size_t size;		/* bytes the caller asked for */
	void *map;		/* start of the underlying mapping (page aligned) */
	size_t map_len;		/* its length (whole pages) */
	uint64_t map_off;	/* object offset of @map */
	size_t pgsz;		/* mapping granularity */
	struct ipcx_reserve *res;	/* reservation it lives in, or NULL */
	dev_t dev;		/* the mapped object, to check grow's fd */
	ino_t ino;
	unsigned int flags;	/* IPCX_READ_ONLY | IPCX_COPY_ON_WRITE | IPCX_MAP_* */
	int prot;
	uint8_t kind;		/* enum ipcx_region_kind */
	bool hugetlb;
	bool thp;
};

#endif /* IPCX_SHM_REGION_H */
