// SPDX-License-Identifier: MIT
/*
 * The structured-clone encoder's stdlib types: datetime's date, time,
 * datetime, timedelta and timezone (C or _pydatetime), Decimal, Fraction,
 * array.array, memoryview and PickleBuffer (wire-format.rst).
 */
#include "clone_encode.h"

#include <datetime.h>

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

int enc_decimal(Encoder *e, PyObject *obj, int memo)
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

int enc_fraction(Encoder *e, PyObject *obj, int memo)
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

/* The wire's typecode byte: the typecode, or for 3.15's complex ones
 * ("Zf", "Zd") numpy's letters F and D. 0: none. */
static uint8_t array_wire_typecode(PyObject *tc)
{
	Py_UCS4 c;

	if (!PyUnicode_Check(tc))
		return 0;
	c = PyUnicode_GET_LENGTH(tc) ? PyUnicode_READ_CHAR(tc, 0) : 0;
	if (PyUnicode_GET_LENGTH(tc) == 1 && c > 0x20 && c < 0x7f && c != 'F' && c != 'D')
		return (uint8_t)c;
	if (PyUnicode_GET_LENGTH(tc) == 2 && c == 'Z') {
		c = PyUnicode_READ_CHAR(tc, 1);
		return c == 'f' ? 'F' : c == 'd' ? 'D' : 0;
	}
	return 0;
}

int enc_array(Encoder *e, PyObject *obj, int memo)
{
	PyObject *tc = PyObject_GetAttr(obj, cc_get(e->st, CC_S_TYPECODE)), *holder = NULL;
	Py_buffer view;
	uint8_t wire;
	int ret;

	if (!tc)
		return enc_bad(e, obj, NULL);
	wire = array_wire_typecode(tc);
	Py_DECREF(tc);
	if (!wire)
		return enc_bad(e, obj, "unexpected typecode");
	if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
		return enc_bad(e, obj, NULL);
	/* Exported: the array can't resize until the message is sent. */
	if (enc_by_ref(e, (size_t)view.len) && !(holder = PyMemoryView_FromObject(obj))) {
		PyBuffer_Release(&view);
		return -1;
	}
	ret = pyshm_clone_reserve(&e->w, 13) < 0 ? enc_nomem() : 0;
	if (!ret) {
		pyshm_clone_raw_tag(&e->w, PYSHM_CLONE_ARRAY | M(memo));
		pyshm_clone_raw_u8(&e->w, wire);
		pyshm_clone_raw_varint(&e->w, (uint64_t)view.len);
		ret = holder ? enc_data_ref(e, view.buf, (size_t)view.len, holder) :
			enc_data_copy(e, view.buf, (size_t)view.len);
	}
	Py_XDECREF(holder);
	PyBuffer_Release(&view);
	if (ret < 0)
		return -1;
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

int enc_memoryview(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	PyObject *holder = NULL;
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
	if (pyshm_clone_reserve(w, 2 + 11 + strlen(fmt) + 10 * (size_t)(ndim + 3)) < 0) {
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
	if (enc_by_ref(e, (size_t)view.len) && PyBuffer_IsContiguous(&view, 'C')) {
		/* A view of its own on the same export keeps the memory there
		 * even if this one is released meanwhile. */
		holder = PyMemoryView_FromObject(obj);
		if (!holder || enc_data_ref(e, view.buf, (size_t)view.len, holder) < 0)
			goto out;
	} else {
		if (pyshm_clone_reserve(w, (size_t)view.len) < 0) {
			enc_nomem();
			goto out;
		}
		pyshm_prefault(w->buf + w->len, (size_t)view.len);
		if (PyBuffer_ToContiguous(w->buf + w->len, &view, view.len, 'C') < 0)
			goto out;
		w->len += (size_t)view.len;
	}
	ret = memo ? memo_put(e, obj) : 0;
out:
	Py_XDECREF(holder);
	PyBuffer_Release(&view);
	return ret;
}

/* A PickleBuffer travels as what it wraps would unpickle to: bytes when
 * read-only, bytearray when writable. */
int enc_picklebuffer(Encoder *e, PyObject *obj, int memo)
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
	pyshm_prefault(w->buf + w->len, (size_t)view->len);
	if (PyBuffer_ToContiguous(w->buf + w->len, (Py_buffer *)view, view->len, 'C') < 0)
		return enc_bad(e, obj, NULL);
	w->len += (size_t)view->len;
	return memo ? memo_put(e, obj) : 0;
}

/*
 * A type of the other implementation of datetime or decimal (_pydatetime,
 * _pydecimal) than the one this interpreter's `datetime`/`decimal` use:
 * the K_* kind, or -1.
 */
int other_impl(PyTypeObject *tp)
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

int enc_kind(Encoder *e, PyObject *obj, int kind, int memo)
{
	(void)PyDateTimeAPI;	/* datetime.h's static: we use our own */
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
