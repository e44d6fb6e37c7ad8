// SPDX-License-Identifier: MIT
/*
 * SharedArrayBuffer: a Python object over a libpyshm region. Each object
 * holds its own process-local region reference, so objects in different
 * interpreters share the memory and never each other's PyObjects; the
 * memory goes when the last object, view and in-flight message let go.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/sysinfo.h>

#include "state.h"

typedef struct {
	PyObject_HEAD
	struct pyshm_region *region;
	Py_ssize_t exports;		/* live buffer views */
	PyObject *weakreflist;
} SabObject;

#define SAB_MAX ((uint64_t)(PY_SSIZE_T_MAX < (Py_ssize_t)PYSHM_REGION_SIZE_MAX ? \
			    PY_SSIZE_T_MAX : PYSHM_REGION_SIZE_MAX))

PyObject *sab_from_region(pymod_state *st, struct pyshm_region *r)
{
	SabObject *self = PyObject_GC_New(SabObject, st->sab_type);

	if (!self) {
		pyshm_region_put(r);
		return NULL;
	}
	self->region = r;
	self->exports = 0;
	self->weakreflist = NULL;
	PyObject_GC_Track(self);
	return (PyObject *)self;
}

struct pyshm_region *sab_region(pymod_state *st, PyObject *obj)
{
	if (!PyObject_TypeCheck(obj, st->sab_type))
		return NULL;
	return ((SabObject *)obj)->region;
}

/*
 * The largest buffer memory can back: PYSHM_MAX_REGION_BYTES when set (and
 * not empty), else RAM + swap. Neither backend reserves memory for a region (memfd and
 * shmem pages are allocated when touched), so without it a 64 TiB buffer
 * is made at once and touching it ends in the OOM killer. Read at each
 * call: the environment and the swap may change. 0 with *@from_env set,
 * or -1 with ValueError for a malformed PYSHM_MAX_REGION_BYTES.
 */
static int backing_limit(uint64_t *limit, int *from_env)
{
	const char *env = getenv("PYSHM_MAX_REGION_BYTES");
	unsigned long long v;
	struct sysinfo si;
	char *end;

	*from_env = env && *env;
	if (*from_env) {
		errno = 0;
		v = strtoull(env, &end, 10);
		if (env[0] < '0' || env[0] > '9' || *end || errno) {
			PyErr_Format(PyExc_ValueError,
				     "PYSHM_MAX_REGION_BYTES must be a number of bytes, not '%s'",
				     env);
			return -1;
		}
		*limit = v;
		return 0;
	}
	if (sysinfo(&si) < 0) {
		*limit = UINT64_MAX;	/* unknown: the backend's limits only */
		return 0;
	}
	*limit = ((uint64_t)si.totalram + (uint64_t)si.totalswap) * si.mem_unit;
	return 0;
}

/* @name's @n bytes can be backed: 0, or -1 with MemoryError saying why. */
int sab_check_backed(const char *name, uint64_t n)
{
	uint64_t limit;
	int from_env;

	if (backing_limit(&limit, &from_env) < 0)
		return -1;
	if (n <= limit)
		return 0;
	if (from_env)
		PyErr_Format(PyExc_MemoryError,
			     "%s %llu is more than PYSHM_MAX_REGION_BYTES (%llu)", name,
			     (unsigned long long)n, (unsigned long long)limit);
	else
		PyErr_Format(PyExc_MemoryError,
			     "%s %llu is more than memory can back: RAM + swap is %llu bytes "
			     "(PYSHM_MAX_REGION_BYTES sets another limit)", name,
			     (unsigned long long)n, (unsigned long long)limit);
	return -1;
}

/* A size argument: a non-negative int no larger than a region may be. */
int sab_size_arg(PyObject *arg, const char *name, uint64_t *out)
{
	PyObject *idx = PyNumber_Index(arg);
	long long v;
	int overflow;

	if (!idx)
		return -1;
	v = PyLong_AsLongLongAndOverflow(idx, &overflow);
	Py_DECREF(idx);
	if (!overflow && v == -1 && PyErr_Occurred())
		return -1;
	/* On overflow v is -1: the sign is overflow's. */
	if (overflow < 0 || (!overflow && v < 0)) {
		PyErr_Format(PyExc_ValueError, "%s must not be negative", name);
		return -1;
	}
	if (overflow > 0 || (uint64_t)v > SAB_MAX) {
		PyErr_Format(PyExc_ValueError, "%s is too large (at most %llu)", name,
			     (unsigned long long)SAB_MAX);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

/* A region the backend refused: its limits (the kernel module's
 * max_region_size, user quotas) say MemoryError, as RAM + swap does. */
PyObject *sab_region_refused(pymod_state *st, int err, const char *what)
{
	if (err == -EFBIG || err == -ENOSPC || err == -EDQUOT)
		return PyErr_Format(PyExc_MemoryError, "%s: %s (a limit on regions)", what,
				    strerror(-err));
	return pymod_raise_from_errno(st, err, what);
}

/* A slice bound: None keeps @out, an int is clamped like slice indices. */
static int bound_arg(PyObject *arg, Py_ssize_t *out)
{
	Py_ssize_t v;

	if (arg == Py_None)
		return 0;
	v = PyNumber_AsSsize_t(arg, NULL);
	if (v == -1 && PyErr_Occurred())
		return -1;
	*out = v;
	return 0;
}

static PyObject *sab_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "n", "max_byte_length", NULL };
	pymod_state *st = get_state_by_cls(type);
	PyObject *len_obj, *max_obj = Py_None;
	struct pyshm_region *r;
	uint64_t len, max = 0;
	int ret;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:SharedArrayBuffer", kwlist,
					 &len_obj, &max_obj))
		return NULL;
	/* The sizes first (ValueError), then what memory can back. */
	if (sab_size_arg(len_obj, "byte_length", &len) < 0)
		return NULL;
	if (max_obj != Py_None) {
		if (sab_size_arg(max_obj, "max_byte_length", &max) < 0)
			return NULL;
		if (max < len)
			return PyErr_Format(PyExc_ValueError,
					    "max_byte_length (%llu) is less than byte_length (%llu)",
					    (unsigned long long)max, (unsigned long long)len);
	}
	if (sab_check_backed("byte_length", len) < 0 ||
	    (max_obj != Py_None && sab_check_backed("max_byte_length", max) < 0))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = pyshm_region_create(len, max, 0, &r);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return sab_region_refused(st, ret, "SharedArrayBuffer");
	return sab_from_region(st, r);
}

static int sab_traverse(SabObject *self, visitproc visit, void *arg)
{
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static void sab_dealloc(SabObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	PyObject_GC_UnTrack(self);
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	pyshm_region_put(self->region);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static int sab_getbuffer(SabObject *self, Py_buffer *view, int flags)
{
	unsigned int rflags = pyshm_region_flags(self->region);
	int ret;

	ret = PyBuffer_FillInfo(view, (PyObject *)self, pyshm_region_data(self->region),
				(Py_ssize_t)pyshm_region_size(self->region),
				!!(rflags & PYSHM_REGION_SEALED), flags);
	if (ret == 0)
		self->exports++;
	return ret;
}

static void sab_releasebuffer(SabObject *self, Py_buffer *view)
{
	self->exports--;
}

static PyObject *sab_get_byte_length(SabObject *self, void *closure)
{
	return PyLong_FromUnsignedLongLong(pyshm_region_size(self->region));
}

static PyObject *sab_get_max_byte_length(SabObject *self, void *closure)
{
	return PyLong_FromUnsignedLongLong(pyshm_region_max_size(self->region));
}

static PyObject *sab_get_growable(SabObject *self, void *closure)
{
	return PyBool_FromLong(pyshm_region_flags(self->region) & PYSHM_REGION_GROWABLE);
}

static Py_ssize_t sab_length(SabObject *self)
{
	return (Py_ssize_t)pyshm_region_size(self->region);
}

static PyObject *sab_grow(SabObject *self, PyObject *arg)
{
	pymod_state *st = get_state_by_type(Py_TYPE(self));
	uint64_t n, cur;
	int ret;

	if (!(pyshm_region_flags(self->region) & PYSHM_REGION_GROWABLE))
		return PyErr_Format(PyExc_TypeError,
				    "grow() on a SharedArrayBuffer that is not growable");
	if (sab_size_arg(arg, "new_length", &n) < 0)
		return NULL;
	cur = pyshm_region_size(self->region);
	if (n < cur)
		return PyErr_Format(PyExc_ValueError,
				    "a SharedArrayBuffer never shrinks (%llu < %llu)",
				    (unsigned long long)n, (unsigned long long)cur);
	if (n > pyshm_region_max_size(self->region))
		return PyErr_Format(PyExc_ValueError,
				    "new_length %llu exceeds max_byte_length %llu",
				    (unsigned long long)n,
				    (unsigned long long)pyshm_region_max_size(self->region));
	if (sab_check_backed("new_length", n) < 0)
		return NULL;
	ret = pyshm_region_grow(self->region, n);
	if (ret == -EINVAL)	/* another worker grew it further meanwhile */
		return PyErr_Format(PyExc_ValueError, "a SharedArrayBuffer never shrinks");
	if (ret < 0)
		return sab_region_refused(st, ret, "grow");
	Py_RETURN_NONE;
}

static PyObject *sab_slice(SabObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	pymod_state *st = get_state_by_type(Py_TYPE(self));
	Py_ssize_t len = (Py_ssize_t)pyshm_region_size(self->region);
	Py_ssize_t start = 0, stop = len;
	struct pyshm_region *r;
	int ret;

	if (nargs > 2)
		return PyErr_Format(PyExc_TypeError, "slice() takes at most 2 arguments");
	if ((nargs > 0 && bound_arg(args[0], &start) < 0) ||
	    (nargs > 1 && bound_arg(args[1], &stop) < 0))
		return NULL;
	PySlice_AdjustIndices(len, &start, &stop, 1);
	if (stop < start)
		stop = start;
	ret = pyshm_region_create((uint64_t)(stop - start), 0, 0, &r);
	if (ret < 0)
		return sab_region_refused(st, ret, "slice");
	memcpy(pyshm_region_data(r), (char *)pyshm_region_data(self->region) + start,
	       (size_t)(stop - start));
	return sab_from_region(st, r);
}

static PyObject *sab_reduce(SabObject *self, PyObject *unused)
{
	return PyErr_Format(PyExc_TypeError,
			    "cannot pickle 'SharedArrayBuffer' object: share it with "
			    "post_message() or structured_clone()");
}

/* <SharedArrayBuffer byte_length=16> (growable: max_byte_length too) */
static PyObject *sab_repr(SabObject *self)
{
	if (pyshm_region_flags(self->region) & PYSHM_REGION_GROWABLE)
		return PyUnicode_FromFormat("<SharedArrayBuffer byte_length=%llu "
					    "max_byte_length=%llu growable>",
					    (unsigned long long)pyshm_region_size(self->region),
					    (unsigned long long)pyshm_region_max_size(self->region));
	return PyUnicode_FromFormat("<SharedArrayBuffer byte_length=%llu>",
				    (unsigned long long)pyshm_region_size(self->region));
}

static PyMethodDef sab_methods[] = {
	{ "grow", (PyCFunction)sab_grow, METH_O,
	  "grow($self, new_length, /)\n--\n\nGrow a growable buffer to new_length bytes (never shrink)." },
	{ "slice", (PyCFunction)(void (*)(void))sab_slice, METH_FASTCALL,
	  "slice($self, start=0, end=None, /)\n--\n\nA new SharedArrayBuffer with a copy of the bytes." },
	{ "__reduce__", (PyCFunction)sab_reduce, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef sab_getset[] = {
	{ "byte_length", (getter)sab_get_byte_length, NULL, "Current size in bytes.", NULL },
	{ "max_byte_length", (getter)sab_get_max_byte_length, NULL,
	  "Largest size grow() may reach.", NULL },
	{ "growable", (getter)sab_get_growable, NULL,
	  "True when max_byte_length exceeded byte_length at creation.", NULL },
	{ NULL }
};

static PyMemberDef sab_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(SabObject, weakreflist), READONLY },
	{ NULL }
};

static PyType_Slot sab_slots[] = {
	{ Py_tp_doc, "SharedArrayBuffer(n, max_byte_length=None)\n--\n\n"
		     "Raw memory every worker holding it sees. Posting it shares the\n"
		     "memory, never copies it. Zero-filled; growable when\n"
		     "max_byte_length is given." },
	{ Py_tp_new, sab_new },
	{ Py_tp_dealloc, sab_dealloc },
	{ Py_tp_traverse, sab_traverse },
	{ Py_tp_repr, sab_repr },
	{ Py_tp_methods, sab_methods },
	{ Py_tp_getset, sab_getset },
	{ Py_tp_members, sab_members },
	{ Py_bf_getbuffer, sab_getbuffer },
	{ Py_bf_releasebuffer, sab_releasebuffer },
	{ Py_sq_length, sab_length },
	{ 0, NULL }
};

static PyType_Spec sab_spec = {
	.name = "pyshm_workers.SharedArrayBuffer",
	.basicsize = sizeof(SabObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = sab_slots,
};

int sab_init_types(PyObject *mod, pymod_state *st)
{
	st->sab_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &sab_spec, NULL);
	if (!st->sab_type)
		return -1;
	return PyModule_AddType(mod, st->sab_type);
}
