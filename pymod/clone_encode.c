// SPDX-License-Identifier: MIT
/*
 * The structured-clone encoder: a Python object graph to a message
 * (Documentation/wire-format.rst).
 *
 * Built-in types are recognised by exact type and written by C code, with
 * no Python-level call per object. Identity is kept with a pointer memo
 * like _pickle.c's: an object that might be reached twice gets a memo slot,
 * and later meetings write a back-reference. An object whose reference
 * count shows it has a single referent (its container) cannot be met
 * again, so it skips the memo altogether: every object reaches this code
 * with one extra reference held by the encoder, so "refcount <= 2" means
 * "only my container refers to it".
 *
 * Nothing leaves before the body has encoded: SharedArrayBuffers and
 * payloads are collected while encoding and only sent (pyshm_xfer_send())
 * afterwards, ports are exported last. A failure anywhere leaves nothing
 * in flight.
 *
 * An object that can't be cloned starts a DataCloneError; each container
 * on the way back up adds its step to the path ("['jobs']", "[3]",
 * ".callback"), so the message says where the object sat.
 */
#include "clone.h"

#include <datetime.h>

#include <pyshm/capi.h>

#include "port.h"

/* Levels a message may nest, leaves included (as readers count them):
 * e->depth is the number of values around the one being written. */
#define MAX_DEPTH	PYSHM_CLONE_MAX_DEPTH
#define M(memo)		((memo) ? PYSHM_CLONE_F_MEMO : 0)

/* ---- pointer memo (open addressing, keys owned) ---------------------- */

typedef struct {
	PyObject *key;
	uint32_t slot;
} MemoEntry;

typedef struct {
	MemoEntry *table;
	size_t mask;
	size_t used;
} Memo;

static inline size_t memo_hash(const PyObject *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 31));
}

static long memo_get(const Memo *m, const PyObject *key)
{
	size_t i;

	if (!m->table)
		return -1;
	for (i = memo_hash(key) & m->mask; m->table[i].key; i = (i + 1) & m->mask)
		if (m->table[i].key == key)
			return m->table[i].slot;
	return -1;
}

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

static int memo_set(Memo *m, PyObject *key, uint32_t slot)
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

/* ---- the encoder --------------------------------------------------------- */

/* A region to send once the body is done (SharedArrayBuffer, payload). */
struct pending {
	PyObject *owner;		/* keeps the region alive until then */
	struct pyshm_region *r;
	unsigned int role;
	struct pyshm_region_ref ref;
};

typedef struct {
	pymod_state *st;
	struct clone_env *env;
	struct pyshm_clone_writer w;
	Memo memo;
	uint32_t nslots;		/* memo slots assigned */
	unsigned int depth;
	int scanned;			/* cache groups looked up this run */
	PyObject *ports;		/* list: the transfer list, or NULL */
	struct pending *pend;
	uint32_t npend, cappend;
	/* A DataCloneError under construction (NULL: an exception passes). */
	PyObject *err;			/* "cannot clone 'T' object ..." */
	PyObject *err_cause;
	PyObject *err_path;		/* path steps, innermost first */
	PyObject *err_obj;		/* what could not be cloned */
} Encoder;

static int enc_value(Encoder *e, PyObject *obj);

static int enc_nomem(void)
{
	PyErr_NoMemory();
	return -1;
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
static int enc_bad(Encoder *e, PyObject *obj, const char *why)
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

static int enc_too_deep(Encoder *e)
{
	e->err = PyUnicode_FromFormat("cannot clone: object graph nested deeper than %d levels",
				      MAX_DEPTH);
	e->err_path = e->err ? PyList_New(0) : NULL;
	if (!e->err_path)
		Py_CLEAR(e->err);
	return -1;
}

/* Add a step to the error's path (@step stolen; best effort). */
static void path_add(Encoder *e, PyObject *step)
{
	if (!e->err) {
		Py_XDECREF(step);
		return;
	}
	if (!step || PyList_Append(e->err_path, step) < 0)
		PyErr_Clear();
	Py_XDECREF(step);
}

static void path_index(Encoder *e, Py_ssize_t i)
{
	if (e->err)
		path_add(e, PyUnicode_FromFormat("[%zd]", i));
}

static void path_text(Encoder *e, const char *s)
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

static void path_key(Encoder *e, PyObject *key, int attr)
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

/* ---- memo helpers ------------------------------------------------------ */

/* Give @obj the next memo slot. */
static int memo_put(Encoder *e, PyObject *obj)
{
	return memo_set(&e->memo, obj, e->nslots++);
}

/*
 * After the children of a value whose slot comes after them: if a cycle
 * through the children gave the object a slot meanwhile, turn this copy
 * into an alias of it; otherwise take the next slot.
 */
static int enc_close(Encoder *e, PyObject *obj, size_t tag_pos, int memo)
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
	Py_ssize_t n;

#if PY_VERSION_HEX >= 0x030D0000
	n = PyLong_AsNativeBytes(obj, NULL, 0, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
	if (n < 0)
		return -1;
#else
	size_t bits = _PyLong_NumBits(obj);

	if (bits == (size_t)-1 && PyErr_Occurred())
		return -1;
	n = (Py_ssize_t)(bits / 8 + 1);
#endif
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

#define IS_SMALL_INT(v)	((v) >= -5 && (v) <= 256)

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
static int enc_long(Encoder *e, PyObject *obj, int may_memo)
{
	long long v;
	long slot;
	int overflow;

	v = PyLong_AsLongLongAndOverflow(obj, &overflow);
	if (!overflow) {
		if (v == -1 && PyErr_Occurred())
			return -1;
		/* CPython's small ints are unique anyway: no slot for them. */
		if (!may_memo || Py_REFCNT(obj) <= 2 || IS_SMALL_INT(v))
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
static int put_str(Encoder *e, PyObject *obj, int memo)
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
	int memo = Py_REFCNT(obj) > 2;
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

/*
 * A container's item, borrowed from it. Scalars that run no user code are
 * written at once; anything else is held while encoded (user code could
 * drop it from the container meanwhile).
 */
static inline int enc_item(Encoder *e, PyObject *item)
{
	PyTypeObject *tp = Py_TYPE(item);
	int ret;

	if (__builtin_expect(e->depth >= MAX_DEPTH, 0))
		return enc_too_deep(e);
	if (tp == &PyLong_Type) {
		long v;

		/* One digit: read it directly, as CPython's own fast paths do. */
#if PY_VERSION_HEX >= 0x030C0000
		if (PyUnstable_Long_IsCompact((PyLongObject *)item))
			v = (long)PyUnstable_Long_CompactValue((PyLongObject *)item);
#else
		if (Py_SIZE(item) >= -1 && Py_SIZE(item) <= 1)
			v = Py_SIZE(item) * (long)((PyLongObject *)item)->ob_digit[0];
#endif
		else
			goto held;
		/* Borrowed: more than one reference means shared. */
		if (Py_REFCNT(item) > 1 && !IS_SMALL_INT(v))
			goto held;
		return pyshm_clone_put_int(&e->w, v) < 0 ? enc_nomem() : 0;
	}
	if (tp == &PyFloat_Type) {
		if (Py_REFCNT(item) > 1)
			goto held;
		return pyshm_clone_put_float(&e->w, PyFloat_AS_DOUBLE(item)) < 0 ? enc_nomem() : 0;
	}
	if (item == Py_None)
		return pyshm_clone_put_none(&e->w) < 0 ? enc_nomem() : 0;
	if (tp == &PyBool_Type)
		return pyshm_clone_put_bool(&e->w, item == Py_True) < 0 ? enc_nomem() : 0;
held:
	Py_INCREF(item);
	ret = enc_value(e, item);
	Py_DECREF(item);
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
static int enc_dict(Encoder *e, PyObject *d, int memo, int attr)
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

/* ---- stdlib types ---------------------------------------------------------- */

/* An int attribute (of a pure-Python date, time, timedelta). */
static int get_int_attr(PyObject *obj, const char *name, long *out)
{
	PyObject *v = PyObject_GetAttrString(obj, name);

	if (!v)
		return -1;
	*out = PyLong_AsLong(v);
	Py_DECREF(v);
	return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

enum { K_DATE, K_TIME, K_DATETIME, K_TIMEDELTA, K_TIMEZONE, K_DECIMAL };

/* The fields of a date, time or datetime: from the C struct when @obj is
 * of the C types, else through attributes (_pydatetime). */
struct dt_fields {
	long year, month, day, hour, minute, second, us, fold;
	PyObject *tz;		/* new reference or NULL */
};

static int dt_get(Encoder *e, PyObject *obj, int kind, int c, struct dt_fields *f)
{
	static const char *const names[] = { "year", "month", "day", "hour", "minute",
					     "second", "microsecond", "fold" };
	long *dst[] = { &f->year, &f->month, &f->day, &f->hour, &f->minute, &f->second,
			&f->us, &f->fold };
	int i, first = kind == K_TIME ? 3 : 0, last = kind == K_DATE ? 3 : 8;

	memset(f, 0, sizeof(*f));
	if (c) {
		if (kind != K_TIME) {
			f->year = PyDateTime_GET_YEAR(obj);
			f->month = PyDateTime_GET_MONTH(obj);
			f->day = PyDateTime_GET_DAY(obj);
		}
		if (kind == K_DATETIME) {
			f->hour = PyDateTime_DATE_GET_HOUR(obj);
			f->minute = PyDateTime_DATE_GET_MINUTE(obj);
			f->second = PyDateTime_DATE_GET_SECOND(obj);
			f->us = PyDateTime_DATE_GET_MICROSECOND(obj);
			f->fold = PyDateTime_DATE_GET_FOLD(obj);
			f->tz = Py_NewRef(PyDateTime_DATE_GET_TZINFO(obj));
		} else if (kind == K_TIME) {
			f->hour = PyDateTime_TIME_GET_HOUR(obj);
			f->minute = PyDateTime_TIME_GET_MINUTE(obj);
			f->second = PyDateTime_TIME_GET_SECOND(obj);
			f->us = PyDateTime_TIME_GET_MICROSECOND(obj);
			f->fold = PyDateTime_TIME_GET_FOLD(obj);
			f->tz = Py_NewRef(PyDateTime_TIME_GET_TZINFO(obj));
		}
	} else {
		for (i = first; i < last; i++)
			if (get_int_attr(obj, names[i], dst[i]) < 0)
				return enc_bad(e, obj, NULL);
		if (kind != K_DATE) {
			f->tz = PyObject_GetAttrString(obj, "tzinfo");
			if (!f->tz)
				return enc_bad(e, obj, NULL);
		}
	}
	if (f->tz == Py_None)
		Py_CLEAR(f->tz);
	return 0;
}

/* Is @tp the C implementation's type cached at @idx? */
static inline int is_c_type(pymod_state *st, PyTypeObject *tp, int idx)
{
	return st->clone_dt_capi && tp == (PyTypeObject *)cc_get(st, idx) &&
	       !PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE);
}

static int enc_datetime(Encoder *e, PyObject *obj, int kind, int memo)
{
	static const int idx[] = { [K_DATE] = CC_DATE, [K_TIME] = CC_TIME,
				   [K_DATETIME] = CC_DATETIME };
	struct pyshm_clone_writer *w = &e->w;
	size_t tag_pos = w->len;
	struct dt_fields f;
	uint8_t type;
	int ret;

	if (dt_get(e, obj, kind, is_c_type(e->st, Py_TYPE(obj), idx[kind]), &f) < 0)
		return -1;
	if (f.year < 0 || f.year > 9999 || (unsigned long)f.us > 999999) {
		Py_XDECREF(f.tz);
		return enc_bad(e, obj, "field out of range");
	}
	type = kind == K_DATE ? PYSHM_CLONE_DATE :
	       kind == K_TIME ? PYSHM_CLONE_TIME : PYSHM_CLONE_DATETIME;
	if (pyshm_clone_reserve(w, 16) < 0) {
		Py_XDECREF(f.tz);
		return enc_nomem();
	}
	pyshm_clone_raw_tag(w, type | M(memo));
	if (kind != K_TIME) {
		pyshm_clone_raw_le(w, (uint64_t)f.year, 2);
		pyshm_clone_raw_u8(w, (uint8_t)f.month);
		pyshm_clone_raw_u8(w, (uint8_t)f.day);
	}
	if (kind != K_DATE) {
		pyshm_clone_raw_u8(w, (uint8_t)f.hour);
		pyshm_clone_raw_u8(w, (uint8_t)f.minute);
		pyshm_clone_raw_u8(w, (uint8_t)f.second);
		pyshm_clone_raw_le(w, (uint64_t)f.us, 3);
		pyshm_clone_raw_u8(w, (uint8_t)((f.fold ? PYSHM_CLONE_DT_FOLD : 0) |
						(f.tz ? PYSHM_CLONE_DT_TZ : 0)));
	}
	if (!f.tz)
		return memo ? memo_put(e, obj) : 0;
	ret = enc_value(e, f.tz);
	Py_DECREF(f.tz);
	if (ret < 0) {
		path_text(e, ".tzinfo");
		return -1;
	}
	return enc_close(e, obj, tag_pos, memo);
}

/* A timedelta's days, seconds, microseconds (after a tag or in TIMEZONE). */
static int put_delta(Encoder *e, PyObject *td)
{
	long days, s, us;

	if (is_c_type(e->st, Py_TYPE(td), CC_TIMEDELTA)) {
		days = PyDateTime_DELTA_GET_DAYS(td);
		s = PyDateTime_DELTA_GET_SECONDS(td);
		us = PyDateTime_DELTA_GET_MICROSECONDS(td);
	} else if (get_int_attr(td, "days", &days) < 0 || get_int_attr(td, "seconds", &s) < 0 ||
		   get_int_attr(td, "microseconds", &us) < 0) {
		return enc_bad(e, td, NULL);
	}
	if (pyshm_clone_reserve(&e->w, 30) < 0)
		return enc_nomem();
	pyshm_clone_raw_varint(&e->w, pyshm_clone_zigzag(days));
	pyshm_clone_raw_varint(&e->w, (uint64_t)s);
	pyshm_clone_raw_varint(&e->w, (uint64_t)us);
	return 0;
}

static int enc_timedelta(Encoder *e, PyObject *obj, int memo)
{
	if (pyshm_clone_put_tag(&e->w, PYSHM_CLONE_TIMEDELTA | M(memo)) < 0)
		return enc_nomem();
	if (put_delta(e, obj) < 0)
		return -1;
	return memo ? memo_put(e, obj) : 0;
}

/* timezone(offset[, name]), as its __getinitargs__() gives it. */
static int enc_timezone(Encoder *e, PyObject *obj, int memo)
{
	PyObject *args = PyObject_CallMethod(obj, "__getinitargs__", NULL), *name = NULL, *b = NULL;
	int ret = -1;

	if (!args)
		return enc_bad(e, obj, NULL);
	if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 2 ||
	    (PyTuple_GET_SIZE(args) == 2 && !PyUnicode_Check(PyTuple_GET_ITEM(args, 1)))) {
		Py_DECREF(args);
		return enc_bad(e, obj, "unexpected __getinitargs__()");
	}
	if (PyTuple_GET_SIZE(args) == 2) {
		name = PyTuple_GET_ITEM(args, 1);
		b = PyUnicode_AsEncodedString(name, "utf-8", "surrogatepass");
		if (!b)
			goto out;
	}
	if (pyshm_clone_put_tag(&e->w, PYSHM_CLONE_TIMEZONE | M(memo)) < 0) {
		enc_nomem();
		goto out;
	}
	if (put_delta(e, PyTuple_GET_ITEM(args, 0)) < 0)
		goto out;
	if (pyshm_clone_reserve(&e->w, 1) < 0) {
		enc_nomem();
		goto out;
	}
	pyshm_clone_raw_u8(&e->w, b ? PYSHM_CLONE_TZ_NAME : 0);
	if (b && (pyshm_clone_put_varint(&e->w, (uint64_t)PyBytes_GET_SIZE(b)) < 0 ||
		  pyshm_clone_put_raw(&e->w, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b)) < 0)) {
		enc_nomem();
		goto out;
	}
	ret = memo ? memo_put(e, obj) : 0;
out:
	Py_XDECREF(b);
	Py_DECREF(args);
	return ret;
}

static int enc_decimal(Encoder *e, PyObject *obj, int memo)
{
	PyObject *s = PyObject_Str(obj);
	int ret;

	if (!s)
		return enc_bad(e, obj, NULL);
	if (!PyUnicode_IS_ASCII(s)) {
		Py_DECREF(s);
		return enc_bad(e, obj, "str() is not ASCII");
	}
	ret = pyshm_clone_put_blob(&e->w, PYSHM_CLONE_DECIMAL | M(memo), PyUnicode_DATA(s),
				   (size_t)PyUnicode_GET_LENGTH(s));
	Py_DECREF(s);
	if (ret < 0)
		return enc_nomem();
	return memo ? memo_put(e, obj) : 0;
}

static int enc_fraction(Encoder *e, PyObject *obj, int memo)
{
	PyObject *num = PyObject_GetAttrString(obj, "numerator"), *den = NULL;
	int ret = -1;

	if (num)
		den = PyObject_GetAttrString(obj, "denominator");
	if (!den || !PyLong_CheckExact(num) || !PyLong_CheckExact(den)) {
		Py_XDECREF(num);
		Py_XDECREF(den);
		return enc_bad(e, obj, NULL);
	}
	if (e->depth >= MAX_DEPTH)		/* its two ints are one level down */
		enc_too_deep(e);
	else if (pyshm_clone_put_tag(&e->w, PYSHM_CLONE_FRACTION | M(memo)) < 0)
		enc_nomem();
	else if (enc_long(e, num, 0) == 0 && enc_long(e, den, 0) == 0)
		ret = memo ? memo_put(e, obj) : 0;
	Py_DECREF(num);
	Py_DECREF(den);
	return ret;
}

static int enc_array(Encoder *e, PyObject *obj, int memo)
{
	PyObject *tc = PyObject_GetAttr(obj, cc_get(e->st, CC_S_TYPECODE));
	Py_buffer view;
	int ret;

	if (!tc)
		return enc_bad(e, obj, NULL);
	if (!PyUnicode_Check(tc) || PyUnicode_GET_LENGTH(tc) != 1 ||
	    PyUnicode_READ_CHAR(tc, 0) > 127) {
		Py_DECREF(tc);
		return enc_bad(e, obj, "unexpected typecode");
	}
	if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
		Py_DECREF(tc);
		return enc_bad(e, obj, NULL);
	}
	ret = pyshm_clone_put_tag(&e->w, PYSHM_CLONE_ARRAY | M(memo));
	if (!ret && !(ret = pyshm_clone_reserve(&e->w, 1)))
		pyshm_clone_raw_u8(&e->w, (uint8_t)PyUnicode_READ_CHAR(tc, 0));
	if (!ret)
		ret = pyshm_clone_put_varint(&e->w, (uint64_t)view.len);
	if (!ret)
		ret = pyshm_clone_put_raw(&e->w, view.buf, (size_t)view.len);
	PyBuffer_Release(&view);
	Py_DECREF(tc);
	if (ret < 0)
		return enc_nomem();
	return memo ? memo_put(e, obj) : 0;
}

/* The formats memoryview.cast() can rebuild; others travel as bytes. */
static const char *castable_format(const char *fmt)
{
	if (!fmt)
		return "B";
	if (fmt[0] == '@')
		fmt++;
	if (fmt[0] && !fmt[1] && strchr("cbBhHiIlLqQnNfd?eP", fmt[0]))
		return fmt;
	return NULL;
}

static int enc_memoryview(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	const char *fmt;
	Py_ssize_t one, *shape = &one, itemsize = 1;
	Py_buffer view;
	int ndim = 1, i, ret = -1;

	if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0)
		return enc_bad(e, obj, NULL);
	fmt = castable_format(view.format);
	one = view.len;
	if (fmt) {
		ndim = view.ndim;
		shape = view.shape;
		itemsize = view.itemsize;
	} else {
		fmt = "B";
	}
	if (pyshm_clone_reserve(w, 2 + 11 + strlen(fmt) + 10 * (size_t)(ndim + 3) +
				(size_t)view.len) < 0) {
		enc_nomem();
		goto out;
	}
	pyshm_clone_raw_tag(w, PYSHM_CLONE_MEMORYVIEW | M(memo));
	pyshm_clone_raw_u8(w, view.readonly ? PYSHM_CLONE_MV_READONLY : 0);
	pyshm_clone_raw_varint(w, strlen(fmt));
	memcpy(w->buf + w->len, fmt, strlen(fmt));
	w->len += strlen(fmt);
	pyshm_clone_raw_varint(w, (uint64_t)ndim);
	for (i = 0; i < ndim; i++)
		pyshm_clone_raw_varint(w, (uint64_t)shape[i]);
	pyshm_clone_raw_varint(w, (uint64_t)itemsize);
	pyshm_clone_raw_varint(w, (uint64_t)view.len);
	if (PyBuffer_ToContiguous(w->buf + w->len, &view, view.len, 'C') < 0)
		goto out;
	w->len += (size_t)view.len;
	ret = memo ? memo_put(e, obj) : 0;
out:
	PyBuffer_Release(&view);
	return ret;
}

/* A PickleBuffer travels as what it wraps would unpickle to: bytes when
 * read-only, bytearray when writable. */
static int enc_picklebuffer(Encoder *e, PyObject *obj, int memo)
{
	const Py_buffer *view = PyPickleBuffer_GetBuffer(obj);
	struct pyshm_clone_writer *w = &e->w;

	if (!view)
		return enc_bad(e, obj, NULL);
	if (pyshm_clone_reserve(w, 11 + (size_t)view->len) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(w, (view->readonly ? PYSHM_CLONE_BYTES : PYSHM_CLONE_BYTEARRAY) |
			    M(memo));
	pyshm_clone_raw_varint(w, (uint64_t)view->len);
	if (PyBuffer_ToContiguous(w->buf + w->len, (Py_buffer *)view, view->len, 'C') < 0)
		return enc_bad(e, obj, NULL);
	w->len += (size_t)view->len;
	return memo ? memo_put(e, obj) : 0;
}

/* ---- shared memory, ports, payloads ---------------------------------------- */

/* The region table index of @r, adding it (held by @owner) if new. */
static long pending_add(Encoder *e, PyObject *owner, struct pyshm_region *r,
			unsigned int role)
{
	struct pending *p;
	uint32_t i;

	for (i = 0; i < e->npend; i++)
		if (e->pend[i].r == r)
			return e->pend[i].role == role ? (long)i : -1;
	if (e->npend == e->cappend) {
		uint32_t cap = e->cappend ? 2 * e->cappend : 4;

		p = PyMem_Realloc(e->pend, cap * sizeof(*p));
		if (!p) {
			enc_nomem();
			return -1;
		}
		e->pend = p;
		e->cappend = cap;
	}
	p = &e->pend[e->npend];
	p->owner = Py_NewRef(owner);
	p->r = r;
	p->role = role;
	return e->npend++;
}

static int no_transfer(Encoder *e, PyObject *obj)
{
	return enc_bad(e, obj, "shared memory needs post_message() or structured_clone(), "
			       "not _encode()");
}

static int enc_sab(Encoder *e, PyObject *obj, int memo)
{
	long idx;

	if (!e->env->xfer)
		return no_transfer(e, obj);
	idx = pending_add(e, obj, sab_region(e->st, obj), PYSHM_CLONE_ROLE_SAB);
	if (idx < 0)
		return PyErr_Occurred() ? -1 : enc_bad(e, obj, "region is also a payload");
	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_SAB | M(memo), (uint64_t)idx) < 0)
		return enc_nomem();
	return memo ? memo_put(e, obj) : 0;
}

static int enc_typed_array(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t off, len;
	PyObject *sab;
	int elsize, ret;

	typed_array_info(e->st, obj, &elsize, &sab, &off, &len);
	if (pyshm_clone_reserve(w, 22) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(w, PYSHM_CLONE_TYPED_ARRAY | M(memo));
	pyshm_clone_raw_u8(w, (uint8_t)elsize);
	pyshm_clone_raw_varint(w, (uint64_t)off);
	pyshm_clone_raw_varint(w, pyshm_clone_zigzag(len));
	Py_INCREF(sab);
	ret = enc_value(e, sab);
	Py_DECREF(sab);
	if (ret < 0) {
		path_text(e, ".buffer");
		return -1;
	}
	return memo ? memo_put(e, obj) : 0;
}

static int enc_port(Encoder *e, PyObject *obj)
{
	Py_ssize_t i, n = e->ports ? PyList_GET_SIZE(e->ports) : 0;

	for (i = 0; i < n; i++)
		if (PyList_GET_ITEM(e->ports, i) == obj)
			return pyshm_clone_put_head(&e->w, PYSHM_CLONE_PORT, (uint64_t)i) < 0 ?
				enc_nomem() : 0;
	return enc_bad(e, obj, "a MessagePort must be listed in transfer");
}

static int enc_shared(Encoder *e, PyObject *obj, const struct pyshm_clone_ops *ops, int memo)
{
	struct pyshm_payload *p;
	PyObject *tp = (PyObject *)Py_TYPE(obj);
	long idx;
	int ret;

	if (!e->env->xfer)
		return no_transfer(e, obj);
	p = ops->get_payload(obj);
	if (!p)
		return enc_bad(e, obj, "no payload");
	idx = pending_add(e, obj, capi_payload_region(p), PYSHM_CLONE_ROLE_PAYLOAD);
	if (idx < 0)
		return PyErr_Occurred() ? -1 : enc_bad(e, obj, "region is also a buffer");
	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_SHARED | M(memo), (uint64_t)idx) < 0)
		return enc_nomem();
	Py_INCREF(tp);
	ret = enc_value(e, tp);
	Py_DECREF(tp);
	if (ret < 0) {
		path_text(e, ".__class__");
		return -1;
	}
	return memo ? memo_put(e, obj) : 0;
}

/* ---- by reference: classes and functions ------------------------------------ */

/* pickle's whichmodule(): the module in sys.modules where @name leads to
 * @obj, for objects without __module__ (Ellipsis...). New reference, or
 * NULL (no exception). */
static PyObject *which_module(PyObject *obj, PyObject *name)
{
	PyObject *modules = PySys_GetObject("modules"), *items, *found = NULL;
	Py_ssize_t i;

	if (!modules || !PyDict_Check(modules))
		return NULL;
	items = PyDict_Items(modules);	/* a copy: imports may happen */
	for (i = 0; items && !found && i < PyList_GET_SIZE(items); i++) {
		PyObject *modname = PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 0);
		PyObject *mod = PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1);
		PyObject *v;

		if (!PyUnicode_Check(modname) || !PyModule_Check(mod) ||
		    !PyUnicode_CompareWithASCIIString(modname, "__main__") ||
		    !PyUnicode_CompareWithASCIIString(modname, "__mp_main__"))
			continue;
		v = clone_resolve(mod, name);
		if (v == obj)
			found = Py_NewRef(modname);
		Py_XDECREF(v);
	}
	Py_XDECREF(items);
	PyErr_Clear();
	return found;
}

/*
 * @obj by module and qualified name (@name: the name __reduce__ gave, else
 * __qualname__), checked importable as pickle does: the name must lead
 * back to @obj itself.
 */
static int enc_global(Encoder *e, PyObject *obj, PyObject *name, int memo)
{
	PyObject *modname = NULL, *mod = NULL, *found = NULL;
	const char *m, *q;
	Py_ssize_t mlen, qlen;
	int ret = -1;

	if (name) {
		Py_INCREF(name);
	} else {
		name = PyObject_GetAttr(obj, cc_get(e->st, CC_S_QUALNAME));
		if (!name) {
			PyErr_Clear();
			name = PyObject_GetAttrString(obj, "__name__");
		}
		if (!name)
			return enc_bad(e, obj, NULL);
	}
	modname = PyObject_GetAttr(obj, cc_get(e->st, CC_S_MODULE));
	if ((!modname || modname == Py_None) && PyUnicode_Check(name)) {
		PyErr_Clear();
		Py_XSETREF(modname, which_module(obj, name));
	}
	if (!modname || !PyUnicode_Check(modname) || !PyUnicode_Check(name)) {
		if (!PyErr_Occurred())
			PyErr_Format(PyExc_TypeError, "no module or name to import it by");
		enc_bad(e, obj, NULL);
		goto out;
	}
	mod = PyImport_Import(modname);
	found = mod ? clone_resolve(mod, name) : NULL;
	if (found != obj) {
		if (found)
			PyErr_Format(PyExc_TypeError, "%U.%U is another object", modname, name);
		enc_bad(e, obj, NULL);	/* the cause says why */
		goto out;
	}
	m = PyUnicode_AsUTF8AndSize(modname, &mlen);
	q = m ? PyUnicode_AsUTF8AndSize(name, &qlen) : NULL;
	if (!q) {
		enc_bad(e, obj, NULL);
		goto out;
	}
	if (pyshm_clone_reserve(&e->w, 21 + (size_t)mlen + (size_t)qlen) < 0) {
		enc_nomem();
		goto out;
	}
	pyshm_clone_raw_tag(&e->w, PYSHM_CLONE_GLOBAL | M(memo));
	pyshm_clone_raw_varint(&e->w, (uint64_t)mlen);
	memcpy(e->w.buf + e->w.len, m, (size_t)mlen);
	e->w.len += (size_t)mlen;
	pyshm_clone_raw_varint(&e->w, (uint64_t)qlen);
	memcpy(e->w.buf + e->w.len, q, (size_t)qlen);
	e->w.len += (size_t)qlen;
	ret = memo ? memo_put(e, obj) : 0;
out:
	Py_XDECREF(found);
	Py_XDECREF(mod);
	Py_XDECREF(modname);
	Py_DECREF(name);
	return ret;
}

/*
 * By value: a function the receiver cannot import by name (a lambda, a
 * closure, a nested or dynamically made function), and any function or
 * class of __main__ when the receiver cannot load the main script (the
 * REPL, python -c, Dask's workers). pyshm_workers._byvalue.reduce() gives
 * a reduction through cloudpickle, None for "by name after all", or raises
 * with what to install.
 */
static int enc_reduce_rv(Encoder *e, PyObject *obj, PyObject *rv, int memo);

static int from_main(Encoder *e, PyObject *obj)
{
	PyObject *modname = PyObject_GetAttr(obj, cc_get(e->st, CC_S_MODULE));
	int ret = modname && PyUnicode_Check(modname) &&
		  (!PyUnicode_CompareWithASCIIString(modname, "__main__") ||
		   !PyUnicode_CompareWithASCIIString(modname, "__mp_main__"));

	Py_XDECREF(modname);
	PyErr_Clear();
	return ret;
}

static int enc_by_value(Encoder *e, PyObject *obj, int memo)
{
	PyObject *mod = PyImport_ImportModule("pyshm_workers._byvalue"), *rv, *exc, *why;
	int ret;

	rv = mod ? PyObject_CallMethod(mod, "reduce", "O", obj) : NULL;
	Py_XDECREF(mod);
	if (!rv) {
		if (!PyErr_ExceptionMatches(PyExc_Exception))
			return -1;
		exc = clone_fetch_exc();
		why = exc ? PyObject_Str(exc) : NULL;
		PyErr_Clear();
		/* Pending again: enc_bad() makes it the cause. */
#if PY_VERSION_HEX >= 0x030C0000
		PyErr_SetRaisedException(exc);
#else
		PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
		ret = enc_bad(e, obj, why ? PyUnicode_AsUTF8(why) : NULL);
		Py_XDECREF(why);
		return ret;
	}
	ret = rv == Py_None ? enc_global(e, obj, NULL, memo) : enc_reduce_rv(e, obj, rv, memo);
	Py_DECREF(rv);
	return ret;
}

/* A class or function: by name, else (see above) by value. */
static int enc_named(Encoder *e, PyObject *obj, int memo)
{
	int ret;

	if (from_main(e, obj))
		return enc_by_value(e, obj, memo);
	ret = enc_global(e, obj, NULL, memo);
	if (ret == 0 || !e->err || !PyFunction_Check(obj))
		return ret;
	/* Not importable by name: forget that error and try by value. */
	Py_CLEAR(e->err);
	Py_CLEAR(e->err_path);
	Py_CLEAR(e->err_cause);
	Py_CLEAR(e->err_obj);
	return enc_by_value(e, obj, memo);
}

/* ---- the pickle protocol ------------------------------------------------------ */

/* An object's state: a dict's keys are its attribute names (".x"). */
static int enc_state(Encoder *e, PyObject *state)
{
	int memo, ret;
	long slot;

	if (!PyDict_CheckExact(state)) {
		ret = enc_value(e, state);
		if (ret < 0)
			path_text(e, "<state>");
		return ret;
	}
	memo = Py_REFCNT(state) > 2;
	if (memo && (slot = memo_get(&e->memo, state)) >= 0)
		return pyshm_clone_put_ref(&e->w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
	if (e->depth >= MAX_DEPTH)
		return enc_too_deep(e);
	e->depth++;
	ret = enc_dict(e, state, memo, 1);
	e->depth--;
	return ret;
}

/* Values from an iterator, then END: reduce's listitems and dictitems. */
static int enc_items(Encoder *e, PyObject *obj, PyObject *iterable, int pairs)
{
	PyObject *it = PyObject_GetIter(iterable), *item;
	Py_ssize_t i = 0;
	int ret = 0;

	if (!it)
		return enc_bad(e, obj, NULL);
	while (!ret && (item = PyIter_Next(it))) {
		if (!pairs) {
			ret = enc_value(e, item);
			if (ret < 0)
				path_index(e, i);
		} else if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
			PyErr_SetString(PyExc_TypeError, "dictitems must yield (key, value) pairs");
			ret = enc_bad(e, obj, NULL);
		} else {
			ret = enc_item(e, PyTuple_GET_ITEM(item, 0));
			if (ret < 0 && e->err)
				path_add(e, PyUnicode_FromFormat("<key #%zd>", i));
			if (!ret) {
				ret = enc_item(e, PyTuple_GET_ITEM(item, 1));
				if (ret < 0)
					path_key(e, PyTuple_GET_ITEM(item, 0), 0);
			}
		}
		Py_DECREF(item);
		i++;
	}
	Py_DECREF(it);
	if (!ret && PyErr_Occurred())
		ret = enc_bad(e, obj, NULL);
	if (!ret && pyshm_clone_put_tag(&e->w, PYSHM_CLONE_END) < 0)
		ret = enc_nomem();
	return ret;
}

/*
 * The reduce of @obj failed on its own class (not importable: a local
 * class): the error is about @obj, "cannot clone 'Local' object", with the
 * class's failure as the cause, not about a class somewhere in its args.
 */
static int blame_instance(Encoder *e, PyObject *obj)
{
	PyObject *msg;

	if (!e->err || e->err_obj != (PyObject *)Py_TYPE(obj))
		return 0;
	msg = PyUnicode_FromFormat("cannot clone '%s' object: its class is not importable",
				   Py_TYPE(obj)->tp_name);
	if (!msg || PyList_SetSlice(e->err_path, 0, PyList_GET_SIZE(e->err_path), NULL) < 0) {
		Py_XDECREF(msg);
		PyErr_Clear();
		return 0;
	}
	Py_SETREF(e->err, msg);
	Py_SETREF(e->err_obj, Py_NewRef(obj));
	return 1;
}

/* What __reduce_ex__() (or a copyreg reducer) returned for @obj. */
static int enc_reduce_rv(Encoder *e, PyObject *obj, PyObject *rv, int memo)
{
	PyObject *func, *args, *parts[4] = { Py_None, Py_None, Py_None, Py_None };
	static const uint8_t part_flags[] = { PYSHM_CLONE_RED_STATE, PYSHM_CLONE_RED_LISTITEMS,
					      PYSHM_CLONE_RED_DICTITEMS, PYSHM_CLONE_RED_SETTER };
	size_t tag_pos = e->w.len;
	Py_ssize_t n, i;
	uint8_t flags = 0;
	long slot;
	int newobj;

	if (PyUnicode_Check(rv))
		return enc_global(e, obj, rv, memo);
	if (!PyTuple_Check(rv) || (n = PyTuple_GET_SIZE(rv)) < 2 || n > 6) {
		PyErr_SetString(PyExc_TypeError, "__reduce__ must return a string or a tuple "
				"of 2 to 6 items");
		return enc_bad(e, obj, NULL);
	}
	func = PyTuple_GET_ITEM(rv, 0);
	args = PyTuple_GET_ITEM(rv, 1);
	for (i = 2; i < n; i++)
		parts[i - 2] = PyTuple_GET_ITEM(rv, i);
	if (!PyCallable_Check(func) || !PyTuple_Check(args)) {
		PyErr_SetString(PyExc_TypeError, "__reduce__ must give a callable and a tuple");
		return enc_bad(e, obj, NULL);
	}
	newobj = func == cc_get(e->st, CC_NEWOBJ) && PyTuple_GET_SIZE(args) >= 1 &&
		 PyType_Check(PyTuple_GET_ITEM(args, 0));
	if (newobj)
		flags |= PYSHM_CLONE_RED_NEWOBJ;
	for (i = 0; i < 4; i++)
		if (parts[i] != Py_None)
			flags |= part_flags[i];

	if (pyshm_clone_reserve(&e->w, 2) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(&e->w, PYSHM_CLONE_REDUCE | M(memo));
	pyshm_clone_raw_u8(&e->w, flags);
	if (!newobj && enc_item(e, func) < 0) {
		if (!blame_instance(e, obj))
			path_text(e, "<reducer>");
		return -1;
	}
	if (enc_item(e, args) < 0) {
		if (!blame_instance(e, obj))
			path_text(e, "<args>");
		return -1;
	}
	if (memo) {
		slot = memo_get(&e->memo, obj);
		if (slot >= 0)
			return pyshm_clone_patch_alias(&e->w, tag_pos, (uint32_t)slot) < 0 ?
				enc_nomem() : 0;
		if (memo_put(e, obj) < 0)
			return -1;
	}
	/* The order of the wire: list items, dict items, state, setter. */
	if (parts[1] != Py_None && enc_items(e, obj, parts[1], 0) < 0)
		return -1;
	if (parts[2] != Py_None && enc_items(e, obj, parts[2], 1) < 0)
		return -1;
	if (parts[0] != Py_None) {
		Py_INCREF(parts[0]);
		i = enc_state(e, parts[0]);
		Py_DECREF(parts[0]);
		if (i < 0)
			return -1;
	}
	if (parts[3] != Py_None && enc_item(e, parts[3]) < 0) {
		path_text(e, "<setstate>");
		return -1;
	}
	return 0;
}

static int enc_reduce(Encoder *e, PyObject *obj, int memo)
{
	PyObject *reducer, *rv;
	int ret;

	reducer = PyDict_GetItemWithError(cc_get(e->st, CC_DISPATCH), (PyObject *)Py_TYPE(obj));
	if (reducer) {
		Py_INCREF(reducer);
		rv = PyObject_CallOneArg(reducer, obj);
		Py_DECREF(reducer);
	} else if (PyErr_Occurred()) {
		return -1;
	} else {
		PyObject *proto = PyLong_FromLong(5);

		rv = proto ? PyObject_CallMethodOneArg(obj, cc_get(e->st, CC_S_REDUCE_EX), proto) :
			     NULL;
		Py_XDECREF(proto);
	}
	if (!rv)
		return enc_bad(e, obj, NULL);
	ret = enc_reduce_rv(e, obj, rv, memo);
	Py_DECREF(rv);
	return ret;
}

/* ---- exceptions ------------------------------------------------------------- */

/* The traceback text of @exc alone (its chain travels as objects). */
static PyObject *traceback_text(Encoder *e, PyObject *exc, PyObject *tb)
{
	PyObject *fn, *args, *kw = NULL, *lines = NULL, *sep, *text = NULL;

	if (clone_cache_group(e->st, CG_TRACEBACK, 1) <= 0)
		goto fail;
	fn = cc_get(e->st, CC_FORMAT_EXC);
	args = PyTuple_Pack(3, (PyObject *)Py_TYPE(exc), exc, tb ? tb : Py_None);
	kw = args ? Py_BuildValue("{OO}", cc_get(e->st, CC_S_CHAIN), Py_False) : NULL;
	lines = kw ? PyObject_Call(fn, args, kw) : NULL;
	Py_XDECREF(args);
	Py_XDECREF(kw);
	sep = lines ? PyUnicode_FromString("") : NULL;
	text = sep ? PyUnicode_Join(sep, lines) : NULL;
	Py_XDECREF(sep);
	Py_XDECREF(lines);
	if (text)
		return text;
fail:
	PyErr_Clear();		/* the text is a courtesy: go on without it */
	return NULL;
}

/*
 * An exception: what its __reduce_ex__() gives (type, args, __dict__), plus
 * the chain (__cause__, __context__, __suppress_context__) and the text of
 * its traceback, which the receiver gets as __traceback_text__.
 */
static int enc_exception(Encoder *e, PyObject *obj, int memo)
{
	PyObject *proto, *rv, *state = NULL, *cause, *context, *tb, *text = NULL;
	PyObject *tbtext_key = cc_get(e->st, CC_S_TBTEXT);
	size_t tag_pos = e->w.len;
	uint8_t flags = 0;
	long slot;
	int ret = -1;

	proto = PyLong_FromLong(5);
	rv = proto ? PyObject_CallMethodOneArg(obj, cc_get(e->st, CC_S_REDUCE_EX), proto) : NULL;
	Py_XDECREF(proto);
	if (!rv)
		return enc_bad(e, obj, NULL);
	if (!PyTuple_Check(rv) || PyTuple_GET_SIZE(rv) < 2 || PyTuple_GET_SIZE(rv) > 3 ||
	    !PyTuple_Check(PyTuple_GET_ITEM(rv, 1)) ||
	    (PyTuple_GET_SIZE(rv) == 3 && PyTuple_GET_ITEM(rv, 2) != Py_None &&
	     !PyDict_Check(PyTuple_GET_ITEM(rv, 2)))) {
		/* A custom __reduce__: clone it as any other object. */
		ret = enc_reduce_rv(e, obj, rv, memo);
		Py_DECREF(rv);
		return ret;
	}
	if (PyTuple_GET_SIZE(rv) == 3 && PyTuple_GET_ITEM(rv, 2) != Py_None &&
	    PyDict_GET_SIZE(PyTuple_GET_ITEM(rv, 2)))
		state = PyTuple_GET_ITEM(rv, 2);
	cause = PyException_GetCause(obj);
	context = PyException_GetContext(obj);
	tb = PyException_GetTraceback(obj);
	/* A received exception keeps its text until it is raised again here. */
	if (tb || !state || PyDict_Contains(state, tbtext_key) <= 0)
		text = traceback_text(e, obj, tb);
	PyErr_Clear();
	flags = (state ? PYSHM_CLONE_EXC_STATE : 0) | (cause ? PYSHM_CLONE_EXC_CAUSE : 0) |
		(context ? PYSHM_CLONE_EXC_CONTEXT : 0) | (text ? PYSHM_CLONE_EXC_TBTEXT : 0) |
		(((PyBaseExceptionObject *)obj)->suppress_context ? PYSHM_CLONE_EXC_SUPPRESS : 0);

	if (pyshm_clone_reserve(&e->w, 2) < 0) {
		enc_nomem();
		goto out;
	}
	pyshm_clone_raw_tag(&e->w, PYSHM_CLONE_EXCEPTION | M(memo));
	pyshm_clone_raw_u8(&e->w, flags);
	if (enc_item(e, PyTuple_GET_ITEM(rv, 0)) < 0) {
		if (!blame_instance(e, obj))
			path_text(e, ".__class__");
		goto out;
	}
	if (enc_item(e, PyTuple_GET_ITEM(rv, 1)) < 0) {
		if (!blame_instance(e, obj))
			path_text(e, ".args");
		goto out;
	}
	if (memo) {
		slot = memo_get(&e->memo, obj);
		if (slot >= 0) {
			ret = pyshm_clone_patch_alias(&e->w, tag_pos, (uint32_t)slot) < 0 ?
				enc_nomem() : 0;
			goto out;
		}
		if (memo_put(e, obj) < 0)
			goto out;
	}
	if (state) {
		Py_INCREF(state);
		ret = enc_state(e, state);
		Py_DECREF(state);
		if (ret < 0)
			goto out;
		ret = -1;
	}
	if (cause && enc_value(e, cause) < 0) {
		path_text(e, ".__cause__");
		goto out;
	}
	if (context && enc_value(e, context) < 0) {
		path_text(e, ".__context__");
		goto out;
	}
	if (text && (e->depth >= MAX_DEPTH ? enc_too_deep(e) : put_str(e, text, 0)) < 0)
		goto out;
	ret = 0;
out:
	Py_XDECREF(text);
	Py_XDECREF(tb);
	Py_XDECREF(context);
	Py_XDECREF(cause);
	Py_DECREF(rv);
	return ret;
}

/* ---- dispatch ------------------------------------------------------------------ */

/*
 * A type of the other implementation of datetime or decimal (_pydatetime,
 * _pydecimal) than the one this interpreter's `datetime`/`decimal` use:
 * the K_* kind, or -1.
 */
static int other_impl(PyTypeObject *tp)
{
	static const struct {
		const char *module, *name;
		int kind;
	} known[] = {
		{ "_pydatetime", "date", K_DATE },
		{ "_pydatetime", "time", K_TIME },
		{ "_pydatetime", "datetime", K_DATETIME },
		{ "_pydatetime", "timedelta", K_TIMEDELTA },
		{ "_pydatetime", "timezone", K_TIMEZONE },
		{ "_pydecimal", "Decimal", K_DECIMAL },
	};
	PyObject *name, *mod, *v;
	size_t i;
	int kind = -1;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(tp->tp_name, known[i].name))
			continue;
		name = PyUnicode_FromString(known[i].module);
		mod = name ? PyImport_GetModule(name) : NULL;
		Py_XDECREF(name);
		v = mod ? PyObject_GetAttrString(mod, known[i].name) : NULL;
		Py_XDECREF(mod);
		if (v == (PyObject *)tp)
			kind = known[i].kind;
		Py_XDECREF(v);
		PyErr_Clear();
		break;
	}
	return kind;
}

static int enc_kind(Encoder *e, PyObject *obj, int kind, int memo)
{
	switch (kind) {
	case K_DATE:
	case K_TIME:
	case K_DATETIME:
		return enc_datetime(e, obj, kind, memo);
	case K_TIMEDELTA:
		return enc_timedelta(e, obj, memo);
	case K_TIMEZONE:
		return enc_timezone(e, obj, memo);
	default:
		return enc_decimal(e, obj, memo);
	}
}

/* The types of None, Ellipsis and NotImplemented have no importable name:
 * type(None) rebuilds them, as pickle does. */
static int enc_singleton_type(Encoder *e, PyObject *obj, int memo)
{
	PyObject *inst = obj == (PyObject *)Py_TYPE(Py_None) ? Py_None :
			 obj == (PyObject *)Py_TYPE(Py_Ellipsis) ? Py_Ellipsis : Py_NotImplemented;
	PyObject *rv = Py_BuildValue("(O(O))", (PyObject *)&PyType_Type, inst);
	int ret;

	if (!rv)
		return -1;
	ret = enc_reduce_rv(e, obj, rv, memo);
	Py_DECREF(rv);
	return ret;
}

/* Everything but the built-in containers and scalars. */
static int enc_other(Encoder *e, PyObject *obj, int memo)
{
	pymod_state *st = e->st;
	PyTypeObject *tp = Py_TYPE(obj);
	const struct pyshm_clone_ops *ops;
	PyObject *c = st->clone_cache;
	int i, kind;

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
	if (tp == st->int32_type || tp == st->int64_type)
		return enc_typed_array(e, obj, memo);
	if (st->port_type && PyObject_TypeCheck(obj, st->port_type))
		return enc_port(e, obj);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_DECIMAL))
		return enc_decimal(e, obj, memo);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_FRACTION))
		return enc_fraction(e, obj, memo);
	if ((PyObject *)tp == PyList_GET_ITEM(c, CC_ARRAY))
		return enc_array(e, obj, memo);
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

static int enc_value(Encoder *e, PyObject *obj)
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

	memo = Py_REFCNT(obj) > 2;
	if (memo && (slot = memo_get(&e->memo, obj)) >= 0)
		return pyshm_clone_put_ref(w, (uint32_t)slot) < 0 ? enc_nomem() : 0;
	e->depth++;
	if (tp == &PyList_Type) {
		ret = enc_list(e, obj, memo);
	} else if (tp == &PyDict_Type) {
		ret = enc_dict(e, obj, memo, 0);
	} else if (tp == &PyTuple_Type) {
		ret = enc_tuple(e, obj, memo);
	} else if (tp == &PyBytes_Type) {
		ret = pyshm_clone_put_blob(w, PYSHM_CLONE_BYTES | M(memo), PyBytes_AS_STRING(obj),
					   (size_t)PyBytes_GET_SIZE(obj)) < 0 ? enc_nomem() :
			memo ? memo_put(e, obj) : 0;
	} else if (tp == &PyByteArray_Type) {
		ret = pyshm_clone_put_blob(w, PYSHM_CLONE_BYTEARRAY | M(memo),
					   PyByteArray_AS_STRING(obj),
					   (size_t)PyByteArray_GET_SIZE(obj)) < 0 ? enc_nomem() :
			memo ? memo_put(e, obj) : 0;
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

/* The transfer list: MessagePorts only, each once, each transferable. */
static int check_transfer(Encoder *e, PyObject *transfer)
{
	pymod_state *st = e->st;
	Py_ssize_t i, j, n;
	PyObject *list, *item;
	struct port *p;

	if (!transfer || transfer == Py_None)
		return 0;
	list = PySequence_List(transfer);
	if (!list) {
		PyErr_Format(st->DataCloneError, "transfer must be an iterable of MessagePorts, "
			     "not '%s'", Py_TYPE(transfer)->tp_name);
		return -1;
	}
	n = PyList_GET_SIZE(list);
	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(list, i);
		if (!st->port_type || !PyObject_TypeCheck(item, st->port_type)) {
			PyErr_Format(st->DataCloneError, "cannot transfer '%s' object "
				     "(transfer[%zd]): only MessagePorts can be transferred",
				     Py_TYPE(item)->tp_name, i);
			goto err;
		}
		for (j = 0; j < i; j++) {
			if (PyList_GET_ITEM(list, j) == item) {
				PyErr_Format(st->DataCloneError, "MessagePort listed twice in "
					     "transfer (transfer[%zd] and transfer[%zd])", j, i);
				goto err;
			}
		}
		/* What port_export() would refuse, refused before anything is
		 * sent (port_transfer.c's rules). */
		p = port_from_object(st, item);
		if (!p || atomic_load(&p->detached)) {
			PyErr_Format(st->DataCloneError, "MessagePort is detached (already "
				     "transferred or closed): transfer[%zd]", i);
			goto err;
		}
		if (e->env->port_ctx == p) {
			PyErr_SetString(st->DataCloneError,
					"a MessagePort cannot be transferred through itself");
			goto err;
		}
		if (p->link) {
			PyErr_SetString(st->DataCloneError,
					"a worker's own port cannot be transferred");
			goto err;
		}
	}
	if (n && !e->env->port_export) {
		PyErr_SetString(st->DataCloneError, "MessagePorts cannot be transferred here");
		goto err;
	}
	if (n)
		e->ports = list;
	else
		Py_DECREF(list);
	return 0;
err:
	Py_DECREF(list);
	return -1;
}

/* Send the regions, export the ports, close the message. On failure,
 * what was sent comes back. */
static int enc_commit(Encoder *e, struct clone_msg *out)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t i, n = e->ports ? PyList_GET_SIZE(e->ports) : 0;
	uint32_t sent;
	int ret;

	if (pyshm_clone_end_body(w) < 0 ||
	    pyshm_clone_reserve(w, (size_t)e->npend * PYSHM_CLONE_ENTRY_SIZE + 4 * (size_t)n) < 0)
		return enc_nomem();
	for (sent = 0; sent < e->npend; sent++) {
		struct pending *p = &e->pend[sent];

		if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_hold(p->r);
		if (clone_xfer_send(e->st, e->env, p->r, &p->ref) < 0) {
			if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
				capi_region_unhold(p->r);
			goto err_unsend;
		}
		/* Room was reserved above: this can't fail. */
		pyshm_clone_put_region(w, p->role, &p->ref);
	}
	for (i = 0; i < n; i++) {
		if (pyshm_clone_begin_attachment(w) < 0) {
			enc_nomem();
			goto err_unsend;
		}
		/* port_export() appends to a clone_msg: lend it the buffer. */
		out->buf = w->buf;
		out->len = w->len;
		out->cap = w->cap;
		ret = e->env->port_export(e->env, PyList_GET_ITEM(e->ports, i), out);
		w->buf = out->buf;
		w->len = out->len;
		w->cap = out->cap;
		out->buf = NULL;
		/* XXX: ports exported before a failing one stay detached. */
		if (ret < 0 || pyshm_clone_end_attachment(w) < 0)
			goto err_unsend;
	}
	pyshm_clone_writer_finish(w);
	return 0;

err_unsend:
	while (sent--) {
		struct pending *p = &e->pend[sent];

		pyshm_xfer_drop(e->env->xfer, &p->ref);
		if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_unhold(p->r);
	}
	if (!PyErr_Occurred())
		enc_nomem();
	return -1;
}

int clone_encode(pymod_state *st, PyObject *obj, PyObject *transfer, struct clone_env *env,
		 struct clone_msg *out)
{
	Encoder e = { .st = st, .env = env };
	uint32_t i;
	int ret = -1;

	(void)PyDateTimeAPI;	/* datetime.h's static: we use our own */
	out->buf = NULL;
	out->len = out->cap = 0;
	if (pyshm_clone_writer_init(&e.w, PyMem_RawRealloc, PyMem_RawFree, 0) < 0)
		return enc_nomem();
	if (check_transfer(&e, transfer) < 0)
		goto out;
	Py_INCREF(obj);
	ret = enc_value(&e, obj);
	Py_DECREF(obj);
	if (ret < 0) {
		enc_raise(&e);
		goto out;
	}
	ret = enc_commit(&e, out);
	if (ret == 0) {
		out->buf = e.w.buf;
		out->len = e.w.len;
		out->cap = e.w.cap;
		e.w.buf = NULL;
	}
out:
	pyshm_clone_writer_release(&e.w);
	memo_clear(&e.memo);
	for (i = 0; i < e.npend; i++)
		Py_DECREF(e.pend[i].owner);
	PyMem_Free(e.pend);
	Py_XDECREF(e.ports);
	Py_XDECREF(e.err);
	Py_XDECREF(e.err_path);
	Py_XDECREF(e.err_cause);
	Py_XDECREF(e.err_obj);
	return ret;
}
