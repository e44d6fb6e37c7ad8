#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# style.sh: checkpatch.pl (from Debian's linux-source tarball, extracted once
# into $O/checkpatch like the kselftest headers) over the kernel module and
# the UAPI header. Exits non-zero on any error or warning.
set -eu
TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
O=${O:-$TOP/build}
CP=$O/checkpatch

if [ ! -x "$CP/scripts/checkpatch.pl" ]; then
	tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)
	if [ -z "$tarball" ]; then
		echo "style: no /usr/src/linux-source-*.tar.xz (make deps)" >&2
		exit 1
	fi
	mkdir -p "$CP"
	tar -xJf "$tarball" -C "$CP" --strip-components=1 --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
fi

cd "$TOP"
files="$(ls kmod/*.c kmod/*.h | grep -v '^kmod/compat\.h$') include/uapi/linux/pyshm.h"
# --no-tree: we are not a kernel tree; FILE_PATH_CHANGES and SPDX placement
# checks are for in-tree patches.
"$CP/scripts/checkpatch.pl" --no-tree --strict --terse --show-types \
	--ignore FILE_PATH_CHANGES \
	-f $files
# The one file that compares LINUX_VERSION_CODE, which is its purpose (an
# out-of-tree module builds for several kernels).
"$CP/scripts/checkpatch.pl" --no-tree --strict --terse --show-types \
	--ignore FILE_PATH_CHANGES,LINUX_VERSION_CODE,CONSTANT_COMPARISON \
	-f kmod/compat.h
echo "style: checkpatch clean ($(($(echo $files | wc -w) + 1)) files)"
