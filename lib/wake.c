// SPDX-License-Identifier: MIT
/*
 * Wakeup paths. The consumer side: waiters (an io_uring to sleep in, or
 * nothing for the futex path). The producer side: a lazily created
 * per-thread io_uring that submits IORING_OP_MSG_RING to a waiter's ring,
 * optionally batched; and futex wait/wake on shared memory.
 */
#include <limits.h>
#include <liburing.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pyshm/wake.h>

#include "internal.h"

struct pyshm_waiter {
	int kind;
	struct io_uring ring;		/* PYSHM_WAKE_URING only */
};

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static int wake_kind;			/* the default, or -errno */
static bool uring_usable;
static _Atomic int64_t spin_ns = -1;

/* Can this process create a ring that has IORING_OP_MSG_RING? */
static bool uring_probe(void)
{
	struct io_uring_probe *probe;
	struct io_uring ring;
	bool ok;

	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	probe = io_uring_get_probe_ring(&ring);
	ok = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return ok;
}

static void wake_init(void)
{
	const char *env = getenv("PYSHM_WAKE");

	uring_usable = uring_probe();
	if (!env || !*env)
		wake_kind = uring_usable ? PYSHM_WAKE_URING : PYSHM_WAKE_FUTEX;
	else if (!strcmp(env, "futex"))
		wake_kind = PYSHM_WAKE_FUTEX;
	else if (!strcmp(env, "uring"))
		wake_kind = uring_usable ? PYSHM_WAKE_URING : -ENOSYS;
	else
		wake_kind = -EINVAL;
}

PYSHM_EXPORT int pyshm_wake_default(void)
{
	pthread_once(&wake_once, wake_init);
	return wake_kind;
}

PYSHM_EXPORT const char *pyshm_wake_name(int kind)
{
	switch (kind) {
	case PYSHM_WAKE_FUTEX:
		return "futex";
	case PYSHM_WAKE_URING:
		return "uring";
	}
	return NULL;
}

PYSHM_EXPORT int pyshm_waiter_create(int kind, struct pyshm_waiter **out)
{
	struct pyshm_waiter *w;
	int ret;

	if (!out)
		return -EINVAL;
	pthread_once(&wake_once, wake_init);
	if (kind == 0) {
		kind = wake_kind;
		if (kind < 0)
			return kind;
	}
	if (kind != PYSHM_WAKE_URING && kind != PYSHM_WAKE_FUTEX)
		return -EINVAL;
	if (kind == PYSHM_WAKE_URING && !uring_usable)
		return -ENOSYS;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->kind = kind;
	if (kind == PYSHM_WAKE_URING) {
		/* Wakeups only ever post CQEs here; a few SQEs suffice. */
		ret = io_uring_queue_init(4, &w->ring, 0);
		if (ret < 0) {
			free(w);
			return ret;
		}
	}
	*out = w;
	return 0;
}

PYSHM_EXPORT void pyshm_waiter_free(struct pyshm_waiter *w)
{
	if (!w)
		return;
	if (w->kind == PYSHM_WAKE_URING)
		io_uring_queue_exit(&w->ring);
	free(w);
}

PYSHM_EXPORT int pyshm_waiter_kind(const struct pyshm_waiter *w)
{
	return w->kind;
}

PYSHM_EXPORT int pyshm_waiter_fd(const struct pyshm_waiter *w)
{
	return w->kind == PYSHM_WAKE_URING ? w->ring.ring_fd : -EOPNOTSUPP;
}

PYSHM_EXPORT int pyshm_waiter_drain(struct pyshm_waiter *w)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (w->kind != PYSHM_WAKE_URING)
		return 0;
	io_uring_for_each_cqe(&w->ring, head, cqe)
		n++;
	io_uring_cq_advance(&w->ring, n);
	return (int)n;
}

PYSHM_EXPORT int pyshm_waiter_wait(struct pyshm_waiter *w, int64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int ret;

	if (w->kind != PYSHM_WAKE_URING)
		return -EOPNOTSUPP;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
	}
	ret = io_uring_wait_cqe_timeout(&w->ring, &cqe, timeout_ns < 0 ? NULL : &ts);
	if (ret == -ETIME)
		return -ETIMEDOUT;
	if (ret < 0)
		return ret;
	return pyshm_waiter_drain(w);
}

/*
 * The producer side of io_uring wakeups: one submission ring per thread.
 * A child of fork() must not submit to its parent's ring (the SQ would be
 * shared), so rings remember the fork generation they were made in.
 */
struct submit_ring {
	struct io_uring ring;
	unsigned int fork_gen;
	int hold;		/* nesting depth of pyshm_wake_hold() */
	int queued;		/* SQEs prepared and not yet submitted */
};

static pthread_once_t submit_once = PTHREAD_ONCE_INIT;
static pthread_key_t submit_key;
static atomic_uint fork_gen;
static __thread struct submit_ring *tls_submit;

static void submit_ring_free(void *p)
{
	struct submit_ring *sr = p;

	io_uring_queue_exit(&sr->ring);
	free(sr);
}

static void on_fork_child(void)
{
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void submit_init(void)
{
	pthread_key_create(&submit_key, submit_ring_free);
	pthread_atfork(NULL, NULL, on_fork_child);
}

static struct submit_ring *submit_ring_get(int *err)
{
	unsigned int gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	struct submit_ring *sr = tls_submit;
	int ret;

	if (likely(sr && sr->fork_gen == gen))
		return sr;
	pthread_once(&submit_once, submit_init);
	if (sr) {
		/* Inherited across fork(): closing our copy leaves the
		 * parent's ring alone. */
		submit_ring_free(sr);
		tls_submit = NULL;
	}
	sr = calloc(1, sizeof(*sr));
	if (!sr) {
		*err = -ENOMEM;
		return NULL;
	}
	ret = io_uring_queue_init(32, &sr->ring, 0);
	if (ret < 0) {
		free(sr);
		*err = ret;
		return NULL;
	}
	sr->fork_gen = gen;
	tls_submit = sr;
	pthread_setspecific(submit_key, sr);
	return sr;
}

/* Failed MSG_RINGs (the target ring is gone) post CQEs; nobody needs them. */
static void submit_reap(struct submit_ring *sr)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&sr->ring, head, cqe)
		n++;
	io_uring_cq_advance(&sr->ring, n);
}

static int submit_flush(struct submit_ring *sr)
{
	int ret;

	if (!sr->queued)
		return 0;
	ret = io_uring_submit(&sr->ring);
	sr->queued = 0;
	submit_reap(sr);
	return ret;
}

/* Post a wakeup CQE to the io_uring behind @fd. */
int __pyshm_wake_uring(int fd, uint64_t data)
{
	struct io_uring_sqe *sqe;
	struct submit_ring *sr;
	int err = 0;

	sr = submit_ring_get(&err);
	if (!sr)
		return err;
	sqe = io_uring_get_sqe(&sr->ring);
	if (!sqe) {
		submit_flush(sr);
		sqe = io_uring_get_sqe(&sr->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_msg_ring(sqe, fd, 0, data, 0);
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	sr->queued++;
	if (sr->hold)
		return 0;
	return submit_flush(sr);
}

PYSHM_EXPORT void pyshm_wake_hold(void)
{
	int err;
	struct submit_ring *sr = submit_ring_get(&err);

	if (sr)
		sr->hold++;
}

PYSHM_EXPORT int pyshm_wake_flush(void)
{
	struct submit_ring *sr = tls_submit;

	if (!sr)
		return 0;
	if (sr->hold > 0 && --sr->hold > 0)
		return 0;
	return submit_flush(sr);
}

int __pyshm_futex_wait(atomic_uint *word, unsigned int val, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	long ret;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	/* Not FUTEX_PRIVATE_FLAG: the word may be shared with other processes. */
	ret = syscall(SYS_futex, word, FUTEX_WAIT, val, tsp, NULL, 0);
	if (ret == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

int __pyshm_futex_wake(atomic_uint *word, int n)
{
	long ret = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

	return ret < 0 ? -errno : (int)ret;
}

PYSHM_EXPORT int64_t pyshm_spin_ns(void)
{
	int64_t v = atomic_load_explicit(&spin_ns, memory_order_relaxed);
	const char *env;

	if (likely(v >= 0))
		return v;
	env = getenv("PYSHM_SPIN_NS");
	v = env && *env ? strtoll(env, NULL, 10) : 50000;
	if (v < 0)
		v = 0;
	atomic_store_explicit(&spin_ns, v, memory_order_relaxed);
	return v;
}

PYSHM_EXPORT void pyshm_set_spin_ns(int64_t ns)
{
	atomic_store_explicit(&spin_ns, ns < 0 ? 0 : ns, memory_order_relaxed);
}
