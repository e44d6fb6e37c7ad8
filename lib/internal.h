/* SPDX-License-Identifier: MIT */
/*
 * libpyshm internals shared between its files: the region handle and the
 * backend seam (memfd and kmod), syscall wrappers and small helpers.
 * Nothing here is exported; non-static names are __pyshm_*.
 */
#ifndef PYSHM_LIB_INTERNAL_H
#define PYSHM_LIB_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <pyshm/region.h>

#define PYSHM_EXPORT __attribute__((visibility("default")))

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define ALIGN_UP(x, a)	(((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))

/* What a backend reports about a region fd. */
struct region_info {
	int fd;			/* owned by the caller until handed to a handle */
	uint64_t id;
	uint64_t size;
	uint64_t max_size;
	unsigned int flags;	/* PYSHM_REGION_SEALED | PYSHM_REGION_GROWABLE */
};

/*
 * A backend: how regions are created, described and changed. Mapping is
 * common code (mmap of the fd at max_size), so a backend only deals in fds.
 */
struct region_backend {
	int kind;
	int (*create)(uint64_t size, uint64_t max_size, struct region_info *out);
	/* Describe @fd (taking max_size from @max_hint where the fd can't). */
	int (*describe)(int fd, uint64_t max_hint, struct region_info *out);
	int (*grow)(struct pyshm_region *r, uint64_t new_size);
	/* Current size, for growable regions another process may grow. */
	int (*size)(struct pyshm_region *r, uint64_t *size);
	/* Seal; called with this process's mapping already read-only. */
	int (*seal)(struct pyshm_region *r);
	/* A new read-only fd of the region in @fd, for mapping it once sealed;
	 * NULL when the backend maps sealed regions read-only through any fd. */
	int (*reopen_ro)(int fd);
	int (*export)(struct pyshm_region *r, unsigned int flags, uint64_t *token);
	int (*import)(uint64_t token, struct region_info *out);
	int (*revoke)(uint64_t token);
};

extern const struct region_backend __pyshm_backend_memfd;
extern const struct region_backend __pyshm_backend_kmod;

/* The kmod backend's probe: 0 with the domain open, or -errno. */
int __pyshm_kmod_open(void);

struct pyshm_region {
	atomic_long refs;		/* process-local holds */
	const struct region_backend *be;
	int fd;
	uint64_t id;
	void *data;			/* mapping of map_len bytes */
	uint64_t map_len;
	uint64_t max_size;
	_Atomic uint64_t size;		/* last size seen */
	atomic_uint flags;		/* PYSHM_REGION_* */
	struct pyshm_region *next;	/* registry bucket chain, under reg_lock */
};

/* Monotonic clock in ns, and deadlines: timeout < 0 means none. */
static inline int64_t __pyshm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t __pyshm_deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? -1 : __pyshm_now_ns() + timeout_ns;
}

/* ns left until @deadline (-1: none), 0 when it has passed. */
static inline int64_t __pyshm_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - __pyshm_now_ns();
	return left > 0 ? left : 0;
}

static inline void __pyshm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* getpid(), cached; refreshed in children of fork(). */
pid_t __pyshm_getpid(void);

/* The eventfd a futex waiter reports through (made on demand), or -errno. */
struct pyshm_waiter;
int __pyshm_waiter_efd(struct pyshm_waiter *w);

/* The futex bridge (bridge.c): once *word != val, write efd. One-shot. */
int __pyshm_bridge_arm(atomic_uint *word, unsigned int val, int efd);
void __pyshm_bridge_disarm(atomic_uint *word, int efd);

/* Post a wakeup to the io_uring behind @fd, from this thread's ring. */
int __pyshm_wake_uring(int fd, uint64_t data);
/* Submit the wakeups pyshm_wake_hold() queued, still holding (before a sleep). */
void __pyshm_wake_submit_held(void);

/* futex on shared (not private) memory, so it works across processes. */
int __pyshm_futex_wait(atomic_uint *word, unsigned int val, int64_t timeout_ns);
int __pyshm_futex_wake(atomic_uint *word, int n);

/*
 * ool.c: pooled regions of out-of-line records. Such a region starts with a
 * struct ool_hdr; the payload follows at OOL_HDR.
 */
#define OOL_MAGIC	0x4c4f4f50u	/* "POOL" */
#define OOL_HDR		64u
/* ool_hdr.state */
#define OOL_FREE	0u	/* the producer's to reuse */
#define OOL_SENT	1u	/* in a record not yet consumed */
#define OOL_KEPT	2u	/* the consumer keeps it past the record */
#define OOL_RETIRED	(1u << 8)	/* the producer let it go */

struct ool_hdr {
	uint32_t magic;		/* written last */
	atomic_uint state;
	atomic_uint keepers;	/* consumer: pyshm_ring_keep() holds */
	uint32_t resv0;
	uint64_t cap;		/* payload bytes after the header */
	uint8_t resv[40];
};

_Static_assert(sizeof(struct ool_hdr) == OOL_HDR, "pooled region header");

struct pool_ent {
	struct pyshm_region *r;
	uint64_t cap;
	int64_t used;		/* last taken, __pyshm_now_ns() */
};

/* A producer handle's regions. */
struct ool_pool {
	pthread_mutex_t lock;	/* guards all below (producers are threads) */
	struct pool_ent *e;
	size_t n, cap;
};

/* A consumer handle's mappings of the producer's regions. */
#define OOL_CACHE	16
struct ool_cache {
	struct pyshm_region *r[OOL_CACHE];
	size_t next;
};

void __pyshm_pool_init(struct ool_pool *pool);
void __pyshm_pool_free(struct ool_pool *pool);
/* A region in state SENT with room for @len payload bytes, within the
 * limits (0: none) as far as free regions allow. 0 or -errno. */
int __pyshm_pool_take(struct ool_pool *pool, uint64_t len, uint64_t max_bytes,
		      unsigned int max_count, struct pyshm_region **out);
/* A region taken but not sent after all. */
void __pyshm_pool_giveback(struct pyshm_region *r);
/* Let idle and retired regions go. */
void __pyshm_pool_trim(struct ool_pool *pool);
bool __pyshm_ool_pooled(struct pyshm_region *r);
/* The consumer is done with the record in @r: hand the region back. */
void __pyshm_cache_done(struct ool_cache *c, struct pyshm_region *r);
void __pyshm_cache_trim(struct ool_cache *c);
void __pyshm_cache_free(struct ool_cache *c);
/* The consumer keeps @r past its record (pyshm_ring_keep()). */
void __pyshm_ool_keep(struct pyshm_region *r);

#endif /* PYSHM_LIB_INTERNAL_H */
