// SPDX-License-Identifier: MIT
/*
 * pw.Lock and pw.RLock: threading's locks in shared memory, robust against
 * the death of the process that holds them.
 *
 * The lock word (64 bits) is 0 when free, else the holder's process
 * identity (sync_self(): start time << 32 | pid) with LOCK_WAITERS set once
 * someone sleeps on it. Taking and giving back are one atomic operation on
 * the word, so the holder is always known: a waiter sleeps on the word's
 * low half (a futex), and wakes in slices (SYNC_SLICE_MIN doubling up to
 * SYNC_SLICE_MAX) to ask whether that process still runs. When it does not,
 * the waiter swaps its own identity in for the dead one's and its acquire()
 * raises OwnerDiedError, once, holding the lock. A Lock belongs to a
 * process, not a thread: any thread (of any process) may release it, as
 * threading allows. An RLock also records its owner thread and count; only
 * that thread may release it.
 */
#include <limits.h>

#include "sync.h"

#define LOCK_WAITERS	(1ull << 31)
#define IDENT_OF(w)	((w) & ~LOCK_WAITERS)

struct lock_data {
	struct sync_hdr h;
	_Atomic uint64_t word;		/* holder | LOCK_WAITERS; 0: free */
	/* RLock: the owner thread's kernel tid (0 when free) and its count;
	 * written by the holder only, under the word. */
	_Atomic uint32_t owner;
	uint32_t pad;
	_Atomic uint64_t count;
};

enum { TAKEN, TOOK_OVER, TIMED_OUT, FAILED };

static inline struct lock_data *lock_data(PyObject *o)
{
	return ((SyncObject *)o)->data;
}

/* The futex: the word's low half (pid and LOCK_WAITERS). */
static inline _Atomic uint32_t *word_futex(struct lock_data *d)
{
	return (_Atomic uint32_t *)&d->word;
}

/*
 * How long a contended acquire() looks at the word (without the GIL) before
 * it sleeps: a hand-off between two running processes takes well under
 * this, and is then neither a sleep nor a wake-up (a system call each).
 */
#define LOCK_SPINS	200

static bool lock_spin(struct lock_data *d, uint64_t me)
{
	uint64_t cur;
	int i;

	for (i = 0; i < LOCK_SPINS; i++) {
		cur = atomic_load_explicit(&d->word, memory_order_relaxed);
		if (cur == 0 && atomic_compare_exchange_weak(&d->word, &cur, me))
			return true;
		cpu_relax();
	}
	return false;
}

/* Swap @me in for a dead holder (@cur as read); true when we did. */
static bool take_over(struct lock_data *d, uint64_t *cur, uint64_t me)
{
	if (IDENT_OF(*cur) == me || sync_alive(IDENT_OF(*cur)))
		return false;
	return atomic_compare_exchange_strong(&d->word, cur, me | LOCK_WAITERS);
}

/*
 * Take @d's word for @me, waiting up to @secs (< 0: no limit, 0: not at
 * all). TAKEN; TOOK_OVER from a dead holder, whose identity is in *@dead;
 * TIMED_OUT; FAILED with an exception.
 */
static int lock_take(PyObject *self, struct lock_data *d, uint64_t me, double secs,
		     bool terminable, uint64_t *dead)
{
	double slice = SYNC_SLICE_MIN, check, now;
	struct sync_wait w;
	uint64_t cur = 0;
	int ret;

	/* A1: the CAS that takes the lock acquires what the last holder
	 * wrote before its exchange (A2) gave it back. */
	if (atomic_compare_exchange_strong(&d->word, &cur, me))
		return TAKEN;
	if (secs == 0) {
		if (!take_over(d, &cur, me))
			return TIMED_OUT;
		*dead = IDENT_OF(cur);
		return TOOK_OVER;
	}
	if (sync_wait_init(&w, self, secs, terminable) < 0)
		return FAILED;
	if (secs != 0) {
		bool got;

		Py_BEGIN_ALLOW_THREADS
		got = lock_spin(d, me);
		Py_END_ALLOW_THREADS
		if (got)
			return TAKEN;
	}
	check = mono_now() + slice;
	for (;;) {
		cur = atomic_load(&d->word);
		if (cur == 0) {
			/* Others may sleep still: keep them to be woken. */
			if (atomic_compare_exchange_strong(&d->word, &cur, me | LOCK_WAITERS))
				return TAKEN;
			continue;
		}
		if (!(cur & LOCK_WAITERS)) {
			if (!atomic_compare_exchange_strong(&d->word, &cur, cur | LOCK_WAITERS))
				continue;
			cur |= LOCK_WAITERS;
		}
		now = mono_now();
		if (now >= check) {
			if (take_over(d, &cur, me)) {
				*dead = IDENT_OF(cur);
				return TOOK_OVER;
			}
			slice = slice * 2 > SYNC_SLICE_MAX ? SYNC_SLICE_MAX : slice * 2;
			check = now + slice;
			continue;
		}
		ret = sync_sleep(&w, word_futex(d), (uint32_t)cur, check);
		if (ret < 0)
			return FAILED;
		if (ret == 1) {
			/* Out of time: a last look for a dead holder. */
			cur = atomic_load(&d->word);
			if (cur == 0 && atomic_compare_exchange_strong(&d->word, &cur,
								       me | LOCK_WAITERS))
				return TAKEN;
			if (cur && take_over(d, &cur, me)) {
				*dead = IDENT_OF(cur);
				return TOOK_OVER;
			}
			return TIMED_OUT;
		}
	}
}

/* Give the word back; false when it was free already. */
static bool lock_give(struct lock_data *d)
{
	/* A2: pairs with A1 (and the CASes in lock_take()): what the holder
	 * wrote is visible to the next one. */
	uint64_t old = atomic_exchange(&d->word, 0);

	if (old & LOCK_WAITERS)
		sync_wake(word_futex(d), 1);
	return old != 0;
}

/* ---- Lock ---------------------------------------------------------------- */

static PyObject *lock_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))
		return PyErr_Format(PyExc_TypeError, "%s() takes no arguments", tp->tp_name);
	return sync_new(tp, sizeof(struct lock_data), SYNC_LOCK);
}

/* The result of lock_take() as acquire() returns it. */
static PyObject *taken(PyObject *self, int ret, uint64_t dead)
{
	switch (ret) {
	case TAKEN:
		Py_RETURN_TRUE;
	case TIMED_OUT:
		Py_RETURN_FALSE;
	case TOOK_OVER:
		sync_raise_owner_died(self, dead);
		return NULL;
	default:
		return NULL;
	}
}

static PyObject *lock_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	struct lock_data *d = lock_data(self);
	uint64_t me = sync_self(), cur = 0, dead = 0;
	double secs;
	int ret;

	/* The uncontended case first: no argument parsing to speak of. */
	if (nargs == 0 && !kwnames && atomic_compare_exchange_strong(&d->word, &cur, me))
		Py_RETURN_TRUE;
	if (sync_lock_args(args, nargs, kwnames, &secs) < 0)
		return NULL;
	ret = lock_take(self, d, me, secs, true, &dead);
	return taken(self, ret, dead);
}

static PyObject *lock_release(PyObject *self, PyObject *unused)
{
	if (!lock_give(lock_data(self))) {
		PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *lock_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	return lock_release(self, NULL);
}

static PyObject *lock_locked(PyObject *self, PyObject *unused)
{
	return PyBool_FromLong(atomic_load(&lock_data(self)->word) != 0);
}

/* Condition's hooks: release, and take again ignoring terminate(). */
static PyObject *lock_release_save(PyObject *self, PyObject *unused)
{
	return lock_release(self, NULL);
}

static PyObject *lock_acquire_restore(PyObject *self, PyObject *state)
{
	uint64_t dead = 0;
	int ret = lock_take(self, lock_data(self), sync_self(), -1, false, &dead);

	if (ret == TAKEN)
		Py_RETURN_NONE;
	return taken(self, ret, dead);
}

static PyObject *lock_at_fork_reinit(PyObject *self, PyObject *unused)
{
	/* A fresh lock for this object; the shared one stays as it is. */
	if (sync_renew((SyncObject *)self, sizeof(struct lock_data), SYNC_LOCK) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *lock_repr(PyObject *self)
{
	uint64_t cur = atomic_load(&lock_data(self)->word);

	if (!cur)
		return PyUnicode_FromFormat("<unlocked %s object at %p>", Py_TYPE(self)->tp_name,
					    self);
	return PyUnicode_FromFormat("<locked %s object pid=%u at %p>", Py_TYPE(self)->tp_name,
				    (unsigned int)(cur & SYNC_PID_MASK), self);
}

/* ---- RLock --------------------------------------------------------------- */

static PyObject *rlock_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
	if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))
		return PyErr_Format(PyExc_TypeError, "%s() takes no arguments", tp->tp_name);
	return sync_new(tp, sizeof(struct lock_data), SYNC_RLOCK);
}

static bool rlock_owned(struct lock_data *d)
{
	return IDENT_OF(atomic_load(&d->word)) == sync_self() &&
	       atomic_load_explicit(&d->owner, memory_order_relaxed) == sync_tid();
}

/* Take an RLock's word, then make this thread its owner @count times. */
static PyObject *rlock_take(PyObject *self, double secs, bool terminable, uint64_t count,
			    bool restore)
{
	struct lock_data *d = lock_data(self);
	uint64_t dead = 0;
	int ret = lock_take(self, d, sync_self(), secs, terminable, &dead);

	if (ret == TAKEN || ret == TOOK_OVER) {
		atomic_store_explicit(&d->owner, sync_tid(), memory_order_relaxed);
		atomic_store_explicit(&d->count, count, memory_order_relaxed);
	}
	if (restore && ret == TAKEN)
		Py_RETURN_NONE;
	return taken(self, ret, dead);
}

static PyObject *rlock_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
			       PyObject *kwnames)
{
	struct lock_data *d = lock_data(self);
	double secs;

	if (rlock_owned(d)) {
		uint64_t n = atomic_load_explicit(&d->count, memory_order_relaxed);

		/* Arguments are checked even when they do not matter. */
		if ((nargs || kwnames) && sync_lock_args(args, nargs, kwnames, &secs) < 0)
			return NULL;
		if (n == UINT64_MAX) {
			PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
			return NULL;
		}
		atomic_store_explicit(&d->count, n + 1, memory_order_relaxed);
		Py_RETURN_TRUE;
	}
	if (sync_lock_args(args, nargs, kwnames, &secs) < 0)
		return NULL;
	return rlock_take(self, secs, true, 1, false);
}

static PyObject *rlock_release(PyObject *self, PyObject *unused)
{
	struct lock_data *d = lock_data(self);
	uint64_t n;

	if (!rlock_owned(d) || !(n = atomic_load_explicit(&d->count, memory_order_relaxed))) {
		PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
		return NULL;
	}
	atomic_store_explicit(&d->count, n - 1, memory_order_relaxed);
	if (n == 1) {
		atomic_store_explicit(&d->owner, 0, memory_order_relaxed);
		lock_give(d);
	}
	Py_RETURN_NONE;
}

static PyObject *rlock_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	return rlock_release(self, NULL);
}

static PyObject *rlock_locked(PyObject *self, PyObject *unused)
{
	return PyBool_FromLong(atomic_load(&lock_data(self)->word) != 0);
}

static PyObject *rlock_is_owned(PyObject *self, PyObject *unused)
{
	return PyBool_FromLong(rlock_owned(lock_data(self)));
}

static PyObject *rlock_recursion_count(PyObject *self, PyObject *unused)
{
	struct lock_data *d = lock_data(self);

	return PyLong_FromUnsignedLongLong(rlock_owned(d) ? atomic_load(&d->count) : 0);
}

/* (count, owner): let go entirely, for Condition.wait(). */
static PyObject *rlock_release_save(PyObject *self, PyObject *unused)
{
	struct lock_data *d = lock_data(self);
	uint64_t n;
	uint32_t owner;

	if (!rlock_owned(d) || !(n = atomic_load(&d->count))) {
		PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
		return NULL;
	}
	owner = atomic_load(&d->owner);
	atomic_store_explicit(&d->count, 0, memory_order_relaxed);
	atomic_store_explicit(&d->owner, 0, memory_order_relaxed);
	lock_give(d);
	return Py_BuildValue("(KI)", (unsigned long long)n, (unsigned int)owner);
}

static PyObject *rlock_acquire_restore(PyObject *self, PyObject *state)
{
	unsigned long long n;
	unsigned int owner;

	if (!PyArg_ParseTuple(state, "KI:_acquire_restore", &n, &owner))
		return NULL;
	if (n == 0) {
		PyErr_SetString(PyExc_ValueError, "_acquire_restore(): a count of 0");
		return NULL;
	}
	return rlock_take(self, -1, false, n, true);
}

static PyObject *rlock_at_fork_reinit(PyObject *self, PyObject *unused)
{
	if (sync_renew((SyncObject *)self, sizeof(struct lock_data), SYNC_RLOCK) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *rlock_repr(PyObject *self)
{
	struct lock_data *d = lock_data(self);
	uint64_t cur = atomic_load(&d->word);

	return PyUnicode_FromFormat("<%s %s object owner=%u count=%llu at %p>",
				    cur ? "locked" : "unlocked", Py_TYPE(self)->tp_name,
				    cur ? (unsigned int)atomic_load(&d->owner) : 0u,
				    cur ? (unsigned long long)atomic_load(&d->count) : 0ull, self);
}

/* ---- types ----------------------------------------------------------------- */

#define FAST(f) (PyCFunction)(void (*)(void))(f)

#define ACQUIRE_DOC(what)							\
	"acquire($self, /, blocking=True, timeout=-1)\n--\n\n"			\
	"Take the " what ", waiting at most timeout seconds (-1: no limit)\n"	\
	"unless blocking is false; True once taken, False if not. The GIL\n"	\
	"is released while it waits. Raises OwnerDiedError (holding the\n"	\
	"lock) when the process that held it died."

static PyMethodDef lock_methods[] = {
	{ "acquire", FAST(lock_acquire), METH_FASTCALL | METH_KEYWORDS, ACQUIRE_DOC("lock") },
	{ "release", lock_release, METH_NOARGS,
	  "release($self, /)\n--\n\nGive the lock back; any thread of any process may.\n"
	  "RuntimeError when it is not held." },
	{ "locked", lock_locked, METH_NOARGS,
	  "locked($self, /)\n--\n\nTrue while someone holds the lock." },
	{ "__enter__", FAST(lock_acquire), METH_FASTCALL | METH_KEYWORDS,
	  "__enter__($self, /)\n--\n\nacquire()." },
	{ "__exit__", FAST(lock_exit), METH_FASTCALL,
	  "__exit__($self, /, *args)\n--\n\nrelease()." },
	{ "_release_save", lock_release_save, METH_NOARGS, NULL },
	{ "_acquire_restore", lock_acquire_restore, METH_O, NULL },
	{ "_at_fork_reinit", lock_at_fork_reinit, METH_NOARGS, NULL },
	{ "__reduce__", sync_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyMethodDef rlock_methods[] = {
	{ "acquire", FAST(rlock_acquire), METH_FASTCALL | METH_KEYWORDS,
	  ACQUIRE_DOC("lock (again, when this thread holds it already)") },
	{ "release", rlock_release, METH_NOARGS,
	  "release($self, /)\n--\n\nUndo one acquire() of this thread; RuntimeError when\n"
	  "this thread does not hold the lock." },
	{ "locked", rlock_locked, METH_NOARGS,
	  "locked($self, /)\n--\n\nTrue while some thread holds the lock." },
	{ "__enter__", FAST(rlock_acquire), METH_FASTCALL | METH_KEYWORDS,
	  "__enter__($self, /)\n--\n\nacquire()." },
	{ "__exit__", FAST(rlock_exit), METH_FASTCALL,
	  "__exit__($self, /, *args)\n--\n\nrelease()." },
	{ "_is_owned", rlock_is_owned, METH_NOARGS, NULL },
	{ "_recursion_count", rlock_recursion_count, METH_NOARGS, NULL },
	{ "_release_save", rlock_release_save, METH_NOARGS, NULL },
	{ "_acquire_restore", rlock_acquire_restore, METH_O, NULL },
	{ "_at_fork_reinit", rlock_at_fork_reinit, METH_NOARGS, NULL },
	{ "__reduce__", sync_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyType_Slot lock_slots[] = {
	{ Py_tp_doc, "Lock()\n--\n\n"
		     "threading.Lock in shared memory: shared (never copied) when posted\n"
		     "or passed to a worker, in either mode. It belongs to a process, not\n"
		     "a thread: any thread may release it. A lock whose holder process\n"
		     "dies passes to the next acquire(), which raises OwnerDiedError." },
	{ Py_tp_new, lock_new },
	{ Py_tp_dealloc, sync_dealloc },
	{ Py_tp_repr, lock_repr },
	{ Py_tp_methods, lock_methods },
	{ Py_tp_members, sync_members },
	{ 0, NULL }
};

static PyType_Slot rlock_slots[] = {
	{ Py_tp_doc, "RLock()\n--\n\n"
		     "threading.RLock in shared memory: the thread that holds it may\n"
		     "acquire it again; only that thread may release it. Shared when\n"
		     "posted; robust like Lock (OwnerDiedError)." },
	{ Py_tp_new, rlock_new },
	{ Py_tp_dealloc, sync_dealloc },
	{ Py_tp_repr, rlock_repr },
	{ Py_tp_methods, rlock_methods },
	{ Py_tp_members, sync_members },
	{ 0, NULL }
};

static PyType_Spec lock_spec = {
	.name = "pyshm_workers.Lock",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = lock_slots,
};

static PyType_Spec rlock_spec = {
	.name = "pyshm_workers.RLock",
	.basicsize = sizeof(SyncObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
	.slots = rlock_slots,
};

static PyObject *lock_from_payload(PyTypeObject *tp, struct pyshm_payload *p)
{
	return sync_from_payload(tp, p, sizeof(struct lock_data), SYNC_LOCK);
}

static PyObject *rlock_from_payload(PyTypeObject *tp, struct pyshm_payload *p)
{
	return sync_from_payload(tp, p, sizeof(struct lock_data), SYNC_RLOCK);
}

static const struct pyshm_clone_ops lock_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = sync_get_payload,
	.from_payload = lock_from_payload,
};

static const struct pyshm_clone_ops rlock_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = sync_get_payload,
	.from_payload = rlock_from_payload,
};

int sync_lock_init(PyObject *mod)
{
	PyTypeObject *tp;
	int ret;

	tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &lock_spec, NULL);
	if (!tp)
		return -1;
	ret = sync_register(mod, tp, &lock_ops);
	Py_DECREF(tp);
	if (ret < 0)
		return -1;
	tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &rlock_spec, NULL);
	if (!tp)
		return -1;
	ret = sync_register(mod, tp, &rlock_ops);
	Py_DECREF(tp);
	return ret;
}
