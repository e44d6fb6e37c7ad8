/* SPDX-License-Identifier: MIT */
/*
 * clone_buffer.c: what the structured clone's encoder and decoder call for
 * ArrayBuffers (copied, or moved by the transfer list) and for objects
 * marked with mark_as_uncloneable().
 */
#ifndef PYSHM_PYMOD_CLONE_BUFFER_H
#define PYSHM_PYMOD_CLONE_BUFFER_H

#include "state.h"

/*
 * The transfer list @*list (a list of our own): its ArrayBuffers must each
 * be there once (else DataCloneError), not detached (DataCloneError), with
 * no buffer view alive (BufferError). They go to a new list *@moved (left
 * NULL when there are none) and @*list is replaced by a list of the rest.
 * 0, or -1 + exception.
 */
int clone_transfer_buffers(pymod_state *st, PyObject **list, PyObject **moved);
/* Is @ab in @moved (NULL: none)? */
int clone_transfer_moves(PyObject *moved, PyObject *ab);
/* The message encoded: no new buffer view of the moved buffers from now
 * on (BufferError if one appeared meanwhile). 0, or -1 + exception. */
int clone_transfer_pin(pymod_state *st, PyObject *moved);
/* After the send: detach the moved buffers (@sent), or let them be. */
void clone_transfer_finish(PyObject *moved, int sent);

/* Write ArrayBuffer @ab (not detached): moved as region table entry
 * @region (>= 0), else a copy of its bytes. 0, or -1 (out of memory). */
int clone_put_arraybuffer(struct pyshm_clone_writer *w, PyObject *ab, uint8_t flags,
			  long region);
/* The ArrayBuffer of an ARRAYBUFFER item: over region @r (its reference
 * is taken) when moved, else a copy. */
PyObject *clone_get_arraybuffer(pymod_state *st, const struct pyshm_clone_item *it,
				struct pyshm_region *r);

/* Was @obj marked with mark_as_uncloneable() in this interpreter? 1, 0,
 * or -1 + exception. Call only when st->uncloneable is set. */
int clone_is_uncloneable(pymod_state *st, PyObject *obj);
/* mark_as_uncloneable() */
extern PyMethodDef clone_buffer_methods[];

#endif /* PYSHM_PYMOD_CLONE_BUFFER_H */
