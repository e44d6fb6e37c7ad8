// SPDX-License-Identifier: MIT
/*
 * Atomics.wait_async(): the waits behind it, with no thread per waiter.
 * Each event loop gets a _WaitQueue (pyshm_workers/_wait_async.py) whose
 * fd the loop watches, by one of two paths:
 *
 * - uring: an io_uring of the loop's own, with a futex wait in the kernel
 *   per waiter (IORING_OP_FUTEX_WAIT, FUTEX_WAITV for Int64Array; Linux
 *   6.7+). notify() counts these waiters exactly as it counts threads in
 *   wait(): the kernel queues them on the same futex words. Cancelling is
 *   IORING_OP_ASYNC_CANCEL. The ring fd turns readable with completions.
 * - thread: where the kernel has no io_uring futex ops (or io_uring is
 *   refused), one waiter thread per process sleeps in futex_waitv() on the
 *   words of every pending wait of the process (127 words a thread; more
 *   start another), and completes waits into their queue, whose eventfd
 *   the loop watches. A notify() wakes the thread once per word: all the
 *   async waiters of this process on that element count as one waiter and
 *   are all woken by it, and a wait whose element changed since it began
 *   ends "ok" too (a spurious wakeup, as a futex allows).
 *
 * Records hold a reference on the region of their element, so the memory
 * stays mapped while the kernel or the thread may read it.
 */
#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pyshm/wake.h>

#include "port.h"
#include "typed_array.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* io_uring futex ops (Linux 6.7; not in liburing 2.3's headers). */
#define WA_OP_FUTEX_WAIT	51
#define WA_OP_FUTEX_WAITV	53
#define WA_FUTEX2_SIZE_U32	0x02

#define WA_CANCEL_UD		0	/* user_data of cancel requests */
#define WA_MAX_WORDS		127	/* futex_waitv() takes 128, one is ctl */

enum { WA_OK, WA_NOT_EQUAL, WA_TIMED_OUT };
enum { WA_URING = 1, WA_THREAD = 2 };

struct wa_thread;
struct wa_core;

/* One pending wait. */
struct wa_rec {
	uint64_t id;
	struct pyshm_region *region;	/* held */
	char *addr;
	int elsize;
	uint64_t expected;
	int result;			/* WA_*, once done */
	struct futex_waitv v[2];	/* uring: FUTEX_WAITV's */
	struct wa_rec *hnext;		/* the queue's table */
	/* thread path, under wa.lock */
	struct wa_core *core;		/* where it completes */
	struct wa_thread *thread;	/* NULL once off its thread */
	struct wa_rec *next;		/* the thread's list, then core->done */
};

/* ---- the thread path ------------------------------------------------------ */

/* What a queue shares with the waiter threads: where its waits complete. */
struct wa_core {
	atomic_int refs;
	int efd;
	pthread_mutex_t lock;
	struct wa_rec *done;		/* under lock */
};

struct wa_thread {
	atomic_uint ctl;		/* bumped at each change of recs */
	atomic_uint armed;		/* the ctl the thread sleeps with */
	unsigned int gen;		/* wa.gen it was made in */
	int nwords;
	struct wa_rec *recs;		/* under wa.lock */
	struct wa_thread *next;
};

/* Process-global; threads are never torn down (they sleep on ctl), and a
 * child of fork() starts anew (wa_atfork_child()). */
static struct {
	pthread_mutex_t lock;
	struct wa_thread *threads;	/* under lock */
	unsigned int gen;		/* fork generation */
} wa = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t wa_once = PTHREAD_ONCE_INIT;
static int wa_default_path;

static void core_put(struct wa_core *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->efd);
	pthread_mutex_destroy(&c->lock);
	PyMem_RawFree(c);
}

static long futex_wake(atomic_uint *word, int n, bool private)
{
	return syscall(SYS_futex, word, FUTEX_WAKE | (private ? FUTEX_PRIVATE_FLAG : 0), n,
		       NULL, NULL, 0);
}

/* Words of a wait: the element's (two for 64 bits). */
static int rec_words(const struct wa_rec *r)
{
	return r->elsize == 8 ? 2 : 1;
}

/* Done: off the thread, onto its core's list. Under wa.lock. */
static void rec_complete(struct wa_thread *t, struct wa_rec **link, int result,
			 struct wa_core **signal, int *nsignal)
{
	struct wa_rec *r = *link;
	struct wa_core *c = r->core;
	int i;

	*link = r->next;
	t->nwords -= rec_words(r);
	r->thread = NULL;
	r->result = result;
	pthread_mutex_lock(&c->lock);
	r->next = c->done;
	c->done = r;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < *nsignal; i++)
		if (signal[i] == c)
			return;
	atomic_fetch_add(&c->refs, 1);
	signal[(*nsignal)++] = c;
}

static void signal_cores(struct wa_core **signal, int n)
{
	uint64_t one = 1;
	int i;

	for (i = 0; i < n; i++) {
		if (write(signal[i]->efd, &one, sizeof(one)) < 0) {
			/* The counter is full: it is readable anyway. */
		}
		core_put(signal[i]);
	}
}

static void *wa_thread_main(void *arg)
{
	struct wa_thread *t = arg;
	struct futex_waitv v[WA_MAX_WORDS + 1];
	struct wa_core *signal[WA_MAX_WORDS + 1];
	struct wa_rec **link, *r;
	unsigned int gen;
	int n, nsignal, i, k;
	long ret;

	for (;;) {
		nsignal = 0;
		n = 0;
		pthread_mutex_lock(&wa.lock);
		gen = atomic_load(&t->ctl);
		for (link = &t->recs; (r = *link);) {
			/* A wait whose element moved ends now; the others
			 * sleep on its words, each word once. */
			if (ta_load_bits(r->addr, r->elsize, memory_order_seq_cst) != r->expected) {
				rec_complete(t, link, WA_OK, signal, &nsignal);
				continue;
			}
			for (k = 0; k < rec_words(r); k++) {
				uintptr_t a = (uintptr_t)r->addr + 4 * (uintptr_t)k;

				for (i = 0; i < n && v[i].uaddr != a; i++)
					;
				if (i < n)
					continue;
				v[n++] = (struct futex_waitv){
					.val = (uint32_t)(r->expected >> (32 * k)),
					.uaddr = a, .flags = FUTEX_32 };
			}
			link = &r->next;
		}
		v[n++] = (struct futex_waitv){ .val = gen, .uaddr = (uintptr_t)&t->ctl,
					       .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG };
		pthread_mutex_unlock(&wa.lock);
		signal_cores(signal, nsignal);
		/* Submitters wait for this: their wait is among the words. */
		atomic_store(&t->armed, gen);
		futex_wake(&t->armed, INT_MAX, true);

		ret = syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);
		if (ret < 0 && errno != EAGAIN && errno != EINTR)
			usleep(1000);	/* no futex_waitv (Linux < 5.16): poll */
		if (ret < 0 || ret == n - 1)
			continue;	/* a change (EAGAIN), a signal, ctl */
		/* Woken on word v[ret]: every wait on it is done. */
		nsignal = 0;
		pthread_mutex_lock(&wa.lock);
		for (link = &t->recs; (r = *link);) {
			uintptr_t a = (uintptr_t)r->addr;

			if (v[ret].uaddr == a || (r->elsize == 8 && v[ret].uaddr == a + 4))
				rec_complete(t, link, WA_OK, signal, &nsignal);
			else
				link = &r->next;
		}
		pthread_mutex_unlock(&wa.lock);
		signal_cores(signal, nsignal);
	}
	return NULL;
}

static void wa_atfork_child(void)
{
	/* The threads did not come along; their records are the parent's. */
	pthread_mutex_init(&wa.lock, NULL);
	wa.threads = NULL;
	wa.gen++;
}

/* A thread with room for @words more words; under wa.lock. NULL + errno. */
static struct wa_thread *thread_with_room(int words)
{
	struct wa_thread *t;
	pthread_attr_t attr;
	pthread_t tid;
	int err;

	for (t = wa.threads; t; t = t->next)
		if (t->nwords + words <= WA_MAX_WORDS)
			return t;
	t = PyMem_RawCalloc(1, sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	t->gen = wa.gen;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = pthread_create(&tid, &attr, wa_thread_main, t);
	pthread_attr_destroy(&attr);
	if (err) {
		PyMem_RawFree(t);
		errno = err;
		return NULL;
	}
	t->next = wa.threads;
	wa.threads = t;
	return t;
}

/* Hand @r to a waiter thread and wait until it sleeps with it. 0 or -errno. */
static int thread_add(struct wa_core *c, struct wa_rec *r)
{
	struct wa_thread *t;
	unsigned int gen, armed;

	r->core = c;
	pthread_mutex_lock(&wa.lock);
	t = thread_with_room(rec_words(r));
	if (!t) {
		int err = errno;

		pthread_mutex_unlock(&wa.lock);
		return -err;
	}
	r->thread = t;
	r->next = t->recs;
	t->recs = r;
	t->nwords += rec_words(r);
	gen = atomic_fetch_add(&t->ctl, 1) + 1;
	pthread_mutex_unlock(&wa.lock);
	futex_wake(&t->ctl, 1, true);
	Py_BEGIN_ALLOW_THREADS
	while ((int)((armed = atomic_load(&t->armed)) - gen) < 0)
		syscall(SYS_futex, &t->armed, FUTEX_WAIT_PRIVATE, armed, NULL, NULL, 0);
	Py_END_ALLOW_THREADS
	return 0;
}

/* Take @r off its thread (a cancel): 1 when it was still waiting. */
static int thread_remove(struct wa_rec *r)
{
	struct wa_thread *t;
	struct wa_rec **link;
	int found = 0;

	pthread_mutex_lock(&wa.lock);
	t = r->thread;
	if (t && t->gen == wa.gen) {
		for (link = &t->recs; *link; link = &(*link)->next) {
			if (*link == r) {
				*link = r->next;
				t->nwords -= rec_words(r);
				found = 1;
				break;
			}
		}
		if (found)
			atomic_fetch_add(&t->ctl, 1);
	}
	r->thread = NULL;
	pthread_mutex_unlock(&wa.lock);
	if (found)
		futex_wake(&t->ctl, 1, true);
	return found;
}

/* ---- path choice ---------------------------------------------------------- */

static void wa_init(void)
{
	struct io_uring_probe *probe;
	struct io_uring ring;

	pthread_atfork(NULL, NULL, wa_atfork_child);
	wa_default_path = WA_THREAD;
	if (pyshm_wake_default() != PYSHM_WAKE_URING)
		return;		/* io_uring refused (or PYSHM_WAKE=futex) */
	if (io_uring_queue_init(2, &ring, 0) < 0)
		return;
	probe = io_uring_get_probe_ring(&ring);
	if (probe && io_uring_opcode_supported(probe, WA_OP_FUTEX_WAIT) &&
	    io_uring_opcode_supported(probe, WA_OP_FUTEX_WAITV))
		wa_default_path = WA_URING;
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
}

/* The path a new queue takes: PYSHM_WAIT_ASYNC=uring|thread, else the
 * probed default. -1 + ValueError for a bad value or uring unavailable. */
static int wa_path(void)
{
	const char *env = getenv("PYSHM_WAIT_ASYNC");

	pthread_once(&wa_once, wa_init);
	if (!env || !*env)
		return wa_default_path;
	if (!strcmp(env, "thread"))
		return WA_THREAD;
	if (!strcmp(env, "uring") && wa_default_path == WA_URING)
		return WA_URING;
	PyErr_Format(PyExc_ValueError, "PYSHM_WAIT_ASYNC=%s: %s", env,
		     strcmp(env, "uring") ? "not 'uring' or 'thread'" :
		     "this kernel has no io_uring futex waits (Linux 6.7+)");
	return -1;
}

/* ---- the queue ------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	int path;
	pid_t pid;
	struct io_uring ring;		/* WA_URING */
	struct wa_core *core;		/* WA_THREAD */
	struct wa_rec **table;		/* pending waits by id */
	size_t mask, count;
	uint64_t next_id;
} QueueObject;

static struct wa_rec **table_slot(QueueObject *q, uint64_t id)
{
	struct wa_rec **link = &q->table[(id * 0x9e3779b97f4a7c15ull >> 20) & q->mask];

	while (*link && (*link)->id != id)
		link = &(*link)->hnext;
	return link;
}

static int table_add(QueueObject *q, struct wa_rec *r)
{
	struct wa_rec **link;

	if (q->count >= q->mask + 1) {
		size_t size = 2 * (q->mask + 1), i;
		struct wa_rec **old = q->table, *p, *next;
		size_t oldsize = q->mask + 1;

		q->table = PyMem_RawCalloc(size, sizeof(*q->table));
		if (!q->table) {
			q->table = old;
			return -1;
		}
		q->mask = size - 1;
		for (i = 0; i < oldsize; i++) {
			for (p = old[i]; p; p = next) {
				next = p->hnext;
				link = table_slot(q, p->id);
				p->hnext = NULL;
				*link = p;
			}
		}
		PyMem_RawFree(old);
	}
	link = table_slot(q, r->id);
	r->hnext = NULL;
	*link = r;
	q->count++;
	return 0;
}

static struct wa_rec *table_take(QueueObject *q, uint64_t id)
{
	struct wa_rec **link = table_slot(q, id), *r = *link;

	if (r) {
		*link = r->hnext;
		q->count--;
	}
	return r;
}

static void rec_free(struct wa_rec *r)
{
	pyshm_region_put(r->region);
	PyMem_RawFree(r);
}

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { NULL };
	QueueObject *q;
	int path, ret;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, ":_WaitQueue", kwlist))
		return NULL;
	path = wa_path();
	if (path < 0)
		return NULL;
	q = (QueueObject *)type->tp_alloc(type, 0);
	if (!q)
		return NULL;
	q->pid = (pid_t)port_pid();
	q->table = PyMem_RawCalloc(16, sizeof(*q->table));
	if (!q->table) {
		Py_DECREF(q);
		return PyErr_NoMemory();
	}
	q->mask = 15;
	if (path == WA_URING) {
		/* Submissions go out one by one; completions may pile up (the
		 * kernel keeps what overflows). */
		ret = io_uring_queue_init(64, &q->ring, 0);
		if (ret == 0) {
			q->path = WA_URING;
			return (PyObject *)q;
		}
		/* No ring to be had (limits): the thread path. */
	}
	q->core = PyMem_RawCalloc(1, sizeof(*q->core));
	if (!q->core) {
		Py_DECREF(q);
		return PyErr_NoMemory();
	}
	atomic_init(&q->core->refs, 1);
	pthread_mutex_init(&q->core->lock, NULL);
	q->core->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->core->efd < 0) {
		ret = -errno;
		pthread_mutex_destroy(&q->core->lock);
		PyMem_RawFree(q->core);
		q->core = NULL;
		Py_DECREF(q);
		return pymod_raise_from_errno(get_state_by_cls(type), ret, "eventfd");
	}
	q->path = WA_THREAD;
	return (PyObject *)q;
}

static void queue_dealloc(QueueObject *q)
{
	PyTypeObject *tp = Py_TYPE(q);
	struct wa_rec *r, *next;
	size_t i;

	if (q->path == WA_URING) {
		/* Cancels what the kernel still has; no CQE is read again. */
		io_uring_queue_exit(&q->ring);
	}
	for (i = 0; q->table && i <= q->mask; i++) {
		for (r = q->table[i]; r; r = next) {
			next = r->hnext;
			if (q->path == WA_THREAD)
				thread_remove(r);
			rec_free(r);
		}
	}
	PyMem_RawFree(q->table);
	if (q->core) {
		/* Completed records are in the table too (freed above). */
		core_put(q->core);
	}
	tp->tp_free(q);
	Py_DECREF(tp);
}

static PyObject *queue_fileno(QueueObject *q, PyObject *unused)
{
	return PyLong_FromLong(q->path == WA_URING ? q->ring.ring_fd : q->core->efd);
}

static PyObject *queue_path(QueueObject *q, void *closure)
{
	return PyUnicode_FromString(q->path == WA_URING ? "uring" : "thread");
}

static PyObject *result_str(pymod_state *st, int result)
{
	return Py_NewRef(result == WA_OK ? st->str_ok : result == WA_NOT_EQUAL ?
			 st->str_not_equal : st->str_timed_out);
}

static int uring_submit(QueueObject *q, struct wa_rec *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	int ret;

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe)
			return -EBUSY;
	}
	if (r->elsize == 4) {
		/* Not FUTEX2_PRIVATE: other processes share the word. */
		io_uring_prep_rw(WA_OP_FUTEX_WAIT, sqe, WA_FUTEX2_SIZE_U32, r->addr, 0,
				 (uint32_t)r->expected);
		sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
	} else {
		/* Both halves, the low word first, as wait() does (atomics.c,
		 * wait_element()); notify() wakes the low word. */
		r->v[0] = (struct futex_waitv){ .val = (uint32_t)r->expected,
						.uaddr = (uintptr_t)r->addr, .flags = FUTEX_32 };
		r->v[1] = (struct futex_waitv){ .val = (uint32_t)(r->expected >> 32),
						.uaddr = (uintptr_t)r->addr + 4,
						.flags = FUTEX_32 };
		io_uring_prep_rw(WA_OP_FUTEX_WAITV, sqe, 0, r->v, 2, 0);
	}
	sqe->user_data = r->id;
	/* Issued now: the waiter is queued on the word when this returns. */
	ret = io_uring_submit(&q->ring);
	return ret < 0 ? ret : 0;
}

/*
 * submit(array, i, value, timeout) -> "not-equal" | "timed-out" | (id, delay)
 * The wait begins at once (a notify() from now on counts it); delay is the
 * timeout in seconds, or None.
 */
static PyObject *queue_submit(QueueObject *q, PyObject *const *args, Py_ssize_t nargs)
{
	pymod_state *st = get_state_by_type(Py_TYPE(q));
	ArrayObject *a;
	struct wa_rec *r;
	uint64_t expected;
	double secs;
	void *p;
	int ret;

	if (nargs != 4)
		return PyErr_Format(PyExc_TypeError, "submit() takes 4 arguments");
	if (ta_kind_of(st, args[0]) < 0)
		return PyErr_Format(PyExc_TypeError, "wait_async() needs an Int32Array or "
				    "Int64Array, not %.100s", Py_TYPE(args[0])->tp_name);
	a = (ArrayObject *)args[0];
	if (ta_check_waitable(a, "wait_async") < 0)
		return NULL;
	p = ta_slot(a, args[1]);
	if (!p || ta_unbox(a->kind, args[2], &expected) < 0 ||
	    ta_timeout_arg(args[3], &secs) < 0)
		return NULL;
	if (a->elsize == 4)
		expected = (uint32_t)expected;
	if (q->pid != (pid_t)port_pid())
		return PyErr_Format(PyExc_RuntimeError, "a wait queue of another process");
	if (ta_load_bits(p, a->elsize, memory_order_seq_cst) != expected)
		return Py_NewRef(st->str_not_equal);
	if (secs == 0)
		return Py_NewRef(st->str_timed_out);
	r = PyMem_RawCalloc(1, sizeof(*r));
	if (!r)
		return PyErr_NoMemory();
	r->id = ++q->next_id;
	r->region = pyshm_region_get(a->region);
	r->addr = p;
	r->elsize = a->elsize;
	r->expected = expected;
	if (table_add(q, r) < 0) {
		rec_free(r);
		return PyErr_NoMemory();
	}
	ret = q->path == WA_URING ? uring_submit(q, r) : thread_add(q->core, r);
	if (ret < 0) {
		table_take(q, r->id);
		rec_free(r);
		return pymod_raise_from_errno(st, ret, "wait_async");
	}
	if (secs < 0)
		return Py_BuildValue("(KO)", (unsigned long long)r->id, Py_None);
	return Py_BuildValue("(Kd)", (unsigned long long)r->id, secs);
}

/* cancel(id): end a pending wait; it completes "timed-out" unless it was
 * woken first. An id no longer pending is ignored. */
static PyObject *queue_cancel(QueueObject *q, PyObject *arg)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(arg);
	struct wa_rec **link, *r;
	struct io_uring_sqe *sqe;

	if (id == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	link = table_slot(q, id);
	r = *link;
	if (!r || q->pid != (pid_t)port_pid())
		Py_RETURN_NONE;
	if (q->path == WA_URING) {
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe) {
			io_uring_submit(&q->ring);
			sqe = io_uring_get_sqe(&q->ring);
		}
		if (sqe) {
			io_uring_prep_cancel64(sqe, id, 0);
			sqe->user_data = WA_CANCEL_UD;
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
			io_uring_submit(&q->ring);
		}
		Py_RETURN_NONE;
	}
	if (thread_remove(r)) {
		uint64_t one = 1;

		r->result = WA_TIMED_OUT;
		pthread_mutex_lock(&q->core->lock);
		r->next = q->core->done;
		q->core->done = r;
		pthread_mutex_unlock(&q->core->lock);
		if (write(q->core->efd, &one, sizeof(one)) < 0) {
			/* Full: readable anyway. */
		}
	}
	Py_RETURN_NONE;
}

/* (id, result) to the list @out, freeing the record. */
static int reaped(pymod_state *st, QueueObject *q, uint64_t id, int result, int err,
		  PyObject *out)
{
	struct wa_rec *r = table_take(q, id);
	PyObject *res, *item;
	int ret;

	if (!r)
		return 0;
	rec_free(r);
	if (err) {
		errno = err;
		res = PyObject_CallFunction(PyExc_OSError, "is", err, strerror(err));
	} else {
		res = result_str(st, result);
	}
	if (!res)
		return -1;
	item = Py_BuildValue("(KN)", (unsigned long long)id, res);
	if (!item)
		return -1;
	ret = PyList_Append(out, item);
	Py_DECREF(item);
	return ret;
}

/* reap() -> [(id, "ok" | "not-equal" | "timed-out" | OSError), ...] */
static PyObject *queue_reap(QueueObject *q, PyObject *unused)
{
	pymod_state *st = get_state_by_type(Py_TYPE(q));
	PyObject *out = PyList_New(0);
	struct io_uring_cqe *cqe;
	struct wa_rec *r, *next;
	unsigned int head, n;
	uint64_t cnt;
	int err = 0;

	if (!out)
		return NULL;
	if (q->path == WA_URING) {
		for (;;) {
			n = 0;
			io_uring_for_each_cqe(&q->ring, head, cqe) {
				int res = cqe->res, result = WA_OK, e = 0;

				n++;
				if (err || cqe->user_data == WA_CANCEL_UD)
					continue;
				if (res == -EAGAIN)
					result = WA_NOT_EQUAL;
				else if (res == -ECANCELED)
					result = WA_TIMED_OUT;
				else if (res < 0)
					e = -res;
				if (reaped(st, q, cqe->user_data, result, e, out) < 0)
					err = 1;
			}
			io_uring_cq_advance(&q->ring, n);
			if (err || !io_uring_cq_has_overflow(&q->ring))
				break;
			io_uring_get_events(&q->ring);
		}
	} else {
		if (read(q->core->efd, &cnt, sizeof(cnt)) < 0) {
			/* Nothing signalled: the list may have some anyway. */
		}
		pthread_mutex_lock(&q->core->lock);
		r = q->core->done;
		q->core->done = NULL;
		pthread_mutex_unlock(&q->core->lock);
		for (; r; r = next) {
			next = r->next;
			if (!err && reaped(st, q, r->id, r->result, 0, out) < 0)
				err = 1;
			else if (err)
				/* Still in the table: freed with the queue. */
				continue;
		}
	}
	if (err) {
		Py_DECREF(out);
		return NULL;
	}
	return out;
}

/* poll(): reap() after running the completions the kernel has for this
 * thread and not yet posted (an io_uring futex wait woken while its loop
 * runs completes as task work, at the thread's next system call). */
static PyObject *queue_poll(QueueObject *q, PyObject *unused)
{
	if (q->path == WA_URING && q->pid == (pid_t)port_pid())
		io_uring_get_events(&q->ring);
	return queue_reap(q, NULL);
}

static PyObject *queue_pending(QueueObject *q, void *closure)
{
	return PyLong_FromSize_t(q->count);
}

#define FAST(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef queue_methods[] = {
	{ "fileno", (PyCFunction)queue_fileno, METH_NOARGS,
	  "fileno($self, /)\n--\n\nThe fd to watch: readable when waits completed." },
	{ "submit", FAST(queue_submit), METH_FASTCALL,
	  "submit($self, array, i, value, timeout, /)\n--\n\n"
	  "Begin a wait: 'not-equal' or 'timed-out' at once, else (id, delay)." },
	{ "cancel", (PyCFunction)queue_cancel, METH_O,
	  "cancel($self, id, /)\n--\n\nEnd a pending wait (it completes 'timed-out')." },
	{ "reap", (PyCFunction)queue_reap, METH_NOARGS,
	  "reap($self, /)\n--\n\nThe waits completed: [(id, result), ...]." },
	{ "poll", (PyCFunction)queue_poll, METH_NOARGS,
	  "poll($self, /)\n--\n\nreap(), once the kernel has posted what it has." },
	{ NULL }
};

static PyGetSetDef queue_getset[] = {
	{ "path", (getter)queue_path, NULL, "'uring' or 'thread'.", NULL },
	{ "pending", (getter)queue_pending, NULL, "Waits not reaped yet.", NULL },
	{ NULL }
};

static PyType_Slot queue_slots[] = {
	{ Py_tp_doc, "_WaitQueue()\n--\n\n"
		     "The waits of Atomics.wait_async() for one event loop (internal)." },
	{ Py_tp_new, queue_new },
	{ Py_tp_dealloc, queue_dealloc },
	{ Py_tp_methods, queue_methods },
	{ Py_tp_getset, queue_getset },
	{ 0, NULL }
};

static PyType_Spec queue_spec = {
	.name = "pyshm_workers._WaitQueue",
	.basicsize = sizeof(QueueObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = queue_slots,
};

/* a.wait_async(i, value, timeout=None): checked here (so that errors
 * raise at the call), begun by pyshm_workers._wait_async.start(). */
PyObject *ta_wait_async(ArrayObject *a, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "i", "value", "timeout", NULL };
	pymod_state *st = get_state_by_type(Py_TYPE(a));
	PyObject *idx, *val, *tmo = Py_None, *mod;
	uint64_t expected;
	double secs;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:wait_async", kwlist, &idx, &val,
					 &tmo))
		return NULL;
	if (ta_check_waitable(a, "wait_async") < 0 || !ta_slot(a, idx) ||
	    ta_unbox(a->kind, val, &expected) < 0 || ta_timeout_arg(tmo, &secs) < 0)
		return NULL;
	if (!st->wait_async_start) {
		mod = PyImport_ImportModule("pyshm_workers._wait_async");
		if (!mod)
			return NULL;
		st->wait_async_start = PyObject_GetAttrString(mod, "start");
		Py_DECREF(mod);
		if (!st->wait_async_start)
			return NULL;
	}
	return PyObject_CallFunctionObjArgs(st->wait_async_start, (PyObject *)a, idx, val, tmo,
					    NULL);
}

static PyObject *mod_wait_async_path(PyObject *mod, PyObject *unused)
{
	int path = wa_path();

	if (path < 0)
		return NULL;
	return PyUnicode_FromString(path == WA_URING ? "uring" : "thread");
}

static PyObject *mod_spin_ns(PyObject *mod, PyObject *unused)
{
	return PyLong_FromLongLong(pyshm_spin_ns());
}

static PyMethodDef wait_async_methods[] = {
	{ "_spin_ns", mod_spin_ns, METH_NOARGS,
	  "_spin_ns($module, /)\n--\n\n"
	  "How long a receiver polls before it sleeps, in ns (PYSHM_SPIN_NS)." },
	{ "_wait_async_path", mod_wait_async_path, METH_NOARGS,
	  "_wait_async_path($module, /)\n--\n\n"
	  "'uring' (io_uring futex waits) or 'thread' (a waiter thread): how a\n"
	  "new event loop's wait_async() waits." },
	{ NULL }
};

int wait_async_init(PyObject *mod, pymod_state *st)
{
	PyObject *tp = PyType_FromModuleAndSpec(mod, &queue_spec, NULL);
	int ret;

	if (!tp)
		return -1;
	ret = PyModule_AddObjectRef(mod, "_WaitQueue", tp);
	Py_DECREF(tp);
	if (ret < 0)
		return -1;
	return PyModule_AddFunctions(mod, wait_async_methods);
}
