// SPDX-License-Identifier: GPL-2.0
/*
 * Region transfer tests: each kind carries a region and holds it while in
 * flight; forged, replayed and foreign references are refused.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "common.h"

FIXTURE(xfer) {
	struct leak_snap before;
	struct pyshm_region *r;
};

FIXTURE_SETUP(xfer)
{
	self->before = leak_snap();
	ASSERT_EQ(0, pyshm_region_create(4096, 8192, 0, &self->r));
	((char *)pyshm_region_data(self->r))[0] = 'r';
}

FIXTURE_TEARDOWN(xfer)
{
	pyshm_region_put(self->r);
	ASSERT_NO_LEAK(self->before);
}

TEST_F(xfer, create_rejects_bad_arguments)
{
	struct pyshm_xfer *x = (void *)0xcc;
	int fds[2];

	EXPECT_EQ(-EINVAL, pyshm_xfer_create(0, -1, &x));
	EXPECT_EQ(-EINVAL, pyshm_xfer_create(99, -1, &x));
	EXPECT_EQ(-EINVAL, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, NULL));
	EXPECT_EQ(-EINVAL, pyshm_xfer_create(PYSHM_XFER_SOCKET, -1, &x));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
	EXPECT_EQ(-EINVAL, pyshm_xfer_create(PYSHM_XFER_SOCKET, fds[0], &x));
	close(fds[1]);
	if (pyshm_backend() == PYSHM_BACKEND_MEMFD)
		EXPECT_EQ(-EOPNOTSUPP, pyshm_xfer_create(PYSHM_XFER_KMOD, -1, &x));
	EXPECT_EQ((void *)0xcc, x);
	pyshm_xfer_free(NULL);
}

TEST_F(xfer, local_reference_holds_the_region_once)
{
	struct pyshm_region_ref ref, forged;
	struct pyshm_region *got = (void *)0xcc;
	struct pyshm_xfer *x;
	struct pyshm_stats st;
	uint64_t id = pyshm_region_id(self->r);

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	EXPECT_EQ(PYSHM_XFER_LOCAL, pyshm_xfer_kind(x));
	ASSERT_EQ(0, pyshm_xfer_send(x, self->r, &ref));
	EXPECT_EQ(PYSHM_XFER_LOCAL, ref.kind);
	EXPECT_EQ(id, ref.id);
	EXPECT_EQ(8192, ref.max_size);
	EXPECT_EQ(PYSHM_REGION_GROWABLE, ref.flags);
	/* The reference alone keeps it alive. */
	pyshm_region_put(self->r);
	ASSERT_EQ(0, pyshm_stats(&st, sizeof(st)));
	EXPECT_EQ(self->before.regions + 1, st.regions);

	forged = ref;
	forged.cookie ^= 1;
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &forged, &got));
	forged = ref;
	forged.id ^= 1;
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &forged, &got));
	forged = ref;
	forged.pid ^= 1;
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &forged, &got));
	forged = ref;
	forged.kind = PYSHM_XFER_SOCKET;
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &forged, &got));
	forged = ref;
	forged.resv = 1;
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &forged, &got));
	EXPECT_EQ((void *)0xcc, got);

	ASSERT_EQ(0, pyshm_xfer_recv(x, &ref, &self->r));
	EXPECT_EQ(id, pyshm_region_id(self->r));
	EXPECT_EQ('r', ((char *)pyshm_region_data(self->r))[0]);
	/* Claimed once: a replay finds nothing. */
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &ref, &got));
	EXPECT_EQ(-EINVAL, pyshm_xfer_recv(x, NULL, &got));
	EXPECT_EQ(-EINVAL, pyshm_xfer_send(x, NULL, &ref));
	EXPECT_EQ(-EINVAL, pyshm_xfer_send(NULL, self->r, &ref));
	pyshm_xfer_free(x);
}

TEST_F(xfer, dropping_a_reference_releases_the_region)
{
	struct pyshm_region_ref ref;
	struct pyshm_xfer *x;
	struct pyshm_region *extra;

	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &x));
	ASSERT_EQ(0, pyshm_region_create(100, 0, 0, &extra));
	ASSERT_EQ(0, pyshm_xfer_send(x, extra, &ref));
	pyshm_region_put(extra);
	pyshm_xfer_drop(x, &ref);
	EXPECT_EQ(-ENOENT, pyshm_region_lookup(ref.id, &extra));
	pyshm_xfer_free(x);
}

TEST_F(xfer, socket_carries_a_region_to_another_process)
{
	struct pyshm_region_ref ref[3];
	struct pyshm_xfer *x;
	int sv[2], pipefd[2];
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pyshm_region *got;
		struct pyshm_region_ref bad;

		close(sv[0]);
		if (pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &x))
			_exit(1);
		if (read(pipefd[0], ref, sizeof(ref)) != sizeof(ref))
			_exit(2);
		/* Out of order: the first two arrive stashed. */
		if (pyshm_xfer_recv(x, &ref[2], &got) || ((char *)pyshm_region_data(got))[0] != 'r')
			_exit(3);
		pyshm_region_put(got);
		bad = ref[0];
		bad.cookie += 100;
		if (pyshm_xfer_recv(x, &bad, &got) != -EBADMSG)
			_exit(4);
		bad = ref[0];
		bad.id ^= 1;
		if (pyshm_xfer_recv(x, &bad, &got) != -EBADMSG)
			_exit(5);
		if (pyshm_xfer_recv(x, &ref[1], &got))
			_exit(6);
		if (pyshm_region_max_size(got) != 8192)
			_exit(7);
		pyshm_region_put(got);
		/* ref[0]'s fd was consumed by the forged id above. */
		if (pyshm_xfer_recv(x, &ref[0], &got) != -EBADMSG)
			_exit(8);
		pyshm_xfer_free(x);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &x));
	ASSERT_EQ(0, pyshm_xfer_send(x, self->r, &ref[0]));
	ASSERT_EQ(0, pyshm_xfer_send(x, self->r, &ref[1]));
	ASSERT_EQ(0, pyshm_xfer_send(x, self->r, &ref[2]));
	EXPECT_NE(ref[0].cookie, ref[1].cookie);
	ASSERT_EQ(sizeof(ref), write(pipefd[1], ref, sizeof(ref)));
	EXPECT_EQ(0, wait_child(pid));
	close(pipefd[0]);
	close(pipefd[1]);
	pyshm_xfer_free(x);
}

TEST_F(xfer, unclaimed_socket_fds_are_closed_with_the_transfer)
{
	struct pyshm_region_ref ref;
	struct pyshm_xfer *a, *b;
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &a));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &b));
	ASSERT_EQ(0, pyshm_xfer_send(a, self->r, &ref));
	ASSERT_EQ(0, pyshm_xfer_send(a, self->r, &ref));
	pyshm_xfer_drop(b, &ref);	/* stashes the first, takes the second */
	pyshm_xfer_free(a);
	pyshm_xfer_free(b);
}

TEST_F(xfer, any_fd_travels_over_a_socket_transfer)
{
	struct pyshm_xfer *a, *b, *local;
	int sv[2], pipefd[2], got;
	uint64_t cookie;
	char c;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[0], &a));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_SOCKET, sv[1], &b));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_LOCAL, -1, &local));
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-EINVAL, pyshm_xfer_send_fd(a, -1, &cookie));
	EXPECT_EQ(-EINVAL, pyshm_xfer_send_fd(a, pipefd[1], NULL));
	EXPECT_EQ(-EOPNOTSUPP, pyshm_xfer_send_fd(local, pipefd[1], &cookie));
	EXPECT_EQ(-EOPNOTSUPP, pyshm_xfer_recv_fd(local, 1));
	ASSERT_EQ(0, pyshm_xfer_send_fd(a, pipefd[1], &cookie));
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv_fd(b, cookie + 1));
	got = pyshm_xfer_recv_fd(b, cookie);
	ASSERT_LE(0, got);
	EXPECT_EQ(FD_CLOEXEC, fcntl(got, F_GETFD));
	ASSERT_EQ(1, write(got, "z", 1));
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ('z', c);
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv_fd(b, cookie));
	close(got);
	close(pipefd[0]);
	close(pipefd[1]);
	pyshm_xfer_free(a);
	pyshm_xfer_free(b);
	pyshm_xfer_free(local);
}

TEST_F(xfer, kmod_tokens_are_one_shot)
{
	struct pyshm_region_ref ref;
	struct pyshm_region *got;
	struct pyshm_xfer *x;

	if (pyshm_backend() != PYSHM_BACKEND_KMOD)
		SKIP(return, "kmod backend only (PYSHM_BACKEND=%s)", getenv("PYSHM_BACKEND"));
	ASSERT_EQ(0, pyshm_xfer_create(PYSHM_XFER_KMOD, -1, &x));
	ASSERT_EQ(0, pyshm_xfer_send(x, self->r, &ref));
	EXPECT_EQ(PYSHM_XFER_KMOD, ref.kind);
	ASSERT_EQ(0, pyshm_xfer_recv(x, &ref, &got));
	EXPECT_EQ(self->r, got);
	pyshm_region_put(got);
	EXPECT_EQ(-EBADMSG, pyshm_xfer_recv(x, &ref, &got));
	pyshm_xfer_free(x);
}

TEST_HARNESS_MAIN
