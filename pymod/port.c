// SPDX-License-Identifier: MIT
/*
 * MessageChannel and MessagePort: channels in shared memory (two rings in
 * one region), their ends as process-local C handles, sending and
 * receiving, and the Python type over them. How a port travels inside a
 * message is port_transfer.c's.
 */
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port.h"
#include "worker.h"

typedef struct {
	PyObject_HEAD
	struct port *port;		/* NULL once transferred or closed */
	PyObject *weakreflist;
} PortObject;

static inline uint64_t ring_offset(int side)
{
	return CHAN_HDR_SIZE + (uint64_t)side * pyshm_ring_bytes(CHAN_RING_DATA);
}

/* getpid() without a system call: refreshed in the child after fork(). */
atomic_uint port_cached_pid;

static void pid_forget(void)
{
	atomic_store(&port_cached_pid, 0);
}

static void pid_atfork(void)
{
	pthread_atfork(NULL, NULL, pid_forget);
}

unsigned int port_pid_slow(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned int pid;

	pthread_once(&once, pid_atfork);
	pid = (unsigned int)getpid();
	atomic_store_explicit(&port_cached_pid, pid, memory_order_relaxed);
	return pid;
}

/* ---- C handles ----------------------------------------------------------- */

static void ring_discard(struct port *p, struct pyshm_ring *ring, bool sent_here);

struct port *port_get(struct port *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

bool port_tryget(struct port *p)
{
	long v = atomic_load_explicit(&p->refs, memory_order_relaxed);

	while (v > 0)
		if (atomic_compare_exchange_weak_explicit(&p->refs, &v, v + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

void port_put(struct port *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	port_unwatch(p);
	/* A closed end's unread messages (a port that moved on leaves its
	 * ring to its new holder). */
	if (atomic_load(&p->closed) && p->owner == port_pid())
		ring_discard(p, p->rx, false);
	pyshm_ring_free(p->tx);
	pyshm_ring_free(p->rx);
	pyshm_waiter_free(p->uwaiter);
	pyshm_waiter_free(p->fwaiter);
	if (p->xremote != p->xsock)
		pyshm_xfer_free(p->xremote);
	pyshm_xfer_free(p->xsock);
	pyshm_region_put(p->chan);
	worker_put(p->worker);
	pthread_mutex_destroy(&p->rx_lock);
	PyMem_RawFree(p);
}

int port_attach(struct pyshm_region *chan, int side, int sock, struct port **out)
{
	struct chan_hdr *hdr = pyshm_region_data(chan);
	struct port *p = NULL;
	int ret;

	if (pyshm_region_size(chan) < ring_offset(2) || hdr->magic != CHAN_MAGIC ||
	    hdr->version != CHAN_VERSION || hdr->ring_data != CHAN_RING_DATA ||
	    (side != 0 && side != 1)) {
		ret = -EBADMSG;
		goto err_put;
	}
	p = PyMem_RawCalloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto err_put;
	}
	/* From here on the handle owns @chan: port_put() releases it. */
	atomic_init(&p->refs, 1);
	p->chan = chan;
	p->hdr = hdr;
	p->side = side;
	p->sock = -1;
	pthread_mutex_init(&p->rx_lock, NULL);
	ret = pyshm_ring_attach(chan, ring_offset(side), PYSHM_RING_PRODUCER, &p->tx);
	if (!ret)
		ret = pyshm_ring_attach(chan, ring_offset(!side), PYSHM_RING_CONSUMER, &p->rx);
	if (ret)
		goto err_put;
	if (pyshm_wake_default() == PYSHM_WAKE_URING &&
	    pyshm_waiter_create(PYSHM_WAKE_URING, &p->uwaiter) < 0)
		p->uwaiter = NULL;	/* the futex path still works */
	/* Fds reach other processes over the socket; regions too, or as
	 * kmod tokens. */
	if (sock >= 0) {
		ret = pyshm_xfer_create(PYSHM_XFER_SOCKET, sock, &p->xsock);
		if (!ret)
			p->sock = sock;
		sock = -1;
	}
	if (!ret && pyshm_backend() == PYSHM_BACKEND_KMOD)
		ret = pyshm_xfer_create(PYSHM_XFER_KMOD, -1, &p->xremote);
	else
		p->xremote = p->xsock;
	if (ret)
		goto err_put;
	pyshm_ring_set_xfer(p->rx, port_xfer_local());
	pyshm_ring_set_xfer(p->rx, p->xremote);
	pyshm_ring_set_xfer(p->tx, port_xfer_local());
	pyshm_ring_set_ool_threshold(p->tx, CHAN_OOL_THRESHOLD);
	port_set_inflight(p, port_inflight_default());
	p->owner = port_pid();
	atomic_store(&hdr->side[side].pid, p->owner);
	/* Without the watch a dead peer goes unnoticed: no half port. */
	if (p->sock >= 0) {
		ret = port_watch(p);
		if (ret)
			goto err_put;
	}
	*out = p;
	return 0;

err_put:
	if (sock >= 0)
		close(sock);
	if (p)
		port_put(p);
	else
		pyshm_region_put(chan);
	return ret;
}

int port_channel_new(unsigned int side_flags, struct port **a, struct port **b)
{
	struct pyshm_region *r;
	struct pyshm_ring *tmp;
	struct chan_hdr *hdr;
	int sv[2] = { -1, -1 }, ret, side;

	ret = pyshm_region_create(ring_offset(2), 0, 0, &r);
	if (ret)
		return ret;
	hdr = pyshm_region_data(r);
	hdr->magic = CHAN_MAGIC;
	hdr->version = CHAN_VERSION;
	hdr->ring_data = CHAN_RING_DATA;
	for (side = 0; side < 2; side++) {
		atomic_store(&hdr->side[side].flags, side_flags);
		ret = pyshm_ring_init(r, ring_offset(side), CHAN_RING_DATA,
				      PYSHM_RING_PRODUCER, &tmp);
		if (ret)
			goto err_put;
		pyshm_ring_free(tmp);
	}
	/* The socket carries fds (and memfd regions) to another process, and
	 * its end closing says that the end holding it is gone. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		goto err_put;
	}
	ret = port_attach(pyshm_region_get(r), 0, sv[0], a);
	sv[0] = -1;
	if (ret)
		goto err_close;
	ret = port_attach(r, 1, sv[1], b);
	if (ret) {
		port_put(*a);
		return ret;
	}
	return 0;

err_put:
	pyshm_region_put(r);
err_close:
	if (sv[1] >= 0)
		close(sv[1]);
	return ret;
}

/* Which transfer reaches the other end: in this process, or elsewhere. */
struct pyshm_xfer *port_tx_xfer(struct port *p)
{
	if (atomic_load_explicit(&p->hdr->side[!p->side].pid, memory_order_acquire) ==
	    port_pid() || !p->xremote)
		return port_xfer_local();
	return p->xremote;
}

struct pyshm_xfer *port_rx_xfer(struct port *p, int kind)
{
	if (kind == PYSHM_XFER_LOCAL)
		return port_xfer_local();
	if (p->xremote && pyshm_xfer_kind(p->xremote) == kind)
		return p->xremote;
	return NULL;
}

/*
 * How to sleep on rx: in io_uring only when the sender can reach it (it
 * lives in this process, or inherited our ring at spawn). @arm: for an
 * event loop, which always needs a waiter.
 */
static struct pyshm_waiter *rx_waiter(struct port *p, bool arm)
{
	bool reach = p->uwaiter &&
		     (p->peer_inherits ||
		      atomic_load(&p->hdr->side[!p->side].pid) == port_pid());

	if (reach)
		return p->uwaiter;
	if (arm && !p->fwaiter && pyshm_waiter_create(PYSHM_WAKE_FUTEX, &p->fwaiter) < 0)
		p->fwaiter = NULL;
	return arm ? p->fwaiter : NULL;
}

/* ---- closing ------------------------------------------------------------ */

/*
 * Release what unread messages in @ring (a consumer handle) hold: regions,
 * ports. Socket references can be taken back only by the process they were
 * sent to: @sent_here skips them.
 */
static void ring_discard(struct port *p, struct pyshm_ring *ring, bool sent_here)
{
	struct pyshm_ring_rec rec;
	struct clone_env env = { 0 };
	struct msg_hdr h;
	int ret;

	for (;;) {
		ret = pyshm_ring_peek(ring, &rec);
		if (ret == -EAGAIN || ret == -EPIPE || (ret < 0 && !rec.total))
			return;
		if (ret == 0 && rec.len >= sizeof(h)) {
			memcpy(&h, rec.data, sizeof(h));
			port_env_init(&env, p, port_rx_xfer(p, h.xfer));
			if (env.xfer && !(sent_here && h.xfer == PYSHM_XFER_SOCKET))
				clone_discard((const uint8_t *)rec.data + sizeof(h),
					      rec.len - sizeof(h), &env);
		}
		pyshm_ring_consume(ring, &rec);
	}
}

void port_close(struct port *p)
{
	if (atomic_exchange(&p->closed, true))
		return;
	atomic_store(&p->detached, true);
	port_unwatch(p);
	/* A fork child's copy of the handle: the end is its parent's. */
	if (p->owner != port_pid())
		return;
	atomic_fetch_or(&p->hdr->side[p->side].flags, SIDE_CLOSED);
	pyshm_ring_close(p->tx, PYSHM_RING_CLOSE_PRODUCERS);
	pyshm_ring_close(p->rx, PYSHM_RING_CLOSE_CONSUMER);
	/* A receiver asleep in another thread wakes up to the close. */
	pyshm_ring_kick(p->rx);
	/*
	 * Never wait for the receiver's lock here (the caller may hold the
	 * GIL the receiver needs to get out): when it is busy, the last
	 * port_put() releases what is unread.
	 */
	if (pthread_mutex_trylock(&p->rx_lock) == 0) {
		ring_discard(p, p->rx, false);
		pthread_mutex_unlock(&p->rx_lock);
	}
}

/* Serialises drains of rings whose consumer is gone (the watcher and a
 * worker's monitor may both find it gone). */
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;

void port_peer_gone(struct port *p)
{
	struct pyshm_ring *orphan;

	atomic_fetch_or(&p->hdr->side[!p->side].flags, SIDE_CLOSED);
	/* Our receiver reads what came, then the end; our senders drop. */
	pyshm_ring_close(p->rx, PYSHM_RING_CLOSE_PRODUCERS);
	pyshm_ring_close(p->tx, PYSHM_RING_CLOSE_CONSUMER);
	/*
	 * What we sent and nobody will read may hold regions (kmod tokens
	 * pin them for the whole domain) and ports (whose peers would wait
	 * forever): read it as the consumer that is gone would have.
	 */
	pthread_mutex_lock(&drain_lock);
	if (pyshm_ring_attach(p->chan, ring_offset(p->side), PYSHM_RING_CONSUMER, &orphan) == 0) {
		pyshm_ring_set_xfer(orphan, port_xfer_local());
		pyshm_ring_set_xfer(orphan, p->xremote);
		ring_discard(p, orphan, true);
		pyshm_ring_free(orphan);
	}
	pthread_mutex_unlock(&drain_lock);
}

void port_set_inflight(struct port *p, uint64_t bytes)
{
	static unsigned int msgs;
	struct rlimit rl;

	/* Each message in flight holds an fd: a program with few leaves
	 * most to other uses. */
	if (!msgs) {
		msgs = CHAN_INFLIGHT_MSGS;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur / 8 < msgs)
			msgs = rl.rlim_cur / 8 > 4 ? (unsigned int)(rl.rlim_cur / 8) : 4;
	}
	p->inflight_max = bytes;
	pyshm_ring_set_ool_limit(p->tx, bytes, msgs);
}

uint64_t port_inflight_default(void)
{
	static uint64_t bytes;
	const char *env;
	char *end;

	if (!bytes) {
		env = getenv("PYSHM_MAX_INFLIGHT_BYTES");
		bytes = env ? strtoull(env, &end, 0) : 0;
		if (!env || !*env || *end || !bytes)
			bytes = CHAN_INFLIGHT_BYTES;
	}
	return bytes;
}

/* ---- sending and receiving -------------------------------------------- */

static int64_t timeout_ns(double t)
{
	if (t < 0)
		return -1;
	if (t > 9e9)
		return INT64_MAX / 2;
	return (int64_t)(t * 1e9);
}

/* What a send's waits share: its deadline (mono_now() seconds, < 0 none). */
struct send_ctx {
	pymod_state *st;
	double deadline;
};

/* ns to wait until @deadline (-1: no limit), 0 once it has passed. */
static int64_t left_ns(double deadline)
{
	double left;

	if (deadline < 0)
		return -1;
	left = deadline - mono_now();
	return left > 0 ? timeout_ns(left) : 0;
}

/*
 * Send the record, waiting without the GIL for room (ring space, the
 * out-of-line budget, the socket) until @deadline. A signal or terminate()
 * interrupts the wait: then -EINTR with the exception its handler raised,
 * or the wait goes on. One try at least, also when the deadline has passed.
 */
static int send_wait(pymod_state *st, struct port *p, const struct iovec *iov, int niov,
		     double deadline)
{
	int64_t left;
	int ret;

	for (;;) {
		left = left_ns(deadline);
		worker_block(st, p->tx, true, true);
		Py_BEGIN_ALLOW_THREADS
		ret = pyshm_ring_sendv(p->tx, iov, niov, left);
		Py_END_ALLOW_THREADS
		worker_block(st, p->tx, true, false);
		if (ret != -EINTR)
			return ret == -EAGAIN && left != 0 ? -ETIMEDOUT : ret;
		if (PyErr_CheckSignals() < 0 || worker_check_terminated(st) < 0)
			return -EINTR;
		if (left_ns(deadline) == 0)
			return -ETIMEDOUT;
	}
}

/* clone_env.wait_room for a send: wait for room in the socket without the
 * GIL, in slices, so that signals and terminate() are seen. */
static int send_wait_room(struct clone_env *env)
{
	struct send_ctx *ctx = env->wait_ctx;
	int64_t left, slice = 50 * 1000 * 1000;
	int ret;

	for (;;) {
		left = left_ns(ctx->deadline);
		if (left == 0) {
			PyErr_SetString(PyExc_TimeoutError, "post_message() timed out");
			return -1;
		}
		Py_BEGIN_ALLOW_THREADS
		ret = pyshm_xfer_wait_room(env->xfer, left < 0 || left > slice ? slice : left);
		Py_END_ALLOW_THREADS
		/* A closed socket shows in the next send, as -EPIPE. */
		if (ret == 0 || ret == -EPIPE)
			return 0;
		if (ret != -ETIMEDOUT && ret != -EINTR) {
			pymod_raise_from_errno(ctx->st, ret, "post_message");
			return -1;
		}
		if (PyErr_CheckSignals() < 0 || worker_check_terminated(ctx->st) < 0)
			return -1;
	}
}

/*
 * A message nobody will receive took the ports of @transfer with it: those
 * not exported yet are closed here, as if sent (their peers see the end).
 */
static void transfer_lost(pymod_state *st, PyObject *transfer)
{
	PyObject *seq, *item;
	struct port *q;
	Py_ssize_t i;

	if (!transfer || transfer == Py_None)
		return;
	seq = PySequence_Fast(transfer, "transfer");
	if (!seq) {
		PyErr_Clear();
		return;
	}
	for (i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
		item = PySequence_Fast_GET_ITEM(seq, i);
		q = port_from_object(st, item);
		if (q) {
			port_detach_object(item);
			port_close(q);
			port_put(q);
		}
	}
	Py_DECREF(seq);
}

/*
 * A port of @transfer is our own peer: the message would sit in that port's
 * own queue, with nobody left to read it. JavaScript calls such a port
 * doomed: the message goes nowhere and the ports it carries are lost.
 */
static bool transfer_dooms(pymod_state *st, struct port *p, PyObject *transfer)
{
	PyObject *seq;
	struct port *q;
	Py_ssize_t i;
	bool doomed = false;

	if (!transfer || transfer == Py_None)
		return false;
	seq = PySequence_Fast(transfer, "transfer");
	if (!seq) {
		PyErr_Clear();	/* the encoder reports it */
		return false;
	}
	for (i = 0; i < PySequence_Fast_GET_SIZE(seq) && !doomed; i++) {
		q = port_from_object(st, PySequence_Fast_GET_ITEM(seq, i));
		doomed = q && q->chan == p->chan && q->side != p->side;
	}
	Py_DECREF(seq);
	return doomed;
}

int port_send_record(pymod_state *st, struct port *p, int type, PyObject *obj,
		     PyObject *transfer, double timeout)
{
	struct send_ctx ctx = { .st = st, .deadline = timeout < 0 ? -1 : mono_now() + timeout };
	struct msg_hdr h = { .type = (uint8_t)type };
	struct clone_msg msg = { 0 };
	bool doomed = transfer_dooms(st, p, transfer);
	struct iovec iov_small[2], *iov = iov_small;
	struct clone_env env;
	size_t total;
	int ret, niov;

	port_env_init(&env, p, port_tx_xfer(p));
	env.wait_room = send_wait_room;
	env.wait_ctx = &ctx;
	env.ext_ok = true;
	/* Out of line, the record starts 64 bytes into its region. */
	env.align_base = sizeof(h);
	if (clone_encode(st, obj, transfer, &env, &msg) < 0) {
		port_exported_close(&env);
		if (!env.peer_gone)
			return -1;
		/* The receiver is gone: dropped, as for a closed port. */
		PyErr_Clear();
		transfer_lost(st, transfer);
		return 0;
	}
	if (doomed) {
		ret = -EPIPE;
		goto out_drop;
	}
	h.xfer = (uint8_t)pyshm_xfer_kind(env.xfer);
	/* The record: our header, then the message, gathered from where its
	 * large blobs are. */
	if (msg.next) {
		iov = PyMem_RawMalloc((2 * (size_t)msg.next + 2) * sizeof(*iov));
		if (!iov) {
			PyErr_NoMemory();
			ret = -ENOMEM;
			goto out_drop;
		}
	}
	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
	niov = 1 + clone_msg_iov(&msg, iov + 1);
	total = sizeof(h) + msg.len + msg.extlen;
	pyshm_ring_set_xfer(p->tx, env.xfer);
	/* A small record is tried once with the GIL (the hot path); a large
	 * one goes into a region, copied there: never with the GIL. */
	ret = -EAGAIN;
	if (total <= CHAN_OOL_THRESHOLD)
		ret = pyshm_ring_sendv(p->tx, iov, niov, 0);
	if (ret == -EAGAIN && (timeout != 0 || total > CHAN_OOL_THRESHOLD))
		ret = send_wait(st, p, iov, niov, ctx.deadline);
	if (iov != iov_small)
		PyMem_RawFree(iov);
	if (ret == 0) {
		port_exported_release(&env);
		clone_msg_free(&msg);
		return 0;
	}
out_drop:
	/* Ports that went with the message are closed first: their peers
	 * see the end, and nothing reads them back from the message. */
	port_exported_close(&env);
	clone_discard_msg(&msg, &env);
	clone_msg_free(&msg);
	if (ret == -ENOMEM)
		return -1;
	/* As in JavaScript, posting to a closed port drops the message. */
	if (ret == -EPIPE)
		return 0;
	if (ret == -EINTR)
		return -1;	/* the signal handler's exception */
	pymod_raise_from_errno(st, ret == -EAGAIN ? -ETIMEDOUT : ret, "post_message");
	return -1;
}

/* Decode the record in @rec (consumed by the caller). */
/* clone_env.keep for a record being read: its out-of-line region. */
struct rx_ctx {
	struct pyshm_ring *ring;
	struct pyshm_ring_rec *rec;
};

static struct pyshm_region *rx_keep(struct clone_env *env)
{
	struct rx_ctx *ctx = env->keep_ctx;
	struct pyshm_region *r;

	return pyshm_ring_keep(ctx->ring, ctx->rec, &r) == 0 ? r : NULL;
}

static PyObject *rx_record(pymod_state *st, struct port *p, struct pyshm_ring_rec *rec)
{
	struct rx_ctx ctx = { .ring = p->rx, .rec = rec };
	struct clone_env env;
	struct msg_hdr h;
	PyObject *obj;

	if (rec->len < sizeof(h)) {
		PyErr_SetString(st->DataCloneError, "malformed message (short record)");
		return NULL;
	}
	memcpy(&h, rec->data, sizeof(h));
	port_env_init(&env, p, port_rx_xfer(p, h.xfer));
	if (!env.xfer || (h.type != MSG_DATA && h.type != MSG_ERROR)) {
		PyErr_Format(st->DataCloneError, "malformed message (type %u, transfer %u)",
			     h.type, h.xfer);
		return NULL;
	}
	env.keep = rx_keep;
	env.keep_ctx = &ctx;
	obj = clone_decode(st, (const uint8_t *)rec->data + sizeof(h), rec->len - sizeof(h),
			   &env);
	if (obj && h.type == MSG_ERROR) {
		worker_raise_error(st, p->worker, obj);
		Py_DECREF(obj);
		return NULL;
	}
	return obj;
}

/* The receiver's lock, taken without holding the GIL while contended. */
static void rx_lock(struct port *p)
{
	if (pthread_mutex_trylock(&p->rx_lock) == 0)
		return;
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&p->rx_lock);
	Py_END_ALLOW_THREADS
}

static PyObject *port_recv(pymod_state *st, struct port *p, double timeout)
{
	int64_t deadline = timeout < 0 ? -1 : 0;
	struct pyshm_ring_rec rec;
	PyObject *obj = NULL;
	int64_t left;
	int ret;

	port_get(p);
	rx_lock(p);
	if (timeout > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		deadline = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + timeout_ns(timeout);
	}
	for (;;) {
		if (atomic_load(&p->detached)) {
			PyErr_SetString(PyExc_ValueError, "MessagePort is closed or transferred");
			break;
		}
		ret = pyshm_ring_peek(p->rx, &rec);
		if (ret == 0 || (ret == -EBADMSG && rec.total)) {
			obj = ret == 0 ? rx_record(st, p, &rec) : NULL;
			if (ret)
				PyErr_SetString(st->DataCloneError, "malformed message (bad region)");
			pyshm_ring_consume(p->rx, &rec);
			break;
		}
		if (ret == -EPIPE) {
			if (p->worker)
				worker_raise_eof(st, p->worker,
						 deadline < 0 ? -1.0 :
						 deadline == 0 ? mono_now() : (double)deadline * 1e-9);
			else
				PyErr_SetString(PyExc_EOFError, "the other end of the channel is closed");
			break;
		}
		if (ret != -EAGAIN) {
			pymod_raise_from_errno(st, ret, "recv");
			break;
		}
		if (worker_check_terminated(st) < 0)
			break;
		if (deadline == 0) {
			PyErr_SetString(PyExc_TimeoutError, "recv() timed out");
			break;
		}
		left = -1;
		if (deadline > 0) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			left = deadline - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
			if (left <= 0) {
				PyErr_SetString(PyExc_TimeoutError, "recv() timed out");
				break;
			}
		}
		pyshm_ring_set_waiter(p->rx, rx_waiter(p, false));
		worker_block(st, p->rx, false, true);
		Py_BEGIN_ALLOW_THREADS
		ret = pyshm_ring_wait(p->rx, left);
		Py_END_ALLOW_THREADS
		worker_block(st, p->rx, false, false);
		if (ret == -EINTR && PyErr_CheckSignals() < 0)
			break;
		/* A timeout is the deadline's to report; anything else (a
		 * corrupted ring) would come back at every wait. */
		if (ret < 0 && ret != -EINTR && ret != -ETIMEDOUT) {
			pymod_raise_from_errno(st, ret, "recv");
			break;
		}
	}
	pthread_mutex_unlock(&p->rx_lock);
	port_put(p);
	return obj;
}

/* ---- the Python type ---------------------------------------------------- */

static struct port *live_port(PortObject *self)
{
	if (!self->port)
		PyErr_SetString(PyExc_ValueError, "MessagePort is closed or transferred");
	return self->port;
}

static int timeout_arg(PyObject *obj, double *out)
{
	if (obj == Py_None) {
		*out = -1;
		return 0;
	}
	*out = PyFloat_AsDouble(obj);
	if (*out == -1 && PyErr_Occurred())
		return -1;
	if (*out != *out) {
		PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
		return -1;
	}
	if (*out < 0)
		*out = 0;
	return 0;
}

/*
 * Arguments of a METH_FASTCALL | METH_KEYWORDS method: @names in order, the
 * first @npos of them positional-or-keyword, the rest keyword-only, the
 * first @nreq required. out[] gets borrowed references, NULL if absent.
 * (The message hot path: much cheaper than PyArg_ParseTupleAndKeywords.)
 */
static int fast_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
		     PyObject *kwnames, const char *const *names, int nnames, int npos,
		     int nreq, PyObject **out)
{
	Py_ssize_t i, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	int j;

	if (nargs > npos) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)",
			     fname, npos, nargs);
		return -1;
	}
	for (j = 0; j < nnames; j++)
		out[j] = j < nargs ? args[j] : NULL;
	for (i = 0; i < nkw; i++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, i);

		for (j = 0; j < nnames; j++)
			if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
				break;
		if (j == nnames) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
				     fname, key);
			return -1;
		}
		if (out[j]) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     fname, names[j]);
			return -1;
		}
		out[j] = args[nargs + i];
	}
	for (j = 0; j < nreq; j++) {
		if (!out[j]) {
			PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
				     fname, names[j]);
			return -1;
		}
	}
	return 0;
}

static PyObject *portobj_post_message(PortObject *self, PyObject *const *args,
				      Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "message", "transfer", "timeout" };
	pymod_state *st = get_state_by_type(Py_TYPE(self));
	PyObject *a[3];
	struct port *p;
	double timeout;
	int ret;

	if (fast_args("post_message", args, nargs, kwnames, names, 3, 2, 1, a) < 0 ||
	    timeout_arg(a[2] ? a[2] : Py_None, &timeout) < 0)
		return NULL;
	p = live_port(self);
	if (!p)
		return NULL;
	port_get(p);
	ret = port_send_record(st, p, MSG_DATA, a[0], a[1], timeout);
	port_put(p);
	if (ret < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *portobj_recv(PortObject *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	static const char *const names[] = { "timeout" };
	PyObject *tmo;
	struct port *p;
	double timeout;

	if (fast_args("recv", args, nargs, kwnames, names, 1, 1, 0, &tmo) < 0 ||
	    timeout_arg(tmo ? tmo : Py_None, &timeout) < 0)
		return NULL;
	p = live_port(self);
	if (!p)
		return NULL;
	return port_recv(get_state_by_type(Py_TYPE(self)), p, timeout);
}

static PyObject *portobj_iternext(PortObject *self)
{
	struct port *p = live_port(self);
	PyObject *obj;

	if (!p)
		return NULL;
	obj = port_recv(get_state_by_type(Py_TYPE(self)), p, -1);
	if (!obj && PyErr_ExceptionMatches(PyExc_EOFError))
		PyErr_Clear();	/* the end of the stream: StopIteration */
	return obj;
}

static PyObject *portobj_close(PortObject *self, PyObject *unused)
{
	struct port *p = self->port;

	if (p) {
		self->port = NULL;
		port_close(p);
		port_put(p);
	}
	Py_RETURN_NONE;
}

/* _close_send(): end our sending direction only; we can still read. */
static PyObject *portobj_close_send(PortObject *self, PyObject *unused)
{
	if (self->port)
		pyshm_ring_close(self->port->tx, PYSHM_RING_CLOSE_PRODUCERS);
	Py_RETURN_NONE;
}

int port_arm_rx(struct port *p)
{
	struct pyshm_waiter *w = rx_waiter(p, true);
	int ret;

	if (!w)
		return -ENOMEM;
	pyshm_ring_set_waiter(p->rx, w);
	ret = pyshm_ring_arm(p->rx);
	return ret < 0 ? ret : pyshm_waiter_fd(w);
}

void port_disarm_rx(struct port *p)
{
	pyshm_ring_disarm(p->rx);
	if (p->uwaiter)
		pyshm_waiter_drain(p->uwaiter);
	if (p->fwaiter)
		pyshm_waiter_drain(p->fwaiter);
}

/*
 * For event loops: arm the receiver and return the fd to watch, or -1 when
 * a message (or the end) is already there.
 */
static PyObject *portobj_arm(PortObject *self, PyObject *unused)
{
	pymod_state *st = get_state_by_type(Py_TYPE(self));
	struct port *p = live_port(self);
	int ret;

	if (!p)
		return NULL;
	ret = port_arm_rx(p);
	if (ret == -EAGAIN)
		return PyLong_FromLong(-1);
	if (ret < 0)
		return pymod_raise_from_errno(st, ret, "arm");
	return PyLong_FromLong(ret);
}

static PyObject *portobj_disarm(PortObject *self, PyObject *unused)
{
	if (self->port)
		port_disarm_rx(self->port);
	Py_RETURN_NONE;
}

static PyObject *portobj_get_closed(PortObject *self, void *closure)
{
	return PyBool_FromLong(self->port == NULL);
}

static PyObject *portobj_reduce(PortObject *self, PyObject *unused)
{
	return PyErr_Format(PyExc_TypeError,
			    "cannot pickle 'MessagePort' object: transfer it with "
			    "post_message(obj, transfer=[port])");
}

static void portobj_dealloc(PortObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyObject_GC_UnTrack(self);
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->port) {
		port_close(self->port);
		port_put(self->port);
	}
	tp->tp_free(self);
	Py_DECREF(tp);
}

static int portobj_traverse(PortObject *self, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static PyObject *portobj_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	PyErr_SetString(PyExc_TypeError, "MessagePorts come from MessageChannel()");
	return NULL;
}

PyObject *port_wrap(pymod_state *st, struct port *p)
{
	PyTypeObject *tp = st->port_class ? (PyTypeObject *)st->port_class : st->port_type;
	PortObject *self = (PortObject *)tp->tp_alloc(tp, 0);

	if (!self) {
		port_close(p);
		port_put(p);
		return NULL;
	}
	self->port = p;
	return (PyObject *)self;
}

void port_detach_object(PyObject *obj)
{
	((PortObject *)obj)->port = NULL;
}

struct port *port_from_object(pymod_state *st, PyObject *obj)
{
	if (!st->port_type || !PyObject_TypeCheck(obj, st->port_type))
		return NULL;
	return ((PortObject *)obj)->port;
}

/* The two ends as a tuple of MessagePort objects (consumes a and b). */
static PyObject *wrap_pair(pymod_state *st, struct port *a, struct port *b)
{
	PyObject *pa = port_wrap(st, a), *pb;

	if (!pa) {
		port_close(b);
		port_put(b);
		return NULL;
	}
	pb = port_wrap(st, b);
	if (!pb) {
		Py_DECREF(pa);
		return NULL;
	}
	return Py_BuildValue("(NN)", pa, pb);
}

static PyObject *mod_message_channel(PyObject *mod, PyObject *unused)
{
	pymod_state *st = get_state(mod);
	struct port *a, *b;
	int ret = port_channel_new(0, &a, &b);

	if (ret)
		return pymod_raise_from_errno(st, ret, "MessageChannel");
	return wrap_pair(st, a, b);
}

/* _link_channel(remote, max_inflight_bytes=None) -> (ours, theirs): a
 * worker's link. With remote, their end is marked in transit, so the first
 * message (sent before the process exists) carries references another
 * process can claim. */
static PyObject *mod_link_channel(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *remote, *limit = Py_None;
	unsigned long long bytes = 0;
	struct port *a, *b;
	int ret;

	if (!PyArg_ParseTuple(args, "O|O:_link_channel", &remote, &limit))
		return NULL;
	if (limit != Py_None) {
		if (!PyLong_Check(limit) || PyBool_Check(limit))
			return PyErr_Format(PyExc_TypeError,
					    "max_inflight_bytes must be an int or None, not %s",
					    Py_TYPE(limit)->tp_name);
		bytes = PyLong_AsUnsignedLongLong(limit);
		if (PyErr_Occurred() || bytes == 0 || bytes > PYSHM_REGION_SIZE_MAX) {
			PyErr_Clear();
			return PyErr_Format(PyExc_ValueError,
					    "max_inflight_bytes must be between 1 and %llu",
					    (unsigned long long)PYSHM_REGION_SIZE_MAX);
		}
	}
	ret = port_channel_new(SIDE_LINK, &a, &b);
	if (ret)
		return pymod_raise_from_errno(st, ret, "worker channel");
	a->link = b->link = true;
	if (bytes) {
		port_set_inflight(a, bytes);
		port_set_inflight(b, bytes);
	}
	if (PyObject_IsTrue(remote))
		atomic_store(&b->hdr->side[b->side].pid, 0);
	return wrap_pair(st, a, b);
}

/* _post_error(port, details): a worker's error record for its parent. */
static PyObject *mod_post_error(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *port_obj, *details;
	struct port *p;
	int ret;

	if (!PyArg_ParseTuple(args, "OO:_post_error", &port_obj, &details))
		return NULL;
	p = port_from_object(st, port_obj);
	if (!p)
		return PyErr_Format(PyExc_ValueError, "expected a live MessagePort");
	port_get(p);
	ret = port_send_record(st, p, MSG_ERROR, details, NULL, -1);
	port_put(p);
	if (ret < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* _set_port_class(cls): the Python subclass ports are created as. */
static PyObject *mod_set_port_class(PyObject *mod, PyObject *cls)
{
	pymod_state *st = get_state(mod);

	if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, st->port_type))
		return PyErr_Format(PyExc_TypeError, "expected a MessagePort subclass");
	Py_XSETREF(st->port_class, Py_NewRef(cls));
	Py_RETURN_NONE;
}

PyMethodDef port_module_methods[] = {
	{ "MessageChannel", mod_message_channel, METH_NOARGS,
	  "MessageChannel($module, /)\n--\n\nA new channel: a pair (port1, port2) of entangled MessagePorts." },
	{ "_link_channel", mod_link_channel, METH_VARARGS, NULL },
	{ "_post_error", mod_post_error, METH_VARARGS, NULL },
	{ "_set_port_class", mod_set_port_class, METH_O, NULL },
	{ NULL }
};

static PyMethodDef portobj_methods[] = {
	{ "post_message", (PyCFunction)(void (*)(void))portobj_post_message,
	  METH_FASTCALL | METH_KEYWORDS,
	  "post_message($self, /, message, transfer=(), *, timeout=None)\n--\n\n"
	  "Send a structured clone of message; ports in transfer move with it.\n"
	  "Blocks while the channel is full (TimeoutError after timeout seconds)." },
	{ "recv", (PyCFunction)(void (*)(void))portobj_recv, METH_FASTCALL | METH_KEYWORDS,
	  "recv($self, /, timeout=None)\n--\n\nThe next message. TimeoutError after timeout seconds;\n"
	  "EOFError once the other end is closed and every message was read." },
	{ "close", (PyCFunction)portobj_close, METH_NOARGS,
	  "close($self, /)\n--\n\nClose this end; the other end sees the end of the stream." },
	{ "_close_send", (PyCFunction)portobj_close_send, METH_NOARGS, NULL },
	{ "_arm", (PyCFunction)portobj_arm, METH_NOARGS, NULL },
	{ "_disarm", (PyCFunction)portobj_disarm, METH_NOARGS, NULL },
	{ "__reduce__", (PyCFunction)portobj_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef portobj_getset[] = {
	{ "closed", (getter)portobj_get_closed, NULL,
	  "True once closed or transferred away.", NULL },
	{ NULL }
};

static PyMemberDef portobj_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(PortObject, weakreflist), READONLY },
	{ NULL }
};

static PyType_Slot portobj_slots[] = {
	{ Py_tp_doc, "MessagePort()\n--\n\n"
		     "One end of a MessageChannel. Ports come from MessageChannel();\n"
		     "calling MessagePort() raises TypeError." },
	{ Py_tp_new, portobj_new },
	{ Py_tp_dealloc, portobj_dealloc },
	{ Py_tp_traverse, portobj_traverse },
	{ Py_tp_iter, PyObject_SelfIter },
	{ Py_tp_iternext, portobj_iternext },
	{ Py_tp_methods, portobj_methods },
	{ Py_tp_getset, portobj_getset },
	{ Py_tp_members, portobj_members },
	{ 0, NULL }
};

static PyType_Spec portobj_spec = {
	.name = "pyshm_workers._core.MessagePort",
	.basicsize = sizeof(PortObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
	.slots = portobj_slots,
};

int port_init_types(PyObject *mod, pymod_state *st)
{
	/* Failing here is not fatal: the first port tries again. */
	port_watch_init();
	st->port_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &portobj_spec, NULL);
	if (!st->port_type)
		return -1;
	return PyModule_AddType(mod, st->port_type);
}
