// SPDX-License-Identifier: MIT
/*
 * file.c - files to map (Boost's file_mapping): open existing files, or
 * create them atomically with their blocks reserved, through the same
 * builder as named objects (lib/shm/named.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <ipcx/shm.h>
#include "named.h"
#include "shm_priv.h"

/* Split @path into its directory (into @dir) for O_TMPFILE. */
static int parent_dir(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		if (len < 2)
			return -ENAMETOOLONG;
		strcpy(dir, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

int ipcx_file_open(const char *path, unsigned int mode, const struct ipcx_file_opts *opts)
{
	unsigned int how = mode & IPCX_OPEN_MODE_MASK;
	struct ipcx_file_opts o;
	char dir[PATH_MAX];
	int ret, tries;

	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	if (!path || !*path || !how || (mode & ~(IPCX_OPEN_MODE_MASK | IPCX_READ_ONLY)) ||
	    o.flags || o.perm > 07777 || path[strlen(path) - 1] == '/')
		return -EINVAL;
	if ((mode & IPCX_READ_ONLY) && (how & IPCX_CREATE_ONLY))
		return -EINVAL;
	ret = parent_dir(path, dir, sizeof(dir));
	if (ret)
		return ret;

	for (tries = 0; tries < 64; tries++) {
		if (how & IPCX_OPEN_ONLY) {
			int fd = open(path, ((mode & IPCX_READ_ONLY) ? O_RDONLY : O_RDWR) |
					    O_CLOEXEC);

			if (fd >= 0)
				return fd;
			if (errno != ENOENT || how == IPCX_OPEN_ONLY)
				return -errno;
		}
		ret = ipcx_create_file(dir, path, o.perm, o.size, 0, NULL, NULL, true);
		if (ret >= 0 || ret != -EEXIST || how == IPCX_CREATE_ONLY)
			return ret;
	}
	return -EAGAIN;
}

int ipcx_file_unlink(const char *path)
{
	if (!path || !*path)
		return -EINVAL;
	return unlink(path) ? -errno : 0;
}
