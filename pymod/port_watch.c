// SPDX-License-Identifier: MIT
/*
 * Noticing that the other end of a channel is gone. Every port holds its
 * end of the channel's socket pair, and a port that moves to another
 * process takes its end along; the socket end closes with the last holder:
 * a process that dies (SIGKILL included), a port closed or freed, or a port
 * in flight inside a message whose receiver died before reading it. One
 * thread per process waits on all of its ports' ends with epoll and ends
 * the channel on behalf of the side that went (port_peer_gone()), so that
 * our receiver reads what came and then the end of the stream, and our
 * senders drop instead of waiting forever. When all is quiet, the same
 * thread lets idle regions of large messages go.
 */
#include <sys/epoll.h>
#include <unistd.h>

#include "port.h"
#include "worker.h"

/*
 * The watcher holds no reference: epoll names a port by slot and
 * generation, so an event that comes after the port was unwatched (and
 * maybe freed) finds its slot empty or reused, never a dangling pointer.
 */
struct slot {
	struct port *p;		/* NULL when free */
	uint32_t gen;		/* bumped when the slot is freed */
	uint32_t next_free;
};

static struct {
	pthread_mutex_t lock;	/* guards all below and every port's ->watched */
	int epfd;		/* -1 until started */
	struct slot *slots;	/* PyMem_Raw array */
	uint32_t nslots, free_head;	/* free list ends at UINT32_MAX */
} watch = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.epfd = -1,
	.free_head = UINT32_MAX,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* How often a quiet watcher trims pools (ms). */
#define TRIM_MS		2500

/* A forked child has no watcher thread: it starts its own when it needs
 * one, and leaves the parent's epoll instance alone. */
static void watch_forget(void)
{
	pthread_mutex_init(&watch.lock, NULL);
	if (watch.epfd >= 0)
		close(watch.epfd);
	watch.epfd = -1;
	watch.slots = NULL;	/* the parent's ports are not watched here */
	watch.nslots = 0;
	watch.free_head = UINT32_MAX;
}

static void watch_atfork(void)
{
	pthread_atfork(NULL, NULL, watch_forget);
}

/* The port an event names, with a reference, or NULL. */
static struct port *slot_take(uint64_t key)
{
	uint32_t i = (uint32_t)key, gen = (uint32_t)(key >> 32);
	struct port *p = NULL;

	pthread_mutex_lock(&watch.lock);
	if (i < watch.nslots && watch.slots[i].gen == gen && watch.slots[i].p &&
	    port_tryget(watch.slots[i].p))
		p = watch.slots[i].p;
	pthread_mutex_unlock(&watch.lock);
	return p;
}

/*
 * Pools of large-message regions shrink when idle, receivers drop their
 * mappings of retired ones: on a quiet channel nobody else would ask.
 */
static void trim_all(void)
{
	struct port **live;
	uint32_t i, n = 0;

	pthread_mutex_lock(&watch.lock);
	live = PyMem_RawMalloc((watch.nslots ? watch.nslots : 1) * sizeof(*live));
	for (i = 0; live && i < watch.nslots; i++)
		if (watch.slots[i].p && port_tryget(watch.slots[i].p))
			live[n++] = watch.slots[i].p;
	pthread_mutex_unlock(&watch.lock);
	for (i = 0; i < n; i++) {
		pyshm_ring_trim(live[i]->tx);
		/* The receiving side is its receiver's: trim it when idle. */
		if (pthread_mutex_trylock(&live[i]->rx_lock) == 0) {
			pyshm_ring_trim(live[i]->rx);
			pthread_mutex_unlock(&live[i]->rx_lock);
		}
		port_put(live[i]);
	}
	PyMem_RawFree(live);
}

static void *watch_main(void *arg)
{
	struct epoll_event ev[32];
	struct port *p;
	int n, i, epfd = (int)(intptr_t)arg;

	for (;;) {
		n = epoll_wait(epfd, ev, 32, TRIM_MS);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (n == 0) {
			trim_all();
			continue;
		}
		for (i = 0; i < n; i++) {
			p = slot_take(ev[i].data.u64);
			if (!p)
				continue;
			port_unwatch(p);
			port_peer_gone(p);
			port_put(p);
		}
	}
}

/* Start the watcher. Caller holds watch.lock. */
static int watch_start(void)
{
	int ret;

	pthread_once(&atfork_once, watch_atfork);
	watch.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (watch.epfd < 0)
		return -errno;
	ret = start_detached(watch_main, (void *)(intptr_t)watch.epfd);
	if (ret) {
		close(watch.epfd);
		watch.epfd = -1;
	}
	return ret;
}

int port_watch_init(void)
{
	int ret = 0;

	pthread_mutex_lock(&watch.lock);
	if (watch.epfd < 0)
		ret = watch_start();
	pthread_mutex_unlock(&watch.lock);
	return ret;
}

/* A free slot's index. Caller holds watch.lock. */
static int slot_alloc(uint32_t *out)
{
	struct slot *s;
	uint32_t n, i;

	if (watch.free_head == UINT32_MAX) {
		n = watch.nslots ? 2 * watch.nslots : 64;
		s = PyMem_RawRealloc(watch.slots, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (i = watch.nslots; i < n; i++)
			s[i] = (struct slot){ .next_free = i + 1 < n ? i + 1 : UINT32_MAX };
		watch.slots = s;
		watch.free_head = watch.nslots;
		watch.nslots = n;
	}
	*out = watch.free_head;
	watch.free_head = watch.slots[*out].next_free;
	return 0;
}

int port_watch(struct port *p)
{
	/* No events asked for: a hang-up is always reported. */
	struct epoll_event ev = { .events = 0 };
	uint32_t i;
	int ret = 0;

	pthread_mutex_lock(&watch.lock);
	if (watch.epfd < 0)
		ret = watch_start();
	if (!ret)
		ret = slot_alloc(&i);
	if (ret)
		goto out_unlock;
	ev.data.u64 = (uint64_t)watch.slots[i].gen << 32 | i;
	if (epoll_ctl(watch.epfd, EPOLL_CTL_ADD, p->sock, &ev) < 0) {
		ret = -errno;
		watch.slots[i].next_free = watch.free_head;
		watch.free_head = i;
		goto out_unlock;
	}
	watch.slots[i].p = p;
	p->watch_slot = i;
	p->watched = true;
out_unlock:
	pthread_mutex_unlock(&watch.lock);
	return ret;
}

void port_unwatch(struct port *p)
{
	uint32_t i;

	pthread_mutex_lock(&watch.lock);
	i = p->watch_slot;
	/* (A fork child's copy of its parent's port is not watched here.) */
	if (p->watched && i < watch.nslots && watch.slots[i].p == p) {
		/* Before the fd can close: a number reused by then would be
		 * another file's. */
		epoll_ctl(watch.epfd, EPOLL_CTL_DEL, p->sock, NULL);
		watch.slots[i].p = NULL;
		watch.slots[i].gen++;
		watch.slots[i].next_free = watch.free_head;
		watch.free_head = i;
	}
	p->watched = false;
	pthread_mutex_unlock(&watch.lock);
}
