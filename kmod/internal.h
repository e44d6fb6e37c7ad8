/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pyshm.ko internals shared between its objects: domains, regions, tokens,
 * per-user limits and the debugfs statistics. Lock order: see domain.c.
 */
#ifndef _PYSHM_INTERNAL_H
#define _PYSHM_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/uidgid.h>

#include <uapi/linux/pyshm.h>

struct seq_file;

/* No module parameter may allow more than the library's PYSHM_REGION_SIZE_MAX. */
#define PYSHM_SIZE_LIMIT	BIT_ULL(46)

/*
 * struct pyshm_user - what one uid holds, for the per-user limits
 * @node: in the users table, under users_lock (limits.c)
 * @uid: the owner
 * @ref: one per region charged to the user, plus lookups in progress
 * @bytes: sum of the page-rounded sizes of the user's regions
 * @regions: number of the user's regions
 */
struct pyshm_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic64_t bytes;
	atomic_t regions;
};

/*
 * struct pyshm_region - shmem memory with a kernel-held count
 * @ref: the holds: each region file, each mapping (vma) and each export pin
 *	takes one; the last put frees the memory
 * @id: unique among the regions of this boot
 * @max_size: the size limit given at create; fixed
 * @shmem: the backing shmem file; its inode size is the region size, which
 *	only grows, under the inode lock and @lock
 * @user: the user the region is charged to (its creator)
 * @lock: guards @sealed and size changes; nests inside mmap_lock and the
 *	shmem inode lock
 * @sealed: no writable mapping may be made and the size is frozen; set once
 * @nr_writable: mappings that may write (VM_MAYWRITE); read under @lock by
 *	seal, changed by mmap under @lock and by vma open/close (which only
 *	happen while another such mapping exists, so seal can't miss them)
 * @nr_maps: mappings, for debugfs
 * @nr_pins: export pins, for debugfs
 * @shmem_ops: shmem's vm_operations, which ours wrap; set by the first mmap
 * @node: in the list of live regions (region.c), under regions_lock
 * @rcu: frees the struct and drops the module reference after a grace period
 */
struct pyshm_region {
	struct kref ref;
	u64 id;
	u64 max_size;
	struct file *shmem;
	struct pyshm_user *user;
	struct mutex lock;	/* see above */
	bool sealed;
	atomic_t nr_writable;
	atomic_t nr_maps;
	atomic_t nr_pins;
	const struct vm_operations_struct *shmem_ops;
	struct list_head node;
	struct rcu_head rcu;
};

/*
 * struct pyshm_domain - one open of /dev/pyshm
 * @lock: guards @tokens and @nr_tokens
 * @tokens: exported tokens, hashed by value
 * @nr_tokens: entries in @tokens
 *
 * The domain lives exactly as long as its file, which every ioctl holds; the
 * tokens it owns die with it.
 */
struct pyshm_domain {
	struct mutex lock;	/* see above */
	DECLARE_HASHTABLE(tokens, 8);
	unsigned int nr_tokens;
};

/* main.c */
extern bool pyshm_loaded;

/* domain.c */
extern const struct file_operations pyshm_domain_fops;

/* region.c */
struct pyshm_region *pyshm_region_create(u64 size, u64 max_size);
struct file *pyshm_region_file(struct pyshm_region *region);
struct pyshm_region *pyshm_region_from_file(struct file *file);
void pyshm_region_describe(struct pyshm_region *region, u64 *size, u32 *state);
void pyshm_region_get(struct pyshm_region *region);
void pyshm_region_put(struct pyshm_region *region);
void pyshm_region_show_all(struct seq_file *m);
void pyshm_region_totals(u64 *regions, u64 *bytes);

/* token.c */
int pyshm_token_export(struct pyshm_domain *domain,
		       struct pyshm_region *region, bool oneshot, u64 *value);
struct pyshm_region *pyshm_token_lookup(struct pyshm_domain *domain, u64 value,
					bool *oneshot);
int pyshm_token_consume(struct pyshm_domain *domain, u64 value,
			struct pyshm_region *region);
int pyshm_token_revoke(struct pyshm_domain *domain, u64 value);
void pyshm_token_flush(struct pyshm_domain *domain);

/* limits.c */
struct pyshm_user *pyshm_user_get(kuid_t uid);
void pyshm_user_put(struct pyshm_user *user);
int pyshm_user_charge(struct pyshm_user *user, u64 bytes, unsigned int regions);
void pyshm_user_uncharge(struct pyshm_user *user, u64 bytes,
			 unsigned int regions);
u64 pyshm_limit_region_size(void);
unsigned int pyshm_limit_domain_tokens(void);

/* debugfs.c */
struct pyshm_stats {
	atomic64_t created;
	atomic64_t freed;
	atomic64_t domains;
	atomic64_t tokens;
	atomic64_t exports;
	atomic64_t imports;
};

extern struct pyshm_stats pyshm_stats;
void pyshm_debugfs_init(void);
void pyshm_debugfs_uninit(void);

#endif /* _PYSHM_INTERNAL_H */
