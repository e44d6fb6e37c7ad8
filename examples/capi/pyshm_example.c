// SPDX-License-Identifier: MIT
/*
 * pyshm_example: two extension types cloned through pyshm_workers' C API
 * (include/pyshm/capi.h), as a model for interpreter-shared data
 * structures.
 *
 * - SharedBytes(data): an immutable byte string whose bytes live in a
 *   shared payload; every interpreter or process that receives one in a
 *   message sees the same bytes (buffer protocol, read-only), never a copy.
 * - SharedCounter(value=0): a 64-bit counter in a shared payload, with
 *   atomic add(); the clones in every interpreter and process count
 *   together.
 *
 * Each interpreter has its own heap types (multi-phase init) and registers
 * them with pyshm_workers in its exec function. destroyed() counts the
 * destroy() calls this process ran, for tests: each payload is destroyed
 * exactly once, by whoever lets go last.
 *
 * It links nothing from pyshm: only the capsule's function table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <string.h>

#include <pyshm/capi.h>

typedef struct {
	const struct pyshm_capi *capi;
	PyTypeObject *bytes_type;
	PyTypeObject *counter_type;
} example_state;

typedef struct {
	PyObject_HEAD
	const struct pyshm_capi *capi;	/* the table outlives every object */
	struct pyshm_payload *payload;
	Py_ssize_t exports;
} SharedObject;

/* Process-global: destroy() calls this process ran (C only). */
static atomic_long destroyed_count;

static example_state *get_example_state(PyObject *mod)
{
	return (example_state *)PyModule_GetState(mod);
}

static void payload_destroy(void *data, size_t size)
{
	/* The payload refers to nothing else; count the call for the tests. */
	atomic_fetch_add(&destroyed_count, 1);
}

/* ---- both types ---------------------------------------------------------- */

static struct pyshm_payload *shared_get_payload(PyObject *obj)
{
	return ((SharedObject *)obj)->payload;
}

static PyObject *shared_from_payload(PyTypeObject *type, struct pyshm_payload *p)
{
	example_state *st = PyType_GetModuleState(type);
	SharedObject *self;

	self = st ? (SharedObject *)type->tp_alloc(type, 0) : NULL;
	if (!self) {
		if (st)
			st->capi->payload_release(p);
		return NULL;
	}
	self->capi = st->capi;
	self->payload = p;
	return (PyObject *)self;
}

static const struct pyshm_clone_ops shared_ops = {
	.version = PYSHM_CAPI_VERSION,
	.get_payload = shared_get_payload,
	.from_payload = shared_from_payload,
	.destroy = payload_destroy,
};

static void shared_dealloc(SharedObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	self->capi->payload_release(self->payload);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyObject *shared_get_payload_id(SharedObject *self, void *closure)
{
	return PyLong_FromUnsignedLongLong(self->capi->payload_id(self->payload));
}

static PyObject *shared_get_holders(SharedObject *self, void *closure)
{
	return PyLong_FromUnsignedLong(self->capi->payload_refs(self->payload));
}

static PyObject *shared_get_address(SharedObject *self, void *closure)
{
	return PyLong_FromVoidPtr(self->capi->payload_data(self->payload));
}

static PyGetSetDef shared_getset[] = {
	{ "payload_id", (getter)shared_get_payload_id, NULL,
	  "Identity of the shared payload: equal in every interpreter and process.", NULL },
	{ "holders", (getter)shared_get_holders, NULL,
	  "Holders of the payload right now (objects and messages, all processes).", NULL },
	{ "address", (getter)shared_get_address, NULL,
	  "Where the payload is mapped in this process.", NULL },
	{ NULL }
};

/* A new object of @type over a fresh payload of @size bytes. */
static SharedObject *shared_new(PyTypeObject *type, size_t size)
{
	example_state *st = PyType_GetModuleState(type);
	struct pyshm_payload *p;

	if (!st || st->capi->payload_new(type, size, &p) < 0)
		return NULL;
	return (SharedObject *)shared_from_payload(type, p);
}

/* ---- SharedBytes ------------------------------------------------------------ */

static PyObject *bytes_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "data", NULL };
	SharedObject *self;
	Py_buffer view;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:SharedBytes", kwlist, &view))
		return NULL;
	self = shared_new(type, (size_t)view.len);
	if (self)
		memcpy(self->capi->payload_data(self->payload), view.buf, (size_t)view.len);
	PyBuffer_Release(&view);
	return (PyObject *)self;
}

static int bytes_getbuffer(SharedObject *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self,
				 self->capi->payload_data(self->payload),
				 (Py_ssize_t)self->capi->payload_size(self->payload), 1, flags);
}

static Py_ssize_t bytes_length(SharedObject *self)
{
	return (Py_ssize_t)self->capi->payload_size(self->payload);
}

static PyObject *bytes_bytes(SharedObject *self, PyObject *unused)
{
	return PyBytes_FromStringAndSize(self->capi->payload_data(self->payload),
					 (Py_ssize_t)self->capi->payload_size(self->payload));
}

static PyObject *bytes_repr(SharedObject *self)
{
	PyObject *b = bytes_bytes(self, NULL), *r;

	if (!b)
		return NULL;
	r = PyUnicode_FromFormat("SharedBytes(%R)", b);
	Py_DECREF(b);
	return r;
}

static PyObject *bytes_richcompare(SharedObject *self, PyObject *other, int op)
{
	PyObject *a, *r;

	if (op != Py_EQ && op != Py_NE)
		Py_RETURN_NOTIMPLEMENTED;
	a = bytes_bytes(self, NULL);
	if (!a)
		return NULL;
	if (Py_TYPE(other) == Py_TYPE(self)) {
		PyObject *b = bytes_bytes((SharedObject *)other, NULL);

		r = b ? PyObject_RichCompare(a, b, op) : NULL;
		Py_XDECREF(b);
	} else {
		r = PyObject_RichCompare(a, other, op);
	}
	Py_DECREF(a);
	return r;
}

static PyMethodDef bytes_methods[] = {
	{ "__bytes__", (PyCFunction)bytes_bytes, METH_NOARGS, NULL },
	{ NULL }
};

static PyType_Slot bytes_slots[] = {
	{ Py_tp_doc, "SharedBytes(data)\n--\n\nAn immutable byte string in shared memory: "
		     "clones share it." },
	{ Py_tp_new, bytes_new },
	{ Py_tp_dealloc, shared_dealloc },
	{ Py_tp_repr, bytes_repr },
	{ Py_tp_richcompare, bytes_richcompare },
	{ Py_tp_methods, bytes_methods },
	{ Py_tp_getset, shared_getset },
	{ Py_bf_getbuffer, bytes_getbuffer },
	{ Py_sq_length, bytes_length },
	{ 0, NULL }
};

static PyType_Spec bytes_spec = {
	.name = "pyshm_example.SharedBytes",
	.basicsize = sizeof(SharedObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = bytes_slots,
};

/* ---- SharedCounter ------------------------------------------------------------ */

static _Atomic int64_t *counter_word(SharedObject *self)
{
	return self->capi->payload_data(self->payload);
}

static PyObject *counter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "value", NULL };
	long long value = 0;
	SharedObject *self;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|L:SharedCounter", kwlist, &value))
		return NULL;
	self = shared_new(type, sizeof(int64_t));
	if (self)
		atomic_store(counter_word(self), value);
	return (PyObject *)self;
}

static PyObject *counter_add(SharedObject *self, PyObject *arg)
{
	long long n = PyLong_AsLongLong(arg);

	if (n == -1 && PyErr_Occurred())
		return NULL;
	return PyLong_FromLongLong(atomic_fetch_add(counter_word(self), n) + n);
}

static PyObject *counter_get_value(SharedObject *self, void *closure)
{
	return PyLong_FromLongLong(atomic_load(counter_word(self)));
}

static PyObject *counter_repr(SharedObject *self)
{
	return PyUnicode_FromFormat("SharedCounter(%lld)",
				    (long long)atomic_load(counter_word(self)));
}

static PyMethodDef counter_methods[] = {
	{ "add", (PyCFunction)counter_add, METH_O,
	  "add(n)\n--\n\nAtomically add n; return the new value." },
	{ NULL }
};

static PyGetSetDef counter_getset[] = {
	{ "value", (getter)counter_get_value, NULL, "The current value.", NULL },
	{ "payload_id", (getter)shared_get_payload_id, NULL, NULL, NULL },
	{ "holders", (getter)shared_get_holders, NULL, NULL, NULL },
	{ "address", (getter)shared_get_address, NULL, NULL, NULL },
	{ NULL }
};

static PyType_Slot counter_slots[] = {
	{ Py_tp_doc, "SharedCounter(value=0)\n--\n\nA 64-bit counter in shared memory: "
		     "clones count together." },
	{ Py_tp_new, counter_new },
	{ Py_tp_dealloc, shared_dealloc },
	{ Py_tp_repr, counter_repr },
	{ Py_tp_methods, counter_methods },
	{ Py_tp_getset, counter_getset },
	{ 0, NULL }
};

static PyType_Spec counter_spec = {
	.name = "pyshm_example.SharedCounter",
	.basicsize = sizeof(SharedObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = counter_slots,
};

/* ---- the module ----------------------------------------------------------------- */

static PyObject *mod_destroyed(PyObject *mod, PyObject *unused)
{
	return PyLong_FromLong(atomic_load(&destroyed_count));
}

static PyMethodDef mod_methods[] = {
	{ "destroyed", mod_destroyed, METH_NOARGS,
	  "destroyed()\n--\n\nPayload destructors this process ran." },
	{ NULL }
};

static int add_type(PyObject *mod, PyType_Spec *spec, PyTypeObject **out,
		    const struct pyshm_capi *capi)
{
	*out = (PyTypeObject *)PyType_FromModuleAndSpec(mod, spec, NULL);
	if (!*out || PyModule_AddType(mod, *out) < 0)
		return -1;
	return capi->register_type(*out, &shared_ops);
}

static int mod_exec(PyObject *mod)
{
	example_state *st = get_example_state(mod);

	st->capi = pyshm_capi_import();
	if (!st->capi)
		return -1;
	if (add_type(mod, &bytes_spec, &st->bytes_type, st->capi) < 0 ||
	    add_type(mod, &counter_spec, &st->counter_type, st->capi) < 0)
		return -1;
	return 0;
}

static int mod_traverse(PyObject *mod, visitproc visit, void *arg)
{
	example_state *st = get_example_state(mod);

	Py_VISIT(st->bytes_type);
	Py_VISIT(st->counter_type);
	return 0;
}

static int mod_clear(PyObject *mod)
{
	example_state *st = get_example_state(mod);

	Py_CLEAR(st->bytes_type);
	Py_CLEAR(st->counter_type);
	return 0;
}

static void mod_free(void *mod)
{
	mod_clear((PyObject *)mod);
}

static PyModuleDef_Slot mod_slots[] = {
	{ Py_mod_exec, mod_exec },
#if PY_VERSION_HEX >= 0x030C0000
	{ Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED },
#endif
	{ 0, NULL }
};

static PyModuleDef example_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "pyshm_example",
	.m_doc = "SharedBytes and SharedCounter: extension types whose clones share "
		 "one payload (pyshm_workers C API example).",
	.m_size = sizeof(example_state),
	.m_methods = mod_methods,
	.m_slots = mod_slots,
	.m_traverse = mod_traverse,
	.m_clear = mod_clear,
	.m_free = mod_free,
};

PyMODINIT_FUNC PyInit_pyshm_example(void)
{
	return PyModuleDef_Init(&example_def);
}
