// SPDX-License-Identifier: MIT
/*
 * The structured-clone decoder's stdlib types: datetime's date, time,
 * datetime, timedelta and timezone, Fraction, memoryview and array.array
 * (wire-format.rst).
 */
#include "clone_decode.h"

#include <datetime.h>

/* Fractions whose parts both pass this are not normalised (see
 * dec_make_fraction()). */
#define FRACTION_GCD_BYTES	1024

PyObject *dec_datetime(Decoder *d, struct pyshm_clone_item *it)
{
	pymod_state *st = d->st;
	PyDateTime_CAPI *capi;
	PyObject *tz = Py_NewRef(Py_None), *alias, *obj = NULL;
	int fold = !!(it->flags & PYSHM_CLONE_DT_FOLD);

	(void)PyDateTimeAPI;	/* datetime.h's static: we use our own */
	if (it->flags & PYSHM_CLONE_DT_TZ) {
		Py_SETREF(tz, dec_value(d));
		if (!tz)
			return NULL;
	}
	switch (dec_finish(d, it, &alias)) {
	case 1:
		Py_DECREF(tz);
		return alias;
	case -1:
		Py_DECREF(tz);
		return NULL;
	}
	if (clone_cache_group(st, CG_DATETIME, 1) < 0) {
		Py_DECREF(tz);
		return NULL;
	}
	capi = st->clone_dt_capi;
	switch (it->type) {
	case PYSHM_CLONE_DATE:
		obj = capi ? capi->Date_FromDate(it->v.dt.year, it->v.dt.month, it->v.dt.day,
						 capi->DateType) :
			PyObject_CallFunction(cc_get(st, CC_DATE), "III", it->v.dt.year,
					      it->v.dt.month, it->v.dt.day);
		break;
	case PYSHM_CLONE_DATETIME:
		if (capi) {
			obj = capi->DateTime_FromDateAndTimeAndFold(
				it->v.dt.year, it->v.dt.month, it->v.dt.day, it->v.dt.hour,
				it->v.dt.minute, it->v.dt.second, it->v.dt.us, tz, fold,
				capi->DateTimeType);
		} else {
			PyObject *args = Py_BuildValue("(IIIIIIIO)", it->v.dt.year, it->v.dt.month,
						       it->v.dt.day, it->v.dt.hour, it->v.dt.minute,
						       it->v.dt.second, it->v.dt.us, tz);
			PyObject *kw = args ? Py_BuildValue("{si}", "fold", fold) : NULL;

			obj = kw ? PyObject_Call(cc_get(st, CC_DATETIME), args, kw) : NULL;
			Py_XDECREF(args);
			Py_XDECREF(kw);
		}
		break;
	case PYSHM_CLONE_TIME:
		if (capi) {
			obj = capi->Time_FromTimeAndFold(it->v.dt.hour, it->v.dt.minute,
							 it->v.dt.second, it->v.dt.us, tz, fold,
							 capi->TimeType);
		} else {
			PyObject *args = Py_BuildValue("(IIIIO)", it->v.dt.hour, it->v.dt.minute,
						       it->v.dt.second, it->v.dt.us, tz);
			PyObject *kw = args ? Py_BuildValue("{si}", "fold", fold) : NULL;

			obj = kw ? PyObject_Call(cc_get(st, CC_TIME), args, kw) : NULL;
			Py_XDECREF(args);
			Py_XDECREF(kw);
		}
		break;
	}
	Py_DECREF(tz);
	return dec_memo(d, it, obj);
}

PyObject *dec_delta(Decoder *d, const struct pyshm_clone_item *it)
{
	PyDateTime_CAPI *capi = d->st->clone_dt_capi;

	if (capi)
		return capi->Delta_FromDelta((int)it->v.td.days, (int)it->v.td.seconds,
					     (int)it->v.td.us, 1, capi->DeltaType);
	return PyObject_CallFunction(cc_get(d->st, CC_TIMEDELTA), "iII", (int)it->v.td.days,
				     it->v.td.seconds, it->v.td.us);
}

PyObject *dec_timezone(Decoder *d, const struct pyshm_clone_item *it)
{
	PyDateTime_CAPI *capi = d->st->clone_dt_capi;
	PyObject *offset = dec_delta(d, it), *name = NULL, *tz = NULL;

	if (!offset)
		return NULL;
	if (it->flags & PYSHM_CLONE_TZ_NAME) {
		name = PyUnicode_DecodeUTF8((const char *)it->v.td.name,
					    (Py_ssize_t)it->v.td.name_len, "surrogatepass");
		if (!name)
			goto out;
	}
	if (capi)
		tz = capi->TimeZone_FromTimeZone(offset, name);
	else
		tz = PyObject_CallFunctionObjArgs(cc_get(d->st, CC_TIMEZONE), offset, name, NULL);
out:
	Py_XDECREF(name);
	Py_DECREF(offset);
	return tz;
}

/*
 * Fraction(num, den) normalises with a gcd, quadratic in the size of the
 * smaller part. Writers put the parts of a Fraction, in lowest terms with a
 * positive denominator; when both pass FRACTION_GCD_BYTES they are taken as
 * written (Fraction._from_coprime_ints(), in linear time), the denominator
 * checked positive. Restricted decoding caps numbers below that anyway.
 */
static PyObject *dec_make_fraction(Decoder *d, PyObject *num, PyObject *den)
{
	PyObject *cls = cc_get(d->st, CC_FRACTION), *zero, *make, *kw, *args, *obj;
	Py_ssize_t nn = clone_long_nbytes(num), nd = clone_long_nbytes(den);
	int positive;

	if (nn < 0 || nd < 0)
		return NULL;
	if (nn <= FRACTION_GCD_BYTES || nd <= FRACTION_GCD_BYTES)
		return PyObject_CallFunctionObjArgs(cls, num, den, NULL);
	zero = PyLong_FromLong(0);
	positive = zero ? PyObject_RichCompareBool(den, zero, Py_GT) : -1;
	Py_XDECREF(zero);
	if (positive <= 0)
		return positive < 0 ? NULL : dec_malformed(d, "fraction denominator not positive");
	make = PyObject_GetAttrString(cls, "_from_coprime_ints");	/* 3.12+ */
	if (make) {
		obj = PyObject_CallFunctionObjArgs(make, num, den, NULL);
		Py_DECREF(make);
		return obj;
	}
	if (!PyErr_ExceptionMatches(PyExc_AttributeError))
		return NULL;
	PyErr_Clear();
	/* 3.11: Fraction(num, den, _normalize=False). */
	args = PyTuple_Pack(2, num, den);
	kw = args ? Py_BuildValue("{sO}", "_normalize", Py_False) : NULL;
	obj = kw ? PyObject_Call(cls, args, kw) : NULL;
	Py_XDECREF(kw);
	Py_XDECREF(args);
	return obj;
}

PyObject *dec_fraction(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *num, *den = NULL, *obj = NULL, *alias;

	num = dec_child(d, PYSHM_CLONE_INT, PYSHM_CLONE_BIGINT);
	if (num)
		den = dec_child(d, PYSHM_CLONE_INT, PYSHM_CLONE_BIGINT);
	if (den && dec_finish(d, it, &alias) == 0 &&
	    clone_cache_group(d->st, CG_FRACTIONS, 1) > 0)
		obj = dec_make_fraction(d, num, den);
	Py_XDECREF(num);
	Py_XDECREF(den);
	return dec_memo(d, it, obj);
}

/*
 * A copy of the bytes, as bytes (read-only) or bytearray (writable), or a
 * large one's bytes where its message landed (dec_region_memory()), viewed
 * with the format and shape it had. Empty views with several dimensions
 * can't be cast back: they arrive one-dimensional.
 */
PyObject *dec_memoryview(Decoder *d, const struct pyshm_clone_item *it)
{
	const char *data = (const char *)it->v.mv.data;
	Py_ssize_t len = (Py_ssize_t)it->v.mv.len, i;
	uint64_t shape[PYSHM_CLONE_MAX_NDIM];
	PyObject *base, *mv, *fmt = NULL, *dims = NULL, *cast = NULL;
	int empty = 0;

	/* A large one over the region its message came in, if it did:
	 * no copy. */
	base = dec_region_memory(d, data, (size_t)len);
	if (base) {
		mv = PyMemoryView_FromObject(base);
		if (mv && it->flags & PYSHM_CLONE_MV_READONLY)
			Py_SETREF(mv, PyObject_CallMethod(mv, "toreadonly", NULL));
	} else {
		base = dec_new_bytes((const uint8_t *)data, (size_t)len,
				     !(it->flags & PYSHM_CLONE_MV_READONLY));
		mv = base ? PyMemoryView_FromObject(base) : NULL;
	}
	Py_XDECREF(base);
	if (!mv)
		return NULL;
	if (it->v.mv.ndim == 1 && it->v.mv.format_len == 1 && it->v.mv.format[0] == 'B')
		return mv;
	pyshm_clone_mv_shape(it, shape);
	fmt = PyUnicode_FromStringAndSize((const char *)it->v.mv.format,
					  (Py_ssize_t)it->v.mv.format_len);
	dims = fmt ? PyTuple_New((Py_ssize_t)it->v.mv.ndim) : NULL;
	for (i = 0; dims && i < (Py_ssize_t)it->v.mv.ndim; i++) {
		PyObject *v = PyLong_FromUnsignedLongLong(shape[i]);

		if (!v)
			Py_CLEAR(dims);
		else
			PyTuple_SET_ITEM(dims, i, v);
		empty |= shape[i] == 0;
	}
	if (dims)
		cast = empty ? PyObject_CallMethodOneArg(mv, cc_get(d->st, CC_S_CAST), fmt) :
			PyObject_CallMethodObjArgs(mv, cc_get(d->st, CC_S_CAST), fmt, dims, NULL);
	Py_XDECREF(fmt);
	Py_XDECREF(dims);
	Py_DECREF(mv);
	if (cast && PyMemoryView_GET_BUFFER(cast)->itemsize != (Py_ssize_t)it->v.mv.itemsize) {
		Py_DECREF(cast);
		return dec_malformed(d, "memoryview itemsize does not match its format");
	}
	return cast;
}

PyObject *dec_array(Decoder *d, const struct pyshm_clone_item *it)
{
	PyObject *a, *mv, *ret, *cause, *msg;
	uint8_t c = it->v.arr.typecode;
	/* F and D: 3.15's complex typecodes (clone_encode_std.c). */
	char tc[3] = { c == 'F' || c == 'D' ? 'Z' : (char)c, c == 'F' ? 'f' : c == 'D' ? 'd' : 0 };

	if (clone_cache_group(d->st, CG_ARRAY, 1) < 0)
		return NULL;
	a = PyObject_CallFunction(cc_get(d->st, CC_ARRAY), "s", tc);
	if (!a) {
		/* A typecode of a newer Python than this one ('e', 'Zf'...):
		 * ValueError, or TypeError for two characters. */
		if (!PyErr_ExceptionMatches(PyExc_ValueError) &&
		    !PyErr_ExceptionMatches(PyExc_TypeError))
			return NULL;
		cause = clone_fetch_exc();
		msg = PyUnicode_FromFormat("cannot receive an array.array of typecode '%s': "
					   "this Python's array module has no such type", tc);
		if (msg)
			clone_raise(d->st, msg, cause);
		else
			Py_DECREF(cause);
		Py_XDECREF(msg);
		return NULL;
	}
	mv = PyMemoryView_FromMemory((char *)it->v.arr.data, (Py_ssize_t)it->v.arr.len,
				     PyBUF_READ);
	ret = mv ? PyObject_CallMethodOneArg(a, cc_get(d->st, CC_S_FROMBYTES), mv) : NULL;
	Py_XDECREF(mv);
	if (!ret) {
		Py_DECREF(a);
		return NULL;
	}
	Py_DECREF(ret);
	return a;
}

