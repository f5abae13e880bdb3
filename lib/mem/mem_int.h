/* SPDX-License-Identifier: MIT */
/*
 * mem_int.h - private: the allocator's layout inside its region.
 *
 * Region (all offsets from the start of struct ipcx_mem, which is the start
 * of the region):
 *
 *   [struct ipcx_mem | chunk map | blocks ... | sentinel]
 *
 * Every large block starts at an offset = 8 (mod 16) with an 8-byte header,
 * so the user pointer (header + 8) is 16-byte aligned. Large block header:
 *   size (multiple of 16, >= 32) | F_USED | F_PUSED (previous block used) | F_RUN
 * A free large block also holds next/prev offsets (bin list) after the
 * header and its size in its last 8 bytes (footer), for coalescing.
 *
 * Small blocks have no header. The region is cut into 64 KiB chunks
 * (offset >> 16); a run is a large block (F_RUN) whose user area starts
 * exactly at a chunk, holding struct mrun, an allocation bitmap (one bit per
 * block) and then equal blocks from RUN_HDR. A byte map after struct
 * ipcx_mem says which chunks are runs of which class (0 = none, class + 1),
 * so free() finds the class, the run and the block index from the pointer
 * alone and never touches the block: allocation and free are bitmap
 * operations on the run's header lines.
 */
#ifndef IPCX_MEM_INT_H
#define IPCX_MEM_INT_H

#include <ipcx/mem.h>

#include "lock.h"

#define MEM_MAGIC	0x4d454d58u	/* "XMEM" */
#define MEM_ABI		1
#define RUN_MAGIC	0x52554e00u	/* "RUN" << 8 | class */

#define F_USED		1ull
#define F_PUSED		2ull
#define F_RUN		8ull
#define F_MASK		15ull

#define MIN_BLOCK	32ull
#define CHUNK_SHIFT	16
#define CHUNK		(1ull << CHUNK_SHIFT)
#define MAX_CHUNKS	(1ull << 20)	/* chunk map covers at most 64 GiB */
#define RUN_BLOCK	CHUNK		/* a run's large block: header at chunk - 8 */
#define RUN_WORDS	64		/* bitmap words: up to 4096 blocks */
#define RUN_HDR		(64ull + RUN_WORDS * 8)	/* first block, from the chunk start */
#define NCLASS		40
#define LARGE_LOG	128
#define NBINS		240
#define NBITMAP		((NBINS + 63) / 64)

struct mclass {
	struct ipcx_lk lk;	/* no undo log: see class_repair() */
	uint64_t partial;	/* first run with a free block (run block offset) */
	uint64_t live;		/* small blocks handed out */
	uint64_t runs;		/* runs owned */
	uint64_t empty;		/* owned runs with no live block */
	uint64_t free_bytes;	/* see ipcx_mem_free_memory() */
	uint64_t stride;
	uint64_t nblocks;	/* blocks per run */
	uint64_t recip;		/* ceil(2^32 / stride): index = (t * recip) >> 32 */
};

struct mrun {			/* at the chunk start (run block + 8) */
	uint64_t magic;		/* RUN_MAGIC | class */
	uint64_t bsize;		/* size of the run's large block */
	uint64_t live;		/* derived: set bits of the bitmap */
	uint64_t hint;		/* no free block in bitmap words below this */
	uint64_t next, prev;	/* partial list */
	uint64_t linked;	/* on the partial list */
	uint64_t pad;
	uint64_t bitmap[RUN_WORDS];	/* 1 = allocated; bits past nblocks are 1 */
};

struct ipcx_mem {
	uint32_t magic;
	uint16_t abi;
	uint16_t nclass;
	uint32_t hdr_size;
	uint32_t flags;
	uint64_t size;		/* bytes of the region */
	uint64_t huge_align;
	uint64_t first;		/* first block */
	uint64_t end;		/* sentinel header */
	uint64_t nchunks;	/* entries of the chunk map (covers the max size) */
	uint64_t pad0;

	struct ipcx_lk lk;	/* large allocator */
	struct ipcx_ulog_ent log[LARGE_LOG];
	uint64_t free_bytes;	/* in free large blocks */
	uint64_t used_blocks;	/* large blocks handed out (runs excluded) */
	uint64_t bitmap[NBITMAP];
	uint64_t pad1[2];
	uint64_t bins[NBINS];

	struct mclass cls[NCLASS];
	/* then: uint8_t chunk_map[nchunks], padded to 64 bytes */
};

_Static_assert(sizeof(struct mclass) == 192, "mclass is ABI");
_Static_assert(sizeof(struct mrun) == RUN_HDR, "mrun is ABI");
_Static_assert(sizeof(struct ipcx_mem) % 64 == 0, "ipcx_mem is ABI");
_Static_assert(__builtin_offsetof(struct ipcx_mem, lk) == 64, "ipcx_mem is ABI");
_Static_assert(__builtin_offsetof(struct ipcx_mem, cls) % 64 == 0, "ipcx_mem is ABI");

/* Private to the library: make the locks of a copy-on-write view fresh (mem.c). */
int ipcx_mem_private_reset(struct ipcx_mem *m);

#endif /* IPCX_MEM_INT_H */
