// SPDX-License-Identifier: MIT
/*
 * The structured-clone encoder's objects of other types: classes and
 * functions by module and name (GLOBAL), everything else through the
 * pickle protocol (REDUCE, its parts inside the graph), and exceptions
 * with their chain and traceback text (wire-format.rst).
 */
#include "clone_encode.h"

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
int enc_global(Encoder *e, PyObject *obj, PyObject *name, int memo)
{
	PyObject *modname = NULL, *mod = NULL, *found = NULL;
	const char *m, *q;
	Py_ssize_t mlen, qlen;
	int ret = -1;

	/* Imports and attribute lookups may run user code. */
	if (enc_user_code(e) < 0)
		return -1;
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

int enc_named(Encoder *e, PyObject *obj, int memo)
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
	memo = memo_wanted(e, state);
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
	PyObject *msg, *why = NULL, *sep;
	Py_ssize_t at = -1;

	if (!e->err || e->err_obj != (PyObject *)Py_TYPE(obj))
		return 0;
	/* What the class's own error said after "cannot clone 'type' object
	 * (Name): " is kept: what to install, for a class of a main script
	 * workers cannot load. */
	if (PyUnicode_Check(e->err) && !PyErr_Occurred()) {
		sep = PyUnicode_FromString(": ");
		if (sep)
			at = PyUnicode_Find(e->err, sep, 0, PY_SSIZE_T_MAX, 1);
		Py_XDECREF(sep);
		if (at >= 0)
			why = PyUnicode_Substring(e->err, at + 2, PyUnicode_GET_LENGTH(e->err));
		PyErr_Clear();
	}
	if (why && PyUnicode_GET_LENGTH(why) > 0)
		msg = PyUnicode_FromFormat("cannot clone '%s' object: its class is not "
					   "importable (%U)", Py_TYPE(obj)->tp_name, why);
	else
		msg = PyUnicode_FromFormat("cannot clone '%s' object: its class is not importable",
					   Py_TYPE(obj)->tp_name);
	Py_XDECREF(why);
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
int enc_reduce_rv(Encoder *e, PyObject *obj, PyObject *rv, int memo)
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

int enc_reduce(Encoder *e, PyObject *obj, int memo)
{
	PyObject *reducer, *rv;
	int ret;

	if (enc_user_code(e) < 0)
		return -1;
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
int enc_exception(Encoder *e, PyObject *obj, int memo)
{
	PyObject *proto, *rv, *state = NULL, *cause, *context, *tb, *text = NULL;
	PyObject *tbtext_key = cc_get(e->st, CC_S_TBTEXT);
	size_t tag_pos = e->w.len;
	uint8_t flags = 0;
	long slot;
	int ret = -1;

	/* __reduce_ex__, __str__ (for the traceback text) are user code. */
	if (enc_user_code(e) < 0)
		return -1;
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

/* The types of None, Ellipsis and NotImplemented have no importable name:
 * type(None) rebuilds them, as pickle does. */
int enc_singleton_type(Encoder *e, PyObject *obj, int memo)
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
