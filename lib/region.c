// SPDX-License-Identifier: MIT
/*
 * Region handles: backend choice, the process-wide registry that keeps one
 * mapping per region, process-local reference counts, and the calls that are
 * the same for every backend (map, grow, seal, stats).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static pthread_once_t backend_once = PTHREAD_ONCE_INIT;
static const struct region_backend *backend;
static int backend_err;

#define REG_BUCKETS 256
/* reg_lock guards the buckets and every region's ->next. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pyshm_region *reg_bucket[REG_BUCKETS];

static struct {
	atomic_ulong regions, bytes, mapped, created, freed;
} stats;

static bool kmod_available(void)
{
	/* A strong reference: it also pulls region_kmod.o out of libpyshm.a. */
	return __pyshm_kmod_open() == 0;
}

static void backend_choose(void)
{
	const char *env = getenv("PYSHM_BACKEND");

	if (!env || !*env) {
		backend = kmod_available() ? &__pyshm_backend_kmod : &__pyshm_backend_memfd;
	} else if (!strcmp(env, "memfd")) {
		backend = &__pyshm_backend_memfd;
	} else if (!strcmp(env, "kmod")) {
		if (kmod_available())
			backend = &__pyshm_backend_kmod;
		else
			backend_err = -ENODEV;
	} else {
		backend_err = -EINVAL;
	}
}

/* The backend in use, or NULL with *err set. */
static const struct region_backend *backend_get(int *err)
{
	pthread_once(&backend_once, backend_choose);
	*err = backend_err;
	return backend;
}

PYSHM_EXPORT int pyshm_backend(void)
{
	int err;
	const struct region_backend *be = backend_get(&err);

	return be ? be->kind : err;
}

PYSHM_EXPORT const char *pyshm_backend_name(int kind)
{
	switch (kind) {
	case PYSHM_BACKEND_MEMFD:
		return "memfd";
	case PYSHM_BACKEND_KMOD:
		return "kmod";
	}
	return NULL;
}

static unsigned int bucket_of(uint64_t id)
{
	return (unsigned int)((id * 0x9e3779b97f4a7c15ull) >> 56) % REG_BUCKETS;
}

static bool get_unless_zero(struct pyshm_region *r)
{
	long v = atomic_load_explicit(&r->refs, memory_order_relaxed);

	while (v > 0)
		if (atomic_compare_exchange_weak_explicit(&r->refs, &v, v + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

/* Find a live handle for @id and take a reference. Caller holds reg_lock. */
static struct pyshm_region *registry_find(uint64_t id)
{
	struct pyshm_region *r;

	for (r = reg_bucket[bucket_of(id)]; r; r = r->next)
		if (r->id == id && get_unless_zero(r))
			return r;
	return NULL;
}

static void registry_unlink(struct pyshm_region *r)
{
	struct pyshm_region **p;

	pthread_mutex_lock(&reg_lock);
	for (p = &reg_bucket[bucket_of(r->id)]; *p; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

static uint64_t map_len_of(uint64_t max_size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	return ALIGN_UP(max_size ? max_size : 1, page);
}

/*
 * Wrap @info in a handle, or share the handle this process already has for
 * the same region. Consumes info->fd either way. Caller holds reg_lock.
 */
static int handle_adopt(const struct region_backend *be,
			struct region_info *info, struct pyshm_region **out)
{
	struct pyshm_region *r;
	int prot = PROT_READ, map_fd = info->fd, err;

	r = registry_find(info->id);
	if (r) {
		close(info->fd);
		*out = r;
		return 0;
	}

	r = calloc(1, sizeof(*r));
	if (!r) {
		close(info->fd);
		return -ENOMEM;
	}
	/* Whatever the backend says, nothing past the mapping is reachable. */
	if (info->size > info->max_size)
		info->size = info->max_size;
	r->be = be;
	r->fd = info->fd;
	r->id = info->id;
	r->max_size = info->max_size;
	r->map_len = map_len_of(info->max_size);
	atomic_init(&r->size, info->size);
	atomic_init(&r->flags, info->flags);
	atomic_init(&r->refs, 1);

	/* A sealed region is mapped read-only, through a read-only fd where
	 * the backend needs one. */
	if (!(info->flags & PYSHM_REGION_SEALED))
		prot |= PROT_WRITE;
	else if (be->reopen_ro)
		map_fd = be->reopen_ro(r->fd);
	r->data = MAP_FAILED;
	err = map_fd;
	if (map_fd >= 0) {
		r->data = mmap(NULL, r->map_len, prot, MAP_SHARED, map_fd, 0);
		err = r->data == MAP_FAILED ? -errno : 0;
		if (map_fd != r->fd)
			close(map_fd);
	}
	if (err < 0) {
		close(r->fd);
		free(r);
		return err;
	}

	r->next = reg_bucket[bucket_of(r->id)];
	reg_bucket[bucket_of(r->id)] = r;

	atomic_fetch_add(&stats.regions, 1);
	atomic_fetch_add(&stats.bytes, info->size);
	atomic_fetch_add(&stats.mapped, r->map_len);
	*out = r;
	return 0;
}

static int adopt_locked(const struct region_backend *be,
			struct region_info *info, struct pyshm_region **out)
{
	int ret;

	pthread_mutex_lock(&reg_lock);
	ret = handle_adopt(be, info, out);
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

PYSHM_EXPORT int pyshm_region_create(uint64_t size, uint64_t max_size,
				     unsigned int flags,
				     struct pyshm_region **out)
{
	const struct region_backend *be;
	struct region_info info;
	int ret;

	if (!out || flags & ~PYSHM_REGION_F_ALL)
		return -EINVAL;
	if (!max_size)
		max_size = size;
	if (max_size < size)
		return -EINVAL;
	if (max_size > PYSHM_REGION_SIZE_MAX)
		return -EFBIG;
	be = backend_get(&ret);
	if (!be)
		return ret;

	ret = be->create(size, max_size, &info);
	if (ret < 0)
		return ret;
	ret = adopt_locked(be, &info, out);
	if (ret == 0)
		atomic_fetch_add(&stats.created, 1);
	return ret;
}

PYSHM_EXPORT struct pyshm_region *pyshm_region_get(struct pyshm_region *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

PYSHM_EXPORT void pyshm_region_put(struct pyshm_region *r)
{
	if (!r)
		return;
	/* Release: our writes to the handle happen before whoever frees it. */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_release) != 1)
		return;
	atomic_thread_fence(memory_order_acquire);

	/* get_unless_zero() no longer succeeds, so nobody can find it again. */
	registry_unlink(r);
	munmap(r->data, r->map_len);
	close(r->fd);
	atomic_fetch_sub(&stats.regions, 1);
	atomic_fetch_sub(&stats.bytes, atomic_load(&r->size));
	atomic_fetch_sub(&stats.mapped, r->map_len);
	atomic_fetch_add(&stats.freed, 1);
	free(r);
}

PYSHM_EXPORT int pyshm_region_lookup(uint64_t id, struct pyshm_region **out)
{
	struct pyshm_region *r;

	if (!out)
		return -EINVAL;
	pthread_mutex_lock(&reg_lock);
	r = registry_find(id);
	pthread_mutex_unlock(&reg_lock);
	if (!r)
		return -ENOENT;
	*out = r;
	return 0;
}

PYSHM_EXPORT int pyshm_region_from_fd(int fd, uint64_t max_size,
				      struct pyshm_region **out)
{
	const struct region_backend *be;
	struct region_info info;
	int ret;

	if (fd < 0)
		return -EBADF;
	if (!out) {
		close(fd);
		return -EINVAL;
	}
	be = backend_get(&ret);
	if (be)
		ret = be->describe(fd, max_size, &info);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return adopt_locked(be, &info, out);
}

PYSHM_EXPORT void *pyshm_region_data(const struct pyshm_region *r)
{
	return r->data;
}

PYSHM_EXPORT uint64_t pyshm_region_size(struct pyshm_region *r)
{
	uint64_t old = atomic_load_explicit(&r->size, memory_order_relaxed);
	uint64_t now;

	if (!(atomic_load_explicit(&r->flags, memory_order_relaxed) &
	      PYSHM_REGION_GROWABLE))
		return old;
	if (r->be->size(r, &now) < 0)
		return old;
	/*
	 * Any process holding the fd can ftruncate() a growable memfd past
	 * the maximum: every size that bounds an access stops at the mapping.
	 */
	if (now > r->max_size)
		now = r->max_size;
	/* Sizes only grow: keep the largest one seen. */
	while (now > old)
		if (atomic_compare_exchange_weak(&r->size, &old, now)) {
			atomic_fetch_add(&stats.bytes, now - old);
			return now;
		}
	return old;
}

PYSHM_EXPORT uint64_t pyshm_region_known_size(const struct pyshm_region *r)
{
	return atomic_load_explicit(&((struct pyshm_region *)r)->size, memory_order_relaxed);
}

PYSHM_EXPORT uint64_t pyshm_region_max_size(const struct pyshm_region *r)
{
	return r->max_size;
}

PYSHM_EXPORT uint64_t pyshm_region_id(const struct pyshm_region *r)
{
	return r->id;
}

PYSHM_EXPORT unsigned int pyshm_region_flags(const struct pyshm_region *r)
{
	return atomic_load_explicit(&r->flags, memory_order_relaxed);
}

PYSHM_EXPORT int pyshm_region_fd(const struct pyshm_region *r)
{
	if (!r)
		return -EINVAL;
	return r->fd;
}

PYSHM_EXPORT int pyshm_region_grow(struct pyshm_region *r, uint64_t new_size)
{
	uint64_t cur;
	int ret;

	if (!r)
		return -EINVAL;
	cur = pyshm_region_size(r);

	if (pyshm_region_flags(r) & PYSHM_REGION_SEALED)
		return -EPERM;
	if (new_size < cur)
		return -EINVAL;
	if (new_size > r->max_size)
		return -EFBIG;
	if (new_size == cur)
		return 0;
	ret = r->be->grow(r, new_size);
	if (ret < 0)
		return ret;
	pyshm_region_size(r);
	return 0;
}

/* Serialises seals: the remap dance below must not interleave. */
static pthread_mutex_t seal_lock = PTHREAD_MUTEX_INITIALIZER;

PYSHM_EXPORT int pyshm_region_seal(struct pyshm_region *r)
{
	int ro_fd, ret = 0;
	void *p;

	if (!r)
		return -EINVAL;
	pthread_mutex_lock(&seal_lock);
	if (pyshm_region_flags(r) & PYSHM_REGION_SEALED)
		goto out_unlock;

	/*
	 * Our own mapping must stop being writable before the backend will
	 * seal, so map the region again, read-only, at the same address.
	 */
	ro_fd = r->be->reopen_ro ? r->be->reopen_ro(r->fd) : r->fd;
	if (ro_fd < 0) {
		ret = ro_fd;
		goto out_unlock;
	}
	p = mmap(r->data, r->map_len, PROT_READ, MAP_SHARED | MAP_FIXED, ro_fd, 0);
	if (ro_fd != r->fd)
		close(ro_fd);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto out_unlock;
	}

	ret = r->be->seal(r);
	if (ret < 0) {
		/* Someone else writes: give our writable mapping back. */
		p = mmap(r->data, r->map_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, r->fd, 0);
		if (p == MAP_FAILED)
			ret = -errno;
		goto out_unlock;
	}
	atomic_fetch_or(&r->flags, PYSHM_REGION_SEALED);
	atomic_fetch_and(&r->flags, ~PYSHM_REGION_GROWABLE);
out_unlock:
	pthread_mutex_unlock(&seal_lock);
	return ret;
}

PYSHM_EXPORT int pyshm_region_export(struct pyshm_region *r, unsigned int flags,
				     uint64_t *token)
{
	if (!r || !token || flags & ~PYSHM_EXPORT_F_ALL)
		return -EINVAL;
	if (!r->be->export)
		return -EOPNOTSUPP;
	return r->be->export(r, flags, token);
}

PYSHM_EXPORT int pyshm_region_import(uint64_t token, struct pyshm_region **out)
{
	const struct region_backend *be;
	struct region_info info;
	int ret;

	if (!out)
		return -EINVAL;
	be = backend_get(&ret);
	if (!be)
		return ret;
	if (!be->import)
		return -EOPNOTSUPP;
	ret = be->import(token, &info);
	if (ret < 0)
		return ret;
	return adopt_locked(be, &info, out);
}

PYSHM_EXPORT int pyshm_region_revoke(uint64_t token)
{
	int ret;
	const struct region_backend *be = backend_get(&ret);

	if (!be)
		return ret;
	if (!be->revoke)
		return -EOPNOTSUPP;
	return be->revoke(token);
}

PYSHM_EXPORT int pyshm_stats(struct pyshm_stats *st, size_t size)
{
	if (!st || size != sizeof(*st))
		return -EINVAL;
	st->regions = atomic_load(&stats.regions);
	st->bytes = atomic_load(&stats.bytes);
	st->mapped = atomic_load(&stats.mapped);
	st->created = atomic_load(&stats.created);
	st->freed = atomic_load(&stats.freed);
	return 0;
}
