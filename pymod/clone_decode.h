/* SPDX-License-Identifier: MIT */
/*
 * Private to the structured-clone decoder, whose files are split by type
 * family as the encoder's: clone_decode.c (the engine: memo, scalars,
 * containers, shared memory, dispatch, the message), clone_decode_std.c
 * (datetime, fraction, memoryview, array), clone_decode_reduce.c
 * (globals, the pickle protocol, exceptions) and clone_numpy.c (numpy
 * arrays).
 */
#ifndef PYSHM_PYMOD_CLONE_DECODE_H
#define PYSHM_PYMOD_CLONE_DECODE_H

#include "clone.h"

#define MAX_DEPTH	PYSHM_CLONE_MAX_DEPTH
/* Values decoded between two runs of the signal handlers. */
#define SIGNAL_EVERY	4096
/* Restricted decoding: the largest BIGINT, and DECIMAL string. */
#define RESTRICTED_NUMBER_BYTES	4096
#define XSTR(x)		STR(x)
#define STR(x)		#x

typedef struct {
	pymod_state *st;
	struct clone_env *env;
	const uint8_t *base;		/* the message, for error offsets */
	struct pyshm_clone_reader r;
	struct pyshm_clone_walk wk;
	PyObject **memo;		/* wk.max_objects slots */
	struct pyshm_region **regions;	/* claimed from the region table */
	uint8_t *roles;
	uint32_t nregions;
	PyObject **ports;		/* imported from the attachments */
	uint32_t nports;
	int restricted;
	struct clone_budget budget;	/* hashing steps left */
	unsigned int tick;		/* values until the signal handlers */
	int interrupted;		/* a signal handler raised */
} Decoder;

/* ---- clone_decode.c ------------------------------------------------------ */

/* Any value. New reference, or NULL + exception. */
PyObject *dec_value(Decoder *d);
/* DataCloneError "malformed clone message at byte N: @what". NULL. */
PyObject *dec_malformed(Decoder *d, const char *what);
/* DataCloneError "restricted decoding refuses @what". NULL. */
PyObject *dec_restricted(Decoder *d, const char *what);
/* Run the signal handlers (dec_tick()'s slow path). 0, or -1. */
int dec_signals(Decoder *d);
/* Fill @it's memo slot with @obj (if it has one); returns @obj, or NULL
 * (and releases @obj) for a slot that isn't free. */
PyObject *dec_memo(Decoder *d, const struct pyshm_clone_item *it, PyObject *obj);
/*
 * The memo point of a value whose slot comes after its children: 1 and a
 * new reference in *@alias if the value is an alias of an earlier one, 0
 * otherwise (store it with dec_memo()), -1 with an exception.
 */
int dec_finish(Decoder *d, struct pyshm_clone_item *it, PyObject **alias);
/* A child that must be of type @a or @b. */
PyObject *dec_child(Decoder *d, unsigned int a, unsigned int b);
/* Is the next byte END? Then consume it. */
int dec_at_end(Decoder *d);
/* A bytes (or bytearray, @mutable) of the @n bytes at @p; large ones in
 * memory faulted in first. */
PyObject *dec_new_bytes(const uint8_t *p, size_t n, int mutable);

/* Count @n values (a container's items at its head, so that nested small
 * containers add up); every SIGNAL_EVERY, run the signal handlers. */
static inline int dec_tick(Decoder *d, uint64_t n)
{
	if (__builtin_expect(n < d->tick, 1)) {
		d->tick -= (unsigned int)n;
		return 0;
	}
	return dec_signals(d);
}

/* In a long container's loop, every SIGNAL_EVERY items. */
#define DEC_TICK_ITEM(d, i) \
	(__builtin_expect(((i) & (SIGNAL_EVERY - 1)) == SIGNAL_EVERY - 1, 0) && \
	 dec_signals(d) < 0)

/* Charge adding @key to a container (clone_budget.c). */
static inline int dec_key(Decoder *d, struct clone_keys *keys, PyObject *key)
{
	return clone_budget_key(d->st, &d->budget, keys, key);
}

/* ---- clone_decode_std.c -------------------------------------------------- */

PyObject *dec_datetime(Decoder *d, struct pyshm_clone_item *it);
PyObject *dec_delta(Decoder *d, const struct pyshm_clone_item *it);
PyObject *dec_timezone(Decoder *d, const struct pyshm_clone_item *it);
PyObject *dec_fraction(Decoder *d, struct pyshm_clone_item *it);
PyObject *dec_memoryview(Decoder *d, const struct pyshm_clone_item *it);
PyObject *dec_array(Decoder *d, const struct pyshm_clone_item *it);

/* ---- clone_decode_reduce.c ----------------------------------------------- */

PyObject *dec_global(Decoder *d, const struct pyshm_clone_item *it);
PyObject *dec_reduce(Decoder *d, struct pyshm_clone_item *it);
PyObject *dec_exception(Decoder *d, struct pyshm_clone_item *it);

/* ---- clone_numpy.c -------------------------------------------------------- */

PyObject *dec_ndarray(Decoder *d, struct pyshm_clone_item *it);
PyObject *dec_ndarray_objects(Decoder *d, struct pyshm_clone_item *it);
PyObject *dec_ndarray_view(Decoder *d, struct pyshm_clone_item *it);
/* An object that lends the @n bytes at @p, in the region the message lies
 * in, kept for it (a _RegionMemory: writable, given back when it dies); or
 * NULL, no exception, when they are small or not in a region of their own
 * (then copy). */
PyObject *dec_region_memory(Decoder *d, const void *p, size_t n);
/* Copy @n bytes into memory just allocated (large ones faulted in first,
 * without the GIL). */
void dec_copy_fresh(void *dst, const void *src, size_t n);

#endif /* PYSHM_PYMOD_CLONE_DECODE_H */
