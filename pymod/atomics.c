// SPDX-License-Identifier: MIT
/*
 * The Atomics of the typed arrays: sequentially consistent, lock-free
 * operations on the integer types (not Uint8ClampedArray, not the float
 * ones, as in JavaScript), and wait/notify on a futex in the shared pages
 * for Int32Array and Int64Array, so they work between threads,
 * subinterpreters and processes that share the buffer.
 */
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "typed_array.h"
#include "worker.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

_Static_assert(sizeof(_Atomic uint8_t) == 1 && sizeof(_Atomic uint16_t) == 2 &&
	       sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic uint64_t) == 8,
	       "lock-free atomics of the element sizes");

/* @a's type has these operations (TA_F_*): 0, or -1 + TypeError. */
static int check_kind(ArrayObject *a, unsigned int need, const char *op)
{
	if (ta_kinds[a->kind].flags & need)
		return 0;
	if (need & TA_F_WAIT)
		PyErr_Format(PyExc_TypeError, "%s() needs an Int32Array or Int64Array, not %s",
			     op, ta_kinds[a->kind].name);
	else
		PyErr_Format(PyExc_TypeError, "%s() needs an integer typed array (not "
			     "Uint8ClampedArray or a float one), not %s", op,
			     ta_kinds[a->kind].name);
	return -1;
}

static int check_writable(ArrayObject *a)
{
	if (a->region && (pyshm_region_flags(a->region) & PYSHM_REGION_SEALED)) {
		PyErr_SetString(PyExc_TypeError, "the SharedArrayBuffer is read-only");
		return -1;
	}
	return 0;
}

/* The element at index @idx for operation @op, and its operand @v (wrapped
 * to the element). NULL + exception. The operand's conversion may run
 * Python code, so the element is looked up last. */
static void *op_slot(ArrayObject *a, PyObject *idx, PyObject *v, uint64_t *bits,
		     const char *op)
{
	if (check_kind(a, TA_F_ATOMIC, op) < 0)
		return NULL;
	if (v && ta_unbox(a->kind, v, bits) < 0)
		return NULL;
	return ta_slot(a, idx);
}

#define RMW_CASE(T, p, op, v)						\
	switch (op) {							\
	case OP_ADD: return atomic_fetch_add((_Atomic T *)(p), (T)(v));	\
	case OP_SUB: return atomic_fetch_sub((_Atomic T *)(p), (T)(v));	\
	case OP_AND: return atomic_fetch_and((_Atomic T *)(p), (T)(v));	\
	case OP_OR: return atomic_fetch_or((_Atomic T *)(p), (T)(v));	\
	case OP_XOR: return atomic_fetch_xor((_Atomic T *)(p), (T)(v));	\
	case OP_XCHG: return atomic_exchange((_Atomic T *)(p), (T)(v));	\
	}

enum rmw_op { OP_ADD, OP_SUB, OP_AND, OP_OR, OP_XOR, OP_XCHG };

/* Unsigned arithmetic wraps as two's complement does: one case per size. */
static uint64_t rmw(void *p, int elsize, enum rmw_op op, uint64_t v)
{
	switch (elsize) {
	case 1: RMW_CASE(uint8_t, p, op, v); break;
	case 2: RMW_CASE(uint16_t, p, op, v); break;
	case 4: RMW_CASE(uint32_t, p, op, v); break;
	default: RMW_CASE(uint64_t, p, op, v); break;
	}
	return 0;
}

#define CAS_CASE(T, p, e, v) do {					\
	T x = (T)*(e);							\
									\
	atomic_compare_exchange_strong((_Atomic T *)(p), &x, (T)(v));	\
	*(e) = x;							\
} while (0)

/* Returns the old value through @expected. */
static void cas(void *p, int elsize, uint64_t *expected, uint64_t v)
{
	switch (elsize) {
	case 1: CAS_CASE(uint8_t, p, expected, v); break;
	case 2: CAS_CASE(uint16_t, p, expected, v); break;
	case 4: CAS_CASE(uint32_t, p, expected, v); break;
	default: CAS_CASE(uint64_t, p, expected, v); break;
	}
}

static PyObject *rmw_method(ArrayObject *a, PyObject *const *args, Py_ssize_t nargs,
			    enum rmw_op op, const char *name)
{
	uint64_t v;
	void *p;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (%zd given)",
				    name, nargs);
	p = op_slot(a, args[0], args[1], &v, name);
	if (!p || check_writable(a) < 0)
		return NULL;
	return ta_box(a->kind, rmw(p, a->elsize, op, v));
}

#define RMW_METHOD(fn, op, name)						\
static PyObject *fn(ArrayObject *a, PyObject *const *args, Py_ssize_t n)	\
{										\
	return rmw_method(a, args, n, op, name);				\
}

RMW_METHOD(array_add, OP_ADD, "add")
RMW_METHOD(array_sub, OP_SUB, "sub")
RMW_METHOD(array_and, OP_AND, "and_")
RMW_METHOD(array_or, OP_OR, "or_")
RMW_METHOD(array_xor, OP_XOR, "xor")
RMW_METHOD(array_exchange, OP_XCHG, "exchange")

static PyObject *array_load(ArrayObject *a, PyObject *arg)
{
	void *p = op_slot(a, arg, NULL, NULL, "load");

	return p ? ta_box(a->kind, ta_load_bits(p, a->elsize, memory_order_seq_cst)) : NULL;
}

static PyObject *array_store(ArrayObject *a, PyObject *const *args, Py_ssize_t nargs)
{
	uint64_t v;
	void *p;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "store() takes 2 arguments (%zd given)",
				    nargs);
	p = op_slot(a, args[0], args[1], &v, "store");
	if (!p || check_writable(a) < 0)
		return NULL;
	ta_store_bits(p, a->elsize, v, memory_order_seq_cst);
	/* As Atomics.store(): the value given, not the one stored. */
	return Py_NewRef(args[1]);
}

static PyObject *array_compare_exchange(ArrayObject *a, PyObject *const *args,
					Py_ssize_t nargs)
{
	uint64_t expected, v;
	void *p;

	if (nargs != 3)
		return PyErr_Format(PyExc_TypeError,
				    "compare_exchange() takes 3 arguments (%zd given)", nargs);
	if (check_kind(a, TA_F_ATOMIC, "compare_exchange") < 0 ||
	    ta_unbox(a->kind, args[1], &expected) < 0)
		return NULL;
	p = op_slot(a, args[0], args[2], &v, "compare_exchange");
	if (!p || check_writable(a) < 0)
		return NULL;
	cas(p, a->elsize, &expected, v);
	return ta_box(a->kind, expected);
}

/* The element's bits, as wait() compares them with its (masked) value. */
static uint64_t element_bits(ArrayObject *a, void *p)
{
	return ta_load_bits(p, a->elsize, memory_order_seq_cst);
}

/*
 * Sleep until a notify() at @p, a change of the element from @expected, the
 * absolute CLOCK_MONOTONIC @deadline (< 0: none) or, in a worker
 * interpreter, terminate() setting @stop. A 32-bit element is one futex
 * word (not private: other processes share it). A 64-bit one is two, both
 * waited on at once (futex_waitv), so that a change of either half ends the
 * sleep; notify() wakes the low word only (see wake_element()). Returns 1
 * when stopped, 0 when woken, -1 with errno (EAGAIN: not equal, ETIMEDOUT,
 * EINTR).
 */
static long wait_element(void *p, int elsize, uint64_t expected, double deadline,
			 atomic_uint *stop)
{
	struct futex_waitv v[3];
	struct timespec ts, *tsp = NULL;
	unsigned int n = 0;
	long ret;

	if (deadline >= 0) {
		ts.tv_sec = (time_t)deadline;
		ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
		tsp = &ts;
	}
	/* The low word first: wake_element() relies on the order. */
	v[n++] = (struct futex_waitv){ .val = (uint32_t)expected, .uaddr = (uintptr_t)p,
				       .flags = FUTEX_32 };
	if (elsize == 8)
		v[n++] = (struct futex_waitv){ .val = (uint32_t)(expected >> 32),
					       .uaddr = (uintptr_t)p + 4, .flags = FUTEX_32 };
	if (stop)
		v[n++] = (struct futex_waitv){ .val = 0, .uaddr = (uintptr_t)stop,
					       .flags = FUTEX_32 };
	if (n == 1)
		return syscall(SYS_futex, p, FUTEX_WAIT_BITSET, (uint32_t)expected, tsp, NULL,
			       FUTEX_BITSET_MATCH_ANY);
	ret = syscall(SYS_futex_waitv, v, n, 0, tsp, CLOCK_MONOTONIC);
	if (stop && (ret == (long)n - 1 || atomic_load(stop)))
		return 1;
	return ret < 0 ? -1 : 0;
}

/*
 * Wake up to @n waiters at @p; the number woken. Every waiter of the
 * element is queued on its low word (a 64-bit waiter on the high word too),
 * so waking the low word alone reaches each waiter once: the count is of
 * distinct waiters and never passes @n. Waking the high word as well would
 * count a waiter woken through the low word again (it stays queued there
 * until it runs) and could wake one more than asked.
 *
 * No wake-up is lost when only the high half changed: futex_waitv() checks
 * and queues the words in the order given (kernel/futex/waitwake.c,
 * futex_wait_multiple_setup()), each under its hash bucket lock, so a
 * waiter is queued on the low word before it reads the high one. A
 * notifier stores, then wakes the low word: either it finds the waiter
 * queued there, or the waiter's later read of the high half (ordered after
 * the bucket's waiter count it published, as for any futex) sees the store
 * and it does not sleep.
 */
static long wake_element(void *p, long n)
{
	return syscall(SYS_futex, p, FUTEX_WAKE, (int)n, NULL, NULL, 0);
}

int ta_timeout_arg(PyObject *arg, double *secs)
{
	if (arg == Py_None) {
		*secs = -1;
		return 0;
	}
	*secs = PyFloat_AsDouble(arg);
	if (*secs == -1 && PyErr_Occurred())
		return -1;
	if (isnan(*secs)) {
		PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
		return -1;
	}
	if (*secs < 0)
		*secs = 0;
	if (*secs > 3.2e9)
		*secs = -1;
	return 0;
}

int ta_check_waitable(ArrayObject *a, const char *op)
{
	if (check_kind(a, TA_F_WAIT, op) < 0)
		return -1;
	if (!a->region) {
		PyErr_Format(PyExc_TypeError, "%s() needs a view of a SharedArrayBuffer (nobody "
			     "else can change an ArrayBuffer)", op);
		return -1;
	}
	return 0;
}

static PyObject *array_wait(ArrayObject *a, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "i", "value", "timeout", NULL };
	pymod_state *st = get_state_by_type(Py_TYPE(a));
	PyObject *idx, *val, *tmo = Py_None;
	atomic_uint *stop = st->self_worker ? &st->self_worker->terminate : NULL;
	uint64_t expected;
	double secs, deadline = -1;
	long ret;
	int err;
	void *p;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:wait", kwlist, &idx, &val, &tmo))
		return NULL;
	if (ta_check_waitable(a, "wait") < 0)
		return NULL;
	p = ta_slot(a, idx);
	if (!p || ta_unbox(a->kind, val, &expected) < 0 || ta_timeout_arg(tmo, &secs) < 0)
		return NULL;
	if (a->elsize == 4)
		expected = (uint32_t)expected;

	if (secs >= 0)
		deadline = mono_now() + secs;
	for (;;) {
		if (element_bits(a, p) != expected)
			return Py_NewRef(st->str_not_equal);
		if (secs >= 0 && deadline <= mono_now())
			return Py_NewRef(st->str_timed_out);
		Py_BEGIN_ALLOW_THREADS
		ret = wait_element(p, a->elsize, expected, deadline, stop);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (ret == 1 || worker_check_terminated(st) < 0) {
			if (!PyErr_Occurred())
				PyErr_SetNone(PyExc_SystemExit);
			return NULL;
		}
		if (ret == 0)
			return Py_NewRef(st->str_ok);
		if (err == ETIMEDOUT)
			return Py_NewRef(st->str_timed_out);
		if (err == EAGAIN)
			return Py_NewRef(st->str_not_equal);
		if (err != EINTR)
			return pymod_raise_from_errno(st, -err, "wait");
		/* A signal: run its handlers, then keep waiting unless the
		 * value moved meanwhile (a notify may have come and gone). */
		if (PyErr_CheckSignals() < 0)
			return NULL;
		if (element_bits(a, p) != expected)
			return Py_NewRef(st->str_ok);
	}
}

static PyObject *array_notify(ArrayObject *a, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "i", "count", NULL };
	PyObject *idx, *cnt = Py_None;
	long n = INT_MAX, ret;
	void *p;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:notify", kwlist, &idx, &cnt))
		return NULL;
	if (check_kind(a, TA_F_WAIT, "notify") < 0)
		return NULL;
	p = ta_slot(a, idx);
	if (!p)
		return NULL;
	if (PyFloat_Check(cnt)) {
		/* As JavaScript: +inf wakes all, NaN none, fractions truncate. */
		double d = PyFloat_AS_DOUBLE(cnt);

		n = isnan(d) || d < 0 ? 0 : d >= INT_MAX ? INT_MAX : (long)d;
	} else if (cnt != Py_None) {
		n = PyLong_AsLong(cnt);
		if (n == -1 && PyErr_Occurred()) {
			if (!PyErr_ExceptionMatches(PyExc_OverflowError))
				return NULL;
			PyErr_Clear();
			n = INT_MAX;
		}
		if (n < 0)
			n = 0;
		if (n > INT_MAX)
			n = INT_MAX;
	}
	/* As JavaScript: nobody waits on memory that is not shared. */
	if (n == 0 || !a->region)
		return PyLong_FromLong(0);
	ret = wake_element(p, n);
	if (ret < 0)
		return pymod_raise_from_errno(get_state_by_type(Py_TYPE(a)), -errno, "notify");
	return PyLong_FromLong(ret);
}

static PyObject *array_is_lock_free(ArrayObject *a, PyObject *arg)
{
	long n = PyLong_AsLong(arg);

	if (n == -1 && PyErr_Occurred())
		return NULL;
	return PyBool_FromLong(n == 1 || n == 2 || n == 4 || n == 8);
}

static PyObject *array_reduce(ArrayObject *a, PyObject *unused)
{
	return PyErr_Format(PyExc_TypeError,
			    "cannot pickle '%s' object: send it with post_message() or "
			    "structured_clone()", ta_kinds[a->kind].name);
}

#define FAST(f) (PyCFunction)(void (*)(void))(f)

PyMethodDef ta_methods[] = {
	{ "load", (PyCFunction)array_load, METH_O,
	  "load($self, i, /)\n--\n\nAtomically read a[i]." },
	{ "store", FAST(array_store), METH_FASTCALL,
	  "store($self, i, v, /)\n--\n\nAtomically write a[i] = v; returns v." },
	{ "add", FAST(array_add), METH_FASTCALL,
	  "add($self, i, v, /)\n--\n\nAtomically add v to a[i]; returns the old value." },
	{ "sub", FAST(array_sub), METH_FASTCALL,
	  "sub($self, i, v, /)\n--\n\n"
	  "Atomically subtract v from a[i]; returns the old value." },
	{ "and_", FAST(array_and), METH_FASTCALL,
	  "and_($self, i, v, /)\n--\n\nAtomically a[i] &= v; returns the old value." },
	{ "or_", FAST(array_or), METH_FASTCALL,
	  "or_($self, i, v, /)\n--\n\nAtomically a[i] |= v; returns the old value." },
	{ "xor", FAST(array_xor), METH_FASTCALL,
	  "xor($self, i, v, /)\n--\n\nAtomically a[i] ^= v; returns the old value." },
	{ "exchange", FAST(array_exchange), METH_FASTCALL,
	  "exchange($self, i, v, /)\n--\n\nAtomically set a[i] = v; returns the old value." },
	{ "compare_exchange", FAST(array_compare_exchange), METH_FASTCALL,
	  "compare_exchange($self, i, expected, new, /)\n--\n\n"
	  "Atomically set a[i] = new if it equals expected; returns the old value." },
	{ "wait", (PyCFunction)(void (*)(void))array_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait($self, /, i, value, timeout=None)\n--\n\n"
	  "Sleep while a[i] == value until notify() or timeout seconds; returns\n"
	  "'ok', 'not-equal' or 'timed-out'. Releases the GIL." },
	{ "wait_async", (PyCFunction)(void (*)(void))ta_wait_async,
	  METH_VARARGS | METH_KEYWORDS,
	  "wait_async($self, /, i, value, timeout=None)\n--\n\n"
	  "Await a notify() of a[i] while a[i] == value, for asyncio: 'ok',\n"
	  "'not-equal' or 'timed-out'. No thread per waiter (io_uring futex\n"
	  "waits where the kernel has them); cancelling the task removes the\n"
	  "waiter." },
	{ "notify", (PyCFunction)(void (*)(void))array_notify, METH_VARARGS | METH_KEYWORDS,
	  "notify($self, /, i, count=None)\n--\n\n"
	  "Wake up to count waiters on a[i] (all when None);\n"
	  "returns how many woke." },
	{ "is_lock_free", (PyCFunction)array_is_lock_free, METH_O,
	  "is_lock_free($self, size, /)\n--\n\n"
	  "True for element sizes (in bytes) whose atomics never take a lock: 1, 2, 4, 8." },
	{ "__reduce__", (PyCFunction)array_reduce, METH_NOARGS, NULL },
	{ NULL }
};
