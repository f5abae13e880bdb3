// SPDX-License-Identifier: MIT
/*
 * region.c - mapped regions (Boost's mapped_region) and address-space
 * reservations.
 *
 * A region reports exactly the byte range the caller asked for; underneath
 * it maps whole pages (base pages, or hugepages for hugetlb objects). The
 * mapping never reaches past the object's end, because touching that part
 * would be SIGBUS. Fixed addresses use MAP_FIXED_NOREPLACE so an occupied
 * range is -EBUSY instead of silently replacing someone's mapping.
 *
 * A reservation is a PROT_NONE, MAP_NORESERVE anonymous mapping: it holds
 * address space without committing memory. A region mapped into it can
 * grow in place with MAP_FIXED over its own reserved tail, so a segment
 * keeps its base address while it grows; unmapping gives the range back to
 * the reservation rather than to the address space.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <ipcx/features.h>
#include <ipcx/shm.h>
#include "region.h"
#include "shm_priv.h"
#include "../sys/sys.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT		26
#endif

#define THP_SIZE	(2ul << 20)
#define REGION_FLAGS	(IPCX_READ_ONLY | IPCX_COPY_ON_WRITE | IPCX_MAP_PREFAULT | \
			 IPCX_MAP_LOCK | IPCX_MAP_COLLAPSE)

struct ipcx_reserve {
	void *base;
	size_t size;
	struct ipcx_region *user;	/* the region mapped at its start, if any */
};

static inline size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Give [addr, addr+len) back to a reservation: inaccessible, uncommitted. */
static int rereserve(void *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

/* Drop [addr, addr+len) of region @r: unmap it, or hand it back to the reservation. */
static int drop_range(struct ipcx_region *r, void *addr, size_t len)
{
	if (!len)
		return 0;
	if (r->res)
		return rereserve(addr, len);
	return munmap(addr, len) ? -errno : 0;
}

/*
 * Memory policy after the pages are mapped: THP advice, prefault, mlock.
 * Applied to a new mapping or to the tail a grow added.
 */
static int apply_policy(struct ipcx_region *r, void *addr, size_t len, bool populated)
{
	if (r->thp) {
		/* Best effort: "prefer" never fails for lack of THP. */
		(void)madvise(addr, len, MADV_HUGEPAGE);
	}
	if ((r->flags & IPCX_MAP_PREFAULT) && !populated) {
		int adv = (r->prot & PROT_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;

		if (madvise(addr, len, adv)) {
			int err = errno;

			/* Kernels before 5.14: touch the pages ourselves. */
			if (err == EINVAL) {
				volatile char *p = addr;
				size_t i;

				for (i = 0; i < len; i += r->pgsz) {
					if (r->prot & PROT_WRITE)
						__atomic_fetch_add((char *)addr + i, 0,
								   __ATOMIC_RELAXED);
					else
						(void)p[i];
				}
			} else {
				return err == EFAULT ? -ENOMEM : -err;
			}
		}
	}
	if (r->thp && (r->flags & IPCX_MAP_COLLAPSE) && (r->flags & IPCX_MAP_PREFAULT))
		(void)madvise(addr, len, MADV_COLLAPSE);
	if ((r->flags & IPCX_MAP_LOCK) && mlock(addr, len))
		return -errno;
	return 0;
}

/*
 * Place a mapping of @len bytes at an address congruent to @file_off modulo
 * @align, so the kernel can map huge pages. Returns MAP_FAILED (errno set)
 * or the mapping.
 */
static void *mmap_aligned(size_t len, int prot, int flags, int fd, off_t file_off,
			  size_t align)
{
	size_t span = len + align;
	uintptr_t start, want;
	void *p;

	p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return p;
	start = (uintptr_t)p;
	want = round_up(start - ((size_t)file_off & (align - 1)), align) +
	       ((size_t)file_off & (align - 1));
	if (want < start)
		want += align;
	if (mmap((void *)want, len, prot, flags | MAP_FIXED, fd, file_off) == MAP_FAILED) {
		int err = errno;

		munmap(p, span);
		errno = err;
		return MAP_FAILED;
	}
	if (want > start)
		munmap(p, want - start);
	if (start + span > want + len)
		munmap((void *)(want + len), start + span - (want + len));
	return (void *)want;
}

/* errno of a failed fixed-address map, as the API reports it. */
static int fixed_err(int err)
{
	return err == EEXIST ? -EBUSY : -err;
}

static int check_flags(const struct ipcx_region_opts *o)
{
	if ((o->flags & ~REGION_FLAGS) || o->huge > IPCX_HUGE_REQUIRE || o->reserved)
		return -EINVAL;
	if (o->addr && o->reserve)
		return -EINVAL;
	if (o->huge_shift && (o->huge_shift < 16 || o->huge_shift > 40))
		return -EINVAL;
	return 0;
}

/*
 * The common mapping path. @fd < 0 maps anonymous shared memory of
 * @o->size bytes. @pgsz is the object's page size (a hugepage for hugetlb).
 */
static int map_common(struct ipcx_region *r, int fd, const struct ipcx_region_opts *o,
		      size_t pgsz, bool hugetlb, int extra_mflags)
{
	size_t delta = (size_t)(o->offset & (pgsz - 1));
	size_t map_len = round_up(delta + (size_t)o->size, pgsz);
	off_t map_off = (off_t)(o->offset - delta);
	int mflags, ret;
	bool populate_now;
	void *p;

	if (map_len < o->size)
		return -EINVAL;	/* overflow */
	r->prot = PROT_READ | ((o->flags & IPCX_READ_ONLY) ? 0 : PROT_WRITE);
	mflags = ((o->flags & IPCX_COPY_ON_WRITE) ? MAP_PRIVATE : MAP_SHARED) | extra_mflags;
	r->flags = o->flags;
	r->pgsz = pgsz;
	r->hugetlb = hugetlb;
	r->thp = !hugetlb && o->huge != IPCX_HUGE_NONE;
	/*
	 * MAP_POPULATE happens inside mmap, before any madvise: with THP wanted
	 * the prefault comes after MADV_HUGEPAGE instead.
	 */
	populate_now = (o->flags & IPCX_MAP_PREFAULT) && !r->thp;
	if (populate_now)
		mflags |= MAP_POPULATE;

	if (o->addr) {
		uintptr_t a = (uintptr_t)o->addr;

		if (a < delta || ((a - delta) & (pgsz - 1)))
			return -EINVAL;
		p = mmap((void *)(a - delta), map_len, r->prot, mflags | MAP_FIXED_NOREPLACE,
			 fd, map_off);
		if (p == MAP_FAILED)
			return fixed_err(errno);
		if ((uintptr_t)p != a - delta) {
			/* A kernel without MAP_FIXED_NOREPLACE took it as a hint. */
			munmap(p, map_len);
			return -EBUSY;
		}
	} else if (o->reserve) {
		struct ipcx_reserve *res = o->reserve;

		if (res->user)
			return -EBUSY;
		if (((uintptr_t)res->base & (pgsz - 1)))
			return -EINVAL;
		if (map_len > res->size)
			return -ENOSPC;
		p = mmap(res->base, map_len, r->prot, mflags | MAP_FIXED, fd, map_off);
		if (p == MAP_FAILED) {
			ret = -errno;
			rereserve(res->base, map_len);
			return ret;
		}
		r->res = res;
		res->user = r;
	} else if (r->thp && map_len >= THP_SIZE) {
		p = mmap_aligned(map_len, r->prot, mflags, fd, map_off, THP_SIZE);
		if (p == MAP_FAILED)
			return -errno;
	} else {
		p = mmap(NULL, map_len, r->prot, mflags, fd, map_off);
		if (p == MAP_FAILED)
			return -errno;
	}
	r->map = p;
	r->map_len = map_len;
	r->map_off = (uint64_t)map_off;
	r->addr = (char *)p + delta;
	r->size = (size_t)o->size;
	ret = apply_policy(r, p, map_len, populate_now);
	if (ret) {
		drop_range(r, p, map_len);
		if (r->res)
			r->res->user = NULL;
		r->res = NULL;
		return ret;
	}
	return 0;
}

int ipcx_region_map(struct ipcx_region **out, int fd, const struct ipcx_region_opts *opts)
{
	struct ipcx_region_opts o;
	struct ipcx_region *r;
	size_t pgsz = ipcx_page_size();
	bool hugetlb = false;
	struct stat st;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	ret = check_flags(&o);
	if (ret)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st))
		return -errno;
	/*
	 * hugetlbfs reports its hugepage size as st_blksize; a few other
	 * filesystems report large blocks too, so confirm with fstatfs.
	 */
	if ((size_t)st.st_blksize > pgsz) {
		struct statfs sfs;

		if (fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
			hugetlb = true;
			pgsz = (size_t)sfs.f_bsize;
		}
	}
	if (S_ISREG(st.st_mode)) {
		uint64_t end = (uint64_t)st.st_size;

		/* (On hugetlbfs the mapping underneath covers whole hugepages.) */
		if (o.offset >= end)
			return -EINVAL;	/* includes mapping an empty object */
		if (!o.size)
			o.size = end - o.offset;
		if (o.size > end - o.offset)
			return -EINVAL;
	} else if (!o.size) {
		return -EINVAL;
	}
	if (o.size > SIZE_MAX / 2 || o.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (o.huge == IPCX_HUGE_REQUIRE && !hugetlb)
		return -EOPNOTSUPP;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->kind = IPCX_REGION_MMAP;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	ret = map_common(r, fd, &o, pgsz, hugetlb, 0);
	if (ret) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int ipcx_region_map_anon(struct ipcx_region **out, uint64_t size,
			 const struct ipcx_region_opts *opts)
{
	struct ipcx_region_opts o;
	struct ipcx_region *r;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	ret = check_flags(&o);
	if (ret)
		return ret;
	if (!size || size > SIZE_MAX / 2 || o.offset || (o.size && o.size != size) ||
	    (o.flags & IPCX_COPY_ON_WRITE))
		return -EINVAL;
	o.size = size;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->kind = IPCX_REGION_ANON;
	if (o.huge) {
		unsigned int shift = o.huge_shift ? o.huge_shift : IPCX_HUGE_2MB;
		size_t hp = (size_t)1 << shift;

		ret = map_common(r, -1, &o, hp, true,
				 MAP_ANONYMOUS | MAP_HUGETLB | (int)(shift << MAP_HUGE_SHIFT));
		if (ret == 0 || o.huge == IPCX_HUGE_REQUIRE)
			goto out;
		memset(r, 0, sizeof(*r));
		r->kind = IPCX_REGION_ANON;
	}
	ret = map_common(r, -1, &o, ipcx_page_size(), false, MAP_ANONYMOUS);
out:
	if (ret) {
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int ipcx_region_unmap(struct ipcx_region *r)
{
	int ret = 0;

	if (!r)
		return 0;
	if (r->kind == IPCX_REGION_XSI) {
		if (shmdt(r->map))
			ret = -errno;
	} else {
		ret = drop_range(r, r->map, r->map_len);
		if (r->res)
			r->res->user = NULL;
	}
	free(r);
	return ret;
}

void *ipcx_region_addr(const struct ipcx_region *r)
{
	return r ? r->addr : NULL;
}

size_t ipcx_region_size(const struct ipcx_region *r)
{
	return r ? r->size : 0;
}

size_t ipcx_region_page_size(const struct ipcx_region *r)
{
	if (!r)
		return 0;
	if (r->thp && !((uintptr_t)r->map & (THP_SIZE - 1)) && r->map_len >= THP_SIZE)
		return THP_SIZE;
	return r->pgsz;
}

static uint64_t kb_field(const char *line, const char *key)
{
	size_t n = strlen(key);
	unsigned long long v;

	if (strncmp(line, key, n) || sscanf(line + n, " %llu", &v) != 1)
		return 0;
	return (uint64_t)v << 10;
}

int ipcx_region_huge_bytes(const struct ipcx_region *r, uint64_t *bytes)
{
	static const char *const keys[] = {
		"AnonHugePages:", "ShmemPmdMapped:", "FilePmdMapped:",
		"Shared_Hugetlb:", "Private_Hugetlb:",
	};
	uintptr_t lo, hi;
	char line[512];
	bool in = false;
	uint64_t sum = 0;
	FILE *f;
	size_t k;

	if (!r || !bytes)
		return -EINVAL;
	lo = (uintptr_t)r->map;
	hi = lo + r->map_len;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char c;

		/* A VMA header: "start-end perms ..." (hex digits, a dash). */
		if (sscanf(line, "%lx-%lx %c", &s, &e, &c) == 3 && strchr(line, '-') &&
		    line[0] != ' ' && strchr("rwxp-", c)) {
			in = s < hi && e > lo;
			continue;
		}
		if (!in)
			continue;
		for (k = 0; k < IPCX_ARRAY_SIZE(keys); k++)
			sum += kb_field(line, keys[k]);
	}
	fclose(f);
	*bytes = sum;
	return 0;
}

int ipcx_region_advise(struct ipcx_region *r, enum ipcx_advice advice)
{
	static const int adv[] = {
		[IPCX_ADV_NORMAL] = MADV_NORMAL,
		[IPCX_ADV_SEQUENTIAL] = MADV_SEQUENTIAL,
		[IPCX_ADV_RANDOM] = MADV_RANDOM,
		[IPCX_ADV_WILLNEED] = MADV_WILLNEED,
		[IPCX_ADV_DONTNEED] = MADV_DONTNEED,
		[IPCX_ADV_HUGEPAGE] = MADV_HUGEPAGE,
		[IPCX_ADV_NOHUGEPAGE] = MADV_NOHUGEPAGE,
	};

	if (!r || (unsigned int)advice >= IPCX_ARRAY_SIZE(adv))
		return -EINVAL;
	/* On a private (copy-on-write) map DONTNEED would throw away writes. */
	if (advice == IPCX_ADV_DONTNEED && (r->flags & IPCX_COPY_ON_WRITE))
		return -EINVAL;
	if (r->kind == IPCX_REGION_XSI && advice == IPCX_ADV_DONTNEED)
		return -EINVAL;
	return madvise(r->map, r->map_len, adv[advice]) ? -errno : 0;
}

int ipcx_region_flush(struct ipcx_region *r, size_t offset, size_t len, bool async)
{
	uintptr_t start, end, page = ipcx_page_size();

	if (!r || offset > r->size)
		return -EINVAL;
	if (!len)
		len = r->size - offset;
	if (len > r->size - offset)
		return -EINVAL;
	if (!len)
		return 0;
	start = (uintptr_t)r->addr + offset;
	end = start + len;
	start &= ~(page - 1);
	return msync((void *)start, end - start, async ? MS_ASYNC : MS_SYNC) ? -errno : 0;
}

int ipcx_region_shrink(struct ipcx_region *r, size_t bytes, bool from_front)
{
	size_t delta, keep, cut;
	int ret;

	if (!r || r->kind == IPCX_REGION_XSI || !bytes || bytes >= r->size)
		return -EINVAL;
	delta = (size_t)((char *)r->addr - (char *)r->map);
	if (!from_front) {
		keep = round_up(delta + r->size - bytes, r->pgsz);
		ret = drop_range(r, (char *)r->map + keep, r->map_len - keep);
		if (ret)
			return ret;
		r->map_len = keep;
		r->size -= bytes;
		return 0;
	}
	cut = (delta + bytes) & ~(r->pgsz - 1);
	ret = drop_range(r, r->map, cut);
	if (ret)
		return ret;
	r->map = (char *)r->map + cut;
	r->map_len -= cut;
	r->map_off += cut;
	r->addr = (char *)r->addr + bytes;
	r->size -= bytes;
	return 0;
}

int ipcx_region_grow(struct ipcx_region *r, int fd, size_t new_size)
{
	size_t delta, new_len, ext;
	struct stat st;
	void *at, *p;
	int mflags, ret;

	if (!r || r->kind != IPCX_REGION_MMAP || new_size < r->size)
		return -EINVAL;
	if (fstat(fd, &st))
		return -errno;
	if (st.st_dev != r->dev || st.st_ino != r->ino)
		return -EINVAL;	/* not the object this region maps */
	delta = (size_t)((char *)r->addr - (char *)r->map);
	if (r->map_off + delta + new_size > (uint64_t)st.st_size)
		return -EINVAL;	/* grow the object first */
	new_len = round_up(delta + new_size, r->pgsz);
	ext = new_len - r->map_len;
	at = (char *)r->map + r->map_len;
	if (ext) {
		mflags = (r->flags & IPCX_COPY_ON_WRITE) ? MAP_PRIVATE : MAP_SHARED;
		if (r->res) {
			if ((size_t)((char *)at - (char *)r->res->base) + ext > r->res->size)
				return -ENOSPC;
			p = mmap(at, ext, r->prot, mflags | MAP_FIXED, fd,
				 (off_t)(r->map_off + r->map_len));
			if (p == MAP_FAILED) {
				ret = -errno;
				rereserve(at, ext);
				return ret;
			}
		} else {
			p = mmap(at, ext, r->prot, mflags | MAP_FIXED_NOREPLACE, fd,
				 (off_t)(r->map_off + r->map_len));
			if (p == MAP_FAILED)
				return fixed_err(errno);
			if (p != at) {
				munmap(p, ext);
				return -EBUSY;
			}
		}
		ret = apply_policy(r, at, ext, false);
		if (ret) {
			drop_range(r, at, ext);
			return ret;
		}
		r->map_len = new_len;
	}
	r->size = new_size;
	return 0;
}

int ipcx_reserve_new(struct ipcx_reserve **out, size_t size, size_t align)
{
	size_t page = ipcx_page_size(), span;
	struct ipcx_reserve *res;
	uintptr_t start, want;
	void *p;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!size || size > SIZE_MAX / 4 || (align & (align - 1)) || align > SIZE_MAX / 4)
		return -EINVAL;
	if (align < page)
		align = page;
	size = round_up(size, page);
	span = size + (align > page ? align : 0);
	res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		free(res);
		return -ENOMEM;
	}
	start = (uintptr_t)p;
	want = round_up(start, align);
	if (want > start)
		munmap(p, want - start);
	if (start + span > want + size)
		munmap((void *)(want + size), start + span - (want + size));
	res->base = (void *)want;
	res->size = size;
	*out = res;
	return 0;
}

int ipcx_reserve_free(struct ipcx_reserve *res)
{
	int ret;

	if (!res)
		return 0;
	ret = munmap(res->base, res->size) ? -errno : 0;
	if (res->user) {
		res->user->res = NULL;
		res->user->map_len = 0;	/* gone with the reservation */
	}
	free(res);
	return ret;
}

void *ipcx_reserve_addr(const struct ipcx_reserve *res)
{
	return res ? res->base : NULL;
}

size_t ipcx_reserve_size(const struct ipcx_reserve *res)
{
	return res ? res->size : 0;
}
