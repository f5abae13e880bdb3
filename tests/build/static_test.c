// SPDX-License-Identifier: MIT
/*
 * static_test - a program linked with -static against libipcx.a alone
 * runs and reaches the API (built without -static under sanitizers, whose
 * runtimes cannot be linked statically).
 */
#include <sys/auxv.h>

#include "kselftest_harness.h"
#include <ipcx.h>

TEST(linked_statically)
{
#ifdef IPCX_TEST_NOT_STATIC
	SKIP(return, "sanitizer build: static linking is not possible");
#else
	/* No program interpreter: the dynamic loader never ran. */
	ASSERT_EQ(0, getauxval(AT_BASE));
#endif
}

TEST(api_reachable)
{
	struct ipcx_offptr p;
	int x;

	ASSERT_NE(NULL, ipcx_version());
	ASSERT_TRUE(ipcx_features() & IPCX_FEAT_MEMFD);
	ipcx_offptr_set(&p, &x);
	ASSERT_EQ(&x, IPCX_OFFPTR_GET(&p, int));
}

TEST_HARNESS_MAIN
