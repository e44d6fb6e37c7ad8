/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel interfaces that changed between the kernels pyshm.ko is built
 * and tested on (6.1, 6.12, 7.2), each behind one pyshm_ name, keyed on
 * LINUX_VERSION_CODE. No other file of the module tests the version. The
 * version of each change is the mainline release that made it; kernels
 * between the tested ones build by the same rule.
 */
#ifndef _PYSHM_COMPAT_H
#define _PYSHM_COMPAT_H

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/shmem_fs.h>
#include <linux/version.h>

/* 6.3: vma->vm_flags became read-only, changed through helpers. */
static inline void pyshm_vma_flags_set(struct vm_area_struct *vma,
				       unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

static inline void pyshm_vma_flags_clear(struct vm_area_struct *vma,
					 unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* 6.12: struct fd lost its file member for the fd_file() accessor. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define pyshm_fd_file(f)	fd_file(f)
#else
#define pyshm_fd_file(f)	((f).file)
#endif

/* 6.17: call_mmap() became vfs_mmap() (which also runs ->mmap_prepare). */
static inline int pyshm_vfs_mmap(struct file *file, struct vm_area_struct *vma)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
	return vfs_mmap(file, vma);
#else
	return call_mmap(file, vma);
#endif
}

/*
 * 7.0: shmem_file_setup() takes its flags as a vma_flags_t. NORESERVE:
 * pages are accounted as they are touched, as memfd's are.
 */
static inline struct file *pyshm_shmem_file_setup(const char *name,
						  loff_t size)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
	return shmem_file_setup(name, size, mk_vma_flags(VMA_NORESERVE_BIT));
#else
	return shmem_file_setup(name, size, VM_NORESERVE);
#endif
}

#endif /* _PYSHM_COMPAT_H */
