# SPDX-License-Identifier: MIT
"""The C part of the pyshm-workers distribution, for setuptools (the PEP 517
backend named in pyproject.toml, which holds everything else).

The extension pyshm_workers._core is pymod/*.c with libpyshm's sources
(lib/*.c) compiled in: the wheel needs no libpyshm installed, only liburing.
Documentation/install.rst says why setuptools.

Environment:
  PYSHM_WERROR=1     warnings are errors (make check sets it)
  PYSHM_BUILD_DIR    where setuptools builds (default build/setuptools),
                     so nothing lands next to the sources
"""

import glob
import os

import setuptools
from setuptools import Extension, setup

# Relative paths: setuptools refuses absolute ones in sources, and a PEP 517
# frontend runs this in the source folder.
SOURCES = sorted(glob.glob("pymod/*.c")) + sorted(glob.glob("lib/*.c"))
HEADERS = sorted(glob.glob("pymod/*.h") + glob.glob("lib/*.h")
                 + glob.glob("include/pyshm/*.h")) + ["include/uapi/linux/pyshm.h"]

# The flags of the Makefile's build (pymod/pymod.mk): Python's callback
# signatures fix parameters we don't use, and its sentinel entries leave
# fields out, as CPython's own build allows.
CFLAGS = [
    "-std=gnu11", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-pthread",
    "-fvisibility=hidden", "-fno-strict-aliasing",
    "-Wno-unused-parameter", "-Wno-missing-field-initializers",
]
if os.environ.get("PYSHM_WERROR", "") not in ("", "0", "n", "no"):
    CFLAGS.append("-Werror")

BUILD_DIR = os.environ.get("PYSHM_BUILD_DIR") or os.path.join("build", "setuptools")
os.makedirs(BUILD_DIR, exist_ok=True)

# Everything the wheel compiles in is MIT (lib/, pymod/, include/pyshm/;
# the UAPI header is dual GPL-2.0 WITH Linux-syscall-note OR MIT); the
# kernel module, which the wheel does not hold, is GPL-2.0. Setuptools 77
# and later take the SPDX expression of PEP 639.
LICENSE = "MIT"
if int(setuptools.__version__.split(".")[0]) >= 77:
    LICENSE_META = {"license_expression": LICENSE}
else:
    LICENSE_META = {"license": LICENSE}
# The top LICENSE says which license applies where; the texts it names go
# with it into the sdist and the wheel's metadata. project.license-files
# needs setuptools 77, tool.setuptools.license-files is deprecated there, and
# setuptools 66 replaces a license_files given to setup() with its defaults
# when it reads pyproject.toml: they are set again once it has.
LICENSE_FILES = [
    "LICENSE", "LICENSES/preferred/MIT", "LICENSES/preferred/GPL-2.0",
    "LICENSES/exceptions/Linux-syscall-note",
]


class Distribution(setuptools.Distribution):
    def parse_config_files(self, *args, **kwargs):
        super().parse_config_files(*args, **kwargs)
        self.metadata.license_files = list(LICENSE_FILES)
        self._finalize_license_files()

setup(
    **LICENSE_META,
    distclass=Distribution,
    ext_modules=[
        Extension(
            "pyshm_workers._core",
            sources=SOURCES,
            depends=HEADERS,
            include_dirs=["include", "include/uapi"],
            extra_compile_args=CFLAGS,
            extra_link_args=["-pthread"],
            libraries=["uring"],
        ),
    ],
    options={
        "build": {"build_base": os.path.join(BUILD_DIR, "build")},
        "egg_info": {"egg_base": BUILD_DIR},
    },
)
