/* SPDX-License-Identifier: GPL-2.0 */
#ifndef PVB_FUZZ_LINUX_STRING_H
#define PVB_FUZZ_LINUX_STRING_H
#include <string.h>
#endif
