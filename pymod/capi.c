// SPDX-License-Identifier: MIT
/*
 * The C API for extension types (include/pyshm/capi.h): shared payloads
 * with an atomic count of holders in shared memory, the registration of
 * clonable types (per interpreter), and the _C_API capsule.
 *
 * A payload is a libpyshm region: a 128-byte header (magic, the holder
 * count, a destroyed flag, the size and the type's wire name), then the
 * data. Holders are handles (struct pyshm_payload: one count each, one
 * process-local region reference each) and messages in flight. The last
 * count to go runs the type's destroy(), found by wire name in a
 * process-global table, so it runs in whichever process lets go last.
 */
#include "clone.h"

#include <stdatomic.h>
#include <unistd.h>

#include <pyshm/capi.h>

#define PAYLOAD_MAGIC	0x4c505950u	/* "PYPL" */
#define PAYLOAD_VERSION	1
#define PAYLOAD_HDR	128u

/* At the start of the region; little-endian, shared by every holder. */
struct payload_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;
	_Atomic uint32_t refs;		/* handles in all processes + messages */
	_Atomic uint32_t destroyed;	/* set by whoever runs destroy() */
	uint64_t size;			/* data bytes after the header */
	char name[PYSHM_CAPI_NAME_MAX + 1];	/* "module.qualname" */
};

_Static_assert(sizeof(struct payload_hdr) == PAYLOAD_HDR, "payload header size");

struct pyshm_payload {
	struct pyshm_region *r;
	struct payload_hdr *hdr;
	size_t size;			/* checked when the handle was made */
	pid_t pid;			/* a fork()ed copy holds no count */
	void (*destroy)(void *data, size_t size);
};

/* pymod_globals.capi_dtors: destroy() by wire name, for the processes
 * where only a message (not an object) lets go last. */
struct capi_dtor {
	char name[PYSHM_CAPI_NAME_MAX + 1];
	void (*destroy)(void *data, size_t size);
};

#define CAPI_CAPSULE_OPS "pyshm_workers._clone_type"

/* "module.qualname" of @tp into @out. 0 or -1 + exception. */
static int wire_name(PyTypeObject *tp, char *out)
{
	PyObject *mod = PyObject_GetAttrString((PyObject *)tp, "__module__");
	PyObject *qual = mod ? PyObject_GetAttrString((PyObject *)tp, "__qualname__") : NULL;
	PyObject *name = NULL;
	const char *s;
	Py_ssize_t n;
	int ret = -1;

	if (!qual)
		goto out;
	if (!PyUnicode_Check(mod) || !PyUnicode_Check(qual)) {
		PyErr_Format(PyExc_TypeError, "%s has no module or qualified name", tp->tp_name);
		goto out;
	}
	name = PyUnicode_FromFormat("%U.%U", mod, qual);
	s = name ? PyUnicode_AsUTF8AndSize(name, &n) : NULL;
	if (!s)
		goto out;
	if (n > PYSHM_CAPI_NAME_MAX) {
		PyErr_Format(PyExc_ValueError, "%U is longer than %d bytes", name,
			     PYSHM_CAPI_NAME_MAX);
		goto out;
	}
	memcpy(out, s, (size_t)n + 1);
	ret = 0;
out:
	Py_XDECREF(name);
	Py_XDECREF(qual);
	Py_XDECREF(mod);
	return ret;
}

static void (*find_dtor(const char *name))(void *, size_t)
{
	void (*fn)(void *, size_t) = NULL;
	size_t i;

	pthread_mutex_lock(&pymod_globals.lock);
	for (i = 0; i < pymod_globals.capi_ndtors; i++)
		if (!strcmp(pymod_globals.capi_dtors[i].name, name))
			fn = pymod_globals.capi_dtors[i].destroy;
	pthread_mutex_unlock(&pymod_globals.lock);
	return fn;
}

static int add_dtor(const char *name, void (*destroy)(void *, size_t))
{
	struct capi_dtor *v;
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&pymod_globals.lock);
	for (i = 0; i < pymod_globals.capi_ndtors; i++)
		if (!strcmp(pymod_globals.capi_dtors[i].name, name))
			break;
	if (i == pymod_globals.capi_ndtors) {
		v = PyMem_RawRealloc(pymod_globals.capi_dtors, (i + 1) * sizeof(*v));
		if (v) {
			pymod_globals.capi_dtors = v;
			pymod_globals.capi_ndtors++;
			strcpy(v[i].name, name);
		} else {
			ret = -1;
		}
	}
	if (!ret)
		pymod_globals.capi_dtors[i].destroy = destroy;
	pthread_mutex_unlock(&pymod_globals.lock);
	if (ret)
		PyErr_NoMemory();
	return ret;
}

static struct payload_hdr *region_hdr(struct pyshm_region *r)
{
	return pyshm_region_data(r);
}

/* The last count went: destroy() once, whoever calls. */
static void run_destroy(struct payload_hdr *hdr, size_t size,
			void (*destroy)(void *, size_t))
{
	if (atomic_exchange_explicit(&hdr->destroyed, 1, memory_order_acq_rel))
		return;
	if (destroy)
		destroy((char *)hdr + PAYLOAD_HDR, size);
}

/* ---- the capsule's functions --------------------------------------------- */

static int capi_register_type(PyTypeObject *type, const struct pyshm_clone_ops *ops)
{
	char name[PYSHM_CAPI_NAME_MAX + 1];
	pymod_state *st;
	PyObject *cap;
	int ret;

	if (!ops || ops->version != PYSHM_CAPI_VERSION || ops->flags || !ops->get_payload ||
	    !ops->from_payload) {
		PyErr_SetString(PyExc_ValueError, "register_type(): bad struct pyshm_clone_ops");
		return -1;
	}
	if (!PyType_Check(type) || wire_name(type, name) < 0)
		return -1;
	st = get_state_current();
	if (!st)
		return -1;
	if (!st->capi_types && !(st->capi_types = PyDict_New()))
		return -1;
	cap = PyCapsule_New((void *)ops, CAPI_CAPSULE_OPS, NULL);
	if (!cap)
		return -1;
	ret = PyDict_SetItem(st->capi_types, (PyObject *)type, cap);
	Py_DECREF(cap);
	if (ret < 0)
		return -1;
	return add_dtor(name, ops->destroy);
}

const struct pyshm_clone_ops *capi_lookup(pymod_state *st, PyTypeObject *tp)
{
	PyObject *cap;

	if (!st->capi_types)
		return NULL;
	cap = PyDict_GetItemWithError(st->capi_types, (PyObject *)tp);
	if (!cap) {
		PyErr_Clear();		/* types hash by identity: can't fail */
		return NULL;
	}
	return PyCapsule_GetPointer(cap, CAPI_CAPSULE_OPS);
}

static struct pyshm_payload *handle_new(struct pyshm_region *r, size_t size,
					void (*destroy)(void *, size_t))
{
	struct pyshm_payload *p = PyMem_RawMalloc(sizeof(*p));

	if (!p) {
		PyErr_NoMemory();
		return NULL;
	}
	p->r = pyshm_region_get(r);
	p->hdr = region_hdr(r);
	p->size = size;
	p->pid = getpid();
	p->destroy = destroy;
	return p;
}

static int capi_payload_new(PyTypeObject *type, size_t size, struct pyshm_payload **out)
{
	pymod_state *st = get_state_current();
	const struct pyshm_clone_ops *ops;
	struct payload_hdr *hdr;
	struct pyshm_region *r;
	int ret;

	if (!st)
		return -1;
	ops = capi_lookup(st, type);
	if (!ops) {
		PyErr_Format(PyExc_TypeError, "%s is not registered with pyshm_workers in this "
			     "interpreter", type->tp_name);
		return -1;
	}
	if (size > PYSHM_REGION_SIZE_MAX - PAYLOAD_HDR) {
		PyErr_SetString(PyExc_OverflowError, "payload too large");
		return -1;
	}
	ret = pyshm_region_create(PAYLOAD_HDR + size, 0, 0, &r);
	if (ret < 0) {
		pymod_raise_from_errno(st, ret, "payload");
		return -1;
	}
	hdr = region_hdr(r);
	if (wire_name(type, hdr->name) < 0) {
		pyshm_region_put(r);
		return -1;
	}
	hdr->magic = PAYLOAD_MAGIC;
	hdr->version = PAYLOAD_VERSION;
	hdr->hdr_size = PAYLOAD_HDR;
	hdr->size = size;
	atomic_store_explicit(&hdr->refs, 1, memory_order_relaxed);
	*out = handle_new(r, size, ops->destroy);
	pyshm_region_put(r);	/* the handle has its own reference */
	return *out ? 0 : -1;
}

static struct pyshm_payload *capi_payload_dup(struct pyshm_payload *p)
{
	struct pyshm_payload *q = handle_new(p->r, p->size, p->destroy);

	if (q)
		atomic_fetch_add_explicit(&p->hdr->refs, 1, memory_order_relaxed);
	return q;
}

static void capi_payload_release(struct pyshm_payload *p)
{
	if (!p)
		return;
	/*
	 * A1: the decrement releases what this holder wrote; the holder that
	 * sees 1 acquires it all before destroy() runs.
	 */
	if (p->pid == getpid() &&
	    atomic_fetch_sub_explicit(&p->hdr->refs, 1, memory_order_acq_rel) == 1)
		run_destroy(p->hdr, p->size, p->destroy);
	pyshm_region_put(p->r);
	PyMem_RawFree(p);
}

static void *capi_payload_data(const struct pyshm_payload *p)
{
	return (char *)p->hdr + PAYLOAD_HDR;
}

static size_t capi_payload_size(const struct pyshm_payload *p)
{
	return p->size;
}

static uint64_t capi_payload_id(const struct pyshm_payload *p)
{
	return pyshm_region_id(p->r);
}

static uint32_t capi_payload_refs(const struct pyshm_payload *p)
{
	return atomic_load_explicit(&p->hdr->refs, memory_order_relaxed);
}

static const struct pyshm_capi capi_table = {
	.version = PYSHM_CAPI_VERSION,
	.size = sizeof(struct pyshm_capi),
	.register_type = capi_register_type,
	.payload_new = capi_payload_new,
	.payload_dup = capi_payload_dup,
	.payload_release = capi_payload_release,
	.payload_data = capi_payload_data,
	.payload_size = capi_payload_size,
	.payload_id = capi_payload_id,
	.payload_refs = capi_payload_refs,
};

/* ---- the clone's side -------------------------------------------------------- */

struct pyshm_region *capi_payload_region(struct pyshm_payload *p)
{
	return p->r;
}

void capi_region_hold(struct pyshm_region *r)
{
	atomic_fetch_add_explicit(&region_hdr(r)->refs, 1, memory_order_relaxed);
}

void capi_region_unhold(struct pyshm_region *r)
{
	struct payload_hdr *hdr = region_hdr(r);
	char name[PYSHM_CAPI_NAME_MAX + 1];
	uint64_t size;

	/* A forged entry may name any region: touch payloads only. */
	if (pyshm_region_known_size(r) < PAYLOAD_HDR || hdr->magic != PAYLOAD_MAGIC)
		return;
	/* A1's partner, for a message that was the last holder. */
	if (atomic_fetch_sub_explicit(&hdr->refs, 1, memory_order_acq_rel) != 1)
		return;
	memcpy(name, hdr->name, sizeof(name));
	name[PYSHM_CAPI_NAME_MAX] = 0;
	size = hdr->size;
	if (size > pyshm_region_known_size(r) - PAYLOAD_HDR)
		size = 0;
	/* XXX: a process where the type was never registered can't run it. */
	run_destroy(hdr, (size_t)size, find_dtor(name));
}

int capi_region_check(pymod_state *st, struct pyshm_region *r)
{
	uint64_t len = pyshm_region_size(r);
	struct payload_hdr *hdr = region_hdr(r);

	if (len < PAYLOAD_HDR || hdr->magic != PAYLOAD_MAGIC || hdr->version != PAYLOAD_VERSION ||
	    hdr->hdr_size != PAYLOAD_HDR || hdr->size > len - PAYLOAD_HDR ||
	    !memchr(hdr->name, 0, sizeof(hdr->name))) {
		PyErr_SetString(st->DataCloneError, "region is not a shared payload");
		return -1;
	}
	return 0;
}

PyObject *capi_from_region(pymod_state *st, PyTypeObject *tp,
			   const struct pyshm_clone_ops *ops, struct pyshm_region *r)
{
	char want[PYSHM_CAPI_NAME_MAX + 1], have[PYSHM_CAPI_NAME_MAX + 1];
	struct payload_hdr *hdr = region_hdr(r);
	struct pyshm_payload *p;
	uint64_t size = hdr->size;

	if (wire_name(tp, want) < 0)
		return NULL;
	memcpy(have, hdr->name, sizeof(have));
	have[PYSHM_CAPI_NAME_MAX] = 0;
	if (strcmp(want, have)) {
		PyErr_Format(st->DataCloneError, "payload of a %s, not of a %s", have, want);
		return NULL;
	}
	/* Checked on receipt, but the header is shared: check again. */
	if (size > pyshm_region_known_size(r) - PAYLOAD_HDR) {
		PyErr_SetString(st->DataCloneError, "region is not a shared payload");
		return NULL;
	}
	p = handle_new(r, (size_t)size, ops->destroy);
	if (!p)
		return NULL;
	atomic_fetch_add_explicit(&hdr->refs, 1, memory_order_relaxed);
	return ops->from_payload(tp, p);
}

int capi_init(PyObject *mod, pymod_state *st)
{
	PyObject *cap = PyCapsule_New((void *)&capi_table, PYSHM_CAPI_NAME, NULL);
	int ret;

	if (!cap)
		return -1;
	ret = PyModule_AddObjectRef(mod, "_C_API", cap);
	Py_DECREF(cap);
	return ret;
}
