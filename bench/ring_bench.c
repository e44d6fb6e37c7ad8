// SPDX-License-Identifier: GPL-2.0
/*
 * libpyshm rings against the C floor of this machine, in one run with the
 * same pinning (parent on one CPU, child on the other): raw futex, eventfd
 * and pipe ping-pongs between two processes, then ring ping-pongs (sleeping
 * and spinning receivers) and one-way throughput with one and two
 * producers.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pyshm/pyshm.h>

#include "bench.h"

#define MSG 64
#define RING_DATA (1u << 20)

static int rounds = 20000;
/* Voluntary context switches (sleeps), both processes, per round trip of
 * the last ping-pong: a sleeping receiver must really sleep. */
static double last_sleeps;

static void die(const char *what, int err)
{
	fprintf(stderr, "ring_bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static pid_t fork_pinned(void)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", errno);
	pin_cpu(pid == 0 ? 1 : 0);
	return pid;
}

static long sleeps(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_nvcsw;
}

static void reap(pid_t pid)
{
	int status;

	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("child failed", EIO);
}

/* Reap the ping-pong's child; count both sides' sleeps since @self0/@kids0. */
static void reap_counting(pid_t pid, long self0, long kids0)
{
	long self = sleeps(RUSAGE_SELF);

	reap(pid);
	last_sleeps = (double)(self - self0 + sleeps(RUSAGE_CHILDREN) - kids0) / rounds;
}

/* ---- peers -------------------------------------------------------------- */

static long futex(atomic_uint *w, int op, unsigned int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* Round trip in ns: the word says whose turn it is; each side sleeps. */
static double futex_pingpong(void)
{
	atomic_uint *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long self0 = sleeps(RUSAGE_SELF), kids0 = sleeps(RUSAGE_CHILDREN);
	double t0 = 0, t1;
	pid_t pid;
	int i;

	atomic_store(w, 0);
	pid = fork_pinned();
	for (i = 0; i < rounds; i++) {
		unsigned int mine = pid ? 0 : 1;

		if (i == 0 && pid)
			t0 = now_s();
		while (atomic_load(w) != mine)
			futex(w, FUTEX_WAIT, !mine);
		atomic_store(w, !mine);
		futex(w, FUTEX_WAKE, 1);
	}
	if (!pid)
		_exit(0);
	while (atomic_load(w) != 0)
		futex(w, FUTEX_WAIT, 1);
	t1 = now_s();
	reap_counting(pid, self0, kids0);
	munmap(w, 4096);
	return (t1 - t0) / rounds * 1e9;
}

static double fd_pingpong(int a_rd, int a_wr, int b_rd, int b_wr, size_t len)
{
	char buf[MSG] = { 0 };
	uint64_t one = 1;
	void *p = len == 8 ? (void *)&one : buf;
	double t0, t1;
	pid_t pid;
	int i;

	pid = fork_pinned();
	if (!pid) {
		for (i = 0; i < rounds; i++) {
			if (read(a_rd, p, len) != (ssize_t)len || write(b_wr, p, len) != (ssize_t)len)
				_exit(1);
		}
		_exit(0);
	}
	t0 = now_s();
	for (i = 0; i < rounds; i++) {
		if (write(a_wr, p, len) != (ssize_t)len || read(b_rd, p, len) != (ssize_t)len)
			die("pingpong io", errno);
	}
	t1 = now_s();
	reap(pid);
	return (t1 - t0) / rounds * 1e9;
}

static double eventfd_pingpong(void)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	double ns = fd_pingpong(a, a, b, b, 8);

	close(a);
	close(b);
	return ns;
}

static double pipe_pingpong(void)
{
	int a[2], b[2];
	double ns;

	if (pipe(a) || pipe(b))
		die("pipe", errno);
	ns = fd_pingpong(a[0], a[1], b[0], b[1], MSG);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	return ns;
}

/* ---- pyshm rings -------------------------------------------------------- */

/* Two rings in one region: ring 0 parent->child, ring 1 child->parent. */
struct duplex {
	struct pyshm_region *r;
	struct pyshm_ring *to_child, *from_child;	/* parent's handles */
	struct pyshm_ring *to_parent, *from_parent;	/* child's handles */
	struct pyshm_waiter *wp, *wc;
};

static void duplex_open(struct duplex *d, int wake)
{
	uint64_t off1 = pyshm_ring_bytes(RING_DATA);
	int ret;

	ret = pyshm_region_create(2 * off1, 0, 0, &d->r);
	if (!ret)
		ret = pyshm_ring_init(d->r, 0, RING_DATA, PYSHM_RING_PRODUCER, &d->to_child);
	if (!ret)
		ret = pyshm_ring_attach(d->r, 0, PYSHM_RING_CONSUMER, &d->from_parent);
	if (!ret)
		ret = pyshm_ring_init(d->r, off1, RING_DATA, PYSHM_RING_PRODUCER, &d->to_parent);
	if (!ret)
		ret = pyshm_ring_attach(d->r, off1, PYSHM_RING_CONSUMER, &d->from_child);
	/* Both waiters exist before fork(): each side inherits the other's. */
	if (!ret)
		ret = pyshm_waiter_create(wake, &d->wp);
	if (!ret)
		ret = pyshm_waiter_create(wake, &d->wc);
	if (ret)
		die("duplex", ret);
	pyshm_ring_set_waiter(d->from_child, d->wp);
	pyshm_ring_set_waiter(d->from_parent, d->wc);
	if (wake == PYSHM_WAKE_URING) {
		pyshm_ring_set_peer(d->to_child, pyshm_waiter_fd(d->wc));
		pyshm_ring_set_peer(d->to_parent, pyshm_waiter_fd(d->wp));
	}
}

static void duplex_close(struct duplex *d)
{
	pyshm_ring_free(d->to_child);
	pyshm_ring_free(d->from_child);
	pyshm_ring_free(d->to_parent);
	pyshm_ring_free(d->from_parent);
	pyshm_waiter_free(d->wp);
	pyshm_waiter_free(d->wc);
	pyshm_region_put(d->r);
}

static void echo(struct pyshm_ring *in, struct pyshm_ring *out, const char *buf)
{
	struct pyshm_ring_rec rec;
	int ret = pyshm_ring_recv(in, &rec, -1);

	if (ret < 0)
		die("recv", ret);
	pyshm_ring_consume(in, &rec);
	ret = pyshm_ring_send(out, buf, MSG, -1);
	if (ret < 0)
		die("send", ret);
}

static double ring_pingpong(int wake, int64_t spin)
{
	char buf[MSG] = { 1 };
	struct pyshm_ring_rec rec;
	long self0 = sleeps(RUSAGE_SELF), kids0 = sleeps(RUSAGE_CHILDREN);
	struct duplex d;
	double t0, t1;
	pid_t pid;
	int i, ret;

	pyshm_set_spin_ns(spin);
	duplex_open(&d, wake);
	pid = fork_pinned();
	if (!pid) {
		for (i = 0; i < rounds; i++)
			echo(d.from_parent, d.to_parent, buf);
		_exit(0);
	}
	t0 = now_s();
	for (i = 0; i < rounds; i++) {
		ret = pyshm_ring_send(d.to_child, buf, MSG, -1);
		if (!ret)
			ret = pyshm_ring_recv(d.from_child, &rec, -1);
		if (ret)
			die("pingpong", ret);
		pyshm_ring_consume(d.from_child, &rec);
	}
	t1 = now_s();
	reap_counting(pid, self0, kids0);
	duplex_close(&d);
	return (t1 - t0) / rounds * 1e9;
}

/* Records per second from @nprod producer processes to one consumer. */
static double ring_oneway(int nprod, int n)
{
	char buf[MSG] = { 0 };
	struct pyshm_ring *prod, *cons;
	struct pyshm_region *r;
	struct pyshm_ring_rec rec;
	uint32_t next[4] = { 0 };
	pid_t pid[4];
	double t0, t1;
	int i, p, ret;

	pyshm_set_spin_ns(50000);
	ret = pyshm_region_create(pyshm_ring_bytes(RING_DATA), 0, 0, &r);
	if (!ret)
		ret = pyshm_ring_init(r, 0, RING_DATA, PYSHM_RING_CONSUMER, &cons);
	if (!ret)
		ret = pyshm_ring_attach(r, 0, PYSHM_RING_PRODUCER, &prod);
	if (ret)
		die("oneway", ret);
	t0 = now_s();
	for (p = 0; p < nprod; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			/* Producers share one CPU, the consumer has the other. */
			pin_cpu(1);
			for (i = 0; i < n; i++) {
				memcpy(buf, &p, sizeof(p));
				memcpy(buf + 4, &i, sizeof(i));
				if (pyshm_ring_send(prod, buf, MSG, -1))
					_exit(1);
			}
			_exit(0);
		}
	}
	pin_cpu(0);
	for (i = 0; i < n * nprod; i++) {
		uint32_t who, seq;

		ret = pyshm_ring_recv(cons, &rec, -1);
		if (ret)
			die("oneway recv", ret);
		memcpy(&who, rec.data, 4);
		memcpy(&seq, (char *)rec.data + 4, 4);
		/* No loss, in order per producer. */
		if (who >= (uint32_t)nprod || seq != next[who]++)
			die("oneway order", EILSEQ);
		pyshm_ring_consume(cons, &rec);
	}
	t1 = now_s();
	for (p = 0; p < nprod; p++)
		reap(pid[p]);
	pyshm_ring_free(prod);
	pyshm_ring_free(cons);
	pyshm_region_put(r);
	return n * nprod / (t1 - t0);
}

static double med(double (*fn)(void))
{
	double v[REPEATS];
	int i;

	for (i = 0; i < REPEATS; i++)
		v[i] = fn();
	return median(v, REPEATS);
}

/* Medians of fn() and of peer() measured in alternation, and of their
 * sleeps per round trip. */
static double med_pair(double (*fn)(void), double (*peer)(void), double *peer_med,
		       double *sleeps_fn, double *sleeps_peer)
{
	double v[REPEATS], p[REPEATS], sv[REPEATS], sp[REPEATS];
	int i;

	for (i = 0; i < REPEATS; i++) {
		p[i] = peer();
		sp[i] = last_sleeps;
		v[i] = fn();
		sv[i] = last_sleeps;
	}
	*peer_med = median(p, REPEATS);
	*sleeps_fn = median(sv, REPEATS);
	*sleeps_peer = median(sp, REPEATS);
	return median(v, REPEATS);
}

static int bench_wake;

/*
 * A sleeping receiver: a spin budget far below a wakeup's cost, so each
 * side sleeps whenever the other has not answered within 1 us. Like the raw
 * futex ping-pong, that is once per round trip: the waker's FUTEX_WAKE (or
 * MSG_RING) covers the other side's wakeup, and the answer is there when it
 * returns. (With no spin at all each side would sleep after every send.)
 */
#define SLEEPING_SPIN_NS 1000

static double sleeping_pingpong(void)
{
	return ring_pingpong(bench_wake, SLEEPING_SPIN_NS);
}

static double spinning_pingpong(void)
{
	return ring_pingpong(pyshm_wake_default(), 1000LL * 1000 * 1000);
}

static double oneway1(void)
{
	return ring_oneway(1, 2000000);
}

static double oneway2(void)
{
	return ring_oneway(2, 1000000);
}

int main(int argc, char **argv)
{
	double fx, ev, pp, ours, rate, peer, zzz, peer_zzz;
	char a[32], b[32], name[96], goal[64];
	int wake, kinds[2] = { PYSHM_WAKE_URING, PYSHM_WAKE_FUTEX };

	bench_init();
	if (argc > 1)
		rounds = atoi(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	table_header("A. libpyshm rings vs the C floor (2 processes, pinned to 2 CPUs; "
		     "median of 5)");
	fx = med(futex_pingpong);
	ev = med(eventfd_pingpong);
	pp = med(pipe_pingpong);
	printf("%-58s %14s\n", "peer: raw futex ping-pong", fmt_ns(a, sizeof(a), fx));
	printf("%-58s %14s\n", "peer: eventfd ping-pong", fmt_ns(a, sizeof(a), ev));
	printf("%-58s %14s\n", "peer: pipe ping-pong (64 B)", fmt_ns(a, sizeof(a), pp));

	for (wake = 0; wake < 2; wake++) {
		struct pyshm_waiter *w;

		if (pyshm_waiter_create(kinds[wake], &w)) {
			printf("%-58s skipped: %s refused here\n", "ring ping-pong, sleeping",
			       pyshm_wake_name(kinds[wake]));
			continue;
		}
		pyshm_waiter_free(w);
		bench_wake = kinds[wake];
		/* Wakeup costs drift on these machines: alternate with the
		 * peer, each repeat measuring both. */
		ours = med_pair(sleeping_pingpong, futex_pingpong, &peer, &zzz, &peer_zzz);
		/*
		 * How often each side sleeps in a round trip is a race decided
		 * by the VM's wakeup latency (0.7 to 1.8 per round trip for the
		 * raw futex on these machines), so round trips compare only as
		 * a reference. What the wakeup path costs is the time per
		 * sleep, and the receiver must really sleep: at least once per
		 * round trip.
		 */
		snprintf(name, sizeof(name), "ring ping-pong 64 B, sleeping receiver (%s)",
			 pyshm_wake_name(kinds[wake]));
		snprintf(goal, sizeof(goal), "(reference; sleeps %.2f vs %.2f)", zzz, peer_zzz);
		table_row(name, fmt_ns(a, sizeof(a), ours), fmt_ns(b, sizeof(b), peer),
			  ours / peer, goal, zzz >= 1.0);
		table_row("  per wakeup (round trip / sleeps)", fmt_ns(a, sizeof(a), ours / zzz),
			  fmt_ns(b, sizeof(b), peer / peer_zzz), ours / zzz / (peer / peer_zzz),
			  "<= 1.1x raw futex", ours / zzz <= 1.1 * (peer / peer_zzz));
	}
	ours = med(spinning_pingpong);
	table_row("ring ping-pong 64 B, both sides spinning", fmt_ns(a, sizeof(a), ours),
		  fmt_ns(b, sizeof(b), pp), ours / pp, "<= 2 us and <= 0.1x pipe",
		  ours <= 2000 && ours / pp <= 0.1);
	rate = med(oneway1);
	table_row("one-way 64 B records, 1 producer process", fmt_rate(a, sizeof(a), rate),
		  "-", 5e6 / rate, ">= 5 M/s", rate >= 5e6);
	rate = med(oneway2);
	table_row("one-way 64 B records, 2 producer processes, no loss",
		  fmt_rate(a, sizeof(a), rate), "-", 3e6 / rate, ">= 3 M/s", rate >= 3e6);
	return 0;
}
