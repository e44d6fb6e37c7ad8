// SPDX-License-Identifier: GPL-2.0
/*
 * Region tests: create, mmap, grow, seal and info, each success case next to
 * its failure siblings (junk flags and reserved words, zero, huge and
 * overflowing sizes, MAP_PRIVATE, past-the-end mappings, writers at seal).
 */
#include "kselftest_harness.h"
#include "pyshm_test.h"

#define NJUNK (sizeof(junk_values) / sizeof(junk_values[0]))

FIXTURE(region) {
	int dfd;
	long page;
};

FIXTURE_SETUP(region)
{
	self->page = page_size();
	self->dfd = domain_open();
	if (self->dfd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
}

FIXTURE_TEARDOWN(region)
{
	if (self->dfd >= 0)
		close(self->dfd);
}

TEST_F(region, create_returns_a_cloexec_fd_and_a_unique_id)
{
	struct pyshm_region_info info;
	struct dbg_region d;
	uint64_t id1 = 0, id2 = 0;
	int fd1, fd2;

	fd1 = region_create(self->dfd, 10000, 0, &id1);
	ASSERT_LE(0, fd1);
	fd2 = region_create(self->dfd, 4096, 65536, &id2);
	ASSERT_LE(0, fd2);
	EXPECT_NE(0, id1);
	EXPECT_NE(id1, id2);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd1, F_GETFD) & FD_CLOEXEC);

	ASSERT_EQ(0, region_info(fd1, &info));
	EXPECT_EQ(id1, info.id);
	EXPECT_EQ(10000, info.size);
	EXPECT_EQ(10000, info.max_size);
	EXPECT_EQ(0, info.state);
	ASSERT_EQ(0, region_info(fd2, &info));
	EXPECT_EQ(id2, info.id);
	EXPECT_EQ(4096, info.size);
	EXPECT_EQ(65536, info.max_size);
	EXPECT_EQ(PYSHM_REGION_STATE_GROWABLE, info.state);

	if (dbg_region(id1, &d) == 1) {
		EXPECT_EQ(10000, d.size);
		EXPECT_EQ(1, d.holds);	/* the fd */
		EXPECT_EQ(0, d.maps);
		EXPECT_EQ(0, d.pins);
		EXPECT_EQ(getuid(), d.uid);
	}
	close(fd1);
	close(fd2);
	if (debugfs_readable()) {
		EXPECT_TRUE(dbg_gone(id1));
		EXPECT_TRUE(dbg_gone(id2));
	}
}

TEST_F(region, create_rejects_junk_flags)
{
	struct pyshm_region_create c;
	unsigned int i;

	for (i = 0; i < NJUNK; i++) {
		memset(&c, 0, sizeof(c));
		c.size = 4096;
		c.flags = (uint32_t)junk_values[i];
		poison(c.fd);
		poison(c.id);
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_CREATE, &c));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ((int)POISON_U32, c.fd);
		EXPECT_EQ(POISON_U64, c.id);
	}
}

TEST_F(region, create_rejects_nonzero_reserved)
{
	struct pyshm_region_create c;
	unsigned int i, j;

	for (i = 0; i < 4; i++) {
		for (j = 0; j < NJUNK; j++) {
			memset(&c, 0, sizeof(c));
			c.size = 4096;
			c.reserved[i] = junk_values[j];
			poison(c.fd);
			EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_CREATE, &c));
			EXPECT_EQ(EINVAL, errno);
			EXPECT_EQ((int)POISON_U32, c.fd);
		}
	}
}

TEST_F(region, create_rejects_zero_and_inverted_sizes)
{
	EXPECT_EQ(-1, region_create(self->dfd, 0, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 8192, 4096, NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 4097, 4096, NULL));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(region, create_rejects_huge_and_overflowing_sizes)
{
	long long limit = param_get("max_region_size");

	EXPECT_EQ(-1, region_create(self->dfd, ~0ULL, 0, NULL));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 0, ~0ULL, NULL));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 4096, ~0ULL, NULL));
	EXPECT_EQ(E2BIG, errno);
	/* Would wrap when rounded up to a page. */
	EXPECT_EQ(-1, region_create(self->dfd, ~0ULL - 100, 0, NULL));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 1ULL << 63, 0, NULL));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_EQ(-1, region_create(self->dfd, 0x80000000ULL << 32, 0, NULL));
	EXPECT_EQ(E2BIG, errno);
	if (limit > 0) {
		EXPECT_EQ(-1, region_create(self->dfd, 0, limit + 1, NULL));
		EXPECT_EQ(E2BIG, errno);
	}
}

TEST_F(region, create_accepts_an_empty_growable_region)
{
	struct pyshm_region_info info;
	char *p;
	int fd;

	fd = region_create(self->dfd, 0, self->page, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, region_info(fd, &info));
	EXPECT_EQ(0, info.size);
	EXPECT_EQ(PYSHM_REGION_STATE_GROWABLE, info.state);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(128 + SIGBUS, child_load(p));
	ASSERT_EQ(0, region_grow(fd, 1));
	p[0] = 1;
	ASSERT_EQ(0, region_info(fd, &info));
	EXPECT_EQ(PYSHM_REGION_STATE_GROWABLE, info.state);
	ASSERT_EQ(0, region_grow(fd, self->page));
	ASSERT_EQ(0, region_info(fd, &info));
	EXPECT_EQ(0, info.state);	/* at max: no longer growable */
	munmap(p, self->page);
	close(fd);
}

TEST_F(region, create_output_fd_is_installed_only_on_success)
{
	int next = dup(0);

	ASSERT_LE(0, next);
	close(next);
	EXPECT_EQ(-1, region_create(self->dfd, 0, 0, NULL));
	EXPECT_EQ(-1, fcntl(next, F_GETFD));
	EXPECT_EQ(EBADF, errno);
}

TEST_F(region, memory_is_zeroed_and_shared_between_mappings)
{
	unsigned char *a, *b;
	long i;
	int fd;

	fd = region_create(self->dfd, 3 * self->page, 0, NULL);
	ASSERT_LE(0, fd);
	a = map(fd, 3 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, a);
	b = map(fd, 3 * self->page, PROT_READ);
	ASSERT_NE(MAP_FAILED, b);
	for (i = 0; i < 3 * self->page; i++)
		ASSERT_EQ(0, b[i]);
	a[0] = 0x11;
	a[3 * self->page - 1] = 0x22;
	EXPECT_EQ(0x11, b[0]);
	EXPECT_EQ(0x22, b[3 * self->page - 1]);
	munmap(a, 3 * self->page);
	munmap(b, 3 * self->page);
	close(fd);
}

TEST_F(region, mmap_at_an_offset_sees_the_same_pages)
{
	char *all, *tail;
	int fd;

	fd = region_create(self->dfd, 4 * self->page, 0, NULL);
	ASSERT_LE(0, fd);
	all = map(fd, 4 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, all);
	tail = mmap(NULL, self->page, PROT_READ, MAP_SHARED, fd, 3 * self->page);
	ASSERT_NE(MAP_FAILED, tail);
	all[3 * self->page + 5] = 42;
	EXPECT_EQ(42, tail[5]);
	munmap(all, 4 * self->page);
	munmap(tail, self->page);
	close(fd);
}

TEST_F(region, mmap_private_is_refused)
{
	int fd = region_create(self->dfd, self->page, 0, NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST_F(region, mmap_past_the_max_size_is_refused)
{
	void *p;
	int fd;

	fd = region_create(self->dfd, self->page, 4 * self->page, NULL);
	ASSERT_LE(0, fd);
	/* Up to the max size is fine, even past the current size. */
	p = map(fd, 4 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, 4 * self->page);

	EXPECT_EQ(MAP_FAILED, map(fd, 5 * self->page, PROT_READ));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_SHARED, fd,
				   4 * self->page));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * self->page, PROT_READ, MAP_SHARED,
				   fd, 3 * self->page));
	EXPECT_EQ(EINVAL, errno);
	/* Offsets whose page index overflows. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_SHARED, fd,
				   (off_t)(~0ULL & ~(uint64_t)(self->page - 1) & ~(1ULL << 63))));
	EXPECT_TRUE(errno == EINVAL || errno == EOVERFLOW);
	close(fd);
}

TEST_F(region, access_past_the_current_size_is_sigbus)
{
	char *p;
	int fd;

	fd = region_create(self->dfd, self->page + 1, 8 * self->page, NULL);
	ASSERT_LE(0, fd);
	p = map(fd, 8 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	/* The page holding the last byte exists; the next ones don't. */
	EXPECT_EQ(0, child_store(p + 2 * self->page - 1));
	EXPECT_EQ(128 + SIGBUS, child_store(p + 2 * self->page));
	EXPECT_EQ(128 + SIGBUS, child_load(p + 8 * self->page - 1));
	ASSERT_EQ(0, region_grow(fd, 8 * self->page));
	EXPECT_EQ(0, child_store(p + 8 * self->page - 1));
	munmap(p, 8 * self->page);
	close(fd);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

TEST_F(region, huge_page_collapse_never_maps_past_the_size)
{
	const size_t huge = 2UL << 20;
	char *area, *p;
	int fd;

	fd = region_create(self->dfd, self->page, 2 * huge, NULL);
	ASSERT_LE(0, fd);
	/* A mapping khugepaged could use: 2 MiB, 2 MiB aligned. */
	area = mmap(NULL, 2 * huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	p = (char *)(((uintptr_t)area + huge - 1) & ~(huge - 1));
	ASSERT_EQ(p, mmap(p, huge, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	p[0] = 1;
	/* Whatever MADV_HUGEPAGE says, no collapse fills the holes past the
	 * size: they stay SIGBUS, and unaccounted memory never appears. */
	madvise(p, huge, MADV_HUGEPAGE);
	EXPECT_EQ(-1, madvise(p, huge, MADV_COLLAPSE));
	EXPECT_EQ(1, p[0]);
	EXPECT_EQ(128 + SIGBUS, child_load(p + self->page));
	EXPECT_EQ(128 + SIGBUS, child_load(p + huge - 1));
	munmap(area, 2 * huge);
	close(fd);
}

TEST_F(region, mremap_never_stretches_a_mapping)
{
	char *p, *q;
	int fd;

	fd = region_create(self->dfd, self->page, 4 * self->page, NULL);
	ASSERT_LE(0, fd);
	p = map(fd, 4 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	/* Past the maximum size, moved or in place. */
	q = mremap(p, 4 * self->page, 8 * self->page, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_EQ(EFAULT, errno);
	if (q != MAP_FAILED)
		p = q;
	/* Shrinking is fine. */
	q = mremap(p, 4 * self->page, self->page, 0);
	EXPECT_EQ(p, q);
	p[0] = 2;
	munmap(p, self->page);
	close(fd);
}

TEST_F(region, grow_raises_the_size_everywhere)
{
	struct pyshm_region_import im;
	uint64_t token;
	char *p;
	int fd, fd2;

	fd = region_create(self->dfd, 100, 10 * self->page, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, 0, &token));
	fd2 = token_import(self->dfd, token, &im);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(100, im.size);
	ASSERT_EQ(0, token_revoke(self->dfd, token));

	ASSERT_EQ(0, region_grow(fd, 5 * self->page + 3));
	EXPECT_EQ(5 * self->page + 3, region_size(fd2));
	p = map(fd2, 10 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[5 * self->page + 2] = 9;
	EXPECT_EQ(0, region_grow(fd2, 5 * self->page + 3));	/* same size */
	EXPECT_EQ(0, region_grow(fd2, 10 * self->page));		/* to max */
	EXPECT_EQ(10 * self->page, region_size(fd));
	EXPECT_EQ(9, p[5 * self->page + 2]);
	munmap(p, 10 * self->page);
	close(fd);
	close(fd2);
}

TEST_F(region, grow_never_shrinks)
{
	int fd = region_create(self->dfd, 10000, 20000, NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, region_grow(fd, 9999));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, region_grow(fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(10000, region_size(fd));
	close(fd);
}

TEST_F(region, grow_past_max_is_efbig)
{
	int fd = region_create(self->dfd, 4096, 8192, NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, region_grow(fd, 8193));
	EXPECT_EQ(EFBIG, errno);
	EXPECT_EQ(-1, region_grow(fd, ~0ULL));
	EXPECT_EQ(EFBIG, errno);
	EXPECT_EQ(-1, region_grow(fd, 1ULL << 63));
	EXPECT_EQ(EFBIG, errno);
	EXPECT_EQ(4096, region_size(fd));
	close(fd);

	/* A fixed-size region can't grow at all. */
	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, region_grow(fd, 4097));
	EXPECT_EQ(EFBIG, errno);
	close(fd);
}

TEST_F(region, grow_rejects_junk)
{
	struct pyshm_region_grow g;
	unsigned int i, j;
	int fd = region_create(self->dfd, 4096, 8192, NULL);

	ASSERT_LE(0, fd);
	for (j = 0; j < NJUNK; j++) {
		memset(&g, 0, sizeof(g));
		g.size = 8192;
		g.flags = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_GROW, &g));
		EXPECT_EQ(EINVAL, errno);
		memset(&g, 0, sizeof(g));
		g.size = 8192;
		g.pad = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_GROW, &g));
		EXPECT_EQ(EINVAL, errno);
		for (i = 0; i < 2; i++) {
			memset(&g, 0, sizeof(g));
			g.size = 8192;
			g.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_GROW, &g));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_GROW, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(4096, region_size(fd));
	close(fd);
}

TEST_F(region, seal_with_a_writable_mapping_is_ebusy)
{
	struct pyshm_region_info info;
	void *p;
	int fd = region_create(self->dfd, self->page, 0, NULL);

	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, region_seal(fd));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, region_info(fd, &info));
	EXPECT_EQ(0, info.state);
	/* A writable mapping that is PROT_READ for now still counts. */
	ASSERT_EQ(0, mprotect(p, self->page, PROT_READ));
	EXPECT_EQ(-1, region_seal(fd));
	EXPECT_EQ(EBUSY, errno);
	munmap(p, self->page);
	EXPECT_EQ(0, region_seal(fd));
	close(fd);
}

TEST_F(region, seal_counts_the_writable_mappings_of_children)
{
	int sv[2], fd = region_create(self->dfd, self->page, 0, NULL);
	pid_t pid;
	char *p, b;

	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, pipe(sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Keeps the inherited writable mapping until told. */
		close(sv[1]);
		_exit(read(sv[0], &b, 1) == 1 ? 0 : 1);
	}
	close(sv[0]);
	munmap(p, self->page);
	EXPECT_EQ(-1, region_seal(fd));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(1, write(sv[1], "x", 1));
	EXPECT_EQ(0, wait_status(pid));
	EXPECT_EQ(0, region_seal(fd));
	close(sv[1]);
	close(fd);
}

TEST_F(region, seal_makes_the_region_read_only_for_good)
{
	struct pyshm_region_info info;
	char *ro, *p;
	int fd = region_create(self->dfd, self->page, 2 * self->page, NULL);

	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[10] = 77;
	munmap(p, self->page);
	ro = map(fd, self->page, PROT_READ);
	ASSERT_NE(MAP_FAILED, ro);

	ASSERT_EQ(0, region_seal(fd));
	EXPECT_EQ(0, region_seal(fd));	/* idempotent */
	ASSERT_EQ(0, region_info(fd, &info));
	EXPECT_EQ(PYSHM_REGION_STATE_SEALED, info.state);
	EXPECT_EQ(77, ro[10]);

	EXPECT_EQ(MAP_FAILED, map(fd, self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(MAP_FAILED, map(fd, self->page, PROT_WRITE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, mprotect(ro, self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(128 + SIGSEGV, child_store(ro + 10));
	EXPECT_EQ(-1, region_grow(fd, 2 * self->page));
	EXPECT_EQ(EPERM, errno);
	/* Read-only mappings still work. */
	p = map(fd, self->page, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(77, p[10]);
	munmap(p, self->page);
	munmap(ro, self->page);
	close(fd);
}

TEST_F(region, read_only_mapping_never_becomes_writable)
{
	char *ro;
	int fd = region_create(self->dfd, self->page, 0, NULL);

	ASSERT_LE(0, fd);
	ro = map(fd, self->page, PROT_READ);
	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_EQ(-1, mprotect(ro, self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	/* ... which is why it doesn't stop a seal. */
	EXPECT_EQ(0, region_seal(fd));
	munmap(ro, self->page);
	close(fd);
}

TEST_F(region, seal_rejects_junk)
{
	struct pyshm_region_seal s;
	unsigned int i, j;
	int fd = region_create(self->dfd, 4096, 0, NULL);

	ASSERT_LE(0, fd);
	for (j = 0; j < NJUNK; j++) {
		memset(&s, 0, sizeof(s));
		s.flags = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_SEAL, &s));
		EXPECT_EQ(EINVAL, errno);
		memset(&s, 0, sizeof(s));
		s.pad = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_SEAL, &s));
		EXPECT_EQ(EINVAL, errno);
		for (i = 0; i < 2; i++) {
			memset(&s, 0, sizeof(s));
			s.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_SEAL, &s));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_SEAL, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, region_info(fd, &(struct pyshm_region_info){ 0 }));
	close(fd);
}

TEST_F(region, info_rejects_junk)
{
	struct pyshm_region_info info;
	unsigned int i, j;
	int fd = region_create(self->dfd, 4096, 0, NULL);

	ASSERT_LE(0, fd);
	for (j = 0; j < NJUNK; j++) {
		memset(&info, 0, sizeof(info));
		info.flags = (uint32_t)junk_values[j];
		poison(info.id);
		EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_INFO, &info));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(POISON_U64, info.id);
		for (i = 0; i < 4; i++) {
			memset(&info, 0, sizeof(info));
			info.reserved[i] = junk_values[j];
			poison(info.size);
			EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_INFO, &info));
			EXPECT_EQ(EINVAL, errno);
			EXPECT_EQ(POISON_U64, info.size);
		}
	}
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_INFO, NULL));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

TEST_F(region, region_fd_refuses_other_ioctls_and_io)
{
	char buf[128] = { 0 };
	int fd = region_create(self->dfd, 4096, 8192, NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_VERSION, buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_CREATE, buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, PYSHM_IOC_REGION_IMPORT, buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR(PYSHM_IOC_MAGIC, 0x1f, struct pyshm_region_info), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, FIONREAD, buf));
	EXPECT_EQ(ENOTTY, errno);
	/* The size changes only by PYSHM_IOC_REGION_GROW. */
	EXPECT_EQ(-1, write(fd, buf, 1));
	EXPECT_EQ(-1, read(fd, buf, 1));
	EXPECT_EQ(-1, ftruncate(fd, 8192));
	EXPECT_EQ(-1, ftruncate(fd, 0));
	EXPECT_EQ(4096, region_size(fd));
	close(fd);
}

/*
 * Unlike a growable memfd (sealed only against shrinking), a region fd can't
 * be truncated past its maximum by whoever holds it, nor through a reopen
 * of /proc/self/fd: userspace may trust the size within its mapping.
 */
TEST_F(region, ftruncate_past_the_max_is_refused)
{
	char path[64];
	int fd = region_create(self->dfd, 4096, 8192, NULL), fd2;
	char *p;

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ftruncate(fd, 1 << 24));
	EXPECT_EQ(-1, ftruncate(fd, 8193));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR | O_CLOEXEC);
	if (fd2 >= 0) {
		EXPECT_EQ(-1, ftruncate(fd2, 1 << 24));
		close(fd2);
	}
	EXPECT_EQ(4096, region_size(fd));
	p = map(fd, 8192, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, region_grow(fd, 8192));
	p[8191] = 1;
	EXPECT_EQ(8192, region_size(fd));
	munmap(p, 8192);
	close(fd);
}

TEST_F(region, fdinfo_names_the_region)
{
	char path[64], buf[512];
	uint64_t id;
	ssize_t n;
	int fd, f;

	fd = region_create(self->dfd, 4096, 0, &id);
	ASSERT_LE(0, fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	ASSERT_LE(0, f);
	n = read(f, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	buf[n] = 0;
	snprintf(path, sizeof(path), "pyshm-id:\t%lu\n", id);
	EXPECT_NE(NULL, strstr(buf, path));
	close(f);
	close(fd);
}

TEST_HARNESS_MAIN
