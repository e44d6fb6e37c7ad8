// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetime tests: a region lives while a region fd, a mapping or an export
 * pin holds it, and not a moment longer; a process that dies drops its holds;
 * the module can't be unloaded while anything is held. Read through the
 * debugfs listing.
 */
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "pyshm_test.h"

FIXTURE(lifetime) {
	int dfd;
	long page;
};

FIXTURE_SETUP(lifetime)
{
	self->page = page_size();
	self->dfd = domain_open();
	if (self->dfd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
	if (!debugfs_readable())
		SKIP_TEST("no %s/regions", DEBUGFS_DIR);
}

FIXTURE_TEARDOWN(lifetime)
{
	if (self->dfd >= 0)
		close(self->dfd);
}

TEST_F(lifetime, a_mapping_holds_the_region_after_close)
{
	struct dbg_region d;
	uint64_t id;
	char *p;
	int fd;

	fd = region_create(self->dfd, 2 * self->page, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, 2 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.holds);
	EXPECT_EQ(1, d.maps);
	p[2 * self->page - 1] = 3;
	EXPECT_EQ(3, p[2 * self->page - 1]);
	/* What is left of a partly unmapped mapping still holds it. */
	ASSERT_EQ(0, munmap(p, self->page));
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.maps);
	ASSERT_EQ(0, mprotect(p + self->page, self->page, PROT_READ));
	ASSERT_EQ(0, munmap(p + self->page, self->page));
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(lifetime, split_mappings_count_separately)
{
	struct dbg_region d;
	uint64_t id;
	char *p;
	int fd;

	fd = region_create(self->dfd, 4 * self->page, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, 4 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	/* Punch a hole: two vmas. */
	ASSERT_EQ(0, munmap(p + self->page, self->page));
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(2, d.maps);
	EXPECT_EQ(2, d.writable);
	EXPECT_EQ(3, d.holds);
	ASSERT_EQ(0, munmap(p, 4 * self->page));
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.holds);
	EXPECT_EQ(0, d.maps);
	EXPECT_EQ(0, d.writable);
	close(fd);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(lifetime, mremap_keeps_the_count)
{
	struct dbg_region d;
	char *p, *q, *dst;
	uint64_t id;
	int fd;

	fd = region_create(self->dfd, 2 * self->page, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, 2 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 8;
	/*
	 * MREMAP_FIXED replaces whatever is mapped at the destination: move
	 * onto a reservation of our own (on 7.2, 64 pages above the mapping
	 * lay the dynamic loader's data).
	 */
	dst = mmap(NULL, 2 * self->page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	q = mremap(p, 2 * self->page, 2 * self->page, MREMAP_MAYMOVE | MREMAP_FIXED,
		   dst);
	ASSERT_EQ(dst, q);
	EXPECT_EQ(8, q[0]);
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.maps);
	EXPECT_EQ(2, d.holds);
	munmap(q, 2 * self->page);
	close(fd);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(lifetime, fork_shares_the_mapping_and_exit_drops_it)
{
	int up[2], down[2], fd;
	struct dbg_region d;
	uint64_t id;
	pid_t pid;
	char *p, b;

	fd = region_create(self->dfd, self->page, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		p[1] = 5;
		if (write(up[1], "x", 1) != 1)
			_exit(1);
		_exit(read(down[0], &b, 1) == 1 ? 0 : 2);
	}
	ASSERT_EQ(1, read(up[0], &b, 1));
	EXPECT_EQ(5, p[1]);
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(2, d.maps);
	EXPECT_EQ(2, d.holds);
	EXPECT_EQ(2, d.writable);
	ASSERT_EQ(1, write(down[1], "x", 1));
	EXPECT_EQ(0, wait_status(pid));
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.maps);
	munmap(p, self->page);
	EXPECT_TRUE(dbg_gone(id));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/*
 * A child holds regions every way there is (fds, writable and read-only
 * mappings, one-shot and multi-use pins in its own domain) and is killed.
 */
TEST_F(lifetime, a_killed_child_frees_everything_it_held)
{
	enum { N = 8 };
	uint64_t ids[N];
	int sv[2], i;
	pid_t pid;

	ASSERT_EQ(0, pipe(sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		long page = page_size();
		int d = domain_open(), fd;
		uint64_t id, token;

		if (d < 0)
			_exit(1);
		for (i = 0; i < N; i++) {
			fd = region_create(d, (i + 1) * page, 16 * page, &id);
			if (fd < 0)
				_exit(2);
			if (i % 2 && map(fd, 16 * page, PROT_READ | PROT_WRITE) == MAP_FAILED)
				_exit(3);
			if (i % 3 == 0 && map(fd, page, PROT_READ) == MAP_FAILED)
				_exit(4);
			if (i % 4 < 2 && token_export(d, fd, i % 4, &token))
				_exit(5);
			if (i >= N / 2)
				close(fd);
			if (write(sv[1], &id, sizeof(id)) != sizeof(id))
				_exit(6);
		}
		for (;;)
			pause();
	}
	close(sv[1]);
	for (i = 0; i < N; i++) {
		ASSERT_EQ(sizeof(ids[i]), read(sv[0], &ids[i], sizeof(ids[i])));
		EXPECT_EQ(1, dbg_region(ids[i], NULL));
	}
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, wait_status(pid));
	for (i = 0; i < N; i++) {
		uint64_t id = ids[i];

		EXPECT_TRUE(dbg_gone(id)) TH_LOG("region %lu survived", id);
	}
	close(sv[0]);
}

static void __attribute__((noinline, noreturn)) churn(void)
{
	int d = domain_open(), fd, fd2;
	uint64_t token = 0;
	void *p;

	for (;;) {
		fd = region_create(d, 4096, 65536, NULL);
		p = map(fd, 65536, PROT_READ | PROT_WRITE);
		region_grow(fd, 8192);
		token_export(d, fd, 1, &token);
		fd2 = token_import(d, token, NULL);
		close(fd);
		if (p != MAP_FAILED)
			munmap(p, 65536);
		close(fd2);
	}
}

/* A child killed halfway through a hammering loop leaks nothing either. */
TEST_F(lifetime, a_child_killed_mid_work_frees_everything)
{
	int before = dbg_count(), i;
	pid_t pid;

	for (i = 0; i < 3; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			churn();
		usleep(20000 + 30000 * i);
		kill(pid, SIGKILL);
		EXPECT_EQ(128 + SIGKILL, wait_status(pid));
	}
	for (i = 0; i < 100 && dbg_count() != before; i++)
		usleep(10000);
	EXPECT_EQ(before, dbg_count());
}

static int delete_module_nonblock(void)
{
	return syscall(SYS_delete_module, "pyshm", O_NONBLOCK);
}

/* Only a mapping is left, no fd of ours: the module still must stay. */
TEST_F(lifetime, unload_is_refused_while_a_mapping_holds_a_region)
{
	uint64_t id;
	char *p;
	int fd;

	if (geteuid() != 0)
		SKIP(return, "needs CAP_SYS_MODULE");
	fd = region_create(self->dfd, self->page, 0, &id);
	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	close(self->dfd);
	self->dfd = -1;
	EXPECT_EQ(-1, delete_module_nonblock());
	EXPECT_EQ(EWOULDBLOCK, errno);
	p[0] = 1;
	munmap(p, self->page);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(lifetime, unload_is_refused_while_a_region_fd_is_open)
{
	int fd;

	if (geteuid() != 0)
		SKIP(return, "needs CAP_SYS_MODULE");
	fd = region_create(self->dfd, self->page, 0, NULL);
	ASSERT_LE(0, fd);
	close(self->dfd);
	self->dfd = -1;
	EXPECT_EQ(-1, delete_module_nonblock());
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(fd);
}

TEST_F(lifetime, unload_is_refused_while_a_domain_is_open)
{
	if (geteuid() != 0)
		SKIP(return, "needs CAP_SYS_MODULE");
	EXPECT_EQ(-1, delete_module_nonblock());
	EXPECT_EQ(EWOULDBLOCK, errno);
}

TEST_F(lifetime, stats_balance)
{
	char line[64];
	long long created = -1, freed = -1, regions = -1, v;
	FILE *f = fopen(DEBUGFS_DIR "/stats", "re");

	ASSERT_NE(NULL, f);
	while (fscanf(f, "%63s %lld", line, &v) == 2) {
		if (!strcmp(line, "created"))
			created = v;
		else if (!strcmp(line, "freed"))
			freed = v;
		else if (!strcmp(line, "regions"))
			regions = v;
	}
	fclose(f);
	ASSERT_LE(0, created);
	EXPECT_EQ(created - freed, regions);
	EXPECT_EQ(dbg_count(), regions);
}

TEST_HARNESS_MAIN
