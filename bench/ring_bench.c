// SPDX-License-Identifier: GPL-2.0
/*
 * libpyshm rings against the C floor of this machine, in one run with the
 * same pinning (parent on one CPU, child on the other): raw futex (plain and
 * flagged), eventfd and pipe ping-pongs between two processes, then ring
 * ping-pongs (sleeping, never spinning, and spinning receivers) and one-way
 * throughput with one and two producers. Documentation/benchmarks.rst says
 * what each row compares.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* The futex ping-pongs' shared page: whose turn, and who sleeps. */
struct turns {
	alignas(64) atomic_uint turn;
	alignas(64) atomic_uint asleep[2];	/* flagged: a cache line each */
};

/* Wait for @mine's turn: FUTEX_WAIT on the turn word itself. */
static void turn_wait(struct turns *t, unsigned int mine)
{
	while (atomic_load(&t->turn) != mine)
		futex(&t->turn, FUTEX_WAIT, !mine);
}

/* The same, saying first that we sleep (seq_cst store, then re-check). */
static void turn_wait_flagged(struct turns *t, unsigned int mine)
{
	while (atomic_load(&t->turn) != mine) {
		atomic_store(&t->asleep[mine], 1);
		if (atomic_load(&t->turn) != mine)
			futex(&t->asleep[mine], FUTEX_WAIT, 1);
		atomic_store(&t->asleep[mine], 0);
	}
}

/*
 * Round trip in ns of a raw futex ping-pong between two processes. Plain:
 * each side calls FUTEX_WAKE after every turn, whether the other sleeps or
 * not. Flagged: a side about to sleep says so first and is woken only then,
 * as a ring's producer wakes only a sleeping consumer; without a spin that
 * makes every turn wake a sleeper.
 */
static double futex_pingpong_how(bool flagged)
{
	struct turns *t = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long self0 = sleeps(RUSAGE_SELF), kids0 = sleeps(RUSAGE_CHILDREN);
	void (*await_turn)(struct turns *, unsigned int) = flagged ? turn_wait_flagged : turn_wait;
	double t0 = 0, t1;
	unsigned int mine;
	pid_t pid;
	int i;

	if (t == MAP_FAILED)
		die("mmap", errno);
	memset(t, 0, sizeof(*t));
	pid = fork_pinned();
	mine = pid ? 0 : 1;
	for (i = 0; i < rounds; i++) {
		if (i == 0 && pid)
			t0 = now_s();
		await_turn(t, mine);
		atomic_store(&t->turn, !mine);
		if (!flagged)
			futex(&t->turn, FUTEX_WAKE, 1);
		else if (atomic_load(&t->asleep[!mine]) && atomic_exchange(&t->asleep[!mine], 0))
			futex(&t->asleep[!mine], FUTEX_WAKE, 1);
	}
	if (!pid)
		_exit(0);
	await_turn(t, 0);
	t1 = now_s();
	reap_counting(pid, self0, kids0);
	munmap(t, 4096);
	return (t1 - t0) / rounds * 1e9;
}

static double futex_pingpong(void)
{
	return futex_pingpong_how(false);
}

static double futex_flagged_pingpong(void)
{
	return futex_pingpong_how(true);
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

static void ask(struct duplex *d, const char *buf)
{
	struct pyshm_ring_rec rec;
	int ret = pyshm_ring_send(d->to_child, buf, MSG, -1);

	if (!ret)
		ret = pyshm_ring_recv(d->from_child, &rec, -1);
	if (ret)
		die("pingpong", ret);
	pyshm_ring_consume(d->from_child, &rec);
}

/* Spin budget while the rings warm up: no sleeps. */
#define SPIN_FOREVER_NS (1000LL * 1000 * 1000)

/*
 * Round trips that lap both rings once before the timing starts: each
 * process maps the region lazily, and the first lap's page faults are no
 * part of a steady ping-pong (the futex ping-pongs' page is touched before
 * fork()).
 */
#define WARM_ROUNDS ((int)(RING_DATA / (MSG + 8)) + 1)

static double ring_pingpong(int wake, int64_t spin)
{
	char buf[MSG] = { 1 };
	long self0, kids0 = sleeps(RUSAGE_CHILDREN);
	struct duplex d;
	double t0, t1;
	pid_t pid;
	int i;

	pyshm_set_spin_ns(SPIN_FOREVER_NS);
	duplex_open(&d, wake);
	pid = fork_pinned();
	if (!pid) {
		for (i = 0; i < WARM_ROUNDS; i++)
			echo(d.from_parent, d.to_parent, buf);
		pyshm_set_spin_ns(spin);
		for (i = 0; i < rounds; i++)
			echo(d.from_parent, d.to_parent, buf);
		_exit(0);
	}
	for (i = 0; i < WARM_ROUNDS; i++)
		ask(&d, buf);
	pyshm_set_spin_ns(spin);
	self0 = sleeps(RUSAGE_SELF);
	t0 = now_s();
	for (i = 0; i < rounds; i++)
		ask(&d, buf);
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

/*
 * fn() against peer(), measured in alternation: medians of each round trip,
 * of sleeps per round trip, and of the ratios within each pair (robust to
 * drift between pairs): of round trips, and of time per sleep.
 */
struct pair {
	double ours, peer, sleeps, peer_sleeps, ratio, wake_ratio;
};

static struct pair med_pair(double (*fn)(void), double (*peer)(void))
{
	double v[REPEATS], p[REPEATS], sv[REPEATS], sp[REPEATS], r[REPEATS], rw[REPEATS];
	int i;

	for (i = 0; i < REPEATS; i++) {
		p[i] = peer();
		sp[i] = last_sleeps;
		v[i] = fn();
		sv[i] = last_sleeps;
		r[i] = v[i] / p[i];
		rw[i] = sv[i] > 0 && sp[i] > 0 ? r[i] * sp[i] / sv[i] : 0;
	}
	return (struct pair){
		.ours = median(v, REPEATS), .peer = median(p, REPEATS),
		.sleeps = median(sv, REPEATS), .peer_sleeps = median(sp, REPEATS),
		.ratio = median(r, REPEATS), .wake_ratio = median(rw, REPEATS),
	};
}

static int bench_wake;

/*
 * A sleeping receiver: it spins briefly, far below a wakeup's cost (about
 * one system call here), then sleeps; much as the raw futex ping-pong's
 * FUTEX_WAKE after each turn gives the answer that long to arrive.
 */
#define SLEEPING_SPIN_NS 1000

static double sleeping_pingpong(void)
{
	return ring_pingpong(bench_wake, SLEEPING_SPIN_NS);
}

/* No spin at all: every message finds the other side asleep. */
static double waking_pingpong(void)
{
	return ring_pingpong(bench_wake, 0);
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
	double fx, ev, pp, ours, rate;
	char a[32], b[32], name[96], goal[96];
	struct pair m;
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
	printf("%-58s %14s\n", "peer: raw futex ping-pong, flagged (wakes only a sleeper)",
	       fmt_ns(a, sizeof(a), med(futex_flagged_pingpong)));
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
		/*
		 * Wakeup costs drift on these machines: alternate with the
		 * peer, each repeat measuring both. The sleeps (voluntary
		 * context switches of both processes per round trip) show how
		 * often a message found the other side asleep.
		 */
		m = med_pair(sleeping_pingpong, futex_pingpong);
		snprintf(name, sizeof(name), "ring ping-pong 64 B, sleeping receiver (%s)",
			 pyshm_wake_name(kinds[wake]));
		snprintf(goal, sizeof(goal), "<= 1.1x raw futex (sleeps %.2f vs %.2f)",
			 m.sleeps, m.peer_sleeps);
		table_row(name, fmt_ns(a, sizeof(a), m.ours), fmt_ns(b, sizeof(b), m.peer),
			  m.ratio, goal, m.ratio <= 1.1);
		/*
		 * No spin on either side: nearly every message finds the other
		 * side asleep, so what is compared is the wakeup path, per
		 * sleep. (Round trips also count how often an answer beat its
		 * asker to sleep, more often for a futex word than for a
		 * record: they are shown, not judged.)
		 */
		m = med_pair(waking_pingpong, futex_flagged_pingpong);
		snprintf(goal, sizeof(goal), "<= 1.1x flagged futex (round trip %.3fx, "
			 "sleeps %.2f vs %.2f)", m.ratio, m.sleeps, m.peer_sleeps);
		table_row("  no spin: per wakeup (round trip / sleeps)",
			  fmt_ns(a, sizeof(a), m.ours / m.sleeps),
			  fmt_ns(b, sizeof(b), m.peer / m.peer_sleeps), m.wake_ratio, goal,
			  m.wake_ratio <= 1.1);
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
