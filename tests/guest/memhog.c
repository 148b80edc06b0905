// SPDX-License-Identifier: GPL-2.0
/*
 * memhog MIB [hold] - allocate MIB MiB of anonymous memory, write a
 * pattern unique to every page, read it all back and exit 0 if every page
 * kept its pattern (1 if one did not: a page the host discarded under the
 * guest, say).  With "hold", print "ready" and keep the memory until killed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE	4096UL

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long len = mib << 20, off, bad = 0;
	uint8_t *p;

	if (!mib) {
		fprintf(stderr, "usage: memhog MIB [hold]\n");
		return 2;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (off = 0; off < len; off += PAGE)
		*(uint64_t *)(p + off) = off ^ 0x5a5a5a5a5a5a5a5aULL;
	for (off = 0; off < len; off += PAGE)
		if (*(uint64_t *)(p + off) != (off ^ 0x5a5a5a5a5a5a5a5aULL))
			bad++;
	printf("touched %lu MiB, %lu bad pages\n", mib, bad);
	if (argc > 2 && !strcmp(argv[2], "hold")) {
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	return bad ? 1 : 0;
}
