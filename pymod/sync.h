/* SPDX-License-Identifier: MIT */
/*
 * Shared synchronisation objects: pw.Lock, RLock, Semaphore,
 * BoundedSemaphore, Event (sync_lock.c, sync_sem.c) and the waiter queue
 * under pw.Condition and pw.Barrier (sync_cond.c, _sync.py). What those
 * files share, from sync.c: the objects' common layout, process identity
 * and liveness, and the futex sleep every blocking call goes through.
 *
 * Each object is a shared payload of the C API (include/pyshm/capi.h): a
 * small region whose data starts with struct sync_hdr. Posting an object
 * shares the region; the receiver gets a new PyObject over it. Waits are
 * futexes in the region (shared, not private: other processes map it),
 * taken without the GIL.
 */
#ifndef PYSHM_PYMOD_SYNC_H
#define PYSHM_PYMOD_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <pyshm/capi.h>

#include "worker.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lock word's futex is its low half: little-endian only"
#endif

#define SYNC_MAGIC	0x434e5953u	/* "SYNC" */

enum sync_kind {
	SYNC_LOCK = 1,
	SYNC_RLOCK,
	SYNC_SEMAPHORE,
	SYNC_EVENT,
	SYNC_COND,
};

/* At the start of every payload. */
struct sync_hdr {
	uint32_t magic;
	uint32_t kind;
};

/* Every sync type's object: a handle on its payload. */
typedef struct {
	PyObject_HEAD
	struct pyshm_payload *p;
	void *data;			/* the payload's data, a struct sync_hdr */
	PyObject *weakrefs;
} SyncObject;

/* The C API table of pyshm_workers._core (static in capi.c: one for all
 * interpreters). */
extern const struct pyshm_capi *sync_capi;

/*
 * Process identity: (start << 32) | pid, start being the low 32 bits of the
 * process's start time (field 22 of /proc/<pid>/stat, clock ticks since
 * boot), so that a pid used again by a new process names another identity.
 * Never 0.
 */
#define SYNC_PID_MASK	0x3fffffffu
uint64_t sync_self(void);
/* This thread's kernel thread id (cached). */
uint32_t sync_tid(void);
/* False once the process @ident names has ended (exited, killed, a zombie,
 * or its pid taken by another process); true while it runs or when that
 * cannot be told (no /proc). A few system calls: called in slices only. */
bool sync_alive(uint64_t ident);
/* True when @ident's pid names no process at all (one kill(pid, 0)): dead
 * for sure; false tells nothing. */
bool sync_gone(uint64_t ident);

/* A blocking call's wait: its deadline and what may end it. */
struct sync_wait {
	double deadline;		/* mono_now() seconds; < 0: none */
	atomic_uint *stop;		/* terminate() of this worker interpreter */
	pymod_state *st;
};

/*
 * Set up @w for @self's type: @secs < 0 waits without limit. @terminable:
 * terminate() of a worker interpreter ends the wait (SystemExit); false for
 * the lock taken back after a Condition wait, which must be held again
 * before the exception goes on.
 */
int sync_wait_init(struct sync_wait *w, PyObject *self, double secs, bool terminable);
/*
 * One sleep of a blocking call, with the GIL held on entry and on return
 * (released while asleep): while the futex word @addr holds @val, until a
 * wake-up, the deadline or @until (mono seconds, < 0: none). Returns 0
 * after a wake-up or @until (look again), 1 once past the deadline, -1 with
 * an exception (a signal handler's, or SystemExit for terminate()).
 */
int sync_sleep(struct sync_wait *w, _Atomic uint32_t *addr, uint32_t val, double until);
/* Wake up to @n sleepers of @addr (INT_MAX: all). */
void sync_wake(_Atomic uint32_t *addr, int n);
/* True once @w's deadline has passed. */
bool sync_expired(const struct sync_wait *w);

/* Liveness checks of a lock's holder: first after SYNC_SLICE_MIN seconds
 * of waiting, then at doubling intervals up to SYNC_SLICE_MAX. */
#define SYNC_SLICE_MIN	0.01
#define SYNC_SLICE_MAX	0.25
/* Condition and Barrier waiters look for dead waiters this often. */
#define SYNC_REAP_SLICE	0.5

/*
 * Arguments. acquire(blocking=True, timeout=-1) of Lock and RLock as
 * _thread parses them: *@secs is -1 (no limit), 0 (do not wait) or the
 * timeout. ValueError and OverflowError as threading raises them.
 */
int sync_lock_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		   double *secs);
/* A timeout=None argument of Event.wait(), Semaphore.acquire() and
 * Condition.wait(): None gives -1, a negative number 0. */
int sync_timeout_arg(PyObject *obj, double *secs);
/* Parse keyword-or-positional arguments of a METH_FASTCALL|METH_KEYWORDS
 * method: @names (NULL-terminated) into @out (left alone when not given). */
int sync_parse(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	       PyObject *kwnames, const char *const *names, PyObject **out);

/* A new object of @tp with a fresh payload of @size bytes and @kind. */
PyObject *sync_new(PyTypeObject *tp, size_t size, enum sync_kind kind);
/* from_payload() for the types of @kind (capi.h). */
PyObject *sync_from_payload(PyTypeObject *tp, struct pyshm_payload *p,
			    size_t size, enum sync_kind kind);
/* A new payload for @o (threading's _at_fork_reinit(): a fresh object). */
int sync_renew(SyncObject *o, size_t size, enum sync_kind kind);
/* Register @tp (the first of the module's types in its MRO is the one
 * registered) with the clone. */
int sync_register(PyObject *mod, PyTypeObject *tp, const struct pyshm_clone_ops *ops);
/* The payload of @o (get_payload() of every sync type). */
struct pyshm_payload *sync_get_payload(PyObject *o);
/* Shared slots of the types: dealloc, weakref offset, __reduce__. */
void sync_dealloc(PyObject *o);
PyObject *sync_reduce(PyObject *o, PyObject *unused);
extern PyMemberDef sync_members[];

/* Raise pw.OwnerDiedError for a lock of @self whose holder @dead died. */
void sync_raise_owner_died(PyObject *self, uint64_t dead);

/* The files' type setup, from sync_init(). */
int sync_lock_init(PyObject *mod);
int sync_sem_init(PyObject *mod);
int sync_cond_init(PyObject *mod);

/* Module exec: pw.OwnerDiedError and the types above (module.c). */
int sync_init(PyObject *mod);

#endif /* PYSHM_PYMOD_SYNC_H */
