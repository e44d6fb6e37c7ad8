// SPDX-License-Identifier: GPL-2.0
/*
 * pyshm.ko against its peers, side by side in one run (make bench-kmod runs
 * it in the vm-check guest):
 *
 *  - a region's whole short life (create, mmap, first touch of one page,
 *    munmap, close) against memfd_create + ftruncate doing the same;
 *  - handing a 64 MiB region to another process: export + import + mmap
 *    (the syscall work on both sides) against passing a memfd with
 *    SCM_RIGHTS + mmap;
 *  - the whole hand-off round trip (token over a pipe, import, mmap, touch,
 *    ack) against copying the 64 MiB through a pipe.
 *
 * Medians of REPEATS runs; the ratio column is pyshm/peer (below 1: faster).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/pyshm.h>

#include "bench.h"

#define LIFE_ITERS	2000
#define HANDOFFS	15
#define BIG		(64UL << 20)

static int die(const char *what)
{
	fprintf(stderr, "bench_kmod: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double ns_since(double t0)
{
	return (now_s() - t0) * 1e9;
}

static int kmod_create(int dfd, uint64_t size)
{
	struct pyshm_region_create c;

	memset(&c, 0, sizeof(c));
	c.size = size;
	if (ioctl(dfd, PYSHM_IOC_REGION_CREATE, &c))
		die("PYSHM_IOC_REGION_CREATE");
	return c.fd;
}

/* One page's life, @n times; ns per life. */
static double life_kmod(int dfd, long page, int n)
{
	double t0 = now_s();
	char *p;
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = kmod_create(dfd, page);
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		munmap(p, page);
		close(fd);
	}
	return ns_since(t0) / n;
}

static double life_memfd(long page, int n)
{
	double t0 = now_s();
	char *p;
	int i, fd;

	for (i = 0; i < n; i++) {
		fd = memfd_create("bench", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, page))
			die("memfd");
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		munmap(p, page);
		close(fd);
	}
	return ns_since(t0) / n;
}

/*
 * The receiving process: commands on @cmd, answers (the ns it spent) on
 * @ack. 'T' + token: import and map. 'F': receive a memfd on @sock and map.
 * 'P': read BIG bytes from @data. 'Q': quit.
 */
static void receiver(int dfd, int cmd, int ack, int sock, int data)
{
	static char sink[BIG];
	struct pyshm_region_import im;
	char c, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	volatile char *p;
	uint64_t token;
	double t0, ns;
	size_t got;
	ssize_t n;
	int fd;

	pin_cpu(1);
	memset(sink, 0, sizeof(sink));	/* fault it in once */
	for (;;) {
		if (read(cmd, &c, 1) != 1)
			_exit(1);
		switch (c) {
		case 'T':
			if (read(cmd, &token, sizeof(token)) != sizeof(token))
				_exit(2);
			t0 = now_s();
			memset(&im, 0, sizeof(im));
			im.token = token;
			if (ioctl(dfd, PYSHM_IOC_REGION_IMPORT, &im))
				_exit(3);
			fd = im.fd;
			break;
		case 'F':
			t0 = now_s();
			if (recvmsg(sock, &msg, 0) != 1)
				_exit(4);
			memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
			break;
		case 'P':
			t0 = now_s();
			for (got = 0; got < BIG; got += n) {
				n = read(data, sink + got, BIG - got);
				if (n <= 0)
					_exit(5);
			}
			fd = -1;
			break;
		default:
			_exit(0);
		}
		if (fd >= 0) {
			p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED)
				_exit(6);
			ns = ns_since(t0);
			if (p[BIG - 1] != 0x5a)	/* the sender's bytes */
				_exit(7);
			munmap((void *)p, BIG);
			close(fd);
		} else {
			ns = ns_since(t0);
			if (sink[BIG - 1] != 0x5a)
				_exit(8);
		}
		if (write(ack, &ns, sizeof(ns)) != sizeof(ns))
			_exit(9);
	}
}

struct peer {
	int cmd, ack, sock, data;
	pid_t pid;
};

static double await_ack(struct peer *pr)
{
	double ns;

	if (read(pr->ack, &ns, sizeof(ns)) != sizeof(ns))
		die("receiver died");
	return ns;
}

/* Export, send the token, the receiver imports and maps. */
static void handoff_kmod(struct peer *pr, int dfd, int rfd, double *work,
			 double *trip)
{
	struct pyshm_region_export e;
	char buf[1 + sizeof(uint64_t)];
	double t0 = now_s(), tx;

	memset(&e, 0, sizeof(e));
	e.fd = rfd;
	e.flags = PYSHM_REGION_EXPORT_F_ONESHOT;
	if (ioctl(dfd, PYSHM_IOC_REGION_EXPORT, &e))
		die("PYSHM_IOC_REGION_EXPORT");
	tx = ns_since(t0);
	buf[0] = 'T';
	memcpy(buf + 1, &e.token, sizeof(e.token));
	if (write(pr->cmd, buf, sizeof(buf)) != sizeof(buf))
		die("write");
	*work = tx + await_ack(pr);
	*trip = ns_since(t0);
}

static void handoff_memfd(struct peer *pr, int mfd, double *work)
{
	char c = 'F', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	double t0, tx;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof(mfd));
	/* The fd first, so the receiver never waits for it. */
	t0 = now_s();
	if (sendmsg(pr->sock, &msg, 0) != 1)
		die("sendmsg");
	tx = ns_since(t0);
	if (write(pr->cmd, "F", 1) != 1)
		die("write");
	*work = tx + await_ack(pr);
}

static double copy_pipe(struct peer *pr, const char *src)
{
	double t0 = now_s();
	size_t put;
	ssize_t n;

	if (write(pr->cmd, "P", 1) != 1)
		die("write");
	for (put = 0; put < BIG; put += n) {
		n = write(pr->data, src + put, BIG - put);
		if (n <= 0)
			die("pipe write");
	}
	await_ack(pr);
	return ns_since(t0);
}

int main(void)
{
	double kl[REPEATS], ml[REPEATS], kw[HANDOFFS], mw[HANDOFFS], kt[HANDOFFS];
	double pc[REPEATS], k, m, t, c;
	long page = sysconf(_SC_PAGESIZE);
	int dfd, rfd, mfd, p1[2], p2[2], sv[2], pd[2], i;
	char a[32], b[32], name[96];
	struct peer pr;
	char *big;

	dfd = open("/dev/" PYSHM_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (dfd < 0)
		die("/dev/" PYSHM_DEVICE_NAME);
	pin_cpu(0);

	/* 1. A page's whole life, interleaved so both see the same machine. */
	life_kmod(dfd, page, LIFE_ITERS / 4);
	life_memfd(page, LIFE_ITERS / 4);
	for (i = 0; i < REPEATS; i++) {
		kl[i] = life_kmod(dfd, page, LIFE_ITERS);
		ml[i] = life_memfd(page, LIFE_ITERS);
	}

	/* 2, 3. A receiver process sharing our domain. */
	if (pipe(p1) || pipe(p2) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    pipe(pd))
		die("pipe");
	fcntl(pd[1], F_SETPIPE_SZ, 1 << 20);
	pr = (struct peer){ .cmd = p1[1], .ack = p2[0], .sock = sv[0], .data = pd[1] };
	pr.pid = fork();
	if (pr.pid < 0)
		die("fork");
	if (pr.pid == 0)
		receiver(dfd, p1[0], p2[1], sv[1], pd[0]);

	rfd = kmod_create(dfd, BIG);
	big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	if (big == MAP_FAILED)
		die("mmap");
	memset(big, 0x5a, BIG);
	mfd = memfd_create("bench", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, BIG))
		die("memfd");
	{
		char *q = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);

		if (q == MAP_FAILED)
			die("mmap");
		memset(q, 0x5a, BIG);
		munmap(q, BIG);
	}
	handoff_kmod(&pr, dfd, rfd, &k, &t);	/* warm up */
	handoff_memfd(&pr, mfd, &m);
	for (i = 0; i < HANDOFFS; i++) {
		handoff_kmod(&pr, dfd, rfd, &kw[i], &kt[i]);
		handoff_memfd(&pr, mfd, &mw[i]);
	}
	copy_pipe(&pr, big);
	for (i = 0; i < REPEATS; i++)
		pc[i] = copy_pipe(&pr, big);
	if (write(pr.cmd, "Q", 1) != 1 || waitpid(pr.pid, NULL, 0) != pr.pid)
		die("receiver");

	table_header("kmod: pyshm.ko regions vs memfd and pipes (medians)");
	k = median(kl, REPEATS);
	m = median(ml, REPEATS);
	table_row("region create+mmap+touch 1 page+munmap+close (vs memfd)",
		  fmt_ns(a, sizeof(a), k), fmt_ns(b, sizeof(b), m), k / m,
		  "<= 1.5x", k / m <= 1.5);
	k = median(kw, HANDOFFS);
	m = median(mw, HANDOFFS);
	table_row("64 MiB to another process: export+import+mmap (vs SCM_RIGHTS)",
		  fmt_ns(a, sizeof(a), k), fmt_ns(b, sizeof(b), m), k / m,
		  "<= 50 us", k <= 50e3);
	t = median(kt, HANDOFFS);
	c = median(pc, REPEATS);
	snprintf(name, sizeof(name), "64 MiB hand-off round trip, token (vs pipe copy: %.0fx)",
		 c / t);
	table_row(name, fmt_ns(a, sizeof(a), t), fmt_ns(b, sizeof(b), c), t / c,
		  ">= 1000x faster", c / t >= 1000);
	return 0;
}
