#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check-debug suite "fuzz": the ioctl fuzzer for vm.fuzz_secs= seconds
# (default 30), with the seed vm.fuzz_seed= when given (else its own, which
# it prints: `make vm-check-debug VM_FUZZ_SEED=...` replays it).
secs=30
seed=
for x in $(cat /proc/cmdline); do
	case $x in
	vm.fuzz_secs=*) secs=${x#*=} ;;
	vm.fuzz_seed=*) seed=${x#*=} ;;
	esac
done
exec "$B/selftests/kmod/fuzz" -t "$secs" ${seed:+-s "$seed"}
