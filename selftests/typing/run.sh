#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh: the typing checks of check-typing (typing.mk), as TAP. Needs TOP,
# O, and PYTHONPATH naming the package as built for Debian's python3.
set -u
: "${TOP:?}" "${O:?}"
here=$TOP/selftests/typing
work=$O/typing
mkdir -p "$work"
export MYPYPATH=$TOP/pymod
# mypy and stubtest write their cache there, not in the source tree.
export MYPY_CACHE_DIR=$work/cache
cd "$work" || exit 1

n=0 pass=0 fail=0
ok() { # NAME CMD...: one test
	local name=$1
	shift
	n=$((n + 1))
	if "$@" >"$work/out" 2>&1; then
		pass=$((pass + 1))
		echo "ok $n $name"
	else
		fail=$((fail + 1))
		echo "not ok $n $name"
		tail -n 60 "$work/out" | sed 's/^/#   /'
	fi
}

examples=("$TOP"/examples/*.py)
echo "# $(mypy --version)"
echo "1..$((${#examples[@]} + 3))"
for f in "${examples[@]}"; do
	ok "mypy_strict_passes_on_examples/${f##*/}" \
		mypy --strict "$f"
done
# The branches for 3.12+ (the buffer protocol of PEP 688) are checked too.
for v in 3.11 3.12; do
	ok "stubs_pass_mypy_strict_for_python_$v" env -u MYPYPATH mypy --strict \
		--python-version "$v" \
		"$TOP"/pymod/pyshm_workers/__init__.pyi "$TOP"/pymod/pyshm_workers/_core.pyi \
		"$TOP"/pymod/pyshm_workers/dask.pyi
done
ok stubs_match_the_runtime /usr/bin/python3 -m mypy.stubtest --mypy-config-file "$here/mypy.ini" \
	--allowlist "$here/stubtest-allowlist.txt" pyshm_workers
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ $fail = 0 ]
