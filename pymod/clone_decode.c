// SPDX-License-Identifier: MIT
/*
 * The structured-clone decoder: a message to a new object graph of the
 * receiving interpreter (Documentation/wire-format.rst).
 *
 * The input is hostile: it may come from another process. Every value's
 * head goes through libpyshm's bounds-checked reader (pyshm_clone_read()),
 * which refuses lengths and counts the remaining bytes can't hold, so a
 * lying length never becomes a large allocation; nesting is bounded; a
 * back-reference can only name a slot already filled. Malformed input
 * gives DataCloneError, never a crash.
 *
 * No half-built object is shown to user code: lists are filled with None
 * (or untracked by the GC while unreachable), tuples and frozensets are
 * built from their complete items before they get their memo slot, and a
 * reduce call only ever sees complete arguments.
 *
 * The work is linear in the message size: hashing keys is charged to a
 * budget (clone_budget.c), Fractions with huge parts skip the quadratic gcd,
 * and signal handlers run every SIGNAL_EVERY values, so a long decode can
 * be interrupted.
 *
 * Looking up classes and calling reduce callables is what pickle does: a
 * message is trusted as much as a pickle. The restricted mode of _decode()
 * allows builtin exception types only, and numbers of at most
 * RESTRICTED_NUMBER_BYTES, for fuzzing and untrusted input.
 */
#include "clone_decode.h"

#include <pyshm/capi.h>

#include "clone_buffer.h"
#include "typed_array.h"

PyObject *dec_malformed(Decoder *d, const char *what)
{
	return clone_malformed(d->st, what, (size_t)(d->r.p - d->base));
}

PyObject *dec_restricted(Decoder *d, const char *what)
{
	PyErr_Format(d->st->DataCloneError, "restricted decoding refuses %s", what);
	return NULL;
}

/* Run the signal handlers (a KeyboardInterrupt ends the decode). 0, or
 * -1 with their exception. */
int dec_signals(Decoder *d)
{
	d->tick = SIGNAL_EVERY;
	if (PyErr_CheckSignals() < 0) {
		d->interrupted = 1;
		return -1;
	}
	return 0;
}

/* Fill @it's memo slot with @obj (if it has one); returns @obj, or NULL
 * (and releases @obj) for a slot that isn't free. */
PyObject *dec_memo(Decoder *d, const struct pyshm_clone_item *it, PyObject *obj)
{
	if (!obj || !(it->tag & PYSHM_CLONE_F_MEMO))
		return obj;
	if (d->memo[it->slot]) {
		Py_DECREF(obj);
		return dec_malformed(d, "memo slot reused");
	}
	d->memo[it->slot] = Py_NewRef(obj);
	return obj;
}

/*
 * The memo point of a value whose slot comes after its children: 1 and a
 * new reference in *@alias if the value is an alias of an earlier one, 0
 * otherwise (store it with dec_memo()), -1 with an exception.
 */
int dec_finish(Decoder *d, struct pyshm_clone_item *it, PyObject **alias)
{
	int ret = pyshm_clone_finish(&d->r, &d->wk, it);

	if (ret < 0) {
		dec_malformed(d, "invalid memo slot");
		return -1;
	}
	if (ret == 1) {
		if (!d->memo[it->slot]) {
			dec_malformed(d, "alias of an unfilled slot");
			return -1;
		}
		*alias = Py_NewRef(d->memo[it->slot]);
	}
	return ret;
}

/* A child that must be of type @a or @b (an int of FRACTION, the buffer of
 * a typed array, the type of a payload, arguments). */
PyObject *dec_child(Decoder *d, unsigned int a, unsigned int b)
{
	unsigned int type;

	if (d->r.p == d->r.end)
		return dec_malformed(d, "truncated");
	type = *d->r.p & PYSHM_CLONE_TYPE_MASK;
	if (type != a && type != b)
		return dec_malformed(d, "unexpected type of child");
	if ((type == PYSHM_CLONE_INT || type == PYSHM_CLONE_BIGINT) &&
	    *d->r.p & PYSHM_CLONE_F_MEMO)
		return dec_malformed(d, "memo slot on a fraction's integer");
	return dec_value(d);
}

/*
 * A container's item: the commonest scalars (int, float, None, bools) are
 * read inline, anything else (and anything malformed) by dec_value().
 */
static inline PyObject *dec_item(Decoder *d)
{
	const uint8_t *p = d->r.p;
	struct pyshm_clone_reader r;
	uint64_t v;
	double f;

	/* dec_value() reports the end and the depth. */
	if (__builtin_expect(p == d->r.end || d->wk.depth >= MAX_DEPTH, 0))
		return dec_value(d);
	switch (*p) {
	case PYSHM_CLONE_INT:
		r.p = p + 1;
		r.end = d->r.end;
		if (pyshm_clone_get_varint(&r, &v) < 0)
			break;
		d->r.p = r.p;
		return PyLong_FromLongLong(pyshm_clone_unzigzag(v));
	case PYSHM_CLONE_FLOAT:
		r.p = p + 1;
		r.end = d->r.end;
		if (pyshm_clone_get_f64(&r, &f) < 0)
			break;
		d->r.p = r.p;
		return PyFloat_FromDouble(f);
	case PYSHM_CLONE_NONE:
		d->r.p++;
		return Py_NewRef(Py_None);
	case PYSHM_CLONE_TRUE:
		d->r.p++;
		return Py_NewRef(Py_True);
	case PYSHM_CLONE_FALSE:
		d->r.p++;
		return Py_NewRef(Py_False);
	}
	return dec_value(d);
}

/* Is the next byte END? Then consume it. */
int dec_at_end(Decoder *d)
{
	if (d->r.p < d->r.end && *d->r.p == PYSHM_CLONE_END) {
		d->r.p++;
		return 1;
	}
	return 0;
}

/* ---- containers ------------------------------------------------------------ */

static PyObject *dec_list(Decoder *d, struct pyshm_clone_item *it)
{
	Py_ssize_t n = (Py_ssize_t)it->v.count, i;
	int shown = it->tag & PYSHM_CLONE_F_MEMO;
	PyObject *list, *item, *old;

	if (dec_tick(d, it->v.count) < 0)
		return NULL;
	list = PyList_New(n);
	if (!list)
		return NULL;
	if (shown) {
		/* Reachable through the memo before it is complete: None, not
		 * NULL, in the slots not yet filled. */
		for (i = 0; i < n; i++)
			PyList_SET_ITEM(list, i, Py_NewRef(Py_None));
		list = dec_memo(d, it, list);
		if (!list)
			return NULL;
	} else {
		/* Unreachable but for the GC: hide it until it is filled. */
		PyObject_GC_UnTrack(list);
	}
	for (i = 0; i < n; i++) {
		if (DEC_TICK_ITEM(d, i))
			goto err;
		item = dec_item(d);
		if (!item)
			goto err;
		if (!shown) {
			PyList_SET_ITEM(list, i, item);
			continue;
		}
		if (i >= PyList_GET_SIZE(list)) {	/* user code shrank it */
			Py_DECREF(item);
			continue;
		}
		old = PyList_GET_ITEM(list, i);
		PyList_SET_ITEM(list, i, item);
		Py_DECREF(old);
	}
	if (!shown)
		PyObject_GC_Track(list);
	return list;
err:
	Py_DECREF(list);
	return NULL;
}

/* A new tuple of the next @n values, untracked until complete. */
static PyObject *dec_items_tuple(Decoder *d, Py_ssize_t n)
{
	PyObject *t, *item;
	Py_ssize_t i;

	if (n == 0)
		return PyTuple_New(0);
	if (dec_tick(d, (uint64_t)n) < 0)
		return NULL;
	t = PyTuple_New(n);
	if (!t)
		return NULL;
	PyObject_GC_UnTrack(t);
	for (i = 0; i < n; i++) {
		item = DEC_TICK_ITEM(d, i) ? NULL : dec_item(d);
		if (!item) {
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SET_ITEM(t, i, item);
	}
	PyObject_GC_Track(t);
	return t;
}

static PyObject *dec_tuple(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *t = dec_items_tuple(d, (Py_ssize_t)it->v.count), *alias;

	if (!t)
		return NULL;
	switch (dec_finish(d, it, &alias)) {
	case 1:
		Py_DECREF(t);
		return alias;
	case 0:
		return dec_memo(d, it, t);
	}
	Py_DECREF(t);
	return NULL;
}

static PyObject *dec_frozenset(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *t = dec_items_tuple(d, (Py_ssize_t)it->v.count), *alias, *fs = NULL;
	struct clone_keys keys;
	Py_ssize_t i;

	clone_keys_init(&keys);
	if (!t)
		return NULL;
	switch (dec_finish(d, it, &alias)) {
	case 1:
		Py_DECREF(t);
		return alias;
	case 0:
		for (i = 0; i < PyTuple_GET_SIZE(t); i++)
			if (dec_key(d, &keys, PyTuple_GET_ITEM(t, i)) < 0)
				break;
		clone_keys_clear(&keys);
		if (i == PyTuple_GET_SIZE(t))
			fs = dec_memo(d, it, PyFrozenSet_New(t));
		break;
	}
	Py_DECREF(t);
	return fs;
}

static PyObject *dec_dict(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *dict = dec_memo(d, it, PyDict_New()), *k, *v;
	struct clone_keys keys;
	uint64_t i;
	int ret;

	clone_keys_init(&keys);
	for (i = 0; dict && i < it->v.count; i++) {
		k = dec_value(d);
		v = k && dec_key(d, &keys, k) == 0 ? dec_item(d) : NULL;
		ret = v ? PyDict_SetItem(dict, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
		if (ret < 0)
			Py_CLEAR(dict);
	}
	clone_keys_clear(&keys);
	return dict;
}

static PyObject *dec_set(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *set = dec_memo(d, it, PySet_New(NULL)), *item;
	struct clone_keys keys;
	uint64_t i;
	int ret;

	clone_keys_init(&keys);
	for (i = 0; set && i < it->v.count; i++) {
		item = dec_value(d);
		ret = item ? dec_key(d, &keys, item) : -1;
		if (ret == 0)
			ret = PySet_Add(set, item);
		Py_XDECREF(item);
		if (ret < 0)
			Py_CLEAR(set);
	}
	clone_keys_clear(&keys);
	return set;
}

/* ---- scalars ------------------------------------------------------------------- */

PyObject *dec_new_bytes(const uint8_t *p, size_t n, int mutable)
{
	PyObject *obj;

	if (n < PYSHM_PREFAULT_MIN)
		return mutable ? PyByteArray_FromStringAndSize((const char *)p, (Py_ssize_t)n) :
			PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
	obj = mutable ? PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n) :
		PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
	if (obj)
		dec_copy_fresh(mutable ? PyByteArray_AS_STRING(obj) : PyBytes_AS_STRING(obj), p, n);
	return obj;
}

static PyObject *dec_bigint(const struct pyshm_clone_item *it)
{
#if PY_VERSION_HEX >= 0x030D0000
	return PyLong_FromNativeBytes(it->v.b.data, it->v.b.len, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
	return _PyLong_FromByteArray(it->v.b.data, it->v.b.len, 1, 1);
#endif
}

/* ---- shared memory, ports, payloads ------------------------------------------------ */

static struct pyshm_region *dec_region(Decoder *d, uint64_t idx, unsigned int role)
{
	if (idx >= d->nregions || d->roles[idx] != role || !d->regions[idx]) {
		dec_malformed(d, "region of the wrong role");
		return NULL;
	}
	return d->regions[idx];
}

static PyObject *dec_typed_array(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *buf, *obj = NULL, *alias;

	/* A SAB, an ARRAYBUFFER, or a REF to one. */
	if (d->r.p < d->r.end && (*d->r.p & PYSHM_CLONE_TYPE_MASK) == PYSHM_CLONE_ARRAYBUFFER)
		buf = dec_value(d);
	else
		buf = dec_child(d, PYSHM_CLONE_SAB, PYSHM_CLONE_REF);
	if (!buf)
		return NULL;
	if (!sab_region(d->st, buf) && !arraybuffer_check(d->st, buf))
		dec_malformed(d, "typed array over something else than a buffer");
	else if (dec_finish(d, it, &alias) == 0)
		obj = typed_array_new(d->st, it->v.ta.type, buf,
				      (Py_ssize_t)it->v.ta.byte_offset, (Py_ssize_t)it->v.ta.length);
	Py_DECREF(buf);
	return dec_memo(d, it, obj);
}

/* Copied, or moved: then the message's reference on the region goes to the
 * buffer, and the region can't be taken twice. */
static PyObject *dec_arraybuffer(Decoder *d, struct pyshm_clone_item *it)
{
	struct pyshm_region *r = NULL;

	if (it->v.ab.form == PYSHM_CLONE_AB_MOVED) {
		r = dec_region(d, it->v.ab.index, PYSHM_CLONE_ROLE_ARRAYBUFFER);
		if (!r)
			return NULL;
		d->regions[it->v.ab.index] = NULL;
	}
	return dec_memo(d, it, clone_get_arraybuffer(d->st, it, r));
}

static PyObject *dec_shared(Decoder *d, struct pyshm_clone_item *it)
{
	struct pyshm_region *r = dec_region(d, it->v.index, PYSHM_CLONE_ROLE_PAYLOAD);
	const struct pyshm_clone_ops *ops;
	PyObject *tp, *obj = NULL, *alias;

	if (!r)
		return NULL;
	tp = dec_child(d, PYSHM_CLONE_GLOBAL, PYSHM_CLONE_REF);
	if (!tp)
		return NULL;
	ops = PyType_Check(tp) ? capi_lookup(d->st, (PyTypeObject *)tp) : NULL;
	if (!ops)
		PyErr_Format(d->st->DataCloneError, "%R is not a registered shared type here", tp);
	else if (dec_finish(d, it, &alias) == 0)
		obj = capi_from_region(d->st, (PyTypeObject *)tp, ops, r);
	Py_DECREF(tp);
	return dec_memo(d, it, obj);
}

/* ---- dispatch ------------------------------------------------------------------------ */

PyObject *dec_value(Decoder *d)
{
	struct pyshm_clone_item it;
	PyObject *obj = NULL;
	struct pyshm_region *r;

	if (d->wk.depth >= MAX_DEPTH)
		return dec_malformed(d, "nested too deeply");
	if (dec_tick(d, 1) < 0)
		return NULL;
	if (pyshm_clone_read(&d->r, &d->wk, &it) < 0)
		return dec_malformed(d, "invalid value");
	d->wk.depth++;
	switch (it.type) {
	case PYSHM_CLONE_NONE:
		obj = Py_NewRef(Py_None);
		break;
	case PYSHM_CLONE_FALSE:
		obj = Py_NewRef(Py_False);
		break;
	case PYSHM_CLONE_TRUE:
		obj = Py_NewRef(Py_True);
		break;
	case PYSHM_CLONE_INT:
		obj = dec_memo(d, &it, PyLong_FromLongLong(it.v.i));
		break;
	case PYSHM_CLONE_BIGINT:
		if (d->restricted && it.v.b.len > RESTRICTED_NUMBER_BYTES)
			return dec_restricted(d, "integers of more than "
					      XSTR(RESTRICTED_NUMBER_BYTES) " bytes");
		obj = dec_memo(d, &it, dec_bigint(&it));
		break;
	case PYSHM_CLONE_FLOAT:
		obj = dec_memo(d, &it, PyFloat_FromDouble(it.v.f));
		break;
	case PYSHM_CLONE_COMPLEX:
		obj = dec_memo(d, &it, PyComplex_FromDoubles(it.v.c[0], it.v.c[1]));
		break;
	case PYSHM_CLONE_STR:
	case PYSHM_CLONE_STR_SURROGATE:
		obj = dec_memo(d, &it, PyUnicode_DecodeUTF8((const char *)it.v.b.data,
							    (Py_ssize_t)it.v.b.len,
							    it.type == PYSHM_CLONE_STR ?
							    NULL : "surrogatepass"));
		break;
	case PYSHM_CLONE_BYTES:
	case PYSHM_CLONE_BYTEARRAY:
		obj = dec_memo(d, &it, dec_new_bytes(it.v.b.data, it.v.b.len,
						     it.type == PYSHM_CLONE_BYTEARRAY));
		break;
	case PYSHM_CLONE_LIST:
		obj = dec_list(d, &it);
		break;
	case PYSHM_CLONE_TUPLE:
		obj = dec_tuple(d, &it);
		break;
	case PYSHM_CLONE_DICT:
		obj = dec_dict(d, &it);
		break;
	case PYSHM_CLONE_SET:
		obj = dec_set(d, &it);
		break;
	case PYSHM_CLONE_FROZENSET:
		obj = dec_frozenset(d, &it);
		break;
	case PYSHM_CLONE_REF:
		if (!d->memo[it.v.index])
			return dec_malformed(d, "reference to an unfilled slot");
		obj = Py_NewRef(d->memo[it.v.index]);
		break;
	case PYSHM_CLONE_DATE:
	case PYSHM_CLONE_TIME:
	case PYSHM_CLONE_DATETIME:
		obj = dec_datetime(d, &it);
		break;
	case PYSHM_CLONE_TIMEDELTA:
		if (clone_cache_group(d->st, CG_DATETIME, 1) > 0)
			obj = dec_memo(d, &it, dec_delta(d, &it));
		break;
	case PYSHM_CLONE_TIMEZONE:
		if (clone_cache_group(d->st, CG_DATETIME, 1) > 0)
			obj = dec_memo(d, &it, dec_timezone(d, &it));
		break;
	case PYSHM_CLONE_DECIMAL:
		if (d->restricted && it.v.b.len > RESTRICTED_NUMBER_BYTES)
			return dec_restricted(d, "Decimals of more than "
					      XSTR(RESTRICTED_NUMBER_BYTES) " characters");
		if (clone_cache_group(d->st, CG_DECIMAL, 1) > 0) {
			PyObject *s = PyUnicode_FromStringAndSize((const char *)it.v.b.data,
								  (Py_ssize_t)it.v.b.len);

			if (s)
				obj = dec_memo(d, &it, PyObject_CallOneArg(cc_get(d->st, CC_DECIMAL),
									   s));
			Py_XDECREF(s);
		}
		break;
	case PYSHM_CLONE_FRACTION:
		obj = dec_fraction(d, &it);
		break;
	case PYSHM_CLONE_MEMORYVIEW:
		obj = dec_memo(d, &it, dec_memoryview(d, &it));
		break;
	case PYSHM_CLONE_ARRAY:
		obj = dec_memo(d, &it, dec_array(d, &it));
		break;
	case PYSHM_CLONE_EXCEPTION:
		obj = dec_exception(d, &it);
		break;
	case PYSHM_CLONE_GLOBAL:
		obj = dec_global(d, &it);
		break;
	case PYSHM_CLONE_REDUCE:
		obj = dec_reduce(d, &it);
		break;
	case PYSHM_CLONE_SAB:
		r = dec_region(d, it.v.index, PYSHM_CLONE_ROLE_SAB);
		if (r)
			obj = dec_memo(d, &it, sab_from_region(d->st, pyshm_region_get(r)));
		break;
	case PYSHM_CLONE_TYPED_ARRAY:
		obj = dec_typed_array(d, &it);
		break;
	case PYSHM_CLONE_ARRAYBUFFER:
		obj = dec_arraybuffer(d, &it);
		break;
	case PYSHM_CLONE_PORT:
		if (it.v.index >= d->nports || !d->ports[it.v.index])
			return dec_malformed(d, "MessagePort index");
		obj = Py_NewRef(d->ports[it.v.index]);
		break;
	case PYSHM_CLONE_SHARED:
		obj = dec_shared(d, &it);
		break;
	case PYSHM_CLONE_NDARRAY:
		obj = dec_ndarray(d, &it);
		break;
	case PYSHM_CLONE_NDARRAY_OBJECT:
		obj = dec_ndarray_objects(d, &it);
		break;
	case PYSHM_CLONE_NDARRAY_VIEW:
		obj = dec_ndarray_view(d, &it);
		break;
	default:	/* END outside REDUCE items */
		return dec_malformed(d, "unexpected END");
	}
	d->wk.depth--;
	return obj;
}

/* ---- the message --------------------------------------------------------------------- */

/*
 * Take everything the message holds before reading the body, so it is all
 * released whatever happens to the body: the regions (pyshm_xfer_recv())
 * and the ports (port_import()). 0, or -1 + exception (what was taken is
 * released by dec_release()).
 */
static int dec_claim(Decoder *d, const void *buf, const struct pyshm_clone_info *info)
{
	struct pyshm_region_ref ref;
	size_t pos = 0, off, n, at;
	PyObject *cause = NULL;
	unsigned int role;
	int err = 0, ret;
	uint32_t i;

	if (info->nregions) {
		d->regions = PyMem_Calloc(info->nregions, sizeof(*d->regions));
		d->roles = PyMem_Calloc(info->nregions, 1);
		if (!d->regions || !d->roles) {
			PyErr_NoMemory();
			return -1;
		}
		d->nregions = info->nregions;
	}
	for (i = 0; i < info->nregions; i++) {
		pyshm_clone_get_region(buf, info, i, &role, &ref);
		d->roles[i] = (uint8_t)role;
		ret = d->env->xfer ? pyshm_xfer_recv(d->env->xfer, &ref, &d->regions[i]) : -EBADMSG;
		if (ret < 0) {
			d->regions[i] = NULL;
			err = err ? err : ret;
		} else if (role == PYSHM_CLONE_ROLE_PAYLOAD &&
			   capi_region_check(d->st, d->regions[i]) < 0) {
			/* Not a payload: no hold of ours to give back. */
			PyErr_Clear();
			pyshm_region_put(d->regions[i]);
			d->regions[i] = NULL;
			err = err ? err : -EBADMSG;
		}
	}
	if (info->nattach) {
		d->ports = PyMem_Calloc(info->nattach, sizeof(*d->ports));
		if (!d->ports) {
			PyErr_NoMemory();
			return -1;
		}
		d->nports = info->nattach;
	}
	for (i = 0; pyshm_clone_next_attachment(buf, info, &pos, &off, &n) == 1; i++) {
		at = off;
		if (!err && d->env->port_import) {
			d->ports[i] = d->env->port_import(d->env, buf, off + n, &at);
			if (d->ports[i] && at == off + n)
				continue;
			if (!d->ports[i])
				cause = clone_fetch_exc();
		} else if (d->env->port_drop) {
			/* Too late for this message: release the port. */
			d->env->port_drop(d->env, buf, off + n, &at);
		}
		err = err ? err : -EBADMSG;
	}
	if (!err)
		return 0;
	if (cause) {
		PyObject *msg = PyUnicode_FromString("cannot receive a MessagePort of the message");

		if (msg)
			clone_raise(d->st, msg, cause);
		else
			Py_DECREF(cause);
		Py_XDECREF(msg);
		return -1;
	}
	PyErr_Format(d->st->DataCloneError, "cannot receive what the message carries: %s",
		     err == -EBADMSG ? "stale, forged or unknown reference" : strerror(-err));
	return -1;
}

static void dec_release(Decoder *d, uint32_t nmemo)
{
	uint32_t i;

	for (i = 0; d->memo && i < nmemo; i++)
		Py_XDECREF(d->memo[i]);
	PyMem_Free(d->memo);
	for (i = 0; i < d->nregions; i++) {
		if (!d->regions[i])
			continue;
		/* The objects built hold their own; the message's hold goes. */
		if (d->roles[i] == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_unhold(d->regions[i]);
		pyshm_region_put(d->regions[i]);
	}
	PyMem_Free(d->regions);
	PyMem_Free(d->roles);
	for (i = 0; i < d->nports; i++)
		Py_XDECREF(d->ports[i]);
	PyMem_Free(d->ports);
}

/* Errors of building objects (a ValueError of a bad date...) are about
 * the message: DataCloneError, with the original as its cause. */
static void dec_wrap_error(pymod_state *st)
{
	PyObject *exc, *msg;

	if (PyErr_ExceptionMatches(st->DataCloneError) ||
	    !PyErr_ExceptionMatches(PyExc_Exception) ||
	    PyErr_ExceptionMatches(PyExc_MemoryError) ||
	    PyErr_ExceptionMatches(PyExc_RecursionError))
		return;
	exc = clone_fetch_exc();
	msg = PyUnicode_FromFormat("cannot decode clone message: %s: %S", Py_TYPE(exc)->tp_name,
				   exc);
	if (!msg) {
		Py_DECREF(exc);
		return;
	}
	clone_raise(st, msg, exc);
	Py_DECREF(msg);
}

PyObject *clone_decode_ex(pymod_state *st, const void *buf, size_t len,
			  struct clone_env *env, int restricted)
{
	Decoder d = { .st = st, .env = env, .base = buf, .restricted = restricted,
		      .tick = SIGNAL_EVERY };
	struct pyshm_clone_info info;
	PyObject *obj = NULL;
	int ret;

	ret = pyshm_clone_parse(buf, len, &info);
	if (ret < 0) {
		/* Without a header the tables can't be found: nothing to release. */
		if (ret == -EPROTO)
			PyErr_Format(st->DataCloneError, "clone message of wire version %u, "
				     "this is version %u", len > 4 ? ((const uint8_t *)buf)[4] : 0,
				     PYSHM_CLONE_VERSION);
		else
			clone_malformed(st, "bad header or tables", 0);
		return NULL;
	}
	pyshm_clone_reader_init(&d.r, &d.wk, buf, &info);
	clone_budget_init(&d.budget, len);
	d.wk.flags = PYSHM_CLONE_WALK_NO_UTF8;	/* PyUnicode_DecodeUTF8() checks */
	if (dec_claim(&d, buf, &info) < 0)
		goto out;
	d.memo = PyMem_Calloc(info.nobjects ? info.nobjects : 1, sizeof(*d.memo));
	if (!d.memo) {
		PyErr_NoMemory();
		goto out;
	}
	obj = dec_value(&d);
	if (obj && (d.r.p != d.r.end || d.wk.nobjects != info.nobjects)) {
		Py_CLEAR(obj);
		dec_malformed(&d, d.r.p != d.r.end ? "bytes after the value" :
				  "memo count differs from the header");
	}
out:
	dec_release(&d, info.nobjects);
	/* A signal handler's exception is not about the message. */
	if (!obj && !d.interrupted)
		dec_wrap_error(st);
	return obj;
}

PyObject *clone_decode(pymod_state *st, const void *buf, size_t len, struct clone_env *env)
{
	return clone_decode_ex(st, buf, len, env, 0);
}
