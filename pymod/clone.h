/* SPDX-License-Identifier: MIT */
/*
 * Private to the structured clone (clone.c, clone_encode*.c,
 * clone_decode*.c, capi.c): the per-interpreter cache of the types and
 * functions the clone needs, and the shared-payload seam of capi.c.
 */
#ifndef PYSHM_PYMOD_CLONE_H
#define PYSHM_PYMOD_CLONE_H

#include "state.h"

/*
 * st->clone_cache is a list indexed by these: types of stdlib modules the
 * clone knows (None until the module is seen), functions it calls, and
 * interned names. Kept in a list so the module's traverse/clear see it.
 */
enum {
	CC_DATE,
	CC_TIME,
	CC_DATETIME,
	CC_TIMEDELTA,
	CC_TIMEZONE,
	CC_DT_CAPSULE,		/* datetime.datetime_CAPI (C datetime only) */
	CC_DECIMAL,
	CC_FRACTION,
	CC_ARRAY,
	CC_FORMAT_EXC,		/* traceback.format_exception */
	CC_NDARRAY,		/* numpy.ndarray, numpy.dtype, numpy.empty */
	CC_NP_DTYPE,
	CC_NP_EMPTY,
	CC_DISPATCH,		/* copyreg.dispatch_table */
	CC_NEWOBJ,		/* copyreg.__newobj__ */
	CC_S_REDUCE_EX,		/* "__reduce_ex__" */
	CC_S_SETSTATE,
	CC_S_NEW,
	CC_S_QUALNAME,
	CC_S_MODULE,
	CC_S_DICT,
	CC_S_TBTEXT,		/* "__traceback_text__" */
	CC_S_EXTEND,
	CC_S_APPEND,
	CC_S_FROMBYTES,
	CC_S_CAST,
	CC_S_TYPECODE,
	CC_S_CHAIN,		/* "chain", a keyword of format_exception */
	CC_N
};

/* Modules whose types are cached by group. */
enum {
	CG_DATETIME,
	CG_DECIMAL,
	CG_FRACTIONS,
	CG_ARRAY,
	CG_TRACEBACK,
	CG_NUMPY,
	CG_N
};

static inline PyObject *cc_get(pymod_state *st, int i)
{
	return PyList_GET_ITEM(st->clone_cache, i);
}

/* Create the cache (interned names, copyreg). 0 or -1 + exception. */
int clone_cache_init(pymod_state *st);
/*
 * Fill a group from sys.modules without importing (@import == 0: the
 * encoder, which only meets types of modules already imported), or by
 * importing it (the decoder). 1 when the group is available, 0 when its
 * module was not imported, -1 + exception.
 */
int clone_cache_group(pymod_state *st, int group, int import);

/* The attribute path @qualname ("A.b") of @mod; refuses "<locals>" and
 * "<lambda>" steps. New reference, or NULL + exception. */
PyObject *clone_resolve(PyObject *mod, PyObject *qualname);

/* The bytes of int @v in two's complement (at least 1), or -1 +
 * exception. O(1): no conversion. */
Py_ssize_t clone_long_nbytes(PyObject *v);

/*
 * clone_budget.c: the decoder's bound on the work of hashing. Containers
 * hash their keys (set and frozenset members, dict keys), and CPython
 * hashes a tuple through all its items each time, uncached: a key built of
 * shared tuples costs exponentially more than its bytes. A message of n
 * bytes may spend CLONE_BUDGET_BASE + CLONE_BUDGET_PER_BYTE * n steps (one
 * step: one tuple item hashed, eight bytes of a number, a third of a
 * comparison of keys whose hashes collide); past it, DataCloneError.
 */
#define CLONE_BUDGET_BASE	(1ull << 24)
#define CLONE_BUDGET_PER_BYTE	64

struct clone_budget {
	uint64_t left, total;
};

/* The hashes a container's keys had so far (colliding ones compare). */
struct clone_keys {
	struct clone_key_count *table;
	size_t mask, used;
	unsigned int nsmall;
	Py_hash_t small[8];		/* the first keys' hashes, in order */
};

void clone_budget_init(struct clone_budget *b, size_t msg_len);
/* The slow path of clone_budget_key(). */
int clone_budget_key_slow(pymod_state *st, struct clone_budget *b, struct clone_keys *keys,
			  PyObject *key);

/* Is int @v of one digit? */
static inline int clone_long_is_compact(PyObject *v)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyUnstable_Long_IsCompact((PyLongObject *)v);
#else
	return Py_SIZE(v) >= -1 && Py_SIZE(v) <= 1;
#endif
}

/*
 * Charge adding @key to the container whose keys are @keys: hashing it and
 * comparing it with earlier keys of the same hash. 0, or -1 with an
 * exception (DataCloneError past the budget, TypeError if unhashable).
 *
 * One step, and not counted among the colliding keys: str and bytes cache
 * their hash, keyed per process (no one can aim at it); an int of one digit
 * hashes to itself, unlike any other such int (but -1 and -2), so it
 * collides only with keys that are counted (big ints of its hash), which
 * pay for their comparisons with it too.
 */
static inline int clone_budget_key(pymod_state *st, struct clone_budget *b,
				   struct clone_keys *keys, PyObject *key)
{
	PyTypeObject *tp = Py_TYPE(key);

	if (__builtin_expect((tp == &PyUnicode_Type || tp == &PyBytes_Type ||
			      (tp == &PyLong_Type && clone_long_is_compact(key))) &&
			     b->left > 0, 1)) {
		b->left--;
		return 0;
	}
	return clone_budget_key_slow(st, b, keys, key);
}

/* A container's keys: none yet. */
static inline void clone_keys_init(struct clone_keys *keys)
{
	keys->table = NULL;
	keys->nsmall = 0;
}

/* Forget a container's keys. */
static inline void clone_keys_clear(struct clone_keys *keys)
{
	if (keys->table)
		PyMem_Free(keys->table);
	clone_keys_init(keys);
}

/* Take the raised exception (normalized), clearing it. */
static inline PyObject *clone_fetch_exc(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return PyErr_GetRaisedException();
#else
	PyObject *t, *v, *tb;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (v && tb)
		PyException_SetTraceback(v, tb);
	Py_XDECREF(t);
	Py_XDECREF(tb);
	return v;
#endif
}

/* Raise DataCloneError(@msg) from @cause (stolen, may be NULL). */
void clone_raise(pymod_state *st, PyObject *msg, PyObject *cause);

/* The DataCloneError of a malformed message. Returns NULL. */
PyObject *clone_malformed(pymod_state *st, const char *what, size_t off);

/* clone_numpy.c: its types (the memory of arrays received without a
 * copy). 0 or -1 + exception. */
int numpy_init_types(PyObject *mod, pymod_state *st);

/* capi.c: the shared payloads of registered extension types. */
struct pyshm_payload;

/* The clone ops registered for @tp in this interpreter (borrowed), or
 * NULL (no exception). */
const struct pyshm_clone_ops *capi_lookup(pymod_state *st, PyTypeObject *tp);
/* The region a payload lives in (borrowed). */
struct pyshm_region *capi_payload_region(struct pyshm_payload *p);
/* A message takes or gives back a hold on the payload in @r. */
void capi_region_hold(struct pyshm_region *r);
void capi_region_unhold(struct pyshm_region *r);
/* Check that @r holds a payload (hostile input). 0, or -1 + exception. */
int capi_region_check(pymod_state *st, struct pyshm_region *r);
/* A new object of registered type @tp over the payload in @r. */
PyObject *capi_from_region(pymod_state *st, PyTypeObject *tp,
			   const struct pyshm_clone_ops *ops,
			   struct pyshm_region *r);

#endif /* PYSHM_PYMOD_CLONE_H */
