// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the size parser and the control requests of
 * src/control.c - the bytes a user writes to debugfs or sysfs - built
 * from the module's own source file against userspace stand-ins of the
 * kernel headers it includes (shim/).
 *
 * Every input is checked against a reference reading of the documented
 * grammar (digits, an optional K/M/G in either case, one optional newline;
 * "all" for deflate; nothing that overflows), and against the rule that a
 * malformed request reaches the core not at all: a bad write changes
 * nothing.  A mismatch aborts, which libFuzzer reports with the input.
 *
 *   make fuzz                      the long run (FUZZ_SECONDS, default 600)
 *   tests/run -k fuzz_control      the short run in make check
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvb_control.h"
#include "pvb_core.h"

unsigned long pvb_pages(struct pvb_balloon *b)
{
	return b->pages;
}

int pvb_resize(struct pvb_balloon *b, long delta, unsigned long *moved)
{
	b->calls++;
	b->last_delta = delta;
	*moved = b->fail ? 0 : (unsigned long)(delta < 0 ? -delta : delta);
	if (delta < 0 && (unsigned long)-delta > b->pages)
		return -EINVAL;
	return b->fail;
}

int pvb_set_target(struct pvb_balloon *b, unsigned long target,
		   unsigned long *moved)
{
	b->calls++;
	b->last_target = target;
	*moved = 0;
	return b->fail;
}

#define CHECK(cond) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_control: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/*
 * The grammar, read independently of the parser: 0 and *pages, or -EINVAL.
 * 128-bit arithmetic, so that overflow is seen, not suffered.
 */
static int reference(const unsigned char *buf, size_t len, bool allow_all,
		     unsigned long *pages, bool *all)
{
	unsigned __int128 v = 0;
	unsigned int shift = 0;
	size_t i;

	*all = false;
	if (len && buf[len - 1] == '\n')
		len--;
	if (allow_all && len == 3 && !memcmp(buf, "all", 3)) {
		*all = true;
		*pages = 0;
		return 0;
	}
	for (i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		v = v * 10 + (buf[i] - '0');
		if (v > ULLONG_MAX)
			return -EINVAL;	/* the digits alone overflow */
	}
	if (!i)
		return -EINVAL;
	if (i < len) {
		const char *s = strchr("kKmMgG", buf[i]);

		if (!buf[i] || !s || i + 1 != len)
			return -EINVAL;
		shift = (s - "kKmMgG") / 2 * 10 + 10;
		v <<= shift;
		if (v > ULLONG_MAX)
			return -EINVAL;	/* bytes overflow */
		v = (v + 4095) / 4096;
	}
	if (v > LONG_MAX)
		return -EINVAL;
	*pages = (unsigned long)v;
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	/* A copy of exactly @size bytes, so that ASan sees any overread. */
	char *buf = malloc(size ? size : 1);
	const char *cbuf = buf;
	int allow;

	memcpy(buf, data, size);
	for (allow = 0; allow <= 1; allow++) {
		unsigned long got = 12345, want = 0;
		bool all = true, want_all = false;
		int rc = pvb_parse_pages(cbuf, size, &got, allow, &all);
		int ref = reference(data, size, allow, &want, &want_all);

		CHECK(rc == 0 || rc == -EINVAL);
		CHECK(rc == ref);
		if (!rc) {
			CHECK(all == want_all);
			CHECK(got == want);
		}
	}

	for (int sign = -1; sign <= 1; sign += 2) {
		struct pvb_balloon b = { .pages = 1UL << 20, .last_target = 1 };
		unsigned long want = 0;
		bool want_all = false;
		bool ok = size && size <= PVB_WRITE_MAX &&
			  !reference(data, size, sign < 0, &want, &want_all);
		ssize_t rc;

		rc = pvb_ctl_resize(&b, cbuf, size, sign);
		if (!ok) {
			CHECK(rc == -EINVAL && b.calls == 0);
			continue;
		}
		/* "all" is the target 0, whatever the size was. */
		if (want_all)
			CHECK(b.calls == 1 && b.last_target == 0 && rc == (ssize_t)size);
		else
			CHECK(b.calls == 1 && b.last_delta == sign * (long)want);
		/* The whole write is consumed, or the core's error passed on. */
		CHECK(rc == (ssize_t)size ||
		      (sign < 0 && want > b.pages && rc == -EINVAL));
		/* The core's errors reach the writer (and dmesg) unchanged. */
		b.fail = -ENOMEM;
		rc = pvb_ctl_resize(&b, cbuf, size, sign);
		CHECK(rc == -ENOMEM || rc == -EINVAL);
		b.fail = -EAGAIN;
		rc = pvb_ctl_resize(&b, cbuf, size, sign);
		CHECK(rc == -EAGAIN || rc == -EINVAL);
	}

	{
		struct pvb_balloon b = { 0 };
		unsigned long want = 0;
		bool want_all = false;
		bool ok = size && size <= PVB_WRITE_MAX &&
			  !reference(data, size, false, &want, &want_all);
		ssize_t rc = pvb_ctl_target(&b, cbuf, size);

		if (!ok)
			CHECK(rc == -EINVAL && b.calls == 0);
		else
			CHECK(rc == (ssize_t)size && b.calls == 1 &&
			      b.last_target == want);
	}
	free(buf);
	return 0;
}
