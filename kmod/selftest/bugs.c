// SPDX-License-Identifier: GPL-2.0
/*
 * Deliberate bugs, linked only into the test-only build of pyshm.ko that
 * `make vm-check-debug-selftest` boots (kmod/selftest/Kbuild). Writing
 * "leak", "uaf" or "inversion" to the parameter selftest_bug commits one, on
 * pyshm's own objects and lock classes, so that the run shows kmemleak, KASAN
 * and lockdep each catching it and failing the verdict: a green
 * vm-check-debug then means something.
 */
#include <linux/fs.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "internal.h"

/* A token-sized allocation nothing points to once this returns. */
static noinline int bug_leak(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	strscpy(p, "pyshm-selftest-leak", 64);
	return 0;
}

/* A domain read after it was freed. */
static noinline int bug_uaf(void)
{
	struct pyshm_domain *domain;
	unsigned int n;

	domain = kzalloc(sizeof(*domain), GFP_KERNEL);
	if (!domain)
		return -ENOMEM;
	mutex_init(&domain->lock);
	kfree(domain);
	OPTIMIZER_HIDE_VAR(domain);
	n = READ_ONCE(domain->nr_tokens);
	return n ? -EINVAL : 0;
}

/*
 * region->lock nests inside the shmem inode lock (grow; see domain.c). Take
 * them in that order once, so lockdep knows it, then the other way round. One
 * thread does both: nothing deadlocks, but lockdep must call it out.
 */
static noinline int bug_inversion(void)
{
	struct pyshm_region *region;
	struct inode *inode;

	region = pyshm_region_create(PAGE_SIZE, PAGE_SIZE);
	if (IS_ERR(region))
		return PTR_ERR(region);
	inode = file_inode(region->shmem);

	inode_lock(inode);
	mutex_lock(&region->lock);
	mutex_unlock(&region->lock);
	inode_unlock(inode);

	mutex_lock(&region->lock);
	inode_lock(inode);
	inode_unlock(inode);
	mutex_unlock(&region->lock);

	pyshm_region_put(region);
	return 0;
}

static int selftest_bug_set(const char *val, const struct kernel_param *kp)
{
	if (sysfs_streq(val, "leak"))
		return bug_leak();
	if (sysfs_streq(val, "uaf"))
		return bug_uaf();
	if (sysfs_streq(val, "inversion"))
		return bug_inversion();
	return -EINVAL;
}

static const struct kernel_param_ops selftest_bug_ops = {
	.set = selftest_bug_set,
};
module_param_cb(selftest_bug, &selftest_bug_ops, NULL, 0200);
MODULE_PARM_DESC(selftest_bug,
		 "Test-only build: commit a deliberate bug (leak, uaf, inversion)");
