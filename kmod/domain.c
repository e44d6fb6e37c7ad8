// SPDX-License-Identifier: GPL-2.0
/*
 * Domains: each open of /dev/pyshm. A domain fd creates regions, and exports
 * and imports tokens that only it knows; nothing of one domain is reachable
 * from another.
 *
 * Lock order, outermost first:
 *
 *   mmap_lock (mm, around ->mmap and vma open/close) or the shmem inode
 *   lock (grow, seal; shmem takes mmap_lock inside it when a write faults)
 *     region->lock           (only spinlocks and trylocks nest inside)
 *   domain->lock             (never held with region->lock)
 *   regions_lock, users_lock (spinlocks; nothing nests inside them)
 *
 * References: a region file, each mapping and each token hold their region;
 * a region holds the module. A domain is its file: ioctls run with the file
 * held, and its release drops its tokens.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "internal.h"

static long domain_version(void __user *argp)
{
	struct pyshm_version args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_VERSION_F_ALL ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	args.major = PYSHM_VERSION_MAJOR;
	args.minor = PYSHM_VERSION_MINOR;
	args.features = 0;
	return copy_to_user(argp, &args, sizeof(args)) ? -EFAULT : 0;
}

static long domain_create(void __user *argp)
{
	struct pyshm_region_create args;
	struct pyshm_region *region;
	struct file *file;
	int fd, ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_CREATE_F_ALL ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.max_size)
		args.max_size = args.size;
	if (!args.max_size || args.size > args.max_size)
		return -EINVAL;
	if (args.max_size > pyshm_limit_region_size())
		return -E2BIG;

	/* memfd order: reserve the fd, make the file, report, install. */
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	region = pyshm_region_create(args.size, args.max_size);
	if (IS_ERR(region)) {
		ret = PTR_ERR(region);
		goto err_put_fd;
	}
	file = pyshm_region_file(region);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_put_region;
	}

	args.fd = fd;
	args.id = region->id;
	if (copy_to_user(argp, &args, sizeof(args))) {
		ret = -EFAULT;
		goto err_fput;
	}
	fd_install(fd, file);
	return 0;

err_fput:
	fput(file);	/* and the region with it */
	put_unused_fd(fd);
	return ret;
err_put_region:
	pyshm_region_put(region);
err_put_fd:
	put_unused_fd(fd);
	return ret;
}

static long domain_export(struct pyshm_domain *domain, void __user *argp)
{
	struct pyshm_region_export args;
	struct pyshm_region *region;
	struct fd f;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_EXPORT_F_ALL ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	f = fdget(args.fd);
	if (!pyshm_fd_file(f))
		return -EBADF;
	region = pyshm_region_from_file(pyshm_fd_file(f));
	if (!region) {
		ret = -EINVAL;
		goto out_fdput;
	}
	ret = pyshm_token_export(domain, region,
				 args.flags & PYSHM_REGION_EXPORT_F_ONESHOT,
				 &args.token);
	if (ret)
		goto out_fdput;
	if (copy_to_user(argp, &args, sizeof(args))) {
		/* Nobody learnt the token: take it back. */
		pyshm_token_revoke(domain, args.token);
		ret = -EFAULT;
	}
out_fdput:
	fdput(f);
	return ret;
}

static long domain_import(struct pyshm_domain *domain, void __user *argp)
{
	struct pyshm_region_import args;
	struct pyshm_region *region;
	struct file *file;
	bool oneshot;
	int fd, ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_IMPORT_F_ALL || args.pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	region = pyshm_token_lookup(domain, args.token, &oneshot);
	if (IS_ERR(region)) {
		ret = PTR_ERR(region);
		goto err_put_fd;
	}
	file = pyshm_region_file(region);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_put_region;
	}

	args.fd = fd;
	args.id = region->id;
	args.max_size = region->max_size;
	pyshm_region_describe(region, &args.size, &args.state);
	if (copy_to_user(argp, &args, sizeof(args))) {
		ret = -EFAULT;
		goto err_fput;
	}
	/* Last, so that a failed import leaves a one-shot token in place. */
	if (oneshot) {
		ret = pyshm_token_consume(domain, args.token, region);
		if (ret)
			goto err_fput;
	}
	fd_install(fd, file);
	atomic64_inc(&pyshm_stats.imports);
	return 0;

err_fput:
	fput(file);	/* and the region reference with it */
	put_unused_fd(fd);
	return ret;
err_put_region:
	pyshm_region_put(region);
err_put_fd:
	put_unused_fd(fd);
	return ret;
}

static long domain_revoke(struct pyshm_domain *domain, void __user *argp)
{
	struct pyshm_token_revoke args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_TOKEN_REVOKE_F_ALL || args.pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	return pyshm_token_revoke(domain, args.token);
}

static long domain_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pyshm_domain *domain = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case PYSHM_IOC_VERSION:
		return domain_version(argp);
	case PYSHM_IOC_REGION_CREATE:
		return domain_create(argp);
	case PYSHM_IOC_REGION_EXPORT:
		return domain_export(domain, argp);
	case PYSHM_IOC_REGION_IMPORT:
		return domain_import(domain, argp);
	case PYSHM_IOC_TOKEN_REVOKE:
		return domain_revoke(domain, argp);
	default:
		return -ENOTTY;
	}
}

static int domain_open(struct inode *inode, struct file *file)
{
	struct pyshm_domain *domain;

	domain = kzalloc(sizeof(*domain), GFP_KERNEL_ACCOUNT);
	if (!domain)
		return -ENOMEM;
	mutex_init(&domain->lock);
	hash_init(domain->tokens);
	file->private_data = domain;
	atomic64_inc(&pyshm_stats.domains);
	return 0;
}

static int domain_release(struct inode *inode, struct file *file)
{
	struct pyshm_domain *domain = file->private_data;

	pyshm_token_flush(domain);
	mutex_destroy(&domain->lock);
	kfree(domain);
	atomic64_dec(&pyshm_stats.domains);
	return 0;
}

const struct file_operations pyshm_domain_fops = {
	.owner = THIS_MODULE,
	.open = domain_open,
	.release = domain_release,
	.unlocked_ioctl = domain_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};
