/* SPDX-License-Identifier: MIT */
/*
 * ipcx.h - the whole public API of ipcx.
 */
#ifndef IPCX_H
#define IPCX_H

#include <ipcx/common.h>
#include <ipcx/features.h>
#include <ipcx/layout.h>
#include <ipcx/managed.h>
#include <ipcx/mem.h>
#include <ipcx/mq.h>
#include <ipcx/offptr.h>
#include <ipcx/shm.h>
#include <ipcx/sync.h>
#include <ipcx/rwlock.h>
#include <ipcx/filelock.h>
#include <ipcx/uring.h>

#endif /* IPCX_H */
