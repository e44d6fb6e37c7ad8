// SPDX-License-Identifier: GPL-2.0
/*
 * Limits: the module parameters that bound what a user may hold, and the
 * per-user accounting of regions and bytes they are checked against.
 * Parameters are validated on load and on every write to
 * /sys/module/pyshm/parameters/; nonsense is refused.
 */
#include <linux/hashtable.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "internal.h"

/*
 * struct limit - one bounded module parameter
 * @value: the current value; read locklessly
 * @min: smallest value allowed
 * @max: largest value allowed
 * @bytes: a byte count, which may end in K, M, G or T
 * @auto_zero: 0 is allowed too, meaning "computed" (see its user)
 */
struct limit {
	unsigned long value;
	unsigned long min;
	unsigned long max;
	bool bytes;
	bool auto_zero;
};

/* A byte count with an optional K, M, G or T suffix; overflow is an error. */
static int parse_bytes(const char *val, unsigned long *out)
{
	size_t len = strcspn(val, "\n");
	unsigned int shift = 0;
	unsigned long v;
	char buf[32];
	int ret;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, val, len);
	buf[len] = '\0';
	switch (buf[len - 1]) {
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	}
	if (shift)
		buf[len - 1] = '\0';
	ret = kstrtoul(buf, 0, &v);
	if (ret)
		return ret;
	if (v > ULONG_MAX >> shift)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

static int limit_set(const char *val, const struct kernel_param *kp)
{
	struct limit *lim = kp->arg;
	unsigned long v;
	int ret;

	if (lim->bytes)
		ret = parse_bytes(val, &v);
	else
		ret = kstrtoul(val, 0, &v);
	if (!ret && !(v == 0 && lim->auto_zero) && (v < lim->min || v > lim->max))
		ret = -EINVAL;
	if (ret) {
		/* Only a root-written parameter gets here after load. */
		if (!pyshm_loaded)
			pr_err("%s=%s refused: must be %s%lu..%lu\n", kp->name, val,
			       lim->auto_zero ? "0 (auto) or " : "", lim->min,
			       lim->max);
		return -EINVAL;
	}
	WRITE_ONCE(lim->value, v);
	return 0;
}

static int limit_get(char *buf, const struct kernel_param *kp)
{
	const struct limit *lim = kp->arg;

	return scnprintf(buf, PAGE_SIZE, "%lu\n", READ_ONCE(lim->value));
}

static const struct kernel_param_ops limit_ops = {
	.set = limit_set,
	.get = limit_get,
};

static struct limit max_region_size = {
	.value = 4UL << 30, .min = PAGE_SIZE, .max = PYSHM_SIZE_LIMIT,
	.bytes = true,
};
module_param_cb(max_region_size, &limit_ops, &max_region_size, 0644);
MODULE_PARM_DESC(max_region_size,
		 "Largest max_size of one region, in bytes (K/M/G suffixes); default 4G");

static struct limit max_user_bytes = {
	.value = 0, .min = PAGE_SIZE, .max = 1UL << 62, .bytes = true,
	.auto_zero = true,
};
module_param_cb(max_user_bytes, &limit_ops, &max_user_bytes, 0644);
MODULE_PARM_DESC(max_user_bytes,
		 "Bytes of regions one user may hold (current sizes, page-rounded); 0 = half of RAM (default)");

static struct limit max_user_regions = {
	.value = 16384, .min = 1, .max = 1UL << 20,
};
module_param_cb(max_user_regions, &limit_ops, &max_user_regions, 0644);
MODULE_PARM_DESC(max_user_regions,
		 "Regions one user may hold; default 16384");

static struct limit max_domain_tokens = {
	.value = 16384, .min = 1, .max = 1UL << 20,
};
module_param_cb(max_domain_tokens, &limit_ops, &max_domain_tokens, 0644);
MODULE_PARM_DESC(max_domain_tokens,
		 "Live tokens one domain (open of /dev/pyshm) may hold; default 16384");

u64 pyshm_limit_region_size(void)
{
	return READ_ONCE(max_region_size.value);
}

unsigned int pyshm_limit_domain_tokens(void)
{
	return READ_ONCE(max_domain_tokens.value);
}

static u64 limit_user_bytes(void)
{
	u64 v = READ_ONCE(max_user_bytes.value);

	return v ? v : ((u64)totalram_pages() << PAGE_SHIFT) / 2;
}

/* users_lock guards the table; a user in it has a non-zero ref. */
static DEFINE_HASHTABLE(users, 6);
static DEFINE_SPINLOCK(users_lock);

static struct pyshm_user *user_lookup(kuid_t uid)
{
	struct pyshm_user *user;

	lockdep_assert_held(&users_lock);
	hash_for_each_possible(users, user, node, __kuid_val(uid))
		if (uid_eq(user->uid, uid))
			return user;
	return NULL;
}

/**
 * pyshm_user_get() - the accounting entry of @uid, with a reference
 * @uid: the user
 *
 * Return: the entry, or ERR_PTR(-ENOMEM).
 */
struct pyshm_user *pyshm_user_get(kuid_t uid)
{
	struct pyshm_user *user, *new;

	spin_lock(&users_lock);
	user = user_lookup(uid);
	if (user)
		refcount_inc(&user->ref);
	spin_unlock(&users_lock);
	if (user)
		return user;

	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return ERR_PTR(-ENOMEM);
	new->uid = uid;
	refcount_set(&new->ref, 1);

	spin_lock(&users_lock);
	user = user_lookup(uid);
	if (user) {
		refcount_inc(&user->ref);
	} else {
		hash_add(users, &new->node, __kuid_val(uid));
		user = new;
		new = NULL;
	}
	spin_unlock(&users_lock);
	kfree(new);
	return user;
}

void pyshm_user_put(struct pyshm_user *user)
{
	if (!refcount_dec_and_lock(&user->ref, &users_lock))
		return;
	hash_del(&user->node);
	spin_unlock(&users_lock);
	WARN_ON_ONCE(atomic64_read(&user->bytes) || atomic_read(&user->regions));
	kfree(user);
}

/**
 * pyshm_user_charge() - account @bytes and @regions to @user
 * @user: the user the region belongs to
 * @bytes: page-rounded bytes to add
 * @regions: regions to add (0 or 1)
 *
 * Optimistic, like RLIMIT_MEMLOCK accounting: add, and take it back when the
 * sum went over the limit. Two racing charges may both fail near the limit;
 * neither can pass it.
 *
 * Return: 0; -ENOSPC over max_user_regions; -EDQUOT over max_user_bytes.
 */
int pyshm_user_charge(struct pyshm_user *user, u64 bytes, unsigned int regions)
{
	u64 limit = limit_user_bytes();

	if (regions && atomic_add_return(regions, &user->regions) >
		       READ_ONCE(max_user_regions.value)) {
		atomic_sub(regions, &user->regions);
		return -ENOSPC;
	}
	/* Sizes are below 2^47 and the limit below 2^63: no overflow. */
	if (atomic64_add_return(bytes, &user->bytes) > limit) {
		atomic64_sub(bytes, &user->bytes);
		atomic_sub(regions, &user->regions);
		return -EDQUOT;
	}
	return 0;
}

void pyshm_user_uncharge(struct pyshm_user *user, u64 bytes,
			 unsigned int regions)
{
	atomic64_sub(bytes, &user->bytes);
	atomic_sub(regions, &user->regions);
}
