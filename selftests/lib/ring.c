// SPDX-License-Identifier: GPL-2.0
/*
 * Ring tests: argument checks, ordering and no-tear checks with threads and
 * processes, wrap-around, full-ring waits, out-of-line records, closing,
 * corruption detection and sleeping consumers. The wakeup path comes from
 * PYSHM_WAKE (run.sh runs this file once per path).
 */
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "common.h"

#define DATA (64u << 10)

FIXTURE(ring) {
	struct leak_snap before;
	struct pyshm_region *r;
	struct pyshm_ring *prod, *cons;
	struct pyshm_waiter *w;
};

static void ring_pair(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ring) *self, uint32_t data)
{
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(data), 0, 0, &self->r));
	ASSERT_EQ(0, pyshm_ring_init(self->r, 0, data, PYSHM_RING_CONSUMER, &self->cons));
	ASSERT_EQ(0, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &self->prod));
	ASSERT_EQ(0, pyshm_waiter_create(0, &self->w));
	pyshm_ring_set_waiter(self->cons, self->w);
	if (pyshm_waiter_kind(self->w) == PYSHM_WAKE_URING)
		pyshm_ring_set_peer(self->prod, pyshm_waiter_fd(self->w));
}

static void ring_unpair(FIXTURE_DATA(ring) *self)
{
	pyshm_ring_free(self->prod);
	pyshm_ring_free(self->cons);
	pyshm_waiter_free(self->w);
	pyshm_region_put(self->r);
	self->r = NULL;
}

FIXTURE_SETUP(ring)
{
	self->before = leak_snap();
	ring_pair(_metadata, self, DATA);
}

FIXTURE_TEARDOWN(ring)
{
	if (self->r)
		ring_unpair(self);
	ASSERT_NO_LEAK(self->before);
}

/* Receive one record and check it is whole; returns its producer/seq. */
static int recv_one(struct pyshm_ring *cons, int64_t timeout, struct trec *out)
{
	struct pyshm_ring_rec rec;
	int ret = pyshm_ring_recv(cons, &rec, timeout);

	if (ret < 0)
		return ret;
	if (!trec_ok(rec.data, rec.len))
		return -EILSEQ;
	memcpy(out, rec.data, sizeof(*out));
	pyshm_ring_consume(cons, &rec);
	return 0;
}

static int send_one(struct pyshm_ring *prod, uint32_t producer, uint32_t seq,
		    uint32_t len, int64_t timeout)
{
	static __thread unsigned char buf[1 << 21];
	struct trec *t = (struct trec *)buf;

	return pyshm_ring_send(prod, t, trec_fill(t, producer, seq, len), timeout);
}

TEST_F(ring, init_rejects_bad_arguments)
{
	struct pyshm_ring *ring = (void *)0xcc;
	struct pyshm_region *sealed;

	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 8, 4096, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, 3000, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, 2048, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, 1ull << 29, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, 2 * DATA, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 64, DATA, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, UINT64_MAX - 63, 4096,
					   PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, DATA, 0, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, DATA, ~0u, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, DATA, 0x80000000u, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(NULL, 0, DATA, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(self->r, 0, DATA, PYSHM_RING_PRODUCER, NULL));
	ASSERT_EQ(0, pyshm_region_create(pyshm_ring_bytes(4096), 0, 0, &sealed));
	ASSERT_EQ(0, pyshm_region_seal(sealed));
	EXPECT_EQ(-EINVAL, pyshm_ring_init(sealed, 0, 4096, PYSHM_RING_PRODUCER, &ring));
	pyshm_region_put(sealed);
	EXPECT_EQ((void *)0xcc, ring);
}

TEST_F(ring, attach_rejects_what_is_not_a_ring)
{
	struct pyshm_ring *ring = (void *)0xcc;
	struct pyshm_region *z;
	uint32_t *hdr = pyshm_region_data(self->r);
	uint32_t saved;

	ASSERT_EQ(0, pyshm_region_create(8192, 0, 0, &z));
	EXPECT_EQ(-EBADMSG, pyshm_ring_attach(z, 0, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_attach(z, 8192, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_attach(z, 8, PYSHM_RING_PRODUCER, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_attach(z, 0, 0, &ring));
	EXPECT_EQ(-EINVAL, pyshm_ring_attach(z, 0, ~0u, &ring));
	pyshm_region_put(z);

	/* version, then features, then data size, then an offset */
	saved = hdr[1];
	hdr[1] = saved + 1;
	EXPECT_EQ(-EBADMSG, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	hdr[1] = saved;
	saved = hdr[2];
	hdr[2] |= 0x80000000u;
	EXPECT_EQ(-EPROTO, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	hdr[2] = saved;
	saved = hdr[4];
	hdr[4] = DATA * 2;
	EXPECT_EQ(-EBADMSG, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	hdr[4] = 3000;
	EXPECT_EQ(-EBADMSG, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	hdr[4] = saved;
	saved = hdr[6];
	hdr[6] = 4;
	EXPECT_EQ(-EBADMSG, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	hdr[6] = saved;
	EXPECT_EQ((void *)0xcc, ring);
	ASSERT_EQ(0, pyshm_ring_attach(self->r, 0, PYSHM_RING_PRODUCER, &ring));
	pyshm_ring_free(ring);
	pyshm_ring_free(NULL);
}

TEST_F(ring, records_arrive_whole_and_in_order)
{
	struct trec t;
	uint32_t i;

	for (i = 0; i < 200; i++) {
		ASSERT_EQ(0, send_one(self->prod, 1, i, trec_len(i, 4000), 0));
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(i, t.seq);
	}
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, send_one(self->prod, 1, i, trec_len(i, 4000), 0));
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(i, t.seq);
	}
}

TEST_F(ring, empty_ring_says_so)
{
	struct pyshm_ring_rec rec;

	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(-ETIMEDOUT, pyshm_ring_wait(self->cons, 0));
	EXPECT_EQ(-ETIMEDOUT, pyshm_ring_wait(self->cons, 20 * 1000 * 1000));
	EXPECT_EQ(-ETIMEDOUT, pyshm_ring_recv(self->cons, &rec, 1000));
}

TEST_F(ring, handles_only_work_in_their_direction)
{
	struct pyshm_ring_rec rec;

	EXPECT_EQ(-EINVAL, pyshm_ring_send(self->cons, "x", 1, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_reserve(self->cons, 1, 0, &rec));
	EXPECT_EQ(-EINVAL, pyshm_ring_peek(self->prod, &rec));
	EXPECT_EQ(-EINVAL, pyshm_ring_wait(self->prod, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_discard_all(self->prod));
	EXPECT_EQ(-EINVAL, pyshm_ring_arm(self->prod));
	EXPECT_EQ(-EINVAL, pyshm_ring_send(NULL, "x", 1, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_sendv(self->prod, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_sendv(self->prod, NULL, -1, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_send(self->prod, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_peek(self->cons, NULL));
}

TEST_F(ring, empty_records_and_gathered_records)
{
	struct pyshm_ring_rec rec;
	struct iovec iov[3] = {
		{ .iov_base = "abc", .iov_len = 3 },
		{ .iov_base = NULL, .iov_len = 0 },
		{ .iov_base = "defgh", .iov_len = 5 },
	};

	ASSERT_EQ(0, pyshm_ring_send(self->prod, NULL, 0, 0));
	ASSERT_EQ(0, pyshm_ring_sendv(self->prod, iov, 3, 0));
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(0, rec.len);
	pyshm_ring_consume(self->cons, &rec);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &rec));
	ASSERT_EQ(8, rec.len);
	EXPECT_EQ(0, memcmp(rec.data, "abcdefgh", 8));
	pyshm_ring_consume(self->cons, &rec);
	/* Consuming twice is harmless. */
	pyshm_ring_consume(self->cons, &rec);
	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &rec));
}

TEST_F(ring, full_ring_makes_the_producer_wait_then_time_out)
{
	struct trec t;
	int n = 0, ret;

	while ((ret = send_one(self->prod, 1, n, 1000, 0)) == 0)
		n++;
	EXPECT_EQ(-EAGAIN, ret);
	EXPECT_LT(DATA / 1100, n);
	EXPECT_EQ(-ETIMEDOUT, send_one(self->prod, 1, n, 1000, 20 * 1000 * 1000));
	ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	EXPECT_EQ(0, t.seq);
	/* One record freed: room for one more, and nothing was lost. */
	ASSERT_EQ(0, send_one(self->prod, 1, n, 1000, 0));
	for (ret = 1; ret <= n; ret++) {
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(ret, t.seq);
	}
}

struct blocked_send {
	struct pyshm_ring *prod;
	int n;
	atomic_int ret;		/* 1 while the send has not returned */
};

static void *send_blocked(void *arg)
{
	struct blocked_send *b = arg;

	atomic_store(&b->ret, send_one(b->prod, 1, b->n, 1000, -1));
	return NULL;
}

static void on_sigusr1(int sig)
{
}

TEST_F(ring, a_producer_waiting_for_space_is_interrupted_by_a_kick_or_a_signal)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 }, old;
	struct blocked_send b = { .prod = self->prod };
	struct trec t;
	pthread_t th;
	int round;

	while (send_one(self->prod, 1, b.n, 1000, 0) == 0)
		b.n++;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));	/* no SA_RESTART */
	for (round = 0; round < 2; round++) {
		atomic_store(&b.ret, 1);
		ASSERT_EQ(0, pthread_create(&th, NULL, send_blocked, &b));
		usleep(100 * 1000);
		EXPECT_EQ(1, atomic_load(&b.ret));	/* still waiting */
		if (round == 0)
			pyshm_ring_kick_producers(self->prod);
		else
			pthread_kill(th, SIGUSR1);
		pthread_join(th, NULL);
		EXPECT_EQ(-EINTR, atomic_load(&b.ret));
	}
	sigaction(SIGUSR1, &old, NULL);
	/* Nothing was sent by the interrupted calls. */
	for (round = 0; round < b.n; round++) {
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(round, t.seq);
	}
	EXPECT_EQ(-ETIMEDOUT, recv_one(self->cons, 0, &t));
}

struct drain_args {
	struct pyshm_ring *cons;
	int n;
	int got;
	int bad;
};

static void *drain_slowly(void *arg)
{
	struct drain_args *a = arg;
	struct trec t;

	usleep(50 * 1000);
	while (a->got < a->n) {
		if (recv_one(a->cons, 5LL * 1000 * 1000 * 1000, &t) || t.seq != (uint32_t)a->got)
			a->bad++;
		a->got++;
	}
	return NULL;
}

TEST_F(ring, blocked_producer_resumes_when_space_frees)
{
	struct drain_args a = { .cons = self->cons, .n = 500 };
	pthread_t th;
	int i;

	ASSERT_EQ(0, pthread_create(&th, NULL, drain_slowly, &a));
	for (i = 0; i < a.n; i++)
		ASSERT_EQ(0, send_one(self->prod, 1, i, 2000, -1));
	pthread_join(th, NULL);
	EXPECT_EQ(a.n, a.got);
	EXPECT_EQ(0, a.bad);
}

TEST_F(ring, too_large_without_a_transfer_is_refused)
{
	struct pyshm_ring_rec rec;
	char *big = calloc(1, DATA);

	ASSERT_NE(NULL, big);
	EXPECT_EQ(-EMSGSIZE, pyshm_ring_send(self->prod, big, DATA / 4 + 1, 0));
	EXPECT_EQ(-EMSGSIZE, pyshm_ring_reserve(self->prod, DATA / 4 + 1, 0, &rec));
	EXPECT_EQ(0, pyshm_ring_send(self->prod, big, DATA / 4, 0));
	free(big);
}

TEST_F(ring, closing_ends_both_directions)
{
	struct pyshm_ring_rec rec;
	struct trec t;

	ASSERT_EQ(0, send_one(self->prod, 1, 0, 10, 0));
	ASSERT_EQ(0, send_one(self->prod, 1, 1, 10, 0));
	pyshm_ring_close(self->prod, PYSHM_RING_CLOSE_PRODUCERS);
	EXPECT_EQ(PYSHM_RING_CLOSE_PRODUCERS, pyshm_ring_closed(self->cons));
	/* What was sent before the close is still delivered. */
	ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	EXPECT_EQ(1, t.seq);
	EXPECT_EQ(-EPIPE, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(0, pyshm_ring_wait(self->cons, -1));

	pyshm_ring_close(self->cons, PYSHM_RING_CLOSE_CONSUMER);
	EXPECT_EQ(-EPIPE, send_one(self->prod, 1, 2, 10, 0));
	EXPECT_EQ(-EPIPE, pyshm_ring_reserve(self->prod, 10, -1, &rec));
}

TEST_F(ring, consumer_close_releases_a_waiting_producer)
{
	int n = 0;
	pid_t pid;

	while (send_one(self->prod, 1, n, 1000, 0) == 0)
		n++;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		usleep(50 * 1000);
		pyshm_ring_close(self->cons, PYSHM_RING_CLOSE_CONSUMER);
		_exit(0);
	}
	EXPECT_EQ(-EPIPE, send_one(self->prod, 1, n, 1000, -1));
	EXPECT_EQ(0, wait_child(pid));
}

TEST_F(ring, reserve_commit_and_abort)
{
	struct pyshm_ring_rec rec, got;

	ASSERT_EQ(0, pyshm_ring_reserve(self->prod, 5, 0, &rec));
	memcpy(rec.data, "first", 5);
	pyshm_ring_abort(self->prod, &rec);
	ASSERT_EQ(0, pyshm_ring_reserve(self->prod, 6, 0, &rec));
	memcpy(rec.data, "second", 6);
	/* Not committed yet: nothing to see. */
	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &got));
	pyshm_ring_commit(self->prod, &rec);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &got));
	ASSERT_EQ(6, got.len);
	EXPECT_EQ(0, memcmp(got.data, "second", 6));
	pyshm_ring_consume(self->cons, &got);
	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &got));
}

/* Out-of-order commits: a later record waits for the earlier one. */
TEST_F(ring, later_commit_waits_for_earlier_record)
{
	struct pyshm_ring_rec a, b, got;

	ASSERT_EQ(0, pyshm_ring_reserve(self->prod, 1, 0, &a));
	ASSERT_EQ(0, pyshm_ring_reserve(self->prod, 1, 0, &b));
	*(char *)a.data = 'a';
	*(char *)b.data = 'b';
	pyshm_ring_commit(self->prod, &b);
	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &got));
	pyshm_ring_commit(self->prod, &a);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &got));
	EXPECT_EQ('a', *(char *)got.data);
	pyshm_ring_consume(self->cons, &got);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &got));
	EXPECT_EQ('b', *(char *)got.data);
	pyshm_ring_consume(self->cons, &got);
}

TEST_F(ring, wrap_around_keeps_records_whole)
{
	uint32_t sent = 0, got = 0, i;
	uint64_t bytes = 0;
	struct trec t;

	/* Uneven sizes make records meet the end of the data area at every
	 * offset; the ring is kept partly full. */
	ring_unpair(self);
	ring_pair(_metadata, self, 4096);
	for (i = 0; i < 20000; i++) {
		uint32_t len = (i * 37) % 1000;

		while (send_one(self->prod, 1, sent, len, 0) == -EAGAIN) {
			ASSERT_EQ(0, recv_one(self->cons, 0, &t));
			ASSERT_EQ(got, t.seq);
			got++;
		}
		sent++;
		bytes += len;
	}
	while (got < sent) {
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		ASSERT_EQ(got, t.seq);
		got++;
	}
	EXPECT_LT(1000 * 4096, bytes);
}

struct prod_args {
	struct pyshm_ring *prod;
	uint32_t id;
	uint32_t n;
	uint32_t max_len;
	int err;
};

static void *producer_thread(void *arg)
{
	struct prod_args *a = arg;
	uint32_t i;

	for (i = 0; i < a->n && !a->err; i++)
		a->err = send_one(a->prod, a->id, i, trec_len(i, a->max_len), -1);
	return NULL;
}

/* Receive @total records from @nprod producers: per-producer order, no loss,
 * no tearing. Returns the number of problems. */
static int consume_all(struct pyshm_ring *cons, int nprod, uint32_t total)
{
	uint32_t next[16] = { 0 }, i;
	int bad = 0, ret;
	struct trec t;

	for (i = 0; i < total; i++) {
		ret = recv_one(cons, 10LL * 1000 * 1000 * 1000, &t);
		if (ret < 0 || t.producer >= (uint32_t)nprod || t.seq != next[t.producer]) {
			if (bad++ < 5)
				fprintf(stderr, "# record %u: ret %d producer %u seq %u\n",
					i, ret, t.producer, t.seq);
			if (ret < 0)
				return bad;
			continue;
		}
		next[t.producer]++;
	}
	return bad;
}

static void mpsc_threads(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ring) *self, int nprod, uint32_t n)
{
	struct prod_args a[8];
	pthread_t th[8];
	int i;

	for (i = 0; i < nprod; i++) {
		a[i] = (struct prod_args){ .prod = self->prod, .id = i, .n = n, .max_len = 4000 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, producer_thread, &a[i]));
	}
	EXPECT_EQ(0, consume_all(self->cons, nprod, n * nprod));
	for (i = 0; i < nprod; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, a[i].err);
	}
}

TEST_F(ring, threads_keep_per_producer_order)
{
	mpsc_threads(_metadata, self, 4, 20000);
}

TEST_F(ring, threads_keep_order_with_a_sleeping_consumer)
{
	pyshm_set_spin_ns(0);
	mpsc_threads(_metadata, self, 3, 5000);
}

TEST_F(ring, processes_keep_per_producer_order)
{
	pid_t pid[3];
	int i;

	for (i = 0; i < 3; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0) {
			struct prod_args a = { .prod = self->prod, .id = i, .n = 20000,
					       .max_len = 4000 };

			producer_thread(&a);
			_exit(a.err ? 1 : 0);
		}
	}
	EXPECT_EQ(0, consume_all(self->cons, 3, 60000));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, wait_child(pid[i]));
}

TEST_F(ring, sleeping_consumer_is_woken_by_another_process)
{
	struct trec t;
	pid_t pid;
	int i;

	pyshm_set_spin_ns(0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < 20; i++) {
			usleep(2000);
			if (send_one(self->prod, 0, i, 64, -1))
				_exit(1);
		}
		_exit(0);
	}
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, recv_one(self->cons, 5LL * 1000 * 1000 * 1000, &t));
		EXPECT_EQ(i, t.seq);
	}
	EXPECT_EQ(0, wait_child(pid));
}

static void ool_threads(struct __test_metadata *_metadata, FIXTURE_DATA(ring) *self,
			struct pyshm_xfer *x)
{
	struct prod_args a = { .prod = self->prod, .id = 0, .n = 200, .max_len = 1 << 20 };
	struct pyshm_ring_rec rec;
	pthread_t th;
	uint32_t i;

	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 1024);
	ASSERT_EQ(0, pthread_create(&th, NULL, producer_thread, &a));
	for (i = 0; i < a.n; i++) {
		ASSERT_EQ(0, pyshm_ring_recv(self->cons, &rec, -1));
		ASSERT_TRUE(trec_ok(rec.data, rec.len));
		ASSERT_EQ(i, ((struct trec *)rec.data)->seq);
		ASSERT_EQ(rec.ool != NULL, rec.len > 1024);
		pyshm_ring_consume(self->cons, &rec);
	}
	pthread_join(th, NULL);
	EXPECT_EQ(0, a.err);
}

TEST_F(ring, out_of_line_records_between_threads)
{
	struct pyshm_xfer *x;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	ool_threads(_metadata, self, x);
	ring_unpair(self);
	pyshm_xfer_free(x);
}

TEST_F(ring, out_of_line_records_between_processes)
{
	struct pyshm_xfer *x;
	struct pyshm_ring_rec rec;
	int sv[2], i;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct prod_args a = { .prod = self->prod, .n = 100, .max_len = 1 << 20 };

		close(sv[0]);
		if (pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &x))
			_exit(1);
		pyshm_ring_set_xfer(self->prod, x);
		pyshm_ring_set_ool_threshold(self->prod, 1024);
		producer_thread(&a);
		_exit(a.err ? 2 : 0);
	}
	close(sv[1]);
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &x));
	pyshm_ring_set_xfer(self->cons, x);
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, pyshm_ring_recv(self->cons, &rec, -1));
		ASSERT_TRUE(trec_ok(rec.data, rec.len));
		ASSERT_EQ(i, ((struct trec *)rec.data)->seq);
		pyshm_ring_consume(self->cons, &rec);
	}
	EXPECT_EQ(0, wait_child(pid));
	ring_unpair(self);
	pyshm_xfer_free(x);
}

static uint64_t created(void)
{
	struct pyshm_stats st;

	return pyshm_stats(&st, sizeof(st)) ? 0 : st.created;
}

/* A producer in another process that waits for each record to be read:
 * one region does for all, and the consumer maps it once. */
TEST_F(ring, another_process_reuses_one_region_mapped_once)
{
	struct pyshm_stats before, after;
	struct pyshm_xfer *x;
	struct trec t;
	int sv[2], ack[2], i;
	pid_t pid;
	char c;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe(ack));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint64_t made = created();

		close(sv[0]);
		if (pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &x))
			_exit(1);
		pyshm_ring_set_xfer(self->prod, x);
		pyshm_ring_set_ool_threshold(self->prod, 1024);
		for (i = 0; i < 50; i++) {
			if (send_one(self->prod, 0, i, 300000, -1) || read(ack[0], &c, 1) != 1)
				_exit(2);
		}
		_exit(created() == made + 1 ? 0 : 3);
	}
	close(sv[1]);
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &x));
	pyshm_ring_set_xfer(self->cons, x);
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, recv_one(self->cons, -1, &t));
		EXPECT_EQ(i, t.seq);
		if (i == 0)
			ASSERT_EQ(0, pyshm_stats(&before, sizeof(before)));
		ASSERT_EQ(1, write(ack[1], "k", 1));
	}
	ASSERT_EQ(0, pyshm_stats(&after, sizeof(after)));
	/* No handle made and freed per record: the mapping stayed. */
	EXPECT_EQ(before.freed, after.freed);
	EXPECT_EQ(before.regions, after.regions);
	EXPECT_EQ(0, wait_child(pid));
	close(ack[0]);
	close(ack[1]);
	ring_unpair(self);
	pyshm_xfer_free(x);
}


TEST_F(ring, discard_releases_out_of_line_regions)
{
	struct pyshm_xfer *x;
	uint64_t made;
	int i;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	made = created();
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, send_one(self->prod, 0, i, i % 2 ? 100000 : 10, 0));
	EXPECT_EQ(made + 5, created());
	EXPECT_EQ(10, pyshm_ring_discard_all(self->cons));
	EXPECT_EQ(0, pyshm_ring_discard_all(self->cons));
	/* Discarded, their regions went back to the producer: reused. */
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, send_one(self->prod, 0, i, i % 2 ? 100000 : 10, 0));
	EXPECT_EQ(made + 5, created());
	EXPECT_EQ(10, pyshm_ring_discard_all(self->cons));
	/* The handles hold the pool and the mappings: the fixture checks
	 * that freeing them frees every region. */
	ring_unpair(self);
	pyshm_xfer_free(x);
}

TEST_F(ring, out_of_line_regions_are_reused_and_kept_ones_left_alone)
{
	struct pyshm_region *kept, *kept2;
	struct pyshm_ring_rec rec;
	struct pyshm_xfer *x;
	struct trec t;
	uint64_t made;
	int i;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 1024);
	made = created();
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, send_one(self->prod, 0, i, 200000 + i, 0));
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(i, t.seq);
	}
	EXPECT_EQ(made + 1, created());
	/* A kept record's bytes stay as they were while it is kept. */
	ASSERT_EQ(0, send_one(self->prod, 0, 100, 200000, 0));
	ASSERT_EQ(0, pyshm_ring_recv(self->cons, &rec, 0));
	EXPECT_EQ(-EINVAL, pyshm_ring_keep(self->cons, NULL, &kept));
	ASSERT_EQ(0, pyshm_ring_keep(self->cons, &rec, &kept));
	ASSERT_EQ(0, pyshm_ring_keep(self->cons, &rec, &kept2));
	EXPECT_EQ(kept, kept2);
	pyshm_ring_consume(self->cons, &rec);
	EXPECT_EQ(-EINVAL, pyshm_ring_keep(self->cons, &rec, &kept2));
	ASSERT_EQ(0, send_one(self->prod, 0, 101, 200000, 0));
	ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	EXPECT_EQ(made + 2, created());
	EXPECT_EQ(100, ((struct trec *)((char *)pyshm_region_data(kept) + 64))->seq);
	EXPECT_TRUE(trec_ok((char *)pyshm_region_data(kept) + 64, sizeof(t) + 200000));
	pyshm_ring_kept_put(kept);
	pyshm_ring_kept_put(kept2);
	pyshm_ring_kept_put(NULL);
	/* Given back, it is reused. */
	ASSERT_EQ(0, send_one(self->prod, 0, 102, 200000, 0));
	ASSERT_EQ(0, send_one(self->prod, 0, 103, 200000, 0));
	EXPECT_EQ(made + 2, created());
	EXPECT_EQ(2, pyshm_ring_discard_all(self->cons));
	ring_unpair(self);
	pyshm_xfer_free(x);
}

/*
 * A consumer that keeps each record until the next one comes (an array
 * received over its message), records above the byte budget: the two
 * regions take turns, the kept one is not dropped from the pool.
 */
TEST_F(ring, kept_regions_come_back_to_the_pool_past_the_byte_budget)
{
	struct pyshm_region *prev = NULL, *cur;
	struct pyshm_ring_rec rec;
	struct pyshm_xfer *x;
	uint64_t made;
	int i;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 1024);
	pyshm_ring_set_ool_limit(self->prod, 1 << 20, 64);
	made = created();
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, send_one(self->prod, 0, i, 1500000, 0));
		ASSERT_EQ(0, pyshm_ring_recv(self->cons, &rec, 0));
		ASSERT_EQ(0, pyshm_ring_keep(self->cons, &rec, &cur));
		pyshm_ring_consume(self->cons, &rec);
		pyshm_ring_kept_put(prev);
		prev = cur;
	}
	pyshm_ring_kept_put(prev);
	EXPECT_EQ(made + 2, created());
	ring_unpair(self);
	pyshm_xfer_free(x);
}

TEST_F(ring, the_pool_stays_within_the_limits_and_shrinks_when_idle)
{
	struct pyshm_xfer *x;
	struct pyshm_stats st;
	struct trec t;
	int i;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 1024);
	pyshm_ring_set_ool_limit(self->prod, 2 << 20, 3);
	/* Sizes that need regions of their own, one after the other. */
	for (i = 0; i < 12; i++) {
		ASSERT_EQ(0, send_one(self->prod, 0, i, (i % 4 + 1) * 400000, 0));
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	}
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	/* The ring's region, and pooled bytes within 2 MiB and 3 regions. */
	EXPECT_GE(self->before.regions + 1 + 3, st.regions);
	EXPECT_GE((2 << 20) + pyshm_ring_bytes(DATA), st.bytes);
	/* Idle, they go: all but one (and our mappings follow). */
	usleep(2100 * 1000);
	pyshm_ring_trim(self->prod);
	pyshm_ring_trim(self->cons);
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(self->before.regions + 1 + 1, st.regions);
	ring_unpair(self);
	pyshm_xfer_free(x);
}

/* The body length that makes a test record @n bytes long. */
#define BODY(n) ((n) - (uint32_t)sizeof(struct trec))

static void expect_inflight(struct __test_metadata *_metadata, struct pyshm_ring *ring,
			    uint64_t bytes, unsigned int count)
{
	uint64_t b = 0xccccccccccccccccull;
	unsigned int n = 0xcccccccc;

	pyshm_ring_ool_inflight(ring, &b, &n);
	EXPECT_EQ(bytes, b);
	EXPECT_EQ(count, n);
}

TEST_F(ring, out_of_line_records_in_flight_are_bounded)
{
	struct pyshm_xfer *x;
	struct trec t;
	int i;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 1024);
	pyshm_ring_set_ool_limit(self->prod, 300000, 3);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, send_one(self->prod, 0, i, BODY(100000), 0));
	expect_inflight(_metadata, self->cons, 300000, 3);
	/* The count is reached: nothing more out of line, inline still goes. */
	EXPECT_EQ(-EAGAIN, send_one(self->prod, 0, 3, BODY(2000), 0));
	EXPECT_EQ(-ETIMEDOUT, send_one(self->prod, 0, 3, BODY(2000), 20 * 1000 * 1000));
	ASSERT_EQ(0, send_one(self->prod, 0, 3, 100, 0));
	expect_inflight(_metadata, self->cons, 300000, 3);
	/* Consuming one gives its share back. */
	ASSERT_EQ(0, recv_one(self->cons, 0, &t));
	expect_inflight(_metadata, self->cons, 200000, 2);
	/* Bytes alone bound it too. */
	pyshm_ring_set_ool_limit(self->prod, 250000, 0);
	EXPECT_EQ(-EAGAIN, send_one(self->prod, 0, 4, BODY(60000), 0));
	ASSERT_EQ(0, send_one(self->prod, 0, 4, BODY(50000), 0));
	expect_inflight(_metadata, self->cons, 250000, 3);
	for (i = 1; i <= 4; i++) {
		ASSERT_EQ(0, recv_one(self->cons, 0, &t));
		EXPECT_EQ(i, t.seq);
	}
	expect_inflight(_metadata, self->cons, 0, 0);
	/* A record alone in flight goes whatever its size; not a second. */
	ASSERT_EQ(0, send_one(self->prod, 0, 5, BODY(1 << 20), 0));
	EXPECT_EQ(-EAGAIN, send_one(self->prod, 0, 6, BODY(2000), 0));
	/* Discarding gives the budget back as consuming does. */
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
	expect_inflight(_metadata, self->cons, 0, 0);
	ring_unpair(self);
	pyshm_xfer_free(x);
}

TEST_F(ring, a_producer_waiting_for_out_of_line_budget_resumes_or_is_interrupted)
{
	struct blocked_send b = { .prod = self->prod };
	struct pyshm_xfer *x;
	struct trec t;
	pthread_t th;
	int round;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, 100);
	pyshm_ring_set_ool_limit(self->prod, 0, 1);
	ASSERT_EQ(0, send_one(self->prod, 0, 0, BODY(1000), 0));
	for (round = 0; round < 3; round++) {
		b.n = round + 1;
		atomic_store(&b.ret, 1);
		ASSERT_EQ(0, pthread_create(&th, NULL, send_blocked, &b));
		usleep(100 * 1000);
		EXPECT_EQ(1, atomic_load(&b.ret));	/* still waiting */
		if (round == 0) {
			/* Consuming the record in flight lets it go. */
			ASSERT_EQ(0, recv_one(self->cons, 0, &t));
			EXPECT_EQ(0, t.seq);
		} else if (round == 1) {
			pyshm_ring_kick_producers(self->prod);
		} else {
			pyshm_ring_close(self->cons, PYSHM_RING_CLOSE_CONSUMER);
		}
		pthread_join(th, NULL);
		EXPECT_EQ(round == 0 ? 0 : round == 1 ? -EINTR : -EPIPE, atomic_load(&b.ret));
		expect_inflight(_metadata, self->cons, sizeof(struct trec) + 1000, 1);
	}
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
	ring_unpair(self);
	pyshm_xfer_free(x);
}

struct recv_args {
	struct pyshm_ring *cons;
	int n;
	atomic_int got;
};

static void *recv_n(void *arg)
{
	struct recv_args *a = arg;
	struct trec t;

	while (atomic_load(&a->got) < a->n &&
	       recv_one(a->cons, 5LL * 1000 * 1000 * 1000, &t) == 0)
		atomic_fetch_add(&a->got, 1);
	return NULL;
}

/* A receiver that does not take its fds fills the socket: the producer
 * returns (or waits, with a timeout) instead of blocking in sendmsg(). */
TEST_F(ring, a_full_socket_never_blocks_the_producer)
{
	struct recv_args a = { .cons = self->cons };
	struct pyshm_xfer *xp, *xc;
	int sv[2], small = 4096, ret;
	pthread_t th;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &xp));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &xc));
	pyshm_ring_set_xfer(self->prod, xp);
	pyshm_ring_set_xfer(self->cons, xc);
	pyshm_ring_set_ool_threshold(self->prod, 100);
	while ((ret = send_one(self->prod, 0, a.n, 1000, 0)) == 0)
		a.n++;
	EXPECT_EQ(-EAGAIN, ret);
	EXPECT_LT(0, a.n);
	EXPECT_GT(1000, a.n);	/* the socket filled, not the ring */
	EXPECT_EQ(-ETIMEDOUT, pyshm_xfer_wait_room(xp, 0));
	EXPECT_EQ(-ETIMEDOUT, send_one(self->prod, 0, a.n, 1000, 20 * 1000 * 1000));
	/* A receiver taking the fds makes room for a waiting producer. */
	a.n += 20;
	ASSERT_EQ(0, pthread_create(&th, NULL, recv_n, &a));
	for (ret = a.n - 20; ret < a.n; ret++)
		ASSERT_EQ(0, send_one(self->prod, 0, ret, 1000, -1));
	pthread_join(th, NULL);
	EXPECT_EQ(a.n, atomic_load(&a.got));
	ring_unpair(self);
	pyshm_xfer_free(xp);
	pyshm_xfer_free(xc);
}

TEST_F(ring, out_of_line_record_without_a_transfer_is_refused_by_the_consumer)
{
	struct pyshm_xfer *x;
	struct pyshm_ring_rec rec;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	ASSERT_EQ(0, send_one(self->prod, 0, 0, 100000, 0));
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	/* The bad record can be skipped; its region is released then. */
	pyshm_ring_set_xfer(self->cons, x);
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
	ring_unpair(self);
	pyshm_xfer_free(x);
}

/* A record header's tag, as Documentation/ring-layout.rst defines it. */
static uint32_t rec_tag(uint64_t pos, uint32_t word)
{
	return (uint32_t)(pos >> 3) ^ (word * 0x9e3779b1u);
}

TEST_F(ring, corrupted_record_header_is_detected)
{
	struct pyshm_ring_rec rec;
	uint32_t *data = (uint32_t *)((char *)pyshm_region_data(self->r) + PYSHM_RING_HDR_SIZE);

	ASSERT_EQ(0, pyshm_ring_send(self->prod, "abcd", 4, 0));
	ASSERT_EQ(rec_tag(0, (1u << 31) | 4), data[1]);
	data[1] ^= 1;				/* tag */
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	data[1] ^= 1;
	data[0] = (1u << 31) | 12;		/* length, tag left alone */
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	data[0] = (1u << 31) | 100000;		/* past the end, tag and all */
	data[1] = rec_tag(0, data[0]);
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	data[0] = 4;				/* not committed, yet not zero */
	data[1] = rec_tag(0, data[0]);
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	data[0] = (1u << 31) | (1u << 30);	/* padding at offset 0 */
	data[1] = rec_tag(0, data[0]);
	EXPECT_EQ(-EBADMSG, pyshm_ring_peek(self->cons, &rec));
	data[0] = (1u << 31) | 4;
	data[1] = rec_tag(0, data[0]);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(0, memcmp(rec.data, "abcd", 4));
	pyshm_ring_consume(self->cons, &rec);
}

/*
 * A forged record (right tag) that runs past the producer position is
 * delivered, but leaves the consumer ahead of the producers: the consumer
 * reports it rather than sleep forever.
 */
TEST_F(ring, a_forged_record_past_the_producer_is_reported_before_sleeping)
{
	uint32_t *word, val;
	uint32_t *data = (uint32_t *)((char *)pyshm_region_data(self->r) + PYSHM_RING_HDR_SIZE);
	struct pyshm_ring_rec rec;

	ASSERT_EQ(0, pyshm_ring_send(self->prod, "abcd", 4, 0));
	data[0] = (1u << 31) | 1000;
	data[1] = rec_tag(0, data[0]);
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(1000, rec.len);
	pyshm_ring_consume(self->cons, &rec);
	EXPECT_EQ(-EAGAIN, pyshm_ring_peek(self->cons, &rec));
	EXPECT_EQ(-EBADMSG, pyshm_ring_wait(self->cons, 0));
	EXPECT_EQ(-EBADMSG, pyshm_ring_recv(self->cons, &rec, 1000000));
	EXPECT_EQ(-EBADMSG, pyshm_ring_arm(self->cons));
	EXPECT_EQ(-EBADMSG, pyshm_ring_arm_futex(self->cons, &word, &val));
}

TEST_F(ring, corrupted_positions_are_detected)
{
	uint64_t *prodpos = (uint64_t *)((char *)pyshm_region_data(self->r) + 64);
	struct pyshm_ring_rec rec;

	*prodpos = 3 * DATA;
	EXPECT_EQ(-EBADMSG, pyshm_ring_send(self->prod, "x", 1, 0));
	*prodpos = 5;
	EXPECT_EQ(-EBADMSG, pyshm_ring_reserve(self->prod, 1, 0, &rec));
	*prodpos = 0;
	EXPECT_EQ(0, pyshm_ring_send(self->prod, "x", 1, 0));
}

TEST_F(ring, a_consumer_ahead_of_the_producer_is_detected_not_waited_on)
{
	uint64_t *prodpos = (uint64_t *)((char *)pyshm_region_data(self->r) + 64);
	uint64_t *conspos = (uint64_t *)((char *)pyshm_region_data(self->r) + 128);
	uint64_t p, c;
	int i;

	/* Fill the ring, so the producer has to look at the consumer. */
	for (i = 0; pyshm_ring_send(self->prod, "x", 1, 0) == 0; i++)
		ASSERT_GT(DATA, i);
	p = *prodpos;
	c = *conspos;
	*conspos = p + 64;
	EXPECT_EQ(-EBADMSG, pyshm_ring_send(self->prod, "x", 1, 0));
	EXPECT_EQ(-EBADMSG, pyshm_ring_send(self->prod, "x", 1, 1000000000));
	*conspos = c;
	EXPECT_EQ(-EAGAIN, pyshm_ring_send(self->prod, "x", 1, 0));
	EXPECT_LT(0, pyshm_ring_discard_all(self->cons));
}

TEST_F(ring, arm_reports_through_the_waiter_fd)
{
	struct pyshm_ring *noarm;
	struct pollfd pfd;
	int i;

	pfd.fd = pyshm_waiter_fd(self->w);
	pfd.events = POLLIN;
	ASSERT_LE(0, pfd.fd);
	ASSERT_EQ(0, pyshm_ring_attach(self->r, 0, PYSHM_RING_CONSUMER, &noarm));
	EXPECT_EQ(-EINVAL, pyshm_ring_arm(noarm));	/* no waiter */
	pyshm_ring_free(noarm);
	/* Armed and disarmed: no event. */
	ASSERT_EQ(0, pyshm_ring_arm(self->cons));
	pyshm_ring_disarm(self->cons);
	ASSERT_EQ(0, pyshm_ring_send(self->prod, "x", 1, 0));
	EXPECT_EQ(0, poll(&pfd, 1, 50));
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
	/* Armed: the send makes the fd readable (through the futex bridge on
	 * the futex path). */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pyshm_ring_arm(self->cons));
		EXPECT_EQ(0, poll(&pfd, 1, 0));
		ASSERT_EQ(0, pyshm_ring_send(self->prod, "x", 1, 0));
		EXPECT_EQ(1, poll(&pfd, 1, 5000));
		pyshm_ring_disarm(self->cons);
		EXPECT_LE(1, pyshm_waiter_drain(self->w));
		EXPECT_EQ(0, poll(&pfd, 1, 0));
		EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
	}
	ASSERT_EQ(0, pyshm_ring_send(self->prod, "x", 1, 0));
	/* Something is there: arming says so instead. */
	EXPECT_EQ(-EAGAIN, pyshm_ring_arm(self->cons));
	pyshm_ring_disarm(self->cons);
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
}

static void *send_later(void *arg)
{
	usleep(50 * 1000);
	return (void *)(intptr_t)pyshm_ring_send(arg, "x", 1, 0);
}

/* A thread that arms the word itself and sleeps in futex_waitv() (no
 * bridge) is woken by a send, whatever its handle's waiter. */
TEST_F(ring, arm_futex_wakes_a_futex_waitv_sleeper)
{
	struct futex_waitv v = { 0 };
	uint32_t *word, val;
	void *sent;
	pthread_t th;

	EXPECT_EQ(-EINVAL, pyshm_ring_arm_futex(self->prod, &word, &val));
	EXPECT_EQ(-EINVAL, pyshm_ring_arm_futex(self->cons, NULL, &val));
	EXPECT_EQ(-EINVAL, pyshm_ring_arm_futex(NULL, &word, &val));
	ASSERT_EQ(0, pyshm_ring_arm_futex(self->cons, &word, &val));
	EXPECT_EQ(val, __atomic_load_n(word, __ATOMIC_SEQ_CST));
	ASSERT_EQ(0, pthread_create(&th, NULL, send_later, self->prod));
	v.uaddr = (uintptr_t)word;
	v.val = val;
	v.flags = FUTEX_32;
	/* Woken (0), or the word changed before we slept (EAGAIN). */
	if (syscall(SYS_futex_waitv, &v, 1, 0, NULL, 0) < 0)
		EXPECT_EQ(EAGAIN, errno);
	EXPECT_NE(val, __atomic_load_n(word, __ATOMIC_SEQ_CST)) TH_LOG("not woken by a send");
	pyshm_ring_disarm(self->cons);
	ASSERT_EQ(0, pthread_join(th, &sent));
	EXPECT_EQ(0, (intptr_t)sent);
	/* Something is there: arming says so instead. */
	EXPECT_EQ(-EAGAIN, pyshm_ring_arm_futex(self->cons, &word, &val));
	EXPECT_EQ(1, pyshm_ring_discard_all(self->cons));
}

TEST_F(ring, ool_threshold_is_clamped_to_the_inline_limit)
{
	struct pyshm_xfer *x;
	struct pyshm_ring_rec rec;
	char *big = calloc(1, DATA);

	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	pyshm_ring_set_xfer(self->prod, x);
	pyshm_ring_set_xfer(self->cons, x);
	pyshm_ring_set_ool_threshold(self->prod, UINT64_MAX);
	ASSERT_EQ(0, pyshm_ring_send(self->prod, big, DATA / 2, 0));
	ASSERT_EQ(0, pyshm_ring_peek(self->cons, &rec));
	EXPECT_NE(NULL, rec.ool);
	EXPECT_EQ(DATA / 2, rec.len);
	pyshm_ring_consume(self->cons, &rec);
	free(big);
	ring_unpair(self);
	pyshm_xfer_free(x);
}

TEST_HARNESS_MAIN
