// SPDX-License-Identifier: MIT
/*
 * The structured-clone decoder's objects of other types: classes and
 * functions by name (GLOBAL), the pickle protocol (REDUCE: pickle's rules
 * for state, list and dict items) and exceptions with their chain
 * (wire-format.rst).
 */
#include "clone_decode.h"

static int is_exception_type(PyObject *obj)
{
	return PyType_Check(obj) && PyType_IsSubtype((PyTypeObject *)obj,
						      (PyTypeObject *)PyExc_BaseException);
}

PyObject *dec_global(Decoder *d, const struct pyshm_clone_item *it)
{
	PyObject *modname, *qualname = NULL, *mod = NULL, *obj = NULL;

	modname = PyUnicode_DecodeUTF8((const char *)it->v.global.module,
				       (Py_ssize_t)it->v.global.module_len, NULL);
	if (modname)
		qualname = PyUnicode_DecodeUTF8((const char *)it->v.global.qualname,
						(Py_ssize_t)it->v.global.qualname_len, NULL);
	if (!qualname)
		goto out;
	if (d->restricted && PyUnicode_CompareWithASCIIString(modname, "builtins")) {
		dec_restricted(d, "importing modules");
		goto out;
	}
	mod = PyImport_Import(modname);
	obj = mod ? clone_resolve(mod, qualname) : NULL;
	if (obj && d->restricted && !is_exception_type(obj)) {
		Py_CLEAR(obj);
		dec_restricted(d, "globals other than exception types");
	}
out:
	Py_XDECREF(mod);
	Py_XDECREF(qualname);
	Py_XDECREF(modname);
	return dec_memo(d, it, obj);
}

/* pickle's BUILD: __setstate__, or (dict, slots) into __dict__ and
 * attributes. */
static int dec_build(Decoder *d, PyObject *obj, PyObject *state)
{
	PyObject *setstate, *slots = NULL, *dict, *k, *v, *res;
	struct clone_keys keys;
	Py_ssize_t pos = 0;
	int ret = 0;

	clone_keys_init(&keys);
	setstate = PyObject_GetAttr(obj, cc_get(d->st, CC_S_SETSTATE));
	if (setstate) {
		res = PyObject_CallOneArg(setstate, state);
		Py_DECREF(setstate);
		Py_XDECREF(res);
		return res ? 0 : -1;
	}
	if (!PyErr_ExceptionMatches(PyExc_AttributeError))
		return -1;
	PyErr_Clear();
	if (PyTuple_Check(state) && PyTuple_GET_SIZE(state) == 2) {
		slots = PyTuple_GET_ITEM(state, 1);
		state = PyTuple_GET_ITEM(state, 0);
	}
	if (state != Py_None) {
		if (!PyDict_Check(state)) {
			dec_malformed(d, "state is not a dict");
			return -1;
		}
		dict = PyObject_GetAttr(obj, cc_get(d->st, CC_S_DICT));
		if (!dict)
			return -1;
		/* The keys are hashed again: charged again. */
		while (!ret && PyDict_Next(state, &pos, &k, &v))
			ret = dec_key(d, &keys, k) < 0 || PyObject_SetItem(dict, k, v) < 0 ? -1 : 0;
		clone_keys_clear(&keys);
		Py_DECREF(dict);
		if (ret < 0)
			return -1;
	}
	if (slots && slots != Py_None) {
		if (!PyDict_Check(slots)) {
			dec_malformed(d, "slot state is not a dict");
			return -1;
		}
		pos = 0;
		while (PyDict_Next(slots, &pos, &k, &v))
			if (PyObject_SetAttr(obj, k, v) < 0)
				return -1;
	}
	return 0;
}

/* REDUCE's list items (extend(), else append() each) until END. */
static int dec_listitems(Decoder *d, PyObject *obj)
{
	PyObject *items = PyList_New(0), *item, *fn, *res;
	Py_ssize_t i;

	if (!items)
		return -1;
	while (!dec_at_end(d)) {
		item = dec_value(d);
		if (!item || PyList_Append(items, item) < 0) {
			Py_XDECREF(item);
			goto err;
		}
		Py_DECREF(item);
	}
	fn = PyObject_GetAttr(obj, cc_get(d->st, CC_S_EXTEND));
	if (fn) {
		res = PyObject_CallOneArg(fn, items);
		Py_DECREF(fn);
		if (!res)
			goto err;
		Py_DECREF(res);
	} else {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			goto err;
		PyErr_Clear();
		fn = PyObject_GetAttr(obj, cc_get(d->st, CC_S_APPEND));
		if (!fn)
			goto err;
		for (i = 0; i < PyList_GET_SIZE(items); i++) {
			res = PyObject_CallOneArg(fn, PyList_GET_ITEM(items, i));
			if (!res) {
				Py_DECREF(fn);
				goto err;
			}
			Py_DECREF(res);
		}
		Py_DECREF(fn);
	}
	Py_DECREF(items);
	return 0;
err:
	Py_DECREF(items);
	return -1;
}

static int dec_dictitems(Decoder *d, PyObject *obj)
{
	struct clone_keys keys;
	PyObject *k, *v;
	int ret = 0;

	clone_keys_init(&keys);
	while (!ret && !dec_at_end(d)) {
		k = dec_value(d);
		v = k && dec_key(d, &keys, k) == 0 ? dec_value(d) : NULL;
		ret = v ? PyObject_SetItem(obj, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
	}
	clone_keys_clear(&keys);
	return ret;
}

/* The callable and arguments of REDUCE and EXCEPTION; 1 and *@out for an
 * alias, 0, or -1. */
static int dec_call_parts(Decoder *d, struct pyshm_clone_item *it, int with_func,
			  PyObject **func, PyObject **args, PyObject **out)
{
	*func = *args = NULL;
	if (with_func && !(*func = dec_value(d)))
		return -1;
	*args = dec_child(d, PYSHM_CLONE_TUPLE, PYSHM_CLONE_REF);
	if (!*args)
		return -1;
	if (!PyTuple_CheckExact(*args)) {
		dec_malformed(d, "arguments are not a tuple");
		return -1;
	}
	return dec_finish(d, it, out);
}

PyObject *dec_reduce(Decoder *d, struct pyshm_clone_item *it)
{
	int newobj = it->flags & PYSHM_CLONE_RED_NEWOBJ;
	PyObject *func, *args, *obj = NULL, *state = NULL, *setter = NULL, *res;
	int ret;

	ret = dec_call_parts(d, it, !newobj, &func, &args, &obj);
	if (ret != 0)
		goto out;
	if (newobj) {
		/* cls.__new__(cls, *args[1:]), as copyreg.__newobj__ does. */
		if (PyTuple_GET_SIZE(args) < 1 || !PyType_Check(PyTuple_GET_ITEM(args, 0))) {
			dec_malformed(d, "NEWOBJ without a class");
			goto out;
		}
		func = PyObject_GetAttr(PyTuple_GET_ITEM(args, 0), cc_get(d->st, CC_S_NEW));
		if (!func)
			goto out;
		if (d->restricted && !is_exception_type(PyTuple_GET_ITEM(args, 0))) {
			dec_restricted(d, "creating objects other than exceptions");
			goto out;
		}
	} else if (d->restricted && !is_exception_type(func)) {
		dec_restricted(d, "calling anything but exception types");
		goto out;
	}
	obj = dec_memo(d, it, PyObject_Call(func, args, NULL));
	if (!obj)
		goto out;
	if ((it->flags & PYSHM_CLONE_RED_LISTITEMS && dec_listitems(d, obj) < 0) ||
	    (it->flags & PYSHM_CLONE_RED_DICTITEMS && dec_dictitems(d, obj) < 0))
		goto err;
	if (it->flags & PYSHM_CLONE_RED_STATE && !(state = dec_value(d)))
		goto err;
	if (it->flags & PYSHM_CLONE_RED_SETTER && !(setter = dec_value(d)))
		goto err;
	if (setter) {
		if (d->restricted) {
			dec_restricted(d, "state setters");
			goto err;
		}
		res = PyObject_CallFunctionObjArgs(setter, obj, state ? state : Py_None, NULL);
		if (!res)
			goto err;
		Py_DECREF(res);
	} else if (state && state != Py_None && dec_build(d, obj, state) < 0) {
		goto err;
	}
	goto out;
err:
	Py_CLEAR(obj);
out:
	Py_XDECREF(setter);
	Py_XDECREF(state);
	Py_XDECREF(args);
	Py_XDECREF(func);
	return obj;
}

/*
 * type(*args) as pickle would; when a subclass's __init__ wants other
 * arguments than the args it stored, the object is made without __init__
 * and its state (the __dict__ travels along) fills it in.
 */
static PyObject *dec_make_exception(PyObject *tp, PyObject *args)
{
	PyObject *obj = PyObject_Call(tp, args, NULL);

	if (obj || !PyErr_ExceptionMatches(PyExc_TypeError))
		return obj;
	PyErr_Clear();
	return ((PyTypeObject *)tp)->tp_new((PyTypeObject *)tp, args, NULL);
}

PyObject *dec_exception(Decoder *d, struct pyshm_clone_item *it)
{
	PyObject *func, *args, *obj = NULL, *v;
	int ret;

	ret = dec_call_parts(d, it, 1, &func, &args, &obj);
	if (ret != 0)
		goto out;
	if (!is_exception_type(func)) {
		dec_malformed(d, "exception of a non-exception type");
		goto out;
	}
	obj = dec_memo(d, it, dec_make_exception(func, args));
	if (!obj)
		goto out;
	if (!PyExceptionInstance_Check(obj)) {
		dec_malformed(d, "exception type made a non-exception");
		goto err;
	}
	if (it->flags & PYSHM_CLONE_EXC_STATE) {
		v = dec_value(d);
		ret = v ? dec_build(d, obj, v) : -1;
		Py_XDECREF(v);
		if (ret < 0)
			goto err;
	}
	if (it->flags & PYSHM_CLONE_EXC_CAUSE) {
		v = dec_value(d);
		if (!v)
			goto err;
		if (v != Py_None && !PyExceptionInstance_Check(v)) {
			Py_DECREF(v);
			dec_malformed(d, "__cause__ is not an exception");
			goto err;
		}
		if (v == Py_None)
			Py_CLEAR(v);
		PyException_SetCause(obj, v);	/* steals */
	}
	if (it->flags & PYSHM_CLONE_EXC_CONTEXT) {
		v = dec_value(d);
		if (!v)
			goto err;
		if (v != Py_None && !PyExceptionInstance_Check(v)) {
			Py_DECREF(v);
			dec_malformed(d, "__context__ is not an exception");
			goto err;
		}
		if (v == Py_None)
			Py_CLEAR(v);
		PyException_SetContext(obj, v);	/* steals */
	}
	((PyBaseExceptionObject *)obj)->suppress_context =
		!!(it->flags & PYSHM_CLONE_EXC_SUPPRESS);
	if (it->flags & PYSHM_CLONE_EXC_TBTEXT) {
		v = dec_child(d, PYSHM_CLONE_STR, PYSHM_CLONE_STR_SURROGATE);
		ret = v ? PyObject_SetAttr(obj, cc_get(d->st, CC_S_TBTEXT), v) : -1;
		Py_XDECREF(v);
		if (ret < 0)
			goto err;
	}
	goto out;
err:
	Py_CLEAR(obj);
out:
	Py_XDECREF(args);
	Py_XDECREF(func);
	return obj;
}

