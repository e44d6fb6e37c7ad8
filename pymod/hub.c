// SPDX-License-Identifier: MIT
/*
 * The program's hub. A process worker is joined to its parent by a control
 * channel besides its message channel, so the processes of a program form
 * a tree rooted at its first process. A thread per process with links
 * ("pyshm-hub") reads them, sleeping on all of them at once in
 * futex_waitv() (no bridge thread, no eventfd: a post that wakes it wakes
 * one thread); anyone writes to them. No Python runs here:
 * records are relayed as bytes, the regions of their clone messages sent
 * again through each next hop's transfer and named anew.
 *
 * BroadcastChannel: a channel of a name is a private MessageChannel whose
 * sending end the process's registry keeps. A post is encoded once,
 * stamped, written to this process's other channels of that name opened
 * before the stamp, and flooded along the tree: each process delivers it to
 * its own channels and passes it on to its other links. Every path keeps
 * the order of one poster's messages.
 */
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <pyshm/wake.h>

#include "clone.h"
#include "hub.h"
#include "worker.h"

struct link {
	atomic_long refs;
	struct port *port;	/* our end of the control channel */
	bool up;		/* to our parent */
	struct link *next;	/* hub.links, under hub.lock */
};

/* A BroadcastChannel of this process. */
struct bc_sub {
	uint64_t id;		/* program-wide: pid << 32 | count */
	uint64_t since;		/* CLOCK_MONOTONIC ns at open */
	struct port *tx;	/* the sending end of its channel */
	struct bc_sub *next;
	size_t namelen;
	char name[];
};

/* A broadcast on a control link: this, the name, the clone message. */
struct bc_rec {
	uint64_t stamp;		/* CLOCK_MONOTONIC ns at the post */
	uint64_t origin;	/* the posting channel, which does not get it */
	uint32_t namelen;
	uint32_t resv;
};

static struct {
	pthread_mutex_t lock;	/* guards all below */
	struct link *links;	/* each holds a reference of the list */
	struct link *parent;	/* one of them, or NULL at the root */
	bool child;		/* a parent link was set, even if gone since */
	struct bc_sub *subs;
	uint32_t next_sub;
	bool started;		/* the hub thread runs */
	atomic_uint kick;	/* bumped as links come: a futex word */
} hub = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A fork child has no hub thread and none of its parent's links. */
static void hub_forget(void)
{
	pthread_mutex_init(&hub.lock, NULL);
	hub.started = false;
	atomic_store(&hub.kick, 0);
	hub.links = hub.parent = NULL;
	hub.subs = NULL;
	hub.child = false;
}

static void hub_atfork(void)
{
	pthread_atfork(NULL, NULL, hub_forget);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* ---- links ------------------------------------------------------------ */

struct link *hub_link_get(struct link *l)
{
	if (l)
		atomic_fetch_add(&l->refs, 1);
	return l;
}

void hub_link_put(struct link *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	port_close(l->port);
	port_put(l->port);
	PyMem_RawFree(l);
}

struct link *hub_parent_get(void)
{
	struct link *l;

	pthread_mutex_lock(&hub.lock);
	l = hub.parent ? hub_link_get(hub.parent) : NULL;
	pthread_mutex_unlock(&hub.lock);
	return l;
}

bool hub_is_root(void)
{
	bool root;

	pthread_mutex_lock(&hub.lock);
	root = !hub.child;
	pthread_mutex_unlock(&hub.lock);
	return root;
}

bool hub_link_is_up(const struct link *l)
{
	return l->up;
}

int hub_link_pair(struct port **mine, struct port **theirs)
{
	int ret = port_channel_new(SIDE_LINK, mine, theirs);

	if (ret)
		return ret;
	(*mine)->link = (*theirs)->link = true;
	/* Theirs is in transit until the child attaches it. */
	atomic_store(&(*theirs)->hdr->side[(*theirs)->side].pid, 0);
	return 0;
}

int hub_send(struct link *l, int type, const void *body, size_t len)
{
	struct msg_hdr h = { .type = (uint8_t)type };
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)body, .iov_len = len },
	};

	return pyshm_ring_sendv(l->port->tx, iov, 2, -1);
}

static void *hub_main(void *arg);

/* Start the thread. Caller holds hub.lock. */
static int hub_start(void)
{
	int ret;

	pthread_once(&atfork_once, hub_atfork);
	ret = start_detached(hub_main, NULL);
	hub.started = ret == 0;
	return ret;
}

static void link_add(struct port *p, bool up)
{
	struct link *l = PyMem_RawCalloc(1, sizeof(*l));

	if (!l) {
		port_close(p);
		port_put(p);
		return;
	}
	atomic_init(&l->refs, 1);
	l->port = p;
	l->up = up;
	/* Records to the other process carry its kind of references. */
	pyshm_ring_set_xfer(p->tx, port_tx_xfer(p));
	pthread_mutex_lock(&hub.lock);
	if (!hub.started && hub_start() < 0) {
		/* XXX: no thread: nothing that arrives on this link is read. */
		pthread_mutex_unlock(&hub.lock);
		hub_link_put(l);
		return;
	}
	l->next = hub.links;
	hub.links = l;
	if (up) {
		hub.parent = l;
		hub.child = true;
	}
	pthread_mutex_unlock(&hub.lock);
	/* The thread looks again, and sleeps on it too. */
	atomic_fetch_add(&hub.kick, 1);
	syscall(SYS_futex, &hub.kick, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void hub_add_child(struct port *p)
{
	link_add(p, false);
}

void hub_set_parent(struct port *p)
{
	link_add(p, true);
}

/* A link whose other end is gone: out of the tree. Hub thread only. */
static void link_remove(struct link *l)
{
	struct link **pp;

	pthread_mutex_lock(&hub.lock);
	for (pp = &hub.links; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	if (hub.parent == l)
		hub.parent = NULL;
	pthread_mutex_unlock(&hub.lock);
	locks_on_link_gone(l);
	hub_link_put(l);
}

/* ---- broadcasting ----------------------------------------------------- */

/* The regions of a message being relayed, received once. */
struct relay {
	const uint8_t *msg;
	size_t len;
	struct pyshm_clone_info info;
	struct pyshm_region **r;
	unsigned int *role;
};

/* Receive the regions of @rl->msg through @in (per kind). */
static int relay_open(struct relay *rl, struct pyshm_xfer *(*in)(void *, int), void *ctx)
{
	struct pyshm_region_ref ref;
	uint32_t i;
	int ret;

	ret = pyshm_clone_parse(rl->msg, rl->len, &rl->info);
	if (ret < 0)
		return ret;
	if (!rl->info.nregions)
		return 0;
	rl->r = PyMem_RawCalloc(rl->info.nregions, sizeof(*rl->r));
	rl->role = PyMem_RawCalloc(rl->info.nregions, sizeof(*rl->role));
	if (!rl->r || !rl->role)
		return -ENOMEM;
	for (i = 0; i < rl->info.nregions; i++) {
		struct pyshm_xfer *x;

		pyshm_clone_get_region(rl->msg, &rl->info, i, &rl->role[i], &ref);
		x = in(ctx, ref.kind);
		ret = x ? pyshm_xfer_recv(x, &ref, &rl->r[i]) : -EBADMSG;
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Let go of what the relayed message held. */
static void relay_close(struct relay *rl)
{
	uint32_t i;

	for (i = 0; rl->r && i < rl->info.nregions; i++) {
		if (rl->r[i] && rl->role[i] == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_unhold(rl->r[i]);
		pyshm_region_put(rl->r[i]);
	}
	PyMem_RawFree(rl->r);
	PyMem_RawFree(rl->role);
}

/*
 * Send the relayed message on @tx, as a record of @type with @pre (may be
 * empty) before the message, its regions sent anew through @x. Blocks
 * while the ring is full.
 */
static int relay_send(struct relay *rl, struct pyshm_ring *tx, struct pyshm_xfer *x, int type,
		      const void *pre, size_t prelen)
{
	struct msg_hdr h = { .type = (uint8_t)type, .xfer = (uint8_t)pyshm_xfer_kind(x) };
	struct pyshm_region_ref ref;
	struct iovec iov[3];
	uint8_t *copy;
	uint32_t i, sent;
	int ret = 0;

	/* A copy only to name regions anew: most messages have none. */
	copy = rl->info.nregions ? PyMem_RawMalloc(rl->len) : (uint8_t *)rl->msg;
	if (!copy)
		return -ENOMEM;
	if (copy != rl->msg)
		memcpy(copy, rl->msg, rl->len);
	for (sent = 0; sent < rl->info.nregions; sent++) {
		if (rl->role[sent] == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_hold(rl->r[sent]);
		while ((ret = pyshm_xfer_send(x, rl->r[sent], &ref)) == -EAGAIN &&
		       (ret = pyshm_xfer_wait_room(x, -1)) == 0)
			;
		if (ret < 0) {
			if (rl->role[sent] == PYSHM_CLONE_ROLE_PAYLOAD)
				capi_region_unhold(rl->r[sent]);
			goto out_unsend;
		}
		pyshm_clone_set_region(copy, &rl->info, sent, &ref);
	}
	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
	iov[1] = (struct iovec){ .iov_base = (void *)pre, .iov_len = prelen };
	iov[2] = (struct iovec){ .iov_base = copy, .iov_len = rl->len };
	pyshm_ring_set_xfer(tx, x);
	ret = pyshm_ring_sendv(tx, iov, 3, -1);
	if (ret == 0)
		goto out_free;
out_unsend:
	/* Taken back where that can be done (local, kmod); a socket's fds go
	 * with the process they were sent to. */
	for (i = 0; i < sent; i++) {
		pyshm_clone_get_region(copy, &rl->info, i, NULL, &ref);
		pyshm_xfer_drop(x, &ref);
		if (rl->role[i] == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_unhold(rl->r[i]);
	}
out_free:
	if (copy != rl->msg)
		PyMem_RawFree(copy);
	return ret;
}

static bool sub_matches(const struct bc_sub *s, const char *name, size_t namelen)
{
	return s->namelen == namelen && !memcmp(s->name, name, namelen);
}

/* Most broadcasts reach a few channels and links: room for them, and for
 * the record's head, on the stack. */
#define BC_ON_STACK 16

/*
 * Deliver broadcast @br (name @name, clone message in @rl) to this
 * process's channels of the name and to every link but @from.
 */
static void broadcast(const struct bc_rec *br, const char *name, struct relay *rl,
		      struct link *from)
{
	struct port *subs_stack[BC_ON_STACK], **subs = subs_stack;
	struct link *links_stack[BC_ON_STACK], **links = links_stack;
	uint8_t pre_stack[256], *pre = pre_stack;
	size_t nsubs = 0, nlinks = 0, prelen = sizeof(*br) + br->namelen, i;
	struct bc_sub *s;
	struct link *l;

	pthread_mutex_lock(&hub.lock);
	for (s = hub.subs; s; s = s->next)
		nsubs++;
	for (l = hub.links; l; l = l->next)
		nlinks++;
	if (nsubs > BC_ON_STACK)
		subs = PyMem_RawCalloc(nsubs, sizeof(*subs));
	if (nlinks > BC_ON_STACK)
		links = PyMem_RawCalloc(nlinks, sizeof(*links));
	nsubs = nlinks = 0;
	for (s = hub.subs; subs && s; s = s->next)
		if (s->id != br->origin && s->since < br->stamp &&
		    sub_matches(s, name, br->namelen))
			subs[nsubs++] = port_get(s->tx);
	for (l = hub.links; links && l; l = l->next)
		if (l != from)
			links[nlinks++] = hub_link_get(l);
	pthread_mutex_unlock(&hub.lock);

	/* The listeners asleep are woken together at the end. */
	pyshm_wake_hold();
	for (i = 0; i < nsubs; i++) {
		relay_send(rl, subs[i]->tx, port_xfer_local(), MSG_DATA, NULL, 0);
		port_put(subs[i]);
	}
	/* On a link, the record says what it is first. */
	if (nlinks && prelen > sizeof(pre_stack))
		pre = PyMem_RawMalloc(prelen);
	if (nlinks && pre) {
		memcpy(pre, br, sizeof(*br));
		memcpy(pre + sizeof(*br), name, br->namelen);
	}
	for (i = 0; i < nlinks; i++) {
		if (pre)
			relay_send(rl, links[i]->port->tx, port_tx_xfer(links[i]->port),
				   CTL_BCAST, pre, prelen);
		hub_link_put(links[i]);
	}
	pyshm_wake_flush();
	if (pre != pre_stack)
		PyMem_RawFree(pre);
	if (subs != subs_stack)
		PyMem_RawFree(subs);
	if (links != links_stack)
		PyMem_RawFree(links);
}

static struct pyshm_xfer *local_in(void *ctx, int kind)
{
	return kind == PYSHM_XFER_LOCAL ? port_xfer_local() : NULL;
}

static struct pyshm_xfer *link_in(void *ctx, int kind)
{
	return port_rx_xfer(((struct link *)ctx)->port, kind);
}

/* A broadcast record from @l: deliver it, and pass it on. */
static void on_broadcast(struct link *l, const uint8_t *data, size_t len)
{
	struct relay rl = { 0 };
	struct bc_rec br;

	if (len < sizeof(br))
		return;
	memcpy(&br, data, sizeof(br));
	if (br.namelen > len - sizeof(br))
		return;
	rl.msg = data + sizeof(br) + br.namelen;
	rl.len = len - sizeof(br) - br.namelen;
	if (relay_open(&rl, link_in, l) == 0)
		broadcast(&br, (const char *)data + sizeof(br), &rl, l);
	relay_close(&rl);
}

/* ---- the hub thread --------------------------------------------------- */

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* The links one futex_waitv() sleeps on, besides the kick word; with more,
 * the thread looks again every millisecond. */
#define HUB_WAIT_MAX (FUTEX_WAITV_MAX - 1)

/* Act on what @l holds; false when it is gone (or corrupted). */
static bool link_read(struct link *l)
{
	struct pyshm_ring_rec rec;
	struct msg_hdr h;
	int ret;

	while ((ret = pyshm_ring_peek(l->port->rx, &rec)) == 0 ||
	       (ret == -EBADMSG && rec.total)) {
		if (ret == 0 && rec.len >= sizeof(h)) {
			memcpy(&h, rec.data, sizeof(h));
			if (h.type == CTL_BCAST)
				on_broadcast(l, (const uint8_t *)rec.data + sizeof(h),
					     rec.len - sizeof(h));
			else if (h.type == CTL_LOCK)
				locks_on_record(l, (const uint8_t *)rec.data + sizeof(h),
						rec.len - sizeof(h));
		}
		pyshm_ring_consume(l->port->rx, &rec);
	}
	return ret == -EAGAIN;
}

/* The links, with a reference each, in *@ls (grown as needed). */
static size_t links_get(struct link ***ls, size_t *cap)
{
	struct link **grown, *l;
	size_t n = 0;

	pthread_mutex_lock(&hub.lock);
	for (l = hub.links; l; l = l->next)
		n++;
	if (n > *cap) {
		grown = PyMem_RawRealloc(*ls, n * sizeof(**ls));
		if (grown) {
			*ls = grown;
			*cap = n;
		}
	}
	n = 0;
	for (l = hub.links; l && n < *cap; l = l->next)
		(*ls)[n++] = hub_link_get(l);
	pthread_mutex_unlock(&hub.lock);
	return n;
}

/*
 * Poll the links for the spin budget: a stream of records is read as it
 * comes, without a sleep and a wakeup each (as a receiver spins before it
 * sleeps). True when one has something, or links came.
 */
static bool links_spin(struct link **ls, size_t n, unsigned int kick)
{
	int64_t start = (int64_t)now_ns(), now = start, end = start + pyshm_spin_ns();
	struct pyshm_ring_rec rec;
	size_t i;

	while (now < end) {
		for (i = 0; i < n; i++)
			if (ls[i] && pyshm_ring_peek(ls[i]->port->rx, &rec) != -EAGAIN)
				return true;
		if (atomic_load_explicit(&hub.kick, memory_order_relaxed) != kick)
			return true;
		/* Others may want this CPU once we have polled a while. */
		if (now - start > 2000)
			sched_yield();
		for (i = 0; i < 16; i++)
			cpu_relax();
		now = (int64_t)now_ns();
	}
	return false;
}

/* Sleep until a link has something, or links come. */
static void links_sleep(struct link **ls, size_t n, unsigned int kick)
{
	struct futex_waitv v[FUTEX_WAITV_MAX];
	struct timespec ts, *tsp = NULL;
	size_t i, nv = 0;
	uint32_t *word, val;
	int ret = 0;

	for (i = 0; i < n && nv < HUB_WAIT_MAX; i++) {
		if (!ls[i])
			continue;
		ret = pyshm_ring_arm_futex(ls[i]->port->rx, &word, &val);
		if (ret == -EAGAIN)
			break;		/* a record came */
		if (ret == 0)
			v[nv++] = (struct futex_waitv){
				.uaddr = (uintptr_t)word, .val = val, .flags = FUTEX_32,
			};
	}
	if (ret != -EAGAIN) {
		v[nv++] = (struct futex_waitv){
			.uaddr = (uintptr_t)&hub.kick, .val = kick,
			.flags = FUTEX_32 | FUTEX_PRIVATE_FLAG,
		};
		if (n > HUB_WAIT_MAX) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			tsp = &ts;
		}
		/* Without futex_waitv() (before 5.16, or refused by a seccomp
		 * filter): look again every millisecond. */
		if (syscall(SYS_futex_waitv, v, nv, 0, tsp, CLOCK_MONOTONIC) < 0 &&
		    errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
			usleep(1000);
	}
	for (i = 0; i < n; i++)
		if (ls[i])
			pyshm_ring_disarm(ls[i]->port->rx);
}

static void *hub_main(void *arg)
{
	struct link **ls = NULL;
	size_t cap = 0, n, i;
	unsigned int kick;

	for (;;) {
		kick = atomic_load(&hub.kick);
		n = links_get(&ls, &cap);
		for (i = 0; i < n; i++) {
			if (link_read(ls[i]))
				continue;
			link_remove(ls[i]);	/* its other end is gone */
			hub_link_put(ls[i]);
			ls[i] = NULL;
		}
		/* After a sleep or what it read, the thread spins before it
		 * sleeps again. */
		if (!links_spin(ls, n, kick))
			links_sleep(ls, n, kick);
		for (i = 0; i < n; i++)
			hub_link_put(ls[i]);
	}
	return NULL;
}

/* ---- the Python side: _bc_open(), _bc_post(), _bc_close() ------------ */

static const char *name_of(PyObject *name, Py_ssize_t *len)
{
	if (!PyUnicode_Check(name)) {
		PyErr_Format(PyExc_TypeError, "BroadcastChannel name must be a str, not %s",
			     Py_TYPE(name)->tp_name);
		return NULL;
	}
	return PyUnicode_AsUTF8AndSize(name, len);
}

/* _bc_open(name) -> (id, port): a channel of @name; its messages arrive on
 * port. */
static PyObject *mod_bc_open(PyObject *mod, PyObject *name_obj)
{
	pymod_state *st = get_state(mod);
	struct port *tx, *rx;
	struct bc_sub *s;
	Py_ssize_t len;
	const char *name = name_of(name_obj, &len);
	PyObject *port;
	uint64_t id;
	int ret;

	if (!name)
		return NULL;
	s = PyMem_RawMalloc(sizeof(*s) + (size_t)len + 1);
	if (!s)
		return PyErr_NoMemory();
	ret = port_channel_new(0, &tx, &rx);
	if (ret) {
		PyMem_RawFree(s);
		return pymod_raise_from_errno(st, ret, "BroadcastChannel");
	}
	memcpy(s->name, name, (size_t)len + 1);
	s->namelen = (size_t)len;
	s->tx = tx;
	pyshm_ring_set_xfer(tx->tx, port_xfer_local());
	port = port_wrap(st, rx);
	if (!port) {
		port_close(tx);
		port_put(tx);
		PyMem_RawFree(s);
		return NULL;
	}
	pthread_mutex_lock(&hub.lock);
	id = (uint64_t)port_pid() << 32 | ++hub.next_sub;
	s->id = id;
	s->since = now_ns();
	s->next = hub.subs;
	hub.subs = s;
	pthread_mutex_unlock(&hub.lock);
	return Py_BuildValue("(KN)", (unsigned long long)id, port);
}

/* _bc_close(id): the channel gets nothing more. */
static PyObject *mod_bc_close(PyObject *mod, PyObject *id_obj)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
	struct bc_sub **pp, *s = NULL;

	if (PyErr_Occurred())
		return NULL;
	pthread_mutex_lock(&hub.lock);
	for (pp = &hub.subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&hub.lock);
	if (s) {
		port_close(s->tx);
		port_put(s->tx);
		PyMem_RawFree(s);
	}
	Py_RETURN_NONE;
}

/* _bc_post(id, name, obj): to every other channel of @name in the program. */
static PyObject *mod_bc_post(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	unsigned long long id;
	struct clone_msg msg = { 0 };
	struct relay rl = { 0 };
	struct clone_env env;
	struct bc_rec br;
	PyObject *name_obj, *obj;
	const char *name;
	Py_ssize_t len;
	int ret;

	if (!PyArg_ParseTuple(args, "KOO:_bc_post", &id, &name_obj, &obj))
		return NULL;
	name = name_of(name_obj, &len);
	if (!name)
		return NULL;
	/* Regions travel as in structured_clone(): refs of this process, sent
	 * again for each channel and link. No ports: nothing is transferred. */
	env = (struct clone_env){ .xfer = port_xfer_local() };
	if (clone_encode(st, obj, NULL, &env, &msg) < 0)
		return NULL;
	br = (struct bc_rec){ .stamp = now_ns(), .origin = id, .namelen = (uint32_t)len };
	rl.msg = msg.buf;
	rl.len = msg.len;
	Py_BEGIN_ALLOW_THREADS
	ret = relay_open(&rl, local_in, NULL);
	if (ret == 0)
		broadcast(&br, name, &rl, NULL);
	relay_close(&rl);
	Py_END_ALLOW_THREADS
	clone_msg_free(&msg);
	if (ret < 0)
		return pymod_raise_from_errno(st, ret, "BroadcastChannel.post_message");
	Py_RETURN_NONE;
}

static PyMethodDef hub_methods[] = {
	{ "_bc_open", mod_bc_open, METH_O, NULL },
	{ "_bc_close", mod_bc_close, METH_O, NULL },
	{ "_bc_post", mod_bc_post, METH_VARARGS, NULL },
	{ NULL }
};

int broadcast_init(PyObject *mod)
{
	/* The thread and its fds belong to the program from the start (not
	 * to its first process worker); failing here is not fatal: the
	 * first link tries again. */
	pthread_mutex_lock(&hub.lock);
	if (!hub.started)
		hub_start();
	pthread_mutex_unlock(&hub.lock);
	return PyModule_AddFunctions(mod, hub_methods);
}
