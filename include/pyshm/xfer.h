/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * A transfer ("xfer") carries regions from a sender to a receiver alongside
 * messages: out-of-line ring records and SharedArrayBuffers travel this way.
 * The sender turns a region into a fixed-size reference that goes inside the
 * message; the receiver turns the reference back into a region. While the
 * message is in flight the reference itself holds the region alive.
 *
 * Three kinds:
 *
 * - local: sender and receiver are in the same process (threads or
 *   subinterpreters). The reference names the region id and holds one
 *   process-local count; nothing enters the kernel.
 * - socket: the fd travels over a unix socket with SCM_RIGHTS, tagged with a
 *   64-bit sequence number the reference carries. The fd is sent before the
 *   message is published, so the receiver always finds it queued.
 * - kmod: the reference carries a one-shot token of the kernel module's
 *   domain; any process of the domain imports it.
 *
 * References are validated on receipt; a forged or stale one gives -EBADMSG
 * and never another region.
 */
#ifndef PYSHM_XFER_H
#define PYSHM_XFER_H

#include <stdint.h>

#include <pyshm/region.h>

#ifdef __cplusplus
extern "C" {
#endif

enum pyshm_xfer_kind {
	PYSHM_XFER_LOCAL = 1,
	PYSHM_XFER_SOCKET = 2,
	PYSHM_XFER_KMOD = 3,
};

/* A region reference as it travels inside a message (little-endian). */
struct pyshm_region_ref {
	uint8_t kind;		/* PYSHM_XFER_* */
	uint8_t flags;		/* PYSHM_REGION_SEALED | PYSHM_REGION_GROWABLE */
	uint16_t resv;		/* zero */
	uint32_t pid;		/* local: the sending process */
	uint64_t id;		/* pyshm_region_id() */
	uint64_t cookie;	/* socket: sequence number; kmod: token */
	uint64_t max_size;	/* mapping size for the receiver */
};

struct pyshm_xfer;

/**
 * pyshm_xfer_create() - a transfer of the given kind
 * @kind: PYSHM_XFER_LOCAL, PYSHM_XFER_SOCKET or PYSHM_XFER_KMOD
 * @sock: for a socket transfer, a connected SOCK_SEQPACKET unix socket,
 *	owned by the transfer afterwards (also on failure); else -1
 * @out: the new transfer
 *
 * Return: 0; -EINVAL for a bad kind or socket; -EOPNOTSUPP for kmod when
 * the kmod backend is not in use.
 */
int pyshm_xfer_create(int kind, int sock, struct pyshm_xfer **out);

/**
 * pyshm_xfer_free() - release a transfer and any fds received but unclaimed
 */
void pyshm_xfer_free(struct pyshm_xfer *x);

/**
 * pyshm_xfer_kind() - PYSHM_XFER_*
 */
int pyshm_xfer_kind(const struct pyshm_xfer *x);

/**
 * pyshm_xfer_send() - make a reference to @r that holds it while in flight
 *
 * Return: 0 and *@ref; -EAGAIN when a socket transfer's socket is full (see
 * pyshm_xfer_wait_room()); -EPIPE when its other end is closed; -errno from
 * sendmsg() or the kernel module.
 */
int pyshm_xfer_send(struct pyshm_xfer *x, struct pyshm_region *r,
		    struct pyshm_region_ref *ref);

/**
 * pyshm_xfer_recv() - turn a reference into a region, once
 *
 * Return: 0 and a new reference in *@out; -EBADMSG for a forged, stale or
 * already-claimed reference, or one of another kind.
 */
int pyshm_xfer_recv(struct pyshm_xfer *x, const struct pyshm_region_ref *ref,
		    struct pyshm_region **out);

/**
 * pyshm_xfer_drop() - release what a reference holds, for messages that are
 *	discarded unread
 */
void pyshm_xfer_drop(struct pyshm_xfer *x, const struct pyshm_region_ref *ref);

/**
 * pyshm_xfer_wait_room() - wait until a send would not find the socket full
 * @timeout_ns: < 0 without limit
 *
 * Socket sends never block: a full socket (a receiver that has not taken the
 * fds queued before) makes them return -EAGAIN; this waits for room.
 *
 * Return: 0 (at once for kinds other than socket); -ETIMEDOUT; -EINTR for a
 * signal; -EPIPE when the other end is closed.
 */
int pyshm_xfer_wait_room(struct pyshm_xfer *x, int64_t timeout_ns);

/**
 * pyshm_xfer_send_fd() - send any fd along a socket transfer
 * @cookie: receives the number the receiver claims it with
 *
 * For what is not a region (a socket end, say); the fd is duplicated into
 * the receiver, this process keeps its own.
 *
 * Return: 0; -EOPNOTSUPP for other kinds; -EAGAIN, -EPIPE or another -errno
 * from sendmsg(), as for pyshm_xfer_send().
 */
int pyshm_xfer_send_fd(struct pyshm_xfer *x, int fd, uint64_t *cookie);

/**
 * pyshm_xfer_recv_fd() - claim an fd sent with pyshm_xfer_send_fd()
 *
 * Return: the fd (close-on-exec, owned by the caller); -EBADMSG when
 * nothing was sent with @cookie; -EOPNOTSUPP for other kinds.
 */
int pyshm_xfer_recv_fd(struct pyshm_xfer *x, uint64_t cookie);


#ifdef __cplusplus
}
#endif
#endif /* PYSHM_XFER_H */
