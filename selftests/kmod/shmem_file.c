// SPDX-License-Identifier: GPL-2.0
/*
 * The shmem file behind a region. A mapping's /proc/<pid>/map_files/ entry
 * reopens it as a file of its own (for root, or CRIU with
 * CAP_CHECKPOINT_RESTORE); whatever that file allows must leave the region's
 * size, seal and lifetime to the module. Found by the fuzzer (fuzz.c,
 * op_reopen): a truncate through it broke the per-user accounting, which
 * WARNed when the user's last region went.
 */
#include <linux/falloc.h>

#include "kselftest_harness.h"
#include "pyshm_test.h"

FIXTURE(shmem_file) {
	int dfd;
	long page;
};

FIXTURE_SETUP(shmem_file)
{
	self->page = page_size();
	self->dfd = domain_open();
	if (self->dfd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
	if (!debugfs_readable())
		SKIP_TEST("no %s/regions", DEBUGFS_DIR);
}

FIXTURE_TEARDOWN(shmem_file)
{
	if (self->dfd >= 0)
		close(self->dfd);
}

/* The file behind the mapping [p, p + len), as map_files opens it. */
static int reopen(void *p, size_t len, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)p, (unsigned long)p + len);
	return open(path, flags | O_CLOEXEC);
}

#define REOPEN_OR_SKIP(fd, p, len, flags) do {				\
	(fd) = reopen((p), (len), (flags));				\
	if ((fd) < 0 && (errno == EPERM || errno == EACCES))		\
		SKIP(return, "map_files needs CAP_SYS_ADMIN");		\
	ASSERT_LE(0, (fd));						\
} while (0)

TEST_F(shmem_file, cannot_change_the_size)
{
	long pg = self->page;
	uint64_t id;
	int fd, sfd;
	char *p;

	fd = region_create(self->dfd, 2 * pg, 4 * pg, &id);
	ASSERT_LE(0, fd);
	p = map(fd, 4 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	REOPEN_OR_SKIP(sfd, p, 4 * pg, O_RDWR);

	EXPECT_EQ(-1, ftruncate(sfd, pg));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(sfd, 3 * pg));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, pwrite(sfd, "x", 1, 2 * pg));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, fallocate(sfd, 0, 0, 3 * pg));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, fallocate(sfd, FALLOC_FL_KEEP_SIZE, 2 * pg, pg));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, fcntl(sfd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(2 * pg, region_size(fd));

	/* Below the size it is the region's memory, as a mapping is. */
	EXPECT_EQ(1, pwrite(sfd, "x", 1, 2 * pg - 1));
	EXPECT_EQ('x', p[2 * pg - 1]);
	/* And the module still grows it. */
	EXPECT_EQ(0, region_grow(fd, 3 * pg));
	p[3 * pg - 1] = 'y';

	close(sfd);
	munmap(p, 4 * pg);
	close(fd);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(shmem_file, writable_mapping_of_it_blocks_the_seal)
{
	long pg = self->page;
	uint64_t id;
	int fd, sfd;
	char *p, *q;

	fd = region_create(self->dfd, pg, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	REOPEN_OR_SKIP(sfd, p, pg, O_RDWR);
	munmap(p, pg);

	q = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, region_seal(fd));
	EXPECT_EQ(EBUSY, errno);
	munmap(q, pg);

	ASSERT_EQ(0, region_seal(fd));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, pwrite(sfd, "x", 1, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, fallocate(sfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, pg));
	EXPECT_EQ(EPERM, errno);
	close(sfd);

	/* Reading is what a sealed region is for. */
	p = map(fd, pg, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	REOPEN_OR_SKIP(sfd, p, pg, O_RDONLY);
	q = mmap(NULL, pg, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, q[0]);
	munmap(q, pg);
	munmap(p, pg);

	close(sfd);
	close(fd);
	EXPECT_TRUE(dbg_gone(id));
}

/*
 * A region mapping made right next to a mapping of the shmem file with the
 * same flags and the following offset is never merged into it (which would
 * drop the region mapping without its close, and the region would never
 * go): vmas merge only with the same struct file, and a reopen is another.
 */
TEST_F(shmem_file, mapping_of_it_never_absorbs_a_region_mapping)
{
	long pg = self->page;
	struct dbg_region d;
	char *area, *p, *q;
	uint64_t id;
	int fd, sfd;

	fd = region_create(self->dfd, 2 * pg, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, 2 * pg, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	REOPEN_OR_SKIP(sfd, p, 2 * pg, O_RDWR);
	munmap(p, 2 * pg);

	area = mmap(NULL, 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	/* The shmem file's page 1 above, then the region's page 0 below it. */
	q = mmap(area + pg, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 sfd, pg);
	ASSERT_EQ(area + pg, q);
	/* Ours are VM_NOHUGEPAGE; kernels without THP refuse it (then no merge). */
	madvise(q, pg, MADV_NOHUGEPAGE);
	p = mmap(area, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	ASSERT_EQ(area, p);
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.maps);

	ASSERT_EQ(0, munmap(area, 2 * pg));
	close(sfd);
	close(fd);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_HARNESS_MAIN
