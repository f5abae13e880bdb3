// SPDX-License-Identifier: MIT
/*
 * memfd.c - anonymous shared memory segments on memfd, sealed so that no
 * holder can truncate a segment under a peer's mapping (the SIGBUS hazard
 * of shm_open segments), and the ways to hand them to another process.
 */
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ipcx/features.h>
#include <ipcx/shm.h>
#include "named.h"
#include "shm_priv.h"
#include "../sys/sys.h"

#ifndef F_ADD_SEALS
#define F_ADD_SEALS	1033
#define F_GET_SEALS	1034
#define F_SEAL_SEAL	0x0001
#define F_SEAL_SHRINK	0x0002
#define F_SEAL_GROW	0x0004
#define F_SEAL_WRITE	0x0008
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT	26
#endif

#define MEMFD_FLAGS (IPCX_MEMFD_FIXED | IPCX_MEMFD_NOEXEC | IPCX_MEMFD_NOSEAL | \
		     IPCX_MEMFD_NORESERVE | IPCX_MEMFD_SEAL_SEAL)

/* Size and seal a fresh memfd. Return 0 or -errno. */
static int memfd_build(int fd, const struct ipcx_memfd_opts *o, uint64_t size)
{
	int seals = 0, ret;

	if (o->flags & IPCX_MEMFD_NORESERVE)
		ret = ftruncate(fd, (off_t)size) ? -errno : 0;
	else
		ret = fallocate(fd, 0, 0, (off_t)size) ? -errno : 0;
	if (ret)
		return ret;
	if (!(o->flags & IPCX_MEMFD_NOSEAL))
		seals |= F_SEAL_SHRINK;
	if (o->flags & IPCX_MEMFD_FIXED)
		seals |= F_SEAL_GROW;
	if (o->flags & IPCX_MEMFD_SEAL_SEAL)
		seals |= F_SEAL_SEAL;
	if (seals && fcntl(fd, F_ADD_SEALS, seals))
		return -errno;
	return 0;
}

int ipcx_memfd_new(const struct ipcx_memfd_opts *opts)
{
	struct ipcx_memfd_opts o;
	unsigned int mfd = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	unsigned int shift;
	uint64_t size;
	int fd, ret;

	if (!opts)
		return -EINVAL;
	ret = ipcx_opts_copy(&o, sizeof(o), opts);
	if (ret)
		return ret;
	if (!o.size || o.size > (uint64_t)INT64_MAX / 2 || (o.flags & ~MEMFD_FLAGS) ||
	    o.huge > IPCX_HUGE_REQUIRE || o.reserved)
		return -EINVAL;
	if ((o.flags & IPCX_MEMFD_NOSEAL) &&
	    (o.flags & (IPCX_MEMFD_FIXED | IPCX_MEMFD_SEAL_SEAL)))
		return -EINVAL;
	shift = o.huge_shift ? o.huge_shift : IPCX_HUGE_2MB;
	if (shift < 16 || shift > 40)
		return -EINVAL;
	if (!o.name)
		o.name = "ipcx";
	/* The kernel limits memfd names to 249 bytes; be strict about it. */
	if (strlen(o.name) > 200)
		return -EINVAL;
	if ((o.flags & IPCX_MEMFD_NOEXEC) && (ipcx_features() & IPCX_FEAT_MEMFD_NOEXEC))
		mfd |= MFD_NOEXEC_SEAL;

	if (o.huge) {
		uint64_t hp = 1ull << shift;

		size = (o.size + hp - 1) & ~(hp - 1);
		fd = ipcx_memfd_create(o.name, mfd | MFD_HUGETLB | (shift << MFD_HUGE_SHIFT));
		if (fd >= 0) {
			ret = memfd_build(fd, &o, size);
			if (!ret)
				return fd;
			close(fd);
		} else {
			/* No hstate of that size (-ENODEV) or no hugetlb at all. */
			ret = (fd == -ENODEV || fd == -EINVAL) ? -EOPNOTSUPP : fd;
		}
		/* No pool pages (ENOSPC from fallocate) or no such page size. */
		if (o.huge == IPCX_HUGE_REQUIRE)
			return ret == -ENOSPC ? -ENOMEM : ret;
	}
	fd = ipcx_memfd_create(o.name, mfd);
	if (fd < 0)
		return fd;
	ret = memfd_build(fd, &o, o.size);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int ipcx_memfd_resize(int fd, uint64_t size)
{
	if (fd < 0)
		return -EBADF;
	return ipcx_fd_set_size(fd, size, false);
}

int ipcx_memfd_seals(int fd)
{
	int s = fcntl(fd, F_GET_SEALS);

	return s < 0 ? -errno : s;
}

int ipcx_fd_send(int sock, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;

	if (sock < 0 || fd < 0)
		return -EBADF;
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 1 ? 0 : -EIO;
}

int ipcx_fd_recv(int sock)
{
	/* Room for a few descriptors: extras a peer sends are closed, not leaked. */
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd = -1, ret = -ENODATA;
	ssize_t n;

	if (sock < 0)
		return -EBADF;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t i, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < cnt; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	if (fd >= 0)
		return fd;
	return n == 0 ? -ENODATA : ret;
}

int ipcx_fd_open_pid(pid_t pid, int fd, unsigned int flags)
{
	char path[64];
	int nfd;

	if (pid <= 0 || fd < 0 || (flags & ~IPCX_READ_ONLY))
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	nfd = open(path, ((flags & IPCX_READ_ONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}
