// SPDX-License-Identifier: MIT
/*
 * The memfd region backend, the default without the kernel module. Seals
 * carry the rules: F_SEAL_SHRINK on every region (never shrink), F_SEAL_GROW
 * on fixed-size ones, F_SEAL_WRITE for a sealed region. The region id is the
 * memfd's inode number, the same in every process that holds it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MEMFD_SEALS_FIXED (F_SEAL_SHRINK | F_SEAL_GROW)

static int memfd_describe(int fd, uint64_t max_hint, struct region_info *out)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	seals = fcntl(fd, F_GET_SEALS);
	/* Only a sealable memfd that refuses to shrink is one of ours. */
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EINVAL;

	out->fd = fd;
	out->id = (uint64_t)st.st_ino;
	out->size = (uint64_t)st.st_size;
	out->flags = 0;
	if (seals & F_SEAL_WRITE)
		out->flags |= PYSHM_REGION_SEALED;
	if (seals & F_SEAL_GROW) {
		out->max_size = out->size;
	} else {
		/*
		 * Growable: the sender's maximum. A size past it can only come
		 * from a peer that ftruncate()d the memfd beyond it; the
		 * handle clamps it to what is mapped.
		 */
		if (max_hint > PYSHM_REGION_SIZE_MAX)
			return -EINVAL;
		out->max_size = max_hint;
		if (max_hint > out->size)
			out->flags |= PYSHM_REGION_GROWABLE;
	}
	return 0;
}

/* A read-only descriptor of the same memfd: its shared mappings don't count
 * as writable, which F_SEAL_WRITE requires. */
static int memfd_reopen_ro(int rw_fd)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", rw_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int memfd_region_create(uint64_t size, uint64_t max_size,
			       struct region_info *out)
{
	int fd, seals = F_SEAL_SHRINK, ret;

	fd = memfd_create("pyshm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto err_close;
	if (max_size == size)
		seals |= F_SEAL_GROW;
	if (fcntl(fd, F_ADD_SEALS, seals) < 0)
		goto err_close;
	ret = memfd_describe(fd, max_size, out);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return 0;

err_close:
	ret = -errno;
	close(fd);
	return ret;
}

static int memfd_grow(struct pyshm_region *r, uint64_t new_size)
{
	/* F_SEAL_SHRINK turns a racing smaller grow into EPERM. */
	if (ftruncate(r->fd, (off_t)new_size) < 0)
		return errno == EPERM ? -EINVAL : -errno;
	return 0;
}

static int memfd_size(struct pyshm_region *r, uint64_t *size)
{
	struct stat st;

	if (fstat(r->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int memfd_seal(struct pyshm_region *r)
{
	int seals = F_SEAL_WRITE | MEMFD_SEALS_FIXED | F_SEAL_SEAL;

	if (fcntl(r->fd, F_ADD_SEALS, seals) < 0)
		return -errno;
	return 0;
}

const struct region_backend __pyshm_backend_memfd = {
	.kind = PYSHM_BACKEND_MEMFD,
	.create = memfd_region_create,
	.describe = memfd_describe,
	.grow = memfd_grow,
	.size = memfd_size,
	.seal = memfd_seal,
	.reopen_ro = memfd_reopen_ro,
};
