// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile peer for libpyshm's rings: a channel (two rings in one region,
 * a socket for fds) between this process and a child that behaves only
 * part of the time. The child sends good records, inline and out of line,
 * and between them scribbles over the shared region, forges out-of-line
 * references (unknown cookies, lengths past the region, a maximum past the
 * size, an fd that is not a region), grows the regions it sent past their
 * maximum with ftruncate(), and dies at a random moment, or is killed. The
 * parent reads every byte of every record it is given and sends back with
 * timeouts: it must never crash, read out of bounds (ASan) or hang (each
 * wait is bounded, and an alarm ends a stuck run). A corrupted channel is
 * dropped and a new one made, as a program would.
 *
 *	ring_peer SECONDS [SEED]
 *
 * Prints TAP and a "# Totals:" line.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pyshm/region.h>
#include <pyshm/ring.h>
#include <pyshm/xfer.h>

#define DATA		(16u << 10)
#define OOL_AT		512u
#define WAIT_NS		(5 * 1000 * 1000)

struct chan {
	struct pyshm_region *r;
	struct pyshm_ring *tx, *rx;	/* ring 0: parent -> child, ring 1: back */
	struct pyshm_xfer *x;
	int sock;
};

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t ring_off(int i)
{
	return (uint64_t)i * pyshm_ring_bytes(DATA);
}

static int chan_side(struct pyshm_region *r, int sock, int side, struct chan *c)
{
	int ret;

	c->r = r;
	c->sock = sock;
	ret = pyshm_ring_attach(r, ring_off(side), PYSHM_RING_PRODUCER, &c->tx);
	if (!ret)
		ret = pyshm_ring_attach(r, ring_off(!side), PYSHM_RING_CONSUMER, &c->rx);
	if (!ret)
		ret = pyshm_xfer_create(PYSHM_XFER_SOCKET, sock, &c->x);
	if (ret)
		return ret;
	pyshm_ring_set_xfer(c->tx, c->x);
	pyshm_ring_set_xfer(c->rx, c->x);
	pyshm_ring_set_ool_threshold(c->tx, OOL_AT);
	pyshm_ring_set_ool_limit(c->tx, 1 << 20, 8);
	return 0;
}

/* Send a raw fd tagged @seq, as a socket transfer does. */
static void send_raw_fd(int sock, int fd, uint64_t seq)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &seq, .iov_len = sizeof(seq) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = buf, .msg_controllen = sizeof(buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A forged out-of-line record: the ring format's 48-byte payload. */
static void send_forged_ool(struct chan *c)
{
	struct {
		struct pyshm_region_ref ref;
		uint64_t len;
		uint64_t off;
	} ool;
	struct pyshm_ring_rec rec;
	struct pyshm_region *g;
	uint64_t seq = rnd();
	int fd;

	memset(&ool, 0, sizeof(ool));
	ool.ref.kind = PYSHM_XFER_SOCKET;
	ool.ref.cookie = seq;
	ool.len = rnd() % (1 << 20);
	ool.off = rnd() % 2 ? 64 : rnd() % 3 ? 0 : rnd();
	switch (rnd() % 4) {
	case 0:		/* a growable region, its size and max lied about */
		if (pyshm_region_create(4096, 1 << 16, 0, &g))
			return;
		fd = pyshm_region_fd(g);
		ool.ref.id = pyshm_region_id(g);
		ool.ref.max_size = rnd() % 2 ? 1 << 16 : rnd() % (1 << 22);
		send_raw_fd(c->sock, fd, seq);
		/* Past the maximum: the receiver must stay in its mapping. */
		if (ftruncate(fd, (off_t)(rnd() % (1 << 22))) < 0)
			ool.len = 1 << 16;
		pyshm_region_put(g);
		break;
	case 1:		/* not a region at all */
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		send_raw_fd(c->sock, fd, seq);
		close(fd);
		break;
	case 2:		/* nothing sent under that cookie */
		break;
	default:	/* random bytes */
		for (fd = 0; fd < (int)sizeof(ool); fd++)
			((unsigned char *)&ool)[fd] = (unsigned char)rnd();
		break;
	}
	if (pyshm_ring_reserve(c->tx, sizeof(ool), 0, &rec))
		return;
	memcpy(rec.data, &ool, sizeof(ool));
	/* Published as an out-of-line record, through the library's own
	 * path: an OOL header word is the 29th bit. */
	rec.hdr |= 1u << 29;
	pyshm_ring_commit(c->tx, &rec);
}

static void scribble(struct chan *c)
{
	unsigned char *p = pyshm_region_data(c->r);
	uint64_t size = pyshm_region_size(c->r), off;
	int n = 1 + (int)(rnd() % 8);

	while (n--) {
		/* Headers half of the time: they hold what is trusted most. */
		off = rnd() % 2 ? ring_off((int)(rnd() % 2)) + rnd() % PYSHM_RING_HDR_SIZE :
		      rnd() % size;
		p[off] = (unsigned char)rnd();
	}
}

static void child_main(struct chan *c, uint64_t seed)
{
	static unsigned char buf[8192];
	struct pyshm_ring_rec rec;
	int steps = 50 + (int)(rnd() % 500);

	rng = seed;
	while (steps--) {
		switch (rnd() % 8) {
		case 0:
			scribble(c);
			break;
		case 1:
			send_forged_ool(c);
			break;
		case 2:
			if (rnd() % 20 == 0)
				_exit(0);	/* dies with records half-read */
			break;
		default:
			memset(buf, (int)rnd(), sizeof(buf));
			pyshm_ring_send(c->tx, buf, rnd() % sizeof(buf), WAIT_NS);
			if (pyshm_ring_recv(c->rx, &rec, 0) == 0)
				pyshm_ring_consume(c->rx, &rec);
			break;
		}
	}
	_exit(0);
}

struct tally {
	unsigned long chans, recs, ool, bad, sent;
};

/* One channel's life, seen from the parent. */
static int one_channel(struct tally *t)
{
	static unsigned char buf[4096];
	struct pyshm_ring_rec rec;
	struct pyshm_region *r;
	struct pyshm_ring *init;
	struct chan c;
	volatile unsigned char sink = 0;
	uint64_t seed = rnd();
	int sv[2], i, ret, status, rounds;
	pid_t pid;
	size_t k;

	ret = pyshm_region_create(2 * pyshm_ring_bytes(DATA), 0, 0, &r);
	for (i = 0; !ret && i < 2; i++) {
		ret = pyshm_ring_init(r, ring_off(i), DATA, PYSHM_RING_CONSUMER, &init);
		pyshm_ring_free(init);
	}
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	/* Ours first: the child may scribble over the headers at once. */
	ret = chan_side(r, sv[0], 0, &c);
	if (ret)
		return ret;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct chan cc;

		close(sv[0]);
		if (chan_side(pyshm_region_get(r), sv[1], 1, &cc))
			_exit(1);
		child_main(&cc, seed);
	}
	close(sv[1]);
	t->chans++;
	rounds = 20 + (int)(rnd() % 200);
	while (rounds--) {
		ret = pyshm_ring_recv(c.rx, &rec, WAIT_NS);
		if (ret == 0 || (ret == -EBADMSG && rec.total)) {
			/* Every byte we are given must be ours to read. */
			for (k = 0; ret == 0 && k < rec.len; k += 64)
				sink ^= ((unsigned char *)rec.data)[k];
			if (ret == 0 && rec.len)
				sink ^= ((unsigned char *)rec.data)[rec.len - 1];
			t->recs++;
			t->ool += rec.ool != NULL;
			t->bad += ret != 0;
			pyshm_ring_consume(c.rx, &rec);
		} else if (ret == -EBADMSG || ret == -EPIPE) {
			t->bad += ret == -EBADMSG;
			break;		/* a program drops such a channel */
		} else if (waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;	/* gone, and read to the end */
			break;
		}
		if (pyshm_ring_send(c.tx, buf, rnd() % 2 ? 64 : 2048, 0) == 0)
			t->sent++;
		if (rnd() % 64 == 0)
			kill(pid, SIGKILL);	/* reaped above, or below */
	}
	if (pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	pyshm_ring_discard_all(c.rx);
	pyshm_ring_free(c.tx);
	pyshm_ring_free(c.rx);
	pyshm_xfer_free(c.x);
	pyshm_region_put(c.r);
	(void)sink;
	return 0;
}

int main(int argc, char **argv)
{
	struct tally t = { 0 };
	time_t end;
	int secs, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SECONDS [SEED]\n", argv[0]);
		return 2;
	}
	secs = atoi(argv[1]);
	rng = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	rng |= 1;
	printf("1..1\n# seed %llu\n", (unsigned long long)rng);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	/* A hang is a failure: nothing here waits long. */
	alarm((unsigned int)secs + 60);
	end = time(NULL) + secs;
	while (time(NULL) < end) {
		ret = one_channel(&t);
		if (ret < 0) {
			printf("not ok 1 ring_peer: setup failed: %s\n", strerror(-ret));
			printf("# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n");
			return 1;
		}
	}
	printf("ok 1 ring_peer: %lu channels, %lu records (%lu out of line, %lu refused), %lu sent\n",
	       t.chans, t.recs, t.ool, t.bad, t.sent);
	printf("# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n");
	return 0;
}
