// SPDX-License-Identifier: MIT
/*
 * Regions for out-of-line records, reused: a producer keeps a pool of them,
 * faulted in once (huge pages where the kernel offers them), and a consumer
 * hands each back when it is done, keeping its own mapping of it. A large
 * message then costs a copy into warm memory and nothing else: no new
 * region, no page faults, no mmap on either side.
 *
 * A pooled region starts with a small header in shared memory whose state
 * word says whose it is: the producer's (FREE), in flight (SENT), or kept by
 * the consumer past the record (KEPT); RETIRED is or-ed in when the producer
 * lets it go. The consumer is trusted with nothing but its own data: a
 * header scribbled by either side makes the other reuse or drop a region
 * early, never touch memory outside a mapping.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pyshm/ring.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Idle regions beyond the first go after this long unused. */
#define POOL_IDLE_NS	(2000 * 1000 * 1000ll)

static struct ool_hdr *hdr_of(struct pyshm_region *r)
{
	return pyshm_region_data(r);
}

bool __pyshm_ool_pooled(struct pyshm_region *r)
{
	return pyshm_region_known_size(r) >= OOL_HDR &&
	       hdr_of(r)->magic == OOL_MAGIC;
}

/* Room for @len payload bytes, in steps of an eighth of a power of two, so
 * that similar sizes share regions. */
static uint64_t cap_for(uint64_t len)
{
	uint64_t n = len + OOL_HDR, step;

	if (n <= (1u << 20))
		return (1u << 20) - OOL_HDR;
	step = 1ull << (63 - __builtin_clzll(n) - 3);
	return ALIGN_UP(n, step) - OOL_HDR;
}

PYSHM_EXPORT void pyshm_prefault(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = ALIGN_UP((uintptr_t)p, page);
	uintptr_t end = ((uintptr_t)p + len) & ~(page - 1);

	if (!p || len < PYSHM_PREFAULT_MIN || end <= start)
		return;
	madvise((void *)start, end - start, MADV_HUGEPAGE);
	madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

/* Fault the pages in now, once, rather than in every copy. */
static void prefault(struct pyshm_region *r)
{
	unsigned char *p = pyshm_region_data(r);
	uint64_t len = pyshm_region_size(r), page = (uint64_t)sysconf(_SC_PAGESIZE), i;

	if (len >= PYSHM_PREFAULT_MIN)
		madvise(p, len, MADV_HUGEPAGE);
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return;
	/* Before 5.14: a write per page does it. */
	for (i = 0; i < len; i += page)
		((volatile unsigned char *)p)[i] = 0;
}

void __pyshm_pool_init(struct ool_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	pthread_mutex_init(&pool->lock, NULL);
}

/* Let entry @i go: its region is the consumer's to drop. Caller holds the lock. */
static void pool_retire(struct ool_pool *pool, size_t i)
{
	struct pyshm_region *r = pool->e[i].r;

	atomic_fetch_or_explicit(&hdr_of(r)->state, OOL_RETIRED, memory_order_release);
	pyshm_region_put(r);
	pool->e[i] = pool->e[--pool->n];
}

void __pyshm_pool_free(struct ool_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->n)
		pool_retire(pool, pool->n - 1);
	free(pool->e);
	pool->e = NULL;
	pool->cap = 0;
	pthread_mutex_unlock(&pool->lock);
	pthread_mutex_destroy(&pool->lock);
}

static unsigned int state_of(struct pyshm_region *r)
{
	return atomic_load_explicit(&hdr_of(r)->state, memory_order_acquire);
}

/*
 * Retire what the limits leave no room for: idle regions past their time,
 * then free ones (largest first) while @want more bytes or one more region
 * would not fit. Kept regions are the consumer's now: they count only as
 * entries. Caller holds the lock.
 */
static void pool_make_room(struct ool_pool *pool, uint64_t want, uint64_t max_bytes,
			   unsigned int max_count, int64_t now)
{
	uint64_t bytes;
	size_t i, big;

	for (i = pool->n; i-- > 0;) {
		unsigned int s = state_of(pool->e[i].r);

		if ((s & OOL_RETIRED) || (s == OOL_FREE && pool->n > 1 &&
					  now - pool->e[i].used > POOL_IDLE_NS))
			pool_retire(pool, i);
	}
	for (;;) {
		bytes = 0;
		big = pool->n;
		for (i = 0; i < pool->n; i++) {
			unsigned int s = state_of(pool->e[i].r);

			if (s != OOL_KEPT)
				bytes += pool->e[i].cap;
			if (s == OOL_FREE && (big == pool->n || pool->e[i].cap > pool->e[big].cap))
				big = i;
		}
		if ((!max_bytes || bytes + want <= max_bytes) &&
		    (!max_count || pool->n < max_count))
			return;
		if (big < pool->n) {
			pool_retire(pool, big);
			continue;
		}
		/* Only kept ones left to drop: the consumer keeps them. They
		 * hold none of our bytes: dropping one makes room in count
		 * only (a record above the byte budget goes alone anyway). */
		if (!max_count || pool->n < max_count)
			return;
		for (i = 0; i < pool->n; i++)
			if (state_of(pool->e[i].r) == OOL_KEPT)
				break;
		if (i == pool->n)
			return;		/* all in flight: the budget allows it */
		pool_retire(pool, i);
	}
}

int __pyshm_pool_take(struct ool_pool *pool, uint64_t len, uint64_t max_bytes,
		      unsigned int max_count, struct pyshm_region **out)
{
	struct pool_ent *e;
	struct pyshm_region *r;
	struct ool_hdr *h;
	int64_t now = __pyshm_now_ns();
	size_t i, best;
	uint64_t cap;
	int ret;

	pthread_mutex_lock(&pool->lock);
	/* The smallest free region that fits, no more than twice the size a
	 * new one would have. */
	best = pool->n;
	for (i = 0; i < pool->n; i++) {
		cap = pool->e[i].cap;
		if (cap >= len && cap <= 2 * cap_for(len) && state_of(pool->e[i].r) == OOL_FREE &&
		    (best == pool->n || cap < pool->e[best].cap))
			best = i;
	}
	for (i = best; i < pool->n; i = pool->n) {
		unsigned int s = OOL_FREE;

		if (atomic_compare_exchange_strong_explicit(&hdr_of(pool->e[i].r)->state, &s,
							    OOL_SENT, memory_order_acquire,
							    memory_order_relaxed)) {
			pool->e[i].used = now;
			*out = pyshm_region_get(pool->e[i].r);
			pthread_mutex_unlock(&pool->lock);
			return 0;
		}
	}

	cap = cap_for(len);
	pool_make_room(pool, cap, max_bytes, max_count, now);
	ret = pyshm_region_create(cap + OOL_HDR, 0, 0, &r);
	if (ret < 0)
		goto out_unlock;
	prefault(r);
	h = hdr_of(r);
	h->cap = cap;
	atomic_store_explicit(&h->state, OOL_SENT, memory_order_relaxed);
	/* Release: the fields before the magic that says they are there. */
	atomic_store_explicit((atomic_uint *)&h->magic, OOL_MAGIC, memory_order_release);
	if (pool->n == pool->cap) {
		size_t n = pool->cap ? 2 * pool->cap : 8;

		e = realloc(pool->e, n * sizeof(*e));
		if (!e) {
			/* Unpooled, it still carries this record, and the
			 * consumer lets it go after. */
			atomic_fetch_or(&h->state, OOL_RETIRED);
			*out = r;
			goto out_unlock;
		}
		pool->e = e;
		pool->cap = n;
	}
	pool->e[pool->n++] = (struct pool_ent){ .r = r, .cap = cap, .used = now };
	*out = pyshm_region_get(r);
out_unlock:
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

void __pyshm_pool_giveback(struct pyshm_region *r)
{
	atomic_store_explicit(&hdr_of(r)->state, OOL_FREE, memory_order_release);
}

void __pyshm_pool_trim(struct ool_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool_make_room(pool, 0, 0, 0, __pyshm_now_ns());
	pthread_mutex_unlock(&pool->lock);
}

/* ---- the consumer's side ------------------------------------------------ */

void __pyshm_cache_done(struct ool_cache *c, struct pyshm_region *r)
{
	struct ool_hdr *h = hdr_of(r);
	unsigned int s = OOL_SENT;
	size_t i;

	/* R4: pairs with the acquire in __pyshm_pool_take(): we are done
	 * reading before the producer may write again. */
	atomic_compare_exchange_strong_explicit(&h->state, &s, OOL_FREE, memory_order_release,
						memory_order_relaxed);
	__pyshm_cache_trim(c);
	if (s & OOL_RETIRED)
		return;
	/* Keep our mapping for the next time it comes. */
	for (i = 0; i < OOL_CACHE; i++)
		if (c->r[i] == r)
			return;
	pyshm_region_put(c->r[c->next]);
	c->r[c->next] = pyshm_region_get(r);
	c->next = (c->next + 1) % OOL_CACHE;
}

void __pyshm_cache_trim(struct ool_cache *c)
{
	size_t i;

	for (i = 0; i < OOL_CACHE; i++) {
		if (c->r[i] && state_of(c->r[i]) & OOL_RETIRED) {
			pyshm_region_put(c->r[i]);
			c->r[i] = NULL;
		}
	}
}

void __pyshm_cache_free(struct ool_cache *c)
{
	size_t i;

	for (i = 0; i < OOL_CACHE; i++) {
		pyshm_region_put(c->r[i]);
		c->r[i] = NULL;
	}
}

void __pyshm_ool_keep(struct pyshm_region *r)
{
	struct ool_hdr *h = hdr_of(r);
	unsigned int s = OOL_SENT;

	atomic_fetch_add_explicit(&h->keepers, 1, memory_order_relaxed);
	atomic_compare_exchange_strong_explicit(&h->state, &s, OOL_KEPT, memory_order_relaxed,
						memory_order_relaxed);
}

PYSHM_EXPORT void pyshm_ring_kept_put(struct pyshm_region *r)
{
	struct ool_hdr *h;
	unsigned int s = OOL_KEPT;

	if (!r)
		return;
	h = hdr_of(r);
	if (__pyshm_ool_pooled(r) &&
	    atomic_fetch_sub_explicit(&h->keepers, 1, memory_order_relaxed) == 1)
		/* R4 again: the last keeper is done with the bytes. */
		atomic_compare_exchange_strong_explicit(&h->state, &s, OOL_FREE,
							memory_order_release,
							memory_order_relaxed);
	pyshm_region_put(r);
}
