# SPDX-License-Identifier: GPL-2.0
"""Run the pyshm_workers tests (stdlib unittest) and report them as TAP.

    python run.py [-k SUBSTRING] [-t TIMEOUT] [test_module ...]

Prints one TAP line per test and ends with the kselftest totals line
``# Totals: pass:N fail:N xfail:0 xpass:0 skip:N error:N`` that
``make check`` sums. A test that hangs past TIMEOUT seconds dumps every
thread's traceback and ends the run (the missing totals count as a
failure).
"""

import argparse
import faulthandler
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class TapResult(unittest.TestResult):
    def __init__(self, timeout):
        super().__init__()
        self.n = 0
        self.passed = self.failed = self.skipped = self.errored = 0
        self.timeout = timeout
        self.t0 = 0.0

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()
        faulthandler.dump_traceback_later(self.timeout, exit=True)

    def stopTest(self, test):
        faulthandler.cancel_dump_traceback_later()
        super().stopTest(test)

    def _line(self, ok, test, extra=""):
        self.n += 1
        took = time.monotonic() - self.t0
        print(f"{'ok' if ok else 'not ok'} {self.n} {test.id()}{extra}"
              f"  ({took:.2f}s)", flush=True)

    def addSuccess(self, test):
        self.passed += 1
        self._line(True, test)

    def addSkip(self, test, reason):
        self.skipped += 1
        self._line(True, test, f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        self.passed += 1
        self._line(True, test, " # expected failure")

    def addUnexpectedSuccess(self, test):
        self.failed += 1
        self._line(False, test, " # unexpected success")

    def _report(self, test, err):
        text = self._exc_info_to_string(err, test)
        for line in text.rstrip().splitlines():
            print("#   " + line)

    def addFailure(self, test, err):
        self.failed += 1
        self._line(False, test)
        self._report(test, err)

    def addError(self, test, err):
        self.errored += 1
        self._line(False, test, " # error")
        self._report(test, err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            if issubclass(err[0], test.failureException):
                self.addFailure(subtest, err)
            else:
                self.addError(subtest, err)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose id contains this")
    ap.add_argument("-t", type=float, default=float(os.environ.get("PYSHM_TEST_TIMEOUT", 300)))
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()

    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.modules:
        suite = loader.loadTestsFromNames([m.removesuffix(".py") for m in args.modules])
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = [t for t in iter_tests(suite)
             if not args.k or any(k in t.id() for k in args.k)]

    import pyshm_workers
    print(f"# python {sys.version.split()[0]}, pyshm_workers from "
          f"{os.path.dirname(pyshm_workers.__file__)}, backend "
          f"{pyshm_workers.backend()}", flush=True)
    print(f"1..{len(tests)}", flush=True)
    result = TapResult(args.t)
    for t in tests:
        t(result)
    print(f"# Totals: pass:{result.passed} fail:{result.failed} xfail:0 xpass:0 "
          f"skip:{result.skipped} error:{result.errored}", flush=True)
    return 1 if result.failed or result.errored else 0


if __name__ == "__main__":
    sys.exit(main())
