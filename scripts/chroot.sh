#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# chroot.sh: a Debian unstable (sid) chroot with Python 3.14 and 3.15, built
# once per machine and kept outside the clone, so `make check` can build and
# test pyshm on the Pythons users run now.
#
#   chroot.sh build                 build the chroot unless cached; print its folder
#   chroot.sh path                  print the folder it is (or would be) in
#   chroot.sh run [-b DIR]... [-r DIR]... [-w DIR] [--] CMD [ARG...]
#                                   run CMD in it (building it first if needed),
#                                   with each -b DIR bound read-write and each
#                                   -r DIR read-only at its own path, in the
#                                   folder -w DIR (default /)
#
# The chroot lives in $PYSHM_CHROOT_CACHE (default /var/cache/pyshm/chroot)
# under a name keyed by a hash of what it installs: changing PKGS builds a
# new one (about two minutes, 800 MB) and removes the old. How it is built
# and run, and why nothing stays mounted: scripts/lib/sid-chroot.sh.
set -euo pipefail

# What the chroot holds. Changing this list (or RECIPE, for a change in how
# it is built) makes a new chroot.
PKGS="ca-certificates gcc make libc6-dev pkgconf liburing-dev
python3.14-dev python3.15-dev python3.14-venv python3.15-venv
python3-numpy python3-cloudpickle python3-distributed python3-dask
python3-pytest python3-setuptools python3-pip"
SUITE=sid
RECIPE=1

CACHE=${PYSHM_CHROOT_CACHE:-/var/cache/pyshm/chroot}

NAME=chroot.sh
INCLUDE=ca-certificates
INSTALL_ENV=
STAMP=pyshm-chroot
USAGE_END=13

. "$(dirname "$0")/lib/sid-chroot.sh"
sid_chroot_main "$@"
