// SPDX-License-Identifier: MIT
/*
 * pw.Semaphore, pw.BoundedSemaphore and pw.Event: threading's in shared
 * memory, lock-free. A semaphore is a 64-bit count taken and given with
 * atomic operations; sleepers count themselves and sleep on a sequence word
 * that release() bumps before it wakes them, so no wake-up is lost. An
 * event is one futex word: bit 0 set, the rest a generation that set()
 * advances, so a waiter returns True once a set() happened since it began
 * waiting, even if clear() came right after (as threading's does).
 *
 * Nothing here is held by a process: one that dies inside acquire() or
 * wait() leaves nothing behind. A semaphore's count has no owner (any
 * thread or process may release it, as in threading), so what a dead
 * process acquired is not given back: pass a timeout where that matters.
 */
#include <limits.h>

#include "sync.h"

struct sem_data {
	struct sync_hdr h;
	_Atomic int64_t value;
	int64_t bound;			/* BoundedSemaphore: the initial value; -1 */
	_Atomic uint32_t seq;		/* futex: bumped by release() before a wake */
	_Atomic uint32_t sleepers;
};

struct event_data {
	struct sync_hdr h;
	_Atomic uint32_t word;		/* futex: bit 0 set; the generation above */
	_Atomic uint32_t sleepers;
};

#define FAST(f) (PyCFunction)(void (*)(void))(f)

static inline struct sem_data *sem_data(PyObject *o)
{
	return ((SyncObject *)o)->data;
}

static inline struct event_data *event_data(PyObject *o)
{
	return ((SyncObject *)o)->data;
}

/* ---- Semaphore ------------------------------------------------------------ */

/* An int argument as a long long; a negative too large for one gives -1. */
static int count_arg(PyObject *obj, long long *out)
{
	PyObject *i = PyNumber_Index(obj), *zero;
	int neg;

	if (!i)
		return -1;
	*out = PyLong_AsLongLong(i);
	if (*out == -1 && PyErr_Occurred()) {
		zero = PyLong_FromLong(0);
		neg = zero ? PyObject_RichCompareBool(i, zero, Py_LT) : -1;
		Py_XDECREF(zero);
		if (neg == 1 && PyErr_ExceptionMatches(PyExc_OverflowError)) {
			PyErr_Clear();
			*out = -1;
		}
	}
	Py_DECREF(i);
	return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *sem_new_bounded(PyTypeObject *tp, PyObject *args, PyObject *kwds,
				 bool bounded)
{
	static char *kwlist[] = { "value", NULL };
	PyObject *vobj = NULL, *obj;
	long long v = 1;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O", kwlist, &vobj))
		return NULL;
	if (vobj && count_arg(vobj, &v) < 0)
		return NULL;
	if (v < 0) {
		PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
		return NULL;
	}
	obj = sync_new(tp, sizeof(struct sem_data), SYNC_SEMAPHORE);
	if (obj) {
		atomic_store(&sem_data(obj)->value, v);
		sem_data(obj)->bound = bounded ? v : -1;
	}
	return obj;
}

static PyObject *sem_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	return sem_new_bounded(tp, args, kwds, false);
}

static PyObject *bsem_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	return sem_new_bounded(tp, args, kwds, true);
}

static bool sem_try(struct sem_data *d)
{
	int64_t v = atomic_load(&d->value);

	while (v > 0)
		if (atomic_compare_exchange_weak(&d->value, &v, v - 1))
			return true;
	return false;
}

static PyObject *sem_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames)
{
	static const char *const names[] = { "blocking", "timeout", NULL };
	struct sem_data *d = sem_data(self);
	PyObject *a[2] = { NULL, NULL };
	struct sync_wait w;
	int blocking = 1, ret;
	uint32_t seq;
	double secs;

	if ((nargs || kwnames) && sync_parse("acquire", args, nargs, kwnames, names, a) < 0)
		return NULL;
	if (a[0] && (blocking = PyObject_IsTrue(a[0])) < 0)
		return NULL;
	if (!blocking && a[1] && a[1] != Py_None) {
		PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
		return NULL;
	}
	if (blocking && sync_timeout_arg(a[1], &secs) < 0)
		return NULL;
	if (sem_try(d))
		Py_RETURN_TRUE;
	if (!blocking)
		Py_RETURN_FALSE;
	if (sync_wait_init(&w, self, secs, true) < 0)
		return NULL;
	for (;;) {
		ret = 0;
		if (sync_expired(&w))
			Py_RETURN_FALSE;
		/* S1: counted before the value is read again; pairs with S2. */
		atomic_fetch_add(&d->sleepers, 1);
		seq = atomic_load(&d->seq);
		if (atomic_load(&d->value) > 0) {
			atomic_fetch_sub(&d->sleepers, 1);
		} else {
			ret = sync_sleep(&w, &d->seq, seq, -1);
			atomic_fetch_sub(&d->sleepers, 1);
			if (ret < 0)
				return NULL;
		}
		if (sem_try(d))
			Py_RETURN_TRUE;
		if (ret == 1)
			Py_RETURN_FALSE;
	}
}

static PyObject *sem_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames)
{
	static const char *const names[] = { "n", NULL };
	struct sem_data *d = sem_data(self);
	PyObject *a[1] = { NULL };
	long long n = 1;
	int64_t v;

	if ((nargs || kwnames) && sync_parse("release", args, nargs, kwnames, names, a) < 0)
		return NULL;
	if (a[0] && count_arg(a[0], &n) < 0)
		return NULL;
	if (n < 1) {
		PyErr_SetString(PyExc_ValueError, "n must be one or more");
		return NULL;
	}
	v = atomic_load(&d->value);
	do {
		if (d->bound >= 0 && (n > d->bound || v > d->bound - n)) {
			PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
			return NULL;
		}
		if (v > INT64_MAX - n) {
			PyErr_SetString(PyExc_OverflowError, "semaphore value too large");
			return NULL;
		}
	} while (!atomic_compare_exchange_weak(&d->value, &v, v + n));
	/* S2: the value is up before the sleepers are read (S1's partner). */
	if (atomic_load(&d->sleepers)) {
		atomic_fetch_add(&d->seq, 1);
		sync_wake(&d->seq, n > INT_MAX ? INT_MAX : (int)n);
	}
	Py_RETURN_NONE;
}

static PyObject *sem_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	return sem_release(self, NULL, 0, NULL);
}

static PyObject *sem_get_value(PyObject *self, void *c)
{
	return PyLong_FromLongLong(atomic_load(&sem_data(self)->value));
}

static PyObject *sem_repr(PyObject *self)
{
	struct sem_data *d = sem_data(self);
	PyTypeObject *tp = Py_TYPE(self);

	if (d->bound >= 0)
		return PyUnicode_FromFormat("<%s at %p: value=%lld/%lld>", tp->tp_name, self,
					    (long long)atomic_load(&d->value), (long long)d->bound);
	return PyUnicode_FromFormat("<%s at %p: value=%lld>", tp->tp_name, self,
				    (long long)atomic_load(&d->value));
}

static PyMethodDef sem_methods[] = {
	{ "acquire", FAST(sem_acquire), METH_FASTCALL | METH_KEYWORDS,
	  "acquire($self, /, blocking=True, timeout=None)\n--\n\n"
	  "Take one from the count, waiting while it is 0 (at most timeout\n"
	  "seconds, unless blocking is false); True when taken, False if not.\n"
	  "The GIL is released while it waits." },
	{ "release", FAST(sem_release), METH_FASTCALL | METH_KEYWORDS,
	  "release($self, /, n=1)\n--\n\n"
	  "Add n to the count, waking up to n waiters. A BoundedSemaphore\n"
	  "raises ValueError rather than go past its initial value." },
	{ "__enter__", FAST(sem_acquire), METH_FASTCALL | METH_KEYWORDS,
	  "__enter__($self, /, blocking=True, timeout=None)\n--\n\nacquire()." },
	{ "__exit__", FAST(sem_exit), METH_FASTCALL,
	  "__exit__($self, /, *args)\n--\n\nrelease()." },
	{ "__reduce__", sync_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef sem_getset[] = {
	{ "_value", sem_get_value, NULL, NULL, NULL },
	{ NULL }
};

/* ---- Event ---------------------------------------------------------------- */

static PyObject *event_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))
		return PyErr_Format(PyExc_TypeError, "%s() takes no arguments", tp->tp_name);
	return sync_new(tp, sizeof(struct event_data), SYNC_EVENT);
}

static PyObject *event_is_set(PyObject *self, PyObject *unused)
{
	return PyBool_FromLong(atomic_load(&event_data(self)->word) & 1);
}

static PyObject *event_isset(PyObject *self, PyObject *unused)
{
	if (PyErr_WarnEx(PyExc_DeprecationWarning,
			 "isSet() is deprecated, use is_set() instead", 1) < 0)
		return NULL;
	return event_is_set(self, NULL);
}

static PyObject *event_set(PyObject *self, PyObject *unused)
{
	struct event_data *d = event_data(self);
	uint32_t w = atomic_load(&d->word);

	/* A new generation, set: wakes every sleeper of the last one. */
	while (!(w & 1))
		if (atomic_compare_exchange_weak(&d->word, &w, (w + 2) | 1)) {
			/* E1: the word moved before the sleepers are read;
			 * pairs with E2. */
			if (atomic_load(&d->sleepers))
				sync_wake(&d->word, INT_MAX);
			break;
		}
	Py_RETURN_NONE;
}

static PyObject *event_clear(PyObject *self, PyObject *unused)
{
	atomic_fetch_and(&event_data(self)->word, ~1u);
	Py_RETURN_NONE;
}

static PyObject *event_wait(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	static const char *const names[] = { "timeout", NULL };
	struct event_data *d = event_data(self);
	PyObject *a[1] = { NULL };
	uint32_t start = atomic_load(&d->word), now;
	struct sync_wait w;
	double secs;
	int ret;

	if ((nargs || kwnames) && sync_parse("wait", args, nargs, kwnames, names, a) < 0)
		return NULL;
	if (sync_timeout_arg(a[0], &secs) < 0)
		return NULL;
	if (start & 1)
		Py_RETURN_TRUE;
	if (secs == 0 || sync_wait_init(&w, self, secs, true) < 0)
		return secs == 0 ? Py_NewRef(Py_False) : NULL;
	/* E2: counted before the word is read again (E1's partner). */
	atomic_fetch_add(&d->sleepers, 1);
	for (;;) {
		now = atomic_load(&d->word);
		/* Set now, or set (and maybe cleared) since we began. */
		if ((now & 1) || (now >> 1) != (start >> 1)) {
			ret = 0;
			break;
		}
		ret = sync_sleep(&w, &d->word, now, -1);
		if (ret != 0)
			break;
	}
	atomic_fetch_sub(&d->sleepers, 1);
	if (ret < 0)
		return NULL;
	return PyBool_FromLong(ret == 0);
}

static PyObject *event_get_sleepers(PyObject *self, void *c)
{
	return PyLong_FromUnsignedLong(atomic_load(&event_data(self)->sleepers));
}

static PyObject *event_repr(PyObject *self)
{
	return PyUnicode_FromFormat("<%s at %p: %s>", Py_TYPE(self)->tp_name, self,
				    atomic_load(&event_data(self)->word) & 1 ? "set" : "unset");
}

static PyMethodDef event_methods[] = {
	{ "is_set", event_is_set, METH_NOARGS,
	  "is_set($self, /)\n--\n\nTrue while the flag is set." },
	{ "isSet", event_isset, METH_NOARGS,
	  "isSet($self, /)\n--\n\nDeprecated: is_set()." },
	{ "set", event_set, METH_NOARGS,
	  "set($self, /)\n--\n\nSet the flag, waking every waiter (in every process)." },
	{ "clear", event_clear, METH_NOARGS,
	  "clear($self, /)\n--\n\nReset the flag: wait() blocks again." },
	{ "wait", FAST(event_wait), METH_FASTCALL | METH_KEYWORDS,
	  "wait($self, /, timeout=None)\n--\n\n"
	  "Block until the flag is set or timeout seconds pass; True unless\n"
	  "it timed out. The GIL is released while it waits." },
	{ "__reduce__", sync_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef event_getset[] = {
	{ "_sleepers", event_get_sleepers, NULL, NULL, NULL },	/* for tests */
	{ NULL }
};

/* ---- types ------------------------------------------------------------------ */

static PyType_Slot sem_slots[] = {
	{ Py_tp_doc, "Semaphore(value=1)\n--\n\n"
		     "threading.Semaphore in shared memory: a count that acquire()\n"
		     "takes from (waiting at 0) and release() adds to. Shared when\n"
		     "posted or passed to a worker." },
	{ Py_tp_new, sem_new },
	{ Py_tp_dealloc, sync_dealloc },
	{ Py_tp_repr, sem_repr },
	{ Py_tp_methods, sem_methods },
	{ Py_tp_getset, sem_getset },
	{ Py_tp_members, sync_members },
	{ 0, NULL }
};

static PyType_Slot bsem_slots[] = {
	{ Py_tp_doc, "BoundedSemaphore(value=1)\n--\n\n"
		     "A Semaphore whose release() raises ValueError rather than raise\n"
		     "the count past its initial value." },
	{ Py_tp_new, bsem_new },
	{ 0, NULL }
};

static PyType_Slot event_slots[] = {
	{ Py_tp_doc, "Event()\n--\n\n"
		     "threading.Event in shared memory: a flag that set() raises,\n"
		     "clear() lowers and wait() waits for. Shared when posted." },
	{ Py_tp_new, event_new },
	{ Py_tp_dealloc, sync_dealloc },
	{ Py_tp_repr, event_repr },
	{ Py_tp_methods, event_methods },
	{ Py_tp_getset, event_getset },
	{ Py_tp_members, sync_members },
	{ 0, NULL }
};

static PyType_Spec sem_spec = {
	.name = "pyshm_workers.Semaphore",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
	.slots = sem_slots,
};

static PyType_Spec bsem_spec = {
	.name = "pyshm_workers.BoundedSemaphore",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
	.slots = bsem_slots,
};

static PyType_Spec event_spec = {
	.name = "pyshm_workers.Event",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
	.slots = event_slots,
};

static PyObject *sem_from_payload(PyTypeObject *tp, struct pyshm_payload *p)
{
	return sync_from_payload(tp, p, sizeof(struct sem_data), SYNC_SEMAPHORE);
}

static PyObject *event_from_payload(PyTypeObject *tp, struct pyshm_payload *p)
{
	return sync_from_payload(tp, p, sizeof(struct event_data), SYNC_EVENT);
}

static const struct pyshm_clone_ops sem_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = sync_get_payload,
	.from_payload = sem_from_payload,
};

static const struct pyshm_clone_ops event_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = sync_get_payload,
	.from_payload = event_from_payload,
};

int sync_sem_init(PyObject *mod)
{
	PyTypeObject *sem, *tp;
	int ret;

	sem = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &sem_spec, NULL);
	if (!sem)
		return -1;
	ret = sync_register(mod, sem, &sem_ops);
	tp = ret < 0 ? NULL : (PyTypeObject *)PyType_FromModuleAndSpec(mod, &bsem_spec,
									(PyObject *)sem);
	Py_DECREF(sem);
	if (!tp)
		return -1;
	ret = sync_register(mod, tp, &sem_ops);
	Py_DECREF(tp);
	if (ret < 0)
		return -1;
	tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &event_spec, NULL);
	if (!tp)
		return -1;
	ret = sync_register(mod, tp, &event_ops);
	Py_DECREF(tp);
	return ret;
}
