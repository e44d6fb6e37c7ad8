/* SPDX-License-Identifier: MIT */
/*
 * Documentation
 * =============
 *
 * libpyshm: shared-memory regions (memfd or the pyshm kernel module),
 * lock-free message rings with io_uring/futex wakeups, region transfers and
 * the structured-clone wire format. Every call returns >= 0 or -errno and
 * never sets errno, prints or aborts. See Documentation/ for the layouts.
 */
#ifndef PYSHM_PYSHM_H
#define PYSHM_PYSHM_H

#include <pyshm/region.h>
#include <pyshm/wake.h>
#include <pyshm/xfer.h>
#include <pyshm/ring.h>
#include <pyshm/clone.h>

#endif /* PYSHM_PYSHM_H */
