/* SPDX-License-Identifier: GPL-2.0 */
#ifndef PVB_FUZZ_LINUX_OVERFLOW_H
#define PVB_FUZZ_LINUX_OVERFLOW_H
/* The kernel's own definitions are these builtins too (include/linux/overflow.h). */
#define check_add_overflow(a, b, d)	__builtin_add_overflow(a, b, d)
#define check_mul_overflow(a, b, d)	__builtin_mul_overflow(a, b, d)
#endif
