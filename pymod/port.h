/* SPDX-License-Identifier: MIT */
/*
 * Channels and their ends (ports), shared by the port*.c and worker*.c files.
 *
 * A channel is a region with a small header and two rings: ring s carries
 * messages sent by side s. A port is the process-local handle on one side:
 * C only, reference counted, owned by at most one MessagePort object at a
 * time, so it can move between interpreters (and, rebuilt from the region,
 * between processes).
 */
#ifndef PYSHM_PYMOD_PORT_H
#define PYSHM_PYMOD_PORT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "state.h"

#define CHAN_MAGIC	0x4e414843u	/* "CHAN" */
#define CHAN_VERSION	1
#define CHAN_HDR_SIZE	256u
#define CHAN_RING_DATA	(256u << 10)
/* Messages larger than this travel in a region of their own. */
#define CHAN_OOL_THRESHOLD (64u << 10)
/* What such messages may hold in flight per direction, by default: bytes
 * (PYSHM_MAX_INFLIGHT_BYTES overrides it), and at most this many messages
 * (fewer under a low RLIMIT_NOFILE: each holds an fd). */
#define CHAN_INFLIGHT_BYTES	(64ull << 20)
#define CHAN_INFLIGHT_MSGS	64u

/* chan_side.flags */
#define SIDE_CLOSED	(1u << 0)	/* this end was closed */
#define SIDE_LINK	(1u << 1)	/* a worker's own link: never transferred */

struct chan_side {
	atomic_uint pid;		/* process holding this end; 0 in transit */
	atomic_uint flags;
	uint32_t resv[2];
};

struct chan_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t ring_data;
	struct chan_side side[2];
	uint8_t resv[256 - 16 - 2 * sizeof(struct chan_side)];
};

_Static_assert(sizeof(struct chan_hdr) == CHAN_HDR_SIZE, "channel header size");

/* Ring record types: each record starts with a struct msg_hdr. */
#define MSG_DATA	1	/* a structured clone */
#define MSG_ERROR	2	/* a worker's target raised: error details */

struct msg_hdr {
	uint8_t type;
	uint8_t xfer;		/* PYSHM_XFER_* of the region refs inside */
	uint16_t resv;
	uint32_t resv2;
};

struct worker;

struct port {
	atomic_long refs;
	struct pyshm_region *chan;
	struct chan_hdr *hdr;
	int side;
	struct pyshm_ring *tx;		/* producer handle of ring[side] */
	struct pyshm_ring *rx;		/* consumer handle of ring[!side] */
	struct pyshm_waiter *uwaiter;	/* io_uring sleeper, when usable */
	struct pyshm_waiter *fwaiter;	/* futex path: for arming (event loops) */
	struct pyshm_xfer *xremote;	/* regions to other processes: socket or kmod */
	struct pyshm_xfer *xsock;	/* fds to other processes (the socket) */
	int sock;			/* the channel's socket end, owned by xsock;
					 * it closing tells the other end we are gone */
	bool link;			/* a worker link end */
	bool peer_inherits;		/* link: the peer inherited our uwaiter */
	pthread_mutex_t rx_lock;	/* one receiver at a time */
	atomic_bool detached;		/* transferred away, or closed */
	atomic_bool closed;		/* port_close() ran */
	struct worker *worker;		/* parent end of a worker link */
	uint64_t inflight_max;		/* out-of-line bytes our sends may hold */
	unsigned int owner;		/* the process the end belongs to (a
					 * fork child's copy leaves it alone) */
	bool watched;			/* port_watch.c's, under its lock */
	uint32_t watch_slot;
};

/* In a polling loop: let the other hyperthread run. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* getpid() without a system call (refreshed after fork()). */
extern atomic_uint port_cached_pid;
unsigned int port_pid_slow(void);

static inline unsigned int port_pid(void)
{
	unsigned int pid = atomic_load_explicit(&port_cached_pid, memory_order_relaxed);

	return __builtin_expect(pid != 0, 1) ? pid : port_pid_slow();
}

/* The transfer all same-process ports share. */
struct pyshm_xfer *port_xfer_local(void);
/* A clone environment whose MessagePorts travel by the port hooks: sent
 * through @p (NULL for structured_clone()), regions through @x. */
void port_env_init(struct clone_env *env, struct port *p, struct pyshm_xfer *x);

/* The transfer our sends use (same process, or another), and the one
 * records of kind @kind came through (NULL: none). */
struct pyshm_xfer *port_tx_xfer(struct port *p);
struct pyshm_xfer *port_rx_xfer(struct port *p, int kind);
/* Arm the receiving side for a poll: the fd to watch, -EAGAIN when a
 * record (or the end) is there already, or -errno. Disarm after. */
int port_arm_rx(struct port *p);
void port_disarm_rx(struct port *p);

/* A new channel; both ends live in this process. */
int port_channel_new(unsigned int side_flags, struct port **a, struct port **b);
/* Rebuild the end @side of the channel in @chan (takes the reference). */
int port_attach(struct pyshm_region *chan, int side, int sock, struct port **out);
struct port *port_get(struct port *p);
/* A reference unless the last one is already gone. */
bool port_tryget(struct port *p);
void port_put(struct port *p);
/* Close this end: no more sending or receiving; unread messages released. */
void port_close(struct port *p);
/* The other end is gone (its process died, or it was closed): end the
 * channel on its behalf and release what it never read. */
void port_peer_gone(struct port *p);
/* Bound the out-of-line bytes this end's messages hold in flight. */
void port_set_inflight(struct port *p, uint64_t bytes);
/* The default for new channels (PYSHM_MAX_INFLIGHT_BYTES, else
 * CHAN_INFLIGHT_BYTES). */
uint64_t port_inflight_default(void);

/* port_watch.c: a thread that notices when the holders of a channel's other
 * end are all gone (the socket end closes with the last of them: a process
 * that dies, or a port closed or freed) and calls port_peer_gone(). */
int port_watch(struct port *p);
void port_unwatch(struct port *p);
/* Start the watcher ahead of the first port (module init): its fds then
 * belong to the program from the start. */
int port_watch_init(void);

/* The Python side. */
int port_init_types(PyObject *mod, pymod_state *st);
PyObject *port_wrap(pymod_state *st, struct port *p);
struct port *port_from_object(pymod_state *st, PyObject *obj);
/* Unhook the C port from its MessagePort object (which reads as closed);
 * the caller keeps the object's reference. */
void port_detach_object(PyObject *obj);

/* Send a record (header + clone) from this end; GIL held on entry. */
int port_send_record(pymod_state *st, struct port *p, int type, PyObject *obj,
		     PyObject *transfer, double timeout);

/* port_transfer.c: ports a message sent to another process (see
 * clone_env.exported): released once it is sent, closed if it is not. */
void port_exported_release(struct clone_env *env);
void port_exported_close(struct clone_env *env);

#endif /* PYSHM_PYMOD_PORT_H */
