// SPDX-License-Identifier: MIT
/*
 * pyshm_workers._core: module definition, per-interpreter state, the
 * process-global C state, error mapping, and the small module functions.
 * Multi-phase init with heap types only, so every interpreter (including
 * own-GIL subinterpreters) gets its own copy.
 */
#include "clone_buffer.h"
#include "hub.h"
#include "sync.h"
#include "typed_array.h"
#include "worker.h"

struct pymod_globals pymod_globals = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

PyObject *pymod_raise_from_errno(pymod_state *st, int err, const char *what)
{
	int e = err < 0 ? -err : err;

	switch (e) {
	case ETIMEDOUT:
		PyErr_Format(PyExc_TimeoutError, "%s: timed out", what);
		break;
	case ENOMEM:
		PyErr_NoMemory();
		break;
	case EINVAL:
		PyErr_Format(PyExc_ValueError, "%s: invalid argument", what);
		break;
	default:
		errno = e;
		PyErr_SetFromErrnoWithFilename(PyExc_OSError, what);
		break;
	}
	return NULL;
}

pymod_state *get_state_by_type(PyTypeObject *tp)
{
	PyObject *mod = PyType_GetModuleByDef(tp, &pymod_def);

	return mod ? get_state(mod) : NULL;
}

pymod_state *get_state_current(void)
{
	PyObject *name = PyUnicode_FromString("pyshm_workers._core"), *mod;
	pymod_state *st;

	if (!name)
		return NULL;
	/* Found in sys.modules (also while its exec runs, before the package
	 * around it is there), else imported. */
	mod = PyImport_GetModule(name);
	if (!mod && !PyErr_Occurred())
		mod = PyImport_Import(name);
	Py_DECREF(name);
	if (!mod)
		return NULL;
	st = get_state(mod);
	/* sys.modules keeps the module, and so the state, alive. */
	Py_DECREF(mod);
	return st;
}

static PyObject *mod_backend(PyObject *mod, PyObject *unused)
{
	int kind = pyshm_backend();

	if (kind < 0)
		return pymod_raise_from_errno(get_state(mod), kind, "PYSHM_BACKEND");
	return PyUnicode_FromString(pyshm_backend_name(kind));
}

static PyObject *mod_wake_path(PyObject *mod, PyObject *unused)
{
	int kind = pyshm_wake_default();

	if (kind < 0)
		return pymod_raise_from_errno(get_state(mod), kind, "PYSHM_WAKE");
	return PyUnicode_FromString(pyshm_wake_name(kind));
}

static PyObject *mod_stats(PyObject *mod, PyObject *unused)
{
	struct pyshm_stats st;

	if (pyshm_stats(&st, sizeof(st)) < 0)
		return pymod_raise_from_errno(get_state(mod), EINVAL, "stats");
	return Py_BuildValue("{sKsKsKsKsK}", "regions", (unsigned long long)st.regions,
			     "bytes", (unsigned long long)st.bytes,
			     "mapped", (unsigned long long)st.mapped,
			     "created", (unsigned long long)st.created,
			     "freed", (unsigned long long)st.freed);
}

static PyMethodDef mod_methods[] = {
	{ "backend", mod_backend, METH_NOARGS,
	  "backend($module, /)\n--\n\n\"kmod\" when regions come from /dev/pyshm, else \"memfd\"." },
	{ "wake_path", mod_wake_path, METH_NOARGS,
	  "wake_path($module, /)\n--\n\n\"uring\" or \"futex\": how sleeping receivers are woken." },
	{ "stats", mod_stats, METH_NOARGS,
	  "stats($module, /)\n--\n\nLive regions and bytes of this process (for leak checks)." },
	{ NULL }
};

static PyObject *new_exception(PyObject *mod, const char *name, PyObject *base,
			       const char *doc, PyObject *dict)
{
	PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, base, dict);

	if (!exc || PyModule_AddObjectRef(mod, strrchr(name, '.') + 1, exc) < 0) {
		Py_XDECREF(exc);
		return NULL;
	}
	return exc;
}

static int mod_exec(PyObject *mod)
{
	pymod_state *st = get_state(mod);
	PyObject *attrs;

#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030D0100
	/*
	 * CPython 3.13.0 corrupts memory at exit when a subinterpreter imports
	 * _datetime before the main interpreter does (fixed in 3.13.1); the
	 * clone code needs datetime anyway, so import it here first.
	 */
	if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
		PyObject *dt = PyImport_ImportModule("datetime");

		if (!dt)
			return -1;
		Py_DECREF(dt);
	}
#endif
	st->DataCloneError = new_exception(mod, "pyshm_workers.DataCloneError",
					   PyExc_TypeError,
					   "An object could not be cloned: its type and where it sat "
					   "in the object graph are in the message.", NULL);
	if (!st->DataCloneError)
		return -1;
	/* What the worker raised, None where it is not known (a worker that
	 * died without a word). */
	attrs = Py_BuildValue("{sOsOsOsO}", "remote_type", Py_None, "remote_message", Py_None,
			      "remote_traceback", Py_None, "exception", Py_None);
	if (!attrs)
		return -1;
	st->WorkerError = new_exception(mod, "pyshm_workers.WorkerError", PyExc_Exception,
					"A worker failed. remote_type, remote_message and "
					"remote_traceback describe the exception it raised "
					"(None when it died without raising one).", attrs);
	Py_DECREF(attrs);
	if (!st->WorkerError)
		return -1;
	st->str_ok = PyUnicode_InternFromString("ok");
	st->str_not_equal = PyUnicode_InternFromString("not-equal");
	st->str_timed_out = PyUnicode_InternFromString("timed-out");
	if (!st->str_ok || !st->str_not_equal || !st->str_timed_out)
		return -1;
	if (clone_init(mod, st) < 0)
		return -1;
	if (sab_init_types(mod, st) < 0 || arraybuffer_init(mod, st) < 0 ||
	    typed_arrays_init(mod, st) < 0 || wait_async_init(mod, st) < 0 ||
	    PyModule_AddFunctions(mod, clone_buffer_methods) < 0 ||
	    port_init_types(mod, st) < 0 || worker_init_types(mod, st) < 0 ||
	    PyModule_AddFunctions(mod, port_module_methods) < 0 ||
	    PyModule_AddFunctions(mod, worker_module_methods) < 0 ||
	    PyModule_AddFunctions(mod, worker_interp_methods) < 0 ||
	    PyModule_AddFunctions(mod, worker_process_methods) < 0 ||
	    PyModule_AddFunctions(mod, worker_template_methods) < 0 ||
	    PyModule_AddFunctions(mod, worker_usage_methods) < 0 ||
	    PyModule_AddFunctions(mod, introspect_methods) < 0 ||
	    broadcast_init(mod) < 0 || locks_init(mod) < 0 || sync_init(mod) < 0)
		return -1;

	pthread_mutex_lock(&pymod_globals.lock);
	pymod_globals.module_count++;
	pthread_mutex_unlock(&pymod_globals.lock);
	return 0;
}

static int mod_traverse(PyObject *mod, visitproc visit, void *arg)
{
	pymod_state *st = get_state(mod);

	Py_VISIT(st->sab_type);
	Py_VISIT(st->arraybuffer_type);
	for (int k = 0; k < PYMOD_TA_NKINDS; k++)
		Py_VISIT(st->ta_types[k]);
	Py_VISIT(st->wait_async_start);
	Py_VISIT(st->uncloneable);
	Py_VISIT(st->port_type);
	Py_VISIT(st->handle_type);
	Py_VISIT(st->port_class);
	Py_VISIT(st->DataCloneError);
	Py_VISIT(st->WorkerError);
	Py_VISIT(st->clone_cache);
	Py_VISIT(st->capi_types);
	Py_VISIT(st->region_memory_type);
	return 0;
}

static int mod_clear(PyObject *mod)
{
	pymod_state *st = get_state(mod);

	Py_CLEAR(st->sab_type);
	Py_CLEAR(st->arraybuffer_type);
	for (int k = 0; k < PYMOD_TA_NKINDS; k++)
		Py_CLEAR(st->ta_types[k]);
	Py_CLEAR(st->wait_async_start);
	Py_CLEAR(st->uncloneable);
	Py_CLEAR(st->port_type);
	Py_CLEAR(st->handle_type);
	Py_CLEAR(st->port_class);
	Py_CLEAR(st->DataCloneError);
	Py_CLEAR(st->WorkerError);
	Py_CLEAR(st->str_ok);
	Py_CLEAR(st->str_not_equal);
	Py_CLEAR(st->str_timed_out);
	Py_CLEAR(st->clone_cache);
	Py_CLEAR(st->capi_types);
	Py_CLEAR(st->region_memory_type);
	worker_put(st->self_worker);
	st->self_worker = NULL;
	return 0;
}

static void mod_free(void *mod)
{
	mod_clear((PyObject *)mod);
	/* The interpreter ends: the Web Locks it held or asked for go. */
	locks_interp_gone(PyInterpreterState_GetID(PyInterpreterState_Get()));
	pthread_mutex_lock(&pymod_globals.lock);
	pymod_globals.module_count--;
	pthread_mutex_unlock(&pymod_globals.lock);
}

static PyModuleDef_Slot mod_slots[] = {
	{ Py_mod_exec, mod_exec },
#if PYMOD_HAVE_SUBINTERPRETERS
	{ Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED },
#endif
	{ 0, NULL }
};

PyModuleDef pymod_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "pyshm_workers._core",
	.m_doc = "C core of pyshm_workers: SharedArrayBuffer, typed arrays with "
		 "Atomics, structured clone, message ports and workers.",
	.m_size = sizeof(pymod_state),
	.m_methods = mod_methods,
	.m_slots = mod_slots,
	.m_traverse = mod_traverse,
	.m_clear = mod_clear,
	.m_free = mod_free,
};

PyMODINIT_FUNC PyInit__core(void)
{
	return PyModuleDef_Init(&pymod_def);
}
