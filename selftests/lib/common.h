/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the library tests: leak snapshots (live regions and open
 * fds), record checksums, and a process-shared scratch page.
 */
#ifndef PYSHM_SELFTEST_COMMON_H
#define PYSHM_SELFTEST_COMMON_H

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pyshm/pyshm.h>

struct leak_snap {
	uint64_t regions;
	int fds;
};

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own fd */
}

static inline struct leak_snap leak_snap(void)
{
	struct pyshm_stats st;
	struct leak_snap s;

	/* The kmod backend opens /dev/pyshm on first use: open it first. */
	pyshm_backend();
	pyshm_stats(&st, sizeof(st));
	s.regions = st.regions;
	s.fds = count_fds();
	return s;
}

/* Check no region or fd leaked since @before. EXPECT, not ASSERT: the
 * harness of Linux 6.1 loops on an ASSERT failure inside a teardown. */
#define ASSERT_NO_LEAK(before) do {					\
	struct leak_snap __now = leak_snap();				\
	EXPECT_EQ((before).regions, __now.regions);			\
	EXPECT_GE((before).fds + 1, __now.fds); /* + submit ring */	\
} while (0)

/* FNV-1a, for no-tear checks on record payloads. */
static inline uint32_t csum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

/* A test record: who sent it, its sequence number, and a checksummed body. */
struct trec {
	uint32_t producer;
	uint32_t seq;
	uint32_t len;		/* body bytes */
	uint32_t sum;		/* csum(body) */
	unsigned char body[];
};

static inline size_t trec_fill(struct trec *t, uint32_t producer, uint32_t seq,
			       uint32_t len)
{
	uint32_t i, x = producer * 2654435761u ^ seq;

	t->producer = producer;
	t->seq = seq;
	t->len = len;
	for (i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		t->body[i] = (unsigned char)(x >> 16);
	}
	t->sum = csum(t->body, len);
	return sizeof(*t) + len;
}

static inline int trec_ok(const void *data, size_t len)
{
	const struct trec *t = data;

	return len >= sizeof(*t) && len == sizeof(*t) + t->len &&
	       csum(t->body, t->len) == t->sum;
}

/* Length of the n-th record of a producer: varied, some near the limits. */
static inline uint32_t trec_len(uint32_t seq, uint32_t max)
{
	static const uint32_t lens[] = { 0, 1, 7, 8, 9, 48, 56, 64, 100, 255, 1000, 4000 };
	uint32_t l = lens[seq % (sizeof(lens) / sizeof(lens[0]))];

	return l < max ? l : max;
}

static inline int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif /* PYSHM_SELFTEST_COMMON_H */
