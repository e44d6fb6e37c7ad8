// SPDX-License-Identifier: GPL-2.0
/*
 * Domain fd tests: opening /dev/pyshm, the version ioctl and its junk
 * siblings, and what a domain fd refuses.
 */
#include "kselftest_harness.h"
#include "pyshm_test.h"

FIXTURE(domain) {
	int fd;
};

FIXTURE_SETUP(domain)
{
	self->fd = domain_open();
	if (self->fd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
}

FIXTURE_TEARDOWN(domain)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(domain, version_reports_the_abi)
{
	struct pyshm_version v;

	memset(&v, 0, sizeof(v));
	poison(v.major);
	poison(v.minor);
	poison(v.features);
	ASSERT_EQ(0, ioctl(self->fd, PYSHM_IOC_VERSION, &v));
	EXPECT_EQ(PYSHM_VERSION_MAJOR, v.major);
	EXPECT_EQ(PYSHM_VERSION_MINOR, v.minor);
	EXPECT_EQ(0, v.features);
	EXPECT_EQ(0, v.flags);
}

TEST_F(domain, version_rejects_junk_flags)
{
	struct pyshm_version v;
	unsigned int i;

	for (i = 0; i < sizeof(junk_values) / sizeof(junk_values[0]); i++) {
		memset(&v, 0, sizeof(v));
		v.flags = (uint32_t)junk_values[i];
		poison(v.major);
		poison(v.features);
		EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_VERSION, &v));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(0xcccc, v.major);
		EXPECT_EQ(POISON_U64, v.features);
	}
}

TEST_F(domain, version_rejects_nonzero_reserved)
{
	struct pyshm_version v;
	unsigned int i, j;

	for (i = 0; i < 4; i++) {
		for (j = 0; j < sizeof(junk_values) / sizeof(junk_values[0]); j++) {
			memset(&v, 0, sizeof(v));
			v.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_VERSION, &v));
			EXPECT_EQ(EINVAL, errno);
		}
	}
}

TEST_F(domain, bad_pointers_are_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_VERSION, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_VERSION, (void *)1));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_CREATE, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_EXPORT, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_IMPORT, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_TOKEN_REVOKE, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/* A read-only output page: the kernel can read the input, not answer. */
TEST_F(domain, unwritable_output_is_efault_and_leaks_nothing)
{
	struct pyshm_region_create *c;
	int before = dbg_count();
	int next_fd = dup(0);

	ASSERT_LE(0, next_fd);
	close(next_fd);

	c = mmap(NULL, page_size(), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, c);
	c->size = 4096;
	ASSERT_EQ(0, mprotect(c, page_size(), PROT_READ));
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_CREATE, c));
	EXPECT_EQ(EFAULT, errno);
	munmap(c, page_size());
	/* No fd appeared and no region stayed behind. */
	EXPECT_EQ(-1, fcntl(next_fd, F_GETFD));
	if (before >= 0)
		EXPECT_EQ(before, dbg_count());
}

TEST_F(domain, unknown_ioctls_are_enotty)
{
	char buf[64] = { 0 };

	EXPECT_EQ(-1, ioctl(self->fd, _IOWR(PYSHM_IOC_MAGIC, 0x7f, struct pyshm_version), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOWR('x', 1, int), buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO(PYSHM_IOC_MAGIC, 0), buf));
	EXPECT_EQ(ENOTTY, errno);
	/* Region ioctls belong to region fds. */
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_INFO, buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_GROW, buf));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PYSHM_IOC_REGION_SEAL, buf));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(domain, domain_fd_has_no_memory)
{
	char b;

	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-1, read(self->fd, &b, 1));
	EXPECT_EQ(-1, write(self->fd, &b, 1));
}

TEST_F(domain, domain_fd_is_not_a_region)
{
	uint64_t token;

	EXPECT_EQ(-1, token_export(self->fd, self->fd, 0, &token));
	EXPECT_EQ(EINVAL, errno);
}

static int open_as_nobody(void *unused)
{
	int dfd, rfd;

	if (geteuid() == 0 && setuid(65534))
		return 10;
	dfd = domain_open();
	if (dfd < 0)
		return 11;
	rfd = region_create(dfd, 4096, 0, NULL);
	if (rfd < 0)
		return 12;
	return 0;
}

TEST_F(domain, any_user_may_open_and_create)
{
	EXPECT_EQ(0, in_child(open_as_nobody, NULL));
}

TEST_F(domain, every_open_is_a_new_domain)
{
	uint64_t token;
	int d2, rfd, ifd;

	d2 = domain_open();
	ASSERT_LE(0, d2);
	rfd = region_create(self->fd, 4096, 0, NULL);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, token_export(self->fd, rfd, 0, &token));
	EXPECT_EQ(-1, token_import(d2, token, NULL));
	EXPECT_EQ(ENOENT, errno);
	/* A dup of the domain fd is the same domain. */
	close(d2);
	d2 = dup(self->fd);
	ASSERT_LE(0, d2);
	ifd = token_import(d2, token, NULL);
	EXPECT_LE(0, ifd);
	close(ifd);
	close(d2);
	close(rfd);
}

TEST_HARNESS_MAIN
