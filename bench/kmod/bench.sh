#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# make bench-kmod, guest side: the kmod benchmark, run inside a vm-check
# guest (6.1 and 6.12 under TCG) with pyshm.ko loaded.
"$B/bench/kmod/bench_kmod"
rc=$?
[ $rc = 0 ] && echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0" ||
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
exit $rc
