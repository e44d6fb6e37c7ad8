// SPDX-License-Identifier: MIT
/*
 * Message rings: a bounded multi-producer, single-consumer queue of
 * variable-length records in shared memory (Documentation/ring-layout.rst).
 *
 * Producers claim space with a CAS on the producer position, fill the
 * record and publish its header last. The consumer reads headers in
 * position order, and zeroes each record it releases, so an unpublished
 * header always reads as zero: a record is either complete or absent.
 * A producer makes a system call only when the consumer sleeps.
 */
#include <limits.h>
#include <sched.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include <pyshm/ring.h>

#include "internal.h"

#define RING_MAGIC	0x47525950u	/* "PYRG" */
#define RING_VERSION	3

#define RING_FEAT_OOL	(1u << 0)	/* out-of-line records */
#define RING_FEAT_URING	(1u << 1)	/* consumers may sleep in io_uring */
#define RING_FEAT_ALL	(RING_FEAT_OOL | RING_FEAT_URING)

/*
 * Spinning waits poll alone for this long, then yield the CPU between polls:
 * on a machine with few CPUs the other side may be waiting for ours.
 */
#define SPIN_ALONE_NS	2000

/* ring_shared.sleep: how the consumer sleeps, 0 when awake */
#define SLEEP_FUTEX	1u
#define SLEEP_URING	2u

/* Record header flags; the low 28 bits are the payload length. */
#define REC_COMMIT	(1u << 31)	/* published */
#define REC_PAD		(1u << 30)	/* skip to the end of the data area */
#define REC_OOL		(1u << 29)	/* payload is a struct ring_ool */
#define REC_ABORT	(1u << 28)	/* given up by its producer */
#define REC_LEN_MASK	((1u << 28) - 1)

/* Byte offsets of the shared fields, published for other implementations. */
struct ring_offsets {
	uint32_t producer;
	uint32_t consumer;
	uint32_t sleep;
	uint32_t closed;
	uint32_t space;
	uint32_t space_waiters;
	uint32_t data;
	uint32_t waiter;
};

struct ring_shared {
	/* Written once by pyshm_ring_init(); magic last. */
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;
	uint32_t features;
	uint32_t resv0;
	uint64_t data_size;
	struct ring_offsets off;
	/* PYSHM_RING_CLOSE_* bits: read by every claim and written once, so
	 * they share the read-mostly line. */
	atomic_uint closed;
	uint32_t resv1;
	/* Claimed by producers (CAS); never behind consumer. */
	alignas(64) _Atomic uint64_t producer;
	/*
	 * Released by the consumer; records before it are zeroed. Beside it,
	 * what the consumer reads after each release (W2) and producers that
	 * wait for space use: a line other processes touch only when the ring
	 * is full.
	 */
	alignas(64) _Atomic uint64_t consumer;
	/* Bumped when space frees up while producers wait; a futex word. */
	atomic_uint space;
	atomic_uint space_waiters;
	/* Bumped by pyshm_ring_kick_producers(): space waiters return -EINTR. */
	atomic_uint kicks;
	uint32_t resv2;
	/* Out-of-line records sent and not yet consumed: OOL_COUNT_ONE per
	 * record plus its payload bytes (claimed by producers, released by
	 * the consumer before it moves on). */
	_Atomic uint64_t ool_inflight;
	uint8_t resv3[32];
	/* Consumer's sleep state (SLEEP_*), a futex word; an io_uring
	 * sleeper's process and waiter fd (SLEEP_URING). */
	alignas(64) atomic_uint sleep;
	atomic_uint waiter_pid;
	atomic_int waiter_fd;
	uint8_t resv4[52];
};

_Static_assert(sizeof(struct ring_shared) == PYSHM_RING_HDR_SIZE, "ring header size");

struct rec_hdr {
	uint32_t len_flags;	/* accessed atomically */
	uint32_t tag;		/* tag_of(position, len_flags) */
};

/* What an out-of-line record carries in the ring. */
struct ring_ool {
	struct pyshm_region_ref ref;
	uint64_t len;
	uint64_t off;		/* where the payload starts in the region */
};

/* ring_shared.ool_inflight: a count in the top 16 bits, bytes below. */
#define OOL_BYTES_MASK	((1ull << 48) - 1)
#define OOL_COUNT_ONE	(1ull << 48)
#define OOL_COUNT_MAX	0xffffu

/* How long a producer sleeps between checks while a socket is full. */
#define XFER_POLL_NS	20000000

struct pyshm_ring {
	struct pyshm_region *region;
	struct ring_shared *sh;
	unsigned char *data;
	uint64_t data_size;		/* cached: never re-read from shared memory */
	uint64_t mask;
	uint64_t inline_max;
	uint64_t ool_threshold;
	uint64_t ool_max_bytes;		/* producer: 0 = no limit */
	unsigned int ool_max_count;	/* producer: 0 = no limit */
	unsigned int flags;
	uint64_t cpos;			/* consumer: position of the next record */
	/* The consumer position last read, so a producer reads the consumer's
	 * cache line only when the ring looks full (shared by threads). */
	_Atomic uint64_t seen_cons;
	struct pyshm_xfer *xfer;	/* sends out-of-line records */
	struct pyshm_xfer *xfers[4];	/* receives them, by PYSHM_XFER_* kind */
	struct pyshm_waiter *waiter;
	bool armed_futex;		/* armed on the futex bridge */
	int peer_fd;
	struct ool_pool pool;		/* producer: regions for out-of-line records */
	struct ool_cache cache;		/* consumer: our mappings of them */
};

static inline atomic_uint *hdr_word(struct rec_hdr *h)
{
	return (atomic_uint *)&h->len_flags;
}

static inline struct rec_hdr *hdr_at(struct pyshm_ring *ring, uint64_t pos)
{
	return (struct rec_hdr *)(ring->data + (pos & ring->mask));
}

/*
 * A record's tag binds its position and header word: a word scribbled
 * without its tag does not validate. (The multiplier is odd, so distinct
 * words give distinct tags at one position.) This is what lets the consumer
 * trust a record's length without reading the producer's cache line.
 */
static inline uint32_t tag_of(uint64_t pos, uint32_t word)
{
	return (uint32_t)(pos >> 3) ^ (word * 0x9e3779b1u);
}

static inline uint64_t rec_total(uint64_t len)
{
	return ALIGN_UP(sizeof(struct rec_hdr) + len, 8);
}

static const struct ring_offsets layout = {
	.producer = offsetof(struct ring_shared, producer),
	.consumer = offsetof(struct ring_shared, consumer),
	.sleep = offsetof(struct ring_shared, sleep),
	.closed = offsetof(struct ring_shared, closed),
	.space = offsetof(struct ring_shared, space),
	.space_waiters = offsetof(struct ring_shared, space_waiters),
	.data = PYSHM_RING_HDR_SIZE,
	.waiter = offsetof(struct ring_shared, waiter_pid),
};

static bool data_size_ok(uint64_t n)
{
	return n >= PYSHM_RING_MIN_DATA && n <= PYSHM_RING_MAX_DATA && !(n & (n - 1));
}

static int handle_new(struct pyshm_region *r, uint64_t offset, uint64_t data_size,
		      unsigned int flags, struct pyshm_ring **out)
{
	struct pyshm_ring *ring = calloc(1, sizeof(*ring));

	if (!ring)
		return -ENOMEM;
	ring->region = pyshm_region_get(r);
	ring->sh = (struct ring_shared *)((unsigned char *)pyshm_region_data(r) + offset);
	ring->data = (unsigned char *)ring->sh + PYSHM_RING_HDR_SIZE;
	ring->data_size = data_size;
	ring->mask = data_size - 1;
	ring->inline_max = data_size / 4;
	ring->ool_threshold = ring->inline_max;
	ring->flags = flags;
	ring->peer_fd = -1;
	__pyshm_pool_init(&ring->pool);
	ring->cpos = atomic_load_explicit(&ring->sh->consumer, memory_order_acquire);
	*out = ring;
	return 0;
}

static bool range_ok(struct pyshm_region *r, uint64_t offset, uint64_t data_size)
{
	uint64_t end;

	if (offset % 64 || __builtin_add_overflow(offset, pyshm_ring_bytes(data_size), &end))
		return false;
	return end <= pyshm_region_size(r);
}

PYSHM_EXPORT int pyshm_ring_init(struct pyshm_region *r, uint64_t offset,
				 uint64_t data_size, unsigned int flags,
				 struct pyshm_ring **out)
{
	struct ring_shared *sh;

	if (!r || !out || !flags || flags & ~PYSHM_RING_F_ALL ||
	    !data_size_ok(data_size) || !range_ok(r, offset, data_size) ||
	    pyshm_region_flags(r) & PYSHM_REGION_SEALED)
		return -EINVAL;

	sh = (struct ring_shared *)((unsigned char *)pyshm_region_data(r) + offset);
	sh->version = RING_VERSION;
	sh->hdr_size = PYSHM_RING_HDR_SIZE;
	sh->features = RING_FEAT_ALL;
	sh->data_size = data_size;
	sh->off = layout;
	/* Pairs with the acquire in pyshm_ring_attach(): fields before magic. */
	atomic_store_explicit((atomic_uint *)&sh->magic, RING_MAGIC, memory_order_release);
	return handle_new(r, offset, data_size, flags, out);
}

PYSHM_EXPORT int pyshm_ring_attach(struct pyshm_region *r, uint64_t offset,
				   unsigned int flags, struct pyshm_ring **out)
{
	struct ring_shared *sh;
	uint64_t data_size;

	if (!r || !out || !flags || flags & ~PYSHM_RING_F_ALL || offset % 64 ||
	    offset > pyshm_region_size(r) ||
	    pyshm_region_size(r) - offset < PYSHM_RING_HDR_SIZE)
		return -EINVAL;

	sh = (struct ring_shared *)((unsigned char *)pyshm_region_data(r) + offset);
	if (atomic_load_explicit((atomic_uint *)&sh->magic, memory_order_acquire) != RING_MAGIC ||
	    sh->version != RING_VERSION || sh->hdr_size != PYSHM_RING_HDR_SIZE ||
	    memcmp(&sh->off, &layout, sizeof(layout)))
		return -EBADMSG;
	if (sh->features & ~RING_FEAT_ALL)
		return -EPROTO;
	data_size = sh->data_size;
	if (!data_size_ok(data_size) || !range_ok(r, offset, data_size))
		return -EBADMSG;
	return handle_new(r, offset, data_size, flags, out);
}

PYSHM_EXPORT void pyshm_ring_free(struct pyshm_ring *ring)
{
	if (!ring)
		return;
	/* The bridge must not watch a word that may be unmapped next. */
	if (ring->armed_futex)
		pyshm_ring_disarm(ring);
	__pyshm_pool_free(&ring->pool);
	__pyshm_cache_free(&ring->cache);
	pyshm_region_put(ring->region);
	free(ring);
}

PYSHM_EXPORT void pyshm_ring_set_xfer(struct pyshm_ring *ring, struct pyshm_xfer *x)
{
	ring->xfer = x;
	if (x)
		ring->xfers[pyshm_xfer_kind(x)] = x;
}

PYSHM_EXPORT void pyshm_ring_set_ool_threshold(struct pyshm_ring *ring, uint64_t bytes)
{
	ring->ool_threshold = bytes < ring->inline_max ? bytes : ring->inline_max;
}

PYSHM_EXPORT void pyshm_ring_set_ool_limit(struct pyshm_ring *ring, uint64_t bytes,
					   unsigned int count)
{
	ring->ool_max_bytes = bytes;
	ring->ool_max_count = count;
}

PYSHM_EXPORT void pyshm_ring_ool_inflight(const struct pyshm_ring *ring, uint64_t *bytes,
					  unsigned int *count)
{
	uint64_t v = atomic_load_explicit(&ring->sh->ool_inflight, memory_order_relaxed);

	if (bytes)
		*bytes = v & OOL_BYTES_MASK;
	if (count)
		*count = (unsigned int)(v >> 48);
}

PYSHM_EXPORT void pyshm_ring_set_waiter(struct pyshm_ring *ring, struct pyshm_waiter *w)
{
	ring->waiter = w;
}

PYSHM_EXPORT void pyshm_ring_set_peer(struct pyshm_ring *ring, int fd)
{
	ring->peer_fd = fd;
}

/* Wake the consumer if it sleeps. Every publish and close ends here. */
static void ring_wake(struct pyshm_ring *ring)
{
	struct ring_shared *sh = ring->sh;
	unsigned int how;

	/* W1: pairs with S1 in sleep_announce(). The publish before this is
	 * seq_cst as well, so either the consumer sees what we published, or
	 * we see it asleep. */
	if (likely(!atomic_load_explicit(&sh->sleep, memory_order_seq_cst)))
		return;
	/* Acquire: pairs with S1; the waiter slot is read after the sleep. */
	how = atomic_exchange_explicit(&sh->sleep, 0, memory_order_acquire);
	if (how == SLEEP_URING) {
		/* The consumer's io_uring, by its fd in this process: ours
		 * when it lives here, else the one this handle was given. */
		if (atomic_load_explicit(&sh->waiter_pid, memory_order_relaxed) ==
		    (unsigned int)__pyshm_getpid())
			__pyshm_wake_uring(atomic_load_explicit(&sh->waiter_fd,
								memory_order_relaxed), 0);
		else if (ring->peer_fd >= 0)
			__pyshm_wake_uring(ring->peer_fd, 0);
	} else if (how) {
		__pyshm_futex_wake(&sh->sleep, 1);
	}
}

/* Wake producers waiting for space: they re-check the ring. */
static void space_bump(struct ring_shared *sh)
{
	/* Release: pairs with the acquire in space_wait(). */
	atomic_fetch_add_explicit(&sh->space, 1, memory_order_release);
	__pyshm_futex_wake(&sh->space, INT_MAX);
}

/* The consumer moved: let producers waiting for space re-check. */
static void space_wake(struct ring_shared *sh)
{
	/* W2: pairs with S2 in space_wait(). The position store before this
	 * is seq_cst as well, so they either see the new consumer position or
	 * we see them waiting. */
	if (likely(!atomic_load_explicit(&sh->space_waiters, memory_order_seq_cst)))
		return;
	space_bump(sh);
}

/*
 * Wait until the consumer position moves past @seen (or the consumer
 * closes): spin for the budget, then sleep on the space futex. -EINTR for a
 * signal, or a wakeup with nothing moved (pyshm_ring_kick_producers()).
 */
static int space_wait(struct pyshm_ring *ring, uint64_t seen, int64_t deadline)
{
	struct ring_shared *sh = ring->sh;
	int64_t spin_end = __pyshm_now_ns() + pyshm_spin_ns();
	int64_t yield_from = spin_end - pyshm_spin_ns() + SPIN_ALONE_NS;
	unsigned int seq, kicks;
	int64_t left;
	int i, ret;

	kicks = atomic_load_explicit(&sh->kicks, memory_order_relaxed);
	while (__pyshm_now_ns() < spin_end && __pyshm_left(deadline) != 0) {
		if (__pyshm_now_ns() > yield_from)
			sched_yield();	/* the consumer may share our CPU */
		for (i = 0; i < 16; i++) {
			if (atomic_load_explicit(&sh->consumer, memory_order_relaxed) != seen ||
			    atomic_load_explicit(&sh->closed, memory_order_relaxed) &
			    PYSHM_RING_CLOSE_CONSUMER)
				return 0;
			__pyshm_cpu_relax();
		}
	}

	/* Wakeups this thread holds back may be what frees the space. */
	__pyshm_wake_submit_held();
	/* Acquire: pairs with the release in space_bump(). */
	seq = atomic_load_explicit(&sh->space, memory_order_acquire);
	/* S2: pairs with W2 in space_wake(). */
	atomic_fetch_add_explicit(&sh->space_waiters, 1, memory_order_seq_cst);
	ret = 0;
	if (atomic_load_explicit(&sh->consumer, memory_order_seq_cst) == seen &&
	    !(atomic_load_explicit(&sh->closed, memory_order_relaxed) &
	      PYSHM_RING_CLOSE_CONSUMER)) {
		left = __pyshm_left(deadline);
		if (atomic_load_explicit(&sh->kicks, memory_order_relaxed) != kicks)
			ret = -EINTR;	/* kicked while we spun */
		else if (left == 0)
			ret = -ETIMEDOUT;
		else
			ret = __pyshm_futex_wait(&sh->space, seq, left);
		if (!ret && atomic_load_explicit(&sh->kicks, memory_order_relaxed) != kicks)
			ret = -EINTR;
	}
	atomic_fetch_sub_explicit(&sh->space_waiters, 1, memory_order_relaxed);
	return ret;
}

/*
 * Claim room for a record of @len payload bytes: returns its position, with
 * a padding record published first when it has to start the next lap.
 */
static int ring_claim(struct pyshm_ring *ring, size_t len, int64_t timeout_ns,
		      uint64_t *pos)
{
	struct ring_shared *sh = ring->sh;
	uint64_t rec = rec_total(len), p, c, off, contig, need;
	int64_t deadline = 0;		/* set once the ring is found full */
	bool waited = false;
	struct rec_hdr *pad;
	int ret;

	for (;;) {
		if (atomic_load_explicit(&sh->closed, memory_order_relaxed) &
		    PYSHM_RING_CLOSE_CONSUMER)
			return -EPIPE;
		/*
		 * Producer first, then consumer: p was within data_size of the
		 * consumer position when read, and that only moves forward.
		 * A consumer past p means p is stale: try again.
		 */
		p = atomic_load_explicit(&sh->producer, memory_order_acquire);
		if (p & 7)
			return -EBADMSG;
		off = p & ring->mask;
		contig = ring->data_size - off;
		need = rec <= contig ? rec : contig + rec;
		c = atomic_load_explicit(&ring->seen_cons, memory_order_acquire);
		if (c > p || p + need - c > ring->data_size) {
			/* A1: pairs with R2 in ring_release(): the space we
			 * reuse was zeroed before the consumer released it.
			 * The cached copy is passed on release/acquire, so
			 * other threads of this handle inherit that order. */
			c = atomic_load_explicit(&sh->consumer, memory_order_acquire);
			atomic_store_explicit(&ring->seen_cons, c, memory_order_release);
			if (c > p) {
				/* Stale p, or a consumer position nobody
				 * could have written: the producer position
				 * read after c is never behind it. */
				if (c > atomic_load_explicit(&sh->producer,
							     memory_order_relaxed))
					return -EBADMSG;
				continue;
			}
			if (p - c > ring->data_size || (p | c) & 7)
				return -EBADMSG;
		}
		if (p + need - c > ring->data_size) {
			if (timeout_ns == 0)
				return -EAGAIN;
			if (!waited) {
				deadline = __pyshm_deadline(timeout_ns);
				waited = true;
			}
			ret = space_wait(ring, c, deadline);
			if (ret < 0)
				return ret;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&sh->producer, &p, p + need,
							  memory_order_relaxed,
							  memory_order_relaxed))
			break;
	}

	if (need != rec) {
		pad = hdr_at(ring, p);
		pad->tag = tag_of(p, REC_COMMIT | REC_PAD);
		/* R1 (pad): pairs with A2 in ring_next(). */
		atomic_store_explicit(hdr_word(pad), REC_COMMIT | REC_PAD, memory_order_release);
		p += contig;
	}
	*pos = p;
	return 0;
}

static void ring_publish(struct pyshm_ring *ring, uint64_t pos, uint32_t word)
{
	struct rec_hdr *h = hdr_at(ring, pos);

	h->tag = tag_of(pos, word);
	/* R1: pairs with A2 in ring_next(): payload and tag are visible
	 * before the header says the record is there. seq_cst for W1. */
	atomic_store_explicit(hdr_word(h), word, memory_order_seq_cst);
	ring_wake(ring);
}

PYSHM_EXPORT int pyshm_ring_reserve(struct pyshm_ring *ring, size_t len,
				    int64_t timeout_ns, struct pyshm_ring_rec *rec)
{
	uint64_t pos;
	int ret;

	if (!ring || !rec || !(ring->flags & PYSHM_RING_PRODUCER))
		return -EINVAL;
	if (len > ring->inline_max)
		return -EMSGSIZE;
	ret = ring_claim(ring, len, timeout_ns, &pos);
	if (ret < 0)
		return ret;
	rec->pos = pos;
	rec->len = len;
	rec->total = rec_total(len);
	rec->data = hdr_at(ring, pos) + 1;
	rec->ool = NULL;
	rec->hdr = (uint32_t)len;
	return 0;
}

PYSHM_EXPORT void pyshm_ring_commit(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	ring_publish(ring, rec->pos, REC_COMMIT | rec->hdr);
}

PYSHM_EXPORT void pyshm_ring_abort(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	/* The consumer skips it; it must still wake to see what follows. */
	ring_publish(ring, rec->pos, REC_COMMIT | REC_ABORT | rec->hdr);
}

static void copy_iov(unsigned char *dst, const struct iovec *iov, int iovcnt)
{
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_len)
			continue;
		memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
}

/* Would one more out-of-line record of @len bytes fit this handle's limits? */
static bool ool_fits(const struct pyshm_ring *ring, uint64_t v, uint64_t len)
{
	uint64_t n = v >> 48, b = v & OOL_BYTES_MASK;

	if (n >= OOL_COUNT_MAX)
		return false;
	/* A record alone in flight always goes, however large. */
	if (!n)
		return true;
	if (ring->ool_max_count && n >= ring->ool_max_count)
		return false;
	return !ring->ool_max_bytes || b + len <= ring->ool_max_bytes;
}

/*
 * Claim room for an out-of-line record of @len bytes in the ring's budget,
 * waiting as for ring space: the consumer gives the budget back before it
 * moves its position, so a position that moved may have freed some.
 */
static int ool_claim(struct pyshm_ring *ring, uint64_t len, bool wait, int64_t deadline)
{
	struct ring_shared *sh = ring->sh;
	uint64_t v, c;
	int ret;

	for (;;) {
		if (atomic_load_explicit(&sh->closed, memory_order_relaxed) &
		    PYSHM_RING_CLOSE_CONSUMER)
			return -EPIPE;
		/* A3: pairs with R2 in ring_release(): a position that shows
		 * a release shows the budget it gave back (R3). */
		c = atomic_load_explicit(&sh->consumer, memory_order_acquire);
		v = atomic_load_explicit(&sh->ool_inflight, memory_order_relaxed);
		if (ool_fits(ring, v, len)) {
			if (atomic_compare_exchange_weak_explicit(&sh->ool_inflight, &v,
								  v + OOL_COUNT_ONE + len,
								  memory_order_relaxed,
								  memory_order_relaxed))
				return 0;
			continue;
		}
		if (!wait)
			return -EAGAIN;
		ret = space_wait(ring, c, deadline);
		if (ret < 0)
			return ret;
	}
}

static void ool_unclaim(struct ring_shared *sh, uint64_t len)
{
	/* R3: pairs with A3 in ool_claim() (through the position store). */
	atomic_fetch_sub_explicit(&sh->ool_inflight, OOL_COUNT_ONE + len, memory_order_release);
}

/*
 * The transfer's socket is full (the receiver has not taken the fds queued
 * before): wait for room in slices, so that a kick or the consumer closing
 * ends the wait as it ends a wait for space.
 */
static int xfer_wait(struct pyshm_ring *ring, unsigned int kicks, int64_t deadline)
{
	struct ring_shared *sh = ring->sh;
	int64_t left;
	int ret;

	for (;;) {
		left = __pyshm_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		ret = pyshm_xfer_wait_room(ring->xfer,
					   left < 0 || left > XFER_POLL_NS ? XFER_POLL_NS : left);
		if (ret != -ETIMEDOUT)
			return ret;
		if (atomic_load_explicit(&sh->kicks, memory_order_relaxed) != kicks)
			return -EINTR;
		if (atomic_load_explicit(&sh->closed, memory_order_relaxed) &
		    PYSHM_RING_CLOSE_CONSUMER)
			return -EPIPE;
	}
}

/*
 * Send @len bytes through a region of their own, referenced from the ring:
 * a region of the handle's pool, faulted in already, that the consumer
 * hands back. The bytes are copied once; waits (for budget, ring space,
 * room in the transfer's socket) share one deadline.
 */
static int send_ool(struct pyshm_ring *ring, const struct iovec *iov, int iovcnt,
		    size_t len, int64_t timeout_ns)
{
	int64_t deadline = __pyshm_deadline(timeout_ns);
	unsigned int kicks = atomic_load_explicit(&ring->sh->kicks, memory_order_relaxed);
	struct pyshm_ring_rec rec;
	struct pyshm_region *r;
	struct ring_ool *ool;
	int ret;

	ret = ool_claim(ring, len, timeout_ns != 0, deadline);
	if (ret < 0)
		return ret;
	ret = __pyshm_pool_take(&ring->pool, len, ring->ool_max_bytes, ring->ool_max_count, &r);
	if (ret < 0)
		goto err_unclaim;
	copy_iov((unsigned char *)pyshm_region_data(r) + OOL_HDR, iov, iovcnt);
	ret = pyshm_ring_reserve(ring, sizeof(*ool), timeout_ns ? __pyshm_left(deadline) : 0,
				 &rec);
	if (ret == -EAGAIN && timeout_ns)
		ret = -ETIMEDOUT;
	if (ret < 0)
		goto err_giveback;
	ool = rec.data;
	ool->len = len;
	ool->off = OOL_HDR;
	for (;;) {
		ret = pyshm_xfer_send(ring->xfer, r, &ool->ref);
		if (ret != -EAGAIN || !timeout_ns)
			break;
		ret = xfer_wait(ring, kicks, deadline);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		pyshm_ring_abort(ring, &rec);
		goto err_giveback;
	}
	/* In flight, the reference holds the region (the pool has its own). */
	pyshm_region_put(r);
	rec.hdr |= REC_OOL;
	pyshm_ring_commit(ring, &rec);
	return 0;

err_giveback:
	__pyshm_pool_giveback(r);
	pyshm_region_put(r);
err_unclaim:
	ool_unclaim(ring->sh, len);
	return ret;
}

PYSHM_EXPORT int pyshm_ring_sendv(struct pyshm_ring *ring, const struct iovec *iov,
				  int iovcnt, int64_t timeout_ns)
{
	struct pyshm_ring_rec rec;
	size_t len = 0;
	int i, ret;

	if (!ring || iovcnt < 0 || (iovcnt && !iov) || !(ring->flags & PYSHM_RING_PRODUCER))
		return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		if (__builtin_add_overflow(len, iov[i].iov_len, &len))
			return -EMSGSIZE;
	}
	if (len > ring->ool_threshold && ring->xfer) {
		if (len > PYSHM_REGION_SIZE_MAX)
			return -EMSGSIZE;
		return send_ool(ring, iov, iovcnt, len, timeout_ns);
	}
	ret = pyshm_ring_reserve(ring, len, timeout_ns, &rec);
	if (ret < 0)
		return ret;
	copy_iov(rec.data, iov, iovcnt);
	pyshm_ring_commit(ring, &rec);
	return 0;
}

PYSHM_EXPORT int pyshm_ring_send(struct pyshm_ring *ring, const void *buf,
				 size_t len, int64_t timeout_ns)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return pyshm_ring_sendv(ring, &iov, 1, timeout_ns);
}

/* Release [cpos, cpos + total): zero it for the next lap, then move on. */
static void ring_release(struct pyshm_ring *ring, uint64_t total)
{
	struct rec_hdr *h = hdr_at(ring, ring->cpos);

	memset(h + 1, 0, total - sizeof(*h));
	h->tag = 0;
	atomic_store_explicit(hdr_word(h), 0, memory_order_relaxed);
	ring->cpos += total;
	/* R2: pairs with A1 in ring_claim(): zeroes before the position;
	 * and with A3 in ool_claim(): the budget given back. seq_cst for W2. */
	atomic_store_explicit(&ring->sh->consumer, ring->cpos, memory_order_seq_cst);
	space_wake(ring->sh);
}

/*
 * Look at the record at the consumer position: 1 with @rec filled, 0 when
 * there is none yet, -EPIPE at the end, -EBADMSG for corruption. Padding and
 * aborted records are released on the way.
 */
static int ring_next(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	struct ring_shared *sh = ring->sh;
	uint64_t off, total;
	struct rec_hdr *h;
	uint32_t word;

	for (;;) {
		h = hdr_at(ring, ring->cpos);
		/* A2: pairs with R1 in ring_publish(). */
		word = atomic_load_explicit(hdr_word(h), memory_order_acquire);
		if (!word) {
			if (!(atomic_load_explicit(&sh->closed, memory_order_acquire) &
			      PYSHM_RING_CLOSE_PRODUCERS))
				return 0;
			/* Records published before the close are visible now. */
			word = atomic_load_explicit(hdr_word(h), memory_order_acquire);
			if (!word)
				return -EPIPE;
		}
		if (!(word & REC_COMMIT) || h->tag != tag_of(ring->cpos, word))
			return -EBADMSG;
		off = ring->cpos & ring->mask;
		if (word & REC_PAD) {
			if (!off)
				return -EBADMSG;
			ring_release(ring, ring->data_size - off);
			continue;
		}
		total = rec_total(word & REC_LEN_MASK);
		if (total > ring->data_size - off)
			return -EBADMSG;
		if (word & REC_ABORT) {
			ring_release(ring, total);
			continue;
		}
		rec->pos = ring->cpos;
		rec->total = total;
		rec->hdr = word;
		rec->data = h + 1;
		rec->len = word & REC_LEN_MASK;
		rec->ool = NULL;
		return 1;
	}
}

/*
 * Map the region an out-of-line record refers to: the payload at offset 0
 * of a region of its own, or after the header of a pooled one.
 */
static int ool_open(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	struct pyshm_xfer *x;
	struct ring_ool ool;
	struct pyshm_region *r;
	uint64_t size;
	int ret;

	if (rec->len != sizeof(ool))
		return -EBADMSG;
	memcpy(&ool, rec->data, sizeof(ool));
	x = ool.ref.kind < 4 ? ring->xfers[ool.ref.kind] : NULL;
	if (!x || (ool.off != 0 && ool.off != OOL_HDR))
		return -EBADMSG;
	ret = pyshm_xfer_recv(x, &ool.ref, &r);
	if (ret < 0)
		return ret;
	size = pyshm_region_size(r);
	if (size < ool.off || ool.len > size - ool.off ||
	    (ool.off && !__pyshm_ool_pooled(r))) {
		pyshm_region_put(r);
		return -EBADMSG;
	}
	rec->ool = r;
	rec->data = (unsigned char *)pyshm_region_data(r) + ool.off;
	rec->len = ool.len;
	return 0;
}

PYSHM_EXPORT int pyshm_ring_peek(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	int ret;

	if (!ring || !rec || !(ring->flags & PYSHM_RING_CONSUMER))
		return -EINVAL;
	rec->total = 0;
	ret = ring_next(ring, rec);
	if (ret == 0)
		return -EAGAIN;
	if (ret < 0)
		return ret;
	if (rec->hdr & REC_OOL) {
		ret = ool_open(ring, rec);
		if (ret < 0) {
			/* Leave a record pyshm_ring_consume() can skip. */
			rec->data = NULL;
			rec->len = 0;
			return ret;
		}
	}
	return 0;
}

PYSHM_EXPORT void pyshm_ring_consume(struct pyshm_ring *ring, struct pyshm_ring_rec *rec)
{
	struct ring_ool ool;

	if (rec->pos != ring->cpos || !rec->total)
		return;
	if (rec->ool && __pyshm_ool_pooled(rec->ool))
		__pyshm_cache_done(&ring->cache, rec->ool);
	pyshm_region_put(rec->ool);
	rec->ool = NULL;
	/* The producers' budget, given back before the position moves (also
	 * for a reference that did not resolve: it was counted). */
	if (rec->hdr & REC_OOL && (rec->hdr & REC_LEN_MASK) == sizeof(ool)) {
		memcpy(&ool, hdr_at(ring, rec->pos) + 1, sizeof(ool));
		ool_unclaim(ring->sh, ool.len & OOL_BYTES_MASK);
	}
	ring_release(ring, rec->total);
	rec->total = 0;
}

/* 1 when the consumer has something to look at (a record or the close). */
static int ring_ready(struct pyshm_ring *ring)
{
	unsigned int word;

	/* seq_cst: the loads after S1 in sleep_announce(). */
	word = atomic_load_explicit(hdr_word(hdr_at(ring, ring->cpos)), memory_order_seq_cst);
	/* Padding only says where the next record will be. */
	if (word == (REC_COMMIT | REC_PAD))
		word = atomic_load_explicit(hdr_word(hdr_at(ring, (ring->cpos | ring->mask) + 1)),
					    memory_order_seq_cst);
	return word || atomic_load_explicit(&ring->sh->closed, memory_order_seq_cst) &
		       PYSHM_RING_CLOSE_PRODUCERS;
}

/*
 * Records are not checked against the producer position as they are read
 * (their tags are checked); a consumer past it, which only a forged record
 * can cause, would wait forever. Checked before the consumer sleeps.
 */
static bool consumer_ahead(struct pyshm_ring *ring)
{
	return ring->cpos > atomic_load_explicit(&ring->sh->producer, memory_order_relaxed);
}

static unsigned int sleep_kind(struct pyshm_ring *ring)
{
	return ring->waiter && pyshm_waiter_kind(ring->waiter) == PYSHM_WAKE_URING ?
	       SLEEP_URING : SLEEP_FUTEX;
}

/* Announce that we are about to sleep; false if a record beat us to it. */
static bool sleep_announce(struct pyshm_ring *ring, unsigned int how)
{
	if (how == SLEEP_URING) {
		atomic_store_explicit(&ring->sh->waiter_pid, (unsigned int)__pyshm_getpid(),
				      memory_order_relaxed);
		atomic_store_explicit(&ring->sh->waiter_fd, pyshm_waiter_fd(ring->waiter),
				      memory_order_relaxed);
	}
	/* S1: pairs with W1 in ring_wake(); publishes the waiter slot. */
	atomic_store_explicit(&ring->sh->sleep, how, memory_order_seq_cst);
	if (!ring_ready(ring))
		return true;
	atomic_store_explicit(&ring->sh->sleep, 0, memory_order_relaxed);
	return false;
}

PYSHM_EXPORT int pyshm_ring_wait(struct pyshm_ring *ring, int64_t timeout_ns)
{
	int64_t deadline, spin_end, left;
	unsigned int how;
	int i, ret;

	if (!ring || !(ring->flags & PYSHM_RING_CONSUMER))
		return -EINVAL;
	if (ring_ready(ring))
		return 0;
	deadline = __pyshm_deadline(timeout_ns);
	if (pyshm_spin_ns() > 0) {
		int64_t now = __pyshm_now_ns(), yield_from = now + SPIN_ALONE_NS;

		spin_end = now + pyshm_spin_ns();
		do {
			for (i = 0; i < 16; i++) {
				if (ring_ready(ring))
					return 0;
				__pyshm_cpu_relax();
			}
			now = __pyshm_now_ns();
			/* The producer may share our CPU: let it run. */
			if (now > yield_from)
				sched_yield();
		} while (now < spin_end && __pyshm_left(deadline) != 0);
	}

	if (consumer_ahead(ring))
		return -EBADMSG;
	how = sleep_kind(ring);
	/* Wakeups this thread holds back may be what we wait for. */
	__pyshm_wake_submit_held();
	if (how == SLEEP_URING)
		pyshm_waiter_drain(ring->waiter);
	if (!sleep_announce(ring, how))
		return 0;
	left = __pyshm_left(deadline);
	if (left == 0)
		ret = -ETIMEDOUT;
	else if (how == SLEEP_URING)
		ret = pyshm_waiter_wait(ring->waiter, left);
	else
		ret = __pyshm_futex_wait(&ring->sh->sleep, how, left);
	if (ret >= 0)
		return 0;	/* woken (maybe by pyshm_ring_kick()) */
	/*
	 * A waker clears the word before it wakes us; after a timeout, signal
	 * or error we do. Not touched after a wakeup: the line is the waker's,
	 * and the record it published waits for our answer. (A wakeup meant
	 * for another ring sharing our waiter leaves the word set: at worst,
	 * one needless wakeup later.)
	 */
	atomic_store_explicit(&ring->sh->sleep, 0, memory_order_relaxed);
	return ring_ready(ring) ? 0 : ret;
}

PYSHM_EXPORT int pyshm_ring_recv(struct pyshm_ring *ring, struct pyshm_ring_rec *rec,
				 int64_t timeout_ns)
{
	int64_t deadline = __pyshm_deadline(timeout_ns);
	int ret;

	/* A padding record makes the ring look ready before the record that
	 * follows it is published: then wait again. */
	do {
		ret = pyshm_ring_wait(ring, __pyshm_left(deadline));
		if (ret < 0)
			return ret;
		ret = pyshm_ring_peek(ring, rec);
	} while (ret == -EAGAIN && __pyshm_left(deadline) != 0);
	return ret == -EAGAIN ? -ETIMEDOUT : ret;
}

PYSHM_EXPORT int pyshm_ring_arm(struct pyshm_ring *ring)
{
	unsigned int how;
	int efd, ret;

	if (!ring || !(ring->flags & PYSHM_RING_CONSUMER) || !ring->waiter)
		return -EINVAL;
	if (consumer_ahead(ring))
		return -EBADMSG;
	how = sleep_kind(ring);
	if (how == SLEEP_FUTEX) {
		efd = __pyshm_waiter_efd(ring->waiter);
		if (efd < 0)
			return efd;
	}
	if (!sleep_announce(ring, how))
		return -EAGAIN;
	if (how == SLEEP_FUTEX) {
		/* The bridge turns the futex wakeup into the eventfd. */
		ret = __pyshm_bridge_arm(&ring->sh->sleep, SLEEP_FUTEX, efd);
		if (ret < 0) {
			atomic_store_explicit(&ring->sh->sleep, 0, memory_order_relaxed);
			return ret;
		}
		ring->armed_futex = true;
	}
	return 0;
}

PYSHM_EXPORT int pyshm_ring_arm_futex(struct pyshm_ring *ring, uint32_t **word, uint32_t *val)
{
	_Static_assert(sizeof(ring->sh->sleep) == sizeof(uint32_t), "a futex word");

	if (!ring || !word || !val || !(ring->flags & PYSHM_RING_CONSUMER))
		return -EINVAL;
	if (consumer_ahead(ring))
		return -EBADMSG;
	if (!sleep_announce(ring, SLEEP_FUTEX))
		return -EAGAIN;
	*word = (uint32_t *)&ring->sh->sleep;
	*val = SLEEP_FUTEX;
	return 0;
}

PYSHM_EXPORT void pyshm_ring_disarm(struct pyshm_ring *ring)
{
	/* Off the bridge before the word changes: it would take the change
	 * for a wakeup. */
	if (ring->armed_futex) {
		__pyshm_bridge_disarm(&ring->sh->sleep, __pyshm_waiter_efd(ring->waiter));
		ring->armed_futex = false;
	}
	atomic_store_explicit(&ring->sh->sleep, 0, memory_order_relaxed);
}

PYSHM_EXPORT int pyshm_ring_keep(struct pyshm_ring *ring, struct pyshm_ring_rec *rec,
				 struct pyshm_region **out)
{
	if (!ring || !rec || !out || !rec->ool || rec->pos != ring->cpos || !rec->total)
		return -EINVAL;
	if (__pyshm_ool_pooled(rec->ool))
		__pyshm_ool_keep(rec->ool);
	*out = pyshm_region_get(rec->ool);
	return 0;
}

PYSHM_EXPORT void pyshm_ring_trim(struct pyshm_ring *ring)
{
	if (!ring)
		return;
	if (ring->flags & PYSHM_RING_PRODUCER)
		__pyshm_pool_trim(&ring->pool);
	if (ring->flags & PYSHM_RING_CONSUMER)
		__pyshm_cache_trim(&ring->cache);
}

PYSHM_EXPORT void pyshm_ring_kick(struct pyshm_ring *ring)
{
	ring_wake(ring);
}

PYSHM_EXPORT void pyshm_ring_kick_producers(struct pyshm_ring *ring)
{
	atomic_fetch_add_explicit(&ring->sh->kicks, 1, memory_order_relaxed);
	space_bump(ring->sh);
}

PYSHM_EXPORT void pyshm_ring_close(struct pyshm_ring *ring, unsigned int side)
{
	struct ring_shared *sh = ring->sh;

	side &= PYSHM_RING_CLOSE_PRODUCERS | PYSHM_RING_CLOSE_CONSUMER;
	atomic_fetch_or_explicit(&sh->closed, side, memory_order_seq_cst);
	if (side & PYSHM_RING_CLOSE_PRODUCERS)
		ring_wake(ring);
	/* A producer that sees the bump sees the close. */
	if (side & PYSHM_RING_CLOSE_CONSUMER)
		space_bump(sh);
}

PYSHM_EXPORT unsigned int pyshm_ring_closed(const struct pyshm_ring *ring)
{
	return atomic_load_explicit(&ring->sh->closed, memory_order_acquire);
}

PYSHM_EXPORT int pyshm_ring_discard_all(struct pyshm_ring *ring)
{
	struct pyshm_ring_rec rec;
	int n = 0, ret;

	if (!ring || !(ring->flags & PYSHM_RING_CONSUMER))
		return -EINVAL;
	for (;;) {
		ret = pyshm_ring_peek(ring, &rec);
		if (ret == -EAGAIN || ret == -EPIPE)
			return n;
		if (ret < 0 && !rec.total)
			return ret;
		pyshm_ring_consume(ring, &rec);
		n++;
	}
}
