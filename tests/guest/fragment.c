// SPDX-License-Identifier: GPL-2.0
/*
 * fragment PERCENT - fragment guest memory the way that makes a balloon pin
 * many 2 MiB blocks: map PERCENT% of MemAvailable as anonymous memory
 * without THP, touch it, then free one 4 KiB page every 256 KiB.  The freed
 * holes are where a balloon inflated next will get its pages.
 *
 * Prints "holes <n>" and "ready", then holds the memory until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE	4096UL
#define STRIDE	(256UL << 10)

static unsigned long mem_available_kib(void)
{
	char line[256];
	unsigned long v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lu kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	unsigned long pct = argc > 1 ? strtoul(argv[1], NULL, 10) : 93;
	unsigned long len = mem_available_kib() * 1024 / 100 * pct;
	unsigned long off, holes = 0;
	char *p;

	len &= ~(STRIDE - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	for (off = 0; off < len; off += PAGE)
		p[off] = 1;
	for (off = 0; off < len; off += STRIDE) {
		if (madvise(p + off, PAGE, MADV_DONTNEED) == 0)
			holes++;
	}
	printf("mapped_kib %lu\nholes %lu\nready\n", len >> 10, holes);
	fflush(stdout);
	for (;;)
		pause();
}
