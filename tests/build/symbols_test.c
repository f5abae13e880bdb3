// SPDX-License-Identifier: MIT
/*
 * symbols_test - the static archive and the shared library export only
 * ipcx_* names (a trading engine links libipcx.a into one binary with its
 * own code: a stray global would collide or interpose).
 */
#include <stdio.h>

#include "kselftest_harness.h"

/* Run nm @args on @file; count exported names, fail on foreign ones. */
static int scan(struct __test_metadata *_metadata, const char *args, const char *file,
		int *ours)
{
	char cmd[1024], line[512], type, name[400];
	int foreign = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s %s '%s' 2>&1", IPCX_NM, args, file);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	*ours = 0;
	while (fgets(line, sizeof(line), p)) {
		unsigned long long addr;

		if (sscanf(line, "%llx %c %399s", &addr, &type, name) != 3)
			continue;	/* archive member headers, blank lines */
		if (!strncmp(name, "ipcx_", 5)) {
			(*ours)++;
		} else {
			TH_LOG("%s exports %s (%c)", file, name, type);
			foreign++;
		}
	}
	if (pclose(p) != 0)
		return -1;
	return foreign;
}

TEST(archive_exports_only_ipcx)
{
	int ours = 0;

	ASSERT_EQ(0, scan(_metadata, "-g --defined-only", IPCX_LIBA, &ours));
	ASSERT_GE(ours, 4);	/* the scan saw the API at all */
}

TEST(shared_library_exports_only_ipcx)
{
	int ours = 0;

	ASSERT_EQ(0, scan(_metadata, "-D --defined-only", IPCX_LIBSO, &ours));
	ASSERT_GE(ours, 4);
}

TEST_HARNESS_MAIN
