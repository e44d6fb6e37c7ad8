/* SPDX-License-Identifier: MIT */
/*
 * Typed arrays (typed_array.c: objects, elements, buffer protocol;
 * atomics.c: Atomics, wait/notify; wait_async.c: asyncio waits) and the
 * ArrayBuffer (arraybuffer.c) they may lie over.
 */
#ifndef PYSHM_PYMOD_TYPED_ARRAY_H
#define PYSHM_PYMOD_TYPED_ARRAY_H

#include <stdatomic.h>
#include <string.h>

#include "state.h"

/* The element types, as JavaScript names them. */
enum ta_kind {
	TA_INT8,
	TA_UINT8,
	TA_UINT8C,	/* Uint8ClampedArray */
	TA_INT16,
	TA_UINT16,
	TA_INT32,
	TA_UINT32,
	TA_INT64,
	TA_UINT64,
	TA_FLOAT32,
	TA_FLOAT64,
	TA_NKINDS
};

#define TA_F_SIGNED	0x01
#define TA_F_FLOAT	0x02
#define TA_F_CLAMPED	0x04
#define TA_F_ATOMIC	0x08	/* Atomics work on it */
#define TA_F_WAIT	0x10	/* and wait/notify (Int32Array, Int64Array) */

struct ta_kind_info {
	const char *name;	/* "Int32Array" */
	int elsize;
	unsigned int flags;
	const char *format;	/* struct module character */
	uint8_t wire;		/* PYSHM_CLONE_TA_* */
};

extern const struct ta_kind_info ta_kinds[TA_NKINDS];

typedef struct {
	PyObject_HEAD
	PyObject *buffer;		/* the SharedArrayBuffer or ArrayBuffer given */
	struct pyshm_region *region;	/* a SharedArrayBuffer's (borrowed), else NULL */
	Py_ssize_t byte_offset;
	Py_ssize_t length;		/* elements; -1 tracks a growable SAB */
	int elsize;
	int kind;			/* enum ta_kind */
	Py_ssize_t exports;
	Py_ssize_t view_shape;		/* shape of the latest export (copied by
					 * memoryview and numpy on creation) */
} ArrayObject;

/* The kind of typed array @obj is, or -1 when it is none. */
int ta_kind_of(pymod_state *st, PyObject *obj);

/*
 * Where element @i (in range, not checked) of @a lies. Over an ArrayBuffer
 * the memory is the buffer's own (NULL once detached: see ta_slot()).
 */
char *ta_base(ArrayObject *a);

/*
 * The element addressed by index object @arg (negative counts from the
 * end): IndexError out of range, TypeError when the buffer is detached.
 * NULL + exception.
 */
void *ta_slot(ArrayObject *a, PyObject *arg);

/* Elements in view now (0 over a detached buffer). */
Py_ssize_t ta_len(ArrayObject *a);

/* A Python value to the element's bits: integers wrap modulo 2**bits,
 * Uint8ClampedArray clamps and rounds half to even, floats narrow as
 * C does. 0, or -1 + TypeError. */
int ta_unbox(int kind, PyObject *v, uint64_t *bits);
/* The element's bits as a Python value. */
PyObject *ta_box(int kind, uint64_t bits);

/* Raw element access: relaxed loads and stores never tear (8-byte
 * elements are aligned), as on the memory of a SharedArrayBuffer. */
static inline uint64_t ta_load_bits(const void *p, int elsize, memory_order mo)
{
	switch (elsize) {
	case 1: return atomic_load_explicit((_Atomic uint8_t *)p, mo);
	case 2: return atomic_load_explicit((_Atomic uint16_t *)p, mo);
	case 4: return atomic_load_explicit((_Atomic uint32_t *)p, mo);
	default: return atomic_load_explicit((_Atomic uint64_t *)p, mo);
	}
}

static inline void ta_store_bits(void *p, int elsize, uint64_t v, memory_order mo)
{
	switch (elsize) {
	case 1: atomic_store_explicit((_Atomic uint8_t *)p, (uint8_t)v, mo); break;
	case 2: atomic_store_explicit((_Atomic uint16_t *)p, (uint16_t)v, mo); break;
	case 4: atomic_store_explicit((_Atomic uint32_t *)p, (uint32_t)v, mo); break;
	default: atomic_store_explicit((_Atomic uint64_t *)p, v, mo); break;
	}
}

/* typed_array.c: the types; 0 or -1 + exception. */
int typed_arrays_init(PyObject *mod, pymod_state *st);
/* atomics.c: the methods of every type (the Atomics, wait/notify,
 * wait_async: TypeError on the types JavaScript refuses them). */
extern PyMethodDef ta_methods[];
/* wait(), wait_async(): Int32Array or Int64Array over a
 * SharedArrayBuffer. 0, or -1 + TypeError. */
int ta_check_waitable(ArrayObject *a, const char *op);
/* Seconds from a timeout argument: -1 for none (None, inf, more than a
 * century), else >= 0. 0, or -1 + exception (TypeError; ValueError for NaN). */
int ta_timeout_arg(PyObject *arg, double *secs);

/* wait_async.c */
int wait_async_init(PyObject *mod, pymod_state *st);
/* a.wait_async(i, value, timeout=None): the awaitable. */
PyObject *ta_wait_async(ArrayObject *a, PyObject *args, PyObject *kwds);

/* ---- ArrayBuffer (arraybuffer.c) ------------------------------------- */

int arraybuffer_init(PyObject *mod, pymod_state *st);
/* Is @obj an ArrayBuffer? */
static inline int arraybuffer_check(pymod_state *st, PyObject *obj)
{
	return st->arraybuffer_type && Py_IS_TYPE(obj, st->arraybuffer_type);
}
/* A new ArrayBuffer of @n zero bytes; NULL + exception. */
PyObject *arraybuffer_new(pymod_state *st, uint64_t n);
/* A new ArrayBuffer holding a copy of @n bytes at @p. */
PyObject *arraybuffer_from_bytes(pymod_state *st, const void *p, size_t n);
/* A new ArrayBuffer that owns region @r (the reference is stolen). */
PyObject *arraybuffer_from_region(pymod_state *st, struct pyshm_region *r);
/* Its memory (NULL when detached) and size (0 when detached). */
char *arraybuffer_data(PyObject *ab, Py_ssize_t *size);
int arraybuffer_detached(PyObject *ab);
/* The region its memory lies in, or NULL (small buffers live on the heap
 * and travel inside the message). Borrowed. */
struct pyshm_region *arraybuffer_region(PyObject *ab);
/* A typed array exports the buffer's memory too (transfer refuses). */
void arraybuffer_export(PyObject *ab, int delta);
/* New exports are refused while a transfer is under way: 0, or -1 +
 * BufferError. */
int arraybuffer_pin_check(PyObject *ab);

/*
 * The transfer of ArrayBuffers (clone_buffer.c calls these): check that
 * @ab can go (not detached: DataCloneError; no buffer view alive:
 * BufferError) and keep new views off until arraybuffer_unpin() or
 * arraybuffer_detach(). 0, or -1 + exception.
 */
int arraybuffer_pin(pymod_state *st, PyObject *ab);
void arraybuffer_unpin(PyObject *ab);
/* Sent: the memory goes with the message; byte_length reads 0. */
void arraybuffer_detach(PyObject *ab);

#endif /* PYSHM_PYMOD_TYPED_ARRAY_H */
