# SPDX-License-Identifier: MIT
"""The version of pyshm_workers: read by the build backend (pyproject.toml),
by the Makefile (libpyshm.pc) and at run time as pyshm_workers.__version__."""

__version__ = "1.0.0"
