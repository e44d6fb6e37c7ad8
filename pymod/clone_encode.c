// SPDX-License-Identifier: MIT
/*
 * The structured-clone encoder: a Python object graph to a message
 * (Documentation/wire-format.rst).
 *
 * Built-in types are recognised by exact type and written by C code, with
 * no Python-level call per object. Identity is kept with a pointer memo
 * like _pickle.c's: an object that might be reached twice gets a memo slot,
 * and later meetings write a back-reference.
 *
 * While no user code runs, an object whose reference count shows a single
 * referent (its container) cannot be met again, so it skips the memo
 * altogether: every object reaches this code with one extra reference held
 * by the encoder, so "refcount <= 2" means "only my container refers to
 * it". User code (a __reduce__, a copyreg reducer, __getstate__, an import,
 * or any bytecode, such as a Fraction's properties, during which other
 * threads and signal handlers run) can hand out new references to objects
 * already written that way, so the first time some is about to run, the
 * encoder starts again from the top in pickle's mode: everything pickle
 * memoises gets a slot (the memo holds it, so objects made on the fly stay
 * alive and keep their identity too). Nothing user-visible happened before
 * the restart (the cyclic GC is off in the fast mode: its finalizers are
 * user code too). Numbers keep the refcount rule in both modes, as pickle
 * memoises none.
 *
 * Nothing leaves before the body has encoded: SharedArrayBuffers and
 * payloads are collected while encoding and only sent (pyshm_xfer_send())
 * afterwards, ports are exported last. A failure anywhere leaves nothing
 * in flight.
 *
 * An object that can't be cloned starts a DataCloneError; each container
 * on the way back up adds its step to the path ("['jobs']", "[3]",
 * ".callback"), so the message says where the object sat.
 *
 * This file is the engine and the built-in types; the others, by family,
 * are in the files clone_encode.h lists.
 */
#include "clone_encode.h"

#include "clone_buffer.h"
#include "typed_array.h"

/* ---- pointer memo (open addressing, keys owned) ---------------------- */

static int memo_grow(Memo *m)
{
	size_t size = m->table ? 2 * (m->mask + 1) : 64, i, j;
	MemoEntry *t = PyMem_Calloc(size, sizeof(*t));

	if (!t) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; m->table && i <= m->mask; i++) {
		if (!m->table[i].key)
			continue;
		for (j = memo_hash(m->table[i].key) & (size - 1); t[j].key; j = (j + 1) & (size - 1))
			;
		t[j] = m->table[i];
	}
	PyMem_Free(m->table);
	m->table = t;
	m->mask = size - 1;
	return 0;
}

int memo_set(Memo *m, PyObject *key, uint32_t slot)
{
	size_t i;

	if ((!m->table || 3 * (m->used + 1) > 2 * (m->mask + 1)) && memo_grow(m) < 0)
		return -1;
	for (i = memo_hash(key) & m->mask; m->table[i].key; i = (i + 1) & m->mask)
		;
	m->table[i].key = Py_NewRef(key);
	m->table[i].slot = slot;
	m->used++;
	return 0;
}

static void memo_clear(Memo *m)
{
	size_t i;

	for (i = 0; m->table && i <= m->mask; i++)
		Py_XDECREF(m->table[i].key);
	PyMem_Free(m->table);
	m->table = NULL;
	m->used = 0;
}

/* ---- errors and paths ---------------------------------------------------- */

/* A name for the object in the message: a function's, class's or
 * module's __name__. Only for types whose attribute is builtin. */
static PyObject *enc_detail(PyObject *obj)
{
	PyObject *name = NULL;

	if (PyModule_Check(obj)) {
		name = PyModule_GetNameObject(obj);
	} else if (PyFunction_Check(obj) || PyCFunction_Check(obj) || PyMethod_Check(obj) ||
		   PyGen_Check(obj) || PyCoro_CheckExact(obj) || PyAsyncGen_CheckExact(obj) ||
		   PyType_Check(obj)) {
		name = PyObject_GetAttrString(obj, "__name__");
	}
	if (name && !PyUnicode_Check(name))
		Py_CLEAR(name);
	if (!name)
		PyErr_Clear();
	return name;
}

/*
 * @obj can't be cloned: start a DataCloneError. A pending exception becomes
 * its cause, unless it says nothing about the object (MemoryError,
 * RecursionError, KeyboardInterrupt...): that one passes unchanged.
 * Returns -1.
 */
int enc_bad(Encoder *e, PyObject *obj, const char *why)
{
	PyObject *cause = NULL, *detail;

	if (PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_Exception) ||
		    PyErr_ExceptionMatches(PyExc_MemoryError) ||
		    PyErr_ExceptionMatches(PyExc_RecursionError))
			return -1;
		cause = clone_fetch_exc();
	}
	detail = enc_detail(obj);
	if (detail)
		e->err = PyUnicode_FromFormat("cannot clone '%s' object (%U)%s%s",
					      Py_TYPE(obj)->tp_name, detail, why ? ": " : "",
					      why ? why : "");
	else
		e->err = PyUnicode_FromFormat("cannot clone '%s' object%s%s",
					      Py_TYPE(obj)->tp_name, why ? ": " : "",
					      why ? why : "");
	Py_XDECREF(detail);
	e->err_path = e->err ? PyList_New(0) : NULL;
	if (!e->err_path) {
		Py_CLEAR(e->err);
		Py_XDECREF(cause);
		return -1;
	}
	e->err_cause = cause;
	e->err_obj = Py_NewRef(obj);
	return -1;
}

int enc_too_deep(Encoder *e)
{
	e->err = PyUnicode_FromFormat("cannot clone: object graph nested deeper than %d levels",
				      MAX_DEPTH);
	e->err_path = e->err ? PyList_New(0) : NULL;
	if (!e->err_path)
		Py_CLEAR(e->err);
	return -1;
}

/* Add a step to the error's path (@step stolen; best effort). */
void path_add(Encoder *e, PyObject *step)
{
	if (!e->err) {
		Py_XDECREF(step);
		return;
	}
	if (!step || PyList_Append(e->err_path, step) < 0)
		PyErr_Clear();
	Py_XDECREF(step);
}

void path_index(Encoder *e, Py_ssize_t i)
{
	if (e->err)
		path_add(e, PyUnicode_FromFormat("[%zd]", i));
}

void path_text(Encoder *e, const char *s)
{
	if (e->err)
		path_add(e, PyUnicode_FromString(s));
}

/* A short repr of a key, for "['jobs']". */
static PyObject *short_repr(PyObject *key)
{
	PyObject *r = PyObject_Repr(key), *cut;

	if (!r) {
		PyErr_Clear();
		return PyUnicode_FromString("...");
	}
	if (PyUnicode_GET_LENGTH(r) <= 60)
		return r;
	cut = PyUnicode_Substring(r, 0, 57);
	Py_DECREF(r);
	if (!cut)
		return NULL;
	r = PyUnicode_FromFormat("%U...", cut);
	Py_DECREF(cut);
	return r;
}

void path_key(Encoder *e, PyObject *key, int attr)
{
	PyObject *r;

	if (!e->err)
		return;
	if (attr && PyUnicode_Check(key) && PyUnicode_IsIdentifier(key)) {
		path_add(e, PyUnicode_FromFormat(".%U", key));
		return;
	}
	r = short_repr(key);
	path_add(e, r ? PyUnicode_FromFormat("[%U]", r) : NULL);
	Py_XDECREF(r);
}

/* Raise the DataCloneError built so far: "<what> at obj<path>". Long
 * paths keep their first and last steps. */
static void enc_raise(Encoder *e)
{
	Py_ssize_t n, i, keep = 16;
	PyObject *parts, *path, *msg, *sep;

	if (!e->err)
		return;		/* another exception is already set */
	n = PyList_GET_SIZE(e->err_path);
	parts = PyList_New(0);
	if (!parts)
		goto out;
	for (i = n - 1; i >= 0; i--) {
		if (n > 2 * keep + 1 && i == n - 1 - keep) {
			PyObject *gap = PyUnicode_FromFormat("...(%zd more)...", n - 2 * keep);

			if (!gap || PyList_Append(parts, gap) < 0) {
				Py_XDECREF(gap);
				goto out_parts;
			}
			Py_DECREF(gap);
			i = keep - 1;
		}
		if (PyList_Append(parts, PyList_GET_ITEM(e->err_path, i)) < 0)
			goto out_parts;
	}
	sep = PyUnicode_FromString("");
	path = sep ? PyUnicode_Join(sep, parts) : NULL;
	Py_XDECREF(sep);
	if (!path)
		goto out_parts;
	msg = PyUnicode_FromFormat("%U at obj%U", e->err, path);
	Py_DECREF(path);
	if (msg) {
		clone_raise(e->st, msg, e->err_cause);
		e->err_cause = NULL;
		Py_DECREF(msg);
	}
out_parts:
	Py_DECREF(parts);
out:
	Py_CLEAR(e->err);
	Py_CLEAR(e->err_path);
	Py_CLEAR(e->err_cause);
	Py_CLEAR(e->err_obj);
}

/*
 * After the children of a value whose slot comes after them: if a cycle
 * through the children gave the object a slot meanwhile, turn this copy
 * into an alias of it; otherwise take the next slot.
 */
int enc_close(Encoder *e, PyObject *obj, size_t tag_pos, int memo)
{
	long slot;

	if (!memo)
		return 0;
	slot = memo_get(&e->memo, obj);
	if (slot >= 0)
		return pyshm_clone_patch_alias(&e->w, tag_pos, (uint32_t)slot) < 0 ?
			enc_nomem() : 0;
	return memo_put(e, obj);
}

/* ---- scalars ------------------------------------------------------------- */

static int enc_bigint(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t n = clone_long_nbytes(obj);

	if (n < 0)
		return -1;
	if (pyshm_clone_reserve(w, 11 + (size_t)n) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(w, PYSHM_CLONE_BIGINT | M(memo));
	pyshm_clone_raw_varint(w, (uint64_t)n);
#if PY_VERSION_HEX >= 0x030D0000
	if (PyLong_AsNativeBytes(obj, w->buf + w->len, n, Py_ASNATIVEBYTES_LITTLE_ENDIAN) < 0)
		return -1;
#else
	if (_PyLong_AsByteArray((PyLongObject *)obj, w->buf + w->len, (size_t)n, 1, 1) < 0)
		return -1;
#endif
	w->len += (size_t)n;
	return memo ? memo_put(e, obj) : 0;
}

/* A float; one referred to from elsewhere too keeps its identity. */
static int enc_float(Encoder *e, PyObject *obj)
{
	long slot;

	if (Py_REFCNT(obj) > 2) {
		slot = memo_get(&e->memo, obj);
		if (slot >= 0)
			return pyshm_clone_put_ref(&e->w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
		if (pyshm_clone_put_tag(&e->w, PYSHM_CLONE_FLOAT | PYSHM_CLONE_F_MEMO) < 0 ||
		    pyshm_clone_put_f64(&e->w, PyFloat_AS_DOUBLE(obj)) < 0)
			return enc_nomem();
		return memo_put(e, obj);
	}
	return pyshm_clone_put_float(&e->w, PyFloat_AS_DOUBLE(obj)) < 0 ? enc_nomem() : 0;
}

/* An int; @may_memo: it may take a memo slot (not inside FRACTION). */
int enc_long(Encoder *e, PyObject *obj, int may_memo)
{
	long long v;
	long slot;
	int overflow;

	v = PyLong_AsLongLongAndOverflow(obj, &overflow);
	if (!overflow) {
		if (v == -1 && PyErr_Occurred())
			return -1;
		/* CPython's small ints are unique anyway: no slot for them. */
		if (!may_memo || Py_REFCNT(obj) <= 2 || IS_SMALL_INT(v) || IS_IMMORTAL(obj))
			return pyshm_clone_put_int(&e->w, v) < 0 ? enc_nomem() : 0;
		slot = memo_get(&e->memo, obj);
		if (slot >= 0)
			return pyshm_clone_put_ref(&e->w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
		if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_INT | PYSHM_CLONE_F_MEMO,
					 pyshm_clone_zigzag(v)) < 0)
			return enc_nomem();
		return memo_put(e, obj);
	}
	if (may_memo && Py_REFCNT(obj) > 2) {
		slot = memo_get(&e->memo, obj);
		if (slot >= 0)
			return pyshm_clone_put_ref(&e->w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
		return enc_bigint(e, obj, 1);
	}
	return enc_bigint(e, obj, 0);
}

/* The bytes of a str: UTF-8, or UTF-8 with surrogates passed through. */
int put_str(Encoder *e, PyObject *obj, int memo)
{
	const char *p;
	Py_ssize_t n;
	PyObject *b;
	int ret;

	if (PyUnicode_IS_ASCII(obj))
		return pyshm_clone_put_blob(&e->w, PYSHM_CLONE_STR | M(memo), PyUnicode_DATA(obj),
					    (size_t)PyUnicode_GET_LENGTH(obj)) < 0 ? enc_nomem() : 0;
	p = PyUnicode_AsUTF8AndSize(obj, &n);
	if (p)
		return pyshm_clone_put_blob(&e->w, PYSHM_CLONE_STR | M(memo), p, (size_t)n) < 0 ?
			enc_nomem() : 0;
	if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
		return -1;
	PyErr_Clear();
	b = PyUnicode_AsEncodedString(obj, "utf-8", "surrogatepass");
	if (!b)
		return -1;
	ret = pyshm_clone_put_blob(&e->w, PYSHM_CLONE_STR_SURROGATE | M(memo), PyBytes_AS_STRING(b),
				   (size_t)PyBytes_GET_SIZE(b));
	Py_DECREF(b);
	return ret < 0 ? enc_nomem() : 0;
}

static int enc_str(Encoder *e, PyObject *obj)
{
	int memo = memo_wanted(e, obj);
	long slot;

	if (memo) {
		slot = memo_get(&e->memo, obj);
		if (slot >= 0)
			return pyshm_clone_put_ref(&e->w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
	}
	if (put_str(e, obj, memo) < 0)
		return -1;
	return memo ? memo_put(e, obj) : 0;
}

/* ---- large data ---------------------------------------------------------- */

int enc_data_ref(Encoder *e, const void *p, size_t n, PyObject *holder)
{
	if (!e->keep && !(e->keep = PyList_New(0)))
		return -1;
	if (PyList_Append(e->keep, holder) < 0)
		return -1;
	return pyshm_clone_put_raw_ext(&e->w, p, n) < 0 ? enc_nomem() : 0;
}

int enc_data_copy(Encoder *e, const void *p, size_t n)
{
	if (pyshm_clone_reserve(&e->w, n) < 0)
		return enc_nomem();
	/* The buffer grew into fresh memory: fault it in at once. */
	pyshm_prefault(e->w.buf + e->w.len, n);
	if (n)
		memcpy(e->w.buf + e->w.len, p, n);
	e->w.len += n;
	return 0;
}

int enc_big_blob(Encoder *e, uint8_t tag, PyObject *obj)
{
	PyObject *holder;
	size_t n;
	int ret;

	if (PyBytes_CheckExact(obj)) {
		n = (size_t)PyBytes_GET_SIZE(obj);
		holder = Py_NewRef(obj);
	} else {
		/* Exported: the bytearray can't resize until the message is sent. */
		holder = enc_by_ref(e, (size_t)PyByteArray_GET_SIZE(obj)) ?
			PyMemoryView_FromObject(obj) : Py_NewRef(obj);
		if (!holder)
			return -1;
		n = (size_t)PyByteArray_GET_SIZE(obj);
	}
	if (pyshm_clone_put_head(&e->w, tag, n) < 0) {
		Py_DECREF(holder);
		return enc_nomem();
	}
	ret = enc_by_ref(e, n) ?
		enc_data_ref(e, PyBytes_CheckExact(obj) ? PyBytes_AS_STRING(obj) :
			     PyByteArray_AS_STRING(obj), n, holder) :
		enc_data_copy(e, PyBytes_CheckExact(obj) ? PyBytes_AS_STRING(obj) :
			      PyByteArray_AS_STRING(obj), n);
	Py_DECREF(holder);
	return ret;
}

/* ---- containers ------------------------------------------------------------ */

static int enc_changed(Encoder *e, PyObject *obj)
{
	return enc_bad(e, obj, "it changed size while being cloned");
}

static int enc_list(Encoder *e, PyObject *list, int memo)
{
	Py_ssize_t n = PyList_GET_SIZE(list), i;

	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_LIST | M(memo), (uint64_t)n) < 0)
		return enc_nomem();
	if (memo && memo_put(e, list) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (i >= PyList_GET_SIZE(list))
			return enc_changed(e, list);
		if (enc_item(e, PyList_GET_ITEM(list, i)) < 0) {
			path_index(e, i);
			return -1;
		}
	}
	if (PyList_GET_SIZE(list) != n)
		return enc_changed(e, list);
	return 0;
}

static int enc_tuple(Encoder *e, PyObject *t, int memo)
{
	Py_ssize_t n = PyTuple_GET_SIZE(t), i;
	size_t tag_pos = e->w.len;

	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_TUPLE | M(memo), (uint64_t)n) < 0)
		return enc_nomem();
	for (i = 0; i < n; i++) {
		if (enc_item(e, PyTuple_GET_ITEM(t, i)) < 0) {
			path_index(e, i);
			return -1;
		}
	}
	return enc_close(e, t, tag_pos, memo);
}

/* @attr: the dict is an instance's state: its keys are attribute names. */
int enc_dict(Encoder *e, PyObject *d, int memo, int attr)
{
	Py_ssize_t n = PyDict_GET_SIZE(d), pos = 0, i = 0;
	PyObject *k, *v;
	int ret;

	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_DICT | M(memo), (uint64_t)n) < 0)
		return enc_nomem();
	if (memo && memo_put(e, d) < 0)
		return -1;
	while (PyDict_Next(d, &pos, &k, &v)) {
		if (i == n)
			return enc_changed(e, d);
		Py_INCREF(k);
		Py_INCREF(v);
		ret = enc_value(e, k);
		if (ret < 0) {
			if (e->err)
				path_add(e, PyUnicode_FromFormat("<key #%zd>", i));
		} else {
			ret = enc_value(e, v);
			if (ret < 0)
				path_key(e, k, attr);
		}
		Py_DECREF(k);
		Py_DECREF(v);
		if (ret < 0)
			return -1;
		i++;
	}
	if (i != n || PyDict_GET_SIZE(d) != n)
		return enc_changed(e, d);
	return 0;
}

static int enc_set(Encoder *e, PyObject *s, int memo)
{
	int frozen = PyFrozenSet_CheckExact(s);
	Py_ssize_t n = PySet_GET_SIZE(s), i = 0;
	size_t tag_pos = e->w.len;
	PyObject *it, *item;
	int ret = 0;

	if (pyshm_clone_put_head(&e->w, (frozen ? PYSHM_CLONE_FROZENSET : PYSHM_CLONE_SET) |
				 M(memo), (uint64_t)n) < 0)
		return enc_nomem();
	if (!frozen && memo && memo_put(e, s) < 0)
		return -1;
	it = PyObject_GetIter(s);
	if (!it)
		return -1;
	while ((item = PyIter_Next(it))) {
		ret = i < n ? enc_value(e, item) : enc_changed(e, s);
		if (ret < 0 && i < n && e->err)
			path_add(e, PyUnicode_FromFormat("<item #%zd>", i));
		Py_DECREF(item);
		if (ret < 0)
			break;
		i++;
	}
	Py_DECREF(it);
	if (ret < 0)
		return -1;
	if (PyErr_Occurred())		/* "Set changed size during iteration" */
		return enc_bad(e, s, NULL);
	if (i != n)
		return enc_changed(e, s);
	return frozen ? enc_close(e, s, tag_pos, memo) : 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

/*
 * Is @tp a class of Python code (Fraction, _pydatetime, any class
 * statement), not of C? Its attributes run bytecode, during which signal
 * handlers and other threads can run.
 */
static inline int python_class(PyTypeObject *tp)
{
	return PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE) &&
	       !PyType_HasFeature(tp, Py_TPFLAGS_IMMUTABLETYPE);
}

/* Everything but the built-in containers and scalars. */
static int enc_other(Encoder *e, PyObject *obj, int memo)
{
	pymod_state *st = e->st;
	PyTypeObject *tp = Py_TYPE(obj);
	const struct pyshm_clone_ops *ops;
	PyObject *c = st->clone_cache;
	int i, kind;

	if (python_class(tp) && enc_user_code(e) < 0)
		return -1;

	if (!e->scanned) {
		/* Types of modules imported by now; nothing is imported here. */
		for (i = CG_DATETIME; i <= CG_ARRAY; i++)
			if (clone_cache_group(st, i, 0) < 0)
				return -1;
		e->scanned = 1;
	}
	for (i = CC_DATE; i <= CC_TIMEZONE; i++)
		if ((PyObject *)tp == PyList_GET_ITEM(c, i))
			return enc_kind(e, obj, K_DATE + (i - CC_DATE), memo);
	if (tp == &PyMemoryView_Type)
		return enc_memoryview(e, obj, memo);
	if (tp == &PyPickleBuffer_Type)
		return enc_picklebuffer(e, obj, memo);
	if (tp == st->sab_type)
		return enc_sab(e, obj, memo);
	if (tp == st->arraybuffer_type)
		return enc_arraybuffer(e, obj, memo);
	if (ta_kind_of(st, obj) >= 0)
		return enc_typed_array(e, obj, memo);
	if (st->port_type && PyObject_TypeCheck(obj, st->port_type))
		return enc_port(e, obj);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_DECIMAL))
		return enc_decimal(e, obj, memo);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_FRACTION))
		return enc_fraction(e, obj, memo);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_ARRAY))
		return enc_array(e, obj, memo);
	if (enc_is_ndarray(e, tp))
		return enc_ndarray(e, obj, memo);
	if (st->capi_types && (ops = capi_lookup(st, tp)))
		return enc_shared(e, obj, ops, memo);
	if (PyExceptionInstance_Check(obj))
		return enc_exception(e, obj, memo);
	if (obj == (PyObject *)Py_TYPE(Py_None) || obj == (PyObject *)Py_TYPE(Py_Ellipsis) ||
	    obj == (PyObject *)Py_TYPE(Py_NotImplemented))
		return enc_singleton_type(e, obj, memo);
	if (PyType_Check(obj) || PyFunction_Check(obj))
		return enc_named(e, obj, memo);
	if (PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE) && (kind = other_impl(tp)) >= 0)
		return enc_kind(e, obj, kind, memo);
	return enc_reduce(e, obj, memo);
}

int enc_value(Encoder *e, PyObject *obj)
{
	PyTypeObject *tp = Py_TYPE(obj);
	struct pyshm_clone_writer *w = &e->w;
	int memo, ret;
	long slot;

	if (__builtin_expect(e->depth >= MAX_DEPTH, 0))
		return enc_too_deep(e);
	if (tp == &PyLong_Type)
		return enc_long(e, obj, 1);
	if (tp == &PyUnicode_Type)
		return enc_str(e, obj);
	if (tp == &PyFloat_Type)
		return enc_float(e, obj);
	if (obj == Py_None)
		return pyshm_clone_put_none(w) < 0 ? enc_nomem() : 0;
	if (tp == &PyBool_Type)
		return pyshm_clone_put_bool(w, obj == Py_True) < 0 ? enc_nomem() : 0;

	memo = memo_wanted(e, obj);
	if (memo && (slot = memo_get(&e->memo, obj)) >= 0)
		return pyshm_clone_put_ref(w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
	if (__builtin_expect(e->st->uncloneable && PyDict_GET_SIZE(e->st->uncloneable), 0) &&
	    (ret = clone_is_uncloneable(e->st, obj)))
		return ret < 0 ? -1 : enc_bad(e, obj, "marked with mark_as_uncloneable()");
	e->depth++;
	if (tp == &PyList_Type) {
		ret = enc_list(e, obj, memo);
	} else if (tp == &PyDict_Type) {
		ret = enc_dict(e, obj, memo, 0);
	} else if (tp == &PyTuple_Type) {
		ret = enc_tuple(e, obj, memo);
	} else if (tp == &PyBytes_Type) {
		if (__builtin_expect(PyBytes_GET_SIZE(obj) >= EXT_MIN, 0))
			ret = enc_big_blob(e, PYSHM_CLONE_BYTES | M(memo), obj);
		else
			ret = pyshm_clone_put_blob(w, PYSHM_CLONE_BYTES | M(memo),
						   PyBytes_AS_STRING(obj),
						   (size_t)PyBytes_GET_SIZE(obj)) < 0 ? enc_nomem() : 0;
		if (!ret && memo)
			ret = memo_put(e, obj);
	} else if (tp == &PyByteArray_Type) {
		if (__builtin_expect(PyByteArray_GET_SIZE(obj) >= EXT_MIN, 0))
			ret = enc_big_blob(e, PYSHM_CLONE_BYTEARRAY | M(memo), obj);
		else
			ret = pyshm_clone_put_blob(w, PYSHM_CLONE_BYTEARRAY | M(memo),
						   PyByteArray_AS_STRING(obj),
						   (size_t)PyByteArray_GET_SIZE(obj)) < 0 ?
				enc_nomem() : 0;
		if (!ret && memo)
			ret = memo_put(e, obj);
	} else if (tp == &PySet_Type || tp == &PyFrozenSet_Type) {
		ret = enc_set(e, obj, memo);
	} else if (tp == &PyComplex_Type) {
		Py_complex c = PyComplex_AsCComplex(obj);

		ret = pyshm_clone_put_complex(w, M(memo), c.real, c.imag) < 0 ? enc_nomem() :
			memo ? memo_put(e, obj) : 0;
	} else {
		ret = enc_other(e, obj, memo);
	}
	e->depth--;
	return ret;
}

/* ---- the message ----------------------------------------------------------------- */

/* Forget what the fast mode wrote and collected, to encode again. */
static int enc_rewind(Encoder *e)
{
	uint32_t i;

	pyshm_clone_writer_release(&e->w);
	memo_clear(&e->memo);
	e->nslots = 0;
	for (i = 0; i < e->npend; i++)
		Py_DECREF(e->pend[i].owner);
	e->npend = 0;
	Py_CLEAR(e->keep);
	if (pyshm_clone_writer_init(&e->w, PyMem_RawRealloc, PyMem_RawFree, 0) < 0)
		return enc_nomem();
	return 0;
}

int clone_encode(pymod_state *st, PyObject *obj, PyObject *transfer, struct clone_env *env,
		 struct clone_msg *out)
{
	Encoder e = { .st = st, .env = env };
	int ret = -1, gc_was_on;
	uint32_t i;

	out->buf = NULL;
	out->len = out->cap = 0;
	out->ext = NULL;
	out->next = 0;
	out->extlen = 0;
	out->keep = NULL;
	if (pyshm_clone_writer_init(&e.w, PyMem_RawRealloc, PyMem_RawFree, 0) < 0)
		return enc_nomem();
	if (enc_check_transfer(&e, transfer) < 0)
		goto out;
	Py_INCREF(obj);
	/* No Python code runs in the fast mode: no user code is called, and
	 * the cyclic GC, whose finalizers could run some, waits. */
	gc_was_on = PyGC_Disable();
	ret = enc_value(&e, obj);
	if (gc_was_on)
		PyGC_Enable();
	if (ret < 0 && e.restart) {
		/* User code is about to run: again from the top, memoising
		 * as pickle does (see the top of this file). */
		e.all_memo = 1;
		ret = enc_rewind(&e);
		if (ret == 0)
			ret = enc_value(&e, obj);
	}
	Py_DECREF(obj);
	if (ret < 0) {
		enc_raise(&e);
		goto out;
	}
	/* Moved ArrayBuffers: no new view until sent, then detached. */
	ret = clone_transfer_pin(st, e.moved);
	if (ret == 0) {
		ret = enc_commit(&e, out);
		clone_transfer_finish(e.moved, ret == 0);
	}
	if (ret == 0) {
		out->buf = e.w.buf;
		out->len = e.w.len;
		out->cap = e.w.cap;
		out->ext = e.w.ext;
		out->next = e.w.next;
		out->extlen = e.w.extlen;
		out->keep = e.keep;
		e.w.buf = NULL;
		e.w.ext = NULL;
		e.keep = NULL;
	}
out:
	pyshm_clone_writer_release(&e.w);
	memo_clear(&e.memo);
	for (i = 0; i < e.npend; i++)
		Py_DECREF(e.pend[i].owner);
	PyMem_Free(e.pend);
	Py_XDECREF(e.keep);
	Py_XDECREF(e.ports);
	Py_XDECREF(e.moved);
	Py_XDECREF(e.err);
	Py_XDECREF(e.err_path);
	Py_XDECREF(e.err_cause);
	Py_XDECREF(e.err_obj);
	return ret;
}
