// SPDX-License-Identifier: GPL-2.0
/*
 * Token tests: export, import and revoke, one-shot and multi-use tokens,
 * pins, and the domain boundary: a token of another domain, a stale, revoked
 * or consumed one gives ENOENT and never anyone's memory.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "pyshm_test.h"

#define NJUNK (sizeof(junk_values) / sizeof(junk_values[0]))

FIXTURE(token) {
	int dfd;	/* domain A */
	int dfd2;	/* domain B */
	long page;
};

FIXTURE_SETUP(token)
{
	self->page = page_size();
	self->dfd = domain_open();
	if (self->dfd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
	self->dfd2 = domain_open();
	ASSERT_LE(0, self->dfd2);
}

FIXTURE_TEARDOWN(token)
{
	if (self->dfd >= 0)
		close(self->dfd);
	if (self->dfd2 >= 0)
		close(self->dfd2);
}

/* A region of @pages pages filled with @byte, mapped at *@p. */
static int filled_region(int dfd, long pages, int byte, char **p, uint64_t *id)
{
	long page = page_size();
	int fd = region_create(dfd, pages * page, 0, id);

	if (fd < 0)
		return -1;
	*p = map(fd, pages * page, PROT_READ | PROT_WRITE);
	if (*p == MAP_FAILED) {
		close(fd);
		return -1;
	}
	memset(*p, byte, pages * page);
	return fd;
}

TEST_F(token, oneshot_token_imports_the_same_region_once)
{
	struct pyshm_region_import im;
	uint64_t token, id;
	char *p, *q;
	int fd, fd2;

	fd = filled_region(self->dfd, 2, 0x5a, &p, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	EXPECT_NE(0, token);
	EXPECT_NE(POISON_U64, token);

	fd2 = token_import(self->dfd, token, &im);
	ASSERT_LE(0, fd2);
	EXPECT_NE(fd, fd2);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd2, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(id, im.id);
	EXPECT_EQ(2 * self->page, im.size);
	EXPECT_EQ(2 * self->page, im.max_size);
	EXPECT_EQ(0, im.state);
	EXPECT_EQ(0, im.pad);
	q = map(fd2, 2 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0x5a, q[2 * self->page - 1]);
	q[0] = 1;
	EXPECT_EQ(1, p[0]);

	/* Consumed. */
	EXPECT_EQ(-1, token_import(self->dfd, token, &im));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ((int)POISON_U32, im.fd);
	EXPECT_EQ(POISON_U64, im.id);
	EXPECT_EQ(-1, token_revoke(self->dfd, token));
	EXPECT_EQ(ENOENT, errno);

	munmap(p, 2 * self->page);
	munmap(q, 2 * self->page);
	close(fd);
	close(fd2);
}

TEST_F(token, multi_use_token_imports_until_revoked)
{
	uint64_t token, id;
	int fd, i, fds[3];
	char *p;

	fd = filled_region(self->dfd, 1, 1, &p, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, 0, &token));
	for (i = 0; i < 3; i++) {
		fds[i] = token_import(self->dfd, token, NULL);
		ASSERT_LE(0, fds[i]);
		EXPECT_EQ(id, region_id(fds[i]));
	}
	ASSERT_EQ(0, token_revoke(self->dfd, token));
	EXPECT_EQ(-1, token_import(self->dfd, token, NULL));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, token_revoke(self->dfd, token));
	EXPECT_EQ(ENOENT, errno);
	/* Imported fds outlive the token. */
	EXPECT_EQ(id, region_id(fds[2]));
	for (i = 0; i < 3; i++)
		close(fds[i]);
	munmap(p, self->page);
	close(fd);
}

TEST_F(token, revoked_oneshot_token_is_gone)
{
	uint64_t token;
	int fd = region_create(self->dfd, 4096, 0, NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	ASSERT_EQ(0, token_revoke(self->dfd, token));
	EXPECT_EQ(-1, token_import(self->dfd, token, NULL));
	EXPECT_EQ(ENOENT, errno);
	close(fd);
}

TEST_F(token, every_export_is_a_new_token)
{
	uint64_t t[16];
	int fd, i, j;

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, token_export(self->dfd, fd, i & 1, &t[i]));
		for (j = 0; j < i; j++)
			EXPECT_NE(t[j], t[i]);
	}
	for (i = 0; i < 16; i++)
		EXPECT_EQ(0, token_revoke(self->dfd, t[i]));
	close(fd);
}

TEST_F(token, unknown_tokens_are_enoent)
{
	static const uint64_t tokens[] = { 0, 1, ~0ULL, 0x80000000ULL, POISON_U64 };
	unsigned int i;

	for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		EXPECT_EQ(-1, token_import(self->dfd, tokens[i], NULL));
		EXPECT_EQ(ENOENT, errno);
		EXPECT_EQ(-1, token_revoke(self->dfd, tokens[i]));
		EXPECT_EQ(ENOENT, errno);
	}
}

TEST_F(token, token_of_another_domain_never_maps_its_memory)
{
	uint64_t token, mine, id;
	char *p;
	int fd, fd2, i;

	fd = filled_region(self->dfd, 1, 0x5a, &p, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, 0, &token));
	EXPECT_EQ(-1, token_import(self->dfd2, token, NULL));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, token_revoke(self->dfd2, token));
	EXPECT_EQ(ENOENT, errno);

	/* Domain B has a region of its own; guessing never reaches A's. */
	fd2 = region_create(self->dfd2, 4096, 0, NULL);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, token_export(self->dfd2, fd2, 0, &mine));
	srandom(getpid());
	for (i = 0; i < 20000; i++) {
		uint64_t guess = ((uint64_t)random() << 33) ^ ((uint64_t)random() << 11) ^ random();
		int r;

		if (guess == mine)
			continue;
		r = token_import(self->dfd2, guess, NULL);
		if (r >= 0) {
			EXPECT_NE(id, region_id(r));
			close(r);
		}
		ASSERT_EQ(-1, r);
		ASSERT_EQ(ENOENT, errno);
		/* Neighbours of the real token too. */
		ASSERT_EQ(-1, token_import(self->dfd2, token ^ (1ULL << (i % 64)), NULL));
	}
	/* And A still can: the failed attempts consumed nothing. */
	i = token_import(self->dfd, token, NULL);
	ASSERT_LE(0, i);
	EXPECT_EQ(id, region_id(i));
	close(i);
	/* B's own token from A: the same. */
	EXPECT_EQ(-1, token_import(self->dfd, mine, NULL));
	EXPECT_EQ(ENOENT, errno);
	munmap(p, self->page);
	close(fd);
	close(fd2);
}

TEST_F(token, export_pins_the_region)
{
	struct dbg_region d;
	uint64_t token, id;
	char *p;
	int fd;

	if (!debugfs_readable())
		SKIP(return, "no debugfs listing");
	fd = filled_region(self->dfd, 1, 0x33, &p, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(3, d.holds);	/* fd, mapping, pin */
	EXPECT_EQ(1, d.maps);
	EXPECT_EQ(1, d.pins);
	EXPECT_EQ(1, d.writable);
	munmap(p, self->page);
	close(fd);
	/* Only the token holds it now: a message in flight. */
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(1, d.holds);
	EXPECT_EQ(1, d.pins);

	fd = token_import(self->dfd, token, NULL);
	ASSERT_LE(0, fd);
	p = map(fd, self->page, PROT_READ);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0x33, p[100]);
	ASSERT_EQ(1, dbg_region(id, &d));
	EXPECT_EQ(2, d.holds);	/* fd, mapping: the one-shot pin is gone */
	EXPECT_EQ(0, d.pins);
	EXPECT_EQ(0, d.writable);
	close(fd);
	munmap(p, self->page);
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(token, revoke_drops_the_last_hold)
{
	uint64_t token, id;
	int fd;

	if (!debugfs_readable())
		SKIP(return, "no debugfs listing");
	fd = region_create(self->dfd, 4096, 0, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, 0, &token));
	close(fd);
	EXPECT_EQ(1, dbg_region(id, NULL));
	ASSERT_EQ(0, token_revoke(self->dfd, token));
	EXPECT_TRUE(dbg_gone(id));
}

TEST_F(token, closing_the_domain_drops_its_pins_and_tokens)
{
	uint64_t t1, t2, id;
	int d, fd;

	d = domain_open();
	ASSERT_LE(0, d);
	fd = region_create(d, 4096, 0, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(d, fd, 0, &t1));
	ASSERT_EQ(0, token_export(d, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &t2));
	close(fd);
	close(d);
	if (debugfs_readable())
		EXPECT_TRUE(dbg_gone(id));
	/* Stale: a new domain never knew them. */
	d = domain_open();
	ASSERT_LE(0, d);
	EXPECT_EQ(-1, token_import(d, t1, NULL));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, token_import(d, t2, NULL));
	EXPECT_EQ(ENOENT, errno);
	close(d);
}

TEST_F(token, a_child_imports_through_the_inherited_domain)
{
	int sv[2], fd, status;
	uint64_t token, id;
	pid_t pid;
	char *p;

	fd = filled_region(self->dfd, 1, 0x77, &p, &id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe(sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint64_t t;
		char *q;
		int r;

		close(fd);	/* only the token brings the region */
		if (read(sv[0], &t, sizeof(t)) != sizeof(t))
			_exit(1);
		r = token_import(self->dfd, t, NULL);
		if (r < 0)
			_exit(2);
		if (region_id(r) != id)
			_exit(3);
		q = map(r, page_size(), PROT_READ | PROT_WRITE);
		if (q == MAP_FAILED)
			_exit(4);
		if (q[5] != 0x77)
			_exit(5);
		q[6] = 0x11;
		_exit(0);
	}
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	ASSERT_EQ(sizeof(token), write(sv[1], &token, sizeof(token)));
	status = wait_status(pid);
	EXPECT_EQ(0, status);
	EXPECT_EQ(0x11, p[6]);
	/* The child consumed it. */
	EXPECT_EQ(-1, token_import(self->dfd, token, NULL));
	EXPECT_EQ(ENOENT, errno);
	close(sv[0]);
	close(sv[1]);
	munmap(p, self->page);
	close(fd);
}

TEST_F(token, sealed_regions_import_sealed)
{
	struct pyshm_region_import im;
	uint64_t token;
	int fd, fd2;

	fd = region_create(self->dfd, 4096, 8192, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, region_seal(fd));
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	fd2 = token_import(self->dfd, token, &im);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(PYSHM_REGION_STATE_SEALED, im.state);
	EXPECT_EQ(MAP_FAILED, map(fd2, 4096, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EPERM, errno);
	close(fd2);
	close(fd);
}

TEST_F(token, export_rejects_junk)
{
	struct pyshm_region_export e;
	uint64_t token = POISON_U64;
	unsigned int i, j;
	int fd, p[2];

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	for (j = 0; j < NJUNK + 1; j++) {
		memset(&e, 0, sizeof(e));
		e.fd = fd;
		e.flags = j < NJUNK ? (uint32_t)junk_values[j] : 2;
		if (e.flags == PYSHM_REGION_EXPORT_F_ONESHOT)
			continue;
		poison(e.token);
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_EXPORT, &e));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(POISON_U64, e.token);
	}
	for (i = 0; i < 4; i++) {
		for (j = 0; j < NJUNK; j++) {
			memset(&e, 0, sizeof(e));
			e.fd = fd;
			e.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_EXPORT, &e));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	/* Not region fds. */
	EXPECT_EQ(-1, token_export(self->dfd, -1, 0, &token));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, token_export(self->dfd, 1 << 30, 0, &token));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, token_export(self->dfd, (int)0x80000000U, 0, &token));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, token_export(self->dfd, self->dfd2, 0, &token));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, pipe(p));
	EXPECT_EQ(-1, token_export(self->dfd, p[0], 0, &token));
	EXPECT_EQ(EINVAL, errno);
	close(p[0]);
	close(p[1]);
	EXPECT_EQ(POISON_U64, token);
	/* Export is a domain ioctl. */
	EXPECT_EQ(-1, token_export(fd, fd, 0, &token));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

TEST_F(token, import_rejects_junk)
{
	struct pyshm_region_import im;
	unsigned int i, j;
	uint64_t token;
	int fd;

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	for (j = 0; j < NJUNK; j++) {
		memset(&im, 0, sizeof(im));
		im.token = token;
		im.flags = (uint32_t)junk_values[j];
		poison(im.fd);
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_IMPORT, &im));
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ((int)POISON_U32, im.fd);
		memset(&im, 0, sizeof(im));
		im.token = token;
		im.pad = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_IMPORT, &im));
		EXPECT_EQ(EINVAL, errno);
		for (i = 0; i < 4; i++) {
			memset(&im, 0, sizeof(im));
			im.token = token;
			im.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_IMPORT, &im));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	/* None of that consumed the one-shot token. */
	i = token_import(self->dfd, token, NULL);
	EXPECT_LE(0, (int)i);
	close(i);
	/* Import is a domain ioctl. */
	EXPECT_EQ(-1, token_import(fd, token, NULL));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

/* An import that can't write its answer fails and leaves the token. */
TEST_F(token, failed_import_keeps_the_oneshot_token)
{
	struct pyshm_region_import *im;
	uint64_t token;
	int fd, next;

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
	im = mmap(NULL, self->page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, im);
	memset(im, 0, sizeof(*im));
	im->token = token;
	ASSERT_EQ(0, mprotect(im, self->page, PROT_READ));
	next = dup(0);
	ASSERT_LE(0, next);
	close(next);
	EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_REGION_IMPORT, im));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, fcntl(next, F_GETFD));
	munmap(im, self->page);
	next = token_import(self->dfd, token, NULL);
	EXPECT_LE(0, next);
	close(next);
	close(fd);
}

TEST_F(token, revoke_rejects_junk)
{
	struct pyshm_token_revoke r;
	unsigned int i, j;
	uint64_t token;
	int fd;

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, token_export(self->dfd, fd, 0, &token));
	for (j = 0; j < NJUNK; j++) {
		memset(&r, 0, sizeof(r));
		r.token = token;
		r.flags = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_TOKEN_REVOKE, &r));
		EXPECT_EQ(EINVAL, errno);
		memset(&r, 0, sizeof(r));
		r.token = token;
		r.pad = (uint32_t)junk_values[j];
		EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_TOKEN_REVOKE, &r));
		EXPECT_EQ(EINVAL, errno);
		for (i = 0; i < 2; i++) {
			memset(&r, 0, sizeof(r));
			r.token = token;
			r.reserved[i] = junk_values[j];
			EXPECT_EQ(-1, ioctl(self->dfd, PYSHM_IOC_TOKEN_REVOKE, &r));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	EXPECT_EQ(-1, token_revoke(fd, token));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(0, token_revoke(self->dfd, token));
	close(fd);
}

struct race {
	int dfd;
	uint64_t token;
	pthread_barrier_t *go;
	int fd;
};

static void *race_import(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(r->go);
	r->fd = token_import(r->dfd, r->token, NULL);
	return NULL;
}

/* Of importers racing for a one-shot token, exactly one wins. */
TEST_F(token, racing_imports_of_a_oneshot_token_have_one_winner)
{
	enum { THREADS = 4, ROUNDS = 200 };
	struct race r[THREADS];
	pthread_barrier_t go;
	pthread_t t[THREADS];
	uint64_t token;
	int fd, i, n, winners;

	fd = region_create(self->dfd, 4096, 0, NULL);
	ASSERT_LE(0, fd);
	for (n = 0; n < ROUNDS; n++) {
		ASSERT_EQ(0, token_export(self->dfd, fd, PYSHM_REGION_EXPORT_F_ONESHOT, &token));
		pthread_barrier_init(&go, NULL, THREADS);
		for (i = 0; i < THREADS; i++) {
			r[i] = (struct race){ .dfd = self->dfd, .token = token, .go = &go };
			ASSERT_EQ(0, pthread_create(&t[i], NULL, race_import, &r[i]));
		}
		winners = 0;
		for (i = 0; i < THREADS; i++) {
			pthread_join(t[i], NULL);
			if (r[i].fd >= 0) {
				winners++;
				close(r[i].fd);
			}
		}
		pthread_barrier_destroy(&go);
		ASSERT_EQ(1, winners);
	}
	close(fd);
}

TEST_HARNESS_MAIN
