/* SPDX-License-Identifier: MIT */
/*
 * pyshm_workers._core: the per-interpreter module state, the process-global
 * C state, and the functions the extension's files share.
 *
 * Every PyObject here belongs to one interpreter: each interpreter that
 * imports the module gets its own types, exceptions and cached objects.
 * What interpreters share is C only (regions, rings, payloads), held through
 * atomic reference counts.
 */
#ifndef PYSHM_PYMOD_STATE_H
#define PYSHM_PYMOD_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include <pyshm/pyshm.h>

struct clone_msg;

#if PY_VERSION_HEX >= 0x030C0000
#define PYMOD_HAVE_SUBINTERPRETERS 1
#else
#define PYMOD_HAVE_SUBINTERPRETERS 0
#endif

/* The typed array types (enum ta_kind in typed_array.h). */
#define PYMOD_TA_NKINDS 11

typedef struct {
	/* types */
	PyTypeObject *sab_type;
	PyTypeObject *arraybuffer_type;
	/* Int8Array ... Float64Array, by enum ta_kind (typed_array.h) */
	PyTypeObject *ta_types[PYMOD_TA_NKINDS];
	PyTypeObject *port_type;
	PyTypeObject *handle_type;
	/* the Python MessagePort subclass (adds arecv), once registered */
	PyObject *port_class;
	/* this interpreter's own worker (interpreter mode), else NULL */
	struct worker *self_worker;
	/* exceptions */
	PyObject *DataCloneError;
	PyObject *WorkerError;
	/* Atomics.wait() results */
	PyObject *str_ok;
	PyObject *str_not_equal;
	PyObject *str_timed_out;
	/* imported lazily by the clone code, see clone.c */
	PyObject *clone_cache;
	/* clone_numpy.c: the base of arrays received without a copy */
	PyTypeObject *region_memory_type;
	/* capi: type -> capsule of struct pyshm_clone_ops (registered types) */
	PyObject *capi_types;
	/* clone.c: the C datetime API of this interpreter's datetime module
	 * (a PyDateTime_CAPI *), NULL when it uses _pydatetime */
	void *clone_dt_capi;
	/* wait_async.c: the Python side of Atomics.wait_async()
	 * (pyshm_workers._wait_async.start), once registered */
	PyObject *wait_async_start;
	/* clone_buffer.c: mark_as_uncloneable(): id -> weakref or object */
	PyObject *uncloneable;
} pymod_state;

/*
 * Process-global C state, shared by every interpreter that loaded the
 * module. Guarded by lock; never holds PyObjects.
 */
struct pymod_globals {
	pthread_mutex_t lock;
	int module_count;	/* module instances alive, all interpreters */
	/* capi.c: destructors of registered payload types, by wire name */
	struct capi_dtor *capi_dtors;
	size_t capi_ndtors;
};

extern struct pymod_globals pymod_globals;

extern PyModuleDef pymod_def;
/* _probe(), for `python -m pyshm_workers doctor` (introspect.c). */
extern PyMethodDef introspect_methods[];

static inline pymod_state *get_state(PyObject *mod)
{
	return (pymod_state *)PyModule_GetState(mod);
}

pymod_state *get_state_by_type(PyTypeObject *tp);

static inline pymod_state *get_state_by_cls(PyTypeObject *cls)
{
	return (pymod_state *)PyType_GetModuleState(cls);
}

/* The module state of the current interpreter (imports the module). */
pymod_state *get_state_current(void);

/*
 * Map a libpyshm error (-errno) to a Python exception: -ETIMEDOUT gives
 * TimeoutError, -ENOMEM MemoryError, -EINVAL ValueError, else OSError.
 * Always returns NULL, for `return pymod_raise_from_errno(...)`.
 */
PyObject *pymod_raise_from_errno(pymod_state *st, int err, const char *what);

/* sab.c */
int sab_init_types(PyObject *mod, pymod_state *st);
/* A new SharedArrayBuffer over @r, stealing the reference. */
PyObject *sab_from_region(pymod_state *st, struct pyshm_region *r);
/* The region of a SharedArrayBuffer (borrowed), or NULL. */
struct pyshm_region *sab_region(pymod_state *st, PyObject *obj);
/* A buffer size argument (@name for messages): a non-negative int no
 * larger than a region may be; 0, or -1 + TypeError/ValueError. */
int sab_size_arg(PyObject *arg, const char *name, uint64_t *out);
/* @n bytes can be backed by memory (PYSHM_MAX_REGION_BYTES, else RAM +
 * swap): 0, or -1 + MemoryError. */
int sab_check_backed(const char *name, uint64_t n);
/* A region the backend refused, as the exception SharedArrayBuffer()
 * raises (MemoryError for limits). Returns NULL. */
PyObject *sab_region_refused(pymod_state *st, int err, const char *what);

/* typed_array.c */
int typed_arrays_init(PyObject *mod, pymod_state *st);
/*
 * Typed array accessors for the clone: the element type (wire code,
 * PYSHM_CLONE_TA_*), its buffer (a SharedArrayBuffer or an ArrayBuffer),
 * byte offset and length (-1: tracks the buffer). 1 when @obj is a typed
 * array, else 0.
 */
int typed_array_info(pymod_state *st, PyObject *obj, int *wire, PyObject **buffer,
		     Py_ssize_t *byte_offset, Py_ssize_t *length);
/* A typed array of wire type @wire over @buffer; NULL + exception. */
PyObject *typed_array_new(pymod_state *st, int wire, PyObject *buffer,
			  Py_ssize_t byte_offset, Py_ssize_t length);

/*
 * clone.c: the structured clone (Documentation/wire-format.rst).
 *
 * A clone environment says where a message goes: how its
 * SharedArrayBuffers travel (xfer) and how MessagePorts in its transfer
 * list are handed over (port hooks, provided by port_transfer.c; NULL
 * hooks make a port in the transfer list a DataCloneError).
 */
struct port;

struct clone_env {
	struct pyshm_xfer *xfer;
	/* A sender's: the transfer's socket is full: wait for room (without
	 * the GIL, until the send's deadline) and return 0 to try again, or
	 * -1 + exception. NULL: a full socket is an error. */
	int (*wait_room)(struct clone_env *env);
	void *wait_ctx;
	/* Set by a send that found the receiver gone (-EPIPE): the message is
	 * dropped as for a closed port. */
	bool peer_gone;
	/* The message may leave large blobs by reference (clone_msg.ext):
	 * for sends, which gather it; not for what decodes from the buffer. */
	bool ext_ok;
	/*
	 * The receiver's: keep the memory the message being decoded lies in
	 * past its record, so that an object can be built over its bytes
	 * without a copy. A new reference on that region (its bytes stay put
	 * until pyshm_ring_kept_put() drops it), or NULL (no exception) when
	 * the message is not in a region of its own: then copy. NULL hook:
	 * never.
	 */
	struct pyshm_region *(*keep)(struct clone_env *env);
	void *keep_ctx;
	/* Where the message starts past a 64-byte boundary when it lands in a
	 * region of its own (0..63): the encoder pads large arrays' data to
	 * start on one there, for the receiver to build them over it. */
	unsigned int align_base;
	/* Ports sent to another process by this message: their handles stay
	 * here until it is sent (then released) or dropped (then closed, so
	 * their peers see the end). PyMem_Raw array. */
	struct port **exported;
	size_t nexported, capexported;
	/* Append what the receiver needs to rebuild @port, and detach it.
	 * Called only once the whole message has encoded. 0 or -1 + exc. */
	int (*port_export)(struct clone_env *env, PyObject *port,
			   struct clone_msg *out);
	/* Rebuild a port from the bytes port_export() appended; advances
	 * *pos past them. New reference or NULL + exc. */
	PyObject *(*port_import)(struct clone_env *env, const uint8_t *buf,
				 size_t len, size_t *pos);
	/* Release a port of a message that is discarded unread. */
	void (*port_drop)(struct clone_env *env, const uint8_t *buf, size_t len,
			  size_t *pos);
	void *port_ctx;
};

/*
 * An encoded message; buf is PyMem_Raw-allocated. Large blobs may stay
 * where they are (env->ext_ok): the message is then buf with ext spliced
 * in (clone_msg_iov()), and keep holds what keeps their bytes alive and
 * unchanged until the message is copied out.
 */
struct clone_msg {
	uint8_t *buf;
	size_t len;
	size_t cap;
	struct pyshm_clone_ext *ext;	/* PyMem_Raw array, in order */
	uint32_t next;
	size_t extlen;
	PyObject *keep;			/* a list, or NULL */
};

/* Free the message; with keep, the GIL of its interpreter must be held. */
void clone_msg_free(struct clone_msg *m);
/* The whole message as a gather list: room for 2 * m->next + 1 entries.
 * Returns the number of entries. */
int clone_msg_iov(const struct clone_msg *m, struct iovec *iov);
/* pyshm_xfer_send() for the encoder: waits through env->wait_room on a
 * full socket, notes a receiver gone. 0, or -1 + exception. */
int clone_xfer_send(pymod_state *st, struct clone_env *env, struct pyshm_region *r,
		    struct pyshm_region_ref *ref);
/* Append @n bytes (port_export()'s way to write). 0, or -1 + MemoryError. */
int clone_msg_append(struct clone_msg *m, const void *p, size_t n);
/* Encode @obj; on failure (-1, exception set) nothing was sent: no region
 * reference is left in flight and no port was detached. */
int clone_encode(pymod_state *st, PyObject *obj, PyObject *transfer,
		 struct clone_env *env, struct clone_msg *out);
/* Decode a message (treated as hostile input). New reference, or NULL with
 * DataCloneError for malformed bytes. Consumes what the message holds. */
PyObject *clone_decode(pymod_state *st, const void *buf, size_t len,
		       struct clone_env *env);
/* Release what an unread message holds (region references, ports). */
void clone_discard(const void *buf, size_t len, struct clone_env *env);
/* The same for a message not sent after all (ext included). */
void clone_discard_msg(const struct clone_msg *m, struct clone_env *env);
/* The environment of structured_clone(): same process, same interpreter.
 * NULL (no exception) only when out of memory. */
struct clone_env *clone_local_env(void);
/* Module exec: the clone's cache, its module functions and the _C_API
 * capsule (capi.c). 0 or -1 + exception. */
int clone_init(PyObject *mod, pymod_state *st);
int capi_init(PyObject *mod, pymod_state *st);

#endif /* PYSHM_PYMOD_STATE_H */
