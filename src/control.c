// SPDX-License-Identifier: GPL-2.0
/*
 * pvballoon control writes, shared by the debugfs (debugfs.c) and sysfs
 * (sysfs.c) interfaces: the parser of sizes users write, and inflate,
 * deflate and target requests with their dmesg explanations.  Both
 * interfaces accept exactly the same bytes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/printk.h>
#include <linux/string.h>

#include "pvb_control.h"
#include "pvb_core.h"

/**
 * pvb_parse_pages - parse a balloon size written by a user
 * @buf: the bytes written (not NUL-terminated)
 * @len: their number
 * @pages: the size in 4 KiB pages, rounded up
 * @allow_all: accept the word "all"
 * @all: set when "all" was written
 *
 * Accepts decimal digits, optionally followed by one of K, M, G (binary,
 * either case) and one newline.  Everything else - empty, sign, spaces,
 * another suffix, trailing bytes, an embedded NUL, a value that overflows -
 * is -EINVAL.
 *
 * Return: 0 or -EINVAL.
 */
int pvb_parse_pages(const char *buf, size_t len, unsigned long *pages,
		    bool allow_all, bool *all)
{
	unsigned long long v = 0;
	unsigned int shift = PAGE_SHIFT;
	size_t i = 0;

	*all = false;
	if (len && buf[len - 1] == '\n')
		len--;
	if (!len || memchr(buf, '\0', len))
		return -EINVAL;
	if (allow_all && len == 3 && !memcmp(buf, "all", 3)) {
		*all = true;
		*pages = 0;
		return 0;
	}
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (check_mul_overflow(v, 10ULL, &v) ||
		    check_add_overflow(v, (unsigned long long)(buf[i] - '0'), &v))
			return -EINVAL;
	}
	if (!i)
		return -EINVAL;
	if (i < len) {
		switch (buf[i]) {
		case 'k': case 'K':
			shift = 10;
			break;
		case 'm': case 'M':
			shift = 20;
			break;
		case 'g': case 'G':
			shift = 30;
			break;
		default:
			return -EINVAL;
		}
		if (++i != len)
			return -EINVAL;
		/* Bytes, rounded up to pages, without overflowing. */
		if (v > (ULLONG_MAX >> shift))
			return -EINVAL;
		v <<= shift;
		v = (v >> PAGE_SHIFT) + !!(v & (PAGE_SIZE - 1));
	}
	if (v > LONG_MAX)
		return -EINVAL;
	*pages = v;
	return 0;
}

/**
 * pvb_ctl_resize - an inflate or deflate request written by a user
 * @b: the balloon
 * @buf: the bytes written (at most PVB_WRITE_MAX; not NUL-terminated)
 * @len: their number
 * @sign: 1 inflate, -1 deflate (which also takes "all")
 *
 * Return: @len when the balloon moved by the whole request; -EINVAL for a
 * malformed request or a deflate of more than the balloon holds (nothing
 * changed); -ENOMEM or another error when it stopped part way (the balloon
 * keeps what it moved), explained in dmesg.
 */
ssize_t pvb_ctl_resize(struct pvb_balloon *b, const char *buf, size_t len,
		       int sign)
{
	const char *what = sign > 0 ? "inflate" : "deflate";
	unsigned long pages, moved, cur;
	bool all;
	int rc;

	if (!len || len > PVB_WRITE_MAX)
		return -EINVAL;
	if (pvb_parse_pages(buf, len, &pages, sign < 0, &all))
		return -EINVAL;
	/*
	 * "all" is the target 0, not a deflate of the size read here: the
	 * balloon may shrink meanwhile (an OOM notification, the host), and
	 * a deflate of more than it then holds would fail with -EINVAL.
	 */
	if (all) {
		pages = pvb_pages(b);
		rc = pvb_set_target(b, 0, &moved);
	} else {
		rc = pvb_resize(b, sign * (long)pages, &moved);
	}
	cur = pvb_pages(b);
	switch (rc) {
	case 0:
		return len;
	case -EINVAL:
		pr_warn_ratelimited("deflate: asked for %lu pages but the balloon holds %lu; nothing changed\n",
			pages, cur);
		break;
	case -EAGAIN:
		pr_info_ratelimited("%s: a newer target (the host, another writer or an OOM notification) took over after %lu of %lu pages; the balloon holds %lu pages\n",
			what, moved, pages, cur);
		break;
	case -ENOMEM:
		pr_warn_ratelimited("inflate: the allocator ran dry after %lu of %lu pages (%lu MiB); the balloon keeps them and now holds %lu pages\n",
			moved, pages, moved >> (20 - PAGE_SHIFT), cur);
		break;
	default:
		pr_warn_ratelimited("%s: stopped after %lu of %lu pages (error %d); the balloon holds %lu pages\n",
			what, moved, pages, rc, cur);
		break;
	}
	return rc;
}

/**
 * pvb_ctl_target - a target size written by a user
 * @b: the balloon
 * @buf: the bytes written (at most PVB_WRITE_MAX; not NUL-terminated)
 * @len: their number
 *
 * Return: @len when the balloon reached the target, -EINVAL for a
 * malformed one (nothing changed), or the error that stopped it.
 */
ssize_t pvb_ctl_target(struct pvb_balloon *b, const char *buf, size_t len)
{
	unsigned long pages, moved;
	bool all;
	int rc;

	if (!len || len > PVB_WRITE_MAX)
		return -EINVAL;
	if (pvb_parse_pages(buf, len, &pages, false, &all))
		return -EINVAL;
	rc = pvb_set_target(b, pages, &moved);
	if (rc == -EAGAIN) {
		pr_info_ratelimited("target %lu: a newer target took over after %lu pages; the balloon holds %lu pages\n",
			pages, moved, pvb_pages(b));
		return rc;
	}
	if (rc) {
		pr_warn_ratelimited("target %lu: stopped after moving %lu pages (error %d); the balloon holds %lu pages\n",
			pages, moved, rc, pvb_pages(b));
		return rc;
	}
	return len;
}
