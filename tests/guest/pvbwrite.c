// SPDX-License-Identifier: GPL-2.0
/*
 * pvbwrite FILE STRING - write STRING to FILE in one write(2) and report
 * the result as "ok <bytes>" or "err <errno name>".  STRING takes C
 * escapes (\n, \0, \\, \xHH) so tests can send embedded NULs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EINTR: return "EINTR";
	case EBUSY: return "EBUSY";
	case EFAULT: return "EFAULT";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	default: return "OTHER";
	}
}

int main(int argc, char **argv)
{
	char buf[4096];
	size_t n = 0;
	const char *s;
	ssize_t rc;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: pvbwrite FILE STRING\n");
		return 2;
	}
	for (s = argv[2]; *s && n < sizeof(buf); s++) {
		if (*s != '\\') {
			buf[n++] = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 'n': buf[n++] = '\n'; break;
		case '0': buf[n++] = '\0'; break;
		case '\\': buf[n++] = '\\'; break;
		case 'x': {
			char hex[3] = { s[1], s[1] ? s[2] : 0, 0 };

			buf[n++] = (char)strtol(hex, NULL, 16);
			s += 2;
			break;
		}
		default:
			fprintf(stderr, "bad escape\n");
			return 2;
		}
	}
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		printf("err %s\n", errname(errno));
		return 0;
	}
	rc = write(fd, buf, n);
	if (rc < 0)
		printf("err %s\n", errname(errno));
	else
		printf("ok %zd\n", rc);
	close(fd);
	return 0;
}
