// SPDX-License-Identifier: MIT
/*
 * A worker's resource limits and usage: RLIMIT_DATA and RLIMIT_CPU on a
 * process worker, the CPU time and peak RSS it used (its thread's CPU time
 * in interpreter mode), and the WorkerError text that names the limit a
 * worker exceeded.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

/* In a process worker: where to report a MemoryError, and its peak RSS
 * at exit; only that process reports (not a child it forks). */
static int child_report_fd = -1;
static pid_t child_report_pid;

/* VmHWM of a live process (0: this one), bytes; -1 if not known. */
static long long proc_hwm(pid_t pid)
{
	char path[64], line[128];
	long long kb = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static double timespec_secs(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}

static double timeval_secs(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec * 1e-6;
}

static bool has_limits(const struct worker *w)
{
	return w->usage.max_memory || w->usage.max_cpu > 0;
}

int worker_usage_pipe(struct worker *w, int report[2])
{
	w->usage.rss_seen = -1;
	/* posix_spawn() runs the child on our memory until its exec(), which
	 * keeps our peak RSS as the child's in its rusage (ru_maxrss). */
	w->usage.spawn_hwm = proc_hwm(0);
	if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) {
		report[0] = report[1] = -1;
		return -errno;
	}
	return 0;
}

/* What a worker past its memory limit may still take to report its
 * MemoryError (see mod_target_failed()). */
#define MEMORY_HEADROOM (32 << 20)

/*
 * Applied by the parent right after posix_spawn() (which cannot set
 * limits): the child is still starting Python then, and RLIMIT_CPU counts
 * the CPU time it used before. The hard memory limit leaves room for the
 * report of a MemoryError; the hard CPU limit is a second past the soft
 * one: SIGXCPU ends the worker, SIGKILL one that handles it. No core dump
 * for a worker ended so.
 */
static int set_limit(pid_t pid, int resource, rlim_t soft, rlim_t hard)
{
	struct rlimit rl, old;

	/* Never above the limits it inherited from us: only lower ones
	 * need no privilege. */
	if (prlimit(pid, resource, NULL, &old) < 0)
		return -errno;
	rl.rlim_max = hard < old.rlim_max ? hard : old.rlim_max;
	rl.rlim_cur = soft < rl.rlim_max ? soft : rl.rlim_max;
	if (prlimit(pid, resource, &rl, NULL) < 0)
		return -errno;
	return 0;
}

int worker_usage_apply(struct worker *w, pid_t pid)
{
	struct rlimit rl;
	rlim_t secs;
	int ret;

	if (w->usage.max_memory) {
		ret = set_limit(pid, RLIMIT_DATA, (rlim_t)w->usage.max_memory,
				(rlim_t)w->usage.max_memory + MEMORY_HEADROOM);
		if (ret)
			return ret;
	}
	if (w->usage.max_cpu > 0) {
		/* Whole seconds, rounded up. */
		secs = (rlim_t)w->usage.max_cpu;
		if ((double)secs < w->usage.max_cpu)
			secs++;
		ret = set_limit(pid, RLIMIT_CPU, secs, secs + 1);
		if (ret)
			return ret;
		rl.rlim_cur = rl.rlim_max = 0;
		if (prlimit(pid, RLIMIT_CORE, &rl, NULL) < 0)
			return -errno;
	}
	return 0;
}

/*
 * The monitor thread: the child has exited and is not reaped yet. Its peak
 * RSS: what it reported as it exited; else its rusage's, if above ours at
 * its spawn (else that may be ours); else the last read while it ran.
 */
void worker_usage_exited(struct worker *w, const struct rusage *ru)
{
	long long reported = -1, rss = (long long)ru->ru_maxrss * 1024;
	char buf[128], *h;
	ssize_t n = 0;
	bool hit;

	if (w->usage.report_fd) {
		n = read(w->usage.report_fd - 1, buf, sizeof(buf) - 1);
		close(w->usage.report_fd - 1);
		w->usage.report_fd = 0;
	}
	buf[n > 0 ? n : 0] = 0;
	hit = strchr(buf, 'm') != NULL;
	h = strchr(buf, 'h');
	if (h)
		reported = strtoll(h + 1, NULL, 10);
	pthread_mutex_lock(&w->lock);
	if (reported > 0)
		rss = reported;
	else if (rss <= w->usage.spawn_hwm && w->usage.rss_seen > 0)
		rss = w->usage.rss_seen;
	w->usage.memory_hit |= hit;
	w->usage.cpu_final = timeval_secs(&ru->ru_utime) + timeval_secs(&ru->ru_stime);
	w->usage.rss_final = rss;
	w->usage.final = true;
	pthread_mutex_unlock(&w->lock);
}

static double thread_cpu(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return timespec_secs(&ts);
}

void worker_usage_thread_start(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->usage.clock_set = pthread_getcpuclockid(pthread_self(), &w->usage.clock) == 0;
	w->usage.cpu_base = thread_cpu();
	pthread_mutex_unlock(&w->lock);
}

/* Before the thread goes: its clock is read no more. */
void worker_usage_thread_end(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->usage.clock_set)
		w->usage.cpu_final = thread_cpu() - w->usage.cpu_base;
	w->usage.clock_set = false;
	w->usage.rss_final = -1;
	w->usage.final = true;
	pthread_mutex_unlock(&w->lock);
}

/* CPU time (seconds) and peak RSS (bytes, -1 unknown) of @w so far. */
static void usage_now(struct worker *w, double *cpu, long long *rss)
{
	struct timespec ts;
	clockid_t clock;

	*cpu = 0;
	*rss = -1;
	pthread_mutex_lock(&w->lock);
	if (w->usage.final) {
		*cpu = w->usage.cpu_final;
		*rss = w->usage.rss_final;
	} else if (w->mode == WORKER_PROCESS && w->pidfd >= 0) {
		/* Not reaped (the monitor records the final usage first,
		 * under the lock): the pid is still the worker's. */
		if (clock_getcpuclockid(w->pid, &clock) == 0 &&
		    clock_gettime(clock, &ts) == 0)
			*cpu = timespec_secs(&ts);
		*rss = proc_hwm(w->pid);
		if (*rss > w->usage.rss_seen)
			w->usage.rss_seen = *rss;
	} else if (w->mode == WORKER_INTERP && w->usage.clock_set) {
		/* The thread reads its clock no more once clock_set is
		 * false, under the lock, before it ends. */
		if (clock_gettime(w->usage.clock, &ts) == 0)
			*cpu = timespec_secs(&ts) - w->usage.cpu_base;
	}
	pthread_mutex_unlock(&w->lock);
	if (w->mode == WORKER_INTERP)
		*rss = -1;
	if (*cpu < 0)
		*cpu = 0;
}

/*
 * The resource limit that ended @w, as text for its WorkerError, into
 * @buf; 2 when it surely was one, 1 when it may have been (a memory-limited
 * worker that died without a word), 0 when none.
 */
static int limit_text(struct worker *w, char *buf, size_t size)
{
	bool exited, terminated, hit, final;
	double cpu;
	int code;

	pthread_mutex_lock(&w->lock);
	exited = w->exited;
	terminated = w->terminated;
	code = w->exit_code;
	hit = w->usage.memory_hit;
	final = w->usage.final;
	cpu = w->usage.cpu_final;
	pthread_mutex_unlock(&w->lock);

	if (hit && w->usage.max_memory) {
		snprintf(buf, size, "the worker exceeded resource_limits['max_memory_bytes'] = %llu",
			 w->usage.max_memory);
		return 2;
	}
	if (!exited || terminated)
		return 0;
	if (w->usage.max_cpu > 0 &&
	    (code == -SIGXCPU ||
	     /* The hard limit, a second past: rusage samples. */
	     (code == -SIGKILL && final && cpu >= w->usage.max_cpu * 0.9))) {
		snprintf(buf, size, "the worker exceeded resource_limits['max_cpu_seconds'] = %g "
			 "and was killed by %s", w->usage.max_cpu,
			 code == -SIGXCPU ? "SIGXCPU" : "SIGKILL");
		return 2;
	}
	/* A worker that died without a word (not one whose error we
	 * read): signals, and a MemoryError whose report failed. */
	if (w->usage.max_memory && code != 0 && !w->error_seen) {
		snprintf(buf, size, "the worker may have exceeded "
			 "resource_limits['max_memory_bytes'] = %llu", w->usage.max_memory);
		return 1;
	}
	return 0;
}

#if PY_VERSION_HEX >= 0x030C0000
#define fetch_exception(exc) (*(exc) = PyErr_GetRaisedException())
#define restore_exception(exc) PyErr_SetRaisedException(exc)
#else
static void fetch_exception(PyObject **exc)
{
	PyObject *type, *tb;

	PyErr_Fetch(&type, exc, &tb);
	PyErr_NormalizeException(&type, exc, &tb);
	if (*exc && tb)
		PyException_SetTraceback(*exc, tb);
	Py_XDECREF(type);
	Py_XDECREF(tb);
}

static void restore_exception(PyObject *exc)
{
	if (exc)
		PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc,
			      PyException_GetTraceback(exc));
}
#endif

/* A MemoryError the target of a memory-limited worker ended with. */
static bool is_memory_error(PyObject *exc)
{
	PyObject *type = PyObject_GetAttrString(exc, "remote_type");
	int eq = 0;

	if (type && PyUnicode_Check(type))
		eq = PyUnicode_CompareWithASCIIString(type, "MemoryError") == 0;
	Py_XDECREF(type);
	PyErr_Clear();
	return eq;
}

void worker_usage_annotate(pymod_state *st, struct worker *w)
{
	PyObject *exc, *text, *args;
	char buf[200];

	if (!w || !has_limits(w) || !PyErr_ExceptionMatches(st->WorkerError))
		return;
	fetch_exception(&exc);
	if (!exc)
		return;
	if (w->usage.max_memory && is_memory_error(exc)) {
		pthread_mutex_lock(&w->lock);
		w->usage.memory_hit = true;
		pthread_mutex_unlock(&w->lock);
	}
	if (limit_text(w, buf, sizeof(buf))) {
		text = PyUnicode_FromFormat("%s: %S", buf, exc);
		args = text ? PyTuple_Pack(1, text) : NULL;
		if (!args || PyObject_SetAttrString(exc, "args", args) < 0)
			PyErr_Clear();	/* the unannotated error is still right */
		Py_XDECREF(args);
		Py_XDECREF(text);
	}
	restore_exception(exc);
}

/* At the exit of a process worker (not one killed by a signal). */
static void child_report_hwm(void)
{
	char buf[32];
	ssize_t n;
	int len;

	if (getpid() != child_report_pid)
		return;
	len = snprintf(buf, sizeof(buf), "h%lld\n", proc_hwm(0));
	if (child_report_fd >= 0 && len > 0)
		n = write(child_report_fd, buf, (size_t)len);
	(void)n;
}

void worker_usage_child_fd(int fd)
{
	if (child_report_fd >= 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return;
	child_report_fd = fd;
	child_report_pid = getpid();
	atexit(child_report_hwm);
}

/*
 * _target_failed(exc): the target of this worker raised @exc, which is
 * about to be reported. In a process worker (its main interpreter: a worker
 * interpreter it started reports to it, not to us), a MemoryError is told
 * to the parent at once, and the soft memory limit goes up to the hard one:
 * the target's memory is still held, and the report needs some.
 */
static PyObject *mod_target_failed(PyObject *mod, PyObject *exc)
{
	struct rlimit rl;
	ssize_t n;

	if (child_report_fd < 0 || getpid() != child_report_pid ||
	    PyInterpreterState_Get() != PyInterpreterState_Main() ||
	    !PyErr_GivenExceptionMatches(exc, PyExc_MemoryError))
		Py_RETURN_NONE;
	n = write(child_report_fd, "m", 1);
	(void)n;
	if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_DATA, &rl);
	}
	Py_RETURN_NONE;
}

/* _resource_usage(handle) -> {"cpu_seconds": float, "max_rss_bytes": int | None} */
static PyObject *mod_resource_usage(PyObject *mod, PyObject *obj)
{
	struct worker *w = handle_worker(get_state(mod), obj);
	long long rss;
	double cpu;

	if (!w)
		return NULL;
	usage_now(w, &cpu, &rss);
	if (rss < 0)
		return Py_BuildValue("{sdsO}", "cpu_seconds", cpu, "max_rss_bytes", Py_None);
	return Py_BuildValue("{sdsL}", "cpu_seconds", cpu, "max_rss_bytes", rss);
}

/* _check_limits(handle): WorkerError if a resource limit ended the worker,
 * raised by the first join() that sees it ended (as recv() raises once). */
static PyObject *mod_check_limits(PyObject *mod, PyObject *obj)
{
	pymod_state *st = get_state(mod);
	struct worker *w = handle_worker(st, obj);
	char buf[200];

	if (!w)
		return NULL;
	if (has_limits(w) && !w->usage.join_raised && atomic_load(&w->done) &&
	    limit_text(w, buf, sizeof(buf)) == 2) {
		w->usage.join_raised = true;
		return PyErr_Format(st->WorkerError, "%s", buf);
	}
	Py_RETURN_NONE;
}

PyMethodDef worker_usage_methods[] = {
	{ "_resource_usage", mod_resource_usage, METH_O, NULL },
	{ "_check_limits", mod_check_limits, METH_O, NULL },
	{ "_target_failed", mod_target_failed, METH_O, NULL },
	{ NULL }
};
