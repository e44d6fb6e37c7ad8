#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "lib": every library test program with the kmod backend
# (PYSHM_BACKEND=kmod), once per wakeup path.
exec "$TOP/selftests/lib/run.sh" "$B/selftests/lib" kmod
