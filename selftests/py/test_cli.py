# SPDX-License-Identifier: GPL-2.0
"""python -m pyshm_workers: --version, doctor (exit status, what it
reports) and stats against a running program with known regions, bytes in
flight and workers (cli_targets.py)."""

import json
import os
import subprocess
import sys
import threading
import unittest

import pyshm_workers as pw

import cli_targets
import support

HERE = os.path.dirname(os.path.abspath(__file__))
# The package under test and cli_targets, for programs started elsewhere.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(os.path.abspath(pw.__file__))), HERE]))


def cli(*args, env=None, check=True):
    """Run python -m pyshm_workers ARGS from an unrelated folder."""
    r = subprocess.run([sys.executable, "-m", "pyshm_workers", *args], cwd="/",
                       capture_output=True, text=True, timeout=support.TIMEOUT * 2,
                       env=dict(ENV, **(env or {})))
    if check and r.returncode != 0:
        raise AssertionError(f"exit status {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


class TestVersion(unittest.TestCase):
    def test_version_matches_the_package(self):
        r = cli("--version")
        self.assertEqual(r.stdout, f"pyshm_workers {pw.__version__}\n")

    def test_no_command_prints_usage_and_fails(self):
        r = cli(check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("doctor", r.stdout)
        self.assertIn("stats", r.stdout)


class TestDoctor(unittest.TestCase):
    def test_doctor_passes_here_and_names_the_backend(self):
        r = cli("doctor")
        self.assertIn("region backend", r.stdout)
        line = next(s for s in r.stdout.splitlines() if "region backend" in s)
        self.assertIn(pw.backend(), line)
        wake = next(s for s in r.stdout.splitlines() if " wakeups " in s)
        self.assertIn("io_uring" if pw._core.wake_path() == "uring" else "futex", wake)
        self.assertIn("everything pyshm needs is here", r.stdout)

    def test_doctor_json_has_every_check(self):
        rep = json.loads(cli("doctor", "--json", "--no-workers").stdout)
        self.assertTrue(rep["ok"])
        self.assertEqual(rep["version"], pw.__version__)
        topics = {c["topic"] for c in rep["checks"]}
        for topic in ("python", "interpreter mode", "region backend", "/dev/pyshm",
                      "wakeups", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "module parameters",
                      "environment"):
            self.assertIn(topic, topics)
        self.assertTrue(all(c["status"] in ("ok", "info", "warn") for c in rep["checks"]))

    def test_doctor_starts_a_worker_in_each_mode(self):
        rep = json.loads(cli("doctor", "--json").stdout)
        modes = {c["topic"]: c["status"] for c in rep["checks"] if c["topic"].endswith(" worker")}
        want = {"process worker": "ok"}
        if support.HAVE_SUBINTERPRETERS:
            want["interpreter worker"] = "ok"
        self.assertEqual(modes, want)

    def test_doctor_fails_when_a_forced_wakeup_path_is_unknown(self):
        r = cli("doctor", "--no-workers", env={"PYSHM_WAKE": "carrier-pigeon"}, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^  FAIL  wakeups +none: PYSHM_WAKE='carrier-pigeon'")
        self.assertIn("-> unset PYSHM_WAKE", r.stdout)

    @unittest.skipIf(os.path.exists("/dev/pyshm"), "/dev/pyshm is here")
    def test_doctor_fails_when_the_kmod_backend_is_forced_without_the_module(self):
        r = cli("doctor", "--no-workers", env={"PYSHM_BACKEND": "kmod"}, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^  FAIL  region backend +none: PYSHM_BACKEND='kmod'")

    def test_doctor_flags_unknown_pyshm_variables(self):
        r = cli("doctor", "--json", "--no-workers", env={"PYSHM_WAEK": "futex"})
        env = [c for c in json.loads(r.stdout)["checks"] if c["topic"] == "environment"]
        self.assertEqual([c["status"] for c in env if "PYSHM_WAEK" in c["text"]], ["warn"])


class TestWorkerName(unittest.TestCase):
    def comm_after(self, name):
        """The comm of a thread that named itself name."""
        out = []

        def run():
            pw._core._set_worker_name(name)
            with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
                out.append(f.read().rstrip("\n"))
        t = threading.Thread(target=run)
        t.start()
        t.join()
        return out[0]

    def test_name_is_prefixed_and_cut_to_fit_a_comm(self):
        self.assertEqual(self.comm_after("Worker-3"), "pw:Worker-3")
        self.assertEqual(self.comm_after("a-very-long-worker-name"), "pw:a-very-long-")
        # Cut at a character, never inside one: "é" is two bytes.
        self.assertEqual(self.comm_after("Wörker-éééé"), "pw:Wörker-éé")
        self.assertEqual(self.comm_after("abcdefghijké"), "pw:abcdefghijk")

    def test_name_must_be_a_str(self):
        with self.assertRaises(TypeError):
            pw._core._set_worker_name(b"w")


class TestStats(unittest.TestCase):
    """stats against cli_targets.main(), a program holding known things."""

    def setUp(self):
        self.prog = subprocess.Popen(
            [sys.executable, "-c", "import cli_targets; cli_targets.main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV, cwd="/")
        self.addCleanup(self.end)
        line = self.prog.stdout.readline()
        self.assertTrue(line, "the program did not start")
        self.made = json.loads(line)

    def end(self):
        self.prog.stdin.close()
        try:
            self.assertEqual(self.prog.wait(support.TIMEOUT), 0)
        finally:
            if self.prog.poll() is None:
                self.prog.kill()
                self.prog.wait()
            self.prog.stdout.close()

    def report(self):
        return json.loads(cli("stats", "--json").stdout)

    def test_stats_lists_the_programs_buffers_with_sizes_and_holders(self):
        rep = self.report()
        pid, wpids = self.made["pid"], self.made["workers"]
        mine = [r for r in rep["regions"] if pid in r["pids"]]
        if self.made["backend"] == "memfd":
            buffers = {r["size"]: r for r in mine if r["kind"] == "buffer"}
            self.assertLessEqual(set(cli_targets.SIZES), set(buffers))
            shared = buffers[cli_targets.SIZES[0]]
            self.assertEqual(buffers[cli_targets.SIZES[1]]["pids"], [pid])
        else:
            # Regions from /dev/pyshm: sizes as the module lists them.
            shared = next(r for r in mine if r["size"] >= cli_targets.SIZES[0]
                          and set(wpids) <= set(r["pids"]))
        # The program and both workers hold the first buffer.
        self.assertEqual(shared["pids"], sorted([pid] + wpids))
        self.assertEqual(shared["holders"], 3)
        self.assertEqual(shared["owner"], os.getuid())
        self.assertGreaterEqual(rep["totals"]["regions"], len(mine))
        self.assertGreaterEqual(rep["totals"]["bytes"], sum(cli_targets.SIZES))
        procs = {p["pid"]: p for p in rep["processes"]}
        self.assertGreaterEqual(procs[pid]["regions"], 4)

    def test_stats_reads_bytes_in_flight_on_a_channel(self):
        if self.made["backend"] != "memfd":
            self.skipTest("the module's region files cannot be reopened to read rings")
        rep = self.report()
        pid = self.made["pid"]
        # The channel whose two ends are in the program: one small message
        # in its ring, one large one out of line.
        chans = [r for r in rep["regions"] if r["kind"] == "channel" and
                 [e["pid"] for e in r["channel"]["ends"]] == [pid, pid]]
        self.assertEqual(len(chans), 1, chans)
        ch = chans[0]
        self.assertEqual(ch["large_messages"], 1)
        self.assertGreater(ch["inflight_bytes"], cli_targets.SMALL + cli_targets.LARGE)
        self.assertLess(ch["inflight_bytes"], cli_targets.SMALL + cli_targets.LARGE + 4096)
        sent, back = ch["channel"]["directions"]
        self.assertGreater(sent["ring_bytes"], cli_targets.SMALL)
        self.assertEqual(back["ring_bytes"], 0)
        self.assertGreaterEqual(rep["totals"]["inflight_bytes"], ch["inflight_bytes"])
        # The workers' links: channels from the program to each worker.
        for wpid in self.made["workers"]:
            self.assertTrue(any([e["pid"] for e in r["channel"]["ends"]] == [pid, wpid]
                                for r in rep["regions"] if r["kind"] == "channel"), wpid)

    def test_stats_finds_workers_named_or_not(self):
        rep = self.report()
        pid, wpids, tid = self.made["pid"], self.made["workers"], self.made["tid"]
        found = {(w["pid"], w["tid"]): w for w in rep["workers"]}
        plain, named = (found[(p, p)] for p in wpids)
        for w in (plain, named):
            self.assertEqual(w["mode"], "process")
            self.assertEqual(w["parent"], pid)
        # Not named yet (None), or by its name once workers name themselves.
        self.assertTrue(plain["name"] is None or plain["name"].startswith("Worker-"), plain)
        self.assertEqual(named["name"], "named-proc")
        thread = found[(pid, tid)]
        self.assertEqual((thread["mode"], thread["name"]), ("interpreter", "named-thread"))

    def test_stats_table_shows_the_same(self):
        text = cli("stats").stdout
        pid = self.made["pid"]
        self.assertRegex(text, r"^pyshm_workers \S+: \d+ regions, ")
        for header in ("regions", "processes", "workers"):
            self.assertRegex(text, rf"(?m)^{header}$")
        tid = self.made["tid"]
        self.assertRegex(text, rf"(?m)^  {pid} +{tid} +named-thread +interpreter +{pid}$")
        for wpid in self.made["workers"]:
            self.assertRegex(text, rf"(?m)^  {wpid} +{wpid} +\S+ +process +{pid}$")
        if self.made["backend"] == "memfd":
            self.assertRegex(text, rf"(?m) channel .* {pid} <-> {pid}$")


if __name__ == "__main__":
    unittest.main()
