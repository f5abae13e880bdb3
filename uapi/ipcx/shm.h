/* SPDX-License-Identifier: MIT */
/*
 * ipcx/shm.h - shared memory: named objects, memfd segments with seals,
 * mapped files, mapped regions (hugepages, prefault, mlock, address-space
 * reservation), anonymous shared memory for fork, System V (XSI) segments.
 *
 * The objects (named shm, memfd, files, XSI) hold memory; a struct
 * ipcx_region maps one of them into this process. Every call returns 0 (or
 * a value) on success and a negative errno on failure, and a failed call
 * leaves nothing behind: no file, no mapping, no file descriptor.
 * All file descriptors made by ipcx are close-on-exec.
 */
#ifndef IPCX_SHM_H
#define IPCX_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcx/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Hugepage policy of a segment or mapping.
 *
 * IPCX_HUGE_PREFER uses hugetlb pages when the pool can supply them, else
 * asks for transparent huge pages (2 MiB-aligned mapping + MADV_HUGEPAGE),
 * else normal pages. IPCX_HUGE_REQUIRE accepts hugetlb pages only, the one
 * kind the kernel guarantees (THP may silently fall back at fault time):
 * an empty pool is -ENOMEM, an object that cannot hold hugetlb pages (a
 * tmpfs file) is -EOPNOTSUPP.
 */
enum ipcx_huge {
	IPCX_HUGE_NONE		= 0,
	IPCX_HUGE_PREFER	= 1,
	IPCX_HUGE_REQUIRE	= 2,
};

/* Hugetlb page sizes, as log2 of the size (0 in an opts struct = 2 MiB). */
#define IPCX_HUGE_2MB		21
#define IPCX_HUGE_1GB		30

/**
 * ipcx_page_size() - the system's base page size in bytes
 *
 * Return: the page size (4096 on x86-64).
 */
IPCX_API size_t ipcx_page_size(void);

/**
 * ipcx_hugetlbfs_dir() - find a mounted hugetlbfs for a page size
 * @huge_shift: log2 of the hugetlb page size (0 = 2 MiB)
 * @buf: where to store the mount point
 * @len: size of @buf
 *
 * Return: 0 and the mount point in @buf; -ENOENT if no hugetlbfs of that
 * page size is mounted; -ENAMETOOLONG if @buf is too small; -EINVAL on bad
 * arguments.
 */
IPCX_API int ipcx_hugetlbfs_dir(unsigned int huge_shift, char *buf, size_t len);

/* ---- names of named objects -------------------------------------------- */

/**
 * ipcx_shm_dir() - the directory named objects live in
 *
 * Return: $IPCX_SHM_DIR when set and non-empty (ignored in set-uid
 * programs), else "/dev/shm". Never NULL.
 */
IPCX_API const char *ipcx_shm_dir(void);

/**
 * ipcx_named_kind() - which kind of ipcx object a file name belongs to
 * @filename: a file name in the shm directory, e.g. "ipcx.shm.orders"
 * @name: if not NULL, receives a pointer to the object name in @filename
 *
 * Return: the enum ipcx_kind (> 0) when @filename carries a kind's prefix
 * and a valid object name; -ENOENT otherwise; -EINVAL for NULL.
 */
IPCX_API int ipcx_named_kind(const char *filename, const char **name);

/**
 * ipcx_kind_name() - short name of an object kind
 * @kind: enum ipcx_kind
 *
 * Return: a static string ("shm", "mutex", "mq", ...), or "?" for an
 * unknown kind.
 */
IPCX_API const char *ipcx_kind_name(int kind);

/* ---- named shared memory objects -------------------------------------- */

struct ipcx_shm;

/*
 * Don't reserve pages on create or grow: the object is sparse, like
 * shm_open+ftruncate. Cheaper to create (reserving costs about 1 us per
 * 4 KiB page on a VM), but a full tmpfs then means SIGBUS on first touch
 * instead of -ENOSPC at creation.
 */
#define IPCX_SHM_NORESERVE	0x1u

struct ipcx_shm_opts {
	size_t sz;		/* sizeof(struct ipcx_shm_opts): use IPCX_OPTS() */
	uint32_t perm;		/* permissions on create; 0 = IPCX_DEFAULT_PERM (0600) */
	uint32_t flags;		/* IPCX_SHM_NORESERVE */
	uint64_t size;		/* bytes on create (pages reserved); 0 = empty */
	const char *dir;	/* directory; NULL = $IPCX_SHM_DIR or /dev/shm */
	uint32_t huge;		/* enum ipcx_huge: dir NULL -> a hugetlbfs mount */
	uint32_t huge_shift;	/* hugetlb page size (log2); 0 = 2 MiB */
};

/**
 * ipcx_shm_open() - open or atomically create a named shared memory object
 * @out: receives the handle
 * @name: object name (letters, digits, '.', '_', '-'; at most IPCX_NAME_MAX)
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE, optionally
 *	  | IPCX_READ_ONLY (open paths only)
 * @opts: options, or NULL for defaults
 *
 * A created object is built unnamed, given its permissions exactly (umask
 * does not apply), sized with its pages reserved (unless
 * IPCX_SHM_NORESERVE) and only then published under its name, so nobody
 * ever opens a half-built object; a creator that loses a race opens the
 * winner's object (open-or-create). With @opts->huge and no @opts->dir the
 * object lives in a mounted hugetlbfs of the requested page size (PREFER
 * falls back to the shm directory if none is mounted). Sizes on hugetlbfs
 * are rounded up to the hugepage size.
 *
 * Return: 0; -EEXIST (create-only, name taken); -ENOENT (open-only, no such
 * object); -EINVAL (bad name, mode or opts); -ENOSPC (the filesystem cannot
 * hold @opts->size); -EACCES; -E2BIG (unknown non-zero opts fields);
 * -EOPNOTSUPP (huge REQUIRE and no hugetlbfs mounted); -ENOMEM.
 */
IPCX_API int ipcx_shm_open(struct ipcx_shm **out, const char *name, unsigned int mode,
			   const struct ipcx_shm_opts *opts);

/**
 * ipcx_shm_close() - release a handle (the object and its mappings stay)
 * @shm: handle, or NULL
 *
 * Return: 0.
 */
IPCX_API int ipcx_shm_close(struct ipcx_shm *shm);

/**
 * ipcx_shm_fd() - the object's file descriptor (owned by the handle)
 * @shm: handle
 *
 * Return: the fd, or -EINVAL for NULL.
 */
IPCX_API int ipcx_shm_fd(const struct ipcx_shm *shm);

/**
 * ipcx_shm_created() - whether ipcx_shm_open() created the object
 * @shm: handle
 *
 * Return: true if this handle's open created it.
 */
IPCX_API bool ipcx_shm_created(const struct ipcx_shm *shm);

/**
 * ipcx_shm_size() - current size of the object
 * @shm: handle
 * @size: receives the size in bytes
 *
 * Return: 0, or -EINVAL / -errno from fstat.
 */
IPCX_API int ipcx_shm_size(const struct ipcx_shm *shm, uint64_t *size);

/**
 * ipcx_shm_truncate() - set the object's size
 * @shm: handle (opened read-write)
 * @size: new size in bytes
 *
 * Growing reserves the new pages (unless the object was opened with
 * IPCX_SHM_NORESERVE), so a full filesystem is -ENOSPC now rather than
 * SIGBUS later. Shrinking below a peer's mapping makes the peer fault on
 * the cut part: prefer sealed memfd segments when peers are untrusted.
 *
 * Return: 0; -EBADF (read-only handle); -ENOSPC; -EINVAL; -EPERM (sealed).
 */
IPCX_API int ipcx_shm_truncate(struct ipcx_shm *shm, uint64_t size);

/**
 * ipcx_shm_unlink() - remove a named object's name
 * @name: object name
 * @dir: directory, or NULL for the shm directory
 *
 * Open handles and mappings stay valid; the name can be created again at
 * once; the memory is freed when the last handle and mapping go.
 *
 * Return: 0; -ENOENT; -EINVAL (bad name); -EACCES.
 */
IPCX_API int ipcx_shm_unlink(const char *name, const char *dir);

/* ---- anonymous segments on memfd -------------------------------------- */

/* Flags of struct ipcx_memfd_opts. */
#define IPCX_MEMFD_FIXED	0x1u	/* seal growing too: the size never changes */
#define IPCX_MEMFD_NOEXEC	0x2u	/* noexec seal (MFD_NOEXEC_SEAL) where the kernel has it */
#define IPCX_MEMFD_NOSEAL	0x4u	/* no seals at all: anyone may shrink (SIGBUS risk) */
#define IPCX_MEMFD_NORESERVE	0x8u	/* sparse: pages not reserved at creation */
#define IPCX_MEMFD_SEAL_SEAL	0x10u	/* freeze the seal set (F_SEAL_SEAL) */

struct ipcx_memfd_opts {
	size_t sz;		/* sizeof(struct ipcx_memfd_opts): use IPCX_OPTS() */
	const char *name;	/* shown as /memfd:NAME in /proc; NULL = "ipcx" */
	uint64_t size;		/* bytes (must be > 0) */
	uint32_t flags;		/* IPCX_MEMFD_* */
	uint32_t huge;		/* enum ipcx_huge: MFD_HUGETLB */
	uint32_t huge_shift;	/* hugetlb page size (log2); 0 = 2 MiB */
	uint32_t reserved;	/* must be 0 */
};

/**
 * ipcx_memfd_new() - create an anonymous shared memory segment
 * @opts: options (size is required)
 *
 * The segment is a memfd sized to @opts->size with its pages reserved
 * (-ENOSPC / -ENOMEM now rather than SIGBUS later) and sealed against
 * shrinking (F_SEAL_SHRINK; with IPCX_MEMFD_FIXED also F_SEAL_GROW), so no
 * holder, however it got the fd, can truncate it under a peer's mapping.
 * Share it by fork, ipcx_fd_send() over a Unix socket, or
 * ipcx_fd_open_pid(). With huge PREFER/REQUIRE the memfd is MFD_HUGETLB
 * (size rounded up to the hugepage size) when the pool can back it; PREFER
 * falls back to normal pages, REQUIRE fails with -ENOMEM.
 *
 * Return: a close-on-exec fd; -EINVAL (size 0, bad flags); -ENOSPC;
 * -ENOMEM (huge REQUIRE: the pool cannot back the size); -EOPNOTSUPP (huge
 * REQUIRE: no hugetlb pages of that size on this system); -E2BIG.
 */
IPCX_API int ipcx_memfd_new(const struct ipcx_memfd_opts *opts);

/**
 * ipcx_memfd_resize() - change the size of a memfd segment
 * @fd: the segment
 * @size: new size in bytes
 *
 * Growing reserves the new pages (fallocate).
 *
 * Return: 0; -EPERM (sealed against this change); -ENOSPC; -EINVAL.
 */
IPCX_API int ipcx_memfd_resize(int fd, uint64_t size);

/**
 * ipcx_memfd_seals() - the seals set on a memfd (F_SEAL_* bits)
 * @fd: the segment
 *
 * Return: the seal mask (>= 0), or -EINVAL for a file without sealing.
 */
IPCX_API int ipcx_memfd_seals(int fd);

/**
 * ipcx_fd_send() - pass a file descriptor over a connected Unix socket
 * @sock: AF_UNIX stream or datagram socket
 * @fd: descriptor to send (the caller keeps its own copy)
 *
 * Sends one data byte with an SCM_RIGHTS message.
 *
 * Return: 0; -EBADF; -EPIPE / -ECONNRESET (peer gone); -errno of sendmsg.
 */
IPCX_API int ipcx_fd_send(int sock, int fd);

/**
 * ipcx_fd_recv() - receive a file descriptor sent with ipcx_fd_send()
 * @sock: AF_UNIX socket
 *
 * Return: the new close-on-exec fd; -ENODATA (peer closed, or a message
 * without a descriptor); -EPROTO (malformed control data); -errno of
 * recvmsg.
 */
IPCX_API int ipcx_fd_recv(int sock);

/**
 * ipcx_fd_open_pid() - open another process's descriptor via /proc/PID/fd/N
 * @pid: process holding the descriptor
 * @fd: its descriptor number
 * @flags: IPCX_READ_ONLY for a read-only open, else 0 (read-write)
 *
 * Opens a new file description of the same object (seals still apply).
 *
 * Return: a close-on-exec fd; -ENOENT (no such process or fd); -EACCES
 * (other user, or the holder is not dumpable); -EINVAL.
 */
IPCX_API int ipcx_fd_open_pid(pid_t pid, int fd, unsigned int flags);

/* ---- mapped files ------------------------------------------------------ */

struct ipcx_file_opts {
	size_t sz;		/* sizeof(struct ipcx_file_opts): use IPCX_OPTS() */
	uint32_t perm;		/* permissions on create; 0 = 0600 */
	uint32_t flags;		/* must be 0 */
	uint64_t size;		/* bytes on create, reserved with fallocate */
};

/**
 * ipcx_file_open() - open or create a file to map
 * @path: file path
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE, optionally
 *	  | IPCX_READ_ONLY (open paths only)
 * @opts: options, or NULL
 *
 * A created file is built unnamed where the filesystem allows (O_TMPFILE),
 * sized with its blocks reserved (-ENOSPC now instead of SIGBUS later) and
 * then linked to @path; elsewhere it is created exclusively and removed
 * again if sizing fails. Permissions are applied exactly.
 *
 * Return: a close-on-exec fd; -EEXIST; -ENOENT; -ENOSPC; -EINVAL; -EACCES;
 * -E2BIG; other -errno of open.
 */
IPCX_API int ipcx_file_open(const char *path, unsigned int mode,
			    const struct ipcx_file_opts *opts);

/**
 * ipcx_file_unlink() - remove a file (mappings of it stay valid)
 * @path: file path
 *
 * Return: 0, -ENOENT, -EINVAL, -errno of unlink.
 */
IPCX_API int ipcx_file_unlink(const char *path);

/* ---- mapped regions ---------------------------------------------------- */

struct ipcx_region;
struct ipcx_reserve;

/* Region flags (besides IPCX_READ_ONLY and IPCX_COPY_ON_WRITE). */
#define IPCX_MAP_PREFAULT	0x1u	/* populate page tables now (MAP_POPULATE) */
#define IPCX_MAP_LOCK		0x2u	/* mlock the pages (no page faults later) */
#define IPCX_MAP_COLLAPSE	0x4u	/* with huge PREFER and THP: MADV_COLLAPSE after
					 * prefault (slow: ms per MiB, for long-lived maps) */

struct ipcx_region_opts {
	size_t sz;		/* sizeof(struct ipcx_region_opts): use IPCX_OPTS() */
	uint64_t offset;	/* byte offset in the object (any alignment) */
	uint64_t size;		/* bytes; 0 = to the end of the object */
	void *addr;		/* fixed address of byte @offset, or NULL */
	uint32_t flags;		/* IPCX_READ_ONLY | IPCX_COPY_ON_WRITE | IPCX_MAP_* */
	uint32_t huge;		/* enum ipcx_huge */
	uint32_t huge_shift;	/* anonymous hugetlb page size (log2); 0 = 2 MiB */
	uint32_t reserved;	/* must be 0 */
	struct ipcx_reserve *reserve;	/* map at the start of this reservation */
};

/**
 * ipcx_region_map() - map an object (shm, memfd, file) into memory
 * @out: receives the region
 * @fd: the object's descriptor (it may be closed after mapping)
 * @opts: options, or NULL (the whole object, read-write, shared)
 *
 * The region starts exactly at @opts->offset and is exactly @opts->size
 * bytes, whatever the page alignment; only whole pages are mapped
 * underneath. A mapping never extends past the object's end (that part
 * would SIGBUS). With @opts->addr the mapping is placed there or fails
 * with -EBUSY when any of the range is taken (nothing is replaced and
 * nothing is left mapped). With @opts->reserve it is placed at the start of
 * the reservation and can later grow in place with ipcx_region_grow().
 *
 * Return: 0; -EINVAL (empty object, range past the end, bad flags or
 * alignment); -EBUSY (fixed range taken); -EACCES (write map of a
 * read-only fd); -ENOMEM (no hugepages for REQUIRE, address space, mlock
 * limit); -EOPNOTSUPP (huge REQUIRE on an object without hugetlb pages);
 * -EPERM (write map of a write-sealed memfd); -ENOSPC (reservation too
 * small); -E2BIG.
 */
IPCX_API int ipcx_region_map(struct ipcx_region **out, int fd,
			     const struct ipcx_region_opts *opts);

/**
 * ipcx_region_map_anon() - shared anonymous memory, inherited by fork
 * @out: receives the region
 * @size: bytes (> 0)
 * @opts: options (offset must be 0; huge, flags, addr, reserve honoured),
 *	  or NULL
 *
 * MAP_SHARED|MAP_ANONYMOUS: parent and children forked afterwards share it;
 * it has no name and no fd. Huge PREFER/REQUIRE use MAP_HUGETLB.
 *
 * Return: as ipcx_region_map().
 */
IPCX_API int ipcx_region_map_anon(struct ipcx_region **out, uint64_t size,
				  const struct ipcx_region_opts *opts);

/**
 * ipcx_region_unmap() - unmap a region and free the handle
 * @r: region, or NULL
 *
 * A region inside a reservation gives its range back to the reservation
 * (inaccessible again, still reserved).
 *
 * Return: 0, or -errno of munmap/shmdt (the handle is freed anyway).
 */
IPCX_API int ipcx_region_unmap(struct ipcx_region *r);

/**
 * ipcx_region_addr() - address of the region's first byte (of @offset)
 * @r: region
 *
 * Return: the address, or NULL for NULL.
 */
IPCX_API void *ipcx_region_addr(const struct ipcx_region *r);

/**
 * ipcx_region_size() - size of the region in bytes, as asked
 * @r: region
 *
 * Return: the size, or 0 for NULL.
 */
IPCX_API size_t ipcx_region_size(const struct ipcx_region *r);

/**
 * ipcx_region_page_size() - granularity of the region's mapping
 * @r: region
 *
 * Return: the hugetlb page size for hugetlb-backed regions, 2 MiB when
 * transparent huge pages were requested and the mapping is aligned for
 * them (use ipcx_region_huge_bytes() to see what the kernel gave), else
 * the base page size; 0 for NULL.
 */
IPCX_API size_t ipcx_region_page_size(const struct ipcx_region *r);

/**
 * ipcx_region_huge_bytes() - bytes of the region the kernel backs with
 * huge pages right now (hugetlb or PMD-mapped THP), from /proc/self/smaps
 * @r: region
 * @bytes: receives the count
 *
 * Slow (reads smaps): for diagnostics and tests, not fast paths.
 *
 * Return: 0, -EINVAL, or -errno reading /proc.
 */
IPCX_API int ipcx_region_huge_bytes(const struct ipcx_region *r, uint64_t *bytes);

enum ipcx_advice {
	IPCX_ADV_NORMAL		= 0,
	IPCX_ADV_SEQUENTIAL	= 1,
	IPCX_ADV_RANDOM		= 2,
	IPCX_ADV_WILLNEED	= 3,
	IPCX_ADV_DONTNEED	= 4,	/* only where non-destructive (shared maps) */
	IPCX_ADV_HUGEPAGE	= 5,
	IPCX_ADV_NOHUGEPAGE	= 6,
};

/**
 * ipcx_region_advise() - tell the kernel how a region will be used
 * @r: region
 * @advice: enum ipcx_advice
 *
 * IPCX_ADV_DONTNEED drops this process's page table entries only (the data
 * stays in the object); it is refused (-EINVAL) on copy-on-write regions,
 * where it would discard the private copies.
 *
 * Return: 0; -EINVAL; -errno of madvise.
 */
IPCX_API int ipcx_region_advise(struct ipcx_region *r, enum ipcx_advice advice);

/**
 * ipcx_region_flush() - write back a range of a file mapping
 * @r: region
 * @offset: byte offset in the region
 * @len: bytes; 0 = to the end of the region
 * @async: true: schedule the write-back (MS_ASYNC), false: wait for it
 *
 * Return: 0; -EINVAL (range outside the region); -EIO; -errno of msync.
 */
IPCX_API int ipcx_region_flush(struct ipcx_region *r, size_t offset, size_t len,
			       bool async);

/**
 * ipcx_region_shrink() - unmap the first or last @bytes of a region
 * @r: region
 * @bytes: bytes to drop (< the region's size)
 * @from_front: true: drop the beginning (the address moves up), false: end
 *
 * Whole pages that fall out of the region are unmapped; a partial page
 * stays mapped underneath but is no longer part of the region.
 *
 * Return: 0; -EINVAL (bytes 0 or >= size, XSI region); -errno of munmap.
 */
IPCX_API int ipcx_region_shrink(struct ipcx_region *r, size_t bytes, bool from_front);

/**
 * ipcx_region_grow() - extend a region in place, keeping its address
 * @r: region of an object (not anonymous, not XSI)
 * @fd: a descriptor of the same object (checked)
 * @new_size: new size in bytes (>= the current size)
 *
 * Maps the object's following bytes right after the region. Inside a
 * reservation this always succeeds while the reservation is big enough;
 * elsewhere the range after the region must be free. The object must
 * already be at least offset + @new_size long (grow it first).
 *
 * Return: 0; -ENOSPC (past the reservation); -EBUSY (range taken);
 * -EINVAL (object too short, another object, anonymous region); -EBADF;
 * -errno
 * of mmap. On failure the region is unchanged.
 */
IPCX_API int ipcx_region_grow(struct ipcx_region *r, int fd, size_t new_size);

/**
 * ipcx_reserve_new() - reserve address space for a segment to grow into
 * @out: receives the reservation
 * @size: bytes of address space (rounded up to pages; nothing is committed)
 * @align: alignment of the start (power of two, 0 = page; 2 MiB lets huge
 *	   pages map)
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
IPCX_API int ipcx_reserve_new(struct ipcx_reserve **out, size_t size, size_t align);

/**
 * ipcx_reserve_free() - release a reservation and everything mapped in it
 * @res: reservation, or NULL
 *
 * Unmap the reservation's regions first; a region still mapped in it is
 * unmapped with it and its handle then only frees memory on unmap.
 *
 * Return: 0 or -errno of munmap (the handle is freed anyway).
 */
IPCX_API int ipcx_reserve_free(struct ipcx_reserve *res);

/**
 * ipcx_reserve_addr() - start address of a reservation
 * @res: reservation
 *
 * Return: the address, or NULL for NULL.
 */
IPCX_API void *ipcx_reserve_addr(const struct ipcx_reserve *res);

/**
 * ipcx_reserve_size() - size of a reservation in bytes
 * @res: reservation
 *
 * Return: the size, or 0 for NULL.
 */
IPCX_API size_t ipcx_reserve_size(const struct ipcx_reserve *res);

/* ---- System V (XSI) shared memory --------------------------------------- */

/**
 * ipcx_xsi_key() - key of an XSI object from a path and an id (ftok rules)
 * @path: an existing file
 * @id: project id, 1..255
 * @key: receives the key
 *
 * Return: 0; -EINVAL (@id 0, NULL); -ENOENT and other -errno of stat.
 */
IPCX_API int ipcx_xsi_key(const char *path, unsigned int id, key_t *key);

struct ipcx_xsi_opts {
	size_t sz;		/* sizeof(struct ipcx_xsi_opts): use IPCX_OPTS() */
	uint64_t size;		/* bytes on create */
	uint32_t perm;		/* permissions on create; 0 = 0600 */
	uint32_t huge;		/* enum ipcx_huge: SHM_HUGETLB */
};

/**
 * ipcx_xsi_open() - open or create an XSI shared memory segment by key
 * @key: from ipcx_xsi_key(), or IPC_PRIVATE (always a new segment)
 * @mode: IPCX_CREATE_ONLY, IPCX_OPEN_ONLY or IPCX_OPEN_OR_CREATE
 * @opts: options (size needed to create), or NULL
 *
 * Return: the segment id (>= 0); -EEXIST; -ENOENT; -EINVAL (size 0 on
 * create, or larger than SHMMAX); -ENOSPC (system limits); -EACCES; -ENOMEM.
 */
IPCX_API int ipcx_xsi_open(key_t key, unsigned int mode, const struct ipcx_xsi_opts *opts);

/**
 * ipcx_xsi_size() - size of an XSI segment
 * @shmid: segment id
 * @size: receives the size
 *
 * Return: 0; -EINVAL (no such id); -EACCES.
 */
IPCX_API int ipcx_xsi_size(int shmid, uint64_t *size);

/**
 * ipcx_xsi_map() - attach a whole XSI segment (XSI maps whole segments only)
 * @out: receives the region
 * @shmid: segment id
 * @flags: IPCX_READ_ONLY or 0
 * @addr: fixed address or NULL (then -EBUSY if taken)
 *
 * Return: 0; -EINVAL; -EACCES; -EIDRM (removed); -EBUSY; -ENOMEM.
 */
IPCX_API int ipcx_xsi_map(struct ipcx_region **out, int shmid, unsigned int flags,
			  void *addr);

/**
 * ipcx_xsi_remove() - remove an XSI segment (attached maps stay valid)
 * @shmid: segment id
 *
 * Return: 0; -EINVAL (no such id); -EPERM (not owner or creator).
 */
IPCX_API int ipcx_xsi_remove(int shmid);

#ifdef __cplusplus
}
#endif
#endif /* IPCX_SHM_H */
