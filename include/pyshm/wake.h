/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * Wakeups: how a consumer with nothing to read sleeps, and how a producer
 * wakes it. A producer makes a system call only when the consumer sleeps.
 *
 * Two paths, one API. With io_uring, each sleeping consumer owns a small
 * io_uring (its waiter) and sleeps in io_uring_enter(); producers wake it
 * with IORING_OP_MSG_RING, sent without a ring of their own where the
 * kernel allows it (Linux 6.13), else submitted from a per-thread ring; held
 * wakeups (pyshm_wake_hold()) go out together at the flush, in one
 * submission from that ring once the thread has shown it keeps batching. Where io_uring is refused (ENOSYS, seccomp, io_uring_disabled)
 * or PYSHM_WAKE=futex, consumers sleep on a futex word in shared memory.
 * Both work across processes: the futex is not private, and a waiter's
 * io_uring fd reaches another process by inheritance (since Linux 6.7,
 * io_uring fds cannot travel over SCM_RIGHTS).
 *
 * A waiter's fd is pollable: it turns readable when a wakeup arrives, so an
 * event loop can watch it.
 */
#ifndef PYSHM_WAKE_H
#define PYSHM_WAKE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pyshm_wake_kind {
	PYSHM_WAKE_FUTEX = 1,
	PYSHM_WAKE_URING = 2,
};

struct pyshm_waiter;

/**
 * pyshm_wake_default() - the wakeup path this process uses by default
 *
 * PYSHM_WAKE=uring|futex when set; else io_uring when the kernel accepts a
 * ring and supports IORING_OP_MSG_RING; else futex.
 *
 * Return: PYSHM_WAKE_URING or PYSHM_WAKE_FUTEX; -ENOSYS when PYSHM_WAKE=uring
 * but io_uring is refused; -EINVAL when PYSHM_WAKE names no path.
 */
int pyshm_wake_default(void);

/**
 * pyshm_wake_name() - "uring", "futex", or NULL for an unknown kind
 */
const char *pyshm_wake_name(int kind);

/**
 * pyshm_waiter_create() - a consumer's means of sleeping
 * @kind: PYSHM_WAKE_URING, PYSHM_WAKE_FUTEX, or 0 for pyshm_wake_default()
 * @out: the new waiter
 *
 * Return: 0; -EINVAL for an unknown @kind; -ENOSYS when io_uring is asked
 * for but refused; -ENOMEM/-EMFILE.
 */
int pyshm_waiter_create(int kind, struct pyshm_waiter **out);

/* Room for the description pyshm_waiter_create_fd() writes. */
#define PYSHM_WAITER_BLOB_SIZE	192

/**
 * pyshm_waiter_create_fd() - an io_uring waiter for another process
 * @fd: the new ring's fd (close-on-exec); pass it to the child process
 * @blob: receives a description the child needs to map the ring
 * @len: size of @blob, at least PYSHM_WAITER_BLOB_SIZE
 *
 * This process keeps the fd only to wake the child (pyshm_ring_set_peer())
 * and never maps the ring; the child adopts it with pyshm_waiter_adopt().
 * io_uring fds cannot be sent over SCM_RIGHTS (Linux 6.7 and later), so
 * inheritance at spawn is the way to hand it over.
 *
 * Return: bytes of @blob used; -EINVAL; -ENOSYS when io_uring is refused.
 */
int pyshm_waiter_create_fd(int *fd, void *blob, size_t len);

/**
 * pyshm_waiter_adopt() - map an io_uring waiter made by another process
 * @fd: the inherited fd, owned by the waiter on success
 * @blob: the description from pyshm_waiter_create_fd()
 *
 * Return: 0; -EINVAL for a bad description; -errno from mmap.
 */
int pyshm_waiter_adopt(int fd, const void *blob, size_t len,
		       struct pyshm_waiter **out);

/**
 * pyshm_waiter_free() - release a waiter; NULL is ignored
 */
void pyshm_waiter_free(struct pyshm_waiter *w);

/**
 * pyshm_waiter_kind() - PYSHM_WAKE_URING or PYSHM_WAKE_FUTEX
 */
int pyshm_waiter_kind(const struct pyshm_waiter *w);

/**
 * pyshm_waiter_fd() - the fd event loops poll
 *
 * For an io_uring waiter, its ring (which producers also target); for a
 * futex waiter, an eventfd that a bridge thread signals when an armed ring
 * (pyshm_ring_arm()) is woken.
 *
 * Return: the fd, or -errno when an eventfd cannot be made.
 */
int pyshm_waiter_fd(const struct pyshm_waiter *w);

/**
 * pyshm_waiter_wait() - sleep until a wakeup arrives
 * @timeout_ns: < 0 waits without limit
 *
 * For waiters armed on one or several rings (pyshm_ring_arm()); a single
 * ring is usually waited on with pyshm_ring_wait().
 *
 * Return: the number of wakeups consumed (>= 1); -ETIMEDOUT; -EINTR.
 */
int pyshm_waiter_wait(struct pyshm_waiter *w, int64_t timeout_ns);

/**
 * pyshm_waiter_drain() - consume wakeups already delivered, without sleeping
 *
 * Return: how many were consumed.
 */
int pyshm_waiter_drain(struct pyshm_waiter *w);

/**
 * pyshm_wake_hold() - start batching this thread's wakeups
 *
 * Until pyshm_wake_flush(), the wakeups this thread's sends cause (io_uring
 * and futex) wait in the thread; before the thread sleeps they go out.
 * Holds nest.
 */
void pyshm_wake_hold(void);

/**
 * pyshm_wake_flush() - end a hold; send the wakeups it held
 *
 * Several go out in one io_uring submission from the thread's ring (futex
 * wakes too, Linux 6.7+) once the thread has sent 64 one by one in flushes
 * of several (a ring costs tens of system calls to make); until then, and
 * a single one, each by itself.
 *
 * Return: the number sent, or the first -errno.
 */
int pyshm_wake_flush(void);

/**
 * pyshm_spin_ns() / pyshm_set_spin_ns() - the spin budget
 *
 * How long a consumer polls before it sleeps. The default is PYSHM_SPIN_NS
 * from the environment, else 50000 (50 us); 0 sleeps at once.
 */
int64_t pyshm_spin_ns(void);
void pyshm_set_spin_ns(int64_t ns);

#ifdef __cplusplus
}
#endif
#endif /* PYSHM_WAKE_H */
