// SPDX-License-Identifier: MIT
/*
 * The futex bridge: gives futex sleepers a pollable fd, so event loops can
 * wait on the futex path too. One thread per process sleeps in
 * futex_waitv() on every armed word at once; when an armed word changes
 * (a producer woke its consumer), it writes that waiter's eventfd. Armings
 * are one-shot.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* One slot of futex_waitv()'s 128 is the control word. */
#define BRIDGE_MAX (FUTEX_WAITV_MAX - 1)

struct arming {
	atomic_uint *word;
	unsigned int val;
	int efd;
};

/* lock guards everything below except ctl, which is also a futex word. */
static struct {
	pthread_mutex_t lock;
	atomic_uint ctl;		/* bumped on every change of the set */
	struct arming set[BRIDGE_MAX];
	int n;
	bool running;
	pid_t pid;			/* the process the thread runs in */
} bridge = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fire(int i)
{
	uint64_t one = 1;
	ssize_t ret;

	/* The eventfd is non-blocking; a full counter still reads ready. */
	ret = write(bridge.set[i].efd, &one, sizeof(one));
	(void)ret;
	bridge.set[i] = bridge.set[--bridge.n];
}

static void *bridge_main(void *arg)
{
	struct futex_waitv v[FUTEX_WAITV_MAX];
	int i, n;

	for (;;) {
		pthread_mutex_lock(&bridge.lock);
		v[0] = (struct futex_waitv){
			.val = atomic_load(&bridge.ctl),
			.uaddr = (uintptr_t)&bridge.ctl,
			.flags = FUTEX_32 | FUTEX_PRIVATE_FLAG,
		};
		n = 1;
		for (i = 0; i < bridge.n; ) {
			if (atomic_load(bridge.set[i].word) != bridge.set[i].val) {
				fire(i);
				continue;
			}
			/* Shared futexes: the words live in shared memory. */
			v[n++] = (struct futex_waitv){
				.val = bridge.set[i].val,
				.uaddr = (uintptr_t)bridge.set[i].word,
				.flags = FUTEX_32,
			};
			i++;
		}
		pthread_mutex_unlock(&bridge.lock);
		/* Returns when any word changes or is woken; then re-scan. */
		syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);
	}
	return arg;
}

static void bridge_poke(void)
{
	atomic_fetch_add(&bridge.ctl, 1);
	syscall(SYS_futex, &bridge.ctl, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int __pyshm_bridge_arm(atomic_uint *word, unsigned int val, int efd)
{
	pthread_attr_t attr;
	pthread_t th;
	int ret = 0;

	pthread_mutex_lock(&bridge.lock);
	/* After fork() the thread is gone and so are its armings. */
	if (bridge.running && bridge.pid != __pyshm_getpid()) {
		bridge.running = false;
		bridge.n = 0;
	}
	if (bridge.n == BRIDGE_MAX) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	if (!bridge.running) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = -pthread_create(&th, &attr, bridge_main, NULL);
		pthread_attr_destroy(&attr);
		if (ret < 0)
			goto out_unlock;
		bridge.running = true;
		bridge.pid = __pyshm_getpid();
	}
	bridge.set[bridge.n++] = (struct arming){ .word = word, .val = val, .efd = efd };
	bridge_poke();
out_unlock:
	pthread_mutex_unlock(&bridge.lock);
	return ret;
}

void __pyshm_bridge_disarm(atomic_uint *word, int efd)
{
	int i;

	pthread_mutex_lock(&bridge.lock);
	for (i = 0; i < bridge.n; i++) {
		if (bridge.set[i].word == word && bridge.set[i].efd == efd) {
			bridge.set[i] = bridge.set[--bridge.n];
			bridge_poke();
			break;
		}
	}
	pthread_mutex_unlock(&bridge.lock);
}
