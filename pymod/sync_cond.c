// SPDX-License-Identifier: MIT
/*
 * pyshm_workers._core._CondCore: the shared part of pw.Condition and
 * pw.Barrier (pyshm_workers/_sync.py), which add the lock and threading's
 * logic.
 *
 * Waiters queue in a table of slots, each with its own futex word: wait()
 * claims a slot (with the Condition's lock held), releases the lock and
 * sleeps on the slot while it reads WAITING; notify(n) moves the n oldest
 * WAITING slots (by ticket) to NOTIFIED and wakes each, so it wakes exactly
 * the waiters it counts, as threading's does, and no others. A waiter that
 * times out takes its slot back with a compare-and-swap, which a notify
 * racing with it either wins (the waiter was notified) or loses.
 *
 * A process that dies while it waits leaves its slot behind. Waiters wake
 * every SYNC_REAP_SLICE seconds, and one of them at a time (program-wide)
 * frees the slots of dead processes; a notification such a slot had taken
 * is passed on to the next waiter, so no notify() is lost to a dead
 * process.
 *
 * For Barrier: four shared integers for its state (guarded by its lock),
 * and a table of the parties inside wait() per process, so that parties of
 * a process that died can be counted out.
 */
#include <limits.h>

#include "sync.h"

#define COND_SLOTS	4096
#define COND_MEMBERS	1024
#define COND_WORDS	4

enum { SLOT_EMPTY, SLOT_CLAIMED, SLOT_WAITING, SLOT_NOTIFIED };

struct cond_slot {
	_Atomic uint32_t state;		/* futex: its waiter sleeps while WAITING */
	uint32_t pad;
	_Atomic uint64_t ident;		/* the waiter's process */
	_Atomic uint64_t ticket;	/* notify() wakes the lowest first */
};

struct cond_member {
	_Atomic uint64_t ident;		/* a process with parties inside; 0: free */
	_Atomic int64_t n;
};

struct cond_data {
	struct sync_hdr h;
	_Atomic uint32_t hw;		/* slots in use lie below */
	_Atomic uint32_t waiting;	/* slots CLAIMED or WAITING (never too low) */
	_Atomic uint64_t ticket;
	_Atomic int64_t reap_at;	/* CLOCK_MONOTONIC ns of the next reaping */
	_Atomic uint32_t mhw;		/* members in use lie below */
	uint32_t pad;
	_Atomic int64_t words[COND_WORDS];
	struct cond_member members[COND_MEMBERS];
	struct cond_slot slots[COND_SLOTS];
};

#define FAST(f) (PyCFunction)(void (*)(void))(f)

static inline struct cond_data *cond_data(PyObject *o)
{
	return ((SyncObject *)o)->data;
}

static PyObject *cond_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))
		return PyErr_Format(PyExc_TypeError, "%s() takes no arguments", tp->tp_name);
	return sync_new(tp, sizeof(struct cond_data), SYNC_COND);
}

/* An index argument below @n. */
static int index_arg(PyObject *arg, Py_ssize_t n, Py_ssize_t *out)
{
	*out = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
	if (*out == -1 && PyErr_Occurred())
		return -1;
	if (*out < 0 || *out >= n) {
		PyErr_SetString(PyExc_IndexError, "index out of range");
		return -1;
	}
	return 0;
}

/*
 * Wake up to @n WAITING slots (< 0: all), oldest first; the number woken.
 * Any thread, with or without the GIL.
 */
static long notify_slots(struct cond_data *d, long n)
{
	uint32_t hw = atomic_load(&d->hw), i, best;
	uint64_t lowest, t;
	long woken = 0;
	uint32_t s;

	if (n == 0 || atomic_load(&d->waiting) == 0)
		return 0;
	if (n < 0 || n >= (long)atomic_load(&d->waiting)) {
		for (i = 0; i < hw && (n < 0 || woken < n); i++) {
			struct cond_slot *sl = &d->slots[i];

			s = SLOT_WAITING;
			if (atomic_compare_exchange_strong(&sl->state, &s, SLOT_NOTIFIED)) {
				atomic_fetch_sub(&d->waiting, 1);
				sync_wake(&sl->state, 1);
				woken++;
			}
		}
		return woken;
	}
	while (woken < n) {
		best = UINT32_MAX;
		lowest = UINT64_MAX;
		for (i = 0; i < hw; i++) {
			if (atomic_load(&d->slots[i].state) != SLOT_WAITING)
				continue;
			t = atomic_load(&d->slots[i].ticket);
			if (t < lowest) {
				lowest = t;
				best = i;
			}
		}
		if (best == UINT32_MAX)
			break;
		s = SLOT_WAITING;
		if (atomic_compare_exchange_strong(&d->slots[best].state, &s, SLOT_NOTIFIED)) {
			atomic_fetch_sub(&d->waiting, 1);
			sync_wake(&d->slots[best].state, 1);
			woken++;
		}
	}
	return woken;
}

/*
 * Free the slots of waiters whose process died, passing on what
 * notifications they had taken. Without the GIL (it asks the kernel about
 * each other process that waits).
 */
static void reap_slots(struct cond_data *d)
{
	uint32_t hw = atomic_load(&d->hw), i, s;
	uint64_t me = sync_self(), id, dead = 0, alive = 0;
	long pass = 0;

	for (i = 0; i < hw; i++) {
		struct cond_slot *sl = &d->slots[i];

		s = atomic_load(&sl->state);
		if (s != SLOT_WAITING && s != SLOT_NOTIFIED)
			continue;
		id = atomic_load(&sl->ident);
		if (id == me || id == alive)
			continue;
		if (id != dead) {
			if (sync_alive(id)) {
				alive = id;
				continue;
			}
			dead = id;
		}
		if (atomic_compare_exchange_strong(&sl->state, &s, SLOT_EMPTY)) {
			if (s == SLOT_WAITING)
				atomic_fetch_sub(&d->waiting, 1);
			else
				pass++;
		}
	}
	if (pass)
		notify_slots(d, pass);
}

/* Whether it is this waiter's turn to reap (once per slice, program-wide). */
static bool reap_turn(struct cond_data *d)
{
	int64_t now = (int64_t)(mono_now() * 1e9), at = atomic_load(&d->reap_at);

	if (now < at)
		return false;
	return atomic_compare_exchange_strong(&d->reap_at, &at,
					      now + (int64_t)(SYNC_REAP_SLICE * 1e9));
}

/* Give a slot up: a notification it holds goes to the next waiter. */
static void leave_slot(struct cond_data *d, struct cond_slot *sl)
{
	uint32_t s = SLOT_WAITING;

	if (atomic_compare_exchange_strong(&sl->state, &s, SLOT_EMPTY)) {
		atomic_fetch_sub(&d->waiting, 1);
		return;
	}
	if (s == SLOT_NOTIFIED &&
	    atomic_compare_exchange_strong(&sl->state, &s, SLOT_EMPTY))
		notify_slots(d, 1);
}

/* _enqueue() -> slot: join the waiters (with the lock held). */
static PyObject *cond_enqueue(PyObject *self, PyObject *unused)
{
	struct cond_data *d = cond_data(self);
	uint32_t hw, i, s;
	struct cond_slot *sl;

	atomic_fetch_add(&d->waiting, 1);
	for (;;) {
		hw = atomic_load(&d->hw);
		for (i = 0; i < hw; i++) {
			s = SLOT_EMPTY;
			if (atomic_load(&d->slots[i].state) == SLOT_EMPTY &&
			    atomic_compare_exchange_strong(&d->slots[i].state, &s, SLOT_CLAIMED))
				goto claimed;
		}
		if (hw >= COND_SLOTS) {
			atomic_fetch_sub(&d->waiting, 1);
			return PyErr_Format(PyExc_RuntimeError,
					    "more than %d threads wait on this Condition",
					    COND_SLOTS);
		}
		if (atomic_compare_exchange_strong(&d->hw, &hw, hw + 1)) {
			i = hw;
			s = SLOT_EMPTY;
			if (atomic_compare_exchange_strong(&d->slots[i].state, &s, SLOT_CLAIMED))
				goto claimed;
		}
	}
claimed:
	sl = &d->slots[i];
	atomic_store(&sl->ident, sync_self());
	atomic_store(&sl->ticket, atomic_fetch_add(&d->ticket, 1));
	/* C1: the slot's fields are visible before it reads WAITING; a
	 * notify() under the lock after our release of it sees it. */
	atomic_store(&sl->state, SLOT_WAITING);
	return PyLong_FromUnsignedLong(i);
}

static struct cond_slot *slot_arg(struct cond_data *d, PyObject *arg)
{
	Py_ssize_t i;

	if (index_arg(arg, COND_SLOTS, &i) < 0)
		return NULL;
	return &d->slots[i];
}

/* _cancel(slot): leave the waiters without having waited. */
static PyObject *cond_cancel(PyObject *self, PyObject *arg)
{
	struct cond_data *d = cond_data(self);
	struct cond_slot *sl = slot_arg(d, arg);

	if (!sl)
		return NULL;
	leave_slot(d, sl);
	Py_RETURN_NONE;
}

/* _sleep(slot, timeout=None) -> notified: the wait, lock released. */
static PyObject *cond_sleep(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct cond_data *d = cond_data(self);
	struct cond_slot *sl;
	struct sync_wait w;
	double secs, until;
	uint32_t s;
	int ret;

	if (nargs < 1 || nargs > 2)
		return PyErr_Format(PyExc_TypeError, "_sleep() takes 1 or 2 arguments");
	sl = slot_arg(d, args[0]);
	if (!sl)
		return NULL;
	if (sync_timeout_arg(nargs > 1 ? args[1] : NULL, &secs) < 0 ||
	    sync_wait_init(&w, self, secs, true) < 0) {
		leave_slot(d, sl);
		return NULL;
	}
	until = mono_now() + SYNC_REAP_SLICE;
	for (;;) {
		s = atomic_load(&sl->state);
		if (s == SLOT_NOTIFIED) {
			if (atomic_compare_exchange_strong(&sl->state, &s, SLOT_EMPTY))
				Py_RETURN_TRUE;
			continue;
		}
		if (s != SLOT_WAITING)
			Py_RETURN_FALSE;	/* not ours any more */
		if (sync_expired(&w)) {
			if (atomic_compare_exchange_strong(&sl->state, &s, SLOT_EMPTY)) {
				atomic_fetch_sub(&d->waiting, 1);
				Py_RETURN_FALSE;
			}
			continue;		/* notified meanwhile */
		}
		ret = sync_sleep(&w, &sl->state, SLOT_WAITING, until);
		if (ret < 0) {
			leave_slot(d, sl);
			return NULL;
		}
		if (ret == 0 && mono_now() >= until) {
			until = mono_now() + SYNC_REAP_SLICE;
			if (reap_turn(d)) {
				Py_BEGIN_ALLOW_THREADS
				reap_slots(d);
				Py_END_ALLOW_THREADS
			}
		}
	}
}

/* _notify(n) -> woken: n < 0 wakes all. */
static PyObject *cond_notify(PyObject *self, PyObject *arg)
{
	long n = PyLong_AsLong(arg);

	if (n == -1 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError))
			return NULL;
		PyErr_Clear();
		n = -1;
	}
	return PyLong_FromLong(notify_slots(cond_data(self), n));
}

static PyObject *cond_get_waiting(PyObject *self, void *c)
{
	return PyLong_FromUnsignedLong(atomic_load(&cond_data(self)->waiting));
}

/* _get(i) and _set(i, v): the shared integers. */
static PyObject *cond_get(PyObject *self, PyObject *arg)
{
	Py_ssize_t i;

	if (index_arg(arg, COND_WORDS, &i) < 0)
		return NULL;
	return PyLong_FromLongLong(atomic_load(&cond_data(self)->words[i]));
}

static PyObject *cond_set(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	long long v;
	Py_ssize_t i;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "_set() takes 2 arguments");
	if (index_arg(args[0], COND_WORDS, &i) < 0)
		return NULL;
	v = PyLong_AsLongLong(args[1]);
	if (v == -1 && PyErr_Occurred())
		return NULL;
	atomic_store(&cond_data(self)->words[i], v);
	Py_RETURN_NONE;
}

/* ---- Barrier's parties, per process --------------------------------------- */

static struct cond_member *member_of(struct cond_data *d, uint64_t id)
{
	uint32_t i, n = atomic_load(&d->mhw);

	for (i = 0; i < n; i++)
		if (atomic_load(&d->members[i].ident) == id)
			return &d->members[i];
	return NULL;
}

/* _join(): one more party of this process inside (lock held). */
static PyObject *cond_join(PyObject *self, PyObject *unused)
{
	struct cond_data *d = cond_data(self);
	uint64_t me = sync_self(), zero;
	struct cond_member *m = member_of(d, me);
	uint32_t i, n;

	if (m) {
		atomic_fetch_add(&m->n, 1);
		Py_RETURN_NONE;
	}
	for (;;) {
		n = atomic_load(&d->mhw);
		for (i = 0; i < n; i++) {
			zero = 0;
			if (atomic_compare_exchange_strong(&d->members[i].ident, &zero, me))
				goto found;
		}
		if (n >= COND_MEMBERS)
			return PyErr_Format(PyExc_RuntimeError,
					    "parties of more than %d processes in this Barrier",
					    COND_MEMBERS);
		atomic_compare_exchange_strong(&d->mhw, &n, n + 1);
	}
found:
	atomic_store(&d->members[i].n, 1);
	Py_RETURN_NONE;
}

/* _leave(): one party of this process less. */
static PyObject *cond_leave(PyObject *self, PyObject *unused)
{
	struct cond_data *d = cond_data(self);
	struct cond_member *m = member_of(d, sync_self());

	if (m && atomic_fetch_sub(&m->n, 1) <= 1) {
		atomic_store(&m->n, 0);
		atomic_store(&m->ident, 0);
	}
	Py_RETURN_NONE;
}

/* _count(): parties inside, all processes. */
static PyObject *cond_count(PyObject *self, PyObject *unused)
{
	struct cond_data *d = cond_data(self);
	uint32_t i, n = atomic_load(&d->mhw);
	int64_t sum = 0;

	for (i = 0; i < n; i++)
		if (atomic_load(&d->members[i].ident))
			sum += atomic_load(&d->members[i].n);
	return PyLong_FromLongLong(sum);
}

/*
 * _reap_members(quick=False) -> parties of dead processes, now counted out.
 * quick: only processes whose pid is gone (one kill(pid, 0) each, cheap
 * enough for every trip of the barrier); else sync_alive().
 */
static PyObject *cond_reap_members(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct cond_data *d = cond_data(self);
	uint32_t i, n = atomic_load(&d->mhw);
	uint64_t me = sync_self(), id;
	int64_t gone = 0;
	int quick = nargs ? PyObject_IsTrue(args[0]) : 0;

	if (quick < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	for (i = 0; i < n; i++) {
		struct cond_member *m = &d->members[i];

		id = atomic_load(&m->ident);
		if (!id || id == me)
			continue;
		if (quick ? !sync_gone(id) : sync_alive(id))
			continue;
		gone += atomic_exchange(&m->n, 0);
		atomic_store(&m->ident, 0);
	}
	Py_END_ALLOW_THREADS
	return PyLong_FromLongLong(gone);
}

static PyMethodDef cond_methods[] = {
	{ "_enqueue", cond_enqueue, METH_NOARGS, NULL },
	{ "_cancel", cond_cancel, METH_O, NULL },
	{ "_sleep", FAST(cond_sleep), METH_FASTCALL, NULL },
	{ "_notify", cond_notify, METH_O, NULL },
	{ "_get", cond_get, METH_O, NULL },
	{ "_set", FAST(cond_set), METH_FASTCALL, NULL },
	{ "_join", cond_join, METH_NOARGS, NULL },
	{ "_leave", cond_leave, METH_NOARGS, NULL },
	{ "_count", cond_count, METH_NOARGS, NULL },
	{ "_reap_members", FAST(cond_reap_members), METH_FASTCALL, NULL },
	{ "__reduce__", sync_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef cond_getset[] = {
	{ "_waiting", cond_get_waiting, NULL, NULL, NULL },
	{ NULL }
};

static PyType_Slot cond_slots[] = {
	{ Py_tp_doc, "The shared waiter queue of a Condition or Barrier (plumbing)." },
	{ Py_tp_new, cond_new },
	{ Py_tp_dealloc, sync_dealloc },
	{ Py_tp_methods, cond_methods },
	{ Py_tp_getset, cond_getset },
	{ Py_tp_members, sync_members },
	{ 0, NULL }
};

static PyType_Spec cond_spec = {
	.name = "pyshm_workers._core._CondCore",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = cond_slots,
};

static PyObject *cond_from_payload(PyTypeObject *tp, struct pyshm_payload *p)
{
	return sync_from_payload(tp, p, sizeof(struct cond_data), SYNC_COND);
}

static const struct pyshm_clone_ops cond_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = sync_get_payload,
	.from_payload = cond_from_payload,
};

int sync_cond_init(PyObject *mod)
{
	PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &cond_spec, NULL);
	int ret;

	if (!tp)
		return -1;
	ret = sync_register(mod, tp, &cond_ops);
	Py_DECREF(tp);
	return ret;
}
