// SPDX-License-Identifier: MIT
/*
 * mem.c - the in-region allocator: size classes for small blocks, a
 * good-fit boundary-tag allocator with segregated bins for the rest.
 *
 * Locks: one per size class (the hot path) and one for the large
 * allocator. Order: class -> large. A class takes the large lock only to
 * get or give back a whole run. Large-allocator stores are undo-logged
 * (lock.h), so a holder killed mid-op is rolled back by the next locker;
 * a class keeps its ground truth in single-store bitmap updates and
 * rebuilds the rest when its holder died (class_repair). Where an op spans
 * two locks, the first lock's part is complete before the second's begins,
 * so a crash between them can only leak a block, never leave two owners.
 */
#include <string.h>

#include "mem_int.h"

#define W(m, off)	((uint64_t *)((char *)(m) + (off)))
#define LW(m, p, v)	ipcx_lk_write(&(m)->lk, (m), (p), (v))

static const uint16_t big_strides[NCLASS - 32] = {
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
};

static inline uint64_t class_stride(unsigned int c)
{
	return c < 32 ? 16 + 16 * (uint64_t)c : big_strides[c - 32];
}

static inline unsigned int class_of(size_t size)
{
	uint64_t s = (size + 15) & ~15ull;
	unsigned int c;

	if (s < 16)
		s = 16;
	if (s <= 512)
		return (unsigned int)(s / 16 - 1);
	for (c = 32; class_stride(c) < s; c++)
		;
	return c;
}

static inline uint8_t *chunk_map(const struct ipcx_mem *m)
{
	return (uint8_t *)(uintptr_t)m + sizeof(*m);
}

static inline uint64_t map_bytes(uint64_t nchunks)
{
	return (nchunks + 63) & ~63ull;
}

static inline unsigned int bin_of(uint64_t s)
{
	unsigned int fl, b;

	if (s < 64)
		return (unsigned int)(s >> 4);
	fl = 63 - (unsigned int)__builtin_clzll(s);
	b = (fl - 5) * 4 + (unsigned int)((s >> (fl - 2)) & 3);
	return b < NBINS ? b : NBINS - 1;
}

static inline struct mrun *run_of(struct ipcx_mem *m, uint64_t run)
{
	return (struct mrun *)((char *)m + run + 8);
}

static inline uint64_t msize(const struct ipcx_mem *m)
{
	return __atomic_load_n(&m->size, __ATOMIC_RELAXED);
}

static inline int large_lock(struct ipcx_mem *m)
{
	return ipcx_lk_lock(&m->lk, m, msize(m));
}

static int class_repair(struct ipcx_mem *m, unsigned int c);

static inline int class_lock(struct ipcx_mem *m, unsigned int c)
{
	struct mclass *k = &m->cls[c];
	int ret = ipcx_lk_lock_repair(&k->lk, m, msize(m));

	if (__builtin_expect(ret == 1, 0)) {
		ret = class_repair(m, c);
		if (ret)
			ipcx_lk_unlock(&k->lk);
	}
	return ret;
}

/* ---- large allocator (m->lk held) ------------------------------------ */

static void bin_insert(struct ipcx_mem *m, uint64_t off, uint64_t size)
{
	unsigned int b = bin_of(size);
	uint64_t h = m->bins[b];

	LW(m, W(m, off + 8), h);
	LW(m, W(m, off + 16), 0);
	if (h)
		LW(m, W(m, h + 16), off);
	else
		LW(m, &m->bitmap[b / 64], m->bitmap[b / 64] | (1ull << (b % 64)));
	LW(m, &m->bins[b], off);
}

static void bin_unlink(struct ipcx_mem *m, uint64_t off, uint64_t size)
{
	unsigned int b = bin_of(size);
	uint64_t nx = *W(m, off + 8), pv = *W(m, off + 16);

	if (pv) {
		LW(m, W(m, pv + 8), nx);
	} else {
		LW(m, &m->bins[b], nx);
		if (!nx)
			LW(m, &m->bitmap[b / 64], m->bitmap[b / 64] & ~(1ull << (b % 64)));
	}
	if (nx)
		LW(m, W(m, nx + 16), pv);
}

/* A free block of at least @need bytes (good fit), or 0. */
static uint64_t find_fit(struct ipcx_mem *m, uint64_t need)
{
	unsigned int b = bin_of(need), w, scanned = 0;
	uint64_t o, best = 0, bestsz = UINT64_MAX;

	for (o = m->bins[b]; o && scanned < 32; o = *W(m, o + 8), scanned++) {
		uint64_t sz = *W(m, o) & ~F_MASK;

		if (sz >= need && sz < bestsz) {
			best = o;
			bestsz = sz;
			if (sz == need)
				break;
		}
	}
	if (best)
		return best;
	for (w = (b + 1) / 64; w < NBITMAP; w++) {
		uint64_t bits = m->bitmap[w];

		if (w == (b + 1) / 64)
			bits &= ~0ull << ((b + 1) % 64);
		if (bits)
			return m->bins[w * 64 + (unsigned int)__builtin_ctzll(bits)];
	}
	return 0;
}

/*
 * Make the unlinked free block (@off, @bs) a used block of @need bytes,
 * returning any tail of at least MIN_BLOCK to the bins. Returns the used
 * block's size.
 */
static uint64_t carve(struct ipcx_mem *m, uint64_t off, uint64_t bs, uint64_t pflag,
		      uint64_t need)
{
	uint64_t rem = bs - need;

	if (rem >= MIN_BLOCK) {
		uint64_t nf = off + need;

		LW(m, W(m, off), need | F_USED | pflag);
		LW(m, W(m, nf), rem | F_PUSED);
		LW(m, W(m, nf + rem - 8), rem);
		bin_insert(m, nf, rem);
	} else {
		need = bs;
		LW(m, W(m, off), bs | F_USED | pflag);
		LW(m, W(m, off + bs), *W(m, off + bs) | F_PUSED);
	}
	LW(m, &m->free_bytes, m->free_bytes - need);
	return need;
}

/* Allocate a block of @need bytes (a multiple of 16) whose user address is @align aligned. */
static uint64_t large_get(struct ipcx_mem *m, uint64_t need, uint64_t align, bool rel,
			  uint64_t *bsize)
{
	uint64_t o, bs, pflag, want = need;

	if (align > 16) {
		if (need > UINT64_MAX / 4 - align)
			return 0;
		want = need + align + MIN_BLOCK;
	}
	o = find_fit(m, want);
	if (!o)
		return 0;
	bs = *W(m, o) & ~F_MASK;
	pflag = *W(m, o) & F_PUSED;
	bin_unlink(m, o, bs);
	if (align > 16) {
		/* @rel: align the offset in the region rather than the address */
		uintptr_t user = (rel ? 0 : (uintptr_t)m) + o + 8;
		uint64_t front = (uint64_t)(((user + align - 1) & ~(uintptr_t)(align - 1)) - user);

		if (front && front < MIN_BLOCK)
			front += align;
		if (front) {
			LW(m, W(m, o), front | pflag);
			LW(m, W(m, o + front - 8), front);
			bin_insert(m, o, front);
			o += front;
			bs -= front;
			pflag = 0;
		}
	}
	*bsize = carve(m, o, bs, pflag, need);
	return o;
}

/* Free the used large block at @off (validated). */
static void large_put(struct ipcx_mem *m, uint64_t off)
{
	uint64_t h = *W(m, off), size = h & ~F_MASK, pflag = h & F_PUSED;
	uint64_t nx = off + size, nh = *W(m, nx);

	LW(m, &m->free_bytes, m->free_bytes + size);
	if (!(nh & F_USED)) {
		bin_unlink(m, nx, nh & ~F_MASK);
		size += nh & ~F_MASK;
	} else {
		LW(m, W(m, nx), nh & ~F_PUSED);
	}
	if (!pflag) {
		uint64_t psize = *W(m, off - 8), prev = off - psize;

		bin_unlink(m, prev, psize);
		pflag = *W(m, prev) & F_PUSED;
		off = prev;
		size += psize;
	}
	LW(m, W(m, off), size | pflag);
	LW(m, W(m, off + size - 8), size);
	bin_insert(m, off, size);
}

/* Clear the words of a newly handed-out large block that held free-list metadata. */
static inline void large_scrub(struct ipcx_mem *m, uint64_t off, uint64_t bs)
{
	*W(m, off + 8) = 0;
	*W(m, off + 16) = 0;
	*W(m, off + bs - 8) = 0;
}

static inline uint64_t need_of(size_t size)
{
	uint64_t need = ((uint64_t)size + 8 + 15) & ~15ull;

	return need < MIN_BLOCK ? MIN_BLOCK : need;
}

static void *large_alloc(struct ipcx_mem *m, size_t size, uint64_t align)
{
	uint64_t o, bs, need;
	int tries;

	if (size > (UINT64_MAX >> 2))
		return NULL;
	need = need_of(size);
	if (m->huge_align && align < m->huge_align && need - 8 >= m->huge_align)
		align = m->huge_align;
	for (tries = 0; tries < 2; tries++) {
		if (large_lock(m))
			return NULL;
		o = large_get(m, need, align, false, &bs);
		if (o) {
			LW(m, &m->used_blocks, m->used_blocks + 1);
			ipcx_lk_unlock(&m->lk);
			large_scrub(m, o, bs);
			return (char *)m + o + 8;
		}
		ipcx_lk_unlock(&m->lk);
		if (tries || ipcx_mem_trim(m) <= 0)
			break;
	}
	return NULL;
}

/* ---- size classes (class lock held) ----------------------------------- */

/*
 * A run's ground truth is its allocation bitmap: taking or giving back a
 * block is one store to one bitmap word. Everything else (live counts, the
 * partial list, the class counters) is derived, kept with plain stores, and
 * rebuilt from the bitmaps by the locker that finds the previous holder
 * dead (class_repair). A death can at most leave the dying call's block
 * marked allocated with nobody holding it (a leak of that block).
 */

static void partial_push(struct ipcx_mem *m, struct mclass *k, uint64_t run)
{
	struct mrun *r = run_of(m, run);

	r->next = k->partial;
	r->prev = 0;
	if (k->partial)
		run_of(m, k->partial)->prev = run;
	k->partial = run;
	r->linked = 1;
}

static void partial_unlink(struct ipcx_mem *m, struct mclass *k, uint64_t run)
{
	struct mrun *r = run_of(m, run);
	uint64_t nx = r->next, pv = r->prev;

	if (pv)
		run_of(m, pv)->next = nx;
	else
		k->partial = nx;
	if (nx)
		run_of(m, nx)->prev = pv;
	r->linked = 0;
}

static inline uint64_t tail_bits(uint64_t nb)
{
	return RUN_WORDS * 64 - nb;
}

static uint64_t run_live(const struct mrun *r, uint64_t nb)
{
	uint64_t w, n = 0;

	for (w = 0; w < RUN_WORDS; w++)
		n += (uint64_t)__builtin_popcountll(r->bitmap[w]);
	return n - tail_bits(nb);
}

/* The map word holding chunk @k's byte, and that word with the byte set to @v. */
static inline uint64_t *map_word(struct ipcx_mem *m, uint64_t k)
{
	return (uint64_t *)(chunk_map(m) + (k & ~7ull));
}

static inline uint64_t map_with(uint64_t word, uint64_t k, uint8_t v)
{
	unsigned int sh = (unsigned int)(k & 7) * 8;

	return (word & ~(0xffull << sh)) | ((uint64_t)v << sh);
}

/*
 * Rebuild class @c's derived state from its runs, found by walking every
 * block under the large lock (class lock held; a holder died).
 */
static int class_repair(struct ipcx_mem *m, unsigned int c)
{
	struct mclass *k = &m->cls[c];
	uint64_t o, end, stride = k->stride, nb = k->nblocks;
	uint64_t live_sum = 0, runs = 0, empty = 0, fb = 0;
	int ret;

	ret = large_lock(m);
	if (ret)
		return ret;
	k->partial = 0;
	end = m->end;
	for (o = m->first; o < end;) {
		uint64_t h = *W(m, o), size = h & ~F_MASK;
		struct mrun *r;

		if (size < MIN_BLOCK || size > end - o)
			break;		/* corrupted: the check will say where */
		r = run_of(m, o);
		if ((h & (F_USED | F_RUN)) != (F_USED | F_RUN) || r->magic != (RUN_MAGIC | c)) {
			o += size;
			continue;
		}
		r->live = run_live(r, nb);
		r->hint = 0;
		r->linked = 0;
		runs++;
		live_sum += r->live;
		if (r->live == 0) {
			empty++;
			fb += r->bsize;
		} else {
			fb += (nb - r->live) * stride;
		}
		if (r->live < nb)
			partial_push(m, k, o);
		o += size;
	}
	k->live = live_sum;
	k->runs = runs;
	k->empty = empty;
	k->free_bytes = fb;
	ipcx_lk_unlock(&m->lk);
	return 0;
}

/* Get a fresh run for class @c from the large allocator. */
static uint64_t new_run(struct ipcx_mem *m, struct mclass *k, unsigned int c)
{
	uint64_t o, bs, ck, w, nb = k->nblocks;
	struct mrun *r;

	if (large_lock(m))
		return 0;
	/* A run's user area starts exactly on a chunk. */
	o = large_get(m, RUN_BLOCK, CHUNK, true, &bs);
	if (o && ((o + 8) >> CHUNK_SHIFT) >= m->nchunks) {
		large_put(m, o);	/* beyond the chunk map (grown past max_size) */
		o = 0;
	}
	if (o) {
		ck = (o + 8) >> CHUNK_SHIFT;
		LW(m, W(m, o), *W(m, o) | F_RUN);
		LW(m, map_word(m, ck), map_with(*map_word(m, ck), ck, (uint8_t)(c + 1)));
		/*
		 * Written under the large lock (a rollback makes it part of a
		 * free block again), so a committed run is always complete and a
		 * class repair finds it even if we die before linking it.
		 *
		 * magic and bsize sit at o + 8 and o + 16: when the block was
		 * taken whole from the front of a free block (the usual case:
		 * the free space right after another run), those words were
		 * that free block's bin links, and a rollback brings the free
		 * block back. So they are logged like every other store that
		 * can land on free-block metadata; a plain store there left a
		 * rolled-back free block linking to RUN_MAGIC | c, and the next
		 * walk of that bin faulted. The rest of the header lies inside
		 * the free block's body (its footer is at least RUN_BLOCK - 8
		 * further on), where a rolled-back op may leave any bytes.
		 */
		r = run_of(m, o);
		LW(m, &r->magic, RUN_MAGIC | c);
		LW(m, &r->bsize, bs);
		r->live = 0;
		r->hint = 0;
		r->next = r->prev = r->linked = r->pad = 0;
		for (w = 0; w < RUN_WORDS; w++) {
			uint64_t lo = w * 64;

			r->bitmap[w] = lo >= nb ? ~0ull : lo + 64 <= nb ? 0 : ~0ull << (nb - lo);
		}
	}
	ipcx_lk_unlock(&m->lk);
	if (!o)
		return 0;
	k->runs++;
	k->empty++;
	k->free_bytes += bs;
	partial_push(m, k, o);
	return o;
}

/* Unlink an empty run and give it back to the large allocator (class lock held). */
static void release_run(struct ipcx_mem *m, struct mclass *k, uint64_t run)
{
	struct mrun *r = run_of(m, run);
	uint64_t ck = (run + 8) >> CHUNK_SHIFT;

	partial_unlink(m, k, run);
	k->runs--;
	k->empty--;
	k->free_bytes -= r->bsize;
	if (large_lock(m))
		return;		/* the run stays; a repair relinks it */
	LW(m, map_word(m, ck), map_with(*map_word(m, ck), ck, 0));
	LW(m, W(m, run), *W(m, run) & ~F_RUN);
	large_put(m, run);
	ipcx_lk_unlock(&m->lk);
}

static void *small_alloc(struct ipcx_mem *m, unsigned int c)
{
	struct mclass *k = &m->cls[c];
	uint64_t run, live, stride = k->stride, nb = k->nblocks, w, bits, idx;
	struct mrun *r;

	if (class_lock(m, c))
		return NULL;
	for (;;) {
		run = k->partial;
		if (!run) {
			run = new_run(m, k, c);
			if (!run) {
				ipcx_lk_unlock(&k->lk);
				return NULL;
			}
		}
		r = run_of(m, run);
		for (w = r->hint < RUN_WORDS ? r->hint : 0; w < RUN_WORDS; w++)
			if (~r->bitmap[w])
				break;
		if (w < RUN_WORDS)
			break;
		partial_unlink(m, k, run);	/* full after all: derived state was stale */
	}
	bits = r->bitmap[w];
	idx = w * 64 + (uint64_t)__builtin_ctzll(~bits);
	r->bitmap[w] = bits | (1ull << (idx & 63));	/* the one store that takes it */
	ipcx_barrier();
	r->hint = w;
	live = r->live;
	if (live == 0) {
		k->empty--;
		k->free_bytes -= r->bsize - (nb - 1) * stride;
	} else {
		k->free_bytes -= stride;
	}
	r->live = live + 1;
	if (live + 1 == nb)
		partial_unlink(m, k, run);
	k->live++;
	ipcx_lk_unlock(&k->lk);
	return (char *)r + RUN_HDR + idx * stride;
}

static int small_free(struct ipcx_mem *m, unsigned int c, uint64_t run, uint64_t idx)
{
	struct mclass *k = &m->cls[c];
	struct mrun *r = run_of(m, run);
	uint64_t live, stride = k->stride, nb = k->nblocks, w = idx / 64, bit = 1ull << (idx & 63);
	int ret;

	ret = class_lock(m, c);
	if (ret)
		return ret;
	if (!(r->bitmap[w] & bit) || !r->live) {
		ipcx_lk_unlock(&k->lk);
		return -EINVAL;		/* double free */
	}
	r->bitmap[w] &= ~bit;		/* the one store that gives it back */
	ipcx_barrier();
	if (w < r->hint)
		r->hint = w;
	live = r->live - 1;
	r->live = live;
	k->live--;
	if (live == 0)
		k->free_bytes += r->bsize - (nb - 1) * stride;
	else
		k->free_bytes += stride;
	if (live + 1 == nb)
		partial_push(m, k, run);
	if (live == 0) {
		k->empty++;
		if (k->empty > 1)
			release_run(m, k, run);
	}
	ipcx_lk_unlock(&k->lk);
	return 0;
}

/* ---- validation of user pointers --------------------------------------- */

/*
 * Classify @p: 1 small (class, run, index filled), 2 large (blk), or
 * -EINVAL. Cheap checks only; enough to refuse stray pointers. A small
 * block is found from the pointer alone (chunk map, run, one multiply).
 */
static int classify(const struct ipcx_mem *m, const void *p, unsigned int *cls,
		    uint64_t *runp, uint64_t *idxp)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)m;
	uint64_t off, blk, h, end = m->end, ck;

	if (a < b || (a & 15))
		return -EINVAL;
	off = a - b;
	if (off < m->first + 8 || off >= end)
		return -EINVAL;
	ck = off >> CHUNK_SHIFT;
	if (ck < m->nchunks && chunk_map(m)[ck]) {
		unsigned int c = chunk_map(m)[ck] - 1u;
		uint64_t t = off - (ck << CHUNK_SHIFT), idx;
		const struct mclass *k;
		const struct mrun *r;

		if (c >= NCLASS || t < RUN_HDR)
			return -EINVAL;
		k = &m->cls[c];
		t -= RUN_HDR;
		idx = (t * k->recip) >> 32;
		if (idx * k->stride != t || idx >= k->nblocks)
			return -EINVAL;
		r = (const struct mrun *)((const char *)m + (ck << CHUNK_SHIFT));
		if (r->magic != (RUN_MAGIC | c))
			return -EINVAL;
		*cls = c;
		*runp = (ck << CHUNK_SHIFT) - 8;
		*idxp = idx;
		return 1;
	}
	blk = off - 8;
	h = *W(m, blk);
	if ((h & (F_USED | F_RUN)) != F_USED || (h & ~F_MASK) < MIN_BLOCK ||
	    (h & ~F_MASK) > end - blk || !(*W(m, blk + (h & ~F_MASK)) & F_PUSED))
		return -EINVAL;
	*idxp = blk;
	return 2;
}

/* ---- public API ------------------------------------------------------ */

struct ipcx_mem *ipcx_mem_init(void *base, size_t size, const struct ipcx_mem_opts *opts)
{
	struct ipcx_mem *m = base;
	uint64_t first, end, huge = 0, max = 0, nchunks, hdr;
	unsigned int c;

	if (!base || ((uintptr_t)base & 63) || size < IPCX_MEM_MIN_SIZE)
		return NULL;
	if (opts && opts->sz > sizeof(*opts)) {
		/* a newer caller's struct: its unknown tail must be zero */
		const unsigned char *t = (const unsigned char *)opts;
		size_t i;

		if (opts->sz > 4096)
			return NULL;
		for (i = sizeof(*opts); i < opts->sz; i++)
			if (t[i])
				return NULL;
	}
	if (opts && opts->sz >= offsetof(struct ipcx_mem_opts, huge_align) + sizeof(uint64_t))
		huge = opts->huge_align;
	if (opts && opts->sz >= offsetof(struct ipcx_mem_opts, max_size) + sizeof(uint64_t))
		max = opts->max_size;
	if ((huge & (huge - 1)) || max > (1ull << 48))
		return NULL;
	size &= ~(size_t)15;
	/*
	 * The chunk map covers the maximum size, but takes at most 1/16 of the
	 * initial region and at most 1 MiB (64 GiB); memory beyond what it
	 * covers serves large blocks only.
	 */
	nchunks = ((max > size ? max : size) + CHUNK - 1) >> CHUNK_SHIFT;
	if (nchunks > MAX_CHUNKS)
		nchunks = MAX_CHUNKS;
	if (nchunks > size / 16 && nchunks > (size >> CHUNK_SHIFT))
		nchunks = size / 16 > (size >> CHUNK_SHIFT) ? size / 16 : size >> CHUNK_SHIFT;
	hdr = sizeof(*m) + map_bytes(nchunks);
	if (hdr + 4096 > size)
		return NULL;
	memset(m, 0, hdr);
	first = hdr + 8;
	end = size - 8;
	m->nchunks = nchunks;
	m->magic = MEM_MAGIC;
	m->abi = MEM_ABI;
	m->nclass = NCLASS;
	m->hdr_size = (uint32_t)hdr;
	m->size = size;
	m->huge_align = huge;
	m->first = first;
	m->end = end;
	if (ipcx_lk_init(&m->lk, LARGE_LOG, false))
		return NULL;
	for (c = 0; c < NCLASS; c++) {
		struct mclass *k = &m->cls[c];

		if (ipcx_lk_init(&k->lk, 0, false))
			return NULL;
		k->stride = class_stride(c);
		k->nblocks = (RUN_BLOCK - 8 - RUN_HDR) / k->stride;
		k->recip = ((1ull << 32) + k->stride - 1) / k->stride;
	}
	/* One free block from first to the sentinel; the "previous" of the first is used. */
	*W(m, first) = (end - first) | F_PUSED;
	*W(m, end - 8) = end - first;
	*W(m, end) = F_USED;
	m->free_bytes = end - first;
	{
		unsigned int b = bin_of(end - first);

		*W(m, first + 8) = 0;
		*W(m, first + 16) = 0;
		m->bins[b] = first;
		m->bitmap[b / 64] |= 1ull << (b % 64);
	}
	return m;
}

int ipcx_mem_attach(const void *base, size_t size)
{
	const struct ipcx_mem *m = base;

	if (!base || ((uintptr_t)base & 15))
		return -EINVAL;
	if (size < sizeof(*m))
		return -EPROTO;
	if (m->magic != MEM_MAGIC || m->abi != MEM_ABI || m->nclass != NCLASS ||
	    m->nchunks > MAX_CHUNKS || m->hdr_size != sizeof(*m) + map_bytes(m->nchunks) ||
	    m->size > size || m->first != m->hdr_size + 8 ||
	    m->end >= m->size || m->end < m->first || (m->end & 15) != 8 ||
	    m->lk.cap != LARGE_LOG)
		return -EPROTO;
	for (unsigned int c = 0; c < NCLASS; c++)
		if (m->cls[c].stride != class_stride(c) ||
		    m->cls[c].nblocks != (RUN_BLOCK - 8 - RUN_HDR) / class_stride(c) ||
		    m->cls[c].recip != ((1ull << 32) + class_stride(c) - 1) / class_stride(c))
			return -EPROTO;
	return 0;
}

/*
 * A private (copy-on-write) view of a region: its locks may have been
 * copied while another process held them, and no one would ever release
 * those copies. Roll back any half-done large op, make every lock fresh,
 * and rebuild the size classes' derived state. Only for a mapping that this
 * process alone uses.
 */
int ipcx_mem_private_reset(struct ipcx_mem *m)
{
	unsigned int c;
	int ret;

	if (m->lk.n)
		ipcx_lk_rollback(&m->lk, m, msize(m));
	ret = ipcx_lk_init(&m->lk, LARGE_LOG, false);
	for (c = 0; !ret && c < NCLASS; c++)
		ret = ipcx_lk_init(&m->cls[c].lk, 0, false);
	for (c = 0; !ret && c < NCLASS; c++)
		ret = class_repair(m, c);
	return ret;
}

void *ipcx_mem_alloc(struct ipcx_mem *m, size_t size)
{
	if (!m)
		return NULL;
	if (size <= IPCX_MEM_SMALL_MAX) {
		void *p = small_alloc(m, class_of(size));

		if (p)
			return p;
	}
	return large_alloc(m, size, 16);
}

void *ipcx_mem_alloc_aligned(struct ipcx_mem *m, size_t size, size_t align)
{
	if (!m || !align || (align & (align - 1)))
		return NULL;
	if (align <= 16)
		return ipcx_mem_alloc(m, size);
	return large_alloc(m, size, align);
}

int ipcx_mem_free(struct ipcx_mem *m, void *p)
{
	unsigned int c = 0;
	uint64_t run = 0, blk = 0;
	int kind, ret;

	if (!p)
		return 0;
	if (!m)
		return -EINVAL;
	kind = classify(m, p, &c, &run, &blk);
	if (kind < 0)
		return kind;
	if (kind == 1)
		return small_free(m, c, run, blk);	/* blk is the block index here */
	ret = large_lock(m);
	if (ret)
		return ret;
	/* Re-check under the lock: a racing double free must not corrupt. */
	if ((*W(m, blk) & (F_USED | F_RUN)) != F_USED) {
		ipcx_lk_unlock(&m->lk);
		return -EINVAL;
	}
	LW(m, &m->used_blocks, m->used_blocks - 1);
	large_put(m, blk);
	ipcx_lk_unlock(&m->lk);
	return 0;
}

size_t ipcx_mem_size_of(const struct ipcx_mem *m, const void *p)
{
	unsigned int c = 0;
	uint64_t run = 0, blk = 0;
	int kind;

	if (!m || !p)
		return 0;
	kind = classify(m, p, &c, &run, &blk);
	if (kind == 1)
		return (size_t)m->cls[c].stride;
	if (kind == 2)
		return (size_t)((*W(m, blk) & ~F_MASK) - 8);
	return 0;
}

uint64_t ipcx_mem_size(const struct ipcx_mem *m)
{
	return m ? msize(m) : 0;
}

uint64_t ipcx_mem_free_memory(const struct ipcx_mem *m)
{
	uint64_t f;
	unsigned int c;

	if (!m)
		return 0;
	f = __atomic_load_n(&m->free_bytes, __ATOMIC_RELAXED);
	for (c = 0; c < NCLASS; c++)
		f += __atomic_load_n(&m->cls[c].free_bytes, __ATOMIC_RELAXED);
	return f;
}

bool ipcx_mem_all_freed(const struct ipcx_mem *m)
{
	unsigned int c;

	if (!m || __atomic_load_n(&m->used_blocks, __ATOMIC_RELAXED))
		return false;
	for (c = 0; c < NCLASS; c++)
		if (__atomic_load_n(&m->cls[c].live, __ATOMIC_RELAXED))
			return false;
	return true;
}

long ipcx_mem_trim(struct ipcx_mem *m)
{
	long freed = 0;
	unsigned int c;
	int ret;

	if (!m)
		return -EINVAL;
	for (c = 0; c < NCLASS; c++) {
		struct mclass *k = &m->cls[c];
		uint64_t run, next, steps = 0;

		if (!__atomic_load_n(&k->empty, __ATOMIC_RELAXED))
			continue;
		ret = class_lock(m, c);
		if (ret)
			return ret;
		for (run = k->partial; run && steps <= k->runs; run = next, steps++) {
			struct mrun *r = run_of(m, run);

			next = r->next;
			if (r->live)
				continue;
			freed += (long)r->bsize;
			release_run(m, k, run);
		}
		ipcx_lk_unlock(&k->lk);
	}
	return freed;
}

uint64_t ipcx_mem_largest_free(struct ipcx_mem *m)
{
	uint64_t best = 0, o, steps = 0;
	int w;

	if (!m)
		return 0;
	ipcx_mem_trim(m);
	if (large_lock(m))
		return 0;
	for (w = NBITMAP - 1; w >= 0 && !best; w--) {
		uint64_t bits = m->bitmap[w];

		if (!bits)
			continue;
		for (o = m->bins[w * 64 + 63 - __builtin_clzll(bits)]; o && steps < 4096;
		     o = *W(m, o + 8), steps++)
			if ((*W(m, o) & ~F_MASK) > best)
				best = *W(m, o) & ~F_MASK;
	}
	ipcx_lk_unlock(&m->lk);
	return best ? best - 8 : 0;
}

/* Take every lock of the region, in order. */
static int lock_all(struct ipcx_mem *m)
{
	unsigned int c;
	int ret;

	for (c = 0; c < NCLASS; c++) {
		ret = class_lock(m, c);
		if (ret)
			goto undo;
	}
	ret = large_lock(m);
	if (!ret)
		return 0;
undo:
	while (c--)
		ipcx_lk_unlock(&m->cls[c].lk);
	return ret;
}

static void unlock_all(struct ipcx_mem *m)
{
	unsigned int c;

	ipcx_lk_unlock(&m->lk);
	for (c = NCLASS; c--;)
		ipcx_lk_unlock(&m->cls[c].lk);
}

int ipcx_mem_zero_free(struct ipcx_mem *m)
{
	uint64_t o, end;
	int ret;

	if (!m)
		return -EINVAL;
	ret = lock_all(m);
	if (ret)
		return ret;
	end = m->end;
	for (o = m->first; o < end;) {
		uint64_t h = *W(m, o), size = h & ~F_MASK;

		if (!(h & F_USED)) {
			if (size > 32)
				memset(W(m, o + 24), 0, size - 32);
		} else if (h & F_RUN) {
			struct mrun *r = run_of(m, o);
			const struct mclass *k = &m->cls[(r->magic & 0xff) % NCLASS];
			uint64_t i;

			for (i = 0; i < k->nblocks; i++)
				if (!(r->bitmap[i / 64] & (1ull << (i & 63))))
					memset((char *)r + RUN_HDR + i * k->stride, 0, k->stride);
		}
		o += size;
	}
	unlock_all(m);
	return 0;
}

int ipcx_mem_alloc_batch(struct ipcx_mem *m, const size_t *sizes, size_t n, void **out)
{
	size_t i;

	if (!m || (n && (!sizes || !out)))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		out[i] = ipcx_mem_alloc(m, sizes[i]);
		if (!out[i]) {
			while (i--) {
				ipcx_mem_free(m, out[i]);
				out[i] = NULL;
			}
			return -ENOMEM;
		}
	}
	return 0;
}

int ipcx_mem_free_batch(struct ipcx_mem *m, void *const *ptrs, size_t n)
{
	int ret = 0, r;
	size_t i;

	if (!m || (n && !ptrs))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		r = ipcx_mem_free(m, ptrs[i]);
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/* ---- allocation command ----------------------------------------------- */

/* Grow used large block @blk forward to at most @pref_need bytes (lock held). */
static void expand_fwd_locked(struct ipcx_mem *m, uint64_t blk, uint64_t pref_need)
{
	uint64_t h = *W(m, blk), size = h & ~F_MASK, nx = blk + size, nh = *W(m, nx);
	uint64_t total;

	if ((nh & F_USED) || size >= pref_need)
		return;
	total = size + (nh & ~F_MASK);
	bin_unlink(m, nx, nh & ~F_MASK);
	/* The merged span is a free block; carve the used part out of its front. */
	carve(m, blk, total, h & F_PUSED, pref_need < total ? pref_need : total);
	LW(m, &m->free_bytes, m->free_bytes + size);	/* the old part was not free */
}

static int command_large(struct ipcx_mem *m, unsigned int cmd, uint64_t limit,
			 uint64_t pref, uint64_t blk, size_t *received, void **out)
{
	uint64_t size, need_l = need_of(limit), need_p = need_of(pref), h;
	int ret;

	ret = large_lock(m);
	if (ret)
		return ret;
	h = *W(m, blk);
	size = h & ~F_MASK;
	if (cmd & IPCX_MEM_SHRINK_IN_PLACE) {
		/* @limit is the largest acceptable result, @pref the wanted one. */
		if (need_p < size && size - need_p >= MIN_BLOCK) {
			uint64_t tail = blk + need_p, tsize = size - need_p;

			LW(m, W(m, blk), need_p | (h & (F_USED | F_PUSED)));
			LW(m, W(m, tail), tsize | F_USED | F_PUSED);
			large_put(m, tail);
			size = need_p;
		}
		ret = size - 8 <= limit ? 0 : -ENOMEM;
		goto out;
	}
	ret = -ENOMEM;
	if (cmd & IPCX_MEM_EXPAND_FWD) {
		expand_fwd_locked(m, blk, need_p);
		size = *W(m, blk) & ~F_MASK;
		if (size >= need_l) {
			ret = 0;
			goto out;
		}
	}
	if ((cmd & IPCX_MEM_EXPAND_BWD) && !(*W(m, blk) & F_PUSED)) {
		uint64_t psize = *W(m, blk - 8), prev = blk - psize;
		uint64_t ppflag = *W(m, prev) & F_PUSED, fwd = 0, nh, take;

		h = *W(m, blk);
		size = h & ~F_MASK;
		nh = *W(m, blk + size);
		if ((cmd & IPCX_MEM_EXPAND_FWD) && !(nh & F_USED))
			fwd = nh & ~F_MASK;
		if (size + psize + fwd >= need_l) {
			/* Take a 16-multiple tail of prev; keep its front free if big enough. */
			take = need_p > size + fwd ? need_p - size - fwd : 0;
			take = (take + 15) & ~15ull;
			if (take > psize || psize - take < MIN_BLOCK)
				take = psize;
			bin_unlink(m, prev, psize);
			if (take < psize) {
				LW(m, W(m, prev), (psize - take) | ppflag);
				LW(m, W(m, prev + psize - take - 8), psize - take);
				bin_insert(m, prev, psize - take);
			}
			LW(m, &m->free_bytes, m->free_bytes - take);
			blk -= take;
			LW(m, W(m, blk), (size + take) | F_USED | (take < psize ? 0 : ppflag));
			if (fwd)
				expand_fwd_locked(m, blk, need_p);
			size = *W(m, blk) & ~F_MASK;
			ret = size >= need_l ? 0 : -ENOMEM;
		}
	}
out:
	ipcx_lk_unlock(&m->lk);
	if (!ret) {
		*received = size - 8;
		*out = (char *)m + blk + 8;
	}
	return ret;
}

int ipcx_mem_command(struct ipcx_mem *m, unsigned int cmd, size_t limit,
		     size_t preferred, void *reuse, size_t *received, void **out)
{
	unsigned int c = 0;
	uint64_t run = 0, blk = 0;
	size_t got = 0;
	void *p = NULL;
	int kind, ret = -ENOMEM;

	if (!m || !received || !out || !cmd ||
	    (cmd & ~(IPCX_MEM_ALLOCATE_NEW | IPCX_MEM_EXPAND_FWD | IPCX_MEM_EXPAND_BWD |
		     IPCX_MEM_SHRINK_IN_PLACE)))
		return -EINVAL;
	*out = NULL;
	*received = 0;
	if (cmd & IPCX_MEM_SHRINK_IN_PLACE) {
		if (cmd != IPCX_MEM_SHRINK_IN_PLACE || !reuse || preferred > limit)
			return -EINVAL;
	} else if (preferred < limit) {
		return -EINVAL;
	}
	if (reuse && (cmd & (IPCX_MEM_EXPAND_FWD | IPCX_MEM_EXPAND_BWD |
			     IPCX_MEM_SHRINK_IN_PLACE))) {
		kind = classify(m, reuse, &c, &run, &blk);
		if (kind < 0)
			return kind;
		if (kind == 1) {
			/* A small block has exactly its class size: it fits or not. */
			size_t have = (size_t)m->cls[c].stride;

			if ((cmd & IPCX_MEM_SHRINK_IN_PLACE) ? have <= limit : have >= limit) {
				*received = have;
				*out = reuse;
				return 0;
			}
			if (cmd & IPCX_MEM_SHRINK_IN_PLACE)
				return -ENOMEM;
		} else {
			ret = command_large(m, cmd, limit, preferred, blk, &got, &p);
			if (!ret) {
				*received = got;
				*out = p;
				return 0;
			}
			if (ret != -ENOMEM)
				return ret;
		}
	} else if (!(cmd & IPCX_MEM_ALLOCATE_NEW)) {
		return -EINVAL;
	}
	if (!(cmd & IPCX_MEM_ALLOCATE_NEW))
		return -ENOMEM;
	p = ipcx_mem_alloc(m, preferred);
	if (!p && limit < preferred)
		p = ipcx_mem_alloc(m, limit);
	if (!p)
		return -ENOMEM;
	*received = ipcx_mem_size_of(m, p);
	*out = p;
	return 0;
}

/* ---- growth ------------------------------------------------------------ */

int ipcx_mem_grow(struct ipcx_mem *m, uint64_t new_size)
{
	uint64_t old_end, new_end, sh;
	int ret;

	if (!m)
		return -EINVAL;
	new_size &= ~15ull;
	ret = large_lock(m);
	if (ret)
		return ret;
	if (new_size < m->size) {
		ipcx_lk_unlock(&m->lk);
		return -EINVAL;
	}
	old_end = m->end;
	new_end = new_size - 8;
	if (new_end - old_end < MIN_BLOCK) {
		ipcx_lk_unlock(&m->lk);
		return 0;
	}
	/* The old sentinel becomes a used block spanning the new tail, then is freed. */
	sh = *W(m, old_end);
	LW(m, W(m, new_end), F_USED | F_PUSED);
	LW(m, W(m, old_end), (new_end - old_end) | F_USED | (sh & F_PUSED));
	/*
	 * Size before end: the header passes ipcx_mem_attach() (end < size)
	 * after each store and after each step of a rollback, so a call
	 * killed here leaves a region that still opens and is repaired by
	 * its next locker (end first made it -EPROTO to every opener).
	 */
	LW(m, &m->size, new_size);
	LW(m, &m->end, new_end);
	large_put(m, old_end);
	ipcx_lk_unlock(&m->lk);
	return 0;
}

int64_t ipcx_mem_shrink_to_fit(struct ipcx_mem *m, uint64_t gran)
{
	uint64_t end, sh, last, lsize, target, new_end, rem;
	int ret;

	if (!m || !gran || (gran & (gran - 1)) || gran < 16)
		return -EINVAL;
	ipcx_mem_trim(m);
	ret = large_lock(m);
	if (ret)
		return ret;
	end = m->end;
	sh = *W(m, end);
	if (sh & F_PUSED)
		goto out;		/* the last block is in use */
	lsize = *W(m, end - 8);
	last = end - lsize;
	for (target = (last + 8 + gran - 1) & ~(gran - 1);; target += gran) {
		new_end = target - 8;
		rem = new_end - last;
		if (rem == 0 || rem >= MIN_BLOCK)
			break;
	}
	if (new_end >= end)
		goto out;
	bin_unlink(m, last, lsize);
	LW(m, &m->free_bytes, m->free_bytes - lsize + rem);
	if (rem) {
		LW(m, W(m, last), rem | (*W(m, last) & F_PUSED));
		LW(m, W(m, last + rem - 8), rem);
		bin_insert(m, last, rem);
		LW(m, W(m, new_end), F_USED);
	} else {
		LW(m, W(m, new_end), F_USED | F_PUSED);
	}
	LW(m, &m->end, new_end);
	LW(m, &m->size, target);
out:
	target = m->size;
	ipcx_lk_unlock(&m->lk);
	return (int64_t)target;
}

/* ---- sanity check ------------------------------------------------------ */

struct chk {
	const struct ipcx_mem *m;
	uint64_t lim;		/* bytes we may read */
	struct ipcx_mem_report r;
};

static void bad(struct chk *k, uint64_t off, const char *what)
{
	if (!k->r.errors++) {
		k->r.first_error = what;
		k->r.first_error_off = off;
	}
}

/* Read the word at @off if [off, off+8) is inside the region, else 0 + error. */
static uint64_t rd(struct chk *k, uint64_t off, bool *ok)
{
	if (off > k->lim || k->lim - off < 8 || (off & 7)) {
		*ok = false;
		return 0;
	}
	return *(const uint64_t *)((const char *)k->m + off);
}

static void check_run(struct chk *k, uint64_t o, uint64_t size)
{
	const struct ipcx_mem *m = k->m;
	bool ok = true;
	uint64_t magic = rd(k, o + 8, &ok), c = magic & 0xff, live, hint, w, n = 0, ck;
	uint64_t stride, nb;

	if (!ok || (magic & ~0xffull) != RUN_MAGIC || c >= NCLASS) {
		bad(k, o, "run header: bad magic or class");
		return;
	}
	stride = m->cls[c].stride;
	nb = m->cls[c].nblocks;
	if (stride != class_stride((unsigned int)c) || nb != (RUN_BLOCK - 8 - RUN_HDR) / stride) {
		bad(k, o, "size class: bad stride");
		return;
	}
	ck = (o + 8) >> CHUNK_SHIFT;
	if ((o + 8) & (CHUNK - 1) || ck >= m->nchunks || chunk_map(m)[ck] != c + 1) {
		bad(k, o, "run: not on its chunk or missing from the chunk map");
		return;
	}
	live = rd(k, o + 8 + offsetof(struct mrun, live), &ok);
	hint = rd(k, o + 8 + offsetof(struct mrun, hint), &ok);
	if (!ok || rd(k, o + 8 + offsetof(struct mrun, bsize), &ok) != size || live > nb ||
	    hint > RUN_WORDS) {
		bad(k, o, "run header: inconsistent fields");
		return;
	}
	for (w = 0; w < RUN_WORDS; w++) {
		uint64_t bits = rd(k, o + 8 + offsetof(struct mrun, bitmap) + w * 8, &ok);
		uint64_t lo = w * 64, tail = lo >= nb ? ~0ull : lo + 64 <= nb ? 0 : ~0ull << (nb - lo);

		if ((bits & tail) != tail) {
			bad(k, o, "run bitmap: bits past the last block are clear");
			return;
		}
		if (w < hint && ~bits) {
			bad(k, o, "run bitmap: free block below the hint");
			return;
		}
		n += (uint64_t)__builtin_popcountll(bits & ~tail);
	}
	k->r.runs++;
	k->r.small_live += n;
	if (n != live)
		bad(k, o, "run: live count disagrees with the bitmap");
	if (!rd(k, o + 8 + offsetof(struct mrun, linked), &ok) && live < nb)
		k->r.leaked++;	/* a run nobody can allocate from */
}

int ipcx_mem_check(struct ipcx_mem *m, struct ipcx_mem_report *rep, unsigned int flags)
{
	struct chk k = { .m = m };
	uint64_t o, end, prev_used = 1, steps, nbinned = 0;
	uint64_t class_live = 0;
	unsigned int b, c;
	bool ok = true, locked = false;
	int ret;

	if (!m)
		return -EINVAL;
	if (ipcx_mem_attach(m, m->size))
		return -EPROTO;
	if (!(flags & IPCX_MEM_CHECK_NOLOCK)) {
		ret = lock_all(m);
		if (ret)
			return ret;
		locked = true;
	}
	k.lim = m->size;
	end = m->end;
	if (end >= k.lim || end < m->first) {
		bad(&k, end, "header: end out of range");
		goto done;
	}
	for (o = m->first; o < end;) {
		uint64_t h = rd(&k, o, &ok), size = h & ~F_MASK;

		if (!ok || size < MIN_BLOCK || size > end - o || (h & 4)) {
			bad(&k, o, "block header: bad size or flags");
			goto done;
		}
		k.r.blocks++;
		if (!!(h & F_PUSED) != !!prev_used)
			bad(&k, o, "block header: previous-used bit disagrees");
		if (!(h & F_USED)) {
			if (rd(&k, o + size - 8, &ok) != size)
				bad(&k, o, "free block: footer disagrees");
			if (!prev_used)
				bad(&k, o, "free block: not coalesced with its free neighbour");
			if (h & F_RUN)
				bad(&k, o, "free block marked as a run");
			k.r.free_blocks++;
			k.r.free_bytes += size;
		} else if (h & F_RUN) {
			if (size < RUN_BLOCK)
				bad(&k, o, "run smaller than a run");
			else
				check_run(&k, o, size);
		} else {
			k.r.used_blocks++;
		}
		prev_used = h & F_USED;
		o += size;
	}
	if (o != end)
		bad(&k, o, "blocks overrun the sentinel");
	if (!(rd(&k, end, &ok) & F_USED) || !!(rd(&k, end, &ok) & F_PUSED) != !!prev_used)
		bad(&k, end, "sentinel");
	/* Every bin list: blocks in range, free, in the right bin, prev links right. */
	for (b = 0; b < NBINS; b++) {
		uint64_t pv = 0, n;

		o = m->bins[b];
		if (!!o != !!(m->bitmap[b / 64] & (1ull << (b % 64))))
			bad(&k, b, "bin bitmap disagrees with bin head");
		for (n = 0; o; n++) {
			uint64_t h = rd(&k, o, &ok);

			if (!ok || o < m->first || o >= end || (o & 15) != 8 || (h & F_USED) ||
			    bin_of(h & ~F_MASK) != b || n > k.r.free_blocks) {
				bad(&k, o, "bin list: bad entry");
				break;
			}
			if (rd(&k, o + 16, &ok) != pv)
				bad(&k, o, "bin list: bad prev link");
			nbinned++;
			pv = o;
			o = rd(&k, o + 8, &ok);
		}
	}
	if (nbinned != k.r.free_blocks)
		bad(&k, 0, "free blocks missing from the bins");
	if (k.r.free_bytes != m->free_bytes)
		bad(&k, 0, "free byte counter disagrees");
	if (k.r.used_blocks != m->used_blocks)
		bad(&k, 0, "used block counter disagrees");
	for (c = 0; c < NCLASS; c++) {
		steps = 0;
		class_live += m->cls[c].live;
		for (o = m->cls[c].partial; o && steps <= k.r.runs; steps++) {
			if (o < m->first || o >= end || (o & 15) != 8 ||
			    (rd(&k, o, &ok) & (F_RUN | F_USED)) != (F_RUN | F_USED) ||
			    rd(&k, o + 8, &ok) != (RUN_MAGIC | c)) {
				bad(&k, o, "class partial list: bad run");
				break;
			}
			o = rd(&k, o + 8 + offsetof(struct mrun, next), &ok);
		}
		if (steps > k.r.runs)
			bad(&k, c, "class partial list: cycle");
	}
	if (class_live != k.r.small_live)
		bad(&k, 0, "small live counter disagrees");
	{
		const uint8_t *map = chunk_map(m);
		uint64_t i, nm = 0;

		for (i = 0; i < m->nchunks; i++)
			nm += map[i] != 0;
		if (nm != k.r.runs)
			bad(&k, 0, "chunk map disagrees with the runs");
	}
	k.r.repairs = m->lk.repairs;
	for (c = 0; c < NCLASS; c++)
		k.r.repairs += m->cls[c].lk.repairs;
done:
	if (locked)
		unlock_all(m);
	if (rep) {
		size_t n = rep->sz && rep->sz < sizeof(k.r) ? rep->sz : sizeof(k.r);

		k.r.sz = n;
		memcpy(rep, &k.r, n);
	}
	return k.r.errors ? -EUCLEAN : 0;
}
