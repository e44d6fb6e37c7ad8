/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * The C API of pyshm_workers for extension types: a two-layer clone.
 *
 * An extension type that opts in keeps its data in a *payload*: one block
 * of shared memory (a libpyshm region) with an atomic count of its holders,
 * in every interpreter and process. Each interpreter gets its own PyObject
 * of the type over the same payload; cloning an object (post_message(),
 * structured_clone()) never copies the payload: the message carries the
 * region, and the receiver builds a new PyObject of *its* interpreter's
 * type over it. The type's destroy() runs exactly once, in whichever
 * interpreter or process lets go last.
 *
 * Usage, in the extension's module exec function (once per interpreter,
 * the types are heap types):
 *
 *	const struct pyshm_capi *capi = pyshm_capi_import();
 *	if (!capi || capi->register_type(type, &my_clone_ops) < 0)
 *		return -1;
 *
 * then create payloads with capi->payload_new(type, size, &p), keep @p in
 * the object, release it in tp_dealloc, and return it from get_payload().
 *
 * On the wire a payload is a PYSHM_CLONE_SHARED value: the type by module
 * and qualified name (it must be importable, like a pickled class) and a
 * region table entry of role PYSHM_CLONE_ROLE_PAYLOAD. The receiver imports
 * the module, whose exec registers the type there.
 *
 * Holds: every payload handle holds one count; a message in flight holds
 * one. A handle inherited through fork() holds none in the child (the
 * parent's count stays the parent's): pass objects to a child process in a
 * message instead. A process that dies holding a count never lets go of
 * it: the memory is freed with the region, but destroy() does not run.
 *
 * Every function pointer of struct pyshm_capi needs the GIL, except
 * payload_data(), payload_size(), payload_id() and payload_refs().
 * Functions returning int return 0, or -1 with a Python exception set.
 */
#ifndef PYSHM_CAPI_H
#define PYSHM_CAPI_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PYSHM_CAPI_NAME		"pyshm_workers._core._C_API"
#define PYSHM_CAPI_VERSION	1
/* Longest "module.qualname" of a registered type. */
#define PYSHM_CAPI_NAME_MAX	103

/* A process-local handle on a shared payload; holds one count. */
struct pyshm_payload;

/* What a type registers (static storage: it is used until exit). */
struct pyshm_clone_ops {
	uint32_t version;	/* PYSHM_CAPI_VERSION */
	uint32_t flags;		/* zero */
	/* The payload @obj stands for (borrowed from @obj). */
	struct pyshm_payload *(*get_payload)(PyObject *obj);
	/*
	 * A new object of @type over @p. Takes over the hold @p carries: the
	 * object releases it when it dies; on failure (NULL + exception) the
	 * function releases it.
	 */
	PyObject *(*from_payload)(PyTypeObject *type, struct pyshm_payload *p);
	/*
	 * The last holder let go: release what the payload refers to. Runs
	 * exactly once, in any interpreter or process, maybe without the GIL:
	 * C only, no Python. NULL if there is nothing to do.
	 */
	void (*destroy)(void *data, size_t size);
};

struct pyshm_capi {
	uint32_t version;	/* PYSHM_CAPI_VERSION */
	uint32_t size;		/* sizeof(struct pyshm_capi) */
	/*
	 * Register @type (a heap type of the calling interpreter) as
	 * clonable through @ops. Its "__module__.__qualname__" must fit
	 * PYSHM_CAPI_NAME_MAX and name the same type in every interpreter.
	 */
	int (*register_type)(PyTypeObject *type, const struct pyshm_clone_ops *ops);
	/* A new zero-filled payload of @size bytes for registered @type. */
	int (*payload_new)(PyTypeObject *type, size_t size, struct pyshm_payload **out);
	/* Another handle (one more count) on the same payload. */
	struct pyshm_payload *(*payload_dup)(struct pyshm_payload *p);
	/* Drop a handle; the last count in any process runs destroy().
	 * NULL is ignored. */
	void (*payload_release)(struct pyshm_payload *p);
	void *(*payload_data)(const struct pyshm_payload *p);
	size_t (*payload_size)(const struct pyshm_payload *p);
	/* Equal for every handle on one payload, in any process. */
	uint64_t (*payload_id)(const struct pyshm_payload *p);
	/* Holders right now (handles in all processes + messages). */
	uint32_t (*payload_refs)(const struct pyshm_payload *p);
};

/**
 * pyshm_capi_import() - the API of the pyshm_workers imported into the
 *	calling interpreter
 *
 * Return: the table, or NULL with an exception (ImportError, or
 * RuntimeError for a pyshm_workers older than this header).
 */
static inline const struct pyshm_capi *pyshm_capi_import(void)
{
	const struct pyshm_capi *capi = (const struct pyshm_capi *)
		PyCapsule_Import(PYSHM_CAPI_NAME, 0);

	if (capi && (capi->version < PYSHM_CAPI_VERSION ||
		     capi->size < sizeof(struct pyshm_capi))) {
		PyErr_SetString(PyExc_RuntimeError,
				"pyshm_workers is older than the pyshm/capi.h "
				"this extension was built with");
		return NULL;
	}
	return capi;
}

#ifdef __cplusplus
}
#endif
#endif /* PYSHM_CAPI_H */
