// SPDX-License-Identifier: GPL-2.0
/*
 * Region API tests: creation limits, process-local sharing, passing to
 * another process, growth, sealing, tokens and stats, on whichever backend
 * PYSHM_BACKEND selects.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "common.h"

FIXTURE(region) {
	struct leak_snap before;
	int backend;
};

FIXTURE_SETUP(region)
{
	self->backend = pyshm_backend();
	ASSERT_LT(0, self->backend) TH_LOG("backend: %d", self->backend);
	self->before = leak_snap();
}

FIXTURE_TEARDOWN(region)
{
	ASSERT_NO_LEAK(self->before);
}

TEST_F(region, create_is_zeroed_and_writable)
{
	struct pyshm_region *r = NULL;
	unsigned char *p;
	size_t i;

	ASSERT_EQ(0, pyshm_region_create(10000, 0, 0, &r));
	ASSERT_NE(NULL, r);
	EXPECT_EQ(10000, pyshm_region_size(r));
	EXPECT_EQ(10000, pyshm_region_max_size(r));
	EXPECT_EQ(0, pyshm_region_flags(r));
	EXPECT_LE(0, pyshm_region_fd(r));
	p = pyshm_region_data(r);
	for (i = 0; i < 10000; i++)
		ASSERT_EQ(0, p[i]);
	memset(p, 0xab, 10000);
	EXPECT_EQ(0xab, p[9999]);
	pyshm_region_put(r);
}

TEST_F(region, create_rejects_bad_arguments)
{
	struct pyshm_region *r = (void *)0xcc;

	EXPECT_EQ(-EINVAL, pyshm_region_create(4096, 0, 1, &r));
	EXPECT_EQ(-EINVAL, pyshm_region_create(4096, 0, ~0u, &r));
	EXPECT_EQ(-EINVAL, pyshm_region_create(4096, 0, 0x80000000u, &r));
	EXPECT_EQ(-EINVAL, pyshm_region_create(4096, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, pyshm_region_create(8192, 4096, 0, &r));
	EXPECT_EQ(-EFBIG, pyshm_region_create(PYSHM_REGION_SIZE_MAX + 1, 0, 0, &r));
	EXPECT_EQ(-EFBIG, pyshm_region_create(0, UINT64_MAX, 0, &r));
	EXPECT_EQ(-EFBIG, pyshm_region_create(UINT64_MAX, 0, 0, &r));
	EXPECT_EQ((void *)0xcc, r);
}

TEST_F(region, zero_size_region_exists_and_grows)
{
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(0, 0, 0, &r));
	EXPECT_EQ(0, pyshm_region_size(r));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, 1));
	pyshm_region_put(r);

	ASSERT_EQ(0, pyshm_region_create(0, 4096, 0, &r));
	EXPECT_EQ(PYSHM_REGION_GROWABLE, pyshm_region_flags(r));
	ASSERT_EQ(0, pyshm_region_grow(r, 100));
	((char *)pyshm_region_data(r))[99] = 1;
	EXPECT_EQ(100, pyshm_region_size(r));
	pyshm_region_put(r);
}

TEST_F(region, references_share_one_mapping)
{
	struct pyshm_region *r, *again, *found;
	struct pyshm_stats st;
	uint64_t id;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	id = pyshm_region_id(r);
	again = pyshm_region_get(r);
	EXPECT_EQ(r, again);
	ASSERT_EQ(0, pyshm_region_lookup(pyshm_region_id(r), &found));
	EXPECT_EQ(r, found);
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(self->before.regions + 1, st.regions);
	pyshm_region_put(found);
	pyshm_region_put(again);
	/* Still mapped: one reference left. */
	((char *)pyshm_region_data(r))[0] = 1;
	pyshm_region_put(r);
	EXPECT_EQ(-ENOENT, pyshm_region_lookup(id, &found));
}

TEST_F(region, lookup_rejects_unknown_ids)
{
	struct pyshm_region *r = (void *)0xcc;

	EXPECT_EQ(-ENOENT, pyshm_region_lookup(0xdeadbeefcafeull, &r));
	EXPECT_EQ((void *)0xcc, r);
	EXPECT_EQ(-EINVAL, pyshm_region_lookup(1, NULL));
	pyshm_region_put(NULL);
}

TEST_F(region, from_fd_of_own_region_shares_the_mapping)
{
	struct pyshm_region *r, *r2;
	int fd;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	fd = dup(pyshm_region_fd(r));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pyshm_region_from_fd(fd, 0, &r2));
	EXPECT_EQ(r, r2);
	EXPECT_EQ(-1, fcntl(fd, F_GETFD));	/* the duplicate was closed */
	pyshm_region_put(r2);
	pyshm_region_put(r);
}

TEST_F(region, from_fd_rejects_what_is_not_a_region)
{
	struct pyshm_region *r = (void *)0xcc;
	int fds[2];

	EXPECT_EQ(-EBADF, pyshm_region_from_fd(-1, 0, &r));
	ASSERT_EQ(0, pipe(fds));
	EXPECT_EQ(-EINVAL, pyshm_region_from_fd(fds[0], 0, &r));
	EXPECT_EQ(-1, fcntl(fds[0], F_GETFD));	/* consumed on failure */
	close(fds[1]);
	fds[0] = open("/proc/self/stat", O_RDONLY);
	ASSERT_LE(0, fds[0]);
	EXPECT_GT(0, pyshm_region_from_fd(fds[0], 0, &r));
	EXPECT_EQ((void *)0xcc, r);
	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	EXPECT_EQ(-EINVAL, pyshm_region_from_fd(dup(pyshm_region_fd(r)), 0, NULL));
	pyshm_region_put(r);
}

/* A child maps the region from an fd it received and writes; we see it. */
TEST_F(region, another_process_sees_the_same_memory)
{
	struct pyshm_region *r;
	int sv[2];
	pid_t pid;

	ASSERT_EQ(0, pyshm_region_create(1 << 20, 4 << 20, 0, &r));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pyshm_region *c;
		int fd = dup(pyshm_region_fd(r));
		char b;

		/* Forget the inherited handle, then map from the fd alone. */
		pyshm_region_put(r);
		if (pyshm_region_from_fd(fd, 4 << 20, &c))
			_exit(1);
		if (pyshm_region_grow(c, 2 << 20))
			_exit(2);
		((char *)pyshm_region_data(c))[(2 << 20) - 1] = 42;
		if (write(sv[1], "x", 1) != 1)
			_exit(3);
		if (read(sv[1], &b, 1) != 1)
			_exit(4);
		_exit(0);
	}
	{
		char b;

		ASSERT_EQ(1, read(sv[0], &b, 1));
		EXPECT_EQ(2 << 20, pyshm_region_size(r));
		EXPECT_EQ(42, ((char *)pyshm_region_data(r))[(2 << 20) - 1]);
		ASSERT_EQ(1, write(sv[0], "x", 1));
	}
	EXPECT_EQ(0, wait_child(pid));
	close(sv[0]);
	close(sv[1]);
	pyshm_region_put(r);
}

TEST_F(region, grow_never_shrinks_and_stops_at_max)
{
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(4096, 65536, 0, &r));
	EXPECT_EQ(PYSHM_REGION_GROWABLE, pyshm_region_flags(r));
	EXPECT_EQ(0, pyshm_region_grow(r, 4096));
	EXPECT_EQ(-EINVAL, pyshm_region_grow(r, 4095));
	EXPECT_EQ(0, pyshm_region_grow(r, 10000));
	EXPECT_EQ(10000, pyshm_region_size(r));
	EXPECT_EQ(-EINVAL, pyshm_region_grow(r, 9999));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, 65537));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, UINT64_MAX));
	EXPECT_EQ(0, pyshm_region_grow(r, 65536));
	memset(pyshm_region_data(r), 1, 65536);
	pyshm_region_put(r);
}

TEST_F(region, fixed_size_region_cannot_grow)
{
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, 4097));
	EXPECT_EQ(4096, pyshm_region_size(r));
	pyshm_region_put(r);
}


/*
 * A hostile holder of the fd may truncate past the maximum (a growable
 * memfd is sealed only against shrinking; a kmod region fd refuses): the
 * size this process works with never leaves its mapping.
 */
TEST_F(region, size_stays_inside_the_mapping_when_a_peer_truncates_past_max)
{
	struct pyshm_region *r, *r2;
	uint64_t size;
	int fd;

	ASSERT_EQ(0, pyshm_region_create(4096, 65536, 0, &r));
	fd = dup(pyshm_region_fd(r));
	ASSERT_LE(0, fd);
	if (self->backend == PYSHM_BACKEND_MEMFD) {
		ASSERT_EQ(0, ftruncate(fd, 1 << 24));
	} else {
		EXPECT_EQ(-1, ftruncate(fd, 1 << 24));
	}
	/* memfd: the truncate went through, but reads as the maximum. */
	size = self->backend == PYSHM_BACKEND_MEMFD ? 65536 : 4096;
	EXPECT_EQ(size, pyshm_region_size(r));
	EXPECT_EQ(size, pyshm_region_known_size(r));
	EXPECT_EQ(65536, pyshm_region_max_size(r));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, 65537));
	memset(pyshm_region_data(r), 1, size);
	pyshm_region_put(r);

	/* Mapped afresh from the fd alone, with the sender's maximum. */
	ASSERT_EQ(0, pyshm_region_from_fd(fd, 65536, &r2));
	EXPECT_EQ(size, pyshm_region_size(r2));
	EXPECT_EQ(65536, pyshm_region_max_size(r2));
	EXPECT_EQ(1, ((char *)pyshm_region_data(r2))[size - 1]);
	pyshm_region_put(r2);
}

/* Touching past the current size faults: the mapping is not the limit. */
TEST_SIGNAL(access_past_current_size_faults, SIGBUS)
{
	struct pyshm_region *r;

	if (pyshm_region_create(4096, 1 << 20, 0, &r))
		return;
	((volatile char *)pyshm_region_data(r))[65536] = 1;
}

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* A fresh buffer prefaulted is filled without a fault per page, and keeps
 * what it held. */
TEST(prefault_populates_fresh_memory)
{
	size_t len = 16 << 20, i;
	unsigned char *p;
	long before;

	pyshm_prefault(NULL, 0);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 7;
	pyshm_prefault(p, 1);
	pyshm_prefault(p + 1, len - 1);
	/* (Populating counts as faults: count only the filling's.) */
	before = minor_faults();
	memset(p + 1, 0xab, len - 1);
	/* A fault per page would be 4096; a sanitizer's shadow memory takes
	 * an eighth of that. */
	EXPECT_GT(len / 4096 / 4, minor_faults() - before);
	EXPECT_EQ(7, p[0]);
	for (i = 1; i < len; i += 4093)
		ASSERT_EQ(0xab, p[i]);
	munmap(p, len);
}

TEST_F(region, seal_makes_it_read_only)
{
	struct pyshm_region *r;
	pid_t pid;

	ASSERT_EQ(0, pyshm_region_create(4096, 8192, 0, &r));
	((char *)pyshm_region_data(r))[0] = 7;
	ASSERT_EQ(0, pyshm_region_seal(r));
	EXPECT_EQ(PYSHM_REGION_SEALED, pyshm_region_flags(r));
	EXPECT_EQ(0, pyshm_region_seal(r));
	EXPECT_EQ(7, ((char *)pyshm_region_data(r))[0]);
	EXPECT_EQ(-EPERM, pyshm_region_grow(r, 8192));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		((volatile char *)pyshm_region_data(r))[0] = 1;
		_exit(0);
	}
	EXPECT_EQ(128 + SIGSEGV, wait_child(pid));
	pyshm_region_put(r);
}

TEST_F(region, sealed_region_maps_read_only_elsewhere)
{
	struct pyshm_region *r, *r2;
	pid_t pid;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	((char *)pyshm_region_data(r))[1] = 9;
	ASSERT_EQ(0, pyshm_region_seal(r));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = dup(pyshm_region_fd(r));

		/* Forget the inherited handle, then map from the fd alone. */
		pyshm_region_put(r);
		if (pyshm_region_from_fd(fd, 0, &r2))
			_exit(1);
		if (!(pyshm_region_flags(r2) & PYSHM_REGION_SEALED))
			_exit(2);
		_exit(((char *)pyshm_region_data(r2))[1] == 9 ? 0 : 3);
	}
	EXPECT_EQ(0, wait_child(pid));
	pyshm_region_put(r);
}

TEST_F(region, seal_is_refused_while_another_process_can_write)
{
	struct pyshm_region *r;
	int sv[2];
	pid_t pid;
	char b;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* The inherited writable mapping stays until we exit. */
		if (read(sv[1], &b, 1) != 1)
			_exit(1);
		((char *)pyshm_region_data(r))[0] = 5;
		_exit(0);
	}
	EXPECT_EQ(-EBUSY, pyshm_region_seal(r));
	EXPECT_EQ(0, pyshm_region_flags(r));
	/* Our own mapping is writable again after the refusal. */
	((char *)pyshm_region_data(r))[1] = 6;
	ASSERT_EQ(1, write(sv[0], "x", 1));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(5, ((char *)pyshm_region_data(r))[0]);
	EXPECT_EQ(0, pyshm_region_seal(r));
	close(sv[0]);
	close(sv[1]);
	pyshm_region_put(r);
}

TEST_F(region, tokens_follow_the_backend)
{
	struct pyshm_region *r, *r2 = (void *)0xcc;
	uint64_t tok = 0xcccccccccccccccc;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	EXPECT_EQ(-EINVAL, pyshm_region_export(r, ~0u, &tok));
	EXPECT_EQ(-EINVAL, pyshm_region_export(r, 0, NULL));
	EXPECT_EQ(-EINVAL, pyshm_region_import(1, NULL));
	if (self->backend == PYSHM_BACKEND_MEMFD) {
		EXPECT_EQ(-EOPNOTSUPP, pyshm_region_export(r, 0, &tok));
		EXPECT_EQ(-EOPNOTSUPP, pyshm_region_import(1, &r2));
		EXPECT_EQ(-EOPNOTSUPP, pyshm_region_revoke(1));
	} else {
		ASSERT_EQ(0, pyshm_region_export(r, PYSHM_EXPORT_ONESHOT, &tok));
		ASSERT_EQ(0, pyshm_region_import(tok, &r2));
		EXPECT_EQ(r, r2);	/* same region: same mapping */
		pyshm_region_put(r2);
		EXPECT_EQ(-ENOENT, pyshm_region_import(tok, &r2));
		ASSERT_EQ(0, pyshm_region_export(r, 0, &tok));
		ASSERT_EQ(0, pyshm_region_import(tok, &r2));
		pyshm_region_put(r2);
		ASSERT_EQ(0, pyshm_region_import(tok, &r2));
		pyshm_region_put(r2);
		EXPECT_EQ(0, pyshm_region_revoke(tok));
		EXPECT_EQ(-ENOENT, pyshm_region_import(tok, &r2));
		EXPECT_EQ(-ENOENT, pyshm_region_revoke(tok));
	}
	pyshm_region_put(r);
}

TEST_F(region, stats_count_live_regions_and_bytes)
{
	struct pyshm_region *a, *b;
	struct pyshm_stats st, st0;

	ASSERT_EQ(0, pyshm_stats(&st0, sizeof(st0)));
	EXPECT_EQ(-EINVAL, pyshm_stats(NULL, sizeof(st)));
	EXPECT_EQ(-EINVAL, pyshm_stats(&st, sizeof(st) - 1));
	EXPECT_EQ(-EINVAL, pyshm_stats(&st, sizeof(st) + 8));
	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &a));
	ASSERT_EQ(0, pyshm_region_create(100, 1000, 0, &b));
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(st0.regions + 2, st.regions);
	EXPECT_EQ(st0.bytes + 4196, st.bytes);
	EXPECT_EQ(st0.created + 2, st.created);
	ASSERT_EQ(0, pyshm_region_grow(b, 1000));
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(st0.bytes + 5096, st.bytes);
	pyshm_region_put(a);
	pyshm_region_put(b);
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(st0.regions, st.regions);
	EXPECT_EQ(st0.bytes, st.bytes);
	EXPECT_EQ(st0.freed + 2, st.freed);
}

TEST(backend_names)
{
	EXPECT_STREQ("memfd", pyshm_backend_name(PYSHM_BACKEND_MEMFD));
	EXPECT_STREQ("kmod", pyshm_backend_name(PYSHM_BACKEND_KMOD));
	EXPECT_EQ(NULL, pyshm_backend_name(0));
	EXPECT_EQ(NULL, pyshm_backend_name(99));
}

/* Many threads taking and dropping references: the count stays exact. */
static void *refs_thread(void *arg)
{
	struct pyshm_region *r = arg, *f;
	int i;

	for (i = 0; i < 20000; i++) {
		pyshm_region_put(pyshm_region_get(r));
		if (pyshm_region_lookup(pyshm_region_id(r), &f) == 0)
			pyshm_region_put(f);
	}
	return NULL;
}

TEST_F(region, concurrent_references_stay_balanced)
{
	struct pyshm_region *r;
	pthread_t t[4];
	int i;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, refs_thread, r));
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pyshm_region_put(r);
}

TEST_HARNESS_MAIN
