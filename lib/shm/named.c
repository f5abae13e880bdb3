// SPDX-License-Identifier: MIT
/*
 * named.c - names and atomic publication of named objects.
 *
 * Why O_TMPFILE + linkat: the object is complete before anyone can open it,
 * so openers never see a half-built object and no "initialising" state with
 * polling is needed. linkat() fails with EEXIST if the name appeared in the
 * meantime, which makes create-only atomic.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "named.h"
#include "../sys/sys.h"

static const char *const kind_prefix[IPCX_KIND_MAX] = {
	[IPCX_KIND_SHM]		= "ipcx.shm.",
	[IPCX_KIND_MUTEX]	= "ipcx.mtx.",
	[IPCX_KIND_RMUTEX]	= "ipcx.rmtx.",
	[IPCX_KIND_COND]	= "ipcx.cond.",
	[IPCX_KIND_SEM]		= "ipcx.sem.",
	[IPCX_KIND_RWLOCK]	= "ipcx.rw.",
	[IPCX_KIND_UPGRADABLE]	= "ipcx.upg.",
	[IPCX_KIND_BARRIER]	= "ipcx.bar.",
	[IPCX_KIND_MQ]		= "ipcx.mq.",
	[IPCX_KIND_MANAGED]	= "ipcx.seg.",
};

int ipcx_name_check(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	for (n = 0; name[n]; n++) {
		char c = name[n];

		if (n >= IPCX_NAME_MAX)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	/* "." and ".." are harmless behind the prefix but never meant. */
	if (n == 0 || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

const char *ipcx_shm_dir(void)
{
	const char *d = secure_getenv(IPCX_SHM_DIR_ENV);

	return d && *d ? d : IPCX_SHM_DIR_DEFAULT;
}

const char *ipcx_kind_prefix(enum ipcx_kind kind)
{
	if ((unsigned int)kind >= IPCX_KIND_MAX)
		return NULL;
	return kind_prefix[kind];
}

static const char *const kind_name[IPCX_KIND_MAX] = {
	[IPCX_KIND_SHM]		= "shm",
	[IPCX_KIND_MUTEX]	= "mutex",
	[IPCX_KIND_RMUTEX]	= "rmutex",
	[IPCX_KIND_COND]	= "cond",
	[IPCX_KIND_SEM]		= "sem",
	[IPCX_KIND_RWLOCK]	= "rwlock",
	[IPCX_KIND_UPGRADABLE]	= "upgradable",
	[IPCX_KIND_BARRIER]	= "barrier",
	[IPCX_KIND_MQ]		= "mq",
	[IPCX_KIND_MANAGED]	= "managed",
};

const char *ipcx_kind_name(int kind)
{
	if (kind <= 0 || kind >= IPCX_KIND_MAX || !kind_name[kind])
		return "?";
	return kind_name[kind];
}

int ipcx_named_kind(const char *filename, const char **name)
{
	int k;

	if (!filename)
		return -EINVAL;
	for (k = 1; k < IPCX_KIND_MAX; k++) {
		size_t n;

		if (!kind_prefix[k])
			continue;
		n = strlen(kind_prefix[k]);
		if (strncmp(filename, kind_prefix[k], n) || ipcx_name_check(filename + n))
			continue;
		if (name)
			*name = filename + n;
		return k;
	}
	return -ENOENT;
}

int ipcx_named_path(enum ipcx_kind kind, const char *name, const char *dir,
		    char *buf, size_t len)
{
	const char *prefix = ipcx_kind_prefix(kind);
	int n;

	if (!prefix || ipcx_name_check(name))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s%s", dir ? dir : ipcx_shm_dir(), prefix, name);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

void ipcx_obj_header_init(struct ipcx_obj_header *h, enum ipcx_kind kind,
			  uint32_t header_size, uint64_t total_size)
{
	memset(h, 0, sizeof(*h));
	h->magic = IPCX_MAGIC;
	h->abi = IPCX_ABI_VERSION;
	h->kind = (uint16_t)kind;
	h->header_size = header_size;
	h->total_size = total_size;
	h->creator_pid = (uint32_t)getpid();
	h->created_ns = ipcx_now_ns(CLOCK_REALTIME);
}

int ipcx_obj_header_check(const struct ipcx_obj_header *h, enum ipcx_kind kind)
{
	if (h->magic != IPCX_MAGIC || h->abi != IPCX_ABI_VERSION || h->kind != kind)
		return -EPROTO;
	return 0;
}

static int open_existing(const struct ipcx_named_req *req, const char *path)
{
	int acc = (req->mode & IPCX_READ_ONLY) ? O_RDONLY : O_RDWR;
	struct ipcx_obj_header h;
	int fd, ret;

	fd = open(path, acc | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (req->kind != IPCX_KIND_SHM) {
		ret = (int)pread(fd, &h, sizeof(h), 0);
		if (ret != (int)sizeof(h))
			ret = ret < 0 ? -errno : -EPROTO;
		else
			ret = ipcx_obj_header_check(&h, req->kind);
		if (ret) {
			close(fd);
			return ret;
		}
	}
	return fd;
}

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/* hugetlbfs only takes sizes in whole hugepages. */
static uint64_t round_for_fs(int fd, uint64_t size)
{
	struct statfs sfs;
	uint64_t b;

	if (fstatfs(fd, &sfs) || sfs.f_type != HUGETLBFS_MAGIC || sfs.f_bsize <= 0)
		return size;
	b = (uint64_t)sfs.f_bsize;
	return (size + b - 1) / b * b;
}

int ipcx_fd_set_size(int fd, uint64_t size, bool noreserve)
{
	struct stat st;
	uint64_t r;

	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (fstat(fd, &st))
		return -errno;
	if (size <= (uint64_t)st.st_size || noreserve)
		goto truncate;
	/* Reserve the new tail, which also sets the size. */
	if (fallocate(fd, 0, st.st_size, (off_t)(size - (uint64_t)st.st_size)) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
truncate:
	if (ftruncate(fd, (off_t)size) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	r = round_for_fs(fd, size);
	if (r == size)
		return -EINVAL;
	return ftruncate(fd, (off_t)r) ? -errno : 0;
}

/* Size a fresh (empty) file: one syscall on the common path. */
static int size_new(int fd, uint64_t size, bool noreserve)
{
	if (!size)
		return 0;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (!noreserve) {
		if (fallocate(fd, 0, 0, (off_t)size) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
	}
	if (ftruncate(fd, (off_t)size) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	return ipcx_fd_set_size(fd, size, true);	/* hugetlbfs: whole pages */
}

/*
 * Linking an O_TMPFILE: linkat(fd, "", AT_EMPTY_PATH) is one path walk
 * cheaper but needs CAP_DAC_READ_SEARCH; the /proc/self/fd form works for
 * everyone. Remember which one works (0 unknown, 1 empty path, 2 /proc).
 */
static _Atomic int link_how;

static int link_tmpfile(int fd, const char *path)
{
	char proc[64];

	if (atomic_load_explicit(&link_how, memory_order_relaxed) != 2) {
		if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0) {
			atomic_store_explicit(&link_how, 1, memory_order_relaxed);
			return 0;
		}
		if (errno != ENOENT && errno != EPERM)
			return -errno;
		atomic_store_explicit(&link_how, 2, memory_order_relaxed);
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW))
		return -errno;
	return 0;
}

int ipcx_create_file(const char *dir, const char *path, mode_t perm, uint64_t size,
		     unsigned int flags, int (*init)(int fd, void *arg), void *arg,
		     bool fallback_excl)
{
	bool noreserve = flags & IPCX_NAMED_NORESERVE, named = false;
	int fd, ret;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		/* No O_TMPFILE on this filesystem (or kernel): plain O_EXCL. */
		if (!fallback_excl || (ret != -EOPNOTSUPP && ret != -EISDIR && ret != -EINVAL))
			return ret;
		fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		named = true;
	}
	if (fchmod(fd, perm ? perm : IPCX_DEFAULT_PERM)) {
		ret = -errno;
		goto out_close;
	}
	ret = size_new(fd, size, noreserve);
	if (ret)
		goto out_close;
	if (init) {
		ret = init(fd, arg);
		if (ret)
			goto out_close;
	}
	if (!named) {
		ret = link_tmpfile(fd, path);
		if (ret)
			goto out_close;
	}
	return fd;

out_close:
	if (named)
		unlink(path);
	close(fd);
	return ret;
}

static bool is_sync_kind(enum ipcx_kind kind)
{
	return kind >= IPCX_KIND_MUTEX && kind <= IPCX_KIND_BARRIER;
}

/*
 * Synchronization objects share one name space: creating "orders" as a
 * condition while "orders" exists as a mutex is refused (-EEXIST), so a
 * caller never silently gets a second, unrelated object under a name it
 * believes taken. Best effort: a concurrent create of the other kind can
 * slip between this check and the link.
 */
static int sync_name_taken(const struct ipcx_named_req *req, const char *dir)
{
	char path[IPCX_PATH_MAX];
	int k;

	if (!is_sync_kind(req->kind))
		return 0;
	for (k = IPCX_KIND_MUTEX; k <= IPCX_KIND_BARRIER; k++) {
		if (k == (int)req->kind ||
		    ipcx_named_path((enum ipcx_kind)k, req->name, dir, path, sizeof(path)))
			continue;
		if (access(path, F_OK) == 0)
			return -EEXIST;
	}
	return 0;
}

int ipcx_named_open(const struct ipcx_named_req *req, bool *created)
{
	unsigned int how = req->mode & IPCX_OPEN_MODE_MASK;
	const char *dir = req->dir ? req->dir : ipcx_shm_dir();
	char path[IPCX_PATH_MAX];
	int ret, tries;

	if (created)
		*created = false;
	if (!how)
		return -EINVAL;
	if ((req->mode & IPCX_READ_ONLY) && (how & IPCX_CREATE_ONLY))
		return -EINVAL;	/* a read-only opener cannot build the object */
	ret = ipcx_named_path(req->kind, req->name, dir, path, sizeof(path));
	if (ret)
		return ret;

	/*
	 * open-or-create: try to open, else create; if the create loses a race
	 * (EEXIST) open the winner's; if that was unlinked meanwhile, go round
	 * again. Bounded so a hostile create/unlink loop cannot spin us forever.
	 */
	for (tries = 0; tries < 64; tries++) {
		if (how & IPCX_OPEN_ONLY) {
			ret = open_existing(req, path);
			if (ret != -ENOENT || how == IPCX_OPEN_ONLY)
				return ret;
		}
		ret = sync_name_taken(req, dir);
		if (ret)
			return ret;
		ret = ipcx_create_file(dir, path, req->perm, req->size, req->flags,
				       req->init, req->arg, false);
		if (ret >= 0) {
			if (created)
				*created = true;
			return ret;
		}
		if (ret != -EEXIST || how == IPCX_CREATE_ONLY)
			return ret;
	}
	return -EAGAIN;
}

int ipcx_named_unlink(enum ipcx_kind kind, const char *name, const char *dir)
{
	char path[IPCX_PATH_MAX];
	int ret = ipcx_named_path(kind, name, dir, path, sizeof(path));

	if (ret)
		return ret;
	return unlink(path) ? -errno : 0;
}
