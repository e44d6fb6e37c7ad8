// SPDX-License-Identifier: MIT
/*
 * Process-mode workers: forked by the process template (worker_template.c)
 * or a fresh Python started with posix_spawn() (never fork() of a threaded
 * parent), handed its end of the link channel, its io_uring waiter, a
 * lifeline pipe and the kmod domain by inheritance; a monitor thread waits
 * for the exit code: on its pidfd, or from the template.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub.h"
#include "worker.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* A template's child: its end as the template reaped it. A template that
 * died first leaves the exit code unknown (-1) once the child is gone. */
static int monitor_template_child(struct worker *w)
{
	struct pollfd pfd = { .fd = w->pidfd, .events = POLLIN };
	struct rusage ru;
	int code;

	if (worker_template_status(w->status_fd, &code, &ru) == 0) {
		worker_usage_exited(w, &ru);
		return code;
	}
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	return -1;
}

static void *monitor_main(void *arg)
{
	struct worker *w = arg;
	siginfo_t si = { 0 };
	struct rusage ru;
	int code = -1;

	if (w->status_fd >= 0) {
		code = monitor_template_child(w);
		goto out_finish;
	}
	/* Its usage first, while the child is a zombie: the pid stays its
	 * own until it is reaped (see usage_now()). */
	while (syscall(SYS_waitid, P_PIDFD, w->pidfd, &si, WEXITED | WNOWAIT, &ru) < 0) {
		if (errno != EINTR)
			goto out_finish;
	}
	worker_usage_exited(w, &ru);
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


int worker_spawn(pid_t *pid, char **argv, posix_spawn_file_actions_t *fa)
{
	posix_spawnattr_t attr;
	sigset_t none, defs;
	int ret;

	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&defs);
	sigaddset(&defs, SIGPIPE);
	sigaddset(&defs, SIGXFSZ);
	sigaddset(&defs, SIGINT);
	sigaddset(&defs, SIGTERM);
	sigaddset(&defs, SIGXCPU);	/* RLIMIT_CPU ends it */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = -posix_spawn(pid, argv[0], fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(fa);
	posix_spawnattr_destroy(&attr);
	return ret;
}

/* The worker a fresh Python: posix_spawn() of @argv, the @npass fds as its
 * 3..; 0 or -errno. */
static int spawn_fresh(char **argv, const int *pass, int npass, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int tmp[WORKER_MAX_PASS], i, ret = 0;

	/* Move what we pass above 3 + npass first, so the dup2()s into
	 * 3.. in the child cannot clobber each other. */
	for (i = 0; i < npass; i++) {
		tmp[i] = fcntl(pass[i], F_DUPFD_CLOEXEC, 3 + npass);
		if (tmp[i] < 0) {
			ret = -errno;
			npass = i;
			goto out_close;
		}
	}
	posix_spawn_file_actions_init(&fa);
	for (i = 0; i < npass; i++)
		posix_spawn_file_actions_adddup2(&fa, tmp[i], 3 + i);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3 + npass);
	ret = worker_spawn(pid, argv, &fa);
out_close:
	for (i = 0; i < npass; i++)
		close(tmp[i]);
	return ret;
}

/*
 * _spawn_process(link, parent, argv, limits=None, template=None) -> handle.
 * The child gets, as fds 3 and up, what the spec (appended to argv) names:
 * its end of the channel, the socket end, its io_uring waiter, our waiter,
 * a lifeline, the kmod domain, and a pipe to report its usage and a
 * MemoryError on; limits are (max_memory_bytes, max_cpu_seconds), 0 for
 * none. template: the argv of a process template to fork it from (see
 * worker_template.c for when it is not).
 */
static PyObject *mod_spawn_process(PyObject *mod, PyObject *args)
{
	pymod_state *st = get_state(mod);
	PyObject *link_obj, *parent_obj, *argv_obj, *limits_obj = Py_None, *tmpl_obj = Py_None;
	unsigned long long max_memory = 0;
	double max_cpu = 0;
	int report[2] = { -1, -1 };
	char blob[PYSHM_WAITER_BLOB_SIZE], hex[2 * PYSHM_WAITER_BLOB_SIZE + 1];
	char spec[2 * PYSHM_WAITER_BLOB_SIZE + 256], item[96];
	int pass[WORKER_MAX_PASS], npass = 0, life[2] = { -1, -1 };
	int child_waiter = -1, bloblen = 0, ret, kfd, pidfd = -1, status_fd = -1;
	bool use_tmpl;
	struct port *link = NULL, *parent_end, *ctl = NULL, *ctl_theirs = NULL;
	char **argv = NULL, **argv2 = NULL, **tmpl_argv = NULL;
	struct worker *w = NULL;
	Py_ssize_t argc;
	pid_t pid;

	if (!PyArg_ParseTuple(args, "OOO!|OO:_spawn_process", &link_obj, &parent_obj,
			      &PyList_Type, &argv_obj, &limits_obj, &tmpl_obj))
		return NULL;
	if (tmpl_obj != Py_None && !PyList_Check(tmpl_obj))
		return PyErr_Format(PyExc_TypeError, "template must be a list or None");
	if (limits_obj != Py_None &&
	    !PyArg_ParseTuple(limits_obj, "Kd:_spawn_process limits", &max_memory, &max_cpu))
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
	w->usage.max_memory = max_memory;
	w->usage.max_cpu = max_cpu;

	/* What to pass, in order; the spec names each one's child fd. */
	spec[0] = 0;
	pass[npass++] = pyshm_region_fd(link->chan);
	snprintf(item, sizeof(item), "chan=%d:%llu,side=%d,inflight=%llu", 2 + npass,
		 (unsigned long long)pyshm_region_max_size(link->chan), link->side,
		 (unsigned long long)link->inflight_max);
	strcat(spec, item);
	if (link->sock >= 0) {
		pass[npass++] = link->sock;
		snprintf(item, sizeof(item), ",sock=%d", 2 + npass);
		strcat(spec, item);
	}
	/* From the template where it serves: not with limits, nor with
	 * pyshm.ko (see worker_template.c). Its children cannot have our
	 * io_uring waiters (io_uring fds do not pass over a socket): such a
	 * link wakes its ends by futex. */
	kfd = pyshm_kmod_domain_fd();
	use_tmpl = tmpl_obj != Py_None && limits_obj == Py_None && kfd < 0;
	if (parent_end->uwaiter && !use_tmpl) {
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
	if (kfd >= 0) {
		pass[npass++] = kfd;
		snprintf(item, sizeof(item), ",kmod=%d", 2 + npass);
		strcat(spec, item);
	}
	/* The control link of the program's hub (broadcasts, locks). */
	ret = hub_link_pair(&ctl, &ctl_theirs);
	if (ret) {
		pymod_raise_from_errno(st, ret, "worker control link");
		goto err_free;
	}
	pass[npass++] = pyshm_region_fd(ctl_theirs->chan);
	pass[npass++] = ctl_theirs->sock;
	snprintf(item, sizeof(item), ",ctl=%d:%llu,csock=%d", 1 + npass,
		 (unsigned long long)pyshm_region_max_size(ctl_theirs->chan), 2 + npass);
	strcat(spec, item);

	ret = worker_usage_pipe(w, report);
	if (ret) {
		pymod_raise_from_errno(st, ret, "worker usage pipe");
		goto err_free;
	}
	pass[npass++] = report[1];
	snprintf(item, sizeof(item), ",usage=%d", 2 + npass);
	strcat(spec, item);

	argc = PyList_GET_SIZE(argv_obj);
	argv2 = PyMem_RawCalloc((size_t)argc + 2, sizeof(*argv2));
	if (!argv2) {
		PyErr_NoMemory();
		goto err_free;
	}
	memcpy(argv2, argv, (size_t)argc * sizeof(*argv2));
	argv2[argc] = spec;

	/* Else, or if the template fails, afresh. */
	ret = -ENOSYS;
	if (use_tmpl) {
		tmpl_argv = strv_from_list(tmpl_obj);
		if (!tmpl_argv)
			goto err_free;
		Py_BEGIN_ALLOW_THREADS
		ret = worker_template_spawn(tmpl_argv, pass, npass, spec, &pid, &pidfd,
					    &status_fd);
		Py_END_ALLOW_THREADS
	}
	if (ret && ret != -ECHILD) {
		Py_BEGIN_ALLOW_THREADS
		ret = spawn_fresh(argv2, pass, npass, &pid);
		Py_END_ALLOW_THREADS
	}
	if (ret == -ECHILD) {
		PyErr_SetString(PyExc_OSError, "the process template failed to start the worker");
		goto err_free;
	}
	if (ret) {
		errno = -ret;
		PyErr_SetFromErrnoWithFilename(PyExc_OSError, argv2[0]);
		goto err_free;
	}

	w->pid = pid;
	w->status_fd = status_fd;
	w->pidfd = pidfd >= 0 ? pidfd : (int)syscall(SYS_pidfd_open, pid, 0);
	if (w->pidfd < 0) {
		/* Without a pidfd we cannot watch it: a broken worker. */
		PyErr_SetFromErrno(PyExc_OSError);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto err_free;
	}
	ret = worker_usage_apply(w, pid);
	if (ret) {
		pymod_raise_from_errno(st, ret, "set the worker's resource limits");
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
		waitpid(pid, NULL, 0);
		goto err_free;
	}
	close(report[1]);
	report[1] = -1;
	w->usage.report_fd = report[0] + 1;	/* the monitor's */
	report[0] = -1;
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
	parent_end->peer_inherits = parent_end->uwaiter != NULL && !use_tmpl;
	w->parent_end = port_get(parent_end);
	parent_end->worker = worker_get(w);
	/* The child owns the link end now; ours just goes. */
	port_put(link);
	port_put(ctl_theirs);
	hub_add_child(ctl);
	PyMem_RawFree(argv2);
	free_strv(argv);
	free_strv(tmpl_argv);
	ret = start_detached(monitor_main, worker_get(w));
	if (ret) {
		/* Nobody would reap it: end it here. */
		worker_put(w);
		syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
		waitpid(pid, NULL, 0);
		if (w->usage.report_fd)
			close(w->usage.report_fd - 1);
		w->usage.report_fd = 0;
		worker_finished(w, -SIGKILL);
		worker_put(w);
		return pymod_raise_from_errno(st, ret, "worker monitor thread");
	}
	return handle_wrap(st, w);

err_free:
	if (report[0] >= 0)
		close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
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
	if (ctl) {
		port_close(ctl);
		port_put(ctl);
		port_close(ctl_theirs);
		port_put(ctl_theirs);
	}
	worker_put(w);
	PyMem_RawFree(argv2);
	free_strv(argv);
	free_strv(tmpl_argv);
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
	v = spec_get(spec, "inflight");
	if (v && strtoull(v, NULL, 10))
		port_set_inflight(p, strtoull(v, NULL, 10));
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
	v = spec_get(spec, "ctl");
	if (v && sscanf(v, "%d:%llu", &fd, &max) == 2 && spec_get(spec, "csock")) {
		struct port *ctl;

		ret = pyshm_region_from_fd(fd, max, &chan);
		if (!ret)
			ret = port_attach(chan, 1, atoi(spec_get(spec, "csock")), &ctl);
		if (ret)
			return pymod_raise_from_errno(st, ret, "attach the control link");
		ctl->link = true;
		hub_set_parent(ctl);
	}
	v = spec_get(spec, "usage");
	if (v)
		worker_usage_child_fd(atoi(v));
	v = spec_get(spec, "life");
	if (v && start_detached(lifeline_main, (void *)(intptr_t)atoi(v)))
		return pymod_raise_from_errno(st, -errno, "lifeline thread");
	return port_wrap(st, p);
}

/* _exit_process(code): exit() (C atexit handlers, stdio) without
 * finalizing the interpreter: the end of a process worker. */
static PyObject *mod_exit_process(PyObject *mod, PyObject *arg)
{
	long code = PyLong_AsLong(arg);

	if (code == -1 && PyErr_Occurred())
		return NULL;
	exit((int)(code & 0xff));
}

PyMethodDef worker_process_methods[] = {
	{ "_spawn_process", mod_spawn_process, METH_VARARGS, NULL },
	{ "_exit_process", mod_exit_process, METH_O, NULL },
	{ "_child_link", mod_child_link, METH_O, NULL },
	{ NULL }
};
