// SPDX-License-Identifier: MIT
/*
 * Workers, whatever their mode: the shared struct's lifetime, exit codes,
 * join() and terminate(), the end of a worker's stream, and the sleep that
 * terminate() interrupts. Starting one is worker_interp.c's or
 * worker_process.c's.
 */
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

static long futex(atomic_uint *word, int op, unsigned int val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

struct worker *worker_new(int mode)
{
	struct worker *w = PyMem_RawCalloc(1, sizeof(*w));

	if (!w)
		return NULL;
	atomic_init(&w->refs, 1);
	w->mode = mode;
	w->pid = -1;
	w->pidfd = -1;
	w->status_fd = -1;
	w->lifeline = -1;
	w->child_waiter = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_init(&w->block_lock, NULL);
	return w;
}

struct worker *worker_get(struct worker *w)
{
	atomic_fetch_add(&w->refs, 1);
	return w;
}

void free_strv(char **v)
{
	char **s;

	if (!v)
		return;
	for (s = v; *s; s++)
		PyMem_RawFree(*s);
	PyMem_RawFree(v);
}

void worker_put(struct worker *w)
{
	if (!w || atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	if (w->link) {
		port_close(w->link);
		port_put(w->link);
	}
	port_put(w->parent_end);
	free_strv(w->sys_path);
	if (w->pidfd >= 0)
		close(w->pidfd);
	if (w->status_fd >= 0)
		close(w->status_fd);
	if (w->lifeline >= 0)
		close(w->lifeline);
	if (w->child_waiter >= 0)
		close(w->child_waiter);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->block_lock);
	PyMem_RawFree(w);
}

/*
 * The worker has ended: record how, wake join()ers, and end the parent's
 * stream (the worker may have died without closing its end).
 */
void worker_finished(struct worker *w, int code)
{
	struct port *p, *link;
	bool orphaned;

	pthread_mutex_lock(&w->lock);
	w->exit_code = code;
	w->exited = true;
	w->running = false;
	p = w->parent_end;
	w->parent_end = NULL;
	orphaned = w->orphaned;
	/* A worker that never took its end of the link. */
	link = w->link;
	w->link = NULL;
	/* The child is gone: nothing to wake or to watch over any more. */
	if (w->lifeline >= 0)
		close(w->lifeline);
	w->lifeline = -1;
	if (w->child_waiter >= 0)
		close(w->child_waiter);
	w->child_waiter = -1;
	/* Reaped (process mode): a handle kept after its Worker object
	 * (at exit, until the next Worker()) holds no fd. */
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	pthread_mutex_unlock(&w->lock);
	if (link) {
		port_close(link);
		port_put(link);
	}
	if (p && orphaned) {
		/* Nobody will read it: the channel, and what its unread
		 * messages hold, go now. */
		port_close(p);
		port_put(p);
	} else if (p) {
		/* Nothing more will come, and nobody reads what we send: a
		 * sender waiting for room gets out, what it never read goes. */
		port_peer_gone(p);
		port_put(p);
	}
#if PYMOD_HAVE_SUBINTERPRETERS
	worker_spare_ended(w);
#endif
	worker_say_started(w, WORKER_STARTED_ENDED);
	atomic_store(&w->done, 1);
	futex(&w->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

/* Record what the worker says before its target runs (the first word
 * counts) and wake the parent waiting for it. */
void worker_say_started(struct worker *w, unsigned int what)
{
	unsigned int unknown = WORKER_STARTED_UNKNOWN;

	if (atomic_compare_exchange_strong(&w->started, &unknown, what))
		futex(&w->started, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

int worker_check_terminated(pymod_state *st)
{
	struct worker *w = st->self_worker;

	if (w && atomic_load_explicit(&w->terminate, memory_order_relaxed)) {
		PyErr_SetNone(PyExc_SystemExit);
		return -1;
	}
	return 0;
}

void worker_block(pymod_state *st, struct pyshm_ring *ring, bool producer, bool on)
{
	struct worker *w = st->self_worker;
	size_t i, n = sizeof(w->blocked) / sizeof(w->blocked[0]);

	if (!w)
		return;
	pthread_mutex_lock(&w->block_lock);
	for (i = 0; i < n; i++) {
		if (on && !w->blocked[i].ring) {
			w->blocked[i].ring = ring;
			w->blocked[i].producer = producer;
			break;
		}
		if (!on && w->blocked[i].ring == ring && w->blocked[i].producer == producer) {
			w->blocked[i].ring = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&w->block_lock);
}

static PyObject *dict_str(PyObject *d, const char *key)
{
	PyObject *v = PyDict_Check(d) ? PyDict_GetItemString(d, key) : NULL;

	return v && PyUnicode_Check(v) ? v : NULL;
}

void worker_raise_error(pymod_state *st, struct worker *w, PyObject *details)
{
	PyObject *type = dict_str(details, "type"), *msg = dict_str(details, "message");
	PyObject *tb = dict_str(details, "traceback"), *exc = NULL, *text, *remote;

	if (w)
		w->error_seen = true;
	if (tb)
		text = PyUnicode_FromFormat("%S: %S\n\n%U", type ? type : Py_None,
					    msg ? msg : Py_None, tb);
	else
		text = PyUnicode_FromFormat("%S: %S", type ? type : Py_None,
					    msg ? msg : Py_None);
	if (!text)
		return;
	exc = PyObject_CallOneArg(st->WorkerError, text);
	Py_DECREF(text);
	if (!exc)
		return;
	remote = PyDict_Check(details) ? PyDict_GetItemString(details, "exception") : NULL;
	if (PyObject_SetAttrString(exc, "remote_type", type ? type : Py_None) < 0 ||
	    PyObject_SetAttrString(exc, "remote_message", msg ? msg : Py_None) < 0 ||
	    PyObject_SetAttrString(exc, "remote_traceback", tb ? tb : Py_None) < 0 ||
	    PyObject_SetAttrString(exc, "exception", remote ? remote : Py_None) < 0) {
		Py_DECREF(exc);
		return;
	}
	if (remote && PyExceptionInstance_Check(remote))
		PyException_SetCause(exc, Py_NewRef(remote));
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
	worker_usage_annotate(st, w);
}

/* Seconds on the monotonic clock. */
double mono_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* What is left until @deadline (mono_now() seconds); false once passed. */
static bool time_left(double deadline, struct timespec *ts)
{
	double left = deadline - mono_now();

	if (left <= 0)
		return false;
	ts->tv_sec = (time_t)left;
	ts->tv_nsec = (long)((left - (double)ts->tv_sec) * 1e9);
	return true;
}

/*
 * Wait, without the GIL, until the worker's exit code is final or until
 * @deadline (mono_now() seconds; < 0 without limit): 1 when it is, 0 at the
 * deadline, -1 when a signal handler raised.
 */
static int wait_done(struct worker *w, double deadline)
{
	struct timespec ts;
	long ret;
	int err;

	while (!atomic_load(&w->done)) {
		if (deadline >= 0 && !time_left(deadline, &ts))
			return 0;
		Py_BEGIN_ALLOW_THREADS
		ret = futex(&w->done, FUTEX_WAIT_PRIVATE, 0, deadline >= 0 ? &ts : NULL);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (err == EINTR && PyErr_CheckSignals() < 0)
			return -1;
	}
	return 1;
}

void worker_raise_eof(pymod_state *st, struct worker *w, double deadline)
{
	bool exited, terminated;
	int code;

	/* The worker closed its end as its target returned; EOFError only
	 * once it has exited, so that exit_code and is_alive() agree. */
	switch (wait_done(w, deadline)) {
	case -1:
		return;
	case 0:
		PyErr_SetString(PyExc_TimeoutError, "recv() timed out");
		return;
	}
	pthread_mutex_lock(&w->lock);
	exited = w->exited;
	terminated = w->terminated;
	code = w->exit_code;
	pthread_mutex_unlock(&w->lock);
	/* A worker that died without a word: say so, once. */
	if (exited && code != 0 && !terminated && !w->error_seen && !w->eof_seen) {
		w->eof_seen = true;
		if (code < 0)
			PyErr_Format(st->WorkerError, "the worker was killed by signal %d", -code);
		else
			PyErr_Format(st->WorkerError, "the worker exited with code %d", code);
		worker_usage_annotate(st, w);
		return;
	}
	w->eof_seen = true;
	PyErr_SetString(PyExc_EOFError, "the worker has exited and all its messages were read");
}

/* ---- the handle type ---------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	struct worker *w;
} HandleObject;

PyObject *handle_wrap(pymod_state *st, struct worker *w)
{
	HandleObject *h = PyObject_New(HandleObject, st->handle_type);

	if (!h) {
		worker_put(w);
		return NULL;
	}
	h->w = w;
	return (PyObject *)h;
}

struct worker *handle_worker(pymod_state *st, PyObject *obj)
{
	if (!PyObject_TypeCheck(obj, st->handle_type)) {
		PyErr_SetString(PyExc_TypeError, "expected a WorkerHandle");
		return NULL;
	}
	return ((HandleObject *)obj)->w;
}

static void handle_dealloc(HandleObject *h)
{
	PyTypeObject *tp = Py_TYPE(h);

	worker_put(h->w);
	PyObject_Free(h);
	Py_DECREF(tp);
}

static PyObject *handle_join(HandleObject *h, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "timeout", NULL };
	struct worker *w = h->w;
	PyObject *tmo = Py_None;
	double timeout = -1, deadline = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:join", kwlist, &tmo))
		return NULL;
	if (tmo != Py_None) {
		timeout = PyFloat_AsDouble(tmo);
		if (timeout == -1 && PyErr_Occurred())
			return NULL;
		if (timeout < 0)
			timeout = 0;
		deadline = mono_now() + timeout;
	}
	switch (wait_done(w, deadline)) {
	case -1:
		return NULL;
	case 0:
		Py_RETURN_FALSE;
	}
	Py_RETURN_TRUE;
}

static PyObject *handle_get_exit_code(HandleObject *h, void *c)
{
	int code, exited;

	pthread_mutex_lock(&h->w->lock);
	exited = h->w->exited;
	code = h->w->exit_code;
	pthread_mutex_unlock(&h->w->lock);
	if (!exited)
		Py_RETURN_NONE;
	return PyLong_FromLong(code);
}

static PyObject *handle_get_alive(HandleObject *h, void *c)
{
	return PyBool_FromLong(!atomic_load(&h->w->done));
}

static PyObject *handle_get_pid(HandleObject *h, void *c)
{
	if (h->w->mode != WORKER_PROCESS)
		Py_RETURN_NONE;
	return PyLong_FromLong(h->w->pid);
}

/*
 * _wait_started(timeout=None): what the worker said before calling its
 * target (WORKER_STARTED_*), waiting up to @timeout seconds for it;
 * WORKER_STARTED_UNKNOWN when the time is up.
 */
static PyObject *handle_wait_started(HandleObject *h, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "timeout", NULL };
	struct worker *w = h->w;
	PyObject *tmo = Py_None;
	double deadline = -1, timeout;
	struct timespec ts;
	unsigned int said;
	long ret;
	int err;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:_wait_started", kwlist, &tmo))
		return NULL;
	if (tmo != Py_None) {
		timeout = PyFloat_AsDouble(tmo);
		if (timeout == -1 && PyErr_Occurred())
			return NULL;
		deadline = mono_now() + (timeout < 0 ? 0 : timeout);
	}
	while ((said = atomic_load(&w->started)) == WORKER_STARTED_UNKNOWN) {
		if (deadline >= 0 && !time_left(deadline, &ts))
			break;
		Py_BEGIN_ALLOW_THREADS
		ret = futex(&w->started, FUTEX_WAIT_PRIVATE, WORKER_STARTED_UNKNOWN,
			    deadline >= 0 ? &ts : NULL);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (err == EINTR && PyErr_CheckSignals() < 0)
			return NULL;
	}
	return PyLong_FromUnsignedLong(said);
}

/* ---- termination -------------------------------------------------------- */

void worker_kick_blocked(struct worker *w)
{
	size_t i;

	pthread_mutex_lock(&w->block_lock);
	for (i = 0; i < sizeof(w->blocked) / sizeof(w->blocked[0]); i++) {
		if (!w->blocked[i].ring)
			continue;
		if (w->blocked[i].producer)
			pyshm_ring_kick_producers(w->blocked[i].ring);
		else
			pyshm_ring_kick(w->blocked[i].ring);
	}
	pthread_mutex_unlock(&w->block_lock);
}

void worker_interrupt(struct worker *w)
{
	atomic_store(&w->terminate, 1);
	futex(&w->terminate, FUTEX_WAKE, INT_MAX, NULL);
	worker_kick_blocked(w);
}

/* Process mode: send @sig to the child unless it was reaped already (its
 * pidfd goes then). */
static void worker_signal(struct worker *w, int sig)
{
	pthread_mutex_lock(&w->lock);
	if (w->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0);
	pthread_mutex_unlock(&w->lock);
}

/* Process mode, after SIGTERM: SIGKILL after the grace period. */
static void *killer_main(void *arg)
{
	struct stopper *k = arg;
	struct worker *w = k->w;
	struct timespec ts;

	ts.tv_sec = (time_t)k->grace;
	ts.tv_nsec = (long)((k->grace - (double)ts.tv_sec) * 1e9);
	PyMem_RawFree(k);
	if (!atomic_load(&w->done))
		futex(&w->done, FUTEX_WAIT_PRIVATE, 0, &ts);
	if (!atomic_load(&w->done))
		worker_signal(w, SIGKILL);
	worker_put(w);
	return NULL;
}

int start_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&th, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -ret;
}

int worker_start_stopper(void *(*fn)(void *), struct worker *w, double grace)
{
	struct stopper *k = PyMem_RawMalloc(sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	k->w = worker_get(w);
	k->grace = grace < 0 ? 0 : grace;
	ret = start_detached(fn, k);
	if (ret) {
		worker_put(w);
		PyMem_RawFree(k);
	}
	return ret;
}

/*
 * terminate(grace=1.0). Process mode: SIGTERM, then SIGKILL after @grace
 * seconds. Interpreter mode: SystemExit in the worker's thread (again and
 * again, see worker_terminator_main()), then after @grace seconds the stop
 * tracer, which no handler can swallow.
 */
static PyObject *handle_terminate(HandleObject *h, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "grace", NULL };
	pymod_state *st = get_state_by_type(Py_TYPE(h));
	struct worker *w = h->w;
	double grace = 1.0;
	int ret;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d:terminate", kwlist, &grace))
		return NULL;
	pthread_mutex_lock(&w->lock);
	if (w->exited || w->terminated || w->exit_requested) {
		pthread_mutex_unlock(&w->lock);
		Py_RETURN_NONE;
	}
	w->terminated = true;
	pthread_mutex_unlock(&w->lock);

	if (w->mode == WORKER_PROCESS) {
		worker_signal(w, SIGTERM);
		if (worker_start_stopper(killer_main, w, grace))
			worker_signal(w, SIGKILL);
		Py_RETURN_NONE;
	}
#if PYMOD_HAVE_SUBINTERPRETERS
	/* Interpreter mode: interruptible sleeps, blocked receives, then the
	 * bytecode itself. */
	worker_interrupt(w);
	ret = worker_start_stopper(worker_terminator_main, w, grace);
	if (ret)
		return pymod_raise_from_errno(st, ret, "terminate");
#else
	(void)st;
	(void)ret;
#endif
	Py_RETURN_NONE;
}

/*
 * _stuck: why a worker still runs after terminate() (for the message at
 * exit), or None once it has ended.
 */
static PyObject *handle_get_stuck(HandleObject *h, void *c)
{
	struct worker *w = h->w;
	char where[sizeof(w->where)];
	bool running, traced;

	if (atomic_load(&w->done))
		Py_RETURN_NONE;
	if (w->mode == WORKER_PROCESS)
		return PyUnicode_FromString("the process has not exited");
	pthread_mutex_lock(&w->lock);
	running = w->running;
	traced = w->traced;
	memcpy(where, w->where, sizeof(where));
	pthread_mutex_unlock(&w->lock);
	if (!running)
		return PyUnicode_FromString("its target has ended, but a thread or a worker "
					    "it started has not");
	if (atomic_load(&w->gil_wait))
		return PyUnicode_FromString("its thread holds its GIL in a C call that does "
					    "not return");
	if (!traced)
		return PyUnicode_FromString("its thread has not stopped yet");
	if (!where[0])
		return PyUnicode_FromString("its thread is blocked in a C call");
	return PyUnicode_FromFormat("its thread is blocked in a C call (at %s)", where);
}

/* _close_send(): the worker's pw.parent reaches the end of its stream
 * (what the Worker's port does, for a handle whose Worker is gone). */
static PyObject *handle_close_send(HandleObject *h, PyObject *unused)
{
	struct worker *w = h->w;
	struct port *p;

	pthread_mutex_lock(&w->lock);
	p = w->parent_end ? port_get(w->parent_end) : NULL;
	pthread_mutex_unlock(&w->lock);
	if (p) {
		pyshm_ring_close(p->tx, PYSHM_RING_CLOSE_PRODUCERS);
		port_put(p);
	}
	Py_RETURN_NONE;
}

/*
 * _orphan(port): the Worker object goes while its worker runs. The worker
 * keeps an open stream (its port object is detached, not closed), and the
 * channel is released as the worker ends rather than when a later Worker()
 * or the exit prunes the handle.
 */
static PyObject *handle_orphan(HandleObject *h, PyObject *obj)
{
	pymod_state *st = get_state_by_type(Py_TYPE(h));
	struct worker *w = h->w;
	struct port *p = port_from_object(st, obj);
	bool kept;

	if (!p)
		Py_RETURN_NONE;		/* closed already */
	port_detach_object(obj);
	pthread_mutex_lock(&w->lock);
	kept = w->parent_end == p;
	if (kept)
		w->orphaned = true;	/* worker_finished() closes it */
	pthread_mutex_unlock(&w->lock);
	if (!kept)
		port_close(p);
	port_put(p);
	Py_RETURN_NONE;
}

char **strv_from_list(PyObject *list)
{
	Py_ssize_t i, n;
	char **v;

	if (!PyList_Check(list)) {
		PyErr_SetString(PyExc_TypeError, "expected a list of str");
		return NULL;
	}
	n = PyList_GET_SIZE(list);
	v = PyMem_RawCalloc((size_t)n + 1, sizeof(*v));
	if (!v) {
		PyErr_NoMemory();
		return NULL;
	}
	for (i = 0; i < n; i++) {
		PyObject *b, *item = PyList_GET_ITEM(list, i);

		if (!PyUnicode_Check(item)) {
			PyErr_SetString(PyExc_TypeError, "expected a list of str");
			goto err_free;
		}
		b = PyUnicode_EncodeFSDefault(item);
		if (!b)
			goto err_free;
		v[i] = PyMem_RawMalloc((size_t)PyBytes_GET_SIZE(b) + 1);
		if (!v[i]) {
			Py_DECREF(b);
			PyErr_NoMemory();
			goto err_free;
		}
		memcpy(v[i], PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b) + 1);
		Py_DECREF(b);
	}
	return v;

err_free:
	free_strv(v);
	return NULL;
}

/* Take the C port out of a MessagePort object (which becomes closed). */
struct port *take_port(pymod_state *st, PyObject *obj)
{
	struct port *p = port_from_object(st, obj);

	if (!p) {
		PyErr_SetString(PyExc_ValueError, "expected a live MessagePort");
		return NULL;
	}
	port_detach_object(obj);
	return p;
}

/* ---- interruptible sleep (time.sleep in worker interpreters) ------------ */

static PyObject *mod_sleep(PyObject *mod, PyObject *arg)
{
	pymod_state *st = get_state(mod);
	struct worker *w = st->self_worker;
	double secs = PyFloat_AsDouble(arg), deadline;
	struct timespec ts;
	atomic_uint dummy = 0;
	long ret;
	int err;

	if (secs == -1 && PyErr_Occurred())
		return NULL;
	if (secs < 0)
		return PyErr_Format(PyExc_ValueError, "sleep length must be non-negative");
	deadline = mono_now() + secs;
	for (;;) {
		if (worker_check_terminated(st) < 0)
			return NULL;
		if (!time_left(deadline, &ts))
			Py_RETURN_NONE;
		Py_BEGIN_ALLOW_THREADS
		/* terminate() sets the word and wakes us. */
		ret = futex(w ? &w->terminate : &dummy, FUTEX_WAIT, 0, &ts);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (err == EINTR && PyErr_CheckSignals() < 0)
			return NULL;
	}
}

/*
 * _abandon_port(port): in the child of a fork(), a port of the parent's
 * (a worker's link): the object reads as closed, and the C port is left
 * as it is, unclosed and unreleased, as closing would end the parent's
 * stream in the memory both processes share.
 */
static PyObject *mod_abandon_port(PyObject *mod, PyObject *obj)
{
	if (port_from_object(get_state(mod), obj))
		port_detach_object(obj);
	Py_RETURN_NONE;
}

/* _started(what): inside a worker, what it says before its target runs
 * (WORKER_STARTED_TARGET or _REFUSED); nothing in a process worker or the
 * main interpreter, whose parents do not wait for it. */
static PyObject *mod_started(PyObject *mod, PyObject *arg)
{
	struct worker *w = get_state(mod)->self_worker;
	long what = PyLong_AsLong(arg);

	if (what == -1 && PyErr_Occurred())
		return NULL;
	if (what != WORKER_STARTED_TARGET && what != WORKER_STARTED_REFUSED)
		return PyErr_Format(PyExc_ValueError, "_started(): bad value %ld", what);
	if (w)
		worker_say_started(w, (unsigned int)what);
	Py_RETURN_NONE;
}

PyMethodDef worker_module_methods[] = {
	{ "_abandon_port", mod_abandon_port, METH_O, NULL },
	{ "_started", mod_started, METH_O, NULL },
	{ "_sleep", mod_sleep, METH_O,
	  "_sleep($module, seconds, /)\n--\n\ntime.sleep() that terminate() can interrupt." },
	{ NULL }
};

static PyMethodDef handle_methods[] = {
	{ "join", (PyCFunction)(void (*)(void))handle_join, METH_VARARGS | METH_KEYWORDS, NULL },
	{ "terminate", (PyCFunction)(void (*)(void))handle_terminate,
	  METH_VARARGS | METH_KEYWORDS, NULL },
	{ "_close_send", (PyCFunction)handle_close_send, METH_NOARGS, NULL },
	{ "_orphan", (PyCFunction)handle_orphan, METH_O, NULL },
	{ "_wait_started", (PyCFunction)(void (*)(void))handle_wait_started,
	  METH_VARARGS | METH_KEYWORDS, NULL },
	{ NULL }
};

static PyGetSetDef handle_getset[] = {
	{ "exit_code", (getter)handle_get_exit_code, NULL, NULL, NULL },
	{ "alive", (getter)handle_get_alive, NULL, NULL, NULL },
	{ "pid", (getter)handle_get_pid, NULL, NULL, NULL },
	{ "_stuck", (getter)handle_get_stuck, NULL, NULL, NULL },
	{ NULL }
};

static PyType_Slot handle_slots[] = {
	{ Py_tp_dealloc, handle_dealloc },
	{ Py_tp_methods, handle_methods },
	{ Py_tp_getset, handle_getset },
	{ 0, NULL }
};

static PyType_Spec handle_spec = {
	.name = "pyshm_workers._core.WorkerHandle",
	.basicsize = sizeof(HandleObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
		 Py_TPFLAGS_IMMUTABLETYPE,
	.slots = handle_slots,
};

int worker_init_types(PyObject *mod, pymod_state *st)
{
	st->handle_type = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &handle_spec, NULL);
	return st->handle_type ? 0 : -1;
}
