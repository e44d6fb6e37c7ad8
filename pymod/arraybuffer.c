// SPDX-License-Identifier: MIT
/*
 * ArrayBuffer: memory of one worker, copied when posted, moved when
 * transferred (post_message(ab, transfer=[ab])), which detaches the
 * sender's object. Small buffers live on the heap and travel inside the
 * message; from AB_REGION_MIN bytes up a buffer lives in a libpyshm region
 * of its own from the start, so that a transfer hands the region over by
 * reference and copies nothing, to another process too.
 */
#include "typed_array.h"

/* Below this a copy into the message costs less than a region (a memfd,
 * a mapping): measured about 20 us to make and map one, 64 KiB copy in 3. */
#define AB_REGION_MIN	(64 * 1024)

typedef struct {
	PyObject_HEAD
	char *data;			/* NULL when detached */
	Py_ssize_t size;		/* 0 when detached */
	struct pyshm_region *region;	/* owns data, or NULL (heap) */
	bool detached;
	bool pinned;			/* in a transfer being committed */
	Py_ssize_t exports;		/* live buffer views, its typed arrays' too */
	PyObject *weakreflist;
} AbObject;

/* What an empty buffer points at: the buffer protocol wants memory. */
static char empty[1];

#define AB(o) ((AbObject *)(o))

static AbObject *ab_alloc(pymod_state *st)
{
	AbObject *ab = PyObject_GC_New(AbObject, st->arraybuffer_type);

	if (!ab)
		return NULL;
	ab->data = empty;
	ab->size = 0;
	ab->region = NULL;
	ab->detached = false;
	ab->pinned = false;
	ab->exports = 0;
	ab->weakreflist = NULL;
	PyObject_GC_Track(ab);
	return ab;
}

PyObject *arraybuffer_from_region(pymod_state *st, struct pyshm_region *r)
{
	AbObject *ab = ab_alloc(st);
	uint64_t size = pyshm_region_size(r);

	if (!ab) {
		pyshm_region_put(r);
		return NULL;
	}
	if (size > (uint64_t)PY_SSIZE_T_MAX) {
		Py_DECREF(ab);
		pyshm_region_put(r);
		return PyErr_Format(PyExc_ValueError, "ArrayBuffer region too large");
	}
	ab->region = r;
	ab->size = (Py_ssize_t)size;
	if (size)
		ab->data = pyshm_region_data(r);
	return (PyObject *)ab;
}

/* New, zero-filled, not yet filled in by the caller. */
static PyObject *ab_new(pymod_state *st, uint64_t n)
{
	struct pyshm_region *r;
	AbObject *ab;
	int ret;

	if (n >= AB_REGION_MIN) {
		if (sab_check_backed("byte_length", n) < 0)
			return NULL;
		Py_BEGIN_ALLOW_THREADS
		ret = pyshm_region_create(n, 0, 0, &r);
		Py_END_ALLOW_THREADS
		if (ret < 0)
			return sab_region_refused(st, ret, "ArrayBuffer");
		return arraybuffer_from_region(st, r);
	}
	ab = ab_alloc(st);
	if (!ab)
		return NULL;
	if (n) {
		ab->data = PyMem_RawCalloc(1, (size_t)n);
		if (!ab->data) {
			ab->data = empty;
			Py_DECREF(ab);
			return PyErr_NoMemory();
		}
		ab->size = (Py_ssize_t)n;
	}
	return (PyObject *)ab;
}

PyObject *arraybuffer_new(pymod_state *st, uint64_t n)
{
	return ab_new(st, n);
}

PyObject *arraybuffer_from_bytes(pymod_state *st, const void *p, size_t n)
{
	PyObject *ab = ab_new(st, n);

	if (ab && n)
		memcpy(AB(ab)->data, p, n);
	return ab;
}

char *arraybuffer_data(PyObject *obj, Py_ssize_t *size)
{
	*size = AB(obj)->size;
	return AB(obj)->detached ? NULL : AB(obj)->data;
}

int arraybuffer_detached(PyObject *obj)
{
	return AB(obj)->detached;
}

struct pyshm_region *arraybuffer_region(PyObject *obj)
{
	return AB(obj)->region;
}

void arraybuffer_export(PyObject *obj, int delta)
{
	AB(obj)->exports += delta;
}

int arraybuffer_pin_check(PyObject *obj)
{
	if (!AB(obj)->pinned)
		return 0;
	PyErr_SetString(PyExc_BufferError, "the ArrayBuffer is being transferred");
	return -1;
}

int arraybuffer_pin(pymod_state *st, PyObject *obj)
{
	AbObject *ab = AB(obj);

	if (ab->detached) {
		PyErr_SetString(st->DataCloneError,
				"an ArrayBuffer in transfer is detached (already transferred)");
		return -1;
	}
	if (ab->exports) {
		PyErr_Format(PyExc_BufferError, "cannot transfer an ArrayBuffer while %zd buffer "
			     "view%s of it (memoryview, numpy array...) %s alive", ab->exports,
			     ab->exports == 1 ? "" : "s", ab->exports == 1 ? "is" : "are");
		return -1;
	}
	ab->pinned = true;
	return 0;
}

void arraybuffer_unpin(PyObject *obj)
{
	AB(obj)->pinned = false;
}

static void ab_release(AbObject *ab)
{
	if (ab->region)
		pyshm_region_put(ab->region);
	else if (ab->data != empty)
		PyMem_RawFree(ab->data);
	ab->region = NULL;
	ab->data = empty;
}

void arraybuffer_detach(PyObject *obj)
{
	AbObject *ab = AB(obj);

	/* The message holds the region now (its own reference), or a copy
	 * of the bytes. */
	ab_release(ab);
	ab->size = 0;
	ab->detached = true;
	ab->pinned = false;
}

static PyObject *ab_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "n", NULL };
	pymod_state *st = get_state_by_cls(type);
	PyObject *len_obj;
	uint64_t n;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:ArrayBuffer", kwlist, &len_obj))
		return NULL;
	if (sab_size_arg(len_obj, "byte_length", &n) < 0)
		return NULL;
	return ab_new(st, n);
}

static int ab_traverse(AbObject *ab, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(ab));
	return 0;
}

static void ab_dealloc(AbObject *ab)
{
	PyTypeObject *tp = Py_TYPE(ab);

	PyObject_GC_UnTrack(ab);
	if (ab->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)ab);
	ab_release(ab);
	tp->tp_free(ab);
	Py_DECREF(tp);
}

static int ab_detached_error(void)
{
	PyErr_SetString(PyExc_TypeError, "the ArrayBuffer is detached");
	return -1;
}

static int ab_getbuffer(AbObject *ab, Py_buffer *view, int flags)
{
	int ret;

	if (ab->detached)
		return ab_detached_error();
	if (arraybuffer_pin_check((PyObject *)ab) < 0)
		return -1;
	ret = PyBuffer_FillInfo(view, (PyObject *)ab, ab->data, ab->size, 0, flags);
	if (ret == 0)
		ab->exports++;
	return ret;
}

static void ab_releasebuffer(AbObject *ab, Py_buffer *view)
{
	ab->exports--;
}

static PyObject *ab_get_byte_length(AbObject *ab, void *closure)
{
	return PyLong_FromSsize_t(ab->size);
}

static PyObject *ab_get_detached(AbObject *ab, void *closure)
{
	return PyBool_FromLong(ab->detached);
}

static Py_ssize_t ab_length(AbObject *ab)
{
	return ab->size;
}

/* A slice bound as JavaScript reads it: negative counts from the end,
 * then clamped to 0..len. None keeps @out. */
static int bound_arg(PyObject *arg, Py_ssize_t len, Py_ssize_t *out)
{
	Py_ssize_t v;

	if (arg == Py_None)
		return 0;
	v = PyNumber_AsSsize_t(arg, NULL);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < 0)
		v = v < -len ? 0 : v + len;
	*out = v > len ? len : v;
	return 0;
}

static PyObject *ab_slice(AbObject *ab, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "start", "end", NULL };
	pymod_state *st = get_state_by_type(Py_TYPE(ab));
	PyObject *start_obj = Py_None, *end_obj = Py_None;
	Py_ssize_t start = 0, end = ab->size;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:slice", kwlist, &start_obj, &end_obj))
		return NULL;
	if (ab->detached) {
		ab_detached_error();
		return NULL;
	}
	if (bound_arg(start_obj, ab->size, &start) < 0 ||
	    bound_arg(end_obj, ab->size, &end) < 0)
		return NULL;
	/* Python code (__index__) may have detached it meanwhile. */
	if (ab->detached) {
		ab_detached_error();
		return NULL;
	}
	if (end < start)
		end = start;
	return arraybuffer_from_bytes(st, ab->data + start, (size_t)(end - start));
}

/* pickle and copy: the bytes, as a new buffer. */
static PyObject *ab_reduce(AbObject *ab, PyObject *unused)
{
	PyObject *fn, *bytes;

	if (ab->detached) {
		ab_detached_error();
		return NULL;
	}
	fn = PyObject_GetAttrString((PyObject *)Py_TYPE(ab), "_from_bytes");
	if (!fn)
		return NULL;
	bytes = PyBytes_FromStringAndSize(ab->data, ab->size);
	if (!bytes) {
		Py_DECREF(fn);
		return NULL;
	}
	return Py_BuildValue("N(N)", fn, bytes);
}

static PyObject *ab_from_bytes(PyTypeObject *cls, PyObject *arg)
{
	pymod_state *st = get_state_by_cls(cls);
	Py_buffer view;
	PyObject *ab;

	if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	ab = arraybuffer_from_bytes(st, view.buf, (size_t)view.len);
	PyBuffer_Release(&view);
	return ab;
}

/* <ArrayBuffer byte_length=16>, <ArrayBuffer detached> */
static PyObject *ab_repr(AbObject *ab)
{
	if (ab->detached)
		return PyUnicode_FromString("<ArrayBuffer detached>");
	return PyUnicode_FromFormat("<ArrayBuffer byte_length=%zd>", ab->size);
}

static PyMethodDef ab_methods[] = {
	{ "slice", (PyCFunction)(void (*)(void))ab_slice, METH_VARARGS | METH_KEYWORDS,
	  "slice($self, /, start=0, end=None)\n--\n\n"
	  "A new ArrayBuffer with a copy of bytes start..end; negative indexes\n"
	  "count from the end, as in JavaScript." },
	{ "_from_bytes", (PyCFunction)ab_from_bytes, METH_O | METH_CLASS,
	  "_from_bytes($type, data, /)\n--\n\nA new ArrayBuffer with a copy of data "
	  "(unpickling)." },
	{ "__reduce__", (PyCFunction)ab_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef ab_getset[] = {
	{ "byte_length", (getter)ab_get_byte_length, NULL,
	  "Size in bytes; 0 once detached.", NULL },
	{ "detached", (getter)ab_get_detached, NULL,
	  "True once transferred to another worker (its memory went with it).", NULL },
	{ NULL }
};

static PyMemberDef ab_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(AbObject, weakreflist), READONLY },
	{ NULL }
};

static PyType_Slot ab_slots[] = {
	{ Py_tp_doc, "ArrayBuffer(n)\n--\n\n"
		     "n bytes of this worker's own memory, zero-filled, with the buffer\n"
		     "protocol. Posting it sends a copy; post_message(ab, transfer=[ab])\n"
		     "moves it without copying and detaches this object." },
	{ Py_tp_new, ab_tp_new },
	{ Py_tp_dealloc, ab_dealloc },
	{ Py_tp_traverse, ab_traverse },
	{ Py_tp_repr, ab_repr },
	{ Py_tp_methods, ab_methods },
	{ Py_tp_getset, ab_getset },
	{ Py_tp_members, ab_members },
	{ Py_bf_getbuffer, ab_getbuffer },
	{ Py_bf_releasebuffer, ab_releasebuffer },
	{ Py_sq_length, ab_length },
	{ 0, NULL }
};

static PyType_Spec ab_spec = {
	.name = "pyshm_workers.ArrayBuffer",
	.basicsize = sizeof(AbObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = ab_slots,
};

int arraybuffer_init(PyObject *mod, pymod_state *st)
{
	st->arraybuffer_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &ab_spec, NULL);
	if (!st->arraybuffer_type)
		return -1;
	return PyModule_AddType(mod, st->arraybuffer_type);
}
