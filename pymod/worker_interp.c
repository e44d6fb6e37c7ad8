// SPDX-License-Identifier: MIT
/*
 * Interpreter-mode workers: an own-GIL subinterpreter created on a new OS
 * thread (or taken from the spare made ahead of time), running
 * pyshm_workers._bootstrap with the parent's sys.path.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

/* Set by the thread that creates a worker interpreter, for its bootstrap. */
static __thread struct worker *tls_boot;

#if PYMOD_HAVE_SUBINTERPRETERS
/*
 * Interpreters of ours in this process, asked for and not yet ended (workers
 * and the spare). The child of a fork() made meanwhile crashes or hangs in
 * CPython, which clears every other interpreter in PyOS_AfterFork_Child()
 * without a thread state: os.fork() is refused while there are any
 * (_worker.py).
 */
static atomic_int interps_alive;
static pthread_once_t interps_once = PTHREAD_ONCE_INIT;

static void interps_reset_in_child(void)
{
	atomic_store(&interps_alive, 0);	/* their threads stayed behind */
}

static void interps_init(void)
{
	pthread_atfork(NULL, NULL, interps_reset_in_child);
}

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

/*
 * The stop tracer, set on every thread of a worker interpreter that must end
 * (terminate() past its grace period, os._exit()): every event (call, line,
 * return, exception) raises SystemExit, so a handler that catches it cannot
 * run a line of its own and the exception unwinds the thread. Only a C call
 * that does not return keeps a thread from ending.
 */
static int stop_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
	PyErr_SetNone(PyExc_SystemExit);
	return -1;
}

/* Where thread state @t is, "file:line in function", into @buf. With its
 * interpreter's GIL, @t pinned. */
static void where_is(PyThreadState *t, char *buf, size_t size)
{
	PyFrameObject *f = PyThreadState_GetFrame(t);
	const char *file, *fn, *slash;
	PyCodeObject *code;

	buf[0] = 0;
	if (!f)
		return;
	code = PyFrame_GetCode(f);
	file = PyUnicode_AsUTF8(code->co_filename);
	fn = PyUnicode_AsUTF8(code->co_name);
	slash = file ? strrchr(file, '/') : NULL;
	snprintf(buf, size, "%s:%d in %s", slash ? slash + 1 : file ? file : "?",
		 PyFrame_GetLineNumber(f), fn ? fn : "?");
	Py_DECREF(code);
	Py_DECREF(f);
	PyErr_Clear();
}

/*
 * One round of terminate() inside the interpreter (pinned by the caller):
 * SystemExit at the next bytecode of the worker's thread and, with @trace,
 * the stop tracer on all its threads; @where gets where that thread is, for
 * the message at exit should it not stop. Takes the interpreter's GIL, which
 * a thread busy in C may hold for a long time (gil_wait says so meanwhile).
 */
static void interrupt_interp(struct worker *w, PyInterpreterState *interp,
			     PyThreadState *target, bool trace, char *where, size_t size)
{
	PyThreadState *t = PyThreadState_New(interp);

	if (!t)
		return;
	atomic_store(&w->gil_wait, true);
	PyEval_RestoreThread(t);
	atomic_store(&w->gil_wait, false);
	PyThreadState_SetAsyncExc(w->thread_id, PyExc_SystemExit);
	if (trace)
		PyEval_SetTraceAllThreads(stop_trace, NULL);
	where_is(target, where, size);
	PyThreadState_Clear(t);
	PyThreadState_DeleteCurrent();
}

/*
 * terminate() of an interpreter worker, on a thread of ours (never the
 * caller's: it must take the worker's GIL). SystemExit at the next bytecode
 * of the worker's thread, again every 100 ms for code that swallows it, and
 * once the grace period is over the stop tracer on all its threads, until the
 * interpreter ends.
 */
void *worker_terminator_main(void *arg)
{
	struct stopper *k = arg;
	struct worker *w = k->w;
	double escalate = mono_now() + k->grace;
	struct timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	PyInterpreterState *interp = NULL;
	PyThreadState *target = NULL;
	char where[sizeof(w->where)];
	bool pinned, trace;

	PyMem_RawFree(k);
	while (!atomic_load(&w->done)) {
		pthread_mutex_lock(&w->lock);
		/* While running and not ending, the interpreter and the worker
		 * thread's state outlive our pin: the worker waits for it to go
		 * before it ends (stop_interrupting()). */
		pinned = w->running && !w->ending;
		if (pinned) {
			w->interp_users++;
			interp = w->interp;
			target = w->tstate;
		}
		trace = pinned && !w->traced && mono_now() >= escalate;
		pthread_mutex_unlock(&w->lock);
		if (pinned) {
			where[0] = 0;
			interrupt_interp(w, interp, target, trace, where, sizeof(where));
			/* Without the interpreter's GIL: its threads may hold the
			 * lock while they wait for it. */
			pthread_mutex_lock(&w->lock);
			w->traced |= trace;
			memcpy(w->where, where, sizeof(where));
			if (--w->interp_users == 0)
				pthread_cond_broadcast(&w->cond);
			pthread_mutex_unlock(&w->lock);
		}
		/* A receiver still spinning at the first kick sleeps after it
		 * without a wakeup: kick again. */
		worker_kick_blocked(w);
		syscall(SYS_futex, &w->done, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
	}
	worker_put(w);
	return NULL;
}

/*
 * _exit(n), os._exit() in a worker interpreter (os._exit of a subinterpreter
 * would end the whole process): this worker ends with exit code n. Its
 * threads get the stop tracer at once, as a process's threads would not run
 * another line, and are interrupted as by terminate().
 */
static PyObject *mod_exit(PyObject *mod, PyObject *arg)
{
	struct worker *w = get_state(mod)->self_worker;
	long code = PyLong_AsLong(arg);
	bool first;
	PyObject *exc;
	int ret;

	if (code == -1 && PyErr_Occurred())
		return NULL;
	if (code < INT_MIN || code > INT_MAX)
		return PyErr_Format(PyExc_OverflowError, "exit code out of range");
	if (!w)
		_exit((int)code);	/* not a worker: what os._exit() does */
	pthread_mutex_lock(&w->lock);
	first = !w->exited && !w->terminated && !w->exit_requested;
	if (first) {
		w->exit_requested = true;
		w->exit_request = (int)code;
	}
	if (first && w->running) {
		/* Under the lock: once the worker's thread has the lock to end
		 * its target, it sees traced and drops the tracer itself. */
		w->traced = true;
		PyEval_SetTraceAllThreads(stop_trace, NULL);
	}
	pthread_mutex_unlock(&w->lock);
	if (first) {
		worker_interrupt(w);
		ret = worker_start_stopper(worker_terminator_main, w, 0);
		if (ret)
			return pymod_raise_from_errno(get_state(mod), ret, "os._exit");
	}
	exc = PyLong_FromLong(code);
	if (exc) {
		PyErr_SetObject(PyExc_SystemExit, exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/*
 * Keep terminate() off the interpreter from here on (its threads interrupt
 * it only while running), and drop what it may have left for this thread: a
 * pending SystemExit, the stop tracer (the interpreter's other threads keep
 * it, and end); @ending: the interpreter is about to end. The GIL is released
 * while we wait for a terminator inside the interpreter to leave: it may be
 * waiting for our GIL.
 */
static void stop_interrupting(struct worker *w, bool ending)
{
	PyThreadState *save = PyEval_SaveThread();
	bool traced;

	pthread_mutex_lock(&w->lock);
	w->running = false;
	if (ending)
		w->ending = true;
	while (w->interp_users)
		pthread_cond_wait(&w->cond, &w->lock);
	traced = w->traced;
	pthread_mutex_unlock(&w->lock);
	PyEval_RestoreThread(save);
	if (traced)
		PyEval_SetTrace(NULL, NULL);
	PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
	PyErr_Clear();
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
	if (res) {
		code = PyLong_Check(res) ? (int)PyLong_AsLong(res) : 1;
		Py_DECREF(res);
		PyErr_Clear();
	} else if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
		/* terminate() arriving early; never let PyErr_Print() turn it
		 * into an exit of the whole process. */
		PyErr_Clear();
		code = WORKER_TERMINATED_CODE;
	} else {
		PyErr_WriteUnraisable(NULL);
	}
	/* The worker's own workers and its stream end without interruption. */
	stop_interrupting(w, false);
	res = PyObject_CallMethod(mod, "end", "O",
				  atomic_load(&w->terminate) ? Py_True : Py_False);
	if (!res)
		PyErr_WriteUnraisable(NULL);
	Py_XDECREF(res);
	Py_DECREF(mod);
	return code;

out_error:
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
	int code = WORKER_TERMINATED_CODE;

	pthread_mutex_lock(&w->lock);
	w->interp = PyThreadState_GetInterpreter(ts);
	w->thread_id = PyThread_get_thread_ident();
	w->tstate = ts;
	w->running = !w->terminated;
	pthread_mutex_unlock(&w->lock);

	worker_usage_thread_start(w);
	if (w->running)
		code = run_bootstrap(w);
	if (atomic_load(&w->terminate))
		code = WORKER_TERMINATED_CODE;

	stop_interrupting(w, true);
	Py_EndInterpreter(ts);
	worker_usage_thread_end(w);
	atomic_fetch_sub(&interps_alive, 1);

	/* os._exit(n) decides, whenever it came (a thread may call it while
	 * the interpreter ends). */
	pthread_mutex_lock(&w->lock);
	w->tstate = NULL;
	if (w->exit_requested)
		code = w->exit_request;
	pthread_mutex_unlock(&w->lock);
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
		atomic_fetch_sub(&interps_alive, 1);
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
		/* Counted as alive still: the worker's now. */
		free_strv(arg);
		interp_run(w, ts);
		return NULL;
	}
	Py_EndInterpreter(ts);
out_exit:
	atomic_fetch_sub(&interps_alive, 1);
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
	atomic_fetch_add(&interps_alive, 1);
	if (start_detached(spare_main, copy) == 0) {
		spare.threads++;
	} else {
		atomic_fetch_sub(&interps_alive, 1);
		free_strv(copy);
	}
}

/*
 * Hand @w to the waiting spare (taking a reference); false if none waits.
 * spare.lock is taken without the GIL: a thread waking in the wait below
 * holds it while it takes the GIL back, so a thread holding the GIL must
 * never wait for it (two Worker() calls from two threads deadlocked so).
 */
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
	Py_BEGIN_ALLOW_THREADS
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
	while (spare.threads && !spare.ready && !spare.stop)
		pthread_cond_wait(&spare.cond, &spare.lock);
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
	Py_END_ALLOW_THREADS
	return taken;
}

/* An interpreter worker ended: a CPU may be free for a spare again. */
void worker_spare_ended(struct worker *w)
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
	int disable = PyObject_IsTrue(final);

	if (disable < 0)
		return NULL;
	if (PyInterpreterState_Get() != PyInterpreterState_Main())
		Py_RETURN_NONE;
	/* Without the GIL, as in spare_take(). */
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&spare.lock);
	if (disable)
		spare.disabled = true;
	spare.stop = true;
	pthread_cond_broadcast(&spare.cond);
	while (spare.threads > 0 && spare.pid == getpid())
		pthread_cond_wait(&spare.cond, &spare.lock);
	pthread_mutex_unlock(&spare.lock);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}
#endif

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
	pthread_once(&interps_once, interps_init);
	if (spare_take(w))
		return handle_wrap(st, w);	/* the spare was counted */
	atomic_fetch_add(&interps_alive, 1);
	ret = start_detached(interp_main, worker_get(w));
	if (ret) {
		atomic_fetch_sub(&interps_alive, 1);
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

#if PYMOD_HAVE_SUBINTERPRETERS
/*
 * _import_in_main(name): import a module in the main interpreter, from any
 * interpreter, on this thread (see _ImportInMainFirst in _bootstrap.py). The
 * caller's GIL is released while the main interpreter's is held, never both.
 * Errors stay there: the caller's own import reports its own.
 */
static PyObject *mod_import_in_main(PyObject *mod, PyObject *name)
{
	PyInterpreterState *main_interp = PyInterpreterState_Main();
	PyThreadState *save, *t;
	PyObject *m;

	if (!PyUnicode_Check(name))
		return PyErr_Format(PyExc_TypeError, "expected a module name");
	if (PyInterpreterState_Get() == main_interp)
		return PyImport_Import(name);
	/* The name goes across as bytes: a str belongs to our interpreter. */
	name = PyUnicode_AsUTF8String(name);
	if (!name)
		return NULL;
	save = PyEval_SaveThread();
	t = PyThreadState_New(main_interp);
	if (t) {
		PyEval_RestoreThread(t);
		m = PyImport_ImportModule(PyBytes_AS_STRING(name));
		if (!m)
			PyErr_Clear();
		Py_XDECREF(m);
		PyThreadState_Clear(t);
		PyThreadState_DeleteCurrent();
	}
	PyEval_RestoreThread(save);
	Py_DECREF(name);
	Py_RETURN_NONE;
}

/*
 * _fork_blockers() -> int: how many interpreters of ours make a fork of this
 * process unsafe (see interps_alive); 0 in a subinterpreter, where CPython
 * refuses fork() itself.
 */
static PyObject *mod_fork_blockers(PyObject *mod, PyObject *unused)
{
	if (PyInterpreterState_Get() != PyInterpreterState_Main())
		return PyLong_FromLong(0);
	return PyLong_FromLong(atomic_load(&interps_alive));
}
#endif

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

PyMethodDef worker_interp_methods[] = {
	{ "_start_interpreter", mod_start_interpreter, METH_VARARGS, NULL },
	{ "_take_link", mod_take_link, METH_NOARGS, NULL },
#if PYMOD_HAVE_SUBINTERPRETERS
	{ "_spare_stop", mod_spare_stop, METH_O, NULL },
	{ "_fork_blockers", mod_fork_blockers, METH_NOARGS, NULL },
	{ "_import_in_main", mod_import_in_main, METH_O, NULL },
	{ "_exit", mod_exit, METH_O,
	  "_exit(n)\n--\n\nos._exit() of a worker interpreter: ends this worker "
	  "with exit code n." },
#endif
	{ NULL }
};
