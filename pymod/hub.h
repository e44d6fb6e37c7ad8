/* SPDX-License-Identifier: MIT */
/*
 * The program's hub (hub.c): the control links that join the processes of
 * a program into a tree (a process worker to its parent), the thread that
 * reads them, and what travels on them: BroadcastChannel messages (hub.c)
 * and Web Locks requests (locks.c).
 */
#ifndef PYSHM_PYMOD_HUB_H
#define PYSHM_PYMOD_HUB_H

#include "port.h"

/* Record types of a control link (struct msg_hdr.type). */
#define CTL_BCAST	0x10	/* struct bc_rec, the name, a clone message */
#define CTL_LOCK	0x11	/* struct lk_rec (locks.c) */

struct link;

/* A control channel for a process worker about to be spawned: @mine stays
 * here (hub_add_child() once it runs), @theirs goes to the child. */
int hub_link_pair(struct port **mine, struct port **theirs);
/* The link to a child process (takes the reference on @p). */
void hub_add_child(struct port *p);
/* In a process worker: the link to its parent (takes the reference). */
void hub_set_parent(struct port *p);
/* True in the program's first process: it never had a parent link. */
bool hub_is_root(void);
/* True for the link to our parent. */
bool hub_link_is_up(const struct link *l);

/* Send a control record on @l (header + body); blocks while the link is
 * full. 0, or -errno (-EPIPE: the other process is gone). */
int hub_send(struct link *l, int type, const void *body, size_t len);
/* The link to the parent, with a reference, or NULL at the root. */
struct link *hub_parent_get(void);
struct link *hub_link_get(struct link *l);
void hub_link_put(struct link *l);

/* locks.c: a record from @from; @from went away. */
void locks_on_record(struct link *from, const void *data, size_t len);
void locks_on_link_gone(struct link *l);
/* locks.c: an interpreter of this process ends; its locks go. */
void locks_interp_gone(int64_t interp);

int broadcast_init(PyObject *mod);
int locks_init(PyObject *mod);

#endif /* PYSHM_PYMOD_HUB_H */
