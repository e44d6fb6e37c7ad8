/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * Documentation
 * =============
 *
 * pyshm.ko gives processes shared-memory regions whose lifetime is a
 * kernel-held reference count, shared by capability. Every open of the misc
 * device /dev/pyshm is a *domain*; holding the domain fd is the capability to
 * create regions and to trade tokens inside that domain. Nothing of one domain
 * is reachable from another.
 *
 * A *region* is shmem-backed memory with a current size and a maximum size.
 * PYSHM_IOC_REGION_CREATE returns a region fd (O_CLOEXEC) and a 64-bit id,
 * unique while the module stays loaded. The region fd can be mmap()ed with
 * MAP_SHARED (MAP_PRIVATE is refused) anywhere within [0, max_size), rounded up
 * to a page; touching a page at or past the current size raises SIGBUS. A
 * region lives while anything holds it: a region fd, a mapping, or an export
 * pin. The last of them to go frees its memory.
 *
 * Whether a mapping can ever write is fixed when it is made: a mapping made
 * without PROT_WRITE can not later be mprotect()ed writable. Sealing a region
 * (PYSHM_IOC_REGION_SEAL) makes it read-only for good and is refused while any
 * writable mapping exists; afterwards writable mappings and growing fail.
 *
 * PYSHM_IOC_REGION_EXPORT turns a region fd into a random 64-bit *token* kept
 * by the domain fd it was issued on; the token pins the region. Any holder of
 * the same domain fd (a child that inherited it, a process that received it)
 * turns the token back into a region fd with PYSHM_IOC_REGION_IMPORT. A
 * one-shot token is consumed by its first import (a message in flight); a
 * multi-use token lasts until PYSHM_IOC_TOKEN_REVOKE or until the domain is
 * closed. A token of another domain, or one that was consumed or revoked, is
 * simply not found (ENOENT).
 *
 * Conventions for every ioctl below: the argument is a pointer to the named
 * struct; fields are marked in (read by the kernel), out (written on success)
 * or zero (must be zero, else EINVAL). Each struct has a flags word whose
 * valid bits are its _F_ALL mask; any other bit gives EINVAL. Unknown ioctl
 * numbers give ENOTTY. Sizes are bytes. Module parameters bound what one user
 * may hold (E2BIG, EDQUOT, ENOSPC); see Documentation/userspace-api.rst.
 *
 * Domain fd (/dev/pyshm):
 *
 *    PYSHM_IOC_VERSION        struct pyshm_version        ABI version
 *    PYSHM_IOC_REGION_CREATE  struct pyshm_region_create  new region fd
 *    PYSHM_IOC_REGION_EXPORT  struct pyshm_region_export  region fd -> token
 *    PYSHM_IOC_REGION_IMPORT  struct pyshm_region_import  token -> region fd
 *    PYSHM_IOC_TOKEN_REVOKE   struct pyshm_token_revoke   forget a token
 *
 * Region fd:
 *
 *    PYSHM_IOC_REGION_INFO    struct pyshm_region_info    id, sizes, state
 *    PYSHM_IOC_REGION_GROW    struct pyshm_region_grow    raise the size
 *    PYSHM_IOC_REGION_SEAL    struct pyshm_region_seal    read-only for good
 */
#ifndef _UAPI_LINUX_PYSHM_H
#define _UAPI_LINUX_PYSHM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define PYSHM_DEVICE_NAME		"pyshm"

/* The ABI this header describes; minor versions only add. */
#define PYSHM_VERSION_MAJOR		1
#define PYSHM_VERSION_MINOR		0

/* Free in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define PYSHM_IOC_MAGIC			0xB9

/* PYSHM_IOC_REGION_INFO and _IMPORT: state bits of a region. */
#define PYSHM_REGION_STATE_SEALED	(1U << 0)
#define PYSHM_REGION_STATE_GROWABLE	(1U << 1)

/**
 * struct pyshm_version - PYSHM_IOC_VERSION
 * @flags: in, PYSHM_VERSION_F_* (none yet)
 * @major: out, PYSHM_VERSION_MAJOR of the running module
 * @minor: out, PYSHM_VERSION_MINOR of the running module
 * @features: out, PYSHM_FEATURE_* bits (none yet)
 * @reserved: zero
 */
struct pyshm_version {
	__u32 flags;
	__u16 major;
	__u16 minor;
	__u64 features;
	__u64 reserved[4];
};

#define PYSHM_VERSION_F_ALL		0U

/**
 * struct pyshm_region_create - PYSHM_IOC_REGION_CREATE
 * @size: in, initial size in bytes; may be 0 for a growable region
 * @max_size: in, largest size the region may grow to; 0 means @size
 * @flags: in, PYSHM_REGION_CREATE_F_* (none yet)
 * @fd: out, the new region fd, O_CLOEXEC
 * @id: out, the region id
 * @reserved: zero
 */
struct pyshm_region_create {
	__u64 size;
	__u64 max_size;
	__u32 flags;
	__s32 fd;
	__u64 id;
	__u64 reserved[4];
};

#define PYSHM_REGION_CREATE_F_ALL	0U

/**
 * struct pyshm_region_export - PYSHM_IOC_REGION_EXPORT
 * @fd: in, a region fd
 * @flags: in, PYSHM_REGION_EXPORT_F_ONESHOT for a token consumed by its
 *	first import
 * @token: out, the token, never 0
 * @reserved: zero
 */
struct pyshm_region_export {
	__s32 fd;
	__u32 flags;
	__u64 token;
	__u64 reserved[4];
};

#define PYSHM_REGION_EXPORT_F_ONESHOT	(1U << 0)
#define PYSHM_REGION_EXPORT_F_ALL	PYSHM_REGION_EXPORT_F_ONESHOT

/**
 * struct pyshm_region_import - PYSHM_IOC_REGION_IMPORT
 * @token: in, a token exported through this domain fd
 * @flags: in, PYSHM_REGION_IMPORT_F_* (none yet)
 * @fd: out, a new region fd, O_CLOEXEC
 * @id: out, the region id
 * @size: out, its current size
 * @max_size: out, its maximum size
 * @state: out, PYSHM_REGION_STATE_* bits
 * @pad: zero
 * @reserved: zero
 */
struct pyshm_region_import {
	__u64 token;
	__u32 flags;
	__s32 fd;
	__u64 id;
	__u64 size;
	__u64 max_size;
	__u32 state;
	__u32 pad;
	__u64 reserved[4];
};

#define PYSHM_REGION_IMPORT_F_ALL	0U

/**
 * struct pyshm_token_revoke - PYSHM_IOC_TOKEN_REVOKE
 * @token: in, a token exported through this domain fd
 * @flags: in, PYSHM_TOKEN_REVOKE_F_* (none yet)
 * @pad: zero
 * @reserved: zero
 */
struct pyshm_token_revoke {
	__u64 token;
	__u32 flags;
	__u32 pad;
	__u64 reserved[2];
};

#define PYSHM_TOKEN_REVOKE_F_ALL	0U

/**
 * struct pyshm_region_info - PYSHM_IOC_REGION_INFO
 * @flags: in, PYSHM_REGION_INFO_F_* (none yet)
 * @state: out, PYSHM_REGION_STATE_* bits
 * @id: out, the region id
 * @size: out, the current size
 * @max_size: out, the maximum size
 * @reserved: zero
 */
struct pyshm_region_info {
	__u32 flags;
	__u32 state;
	__u64 id;
	__u64 size;
	__u64 max_size;
	__u64 reserved[4];
};

#define PYSHM_REGION_INFO_F_ALL		0U

/**
 * struct pyshm_region_grow - PYSHM_IOC_REGION_GROW
 * @size: in, the new size: at least the current size, at most max_size
 * @flags: in, PYSHM_REGION_GROW_F_* (none yet)
 * @pad: zero
 * @reserved: zero
 */
struct pyshm_region_grow {
	__u64 size;
	__u32 flags;
	__u32 pad;
	__u64 reserved[2];
};

#define PYSHM_REGION_GROW_F_ALL		0U

/**
 * struct pyshm_region_seal - PYSHM_IOC_REGION_SEAL
 * @flags: in, PYSHM_REGION_SEAL_F_* (none yet)
 * @pad: zero
 * @reserved: zero
 */
struct pyshm_region_seal {
	__u32 flags;
	__u32 pad;
	__u64 reserved[2];
};

#define PYSHM_REGION_SEAL_F_ALL		0U

/* Domain fd. */
#define PYSHM_IOC_VERSION	  _IOWR(PYSHM_IOC_MAGIC, 0x00, struct pyshm_version)
#define PYSHM_IOC_REGION_CREATE	  _IOWR(PYSHM_IOC_MAGIC, 0x01, struct pyshm_region_create)
#define PYSHM_IOC_REGION_EXPORT	  _IOWR(PYSHM_IOC_MAGIC, 0x02, struct pyshm_region_export)
#define PYSHM_IOC_REGION_IMPORT	  _IOWR(PYSHM_IOC_MAGIC, 0x03, struct pyshm_region_import)
#define PYSHM_IOC_TOKEN_REVOKE	  _IOW(PYSHM_IOC_MAGIC, 0x04, struct pyshm_token_revoke)

/* Region fd. */
#define PYSHM_IOC_REGION_INFO	  _IOWR(PYSHM_IOC_MAGIC, 0x10, struct pyshm_region_info)
#define PYSHM_IOC_REGION_GROW	  _IOW(PYSHM_IOC_MAGIC, 0x11, struct pyshm_region_grow)
#define PYSHM_IOC_REGION_SEAL	  _IOW(PYSHM_IOC_MAGIC, 0x12, struct pyshm_region_seal)

#endif /* _UAPI_LINUX_PYSHM_H */
