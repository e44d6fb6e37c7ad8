// SPDX-License-Identifier: MIT
/*
 * The structured clone's part for ArrayBuffers (copied, or moved when in
 * the transfer list) and mark_as_uncloneable(). The encoder and decoder
 * call these from a few hook lines; the wire format is ARRAYBUFFER in
 * Documentation/wire-format.rst.
 */
#include "clone.h"
#include "clone_buffer.h"
#include "typed_array.h"

/* ---- the transfer list --------------------------------------------------- */

int clone_transfer_buffers(pymod_state *st, PyObject **list, PyObject **moved)
{
	PyObject *ports = NULL, *bufs = NULL, *item;
	Py_ssize_t i, j, n = PyList_GET_SIZE(*list);

	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(*list, i);
		if (st->uncloneable && PyDict_GET_SIZE(st->uncloneable)) {
			int marked = clone_is_uncloneable(st, item);

			if (marked < 0)
				goto err;
			if (marked) {
				PyErr_Format(st->DataCloneError, "cannot transfer '%.100s' object "
					     "(transfer[%zd]): marked with mark_as_uncloneable()",
					     Py_TYPE(item)->tp_name, i);
				goto err;
			}
		}
		if (!arraybuffer_check(st, item))
			continue;
		for (j = 0; j < i; j++) {
			if (PyList_GET_ITEM(*list, j) == item) {
				PyErr_Format(st->DataCloneError, "ArrayBuffer listed twice in "
					     "transfer (transfer[%zd] and transfer[%zd])", j, i);
				goto err;
			}
		}
		if (arraybuffer_detached(item)) {
			PyErr_Format(st->DataCloneError, "ArrayBuffer is detached (already "
				     "transferred): transfer[%zd]", i);
			goto err;
		}
		/* A view alive now: BufferError before anything is encoded
		 * (clone_transfer_pin() looks again before the send). */
		if (arraybuffer_pin(st, item) < 0)
			goto err;
		arraybuffer_unpin(item);
		if (!bufs && !(bufs = PyList_New(0)))
			goto err;
		if (PyList_Append(bufs, item) < 0)
			goto err;
	}
	if (!bufs)
		return 0;
	/* What is left is for the ports' rules. */
	ports = PyList_New(0);
	if (!ports)
		goto err;
	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(*list, i);
		if (!arraybuffer_check(st, item) && PyList_Append(ports, item) < 0)
			goto err;
	}
	Py_SETREF(*list, ports);
	*moved = bufs;
	return 0;
err:
	Py_XDECREF(ports);
	Py_XDECREF(bufs);
	return -1;
}

int clone_transfer_moves(PyObject *moved, PyObject *ab)
{
	Py_ssize_t i;

	for (i = 0; moved && i < PyList_GET_SIZE(moved); i++)
		if (PyList_GET_ITEM(moved, i) == ab)
			return 1;
	return 0;
}

int clone_transfer_pin(pymod_state *st, PyObject *moved)
{
	Py_ssize_t i, n = moved ? PyList_GET_SIZE(moved) : 0;

	for (i = 0; i < n; i++) {
		if (arraybuffer_pin(st, PyList_GET_ITEM(moved, i)) < 0) {
			while (i--)
				arraybuffer_unpin(PyList_GET_ITEM(moved, i));
			return -1;
		}
	}
	return 0;
}

void clone_transfer_finish(PyObject *moved, int sent)
{
	Py_ssize_t i, n = moved ? PyList_GET_SIZE(moved) : 0;

	for (i = 0; i < n; i++) {
		if (sent)
			arraybuffer_detach(PyList_GET_ITEM(moved, i));
		else
			arraybuffer_unpin(PyList_GET_ITEM(moved, i));
	}
}

/* ---- ARRAYBUFFER --------------------------------------------------------- */

int clone_put_arraybuffer(struct pyshm_clone_writer *w, PyObject *ab, uint8_t flags,
			  long region)
{
	Py_ssize_t size;
	const char *data = arraybuffer_data(ab, &size);

	if (region >= 0) {
		if (pyshm_clone_reserve(w, 12) < 0)
			return -1;
		pyshm_clone_raw_tag(w, PYSHM_CLONE_ARRAYBUFFER | flags);
		pyshm_clone_raw_u8(w, PYSHM_CLONE_AB_MOVED);
		pyshm_clone_raw_varint(w, (uint64_t)region);
		return 0;
	}
	if (pyshm_clone_reserve(w, 12 + (size_t)size) < 0)
		return -1;
	pyshm_clone_raw_tag(w, PYSHM_CLONE_ARRAYBUFFER | flags);
	pyshm_clone_raw_u8(w, PYSHM_CLONE_AB_COPY);
	pyshm_clone_raw_varint(w, (uint64_t)size);
	if (size)
		memcpy(w->buf + w->len, data, (size_t)size);
	w->len += (size_t)size;
	return 0;
}

PyObject *clone_get_arraybuffer(pymod_state *st, const struct pyshm_clone_item *it,
				struct pyshm_region *r)
{
	if (it->v.ab.form == PYSHM_CLONE_AB_MOVED)
		return arraybuffer_from_region(st, r);
	return arraybuffer_from_bytes(st, it->v.ab.data, it->v.ab.len);
}

/* ---- mark_as_uncloneable() ----------------------------------------------- */

/*
 * st->uncloneable maps id(obj) to a weak reference to obj, or to obj itself
 * when it takes none (a list, a dict, a tuple...: kept alive, so that its
 * id is never another object's). A weak reference's callback removes the
 * entry when obj goes.
 */

static PyObject *forget(PyObject *key, PyObject *wr)
{
	pymod_state *st = get_state_current();

	if (!st || !st->uncloneable) {
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	/* Only the entry of this weak reference: a new object of the same id
	 * may have been marked since. */
	if (PyDict_GetItemWithError(st->uncloneable, key) == wr &&
	    PyDict_DelItem(st->uncloneable, key) < 0)
		return NULL;
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *forget_fn(PyObject *key, PyObject *wr)
{
	return forget(key, wr);
}

static PyMethodDef forget_def = {
	"_forget_uncloneable", (PyCFunction)forget_fn, METH_O, NULL
};

int clone_is_uncloneable(pymod_state *st, PyObject *obj)
{
	PyObject *key, *v;
	int ret = 0;

	key = PyLong_FromVoidPtr(obj);
	if (!key)
		return -1;
	v = PyDict_GetItemWithError(st->uncloneable, key);
	Py_DECREF(key);
	if (!v)
		return PyErr_Occurred() ? -1 : 0;
	if (PyWeakref_CheckRef(v)) {
		PyObject *target = NULL;

#if PY_VERSION_HEX >= 0x030D0000
		if (PyWeakref_GetRef(v, &target) < 0)
			return -1;
		ret = target == obj;
		Py_XDECREF(target);
#else
		target = PyWeakref_GetObject(v);
		ret = target == obj;
#endif
		return ret;
	}
	return v == obj;
}

static PyObject *mod_mark_as_uncloneable(PyObject *mod, PyObject *obj)
{
	pymod_state *st = get_state(mod);
	PyObject *key, *cb = NULL, *v;
	int ret;

	/* Values without identity of their own: marking 5 would mark every 5. */
	if (obj == Py_None || PyBool_Check(obj) || PyLong_CheckExact(obj) ||
	    PyFloat_CheckExact(obj) || PyUnicode_CheckExact(obj))
		return PyErr_Format(PyExc_TypeError, "mark_as_uncloneable() needs an object, "
				    "not a value of type '%.100s'", Py_TYPE(obj)->tp_name);
	if (!st->uncloneable && !(st->uncloneable = PyDict_New()))
		return NULL;
	key = PyLong_FromVoidPtr(obj);
	if (!key)
		return NULL;
	if (PyType_SUPPORTS_WEAKREFS(Py_TYPE(obj))) {
		cb = PyCFunction_New(&forget_def, key);
		if (!cb) {
			Py_DECREF(key);
			return NULL;
		}
		v = PyWeakref_NewRef(obj, cb);
		Py_DECREF(cb);
	} else {
		v = Py_NewRef(obj);
	}
	if (!v) {
		Py_DECREF(key);
		return NULL;
	}
	/* The weak reference's callback gets it as its argument: bind the key,
	 * compare the reference. */
	ret = PyDict_SetItem(st->uncloneable, key, v);
	Py_DECREF(key);
	Py_DECREF(v);
	if (ret < 0)
		return NULL;
	Py_RETURN_NONE;
}

PyMethodDef clone_buffer_methods[] = {
	{ "mark_as_uncloneable", mod_mark_as_uncloneable, METH_O,
	  "mark_as_uncloneable($module, obj, /)\n--\n\n"
	  "Cloning obj, or anything that holds it, raises DataCloneError from\n"
	  "now on (post_message(), structured_clone(), Worker arguments), as\n"
	  "Node's markAsUncloneable(). For this interpreter; it cannot be undone." },
	{ NULL }
};
