/* SPDX-License-Identifier: MIT */
/*
 * Private to the structured-clone encoder, whose files are split by type
 * family: clone_encode.c (the engine: memo, errors, scalars, containers,
 * dispatch, the message), clone_encode_std.c (datetime, decimal, fraction,
 * array, memoryview), clone_encode_reduce.c (classes and functions by name,
 * the pickle protocol, exceptions), clone_encode_shared.c (what is shared or
 * moved rather than copied: SharedArrayBuffers, typed arrays, payloads,
 * ports) and clone_numpy.c (numpy arrays, both directions).
 */
#ifndef PYSHM_PYMOD_CLONE_ENCODE_H
#define PYSHM_PYMOD_CLONE_ENCODE_H

#include "clone.h"

/* Levels a message may nest, leaves included (as readers count them):
 * e->depth is the number of values around the one being written. */
#define MAX_DEPTH	PYSHM_CLONE_MAX_DEPTH
#define M(memo)		((memo) ? PYSHM_CLONE_F_MEMO : 0)
/* Blobs from this size up stay where they are when the message may leave
 * them there (clone_env.ext_ok): the send copies them once, where the
 * message goes. */
#define EXT_MIN		(256u << 10)

#define IS_SMALL_INT(v)	((v) >= -5 && (v) <= 256)
/* Immortal objects are unique too (3.15 caches more ints than -5..256). */
#if PY_VERSION_HEX >= 0x030E0000
#define IS_IMMORTAL(o)	PyUnstable_IsImmortal(o)
#elif PY_VERSION_HEX >= 0x030C0000
#define IS_IMMORTAL(o)	_Py_IsImmortal(o)
#else
#define IS_IMMORTAL(o)	0
#endif

/* ---- pointer memo (open addressing, keys owned) ---------------------- */

typedef struct {
	PyObject *key;
	uint32_t slot;
} MemoEntry;

typedef struct {
	MemoEntry *table;
	size_t mask;
	size_t used;
} Memo;

static inline size_t memo_hash(const PyObject *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 31));
}

static inline long memo_get(const Memo *m, const PyObject *key)
{
	size_t i;

	if (!m->table)
		return -1;
	for (i = memo_hash(key) & m->mask; m->table[i].key; i = (i + 1) & m->mask)
		if (m->table[i].key == key)
			return m->table[i].slot;
	return -1;
}

int memo_set(Memo *m, PyObject *key, uint32_t slot);

/* ---- the encoder --------------------------------------------------------- */

/* A region to send once the body is done (SharedArrayBuffer, payload). */
struct pending {
	PyObject *owner;		/* keeps the region alive until then */
	struct pyshm_region *r;
	unsigned int role;
	struct pyshm_region_ref ref;
};

typedef struct {
	pymod_state *st;
	struct clone_env *env;
	struct pyshm_clone_writer w;
	Memo memo;
	uint32_t nslots;		/* memo slots assigned */
	unsigned int depth;
	int scanned;			/* cache groups looked up this run */
	PyObject *ports;		/* list: the transfer list, or NULL */
	PyObject *moved;		/* list: its ArrayBuffers, or NULL */
	int all_memo;			/* user code may run: memoise all */
	int restart;			/* stopped before user code: again */
	struct pending *pend;
	uint32_t npend, cappend;
	/* What keeps the blobs by reference alive and unchanged until the
	 * message is sent (clone_msg.keep): a list, or NULL. */
	PyObject *keep;
	/* A DataCloneError under construction (NULL: an exception passes). */
	PyObject *err;			/* "cannot clone 'T' object ..." */
	PyObject *err_cause;
	PyObject *err_path;		/* path steps, innermost first */
	PyObject *err_obj;		/* what could not be cloned */
} Encoder;

static inline int enc_nomem(void)
{
	PyErr_NoMemory();
	return -1;
}

/* Does @obj (held by the encoder) get a memo slot? */
static inline int memo_wanted(const Encoder *e, PyObject *obj)
{
	return e->all_memo || Py_REFCNT(obj) > 2;
}

/*
 * User code is about to run: fine in pickle's mode; in the fast mode,
 * stop (-1, no exception, e->restart) so that clone_encode() starts again
 * in pickle's mode.
 */
static inline int enc_user_code(Encoder *e)
{
	if (e->all_memo)
		return 0;
	e->restart = 1;
	return -1;
}

/* Give @obj the next memo slot. */
static inline int memo_put(Encoder *e, PyObject *obj)
{
	return memo_set(&e->memo, obj, e->nslots++);
}

/* ---- clone_encode.c ------------------------------------------------------ */

/* Any value, held by the caller. 0, or -1 (+ exception or e->err). */
int enc_value(Encoder *e, PyObject *obj);
/* After the children of a value whose slot comes after them: alias or
 * slot (see wire-format.rst, Memo). */
int enc_close(Encoder *e, PyObject *obj, size_t tag_pos, int memo);
/* @obj can't be cloned (@why: NULL or a reason): start a DataCloneError,
 * a pending exception becoming its cause. Returns -1. */
int enc_bad(Encoder *e, PyObject *obj, const char *why);
int enc_too_deep(Encoder *e);
/* Steps of the error's path: "[3]", ".tzinfo", "['key']" / ".attr". */
void path_add(Encoder *e, PyObject *step);
void path_index(Encoder *e, Py_ssize_t i);
void path_text(Encoder *e, const char *s);
void path_key(Encoder *e, PyObject *key, int attr);
/* An int; @may_memo: it may take a memo slot (not inside FRACTION). */
int enc_long(Encoder *e, PyObject *obj, int may_memo);
/* The STR or STR_SURROGATE of a str. */
int put_str(Encoder *e, PyObject *obj, int memo);
/* @attr: the dict is an instance's state (its keys are attribute names). */
int enc_dict(Encoder *e, PyObject *d, int memo, int attr);

/* Do @n bytes of data go by reference (enc_data_ref())? */
static inline int enc_by_ref(const Encoder *e, size_t n)
{
	return n >= EXT_MIN && e->env->ext_ok;
}

/*
 * The @n bytes at @p end the value whose head is written. enc_data_ref()
 * leaves them where they are: the message keeps @holder (a reference is
 * taken), which must keep them alive and unchanged until it is sent (the
 * object itself if immutable, else a memoryview, whose export keeps a
 * bytearray or an array.array from resizing). enc_data_copy() copies them
 * in (large ones into memory faulted in first). 0, or -1 + exception.
 */
int enc_data_ref(Encoder *e, const void *p, size_t n, PyObject *holder);
int enc_data_copy(Encoder *e, const void *p, size_t n);
/* A BYTES or BYTEARRAY (@tag, with its flags) of EXT_MIN bytes or more. */
int enc_big_blob(Encoder *e, uint8_t tag, PyObject *obj);

/*
 * A container's item, borrowed from it. Scalars that run no user code are
 * written at once; anything else is held while encoded (user code could
 * drop it from the container meanwhile).
 */
static inline int enc_item(Encoder *e, PyObject *item)
{
	PyTypeObject *tp = Py_TYPE(item);
	int ret;

	if (__builtin_expect(e->depth >= MAX_DEPTH, 0))
		return enc_too_deep(e);
	if (tp == &PyLong_Type) {
		long v;

		/* One digit: read it directly, as CPython's own fast paths do. */
#if PY_VERSION_HEX >= 0x030C0000
		if (PyUnstable_Long_IsCompact((PyLongObject *)item))
			v = (long)PyUnstable_Long_CompactValue((PyLongObject *)item);
#else
		if (Py_SIZE(item) >= -1 && Py_SIZE(item) <= 1)
			v = Py_SIZE(item) * (long)((PyLongObject *)item)->ob_digit[0];
#endif
		else
			goto held;
		/* Borrowed: more than one reference means shared. */
		if (Py_REFCNT(item) > 1 && !IS_SMALL_INT(v) && !IS_IMMORTAL(item))
			goto held;
		return pyshm_clone_put_int(&e->w, v) < 0 ? enc_nomem() : 0;
	}
	if (tp == &PyFloat_Type) {
		if (Py_REFCNT(item) > 1)
			goto held;
		return pyshm_clone_put_float(&e->w, PyFloat_AS_DOUBLE(item)) < 0 ? enc_nomem() : 0;
	}
	if (item == Py_None)
		return pyshm_clone_put_none(&e->w) < 0 ? enc_nomem() : 0;
	if (tp == &PyBool_Type)
		return pyshm_clone_put_bool(&e->w, item == Py_True) < 0 ? enc_nomem() : 0;
held:
	Py_INCREF(item);
	ret = enc_value(e, item);
	Py_DECREF(item);
	return ret;
}

/* ---- clone_encode_std.c -------------------------------------------------- */

/* The stdlib types met by type (K_*: datetime's and decimal's). */
enum { K_DATE, K_TIME, K_DATETIME, K_TIMEDELTA, K_TIMEZONE, K_DECIMAL };

/* The K_* kind of a type of the other implementation of datetime or
 * decimal (_pydatetime, _pydecimal) than this interpreter's, or -1. */
int other_impl(PyTypeObject *tp);
int enc_kind(Encoder *e, PyObject *obj, int kind, int memo);
int enc_decimal(Encoder *e, PyObject *obj, int memo);
int enc_fraction(Encoder *e, PyObject *obj, int memo);
int enc_array(Encoder *e, PyObject *obj, int memo);
int enc_memoryview(Encoder *e, PyObject *obj, int memo);
int enc_picklebuffer(Encoder *e, PyObject *obj, int memo);

/* ---- clone_encode_reduce.c ----------------------------------------------- */

/* @obj by module and qualified name (@name: what __reduce__ gave, or NULL
 * for its __qualname__). */
int enc_global(Encoder *e, PyObject *obj, PyObject *name, int memo);
/* A class or function: by name, else by value through cloudpickle (a
 * lambda, a closure, anything of __main__). */
int enc_named(Encoder *e, PyObject *obj, int memo);
/* What __reduce_ex__() (or a copyreg reducer) returned for @obj. */
int enc_reduce_rv(Encoder *e, PyObject *obj, PyObject *rv, int memo);
int enc_reduce(Encoder *e, PyObject *obj, int memo);
int enc_exception(Encoder *e, PyObject *obj, int memo);
/* type(None), type(Ellipsis), type(NotImplemented). */
int enc_singleton_type(Encoder *e, PyObject *obj, int memo);

/* ---- clone_numpy.c -------------------------------------------------------- */

/* Is @tp numpy.ndarray (of a numpy imported by now)? */
int enc_is_ndarray(Encoder *e, PyTypeObject *tp);
int enc_ndarray(Encoder *e, PyObject *arr, int memo);

/* ---- clone_encode_shared.c ----------------------------------------------- */

int enc_sab(Encoder *e, PyObject *obj, int memo);
int enc_arraybuffer(Encoder *e, PyObject *obj, int memo);
int enc_typed_array(Encoder *e, PyObject *obj, int memo);
int enc_port(Encoder *e, PyObject *obj);
int enc_shared(Encoder *e, PyObject *obj, const struct pyshm_clone_ops *ops, int memo);
/* The region table index of @r (held by @owner), added if new; -1 with an
 * exception, or -1 without one when @r is there in another role. */
long pending_add(Encoder *e, PyObject *owner, struct pyshm_region *r, unsigned int role);
/* The transfer list: MessagePorts and ArrayBuffers, each once, each
 * transferable. */
int enc_check_transfer(Encoder *e, PyObject *transfer);
/* Send the regions, export the ports, close the message into @out. */
int enc_commit(Encoder *e, struct clone_msg *out);

#endif /* PYSHM_PYMOD_CLONE_ENCODE_H */
