// SPDX-License-Identifier: GPL-2.0
/*
 * libpyshm's kmod backend, where it differs from memfd: the backend is picked
 * by /dev/pyshm, region ids are the kernel's, a child started with exec()
 * adopts its parent's domain fd to import the parent's tokens, and an empty
 * fixed-size region keeps its max size of 0. (The common region API runs on
 * both backends in selftests/lib.)
 */
#include <pyshm/region.h>

#include "kselftest_harness.h"
#include "pyshm_test.h"

FIXTURE(lib_kmod) {
	int unused;
};

FIXTURE_SETUP(lib_kmod)
{
	const char *env = getenv("PYSHM_BACKEND");

	if (access(DEV_PYSHM, R_OK | W_OK))
		SKIP_TEST("no %s", DEV_PYSHM);
	if (env && strcmp(env, "kmod"))
		SKIP_TEST("PYSHM_BACKEND=%s", env);
}

FIXTURE_TEARDOWN(lib_kmod)
{
}

TEST_F(lib_kmod, device_present_means_kmod)
{
	EXPECT_EQ(PYSHM_BACKEND_KMOD, pyshm_backend());
	EXPECT_LE(0, pyshm_kmod_domain_fd());
}

TEST_F(lib_kmod, region_ids_are_the_kernels)
{
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(4096, 8192, 0, &r));
	EXPECT_EQ(region_id(pyshm_region_fd(r)), pyshm_region_id(r));
	EXPECT_EQ(PYSHM_REGION_GROWABLE, pyshm_region_flags(r));
	if (debugfs_readable())
		EXPECT_EQ(1, dbg_region(pyshm_region_id(r), NULL));
	pyshm_region_put(r);
}

TEST_F(lib_kmod, empty_fixed_region_cannot_grow)
{
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(0, 0, 0, &r));
	EXPECT_EQ(0, pyshm_region_size(r));
	EXPECT_EQ(0, pyshm_region_max_size(r));
	EXPECT_EQ(0, pyshm_region_flags(r));
	EXPECT_EQ(-EFBIG, pyshm_region_grow(r, 1));
	pyshm_region_put(r);
}

TEST_F(lib_kmod, adopt_is_refused_once_the_backend_is_chosen)
{
	int fd = domain_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(PYSHM_BACKEND_KMOD, pyshm_backend());
	EXPECT_EQ(-EBUSY, pyshm_kmod_domain_adopt(fd));
	close(fd);
}

/* Run this program again as "--child CASE FD TOKEN"; its exit status. */
static int exec_child(const char *what, int fd, uint64_t token)
{
	char fds[16], tok[32];
	pid_t pid;

	snprintf(fds, sizeof(fds), "%d", fd);
	snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl("/proc/self/exe", "lib_kmod", "--child", what, fds, tok,
		      (char *)NULL);
		_exit(99);
	}
	return wait_status(pid);
}

TEST_F(lib_kmod, exec_child_adopts_the_domain_and_imports)
{
	struct pyshm_region *r;
	uint64_t token;
	int dfd;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	((char *)pyshm_region_data(r))[100] = 42;
	ASSERT_EQ(0, pyshm_region_export(r, PYSHM_EXPORT_ONESHOT, &token));
	dfd = pyshm_kmod_domain_fd();
	ASSERT_LE(0, dfd);
	/* The library opens it O_CLOEXEC; a parent passing it on clears that. */
	ASSERT_EQ(0, fcntl(dfd, F_SETFD, 0));
	EXPECT_EQ(0, exec_child("import", dfd, token));
	ASSERT_EQ(0, fcntl(dfd, F_SETFD, FD_CLOEXEC));
	/* The child consumed it, in our domain. */
	EXPECT_EQ(-ENOENT, pyshm_region_import(token, &r));
	EXPECT_EQ(43, ((char *)pyshm_region_data(r))[100]);
	pyshm_region_put(r);
}

TEST_F(lib_kmod, exec_child_refuses_what_is_not_a_domain)
{
	EXPECT_EQ(0, exec_child("refuse", -1, 0));
}

static int child_main(int argc, char **argv)
{
	struct pyshm_region *r;
	uint64_t token;
	int fd, p[2];

	if (argc != 5)
		return 90;
	fd = atoi(argv[3]);
	token = strtoull(argv[4], NULL, 0);
	if (!strcmp(argv[2], "import")) {
		if (pyshm_kmod_domain_adopt(fd))
			return 1;
		if (pyshm_kmod_domain_adopt(fd) != -EBUSY)
			return 2;
		if (pyshm_backend() != PYSHM_BACKEND_KMOD)
			return 3;
		if (pyshm_kmod_domain_fd() != fd)
			return 4;
		if (pyshm_region_import(token, &r))
			return 5;
		if (((char *)pyshm_region_data(r))[100] != 42)
			return 6;
		((char *)pyshm_region_data(r))[100] = 43;
		pyshm_region_put(r);
		return 0;
	}
	if (!strcmp(argv[2], "refuse")) {
		if (pyshm_kmod_domain_adopt(-1) != -EBADF)
			return 1;
		if (pipe(p) || pyshm_kmod_domain_adopt(p[0]) != -ENOTTY)
			return 2;
		fd = domain_open();
		if (fd < 0)
			return 3;
		/* A region fd is no domain either. */
		p[0] = region_create(fd, 4096, 0, NULL);
		if (p[0] < 0 || pyshm_kmod_domain_adopt(p[0]) != -ENOTTY)
			return 4;
		/* Failed adoptions leave the choice open. */
		if (pyshm_kmod_domain_adopt(fd))
			return 5;
		return pyshm_kmod_domain_fd() == fd ? 0 : 6;
	}
	return 91;
}

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child_main(argc, argv);
	return test_harness_run(argc, argv);
}
