// SPDX-License-Identifier: MIT
/*
 * Web Locks (pw.locks): locks by name, program-wide. The lock manager runs
 * in the program's first process (the root of the hub's tree); a request
 * from another process climbs the control links to it, and its answer
 * comes back down the same way (each process on the path remembers which
 * link a request came from). A process that goes away takes its requests
 * with it: its parent releases or cancels every request that came through
 * that link, so a holder that dies releases its locks.
 *
 * The manager keeps, per name, the requests holding it and then those
 * waiting, in order. An exclusive request is granted when nothing holds
 * the name and nothing waits before it; a shared one when only shared
 * requests hold it and nothing exclusive waits before it. A stealing
 * request takes the name from its holders at once.
 */
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hub.h"
#include "worker.h"

/* struct lk_rec.op */
enum { LK_REQ = 1, LK_REL, LK_ANSWER, LK_QUERY, LK_LISTING };
/* struct lk_rec.flags (LK_REQ) */
#define LKF_SHARED	(1u << 0)
#define LKF_IF_AVAIL	(1u << 1)
#define LKF_STEAL	(1u << 2)
/* struct lk_rec.result (LK_ANSWER), and a waiter's state */
enum { LK_WAITING = 0, LK_GRANTED, LK_NOT_AVAILABLE, LK_FAILED, LK_LISTED };

/* A lock record on a control link: this, then the name (LK_REQ) or the
 * listing (LK_LISTING: a struct lk_entry and its name, each). */
struct lk_rec {
	uint8_t op;
	uint8_t flags;
	uint8_t result;
	uint8_t resv;
	uint32_t len;		/* bytes after this header */
	uint64_t id;		/* program-wide: pid << 32 | count */
};

struct lk_entry {
	uint8_t held;
	uint8_t shared;
	uint16_t namelen;
};

/* A request known to this process: ours (via NULL), or passing through
 * from a child (the link it came by). */
struct lk_route {
	uint64_t id;
	struct link *via;	/* holds a reference */
	struct lk_route *next;
	/* ours only */
	int64_t interp;		/* the interpreter that asked */
	atomic_uint state;	/* futex word: LK_* */
	int efd;		/* for event loops (-1 until asked) */
	uint8_t *listing;	/* LK_LISTING's bytes */
	size_t listlen;
};

/* The manager's (root only): one request on one name. */
struct lk_req {
	uint64_t id;
	struct link *via;	/* holds a reference; NULL: the root's own */
	bool shared;
	bool held;
	struct lk_req *next;
};

struct lk_name {
	struct lk_name *next;
	struct lk_req *reqs;	/* the holders first, then the waiting, in order */
	size_t namelen;
	char name[];
};

/* An answer to send down a link once lk.lock is dropped. */
struct answer {
	uint64_t id;
	struct link *via;	/* holds a reference */
	int result;
};

#define MAX_ANSWERS 64

static struct {
	pthread_mutex_t lock;	/* guards all below */
	struct lk_route *routes;
	struct lk_name *names;
	uint32_t next_id;
} lk = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- routes ----------------------------------------------------------- */

static struct lk_route *route_find(uint64_t id)
{
	struct lk_route *r;

	for (r = lk.routes; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static struct lk_route *route_take(uint64_t id)
{
	struct lk_route **pp, *r;

	for (pp = &lk.routes; (r = *pp); pp = &r->next) {
		if (r->id == id) {
			*pp = r->next;
			return r;
		}
	}
	return NULL;
}

static struct lk_route *route_add(uint64_t id, struct link *via)
{
	struct lk_route *r = PyMem_RawCalloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->id = id;
	r->via = via;
	r->efd = -1;
	r->next = lk.routes;
	lk.routes = r;
	return r;
}

static void route_free(struct lk_route *r)
{
	if (!r)
		return;
	if (r->efd >= 0)
		close(r->efd);
	hub_link_put(r->via);
	PyMem_RawFree(r->listing);
	PyMem_RawFree(r);
}

/* Our request @r is answered. Caller holds lk.lock. */
static void route_answer(struct lk_route *r, int state)
{
	uint64_t one = 1;

	atomic_store(&r->state, (unsigned int)state);
	syscall(SYS_futex, &r->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	if (r->efd >= 0 && write(r->efd, &one, sizeof(one)) < 0)
		one = 0;
}

/* Send a record down @via, or up to our parent (@via NULL). */
static int send_rec(struct link *via, int op, uint64_t id, unsigned int flags, int result,
		    const void *body, size_t len)
{
	struct lk_rec *rec = PyMem_RawMalloc(sizeof(*rec) + len);
	struct link *l = via ? via : hub_parent_get();
	int ret = -EPIPE;

	if (!rec) {
		ret = -ENOMEM;
	} else if (l) {
		*rec = (struct lk_rec){ .op = (uint8_t)op, .flags = (uint8_t)flags,
					.result = (uint8_t)result, .len = (uint32_t)len,
					.id = id };
		if (len)
			memcpy(rec + 1, body, len);
		ret = hub_send(l, CTL_LOCK, rec, sizeof(*rec) + len);
	}
	if (!via)
		hub_link_put(l);
	PyMem_RawFree(rec);
	return ret;
}

/* ---- the manager (root) ----------------------------------------------- */

static struct lk_name *name_find(const char *name, size_t len, bool create)
{
	struct lk_name *n;

	for (n = lk.names; n; n = n->next)
		if (n->namelen == len && !memcmp(n->name, name, len))
			return n;
	if (!create)
		return NULL;
	n = PyMem_RawCalloc(1, sizeof(*n) + len + 1);
	if (!n)
		return NULL;
	memcpy(n->name, name, len);
	n->namelen = len;
	n->next = lk.names;
	lk.names = n;
	return n;
}

static void name_drop_if_empty(struct lk_name *n)
{
	struct lk_name **pp;

	if (n->reqs)
		return;
	for (pp = &lk.names; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			PyMem_RawFree(n);
			return;
		}
	}
}

/* Tell the requester of @q: at once if it is ours, else queued in @out
 * for after the lock. */
static void answer(struct lk_req *q, int result, struct answer *out, size_t *n)
{
	struct lk_route *r;

	if (!q->via) {
		r = route_find(q->id);
		if (r)
			route_answer(r, result);
	} else if (*n < MAX_ANSWERS) {
		out[(*n)++] = (struct answer){ .id = q->id, .via = hub_link_get(q->via),
					       .result = result };
	}
}

static void send_answers(struct answer *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		send_rec(a[i].via, LK_ANSWER, a[i].id, 0, a[i].result, NULL, 0);
		hub_link_put(a[i].via);
	}
}

/* Grant, in order, what can be granted on @n. */
static void grant_waiting(struct lk_name *n, struct answer *out, size_t *k)
{
	bool excl = false, any = false;
	struct lk_req *q;

	for (q = n->reqs; q && q->held; q = q->next) {
		any = true;
		excl |= !q->shared;
	}
	for (; q; q = q->next) {
		if (excl || (!q->shared && any))
			break;
		q->held = true;
		any = true;
		excl = !q->shared;
		answer(q, LK_GRANTED, out, k);
	}
}

static void req_free(struct lk_req *q)
{
	hub_link_put(q->via);
	PyMem_RawFree(q);
}

/* A request @id for @name, from @via (NULL: this process; the reference
 * is taken). */
static void manager_request(uint64_t id, struct link *via, const char *name, size_t len,
			    unsigned int flags)
{
	struct answer out[MAX_ANSWERS];
	struct lk_req *q = PyMem_RawCalloc(1, sizeof(*q)), **pp, *h;
	struct lk_name *n;
	size_t k = 0;

	pthread_mutex_lock(&lk.lock);
	n = name_find(name, len, true);
	if (!q || !n) {
		pthread_mutex_unlock(&lk.lock);
		PyMem_RawFree(q);
		if (via)
			send_rec(via, LK_ANSWER, id, 0, LK_FAILED, NULL, 0);
		else
			goto out_fail_ours;
		hub_link_put(via);
		return;
	}
	q->id = id;
	q->via = via;
	q->shared = flags & LKF_SHARED;
	if (flags & LKF_STEAL) {
		/* Whoever holds it loses it at once; it goes first. */
		while (n->reqs && n->reqs->held) {
			h = n->reqs;
			n->reqs = h->next;
			req_free(h);
		}
		q->held = true;
		q->next = n->reqs;
		n->reqs = q;
		answer(q, LK_GRANTED, out, &k);
		goto out_unlock;
	}
	for (pp = &n->reqs; *pp; pp = &(*pp)->next)
		;
	*pp = q;
	grant_waiting(n, out, &k);
	if (!q->held && flags & LKF_IF_AVAIL) {
		*pp = NULL;
		answer(q, LK_NOT_AVAILABLE, out, &k);
		req_free(q);
		name_drop_if_empty(n);
	}
out_unlock:
	pthread_mutex_unlock(&lk.lock);
	send_answers(out, k);
	return;
out_fail_ours:
	pthread_mutex_lock(&lk.lock);
	{
		struct lk_route *r = route_find(id);

		if (r)
			route_answer(r, LK_FAILED);
	}
	pthread_mutex_unlock(&lk.lock);
}

/* Release (held) or cancel (waiting) the requests @match picks. Caller
 * holds lk.lock. */
static void manager_drop(bool (*match)(struct lk_req *, const void *), const void *arg,
			 struct answer *out, size_t *k)
{
	struct lk_name *n, *next;
	struct lk_req **pp, *q;
	bool changed;

	for (n = lk.names; n; n = next) {
		next = n->next;
		changed = false;
		for (pp = &n->reqs; (q = *pp);) {
			if (match(q, arg)) {
				*pp = q->next;
				req_free(q);
				changed = true;
			} else {
				pp = &q->next;
			}
		}
		if (changed) {
			grant_waiting(n, out, k);
			name_drop_if_empty(n);
		}
	}
}

static bool match_id(struct lk_req *q, const void *arg)
{
	return q->id == *(const uint64_t *)arg;
}

static bool match_via(struct lk_req *q, const void *arg)
{
	return q->via == arg;
}

static void manager_release(uint64_t id)
{
	struct answer out[MAX_ANSWERS];
	size_t k = 0;

	pthread_mutex_lock(&lk.lock);
	manager_drop(match_id, &id, out, &k);
	pthread_mutex_unlock(&lk.lock);
	send_answers(out, k);
}

/* The held and waiting requests, as LK_LISTING bytes. Caller holds lk.lock. */
static uint8_t *manager_listing(size_t *len)
{
	struct lk_name *n;
	struct lk_req *q;
	struct lk_entry e;
	uint8_t *buf, *p;
	size_t total = 0;

	for (n = lk.names; n; n = n->next)
		for (q = n->reqs; q; q = q->next)
			total += sizeof(e) + n->namelen;
	p = buf = PyMem_RawMalloc(total ? total : 1);
	if (!buf)
		return NULL;
	for (n = lk.names; n; n = n->next) {
		for (q = n->reqs; q; q = q->next) {
			e = (struct lk_entry){ .held = q->held, .shared = q->shared,
					       .namelen = (uint16_t)n->namelen };
			memcpy(p, &e, sizeof(e));
			memcpy(p + sizeof(e), n->name, n->namelen);
			p += sizeof(e) + n->namelen;
		}
	}
	*len = total;
	return buf;
}

/* ---- records from the links ------------------------------------------- */

void locks_on_record(struct link *from, const void *data, size_t len)
{
	struct lk_route *r;
	struct link *via;
	struct lk_rec rec;
	const char *body;
	uint8_t *listing;
	size_t n;
	bool root = hub_is_root();

	if (len < sizeof(rec))
		return;
	memcpy(&rec, data, sizeof(rec));
	if (rec.len != len - sizeof(rec))
		return;
	body = (const char *)data + sizeof(rec);
	switch (rec.op) {
	case LK_REQ:
		if (root) {
			manager_request(rec.id, hub_link_get(from), body, rec.len, rec.flags);
			return;
		}
		pthread_mutex_lock(&lk.lock);
		r = route_add(rec.id, hub_link_get(from));
		pthread_mutex_unlock(&lk.lock);
		if (!r || send_rec(NULL, LK_REQ, rec.id, rec.flags, 0, body, rec.len) < 0) {
			send_rec(from, LK_ANSWER, rec.id, 0, LK_FAILED, NULL, 0);
			pthread_mutex_lock(&lk.lock);
			route_free(route_take(rec.id));
			pthread_mutex_unlock(&lk.lock);
		}
		return;
	case LK_REL:
		if (root) {
			manager_release(rec.id);
			return;
		}
		pthread_mutex_lock(&lk.lock);
		route_free(route_take(rec.id));
		pthread_mutex_unlock(&lk.lock);
		send_rec(NULL, LK_REL, rec.id, 0, 0, NULL, 0);
		return;
	case LK_QUERY:
		if (root) {
			pthread_mutex_lock(&lk.lock);
			listing = manager_listing(&n);
			pthread_mutex_unlock(&lk.lock);
			send_rec(from, LK_LISTING, rec.id, 0, 0, listing, listing ? n : 0);
			PyMem_RawFree(listing);
			return;
		}
		pthread_mutex_lock(&lk.lock);
		r = route_add(rec.id, hub_link_get(from));
		pthread_mutex_unlock(&lk.lock);
		if (r)
			send_rec(NULL, LK_QUERY, rec.id, 0, 0, NULL, 0);
		return;
	case LK_ANSWER:
	case LK_LISTING:
		pthread_mutex_lock(&lk.lock);
		r = route_find(rec.id);
		if (r && !r->via) {
			/* Ours. */
			if (rec.op == LK_LISTING) {
				r->listing = PyMem_RawMalloc(rec.len ? rec.len : 1);
				if (r->listing)
					memcpy(r->listing, body, rec.len);
				r->listlen = rec.len;
			}
			route_answer(r, rec.op == LK_LISTING ? LK_LISTED : rec.result);
			pthread_mutex_unlock(&lk.lock);
			return;
		}
		/* Passing through: on down. A granted lock's route stays, for
		 * its release; the others are done. */
		via = r ? hub_link_get(r->via) : NULL;
		if (r && (rec.op == LK_LISTING || rec.result != LK_GRANTED))
			route_free(route_take(rec.id));
		pthread_mutex_unlock(&lk.lock);
		if (via) {
			send_rec(via, rec.op, rec.id, 0, rec.result, body, rec.len);
			hub_link_put(via);
		} else if (rec.op == LK_ANSWER && rec.result == LK_GRANTED) {
			/* Granted to a request given up since: let it go. */
			send_rec(NULL, LK_REL, rec.id, 0, 0, NULL, 0);
		}
		return;
	}
}

void locks_on_link_gone(struct link *l)
{
	struct answer out[MAX_ANSWERS];
	struct lk_route **pp, *r, *gone = NULL;
	size_t k = 0;

	bool orphaned = hub_link_is_up(l);

	pthread_mutex_lock(&lk.lock);
	if (hub_is_root())
		manager_drop(match_via, l, out, &k);
	for (pp = &lk.routes; (r = *pp);) {
		if (r->via == l) {
			*pp = r->next;
			r->next = gone;
			gone = r;
			continue;
		}
		/* Without our parent nobody answers us any more. */
		if (!r->via && orphaned && !atomic_load(&r->state))
			route_answer(r, LK_FAILED);
		pp = &r->next;
	}
	pthread_mutex_unlock(&lk.lock);
	send_answers(out, k);
	while ((r = gone)) {
		gone = r->next;
		/* Whatever it held or waited for goes with it. */
		send_rec(NULL, LK_REL, r->id, 0, 0, NULL, 0);
		route_free(r);
	}
}

/* ---- the Python side -------------------------------------------------- */

static uint64_t new_id(void)
{
	uint64_t id;

	pthread_mutex_lock(&lk.lock);
	id = (uint64_t)port_pid() << 32 | ++lk.next_id;
	pthread_mutex_unlock(&lk.lock);
	return id;
}

/* Register our request @id, then send it on (or hand it to the manager). */
static int ask(uint64_t id, int64_t interp, int op, unsigned int flags, const char *name,
	       size_t len)
{
	struct lk_route *r;
	int ret = 0;

	pthread_mutex_lock(&lk.lock);
	r = route_add(id, NULL);
	if (r)
		r->interp = interp;
	pthread_mutex_unlock(&lk.lock);
	if (!r)
		return -ENOMEM;
	if (!hub_is_root()) {
		ret = send_rec(NULL, op, id, flags, 0, name, op == LK_REQ ? len : 0);
	} else if (op == LK_REQ) {
		manager_request(id, NULL, name, len, flags);
	} else {
		pthread_mutex_lock(&lk.lock);
		r->listing = manager_listing(&r->listlen);
		route_answer(r, r->listing ? LK_LISTED : LK_FAILED);
		pthread_mutex_unlock(&lk.lock);
	}
	if (ret < 0) {
		pthread_mutex_lock(&lk.lock);
		route_free(route_take(id));
		pthread_mutex_unlock(&lk.lock);
	}
	return ret;
}

/* _lock_request(name, shared, if_available, steal) -> id */
static PyObject *mod_lock_request(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	int shared, if_avail, steal, ret;
	Py_ssize_t len;
	const char *name;
	int64_t interp;
	uint64_t id;

	if (!PyArg_ParseTuple(args, "s#ppp:_lock_request", &name, &len, &shared, &if_avail,
			      &steal))
		return NULL;
	if (len > UINT16_MAX)
		return PyErr_Format(PyExc_ValueError, "lock name is too long (%zd bytes)", len);
	id = new_id();
	interp = PyInterpreterState_GetID(PyInterpreterState_Get());
	Py_BEGIN_ALLOW_THREADS
	ret = ask(id, interp, LK_REQ, (shared ? LKF_SHARED : 0) | (if_avail ? LKF_IF_AVAIL : 0) |
		  (steal ? LKF_STEAL : 0), name, (size_t)len);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return pymod_raise_from_errno(st, ret, "locks.request");
	return PyLong_FromUnsignedLongLong(id);
}

/*
 * Wait for the answer to our request @id for @timeout seconds (< 0: no
 * limit): LK_* (LK_WAITING when the time ran out), or -1 + exception.
 * Without the GIL, in slices, so that signals and terminate() are seen.
 * The request's route stays until _lock_done(): its word may be slept on.
 */
static int wait_answer(pymod_state *st, uint64_t id, double timeout)
{
	double deadline = timeout < 0 ? -1 : mono_now() + timeout, left;
	struct lk_route *r;
	struct timespec ts;
	unsigned int state;

	for (;;) {
		pthread_mutex_lock(&lk.lock);
		r = route_find(id);
		state = r ? atomic_load(&r->state) : LK_FAILED;
		pthread_mutex_unlock(&lk.lock);
		if (state != LK_WAITING)
			return (int)state;
		left = deadline < 0 ? 0.05 : deadline - mono_now();
		if (left <= 0)
			return LK_WAITING;
		if (left > 0.05)
			left = 0.05;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		Py_BEGIN_ALLOW_THREADS
		syscall(SYS_futex, &r->state, FUTEX_WAIT_PRIVATE, LK_WAITING, &ts, NULL, 0);
		Py_END_ALLOW_THREADS
		if (PyErr_CheckSignals() < 0 || worker_check_terminated(st) < 0)
			return -1;
	}
}

/* _lock_wait(id, timeout) -> LK_* */
static PyObject *mod_lock_wait(PyObject *mod, PyObject *args)
{
	unsigned long long id;
	double timeout;
	int state;

	if (!PyArg_ParseTuple(args, "Kd:_lock_wait", &id, &timeout))
		return NULL;
	state = wait_answer(get_state(mod), id, timeout);
	return state < 0 ? NULL : PyLong_FromLong(state);
}

/* _lock_fd(id) -> an fd that reads ready once the request is answered */
static PyObject *mod_lock_fd(PyObject *mod, PyObject *id_obj)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
	struct lk_route *r;
	uint64_t one = 1;
	int fd = -1;

	if (PyErr_Occurred())
		return NULL;
	pthread_mutex_lock(&lk.lock);
	r = route_find(id);
	if (r && r->efd < 0) {
		r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->efd >= 0 && atomic_load(&r->state) && write(r->efd, &one, sizeof(one)) < 0)
			one = 0;
	}
	if (r)
		fd = r->efd;
	pthread_mutex_unlock(&lk.lock);
	if (fd < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	return PyLong_FromLong(fd);
}

/* _lock_done(id): release the lock, or give the request up. */
static PyObject *mod_lock_done(PyObject *mod, PyObject *id_obj)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
	struct lk_route *r;

	if (PyErr_Occurred())
		return NULL;
	pthread_mutex_lock(&lk.lock);
	r = route_take(id);
	pthread_mutex_unlock(&lk.lock);
	if (!r)
		Py_RETURN_NONE;
	Py_BEGIN_ALLOW_THREADS
	if (hub_is_root())
		manager_release(id);
	else
		send_rec(NULL, LK_REL, id, 0, 0, NULL, 0);
	route_free(r);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

/* _lock_query(timeout) -> [(held, shared, name), ...] program-wide */
static PyObject *mod_lock_query(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *res = NULL, *item;
	struct lk_route *r;
	struct lk_entry e;
	uint64_t id = new_id();
	size_t at;
	double timeout;
	int ret;

	if (!PyArg_ParseTuple(args, "d:_lock_query", &timeout))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = ask(id, -1, LK_QUERY, 0, NULL, 0);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return pymod_raise_from_errno(st, ret, "locks.query");
	ret = wait_answer(st, id, timeout);
	if (ret < 0)
		goto out_done;
	if (ret != LK_LISTED) {
		PyErr_SetString(PyExc_TimeoutError, "locks.query() got no answer");
		goto out_done;
	}
	res = PyList_New(0);
	pthread_mutex_lock(&lk.lock);
	r = route_find(id);
	for (at = 0; res && r && r->listing && at + sizeof(e) <= r->listlen;) {
		memcpy(&e, r->listing + at, sizeof(e));
		at += sizeof(e);
		if (e.namelen > r->listlen - at)
			break;
		item = Py_BuildValue("(OOs#)", e.held ? Py_True : Py_False,
				     e.shared ? Py_True : Py_False,
				     (const char *)r->listing + at, (Py_ssize_t)e.namelen);
		at += e.namelen;
		if (!item || PyList_Append(res, item) < 0) {
			Py_XDECREF(item);
			Py_CLEAR(res);
			break;
		}
		Py_DECREF(item);
	}
	pthread_mutex_unlock(&lk.lock);
out_done:
	pthread_mutex_lock(&lk.lock);
	route_free(route_take(id));
	pthread_mutex_unlock(&lk.lock);
	return res;
}

/*
 * An interpreter ends (a worker's, terminated or not): what it held or
 * waited for goes with it, as with a process that ends.
 */
void locks_interp_gone(int64_t interp)
{
	struct lk_route **pp, *r, *gone = NULL;
	bool root = hub_is_root();

	pthread_mutex_lock(&lk.lock);
	for (pp = &lk.routes; (r = *pp);) {
		if (!r->via && r->interp == interp) {
			*pp = r->next;
			r->next = gone;
			gone = r;
		} else {
			pp = &r->next;
		}
	}
	pthread_mutex_unlock(&lk.lock);
	while ((r = gone)) {
		gone = r->next;
		if (root)
			manager_release(r->id);
		else
			send_rec(NULL, LK_REL, r->id, 0, 0, NULL, 0);
		route_free(r);
	}
}

static PyMethodDef locks_methods[] = {
	{ "_lock_request", mod_lock_request, METH_VARARGS, NULL },
	{ "_lock_wait", mod_lock_wait, METH_VARARGS, NULL },
	{ "_lock_fd", mod_lock_fd, METH_O, NULL },
	{ "_lock_done", mod_lock_done, METH_O, NULL },
	{ "_lock_query", mod_lock_query, METH_VARARGS, NULL },
	{ NULL }
};

int locks_init(PyObject *mod)
{
	return PyModule_AddFunctions(mod, locks_methods);
}
