/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace stand-ins for the few kernel headers src/control.c includes,
 * so that the fuzzer builds the very file the module does (tests/fuzz).
 */
#ifndef PVB_FUZZ_LINUX_TYPES_H
#define PVB_FUZZ_LINUX_TYPES_H
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#endif
