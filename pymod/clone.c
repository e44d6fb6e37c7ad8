// SPDX-License-Identifier: MIT
/*
 * The structured clone's frame: the per-interpreter cache of the types it
 * knows, the local environment of structured_clone(), messages, discarding
 * unread messages, and the module functions structured_clone(), _encode()
 * and _decode(). The encoder and decoder live in clone_encode*.c and
 * clone_decode*.c (clone_encode.h and clone_decode.h say which file has
 * what); the format is Documentation/wire-format.rst.
 */
#include "clone.h"
#include "port.h"

/* ---- the cache ---------------------------------------------------------- */

static const char *const cc_names[] = {
	[CC_S_REDUCE_EX] = "__reduce_ex__",
	[CC_S_SETSTATE] = "__setstate__",
	[CC_S_NEW] = "__new__",
	[CC_S_QUALNAME] = "__qualname__",
	[CC_S_MODULE] = "__module__",
	[CC_S_DICT] = "__dict__",
	[CC_S_TBTEXT] = "__traceback_text__",
	[CC_S_EXTEND] = "extend",
	[CC_S_APPEND] = "append",
	[CC_S_FROMBYTES] = "frombytes",
	[CC_S_CAST] = "cast",
	[CC_S_TYPECODE] = "typecode",
	[CC_S_CHAIN] = "chain",
};

/* Replace slot @i of the cache, stealing @v. */
static void cc_set(pymod_state *st, int i, PyObject *v)
{
	PyObject *old = PyList_GET_ITEM(st->clone_cache, i);

	PyList_SET_ITEM(st->clone_cache, i, v);
	Py_DECREF(old);
}

int clone_cache_init(pymod_state *st)
{
	PyObject *copyreg, *v;
	int i;

	st->clone_cache = PyList_New(CC_N);
	if (!st->clone_cache)
		return -1;
	for (i = 0; i < CC_N; i++)
		PyList_SET_ITEM(st->clone_cache, i, Py_NewRef(Py_None));
	for (i = CC_S_REDUCE_EX; i < CC_N; i++) {
		v = PyUnicode_InternFromString(cc_names[i]);
		if (!v)
			return -1;
		cc_set(st, i, v);
	}
	/* copyreg is imported at startup by every interpreter. */
	copyreg = PyImport_ImportModule("copyreg");
	if (!copyreg)
		return -1;
	v = PyObject_GetAttrString(copyreg, "dispatch_table");
	if (v)
		cc_set(st, CC_DISPATCH, v);
	v = v ? PyObject_GetAttrString(copyreg, "__newobj__") : NULL;
	if (v)
		cc_set(st, CC_NEWOBJ, v);
	Py_DECREF(copyreg);
	if (!v)
		return -1;
	if (!PyDict_Check(cc_get(st, CC_DISPATCH))) {
		PyErr_SetString(PyExc_TypeError, "copyreg.dispatch_table is not a dict");
		return -1;
	}
	return 0;
}

struct cc_group {
	const char *module;
	int first, count;
	const char *attrs[6];
};

static const struct cc_group cc_groups[CG_N] = {
	[CG_DATETIME] = { "datetime", CC_DATE, 5,
			  { "date", "time", "datetime", "timedelta", "timezone" } },
	[CG_DECIMAL] = { "decimal", CC_DECIMAL, 1, { "Decimal" } },
	[CG_FRACTIONS] = { "fractions", CC_FRACTION, 1, { "Fraction" } },
	[CG_ARRAY] = { "array", CC_ARRAY, 1, { "array" } },
	[CG_TRACEBACK] = { "traceback", CC_FORMAT_EXC, 1, { "format_exception" } },
	[CG_NUMPY] = { "numpy", CC_NDARRAY, 3, { "ndarray", "dtype", "empty" } },
};

/*
 * The C datetime hands out its constructors in a capsule; _pydatetime (an
 * own-GIL subinterpreter on 3.12) has none, and its types are heap types.
 */
static int cc_datetime_capi(pymod_state *st, PyObject *mod)
{
	PyTypeObject *dt = (PyTypeObject *)cc_get(st, CC_DATETIME);
	PyObject *cap;

	st->clone_dt_capi = NULL;
	if (!PyType_Check(dt) || PyType_HasFeature(dt, Py_TPFLAGS_HEAPTYPE))
		return 0;
	cap = PyObject_GetAttrString(mod, "datetime_CAPI");
	if (!cap) {
		PyErr_Clear();
		return 0;
	}
	st->clone_dt_capi = PyCapsule_GetPointer(cap, "datetime.datetime_CAPI");
	if (!st->clone_dt_capi) {
		PyErr_Clear();
		Py_DECREF(cap);
		return 0;
	}
	/* The cache keeps the capsule, and so the module's API, alive. */
	cc_set(st, CC_DT_CAPSULE, cap);
	return 0;
}

int clone_cache_group(pymod_state *st, int group, int import)
{
	const struct cc_group *g = &cc_groups[group];
	PyObject *mod, *v, *vals[6];
	int i;

	if (cc_get(st, g->first) != Py_None)
		return 1;
	if (import) {
		mod = PyImport_ImportModule(g->module);
		if (!mod)
			return -1;
	} else {
		/* Only what is imported already: no import side effects. */
		PyObject *name = PyUnicode_FromString(g->module);

		if (!name)
			return -1;
		mod = PyImport_GetModule(name);
		Py_DECREF(name);
		if (!mod)
			return PyErr_Occurred() ? -1 : 0;
	}
	for (i = 0; i < g->count; i++) {
		v = PyObject_GetAttrString(mod, g->attrs[i]);
		if (!v)
			break;
		vals[i] = v;
	}
	if (i < g->count) {
		while (i--)
			Py_DECREF(vals[i]);
		Py_DECREF(mod);
		/* A module still being imported has no such type yet. */
		if (import)
			return -1;
		PyErr_Clear();
		return 0;
	}
	for (i = 0; i < g->count; i++)
		cc_set(st, g->first + i, vals[i]);
	if (group == CG_DATETIME)
		cc_datetime_capi(st, mod);
	Py_DECREF(mod);
	return 1;
}

void clone_raise(pymod_state *st, PyObject *msg, PyObject *cause)
{
	PyObject *exc = PyObject_CallOneArg(st->DataCloneError, msg);

	if (!exc) {
		Py_XDECREF(cause);
		return;
	}
	if (cause) {
		/* Also the context, as `raise ... from cause` would have it. */
		PyException_SetContext(exc, Py_NewRef(cause));
		PyException_SetCause(exc, cause);
	}
	PyErr_SetObject(st->DataCloneError, exc);
	Py_DECREF(exc);
}

PyObject *clone_malformed(pymod_state *st, const char *what, size_t off)
{
	PyErr_Format(st->DataCloneError, "malformed clone message at byte %zu: %s", off, what);
	return NULL;
}

Py_ssize_t clone_long_nbytes(PyObject *v)
{
#if PY_VERSION_HEX >= 0x030D0000
	return PyLong_AsNativeBytes(v, NULL, 0, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
	size_t bits = _PyLong_NumBits(v);

	if (bits == (size_t)-1 && PyErr_Occurred())
		return -1;
	return (Py_ssize_t)(bits / 8 + 1);
#endif
}

/* Resolve "a.b.c" in @mod; a new reference or NULL. */
PyObject *clone_resolve(PyObject *mod, PyObject *qualname)
{
	PyObject *parts, *sep, *obj;
	Py_ssize_t i;

	sep = PyUnicode_FromString(".");
	parts = sep ? PyUnicode_Split(qualname, sep, -1) : NULL;
	Py_XDECREF(sep);
	if (!parts)
		return NULL;
	obj = Py_NewRef(mod);
	for (i = 0; obj && i < PyList_GET_SIZE(parts); i++) {
		PyObject *part = PyList_GET_ITEM(parts, i), *next;

		if (PyUnicode_GET_LENGTH(part) == 0 ||
		    PyUnicode_READ_CHAR(part, 0) == '<') {	/* <locals>, <lambda> */
			PyErr_Format(PyExc_AttributeError, "%R is not importable", qualname);
			Py_CLEAR(obj);
			break;
		}
		next = PyObject_GetAttr(obj, part);
		Py_SETREF(obj, next);
	}
	Py_DECREF(parts);
	return obj;
}

/* ---- messages and environments ----------------------------------------- */

void clone_msg_free(struct clone_msg *m)
{
	PyMem_RawFree(m->buf);
	PyMem_RawFree(m->ext);
	Py_CLEAR(m->keep);
	m->buf = NULL;
	m->ext = NULL;
	m->len = m->cap = m->extlen = 0;
	m->next = 0;
}

int clone_msg_iov(const struct clone_msg *m, struct iovec *iov)
{
	struct pyshm_clone_writer w = {
		.buf = m->buf, .len = m->len, .ext = m->ext, .next = m->next,
	};

	return pyshm_clone_writer_iov(&w, iov);
}

int clone_msg_append(struct clone_msg *m, const void *p, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	uint8_t *buf;

	if (n > SIZE_MAX / 2 - m->len) {
		PyErr_NoMemory();
		return -1;
	}
	if (m->len + n > m->cap) {
		while (cap < m->len + n)
			cap *= 2;
		buf = PyMem_RawRealloc(m->buf, cap);
		if (!buf) {
			PyErr_NoMemory();
			return -1;
		}
		m->buf = buf;
		m->cap = cap;
	}
	if (n)
		memcpy(m->buf + m->len, p, n);
	m->len += n;
	return 0;
}

/*
 * structured_clone()'s environment: regions travel through the local
 * transfer (the in-process in-flight table), MessagePorts through
 * port_transfer.c's table of ports in flight (by cookie, never by pointer: _decode() reads
 * hostile bytes through this environment too). Process-global C state,
 * created once and kept until exit; no PyObject.
 */
static struct clone_env local_env;
static pthread_once_t local_once = PTHREAD_ONCE_INIT;

static void local_env_create(void)
{
	struct pyshm_xfer *x = port_xfer_local();

	if (x)
		port_env_init(&local_env, NULL, x);
}

struct clone_env *clone_local_env(void)
{
	pthread_once(&local_once, local_env_create);
	return local_env.xfer ? &local_env : NULL;
}

/*
 * Release what an unread message holds, without building objects: the
 * header locates the tables, so the body is not even read.
 */
void clone_discard(const void *buf, size_t len, struct clone_env *env)
{
	struct pyshm_clone_info info;
	struct pyshm_region_ref ref;
	struct pyshm_region *r;
	size_t pos = 0, off, n, at;
	unsigned int role;
	uint32_t i;

	if (pyshm_clone_parse(buf, len, &info) < 0)
		return;
	for (i = 0; env->xfer && i < info.nregions; i++) {
		pyshm_clone_get_region(buf, &info, i, &role, &ref);
		if (role == PYSHM_CLONE_ROLE_PAYLOAD) {
			/* The message's hold on the payload goes too. */
			if (pyshm_xfer_recv(env->xfer, &ref, &r) == 0) {
				capi_region_unhold(r);
				pyshm_region_put(r);
			}
		} else {
			pyshm_xfer_drop(env->xfer, &ref);
		}
	}
	while (env->port_drop && pyshm_clone_next_attachment(buf, &info, &pos, &off, &n) == 1) {
		at = off;
		env->port_drop(env, buf, off + n, &at);
	}
}

void clone_discard_msg(const struct clone_msg *m, struct clone_env *env)
{
	uint64_t body;
	uint8_t *tmp;
	int i;

	if (!m->next) {
		clone_discard(m->buf, m->len, env);
		return;
	}
	/* The tables follow the body in buf, without the blobs by reference:
	 * a copy whose header says so (discarding does not read the body). */
	tmp = PyMem_RawMalloc(m->len);
	if (!tmp || m->len < PYSHM_CLONE_HDR_SIZE) {
		PyMem_RawFree(tmp);
		return;
	}
	memcpy(tmp, m->buf, m->len);
	for (body = 0, i = 7; i >= 0; i--)
		body = body << 8 | tmp[8 + i];
	body -= m->extlen;
	for (i = 0; i < 8; i++)
		tmp[8 + i] = (uint8_t)(body >> (8 * i));
	clone_discard(tmp, m->len, env);
	PyMem_RawFree(tmp);
}

int clone_xfer_send(pymod_state *st, struct clone_env *env, struct pyshm_region *r,
		    struct pyshm_region_ref *ref)
{
	int ret;

	for (;;) {
		ret = pyshm_xfer_send(env->xfer, r, ref);
		if (ret != -EAGAIN || !env->wait_room)
			break;
		if (env->wait_room(env) < 0)
			return -1;
	}
	if (ret == 0)
		return 0;
	if (ret == -EPIPE)
		env->peer_gone = true;
	pymod_raise_from_errno(st, ret, "structured clone");
	return -1;
}

/* ---- module functions --------------------------------------------------- */

static PyObject *mod_structured_clone(PyObject *mod, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "obj", "transfer", NULL };
	pymod_state *st = get_state(mod);
	PyObject *obj, *transfer = NULL, *res;
	struct clone_msg msg = { 0 };
	struct clone_env *env;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:structured_clone", kwlist, &obj,
					 &transfer))
		return NULL;
	env = clone_local_env();
	if (!env)
		return PyErr_NoMemory();
	if (clone_encode(st, obj, transfer, env, &msg) < 0)
		return NULL;
	res = clone_decode(st, msg.buf, msg.len, env);
	clone_msg_free(&msg);
	return res;
}

/* _encode(): no transfer, so nothing that holds a region can be encoded. */
static PyObject *mod_encode(PyObject *mod, PyObject *obj)
{
	struct clone_env env = { 0 };
	struct clone_msg msg = { 0 };
	PyObject *res;

	if (clone_encode(get_state(mod), obj, NULL, &env, &msg) < 0)
		return NULL;
	res = PyBytes_FromStringAndSize((const char *)msg.buf, (Py_ssize_t)msg.len);
	clone_msg_free(&msg);
	return res;
}

/* In clone_decode.c: decode with GLOBAL and REDUCE restricted to builtin
 * exception types (for fuzzing: no arbitrary callables). */
PyObject *clone_decode_ex(pymod_state *st, const void *buf, size_t len,
			  struct clone_env *env, int restricted);

static PyObject *mod_decode(PyObject *mod, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "data", "restricted", NULL };
	struct clone_env *env = clone_local_env();
	int restricted = 0;
	PyObject *res;
	Py_buffer view;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|$p:_decode", kwlist, &view,
					 &restricted))
		return NULL;
	if (!env) {
		PyBuffer_Release(&view);
		return PyErr_NoMemory();
	}
	res = clone_decode_ex(get_state(mod), view.buf, (size_t)view.len, env, restricted);
	PyBuffer_Release(&view);
	return res;
}

static PyObject *mod_verify(PyObject *mod, PyObject *arg)
{
	size_t off;
	Py_buffer view;
	int ret;

	if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	ret = pyshm_clone_verify(view.buf, (size_t)view.len, &off);
	PyBuffer_Release(&view);
	if (ret == 0)
		Py_RETURN_NONE;
	return clone_malformed(get_state(mod), ret == -ELOOP ? "nested too deeply" :
			       ret == -EPROTO ? "unsupported version" : "invalid", off);
}

static PyMethodDef clone_methods[] = {
	{ "structured_clone", (PyCFunction)(void (*)(void))mod_structured_clone,
	  METH_VARARGS | METH_KEYWORDS,
	  "structured_clone($module, /, obj, transfer=())\n--\n\n"
	  "A structured clone of obj, as post_message() would deliver it:\n"
	  "a new, equal object graph (shared references and cycles kept).\n"
	  "SharedArrayBuffers are shared, not copied; MessagePorts listed in\n"
	  "transfer move. Exceptions arrive with their traceback as the str\n"
	  "attribute __traceback_text__. DataCloneError names what can't be\n"
	  "cloned and where it sat in the graph." },
	{ "_encode", mod_encode, METH_O,
	  "_encode($module, obj, /)\n--\n\nThe clone message of obj as bytes (no SharedArrayBuffers)." },
	{ "_decode", (PyCFunction)(void (*)(void))mod_decode, METH_VARARGS | METH_KEYWORDS,
	  "_decode($module, /, data, *, restricted=False)\n--\n\n"
	  "Decode a clone message. restricted=True only lets builtin exception\n"
	  "types be looked up or called (for untrusted input and fuzzing)." },
	{ "_verify", mod_verify, METH_O,
	  "_verify($module, data, /)\n--\n\nCheck a clone message with libpyshm's walker\n"
	  "(pyshm_clone_verify()); DataCloneError if malformed." },
	{ NULL }
};

int clone_init(PyObject *mod, pymod_state *st)
{
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
	/*
	 * CPython 3.12 corrupts memory when the main interpreter imports
	 * _decimal or _datetime after an isolated subinterpreter failed to
	 * (they don't support one): import them here first. The clone needs
	 * them anyway.
	 */
	if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
		PyObject *m = PyImport_ImportModule("decimal");

		Py_XDECREF(m);
		m = m ? PyImport_ImportModule("datetime") : NULL;
		if (!m)
			return -1;
		Py_DECREF(m);
	}
#endif
	if (clone_cache_init(st) < 0 || PyModule_AddFunctions(mod, clone_methods) < 0 ||
	    PyModule_AddIntConstant(mod, "_WIRE_VERSION", PYSHM_CLONE_VERSION) < 0 ||
	    PyModule_AddIntConstant(mod, "_MAX_DEPTH", PYSHM_CLONE_MAX_DEPTH) < 0)
		return -1;
	if (numpy_init_types(mod, st) < 0)
		return -1;
	return capi_init(mod, st);
}
