// SPDX-License-Identifier: MIT
/*
 * The kmod region backend: regions of pyshm.ko, created and traded through
 * this process's domain fd (/dev/pyshm). The kernel keeps the reference
 * count, the ids and the tokens; this file only translates calls to ioctls.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/pyshm.h>

#include "internal.h"

/*
 * domain_lock guards domain_fd and probed. domain_fd is set before the
 * backend is chosen (under region.c's pthread_once) and never changes
 * afterwards, so the region calls read it without the lock.
 */
static pthread_mutex_t domain_lock = PTHREAD_MUTEX_INITIALIZER;
static int domain_fd = -1;
static bool probed;

static int sys_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* 0 when @fd is a domain of a pyshm.ko speaking our major version. */
static int domain_check(int fd)
{
	struct pyshm_version v;
	int ret;

	memset(&v, 0, sizeof(v));
	ret = sys_ioctl(fd, PYSHM_IOC_VERSION, &v);
	if (ret < 0)
		return ret;
	return v.major == PYSHM_VERSION_MAJOR ? 0 : -EPROTONOSUPPORT;
}

int __pyshm_kmod_open(void)
{
	int fd, ret = 0;

	pthread_mutex_lock(&domain_lock);
	probed = true;
	if (domain_fd >= 0)	/* adopted from the parent */
		goto out_unlock;
	fd = open("/dev/" PYSHM_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out_unlock;
	}
	ret = domain_check(fd);
	if (ret < 0)
		close(fd);
	else
		domain_fd = fd;
out_unlock:
	pthread_mutex_unlock(&domain_lock);
	return ret;
}

PYSHM_EXPORT int pyshm_kmod_domain_fd(void)
{
	int ret = pyshm_backend();

	if (ret < 0 || ret != PYSHM_BACKEND_KMOD)
		return -ENODEV;
	return domain_fd;
}

PYSHM_EXPORT int pyshm_kmod_domain_adopt(int fd)
{
	int ret;

	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&domain_lock);
	if (probed || domain_fd >= 0) {
		ret = -EBUSY;
		goto out_unlock;
	}
	ret = domain_check(fd);
	if (ret == 0)
		domain_fd = fd;
	else if (ret != -EBADF)
		ret = -ENOTTY;
out_unlock:
	pthread_mutex_unlock(&domain_lock);
	return ret;
}

static unsigned int flags_of(uint32_t state)
{
	unsigned int flags = 0;

	if (state & PYSHM_REGION_STATE_SEALED)
		flags |= PYSHM_REGION_SEALED;
	if (state & PYSHM_REGION_STATE_GROWABLE)
		flags |= PYSHM_REGION_GROWABLE;
	return flags;
}

static int kmod_create(uint64_t size, uint64_t max_size,
		       struct region_info *out)
{
	struct pyshm_region_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.size = size;
	/*
	 * The kernel wants room for one byte at least. An empty fixed-size
	 * region asks for that room and keeps max_size 0 in this process,
	 * which is what refuses to grow it.
	 */
	c.max_size = max_size ? max_size : 1;
	ret = sys_ioctl(domain_fd, PYSHM_IOC_REGION_CREATE, &c);
	if (ret < 0)
		return ret;
	out->fd = c.fd;
	out->id = c.id;
	out->size = size;
	out->max_size = max_size;
	out->flags = max_size > size ? PYSHM_REGION_GROWABLE : 0;
	return 0;
}

static int kmod_describe(int fd, uint64_t max_hint, struct region_info *out)
{
	struct pyshm_region_info i;
	int ret;

	(void)max_hint;		/* the kernel knows */
	memset(&i, 0, sizeof(i));
	ret = sys_ioctl(fd, PYSHM_IOC_REGION_INFO, &i);
	if (ret < 0)
		return ret == -EBADF ? ret : -EINVAL;
	out->fd = fd;
	out->id = i.id;
	out->size = i.size;
	out->max_size = i.max_size;
	out->flags = flags_of(i.state);
	return 0;
}

static int kmod_grow(struct pyshm_region *r, uint64_t new_size)
{
	struct pyshm_region_grow g;

	memset(&g, 0, sizeof(g));
	g.size = new_size;
	return sys_ioctl(r->fd, PYSHM_IOC_REGION_GROW, &g);
}

static int kmod_size(struct pyshm_region *r, uint64_t *size)
{
	struct pyshm_region_info i;
	int ret;

	memset(&i, 0, sizeof(i));
	ret = sys_ioctl(r->fd, PYSHM_IOC_REGION_INFO, &i);
	if (ret < 0)
		return ret;
	*size = i.size;
	return 0;
}

/*
 * Called with this process's mapping already remapped read-only: the kernel
 * counts only mappings made with PROT_WRITE as writable.
 */
static int kmod_seal(struct pyshm_region *r)
{
	struct pyshm_region_seal s;

	memset(&s, 0, sizeof(s));
	return sys_ioctl(r->fd, PYSHM_IOC_REGION_SEAL, &s);
}

static int kmod_export(struct pyshm_region *r, unsigned int flags,
		       uint64_t *token)
{
	struct pyshm_region_export e;
	int ret;

	memset(&e, 0, sizeof(e));
	e.fd = r->fd;
	if (flags & PYSHM_EXPORT_ONESHOT)
		e.flags |= PYSHM_REGION_EXPORT_F_ONESHOT;
	ret = sys_ioctl(domain_fd, PYSHM_IOC_REGION_EXPORT, &e);
	if (ret < 0)
		return ret;
	*token = e.token;
	return 0;
}

static int kmod_import(uint64_t token, struct region_info *out)
{
	struct pyshm_region_import im;
	int ret;

	memset(&im, 0, sizeof(im));
	im.token = token;
	ret = sys_ioctl(domain_fd, PYSHM_IOC_REGION_IMPORT, &im);
	if (ret < 0)
		return ret;
	out->fd = im.fd;
	out->id = im.id;
	out->size = im.size;
	out->max_size = im.max_size;
	out->flags = flags_of(im.state);
	return 0;
}

static int kmod_revoke(uint64_t token)
{
	struct pyshm_token_revoke rv;

	memset(&rv, 0, sizeof(rv));
	rv.token = token;
	return sys_ioctl(domain_fd, PYSHM_IOC_TOKEN_REVOKE, &rv);
}

const struct region_backend __pyshm_backend_kmod = {
	.kind = PYSHM_BACKEND_KMOD,
	.create = kmod_create,
	.describe = kmod_describe,
	.grow = kmod_grow,
	.size = kmod_size,
	.seal = kmod_seal,
	.reopen_ro = NULL,	/* read-only mappings of any region fd */
	.export = kmod_export,
	.import = kmod_import,
	.revoke = kmod_revoke,
};
