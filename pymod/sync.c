// SPDX-License-Identifier: MIT
/*
 * What the shared synchronisation objects have in common: process identity
 * and liveness (for robust locks), the futex sleep of every blocking call
 * (without the GIL, ended by its deadline, a signal handler that raises, or
 * terminate() of a worker interpreter), threading's argument rules, the
 * objects' payloads and their registration with the clone, and
 * pw.OwnerDiedError.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sync.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* threading.TIMEOUT_MAX (PY_TIMEOUT_MAX microseconds): larger timeouts
 * raise OverflowError, as in _thread. */
#define SYNC_TIMEOUT_MAX	9223372036.854775

const struct pyshm_capi *sync_capi;

/* ---- process identity and liveness ---------------------------------------- */

/*
 * This process's identity, read once and again in the child of a fork()
 * (process-global C state of this file: a value, no lock). proc_ok says
 * /proc could be read; without it liveness rests on kill(pid, 0) alone.
 */
static _Atomic uint64_t self_ident;
static bool proc_ok;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static __thread uint32_t tls_tid;

/* State and start time (fields 3 and 22) of /proc/<pid>/stat; -errno. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[32], buf[1024], *p;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	i = errno;
	close(fd);
	if (n < 0)
		return -i;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: the last ')'
	 * ends it. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	*state = *p;
	for (i = 3; i < 22; i++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

static void self_read(void)
{
	uint64_t start = 0;
	char state;

	proc_ok = proc_stat(getpid(), &state, &start) == 0;
	atomic_store(&self_ident, ((uint64_t)(uint32_t)start << 32) |
		     ((uint32_t)getpid() & SYNC_PID_MASK));
	tls_tid = 0;
}

static void self_init(void)
{
	self_read();
	/* The child runs this in the thread that forked: the only one. */
	pthread_atfork(NULL, NULL, self_read);
}

uint64_t sync_self(void)
{
	uint64_t id = atomic_load_explicit(&self_ident, memory_order_relaxed);

	if (id)
		return id;
	pthread_once(&self_once, self_init);
	return atomic_load(&self_ident);
}

uint32_t sync_tid(void)
{
	if (!tls_tid)
		tls_tid = (uint32_t)syscall(SYS_gettid);
	return tls_tid;
}

bool sync_alive(uint64_t ident)
{
	pid_t pid = (pid_t)(ident & SYNC_PID_MASK);
	uint64_t me = sync_self(), start;
	char state;
	int ret;

	/* An identity with our pid is ours, or of a process gone before us. */
	if ((uint32_t)pid == (uint32_t)(me & SYNC_PID_MASK))
		return ident == me;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	if (!proc_ok)
		return true;
	ret = proc_stat(pid, &state, &start);
	if (ret == -ENOENT || ret == -ESRCH) {
		/* Gone meanwhile, or hidden from us (hidepid): ask again. */
		return !(kill(pid, 0) < 0 && errno == ESRCH);
	}
	if (ret < 0)
		return true;
	/* A zombie holds its pid but will never release anything. */
	if (state == 'Z' || state == 'X' || state == 'x')
		return false;
	return (uint32_t)start == (uint32_t)(ident >> 32);
}

bool sync_gone(uint64_t ident)
{
	pid_t pid = (pid_t)(ident & SYNC_PID_MASK);
	uint64_t me = sync_self();

	if ((uint32_t)pid == (uint32_t)(me & SYNC_PID_MASK))
		return ident != me;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* ---- sleeping -------------------------------------------------------------- */

static atomic_bool no_waitv;	/* futex_waitv() is missing (before 5.16) */

static void to_timespec(double t, struct timespec *ts)
{
	ts->tv_sec = (time_t)t;
	ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Sleep while *@addr == @val, until @end (absolute CLOCK_MONOTONIC seconds,
 * < 0: none) or *@stop != 0 (both words at once with futex_waitv()). The
 * GIL is not held. 0, or -1 with errno (EAGAIN, ETIMEDOUT, EINTR).
 */
static long futex_sleep(_Atomic uint32_t *addr, uint32_t val, double end, atomic_uint *stop)
{
	struct futex_waitv v[2];
	struct timespec ts, *tsp = NULL;
	long ret;

	if (stop && atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
		/* Look at the stop word every 50 ms instead. */
		double soon = mono_now() + 0.05;

		if (end < 0 || soon < end)
			end = soon;
		stop = NULL;
	}
	if (end >= 0) {
		to_timespec(end, &ts);
		tsp = &ts;
	}
	if (!stop)
		return syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, val, tsp, NULL,
			       FUTEX_BITSET_MATCH_ANY);
	v[0] = (struct futex_waitv){ .val = val, .uaddr = (uintptr_t)addr, .flags = FUTEX_32 };
	v[1] = (struct futex_waitv){ .val = 0, .uaddr = (uintptr_t)stop, .flags = FUTEX_32 };
	ret = syscall(SYS_futex_waitv, v, 2, 0, tsp, CLOCK_MONOTONIC);
	if (ret < 0 && errno == ENOSYS) {
		atomic_store_explicit(&no_waitv, true, memory_order_relaxed);
		return futex_sleep(addr, val, end, stop);
	}
	return ret < 0 ? -1 : 0;
}

void sync_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

int sync_wait_init(struct sync_wait *w, PyObject *self, double secs, bool terminable)
{
	w->st = get_state_by_type(Py_TYPE(self));
	if (!w->st)
		return -1;
	w->stop = terminable && w->st->self_worker ? &w->st->self_worker->terminate : NULL;
	w->deadline = secs < 0 ? -1 : mono_now() + secs;
	return 0;
}

bool sync_expired(const struct sync_wait *w)
{
	return w->deadline >= 0 && mono_now() >= w->deadline;
}

int sync_sleep(struct sync_wait *w, _Atomic uint32_t *addr, uint32_t val, double until)
{
	double end = until;
	long ret;
	int err;

	if (w->deadline >= 0 && (end < 0 || w->deadline < end))
		end = w->deadline;
	if (w->stop && atomic_load(w->stop))
		goto terminated;
	if (sync_expired(w))
		return 1;
	Py_BEGIN_ALLOW_THREADS
	ret = futex_sleep(addr, val, end, w->stop);
	err = ret < 0 ? errno : 0;
	Py_END_ALLOW_THREADS
	if (w->stop && atomic_load(w->stop))
		goto terminated;
	switch (err) {
	case 0:
	case EAGAIN:
		return 0;
	case EINTR:
		return PyErr_CheckSignals() < 0 ? -1 : 0;
	case ETIMEDOUT:
		return sync_expired(w) ? 1 : 0;
	default:
		pymod_raise_from_errno(w->st, -err, "futex wait");
		return -1;
	}

terminated:
	PyErr_SetNone(PyExc_SystemExit);
	return -1;
}

/* ---- arguments ------------------------------------------------------------- */

int sync_parse(const char *fname, PyObject *const *args, Py_ssize_t nargs,
	       PyObject *kwnames, const char *const *names, PyObject **out)
{
	Py_ssize_t n = 0, i, j, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

	while (names[n])
		n++;
	if (nargs > n) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)",
			     fname, n, nargs);
		return -1;
	}
	for (i = 0; i < nargs; i++)
		out[i] = args[i];
	for (i = 0; i < nkw; i++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, i);

		for (j = 0; j < n; j++)
			if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
				break;
		if (j == n) {
			PyErr_Format(PyExc_TypeError,
				     "%s() got an unexpected keyword argument '%U'",
				     fname, key);
			return -1;
		}
		if (j < nargs) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     fname, names[j]);
			return -1;
		}
		out[j] = args[nargs + i];
	}
	return 0;
}

/* A number of seconds, as _PyTime_FromSecondsObject() takes it. */
static int seconds_of(PyObject *obj, double *out)
{
	if (PyFloat_Check(obj)) {
		*out = PyFloat_AS_DOUBLE(obj);
	} else {
		PyObject *i = PyNumber_Index(obj);

		if (!i)
			return -1;
		*out = PyLong_AsDouble(i);
		Py_DECREF(i);
		if (*out == -1 && PyErr_Occurred())
			return -1;
	}
	if (isnan(*out)) {
		PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
		return -1;
	}
	return 0;
}

int sync_lock_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, double *secs)
{
	static const char *const names[] = { "blocking", "timeout", NULL };
	PyObject *a[2] = { NULL, NULL };
	int blocking = 1;
	double t = -1;

	if (nargs == 0 && !kwnames) {
		*secs = -1;
		return 0;
	}
	if (sync_parse("acquire", args, nargs, kwnames, names, a) < 0)
		return -1;
	if (a[0] && (blocking = PyObject_IsTrue(a[0])) < 0)
		return -1;
	if (a[1] && seconds_of(a[1], &t) < 0)
		return -1;
	if (!blocking && t != -1) {
		PyErr_SetString(PyExc_ValueError,
				"can't specify a timeout for a non-blocking call");
		return -1;
	}
	if (t < 0 && t != -1) {
		PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
		return -1;
	}
	if (t > SYNC_TIMEOUT_MAX) {
		PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
		return -1;
	}
	*secs = !blocking ? 0 : t;
	return 0;
}

int sync_timeout_arg(PyObject *obj, double *secs)
{
	if (!obj || obj == Py_None) {
		*secs = -1;
		return 0;
	}
	if (seconds_of(obj, secs) < 0)
		return -1;
	if (*secs > SYNC_TIMEOUT_MAX) {
		PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
		return -1;
	}
	if (*secs < 0)
		*secs = 0;
	return 0;
}

/* ---- objects and payloads --------------------------------------------------- */

static PyObject *wrap(PyTypeObject *tp, struct pyshm_payload *p)
{
	SyncObject *o = (SyncObject *)tp->tp_alloc(tp, 0);

	if (!o) {
		sync_capi->payload_release(p);
		return NULL;
	}
	o->p = p;
	o->data = sync_capi->payload_data(p);
	o->weakrefs = NULL;
	return (PyObject *)o;
}

/* The type @tp's payloads are made for: the first of ours in its MRO (a
 * Python subclass's instances use their base's). */
static PyTypeObject *registered_type(PyTypeObject *tp)
{
	while (tp && !(tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE))
		tp = tp->tp_base;
	return tp;
}

static int payload_new(PyTypeObject *tp, size_t size, enum sync_kind kind,
		       struct pyshm_payload **out)
{
	struct sync_hdr *h;

	if (sync_capi->payload_new(registered_type(tp), size, out) < 0)
		return -1;
	h = sync_capi->payload_data(*out);
	h->magic = SYNC_MAGIC;
	h->kind = kind;
	return 0;
}

PyObject *sync_new(PyTypeObject *tp, size_t size, enum sync_kind kind)
{
	struct pyshm_payload *p;

	if (payload_new(tp, size, kind, &p) < 0)
		return NULL;
	return wrap(tp, p);
}

int sync_renew(SyncObject *o, size_t size, enum sync_kind kind)
{
	struct pyshm_payload *p, *old = o->p;

	if (payload_new(Py_TYPE(o), size, kind, &p) < 0)
		return -1;
	o->p = p;
	o->data = sync_capi->payload_data(p);
	sync_capi->payload_release(old);
	return 0;
}

PyObject *sync_from_payload(PyTypeObject *tp, struct pyshm_payload *p, size_t size,
			    enum sync_kind kind)
{
	const struct sync_hdr *h = sync_capi->payload_data(p);

	/* The bytes came from another process: check what they claim. */
	if (sync_capi->payload_size(p) < size || h->magic != SYNC_MAGIC || h->kind != kind) {
		sync_capi->payload_release(p);
		PyErr_Format(PyExc_ValueError, "payload is not of a %s", tp->tp_name);
		return NULL;
	}
	return wrap(tp, p);
}

struct pyshm_payload *sync_get_payload(PyObject *o)
{
	return ((SyncObject *)o)->p;
}

void sync_dealloc(PyObject *obj)
{
	SyncObject *o = (SyncObject *)obj;
	PyTypeObject *tp = Py_TYPE(o);

	if (o->weakrefs)
		PyObject_ClearWeakRefs(obj);
	sync_capi->payload_release(o->p);
	tp->tp_free(o);
	Py_DECREF(tp);
}

PyObject *sync_reduce(PyObject *o, PyObject *unused)
{
	return PyErr_Format(PyExc_TypeError,
			    "cannot pickle '%s' object: share it with post_message(), "
			    "Worker arguments or structured_clone()", Py_TYPE(o)->tp_name);
}

PyMemberDef sync_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(SyncObject, weakrefs), READONLY },
	{ NULL }
};

int sync_register(PyObject *mod, PyTypeObject *tp, const struct pyshm_clone_ops *ops)
{
	if (PyModule_AddType(mod, tp) < 0)
		return -1;
	return sync_capi->register_type(tp, ops);
}

void sync_raise_owner_died(PyObject *self, uint64_t dead)
{
	PyObject *mod = PyType_GetModuleByDef(Py_TYPE(self), &pymod_def);
	PyObject *exc = mod ? PyObject_GetAttrString(mod, "OwnerDiedError") : NULL;

	if (!exc)
		return;
	PyErr_Format(exc, "the process that held this %s (pid %u) died: it is yours now "
		     "(repair what it guarded, then release it)", Py_TYPE(self)->tp_name,
		     (unsigned int)(dead & SYNC_PID_MASK));
	Py_DECREF(exc);
}

/* _sync_ident(pid=0): the identity of process @pid (0: this one), for tests. */
static PyObject *mod_sync_ident(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
	long pid = nargs ? PyLong_AsLong(args[0]) : 0;
	uint64_t start;
	char state;
	int ret;

	if (pid == -1 && PyErr_Occurred())
		return NULL;
	if (!pid)
		return PyLong_FromUnsignedLongLong(sync_self());
	ret = proc_stat((pid_t)pid, &state, &start);
	if (ret < 0)
		return pymod_raise_from_errno(get_state(mod), ret, "/proc/<pid>/stat");
	return PyLong_FromUnsignedLongLong(((uint64_t)(uint32_t)start << 32) |
					   ((uint64_t)pid & SYNC_PID_MASK));
}

/* _sync_alive(ident): sync_alive(), for tests. */
static PyObject *mod_sync_alive(PyObject *mod, PyObject *arg)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(arg);

	if (id == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	return PyBool_FromLong(sync_alive(id));
}

static PyMethodDef sync_module_methods[] = {
	{ "_sync_ident", (PyCFunction)(void (*)(void))mod_sync_ident, METH_FASTCALL, NULL },
	{ "_sync_alive", mod_sync_alive, METH_O, NULL },
	{ NULL }
};

int sync_init(PyObject *mod)
{
	PyObject *cap = PyObject_GetAttrString(mod, "_C_API"), *exc;
	int ret;

	if (!cap)
		return -1;
	sync_capi = PyCapsule_GetPointer(cap, PYSHM_CAPI_NAME);
	Py_DECREF(cap);
	if (!sync_capi)
		return -1;
	sync_self();
	exc = PyErr_NewExceptionWithDoc(
		"pyshm_workers.OwnerDiedError",
		"The process that held a Lock or RLock (or a Condition's lock) died.\n\n"
		"Raised once, by the acquire() that took the lock over: the caller\n"
		"holds the lock, and should repair the state it guarded, then\n"
		"release it.", PyExc_RuntimeError, NULL);
	if (!exc)
		return -1;
	ret = PyModule_AddObjectRef(mod, "OwnerDiedError", exc);
	Py_DECREF(exc);
	if (ret < 0)
		return -1;
	if (sync_lock_init(mod) < 0 || sync_sem_init(mod) < 0 || sync_cond_init(mod) < 0 ||
	    PyModule_AddFunctions(mod, sync_module_methods) < 0)
		return -1;
	return 0;
}
