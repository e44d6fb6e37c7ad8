// SPDX-License-Identifier: MIT
/*
 * How a MessagePort travels inside a message (the clone's port hooks):
 * within a process, by its C handle parked under a cookie until the
 * receiver takes it; to another process, as its channel region (and
 * socket end) sent by the message's transfer and rebuilt there.
 */
#include "port.h"

static pthread_once_t xlocal_once = PTHREAD_ONCE_INIT;
static struct pyshm_xfer *xlocal;

static void xlocal_init(void)
{
	pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &xlocal);
}

struct pyshm_xfer *port_xfer_local(void)
{
	pthread_once(&xlocal_once, xlocal_init);
	return xlocal;
}

/* Ports in flight inside this process: cookie -> handle. */
struct port_inflight {
	uint64_t cookie;
	struct port *p;
	struct port_inflight *next;
};

static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static struct port_inflight *inflight;
static uint64_t inflight_next;

static uint64_t inflight_add(struct port *p)
{
	struct port_inflight *e = PyMem_RawMalloc(sizeof(*e));

	if (!e)
		return 0;
	pthread_mutex_lock(&inflight_lock);
	/* Odd multiplier: unique while in flight, and not a small integer a
	 * malformed message would hit by chance. */
	e->cookie = ++inflight_next * 0x9e3779b97f4a7c15ull;
	e->p = p;
	e->next = inflight;
	inflight = e;
	pthread_mutex_unlock(&inflight_lock);
	return e->cookie;
}

static struct port *inflight_take(uint64_t cookie)
{
	struct port_inflight **pp, *e;
	struct port *p = NULL;

	pthread_mutex_lock(&inflight_lock);
	for (pp = &inflight; (e = *pp); pp = &e->next) {
		if (e->cookie == cookie) {
			*pp = e->next;
			p = e->p;
			PyMem_RawFree(e);
			break;
		}
	}
	pthread_mutex_unlock(&inflight_lock);
	return p;
}

#define XFER_TAG_LOCAL	'L'
#define XFER_TAG_REMOTE	'R'

struct remote_port {
	uint8_t tag;
	uint8_t side;
	uint8_t has_sock;
	uint8_t resv[5];
	uint64_t sock_cookie;
	struct pyshm_region_ref chan;
};

static int data_clone_error(pymod_state *st, const char *msg)
{
	PyErr_SetString(st->DataCloneError, msg);
	return -1;
}

/* The socket of the channel a message travels on: fds go with it. */
static struct pyshm_xfer *carrier_sock(struct clone_env *env)
{
	struct port *carrier = env->port_ctx;

	return carrier ? carrier->xsock : NULL;
}

/* pyshm_xfer_send_fd(), waiting for room as clone_xfer_send() does. */
static int send_fd(pymod_state *st, struct clone_env *env, int fd, uint64_t *cookie)
{
	struct pyshm_xfer *x = carrier_sock(env);
	int ret;

	for (;;) {
		ret = x ? pyshm_xfer_send_fd(x, fd, cookie) : -EOPNOTSUPP;
		if (ret != -EAGAIN || !env->wait_room)
			break;
		if (env->wait_room(env) < 0)
			return -1;
	}
	if (ret == 0)
		return 0;
	if (ret == -EPIPE)
		env->peer_gone = true;
	pymod_raise_from_errno(st, ret, "transfer MessagePort");
	return -1;
}

static int exported_add(struct clone_env *env, struct port *p)
{
	struct port **a;
	size_t cap;

	if (env->nexported == env->capexported) {
		cap = env->capexported ? 2 * env->capexported : 4;
		a = PyMem_RawRealloc(env->exported, cap * sizeof(*a));
		if (!a) {
			PyErr_NoMemory();
			return -1;
		}
		env->exported = a;
		env->capexported = cap;
	}
	env->exported[env->nexported++] = p;
	return 0;
}

static void exported_end(struct clone_env *env, bool close)
{
	size_t i;

	for (i = 0; i < env->nexported; i++) {
		if (close)
			port_close(env->exported[i]);
		port_put(env->exported[i]);
	}
	PyMem_RawFree(env->exported);
	env->exported = NULL;
	env->nexported = env->capexported = 0;
}

void port_exported_release(struct clone_env *env)
{
	exported_end(env, false);
}

void port_exported_close(struct clone_env *env)
{
	exported_end(env, true);
}

static int hook_port_export(struct clone_env *env, PyObject *obj, struct clone_msg *out)
{
	pymod_state *st = get_state_by_type(Py_TYPE(obj));
	struct port *p = port_from_object(st, obj);
	struct remote_port rp = { .tag = XFER_TAG_REMOTE };
	uint8_t tag = XFER_TAG_LOCAL;
	uint64_t cookie;
	int ret;

	if (!p)
		return data_clone_error(st, "MessagePort is detached (already transferred or closed)");
	if (p == env->port_ctx)
		return data_clone_error(st, "a MessagePort cannot be transferred through itself");
	if (p->link)
		return data_clone_error(st, "a worker's own port cannot be transferred");

	if (env->xfer == port_xfer_local()) {
		cookie = inflight_add(p);
		if (!cookie) {
			PyErr_NoMemory();
			return -1;
		}
		if (clone_msg_append(out, &tag, 1) < 0 || clone_msg_append(out, &cookie, 8) < 0) {
			inflight_take(cookie);
			return -1;
		}
		port_detach_object(obj);
		return 0;
	}

	/* To another process: the peer must stop relying on our io_uring. */
	atomic_store(&p->hdr->side[p->side].pid, 0);
	pyshm_ring_kick(p->tx);
	rp.side = (uint8_t)p->side;
	/* From here the handle is env->exported's: released once the message
	 * is sent, closed (its peer sees the end) if it never goes. */
	if (exported_add(env, p) < 0) {
		atomic_store(&p->hdr->side[p->side].pid, port_pid());
		return -1;
	}
	port_detach_object(obj);
	atomic_store(&p->detached, true);
	ret = clone_xfer_send(st, env, p->chan, &rp.chan);
	if (!ret && p->sock >= 0) {
		ret = send_fd(st, env, p->sock, &rp.sock_cookie);
		rp.has_sock = !ret;
	}
	if (ret || clone_msg_append(out, &rp, sizeof(rp)) < 0)
		return -1;
	return 0;
}

/* Read the port description at *pos; returns the tag or -1. */
static int port_desc(const uint8_t *buf, size_t len, size_t *pos, uint64_t *cookie,
		     struct remote_port *rp)
{
	if (*pos >= len)
		return -1;
	if (buf[*pos] == XFER_TAG_LOCAL) {
		if (len - *pos < 9)
			return -1;
		memcpy(cookie, buf + *pos + 1, 8);
		*pos += 9;
		return XFER_TAG_LOCAL;
	}
	if (buf[*pos] == XFER_TAG_REMOTE) {
		if (len - *pos < sizeof(*rp))
			return -1;
		memcpy(rp, buf + *pos, sizeof(*rp));
		*pos += sizeof(*rp);
		return rp->side > 1 ? -1 : XFER_TAG_REMOTE;
	}
	return -1;
}

/* Rebuild a port that came from another process. */
static int remote_attach(struct clone_env *env, struct remote_port *rp, struct port **out)
{
	struct pyshm_region *chan;
	int sock = -1, ret;

	ret = pyshm_xfer_recv(env->xfer, &rp->chan, &chan);
	if (ret)
		return ret;
	if (rp->has_sock) {
		sock = carrier_sock(env) ? pyshm_xfer_recv_fd(carrier_sock(env), rp->sock_cookie) :
		       -EBADMSG;
		if (sock < 0) {
			pyshm_region_put(chan);
			return sock;
		}
	}
	return port_attach(chan, rp->side, sock, out);
}

static PyObject *hook_port_import(struct clone_env *env, const uint8_t *buf, size_t len,
				  size_t *pos)
{
	pymod_state *st = get_state_current();
	struct remote_port rp;
	struct port *p = NULL;
	uint64_t cookie;
	int ret;

	if (!st)
		return NULL;

	switch (port_desc(buf, len, pos, &cookie, &rp)) {
	case XFER_TAG_LOCAL:
		p = inflight_take(cookie);
		if (!p) {
			PyErr_SetString(st->DataCloneError, "stale MessagePort in message");
			return NULL;
		}
		break;
	case XFER_TAG_REMOTE:
		if (env->xfer == port_xfer_local()) {
			PyErr_SetString(st->DataCloneError, "malformed MessagePort in message");
			return NULL;
		}
		ret = remote_attach(env, &rp, &p);
		if (ret) {
			PyErr_Format(st->DataCloneError, "cannot receive MessagePort: %s",
				     strerror(-ret));
			return NULL;
		}
		/* Wake the peer so it sees where we live now. */
		pyshm_ring_kick(p->tx);
		break;
	default:
		PyErr_SetString(st->DataCloneError, "malformed MessagePort in message");
		return NULL;
	}
	return port_wrap(st, p);
}

static void hook_port_drop(struct clone_env *env, const uint8_t *buf, size_t len, size_t *pos)
{
	struct remote_port rp;
	struct port *p = NULL;
	uint64_t cookie;

	switch (port_desc(buf, len, pos, &cookie, &rp)) {
	case XFER_TAG_LOCAL:
		p = inflight_take(cookie);
		break;
	case XFER_TAG_REMOTE:
		if (env->xfer != port_xfer_local() && remote_attach(env, &rp, &p))
			p = NULL;
		break;
	}
	if (p) {
		/* A port nobody will receive: its peer sees the channel end. */
		port_close(p);
		port_put(p);
	}
}

void port_env_init(struct clone_env *env, struct port *p, struct pyshm_xfer *x)
{
	*env = (struct clone_env){
		.xfer = x,
		.port_export = hook_port_export,
		.port_import = hook_port_import,
		.port_drop = hook_port_drop,
		.port_ctx = p,
	};
}
