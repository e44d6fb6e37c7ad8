// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: shmem memory behind a region fd, its mappings, its size and seal,
 * and its lifetime. The region file, every mapping and every export pin hold
 * a reference; the last put frees the memory and the accounting.
 */
#include <linux/anon_inodes.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "compat.h"
#include "internal.h"

/* regions_lock guards the list of live regions, read by debugfs. */
static LIST_HEAD(regions);
static DEFINE_SPINLOCK(regions_lock);
static atomic64_t last_id = ATOMIC64_INIT(0);

static const struct file_operations region_fops;
static const struct vm_operations_struct region_vm_ops;

static u64 region_size(struct pyshm_region *region)
{
	return i_size_read(file_inode(region->shmem));
}

/**
 * pyshm_region_create() - a zero-filled region charged to the current user
 * @size: initial size, at most @max_size
 * @max_size: at most the max_region_size parameter (checked by the caller)
 *
 * Return: the region holding one reference, or an ERR_PTR: -ENOSPC and
 * -EDQUOT for the user's limits, -ENOMEM.
 */
struct pyshm_region *pyshm_region_create(u64 size, u64 max_size)
{
	struct pyshm_region *region;
	struct pyshm_user *user;
	struct file *shmem;
	int ret;

	user = pyshm_user_get(current_uid());
	if (IS_ERR(user))
		return ERR_CAST(user);
	ret = pyshm_user_charge(user, PAGE_ALIGN(size), 1);
	if (ret)
		goto err_put_user;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	shmem = pyshm_shmem_file_setup("pyshm", size);
	if (IS_ERR(shmem)) {
		ret = PTR_ERR(shmem);
		goto err_free_region;
	}
	/*
	 * A mapping's /proc/<pid>/map_files/ entry reopens the shmem file as
	 * a file of its own (for root, or CRIU with CAP_CHECKPOINT_RESTORE).
	 * The size is the region's and is charged to its user: only grow may
	 * change it, so memfd's seals make shmem refuse everyone else (grow
	 * sets i_size itself). shmem starts files with F_SEAL_SEAL, so these
	 * stay.
	 */
	SHMEM_I(file_inode(shmem))->seals |= F_SEAL_SHRINK | F_SEAL_GROW;

	kref_init(&region->ref);
	region->id = atomic64_inc_return(&last_id);
	region->max_size = max_size;
	region->shmem = shmem;
	region->user = user;
	mutex_init(&region->lock);
	/* Mappings outlive the region fd and run our vm_ops: pin the code. */
	__module_get(THIS_MODULE);

	spin_lock(&regions_lock);
	list_add_tail(&region->node, &regions);
	spin_unlock(&regions_lock);
	atomic64_inc(&pyshm_stats.created);
	return region;

err_free_region:
	kfree(region);
err_uncharge:
	pyshm_user_uncharge(user, PAGE_ALIGN(size), 1);
err_put_user:
	pyshm_user_put(user);
	return ERR_PTR(ret);
}

static void region_free_rcu(struct rcu_head *rcu)
{
	struct pyshm_region *region = container_of(rcu, struct pyshm_region, rcu);

	mutex_destroy(&region->lock);
	kfree(region);
	/* pyshm_exit() waits for this callback with rcu_barrier(). */
	module_put(THIS_MODULE);
}

static void region_release(struct kref *ref)
{
	struct pyshm_region *region = container_of(ref, struct pyshm_region, ref);

	spin_lock(&regions_lock);
	list_del(&region->node);
	spin_unlock(&regions_lock);

	pyshm_user_uncharge(region->user, PAGE_ALIGN(region_size(region)), 1);
	pyshm_user_put(region->user);
	fput(region->shmem);
	atomic64_inc(&pyshm_stats.freed);
	/*
	 * The module reference must be dropped after this code has run; an
	 * RCU callback, flushed by the module's exit, gives that ordering.
	 */
	call_rcu(&region->rcu, region_free_rcu);
}

void pyshm_region_get(struct pyshm_region *region)
{
	kref_get(&region->ref);
}

void pyshm_region_put(struct pyshm_region *region)
{
	kref_put(&region->ref, region_release);
}

/**
 * pyshm_region_describe() - what PYSHM_IOC_REGION_INFO reports
 * @region: the region
 * @size: its current size
 * @state: its PYSHM_REGION_STATE_* bits
 */
void pyshm_region_describe(struct pyshm_region *region, u64 *size, u32 *state)
{
	*size = region_size(region);
	if (READ_ONCE(region->sealed))
		*state = PYSHM_REGION_STATE_SEALED;
	else
		*state = *size < region->max_size ? PYSHM_REGION_STATE_GROWABLE : 0;
}

/*
 * Mappings. A region's vma points at its shmem file (so shmem's fault path
 * and page cache do the work) but runs our vm_ops, which hold the region and
 * keep the count of mappings that may write, which seal checks.
 */
static void region_vm_open(struct vm_area_struct *vma)
{
	struct pyshm_region *region = vma->vm_private_data;

	pyshm_region_get(region);
	atomic_inc(&region->nr_maps);
	if (vma->vm_flags & VM_MAYWRITE)
		atomic_inc(&region->nr_writable);
}

static void region_vm_close(struct vm_area_struct *vma)
{
	struct pyshm_region *region = vma->vm_private_data;

	if (vma->vm_flags & VM_MAYWRITE)
		atomic_dec(&region->nr_writable);
	atomic_dec(&region->nr_maps);
	pyshm_region_put(region);
}

static vm_fault_t region_vm_fault(struct vm_fault *vmf)
{
	struct pyshm_region *region = vmf->vma->vm_private_data;

	/* Bytes past the current size don't exist yet. */
	if (vmf->pgoff >= DIV_ROUND_UP(region_size(region), PAGE_SIZE))
		return VM_FAULT_SIGBUS;
	return region->shmem_ops->fault(vmf);
}

static const struct vm_operations_struct region_vm_ops = {
	.open = region_vm_open,
	.close = region_vm_close,
	.fault = region_vm_fault,
	/* Maps only pages already in the page cache, below i_size. */
	.map_pages = filemap_map_pages,
};

static int region_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pyshm_region *region = file->private_data;
	unsigned long end;
	int ret;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (check_add_overflow(vma->vm_pgoff, vma_pages(vma), &end) ||
	    end > DIV_ROUND_UP(region->max_size, PAGE_SIZE))
		return -EINVAL;

	mutex_lock(&region->lock);
	if (region->sealed && (vma->vm_flags & VM_WRITE)) {
		ret = -EPERM;
		goto out_unlock;
	}
	/*
	 * A mapping made without PROT_WRITE can never become writable, so
	 * nr_writable counts every mapping that could write after a seal.
	 */
	if (!(vma->vm_flags & VM_WRITE))
		pyshm_vma_flags_clear(vma, VM_MAYWRITE);
	/*
	 * Small pages keep the SIGBUS boundary exact: with shmem_enabled=always
	 * a huge folio could map bytes past the current size. VM_DONTEXPAND
	 * keeps it so: khugepaged and MADV_COLLAPSE skip such mappings (a
	 * collapse would fill the holes past the size with an uncharged huge
	 * page), and mremap() cannot stretch one past the region's maximum.
	 * The price: mlock() does not apply to region mappings.
	 */
	pyshm_vma_flags_set(vma, VM_NOHUGEPAGE | VM_DONTEXPAND);

	ret = pyshm_vfs_mmap(region->shmem, vma);
	if (ret)
		goto out_unlock;
	/* Set before the first mapping of the region can fault; never changes. */
	if (!region->shmem_ops)
		region->shmem_ops = vma->vm_ops;
	vma_set_file(vma, region->shmem);
	vma->vm_ops = &region_vm_ops;
	vma->vm_private_data = region;
	region_vm_open(vma);
out_unlock:
	mutex_unlock(&region->lock);
	return ret;
}

static long region_info(struct pyshm_region *region, void __user *argp)
{
	struct pyshm_region_info args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_INFO_F_ALL ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	args.id = region->id;
	args.max_size = region->max_size;
	pyshm_region_describe(region, &args.size, &args.state);
	return copy_to_user(argp, &args, sizeof(args)) ? -EFAULT : 0;
}

static long region_grow(struct pyshm_region *region, void __user *argp)
{
	struct inode *inode = file_inode(region->shmem);
	struct pyshm_region_grow args;
	u64 old;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_GROW_F_ALL || args.pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (args.size > region->max_size)
		return -EFBIG;

	inode_lock(inode);
	mutex_lock(&region->lock);
	old = region_size(region);
	if (region->sealed) {
		ret = -EPERM;
		goto out_unlock;
	}
	if (args.size <= old) {
		/* Never shrink: mappings in other processes rely on it. */
		ret = args.size == old ? 0 : -EINVAL;
		goto out_unlock;
	}
	ret = pyshm_user_charge(region->user,
				PAGE_ALIGN(args.size) - PAGE_ALIGN(old), 0);
	if (ret)
		goto out_unlock;
	i_size_write(inode, args.size);
out_unlock:
	mutex_unlock(&region->lock);
	inode_unlock(inode);
	return ret;
}

/*
 * Whether a page of the region is pinned for DMA (FOLL_PIN: RDMA, vfio...):
 * such a pin, taken through a writable mapping since unmapped, could still
 * write after a seal. Like memfd's F_SEAL_WRITE, refuse the seal then.
 */
static bool region_dma_pinned(struct pyshm_region *region)
{
	XA_STATE(xas, &region->shmem->f_mapping->i_pages, 0);
	struct folio *folio;
	bool pinned = false;

	rcu_read_lock();
	xas_for_each(&xas, folio, ULONG_MAX) {
		if (xas_retry(&xas, folio) || xa_is_value(folio))
			continue;
		if (folio_maybe_dma_pinned(folio)) {
			pinned = true;
			break;
		}
		if (need_resched()) {
			xas_pause(&xas);
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
		}
	}
	rcu_read_unlock();
	return pinned;
}

static long region_seal(struct pyshm_region *region, void __user *argp)
{
	struct inode *inode = file_inode(region->shmem);
	struct pyshm_region_seal args;
	int ret = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PYSHM_REGION_SEAL_F_ALL || args.pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	/* The inode lock orders us against write() to a reopened file. */
	inode_lock(inode);
	mutex_lock(&region->lock);
	if (region->sealed)
		goto out_unlock;
	if (atomic_read(&region->nr_writable) || region_dma_pinned(region)) {
		ret = -EBUSY;
		goto out_unlock;
	}
	/*
	 * Writable mappings of a reopened shmem file (see
	 * pyshm_region_create()) are not ours to count: deny them, now and
	 * for good, and writes through the file, as memfd's F_SEAL_WRITE does.
	 * Our own writable mappings were counted above; they are the only
	 * others that hold i_mmap_writable.
	 */
	ret = mapping_deny_writable(region->shmem->f_mapping);
	if (ret) {
		ret = -EBUSY;
		goto out_unlock;
	}
	SHMEM_I(inode)->seals |= F_SEAL_WRITE;
	WRITE_ONCE(region->sealed, true);
out_unlock:
	mutex_unlock(&region->lock);
	inode_unlock(inode);
	return ret;
}

static long region_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pyshm_region *region = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case PYSHM_IOC_REGION_INFO:
		return region_info(region, argp);
	case PYSHM_IOC_REGION_GROW:
		return region_grow(region, argp);
	case PYSHM_IOC_REGION_SEAL:
		return region_seal(region, argp);
	default:
		return -ENOTTY;
	}
}

static int region_file_release(struct inode *inode, struct file *file)
{
	pyshm_region_put(file->private_data);
	return 0;
}

static void region_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct pyshm_region *region = file->private_data;

	seq_printf(m, "pyshm-id:\t%llu\n", region->id);
	seq_printf(m, "pyshm-size:\t%llu\n", region_size(region));
	seq_printf(m, "pyshm-max-size:\t%llu\n", region->max_size);
}

static const struct file_operations region_fops = {
	.owner = THIS_MODULE,
	.release = region_file_release,
	.mmap = region_mmap,
	.unlocked_ioctl = region_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
	.show_fdinfo = region_show_fdinfo,
};

/**
 * pyshm_region_file() - a new region file
 * @region: the region, with a reference for the file
 *
 * Return: the file, which took over the caller's reference, or an ERR_PTR
 * (the caller keeps its reference).
 */
struct file *pyshm_region_file(struct pyshm_region *region)
{
	return anon_inode_getfile("[pyshm-region]", &region_fops, region, O_RDWR);
}

/**
 * pyshm_region_from_file() - the region of a region file
 * @file: any file
 *
 * Return: the region, borrowed from @file, or NULL when @file is something
 * else.
 */
struct pyshm_region *pyshm_region_from_file(struct file *file)
{
	return file->f_op == &region_fops ? file->private_data : NULL;
}

/* debugfs "regions": one line per live region. */
void pyshm_region_show_all(struct seq_file *m)
{
	struct pyshm_region *region;

	spin_lock(&regions_lock);
	list_for_each_entry(region, &regions, node)
		seq_printf(m, "%llu %llu %llu %u %d %d %d %d %u\n", region->id,
			   region_size(region), region->max_size,
			   kref_read(&region->ref),
			   atomic_read(&region->nr_maps),
			   atomic_read(&region->nr_pins),
			   atomic_read(&region->nr_writable),
			   READ_ONCE(region->sealed),
			   from_kuid_munged(seq_user_ns(m), region->user->uid));
	spin_unlock(&regions_lock);
}

void pyshm_region_totals(u64 *nr, u64 *bytes)
{
	struct pyshm_region *region;

	*nr = 0;
	*bytes = 0;
	spin_lock(&regions_lock);
	list_for_each_entry(region, &regions, node) {
		(*nr)++;
		*bytes += region_size(region);
	}
	spin_unlock(&regions_lock);
}
