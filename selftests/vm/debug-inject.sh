#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The only suite of a `make vm-check-debug-selftest` boot: commit the bug
# named by vm.inject= through the test-only module's selftest_bug parameter,
# from a short-lived process (whose stack holds no stale pointer to the
# leak). The suite itself passes; the detectors must fail the run.
bug=
for x in $(cat /proc/cmdline); do
	case $x in vm.inject=*) bug=${x#*=} ;; esac
done
echo "TAP version 13"
echo "1..1"
if sh -c "echo $bug >/sys/module/pyshm/parameters/selftest_bug"; then
	echo "ok 1 inject_$bug"
	echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
else
	echo "not ok 1 inject_$bug"
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"
fi
