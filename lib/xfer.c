// SPDX-License-Identifier: MIT
/*
 * Region transfers: how a region travels with a message. Local references
 * live in a process-wide in-flight table (so a forged or replayed reference
 * finds nothing), socket references pair an SCM_RIGHTS fd with a sequence
 * number, kmod references are one-shot tokens of the module's domain.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pyshm/xfer.h>

#include "internal.h"

struct stash {
	uint64_t seq;
	int fd;
};

struct pyshm_xfer {
	int kind;
	int sock;			/* socket kind: owned */
	pthread_mutex_t lock;		/* guards stash and reads of sock */
	struct stash *stash;		/* fds received ahead of their message */
	size_t nstash, capstash;
	atomic_uint seq;
};

/* Local references in flight: cookie -> region, each holding one count. */
struct inflight {
	uint64_t cookie;
	struct pyshm_region *r;
	struct inflight *next;
};

#define INFLIGHT_BUCKETS 64
static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inflight *inflight[INFLIGHT_BUCKETS];
static uint64_t inflight_key, inflight_next;

static unsigned int inflight_bucket(uint64_t cookie)
{
	return (unsigned int)((cookie * 0x9e3779b97f4a7c15ull) >> 58);
}

static int local_send(struct pyshm_region *r, struct pyshm_region_ref *ref)
{
	struct inflight *e = malloc(sizeof(*e));
	unsigned int b;

	if (!e)
		return -ENOMEM;
	pthread_mutex_lock(&inflight_lock);
	if (!inflight_key && getrandom(&inflight_key, sizeof(inflight_key), 0) < 0)
		inflight_key = (uint64_t)__pyshm_now_ns() | 1;
	/* Unique while in flight; the key makes it hard to guess. */
	e->cookie = ++inflight_next ^ inflight_key;
	e->r = pyshm_region_get(r);
	b = inflight_bucket(e->cookie);
	e->next = inflight[b];
	inflight[b] = e;
	pthread_mutex_unlock(&inflight_lock);

	ref->cookie = e->cookie;
	ref->pid = (uint32_t)__pyshm_getpid();
	return 0;
}

/* Take the region a local reference holds, or NULL. */
static struct pyshm_region *local_take(const struct pyshm_region_ref *ref)
{
	struct inflight **p, *e;
	struct pyshm_region *r = NULL;

	if (ref->pid != (uint32_t)__pyshm_getpid())
		return NULL;
	pthread_mutex_lock(&inflight_lock);
	for (p = &inflight[inflight_bucket(ref->cookie)]; (e = *p); p = &e->next) {
		if (e->cookie == ref->cookie && pyshm_region_id(e->r) == ref->id) {
			*p = e->next;
			r = e->r;
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&inflight_lock);
	return r;
}

static int sock_send(struct pyshm_xfer *x, int fd, uint64_t *cookie)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	uint64_t seq = (uint64_t)(uint32_t)getpid() << 32 |
		       atomic_fetch_add_explicit(&x->seq, 1, memory_order_relaxed);
	struct iovec iov = { .iov_base = &seq, .iov_len = sizeof(seq) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;

	memset(&u, 0, sizeof(u));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(fd));
	/* Never blocks: a caller that may wait does so without its locks
	 * (pyshm_xfer_wait_room()). A peer gone shows as -EPIPE. */
	if (sendmsg(x->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return errno == EWOULDBLOCK ? -EAGAIN :
		       errno == ECONNRESET || errno == ECONNREFUSED ? -EPIPE : -errno;
	*cookie = seq;
	return 0;
}

/* Read one queued fd message. Caller holds x->lock. */
static int sock_read_one(struct pyshm_xfer *x, uint64_t *seq, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = seq, .iov_len = sizeof(*seq) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	n = recvmsg(x->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	*fd = -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
		    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cmsg), sizeof(*fd));
	if (n != sizeof(*seq) || *fd < 0 || msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (*fd >= 0)
			close(*fd);
		return -EBADMSG;
	}
	return 0;
}

/*
 * The fd sent with @seq. The sender queued it before publishing the message,
 * so it is in the stash or in the socket now; otherwise the reference lies.
 */
static int sock_take(struct pyshm_xfer *x, uint64_t seq)
{
	uint64_t got;
	int fd = -1, ret;
	size_t i;

	pthread_mutex_lock(&x->lock);
	for (i = 0; i < x->nstash; i++) {
		if (x->stash[i].seq == seq) {
			fd = x->stash[i].fd;
			x->stash[i] = x->stash[--x->nstash];
			goto out_unlock;
		}
	}
	for (;;) {
		ret = sock_read_one(x, &got, &fd);
		if (ret < 0) {
			/* Not queued (a lie), or never coming (the sender is
			 * gone: EPIPE, ECONNRESET): the reference is bad. */
			fd = ret == -ENOMEM ? ret : -EBADMSG;
			break;
		}
		if (got == seq)
			break;
		if (x->nstash == x->capstash) {
			size_t cap = x->capstash ? 2 * x->capstash : 8;
			struct stash *s = realloc(x->stash, cap * sizeof(*s));

			if (!s) {
				close(fd);
				fd = -ENOMEM;
				break;
			}
			x->stash = s;
			x->capstash = cap;
		}
		x->stash[x->nstash++] = (struct stash){ .seq = got, .fd = fd };
	}
out_unlock:
	pthread_mutex_unlock(&x->lock);
	return fd;
}

PYSHM_EXPORT int pyshm_xfer_create(int kind, int sock, struct pyshm_xfer **out)
{
	struct pyshm_xfer *x;
	int type;
	socklen_t len = sizeof(type);

	if (!out)
		goto err_inval;
	switch (kind) {
	case PYSHM_XFER_LOCAL:
		break;
	case PYSHM_XFER_SOCKET:
		if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
		    type != SOCK_SEQPACKET)
			goto err_inval;
		break;
	case PYSHM_XFER_KMOD:
		if (pyshm_backend() != PYSHM_BACKEND_KMOD) {
			if (sock >= 0)
				close(sock);
			return -EOPNOTSUPP;
		}
		break;
	default:
		goto err_inval;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		if (sock >= 0)
			close(sock);
		return -ENOMEM;
	}
	x->kind = kind;
	x->sock = kind == PYSHM_XFER_SOCKET ? sock : -1;
	if (kind != PYSHM_XFER_SOCKET && sock >= 0)
		close(sock);
	pthread_mutex_init(&x->lock, NULL);
	*out = x;
	return 0;

err_inval:
	if (sock >= 0)
		close(sock);
	return -EINVAL;
}

PYSHM_EXPORT void pyshm_xfer_free(struct pyshm_xfer *x)
{
	size_t i;

	if (!x)
		return;
	for (i = 0; i < x->nstash; i++)
		close(x->stash[i].fd);
	free(x->stash);
	if (x->sock >= 0)
		close(x->sock);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

PYSHM_EXPORT int pyshm_xfer_kind(const struct pyshm_xfer *x)
{
	return x->kind;
}

PYSHM_EXPORT int pyshm_xfer_send(struct pyshm_xfer *x, struct pyshm_region *r,
				 struct pyshm_region_ref *ref)
{
	int ret;

	if (!x || !r || !ref)
		return -EINVAL;
	memset(ref, 0, sizeof(*ref));
	ref->kind = (uint8_t)x->kind;
	ref->flags = (uint8_t)pyshm_region_flags(r);
	ref->id = pyshm_region_id(r);
	ref->max_size = pyshm_region_max_size(r);

	switch (x->kind) {
	case PYSHM_XFER_LOCAL:
		return local_send(r, ref);
	case PYSHM_XFER_SOCKET:
		return sock_send(x, pyshm_region_fd(r), &ref->cookie);
	case PYSHM_XFER_KMOD:
		ret = pyshm_region_export(r, PYSHM_EXPORT_ONESHOT, &ref->cookie);
		return ret < 0 ? ret : 0;
	}
	return -EINVAL;
}

PYSHM_EXPORT int pyshm_xfer_recv(struct pyshm_xfer *x,
				 const struct pyshm_region_ref *ref,
				 struct pyshm_region **out)
{
	struct pyshm_region *r = NULL;
	int ret, fd;

	if (!x || !ref || !out)
		return -EINVAL;
	if (ref->kind != x->kind || ref->resv)
		return -EBADMSG;

	switch (x->kind) {
	case PYSHM_XFER_LOCAL:
		r = local_take(ref);
		if (!r)
			return -EBADMSG;
		break;
	case PYSHM_XFER_SOCKET:
		fd = sock_take(x, ref->cookie);
		if (fd < 0)
			return fd;
		ret = pyshm_region_from_fd(fd, ref->max_size, &r);
		if (ret < 0)
			return ret == -EINVAL ? -EBADMSG : ret;
		break;
	case PYSHM_XFER_KMOD:
		ret = pyshm_region_import(ref->cookie, &r);
		if (ret < 0)
			return ret == -ENOENT ? -EBADMSG : ret;
		break;
	default:
		return -EBADMSG;
	}
	/* The reference must describe what it carried. */
	if (pyshm_region_id(r) != ref->id) {
		pyshm_region_put(r);
		return -EBADMSG;
	}
	*out = r;
	return 0;
}

PYSHM_EXPORT int pyshm_xfer_wait_room(struct pyshm_xfer *x, int64_t timeout_ns)
{
	struct pollfd pfd;
	int ms, n;

	if (!x)
		return -EINVAL;
	if (x->kind != PYSHM_XFER_SOCKET)
		return 0;
	/* The peer makes room as it reads, which may wait for a wakeup this
	 * thread holds back. */
	__pyshm_wake_submit_held();
	pfd = (struct pollfd){ .fd = x->sock, .events = POLLOUT };
	/* Rounded up, so that a short timeout still waits. */
	ms = timeout_ns < 0 ? -1 : timeout_ns >= INT_MAX * 1000000ll ? INT_MAX :
	     (int)((timeout_ns + 999999) / 1000000);
	n = poll(&pfd, 1, ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (pfd.revents & POLLOUT)
		return 0;
	return -EPIPE;
}

PYSHM_EXPORT int pyshm_xfer_send_fd(struct pyshm_xfer *x, int fd, uint64_t *cookie)
{
	if (!x || fd < 0 || !cookie)
		return -EINVAL;
	if (x->kind != PYSHM_XFER_SOCKET)
		return -EOPNOTSUPP;
	return sock_send(x, fd, cookie);
}

PYSHM_EXPORT int pyshm_xfer_recv_fd(struct pyshm_xfer *x, uint64_t cookie)
{
	if (!x)
		return -EINVAL;
	if (x->kind != PYSHM_XFER_SOCKET)
		return -EOPNOTSUPP;
	return sock_take(x, cookie);
}

PYSHM_EXPORT void pyshm_xfer_drop(struct pyshm_xfer *x,
				  const struct pyshm_region_ref *ref)
{
	struct pyshm_region *r;

	if (pyshm_xfer_recv(x, ref, &r) == 0)
		pyshm_region_put(r);
}
