/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * A ring is a bounded queue of variable-length records inside a region:
 * one consumer, one or many producers, in threads or processes that map the
 * region. Producers claim space with a compare-and-swap on the producer
 * position, fill the record, then publish its header; the consumer reads
 * records in position order, so records of one producer arrive in order and
 * a record is never seen half-written. Nothing is dropped: a full ring makes
 * producers wait, with a timeout.
 *
 * Records larger than the ring's out-of-line threshold travel in a region of
 * their own (see xfer.h); the ring holds a reference, and the region is
 * released when the consumer is done with the record.
 *
 * The layout (header, positions, record format) is in
 * Documentation/ring-layout.rst. The consumer validates what it reads from
 * shared memory: a corrupted header or record gives -EBADMSG, never an
 * out-of-bounds access.
 */
#ifndef PYSHM_RING_H
#define PYSHM_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <pyshm/region.h>
#include <pyshm/wake.h>
#include <pyshm/xfer.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the ring header that precedes the data area. */
#define PYSHM_RING_HDR_SIZE	256u
/* Smallest and largest data area; it must be a power of two. */
#define PYSHM_RING_MIN_DATA	4096u
#define PYSHM_RING_MAX_DATA	(1u << 28)

/* pyshm_ring_init()/pyshm_ring_attach() flags */
#define PYSHM_RING_PRODUCER	(1u << 0)	/* this handle sends */
#define PYSHM_RING_CONSUMER	(1u << 1)	/* this handle receives */
#define PYSHM_RING_F_ALL	(PYSHM_RING_PRODUCER | PYSHM_RING_CONSUMER)

/* pyshm_ring_close() sides */
#define PYSHM_RING_CLOSE_PRODUCERS	(1u << 0)	/* no more records */
#define PYSHM_RING_CLOSE_CONSUMER	(1u << 1)	/* nobody will read */

struct pyshm_ring;

/* A record being written (reserve/commit) or read (peek/consume). */
struct pyshm_ring_rec {
	void *data;
	size_t len;
	/* private to the library */
	uint64_t pos;
	uint64_t total;
	struct pyshm_region *ool;
	unsigned int hdr;
};

/**
 * pyshm_ring_bytes() - bytes a ring with @data_size bytes of data occupies
 */
static inline uint64_t pyshm_ring_bytes(uint64_t data_size)
{
	return PYSHM_RING_HDR_SIZE + data_size;
}

/**
 * pyshm_ring_init() - lay out a new, empty ring in a region
 * @r: the region; the handle takes its own reference
 * @offset: where the ring starts; a multiple of 64
 * @data_size: bytes of record space, a power of two in
 *	[PYSHM_RING_MIN_DATA, PYSHM_RING_MAX_DATA]
 * @flags: PYSHM_RING_PRODUCER and/or PYSHM_RING_CONSUMER
 * @out: the new handle
 *
 * The bytes at @offset must be zero (as in a new region).
 *
 * Return: 0; -EINVAL for bad arguments or a range beyond the region;
 * -ENOMEM.
 */
int pyshm_ring_init(struct pyshm_region *r, uint64_t offset, uint64_t data_size,
		    unsigned int flags, struct pyshm_ring **out);

/**
 * pyshm_ring_attach() - a new handle on a ring already laid out
 *
 * Return: 0; -EINVAL for bad arguments; -EBADMSG when the header is not a
 * valid ring of this version; -EPROTO for unknown required features.
 */
int pyshm_ring_attach(struct pyshm_region *r, uint64_t offset,
		      unsigned int flags, struct pyshm_ring **out);

/**
 * pyshm_ring_free() - release a handle (not the ring); NULL is ignored
 *
 * A consumer handle does not close the ring; call pyshm_ring_close() for
 * that. Out-of-line records still queued are not released: a consumer that
 * goes away drains them with pyshm_ring_discard_all() first.
 */
void pyshm_ring_free(struct pyshm_ring *ring);

/**
 * pyshm_ring_set_xfer() - how out-of-line records travel
 *
 * A producer handle sends with the last transfer set; a consumer handle
 * receives with the one of the kind each record names, so it may be given
 * several (one per kind). Without one, records above the inline limit give
 * -EMSGSIZE. The ring does not own @x.
 */
void pyshm_ring_set_xfer(struct pyshm_ring *ring, struct pyshm_xfer *x);

/**
 * pyshm_ring_set_ool_threshold() - payloads above @bytes go out of line
 *
 * Clamped to the inline limit (a quarter of the data area). Per handle.
 */
void pyshm_ring_set_ool_threshold(struct pyshm_ring *ring, uint64_t bytes);

/**
 * pyshm_ring_set_ool_limit() - bound what out-of-line records hold in flight
 * @bytes: payload bytes of out-of-line records sent and not yet consumed;
 *	0 for no limit
 * @count: number of such records (each holds a region, and an fd in the
 *	receiver or its socket); 0 for no limit (at most 65535)
 *
 * A producer that would go over either limit waits as for ring space (the
 * same timeout, -EAGAIN and -EINTR rules) until the consumer consumes
 * out-of-line records. A record alone in flight always goes, however large.
 * The totals live in the ring and count every producer; the limits are this
 * handle's.
 */
void pyshm_ring_set_ool_limit(struct pyshm_ring *ring, uint64_t bytes, unsigned int count);

/**
 * pyshm_ring_ool_inflight() - out-of-line records in flight now
 * @bytes: their payload bytes (may be NULL)
 * @count: their number (may be NULL)
 */
void pyshm_ring_ool_inflight(const struct pyshm_ring *ring, uint64_t *bytes,
			     unsigned int *count);

/**
 * pyshm_ring_set_waiter() - how this consumer handle sleeps
 *
 * NULL or a futex waiter: sleep on the ring's futex word. An io_uring
 * waiter: every producer must be able to reach its fd: producers in this
 * process always can (the ring header names the sleeper's pid and fd),
 * others only through pyshm_ring_set_peer(). Callable before every wait,
 * to switch as producers come and go. The ring does not own @w.
 */
void pyshm_ring_set_waiter(struct pyshm_ring *ring, struct pyshm_waiter *w);

/**
 * pyshm_ring_set_peer() - the consumer's io_uring fd, in this process
 * @fd: the fd, in this process, of the io_uring a consumer in another
 *	process sleeps in (inherited at spawn), or -1
 */
void pyshm_ring_set_peer(struct pyshm_ring *ring, int fd);

/**
 * pyshm_ring_send() - copy one record in and publish it
 * @timeout_ns: how long to wait for space; < 0 without limit, 0 not at all
 *
 * Return: 0; -EAGAIN (timeout 0) or -ETIMEDOUT when the ring stays full;
 * -EINTR when a wait for space was interrupted by a signal or by
 * pyshm_ring_kick_producers() (nothing was sent; try again with the time
 * left); -EPIPE when the consumer closed; -EMSGSIZE when too large for the ring
 * and no transfer is set; -EBADMSG when the shared header is corrupt;
 * -EINVAL for a non-producer handle.
 */
int pyshm_ring_send(struct pyshm_ring *ring, const void *buf, size_t len,
		    int64_t timeout_ns);

/**
 * pyshm_ring_sendv() - pyshm_ring_send() gathering from @iovcnt buffers
 */
int pyshm_ring_sendv(struct pyshm_ring *ring, const struct iovec *iov,
		     int iovcnt, int64_t timeout_ns);

/**
 * pyshm_ring_reserve() - claim space for a record of @len bytes
 *
 * The caller fills @rec->data, then calls pyshm_ring_commit() or
 * pyshm_ring_abort(). Records up to the out-of-line threshold only.
 *
 * Return: as pyshm_ring_send().
 */
int pyshm_ring_reserve(struct pyshm_ring *ring, size_t len, int64_t timeout_ns,
		       struct pyshm_ring_rec *rec);

/**
 * pyshm_ring_commit() - publish a reserved record and wake the consumer
 */
void pyshm_ring_commit(struct pyshm_ring *ring, struct pyshm_ring_rec *rec);

/**
 * pyshm_ring_abort() - give up a reserved record; the consumer skips it
 */
void pyshm_ring_abort(struct pyshm_ring *ring, struct pyshm_ring_rec *rec);

/**
 * pyshm_ring_peek() - the next record, without waiting
 *
 * The record stays valid, and the ring position stays, until
 * pyshm_ring_consume(). Out-of-line records are mapped here.
 *
 * Return: 0; -EAGAIN when empty; -EPIPE when empty and the producers
 * closed; -EBADMSG for a corrupted ring; -EINVAL for a non-consumer handle.
 */
int pyshm_ring_peek(struct pyshm_ring *ring, struct pyshm_ring_rec *rec);

/**
 * pyshm_ring_consume() - release the record from pyshm_ring_peek()
 */
void pyshm_ring_consume(struct pyshm_ring *ring, struct pyshm_ring_rec *rec);

/**
 * pyshm_ring_keep() - keep the region of an out-of-line record past it
 * @rec: a record from pyshm_ring_peek(), not yet consumed
 * @out: a reference on the region; @rec->data stays valid while it is held
 *
 * Out-of-line records live in regions the producer reuses once the record
 * is consumed. A consumer that wants the bytes longer (to build an object
 * over them without a copy) keeps the region: the producer then leaves it
 * alone until pyshm_ring_kept_put() drops the last keep.
 *
 * Return: 0; -EINVAL when @rec is not an out-of-line record being read.
 */
int pyshm_ring_keep(struct pyshm_ring *ring, struct pyshm_ring_rec *rec,
		    struct pyshm_region **out);

/**
 * pyshm_ring_kept_put() - drop a reference from pyshm_ring_keep()
 *
 * The last one hands the region back to its producer (when it still wants
 * it), and frees it when nobody does. NULL is ignored.
 */
void pyshm_ring_kept_put(struct pyshm_region *r);

/**
 * pyshm_ring_trim() - let go of out-of-line regions nobody needs
 *
 * A producer handle retires the regions of its pool that stayed idle
 * (about two seconds); a consumer handle drops its mappings of regions
 * their producer retired. Sends and receives do this as they go; call it
 * on a channel that went quiet.
 */
void pyshm_ring_trim(struct pyshm_ring *ring);

/**
 * pyshm_ring_wait() - wait until pyshm_ring_peek() has something to say
 * @timeout_ns: < 0 without limit
 *
 * Spins for the spin budget, then sleeps through the handle's waiter.
 * A wakeup returns 0 even if nothing is there yet (pyshm_ring_kick(), or a
 * record still being written): peek, and wait again on -EAGAIN.
 *
 * Return: 0 when a record (or the close) may be there; -ETIMEDOUT; -EINTR
 * when a signal interrupted the sleep; -EBADMSG.
 */
int pyshm_ring_wait(struct pyshm_ring *ring, int64_t timeout_ns);

/**
 * pyshm_ring_recv() - pyshm_ring_wait() then pyshm_ring_peek()
 */
int pyshm_ring_recv(struct pyshm_ring *ring, struct pyshm_ring_rec *rec,
		    int64_t timeout_ns);

/**
 * pyshm_ring_arm() - ask to be woken through the waiter's fd
 *
 * For event loops: arm, poll pyshm_waiter_fd(), then pyshm_ring_disarm(),
 * pyshm_waiter_drain() and peek. Works with both kinds of waiter: a futex
 * waiter's eventfd is signalled by a bridge thread.
 *
 * Return: 0 when armed; -EAGAIN when a record (or the close) is already
 * there (not armed); -EINVAL without a waiter; -ENOSPC when the futex
 * bridge already watches 127 rings; -EBADMSG when the consumer position is
 * past the producers' (a forged record).
 */
int pyshm_ring_arm(struct pyshm_ring *ring);

/**
 * pyshm_ring_arm_futex() - announce a sleep on a futex word the caller
 *	waits on itself
 * @word: set to the 32-bit word to wait on, in shared memory (not
 *	FUTEX_PRIVATE_FLAG)
 * @val: set to the value to wait while it holds
 *
 * For a thread that sleeps on several rings at once (futex_waitv(2), up to
 * 128 words), without the bridge thread of pyshm_ring_arm(). Producers
 * wake it with FUTEX_WAKE on @word, whatever waiter the handle has. Call
 * pyshm_ring_disarm() after the wait, woken or not.
 *
 * Return: 0 when armed; -EAGAIN when a record (or the close) is already
 * there (not armed); -EINVAL for a producer handle or a NULL argument;
 * -EBADMSG as pyshm_ring_arm().
 */
int pyshm_ring_arm_futex(struct pyshm_ring *ring, uint32_t **word, uint32_t *val);

/**
 * pyshm_ring_disarm() - undo pyshm_ring_arm() or pyshm_ring_arm_futex()
 */
void pyshm_ring_disarm(struct pyshm_ring *ring);

/**
 * pyshm_ring_kick() - wake the consumer if it sleeps, with or without a
 *	record, so it re-examines its situation
 *
 * Any handle may kick; an io_uring sleeper is reachable from its own
 * process or through the fd given with pyshm_ring_set_peer().
 */
void pyshm_ring_kick(struct pyshm_ring *ring);

/**
 * pyshm_ring_kick_producers() - make producers waiting for space return
 *	-EINTR, so they re-examine their situation (a thread being stopped)
 *
 * Works across processes: they sleep on a futex in the shared header.
 */
void pyshm_ring_kick_producers(struct pyshm_ring *ring);

/**
 * pyshm_ring_close() - mark one side closed and wake the other
 * @side: PYSHM_RING_CLOSE_PRODUCERS and/or PYSHM_RING_CLOSE_CONSUMER
 */
void pyshm_ring_close(struct pyshm_ring *ring, unsigned int side);

/**
 * pyshm_ring_closed() - the PYSHM_RING_CLOSE_* bits set so far
 */
unsigned int pyshm_ring_closed(const struct pyshm_ring *ring);

/**
 * pyshm_ring_discard_all() - consume and release every published record
 *
 * Return: the number discarded, or -EBADMSG.
 */
int pyshm_ring_discard_all(struct pyshm_ring *ring);

#ifdef __cplusplus
}
#endif
#endif /* PYSHM_RING_H */
