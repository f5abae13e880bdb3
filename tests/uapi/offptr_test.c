// SPDX-License-Identifier: MIT
/*
 * offptr_test - self-relative pointers and segment handles: encoding rules,
 * and a linked structure built by one process and walked by another that
 * maps the segment at a different address.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ipcx_test.h"
#include <ipcx/offptr.h>

TEST(zero_is_null_and_self_is_not)
{
	struct ipcx_offptr p;

	memset(&p, 0, sizeof(p));
	ASSERT_TRUE(ipcx_offptr_is_null(&p));
	ASSERT_EQ(NULL, ipcx_offptr_get(&p));
	ipcx_offptr_set(&p, &p);
	ASSERT_FALSE(ipcx_offptr_is_null(&p));
	ASSERT_EQ((void *)&p, ipcx_offptr_get(&p));
	ipcx_offptr_set(&p, NULL);
	ASSERT_EQ(0, p.raw);
}

TEST(forward_backward_and_odd_targets)
{
	char buf[256];
	struct ipcx_offptr *p = (struct ipcx_offptr *)(buf + 128);
	int off;

	for (off = -128; off < 120; off++) {
		ipcx_offptr_set(p, buf + 128 + off);
		ASSERT_EQ(buf + 128 + off, (char *)ipcx_offptr_get(p));
		ASSERT_FALSE(ipcx_offptr_is_null(p));
	}
}

TEST(copy_rebases)
{
	int target;
	struct ipcx_offptr a, b[4];

	ipcx_offptr_set(&a, &target);
	ipcx_offptr_copy(&b[3], &a);
	ASSERT_EQ(&target, IPCX_OFFPTR_GET(&b[3], int));
	/* A raw copy would point elsewhere: that is why copy exists. */
	b[0].raw = a.raw;
	ASSERT_NE((void *)&target, ipcx_offptr_get(&b[0]));
}

TEST(handles_bounds_checked)
{
	char seg[100];
	struct ipcx_handle h;

	ASSERT_TRUE(ipcx_handle_is_null(ipcx_handle_from_ptr(seg, sizeof(seg), NULL)));
	ASSERT_TRUE(ipcx_handle_is_null(ipcx_handle_from_ptr(seg, sizeof(seg), seg + 100)));
	h = ipcx_handle_from_ptr(seg, sizeof(seg), seg);
	ASSERT_FALSE(ipcx_handle_is_null(h));
	ASSERT_EQ(0, ipcx_handle_offset(h));
	ASSERT_EQ((char *)seg, (char *)ipcx_handle_to_ptr(seg, sizeof(seg), h, 100));
	ASSERT_EQ(NULL, ipcx_handle_to_ptr(seg, sizeof(seg), h, 101));
	h = ipcx_handle_from_ptr(seg, sizeof(seg), seg + 99);
	ASSERT_EQ((char *)seg + 99, (char *)ipcx_handle_to_ptr(seg, sizeof(seg), h, 1));
	ASSERT_EQ(NULL, ipcx_handle_to_ptr(seg, sizeof(seg), h, 2));
	/* Hostile values from a segment: huge offsets, wrap-around. */
	ASSERT_EQ(NULL, ipcx_handle_to_ptr(seg, sizeof(seg), (struct ipcx_handle){ ~0ull }, 1));
	ASSERT_EQ(NULL, ipcx_handle_to_ptr(seg, sizeof(seg), (struct ipcx_handle){ 101 }, 0));
	ASSERT_EQ(NULL, ipcx_handle_to_ptr(seg, sizeof(seg), IPCX_HANDLE_NULL, 0));
}

struct node {
	struct ipcx_offptr next;
	struct ipcx_handle self;
	uint64_t value;
};

#define SEG 65536
#define NODES 500

TEST(list_walked_by_another_process_at_another_address)
{
	int fd = memfd_create("offptr_test", MFD_CLOEXEC);
	struct ipcx_offptr *head;
	struct node *n, *prev = NULL;
	char *base;
	pid_t pid;
	int i;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, SEG));
	base = mmap(NULL, SEG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, base);
	head = (struct ipcx_offptr *)base;
	/* Nodes in a scrambled order so offsets go both ways. */
	for (i = 0; i < NODES; i++) {
		size_t slot = (size_t)(i * 7919) % NODES;

		n = (struct node *)(base + 64 + slot * sizeof(struct node));
		n->value = (uint64_t)i * 3 + 1;
		n->self = ipcx_handle_from_ptr(base, SEG, n);
		ipcx_offptr_set(&n->next, NULL);
		if (prev)
			ipcx_offptr_set(&prev->next, n);
		else
			ipcx_offptr_set(head, n);
		prev = n;
	}

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* Map again elsewhere and drop the inherited mapping. */
		char *hole = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *b2 = mmap(NULL, SEG, PROT_READ, MAP_SHARED, fd, 0);
		uint64_t sum = 0, expect = 0;
		int count = 0;

		munmap(base, SEG);
		if (hole == MAP_FAILED || b2 == MAP_FAILED || b2 == base)
			_exit(2);
		for (n = IPCX_OFFPTR_GET((struct ipcx_offptr *)b2, struct node); n;
		     n = IPCX_OFFPTR_GET(&n->next, struct node)) {
			if ((char *)n < b2 || (char *)n >= b2 + SEG)
				_exit(3);
			if (ipcx_handle_to_ptr(b2, SEG, n->self, sizeof(*n)) != n)
				_exit(4);
			sum += n->value;
			count++;
		}
		for (i = 0; i < NODES; i++)
			expect += (uint64_t)i * 3 + 1;
		_exit(count == NODES && sum == expect ? 0 : 1);
	}
	ASSERT_EQ(0, t_wait(pid));
	munmap(base, SEG);
	close(fd);
}

TEST_HARNESS_MAIN
