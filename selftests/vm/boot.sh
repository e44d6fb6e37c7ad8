#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# boot.sh: one QEMU boot that runs suites against pyshm.ko in a guest, and
# the results of each suite as a kselftest log for `make check`.
#
# Builds a busybox initramfs (selftests/vm/init), boots the kernel under TCG
# with the host's root as a read-only 9p root, and lets selftests/vm/guest.sh
# insmod the module, run the suites and print one VERDICT line. QEMU's exit
# status says nothing: only the VERDICT line does, and `timeout` bounds the
# run. The serial log is split on the guest's "@@VM@@ BEGIN/END" lines into
#   $VM_RESULTS/$VM_NAME-<suite>.log   one per suite (TAP + "# Totals:")
#   $VM_RESULTS/$VM_NAME.log           the kernel-side checks and the verdict
# A suite that did not run or finish, or ended without Totals, counts as a
# failure; so does a missing or failing verdict.
#
# Environment (defaults in brackets):
#   TOP, O             source and build trees (required)
#   B                  userspace build folder the suites use [$O/release]
#   VM_NAME            results prefix [vm-check]
#   VM_RESULTS         where the logs go [$O/results]
#   VM_KVER            kernel release [newest /lib/modules/*/build]
#   VM_ROOT            the root its /boot and /lib/modules are under [/]
#                      (the kernel chroot's, for a kernel newer than the host's)
#   VM_KERNEL          kernel image: vmlinux (PVH) or bzImage [the vmlinux
#                      inside $VM_ROOT/boot/vmlinuz-$VM_KVER, else the bzImage]
#   VM_MODULES         modules /init loads first, with what they depend on,
#                      from $VM_ROOT/lib/modules/$VM_KVER [the virtio-pci and
#                      9p stack: those of them the kernel has as modules]
#   VM_KO              the module to test [$O/kmod/$VM_KVER/pyshm.ko]
#   VM_PARAMS          its parameters, comma-separated [none]
#   VM_SUITES          suite scripts relative to TOP, space-separated
#                      [selftests/vm/suites/*.sh]
#   VM_CHECKS          extra kernel-side check scripts run before rmmod [none]
#   VM_MEM, VM_SMP     guest memory and CPUs [1G, 2]
#   VM_APPEND          extra kernel command line [none]
#   VM_TIMEOUT         seconds for the whole boot [1200]
#   VM_SUITE_TIMEOUT   seconds per suite, in the guest [600]
set -u
: "${TOP:?}" "${O:?}"
B=${B:-$O/release}
VM_NAME=${VM_NAME:-vm-check}
VM_RESULTS=${VM_RESULTS:-$O/results}
VM_KVER=${VM_KVER:-$(basename "$(dirname "$(ls -d /lib/modules/*/build | sort -V | tail -1)")")}
VM_ROOT=${VM_ROOT:-/}
VM_MODULES=${VM_MODULES-virtio_pci 9pnet_virtio 9p}
VM_KO=${VM_KO:-$O/kmod/$VM_KVER/pyshm.ko}
VM_PARAMS=${VM_PARAMS:-}
VM_SUITES=${VM_SUITES:-$(cd "$TOP" && ls selftests/vm/suites/*.sh)}
VM_CHECKS=${VM_CHECKS:-}
VM_MEM=${VM_MEM:-1G}
VM_SMP=${VM_SMP:-2}
VM_APPEND=${VM_APPEND:-}
VM_TIMEOUT=${VM_TIMEOUT:-1200}
VM_SUITE_TIMEOUT=${VM_SUITE_TIMEOUT:-600}

dir=$O/vm/$VM_NAME
log=$dir/serial.log
mkdir -p "$dir" "$VM_RESULTS"

die() {
	echo "$VM_NAME: $*" >&2
	exit 1
}

suite_names=
for s in $VM_SUITES; do
	suite_names="$suite_names $(basename "$s" .sh)"
done
rm -f "$VM_RESULTS/$VM_NAME.log"
for s in $suite_names; do
	rm -f "$VM_RESULTS/$VM_NAME-$s.log"
done

# The kernel: PVH-boot the vmlinux inside Debian's bzImage (TCG spends 2 s
# in the bzImage's XZ decompressor otherwise; 6.12 and later compress with
# zstd), or the bzImage itself when no vmlinux comes out.
if [ -z "${VM_KERNEL:-}" ]; then
	bz=$VM_ROOT/boot/vmlinuz-$VM_KVER
	VM_KERNEL=$O/vm/vmlinux-$VM_KVER
	[ -r "$bz" ] || die "no $bz"
	if [ ! -s "$VM_KERNEL" ] || [ "$VM_KERNEL" -ot "$bz" ]; then
		mkdir -p "$O/vm"
		if python3 - "$bz" "$VM_KERNEL.tmp" <<-'EOF'; then
		import lzma, subprocess, sys
		d = open(sys.argv[1], 'rb').read()
		out = b''
		i = d.find(b'\xfd7zXZ\0')
		if i >= 0:
		    try:
		        out = lzma.LZMADecompressor().decompress(d[i:])
		    except lzma.LZMAError:
		        out = b''
		i = d.find(b'\x28\xb5\x2f\xfd')
		if not out and i >= 0:
		    # zstd stops at the end of the frame and complains about the
		    # bytes after it: what matters is the ELF it wrote.
		    out = subprocess.run(['zstd', '-dcq'], input=d[i:],
		                         stdout=subprocess.PIPE,
		                         stderr=subprocess.DEVNULL).stdout
		if out[:4] != b'\x7fELF':
		    sys.exit(1)
		open(sys.argv[2], 'wb').write(out)
		EOF
			mv "$VM_KERNEL.tmp" "$VM_KERNEL"
		else
			rm -f "$VM_KERNEL.tmp"
			VM_KERNEL=$bz
		fi
	fi
fi
[ -r "$VM_KO" ] || die "no module $VM_KO (make kmod)"

# The initramfs: busybox, the 9p modules and /init; about 0.1 s.
ird=$dir/initramfs
rm -rf "$ird"
mkdir -p "$ird"/bin "$ird"/mods "$ird"/proc "$ird"/sys "$ird"/dev "$ird"/newroot
cp /bin/busybox "$ird"/bin/ || die "no /bin/busybox (busybox-static)"
for a in sh mount insmod chroot cat echo sleep mkdir poweroff; do
	ln -s busybox "$ird/bin/$a"
done
: >"$ird"/mods/order
added=" "
# add_module NAME: what it depends on, then itself, unless built in; each
# decompressed (6.12 and later ship .ko.xz), in load order.
add_module() {
	local m=$1 p d
	case $added in *" $m "*) return 0 ;; esac
	added="$added$m "
	p=$(modinfo -b "$VM_ROOT" -k "$VM_KVER" -n "$m" 2>/dev/null) ||
		die "module $m not found for $VM_KVER"
	case $p in /*) ;; *) return 0 ;; esac	# built in
	for d in $(modinfo -b "$VM_ROOT" -k "$VM_KVER" -F depends "$m" | tr , ' '); do
		add_module "$d"
	done
	case $p in
	*.ko.xz) xz -dc "$p" ;;
	*.ko.zst) zstd -dcq "$p" ;;
	*.ko.gz) gzip -dc "$p" ;;
	*) cat "$p" ;;
	esac >"$ird/mods/$m.ko" || die "cannot copy $p"
	echo "$m" >>"$ird"/mods/order
}
for m in $VM_MODULES; do
	add_module "$m"
done
cp "$TOP"/selftests/vm/init "$ird"/init
chmod 755 "$ird"/init
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir"/initramfs.cpio.gz ||
	die "cannot pack the initramfs"

join() { echo "$*" | tr -s ' ' | sed 's/^ //; s/ $//; s/ /,/g'; }
append="console=ttyS0 panic=-1 oops=panic panic_on_warn=1 quiet loglevel=5"
append="$append vm.top=$TOP vm.o=$O vm.b=$B vm.ko=$VM_KO"
append="$append vm.suites=$(join $VM_SUITES) vm.suite_timeout=$VM_SUITE_TIMEOUT"
[ -n "$VM_CHECKS" ] && append="$append vm.checks=$(join $VM_CHECKS)"
[ -n "$VM_PARAMS" ] && append="$append vm.params=$VM_PARAMS"
[ -n "$VM_APPEND" ] && append="$append $VM_APPEND"

# TCG, always: /dev/kvm on these machines is kvm_pvm, which fails ordinary
# guests and can hang QEMU (see VM-NOTES.md).
echo "$VM_NAME: booting $(basename "$VM_KERNEL") ($VM_KVER), suites:$suite_names"
t0=$(date +%s)
timeout -k 5 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max \
	-m "$VM_MEM" -smp "$VM_SMP" -nographic -no-reboot -nic none \
	-kernel "$VM_KERNEL" -initrd "$dir"/initramfs.cpio.gz -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	</dev/null 2>&1 | tee "$log" | awk '
		{ sub(/\r$/, "") }
		/^@@VM@@ BEGIN / { print "'"$VM_NAME"': " $3 "..."; fflush() }
		/^@@VM@@ END / { print "'"$VM_NAME"': " $3 " done (" $4 ")"; fflush() }'
rc=${PIPESTATUS[0]}
secs=$(($(date +%s) - t0))

totals_fail='# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0'
finish_log() {	# finish_log NAME OUT: a suite's part file, made to count
	local name=$1 out=$2 part=$dir/$1.part end=$dir/$1.end
	if [ ! -e "$part" ]; then
		{ echo "not ok - $name: did not run (guest died or timed out)"; echo "$totals_fail"; } >"$out"
		return
	fi
	cp "$part" "$out"
	if [ ! -e "$end" ]; then
		{ echo "not ok - $name: did not finish (guest died or timed out)"; echo "$totals_fail"; } >>"$out"
	elif ! grep -aq '^# Totals: ' "$out"; then
		{ echo "not ok - $name: no totals reported ($(cat "$end"))"; echo "$totals_fail"; } >>"$out"
	elif [ "$(cat "$end")" != rc=0 ] && ! grep -aqE '^# Totals: .*(fail|error):[1-9]' "$out"; then
		{ echo "not ok - $name: exit status $(cat "$end")"; echo "$totals_fail"; } >>"$out"
	fi
}
# Split the serial log: one file per suite, "vm" being the checks.
rm -f "$dir"/*.part "$dir"/*.end
awk -v dir="$dir" '
	{ sub(/\r$/, ""); gsub(/\033\[[0-9;?]*[A-Za-z]/, "") }
	/^@@VM@@ BEGIN / { cur = $3; out = dir "/" cur ".part"; printf "" >out; next }
	/^@@VM@@ END / { if (cur != "") { print $4 >(dir "/" cur ".end"); close(out) } cur = ""; next }
	cur != "" { print >out }
' "$log"

for s in $suite_names; do
	finish_log "$s" "$VM_RESULTS/$VM_NAME-$s.log"
done
vlog=$VM_RESULTS/$VM_NAME.log
finish_log vm "$vlog"
verdict=$(tr -d '\r' <"$log" | grep -a '^VERDICT: ' | tail -1)
case $verdict in
"VERDICT: PASS")
	{ echo "ok - $verdict (${secs}s)"; echo "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"; } >>"$vlog" ;;
"")
	why="no verdict line"
	[ "$rc" = 124 ] && why="timed out after ${VM_TIMEOUT}s"
	{
		echo "not ok - $VM_NAME: $why (qemu rc=$rc, ${secs}s); serial log tail:"
		tr -d '\r' <"$log" | tail -n 60 | sed 's/^/#   /'
		echo "$totals_fail"
	} >>"$vlog" ;;
*)
	{ echo "not ok - $verdict"; echo "$totals_fail"; } >>"$vlog" ;;
esac

status=0
for f in $(for s in $suite_names; do echo "$VM_RESULTS/$VM_NAME-$s.log"; done) "$vlog"; do
	echo "=== $(basename "$f" .log)"
	cat "$f"
	grep -aqE '^# Totals: .*(fail|error|xpass):[1-9]' "$f" && status=1
done
echo "$VM_NAME: ${verdict:-no verdict} in ${secs}s (serial log: $log)"
exit $status
