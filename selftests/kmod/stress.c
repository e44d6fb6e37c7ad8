// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency tests: threads hammering create/export/import/revoke/close/
 * grow/seal/mmap on shared fds (which other threads close and reuse under
 * them) and on a domain that is closed and reopened meanwhile; processes of
 * several threads doing all of it at once, SIGKILLed mid-way, for a time
 * budget (PYSHM_STRESS_SECS, default 3 s; `make vm-check-debug` gives it
 * more). Errors are expected and ignored; what must hold is the kernel
 * staying quiet (vm-check greps dmesg) and nothing leaking (the debugfs
 * listing comes back to where it was).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "kselftest_harness.h"
#include "pyshm_test.h"

#define SLOTS	8
#define TOKENS	64
#define ITERS	3000

FIXTURE(stress) {
	int dfd;
	int before;
	long page;
};

FIXTURE_SETUP(stress)
{
	self->page = page_size();
	self->dfd = domain_open();
	if (self->dfd < 0)
		SKIP_TEST("no %s: %s", DEV_PYSHM, strerror(errno));
	self->before = dbg_count();
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	if (self->dfd >= 0)
		close(self->dfd);
	if (self->before < 0)
		return;
	for (i = 0; i < 200 && dbg_count() != self->before; i++)
		usleep(10000);
	EXPECT_EQ(self->before, dbg_count());
}

struct hammer {
	int dfd;		/* stable domain */
	int dfd2;		/* a domain fd number that gets replaced */
	long page;
	_Atomic int slot[SLOTS];	/* region fds, closed and replaced */
	_Atomic uint64_t tokens[TOKENS];
	atomic_uint seed;
	atomic_long imports, exports, creates;
};

static unsigned int rnd(struct hammer *h)
{
	unsigned int x = atomic_fetch_add(&h->seed, 0x9e3779b9U);

	x ^= x >> 16;
	x *= 0x85ebca6bU;
	x ^= x >> 13;
	return x;
}

static int pick_domain(struct hammer *h)
{
	return rnd(h) % 4 ? h->dfd : h->dfd2;
}

static void *creator(void *arg)
{
	struct hammer *h = arg;
	int i, fd, old;

	for (i = 0; i < ITERS; i++) {
		fd = region_create(h->dfd, h->page, 16 * h->page, NULL);
		if (fd < 0)
			continue;
		atomic_fetch_add(&h->creates, 1);
		old = atomic_exchange(&h->slot[rnd(h) % SLOTS], fd);
		if (old >= 0)
			close(old);
	}
	return NULL;
}

static void *exporter(void *arg)
{
	struct hammer *h = arg;
	uint64_t token, old;
	int i, d;

	for (i = 0; i < ITERS; i++) {
		d = pick_domain(h);
		if (token_export(d, atomic_load(&h->slot[rnd(h) % SLOTS]),
				 rnd(h) % 2 ? PYSHM_REGION_EXPORT_F_ONESHOT : 0, &token))
			continue;
		atomic_fetch_add(&h->exports, 1);
		old = atomic_exchange(&h->tokens[rnd(h) % TOKENS], token);
		/* A multi-use token nobody will import again: drop it. */
		if (old && rnd(h) % 2)
			token_revoke(d, old);
	}
	return NULL;
}

static void *importer(void *arg)
{
	struct hammer *h = arg;
	struct pyshm_region_import im;
	volatile char *p;
	uint64_t token;
	int i, spins, fd;

	for (i = 0, spins = 0; i < ITERS && spins < 100 * ITERS; spins++) {
		token = atomic_load(&h->tokens[rnd(h) % TOKENS]);
		if (!token) {
			/* Exporters haven't got going yet. */
			sched_yield();
			continue;
		}
		i++;
		if (rnd(h) % 8 == 0) {
			token_revoke(pick_domain(h), token);
			continue;
		}
		fd = token_import(pick_domain(h), token, &im);
		if (fd < 0)
			continue;
		atomic_fetch_add(&h->imports, 1);
		/* This fd is ours: its region's first page exists. */
		p = mmap(NULL, im.max_size, PROT_READ |
			 (im.state & PYSHM_REGION_STATE_SEALED ? 0 : PROT_WRITE),
			 MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			if (im.state & PYSHM_REGION_STATE_SEALED)
				(void)p[0];
			else
				p[0]++;
			munmap((void *)p, im.max_size);
		}
		close(fd);
	}
	return NULL;
}

static void *grower(void *arg)
{
	struct hammer *h = arg;
	struct pyshm_region_info info;
	int i, fd;

	for (i = 0; i < ITERS; i++) {
		fd = atomic_load(&h->slot[rnd(h) % SLOTS]);
		switch (rnd(h) % 8) {
		case 0:
			region_seal(fd);
			break;
		case 1:
			region_info(fd, &info);
			break;
		default:
			region_grow(fd, (1 + rnd(h) % 16) * h->page);
			break;
		}
	}
	return NULL;
}

static void *mapper(void *arg)
{
	struct hammer *h = arg;
	void *p;
	int i, fd;

	for (i = 0; i < ITERS; i++) {
		fd = atomic_load(&h->slot[rnd(h) % SLOTS]);
		/* Maps only: the fd may name another region by now. */
		p = mmap(NULL, h->page, PROT_READ | (rnd(h) % 2 ? PROT_WRITE : 0),
			 MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			munmap(p, h->page);
	}
	return NULL;
}

static void *domain_cycler(void *arg)
{
	struct hammer *h = arg;
	int i, d;

	for (i = 0; i < ITERS / 10; i++) {
		d = domain_open();
		if (d < 0)
			continue;
		/* Atomically replaces the old domain: its tokens die. */
		dup2(d, h->dfd2);
		close(d);
		usleep(100);
	}
	return NULL;
}

TEST_F_TIMEOUT(stress, threads_hammering_every_ioctl_leak_nothing, 300)
{
	void *(*const fns[])(void *) = {
		creator, exporter, exporter, importer, importer, grower,
		mapper, domain_cycler,
	};
	enum { NT = sizeof(fns) / sizeof(fns[0]) };
	struct hammer *h;
	pthread_t t[NT];
	int i;

	h = calloc(1, sizeof(*h));
	ASSERT_NE(NULL, h);
	h->dfd = self->dfd;
	h->dfd2 = domain_open();
	ASSERT_LE(0, h->dfd2);
	h->page = self->page;
	atomic_store(&h->seed, getpid());
	for (i = 0; i < SLOTS; i++) {
		h->slot[i] = region_create(h->dfd, h->page, 16 * h->page, NULL);
		ASSERT_LE(0, h->slot[i]);
	}
	for (i = 0; i < NT; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fns[i], h));
	for (i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	TH_LOG("creates %ld exports %ld imports %ld", atomic_load(&h->creates),
	       atomic_load(&h->exports), atomic_load(&h->imports));
	EXPECT_LT(0, atomic_load(&h->imports));

	for (i = 0; i < SLOTS; i++)
		close(h->slot[i]);
	close(h->dfd2);	/* drops its pins; the fixture's domain drops the rest */
	free(h);
}

struct sealrace {
	int fd;
	long page;
	atomic_int stop;
	atomic_int violations, sealed_at;
};

static void *seal_writer(void *arg)
{
	struct sealrace *s = arg;
	struct pyshm_region_info info;
	char *p;

	while (!atomic_load(&s->stop)) {
		p = map(s->fd, s->page, PROT_READ | PROT_WRITE);
		if (p == MAP_FAILED)
			continue;
		/* We hold a writable mapping: the region can't be sealed. */
		if (region_info(s->fd, &info) == 0 &&
		    (info.state & PYSHM_REGION_STATE_SEALED))
			atomic_fetch_add(&s->violations, 1);
		p[0] = 1;
		munmap(p, s->page);
	}
	return NULL;
}

TEST_F_TIMEOUT(stress, seal_never_races_past_a_writable_mmap, 120)
{
	struct sealrace s = { .page = self->page };
	int round, i, won = 0;
	pthread_t t[2];

	for (round = 0; round < 20; round++) {
		s.fd = region_create(self->dfd, self->page, 0, NULL);
		ASSERT_LE(0, s.fd);
		atomic_store(&s.stop, 0);
		for (i = 0; i < 2; i++)
			ASSERT_EQ(0, pthread_create(&t[i], NULL, seal_writer, &s));
		for (i = 0; i < 2000; i++) {
			if (region_seal(s.fd) == 0) {
				won++;
				break;
			}
			ASSERT_EQ(EBUSY, errno);
		}
		atomic_store(&s.stop, 1);
		for (i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		/* With the writers gone it seals, and no writer comes back. */
		EXPECT_EQ(0, region_seal(s.fd));
		EXPECT_EQ(MAP_FAILED, map(s.fd, self->page, PROT_READ | PROT_WRITE));
		EXPECT_EQ(EPERM, errno);
		close(s.fd);
	}
	TH_LOG("seal won against live writers in %d of 20 rounds", won);
	EXPECT_EQ(0, atomic_load(&s.violations));
}

struct growrace {
	int fd;
	long page;
	atomic_int shrank;
};

static void *grow_up(void *arg)
{
	struct growrace *g = arg;
	uint64_t last = 0, now;
	int i;

	for (i = 1; i <= 256; i++) {
		region_grow(g->fd, (uint64_t)i * g->page / 2);
		now = region_size(g->fd);
		if (now < last)
			atomic_fetch_add(&g->shrank, 1);
		last = now;
	}
	return NULL;
}

TEST_F(stress, racing_grows_only_ever_grow)
{
	struct growrace g = { .page = self->page };
	pthread_t t[4];
	char *p;
	int i;

	g.fd = region_create(self->dfd, 0, 128 * self->page, NULL);
	ASSERT_LE(0, g.fd);
	p = map(g.fd, 128 * self->page, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, grow_up, &g));
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, atomic_load(&g.shrank));
	EXPECT_EQ(128 * self->page, region_size(g.fd));
	p[128 * self->page - 1] = 1;
	munmap(p, 128 * self->page);
	close(g.fd);
}

/*
 * Processes killed mid-way. Each child runs threads that create, export,
 * import, map, grow, seal and close regions through the domain they all
 * inherited (so their tokens are each other's), while the parent SIGKILLs a
 * random child now and then and starts another.
 */
#define PROCS		4
#define PROC_THREADS	3
#define PROC_SLOTS	16
#define PROC_TOKENS	128

enum {
	OP_CREATE, OP_EXPORT, OP_IMPORT, OP_MAP, OP_GROW, OP_SEAL, OP_CLOSE,
	OP_REVOKE, NR_OPS
};
static const char *const op_names[NR_OPS] = {
	"create", "export", "import", "map", "grow", "seal", "close", "revoke",
};

struct procstress {
	int dfd;
	long page;
	atomic_int stop;
	atomic_ulong ops[NR_OPS], done[NR_OPS];
	_Atomic uint64_t tokens[PROC_TOKENS];
};

struct procthread {
	struct procstress *ps;
	_Atomic int *slots;	/* the process's region fds */
	uint64_t rng;
};

static uint64_t prnd(struct procthread *t)
{
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Own a slot's fd for a while (others see -1), or keep a new one. */
static int slot_own(struct procthread *t)
{
	return atomic_exchange(&t->slots[prnd(t) % PROC_SLOTS], -1);
}

static void slot_keep(struct procthread *t, int fd)
{
	int i, expect;

	for (i = 0; i < PROC_SLOTS && fd >= 0; i++) {
		expect = -1;
		if (atomic_compare_exchange_strong(&t->slots[i], &expect, fd))
			return;
	}
	if (fd >= 0)
		close(fd);
}

/* Map a region we own and use it: write below its size, or read if sealed. */
static bool use_region(struct procthread *t, int fd)
{
	long page = t->ps->page;
	struct pyshm_region_info info;
	volatile char *p;
	size_t len;
	bool ro;

	if (region_info(fd, &info))
		return false;
	ro = info.state & PYSHM_REGION_STATE_SEALED;
	len = (info.max_size + page - 1) / page * page;
	p = mmap(NULL, len, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return false;
	/* Sizes only grow: what was below the size stays there. */
	if (info.size) {
		if (ro)
			(void)p[info.size - 1];
		else
			p[prnd(t) % info.size]++;
	}
	munmap((void *)p, len);
	return true;
}

static void *proc_thread(void *arg)
{
	struct procthread *t = arg;
	struct procstress *ps = t->ps;
	long page = ps->page;
	unsigned int op;
	uint64_t token;
	bool ok;
	int fd;

	while (!atomic_load(&ps->stop)) {
		op = prnd(t) % 16;
		/* Creates and closes balance; imports keep tokens flowing. */
		op = op < 3 ? OP_CREATE : op < 5 ? OP_EXPORT : op < 8 ? OP_IMPORT :
		     op < 10 ? OP_MAP : op < 12 ? OP_GROW : op < 13 ? OP_SEAL :
		     op < 15 ? OP_CLOSE : OP_REVOKE;
		ok = false;
		switch (op) {
		case OP_CREATE:
			fd = region_create(ps->dfd, (prnd(t) % 4) * page,
					   (4 + prnd(t) % 12) * page, NULL);
			ok = fd >= 0;
			slot_keep(t, fd);
			break;
		case OP_EXPORT:
			fd = slot_own(t);
			ok = fd >= 0 && !token_export(ps->dfd, fd, prnd(t) % 2 ?
						      PYSHM_REGION_EXPORT_F_ONESHOT : 0,
						      &token);
			if (ok) {
				token = atomic_exchange(&ps->tokens[prnd(t) % PROC_TOKENS],
							token);
				/* Pins pile up: drop the one pushed out, now and then. */
				if (token && prnd(t) % 2)
					token_revoke(ps->dfd, token);
			}
			slot_keep(t, fd);
			break;
		case OP_IMPORT:
			token = atomic_load(&ps->tokens[prnd(t) % PROC_TOKENS]);
			fd = token ? token_import(ps->dfd, token, NULL) : -1;
			ok = fd >= 0;
			if (ok && prnd(t) % 2)
				use_region(t, fd);
			slot_keep(t, fd);
			break;
		case OP_MAP:
			fd = slot_own(t);
			ok = fd >= 0 && use_region(t, fd);
			slot_keep(t, fd);
			break;
		case OP_GROW:
			fd = slot_own(t);
			ok = fd >= 0 && !region_grow(fd, (1 + prnd(t) % 16) * page);
			slot_keep(t, fd);
			break;
		case OP_SEAL:
			fd = slot_own(t);
			ok = fd >= 0 && !region_seal(fd);
			slot_keep(t, fd);
			break;
		case OP_CLOSE:
			fd = slot_own(t);
			ok = fd >= 0 && !close(fd);
			break;
		default:
			token = atomic_exchange(&ps->tokens[prnd(t) % PROC_TOKENS], 0);
			ok = token && !token_revoke(ps->dfd, token);
			break;
		}
		atomic_fetch_add(&ps->ops[op], 1);
		if (ok)
			atomic_fetch_add(&ps->done[op], 1);
	}
	return NULL;
}

static void proc_main(struct procstress *ps, uint64_t seed)
{
	struct procthread t[PROC_THREADS];
	_Atomic int slots[PROC_SLOTS];
	pthread_t tid[PROC_THREADS];
	int i;

	for (i = 0; i < PROC_SLOTS; i++)
		slots[i] = -1;
	for (i = 0; i < PROC_THREADS; i++) {
		t[i].ps = ps;
		t[i].slots = slots;
		t[i].rng = seed * PROC_THREADS + i;
		if (pthread_create(&tid[i], NULL, proc_thread, &t[i]))
			_exit(1);
	}
	for (i = 0; i < PROC_THREADS; i++)
		pthread_join(tid[i], NULL);
	_exit(0);	/* closes what is left: like a kill, only tidier */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST_F_TIMEOUT(stress, processes_killed_midway_leak_nothing, 900)
{
	const char *env = getenv("PYSHM_STRESS_SECS");
	double secs = env ? atof(env) : 3, end;
	unsigned long total = 0, kills = 0, spawned = 0;
	struct procstress *ps;
	pid_t pids[PROCS];
	int i, st, bad = 0;
	uint64_t seed = getpid();

	ASSERT_LT(0, secs);
	ASSERT_GE(800, secs) TH_LOG("PYSHM_STRESS_SECS: at most 800 (the test's timeout is 900)");
	ps = mmap(NULL, sizeof(*ps), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ps);
	ps->dfd = self->dfd;
	ps->page = self->page;

	for (i = 0; i < PROCS; i++)
		pids[i] = 0;
	end = now_s() + secs;
	while (now_s() < end) {
		for (i = 0; i < PROCS; i++) {
			if (pids[i])
				continue;
			pids[i] = fork();
			ASSERT_LE(0, pids[i]);
			if (pids[i] == 0)
				proc_main(ps, seed + spawned);
			spawned++;
		}
		usleep(50000 + random() % 150000);
		/* Kill one mid-way: its fds, mappings and threads go at once. */
		i = random() % PROCS;
		if (random() % 2 && kill(pids[i], SIGKILL) == 0) {
			kills++;
			if (wait_status(pids[i]) != 128 + SIGKILL)
				bad++;
			pids[i] = 0;
		}
	}
	/* The survivors: half are killed, half stop. */
	atomic_store(&ps->stop, 1);
	for (i = 0; i < PROCS; i++) {
		if (!pids[i])
			continue;
		if (i % 2 && kill(pids[i], SIGKILL) == 0)
			kills++;
		st = wait_status(pids[i]);
		if (st != 0 && st != 128 + SIGKILL)
			bad++;
	}
	EXPECT_EQ(0, bad);
	EXPECT_LT(0, kills);

	for (i = 0; i < NR_OPS; i++)
		total += atomic_load(&ps->ops[i]);
	printf("# stress: %lu operations in %.0f s by %lu processes of %d threads, %lu SIGKILLed;",
	       total, secs, spawned, PROC_THREADS, kills);
	for (i = 0; i < NR_OPS; i++)
		printf(" %s %lu/%lu", op_names[i], atomic_load(&ps->done[i]),
		       atomic_load(&ps->ops[i]));
	printf(" (succeeded/tried)\n");
	fflush(stdout);
	EXPECT_LT(0, atomic_load(&ps->done[OP_IMPORT]));
	EXPECT_LT(0, atomic_load(&ps->done[OP_MAP]));
	munmap(ps, sizeof(*ps));

	/* The domain's tokens were the last holds: nothing may outlive it. */
	close(self->dfd);
	self->dfd = -1;
	if (self->before >= 0) {
		for (i = 0; i < 500 && dbg_count() != self->before; i++)
			usleep(10000);
		printf("# stress: %d regions left (%d before)\n", dbg_count(), self->before);
		EXPECT_EQ(self->before, dbg_count());
	}
}

TEST_HARNESS_MAIN
