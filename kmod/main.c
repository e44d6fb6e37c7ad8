// SPDX-License-Identifier: GPL-2.0
/*
 * pyshm.ko: the misc device /dev/pyshm and module load/unload. Each open of
 * the device is a domain (domain.c) that creates refcounted shmem regions
 * (region.c) and trades them by token (token.c), within per-user limits
 * (limits.c), observable through debugfs (debugfs.c).
 */
#include <linux/miscdevice.h>
#include <linux/module.h>

#include "internal.h"

/* Set once the module is up; parameter errors before it are load errors. */
bool pyshm_loaded;

static struct miscdevice pyshm_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = PYSHM_DEVICE_NAME,
	.fops = &pyshm_domain_fops,
	/* Any user may open a domain; the limits are per user. */
	.mode = 0666,
};

static int __init pyshm_init(void)
{
	int ret;

	pyshm_debugfs_init();
	ret = misc_register(&pyshm_misc);
	if (ret) {
		pyshm_debugfs_uninit();
		return ret;
	}
	pyshm_loaded = true;
	return 0;
}

static void __exit pyshm_exit(void)
{
	misc_deregister(&pyshm_misc);
	pyshm_debugfs_uninit();
	/* Every region is gone; let their RCU frees finish with our code. */
	rcu_barrier();
}

module_init(pyshm_init);
module_exit(pyshm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Refcounted shared-memory regions shared by capability");
MODULE_VERSION("1.0");
