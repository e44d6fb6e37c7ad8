# SPDX-License-Identifier: GPL-2.0
"""Checks of an installed pyshm_workers, run by pip.sh from a folder that is
not the source tree, with the Python of the venv under test:

    python pip_check.py installed|metadata|typed|cli|process|interpreter

Exit status 0 when the check holds, 1 when not (the reasons on stdout), 4
when it does not apply to this Python (the reason on stdout).
"""

import importlib.metadata
import os
import sys

import pyshm_workers as pw

SKIP = 4


def fail(why):
    print(why)
    sys.exit(1)


def check_installed():
    """The package and its extension come from the venv, nowhere else."""
    for path in (pw.__file__, pw._core.__file__):
        if not os.path.realpath(path).startswith(os.path.realpath(sys.prefix) + os.sep):
            fail(f"{path} is not under the venv {sys.prefix}")
    if sys.prefix == sys.base_prefix:
        fail("not running in a venv")


def check_metadata():
    """The distribution's metadata, and the version it shares with
    pyshm_workers.__version__."""
    version = importlib.metadata.version("pyshm-workers")
    if version != pw.__version__:
        fail(f"metadata says {version}, pyshm_workers.__version__ {pw.__version__}")
    meta = importlib.metadata.metadata("pyshm-workers")
    if meta["Name"] != "pyshm-workers":
        fail(f"Name: {meta['Name']}")
    if meta["Requires-Python"] != ">=3.11":
        fail(f"Requires-Python: {meta['Requires-Python']}")
    if "MIT" not in (meta.get("License-Expression"), meta.get("License")):
        fail(f"License: {meta.get('License')}, License-Expression: "
             f"{meta.get('License-Expression')}")
    extras = set(meta.get_all("Provides-Extra") or ())
    if not {"numpy", "cloudpickle", "dask"} <= extras:
        fail(f"Provides-Extra: {sorted(extras)}")
    # The top LICENSE (which license applies where) and the texts it names,
    # in the metadata and installed with it (setuptools 66 keeps them at the
    # top of .dist-info, later ones under licenses/).
    names = {os.path.basename(f) for f in meta.get_all("License-File") or ()}
    want = {"LICENSE", "MIT", "GPL-2.0", "Linux-syscall-note"}
    if not want <= names:
        fail(f"License-File: {meta.get_all('License-File')}")
    files = {f.name: f for f in importlib.metadata.files("pyshm-workers")
             if ".dist-info" in str(f)}
    if not want <= set(files) or "pymod/" not in files["LICENSE"].read_text():
        fail(f"license files installed: {sorted(set(files) & want)}")
    print(f"# pyshm-workers {version}")


def check_cli():
    """python -m pyshm_workers from the install: --version, and doctor
    finds nothing missing."""
    import subprocess
    run = [sys.executable, "-m", "pyshm_workers"]
    out = subprocess.run(run + ["--version"], capture_output=True, text=True)
    if out.stdout != f"pyshm_workers {pw.__version__}\n":
        fail(f"--version: {out.stdout!r} {out.stderr}")
    out = subprocess.run(run + ["doctor", "--no-workers"], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"doctor: exit status {out.returncode}\n{out.stdout}{out.stderr}")


def check_typed():
    """PEP 561: py.typed and the stubs sit next to the modules."""
    here = os.path.dirname(pw.__file__)
    for name in ("py.typed", "__init__.pyi", "_core.pyi"):
        if not os.path.isfile(os.path.join(here, name)):
            fail(f"no {name} in {here}")


def echo_worker(sab):
    """In the worker: add 1 to the shared counter, answer each message."""
    pw.Int32Array(sab).add(0, 1)
    for msg in pw.parent:
        pw.parent.post_message(("echo", msg, pw.in_worker()))


def check_worker(mode):
    if mode == "interpreter" and sys.version_info < (3, 12):
        print(f"interpreter mode needs Python 3.12+ (this is {sys.version.split()[0]})")
        sys.exit(SKIP)
    sab = pw.SharedArrayBuffer(4)
    with pw.Worker(echo_worker, args=(sab,), mode=mode) as w:
        if w.mode != mode:
            fail(f"asked for mode {mode}, got {w.mode}")
        w.post_message({"n": [1, 2.5, "three"]})
        got = w.recv(timeout=60)
    if got != ("echo", {"n": [1, 2.5, "three"]}, True):
        fail(f"the worker answered {got!r}")
    if w.exit_code != 0:
        fail(f"exit code {w.exit_code}")
    if pw.Int32Array(sab)[0] != 1:
        fail("the worker's write to the SharedArrayBuffer is not seen")


def main():
    what = sys.argv[1]
    if what in ("process", "interpreter"):
        check_worker(what)
    else:
        globals()["check_" + what]()


if __name__ == "__main__":
    main()
