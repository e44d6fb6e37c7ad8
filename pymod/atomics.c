// SPDX-License-Identifier: MIT
/*
 * Int32Array and Int64Array: integer views of a SharedArrayBuffer with
 * sequentially consistent, lock-free atomic operations, and wait/notify on
 * a futex in the shared pages, so they work between threads,
 * subinterpreters and processes that share the buffer.
 */
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

typedef struct {
	PyObject_HEAD
	PyObject *sab;			/* keeps the memory alive */
	struct pyshm_region *region;	/* borrowed from sab */
	Py_ssize_t byte_offset;
	Py_ssize_t length;		/* elements; -1 tracks the buffer */
	int elsize;			/* 4 or 8 */
	Py_ssize_t exports;
	Py_ssize_t view_shape;		/* shape of the latest export (copied by
					 * memoryview and numpy on creation) */
} ArrayObject;

_Static_assert(sizeof(_Atomic int32_t) == 4 && sizeof(_Atomic int64_t) == 8,
	       "lock-free atomics of the element sizes");

static inline char *array_base(ArrayObject *a)
{
	return (char *)pyshm_region_data(a->region) + a->byte_offset;
}

/* Elements in view. @fresh asks the backend for the size, which another
 * process may have grown; otherwise the last size seen is used. */
static Py_ssize_t array_len_of(ArrayObject *a, bool fresh)
{
	uint64_t size;

	if (a->length >= 0)
		return a->length;
	size = fresh ? pyshm_region_size(a->region) : pyshm_region_known_size(a->region);
	if (size < (uint64_t)a->byte_offset)
		return 0;
	return (Py_ssize_t)((size - (uint64_t)a->byte_offset) / (uint64_t)a->elsize);
}

static Py_ssize_t array_len(ArrayObject *a)
{
	return array_len_of(a, true);
}

/* Resolve index @arg (negative counts from the end) to an element address. */
static void *array_slot(ArrayObject *a, PyObject *arg)
{
	Py_ssize_t i, n;

	if (PyLong_CheckExact(arg)) {
		i = PyLong_AsSsize_t(arg);
		if (i == -1 && PyErr_Occurred())
			goto out_of_range;
	} else {
		i = PyNumber_AsSsize_t(arg, PyExc_IndexError);
		if (i == -1 && PyErr_Occurred())
			return NULL;
	}
	n = array_len_of(a, false);
	if (i < 0)
		i += n;
	if ((i < 0 || i >= n) && a->length < 0) {
		/* Maybe grown elsewhere: look again before refusing. */
		if (i < 0)
			i -= n;
		n = array_len_of(a, true);
		if (i < 0)
			i += n;
	}
	if (i < 0 || i >= n)
		goto out_of_range;
	return array_base(a) + i * a->elsize;

out_of_range:
	PyErr_Clear();
	PyErr_SetString(PyExc_IndexError, "typed array index out of range");
	return NULL;
}

/* An int argument, wrapped to the element width like JavaScript does. */
static int value_arg(PyObject *arg, uint64_t *out)
{
	unsigned long long v;

	if (PyLong_CheckExact(arg)) {
		v = PyLong_AsUnsignedLongLongMask(arg);
	} else {
		PyObject *idx = PyNumber_Index(arg);

		if (!idx)
			return -1;
		v = PyLong_AsUnsignedLongLongMask(idx);
		Py_DECREF(idx);
	}
	if (v == (unsigned long long)-1 && PyErr_Occurred())
		return -1;
	*out = v;
	return 0;
}

static PyObject *box(ArrayObject *a, int64_t v)
{
	return a->elsize == 4 ? PyLong_FromLong((int32_t)v) : PyLong_FromLongLong(v);
}

#define A32(p) ((_Atomic int32_t *)(p))
#define A64(p) ((_Atomic int64_t *)(p))

enum rmw_op { OP_ADD, OP_SUB, OP_AND, OP_OR, OP_XOR, OP_XCHG };

static int64_t rmw(ArrayObject *a, void *p, enum rmw_op op, uint64_t v)
{
	if (a->elsize == 4) {
		int32_t x = (int32_t)(uint32_t)v;

		switch (op) {
		case OP_ADD: return atomic_fetch_add(A32(p), x);
		case OP_SUB: return atomic_fetch_sub(A32(p), x);
		case OP_AND: return atomic_fetch_and(A32(p), x);
		case OP_OR: return atomic_fetch_or(A32(p), x);
		case OP_XOR: return atomic_fetch_xor(A32(p), x);
		case OP_XCHG: return atomic_exchange(A32(p), x);
		}
	} else {
		int64_t x = (int64_t)v;

		switch (op) {
		case OP_ADD: return atomic_fetch_add(A64(p), x);
		case OP_SUB: return atomic_fetch_sub(A64(p), x);
		case OP_AND: return atomic_fetch_and(A64(p), x);
		case OP_OR: return atomic_fetch_or(A64(p), x);
		case OP_XOR: return atomic_fetch_xor(A64(p), x);
		case OP_XCHG: return atomic_exchange(A64(p), x);
		}
	}
	return 0;
}

static int64_t load(ArrayObject *a, void *p)
{
	return a->elsize == 4 ? atomic_load(A32(p)) : atomic_load(A64(p));
}

static int check_writable(ArrayObject *a)
{
	if (pyshm_region_flags(a->region) & PYSHM_REGION_SEALED) {
		PyErr_SetString(PyExc_TypeError, "the SharedArrayBuffer is read-only");
		return -1;
	}
	return 0;
}

static PyObject *rmw_method(ArrayObject *a, PyObject *const *args, Py_ssize_t nargs,
			    enum rmw_op op, const char *name)
{
	uint64_t v;
	void *p;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (%zd given)",
				    name, nargs);
	p = array_slot(a, args[0]);
	if (!p || value_arg(args[1], &v) < 0 || check_writable(a) < 0)
		return NULL;
	return box(a, rmw(a, p, op, v));
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
	void *p = array_slot(a, arg);

	return p ? box(a, load(a, p)) : NULL;
}

static PyObject *array_store(ArrayObject *a, PyObject *const *args, Py_ssize_t nargs)
{
	uint64_t v;
	void *p;

	if (nargs != 2)
		return PyErr_Format(PyExc_TypeError, "store() takes 2 arguments (%zd given)",
				    nargs);
	p = array_slot(a, args[0]);
	if (!p || value_arg(args[1], &v) < 0 || check_writable(a) < 0)
		return NULL;
	if (a->elsize == 4)
		atomic_store(A32(p), (int32_t)(uint32_t)v);
	else
		atomic_store(A64(p), (int64_t)v);
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
	p = array_slot(a, args[0]);
	if (!p || value_arg(args[1], &expected) < 0 || value_arg(args[2], &v) < 0 ||
	    check_writable(a) < 0)
		return NULL;
	if (a->elsize == 4) {
		int32_t e = (int32_t)(uint32_t)expected;

		atomic_compare_exchange_strong(A32(p), &e, (int32_t)(uint32_t)v);
		return box(a, e);
	} else {
		int64_t e = (int64_t)expected;

		atomic_compare_exchange_strong(A64(p), &e, (int64_t)v);
		return box(a, e);
	}
}

/* The element's bits, as wait() compares them with its (masked) value. */
static uint64_t element_bits(ArrayObject *a, void *p)
{
	return a->elsize == 4 ? (uint32_t)load(a, p) : (uint64_t)load(a, p);
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

/* Seconds, or -1 for no limit (None, inf, or more than a century). */
static int timeout_arg(PyObject *arg, double *secs)
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
	p = array_slot(a, idx);
	if (!p || value_arg(val, &expected) < 0 || timeout_arg(tmo, &secs) < 0)
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
	p = array_slot(a, idx);
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
	if (n == 0)
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

/* Plain element access: relaxed atomics, so a value is never torn. */
static PyObject *array_item(ArrayObject *a, Py_ssize_t i)
{
	Py_ssize_t n = array_len(a);
	void *p;

	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "typed array index out of range");
		return NULL;
	}
	p = array_base(a) + i * a->elsize;
	return box(a, a->elsize == 4 ? atomic_load_explicit(A32(p), memory_order_relaxed)
				     : atomic_load_explicit(A64(p), memory_order_relaxed));
}

static int array_ass_item(ArrayObject *a, Py_ssize_t i, PyObject *v)
{
	Py_ssize_t n = array_len(a);
	uint64_t x;
	void *p;

	if (!v) {
		PyErr_SetString(PyExc_TypeError, "typed array elements cannot be deleted");
		return -1;
	}
	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "typed array index out of range");
		return -1;
	}
	if (value_arg(v, &x) < 0 || check_writable(a) < 0)
		return -1;
	p = array_base(a) + i * a->elsize;
	if (a->elsize == 4)
		atomic_store_explicit(A32(p), (int32_t)(uint32_t)x, memory_order_relaxed);
	else
		atomic_store_explicit(A64(p), (int64_t)x, memory_order_relaxed);
	return 0;
}

static Py_ssize_t array_length(ArrayObject *a)
{
	return array_len(a);
}

static PyObject *array_subscript(ArrayObject *a, PyObject *key)
{
	Py_ssize_t start, stop, step, n, i, k;
	PyObject *list;

	if (!PySlice_Check(key)) {
		i = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (i == -1 && PyErr_Occurred())
			return NULL;
		if (i < 0)
			i += array_len(a);
		return array_item(a, i);
	}
	if (PySlice_Unpack(key, &start, &stop, &step) < 0)
		return NULL;
	n = PySlice_AdjustIndices(array_len(a), &start, &stop, step);
	list = PyList_New(n);
	if (!list)
		return NULL;
	for (i = start, k = 0; k < n; i += step, k++) {
		PyObject *v = array_item(a, i);

		if (!v) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, k, v);
	}
	return list;
}

static int array_ass_subscript(ArrayObject *a, PyObject *key, PyObject *v)
{
	Py_ssize_t i;

	if (PySlice_Check(key)) {
		PyErr_SetString(PyExc_TypeError, "typed arrays do not support slice assignment");
		return -1;
	}
	i = PyNumber_AsSsize_t(key, PyExc_IndexError);
	if (i == -1 && PyErr_Occurred())
		return -1;
	if (i < 0)
		i += array_len(a);
	return array_ass_item(a, i, v);
}

static int array_getbuffer(ArrayObject *a, Py_buffer *view, int flags)
{
	if ((flags & PyBUF_WRITABLE) && (pyshm_region_flags(a->region) & PYSHM_REGION_SEALED)) {
		PyErr_SetString(PyExc_BufferError, "the SharedArrayBuffer is read-only");
		return -1;
	}
	view->obj = Py_NewRef(a);
	view->buf = array_base(a);
	view->len = array_len(a) * a->elsize;
	view->readonly = !!(pyshm_region_flags(a->region) & PYSHM_REGION_SEALED);
	view->itemsize = a->elsize;
	view->format = (flags & PyBUF_FORMAT) ? (a->elsize == 4 ? "i" : "q") : NULL;
	view->ndim = 1;
	a->view_shape = array_len(a);
	view->shape = (flags & PyBUF_ND) ? &a->view_shape : NULL;
	view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &view->itemsize : NULL;
	view->suboffsets = NULL;
	view->internal = NULL;
	a->exports++;
	return 0;
}

static void array_releasebuffer(ArrayObject *a, Py_buffer *view)
{
	a->exports--;
}

/*
 * An index argument, clipped to PY_SSIZE_T_MIN/MAX when it does not fit (as
 * JavaScript, which takes any number, refuses it by range): 0, or -1 with
 * TypeError. *@big is set when it was clipped (or is PY_SSIZE_T_MAX), for
 * a message that shows the value given.
 */
static int clipped_arg(PyObject *arg, Py_ssize_t *out, int *big)
{
	*out = PyNumber_AsSsize_t(arg, NULL);
	if (*out == -1 && PyErr_Occurred())
		return -1;
	*big = *out == PY_SSIZE_T_MAX;
	return 0;
}

static PyObject *array_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "sab", "byte_offset", "length", NULL };
	pymod_state *st = get_state_by_cls(type);
	PyObject *sab, *off_obj = NULL, *len_obj = Py_None;
	Py_ssize_t off = 0, len = -1;
	int elsize = type == st->int32_type ? 4 : 8, big_off = 0, big_len = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO", kwlist, &sab, &off_obj, &len_obj))
		return NULL;
	if (off_obj && clipped_arg(off_obj, &off, &big_off) < 0)
		return NULL;
	if (len_obj != Py_None) {
		if (clipped_arg(len_obj, &len, &big_len) < 0)
			return NULL;
		if (len < 0)
			return PyErr_Format(PyExc_ValueError, "length must not be negative");
	}
	if (!sab_region(st, sab))
		return PyErr_Format(PyExc_TypeError, "%s() needs a SharedArrayBuffer, not %.100s",
				    type->tp_name, Py_TYPE(sab)->tp_name);
	/* Past any buffer: say so with the value given. */
	if (big_off || big_len) {
		PyObject *v = PyNumber_Index(big_off ? off_obj : len_obj);
		uint64_t size = pyshm_region_size(sab_region(st, sab));

		if (!v)
			return NULL;
		if (big_off)
			PyErr_Format(PyExc_ValueError, "byte_offset %S is past the end (%llu)", v,
				     (unsigned long long)size);
		else
			PyErr_Format(PyExc_ValueError, "byte_offset %zd + length %S elements of %d "
				     "bytes exceeds the buffer (%llu bytes)", off, v, elsize,
				     (unsigned long long)size);
		Py_DECREF(v);
		return NULL;
	}
	return typed_array_new(st, elsize, sab, off, len);
}

PyObject *typed_array_new(pymod_state *st, int elsize, PyObject *sab,
			  Py_ssize_t off, Py_ssize_t len)
{
	struct pyshm_region *r = sab_region(st, sab);
	PyTypeObject *type = elsize == 4 ? st->int32_type : st->int64_type;
	uint64_t size = pyshm_region_size(r);
	ArrayObject *a;

	if (off < 0 || off % elsize)
		return PyErr_Format(PyExc_ValueError,
				    "byte_offset must be a non-negative multiple of %d", elsize);
	if ((uint64_t)off > size)
		return PyErr_Format(PyExc_ValueError, "byte_offset %zd is past the end (%llu)",
				    off, (unsigned long long)size);
	if (len < 0) {
		/* Fixed-size buffers need whole elements; growable ones track. */
		if (!(pyshm_region_flags(r) & PYSHM_REGION_GROWABLE) &&
		    (size - (uint64_t)off) % (uint64_t)elsize)
			return PyErr_Format(PyExc_ValueError,
					    "buffer length minus byte_offset must be a multiple of %d",
					    elsize);
		if (!(pyshm_region_flags(r) & PYSHM_REGION_GROWABLE))
			len = (Py_ssize_t)((size - (uint64_t)off) / (uint64_t)elsize);
	} else if ((uint64_t)len > (size - (uint64_t)off) / (uint64_t)elsize) {
		return PyErr_Format(PyExc_ValueError,
				    "byte_offset %zd + length %zd elements of %d bytes exceeds "
				    "the buffer (%llu bytes)", off, len, elsize,
				    (unsigned long long)size);
	}
	a = PyObject_GC_New(ArrayObject, type);
	if (!a)
		return NULL;
	a->sab = Py_NewRef(sab);
	a->region = r;
	a->byte_offset = off;
	a->length = len;
	a->elsize = elsize;
	a->exports = 0;
	PyObject_GC_Track(a);
	return (PyObject *)a;
}

int typed_array_info(pymod_state *st, PyObject *obj, int *elsize, PyObject **sab,
		     Py_ssize_t *byte_offset, Py_ssize_t *length)
{
	ArrayObject *a = (ArrayObject *)obj;

	if (!PyObject_TypeCheck(obj, st->int32_type) && !PyObject_TypeCheck(obj, st->int64_type))
		return 0;
	*elsize = a->elsize;
	*sab = a->sab;
	*byte_offset = a->byte_offset;
	*length = a->length;
	return 1;
}

static int array_traverse(ArrayObject *a, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(a));
	Py_VISIT(a->sab);
	return 0;
}

static int array_clear(ArrayObject *a)
{
	/* The SAB is not cleared: the region pointer borrows from it. */
	return 0;
}

static void array_dealloc(ArrayObject *a)
{
	PyTypeObject *tp = Py_TYPE(a);

	PyObject_GC_UnTrack(a);
	Py_CLEAR(a->sab);
	tp->tp_free(a);
	Py_DECREF(tp);
}

/* <Int32Array length=4 byte_offset=0 buffer=<SharedArrayBuffer ...>> */
static PyObject *array_repr(ArrayObject *a)
{
	PyObject *name = PyType_GetName(Py_TYPE(a)), *ret;

	if (!name)
		return NULL;
	ret = PyUnicode_FromFormat("<%U length=%zd byte_offset=%zd%s buffer=%R>", name,
				   array_len(a), a->byte_offset,
				   a->length < 0 ? " length-tracking" : "", a->sab);
	Py_DECREF(name);
	return ret;
}

static PyObject *array_get_buffer(ArrayObject *a, void *c)
{
	return Py_NewRef(a->sab);
}

static PyObject *array_get_byte_offset(ArrayObject *a, void *c)
{
	return PyLong_FromSsize_t(a->byte_offset);
}

static PyObject *array_get_length(ArrayObject *a, void *c)
{
	return PyLong_FromSsize_t(array_len(a));
}

static PyObject *array_get_byte_length(ArrayObject *a, void *c)
{
	return PyLong_FromSsize_t(array_len(a) * a->elsize);
}

static PyObject *array_get_bytes_per_element(ArrayObject *a, void *c)
{
	return PyLong_FromLong(a->elsize);
}

static PyObject *array_reduce(ArrayObject *a, PyObject *unused)
{
	return PyErr_Format(PyExc_TypeError,
			    "cannot pickle '%s' object: share it with post_message() or "
			    "structured_clone()", Py_TYPE(a)->tp_name);
}

#define FAST(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef array_methods[] = {
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

static PyGetSetDef array_getset[] = {
	{ "buffer", (getter)array_get_buffer, NULL, "The SharedArrayBuffer.", NULL },
	{ "byte_offset", (getter)array_get_byte_offset, NULL,
	  "Where the first element lies in the buffer, in bytes.", NULL },
	{ "byte_length", (getter)array_get_byte_length, NULL,
	  "length * BYTES_PER_ELEMENT.", NULL },
	{ "length", (getter)array_get_length, NULL,
	  "The number of elements (len(a)); it follows a growable buffer\n"
	  "when no length was given.", NULL },
	{ "BYTES_PER_ELEMENT", (getter)array_get_bytes_per_element, NULL,
	  "The size of an element in bytes: 4 or 8.", NULL },
	{ NULL }
};

/* The same slots for each type but for its doc, which names the type. */
#define ARRAY_SLOTS(doc)						\
	{ Py_tp_doc, doc },						\
	{ Py_tp_new, array_new },					\
	{ Py_tp_dealloc, array_dealloc },				\
	{ Py_tp_traverse, array_traverse },				\
	{ Py_tp_clear, array_clear },					\
	{ Py_tp_repr, array_repr },					\
	{ Py_tp_methods, array_methods },				\
	{ Py_tp_getset, array_getset },					\
	{ Py_sq_length, array_length },					\
	{ Py_sq_item, array_item },					\
	{ Py_sq_ass_item, array_ass_item },				\
	{ Py_mp_length, array_length },					\
	{ Py_mp_subscript, array_subscript },				\
	{ Py_mp_ass_subscript, array_ass_subscript },			\
	{ Py_bf_getbuffer, array_getbuffer },				\
	{ Py_bf_releasebuffer, array_releasebuffer },			\
	{ 0, NULL }

#define ARRAY_DOC(name, what)						\
	name "(sab, byte_offset=0, length=None)\n--\n\n"		\
	what " over a SharedArrayBuffer, from byte_offset (a\n"		\
	"multiple of the element size), length elements (default: to the\n" \
	"end, following a growable buffer as it grows). a[i], len(a), and\n" \
	"atomic operations: load, store, add, sub, and_, or_, xor, exchange,\n" \
	"compare_exchange, wait, notify."

static PyType_Slot int32_slots[] = {
	ARRAY_SLOTS(ARRAY_DOC("Int32Array", "32-bit signed integers"))
};

static PyType_Slot int64_slots[] = {
	ARRAY_SLOTS(ARRAY_DOC("Int64Array", "64-bit signed integers"))
};

static PyType_Spec int32_spec = {
	.name = "pyshm_workers.Int32Array",
	.basicsize = sizeof(ArrayObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = int32_slots,
};

static PyType_Spec int64_spec = {
	.name = "pyshm_workers.Int64Array",
	.basicsize = sizeof(ArrayObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = int64_slots,
};

int atomics_init_types(PyObject *mod, pymod_state *st)
{
	st->int32_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &int32_spec, NULL);
	if (!st->int32_type || PyModule_AddType(mod, st->int32_type) < 0)
		return -1;
	st->int64_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &int64_spec, NULL);
	if (!st->int64_type || PyModule_AddType(mod, st->int64_type) < 0)
		return -1;
	return 0;
}
