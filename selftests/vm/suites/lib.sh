#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "lib": every library test program with the kmod backend
# (PYSHM_BACKEND=kmod), once per wakeup path. The guest is ours: the tests
# may change system-wide sysctls (kernel.io_uring_disabled, 6.6+).
PYSHM_TEST_SYSCTLS=1 exec "$TOP/selftests/lib/run.sh" "$B/selftests/lib" kmod
