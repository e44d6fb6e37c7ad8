// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency tests: threads hammering create/export/import/revoke/close/
 * grow/seal/mmap on shared fds (which other threads close and reuse under
 * them) and on a domain that is closed and reopened meanwhile. Errors are
 * expected and ignored; what must hold is the kernel staying quiet (vm-check
 * greps dmesg) and nothing leaking (the debugfs listing comes back to where
 * it was).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

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

TEST_HARNESS_MAIN
