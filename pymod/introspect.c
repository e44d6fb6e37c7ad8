// SPDX-License-Identifier: MIT
/*
 * What `python -m pyshm_workers` (pyshm_workers/_cli.py) asks of the C side:
 * _probe(), what this machine lets pyshm use and why not, each facility
 * tried for real, the way libpyshm uses it, and reported as an errno
 * (nothing here is on a hot path or changes what the library chose); and
 * _set_worker_name(), the "pw:<name>" comm by which stats finds workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/pyshm.h>

#include "state.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* 0, or the errno of setting up a ring; *msg_ring: it has IORING_OP_MSG_RING. */
static int probe_uring(bool *msg_ring)
{
	struct io_uring_probe *probe;
	struct io_uring ring;
	int ret;

	*msg_ring = false;
	ret = io_uring_queue_init(2, &ring, 0);
	if (ret < 0)
		return -ret;
	probe = io_uring_get_probe_ring(&ring);
	*msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return 0;
}

/*
 * 0 when futex_waitv() exists (Int64Array.wait() needs it): called with no
 * futexes it fails with EINVAL, where a kernel without it says ENOSYS.
 */
static int probe_futex_waitv(void)
{
	long ret = syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0);

	return ret < 0 && errno != EINVAL ? errno : 0;
}

static int probe_memfd(void)
{
	int fd = memfd_create("pyshm-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* 0 with the module's ABI version, or the errno of opening /dev/pyshm or
 * of PYSHM_IOC_VERSION. */
static int probe_kmod(struct pyshm_version *v)
{
	int fd = open("/dev/pyshm", O_RDWR | O_CLOEXEC), err = 0;

	if (fd < 0)
		return errno;
	memset(v, 0, sizeof(*v));
	if (ioctl(fd, PYSHM_IOC_VERSION, v) < 0)
		err = errno;
	close(fd);
	return err;
}

/* The library's choice, as its name, or the negative errno it gave. */
static PyObject *choice(int kind, const char *(*name)(int))
{
	return kind < 0 ? PyLong_FromLong(kind) : PyUnicode_FromString(name(kind));
}

static PyObject *mod_probe(PyObject *mod, PyObject *unused)
{
	struct pyshm_version v;
	int uring, waitv, memfd, kmod, backend, wake;
	bool msg_ring;
	PyObject *version;

	Py_BEGIN_ALLOW_THREADS
	uring = probe_uring(&msg_ring);
	waitv = probe_futex_waitv();
	memfd = probe_memfd();
	kmod = probe_kmod(&v);
	backend = pyshm_backend();
	wake = pyshm_wake_default();
	Py_END_ALLOW_THREADS

	if (kmod == 0)
		version = Py_BuildValue("(II)", (unsigned int)v.major, (unsigned int)v.minor);
	else
		version = Py_NewRef(Py_None);
	if (!version)
		return NULL;
	return Py_BuildValue("{sisOsisisisNsNsNs(II)}",
			     "uring", uring,
			     "msg_ring", msg_ring ? Py_True : Py_False,
			     "futex_waitv", waitv,
			     "memfd", memfd,
			     "kmod", kmod,
			     "kmod_version", version,
			     "backend", choice(backend, pyshm_backend_name),
			     "wake", choice(wake, pyshm_wake_name),
			     "uapi_version", (unsigned int)PYSHM_VERSION_MAJOR,
			     (unsigned int)PYSHM_VERSION_MINOR);
}

/* What stats looks for in /proc/PID/comm and /proc/PID/task/TID/comm. */
#define WORKER_COMM_PREFIX "pw:"
#define COMM_LEN 16	/* TASK_COMM_LEN, with the NUL */

static PyObject *mod_set_worker_name(PyObject *mod, PyObject *arg)
{
	char comm[COMM_LEN] = WORKER_COMM_PREFIX;
	size_t used = sizeof(WORKER_COMM_PREFIX) - 1, n;
	Py_ssize_t len;
	const char *name;

	if (!PyUnicode_Check(arg))
		return PyErr_Format(PyExc_TypeError, "name must be str, not %.100s",
				    Py_TYPE(arg)->tp_name);
	name = PyUnicode_AsUTF8AndSize(arg, &len);
	if (!name)
		return NULL;
	/* As much of the name as fits, never half a UTF-8 character. */
	n = (size_t)len < COMM_LEN - 1 - used ? (size_t)len : COMM_LEN - 1 - used;
	if (n < (size_t)len)
		while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
	memcpy(comm + used, name, n);
	comm[used + n] = '\0';
	if (prctl(PR_SET_NAME, comm, 0, 0, 0) < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	Py_RETURN_NONE;
}

PyMethodDef introspect_methods[] = {
	{ "_probe", mod_probe, METH_NOARGS,
	  "_probe($module, /)\n--\n\n"
	  "What this machine lets pyshm use (for `python -m pyshm_workers doctor`):\n"
	  "uring, futex_waitv, memfd, kmod: 0 or the errno of trying it; msg_ring:\n"
	  "io_uring has IORING_OP_MSG_RING; kmod_version: (major, minor) of the\n"
	  "loaded module or None; backend, wake: the library's choice, or the\n"
	  "negative errno it gave; uapi_version: the ABI this build speaks." },
	{ "_set_worker_name", mod_set_worker_name, METH_O,
	  "_set_worker_name($module, name, /)\n--\n\n"
	  "Name the calling thread \"pw:<name>\" (its comm: 15 bytes at most, the\n"
	  "name cut at a character), as a worker's thread is named, so that\n"
	  "`python -m pyshm_workers stats` finds it: the main thread of a process\n"
	  "worker (the process's comm), the thread of an interpreter worker." },
	{ NULL }
};
