#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# pip.sh PYTHON WORKDIR: install pyshm-workers as a user does, offline, with
# the backend the system has (--no-build-isolation), and check the result
# from a folder outside the source tree: `pip install .` into a fresh venv,
# then `pip wheel .` and that wheel into a second one. TAP on stdout.
#
# TOP is the source tree; it is only read (the chroot binds it read-only).
set -u
py=$1
work=$2
: "${TOP:?}"
here=$TOP/selftests/install
rm -rf "$work"
mkdir -p "$work/elsewhere"

# pip reads nothing but what is set here: no index, no config file, no
# PIP_* of the caller's environment.
for v in $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset PYTHONPATH
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1
# setup.py: warnings are errors, and setuptools builds in $work.
export PYSHM_WERROR=1 PYSHM_BUILD_DIR=$work/setuptools

n=0 pass=0 fail=0 skip=0
out=$work/out
ok() { # NAME CMD...: one test
	local name=$1 rc
	shift
	n=$((n + 1))
	"$@" >"$out" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		echo "ok $n $name"
		grep -a '^# ' "$out"
	elif [ $rc = 4 ]; then
		skip=$((skip + 1))
		echo "ok $n $name # SKIP $(tail -n1 "$out")"
	else
		fail=$((fail + 1))
		echo "not ok $n $name"
		tail -n 40 "$out" | sed 's/^/#   /'
	fi
}

# The checks of pip_check.py, run from an unrelated folder.
installed_checks() { # VENV LABEL
	local venv=$1 label=$2 c
	for c in installed metadata typed cli process interpreter; do
		ok "${label}_$c" sh -c 'cd "$1" && "$2/bin/python" "$3/pip_check.py" "$4"' \
			sh "$work/elsewhere" "$venv" "$here" "$c"
	done
}

# The source tree gets no build folder, egg-info or wheel of setuptools.
tree_is_clean() {
	local found
	found=$(find "$TOP" \( -path "$TOP/.git" -o -path "$TOP/build" -o -path "${O:-$TOP/build}" \) -prune \
		-o \( -name '*.egg-info' -o -name '*.whl' -o -name build -type d \) -print)
	[ -z "$found" ] || { echo "left in the source tree: $found"; return 1; }
}

# The wheel: the extension, the Python files (python -m pyshm_workers
# too), py.typed and stubs, the license files; no C.
wheel_contents() {
	local whl=$1
	"$py" - "$whl" "$TOP/pymod/pyshm_workers" <<-'EOF'
	import os, sys, zipfile
	names = zipfile.ZipFile(sys.argv[1]).namelist()
	want = {"pyshm_workers/" + f for f in os.listdir(sys.argv[2])
	        if f.endswith((".py", ".pyi")) or f == "py.typed"}
	lic = {"LICENSE", "MIT", "GPL-2.0", "Linux-syscall-note"}
	want |= {n for n in names if ".dist-info/" in n and n.rsplit("/", 1)[1] in lic}
	want |= {"pyshm_workers/__main__.py", "pyshm_workers/_cli.py"}
	if len([n for n in want if ".dist-info/" in n]) != len(lic):
	    sys.exit(f"license files: {sorted(n for n in names if '.dist-info/' in n)}")
	missing = want - set(names)
	core = [n for n in names if n.startswith("pyshm_workers/_core.") and n.endswith(".so")]
	bad = [n for n in names if n.endswith((".c", ".h", ".o"))]
	if missing or len(core) != 1 or bad:
	    sys.exit(f"missing {sorted(missing)}, extension {core}, sources {bad}")
	print("# wheel:", " ".join(sorted(n for n in names if n.startswith("pyshm_workers/"))))
	EOF
}

# libpyshm is compiled into the extension: it needs liburing, not libpyshm.
extension_links() {
	local so needed
	so=$("$1/bin/python" -c 'import pyshm_workers._core as c; print(c.__file__)') || return 1
	needed=$(objdump -p "$so" | awk '$1 == "NEEDED" { print $2 }')
	echo "# NEEDED: $(echo $needed)"
	case " $(echo $needed) " in *" libpyshm"*) echo "links libpyshm dynamically"; return 1 ;; esac
	case " $(echo $needed) " in *" liburing.so"*) ;; *) echo "does not link liburing"; return 1 ;; esac
}

echo "# pip.sh: $("$py" --version 2>&1) ($py), setuptools $("$py" -c 'import setuptools; print(setuptools.__version__)' 2>&1)"
echo "1..21"
ok venv_is_made "$py" -m venv --system-site-packages "$work/venv"
ok pip_install_dot sh -c 'cd "$1" && "$2/bin/python" -m pip install --no-build-isolation --no-index .' \
	sh "$TOP" "$work/venv"
installed_checks "$work/venv" install
ok install_extension_has_libpyshm_built_in extension_links "$work/venv"
ok pip_wheel_dot sh -c 'cd "$1" && "$2/bin/python" -m pip wheel --no-build-isolation --no-index --no-deps -w "$3" .' \
	sh "$TOP" "$work/venv" "$work/wheels"
whl=$(ls "$work"/wheels/pyshm_workers-*.whl 2>/dev/null | head -n1)
ok wheel_holds_the_package_stubs_and_extension wheel_contents "${whl:-none}"
ok wheel_venv_is_made "$py" -m venv --system-site-packages "$work/venv-wheel"
ok pip_install_wheel "$work/venv-wheel/bin/python" -m pip install --no-index "${whl:-none}"
installed_checks "$work/venv-wheel" wheel
ok source_tree_is_left_clean tree_is_clean
# PEP 561: a type checker finds the stubs of the installed package.
if command -v mypy >/dev/null; then
	ok mypy_strict_finds_the_installed_stubs sh -c 'cd "$1" && mypy --strict --no-incremental \
		--python-executable "$2/bin/python" --cache-dir /dev/null "$3"/examples/*.py' \
		sh "$work/elsewhere" "$work/venv-wheel" "$TOP"
else
	ok mypy_strict_finds_the_installed_stubs sh -c 'echo "no mypy here"; exit 4'
fi
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
[ $fail = 0 ]
