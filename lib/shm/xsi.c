// SPDX-License-Identifier: MIT
/*
 * xsi.c - System V shared memory with Boost's xsi_shared_memory rules: a
 * key from a path and an id, create/open by key, whole-segment attaches
 * only, removal by id.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include <ipcx/shm.h>
#include "region.h"
#include "shm_priv.h"

#ifndef SHM_HUGETLB
#define SHM_HUGETLB 04000
#endif

int ipcx_xsi_key(const char *path, unsigned int id, key_t *key)
{
	struct stat st;

	if (!path || !key || id == 0 || id > 255)
		return -EINVAL;
	if (stat(path, &st))
		return -errno;
	/* ftok(3): id, low byte of the device, low 16 bits of the inode. */
	*key = (key_t)(((id & 0xffu) << 24) | (((unsigned int)st.st_dev & 0xffu) << 16) |
		       ((unsigned int)st.st_ino & 0xffffu));
	return 0;
}

int ipcx_xsi_open(key_t key, unsigned int mode, const struct ipcx_xsi_opts *opts)
{
	unsigned int how = mode & IPCX_OPEN_MODE_MASK;
	struct ipcx_xsi_opts o;
	int flags, id, ret;

	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	if (!how || (mode & ~IPCX_OPEN_MODE_MASK) || o.perm > 0777 ||
	    o.huge > IPCX_HUGE_REQUIRE)
		return -EINVAL;
	if (how == IPCX_OPEN_ONLY) {
		if (key == IPC_PRIVATE)
			return -EINVAL;
		id = shmget(key, 0, 0);
		return id < 0 ? -errno : id;
	}
	if (!o.size)
		return -EINVAL;
	flags = IPC_CREAT | (int)(o.perm ? o.perm : IPCX_DEFAULT_PERM);
	if (how == IPCX_CREATE_ONLY)
		flags |= IPC_EXCL;
	if (o.huge) {
		id = shmget(key, (size_t)o.size, flags | SHM_HUGETLB);
		if (id >= 0)
			return id;
		ret = -errno;
		if (o.huge == IPCX_HUGE_REQUIRE || ret == -EEXIST)
			return ret;
	}
	id = shmget(key, (size_t)o.size, flags);
	return id < 0 ? -errno : id;
}

int ipcx_xsi_size(int shmid, uint64_t *size)
{
	struct shmid_ds ds;

	if (shmid < 0 || !size)
		return -EINVAL;
	if (shmctl(shmid, IPC_STAT, &ds))
		return -errno;
	*size = (uint64_t)ds.shm_segsz;
	return 0;
}

int ipcx_xsi_map(struct ipcx_region **out, int shmid, unsigned int flags, void *addr)
{
	struct ipcx_region *r;
	uint64_t size;
	void *p;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~IPCX_READ_ONLY)
		return -EINVAL;
	if (addr && ((uintptr_t)addr % SHMLBA))
		return -EINVAL;
	ret = ipcx_xsi_size(shmid, &size);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	p = shmat(shmid, addr, (flags & IPCX_READ_ONLY) ? SHM_RDONLY : 0);
	if (p == (void *)-1) {
		ret = -errno;
		free(r);
		/* The address was aligned: EINVAL means the range is taken. */
		return addr && ret == -EINVAL ? -EBUSY : ret;
	}
	r->kind = IPCX_REGION_XSI;
	r->addr = r->map = p;
	r->size = (size_t)size;
	r->pgsz = ipcx_page_size();
	r->map_len = ((size_t)size + r->pgsz - 1) & ~(r->pgsz - 1);
	r->flags = flags;
	r->prot = PROT_READ | ((flags & IPCX_READ_ONLY) ? 0 : PROT_WRITE);
	*out = r;
	return 0;
}

int ipcx_xsi_remove(int shmid)
{
	if (shmid < 0)
		return -EINVAL;
	return shmctl(shmid, IPC_RMID, NULL) ? -errno : 0;
}
