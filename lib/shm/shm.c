// SPDX-License-Identifier: MIT
/*
 * shm.c - named shared memory objects (Boost's shared_memory_object).
 *
 * A handle is a file in the shm directory opened through ipcx_named_open(),
 * which builds new objects unnamed and publishes them with linkat, so the
 * create/open matrix and the race behaviour are the same for every kind.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ipcx/shm.h>
#include "named.h"
#include "shm_priv.h"
#include "../sys/sys.h"

struct ipcx_shm {
	int fd;
	bool created;
	bool noreserve;
	bool rdonly;
};

int ipcx_opts_check(const void *opts, size_t known)
{
	size_t sz, i;

	if (!opts)
		return 0;
	sz = *(const size_t *)opts;
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (i = known; i < sz; i++)
		if (((const unsigned char *)opts)[i])
			return -E2BIG;
	return 0;
}

int ipcx_opts_copy(void *dst, size_t known, const void *src)
{
	int ret = ipcx_opts_check(src, known);
	size_t sz;

	memset(dst, 0, known);
	if (ret || !src)
		return ret;
	sz = *(const size_t *)src;
	memcpy(dst, src, sz < known ? sz : known);
	return 0;
}

size_t ipcx_page_size(void)
{
	static size_t page;
	size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);

	if (!p) {
		unsigned long v = getauxval(AT_PAGESZ);

		p = v ? (size_t)v : 4096;
		__atomic_store_n(&page, p, __ATOMIC_RELAXED);
	}
	return p;
}

/*
 * Scan /proc/mounts for a hugetlbfs whose page size matches. A mount
 * without pagesize= uses the default hugepage size (2 MiB on x86-64).
 */
int ipcx_hugetlbfs_dir(unsigned int huge_shift, char *buf, size_t len)
{
	char line[1024], dir[512], type[64], opt[512];
	uint64_t want;
	FILE *f;
	int ret = -ENOENT;

	if (!buf || !len || huge_shift >= 40)
		return -EINVAL;
	want = 1ull << (huge_shift ? huge_shift : IPCX_HUGE_2MB);
	f = fopen("/proc/mounts", "re");
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		uint64_t ps = 2ull << 20;
		char *p;

		if (sscanf(line, "%*s %511s %63s %511s", dir, type, opt) != 3 ||
		    strcmp(type, "hugetlbfs"))
			continue;
		p = strstr(opt, "pagesize=");
		if (p) {
			char *end;

			ps = strtoull(p + 9, &end, 10);
			if (*end == 'K' || *end == 'k')
				ps <<= 10;
			else if (*end == 'M' || *end == 'm')
				ps <<= 20;
			else if (*end == 'G' || *end == 'g')
				ps <<= 30;
		}
		if (ps != want)
			continue;
		ret = (size_t)snprintf(buf, len, "%s", dir) >= len ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return ret;
}

int ipcx_shm_open(struct ipcx_shm **out, const char *name, unsigned int mode,
		  const struct ipcx_shm_opts *opts)
{
	struct ipcx_named_req req = { .kind = IPCX_KIND_SHM };
	struct ipcx_shm_opts o;
	char hdir[IPCX_PATH_MAX];
	struct ipcx_shm *shm;
	bool created;
	int fd, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	if (mode & ~(IPCX_OPEN_MODE_MASK | IPCX_READ_ONLY))
		return -EINVAL;
	if ((o.flags & ~IPCX_SHM_NORESERVE) || o.huge > IPCX_HUGE_REQUIRE || o.perm > 07777)
		return -EINVAL;
	req.perm = o.perm;
	req.size = o.size;
	req.dir = o.dir;
	if (o.flags & IPCX_SHM_NORESERVE)
		req.flags |= IPCX_NAMED_NORESERVE;
	if (o.huge && !o.dir) {
		ret = ipcx_hugetlbfs_dir(o.huge_shift, hdir, sizeof(hdir));
		if (ret == 0)
			req.dir = hdir;
		else if (o.huge == IPCX_HUGE_REQUIRE)
			return ret == -ENOENT ? -EOPNOTSUPP : ret;
	}
	req.name = name;
	req.mode = mode;
	shm = calloc(1, sizeof(*shm));
	if (!shm)
		return -ENOMEM;
	fd = ipcx_named_open(&req, &created);
	if (fd < 0) {
		free(shm);
		return fd;
	}
	shm->fd = fd;
	shm->created = created;
	shm->noreserve = req.flags & IPCX_NAMED_NORESERVE;
	shm->rdonly = mode & IPCX_READ_ONLY;
	*out = shm;
	return 0;
}

int ipcx_shm_close(struct ipcx_shm *shm)
{
	if (!shm)
		return 0;
	close(shm->fd);
	free(shm);
	return 0;
}

int ipcx_shm_fd(const struct ipcx_shm *shm)
{
	return shm ? shm->fd : -EINVAL;
}

bool ipcx_shm_created(const struct ipcx_shm *shm)
{
	return shm && shm->created;
}

int ipcx_shm_size(const struct ipcx_shm *shm, uint64_t *size)
{
	struct stat st;

	if (!shm || !size)
		return -EINVAL;
	if (fstat(shm->fd, &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

int ipcx_shm_truncate(struct ipcx_shm *shm, uint64_t size)
{
	if (!shm)
		return -EINVAL;
	if (shm->rdonly)
		return -EBADF;
	return ipcx_fd_set_size(shm->fd, size, shm->noreserve);
}

int ipcx_shm_unlink(const char *name, const char *dir)
{
	return ipcx_named_unlink(IPCX_KIND_SHM, name, dir);
}
