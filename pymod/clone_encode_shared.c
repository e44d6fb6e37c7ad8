// SPDX-License-Identifier: MIT
/*
 * The structured-clone encoder's values that are shared or moved, not
 * copied: SharedArrayBuffers and typed arrays over them, payloads of
 * registered extension types, MessagePorts of the transfer list; and the
 * message's close, which sends their regions and exports the ports only
 * once the whole body has encoded.
 */
#include "clone_encode.h"

#include <pyshm/capi.h>

#include "clone_buffer.h"
#include "port.h"
#include "typed_array.h"

/* ---- shared memory, ports, payloads ---------------------------------------- */

/* The region table index of @r, adding it (held by @owner) if new. */
long pending_add(Encoder *e, PyObject *owner, struct pyshm_region *r,
			unsigned int role)
{
	struct pending *p;
	uint32_t i;

	for (i = 0; i < e->npend; i++)
		if (e->pend[i].r == r)
			return e->pend[i].role == role ? (long)i : -1;
	if (e->npend == e->cappend) {
		uint32_t cap = e->cappend ? 2 * e->cappend : 4;

		p = PyMem_Realloc(e->pend, cap * sizeof(*p));
		if (!p) {
			enc_nomem();
			return -1;
		}
		e->pend = p;
		e->cappend = cap;
	}
	p = &e->pend[e->npend];
	p->owner = Py_NewRef(owner);
	p->r = r;
	p->role = role;
	return e->npend++;
}

static int no_transfer(Encoder *e, PyObject *obj)
{
	return enc_bad(e, obj, "shared memory needs post_message() or structured_clone(), "
			       "not _encode()");
}

int enc_sab(Encoder *e, PyObject *obj, int memo)
{
	long idx;

	if (!e->env->xfer)
		return no_transfer(e, obj);
	idx = pending_add(e, obj, sab_region(e->st, obj), PYSHM_CLONE_ROLE_SAB);
	if (idx < 0)
		return PyErr_Occurred() ? -1 : enc_bad(e, obj, "region is also a payload");
	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_SAB | M(memo), (uint64_t)idx) < 0)
		return enc_nomem();
	return memo ? memo_put(e, obj) : 0;
}

/* Copied, or moved when in the transfer list (clone_buffer.c). */
int enc_arraybuffer(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_region *r;
	long idx = -1;

	if (arraybuffer_detached(obj))
		return enc_bad(e, obj, "it is detached (transferred)");
	if (clone_transfer_moves(e->moved, obj) && (r = arraybuffer_region(obj))) {
		if (!e->env->xfer)
			return no_transfer(e, obj);
		idx = pending_add(e, obj, r, PYSHM_CLONE_ROLE_ARRAYBUFFER);
		if (idx < 0)
			return PyErr_Occurred() ? -1 : enc_bad(e, obj, "region is also shared");
	}
	if (clone_put_arraybuffer(&e->w, obj, M(memo), idx) < 0)
		return enc_nomem();
	return memo ? memo_put(e, obj) : 0;
}

int enc_typed_array(Encoder *e, PyObject *obj, int memo)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t off, len;
	PyObject *sab;
	int wire, ret;

	typed_array_info(e->st, obj, &wire, &sab, &off, &len);
	if (pyshm_clone_reserve(w, 22) < 0)
		return enc_nomem();
	pyshm_clone_raw_tag(w, PYSHM_CLONE_TYPED_ARRAY | M(memo));
	pyshm_clone_raw_u8(w, (uint8_t)wire);
	pyshm_clone_raw_varint(w, (uint64_t)off);
	pyshm_clone_raw_varint(w, pyshm_clone_zigzag(len));
	Py_INCREF(sab);
	ret = enc_value(e, sab);
	Py_DECREF(sab);
	if (ret < 0) {
		path_text(e, ".buffer");
		return -1;
	}
	return memo ? memo_put(e, obj) : 0;
}

int enc_port(Encoder *e, PyObject *obj)
{
	Py_ssize_t i, n = e->ports ? PyList_GET_SIZE(e->ports) : 0;

	for (i = 0; i < n; i++)
		if (PyList_GET_ITEM(e->ports, i) == obj)
			return pyshm_clone_put_head(&e->w, PYSHM_CLONE_PORT, (uint64_t)i) < 0 ?
				enc_nomem() : 0;
	return enc_bad(e, obj, "a MessagePort must be listed in transfer");
}

int enc_shared(Encoder *e, PyObject *obj, const struct pyshm_clone_ops *ops, int memo)
{
	struct pyshm_payload *p;
	PyObject *tp = (PyObject *)Py_TYPE(obj);
	long idx;
	int ret;

	if (!e->env->xfer)
		return no_transfer(e, obj);
	p = ops->get_payload(obj);
	if (!p)
		return enc_bad(e, obj, "no payload");
	idx = pending_add(e, obj, capi_payload_region(p), PYSHM_CLONE_ROLE_PAYLOAD);
	if (idx < 0)
		return PyErr_Occurred() ? -1 : enc_bad(e, obj, "region is also a buffer");
	if (pyshm_clone_put_head(&e->w, PYSHM_CLONE_SHARED | M(memo), (uint64_t)idx) < 0)
		return enc_nomem();
	Py_INCREF(tp);
	ret = enc_value(e, tp);
	Py_DECREF(tp);
	if (ret < 0) {
		path_text(e, ".__class__");
		return -1;
	}
	return memo ? memo_put(e, obj) : 0;
}


/* The transfer list: MessagePorts and ArrayBuffers, each once, each
 * transferable. */
int enc_check_transfer(Encoder *e, PyObject *transfer)
{
	pymod_state *st = e->st;
	Py_ssize_t i, j, n;
	PyObject *list, *item;
	struct port *p;

	if (!transfer || transfer == Py_None)
		return 0;
	list = PySequence_List(transfer);
	if (!list) {
		PyErr_Format(st->DataCloneError, "transfer must be an iterable of MessagePorts "
			     "and ArrayBuffers, not '%s'", Py_TYPE(transfer)->tp_name);
		return -1;
	}
	n = PyList_GET_SIZE(list);
	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(list, i);
		if (arraybuffer_check(st, item))	/* clone_transfer_buffers() */
			continue;
		if (!st->port_type || !PyObject_TypeCheck(item, st->port_type)) {
			PyErr_Format(st->DataCloneError, "cannot transfer '%s' object "
				     "(transfer[%zd]): only MessagePorts and ArrayBuffers can be "
				     "transferred", Py_TYPE(item)->tp_name, i);
			goto err;
		}
		for (j = 0; j < i; j++) {
			if (PyList_GET_ITEM(list, j) == item) {
				PyErr_Format(st->DataCloneError, "MessagePort listed twice in "
					     "transfer (transfer[%zd] and transfer[%zd])", j, i);
				goto err;
			}
		}
		/* What port_export() would refuse, refused before anything is
		 * sent (port_transfer.c's rules). */
		p = port_from_object(st, item);
		if (!p || atomic_load(&p->detached)) {
			PyErr_Format(st->DataCloneError, "MessagePort is detached (already "
				     "transferred or closed): transfer[%zd]", i);
			goto err;
		}
		if (e->env->port_ctx == p) {
			PyErr_SetString(st->DataCloneError,
					"a MessagePort cannot be transferred through itself");
			goto err;
		}
		if (p->link) {
			PyErr_SetString(st->DataCloneError,
					"a worker's own port cannot be transferred");
			goto err;
		}
	}
	if (clone_transfer_buffers(st, &list, &e->moved) < 0)
		goto err;
	n = PyList_GET_SIZE(list);
	if (n && !e->env->port_export) {
		PyErr_SetString(st->DataCloneError, "MessagePorts cannot be transferred here");
		goto err;
	}
	if (n)
		e->ports = list;
	else
		Py_DECREF(list);
	return 0;
err:
	Py_DECREF(list);
	return -1;
}

/* Send the regions, export the ports, close the message. On failure,
 * what was sent comes back. */
int enc_commit(Encoder *e, struct clone_msg *out)
{
	struct pyshm_clone_writer *w = &e->w;
	Py_ssize_t i, n = e->ports ? PyList_GET_SIZE(e->ports) : 0;
	uint32_t sent;
	int ret;

	if (pyshm_clone_end_body(w) < 0 ||
	    pyshm_clone_reserve(w, (size_t)e->npend * PYSHM_CLONE_ENTRY_SIZE + 4 * (size_t)n) < 0)
		return enc_nomem();
	for (sent = 0; sent < e->npend; sent++) {
		struct pending *p = &e->pend[sent];

		if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_hold(p->r);
		if (clone_xfer_send(e->st, e->env, p->r, &p->ref) < 0) {
			if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
				capi_region_unhold(p->r);
			goto err_unsend;
		}
		/* Room was reserved above: this can't fail. */
		pyshm_clone_put_region(w, p->role, &p->ref);
	}
	for (i = 0; i < n; i++) {
		if (pyshm_clone_begin_attachment(w) < 0) {
			enc_nomem();
			goto err_unsend;
		}
		/* port_export() appends to a clone_msg: lend it the buffer. */
		out->buf = w->buf;
		out->len = w->len;
		out->cap = w->cap;
		ret = e->env->port_export(e->env, PyList_GET_ITEM(e->ports, i), out);
		w->buf = out->buf;
		w->len = out->len;
		w->cap = out->cap;
		out->buf = NULL;
		/* Known limit: when one export fails, the ports exported before
		 * it stay detached (the message is not sent; their channels
		 * end): a failure of the socket or of memory midway. */
		if (ret < 0 || pyshm_clone_end_attachment(w) < 0)
			goto err_unsend;
	}
	pyshm_clone_writer_finish(w);
	return 0;

err_unsend:
	while (sent--) {
		struct pending *p = &e->pend[sent];

		pyshm_xfer_drop(e->env->xfer, &p->ref);
		if (p->role == PYSHM_CLONE_ROLE_PAYLOAD)
			capi_region_unhold(p->r);
	}
	if (!PyErr_Occurred())
		enc_nomem();
	return -1;
}

/* Forget what the fast mode wrote and collected, to encode again. */
