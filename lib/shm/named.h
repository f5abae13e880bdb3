/* SPDX-License-Identifier: MIT */
/*
 * named.h - private: names, the shm directory, and atomic publication of
 * named objects. Every named kind (shm objects, named sync objects, queues,
 * managed segments) is created through ipcx_named_open().
 */
#ifndef IPCX_SHM_NAMED_H
#define IPCX_SHM_NAMED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcx/common.h>
#include <ipcx/layout.h>
#include <ipcx/shm.h>

#define IPCX_SHM_DIR_ENV	"IPCX_SHM_DIR"
#define IPCX_SHM_DIR_DEFAULT	"/dev/shm"
#define IPCX_PATH_MAX		4096

/* Size the new object with ftruncate only (sparse, no pages reserved). */
#define IPCX_NAMED_NORESERVE	0x1u

struct ipcx_named_req {
	enum ipcx_kind kind;
	const char *name;
	unsigned int mode;	/* enum ipcx_open_mode | IPCX_READ_ONLY */
	mode_t perm;		/* 0 = IPCX_DEFAULT_PERM */
	uint64_t size;		/* bytes reserved on create (0: leave empty) */
	unsigned int flags;	/* IPCX_NAMED_NORESERVE */
	const char *dir;	/* NULL = ipcx_shm_dir() */
	/*
	 * Builds the object in the still-unnamed file before it is published.
	 * Return 0 or -errno (the file is then discarded, nothing is named).
	 */
	int (*init)(int fd, void *arg);
	void *arg;
};

/* 0 if @name is a valid object name, -EINVAL otherwise. */
int ipcx_name_check(const char *name);

/* The shm directory: $IPCX_SHM_DIR or /dev/shm (public, in ipcx/shm.h). */

/* Kind's file prefix ("ipcx.shm."), or NULL for an unknown kind. */
const char *ipcx_kind_prefix(enum ipcx_kind kind);

/* Full path of a named object; -EINVAL bad name, -ENAMETOOLONG. */
int ipcx_named_path(enum ipcx_kind kind, const char *name, const char *dir,
		    char *buf, size_t len);

/*
 * Open or atomically create a named object. On create, the file is made
 * unnamed (O_TMPFILE), given its permissions exactly (fchmod), sized with
 * its pages reserved (fallocate: a full tmpfs is -ENOSPC now, not SIGBUS
 * later), built by req->init, and only then linked to its name; losing a
 * create race to another process opens the winner's object when the mode
 * allows it. For kinds other than IPCX_KIND_SHM, an opened object's common
 * header is checked (-EPROTO on a foreign or newer layout).
 *
 * Return: an O_CLOEXEC fd, or -errno. *@created says which path was taken.
 */
int ipcx_named_open(const struct ipcx_named_req *req, bool *created);

/*
 * Create the file @path atomically: built unnamed in @dir (O_TMPFILE), given
 * @perm exactly, sized to @size (reserved unless IPCX_NAMED_NORESERVE),
 * built by @init (may be NULL), then linked to @path (-EEXIST if taken).
 * Where @dir's filesystem has no O_TMPFILE and @fallback_excl is set, the
 * file is created with O_EXCL instead and removed again on failure.
 * Return: an O_CLOEXEC O_RDWR fd, or -errno; nothing is left on failure.
 */
int ipcx_create_file(const char *dir, const char *path, mode_t perm, uint64_t size,
		     unsigned int flags, int (*init)(int fd, void *arg), void *arg,
		     bool fallback_excl);

/*
 * Give an fd @size bytes: fallocate (pages reserved) unless @noreserve or
 * the filesystem lacks it, else ftruncate; hugetlbfs sizes are rounded up
 * to the hugepage size. Shrinking always uses ftruncate.
 */
int ipcx_fd_set_size(int fd, uint64_t size, bool noreserve);

/* Remove a named object's name; -ENOENT if absent. */
int ipcx_named_unlink(enum ipcx_kind kind, const char *name, const char *dir);

/* Fill the common header for a new object of @kind. */
void ipcx_obj_header_init(struct ipcx_obj_header *h, enum ipcx_kind kind,
			  uint32_t header_size, uint64_t total_size);

/* 0 if @h is a header of @kind this library understands, else -EPROTO. */
int ipcx_obj_header_check(const struct ipcx_obj_header *h, enum ipcx_kind kind);

#endif /* IPCX_SHM_NAMED_H */
