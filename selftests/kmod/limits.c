// SPDX-License-Identifier: GPL-2.0
/*
 * Limit tests: the module parameters (max_region_size, max_user_bytes,
 * max_user_regions, max_domain_tokens), the errnos for going over them, and
 * the refusal of nonsense values. Needs root (to set the parameters); each
 * test runs its users as fresh uids in child processes and restores the
 * parameters.
 */
#include "kselftest_harness.h"
#include "pyshm_test.h"

static const char *const params[] = {
	"max_region_size", "max_user_bytes", "max_user_regions",
	"max_domain_tokens",
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

FIXTURE(limits) {
	long long saved[NPARAMS];
	long page;
};

FIXTURE_SETUP(limits)
{
	unsigned int i;
	int fd;

	self->page = page_size();
	fd = domain_open();
	if (fd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
	close(fd);
	for (i = 0; i < NPARAMS; i++) {
		self->saved[i] = param_get(params[i]);
		ASSERT_LE(0, self->saved[i]);
	}
	if (geteuid() != 0 || param_set_num(params[0], self->saved[0]))
		SKIP_TEST("module parameters are not writable");
}

FIXTURE_TEARDOWN(limits)
{
	unsigned int i;

	for (i = 0; i < NPARAMS; i++)
		EXPECT_EQ(0, param_set_num(params[i], self->saved[i]));
}

/* Become @uid (a fresh user with nothing charged) in this child. */
static int become(uid_t uid)
{
	return setgid(uid) || setuid(uid) ? -1 : 0;
}

static int region_size_limit(void *arg)
{
	long page = page_size();
	int d;

	if (become(40001) || (d = domain_open()) < 0)
		return 10;
	if (region_create(d, 16 * page, 0, NULL) < 0)
		return 1;
	if (region_create(d, 16 * page + 1, 0, NULL) != -1 || errno != E2BIG)
		return 2;
	if (region_create(d, page, 17 * page, NULL) != -1 || errno != E2BIG)
		return 3;
	if (region_create(d, 0, 16 * page, NULL) < 0)
		return 4;
	return 0;
}

TEST_F(limits, region_above_max_region_size_is_e2big)
{
	ASSERT_EQ(0, param_set_num("max_region_size", 16 * self->page));
	EXPECT_EQ(0, in_child(region_size_limit, NULL));
}

static int bytes_quota(void *arg)
{
	long page = page_size();
	int d, a, b, g;

	if (become(40002) || (d = domain_open()) < 0)
		return 10;
	/* Charged: current sizes, rounded up to pages. */
	a = region_create(d, 3 * page + 1, 0, NULL);	/* 4 pages */
	if (a < 0)
		return 1;
	if (region_create(d, 4 * page + 1, 0, NULL) != -1 || errno != EDQUOT)
		return 2;
	b = region_create(d, 4 * page, 0, NULL);
	if (b < 0)
		return 3;
	if (region_create(d, 1, 0, NULL) != -1 || errno != EDQUOT)
		return 4;
	/* A growable region costs what it holds, until it grows. */
	close(b);
	g = region_create(d, 0, 64 * page, NULL);
	if (g < 0)
		return 5;
	if (region_grow(g, 4 * page))
		return 6;
	if (region_grow(g, 4 * page + 1) != -1 || errno != EDQUOT)
		return 7;
	if (region_size(g) != (uint64_t)(4 * page))
		return 8;
	/* Freeing gives the bytes back. */
	close(a);
	if (region_grow(g, 8 * page))
		return 9;
	return 0;
}

TEST_F(limits, user_bytes_over_max_user_bytes_is_edquot)
{
	ASSERT_EQ(0, param_set_num("max_user_bytes", 8 * self->page));
	EXPECT_EQ(0, in_child(bytes_quota, NULL));
}

static int regions_quota(void *arg)
{
	int d, fds[4], i;

	if (become(40003) || (d = domain_open()) < 0)
		return 10;
	for (i = 0; i < 4; i++) {
		fds[i] = region_create(d, 4096, 0, NULL);
		if (fds[i] < 0)
			return 1;
	}
	if (region_create(d, 4096, 0, NULL) != -1 || errno != ENOSPC)
		return 2;
	close(fds[0]);
	fds[0] = region_create(d, 4096, 0, NULL);
	if (fds[0] < 0)
		return 3;
	return 0;
}

TEST_F(limits, regions_over_max_user_regions_is_enospc)
{
	ASSERT_EQ(0, param_set_num("max_user_regions", 4));
	EXPECT_EQ(0, in_child(regions_quota, NULL));
}

/* A region pinned by a token or mapped still counts against its owner. */
static int holds_count(void *arg)
{
	long page = page_size();
	uint64_t token;
	void *p;
	int d, a, b;

	if (become(40004) || (d = domain_open()) < 0)
		return 10;
	a = region_create(d, page, 0, NULL);
	b = region_create(d, page, 0, NULL);
	if (a < 0 || b < 0)
		return 1;
	if (token_export(d, a, 0, &token))
		return 2;
	p = map(b, page, PROT_READ);
	if (p == MAP_FAILED)
		return 3;
	close(a);
	close(b);
	if (region_create(d, page, 0, NULL) != -1 || errno != ENOSPC)
		return 4;
	token_revoke(d, token);
	if (region_create(d, page, 0, NULL) < 0)
		return 5;
	return 0;
}

TEST_F(limits, pinned_and_mapped_regions_still_count)
{
	ASSERT_EQ(0, param_set_num("max_user_regions", 2));
	EXPECT_EQ(0, in_child(holds_count, NULL));
}

static int user_full(void *arg)
{
	int *pipefd = arg, d;
	char b;

	if (become(40005) || (d = domain_open()) < 0)
		return 10;
	if (region_create(d, 4096, 0, NULL) < 0)
		return 1;
	if (region_create(d, 4096, 0, NULL) != -1 || errno != ENOSPC)
		return 2;
	/* Stay full while the other user works. */
	if (write(pipefd[1], "x", 1) != 1 || read(pipefd[0], &b, 1) != 1)
		return 3;
	return 0;
}

static int user_other(void *arg)
{
	int d;

	if (become(40006) || (d = domain_open()) < 0)
		return 10;
	return region_create(d, 4096, 0, NULL) < 0 ? 1 : 0;
}

TEST_F(limits, quotas_are_per_user)
{
	int to_parent[2], to_child[2], pair[2];
	pid_t pid;
	char b;

	ASSERT_EQ(0, param_set_num("max_user_regions", 1));
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pair[0] = to_child[0];
		pair[1] = to_parent[1];
		_exit(user_full(pair));
	}
	ASSERT_EQ(1, read(to_parent[0], &b, 1));
	EXPECT_EQ(0, in_child(user_other, NULL));
	ASSERT_EQ(1, write(to_child[1], "x", 1));
	EXPECT_EQ(0, wait_status(pid));
}

static int token_limit(void *arg)
{
	uint64_t t[4];
	int d, fd, i;

	if ((d = domain_open()) < 0)
		return 10;
	fd = region_create(d, 4096, 0, NULL);
	if (fd < 0)
		return 1;
	for (i = 0; i < 3; i++)
		if (token_export(d, fd, i & 1, &t[i]))
			return 2;
	if (token_export(d, fd, 0, &t[3]) != -1 || errno != ENOSPC)
		return 3;
	/* The limit is per domain. */
	i = domain_open();
	if (i < 0 || token_export(i, fd, 0, &t[3]))
		return 4;
	/* Consuming or revoking makes room. */
	if (token_revoke(d, t[0]))
		return 5;
	if (token_export(d, fd, 0, &t[0]))
		return 6;
	if (token_import(d, t[1], NULL) < 0)
		return 7;
	if (token_export(d, fd, 0, &t[1]))
		return 8;
	return 0;
}

TEST_F(limits, tokens_over_max_domain_tokens_is_enospc)
{
	ASSERT_EQ(0, param_set_num("max_domain_tokens", 3));
	EXPECT_EQ(0, in_child(token_limit, NULL));
}

TEST_F(limits, parameters_refuse_nonsense)
{
	static const char *const bad_sizes[] = {
		"0", "1", "-1", "abc", "4k5", "k", "99999999999999999999999",
		"0x4000000000001",	/* 2^46 + 1 */ "16777216T",
	};
	static const char *const bad_counts[] = {
		"0", "-1", "abc", "1048577", "99999999999999999999999", "1k",
	};
	unsigned int i;
	long long before;

	before = param_get("max_region_size");
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		EXPECT_EQ(-EINVAL, param_set("max_region_size", bad_sizes[i]))
			TH_LOG("max_region_size=%s", bad_sizes[i]);
	}
	EXPECT_EQ(before, param_get("max_region_size"));
	for (i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
		EXPECT_EQ(-EINVAL, param_set("max_user_regions", bad_counts[i]))
			TH_LOG("max_user_regions=%s", bad_counts[i]);
		EXPECT_EQ(-EINVAL, param_set("max_domain_tokens", bad_counts[i]))
			TH_LOG("max_domain_tokens=%s", bad_counts[i]);
	}
	EXPECT_EQ(-EINVAL, param_set("max_user_bytes", "1"));
	EXPECT_EQ(-EINVAL, param_set("max_user_bytes", "-5"));
	/* Sensible values, suffixes included, are taken. */
	EXPECT_EQ(0, param_set("max_region_size", "64M"));
	EXPECT_EQ(64 << 20, param_get("max_region_size"));
	EXPECT_EQ(0, param_set("max_user_bytes", "0"));	/* auto */
	EXPECT_EQ(0, param_get("max_user_bytes"));
	EXPECT_EQ(0, param_set("max_user_regions", "1048576"));
}

TEST_HARNESS_MAIN
