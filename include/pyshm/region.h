/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * A region is a block of shared memory with a process-local handle. Two
 * backends provide it: memfd (the default when /dev/pyshm is absent) and the
 * pyshm kernel module, whose regions have a kernel-held, atomic reference
 * count. PYSHM_BACKEND=memfd|kmod forces one.
 *
 * Inside one process a region is mapped once: every pyshm_region_get() or
 * lookup by id shares that mapping and bumps an atomic process-local count, so
 * sharing between threads and subinterpreters never enters the kernel. The
 * mapping and the fd go away at the last pyshm_region_put().
 *
 * A region is mapped at its maximum size; bytes beyond the current size are
 * not accessible (SIGBUS). Growing never moves the mapping, never shrinks.
 *
 * Every call returns >= 0 on success or a negative errno; none sets errno,
 * prints or aborts.
 */
#ifndef PYSHM_REGION_H
#define PYSHM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pyshm_region;

enum pyshm_backend_kind {
	PYSHM_BACKEND_MEMFD = 1,
	PYSHM_BACKEND_KMOD = 2,
};

/* pyshm_region_create() flags */
#define PYSHM_REGION_F_ALL		0u

/* pyshm_region_flags() bits */
#define PYSHM_REGION_SEALED		(1u << 0)
#define PYSHM_REGION_GROWABLE		(1u << 1)

/* pyshm_region_export() flags (kmod backend) */
#define PYSHM_EXPORT_ONESHOT		(1u << 0)
#define PYSHM_EXPORT_F_ALL		PYSHM_EXPORT_ONESHOT

/* Largest region size either backend accepts (the kernel may allow less). */
#define PYSHM_REGION_SIZE_MAX		(1ull << 46)

/**
 * pyshm_backend() - the region backend this process uses
 *
 * Chosen once, on first use: PYSHM_BACKEND when set, else kmod when /dev/pyshm
 * can be opened, else memfd.
 *
 * Return: PYSHM_BACKEND_MEMFD or PYSHM_BACKEND_KMOD; -ENODEV when
 * PYSHM_BACKEND=kmod but the device cannot be opened; -EINVAL when
 * PYSHM_BACKEND names no backend.
 */
int pyshm_backend(void);

/**
 * pyshm_backend_name() - "memfd", "kmod", or NULL for an unknown kind
 */
const char *pyshm_backend_name(int kind);

/**
 * pyshm_kmod_domain_fd() - the /dev/pyshm descriptor of this process
 *
 * Child processes that must import tokens inherit it (it is opened without
 * O_CLOEXEC only when asked, see pyshm_kmod_domain_adopt()).
 *
 * Return: the fd, or -ENODEV when the kmod backend is not in use.
 */
int pyshm_kmod_domain_fd(void);

/**
 * pyshm_kmod_domain_adopt() - use an inherited /dev/pyshm fd as the domain
 * @fd: a descriptor of /dev/pyshm, typically inherited from the parent
 *
 * Must be called before the first region call. The library owns @fd after
 * a successful call.
 *
 * Return: 0; -EBUSY if a backend is already chosen; -EBADF/-ENOTTY if @fd is
 * not a pyshm domain.
 */
int pyshm_kmod_domain_adopt(int fd);

/**
 * pyshm_region_create() - create a zero-filled region and map it
 * @size: initial size in bytes (may be 0)
 * @max_size: largest size it may grow to; 0 means @size (not growable)
 * @flags: must be 0 (PYSHM_REGION_F_ALL)
 * @out: the new handle, holding one reference
 *
 * Return: 0; -EINVAL for bad flags, a NULL @out or @max_size < @size;
 * -EFBIG above PYSHM_REGION_SIZE_MAX; -ENOMEM, -EMFILE, or the kernel
 * module's limit errors (-E2BIG, -EDQUOT, -ENOSPC).
 */
int pyshm_region_create(uint64_t size, uint64_t max_size, unsigned int flags,
			struct pyshm_region **out);

/**
 * pyshm_region_get() - take another process-local reference
 *
 * Return: @r.
 */
struct pyshm_region *pyshm_region_get(struct pyshm_region *r);

/**
 * pyshm_region_put() - drop a process-local reference
 *
 * The last one unmaps the region and closes its fd. NULL is ignored.
 */
void pyshm_region_put(struct pyshm_region *r);

/**
 * pyshm_region_lookup() - find a region this process has mapped, by id
 * @id: pyshm_region_id() of a live region
 * @out: a new reference on success
 *
 * Return: 0, or -ENOENT when no live region of this process has @id.
 */
int pyshm_region_lookup(uint64_t id, struct pyshm_region **out);

/**
 * pyshm_region_from_fd() - map a region received as a file descriptor
 * @fd: a memfd or kmod region fd (from SCM_RIGHTS or inheritance)
 * @max_size: the size to map for a growable memfd region (the sender's
 *	pyshm_region_max_size()); ignored when the fd itself knows it
 * @out: the handle, holding one reference
 *
 * The library owns @fd afterwards, also on failure. When this process already
 * maps the same region, that mapping is shared and @fd is closed. A growable
 * memfd larger than @max_size (a holder of the fd truncated it past the
 * maximum) is mapped up to @max_size, and its size reads as @max_size: no
 * size this library reports ever leaves the mapping.
 *
 * Return: 0; -EBADF, -EINVAL (not a region, or @max_size too large).
 */
int pyshm_region_from_fd(int fd, uint64_t max_size, struct pyshm_region **out);

/**
 * pyshm_region_data() - start of the mapping
 */
void *pyshm_region_data(const struct pyshm_region *r);

/**
 * pyshm_region_size() - current size in bytes
 *
 * For a growable region this asks the backend, since another process may
 * have grown it; for other regions it is a plain load.
 */
uint64_t pyshm_region_size(struct pyshm_region *r);

/**
 * pyshm_region_known_size() - the size this process last saw, without a
 *	system call
 *
 * Equal to pyshm_region_size() except that growth by another process shows
 * only after the next pyshm_region_size(). Never more than the real size.
 */
uint64_t pyshm_region_known_size(const struct pyshm_region *r);

/**
 * pyshm_region_max_size() - the size the mapping covers
 */
uint64_t pyshm_region_max_size(const struct pyshm_region *r);

/**
 * pyshm_region_id() - 64-bit id, unique among live regions of this machine
 *	for the backend in use
 */
uint64_t pyshm_region_id(const struct pyshm_region *r);

/**
 * pyshm_region_flags() - PYSHM_REGION_SEALED and PYSHM_REGION_GROWABLE bits
 */
unsigned int pyshm_region_flags(const struct pyshm_region *r);

/**
 * pyshm_region_fd() - the region's descriptor, still owned by the handle
 *
 * Return: the fd (to pass with SCM_RIGHTS or to a child), never negative for
 * a live handle.
 */
int pyshm_region_fd(const struct pyshm_region *r);

/**
 * pyshm_region_grow() - grow to @new_size bytes
 *
 * Return: 0 (also when @new_size equals the size); -EINVAL when @new_size is
 * smaller than the current size (regions never shrink); -EFBIG above the
 * maximum size; -EPERM when sealed.
 */
int pyshm_region_grow(struct pyshm_region *r, uint64_t new_size);

/**
 * pyshm_region_seal() - make the region read-only for good
 *
 * This process's mapping becomes read-only; writes through it fault.
 *
 * Return: 0 (also when already sealed); -EBUSY when another mapping (in
 * another process) is writable.
 */
int pyshm_region_seal(struct pyshm_region *r);

/**
 * pyshm_region_export() - a token another process of the same kmod domain
 *	can import
 * @flags: PYSHM_EXPORT_ONESHOT for a token consumed by its first import
 *
 * Return: 0 and *@token; -EOPNOTSUPP on the memfd backend; -EINVAL for flags.
 */
int pyshm_region_export(struct pyshm_region *r, unsigned int flags,
			uint64_t *token);

/**
 * pyshm_region_import() - map a region from a kmod token
 *
 * Return: 0; -ENOENT for an unknown, consumed or revoked token (including a
 * token of another domain); -EOPNOTSUPP on the memfd backend.
 */
int pyshm_region_import(uint64_t token, struct pyshm_region **out);

/**
 * pyshm_region_revoke() - revoke a multi-use token of this domain
 *
 * Return: 0; -ENOENT; -EOPNOTSUPP on the memfd backend.
 */
int pyshm_region_revoke(uint64_t token);

/* pyshm_prefault() does nothing below this size. */
#define PYSHM_PREFAULT_MIN		(2u << 20)

/**
 * pyshm_prefault() - fault in fresh memory before filling it
 * @p: memory about to be written: a new large buffer (anonymous or shared)
 * @len: its length
 *
 * Fresh memory costs a page fault per page at first touch, as much as the
 * copy of 64 MiB itself (far more in a virtual machine). For @len of
 * PYSHM_PREFAULT_MIN and up, this asks for huge pages (where the kernel
 * offers them) and populates the page-aligned part in one system call, so
 * that the copy that follows runs at memory speed. Best effort: it changes
 * nothing but the timing, and does nothing for smaller buffers.
 */
void pyshm_prefault(void *p, size_t len);

struct pyshm_stats {
	uint64_t regions;	/* live region handles in this process */
	uint64_t bytes;		/* sum of their current sizes */
	uint64_t mapped;	/* bytes of address space they map */
	uint64_t created;	/* regions created since start */
	uint64_t freed;		/* handles freed since start */
};

/**
 * pyshm_stats() - process-wide counters for leak checks
 * @st: filled in
 * @size: sizeof(*st), so the struct can grow
 *
 * Return: 0; -EINVAL for a NULL @st or a @size this library does not know.
 */
int pyshm_stats(struct pyshm_stats *st, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* PYSHM_REGION_H */
