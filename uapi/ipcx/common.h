/* SPDX-License-Identifier: MIT */
/*
 * ipcx/common.h - conventions shared by every ipcx header.
 *
 * Errors: every int-returning call returns 0 (or a count) on success and a
 * negative errno on failure. The library never reads or sets errno, never
 * prints, never aborts.
 */
#ifndef IPCX_COMMON_H
#define IPCX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Compile-time layout checks that work from C and C++ includes alike. */
#ifdef __cplusplus
#define IPCX_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define IPCX_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Marks the library's public entry points; everything else is hidden. */
#define IPCX_API __attribute__((visibility("default")))

#define IPCX_VERSION_MAJOR 0
#define IPCX_VERSION_MINOR 1
#define IPCX_VERSION_PATCH 0

/**
 * ipcx_version() - version of the library actually linked
 *
 * Return: a static string such as "0.1.0".
 */
IPCX_API const char *ipcx_version(void);

/*
 * Open modes of named and file-backed objects (Boost's create_only,
 * open_only, open_or_create), combined with access flags.
 */
enum ipcx_open_mode {
	IPCX_CREATE_ONLY	= 1,	/* -EEXIST if the name exists */
	IPCX_OPEN_ONLY		= 2,	/* -ENOENT if it does not */
	IPCX_OPEN_OR_CREATE	= 3,
};

#define IPCX_OPEN_MODE_MASK	0x3u
#define IPCX_READ_ONLY		0x100u	/* map/open for reading only */
#define IPCX_COPY_ON_WRITE	0x200u	/* private mapping: writes stay local */

/* Default permissions of created objects, applied with fchmod (no umask). */
#define IPCX_DEFAULT_PERM	0600

/*
 * Extensible option structs: the first member is always `size_t sz`, set by
 * IPCX_OPTS() to the caller's sizeof. The library reads only fields that the
 * caller's struct has, and rejects (-E2BIG) a larger struct whose unknown
 * tail is not all zero.
 */
#define IPCX_OPTS(TYPE, NAME, ...)					\
	struct TYPE NAME = ({						\
		__builtin_memset(&NAME, 0, sizeof(struct TYPE));	\
		(struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ };	\
	})

/* Longest name of a named object, excluding the terminating NUL. */
#define IPCX_NAME_MAX		200

#ifdef __cplusplus
}
#endif
#endif /* IPCX_COMMON_H */
