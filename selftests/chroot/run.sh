#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh py|pip: run inside the chroot of scripts/chroot.sh (chroot.mk), for
# every python3.N there:
#   py   build the extension into $O/chroot and run the Python suites,
#        as suites check-py-chroot-<version>
#   pip  the pip install test (selftests/install/pip.sh), as suites
#        check-pip-chroot-<version>
# Each suite's log lands in $O/results for the closing tally.
set -u
: "${TOP:?}" "${O:?}"
export O
pythons=()
for py in /usr/bin/python3.[0-9]*; do
	[[ ${py##*/} =~ ^python3\.[0-9]+$ ]] || continue
	v=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') || continue
	pythons+=("sid-$v=$py")
done
if [ ${#pythons[@]} = 0 ]; then
	echo "run.sh: no python3.N in the chroot" >&2
	exit 1
fi

status=0
case ${1:-} in
py)
	# The chroot's own gcc, liburing and Python headers; nothing to install.
	make --no-print-directory -C "$TOP" O="$O/chroot" PYTHONS="${pythons[*]}" \
		DEPS_GROUPS=none pymod || exit 1
	for p in "${pythons[@]}"; do
		tag=${p%%=*}
		PYTHONPATH=$O/chroot/release/py/$tag "$TOP/scripts/suite.sh" \
			"check-py-chroot-${tag#sid-}" "${p#*=}" "$TOP/selftests/py/run.py" || status=1
	done
	;;
pip)
	for p in "${pythons[@]}"; do
		tag=${p%%=*}
		"$TOP/scripts/suite.sh" "check-pip-chroot-${tag#sid-}" \
			"$TOP/selftests/install/pip.sh" "${p#*=}" "$O/pip/chroot-${tag#sid-}" || status=1
	done
	;;
*)
	echo "usage: run.sh py|pip" >&2
	exit 2
	;;
esac
exit $status
