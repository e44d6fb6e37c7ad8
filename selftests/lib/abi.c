// SPDX-License-Identifier: GPL-2.0
/*
 * The shared library as a program meets it: linked by its soname, exporting
 * the public pyshm_* API and nothing of the internals.
 */
#include <dlfcn.h>
#include <link.h>

#include "kselftest_harness.h"
#include "common.h"

static int find_soname(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *name = info->dlpi_name, *base = strrchr(name, '/');

	*(int *)data |= !strcmp(base ? base + 1 : name, "libpyshm.so.0");
	return 0;
}

TEST(loaded_by_its_soname)
{
	int found = 0;

	dl_iterate_phdr(find_soname, &found);
	EXPECT_EQ(1, found);
}

TEST(public_calls_are_exported)
{
	EXPECT_NE(NULL, dlsym(RTLD_DEFAULT, "pyshm_region_create"));
	EXPECT_NE(NULL, dlsym(RTLD_DEFAULT, "pyshm_ring_sendv"));
	EXPECT_NE(NULL, dlsym(RTLD_DEFAULT, "pyshm_waiter_wait"));
	EXPECT_NE(NULL, dlsym(RTLD_DEFAULT, "pyshm_clone_writer_init"));
}

TEST(internals_are_hidden)
{
	EXPECT_EQ(NULL, dlsym(RTLD_DEFAULT, "__pyshm_getpid"));
	EXPECT_EQ(NULL, dlsym(RTLD_DEFAULT, "__pyshm_wake_uring"));
	EXPECT_EQ(NULL, dlsym(RTLD_DEFAULT, "__pyshm_futex_wait"));
	EXPECT_EQ(NULL, dlsym(RTLD_DEFAULT, "__pyshm_bridge_arm"));
}

TEST(a_region_round_trip_through_the_shared_library)
{
	struct leak_snap before = leak_snap();
	struct pyshm_region *r;

	ASSERT_EQ(0, pyshm_region_create(4096, 0, 0, &r));
	memset(pyshm_region_data(r), 7, 4096);
	EXPECT_EQ(7, ((unsigned char *)pyshm_region_data(r))[4095]);
	pyshm_region_put(r);
	ASSERT_NO_LEAK(before);
}

TEST_HARNESS_MAIN
