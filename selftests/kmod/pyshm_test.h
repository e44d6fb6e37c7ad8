/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the pyshm.ko selftests: ioctl wrappers that return -1 with
 * errno (so tests read EXPECT_EQ(-1, ret); EXPECT_EQ(EINVAL, errno)), output
 * poisoning, the debugfs region listing and the module parameters.
 */
#ifndef PYSHM_KMOD_TEST_H
#define PYSHM_KMOD_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/pyshm.h>

#define DEV_PYSHM	"/dev/pyshm"
#define DEBUGFS_DIR	"/sys/kernel/debug/pyshm"
#define PARAM_DIR	"/sys/module/pyshm/parameters"

#define POISON_BYTE	0xcc
#define POISON_U32	0xccccccccU
#define POISON_U64	0xccccccccccccccccULL

/* The junk every flags and reserved word is fuzzed with. */
static const uint64_t junk_values[] = { ~0ULL, 0x80000000ULL, 1 };

/*
 * Skip the test from FIXTURE_SETUP: this harness would run the body after a
 * plain SKIP(return) there. 255 is the harness's "skipped" exit status.
 */
#define SKIP_TEST(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

#define poison(field) memset(&(field), POISON_BYTE, sizeof(field))

static inline long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* A new domain fd, or -1 with errno. */
static inline int domain_open(void)
{
	return open(DEV_PYSHM, O_RDWR | O_CLOEXEC);
}

/* Create a region; the region fd, or -1 with errno. */
static inline int region_create(int dfd, uint64_t size, uint64_t max_size,
				uint64_t *id)
{
	struct pyshm_region_create c;

	memset(&c, 0, sizeof(c));
	c.size = size;
	c.max_size = max_size;
	poison(c.fd);
	poison(c.id);
	if (ioctl(dfd, PYSHM_IOC_REGION_CREATE, &c))
		return -1;
	if (id)
		*id = c.id;
	return c.fd;
}

static inline int region_info(int rfd, struct pyshm_region_info *info)
{
	memset(info, 0, sizeof(*info));
	poison(info->state);
	poison(info->id);
	poison(info->size);
	poison(info->max_size);
	return ioctl(rfd, PYSHM_IOC_REGION_INFO, info);
}

static inline uint64_t region_size(int rfd)
{
	struct pyshm_region_info info;

	return region_info(rfd, &info) ? POISON_U64 : info.size;
}

static inline uint64_t region_id(int rfd)
{
	struct pyshm_region_info info;

	return region_info(rfd, &info) ? 0 : info.id;
}

static inline int region_grow(int rfd, uint64_t size)
{
	struct pyshm_region_grow g;

	memset(&g, 0, sizeof(g));
	g.size = size;
	return ioctl(rfd, PYSHM_IOC_REGION_GROW, &g);
}

static inline int region_seal(int rfd)
{
	struct pyshm_region_seal s;

	memset(&s, 0, sizeof(s));
	return ioctl(rfd, PYSHM_IOC_REGION_SEAL, &s);
}

static inline int token_export(int dfd, int rfd, uint32_t flags, uint64_t *token)
{
	struct pyshm_region_export e;

	memset(&e, 0, sizeof(e));
	e.fd = rfd;
	e.flags = flags;
	poison(e.token);
	if (ioctl(dfd, PYSHM_IOC_REGION_EXPORT, &e))
		return -1;
	*token = e.token;
	return 0;
}

/* Import; the region fd, or -1 with errno. */
static inline int token_import(int dfd, uint64_t token,
			       struct pyshm_region_import *out)
{
	struct pyshm_region_import im, *p = out ? out : &im;

	memset(p, 0, sizeof(*p));
	p->token = token;
	poison(p->fd);
	poison(p->id);
	poison(p->size);
	poison(p->max_size);
	poison(p->state);
	if (ioctl(dfd, PYSHM_IOC_REGION_IMPORT, p))
		return -1;
	return p->fd;
}

static inline int token_revoke(int dfd, uint64_t token)
{
	struct pyshm_token_revoke r;

	memset(&r, 0, sizeof(r));
	r.token = token;
	return ioctl(dfd, PYSHM_IOC_TOKEN_REVOKE, &r);
}

/* A MAP_SHARED mapping, or MAP_FAILED with errno. */
static inline void *map(int rfd, size_t len, int prot)
{
	return mmap(NULL, len, prot, MAP_SHARED, rfd, 0);
}

/*
 * One line of DEBUGFS_DIR/regions: "id size max holds maps pins writable
 * sealed uid".
 */
struct dbg_region {
	uint64_t id, size, max_size;
	unsigned int holds, maps, pins, writable, sealed, uid;
};

static inline bool debugfs_readable(void)
{
	return access(DEBUGFS_DIR "/regions", R_OK) == 0;
}

/* 1 and *out when region @id is live, 0 when not, -1 without debugfs. */
static inline int dbg_region(uint64_t id, struct dbg_region *out)
{
	struct dbg_region r;
	FILE *f = fopen(DEBUGFS_DIR "/regions", "re");
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%lu %lu %lu %u %u %u %u %u %u", &r.id, &r.size,
		      &r.max_size, &r.holds, &r.maps, &r.pins, &r.writable,
		      &r.sealed, &r.uid) == 9) {
		if (r.id == id) {
			if (out)
				*out = r;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Number of live regions, -1 without debugfs. */
static inline int dbg_count(void)
{
	FILE *f = fopen(DEBUGFS_DIR "/regions", "re");
	int c, n = 0;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * Wait (briefly) for region @id to be gone: files closed by an exiting
 * process may be released by a worker a moment later.
 */
static inline bool dbg_gone(uint64_t id)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (dbg_region(id, NULL) == 0)
			return true;
		usleep(10000);
	}
	return false;
}

/* A module parameter, or -1. */
static inline long long param_get(const char *name)
{
	char path[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), PARAM_DIR "/%s", name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Write a module parameter: 0, or -errno. */
static inline int param_set(const char *name, const char *value)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PARAM_DIR "/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

static inline int param_set_num(const char *name, long long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", value);
	return param_set(name, buf);
}

/* Exit status of a child, or 128 + its signal. */
static inline int wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run @fn(@arg) in a child; its exit status or 128 + signal. */
static inline int in_child(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg));
	return wait_status(pid);
}

/* Touch one byte in a child: 0 when the store worked, else 128 + signal. */
static inline int child_store(volatile char *p)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		*p = 1;
		_exit(0);
	}
	return wait_status(pid);
}

static inline int child_load(volatile char *p)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		(void)*p;
		_exit(0);
	}
	return wait_status(pid);
}

#endif /* PYSHM_KMOD_TEST_H */
