// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: an ioctl fuzzer for pyshm.ko. Several processes of several threads
 * issue random sequences of every pyshm ioctl, valid and invalid command
 * numbers, with random flags, reserved words, sizes (0, huge, overflowing),
 * fds (live, stale, closed, of other kinds) and tokens (live, consumed,
 * revoked, of other domains), with argument buffers that fault half-way;
 * interleaved with mmap, munmap, mprotect, mremap, madvise, touching the
 * memory, close, dup, fd passing, fork and exit, while the module's
 * parameters change under them and processes get SIGKILLed.
 *
 * It checks what is certain under all that (input validation, on fds no other
 * thread touches) and that every region is gone once all processes have
 * exited; the kernel's own detectors (KASAN, lockdep, kmemleak, UBSAN, in
 * `make vm-check-debug`) judge the rest.
 *
 *   fuzz [-s SEED] [-t SECONDS] [-n OPS] [-p PROCS] [-j THREADS] [-v]
 *
 * SEED (or PYSHM_FUZZ_SEED) fixes every thread's sequence of calls and
 * arguments; which fds and tokens they meet depends on timing, except with
 * -p 1 -j 1. The run lasts SECONDS (PYSHM_FUZZ_SECS; default 2), or until
 * each thread of the first processes made OPS calls. -v traces every call of
 * process 0, thread 0 to stderr. Output: TAP with a "# Totals:" line, and the
 * seed and the ioctl count on "# fuzz:" lines.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <linux/falloc.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "pyshm_test.h"

#define MAX_PROCS	16
#define MAX_THREADS	16
#define NSLOTS		48	/* fds of a process, shared by its threads */
#define NMAPS		32	/* its mappings */
#define NTOKENS		256	/* exported tokens, shared by all processes */
#define NMYTOKENS	64	/* those of one process */
#define TOUCH_PAGES	64	/* memory touched stays within this of a start */

/* The valid commands, and the counters' index for everything else. */
static const unsigned long cmds[] = {
	PYSHM_IOC_VERSION, PYSHM_IOC_REGION_CREATE, PYSHM_IOC_REGION_EXPORT,
	PYSHM_IOC_REGION_IMPORT, PYSHM_IOC_TOKEN_REVOKE, PYSHM_IOC_REGION_INFO,
	PYSHM_IOC_REGION_GROW, PYSHM_IOC_REGION_SEAL,
};
static const char *const cmd_names[] = {
	"version", "create", "export", "import", "revoke", "info", "grow",
	"seal", "invalid",
};
#define NCMDS		(sizeof(cmds) / sizeof(cmds[0]))
#define CMD_INVALID	NCMDS

/* What every process sees: counters, tokens, the verdict. */
struct shared {
	atomic_ulong calls[NCMDS + 1], ok[NCMDS + 1];
	atomic_ulong mmaps, munmaps, touches, faults, forks, kills, passes;
	atomic_ulong exits, workers, ops, reopens;
	atomic_ulong oracle_checks, oracle_fails;
	atomic_int msg_taken;
	char msg[512];
	_Atomic uint64_t tokens[NTOKENS];
	atomic_int stop;
};

static struct shared *sh;
static struct timespec deadline;
static long page;
static long max_ops;
static int verbose;

/*
 * This process's fds, by kind, and mappings, shared by its threads (and
 * copied by fork); and the tokens it exported, with the domain fd they were
 * exported through.
 */
enum kind { DOMAIN, REGION };
static _Atomic int slots[2][NSLOTS];
static _Atomic uint64_t my_tokens[NMYTOKENS];
static _Atomic int my_token_dfd[NMYTOKENS];
static _Atomic uintptr_t map_addr[NMAPS];	/* 0 free, 1 being filled */
static size_t map_len[NMAPS];			/* owned with map_addr */
static int map_prot[NMAPS];
/* Never closed or replaced: the fuzzer's oracles use them. */
static int anchor_dfd = -1, anchor_rfd = -1;
static uint64_t anchor_max;
static int devnull = -1, sv[2] = { -1, -1 };

struct ctx {
	uint64_t rng;
	int proc, thread;
	bool child;		/* a forked child: no more forks */
	bool trace;
	char *buf;		/* pages: read-write, read-only, inaccessible */
	int stale_fd;		/* the last fd this thread closed */
	uint64_t last_token;
	long ops;
};

static __thread sigjmp_buf touch_jmp;
static __thread volatile sig_atomic_t touching;

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct ctx *c)
{
	return splitmix(&c->rng);
}

/* True one time in @n. */
static bool one_in(struct ctx *c, unsigned int n)
{
	return rnd(c) % n == 0;
}

static bool past_deadline(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline.tv_sec ||
	       (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

static void trace(struct ctx *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	if (!c->trace)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		dprintf(2, "# fuzz[%d.%d] %ld: %s\n", c->proc, c->thread, c->ops, line);
}

/* Record a broken oracle; the first message is kept for the report. */
static void oracle(struct ctx *c, bool ok, const char *what, long ret, int err)
{
	atomic_fetch_add(&sh->oracle_checks, 1);
	if (ok)
		return;
	atomic_fetch_add(&sh->oracle_fails, 1);
	if (atomic_exchange(&sh->msg_taken, 1) == 0)
		snprintf(sh->msg, sizeof(sh->msg),
			 "%s: returned %ld, errno %d (%s) (process %d thread %d op %ld)",
			 what, ret, err, strerror(err), c->proc, c->thread, c->ops);
}

/* --- fds ----------------------------------------------------------------- */

/* Keep @fd in a free slot of its kind, or close it when there is none. */
static void slot_put(struct ctx *c, enum kind k, int fd)
{
	unsigned int i, start = rnd(c) % NSLOTS;
	int expect;

	if (fd < 0)
		return;
	for (i = 0; i < NSLOTS; i++) {
		expect = -1;
		if (atomic_compare_exchange_strong(&slots[k][(start + i) % NSLOTS],
						   &expect, fd))
			return;
	}
	close(fd);
}

/* Take an fd out of its slot: the caller owns it now. */
static int slot_take(struct ctx *c, enum kind k)
{
	return atomic_exchange(&slots[k][rnd(c) % NSLOTS], -1);
}

/* A slot's fd, which another thread may close or replace meanwhile. */
static int slot_peek(struct ctx *c, enum kind k)
{
	int fd = atomic_load(&slots[k][rnd(c) % NSLOTS]);

	if (fd < 0)
		fd = k == DOMAIN ? anchor_dfd : anchor_rfd;
	return fd;
}

/*
 * An fd to call something on: half the time one of the kind asked for, else
 * anything: a slot's of either kind, the anchors, a closed or nonsense
 * number, a file of another kind. Never fds 0-2 (a random command on a tty
 * is not ours to try).
 */
static int pick_fd(struct ctx *c, enum kind k)
{
	if (one_in(c, 2))
		return slot_peek(c, k);
	switch (rnd(c) % 16) {
	case 0 ... 7:
		return atomic_load(&slots[rnd(c) % 2][rnd(c) % NSLOTS]);
	case 8:
	case 9:
		return anchor_dfd;
	case 10:
		return anchor_rfd;
	case 11:
		return -1;
	case 12:
		return c->stale_fd;
	case 13:
		return devnull;
	case 14:
		return sv[0];
	default:
		return one_in(c, 2) ? INT_MAX : 1000 + (int)(rnd(c) % 24);
	}
}

static void fd_close(struct ctx *c, int fd)
{
	if (fd < 0)
		return;
	close(fd);
	c->stale_fd = fd;
}

/* --- mappings ------------------------------------------------------------ */

static void map_put(struct ctx *c, void *addr, size_t len, int prot)
{
	unsigned int i, start = rnd(c) % NMAPS, k;
	uintptr_t expect;

	if (!len)
		return;
	for (i = 0; i < NMAPS; i++) {
		k = (start + i) % NMAPS;
		expect = 0;
		if (atomic_compare_exchange_strong(&map_addr[k], &expect, 1)) {
			map_len[k] = len;
			map_prot[k] = prot;
			atomic_store(&map_addr[k], (uintptr_t)addr);
			return;
		}
	}
	munmap(addr, len);
	atomic_fetch_add(&sh->munmaps, 1);
}

/* Take a mapping out of the table: the caller owns it. */
static bool map_take(struct ctx *c, char **addr, size_t *len, int *prot)
{
	unsigned int k = rnd(c) % NMAPS;
	uintptr_t v = atomic_load(&map_addr[k]);

	if (v <= 1 || !atomic_compare_exchange_strong(&map_addr[k], &v, 1))
		return false;
	*addr = (char *)v;
	*len = map_len[k];
	*prot = map_prot[k];
	atomic_store(&map_addr[k], 0);
	return true;
}

static void fault_handler(int sig)
{
	if (touching)
		siglongjmp(touch_jmp, 1);
	/* Not ours to catch: die of it, and the run fails. */
	signal(sig, SIG_DFL);
}

/* memcpy where a fault may hit (a region's memory): false when one did. */
static __attribute__((noinline)) bool guarded_copy(void *dst, const void *src,
						   size_t n)
{
	touching = 1;
	if (sigsetjmp(touch_jmp, 1)) {
		touching = 0;
		return false;
	}
	memcpy(dst, src, n);
	touching = 0;
	return true;
}

/* Read or write bytes of a mapping we own; SIGBUS/SIGSEGV are expected. */
static void touch(struct ctx *c, char *addr, size_t len, int prot)
{
	size_t span = len < TOUCH_PAGES * page ? len : TOUCH_PAGES * page;
	int i, n = 1 + rnd(c) % 4;
	char *p, v;

	for (i = 0; i < n; i++) {
		p = addr + (one_in(c, 4) ? len - 1 - rnd(c) % span : rnd(c) % span);
		v = (char)rnd(c);
		atomic_fetch_add(&sh->touches, 1);
		if (!((prot & PROT_WRITE) && one_in(c, 2) ? guarded_copy(p, &v, 1) :
		      guarded_copy(&v, p, 1)))
			atomic_fetch_add(&sh->faults, 1);
	}
}

/* --- ioctl arguments ----------------------------------------------------- */

static const uint64_t junk[] = { ~0ULL, 0x80000000ULL, 1, 0xccccccccccccccccULL };

static uint32_t gen_flags(struct ctx *c, uint32_t valid)
{
	switch (rnd(c) % 10) {
	case 0 ... 5:
		return 0;
	case 6:
		return valid;
	case 7:
		return 1U << (rnd(c) % 32);
	default:
		return (uint32_t)junk[rnd(c) % 4];
	}
}

/* Zero, mostly: a junk word now and then. */
static void gen_zero(struct ctx *c, void *p, size_t n)
{
	memset(p, 0, n);
	if (one_in(c, 10))
		memcpy((char *)p + (rnd(c) % (n / 4)) * 4, &junk[rnd(c) % 4], 4);
}

static uint64_t gen_size(struct ctx *c)
{
	static const uint64_t edge[] = {
		0, 1, 4095, 4096, 4097, 8192, 65536, 1ULL << 20, 4ULL << 30,
		(4ULL << 30) + 1, 1ULL << 46, (1ULL << 46) + 1, 1ULL << 47,
		1ULL << 63, ~0ULL, ~0ULL - 4094, 0x7fffffffffffffffULL,
	};

	switch (rnd(c) % 8) {
	case 0 ... 3:
		return (rnd(c) % 32) * page + (one_in(c, 3) ? rnd(c) % page : 0);
	case 4 ... 5:
		return edge[rnd(c) % (sizeof(edge) / sizeof(edge[0]))];
	case 6:
		return rnd(c) % (64ULL << 20);
	default:
		return rnd(c);
	}
}

/* A token to import or revoke: maybe this process's, with its domain fd. */
static uint64_t gen_token(struct ctx *c, bool aimed, int *dfd)
{
	unsigned int k = rnd(c) % NMYTOKENS;
	uint64_t t = atomic_load(&sh->tokens[rnd(c) % NTOKENS]);

	if (aimed) {
		*dfd = atomic_load(&my_token_dfd[k]);
		return atomic_load(&my_tokens[k]);
	}
	switch (rnd(c) % 10) {
	case 0 ... 4:
		return t;		/* anyone's: this domain's or another's */
	case 5:
	case 6:
		return c->last_token;	/* perhaps consumed or revoked by now */
	case 7:
		return 0;
	case 8:
		return t ^ (1ULL << (rnd(c) % 64));
	default:
		return rnd(c);
	}
}

static void keep_token(struct ctx *c, uint64_t token, int dfd)
{
	unsigned int k = rnd(c) % NMYTOKENS;

	c->last_token = token;
	atomic_store(&my_token_dfd[k], dfd);
	atomic_store(&my_tokens[k], token);
	atomic_store(&sh->tokens[rnd(c) % NTOKENS], token);
}

/*
 * Where the argument goes: mostly a plain buffer; else straddling into a
 * read-only page (the kernel reads it, then fails to write the results:
 * every "undo after a failed copy_to_user" path), inside that page,
 * straddling into an inaccessible page, NULL, or a kernel address.
 */
static void *place(struct ctx *c, size_t size, bool *writable)
{
	*writable = false;
	switch (rnd(c) % 20) {
	case 0 ... 13:
		*writable = true;
		return c->buf + (rnd(c) % 8) * 8;
	case 14:
	case 15:
		return c->buf + page - size / 2;
	case 16:
		return c->buf + page + (rnd(c) % 8) * 8;
	case 17:
		return c->buf + 2 * page - size / 2;
	case 18:
		return NULL;
	default:
		return (void *)0xffff888000000000ULL;
	}
}

/* Copy a filled-in argument to @arg as far as it is writable by us. */
static void put_arg(struct ctx *c, void *arg, const void *val, size_t size)
{
	char *p = arg, *rw_end = c->buf + page;

	if (p >= c->buf && p < rw_end)
		memcpy(p, val, p + size <= rw_end ? size : (size_t)(rw_end - p));
}

/* --- the operations ------------------------------------------------------ */

static long do_ioctl(struct ctx *c, int fd, unsigned long cmd, void *arg,
		     unsigned int idx)
{
	long ret;

	ret = ioctl(fd, cmd, arg);
	atomic_fetch_add(&sh->calls[idx], 1);
	if (!ret)
		atomic_fetch_add(&sh->ok[idx], 1);
	trace(c, "ioctl(%d, %s %#lx, %p) = %ld %s", fd, cmd_names[idx], cmd, arg,
	      ret, ret ? strerror(errno) : "");
	return ret;
}

#define RESERVED(type)	offsetof(struct type, reserved)
#define RESERVED_LEN(type) sizeof(((struct type *)0)->reserved)
static const unsigned short reserved_off[NCMDS] = {
	RESERVED(pyshm_version), RESERVED(pyshm_region_create),
	RESERVED(pyshm_region_export), RESERVED(pyshm_region_import),
	RESERVED(pyshm_token_revoke), RESERVED(pyshm_region_info),
	RESERVED(pyshm_region_grow), RESERVED(pyshm_region_seal),
};
static const unsigned short reserved_len[NCMDS] = {
	RESERVED_LEN(pyshm_version), RESERVED_LEN(pyshm_region_create),
	RESERVED_LEN(pyshm_region_export), RESERVED_LEN(pyshm_region_import),
	RESERVED_LEN(pyshm_token_revoke), RESERVED_LEN(pyshm_region_info),
	RESERVED_LEN(pyshm_region_grow), RESERVED_LEN(pyshm_region_seal),
};

/*
 * One valid command on a random fd. Half the calls are well aimed (the right
 * kind of fd, zeroed reserved words, plausible sizes, a token of this
 * process with the domain it came from), so that the success paths run as
 * often as the error paths; the other half get junk anywhere.
 */
static void op_ioctl(struct ctx *c)
{
	unsigned int idx = rnd(c) % NCMDS;
	union {
		struct pyshm_version v;
		struct pyshm_region_create cr;
		struct pyshm_region_export ex;
		struct pyshm_region_import im;
		struct pyshm_token_revoke rv;
		struct pyshm_region_info in;
		struct pyshm_region_grow gr;
		struct pyshm_region_seal se;
	} a;
	size_t size = _IOC_SIZE(cmds[idx]);
	bool aimed = one_in(c, 2), writable, owned = false;
	enum kind kind = idx < 5 ? DOMAIN : REGION;
	int mprot = 0, fd = pick_fd(c, kind);
	char *maddr = NULL;
	size_t mlen = 0;
	void *arg;
	long ret;

	if (aimed)
		fd = slot_peek(c, kind);
	memset(&a, 0, sizeof(a));
	switch (cmds[idx]) {
	case PYSHM_IOC_VERSION:
		a.v.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	case PYSHM_IOC_REGION_CREATE:
		if (aimed) {
			a.cr.size = (rnd(c) % 8) * page +
				    (one_in(c, 4) ? rnd(c) % page : 0);
			a.cr.max_size = a.cr.size && one_in(c, 3) ? 0 :
					a.cr.size + (1 + rnd(c) % 16) * page;
			break;
		}
		a.cr.size = gen_size(c);
		a.cr.max_size = one_in(c, 3) ? 0 : gen_size(c);
		if (one_in(c, 2) && a.cr.size > a.cr.max_size)
			a.cr.max_size = a.cr.size + (rnd(c) % 16) * page;
		a.cr.flags = gen_flags(c, 0);
		a.cr.fd = (int)rnd(c);
		a.cr.id = rnd(c);
		break;
	case PYSHM_IOC_REGION_EXPORT:
		a.ex.fd = aimed ? slot_peek(c, REGION) : pick_fd(c, REGION);
		a.ex.flags = one_in(c, 2) ? PYSHM_REGION_EXPORT_F_ONESHOT : 0;
		if (!aimed)
			a.ex.flags = gen_flags(c, a.ex.flags);
		a.ex.token = rnd(c);
		break;
	case PYSHM_IOC_REGION_IMPORT:
		a.im.token = gen_token(c, aimed, &fd);
		a.im.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	case PYSHM_IOC_TOKEN_REVOKE:
		a.rv.token = gen_token(c, aimed, &fd);
		a.rv.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	case PYSHM_IOC_REGION_INFO:
		a.in.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	case PYSHM_IOC_REGION_GROW:
		a.gr.size = aimed ? (1 + rnd(c) % 24) * page : gen_size(c);
		a.gr.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	case PYSHM_IOC_REGION_SEAL:
		a.se.flags = aimed ? 0 : gen_flags(c, 0);
		break;
	}
	/* Junk in the words that must be zero, now and then. */
	if (!aimed) {
		gen_zero(c, (char *)&a + reserved_off[idx], reserved_len[idx]);
		if (cmds[idx] == PYSHM_IOC_REGION_IMPORT)
			gen_zero(c, &a.im.pad, sizeof(a.im.pad));
		if (cmds[idx] == PYSHM_IOC_TOKEN_REVOKE)
			gen_zero(c, &a.rv.pad, sizeof(a.rv.pad));
		if (cmds[idx] == PYSHM_IOC_REGION_GROW)
			gen_zero(c, &a.gr.pad, sizeof(a.gr.pad));
		if (cmds[idx] == PYSHM_IOC_REGION_SEAL)
			gen_zero(c, &a.se.pad, sizeof(a.se.pad));
	}

	/*
	 * Sometimes the argument lives in a region's own memory (perhaps past
	 * its size: EFAULT). Never across its end: what lies there isn't ours.
	 */
	if (one_in(c, 16) && map_take(c, &maddr, &mlen, &mprot) && mlen >= size) {
		owned = true;
		arg = maddr + (one_in(c, 2) ? 0 : (mlen - size) & ~7UL);
		guarded_copy(arg, &a, size);
		writable = false;
	} else {
		if (maddr)
			map_put(c, maddr, mlen, mprot);
		maddr = NULL;
		if (aimed) {
			writable = true;
			arg = c->buf + (rnd(c) % 8) * 8;
		} else {
			arg = place(c, size, &writable);
		}
		put_arg(c, arg, &a, size);
	}

	ret = do_ioctl(c, fd, cmds[idx], arg, idx);
	if (!ret) {
		/* Read the results back where we can. */
		if (owned) {
			if (!guarded_copy(&a, arg, size))
				memset(&a, 0, sizeof(a));
		} else if (writable) {
			memcpy(&a, arg, size);
		}
		if (owned || writable) {
			if (cmds[idx] == PYSHM_IOC_REGION_CREATE)
				slot_put(c, REGION, a.cr.fd);
			else if (cmds[idx] == PYSHM_IOC_REGION_IMPORT)
				slot_put(c, REGION, a.im.fd);
			else if (cmds[idx] == PYSHM_IOC_REGION_EXPORT)
				keep_token(c, a.ex.token, fd);
		} else if (cmds[idx] == PYSHM_IOC_REGION_CREATE ||
			   cmds[idx] == PYSHM_IOC_REGION_IMPORT ||
			   cmds[idx] == PYSHM_IOC_REGION_EXPORT) {
			/* The kernel could not tell us its results. */
			oracle(c, false, "success with unwritable results", ret, 0);
		}
	}
	if (owned)
		map_put(c, maddr, mlen, mprot);
}

/*
 * An ioctl number that is not one of ours: our magic with any other number,
 * direction or size, or some other driver's. Only pyshm's magic goes to fds
 * that could be anything.
 */
static void op_ioctl_invalid(struct ctx *c)
{
	static const unsigned char avoid[] = { 0x00, 0x12, 0x54, 0x89, 'X', 'f' };
	unsigned long cmd;
	unsigned int i, type;
	bool writable;
	void *arg;
	int fd;

	switch (rnd(c) % 4) {
	case 0:
		/* A valid number with another direction or size. */
		cmd = cmds[rnd(c) % NCMDS];
		cmd = _IOC(rnd(c) % 4, _IOC_TYPE(cmd), _IOC_NR(cmd),
			   one_in(c, 2) ? rnd(c) % 128 : _IOC_SIZE(cmd) ^ 8);
		fd = pick_fd(c, rnd(c) % 2);
		break;
	case 1:
	case 2:
		cmd = _IOC(rnd(c) % 4, PYSHM_IOC_MAGIC, rnd(c) % 256,
			   rnd(c) % 256);
		fd = pick_fd(c, rnd(c) % 2);
		break;
	default:
		do {
			type = rnd(c) % 256;
			for (i = 0; i < sizeof(avoid); i++)
				if (type == avoid[i])
					break;
		} while (i < sizeof(avoid));
		cmd = _IOC(rnd(c) % 4, type, rnd(c) % 256, rnd(c) % 512);
		/* Ours only, though another thread may swap it meanwhile. */
		fd = one_in(c, 2) ? anchor_dfd : anchor_rfd;
		break;
	}
	for (i = 0; i < NCMDS; i++)
		if (cmd == cmds[i])
			return;
	arg = place(c, 64, &writable);
	if (writable)
		memset(arg, (int)rnd(c), 64);
	do_ioctl(c, fd, cmd, arg, CMD_INVALID);
}

static void expect_errno(struct ctx *c, long ret, int want, const char *what)
{
	oracle(c, ret == -1 && errno == want, what, ret, ret == -1 ? errno : 0);
}

/* What must hold whatever else runs: checked on the anchors. */
static void op_oracle(struct ctx *c)
{
	char *arg = c->buf + 512;	/* this thread's, read-write */
	unsigned long cmd;
	unsigned int i, nr;
	long ret;
	int fd;

	switch (rnd(c) % 8) {
	case 0:
		/* Any other number of our magic: ENOTTY, on either kind of fd. */
		do {
			nr = rnd(c) % 256;
			cmd = _IOC(rnd(c) % 4, PYSHM_IOC_MAGIC, nr, rnd(c) % 256);
			for (i = 0; i < NCMDS && cmd != cmds[i]; i++)
				;
		} while (i < NCMDS);
		fd = one_in(c, 2) ? anchor_dfd : anchor_rfd;
		memset(arg, 0, 256);
		ret = do_ioctl(c, fd, cmd, arg, CMD_INVALID);
		expect_errno(c, ret, ENOTTY, "unknown command");
		break;
	case 1:
		/* A region command on a domain and the other way round. */
		i = rnd(c) % NCMDS;
		fd = i >= 5 ? anchor_dfd : anchor_rfd;
		memset(arg, 0, 256);
		ret = do_ioctl(c, fd, cmds[i], arg, i);
		expect_errno(c, ret, ENOTTY, "command on the wrong kind of fd");
		break;
	case 2:
	case 3: {
		/* A junk flag bit or reserved word: EINVAL before anything else. */
		static const struct {
			unsigned int cmd;
			unsigned int off, len;	/* the field, in bytes */
			uint32_t valid;		/* valid bits of a flags field */
		} fields[] = {
			{ 0, offsetof(struct pyshm_version, flags), 4, 0 },
			{ 0, offsetof(struct pyshm_version, reserved), 32, 0 },
			{ 1, offsetof(struct pyshm_region_create, flags), 4, 0 },
			{ 1, offsetof(struct pyshm_region_create, reserved), 32, 0 },
			{ 2, offsetof(struct pyshm_region_export, flags), 4,
			  PYSHM_REGION_EXPORT_F_ALL },
			{ 2, offsetof(struct pyshm_region_export, reserved), 32, 0 },
			{ 3, offsetof(struct pyshm_region_import, flags), 4, 0 },
			{ 3, offsetof(struct pyshm_region_import, pad), 4, 0 },
			{ 3, offsetof(struct pyshm_region_import, reserved), 32, 0 },
			{ 4, offsetof(struct pyshm_token_revoke, flags), 4, 0 },
			{ 4, offsetof(struct pyshm_token_revoke, pad), 4, 0 },
			{ 4, offsetof(struct pyshm_token_revoke, reserved), 16, 0 },
			{ 5, offsetof(struct pyshm_region_info, flags), 4, 0 },
			{ 5, offsetof(struct pyshm_region_info, reserved), 32, 0 },
			{ 6, offsetof(struct pyshm_region_grow, flags), 4, 0 },
			{ 6, offsetof(struct pyshm_region_grow, pad), 4, 0 },
			{ 6, offsetof(struct pyshm_region_grow, reserved), 16, 0 },
			{ 7, offsetof(struct pyshm_region_seal, flags), 4, 0 },
			{ 7, offsetof(struct pyshm_region_seal, pad), 4, 0 },
			{ 7, offsetof(struct pyshm_region_seal, reserved), 16, 0 },
		};
		unsigned int f = rnd(c) % (sizeof(fields) / sizeof(fields[0]));
		unsigned int word = fields[f].off + (rnd(c) % (fields[f].len / 4)) * 4;
		uint32_t v;

		i = fields[f].cmd;
		memset(arg, 0, 256);
		/* Plausible otherwise: a size, a live region fd. */
		if (cmds[i] == PYSHM_IOC_REGION_CREATE) {
			((struct pyshm_region_create *)arg)->size = page;
		} else if (cmds[i] == PYSHM_IOC_REGION_EXPORT) {
			((struct pyshm_region_export *)arg)->fd = anchor_rfd;
		} else if (cmds[i] == PYSHM_IOC_REGION_GROW) {
			((struct pyshm_region_grow *)arg)->size = anchor_max;
		}
		do
			v = (uint32_t)(one_in(c, 2) ? junk[rnd(c) % 4] : 1U << (rnd(c) % 32));
		while (fields[f].len == 4 && !(v & ~fields[f].valid));
		memcpy(arg + word, &v, 4);
		fd = i < 5 ? anchor_dfd : anchor_rfd;
		ret = do_ioctl(c, fd, cmds[i], arg, i);
		expect_errno(c, ret, EINVAL, cmd_names[i]);
		break;
	}
	case 4: {
		struct pyshm_region_create *cr = (void *)arg;

		memset(arg, 0, 256);
		if (one_in(c, 2)) {
			/* Bigger than its maximum. */
			cr->max_size = 1 + rnd(c) % (1ULL << 40);
			cr->size = cr->max_size + 1 + rnd(c) % (1ULL << 40);
		}	/* else 0 and 0: nothing to create */
		ret = do_ioctl(c, anchor_dfd, PYSHM_IOC_REGION_CREATE, arg, 1);
		if (!ret)
			slot_put(c, REGION, cr->fd);
		expect_errno(c, ret, EINVAL, "create with size > max_size");
		break;
	}
	case 5: {
		struct pyshm_region_import *im = (void *)arg;

		/* Token 0 never exists. */
		memset(arg, 0, 256);
		if (one_in(c, 2)) {
			ret = do_ioctl(c, anchor_dfd, PYSHM_IOC_REGION_IMPORT, arg, 3);
			if (!ret)
				slot_put(c, REGION, im->fd);
			expect_errno(c, ret, ENOENT, "import of token 0");
		} else {
			ret = do_ioctl(c, anchor_dfd, PYSHM_IOC_TOKEN_REVOKE, arg, 4);
			expect_errno(c, ret, ENOENT, "revoke of token 0");
		}
		break;
	}
	case 6: {
		struct pyshm_region_grow *gr = (void *)arg;

		memset(arg, 0, 256);
		gr->size = anchor_max + 1 + (one_in(c, 2) ? rnd(c) % (1ULL << 50) : 0);
		ret = do_ioctl(c, anchor_rfd, PYSHM_IOC_REGION_GROW, arg, 6);
		expect_errno(c, ret, EFBIG, "grow past max_size");
		break;
	}
	default:
		/* An argument the kernel can't read. */
		i = rnd(c) % NCMDS;
		fd = i < 5 ? anchor_dfd : anchor_rfd;
		ret = do_ioctl(c, fd, cmds[i], one_in(c, 2) ? NULL :
			       c->buf + 2 * page - _IOC_SIZE(cmds[i]) / 2, i);
		expect_errno(c, ret, EFAULT, "unreadable argument");
		break;
	}
}

static void op_mmap(struct ctx *c)
{
	static const int prots[] = {
		PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE,
		PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC,
	};
	int fd = pick_fd(c, REGION), prot = prots[rnd(c) % 6];
	struct pyshm_region_info info;
	size_t len;
	off_t off = 0;
	void *p;

	/* Well aimed: within the region's max_size, writable unless sealed. */
	if (one_in(c, 2)) {
		fd = slot_peek(c, REGION);
		if (region_info(fd, &info))
			return;
		len = (1 + rnd(c) % ((info.max_size + page - 1) / page)) * page;
		prot = info.state & PYSHM_REGION_STATE_SEALED || one_in(c, 4) ?
		       PROT_READ : PROT_READ | PROT_WRITE;
		p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
		atomic_fetch_add(&sh->mmaps, 1);
		if (p != MAP_FAILED)
			map_put(c, p, len, prot);
		return;
	}

	switch (rnd(c) % 8) {
	case 0 ... 4:
		len = (1 + rnd(c) % 16) * page;
		break;
	case 5:
		len = (1 + rnd(c) % 4096) * page;
		break;
	case 6:
		len = 0;
		break;
	default:
		len = rnd(c) & ~(page - 1);
		break;
	}
	if (one_in(c, 4))
		off = (off_t)(rnd(c) % 32) * page;
	else if (one_in(c, 16))
		off = (off_t)(rnd(c) & ~(uint64_t)(page - 1) & LONG_MAX);
	p = mmap(NULL, len, prot, one_in(c, 10) ? MAP_PRIVATE : MAP_SHARED, fd, off);
	atomic_fetch_add(&sh->mmaps, 1);
	trace(c, "mmap(%zu, %d, fd %d, %lld) = %p", len, prot, fd, (long long)off, p);
	if (p != MAP_FAILED)
		map_put(c, p, len, prot);
}

static void op_munmap(struct ctx *c)
{
	size_t len, cut;
	char *addr;
	int prot;

	if (!map_take(c, &addr, &len, &prot))
		return;
	atomic_fetch_add(&sh->munmaps, 1);
	cut = (rnd(c) % (len / page + 1)) * page;
	if (cut == 0 || cut >= len || one_in(c, 2)) {
		munmap(addr, len);
	} else if (one_in(c, 2)) {
		/* The front goes: the rest is a split vma of its own. */
		munmap(addr, cut);
		map_put(c, addr + cut, len - cut, prot);
	} else {
		munmap(addr + cut, len - cut);
		map_put(c, addr, cut, prot);
	}
}

static void op_mremap(struct ctx *c)
{
	size_t len, nlen;
	char *addr, *p;
	int prot, flags = MREMAP_MAYMOVE;

	if (!map_take(c, &addr, &len, &prot))
		return;
	nlen = (1 + rnd(c) % 32) * page;
	if (one_in(c, 4) && nlen == len)
		flags |= MREMAP_DONTUNMAP;
	p = mremap(addr, len, nlen, flags);
	trace(c, "mremap(%p, %zu, %zu) = %p", addr, len, nlen, p);
	if (p == MAP_FAILED) {
		map_put(c, addr, len, prot);
		return;
	}
	map_put(c, p, nlen, prot);
	if (flags & MREMAP_DONTUNMAP)
		map_put(c, addr, len, prot);
}

static void op_mprotect(struct ctx *c)
{
	static const int prots[] = {
		PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE, PROT_WRITE,
	};
	size_t len, part;
	char *addr;
	int prot, nprot = prots[rnd(c) % 4];

	if (!map_take(c, &addr, &len, &prot))
		return;
	/* A part only splits the vma; keep the old protection for the lot. */
	part = one_in(c, 2) ? len : (1 + rnd(c) % (len / page)) * page;
	if (mprotect(addr, part > len ? len : part, nprot) == 0 && part >= len)
		prot = nprot;
	else
		prot &= nprot;	/* what is safe to assume for every page */
	map_put(c, addr, len, prot);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static void op_madvise(struct ctx *c)
{
	static const int advice[] = {
		MADV_DONTNEED, MADV_REMOVE, MADV_WILLNEED, MADV_NORMAL,
		MADV_RANDOM, MADV_DONTFORK, MADV_DOFORK, MADV_COLD, MADV_PAGEOUT,
		MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE,
	};
	size_t len, off, n;
	char *addr;
	int prot;

	if (!map_take(c, &addr, &len, &prot))
		return;
	off = (rnd(c) % (len / page)) * page;
	n = (1 + rnd(c) % TOUCH_PAGES) * page;
	if (off + n > len)
		n = len - off;
	madvise(addr + off, n, advice[rnd(c) % (sizeof(advice) / sizeof(advice[0]))]);
	map_put(c, addr, len, prot);
}

static void op_touch(struct ctx *c)
{
	size_t len;
	char *addr;
	int prot;

	if (!map_take(c, &addr, &len, &prot))
		return;
	touch(c, addr, len, prot);
	map_put(c, addr, len, prot);
}

static void op_close(struct ctx *c)
{
	fd_close(c, slot_take(c, one_in(c, 4) ? DOMAIN : REGION));
}

static void op_dup(struct ctx *c)
{
	enum kind k = rnd(c) % 2;
	int fd = slot_peek(c, k), victim;

	if (one_in(c, 2)) {
		slot_put(c, k, dup(fd));
		return;
	}
	/*
	 * Replace a slot's file by another, atomically: a stale fd for some;
	 * now and then one of the other kind, where it isn't expected.
	 */
	victim = slot_take(c, one_in(c, 8) ? !k : k);
	if (victim < 0)
		return;
	if (dup3(fd, victim, O_CLOEXEC) < 0) {
		fd_close(c, victim);
		return;
	}
	slot_put(c, k, victim);
}

static void op_open(struct ctx *c)
{
	slot_put(c, DOMAIN, domain_open());
}

/* Region and domain fds in flight over a socket, to ourselves. */
static void op_pass(struct ctx *c)
{
	char kind = rnd(c) % 2, cbuf[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { &kind, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fds[3], n, i;

	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_control = cbuf;
	if (one_in(c, 2)) {
		n = 1 + rnd(c) % 3;
		for (i = 0; i < n; i++)
			fds[i] = slot_peek(c, kind);
		msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
		sendmsg(sv[0], &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		atomic_fetch_add(&sh->passes, 1);
		return;
	}
	msg.msg_controllen = sizeof(cbuf);
	if (recvmsg(sv[1], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
		return;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		for (i = 0; i < n; i++)
			slot_put(c, kind ? REGION : DOMAIN, fds[i]);
	}
}

/*
 * A region's shmem file, reopened through /proc/self/map_files as root (or
 * CAP_CHECKPOINT_RESTORE: CRIU does this) and used as a file: whatever that
 * allows must not break the region's size, seal or accounting.
 */
static void op_reopen(struct ctx *c)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	};
	static const int seals[] = {
		F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE,
		F_SEAL_FUTURE_WRITE,
	};
	char path[64], data[256];
	size_t len, n = 1 + rnd(c) % sizeof(data);
	off_t off;
	char *addr;
	int prot, fd;
	void *p;

	if (!map_take(c, &addr, &len, &prot))
		return;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)addr, (unsigned long)(addr + len));
	fd = open(path, (one_in(c, 4) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	map_put(c, addr, len, prot);
	if (fd < 0)
		return;
	atomic_fetch_add(&sh->reopens, 1);
	off = (off_t)(rnd(c) % (len + 2 * page));
	memset(data, (int)rnd(c), sizeof(data));
	switch (rnd(c) % 6) {
	case 0:
		pwrite(fd, data, n, off);
		break;
	case 1:
		pread(fd, data, n, off);
		break;
	case 2:
		ftruncate(fd, (off_t)(rnd(c) % (len + 2 * page)));
		break;
	case 3:
		fallocate(fd, modes[rnd(c) % 3], off, (off_t)n * (1 + rnd(c) % 64));
		break;
	case 4:
		fcntl(fd, F_ADD_SEALS, seals[rnd(c) % 5]);
		break;
	default:
		/* A mapping of the shmem file itself, next to the region's own. */
		n = (1 + rnd(c) % 4) * page;
		prot = one_in(c, 2) ? PROT_READ : PROT_READ | PROT_WRITE;
		p = mmap(NULL, n, prot, MAP_SHARED, fd, (off_t)(rnd(c) % 4) * page);
		if (p != MAP_FAILED) {
			if (one_in(c, 2))
				madvise(p, n, MADV_NOHUGEPAGE);
			map_put(c, p, n, prot);
		}
		break;
	}
	close(fd);
}

/* debugfs and fdinfo, read while everything changes. */
static void op_read(struct ctx *c)
{
	char path[64], buf[4096];
	int fd;

	switch (rnd(c) % 3) {
	case 0:
		fd = open(DEBUGFS_DIR "/regions", O_RDONLY | O_CLOEXEC);
		break;
	case 1:
		fd = open(DEBUGFS_DIR "/stats", O_RDONLY | O_CLOEXEC);
		break;
	default:
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d",
			 slot_peek(c, REGION));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		break;
	}
	if (fd < 0)
		return;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static void run_ops(struct ctx *c, long budget);

/* A child inherits fds and mappings, does a little, and exits or is killed. */
static void op_fork(struct ctx *c)
{
	long n = 1 + rnd(c) % 64;
	bool kill_it = one_in(c, 3);
	unsigned int delay = rnd(c) % 2000;
	pid_t pid;

	if (c->child)
		return;
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		c->child = true;
		c->trace = false;
		c->rng ^= 0x5bd1e995;
		run_ops(c, n);
		_exit(0);
	}
	atomic_fetch_add(&sh->forks, 1);
	if (kill_it) {
		usleep(delay);
		kill(pid, SIGKILL);
		atomic_fetch_add(&sh->kills, 1);
	}
	waitpid(pid, NULL, 0);
}

static void one_op(struct ctx *c)
{
	unsigned int r = rnd(c) % 100;

	if (r < 32)
		op_ioctl(c);
	else if (r < 42)
		op_ioctl_invalid(c);
	else if (r < 48)
		op_oracle(c);
	else if (r < 56)
		op_mmap(c);
	else if (r < 61)
		op_munmap(c);
	else if (r < 63)
		op_mremap(c);
	else if (r < 65)
		op_mprotect(c);
	else if (r < 67)
		op_madvise(c);
	else if (r < 75)
		op_touch(c);
	else if (r < 82)
		op_close(c);
	else if (r < 85)
		op_dup(c);
	else if (r < 89)
		op_open(c);
	else if (r < 93)
		op_pass(c);
	else if (r < 94)
		op_read(c);
	else if (r < 95)
		op_reopen(c);
	else if (r < 97)
		op_fork(c);
	else
		op_ioctl(c);
}

static void run_ops(struct ctx *c, long budget)
{
	for (c->ops = 0; !budget || c->ops < budget; c->ops++) {
		if ((c->ops & 63) == 0 && (atomic_load(&sh->stop) || past_deadline()))
			break;
		one_op(c);
		atomic_fetch_add(&sh->ops, 1);
	}
}

/* --- processes and threads ----------------------------------------------- */

struct thread_arg {
	struct ctx c;
	long budget;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;

	run_ops(&t->c, t->budget);
	return NULL;
}

static char *thread_buf(void)
{
	char *b = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	/* Zeros read-only: a valid-looking tail for straddling arguments. */
	mprotect(b + page, page, PROT_READ);
	mprotect(b + 2 * page, page, PROT_NONE);
	return b;
}

/*
 * A worker process: its own domains and fds, @threads threads. Thread 0 ends
 * the process (exit_group, under the others' feet) after a random number of
 * calls; the master starts another in its place.
 */
static int worker(uint64_t seed, int proc, int threads, bool exact)
{
	struct thread_arg t[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	struct sigaction sa;
	uint64_t s = seed ^ ((uint64_t)proc << 32);
	long life;
	int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fault_handler;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(t, 0, sizeof(t));
	for (i = 0; i < threads; i++) {
		t[i].c.rng = splitmix(&s);
		t[i].c.proc = proc;
		t[i].c.thread = i;
		t[i].c.trace = verbose && proc == 0 && i == 0;
		t[i].c.stale_fd = 1000;
		t[i].c.buf = thread_buf();
		t[i].budget = max_ops;
		if (!t[i].c.buf)
			return 2;
	}
	for (i = 0; i < NSLOTS; i++) {
		atomic_store(&slots[DOMAIN][i], -1);
		atomic_store(&slots[REGION][i], -1);
	}
	anchor_dfd = domain_open();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (anchor_dfd < 0 || devnull < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return 2;
	/* The master may have turned the limits down: wait for room. */
	anchor_max = 4 * page;
	for (i = 0; i < 200 && anchor_rfd < 0; i++) {
		anchor_rfd = region_create(anchor_dfd, page, anchor_max, NULL);
		if (anchor_rfd < 0 && errno != ENOSPC && errno != EDQUOT && errno != E2BIG)
			return 2;
		if (anchor_rfd < 0) {
			if (atomic_load(&sh->stop) || past_deadline())
				return 0;
			usleep(10000);
		}
	}
	if (anchor_rfd < 0)
		return 3;	/* no room all along: not a failure */
	for (i = 0; i < 4; i++)
		slot_put(&t[0].c, DOMAIN, domain_open());

	/* Thread 0's budget doubles as the process's lifetime. */
	life = 100 + rnd(&t[0].c) % 3000;
	if (!exact && (!max_ops || life < max_ops))
		t[0].budget = life;
	for (i = 1; i < threads; i++)
		if (pthread_create(&tid[i], NULL, thread_main, &t[i]))
			return 2;
	thread_main(&t[0]);
	if (t[0].budget == life && !atomic_load(&sh->stop) && !past_deadline()) {
		atomic_fetch_add(&sh->exits, 1);
		_exit(0);	/* the others die mid-call */
	}
	for (i = 1; i < threads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

/* The module parameters the master turns while the workers run. */
static const char *const params[] = {
	"max_domain_tokens", "max_user_regions", "max_region_size",
	"max_user_bytes",
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))
static char saved[NPARAMS][64];

static void params_save(void)
{
	char path[128];
	unsigned int i;
	ssize_t n;
	int fd;

	for (i = 0; i < NPARAMS; i++) {
		snprintf(path, sizeof(path), PARAM_DIR "/%s", params[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		saved[i][0] = '\0';
		if (fd < 0)
			continue;
		n = read(fd, saved[i], sizeof(saved[i]) - 1);
		saved[i][n > 0 ? n : 0] = '\0';
		close(fd);
	}
}

static void params_restore(void)
{
	unsigned int i;

	for (i = 0; i < NPARAMS; i++)
		if (saved[i][0])
			param_set(params[i], saved[i]);
}

static void params_twist(struct ctx *c)
{
	static const char *const values[] = {
		"1", "4", "64", "4096", "1M", "16M", "0", "abc", "-1", "1T",
		"18446744073709551615", "0x10000", "64k",
	};
	unsigned int i = rnd(c) % NPARAMS;

	if (!saved[i][0] || geteuid() != 0)
		return;
	if (one_in(c, 3))
		param_set(params[i], saved[i]);
	else
		param_set(params[i], values[rnd(c) % (sizeof(values) / sizeof(values[0]))]);
}

/* Killed by us, done, or given up for want of room: fine. */
static bool worker_ok(int st)
{
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == SIGKILL;
	return WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-s SEED] [-t SECONDS] [-n OPS] [-p PROCS] [-j THREADS] [-v]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *env_seed = getenv("PYSHM_FUZZ_SEED");
	const char *env_secs = getenv("PYSHM_FUZZ_SECS");
	int procs = 3, threads = 3, opt, i, st, nfail = 0, spawned = 0, before, after;
	unsigned long calls = 0, lost = 0;
	double secs = env_secs ? atof(env_secs) : 2;
	pid_t pids[MAX_PROCS], pid;
	bool exact, all_ran = true;
	struct ctx mc = { 0 };
	struct timespec t0, t1, now;
	bool stuck = false;
	uint64_t seed;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	seed = env_seed ? strtoull(env_seed, NULL, 0) :
			  (uint64_t)t0.tv_nsec ^ ((uint64_t)getpid() << 32) ^ time(NULL);
	while ((opt = getopt(argc, argv, "s:t:n:p:j:v")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'n':
			max_ops = atol(optarg);
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 'j':
			threads = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (procs < 1 || procs > MAX_PROCS || threads < 1 || threads > MAX_THREADS ||
	    secs <= 0 || max_ops < 0)
		usage(argv[0]);
	exact = procs == 1 && threads == 1;
	page = page_size();

	printf("TAP version 13\n");
	printf("# fuzz: seed %#llx (replay: fuzz -s %#llx -t %g -p %d -j %d%s)\n",
	       (unsigned long long)seed, (unsigned long long)seed, secs, procs,
	       threads, max_ops ? " -n ..." : "");
	printf("1..3\n");
	fflush(stdout);
	if (access(DEV_PYSHM, R_OK | W_OK)) {
		printf("ok 1 # SKIP no %s\nok 2 # SKIP\nok 3 # SKIP\n", DEV_PYSHM);
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:3 error:0\n");
		return 0;
	}

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	before = dbg_count();
	params_save();
	/* Orphans of killed workers come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mc.rng = seed ^ 0xa5a5a5a5a5a5a5a5ULL;

	deadline = t0;
	deadline.tv_sec += (time_t)secs;
	deadline.tv_nsec += (long)((secs - (time_t)secs) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	for (i = 0; i < procs; i++)
		pids[i] = 0;
	for (;;) {
		bool done = atomic_load(&sh->stop) || past_deadline();

		for (i = 0; i < procs && !done; i++) {
			if (pids[i])
				continue;
			if (exact && spawned)
				break;
			pid = fork();
			if (pid == 0)
				_exit(worker(seed + spawned, spawned, threads, exact));
			if (pid > 0) {
				pids[i] = pid;
				spawned++;
				atomic_fetch_add(&sh->workers, 1);
			}
		}
		/* Reap whatever ended: workers, and orphaned grandchildren. */
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < procs; i++) {
				if (pids[i] != pid)
					continue;
				pids[i] = 0;
				if (!worker_ok(st)) {
					printf("# worker %d ended with status %#x\n",
					       pid, st);
					all_ran = false;
				}
			}
		}
		if (done || (max_ops && exact && spawned && !pids[0]))
			break;
		if (!exact && one_in(&mc, 8)) {
			/* Kill a worker mid-whatever. */
			i = rnd(&mc) % procs;
			if (pids[i] && kill(pids[i], SIGKILL) == 0)
				atomic_fetch_add(&sh->kills, 1);
		}
		if (!exact && one_in(&mc, 2))
			params_twist(&mc);
		usleep(20000 + rnd(&mc) % 80000);
	}

	/* Stop everyone; a worker stuck for 20 s more is a failure, not a hang. */
	atomic_store(&sh->stop, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	while ((pid = waitpid(-1, &st, WNOHANG)) != -1 || errno != ECHILD) {
		if (pid > 0) {
			for (i = 0; i < procs; i++)
				if (pids[i] == pid && !worker_ok(st)) {
					printf("# worker %d ended with status %#x\n", pid, st);
					all_ran = false;
				}
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t1.tv_sec > 20 && !stuck) {
			printf("# workers still running 20 s after the end: killed\n");
			all_ran = false;
			stuck = true;
			for (i = 0; i < procs; i++)
				if (pids[i])
					kill(pids[i], SIGKILL);
		}
		usleep(10000);
	}
	params_restore();

	/* Files of dead processes are released a moment later. */
	for (i = 0; i < 500 && (after = dbg_count()) != (before > 0 ? before : 0); i++)
		usleep(20000);
	after = dbg_count();

	for (i = 0; i <= (int)NCMDS; i++) {
		calls += atomic_load(&sh->calls[i]);
		if (!atomic_load(&sh->calls[i]))
			lost++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# fuzz: %lu ioctls in %.1f s; per command (calls/ok):", calls,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (i = 0; i <= (int)NCMDS; i++)
		printf(" %s %lu/%lu", cmd_names[i], atomic_load(&sh->calls[i]),
		       atomic_load(&sh->ok[i]));
	printf("\n# fuzz: %lu ops, %lu workers (%lu exited early, %lu killed), %lu forks,"
	       " %lu mmaps, %lu munmaps, %lu touches (%lu faulted), %lu fd passes,"
	       " %lu shmem reopens\n",
	       atomic_load(&sh->ops), atomic_load(&sh->workers),
	       atomic_load(&sh->exits), atomic_load(&sh->kills),
	       atomic_load(&sh->forks), atomic_load(&sh->mmaps),
	       atomic_load(&sh->munmaps), atomic_load(&sh->touches),
	       atomic_load(&sh->faults), atomic_load(&sh->passes),
	       atomic_load(&sh->reopens));

	if (all_ran && (lost == 0 || max_ops)) {
		printf("ok 1 fuzz.workers_ran_every_command\n");
	} else {
		printf("not ok 1 fuzz.workers_ran_every_command (%lu never issued)\n", lost);
		nfail++;
	}
	printf("# fuzz: %lu oracle checks, %lu failed\n",
	       atomic_load(&sh->oracle_checks), atomic_load(&sh->oracle_fails));
	if (!atomic_load(&sh->oracle_fails)) {
		printf("ok 2 fuzz.validation_holds_under_load\n");
	} else {
		printf("# first: %s\n", sh->msg);
		printf("not ok 2 fuzz.validation_holds_under_load\n");
		nfail++;
	}
	if (before < 0) {
		printf("ok 3 fuzz.no_region_outlives_its_processes # SKIP no debugfs\n");
	} else if (after == before) {
		printf("ok 3 fuzz.no_region_outlives_its_processes\n");
	} else {
		printf("# regions: %d before, %d after\n", before, after);
		printf("not ok 3 fuzz.no_region_outlives_its_processes\n");
		nfail++;
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
	       3 - nfail - (before < 0), nfail, before < 0);
	return nfail ? 1 : 0;
}
