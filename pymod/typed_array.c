// SPDX-License-Identifier: MIT
/*
 * The typed arrays, Int8Array to Float64Array: views of a SharedArrayBuffer
 * (shared memory, also between processes) or of an ArrayBuffer (this
 * worker's own), with JavaScript's element semantics. This file has the
 * objects, their construction, element access and buffer protocol; the
 * Atomics and wait/notify are in atomics.c.
 */
#include <math.h>

#include "typed_array.h"

_Static_assert(TA_NKINDS == PYMOD_TA_NKINDS, "state.h's count of typed array types");

#define INT_ATOMIC	(TA_F_ATOMIC)
#define SINT_ATOMIC	(TA_F_SIGNED | TA_F_ATOMIC)

const struct ta_kind_info ta_kinds[TA_NKINDS] = {
	[TA_INT8] = { "Int8Array", 1, SINT_ATOMIC, "b", PYSHM_CLONE_TA_INT8 },
	[TA_UINT8] = { "Uint8Array", 1, INT_ATOMIC, "B", PYSHM_CLONE_TA_UINT8 },
	[TA_UINT8C] = { "Uint8ClampedArray", 1, TA_F_CLAMPED, "B", PYSHM_CLONE_TA_UINT8_CLAMPED },
	[TA_INT16] = { "Int16Array", 2, SINT_ATOMIC, "h", PYSHM_CLONE_TA_INT16 },
	[TA_UINT16] = { "Uint16Array", 2, INT_ATOMIC, "H", PYSHM_CLONE_TA_UINT16 },
	[TA_INT32] = { "Int32Array", 4, SINT_ATOMIC | TA_F_WAIT, "i", PYSHM_CLONE_TA_INT32 },
	[TA_UINT32] = { "Uint32Array", 4, INT_ATOMIC, "I", PYSHM_CLONE_TA_UINT32 },
	[TA_INT64] = { "Int64Array", 8, SINT_ATOMIC | TA_F_WAIT, "q", PYSHM_CLONE_TA_INT64 },
	[TA_UINT64] = { "Uint64Array", 8, INT_ATOMIC, "Q", PYSHM_CLONE_TA_UINT64 },
	[TA_FLOAT32] = { "Float32Array", 4, TA_F_FLOAT, "f", PYSHM_CLONE_TA_FLOAT32 },
	[TA_FLOAT64] = { "Float64Array", 8, TA_F_FLOAT, "d", PYSHM_CLONE_TA_FLOAT64 },
};

int ta_kind_of(pymod_state *st, PyObject *obj)
{
	PyTypeObject *tp = Py_TYPE(obj);
	int k;

	/* The types are final: an exact match is the test. */
	for (k = 0; k < TA_NKINDS; k++)
		if (tp == st->ta_types[k])
			return k;
	return -1;
}

static int kind_of_wire(int wire)
{
	int k;

	for (k = 0; k < TA_NKINDS; k++)
		if (ta_kinds[k].wire == wire)
			return k;
	return -1;
}

static inline int over_sab(ArrayObject *a)
{
	return a->region != NULL;
}

char *ta_base(ArrayObject *a)
{
	Py_ssize_t size;
	char *data;

	if (over_sab(a))
		return (char *)pyshm_region_data(a->region) + a->byte_offset;
	data = arraybuffer_data(a->buffer, &size);
	return data ? data + a->byte_offset : NULL;
}

/* Elements in view. @fresh asks the backend for the size, which another
 * process may have grown; otherwise the last size seen is used. */
static Py_ssize_t len_of(ArrayObject *a, bool fresh)
{
	uint64_t size;

	if (!over_sab(a))
		return arraybuffer_detached(a->buffer) ? 0 : a->length;
	if (a->length >= 0)
		return a->length;
	size = fresh ? pyshm_region_size(a->region) : pyshm_region_known_size(a->region);
	if (size < (uint64_t)a->byte_offset)
		return 0;
	return (Py_ssize_t)((size - (uint64_t)a->byte_offset) / (uint64_t)a->elsize);
}

Py_ssize_t ta_len(ArrayObject *a)
{
	return len_of(a, true);
}

static int detached_error(ArrayObject *a)
{
	PyErr_Format(PyExc_TypeError, "%s over a detached ArrayBuffer", ta_kinds[a->kind].name);
	return -1;
}

void *ta_slot(ArrayObject *a, PyObject *arg)
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
	if (!over_sab(a) && arraybuffer_detached(a->buffer)) {
		detached_error(a);
		return NULL;
	}
	n = len_of(a, false);
	if (i < 0)
		i += n;
	if ((i < 0 || i >= n) && a->length < 0) {
		/* Maybe grown elsewhere: look again before refusing. */
		if (i < 0)
			i -= n;
		n = len_of(a, true);
		if (i < 0)
			i += n;
	}
	if (i < 0 || i >= n)
		goto out_of_range;
	return ta_base(a) + i * a->elsize;

out_of_range:
	PyErr_Clear();
	PyErr_SetString(PyExc_IndexError, "typed array index out of range");
	return NULL;
}

/* ---- values ------------------------------------------------------------ */

/* An int, wrapped to 64 bits (then to the element, by the caller). */
static int int_bits(PyObject *v, uint64_t *out)
{
	unsigned long long x;

	if (PyLong_CheckExact(v)) {
		x = PyLong_AsUnsignedLongLongMask(v);
	} else {
		PyObject *idx = PyNumber_Index(v);

		if (!idx)
			return -1;
		x = PyLong_AsUnsignedLongLongMask(idx);
		Py_DECREF(idx);
	}
	if (x == (unsigned long long)-1 && PyErr_Occurred())
		return -1;
	*out = x;
	return 0;
}

/* Uint8ClampedArray's ToUint8Clamp: clamp to 0..255, ties to even, NaN 0. */
static int clamped_bits(PyObject *v, uint64_t *out)
{
	double d;

	if (PyIndex_Check(v)) {
		PyObject *idx = PyNumber_Index(v);
		long long x;
		int overflow;

		if (!idx)
			return -1;
		x = PyLong_AsLongLongAndOverflow(idx, &overflow);
		Py_DECREF(idx);
		if (x == -1 && !overflow && PyErr_Occurred())
			return -1;
		*out = overflow > 0 || x > 255 ? 255 : overflow < 0 || x < 0 ? 0 : (uint64_t)x;
		return 0;
	}
	d = PyFloat_AsDouble(v);
	if (d == -1.0 && PyErr_Occurred())
		return -1;
	if (isnan(d) || d <= 0)
		*out = 0;
	else if (d >= 255)
		*out = 255;
	else
		*out = (uint64_t)nearbyint(d);	/* the default mode: ties to even */
	return 0;
}

int ta_unbox(int kind, PyObject *v, uint64_t *bits)
{
	unsigned int flags = ta_kinds[kind].flags;
	double d;

	if (flags & TA_F_CLAMPED)
		return clamped_bits(v, bits);
	if (flags & TA_F_FLOAT) {
		d = PyFloat_AsDouble(v);
		if (d == -1.0 && PyErr_Occurred())
			return -1;
		if (kind == TA_FLOAT32) {
			float f = (float)d;	/* to nearest, as Math.fround() */
			uint32_t u;

			memcpy(&u, &f, 4);
			*bits = u;
		} else {
			memcpy(bits, &d, 8);
		}
		return 0;
	}
	return int_bits(v, bits);
}

PyObject *ta_box(int kind, uint64_t bits)
{
	switch (kind) {
	case TA_INT8:
		return PyLong_FromLong((int8_t)bits);
	case TA_UINT8:
	case TA_UINT8C:
		return PyLong_FromLong((uint8_t)bits);
	case TA_INT16:
		return PyLong_FromLong((int16_t)bits);
	case TA_UINT16:
		return PyLong_FromLong((uint16_t)bits);
	case TA_INT32:
		return PyLong_FromLong((int32_t)bits);
	case TA_UINT32:
		return PyLong_FromUnsignedLong((uint32_t)bits);
	case TA_INT64:
		return PyLong_FromLongLong((int64_t)bits);
	case TA_UINT64:
		return PyLong_FromUnsignedLongLong(bits);
	case TA_FLOAT32: {
		uint32_t u = (uint32_t)bits;
		float f;

		memcpy(&f, &u, 4);
		return PyFloat_FromDouble(f);
	}
	default: {
		double d;

		memcpy(&d, &bits, 8);
		return PyFloat_FromDouble(d);
	}
	}
}

/* ---- element access (relaxed atomics, so a value is never torn) -------- */

static PyObject *array_item(ArrayObject *a, Py_ssize_t i)
{
	Py_ssize_t n = ta_len(a);

	if (n == 0 && !over_sab(a) && arraybuffer_detached(a->buffer)) {
		detached_error(a);
		return NULL;
	}
	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "typed array index out of range");
		return NULL;
	}
	return ta_box(a->kind, ta_load_bits(ta_base(a) + i * a->elsize, a->elsize,
					    memory_order_relaxed));
}

static int check_writable(ArrayObject *a)
{
	if (over_sab(a) && (pyshm_region_flags(a->region) & PYSHM_REGION_SEALED)) {
		PyErr_SetString(PyExc_TypeError, "the SharedArrayBuffer is read-only");
		return -1;
	}
	return 0;
}

static int array_ass_item(ArrayObject *a, Py_ssize_t i, PyObject *v)
{
	Py_ssize_t n;
	uint64_t x;

	if (!v) {
		PyErr_SetString(PyExc_TypeError, "typed array elements cannot be deleted");
		return -1;
	}
	n = ta_len(a);
	if (n == 0 && !over_sab(a) && arraybuffer_detached(a->buffer))
		return detached_error(a);
	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "typed array index out of range");
		return -1;
	}
	if (ta_unbox(a->kind, v, &x) < 0 || check_writable(a) < 0)
		return -1;
	/* The value's conversion may have run Python code (__index__,
	 * __float__) that detached the buffer: look again. */
	if (i >= ta_len(a)) {
		if (!over_sab(a) && arraybuffer_detached(a->buffer))
			return detached_error(a);
		PyErr_SetString(PyExc_IndexError, "typed array index out of range");
		return -1;
	}
	ta_store_bits(ta_base(a) + i * a->elsize, a->elsize, x, memory_order_relaxed);
	return 0;
}

static Py_ssize_t array_length(ArrayObject *a)
{
	return ta_len(a);
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
			i += ta_len(a);
		return array_item(a, i);
	}
	if (PySlice_Unpack(key, &start, &stop, &step) < 0)
		return NULL;
	if (!over_sab(a) && arraybuffer_detached(a->buffer)) {
		detached_error(a);
		return NULL;
	}
	n = PySlice_AdjustIndices(ta_len(a), &start, &stop, step);
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
		i += ta_len(a);
	return array_ass_item(a, i, v);
}

/* ---- buffer protocol ----------------------------------------------------- */

static int array_getbuffer(ArrayObject *a, Py_buffer *view, int flags)
{
	int readonly = over_sab(a) && (pyshm_region_flags(a->region) & PYSHM_REGION_SEALED);

	if (!over_sab(a) && arraybuffer_detached(a->buffer))
		return detached_error(a);
	if ((flags & PyBUF_WRITABLE) && readonly) {
		PyErr_SetString(PyExc_BufferError, "the SharedArrayBuffer is read-only");
		return -1;
	}
	if (!over_sab(a) && arraybuffer_pin_check(a->buffer) < 0)
		return -1;
	view->obj = Py_NewRef(a);
	view->buf = ta_base(a);
	view->len = ta_len(a) * a->elsize;
	view->readonly = readonly;
	view->itemsize = a->elsize;
	view->format = (flags & PyBUF_FORMAT) ? (char *)ta_kinds[a->kind].format : NULL;
	view->ndim = 1;
	a->view_shape = ta_len(a);
	view->shape = (flags & PyBUF_ND) ? &a->view_shape : NULL;
	view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &view->itemsize : NULL;
	view->suboffsets = NULL;
	view->internal = NULL;
	a->exports++;
	if (!over_sab(a))
		arraybuffer_export(a->buffer, 1);
	return 0;
}

static void array_releasebuffer(ArrayObject *a, Py_buffer *view)
{
	a->exports--;
	if (!over_sab(a))
		arraybuffer_export(a->buffer, -1);
}

/* ---- construction -------------------------------------------------------- */

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

/* The view of @kind over @buffer (a SharedArrayBuffer or ArrayBuffer):
 * checked against its size. */
static PyObject *ta_new(pymod_state *st, int kind, PyObject *buffer, Py_ssize_t off,
			Py_ssize_t len)
{
	struct pyshm_region *r = sab_region(st, buffer);
	int elsize = ta_kinds[kind].elsize, tracks;
	uint64_t size;
	ArrayObject *a;

	if (r) {
		size = pyshm_region_size(r);
		tracks = !!(pyshm_region_flags(r) & PYSHM_REGION_GROWABLE);
	} else {
		Py_ssize_t n;

		if (!arraybuffer_check(st, buffer))
			return PyErr_Format(PyExc_TypeError, "%s() needs a SharedArrayBuffer, an "
					    "ArrayBuffer or a length, not %.100s",
					    ta_kinds[kind].name, Py_TYPE(buffer)->tp_name);
		if (arraybuffer_detached(buffer))
			return PyErr_Format(PyExc_TypeError, "%s() over a detached ArrayBuffer",
					    ta_kinds[kind].name);
		arraybuffer_data(buffer, &n);
		size = (uint64_t)n;
		tracks = 0;
	}
	if (off < 0 || off % elsize)
		return PyErr_Format(PyExc_ValueError,
				    "byte_offset must be a non-negative multiple of %d", elsize);
	if ((uint64_t)off > size)
		return PyErr_Format(PyExc_ValueError, "byte_offset %zd is past the end (%llu)",
				    off, (unsigned long long)size);
	if (len < 0) {
		/* Fixed-size buffers need whole elements; growable ones track. */
		if (!tracks && (size - (uint64_t)off) % (uint64_t)elsize)
			return PyErr_Format(PyExc_ValueError,
					    "buffer length minus byte_offset must be a multiple of %d",
					    elsize);
		if (!tracks)
			len = (Py_ssize_t)((size - (uint64_t)off) / (uint64_t)elsize);
	} else if ((uint64_t)len > (size - (uint64_t)off) / (uint64_t)elsize) {
		return PyErr_Format(PyExc_ValueError,
				    "byte_offset %zd + length %zd elements of %d bytes exceeds "
				    "the buffer (%llu bytes)", off, len, elsize,
				    (unsigned long long)size);
	}
	a = PyObject_GC_New(ArrayObject, st->ta_types[kind]);
	if (!a)
		return NULL;
	a->buffer = Py_NewRef(buffer);
	a->region = r;
	a->byte_offset = off;
	a->length = len;
	a->elsize = elsize;
	a->kind = kind;
	a->exports = 0;
	a->view_shape = 0;
	PyObject_GC_Track(a);
	return (PyObject *)a;
}

/* T(length): a new ArrayBuffer of length elements. */
static PyObject *ta_new_length(pymod_state *st, int kind, PyObject *len_obj)
{
	int elsize = ta_kinds[kind].elsize;
	PyObject *ab, *a;
	uint64_t n;

	if (sab_size_arg(len_obj, "length", &n) < 0)
		return NULL;
	if (n > (uint64_t)PY_SSIZE_T_MAX / (uint64_t)elsize)
		return PyErr_Format(PyExc_ValueError, "length is too large (at most %zd)",
				    PY_SSIZE_T_MAX / elsize);
	ab = arraybuffer_new(st, n * (uint64_t)elsize);
	if (!ab)
		return NULL;
	a = ta_new(st, kind, ab, 0, (Py_ssize_t)n);
	Py_DECREF(ab);
	return a;
}

static PyObject *array_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "buffer", "byte_offset", "length", "sab", NULL };
	pymod_state *st = get_state_by_cls(type);
	PyObject *buf = NULL, *off_obj = NULL, *len_obj = Py_None, *sab = NULL;
	Py_ssize_t off = 0, len = -1;
	int kind, big_off = 0, big_len = 0;

	for (kind = 0; kind < TA_NKINDS && st->ta_types[kind] != type; kind++)
		;
	if (kind == TA_NKINDS)
		return PyErr_Format(PyExc_TypeError, "cannot create '%s' objects", type->tp_name);
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOO$O", kwlist, &buf, &off_obj, &len_obj,
					 &sab))
		return NULL;
	/* "sab" is the name DESIGN.md §3 gives the first argument. */
	if (buf && sab)
		return PyErr_Format(PyExc_TypeError, "%s() got 'buffer' and 'sab': give one",
				    ta_kinds[kind].name);
	if (!buf)
		buf = sab;
	if (!buf)
		return PyErr_Format(PyExc_TypeError,
				    "%s() missing required argument 'buffer' (pos 1)",
				    ta_kinds[kind].name);
	if (!sab_region(st, buf) && !arraybuffer_check(st, buf) && PyIndex_Check(buf)) {
		if (off_obj || len_obj != Py_None)
			return PyErr_Format(PyExc_TypeError, "%s(length) takes no byte_offset or "
					    "length", ta_kinds[kind].name);
		return ta_new_length(st, kind, buf);
	}
	if (off_obj && clipped_arg(off_obj, &off, &big_off) < 0)
		return NULL;
	if (len_obj != Py_None) {
		if (clipped_arg(len_obj, &len, &big_len) < 0)
			return NULL;
		if (len < 0)
			return PyErr_Format(PyExc_ValueError, "length must not be negative");
	}
	if (!sab_region(st, buf) && !arraybuffer_check(st, buf))
		return PyErr_Format(PyExc_TypeError, "%s() needs a SharedArrayBuffer, an "
				    "ArrayBuffer or a length, not %.100s", ta_kinds[kind].name,
				    Py_TYPE(buf)->tp_name);
	/* Past any buffer: say so with the value given. */
	if (big_off || big_len) {
		PyObject *v = PyNumber_Index(big_off ? off_obj : len_obj);
		Py_ssize_t size = 0;

		if (!v)
			return NULL;
		if (sab_region(st, buf))
			size = (Py_ssize_t)pyshm_region_size(sab_region(st, buf));
		else
			arraybuffer_data(buf, &size);
		if (big_off)
			PyErr_Format(PyExc_ValueError, "byte_offset %S is past the end (%zd)", v,
				     size);
		else
			PyErr_Format(PyExc_ValueError, "byte_offset %zd + length %S elements of %d "
				     "bytes exceeds the buffer (%zd bytes)", off, v,
				     ta_kinds[kind].elsize, size);
		Py_DECREF(v);
		return NULL;
	}
	return ta_new(st, kind, buf, off, len);
}

PyObject *typed_array_new(pymod_state *st, int wire, PyObject *buffer, Py_ssize_t off,
			  Py_ssize_t len)
{
	int kind = kind_of_wire(wire);

	if (kind < 0)
		return PyErr_Format(PyExc_ValueError, "unknown typed array type %d", wire);
	if (len < 0 && !sab_region(st, buffer) && arraybuffer_check(st, buffer) &&
	    !arraybuffer_detached(buffer)) {
		/* Only a growable SharedArrayBuffer's views track: to the end. */
		Py_ssize_t size;

		arraybuffer_data(buffer, &size);
		if (off >= 0 && off <= size)
			len = (size - off) / ta_kinds[kind].elsize;
	}
	return ta_new(st, kind, buffer, off, len);
}

int typed_array_info(pymod_state *st, PyObject *obj, int *wire, PyObject **buffer,
		     Py_ssize_t *byte_offset, Py_ssize_t *length)
{
	ArrayObject *a = (ArrayObject *)obj;

	if (ta_kind_of(st, obj) < 0)
		return 0;
	*wire = ta_kinds[a->kind].wire;
	*buffer = a->buffer;
	*byte_offset = a->byte_offset;
	*length = a->length;
	return 1;
}

/* ---- the object ------------------------------------------------------------ */

static int array_traverse(ArrayObject *a, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(a));
	Py_VISIT(a->buffer);
	return 0;
}

static int array_clear(ArrayObject *a)
{
	/* The buffer is not cleared: the region pointer borrows from it. */
	return 0;
}

static void array_dealloc(ArrayObject *a)
{
	PyTypeObject *tp = Py_TYPE(a);

	PyObject_GC_UnTrack(a);
	Py_CLEAR(a->buffer);
	tp->tp_free(a);
	Py_DECREF(tp);
}

/* <Int32Array length=4 byte_offset=0 buffer=<SharedArrayBuffer ...>> */
static PyObject *array_repr(ArrayObject *a)
{
	return PyUnicode_FromFormat("<%s length=%zd byte_offset=%zd%s buffer=%R>",
				    ta_kinds[a->kind].name, ta_len(a), a->byte_offset,
				    a->length < 0 ? " length-tracking" : "", a->buffer);
}

static PyObject *array_get_buffer(ArrayObject *a, void *c)
{
	return Py_NewRef(a->buffer);
}

static PyObject *array_get_byte_offset(ArrayObject *a, void *c)
{
	/* As JavaScript: 0 once the buffer is detached. */
	if (!over_sab(a) && arraybuffer_detached(a->buffer))
		return PyLong_FromLong(0);
	return PyLong_FromSsize_t(a->byte_offset);
}

static PyObject *array_get_length(ArrayObject *a, void *c)
{
	return PyLong_FromSsize_t(ta_len(a));
}

static PyObject *array_get_byte_length(ArrayObject *a, void *c)
{
	return PyLong_FromSsize_t(ta_len(a) * a->elsize);
}


static PyGetSetDef array_getset[] = {
	{ "buffer", (getter)array_get_buffer, NULL,
	  "The SharedArrayBuffer or ArrayBuffer, the very object given.", NULL },
	{ "byte_offset", (getter)array_get_byte_offset, NULL,
	  "Where the first element lies in the buffer, in bytes.", NULL },
	{ "byte_length", (getter)array_get_byte_length, NULL,
	  "length * BYTES_PER_ELEMENT.", NULL },
	{ "length", (getter)array_get_length, NULL,
	  "The number of elements (len(a)); it follows a growable buffer\n"
	  "when no length was given, and is 0 once an ArrayBuffer is detached.", NULL },
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
	{ Py_tp_methods, ta_methods },				\
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

#define ARRAY_DOC(name, what, ops)					\
	name "(buffer, byte_offset=0, length=None)\n--\n\n"		\
	what " over a SharedArrayBuffer or an ArrayBuffer, from\n"	\
	"byte_offset (a multiple of the element size), length elements\n" \
	"(default: to the end, following a growable SharedArrayBuffer as it\n" \
	"grows); " name "(length) makes a new ArrayBuffer. a[i], a[i] = v,\n" \
	"len(a), as in JavaScript: " ops

#define INT_OPS "integers wrap modulo 2**bits. Atomics:\n"		\
	"load, store, add, sub, and_, or_, xor, exchange, compare_exchange."
#define WAIT_OPS INT_OPS "\nwait, wait_async and notify (over a SharedArrayBuffer)."

static PyType_Slot int8_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Int8Array",
	"8-bit signed integers", INT_OPS)) };
static PyType_Slot uint8_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Uint8Array",
	"8-bit unsigned integers", INT_OPS)) };
static PyType_Slot uint8c_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Uint8ClampedArray",
	"8-bit unsigned integers", "values clamp to 0..255 and\n"
	"round half to even (ints and floats). No Atomics.")) };
static PyType_Slot int16_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Int16Array",
	"16-bit signed integers", INT_OPS)) };
static PyType_Slot uint16_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Uint16Array",
	"16-bit unsigned integers", INT_OPS)) };
static PyType_Slot int32_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Int32Array",
	"32-bit signed integers", WAIT_OPS)) };
static PyType_Slot uint32_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Uint32Array",
	"32-bit unsigned integers", INT_OPS)) };
static PyType_Slot int64_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Int64Array",
	"64-bit signed integers", WAIT_OPS)) };
static PyType_Slot uint64_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Uint64Array",
	"64-bit unsigned integers", INT_OPS)) };
static PyType_Slot float32_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Float32Array",
	"IEEE binary32 numbers", "values round to the nearest\nbinary32. No Atomics.")) };
static PyType_Slot float64_slots[] = { ARRAY_SLOTS(ARRAY_DOC("Float64Array",
	"IEEE binary64 numbers", "floats. No Atomics.")) };

#define ARRAY_SPEC(var, tname, tslots)					\
static PyType_Spec var = {						\
	.name = "pyshm_workers." tname,					\
	.basicsize = sizeof(ArrayObject),				\
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, \
	.slots = tslots,						\
}

ARRAY_SPEC(int8_spec, "Int8Array", int8_slots);
ARRAY_SPEC(uint8_spec, "Uint8Array", uint8_slots);
ARRAY_SPEC(uint8c_spec, "Uint8ClampedArray", uint8c_slots);
ARRAY_SPEC(int16_spec, "Int16Array", int16_slots);
ARRAY_SPEC(uint16_spec, "Uint16Array", uint16_slots);
ARRAY_SPEC(int32_spec, "Int32Array", int32_slots);
ARRAY_SPEC(uint32_spec, "Uint32Array", uint32_slots);
ARRAY_SPEC(int64_spec, "Int64Array", int64_slots);
ARRAY_SPEC(uint64_spec, "Uint64Array", uint64_slots);
ARRAY_SPEC(float32_spec, "Float32Array", float32_slots);
ARRAY_SPEC(float64_spec, "Float64Array", float64_slots);

static PyType_Spec *const specs[TA_NKINDS] = {
	[TA_INT8] = &int8_spec,
	[TA_UINT8] = &uint8_spec,
	[TA_UINT8C] = &uint8c_spec,
	[TA_INT16] = &int16_spec,
	[TA_UINT16] = &uint16_spec,
	[TA_INT32] = &int32_spec,
	[TA_UINT32] = &uint32_spec,
	[TA_INT64] = &int64_spec,
	[TA_UINT64] = &uint64_spec,
	[TA_FLOAT32] = &float32_spec,
	[TA_FLOAT64] = &float64_spec,
};

int typed_arrays_init(PyObject *mod, pymod_state *st)
{
	PyObject *bpe;
	int k, ret;

	for (k = 0; k < TA_NKINDS; k++) {
		PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(mod, specs[k], NULL);

		st->ta_types[k] = tp;
		if (!tp)
			return -1;
		/* BYTES_PER_ELEMENT on the class, as JavaScript has it
		 * (instances see it too). */
		bpe = PyLong_FromLong(ta_kinds[k].elsize);
		if (!bpe)
			return -1;
		ret = PyDict_SetItemString(tp->tp_dict, "BYTES_PER_ELEMENT", bpe);
		Py_DECREF(bpe);
		if (ret < 0)
			return -1;
		PyType_Modified(tp);
		if (PyModule_AddType(mod, tp) < 0)
			return -1;
	}
	return 0;
}
