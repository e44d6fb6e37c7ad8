// SPDX-License-Identifier: MIT
/*
 * numpy arrays as clone types of their own, both directions
 * (wire-format.rst, "numpy arrays"): an array of plain items travels as
 * its bytes and a description of its dtype (NDARRAY), an object array item
 * by item (NDARRAY_OBJECT), an array over a SharedArrayBuffer as a view of
 * the same memory (NDARRAY_VIEW). A large array's receiver builds it over
 * the region the message came in (clone_env.keep), which it then owns: no
 * copy on the receiving side.
 *
 * Nothing here is compiled against numpy: the encoder meets ndarrays of a
 * numpy already imported and reads them through the buffer protocol and
 * the dtype's attributes; the decoder imports numpy for the first message
 * that carries an array, and builds them with numpy.empty(), ndarray() and
 * dtype(). numpy 1.x and 2.x both work.
 */
#include "clone_decode.h"
#include "clone_encode.h"

/* Most nesting of structured dtypes (fields and subarrays) we take. */
#define DTYPE_MAX_DEPTH	32
/* The item kinds whose bytes are the whole item (no pointers). */
#define PLAIN_KINDS	"biufcmMSUV"

/* ---- the memory of a received array ------------------------------------ */

/*
 * The base of an array built over the region its message came in: it
 * holds the region (kept past the record, pyshm_ring_keep()) and lends its
 * bytes; the region goes back to its sender's pool when the array, and so
 * this, is gone.
 */
typedef struct {
	PyObject_HEAD
	struct pyshm_region *region;
	void *p;
	Py_ssize_t n;
} RegionMemoryObject;

static int rm_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	RegionMemoryObject *rm = (RegionMemoryObject *)self;

	return PyBuffer_FillInfo(view, self, rm->p, rm->n, 0, flags);
}

static void rm_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	pyshm_ring_kept_put(((RegionMemoryObject *)self)->region);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyObject *rm_repr(PyObject *self)
{
	return PyUnicode_FromFormat("<pyshm_workers._core._RegionMemory nbytes=%zd>",
				    ((RegionMemoryObject *)self)->n);
}

static PyObject *rm_get_nbytes(PyObject *self, void *unused)
{
	return PyLong_FromSsize_t(((RegionMemoryObject *)self)->n);
}

static PyObject *rm_get_address(PyObject *self, void *unused)
{
	return PyLong_FromVoidPtr(((RegionMemoryObject *)self)->p);
}

static PyGetSetDef rm_getset[] = {
	{ "nbytes", rm_get_nbytes, NULL, "The bytes it lends.", NULL },
	{ "address", rm_get_address, NULL, "Where they start.", NULL },
	{ NULL }
};

static PyType_Slot rm_slots[] = {
	{ Py_tp_doc, "The memory of a numpy array received without a copy: part of the\n"
		     "shared region its message came in, given back when the array dies." },
	{ Py_tp_dealloc, rm_dealloc },
	{ Py_tp_repr, rm_repr },
	{ Py_tp_getset, rm_getset },
	{ Py_bf_getbuffer, rm_getbuffer },
	{ 0, NULL }
};

static PyType_Spec rm_spec = {
	.name = "pyshm_workers._core._RegionMemory",
	.basicsize = sizeof(RegionMemoryObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
		 Py_TPFLAGS_IMMUTABLETYPE,
	.slots = rm_slots,
};

int numpy_init_types(PyObject *mod, pymod_state *st)
{
	st->region_memory_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &rm_spec, NULL);
	if (!st->region_memory_type)
		return -1;
	return PyModule_AddType(mod, st->region_memory_type);
}

/* ---- dtypes ---------------------------------------------------------------- */

/*
 * The wire's description of dtype @dt (an object np.dtype() rebuilds it
 * from): its str for a plain one ('<f8', '>M8[ns]', '|S5'), (base, shape)
 * for a subarray, {names, formats, offsets, itemsize[, aligned][, titles]}
 * for a structured one. New reference; NULL with an exception, or NULL
 * without one when an item holds anything but bytes (objects, strings of
 * numpy 2's StringDType, user dtypes).
 */
static PyObject *dtype_describe(PyObject *dt, int depth)
{
	PyObject *sub = NULL, *names = NULL, *fields = NULL, *desc = NULL, *v, *list[4] = { 0 };
	Py_ssize_t i, n;
	int titled = 0;

	if (depth > DTYPE_MAX_DEPTH)
		return NULL;
	sub = PyObject_GetAttrString(dt, "subdtype");
	names = sub ? PyObject_GetAttrString(dt, "names") : NULL;
	if (!names)
		goto out;
	if (sub != Py_None) {
		/* (base, shape) */
		if (!PyTuple_Check(sub) || PyTuple_GET_SIZE(sub) != 2)
			goto out;
		v = dtype_describe(PyTuple_GET_ITEM(sub, 0), depth + 1);
		if (v)
			desc = PyTuple_Pack(2, v, PyTuple_GET_ITEM(sub, 1));
		Py_XDECREF(v);
		goto out;
	}
	if (names == Py_None) {
		const char *s;

		desc = PyObject_GetAttrString(dt, "str");
		s = desc && PyUnicode_Check(desc) ? PyUnicode_AsUTF8(desc) : NULL;
		if (!s || strlen(s) < 3 || !strchr(PLAIN_KINDS, s[1]))
			Py_CLEAR(desc);
		if (!s)
			PyErr_Clear();
		goto out;
	}
	if (!PyTuple_Check(names) || !(fields = PyObject_GetAttrString(dt, "fields")))
		goto out;
	n = PyTuple_GET_SIZE(names);
	for (i = 0; i < 4; i++)
		if (!(list[i] = PyList_New(n)))
			goto out;
	for (i = 0; i < n; i++) {
		PyObject *name = PyTuple_GET_ITEM(names, i);
		PyObject *f = PyObject_GetItem(fields, name);

		if (!f || !PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 2) {
			Py_XDECREF(f);
			goto out;
		}
		v = dtype_describe(PyTuple_GET_ITEM(f, 0), depth + 1);
		if (!v) {
			Py_DECREF(f);
			goto out;
		}
		PyList_SET_ITEM(list[0], i, Py_NewRef(name));
		PyList_SET_ITEM(list[1], i, v);
		PyList_SET_ITEM(list[2], i, Py_NewRef(PyTuple_GET_ITEM(f, 1)));
		v = PyTuple_GET_SIZE(f) > 2 ? PyTuple_GET_ITEM(f, 2) : Py_None;
		titled |= v != Py_None;
		PyList_SET_ITEM(list[3], i, Py_NewRef(v));
		Py_DECREF(f);
	}
	desc = Py_BuildValue("{sOsOsOsN}", "names", list[0], "formats", list[1], "offsets",
			     list[2], "itemsize", PyObject_GetAttrString(dt, "itemsize"));
	v = desc ? PyObject_GetAttrString(dt, "isalignedstruct") : NULL;
	if (!v || (v == Py_True && PyDict_SetItemString(desc, "aligned", Py_True) < 0) ||
	    (titled && PyDict_SetItemString(desc, "titles", list[3]) < 0))
		Py_CLEAR(desc);
	Py_XDECREF(v);
out:
	for (i = 0; i < 4; i++)
		Py_XDECREF(list[i]);
	Py_XDECREF(fields);
	Py_XDECREF(names);
	Py_XDECREF(sub);
	return desc;
}

/* Is @s a plain dtype's str: [<>|=] kind digits [unit]? */
static int plain_typestr(PyObject *s)
{
	Py_ssize_t n, i = 2;
	const char *p;

	if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s))
		return 0;
	p = (const char *)PyUnicode_DATA(s);
	n = PyUnicode_GET_LENGTH(s);
	if (n < 3 || n > 32 || !strchr("<>|=", p[0]) || !p[1] || !strchr(PLAIN_KINDS, p[1]))
		return 0;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++;
	if (i == 2 || i - 2 > 12)
		return 0;
	if (i == n)
		return 1;
	/* A datetime or timedelta unit: "[ns]", "[25s]", "[generic]". */
	if ((p[1] != 'm' && p[1] != 'M') || p[i] != '[' || p[n - 1] != ']')
		return 0;
	for (i++; i < n - 1; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z')))
			return 0;
	return 1;
}

static int all_of(PyObject *list, Py_ssize_t n, int (*ok)(PyObject *, int), int depth)
{
	Py_ssize_t i;

	if (!list || !PyList_CheckExact(list) || PyList_GET_SIZE(list) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!ok(PyList_GET_ITEM(list, i), depth))
			return 0;
	return 1;
}

static int is_name(PyObject *v, int depth)
{
	return PyUnicode_CheckExact(v);
}

static int is_title(PyObject *v, int depth)
{
	return v == Py_None || PyUnicode_CheckExact(v);
}

static int is_offset(PyObject *v, int depth)
{
	return PyLong_CheckExact(v);
}

/*
 * Does @desc, from a peer, describe a dtype of plain items the way
 * dtype_describe() does, and nothing else? What np.dtype() is given is
 * checked here first: only strings, tuples, lists, dicts and ints of the
 * shapes above, plain kinds only (nothing that holds pointers).
 */
static int desc_ok(PyObject *desc, int depth)
{
	PyObject *v, *names;
	Py_ssize_t n, i;

	if (depth > DTYPE_MAX_DEPTH)
		return 0;
	if (PyUnicode_CheckExact(desc))
		return plain_typestr(desc);
	if (PyTuple_CheckExact(desc)) {
		if (PyTuple_GET_SIZE(desc) != 2 || !PyTuple_CheckExact(PyTuple_GET_ITEM(desc, 1)) ||
		    PyTuple_GET_SIZE(PyTuple_GET_ITEM(desc, 1)) > PYSHM_CLONE_MAX_NDIM)
			return 0;
		v = PyTuple_GET_ITEM(desc, 1);
		for (i = 0; i < PyTuple_GET_SIZE(v); i++)
			if (!PyLong_CheckExact(PyTuple_GET_ITEM(v, i)))
				return 0;
		return desc_ok(PyTuple_GET_ITEM(desc, 0), depth + 1);
	}
	if (!PyDict_CheckExact(desc) || PyDict_GET_SIZE(desc) > 6)
		return 0;
	/* Keys of str only: looking them up runs no code of the peer's. */
	i = 0;
	while (PyDict_Next(desc, &i, &v, NULL))
		if (!PyUnicode_CheckExact(v))
			return 0;
	names = PyDict_GetItemString(desc, "names");
	if (!names || !PyList_CheckExact(names))
		return 0;
	n = PyList_GET_SIZE(names);
	if (!all_of(names, n, is_name, 0) ||
	    !all_of(PyDict_GetItemString(desc, "formats"), n, desc_ok, depth + 1) ||
	    !all_of(PyDict_GetItemString(desc, "offsets"), n, is_offset, 0) ||
	    !(v = PyDict_GetItemString(desc, "itemsize")) || !PyLong_CheckExact(v))
		return 0;
	i = 4;
	if ((v = PyDict_GetItemString(desc, "aligned"))) {
		if (v != Py_True && v != Py_False)
			return 0;
		i++;
	}
	if ((v = PyDict_GetItemString(desc, "titles"))) {
		if (!all_of(v, n, is_title, 0))
			return 0;
		i++;
	}
	return PyDict_GET_SIZE(desc) == i;
}

/* ---- the encoder ----------------------------------------------------------------- */

int enc_is_ndarray(Encoder *e, PyTypeObject *tp)
{
	/* Only a numpy imported by now: the name first, then the type. */
	if (strcmp(tp->tp_name, "numpy.ndarray"))
		return 0;
	if (clone_cache_group(e->st, CG_NUMPY, 0) <= 0) {
		PyErr_Clear();
		return 0;
	}
	return (PyObject *)tp == cc_get(e->st, CC_NDARRAY);
}

static unsigned int varint_size(uint64_t v)
{
	unsigned int n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* The head shared by the three: tag, flags, ndim, shape. */
static int put_nd_head(Encoder *e, uint8_t tag, uint8_t flags, const Py_buffer *view)
{
	struct pyshm_clone_writer *w = &e->w;
	int i;

	if (pyshm_clone_reserve(w, 12 + 10 * (size_t)view->ndim) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(w, tag);
	pyshm_clone_raw_u8(w, flags);
	pyshm_clone_raw_varint(w, (uint64_t)view->ndim);
	for (i = 0; i < view->ndim; i++)
		pyshm_clone_raw_varint(w, (uint64_t)view->shape[i]);
	return 0;
}

/* A child value made for the message (a dtype's description). */
static int enc_made(Encoder *e, PyObject *v, const char *what)
{
	int ret;

	if (e->depth >= MAX_DEPTH)
		return enc_too_deep(e);
	e->depth++;
	ret = enc_value(e, v);
	e->depth--;
	if (ret < 0)
		path_text(e, what);
	return ret;
}

/* The SharedArrayBuffer an array's memory lies in (borrowed), or NULL. */
static PyObject *sab_under(Encoder *e, PyObject *arr)
{
	PyObject *base = PyObject_GetAttrString(arr, "base"), *next;
	int steps = 0;

	/* Views of views lead back to the array made over the buffer. */
	while (base && steps++ < 64 &&
	       PyObject_TypeCheck(base, (PyTypeObject *)cc_get(e->st, CC_NDARRAY))) {
		next = PyObject_GetAttrString(base, "base");
		Py_SETREF(base, next);
	}
	if (!base) {
		PyErr_Clear();
		return NULL;
	}
	if (PyMemoryView_Check(base) && PyMemoryView_GET_BASE(base))
		Py_SETREF(base, Py_NewRef(PyMemoryView_GET_BASE(base)));
	Py_DECREF(base);	/* the array holds it */
	return sab_region(e->st, base) ? base : NULL;
}

/*
 * @arr (@view) lies in the memory of @sab: write NDARRAY_VIEW, its offset
 * and strides there. 0, 1 when it does not lie inside the buffer's bytes
 * (it grew or shrank under it: copy), -1.
 */
static int enc_nd_view(Encoder *e, PyObject *arr, const Py_buffer *view, PyObject *desc,
		       PyObject *sab, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t lo = 0, hi = view->itemsize, off, i;
	Py_buffer sv;
	int ret;

	for (i = 0; i < view->ndim; i++) {
		if (view->shape[i] == 0)
			hi = lo = 0;
		if (view->shape[i] < 2 || hi == lo)
			continue;
		if (view->strides[i] < 0)
			lo += view->strides[i] * (view->shape[i] - 1);
		else
			hi += view->strides[i] * (view->shape[i] - 1);
	}
	if (PyObject_GetBuffer(sab, &sv, PyBUF_SIMPLE) < 0)
		return -1;
	ret = (char *)view->buf + lo < (char *)sv.buf ||
	      (char *)view->buf + hi > (char *)sv.buf + sv.len;
	off = (char *)view->buf - (char *)sv.buf;
	PyBuffer_Release(&sv);
	if (ret)
		return 1;
	if (put_nd_head(e, PYSHM_CLONE_NDARRAY_VIEW | M(memo),
			view->readonly ? PYSHM_CLONE_ND_READONLY : 0, view) < 0 ||
	    pyshm_clone_reserve(w, 20 + 10 * (size_t)view->ndim) < 0)
		return enc_nomem();
	for (i = 0; i < view->ndim; i++)
		pyshm_clone_raw_varint(w, pyshm_clone_zigzag(view->strides[i]));
	pyshm_clone_raw_varint(w, (uint64_t)view->itemsize);
	pyshm_clone_raw_varint(w, (uint64_t)off);
	if (enc_made(e, desc, ".dtype") < 0)
		return -1;
	Py_INCREF(sab);
	ret = enc_value(e, sab);
	Py_DECREF(sab);
	if (ret < 0) {
		path_text(e, ".base");
		return -1;
	}
	return memo ? memo_put(e, arr) : 0;
}

/* An array of plain items, C- or Fortran-contiguous (@view): its bytes. */
static int enc_nd_bytes(Encoder *e, PyObject *arr, PyObject *holder, const Py_buffer *view,
			PyObject *desc, int fortran, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	size_t n = (size_t)view->len, pad = 0, at;
	int ref = enc_by_ref(e, n);

	if (put_nd_head(e, PYSHM_CLONE_NDARRAY | M(memo), fortran ? PYSHM_CLONE_ND_FORTRAN : 0,
			view) < 0 || pyshm_clone_reserve(w, 10 + 1 + PYSHM_CLONE_ND_MAX_PAD + 10) < 0)
		return enc_nomem();
	pyshm_clone_raw_varint(w, (uint64_t)view->itemsize);
	if (ref) {
		/* Where the message lands in a region of its own, the data
		 * starts on 64 bytes: an array can be built over it. */
		at = e->env->align_base + w->len + w->extlen + 1 + varint_size(n);
		pad = (64 - at % 64) % 64;
	}
	pyshm_clone_raw_u8(w, (uint8_t)pad);
	memset(w->buf + w->len, 0, pad);
	w->len += pad;
	pyshm_clone_raw_varint(w, n);
	if ((ref ? enc_data_ref(e, view->buf, n, holder) : enc_data_copy(e, view->buf, n)) < 0 ||
	    enc_made(e, desc, ".dtype") < 0)
		return -1;
	return memo ? memo_put(e, arr) : 0;
}

/* An array of objects: its elements, in memory order (@fortran or C). */
static int enc_nd_objects(Encoder *e, PyObject *arr, const Py_buffer *view, int fortran,
			  int memo)
{
	PyObject *flat, *items;
	Py_ssize_t i;
	int ret = 0;

	/* The elements as they are now: user code run while encoding them
	 * can't pull them from under us. */
	flat = PyObject_CallMethod(arr, "ravel", "s", fortran ? "F" : "C");
	items = flat ? PySequence_List(flat) : NULL;
	Py_XDECREF(flat);
	if (!items)
		return enc_bad(e, arr, NULL);
	if (put_nd_head(e, PYSHM_CLONE_NDARRAY_OBJECT | M(memo),
			fortran ? PYSHM_CLONE_ND_FORTRAN : 0, view) < 0)
		ret = -1;
	else if (memo)
		ret = memo_put(e, arr);
	for (i = 0; !ret && i < PyList_GET_SIZE(items); i++) {
		ret = enc_item(e, PyList_GET_ITEM(items, i));
		if (ret < 0)
			path_add(e, PyUnicode_FromFormat(".flat[%zd]", i));
	}
	Py_DECREF(items);
	return ret;
}

int enc_ndarray(Encoder *e, PyObject *arr, int memo)
{
	PyObject *dt, *desc = NULL, *copy = NULL, *sab, *holder = arr, *kind = NULL;
	Py_buffer view, cview;
	int ret = -1, fortran;

	if (PyObject_GetBuffer(arr, &view, PyBUF_STRIDES) < 0)
		return enc_bad(e, arr, NULL);
	if (view.ndim > PYSHM_CLONE_MAX_NDIM) {
		PyBuffer_Release(&view);
		return enc_bad(e, arr, "too many dimensions");
	}
	fortran = !PyBuffer_IsContiguous(&view, 'C') && PyBuffer_IsContiguous(&view, 'F');
	dt = PyObject_GetAttrString(arr, "dtype");
	desc = dt ? dtype_describe(dt, 0) : NULL;
	if (!desc && !PyErr_Occurred() && dt)
		kind = PyObject_GetAttrString(dt, "char");
	Py_XDECREF(dt);
	if (!desc) {
		if (kind && PyUnicode_Check(kind) && !PyUnicode_CompareWithASCIIString(kind, "O")) {
			ret = enc_nd_objects(e, arr, &view, fortran, memo);
		} else if (!PyErr_Occurred()) {
			/* Items that hold more than bytes (StringDType, object
			 * fields): pickle's way, as before. */
			PyBuffer_Release(&view);
			Py_XDECREF(kind);
			return enc_reduce(e, arr, memo);
		} else {
			enc_bad(e, arr, NULL);
		}
		goto out;
	}
	sab = sab_under(e, arr);
	if (sab) {
		ret = enc_nd_view(e, arr, &view, desc, sab, memo);
		if (ret <= 0)
			goto out;
	}
	if (!fortran && !PyBuffer_IsContiguous(&view, 'C')) {
		/* Non-contiguous: its copy in C order travels. */
		copy = PyObject_CallMethod(arr, "copy", NULL);
		if (!copy || PyObject_GetBuffer(copy, &cview, PyBUF_STRIDES) < 0) {
			ret = enc_bad(e, arr, NULL);
			goto out;
		}
		PyBuffer_Release(&view);
		view = cview;
		holder = copy;
	}
	ret = enc_nd_bytes(e, arr, holder, &view, desc, fortran, memo);
out:
	PyBuffer_Release(&view);
	Py_XDECREF(copy);
	Py_XDECREF(kind);
	Py_XDECREF(desc);
	return ret;
}

/* ---- the decoder ----------------------------------------------------------------- */

/* numpy, imported for the first array; DataCloneError where it can't be
 * (a subinterpreter: numpy refuses them). 0 or -1. */
static int numpy_here(Decoder *d)
{
	PyObject *cause, *msg;

	if (clone_cache_group(d->st, CG_NUMPY, 1) > 0)
		return 0;
	if (!PyErr_ExceptionMatches(PyExc_ImportError))
		return -1;
	cause = clone_fetch_exc();
	msg = PyUnicode_FromFormat(
		"cannot receive a numpy array: numpy can't be imported here (%S)%s", cause,
		PyInterpreterState_Get() != PyInterpreterState_Main() ?
		"; numpy does not support subinterpreters: use a worker of mode=\"process\"" : "");
	if (msg)
		clone_raise(d->st, msg, cause);
	else
		Py_DECREF(cause);
	Py_XDECREF(msg);
	return -1;
}

/* The dtype of an array being decoded: its description, checked, given
 * to np.dtype(), whose item size must be the wire's. New reference. */
static PyObject *dec_dtype(Decoder *d, uint64_t itemsize)
{
	PyObject *desc = dec_value(d), *dt = NULL, *v;

	if (!desc)
		return NULL;
	if (!desc_ok(desc, 0)) {
		Py_DECREF(desc);
		return dec_malformed(d, "not a dtype of plain items");
	}
	dt = PyObject_CallOneArg(cc_get(d->st, CC_NP_DTYPE), desc);
	Py_DECREF(desc);
	if (!dt)
		return NULL;
	v = PyObject_GetAttrString(dt, "itemsize");
	if (!v || PyLong_AsUnsignedLongLong(v) != itemsize) {
		Py_XDECREF(v);
		Py_DECREF(dt);
		PyErr_Clear();
		return dec_malformed(d, "dtype of another item size");
	}
	Py_DECREF(v);
	v = PyObject_GetAttrString(dt, "hasobject");
	if (v != Py_False) {
		Py_XDECREF(v);
		Py_DECREF(dt);
		PyErr_Clear();
		return dec_malformed(d, "dtype with objects");
	}
	Py_DECREF(v);
	return dt;
}

/* The shape (and strides) of @it as tuples. */
static PyObject *nd_tuple(const struct pyshm_clone_item *it, int strides)
{
	uint64_t shape[PYSHM_CLONE_MAX_NDIM];
	int64_t st[PYSHM_CLONE_MAX_NDIM];
	PyObject *t = PyTuple_New((Py_ssize_t)it->v.nd.ndim), *v;
	uint64_t i;

	pyshm_clone_nd_shape(it, shape, strides ? st : NULL);
	for (i = 0; t && i < it->v.nd.ndim; i++) {
		v = strides ? PyLong_FromLongLong(st[i]) : PyLong_FromUnsignedLongLong(shape[i]);
		if (!v)
			Py_CLEAR(t);
		else
			PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
	}
	return t;
}

/* A new array of @shape and @dt (order from @it's flags): np.empty(). */
static PyObject *nd_empty(Decoder *d, const struct pyshm_clone_item *it, PyObject *shape,
			  PyObject *dt)
{
	return PyObject_CallFunction(cc_get(d->st, CC_NP_EMPTY), "OOs", shape, dt,
				     it->flags & PYSHM_CLONE_ND_FORTRAN ? "F" : "C");
}

PyObject *dec_region_memory(Decoder *d, const void *p, size_t n)
{
	RegionMemoryObject *rm;
	struct pyshm_region *r;
	const char *lo;

	if (n < EXT_MIN || n > PY_SSIZE_T_MAX || !d->env->keep || !d->st->region_memory_type)
		return NULL;
	r = d->env->keep(d->env);
	if (!r)
		return NULL;
	lo = pyshm_region_data(r);
	if ((const char *)p < lo || n > pyshm_region_size(r) - (uint64_t)((const char *)p - lo)) {
		pyshm_ring_kept_put(r);
		return NULL;
	}
	rm = PyObject_New(RegionMemoryObject, d->st->region_memory_type);
	if (!rm) {
		PyErr_Clear();
		pyshm_ring_kept_put(r);
		return NULL;
	}
	rm->region = r;
	rm->p = (void *)p;
	rm->n = (Py_ssize_t)n;
	return (PyObject *)rm;
}

/* The region the message lies in, kept for an array over @it's data (the
 * data aligned for @dt), or NULL (no exception): copy. */
static PyObject *nd_keep(Decoder *d, const struct pyshm_clone_item *it, PyObject *dt)
{
	PyObject *v;
	long align;

	if (it->v.nd.len < EXT_MIN || !d->env->keep)
		return NULL;
	v = PyObject_GetAttrString(dt, "alignment");
	align = v ? PyLong_AsLong(v) : -1;
	Py_XDECREF(v);
	if (align <= 0 || (uintptr_t)it->v.nd.data % (unsigned long)align) {
		PyErr_Clear();
		return NULL;
	}
	return dec_region_memory(d, it->v.nd.data, it->v.nd.len);
}

/* Copy @n bytes into fresh memory, faulted in first; without the GIL
 * when large (nothing else sees @dst yet). */
void dec_copy_fresh(void *dst, const void *src, size_t n)
{
	if (n < PYSHM_PREFAULT_MIN) {
		memcpy(dst, src, n);
		return;
	}
	Py_BEGIN_ALLOW_THREADS
	pyshm_prefault(dst, n);
	memcpy(dst, src, n);
	Py_END_ALLOW_THREADS
}

PyObject *dec_ndarray(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *dt, *shape = NULL, *obj = NULL, *base = NULL, *alias;
	Py_buffer view;

	if (numpy_here(d) < 0 || !(dt = dec_dtype(d, it->v.nd.itemsize)))
		return NULL;
	if (dec_finish(d, it, &alias) != 0)
		goto out;
	shape = nd_tuple(it, 0);
	if (!shape)
		goto out;
	base = nd_keep(d, it, dt);
	if (base) {
		/* Over the region: ndarray(shape, dtype, buffer, 0, None, order). */
		obj = PyObject_CallFunction(cc_get(d->st, CC_NDARRAY), "OOOiOs", shape, dt, base,
					    0, Py_None,
					    it->flags & PYSHM_CLONE_ND_FORTRAN ? "F" : "C");
		goto out;
	}
	obj = nd_empty(d, it, shape, dt);
	if (!obj || PyObject_GetBuffer(obj, &view, PyBUF_STRIDES | PyBUF_WRITABLE) < 0) {
		Py_CLEAR(obj);
		goto out;
	}
	if ((uint64_t)view.len == it->v.nd.len)
		dec_copy_fresh(view.buf, it->v.nd.data, it->v.nd.len);
	else
		dec_malformed(d, "array data of another size");
	PyBuffer_Release(&view);
	if (PyErr_Occurred())
		Py_CLEAR(obj);
out:
	Py_XDECREF(base);
	Py_XDECREF(shape);
	Py_DECREF(dt);
	return dec_memo(d, it, obj);
}

PyObject *dec_ndarray_objects(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *shape, *dt, *arr = NULL, *flat = NULL, *v;
	uint64_t i;

	if (numpy_here(d) < 0 || dec_tick(d, it->v.nd.count) < 0)
		return NULL;
	shape = nd_tuple(it, 0);
	dt = shape ? PyUnicode_FromString("O") : NULL;
	arr = dt ? nd_empty(d, it, shape, dt) : NULL;
	/* A 1-d view in memory order, to fill: elements of None until then. */
	if (arr)
		flat = PyObject_CallMethod(arr, "ravel", "s",
					   it->flags & PYSHM_CLONE_ND_FORTRAN ? "F" : "C");
	Py_XDECREF(dt);
	Py_XDECREF(shape);
	if (!flat)
		goto err;
	arr = dec_memo(d, it, arr);
	if (!arr)
		goto err;
	for (i = 0; i < it->v.nd.count; i++) {
		if (DEC_TICK_ITEM(d, i))
			goto err;
		v = dec_value(d);
		if (!v || PySequence_SetItem(flat, (Py_ssize_t)i, v) < 0) {
			Py_XDECREF(v);
			goto err;
		}
		Py_DECREF(v);
	}
	Py_DECREF(flat);
	return arr;
err:
	Py_XDECREF(flat);
	Py_XDECREF(arr);
	return NULL;
}

PyObject *dec_ndarray_view(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *dt, *sab = NULL, *shape = NULL, *strides = NULL, *obj = NULL, *alias, *res;
	Py_buffer sv;

	if (numpy_here(d) < 0 || !(dt = dec_dtype(d, it->v.nd.itemsize)))
		return NULL;
	sab = dec_child(d, PYSHM_CLONE_SAB, PYSHM_CLONE_REF);
	if (!sab)
		goto out;
	if (!sab_region(d->st, sab)) {
		dec_malformed(d, "array view over a non-SharedArrayBuffer");
		goto out;
	}
	if (dec_finish(d, it, &alias) != 0)
		goto out;
	/* The bytes it touches lie in the buffer as it is now. */
	if (PyObject_GetBuffer(sab, &sv, PyBUF_SIMPLE) < 0)
		goto out;
	PyBuffer_Release(&sv);
	if (it->v.nd.hi > (uint64_t)sv.len) {
		PyErr_Format(d->st->DataCloneError, "cannot receive an array view: it reaches "
			     "byte %llu of a SharedArrayBuffer of %zd", it->v.nd.hi, sv.len);
		goto out;
	}
	shape = nd_tuple(it, 0);
	strides = shape ? nd_tuple(it, 1) : NULL;
	if (!strides)
		goto out;
	obj = PyObject_CallFunction(cc_get(d->st, CC_NDARRAY), "OOOKO", shape, dt, sab,
				    (unsigned long long)it->v.nd.byte_offset, strides);
	if (obj && it->flags & PYSHM_CLONE_ND_READONLY) {
		res = PyObject_CallMethod(obj, "setflags", "OO", Py_False, Py_None);
		Py_XDECREF(res);
		if (!res)
			Py_CLEAR(obj);
	}
out:
	Py_XDECREF(strides);
	Py_XDECREF(shape);
	Py_XDECREF(sab);
	Py_DECREF(dt);
	return dec_memo(d, it, obj);
}
