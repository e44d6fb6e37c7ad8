// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: pyshm_workers' clone decoder on hostile bytes, inside
 * an embedded CPython. The extension's sources are linked in (instrumented)
 * and its module created by hand as pyshm_workers._core. Each input goes
 * through _decode(data, restricted=True), so no arbitrary callable can run.
 * Only DataCloneError (and MemoryError/RecursionError) may come out; any
 * other exception, a crash or a sanitizer report is a finding. Whatever
 * decodes is encoded and decoded again, and the GC walks the heap now and
 * then, to catch half-built objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>

PyMODINIT_FUNC PyInit__core(void);

static PyObject *decode_fn, *encode_fn, *kwargs, *allowed, *gc_collect;
static unsigned long runs;

static void die(const char *what)
{
	fprintf(stderr, "clone_decode fuzzer: %s\n", what);
	if (PyErr_Occurred())
		PyErr_Print();
	abort();
}

/* pyshm_workers._core, created from its def as the import system would. */
static PyObject *make_module(void)
{
	PyObject *def = PyInit__core(), *machinery, *spec, *mod, *modules;

	machinery = PyImport_ImportModule("importlib.machinery");
	spec = machinery ? PyObject_CallMethod(machinery, "ModuleSpec", "sO",
					       "pyshm_workers._core", Py_None) : NULL;
	mod = spec ? PyModule_FromDefAndSpec((PyModuleDef *)def, spec) : NULL;
	if (!mod)
		die("cannot create pyshm_workers._core");
	/* In sys.modules while it runs, as importlib puts it: its exec looks
	 * itself up there (get_state_current()). */
	modules = PyImport_GetModuleDict();
	if (PyDict_SetItemString(modules, "pyshm_workers._core", mod) < 0)
		die("sys.modules");
	if (PyModule_ExecDef(mod, (PyModuleDef *)def) < 0)
		die("cannot create pyshm_workers._core");
	Py_XDECREF(spec);
	Py_XDECREF(machinery);
	return mod;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	PyObject *mod, *gc, *dce;

	PyConfig config;
	PyStatus status;

	/* Isolated from the environment; the stdlib of the Python we link. */
	PyConfig_InitIsolatedConfig(&config);
	status = PyConfig_SetBytesString(&config, &config.home, FUZZ_PYTHONHOME);
	if (!PyStatus_Exception(status))
		status = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(status))
		Py_ExitStatusException(status);
	mod = make_module();
	decode_fn = PyObject_GetAttrString(mod, "_decode");
	encode_fn = PyObject_GetAttrString(mod, "_encode");
	dce = PyObject_GetAttrString(mod, "DataCloneError");
	kwargs = Py_BuildValue("{sO}", "restricted", Py_True);
	allowed = dce ? PyTuple_Pack(3, dce, PyExc_MemoryError, PyExc_RecursionError) : NULL;
	gc = PyImport_ImportModule("gc");
	gc_collect = gc ? PyObject_GetAttrString(gc, "collect") : NULL;
	if (!decode_fn || !encode_fn || !kwargs || !allowed || !gc_collect)
		die("init");
	Py_DECREF(gc);
	Py_DECREF(dce);
	Py_DECREF(mod);
	return 0;
}

/* _decode(@bytes): the object, or NULL with an allowed exception cleared. */
static PyObject *decode(PyObject *bytes)
{
	PyObject *args = PyTuple_Pack(1, bytes), *obj;

	if (!args)
		die("args");
	obj = PyObject_Call(decode_fn, args, kwargs);
	Py_DECREF(args);
	if (obj)
		return obj;
	if (!PyErr_ExceptionMatches(allowed))
		die("decoding raised something else than DataCloneError");
	PyErr_Clear();
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PyObject *bytes, *obj, *again, *res;

	bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
	if (!bytes)
		die("bytes");
	obj = decode(bytes);
	Py_DECREF(bytes);
	if (obj) {
		/* What decoded must survive a round trip (or fail cleanly). */
		again = PyObject_CallOneArg(encode_fn, obj);
		if (again) {
			res = decode(again);
			Py_XDECREF(res);
			Py_DECREF(again);
		} else {
			PyErr_Clear();
		}
		/* repr() touches every object of the graph. */
		res = PyObject_Repr(obj);
		if (!res)
			PyErr_Clear();
		Py_XDECREF(res);
		Py_DECREF(obj);
	}
	if (++runs % 512 == 0) {
		res = PyObject_CallNoArgs(gc_collect);
		if (!res)
			die("gc");
		Py_DECREF(res);
	}
	return 0;
}
