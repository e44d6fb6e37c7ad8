// SPDX-License-Identifier: MIT
/*
 * Wakeup paths. The consumer side: waiters (an io_uring to sleep in, or the
 * futex path, whose pollable fd is an eventfd fed by a bridge thread). The
 * producer side: IORING_OP_MSG_RING to a waiter's ring, sent without a ring
 * of our own where the kernel allows it (6.13+), else (and when batched)
 * submitted from a lazily created per-thread io_uring; and futex wait/wake
 * on shared memory.
 */
#include <limits.h>
#include <liburing.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pyshm/wake.h>

#include "internal.h"

/* io_uring futex ops (Linux 6.7; not in liburing 2.3's headers). */
#define URING_OP_FUTEX_WAKE	52
#define URING_FUTEX2_SIZE_U32	0x02

struct pyshm_waiter {
	int kind;
	struct io_uring ring;		/* PYSHM_WAKE_URING */
	atomic_int efd;			/* PYSHM_WAKE_FUTEX: eventfd, made on demand */
};

/* What pyshm_waiter_create_fd() hands to another process. */
struct waiter_blob {
	uint32_t magic;
	uint32_t size;
	struct io_uring_params params;
};

#define WAITER_BLOB_MAGIC 0x54494157u	/* "WAIT" */

_Static_assert(sizeof(struct waiter_blob) <= PYSHM_WAITER_BLOB_SIZE, "blob size");

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static int wake_kind;			/* the default, or -errno */
static bool uring_usable;
static bool uring_sync_msg;		/* MSG_RING without a source ring */
static bool uring_futex;		/* IORING_OP_FUTEX_WAKE (Linux 6.7) */
static _Atomic int64_t spin_ns = -1;

/* This process's pid, refreshed in the child after fork(). */
static atomic_uint fork_gen;
static atomic_int cached_pid;

static void on_fork_child(void)
{
	atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_init(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

pid_t __pyshm_getpid(void)
{
	int pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);

	if (likely(pid))
		return pid;
	pthread_once(&fork_once, fork_init);
	pid = (int)getpid();
	atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
	return pid;
}

/* Linux 6.13: io_uring_register(-1, this, sqe, 1) runs a MSG_RING sqe. */
#define WAKE_REGISTER_SEND_MSG_RING	31

/* Post a wakeup CQE to the io_uring behind @fd, with no ring of our own. */
static int wake_sync(int fd, uint64_t data)
{
	struct io_uring_sqe sqe;

	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_msg_ring(&sqe, fd, 0, data, 0);
	if (syscall(__NR_io_uring_register, -1, WAKE_REGISTER_SEND_MSG_RING, &sqe, 1) < 0)
		return -errno;
	return 1;
}

/*
 * Can this process create a ring that has IORING_OP_MSG_RING? And send one
 * without a ring (to that ring, which must then hold the CQE)?
 */
static bool uring_probe(bool *sync_msg, bool *futex)
{
	struct io_uring_probe *probe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	bool ok;

	*sync_msg = *futex = false;
	if (io_uring_queue_init(2, &ring, 0) < 0)
		return false;
	probe = io_uring_get_probe_ring(&ring);
	ok = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	*futex = ok && io_uring_opcode_supported(probe, URING_OP_FUTEX_WAKE);
	io_uring_free_probe(probe);
	if (ok && wake_sync(ring.ring_fd, 0) == 1 && io_uring_peek_cqe(&ring, &cqe) == 0)
		*sync_msg = true;
	io_uring_queue_exit(&ring);
	return ok;
}

static void wake_init(void)
{
	const char *env = getenv("PYSHM_WAKE");

	uring_usable = uring_probe(&uring_sync_msg, &uring_futex);
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

/* Resolve kind 0 to the default and check it can be had. */
static int waiter_kind(int kind)
{
	if (kind != 0 && kind != PYSHM_WAKE_URING && kind != PYSHM_WAKE_FUTEX)
		return -EINVAL;
	pthread_once(&wake_once, wake_init);
	if (kind == 0)
		kind = wake_kind;
	if (kind < 0)
		return kind;
	if (kind == PYSHM_WAKE_URING && !uring_usable)
		return -ENOSYS;
	return kind;
}

static struct pyshm_waiter *waiter_alloc(int kind)
{
	struct pyshm_waiter *w = calloc(1, sizeof(*w));

	if (w) {
		w->kind = kind;
		atomic_init(&w->efd, -1);
	}
	return w;
}

PYSHM_EXPORT int pyshm_waiter_create(int kind, struct pyshm_waiter **out)
{
	struct pyshm_waiter *w;
	int ret;

	if (!out)
		return -EINVAL;
	kind = waiter_kind(kind);
	if (kind < 0)
		return kind;
	w = waiter_alloc(kind);
	if (!w)
		return -ENOMEM;
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

PYSHM_EXPORT int pyshm_waiter_create_fd(int *fd, void *blob, size_t len)
{
	struct waiter_blob b = { .magic = WAITER_BLOB_MAGIC, .size = sizeof(b) };
	int kind, ret;

	if (!fd || !blob || len < sizeof(b))
		return -EINVAL;
	kind = waiter_kind(PYSHM_WAKE_URING);
	if (kind < 0)
		return kind;
	/* Only set up, not mapped: the process that adopts it maps it. */
	ret = io_uring_setup(4, &b.params);
	if (ret < 0)
		return ret;
	memset(blob, 0, len);
	memcpy(blob, &b, sizeof(b));
	*fd = ret;
	return (int)sizeof(b);
}

PYSHM_EXPORT int pyshm_waiter_adopt(int fd, const void *blob, size_t len,
				    struct pyshm_waiter **out)
{
	struct waiter_blob b;
	struct pyshm_waiter *w;
	int ret;

	if (fd < 0 || !blob || !out || len < sizeof(b))
		return -EINVAL;
	memcpy(&b, blob, sizeof(b));
	if (b.magic != WAITER_BLOB_MAGIC || b.size != sizeof(b))
		return -EINVAL;
	w = waiter_alloc(PYSHM_WAKE_URING);
	if (!w)
		return -ENOMEM;
	ret = io_uring_queue_mmap(fd, &b.params, &w->ring);
	if (ret < 0) {
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

PYSHM_EXPORT void pyshm_waiter_free(struct pyshm_waiter *w)
{
	int efd;

	if (!w)
		return;
	if (w->kind == PYSHM_WAKE_URING)
		io_uring_queue_exit(&w->ring);
	efd = atomic_load(&w->efd);
	if (efd >= 0)
		close(efd);
	free(w);
}

PYSHM_EXPORT int pyshm_waiter_kind(const struct pyshm_waiter *w)
{
	if (!w)
		return -EINVAL;
	return w->kind;
}

/* The futex path's pollable fd, made on first use. */
static int waiter_efd(struct pyshm_waiter *w)
{
	int efd = atomic_load(&w->efd), fresh, expected = -1;

	if (efd >= 0)
		return efd;
	fresh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fresh < 0)
		return -errno;
	if (!atomic_compare_exchange_strong(&w->efd, &expected, fresh)) {
		close(fresh);
		return expected;
	}
	return fresh;
}

PYSHM_EXPORT int pyshm_waiter_fd(const struct pyshm_waiter *w)
{
	if (!w)
		return -EINVAL;
	if (w->kind == PYSHM_WAKE_URING)
		return w->ring.ring_fd;
	return waiter_efd((struct pyshm_waiter *)w);
}

PYSHM_EXPORT int pyshm_waiter_drain(struct pyshm_waiter *w)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	uint64_t cnt;
	int efd;

	if (!w)
		return -EINVAL;
	if (w->kind == PYSHM_WAKE_URING) {
		io_uring_for_each_cqe(&w->ring, head, cqe)
			n++;
		io_uring_cq_advance(&w->ring, n);
		return (int)n;
	}
	efd = atomic_load(&w->efd);
	if (efd >= 0 && read(efd, &cnt, sizeof(cnt)) == sizeof(cnt))
		return cnt > INT_MAX ? INT_MAX : (int)cnt;
	return 0;
}

PYSHM_EXPORT int pyshm_waiter_wait(struct pyshm_waiter *w, int64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	struct pollfd pfd;
	int ret;

	if (!w)
		return -EINVAL;
	if (w->kind == PYSHM_WAKE_FUTEX) {
		pfd.fd = waiter_efd(w);
		if (pfd.fd < 0)
			return pfd.fd;
		pfd.events = POLLIN;
		ret = poll(&pfd, 1, timeout_ns < 0 ? -1 :
			   (int)((timeout_ns + 999999) / 1000000 > INT_MAX ? INT_MAX :
				 (timeout_ns + 999999) / 1000000));
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		ret = pyshm_waiter_drain(w);
		return ret > 0 ? ret : 1;
	}
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

/* Internal: the eventfd a futex waiter reports through (made on demand). */
int __pyshm_waiter_efd(struct pyshm_waiter *w)
{
	return waiter_efd(w);
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

static int futex_wake_now(atomic_uint *word, int n)
{
	long ret = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

	return ret < 0 ? -errno : (int)ret;
}

/*
 * The producer side of io_uring wakeups: a submission ring per thread,
 * made when first needed. A child of fork() must not submit to its
 * parent's ring (the SQ would be shared), so rings remember the fork
 * generation they were made in.
 */
struct submit_ring {
	struct io_uring ring;
	unsigned int fork_gen;
};

static pthread_once_t submit_once = PTHREAD_ONCE_INIT;
static pthread_key_t submit_key;
static __thread struct submit_ring *tls_submit;

static void submit_ring_free(void *p)
{
	struct submit_ring *sr = p;

	io_uring_queue_exit(&sr->ring);
	free(sr);
}

static void submit_init(void)
{
	pthread_key_create(&submit_key, submit_ring_free);
	pthread_once(&fork_once, fork_init);
}

/* This thread's ring, if it has one made since the last fork(). */
static struct submit_ring *submit_ring_peek(void)
{
	struct submit_ring *sr = tls_submit;

	return sr && sr->fork_gen == atomic_load_explicit(&fork_gen, memory_order_relaxed) ?
	       sr : NULL;
}

static struct submit_ring *submit_ring_get(int *err)
{
	struct submit_ring *sr = submit_ring_peek();
	int ret;

	if (likely(sr))
		return sr;
	pthread_once(&submit_once, submit_init);
	if (tls_submit) {
		/* Inherited across fork(): closing our copy leaves the
		 * parent's ring alone. */
		submit_ring_free(tls_submit);
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
	sr->fork_gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	tls_submit = sr;
	pthread_setspecific(submit_key, sr);
	return sr;
}

/* Submit what is queued; failed MSG_RINGs (the target ring is gone) post
 * CQEs nobody needs. Return: the number submitted, or -errno. */
static int submit_flush(struct submit_ring *sr)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret = io_uring_submit(&sr->ring);

	io_uring_for_each_cqe(&sr->ring, head, cqe)
		n++;
	io_uring_cq_advance(&sr->ring, n);
	return ret;
}

/* An SQE of @sr, submitting what is queued to make room. */
static struct io_uring_sqe *submit_sqe(struct submit_ring *sr)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sr->ring);

	if (!sqe) {
		submit_flush(sr);
		sqe = io_uring_get_sqe(&sr->ring);
	}
	return sqe;
}

static void prep_msg_ring(struct io_uring_sqe *sqe, int fd, uint64_t data)
{
	io_uring_prep_msg_ring(sqe, fd, 0, data, 0);
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
}

static void prep_futex_wake(struct io_uring_sqe *sqe, atomic_uint *word, int n)
{
	/* Not FUTEX2_PRIVATE: the word may be shared. */
	io_uring_prep_rw(URING_OP_FUTEX_WAKE, sqe, URING_FUTEX2_SIZE_U32, word, 0, (uint64_t)n);
	sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
}

/* Post a wakeup CQE to the io_uring behind @fd, now. */
static int wake_uring_now(int fd, uint64_t data)
{
	struct io_uring_sqe *sqe;
	struct submit_ring *sr;
	int err = 0;

	/* No ring of our own where the kernel takes the sqe without one
	 * (measured on 6.18: a ring costs 50-80 us to set up and tear down,
	 * and the send 0.75-1.05x a submitted one). */
	if (uring_sync_msg)
		return wake_sync(fd, data);
	sr = submit_ring_get(&err);
	if (!sr)
		return err;
	sqe = submit_sqe(sr);
	if (!sqe)
		return -EBUSY;
	prep_msg_ring(sqe, fd, data);
	return submit_flush(sr);
}

/*
 * Wakeups held back by pyshm_wake_hold(), sent at the flush: in one
 * submission from the thread's ring when there are several and the thread
 * has one; otherwise each by itself. Making a ring costs as much as tens
 * of system calls (50-80 us on 6.18, more in a busy process), so a thread
 * makes it only once it has sent HOLD_RING_AFTER wakeups one by one in
 * flushes of several: one broadcast to sleeping workers does not pay for
 * it, a thread that keeps broadcasting does.
 */
#define HOLD_MAX	16
#define HOLD_RING_AFTER	64

struct held_wake {
	atomic_uint *word;	/* a futex word to wake, or NULL: */
	int fd;			/* ... a MSG_RING to the io_uring behind fd */
	int n;			/* waiters to wake on word */
	uint64_t data;		/* the MSG_RING's user data */
};

static __thread struct {
	unsigned int fork_gen;
	int depth;		/* nesting of pyshm_wake_hold() */
	int n;
	unsigned int singles;	/* sent one by one in flushes of several */
	struct held_wake w[HOLD_MAX];
} tls_hold;

/* Whether this thread holds its wakeups (not a hold of its parent before
 * fork()). */
static bool held(void)
{
	unsigned int gen;

	if (likely(!tls_hold.depth))
		return false;
	gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	if (unlikely(tls_hold.fork_gen != gen)) {
		tls_hold.depth = tls_hold.n = 0;
		return false;
	}
	return true;
}

static struct submit_ring *hold_ring(void)
{
	struct submit_ring *sr = submit_ring_peek();
	int err;

	if (sr || tls_hold.singles < HOLD_RING_AFTER)
		return sr;
	/* Without a ring the wakes go one by one, as before it. */
	return submit_ring_get(&err);
}

/* Send the held wakeups; the number sent, or the first -errno. */
static int hold_send(void)
{
	struct submit_ring *sr = NULL;
	struct io_uring_sqe *sqe;
	int i, n = tls_hold.n, sent = 0, ret = 0, r;

	tls_hold.n = 0;
	if (n > 1) {
		pthread_once(&wake_once, wake_init);
		sr = hold_ring();
	}
	for (i = 0; i < n; i++) {
		struct held_wake *h = &tls_hold.w[i];

		sqe = sr && (!h->word || uring_futex) ? submit_sqe(sr) : NULL;
		if (sqe) {
			if (h->word)
				prep_futex_wake(sqe, h->word, h->n);
			else
				prep_msg_ring(sqe, h->fd, h->data);
			continue;
		}
		r = h->word ? futex_wake_now(h->word, h->n) : wake_uring_now(h->fd, h->data);
		if (r < 0 && !ret)
			ret = r;
		sent++;
	}
	if (n > 1 && !sr)
		tls_hold.singles += (unsigned int)sent;
	if (sr) {
		r = submit_flush(sr);
		if (r < 0 && !ret)
			ret = r;
	}
	return ret < 0 ? ret : n;
}

static void hold_add(atomic_uint *word, int fd, int n, uint64_t data)
{
	if (tls_hold.n == HOLD_MAX)
		hold_send();
	tls_hold.w[tls_hold.n++] = (struct held_wake){
		.word = word, .fd = fd, .n = n, .data = data,
	};
}

/* Post a wakeup CQE to the io_uring behind @fd (at the flush if held). */
int __pyshm_wake_uring(int fd, uint64_t data)
{
	pthread_once(&wake_once, wake_init);
	if (held()) {
		hold_add(NULL, fd, 0, data);
		return 0;
	}
	return wake_uring_now(fd, data);
}

/*
 * Wake up to @n waiters on @word. A held thread wakes them at the flush;
 * then the number woken is not known (0 is returned).
 */
int __pyshm_futex_wake(atomic_uint *word, int n)
{
	if (held()) {
		hold_add(word, -1, n, 0);
		return 0;
	}
	return futex_wake_now(word, n);
}

/* Send what pyshm_wake_hold() held, still holding: before sleeping. */
void __pyshm_wake_submit_held(void)
{
	if (unlikely(tls_hold.n) && held())
		hold_send();
}

PYSHM_EXPORT void pyshm_wake_hold(void)
{
	pthread_once(&fork_once, fork_init);
	if (!held()) {
		tls_hold.fork_gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
		tls_hold.depth = 0;
		tls_hold.n = 0;
	}
	tls_hold.depth++;
}

PYSHM_EXPORT int pyshm_wake_flush(void)
{
	if (!held() || --tls_hold.depth > 0)
		return 0;
	return hold_send();
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
