#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check-debug suite "stress": the stress kselftests with a longer budget
# for the test that SIGKILLs processes mid-way (vm.stress_secs=, default 20).
secs=20
for x in $(cat /proc/cmdline); do
	case $x in vm.stress_secs=*) secs=${x#*=} ;; esac
done
PYSHM_STRESS_SECS=$secs exec "$B/selftests/kmod/stress"
