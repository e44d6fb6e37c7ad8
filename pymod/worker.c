// SPDX-License-Identifier: MIT
/*
 * Workers. Interpreter mode: an own-GIL subinterpreter created on a new OS
 * thread, running pyshm_workers._bootstrap. Process mode: a fresh Python
 * started with posix_spawn() (never fork() of a threaded parent), handed its
 * end of the link channel, its io_uring waiter and a lifeline pipe by
 * inheritance. Exit codes, termination, and the end of a worker's stream.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* Set by the thread that creates a worker interpreter, for its bootstrap. */
static __thread struct worker *tls_boot;

static long futex(atomic_uint *word, int op, unsigned int val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static struct worker *worker_new(int mode)
{
	struct worker *w = PyMem_RawCalloc(1, sizeof(*w));

	if (!w)
		return NULL;
	atomic_init(&w->refs, 1);
	w->mode = mode;
	w->pid = -1;
	w->pidfd = -1;
	w->lifeline = -1;
	w->child_waiter = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->block_lock, NULL);
	return w;
}

static struct worker *worker_get(struct worker *w)
{
	atomic_fetch_add(&w->refs, 1);
	return w;
}

static void free_strv(char **v)
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
	if (w->lifeline >= 0)
		close(w->lifeline);
	if (w->child_waiter >= 0)
		close(w->child_waiter);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->block_lock);
	PyMem_RawFree(w);
}

/*
 * The worker has ended: record how, wake join()ers, and end the parent's
 * stream (the worker may have died without closing its end).
 */
#if PYMOD_HAVE_SUBINTERPRETERS
static void spare_worker_ended(struct worker *w);
#endif

static void worker_finished(struct worker *w, int code)
{
	struct port *p, *link;

	pthread_mutex_lock(&w->lock);
	w->exit_code = code;
	w->exited = true;
	w->running = false;
	p = w->parent_end;
	w->parent_end = NULL;
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
	pthread_mutex_unlock(&w->lock);
	if (link) {
		port_close(link);
		port_put(link);
	}
	if (p) {
		pyshm_ring_close(p->rx, PYSHM_RING_CLOSE_PRODUCERS);
		port_put(p);
	}
#if PYMOD_HAVE_SUBINTERPRETERS
	spare_worker_ended(w);
#endif
	atomic_store(&w->done, 1);
	futex(&w->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
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

void worker_block(pymod_state *st, struct pyshm_ring *ring, bool on)
{
	struct worker *w = st->self_worker;
	size_t i, n = sizeof(w->blocked) / sizeof(w->blocked[0]);

	if (!w)
		return;
	pthread_mutex_lock(&w->block_lock);
	for (i = 0; i < n; i++) {
		if (on && !w->blocked[i]) {
			w->blocked[i] = ring;
			break;
		}
		if (!on && w->blocked[i] == ring) {
			w->blocked[i] = NULL;
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
	text = PyUnicode_FromFormat("%U: %U%s%U", type ? type : Py_None,
				    msg ? msg : Py_None, tb ? "\n\n" : "",
				    tb ? tb : PyUnicode_New(0, 0));
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
}

void worker_raise_eof(pymod_state *st, struct worker *w)
{
	bool exited, terminated;
	int code;

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

static PyObject *handle_wrap(pymod_state *st, struct worker *w)
{
	HandleObject *h = PyObject_New(HandleObject, st->handle_type);

	if (!h) {
		worker_put(w);
		return NULL;
	}
	h->w = w;
	return (PyObject *)h;
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
	double timeout = -1, deadline = 0;
	struct timespec ts, now;
	long ret;
	int err;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:join", kwlist, &tmo))
		return NULL;
	if (tmo != Py_None) {
		timeout = PyFloat_AsDouble(tmo);
		if (timeout == -1 && PyErr_Occurred())
			return NULL;
		if (timeout < 0)
			timeout = 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline = now.tv_sec + now.tv_nsec * 1e-9 + timeout;
	}
	while (!atomic_load(&w->done)) {
		if (timeout >= 0) {
			double left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = deadline - (now.tv_sec + now.tv_nsec * 1e-9);
			if (left <= 0)
				Py_RETURN_FALSE;
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		}
		Py_BEGIN_ALLOW_THREADS
		ret = futex(&w->done, FUTEX_WAIT_PRIVATE, 0, timeout >= 0 ? &ts : NULL);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (err == EINTR && PyErr_CheckSignals() < 0)
			return NULL;
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

/* ---- termination -------------------------------------------------------- */

/*
 * Interpreter mode. A thread of ours, never the caller's: it must take the
 * worker's GIL, which a worker busy in C may hold for a while. It injects
 * SystemExit at the next bytecode boundary, again every 100 ms for code
 * that swallows it, until the interpreter ends.
 */
/* Wake the rings the worker sleeps on (it checks for terminate() then). */
static void kick_blocked(struct worker *w)
{
	size_t i;

	pthread_mutex_lock(&w->block_lock);
	for (i = 0; i < sizeof(w->blocked) / sizeof(w->blocked[0]); i++)
		if (w->blocked[i])
			pyshm_ring_kick(w->blocked[i]);
	pthread_mutex_unlock(&w->block_lock);
}

static void *terminator_main(void *arg)
{
	struct worker *w = arg;
	struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	PyThreadState *t;

	while (!atomic_load(&w->done)) {
		pthread_mutex_lock(&w->lock);
		/* While running and not ending, the interpreter outlives our
		 * thread state: the worker takes the lock before it ends. */
		if (w->running && !w->ending) {
			t = PyThreadState_New(w->interp);
			if (t) {
				PyEval_RestoreThread(t);
				PyThreadState_SetAsyncExc(w->thread_id, PyExc_SystemExit);
				PyThreadState_Clear(t);
				PyThreadState_DeleteCurrent();
			}
		}
		pthread_mutex_unlock(&w->lock);
		/* A receiver still spinning at the first kick sleeps after it
		 * without a wakeup: kick again. */
		kick_blocked(w);
		futex(&w->done, FUTEX_WAIT_PRIVATE, 0, &ts);
	}
	worker_put(w);
	return NULL;
}

/* Process mode: SIGTERM now, SIGKILL after the grace period. */
struct killer {
	struct worker *w;
	double grace;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;
	struct worker *w = k->w;
	struct timespec ts;

	ts.tv_sec = (time_t)k->grace;
	ts.tv_nsec = (long)((k->grace - (double)ts.tv_sec) * 1e9);
	PyMem_RawFree(k);
	if (!atomic_load(&w->done))
		futex(&w->done, FUTEX_WAIT_PRIVATE, 0, &ts);
	if (!atomic_load(&w->done))
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
	worker_put(w);
	return NULL;
}

static int start_detached(void *(*fn)(void *), void *arg)
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

static PyObject *handle_terminate(HandleObject *h, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "grace", NULL };
	pymod_state *st = get_state_by_type(Py_TYPE(h));
	struct worker *w = h->w;
	struct killer *k;
	double grace = 1.0;
	int ret;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d:terminate", kwlist, &grace))
		return NULL;
	pthread_mutex_lock(&w->lock);
	if (w->exited || w->terminated) {
		pthread_mutex_unlock(&w->lock);
		Py_RETURN_NONE;
	}
	w->terminated = true;
	pthread_mutex_unlock(&w->lock);

	if (w->mode == WORKER_PROCESS) {
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGTERM, NULL, 0);
		k = PyMem_RawMalloc(sizeof(*k));
		if (!k)
			return PyErr_NoMemory();
		k->w = worker_get(w);
		k->grace = grace < 0 ? 0 : grace;
		ret = start_detached(killer_main, k);
		if (ret) {
			syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
			worker_put(w);
			PyMem_RawFree(k);
		}
		Py_RETURN_NONE;
	}

	/* Interpreter mode: interruptible sleeps, blocked receives, then the
	 * bytecode itself. */
	atomic_store(&w->terminate, 1);
	futex(&w->terminate, FUTEX_WAKE, INT_MAX, NULL);
	kick_blocked(w);
	ret = start_detached(terminator_main, worker_get(w));
	if (ret) {
		worker_put(w);
		return pymod_raise_from_errno(st, ret, "terminate");
	}
	Py_RETURN_NONE;
}

/* ---- interpreter mode --------------------------------------------------- */

#if PYMOD_HAVE_SUBINTERPRETERS
/* sys.path of the new interpreter: the parent's, not its initial config. */
static int set_sys_path(char **paths)
{
	PyObject *list = PyList_New(0), *s;
	char **p;
	int ret;

	if (!list)
		return -1;
	for (p = paths; p && *p; p++) {
		s = PyUnicode_DecodeFSDefault(*p);
		if (!s || PyList_Append(list, s) < 0) {
			Py_XDECREF(s);
			Py_DECREF(list);
			return -1;
		}
		Py_DECREF(s);
	}
	ret = PySys_SetObject("path", list);
	Py_DECREF(list);
	return ret;
}

/* Run the bootstrap in the new interpreter; its exit code. */
static int run_bootstrap(struct worker *w)
{
	PyObject *mod, *res;
	int code = 1;

	if (set_sys_path(w->sys_path) < 0)
		goto out_error;
	mod = PyImport_ImportModule("pyshm_workers._bootstrap");
	if (!mod)
		goto out_error;
	tls_boot = w;
	res = PyObject_CallMethod(mod, "interp_main", NULL);
	tls_boot = NULL;
	Py_DECREF(mod);
	if (!res)
		goto out_error;
	code = PyLong_Check(res) ? (int)PyLong_AsLong(res) : 1;
	Py_DECREF(res);
	PyErr_Clear();
	return code;

out_error:
	/* SystemExit here is terminate() arriving early; never let
	 * PyErr_Print() turn it into an exit of the whole process. */
	if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
		PyErr_Clear();
		return WORKER_TERMINATED_CODE;
	}
	PyErr_WriteUnraisable(NULL);
	return 1;
}

static const PyInterpreterConfig interp_config = {
	.use_main_obmalloc = 0,
	.allow_fork = 0,
	.allow_exec = 1,
	.allow_threads = 1,
	.allow_daemon_threads = 0,
	.check_multi_interp_extensions = 1,
	.gil = PyInterpreterConfig_OWN_GIL,
};

/* Run worker @w in the interpreter of @ts (this thread's, GIL held), then
 * end the interpreter. */
static void interp_run(struct worker *w, PyThreadState *ts)
{
	PyThreadState *save;
	int code = WORKER_TERMINATED_CODE;

	pthread_mutex_lock(&w->lock);
	w->interp = PyThreadState_GetInterpreter(ts);
	w->thread_id = PyThread_get_thread_ident();
	w->running = !w->terminated;
	pthread_mutex_unlock(&w->lock);

	if (w->running)
		code = run_bootstrap(w);
	if (atomic_load(&w->terminate))
		code = WORKER_TERMINATED_CODE;

	/* Keep terminate() off the interpreter from here on, and drop a
	 * SystemExit it may have left pending for this thread. */
	save = PyEval_SaveThread();
	pthread_mutex_lock(&w->lock);
	w->running = false;
	w->ending = true;
	pthread_mutex_unlock(&w->lock);
	PyEval_RestoreThread(save);
	PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
	PyErr_Clear();
	Py_EndInterpreter(ts);

	worker_finished(w, code);
	worker_put(w);
}

static void *interp_main(void *arg)
{
	struct worker *w = arg;
	PyThreadState *ts = NULL;
	PyStatus status;

	/* No thread state here: the new interpreter takes its config from
	 * the main one and gets its own GIL. */
	status = Py_NewInterpreterFromConfig(&ts, &interp_config);
	if (PyStatus_Exception(status) || !ts) {
		worker_finished(w, 1);
		worker_put(w);
		return NULL;
	}
	interp_run(w, ts);
	return NULL;
}

/*
 * The spare: once a process has started an interpreter-mode worker, one
 * more interpreter is made ahead of time, with pyshm_workers already
 * imported, and waits; the next worker takes it, and a new spare is made.
 * Creating an interpreter costs milliseconds (most of a worker's start).
 * PYSHM_SPARE_INTERPRETER=0 turns this off.
 */
static struct {
	pthread_mutex_t lock;		/* guards the fields below */
	pthread_cond_t cond;
	bool ready;			/* an interpreter waits for a job */
	int threads;			/* spare threads without a job yet */
	bool stop;			/* end the waiting spare */
	bool disabled;			/* for good: the process is exiting */
	struct worker *job;
	char **path;			/* the last sys.path a worker started with */
	pid_t pid;			/* the process the spare lives in */
	int running;			/* interpreter workers running */
} spare = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void *spare_main(void *arg)
{
	PyThreadState *ts = NULL, *save;
	struct worker *w = NULL;
	PyStatus status;
	PyObject *mod;

	status = Py_NewInterpreterFromConfig(&ts, &interp_config);
	if (PyStatus_Exception(status) || !ts)
		goto out_exit;
	mod = set_sys_path(arg) < 0 ? NULL : PyImport_ImportModule("pyshm_workers._bootstrap");
	if (!mod)
		PyErr_Clear();
	Py_XDECREF(mod);

	save = PyEval_SaveThread();
	pthread_mutex_lock(&spare.lock);
	spare.ready = true;
	pthread_cond_broadcast(&spare.cond);
	while (!spare.job && !spare.stop)
		pthread_cond_wait(&spare.cond, &spare.lock);
	w = spare.job;
	spare.job = NULL;
	spare.ready = false;
	pthread_mutex_unlock(&spare.lock);
	PyEval_RestoreThread(save);
	if (w) {
		free_strv(arg);
		interp_run(w, ts);
		return NULL;
	}
	Py_EndInterpreter(ts);
out_exit:
	free_strv(arg);
	pthread_mutex_lock(&spare.lock);
	spare.threads--;
	pthread_cond_broadcast(&spare.cond);
	pthread_mutex_unlock(&spare.lock);
	return NULL;
}

static char **strv_dup(char **v)
{
	size_t n = 0, i;
	char **d;

	while (v && v[n])
		n++;
	d = PyMem_RawCalloc(n + 1, sizeof(*d));
	for (i = 0; d && i < n; i++) {
		d[i] = PyMem_RawMalloc(strlen(v[i]) + 1);
		if (!d[i]) {
			free_strv(d);
			return NULL;
		}
		strcpy(d[i], v[i]);
	}
	return d;
}

/*
 * Start a spare if there is none and a CPU is left for it: while workers
 * keep every CPU busy, making one would only slow them down; the next one
 * is made when a worker ends. Caller holds spare.lock.
 */
static void spare_start_locked(void)
{
	static long ncpus;
	char **copy;

	if (!ncpus)
		ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (spare.disabled || spare.threads || !spare.path || spare.running >= ncpus)
		return;
	copy = strv_dup(spare.path);
	if (!copy)
		return;
	spare.stop = false;
	if (start_detached(spare_main, copy) == 0)
		spare.threads++;
	else
		free_strv(copy);
}

/* Hand @w to the waiting spare (taking a reference); false if none waits. */
static bool spare_take(struct worker *w)
{
	static int enabled = -1;
	bool taken = false;

	if (enabled < 0) {
		const char *env = getenv("PYSHM_SPARE_INTERPRETER");

		enabled = !env || strcmp(env, "0");
	}
	if (!enabled)
		return false;
	pthread_mutex_lock(&spare.lock);
	if (spare.pid != getpid()) {
		/* First use, or a child of fork(): the spare thread and the
		 * running workers stayed in the parent. */
		spare.ready = false;
		spare.threads = 0;
		spare.running = 0;
		spare.job = NULL;
		spare.pid = getpid();
	}
	/* A spare on its way has a head start on a new interpreter. */
	if (spare.threads && !spare.ready && !spare.stop) {
		Py_BEGIN_ALLOW_THREADS
		while (spare.threads && !spare.ready && !spare.stop)
			pthread_cond_wait(&spare.cond, &spare.lock);
		Py_END_ALLOW_THREADS
	}
	if (spare.ready && !spare.job) {
		/* That thread is a worker from now on, no longer the spare. */
		spare.job = worker_get(w);
		spare.ready = false;
		spare.threads--;
		pthread_cond_broadcast(&spare.cond);
		taken = true;
	}
	free_strv(spare.path);
	spare.path = strv_dup(w->sys_path);
	spare.running++;
	w->counted = true;
	spare_start_locked();
	pthread_mutex_unlock(&spare.lock);
	return taken;
}

/* An interpreter worker ended: a CPU may be free for a spare again. */
static void spare_worker_ended(struct worker *w)
{
	if (!w->counted)
		return;
	pthread_mutex_lock(&spare.lock);
	if (spare.pid == getpid()) {
		spare.running--;
		spare_start_locked();
	}
	pthread_mutex_unlock(&spare.lock);
}

/* _spare_stop(final): end the waiting spare (and make no more if final).
 * Only the main interpreter's exit does: a spare imports pyshm_workers too,
 * and must not wait for itself when it ends. */
static PyObject *mod_spare_stop(PyObject *mod, PyObject *final)
{
	if (PyInterpreterState_Get() != PyInterpreterState_Main())
		Py_RETURN_NONE;
	pthread_mutex_lock(&spare.lock);
	if (PyObject_IsTrue(final))
		spare.disabled = true;
	spare.stop = true;
	pthread_cond_broadcast(&spare.cond);
	Py_BEGIN_ALLOW_THREADS
	while (spare.threads > 0 && spare.pid == getpid())
		pthread_cond_wait(&spare.cond, &spare.lock);
	Py_END_ALLOW_THREADS
	pthread_mutex_unlock(&spare.lock);
	Py_RETURN_NONE;
}
#endif

static char **strv_from_list(PyObject *list)
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
static struct port *take_port(pymod_state *st, PyObject *obj)
{
	struct port *p = port_from_object(st, obj);

	if (!p) {
		PyErr_SetString(PyExc_ValueError, "expected a live MessagePort");
		return NULL;
	}
	port_detach_object(obj);
	return p;
}

/*
 * _start_interpreter(link, parent, sys_path) -> handle: run a worker in a
 * new own-GIL interpreter; `link` is its end of the link channel, `parent`
 * ours.
 */
static PyObject *mod_start_interpreter(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *link_obj, *parent_obj, *path;

	if (!PyArg_ParseTuple(args, "OOO:_start_interpreter", &link_obj, &parent_obj, &path))
		return NULL;
#if PYMOD_HAVE_SUBINTERPRETERS
	struct port *parent_end;
	struct worker *w;
	int ret;

	parent_end = port_from_object(st, parent_obj);
	if (!parent_end)
		return PyErr_Format(PyExc_ValueError, "expected a live MessagePort");
	w = worker_new(WORKER_INTERP);
	if (!w)
		return PyErr_NoMemory();
	w->sys_path = strv_from_list(path);
	if (!w->sys_path) {
		worker_put(w);
		return NULL;
	}
	w->link = take_port(st, link_obj);
	if (!w->link) {
		worker_put(w);
		return NULL;
	}
	w->parent_end = port_get(parent_end);
	parent_end->worker = worker_get(w);
	if (spare_take(w))
		return handle_wrap(st, w);
	ret = start_detached(interp_main, worker_get(w));
	if (ret) {
		worker_put(w);		/* the thread's reference */
		worker_finished(w, 1);
		worker_put(w);
		return pymod_raise_from_errno(st, ret, "start worker thread");
	}
	return handle_wrap(st, w);
#else
	(void)st;
	return PyErr_Format(PyExc_RuntimeError,
			    "interpreter mode needs Python 3.12 or later (own-GIL subinterpreters)");
#endif
}

/* _take_link() -> MessagePort: in a new worker interpreter, its link end. */
static PyObject *mod_take_link(PyObject *mod, PyObject *unused)
{
	pymod_state *st = get_state(mod);
	struct worker *w = tls_boot;
	struct port *p;

	if (!w || !w->link)
		return PyErr_Format(PyExc_RuntimeError, "not a worker being started");
	p = w->link;
	w->link = NULL;
	if (!st->self_worker)
		st->self_worker = worker_get(w);
	return port_wrap(st, p);
}

/* ---- process mode ------------------------------------------------------- */

static void *monitor_main(void *arg)
{
	struct worker *w = arg;
	siginfo_t si = { 0 };
	int code = -1;

	while (waitid(P_PIDFD, (id_t)w->pidfd, &si, WEXITED) < 0) {
		if (errno != EINTR)
			goto out_finish;
	}
	code = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
out_finish:
	worker_finished(w, code);
	worker_put(w);
	return NULL;
}

static void hexify(char *dst, const unsigned char *src, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
	dst[2 * n] = 0;
}

#define MAX_PASS 8

/*
 * _spawn_process(link, parent, argv) -> handle. The child gets, as fds 3
 * and up, what the spec (appended to argv) names: its end of the channel,
 * the socket end, its io_uring waiter, our waiter, a lifeline, the kmod
 * domain.
 */
static PyObject *mod_spawn_process(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *link_obj, *parent_obj, *argv_obj;
	char blob[PYSHM_WAITER_BLOB_SIZE], hex[2 * PYSHM_WAITER_BLOB_SIZE + 1];
	char spec[2 * PYSHM_WAITER_BLOB_SIZE + 256], item[96];
	int pass[MAX_PASS], tmp[MAX_PASS], npass = 0, life[2] = { -1, -1 };
	int child_waiter = -1, bloblen = 0, ret, i, kfd;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct port *link = NULL, *parent_end;
	char **argv = NULL, **argv2 = NULL;
	struct worker *w = NULL;
	sigset_t none, defs;
	Py_ssize_t argc;
	pid_t pid;

	if (!PyArg_ParseTuple(args, "OOO!:_spawn_process", &link_obj, &parent_obj,
			      &PyList_Type, &argv_obj))
		return NULL;
	parent_end = port_from_object(st, parent_obj);
	if (!parent_end)
		return PyErr_Format(PyExc_ValueError, "expected a live MessagePort");
	argv = strv_from_list(argv_obj);
	if (!argv)
		return NULL;
	link = take_port(st, link_obj);
	if (!link)
		goto err_free;
	w = worker_new(WORKER_PROCESS);
	if (!w) {
		PyErr_NoMemory();
		goto err_free;
	}

	/* What to pass, in order; the spec names each one's child fd. */
	spec[0] = 0;
	pass[npass++] = pyshm_region_fd(link->chan);
	snprintf(item, sizeof(item), "chan=%d:%llu,side=%d", 2 + npass,
		 (unsigned long long)pyshm_region_max_size(link->chan), link->side);
	strcat(spec, item);
	if (link->sock >= 0) {
		pass[npass++] = link->sock;
		snprintf(item, sizeof(item), ",sock=%d", 2 + npass);
		strcat(spec, item);
	}
	if (parent_end->uwaiter) {
		bloblen = pyshm_waiter_create_fd(&child_waiter, blob, sizeof(blob));
		if (bloblen > 0) {
			pass[npass++] = child_waiter;
			hexify(hex, (unsigned char *)blob, (size_t)bloblen);
			snprintf(item, sizeof(item), ",waiter=%d:", 2 + npass);
			strcat(spec, item);
			strcat(spec, hex);
		}
		pass[npass++] = pyshm_waiter_fd(parent_end->uwaiter);
		snprintf(item, sizeof(item), ",peer=%d", 2 + npass);
		strcat(spec, item);
	}
	if (pipe2(life, O_CLOEXEC) < 0) {
		PyErr_SetFromErrno(PyExc_OSError);
		goto err_free;
	}
	pass[npass++] = life[0];
	snprintf(item, sizeof(item), ",life=%d", 2 + npass);
	strcat(spec, item);
	kfd = pyshm_kmod_domain_fd();
	if (kfd >= 0) {
		pass[npass++] = kfd;
		snprintf(item, sizeof(item), ",kmod=%d", 2 + npass);
		strcat(spec, item);
	}

	argc = PyList_GET_SIZE(argv_obj);
	argv2 = PyMem_RawCalloc((size_t)argc + 2, sizeof(*argv2));
	if (!argv2) {
		PyErr_NoMemory();
		goto err_free;
	}
	memcpy(argv2, argv, (size_t)argc * sizeof(*argv2));
	argv2[argc] = spec;

	/* Move what we pass above 3 + npass first, so the dup2()s into
	 * 3.. in the child cannot clobber each other. */
	for (i = 0; i < npass; i++)
		tmp[i] = -1;
	for (i = 0; i < npass; i++) {
		tmp[i] = fcntl(pass[i], F_DUPFD_CLOEXEC, 3 + npass);
		if (tmp[i] < 0) {
			PyErr_SetFromErrno(PyExc_OSError);
			goto err_close_tmp;
		}
	}
	posix_spawn_file_actions_init(&fa);
	for (i = 0; i < npass; i++)
		posix_spawn_file_actions_adddup2(&fa, tmp[i], 3 + i);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3 + npass);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGPIPE);
	sigaddset(&defs, SIGXFSZ);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	Py_BEGIN_ALLOW_THREADS
	ret = posix_spawn(&pid, argv2[0], &fa, &attr, argv2, environ);
	Py_END_ALLOW_THREADS
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	for (i = 0; i < npass; i++)
		close(tmp[i]);
	if (ret) {
		errno = ret;
		PyErr_SetFromErrnoWithFilename(PyExc_OSError, argv2[0]);
		goto err_free;
	}

	w->pid = pid;
	w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (w->pidfd < 0) {
		/* Without a pidfd we cannot watch it: a broken worker. */
		PyErr_SetFromErrno(PyExc_OSError);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto err_free;
	}
	w->lifeline = life[1];
	life[1] = -1;
	close(life[0]);
	life[0] = -1;
	if (child_waiter >= 0) {
		/* Our sends wake the child through its inherited ring. */
		w->child_waiter = child_waiter;
		pyshm_ring_set_peer(parent_end->tx, child_waiter);
		child_waiter = -1;
	}
	parent_end->peer_inherits = parent_end->uwaiter != NULL;
	w->parent_end = port_get(parent_end);
	parent_end->worker = worker_get(w);
	/* The child owns the link end now; ours just goes. */
	port_put(link);
	PyMem_RawFree(argv2);
	free_strv(argv);
	ret = start_detached(monitor_main, worker_get(w));
	if (ret) {
		/* Nobody would reap it: end it here. */
		worker_put(w);
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
		waitpid(pid, NULL, 0);
		worker_finished(w, -SIGKILL);
		worker_put(w);
		return pymod_raise_from_errno(st, ret, "worker monitor thread");
	}
	return handle_wrap(st, w);

err_close_tmp:
	for (i = 0; i < npass; i++)
		if (tmp[i] >= 0)
			close(tmp[i]);
err_free:
	if (life[0] >= 0)
		close(life[0]);
	if (life[1] >= 0)
		close(life[1]);
	if (child_waiter >= 0)
		close(child_waiter);
	if (link) {
		port_close(link);
		port_put(link);
	}
	worker_put(w);
	PyMem_RawFree(argv2);
	free_strv(argv);
	return NULL;
}

/* In the child: exit when the parent dies (the lifeline's write end goes). */
static void *lifeline_main(void *arg)
{
	struct pollfd pfd = { .fd = (int)(intptr_t)arg, .events = POLLIN };

	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	_exit(128 + SIGHUP);
	return NULL;
}

static int unhex(const char *s, unsigned char *dst, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1] && s[0] != ',' && n < max) {
		unsigned int v;

		if (sscanf(s, "%2x", &v) != 1)
			return -1;
		dst[n++] = (unsigned char)v;
		s += 2;
	}
	return (int)n;
}

/* Find "key=" in the spec; its value, or NULL. */
static const char *spec_get(const char *spec, const char *key)
{
	size_t n = strlen(key);
	const char *s = spec;

	while (s && *s) {
		if (!strncmp(s, key, n) && s[n] == '=')
			return s + n + 1;
		s = strchr(s, ',');
		if (s)
			s++;
	}
	return NULL;
}

/* _child_link(spec) -> MessagePort: in a process worker, its link end. */
static PyObject *mod_child_link(PyObject *mod, PyObject *arg)
{
	pymod_state *st = get_state(mod);
	const char *spec = PyUnicode_AsUTF8(arg), *v;
	unsigned char blob[PYSHM_WAITER_BLOB_SIZE];
	struct pyshm_region *chan;
	struct pyshm_waiter *w;
	unsigned long long max = 0;
	int fd, side = 1, sock = -1, ret, n;
	struct port *p;

	if (!spec)
		return NULL;
	v = spec_get(spec, "kmod");
	if (v) {
		/* Before any region call: import tokens in the parent's domain. */
		ret = pyshm_kmod_domain_adopt(atoi(v));
		if (ret)
			return pymod_raise_from_errno(st, ret, "adopt the kmod domain");
	}
	v = spec_get(spec, "chan");
	if (!v || sscanf(v, "%d:%llu", &fd, &max) != 2)
		return PyErr_Format(PyExc_ValueError, "bad worker spec: %s", spec);
	v = spec_get(spec, "side");
	if (v)
		side = atoi(v);
	v = spec_get(spec, "sock");
	if (v)
		sock = atoi(v);
	ret = pyshm_region_from_fd(fd, max, &chan);
	if (!ret)
		ret = port_attach(chan, side, sock, &p);
	if (ret)
		return pymod_raise_from_errno(st, ret, "attach the worker channel");
	p->link = true;
	v = spec_get(spec, "waiter");
	if (v && sscanf(v, "%d:", &fd) == 1 && strchr(v, ':')) {
		n = unhex(strchr(v, ':') + 1, blob, sizeof(blob));
		if (n > 0 && pyshm_waiter_adopt(fd, blob, (size_t)n, &w) == 0) {
			pyshm_waiter_free(p->uwaiter);
			p->uwaiter = w;
		}
	}
	v = spec_get(spec, "peer");
	if (v) {
		pyshm_ring_set_peer(p->tx, atoi(v));
		p->peer_inherits = p->uwaiter != NULL && spec_get(spec, "waiter");
	}
	v = spec_get(spec, "life");
	if (v && start_detached(lifeline_main, (void *)(intptr_t)atoi(v)))
		return pymod_raise_from_errno(st, -errno, "lifeline thread");
	return port_wrap(st, p);
}

/* ---- interruptible sleep (time.sleep in worker interpreters) ------------ */

static PyObject *mod_sleep(PyObject *mod, PyObject *arg)
{
	pymod_state *st = get_state(mod);
	struct worker *w = st->self_worker;
	double secs = PyFloat_AsDouble(arg), deadline, left;
	struct timespec ts, now;
	atomic_uint dummy = 0;
	long ret;
	int err;

	if (secs == -1 && PyErr_Occurred())
		return NULL;
	if (secs < 0)
		return PyErr_Format(PyExc_ValueError, "sleep length must be non-negative");
	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = now.tv_sec + now.tv_nsec * 1e-9 + secs;
	for (;;) {
		if (worker_check_terminated(st) < 0)
			return NULL;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = deadline - (now.tv_sec + now.tv_nsec * 1e-9);
		if (left <= 0)
			Py_RETURN_NONE;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		Py_BEGIN_ALLOW_THREADS
		/* terminate() sets the word and wakes us. */
		ret = futex(w ? &w->terminate : &dummy, FUTEX_WAIT, 0, &ts);
		err = ret < 0 ? errno : 0;
		Py_END_ALLOW_THREADS
		if (err == EINTR && PyErr_CheckSignals() < 0)
			return NULL;
	}
}

PyMethodDef worker_module_methods[] = {
	{ "_start_interpreter", mod_start_interpreter, METH_VARARGS, NULL },
	{ "_take_link", mod_take_link, METH_NOARGS, NULL },
	{ "_spawn_process", mod_spawn_process, METH_VARARGS, NULL },
	{ "_child_link", mod_child_link, METH_O, NULL },
#if PYMOD_HAVE_SUBINTERPRETERS
	{ "_spare_stop", mod_spare_stop, METH_O, NULL },
#endif
	{ "_sleep", mod_sleep, METH_O,
	  "_sleep(seconds)\n--\n\ntime.sleep() that terminate() can interrupt." },
	{ NULL }
};

static PyMethodDef handle_methods[] = {
	{ "join", (PyCFunction)(void (*)(void))handle_join, METH_VARARGS | METH_KEYWORDS, NULL },
	{ "terminate", (PyCFunction)(void (*)(void))handle_terminate,
	  METH_VARARGS | METH_KEYWORDS, NULL },
	{ NULL }
};

static PyGetSetDef handle_getset[] = {
	{ "exit_code", (getter)handle_get_exit_code, NULL, NULL, NULL },
	{ "alive", (getter)handle_get_alive, NULL, NULL, NULL },
	{ "pid", (getter)handle_get_pid, NULL, NULL, NULL },
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
