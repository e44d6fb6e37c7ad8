# SPDX-License-Identifier: MIT
"""python -m pyshm_workers [--version | doctor | stats [--json]]: see
pyshm_workers._cli and Documentation/cli.rst."""

from pyshm_workers._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
