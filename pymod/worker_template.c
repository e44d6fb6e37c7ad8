// SPDX-License-Identifier: MIT
/*
 * The process template: process workers forked from a Python that has
 * already started and imported pyshm_workers, instead of a fresh
 * interpreter each (multiprocessing's forkserver, for our workers).
 *
 * The first process worker a process asks for starts its template
 * (posix_spawn() of "python -c ... _template.main()", its end of a
 * SOCK_SEQPACKET pair as fd 3, /dev/null for stdio, in /), which says
 * its pid when it serves. For each worker the parent sends one request: the spec (worker_process.c), and by
 * SCM_RIGHTS the write end of a status pipe, a directory fd of its cwd,
 * its stdin/stdout/stderr, and the fds the worker is to find as 3 and up.
 * The template forks; the child puts the fds in place, fchdir()s and
 * returns to Python, which runs _bootstrap.process_main() as a spawned
 * worker would. The template answers with the child's pid and a pidfd of
 * it, and once the child has ended writes its wait status and rusage to
 * the status pipe: the child is the template's to reap, and the parent's
 * monitor thread reads them there.
 *
 * A template holds the environment it was started with: a worker asked for
 * in another environment gets a new template (the old one ends once its
 * children have). Workers with resource limits (their limits and peak RSS
 * would count from the template's) and workers on pyshm.ko (which join
 * their parent's kmod domain) are spawned fresh, as is every worker where
 * the template cannot be had.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

#define TMPL_MAX_FDS	(2 + 3 + WORKER_MAX_PASS)
#define TMPL_TIMEOUT_S	30	/* a template that does not answer is given up */

/* parent -> template; then the spec, then by SCM_RIGHTS: status pipe,
 * cwd, the stdio fds whose bit is set, the npass fds */
struct tmpl_req {
	uint32_t npass;
	uint32_t stdio;
	uint32_t spec_len;
	uint32_t reserved;
};

/* template -> parent: first its own pid (it serves), then for each request
 * the child's, with a pidfd of it unless err */
struct tmpl_reply {
	int32_t pid;
	int32_t err;
};

/* template -> status pipe, once the child is reaped */
struct tmpl_status {
	int32_t status;
	int32_t reserved;
	struct rusage ru;
};

extern char **environ;

/* ---- the parent's side ----------------------------------------------------- */

#define TMPL_MAX_OLD	16

static struct {
	pthread_mutex_t lock;
	int sock;
	char *env;		/* environ when it started, flattened */
	size_t env_len;
	pid_t old[TMPL_MAX_OLD];	/* templates started, to reap once ended */
	int nold;
} tmpl = { .lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1 };

static pthread_once_t tmpl_once = PTHREAD_ONCE_INIT;

/* A fork child's template is not its parent's (the socket stays the
 * parent's to use) nor are the parent's old templates its children. */
static void tmpl_forget(void)
{
	pthread_mutex_init(&tmpl.lock, NULL);
	if (tmpl.sock >= 0)
		close(tmpl.sock);
	tmpl.sock = -1;
	tmpl.nold = 0;
	free(tmpl.env);
	tmpl.env = NULL;
}

static void tmpl_atfork(void)
{
	pthread_atfork(NULL, NULL, tmpl_forget);
}

/* environ as one buffer of NUL-ended strings (malloc()ed). */
static char *env_flatten(size_t *len)
{
	size_t n = 0, k;
	char **e, *buf, *p;

	for (e = environ; e && *e; e++)
		n += strlen(*e) + 1;
	buf = malloc(n + 1);
	if (!buf)
		return NULL;
	p = buf;
	for (e = environ; e && *e; e++) {
		k = strlen(*e) + 1;
		memcpy(p, *e, k);
		p += k;
	}
	*len = n;
	return buf;
}

/* Let the template go: it ends once its children have. Under tmpl.lock. */
static void tmpl_drop(void)
{
	int i;

	/* Reap the ones that ended since. */
	for (i = 0; i < tmpl.nold;) {
		if (waitpid(tmpl.old[i], NULL, WNOHANG) != 0)
			tmpl.old[i] = tmpl.old[--tmpl.nold];
		else
			i++;
	}
	if (tmpl.sock < 0)
		return;
	close(tmpl.sock);
	tmpl.sock = -1;
	free(tmpl.env);
	tmpl.env = NULL;
}

/* Start a template for this environment. Under tmpl.lock. */
static int tmpl_start(char **argv)
{
	posix_spawn_file_actions_t fa;
	struct timeval tv = { .tv_sec = TMPL_TIMEOUT_S };
	struct tmpl_reply ready;
	int sv[2], ret;
	ssize_t n;
	pid_t pid;

	pthread_once(&tmpl_once, tmpl_atfork);
	tmpl.env = env_flatten(&tmpl.env_len);
	if (!tmpl.env)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		goto err_env;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	ret = worker_spawn(&pid, argv, &fa);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		goto err_env;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* It says when it serves: one that fails to start (its stderr is
	 * /dev/null) is told from one that failed a request. */
	do
		n = recv(sv[0], &ready, sizeof(ready), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(ready) || ready.pid != pid || ready.err) {
		close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ret = -EPIPE;
		goto err_env;
	}
	tmpl.sock = sv[0];
	/* Reaped once let go of and ended (tmpl_drop()). */
	if (tmpl.nold < TMPL_MAX_OLD)
		tmpl.old[tmpl.nold++] = pid;
	return 0;

err_env:
	free(tmpl.env);
	tmpl.env = NULL;
	return ret;
}

/* One request; the child's pid and pidfd. @sent: whether the template got
 * it (and may have forked the child: then it is not asked again). Under
 * tmpl.lock. */
static int tmpl_request(const int *pass, int npass, const char *spec, int status_w,
			pid_t *pid, int *pidfd, bool *sent)
{
	struct tmpl_req req = { .npass = (uint32_t)npass, .spec_len = (uint32_t)strlen(spec) };
	struct tmpl_reply reply;
	union {
		char buf[CMSG_SPACE(sizeof(int) * TMPL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ .iov_base = &req, .iov_len = sizeof(req) },
		{ .iov_base = (void *)spec, .iov_len = req.spec_len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf };
	struct cmsghdr *cm;
	int fds[TMPL_MAX_FDS], nfds = 0, cwd, i, ret;
	ssize_t n;

	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		return -errno;
	fds[nfds++] = status_w;
	fds[nfds++] = cwd;
	for (i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) >= 0) {
			req.stdio |= 1u << i;
			fds[nfds++] = i;
		}
	}
	for (i = 0; i < npass; i++)
		fds[nfds++] = pass[i];
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	do
		n = sendmsg(tmpl.sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	ret = n < 0 ? -errno : 0;
	close(cwd);
	if (ret)
		return ret;
	*sent = true;

	iov[0].iov_base = &reply;
	iov[0].iov_len = sizeof(reply);
	msg = (struct msghdr){ .msg_iov = iov, .msg_iovlen = 1, .msg_control = u.buf,
			       .msg_controllen = CMSG_SPACE(sizeof(int)) };
	do
		n = recvmsg(tmpl.sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	cm = CMSG_FIRSTHDR(&msg);
	*pidfd = -1;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(pidfd, CMSG_DATA(cm), sizeof(int));
	if (n != (ssize_t)sizeof(reply) || reply.err || reply.pid <= 0 || *pidfd < 0) {
		if (*pidfd >= 0)
			close(*pidfd);
		return n != (ssize_t)sizeof(reply) ? -EPIPE : reply.err ? -reply.err : -EPROTO;
	}
	*pid = reply.pid;
	return 0;
}

int worker_template_spawn(char **argv, const int *pass, int npass, const char *spec,
			  pid_t *pid, int *pidfd, int *status_fd)
{
	bool fresh, sent = false;
	int st[2], ret;
	size_t len;
	char *env;

	if (pipe2(st, O_CLOEXEC) < 0)
		return -errno;
	env = env_flatten(&len);
	if (!env) {
		ret = -ENOMEM;
		goto out_pipe;
	}
	pthread_mutex_lock(&tmpl.lock);
	if (tmpl.sock >= 0 && (len != tmpl.env_len || memcmp(env, tmpl.env, len)))
		tmpl_drop();
	fresh = tmpl.sock < 0;
	ret = fresh ? tmpl_start(argv) : 0;
	if (!ret)
		ret = tmpl_request(pass, npass, spec, st[1], pid, pidfd, &sent);
	if (ret && !sent && !fresh) {
		/* The template is gone (killed?): a new one. */
		tmpl_drop();
		ret = tmpl_start(argv);
		if (!ret)
			ret = tmpl_request(pass, npass, spec, st[1], pid, pidfd, &sent);
	}
	if (ret && tmpl.sock >= 0) {
		/* Broken or gone: the next worker starts another. */
		tmpl_drop();
	}
	pthread_mutex_unlock(&tmpl.lock);
	/* A request the template got may have made the child (it ends when
	 * its lifeline goes): not one to start again. */
	if (ret && sent)
		ret = -ECHILD;
	free(env);
out_pipe:
	close(st[1]);
	if (ret) {
		close(st[0]);
		return ret;
	}
	*status_fd = st[0];
	return 0;
}

int worker_template_fd(void)
{
	int fd;

	pthread_mutex_lock(&tmpl.lock);
	fd = tmpl.sock;
	pthread_mutex_unlock(&tmpl.lock);
	return fd;
}

int worker_template_status(int fd, int *code, struct rusage *ru)
{
	struct tmpl_status s;
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(s)) {
		n = read(fd, (char *)&s + got, sizeof(s) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		got += (size_t)n;
	}
	*code = WIFEXITED(s.status) ? WEXITSTATUS(s.status) : -WTERMSIG(s.status);
	*ru = s.ru;
	return 0;
}

/* ---- the template's side ------------------------------------------------------ */

struct tmpl_child {
	pid_t pid;
	int pidfd;
	int status_w;
};

static void close_fds(const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

/* A request off the socket, checked: 1 with its fds, 0 at the end of the
 * stream, -1 for a request to refuse (its fds closed). */
static int serve_recv(int sock, struct tmpl_req *req, char *spec, size_t spec_max,
		      int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * TMPL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ .iov_base = req, .iov_len = sizeof(*req) },
		{ .iov_base = spec, .iov_len = spec_max - 1 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			*nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)*nfds);
		}
	}
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n < (ssize_t)sizeof(*req) ||
	    req->reserved || req->npass > WORKER_MAX_PASS || req->stdio > 7 ||
	    (size_t)n != sizeof(*req) + req->spec_len ||
	    *nfds != 2 + __builtin_popcount(req->stdio) + (int)req->npass) {
		close_fds(fds, *nfds);
		*nfds = 0;
		return -1;
	}
	spec[req->spec_len] = 0;
	return 1;
}

static void serve_reply(int sock, pid_t pid, int err, int pidfd)
{
	struct tmpl_reply reply = { .pid = pid, .err = err };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &reply, .iov_len = sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (pidfd >= 0) {
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pidfd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* In the child: the fds in place (stdio, then 3.. as the spec says), all
 * others closed, the parent's cwd, signals unblocked. @fds: the cwd, the
 * stdio fds passed, the fds for 3.. */
static int child_setup(const struct tmpl_req *req, int *fds, int nfds)
{
	int high = 3 + (int)req->npass, i, k = 1, fd;
	sigset_t none;

	/* Above every target first, so the dup2()s cannot clobber each other. */
	for (i = 0; i < nfds; i++) {
		fd = fcntl(fds[i], F_DUPFD_CLOEXEC, high);
		if (fd < 0)
			return -errno;
		fds[i] = fd;
	}
	if (fchdir(fds[0]) < 0)
		return -errno;
	for (i = 0; i < 3; i++) {
		if (!(req->stdio & (1u << i)))
			close(i);
		else if (dup2(fds[k++], i) < 0)
			return -errno;
	}
	for (i = 0; i < (int)req->npass; i++)
		if (dup2(fds[k + i], 3 + i) < 0)
			return -errno;
	if (syscall(SYS_close_range, (unsigned int)high, ~0U, 0) < 0) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
	}
	sigemptyset(&none);
	return -pthread_sigmask(SIG_SETMASK, &none, NULL);
}

/* End of a child: its status and rusage to the parent. */
static void serve_reap(struct tmpl_child *c)
{
	struct tmpl_status s = { 0 };
	ssize_t n;

	while (wait4(c->pid, &s.status, 0, &s.ru) < 0 && errno == EINTR)
		;
	do
		n = write(c->status_w, &s, sizeof(s));
	while (n < 0 && errno == EINTR);
	close(c->status_w);
	close(c->pidfd);
}

/* A request: fork the child, answer with its pid. 1 in the child (after
 * its setup); in the template 0 with @kid filled in, -1 if there is none. */
static int serve_fork(int sock, const struct tmpl_req *req, int *fds, int nfds,
		      struct tmpl_child *kid)
{
	int err, pidfd;
	pid_t pid;

	PyOS_BeforeFork();
	pid = fork();
	if (pid == 0) {
		PyOS_AfterFork_Child();
		close(fds[0]);		/* the status pipe is the template's */
		fds[0] = -1;
		err = child_setup(req, fds + 1, nfds - 1);
		if (err) {
			errno = -err;
			perror("pyshm_workers template: worker setup");
			_exit(127);
		}
		return 1;
	}
	err = pid < 0 ? errno : 0;
	PyOS_AfterFork_Parent();
	pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pid > 0 && pidfd < 0) {
		err = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	serve_reply(sock, pid, err, pidfd);
	close_fds(fds + 1, nfds - 1);
	if (err) {
		close(fds[0]);
		return -1;
	}
	*kid = (struct tmpl_child){ .pid = pid, .pidfd = pidfd, .status_w = fds[0] };
	return 0;
}

/*
 * _template_serve(fd) -> None in the template once its socket has closed
 * and its children have ended; in a child it forked, the spec to run.
 */
static PyObject *mod_template_serve(PyObject *mod, PyObject *arg)
{
	long fd = PyLong_AsLong(arg);
	int sock = (int)fd, fds[TMPL_MAX_FDS], nfds, i, r;
	struct tmpl_child *kids = NULL, *grown;
	size_t nkids = 0, cap = 0;
	struct pollfd *pfd = NULL;
	struct tmpl_req req;
	char spec[4096];
	bool open = true;

	if (fd == -1 && PyErr_Occurred())
		return NULL;
	if (fd < 0 || fd > INT_MAX)
		return PyErr_Format(PyExc_ValueError, "bad fd %ld", fd);
	serve_reply(sock, getpid(), 0, -1);
	while (open || nkids) {
		if (nkids + 1 > cap) {
			cap = 2 * cap + 8;
			grown = PyMem_RawRealloc(kids, cap * sizeof(*kids));
			if (!grown)
				goto nomem;
			kids = grown;
			PyMem_RawFree(pfd);
			pfd = PyMem_RawMalloc((cap + 1) * sizeof(*pfd));
			if (!pfd)
				goto nomem;
		}
		/* The socket first: its index stays put while children go. */
		pfd[0] = (struct pollfd){ .fd = open ? sock : -1, .events = POLLIN };
		for (i = 0; i < (int)nkids; i++)
			pfd[i + 1] = (struct pollfd){ .fd = kids[i].pidfd, .events = POLLIN };
		Py_BEGIN_ALLOW_THREADS
		r = poll(pfd, nkids + 1, -1);
		Py_END_ALLOW_THREADS
		if (r < 0) {
			if (errno != EINTR) {
				PyErr_SetFromErrno(PyExc_OSError);
				goto out;
			}
			if (PyErr_CheckSignals() < 0)
				goto out;
			continue;
		}
		for (i = (int)nkids - 1; i >= 0; i--) {
			if (pfd[i + 1].revents) {
				serve_reap(&kids[i]);
				kids[i] = kids[--nkids];
			}
		}
		if (!pfd[0].revents)
			continue;
		r = serve_recv(sock, &req, spec, sizeof(spec), fds, &nfds);
		if (r == 0) {
			open = false;
			close(sock);
		} else if (r < 0) {
			serve_reply(sock, -1, EINVAL, -1);
		} else {
			r = serve_fork(sock, &req, fds, nfds, &kids[nkids]);
			if (r > 0) {
				/* The child: what the template had is not its own. */
				PyMem_RawFree(kids);
				PyMem_RawFree(pfd);
				return PyUnicode_FromString(spec);
			}
			if (r == 0)
				nkids++;
		}
	}
	PyMem_RawFree(kids);
	PyMem_RawFree(pfd);
	Py_RETURN_NONE;

nomem:
	PyErr_NoMemory();
out:
	for (i = 0; i < (int)nkids; i++) {
		close(kids[i].pidfd);
		close(kids[i].status_w);
	}
	PyMem_RawFree(kids);
	PyMem_RawFree(pfd);
	return NULL;
}

static PyObject *mod_template_fd(PyObject *mod, PyObject *unused)
{
	return PyLong_FromLong(worker_template_fd());
}

PyMethodDef worker_template_methods[] = {
	{ "_template_serve", mod_template_serve, METH_O,
	  "_template_serve($module, fd, /)\n--\n\n"
	  "Run the process template on socket fd: None once it is done, or,\n"
	  "in a worker it forked, the worker's spec." },
	{ "_template_fd", mod_template_fd, METH_NOARGS,
	  "_template_fd($module, /)\n--\n\n"
	  "The socket to this process's template, or -1 if it has none." },
	{ NULL }
};
