// SPDX-License-Identifier: GPL-2.0
/*
 * Wakeup tests: choosing the path, waiters of each kind, batched io_uring
 * wakeups (futex wakes too), wakeups across processes, wakeups sent without a ring where the
 * kernel allows it, and the spin budget.
 */
#include <fcntl.h>
#include <liburing.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "common.h"

#define RING_DATA 4096u

FIXTURE(wake) {
	struct leak_snap before;
	int kind;
};

FIXTURE_SETUP(wake)
{
	self->kind = pyshm_wake_default();
	ASSERT_LT(0, self->kind) TH_LOG("PYSHM_WAKE: %s", getenv("PYSHM_WAKE"));
	self->before = leak_snap();
}

FIXTURE_TEARDOWN(wake)
{
	ASSERT_NO_LEAK(self->before);
}

TEST_F(wake, default_follows_the_environment)
{
	const char *env = getenv("PYSHM_WAKE");

	if (env && !strcmp(env, "futex"))
		EXPECT_EQ(PYSHM_WAKE_FUTEX, self->kind);
	if (env && !strcmp(env, "uring"))
		EXPECT_EQ(PYSHM_WAKE_URING, self->kind);
	EXPECT_STREQ("uring", pyshm_wake_name(PYSHM_WAKE_URING));
	EXPECT_STREQ("futex", pyshm_wake_name(PYSHM_WAKE_FUTEX));
	EXPECT_EQ(NULL, pyshm_wake_name(0));
}

TEST_F(wake, waiter_rejects_bad_arguments)
{
	struct pyshm_waiter *w = (void *)0xcc;

	EXPECT_EQ(-EINVAL, pyshm_waiter_create(3, &w));
	EXPECT_EQ(-EINVAL, pyshm_waiter_create(-1, &w));
	EXPECT_EQ(-EINVAL, pyshm_waiter_create(0, NULL));
	EXPECT_EQ((void *)0xcc, w);
	pyshm_waiter_free(NULL);
}

TEST_F(wake, futex_waiter_reports_through_an_eventfd)
{
	struct pyshm_waiter *w;
	int fd;

	ASSERT_EQ(0, pyshm_waiter_create(PYSHM_WAKE_FUTEX, &w));
	EXPECT_EQ(PYSHM_WAKE_FUTEX, pyshm_waiter_kind(w));
	fd = pyshm_waiter_fd(w);
	EXPECT_LE(0, fd);
	EXPECT_EQ(fd, pyshm_waiter_fd(w));
	EXPECT_EQ(-ETIMEDOUT, pyshm_waiter_wait(w, 0));
	EXPECT_EQ(-ETIMEDOUT, pyshm_waiter_wait(w, 5 * 1000 * 1000));
	EXPECT_EQ(0, pyshm_waiter_drain(w));
	pyshm_waiter_free(w);
}

TEST_F(wake, waiter_fd_rejects_bad_arguments)
{
	char blob[PYSHM_WAITER_BLOB_SIZE];
	struct pyshm_waiter *w = (void *)0xcc;
	int fd = -1;

	EXPECT_EQ(-EINVAL, pyshm_waiter_create_fd(NULL, blob, sizeof(blob)));
	EXPECT_EQ(-EINVAL, pyshm_waiter_create_fd(&fd, NULL, sizeof(blob)));
	EXPECT_EQ(-EINVAL, pyshm_waiter_create_fd(&fd, blob, 8));
	memset(blob, 0, sizeof(blob));
	EXPECT_EQ(-EINVAL, pyshm_waiter_adopt(0, blob, sizeof(blob), &w));
	EXPECT_EQ(-EINVAL, pyshm_waiter_adopt(-1, blob, sizeof(blob), &w));
	EXPECT_EQ(-EINVAL, pyshm_waiter_adopt(0, blob, 4, &w));
	EXPECT_EQ((void *)0xcc, w);
}

/* A waiter made for a child, adopted there, woken from here. */
TEST_F(wake, inherited_waiter_is_woken_from_the_parent)
{
	char blob[PYSHM_WAITER_BLOB_SIZE];
	struct pyshm_region *r;
	struct pyshm_ring *prod, *cons;
	int fd, ret;
	pid_t pid;

	if (self->kind != PYSHM_WAKE_URING)
		SKIP(return, "io_uring path only");
	ret = pyshm_waiter_create_fd(&fd, blob, sizeof(blob));
	ASSERT_LT(0, ret);
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r));
	ASSERT_EQ(0, pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons));
	ASSERT_EQ(0, pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod));
	pyshm_ring_set_peer(prod, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pyshm_waiter *w;
		struct pyshm_ring_rec rec;

		pyshm_set_spin_ns(0);
		if (pyshm_waiter_adopt(fd, blob, sizeof(blob), &w))
			_exit(1);
		pyshm_ring_set_waiter(cons, w);
		if (pyshm_ring_recv(cons, &rec, 5LL * 1000 * 1000 * 1000))
			_exit(2);
		_exit(rec.len == 5 ? 0 : 3);
	}
	usleep(50 * 1000);
	ASSERT_EQ(0, pyshm_ring_send(prod, "hello", 5, 0));
	EXPECT_EQ(0, wait_child(pid));
	close(fd);
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
}

/* A kick wakes a sleeping consumer that has nothing to read. */
TEST_F(wake, kick_wakes_a_sleeping_consumer)
{
	struct pyshm_region *r;
	struct pyshm_ring *prod, *cons;
	struct pyshm_waiter *w;
	pid_t pid;

	pyshm_set_spin_ns(0);
	ASSERT_EQ(0, pyshm_waiter_create(0, &w));
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r));
	ASSERT_EQ(0, pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons));
	ASSERT_EQ(0, pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod));
	pyshm_ring_set_waiter(cons, w);
	pyshm_ring_set_peer(prod, pyshm_waiter_kind(w) == PYSHM_WAKE_URING ?
			    pyshm_waiter_fd(w) : -1);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		usleep(50 * 1000);
		pyshm_ring_kick(prod);
		_exit(0);
	}
	EXPECT_EQ(0, pyshm_ring_wait(cons, 5LL * 1000 * 1000 * 1000));
	EXPECT_EQ(0, wait_child(pid));
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
	pyshm_waiter_free(w);
}

TEST_F(wake, uring_waiter_times_out_and_drains)
{
	struct pyshm_waiter *w;
	int ret = pyshm_waiter_create(PYSHM_WAKE_URING, &w);

	if (self->kind != PYSHM_WAKE_URING && ret == -ENOSYS)
		SKIP(return, "io_uring refused here");
	ASSERT_EQ(0, ret);
	EXPECT_EQ(PYSHM_WAKE_URING, pyshm_waiter_kind(w));
	EXPECT_LE(0, pyshm_waiter_fd(w));
	EXPECT_EQ(-ETIMEDOUT, pyshm_waiter_wait(w, 0));
	EXPECT_EQ(-ETIMEDOUT, pyshm_waiter_wait(w, 10 * 1000 * 1000));
	EXPECT_EQ(0, pyshm_waiter_drain(w));
	pyshm_waiter_free(w);
}

/* Several rings armed on one io_uring waiter; batched wakeups reach it. */
/* @n rings side by side in one region: consumers sleeping through @w,
 * producers reaching it by its fd. 0, or the first error. */
static int rings_open(int n, struct pyshm_waiter *w, struct pyshm_region **r,
		      struct pyshm_ring **prod, struct pyshm_ring **cons)
{
	uint64_t size = pyshm_ring_bytes(RING_DATA);
	int i, ret;

	ret = pyshm_region_create(n * size, 0, 0, r);
	for (i = 0; !ret && i < n; i++) {
		ret = pyshm_ring_init(*r, i * size, RING_DATA, PYSHM_RING_CONSUMER, &cons[i]);
		if (!ret)
			ret = pyshm_ring_attach(*r, i * size, PYSHM_RING_PRODUCER, &prod[i]);
		if (!ret) {
			pyshm_ring_set_waiter(cons[i], w);
			pyshm_ring_set_peer(prod[i], pyshm_waiter_fd(w));
		}
	}
	return ret;
}

static void rings_close(int n, struct pyshm_region *r, struct pyshm_ring **prod,
			struct pyshm_ring **cons)
{
	int i;

	for (i = 0; i < n; i++) {
		pyshm_ring_free(prod[i]);
		pyshm_ring_free(cons[i]);
	}
	pyshm_region_put(r);
}

TEST_F(wake, batched_wakeups_reach_one_waiter)
{
	struct pyshm_region *r;
	struct pyshm_ring *prod[3], *cons[3];
	struct pyshm_waiter *w;
	struct pollfd pfd;
	int i, n;

	if (self->kind != PYSHM_WAKE_URING)
		SKIP(return, "io_uring path only");
	ASSERT_EQ(0, pyshm_waiter_create(0, &w));
	ASSERT_EQ(0, rings_open(3, w, &r, prod, cons));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pyshm_ring_arm(cons[i]));
	pfd.fd = pyshm_waiter_fd(w);
	pfd.events = POLLIN;

	pyshm_wake_hold();
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pyshm_ring_send(prod[i], "x", 1, 0));
	/* Held: nothing submitted yet. */
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(3, pyshm_wake_flush());
	n = 0;
	while (n < 3) {
		int got = pyshm_waiter_wait(w, 1000LL * 1000 * 1000);

		ASSERT_LT(0, got);
		n += got;
	}
	EXPECT_EQ(3, n);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(-EAGAIN, pyshm_ring_arm(cons[i]));
		EXPECT_EQ(1, pyshm_ring_discard_all(cons[i]));
	}
	EXPECT_EQ(0, pyshm_wake_flush());	/* flush without hold */
	rings_close(3, r, prod, cons);
	pyshm_waiter_free(w);
}

/* A held thread's futex wakes go out at the flush, not before. */
TEST_F(wake, held_futex_wakes_go_out_at_the_flush)
{
	struct pyshm_ring *prod, *cons;
	struct pyshm_region *r;
	struct pyshm_waiter *w;
	int status;
	pid_t pid;

	pyshm_set_spin_ns(0);
	ASSERT_EQ(0, pyshm_waiter_create(PYSHM_WAKE_FUTEX, &w));
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r));
	ASSERT_EQ(0, pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons));
	ASSERT_EQ(0, pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod));
	pyshm_ring_set_waiter(cons, w);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(pyshm_ring_wait(cons, 5LL * 1000 * 1000 * 1000) == 0 ? 0 : 1);
	usleep(100 * 1000);			/* asleep by now */
	pyshm_wake_hold();
	ASSERT_EQ(0, pyshm_ring_send(prod, "x", 1, 0));
	usleep(100 * 1000);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG)) TH_LOG("woken before the flush");
	EXPECT_EQ(1, pyshm_wake_flush());
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(1, pyshm_ring_discard_all(cons));
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
	pyshm_waiter_free(w);
}

/* Whether this kernel runs a MSG_RING sqe with no source ring (6.13+). */
static bool kernel_sends_msg_ring_without_a_ring(void)
{
	struct io_uring_sqe sqe;
	struct io_uring ring;
	bool ok;

	if (io_uring_queue_init(2, &ring, 0))
		return false;
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_msg_ring(&sqe, ring.ring_fd, 0, 0, 0);
	/* 31: IORING_REGISTER_SEND_MSG_RING, newer than liburing 2.3. */
	ok = syscall(__NR_io_uring_register, -1, 31, &sqe, 1) == 0;
	io_uring_queue_exit(&ring);
	return ok;
}

struct kicker {
	struct pyshm_ring *prod;
	int fds_opened;
};

static void *kick_from_a_new_thread(void *arg)
{
	struct kicker *k = arg;
	int before = count_fds();

	usleep(50 * 1000);
	pyshm_ring_kick(k->prod);
	k->fds_opened = count_fds() - before;
	return NULL;
}

/*
 * A thread that wakes a consumer at once (not batched) sends the MSG_RING
 * without a ring of its own on 6.13 and later, and makes one (its submit
 * ring, one fd) before that: both paths wake the consumer.
 */
TEST_F(wake, a_thread_wakes_without_a_ring_of_its_own_where_the_kernel_allows)
{
	struct pyshm_ring *prod, *cons;
	struct kicker k = { 0 };
	struct pyshm_region *r;
	struct pyshm_waiter *w;
	pthread_t th;
	bool sync;

	if (self->kind != PYSHM_WAKE_URING)
		SKIP(return, "io_uring path only");
	sync = kernel_sends_msg_ring_without_a_ring();
	TH_LOG("MSG_RING without a source ring (6.13+): %s", sync ? "yes" : "no");
	pyshm_set_spin_ns(0);
	ASSERT_EQ(0, pyshm_waiter_create(PYSHM_WAKE_URING, &w));
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r));
	ASSERT_EQ(0, pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons));
	ASSERT_EQ(0, pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod));
	pyshm_ring_set_waiter(cons, w);
	pyshm_ring_set_peer(prod, pyshm_waiter_fd(w));
	k.prod = prod;
	ASSERT_EQ(0, pthread_create(&th, NULL, kick_from_a_new_thread, &k));
	EXPECT_EQ(0, pyshm_ring_wait(cons, 5LL * 1000 * 1000 * 1000));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(sync ? 0 : 1, k.fds_opened);
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
	pyshm_waiter_free(w);
}

struct batcher {
	struct pyshm_ring *prod[3], *cons[3];
	struct pyshm_waiter *w;
	int fds_first, fds_last, woken;
};

/* Flushes of three held wakeups, 40 times; the fds the thread opened
 * after the first flush and after the last. */
static void *batch_from_a_new_thread(void *arg)
{
	struct batcher *b = arg;
	int before = count_fds(), round, i, got;

	for (round = 0; round < 40; round++) {
		for (i = 0; i < 3; i++)
			if (pyshm_ring_arm(b->cons[i]))
				return NULL;
		pyshm_wake_hold();
		for (i = 0; i < 3; i++)
			if (pyshm_ring_send(b->prod[i], "x", 1, 0))
				return NULL;
		if (pyshm_wake_flush() != 3)
			return NULL;
		if (round == 0)
			b->fds_first = count_fds() - before;
		for (got = 0; got < 3; got += i) {
			i = pyshm_waiter_wait(b->w, 1000LL * 1000 * 1000);
			if (i <= 0)
				return NULL;
		}
		for (i = 0; i < 3; i++)
			pyshm_ring_discard_all(b->cons[i]);
		b->woken += got;
	}
	b->fds_last = count_fds() - before;
	return NULL;
}

/*
 * A thread's held wakeups go out one by one until it has sent 64 so in
 * flushes of several; then it makes its submission ring (one fd) and
 * batches them: one broadcast does not pay for a ring, a stream does.
 */
TEST_F(wake, a_thread_makes_its_submission_ring_once_it_keeps_batching)
{
	struct batcher b = { 0 };
	struct pyshm_region *r;
	pthread_t th;
	bool sync;

	if (self->kind != PYSHM_WAKE_URING)
		SKIP(return, "io_uring path only");
	/* Before 6.13 a MSG_RING needs a ring to be sent from at all. */
	sync = kernel_sends_msg_ring_without_a_ring();
	pyshm_set_spin_ns(0);
	ASSERT_EQ(0, pyshm_waiter_create(PYSHM_WAKE_URING, &b.w));
	ASSERT_EQ(0, rings_open(3, b.w, &r, b.prod, b.cons));
	ASSERT_EQ(0, pthread_create(&th, NULL, batch_from_a_new_thread, &b));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(120, b.woken);
	EXPECT_EQ(sync ? 0 : 1, b.fds_first) TH_LOG("a ring for the first batch");
	EXPECT_EQ(1, b.fds_last) TH_LOG("no ring after 120 batched wakeups");
	rings_close(3, r, b.prod, b.cons);
	pyshm_waiter_free(b.w);
}

/* A waiter inherited by a child process is woken from that process. */
TEST_F(wake, wakeup_crosses_processes)
{
	struct pyshm_region *r;
	struct pyshm_ring *prod, *cons;
	struct pyshm_waiter *w;
	struct pyshm_ring_rec rec;
	pid_t pid;

	pyshm_set_spin_ns(0);
	ASSERT_EQ(0, pyshm_waiter_create(0, &w));
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r));
	ASSERT_EQ(0, pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons));
	ASSERT_EQ(0, pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod));
	pyshm_ring_set_waiter(cons, w);
	if (pyshm_waiter_kind(w) == PYSHM_WAKE_URING)
		pyshm_ring_set_peer(prod, pyshm_waiter_fd(w));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		usleep(50 * 1000);
		_exit(pyshm_ring_send(prod, "late", 4, 0) ? 1 : 0);
	}
	ASSERT_EQ(0, pyshm_ring_recv(cons, &rec, 5LL * 1000 * 1000 * 1000));
	EXPECT_EQ(4, rec.len);
	pyshm_ring_consume(cons, &rec);
	EXPECT_EQ(0, wait_child(pid));
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
	pyshm_waiter_free(w);
}

/* Refuse io_uring_setup() with @err, as a container's seccomp profile does. */
static int refuse_io_uring(int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void *send_later(void *arg)
{
	usleep(50 * 1000);
	return (void *)(long)pyshm_ring_send(arg, "hello", 5, -1);
}

/* The kernel has no seccomp filters (the debug kernel's small config). */
#define NO_SECCOMP 77

/* In a process where io_uring is refused: 0 when everything falls back to
 * the futex path, NO_SECCOMP, else the number of the check that failed. */
static int check_futex_fallback(int err)
{
	struct pyshm_ring *prod, *cons;
	struct pyshm_ring_rec rec;
	struct pyshm_waiter *w;
	struct pyshm_region *r;
	pthread_t th;
	void *sent;

	unsetenv("PYSHM_WAKE");
	/* err 0: refused already, by kernel.io_uring_disabled. */
	if (err && refuse_io_uring(err))
		return errno == EINVAL ? NO_SECCOMP : 1;
	if (pyshm_wake_default() != PYSHM_WAKE_FUTEX)
		return 2;
	if (pyshm_waiter_create(PYSHM_WAKE_URING, &w) != -ENOSYS)
		return 3;
	if (pyshm_waiter_create(0, &w) || pyshm_waiter_kind(w) != PYSHM_WAKE_FUTEX)
		return 4;
	if (pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r) ||
	    pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons) ||
	    pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod))
		return 5;
	pyshm_ring_set_waiter(cons, w);
	pyshm_set_spin_ns(0);
	/* The consumer sleeps (futex) until the producer's record wakes it. */
	if (pthread_create(&th, NULL, send_later, prod))
		return 6;
	if (pyshm_ring_recv(cons, &rec, 5LL * 1000 * 1000 * 1000) || rec.len != 5 ||
	    memcmp(rec.data, "hello", 5))
		return 7;
	pyshm_ring_consume(cons, &rec);
	pthread_join(th, &sent);
	if (sent)
		return 8;
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_waiter_free(w);
	pyshm_region_put(r);
	return 0;
}

TEST(futex_path_is_taken_where_io_uring_is_refused)
{
	int errs[] = { EPERM, ENOSYS }, i, status;
	pid_t pid;

	for (i = 0; i < 2; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(check_futex_fallback(errs[i]));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		if (WEXITSTATUS(status) == NO_SECCOMP)
			SKIP(return, "this kernel has no seccomp filters to refuse io_uring with");
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("io_uring refused with %s", strerror(errs[i]));
	}
}

/*
 * kernel.io_uring_disabled (6.6+) = 2 refuses io_uring to everyone: the
 * futex path again. The sysctl is system-wide, so only where the tests own
 * the machine (the vm-check guests set PYSHM_TEST_SYSCTLS=1).
 */
TEST(futex_path_is_taken_where_the_sysctl_disables_io_uring)
{
	const char *path = "/proc/sys/kernel/io_uring_disabled";
	char old[16] = "";
	int fd, status;
	ssize_t n;
	pid_t pid;

	if (!getenv("PYSHM_TEST_SYSCTLS"))
		SKIP(return, "changes a system-wide sysctl: set PYSHM_TEST_SYSCTLS=1 to run it");
	fd = open(path, O_RDWR);
	if (fd < 0 && errno == ENOENT)
		SKIP(return, "this kernel has no kernel.io_uring_disabled (6.6+)");
	ASSERT_LE(0, fd);
	n = read(fd, old, sizeof(old) - 1);
	ASSERT_LT(0, n);
	ASSERT_EQ(1, pwrite(fd, "2", 1, 0));
	pid = fork();
	if (pid == 0)
		_exit(check_futex_fallback(0));
	if (pid > 0)
		waitpid(pid, &status, 0);
	/* Put it back before anything else can fail. */
	EXPECT_EQ(n, pwrite(fd, old, n, 0));
	close(fd);
	ASSERT_LT(0, pid);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(spin_budget_is_tunable)
{
	int64_t def = pyshm_spin_ns();

	EXPECT_LE(0, def);
	pyshm_set_spin_ns(1234);
	EXPECT_EQ(1234, pyshm_spin_ns());
	pyshm_set_spin_ns(-5);
	EXPECT_EQ(0, pyshm_spin_ns());
	pyshm_set_spin_ns(def);
}

TEST_HARNESS_MAIN
