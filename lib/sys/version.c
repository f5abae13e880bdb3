// SPDX-License-Identifier: MIT
#include <ipcx/common.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char *ipcx_version(void)
{
	return STR(IPCX_VERSION_MAJOR) "." STR(IPCX_VERSION_MINOR) "." STR(IPCX_VERSION_PATCH);
}
