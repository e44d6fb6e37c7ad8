# SPDX-License-Identifier: MIT
"""python -m pyshm_workers: --version, doctor (what this machine lets pyshm
use, and what to do about what is missing) and stats (what pyshm holds:
regions, bytes in flight, workers). Documentation/cli.rst describes both."""

import argparse
import errno
import json
import os
import resource
import struct
import sys

from . import __version__, _core

# -- doctor -----------------------------------------------------------------

# The environment variables pyshm reads (Documentation/python-api.rst).
ENVIRONMENT = {
    "PYSHM_BACKEND": "where regions come from: kmod (/dev/pyshm) or memfd",
    "PYSHM_WAKE": "how sleeping receivers are woken: uring or futex",
    "PYSHM_SPIN_NS": "how long a receiver polls before it sleeps (default 50000 ns)",
    "PYSHM_MAX_INFLIGHT_BYTES": "bytes large messages may hold in flight per direction "
                                "(default 64 MiB)",
    "PYSHM_SPARE_INTERPRETER": "0: make no interpreter ahead of time",
    "PYSHM_PROCESS_START": "template (default: process workers forked from a "
                           "template process) or spawn (a fresh Python each)",
    "PYSHM_WAIT_ASYNC": "how wait_async() waits: uring or thread",
}

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"


def read(path, default=None):
    """A small /proc or /sys file, stripped; default when unreadable."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def strerror(err):
    return f"{errno.errorcode.get(err, err)}: {os.strerror(err)}"


def size_text(n):
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Doctor:
    """The checks: rows of (status, topic, what was found, what to do)."""

    def __init__(self):
        self.rows = []
        self.probe = _core._probe()

    def add(self, status, topic, text, hint=None):
        self.rows.append({"status": status, "topic": topic, "text": text, "hint": hint})

    def run(self, workers=True):
        self.python()
        if workers:
            self.workers()
        self.regions()
        self.wakeups()
        self.limits()
        self.environment()
        return self.rows

    def python(self):
        import platform
        impl = platform.python_implementation()
        ok = impl == "CPython" and sys.version_info >= (3, 11)
        self.add(OK if ok else FAIL, "python",
                 f"{impl} {platform.python_version()} ({sys.executable})",
                 None if ok else "pyshm_workers needs CPython 3.11 or later")
        self.add(OK, "pyshm_workers",
                 f"{__version__}, clone wire format {_core._WIRE_VERSION}, "
                 f"kernel ABI {'.'.join(map(str, self.probe['uapi_version']))} "
                 f"({os.path.dirname(_core.__file__)})")
        from ._worker import resolve_mode
        try:
            resolve_mode("interpreter")
        except ValueError:
            self.add(INFO, "interpreter mode",
                     f"not available: Python {sys.version_info[0]}.{sys.version_info[1]} "
                     "has no own-GIL subinterpreters; workers run as processes "
                     '(mode="auto" picks process)',
                     "use Python 3.12 or later for interpreter-mode workers")
        else:
            self.add(OK, "interpreter mode",
                     'supported (own-GIL subinterpreters); mode="auto" uses it')
        gil = getattr(sys, "_is_gil_enabled", None)
        if gil is not None and not gil():
            self.add(INFO, "free threading",
                     "this Python runs without a GIL; workers still isolate their objects")

    def workers(self):
        """Start a worker in each mode this Python has, and talk to it."""
        import time

        from ._worker import Worker
        modes = ["process"]
        if sys.version_info >= (3, 12):
            modes.insert(0, "interpreter")
        for mode in modes:
            t0 = time.monotonic()
            try:
                with Worker(_echo, mode=mode, worker_data="ping") as w:
                    reply = w.recv(timeout=60)
            except Exception as exc:
                self.add(FAIL, f"{mode} worker", f"failed: {type(exc).__name__}: {exc}",
                         "see the traceback above; report it if the cause is not clear")
                continue
            took = (time.monotonic() - t0) * 1000
            if reply == "ping" and w.exit_code == 0:
                self.add(OK, f"{mode} worker", f"started, answered and ended in {took:.0f} ms")
            else:
                self.add(FAIL, f"{mode} worker",
                         f"answered {reply!r}, exit code {w.exit_code}")

    def regions(self):
        p = self.probe
        forced = os.environ.get("PYSHM_BACKEND")
        if isinstance(p["backend"], int):
            self.add(FAIL, "region backend",
                     f"none: PYSHM_BACKEND={forced!r} ({strerror(-p['backend'])})",
                     "unset PYSHM_BACKEND, or set it to memfd, or load the module "
                     "(Documentation/install.rst)")
        else:
            why = f"PYSHM_BACKEND={forced}" if forced else (
                "/dev/pyshm opens" if p["backend"] == "kmod" else "/dev/pyshm does not open")
            self.add(OK, "region backend", f"{p['backend']} ({why})")
        if p["kmod"] == 0:
            have, want = p["kmod_version"], p["uapi_version"]
            if have[0] != want[0]:
                self.add(FAIL, "/dev/pyshm",
                         f"the loaded module speaks ABI {have[0]}.{have[1]}, this build "
                         f"{want[0]}.{want[1]}",
                         "load the module built from the same sources "
                         "(make modules_install, then rmmod pyshm; modprobe pyshm)")
            else:
                self.add(OK, "/dev/pyshm", f"usable, module ABI {have[0]}.{have[1]}")
        elif p["kmod"] == errno.ENOENT:
            self.add(INFO, "/dev/pyshm",
                     "absent: the module is not loaded; regions are memfds, which "
                     "work everywhere (the module adds per-user limits, accounting "
                     "and a system-wide listing)",
                     "to use it: make modules_install && modprobe pyshm "
                     "(or insmod build/kmod/$(uname -r)/pyshm.ko from a source tree)")
        elif p["kmod"] in (errno.EACCES, errno.EPERM):
            self.add(WARN if p["backend"] != "kmod" else FAIL, "/dev/pyshm",
                     f"present but not usable by this user ({strerror(p['kmod'])})",
                     "the device is meant to be mode 0666: chmod 0666 /dev/pyshm, or "
                     'a udev rule KERNEL=="pyshm", MODE="0666"')
        else:
            self.add(WARN, "/dev/pyshm", f"does not open ({strerror(p['kmod'])})",
                     "check dmesg for pyshm messages")
        if p["memfd"] == 0:
            self.add(OK, "memfd_create", "usable")
        else:
            self.add(FAIL if p["backend"] == "memfd" else WARN, "memfd_create",
                     f"refused ({strerror(p['memfd'])})",
                     "a sandbox (seccomp) refuses memfd_create: allow it, or load the "
                     "module so regions come from /dev/pyshm")

    def wakeups(self):
        p = self.probe
        disabled = read("/proc/sys/kernel/io_uring_disabled")
        forced = os.environ.get("PYSHM_WAKE")
        if isinstance(p["wake"], int):
            self.add(FAIL, "wakeups", f"none: PYSHM_WAKE={forced!r} ({strerror(-p['wake'])})",
                     "unset PYSHM_WAKE (io_uring where usable, else futex), or set it "
                     "to futex")
        if p["uring"] == 0 and p["msg_ring"]:
            why = "IORING_OP_MSG_RING usable"
            uring_hint = None
        elif p["uring"] == 0:
            why = "this kernel's io_uring has no IORING_OP_MSG_RING (Linux 5.18+)"
            uring_hint = "a newer kernel gives io_uring wakeups"
        else:
            why, uring_hint = self.uring_refusal(p["uring"], disabled)
        if p["wake"] == "uring":
            self.add(OK, "wakeups", f"io_uring ({why})")
        elif p["wake"] == "futex":
            if forced:
                self.add(OK, "wakeups", f"futex (PYSHM_WAKE=futex; io_uring: {why})")
            else:
                self.add(INFO, "wakeups", f"futex, because {why}",
                         (uring_hint or "") + ("; " if uring_hint else "")
                         + "futex wakeups work everywhere, io_uring ones batch "
                         "their system calls")
        if disabled is not None:
            self.add(INFO, "kernel.io_uring_disabled", disabled)
        if p["futex_waitv"] == 0:
            self.add(OK, "futex_waitv", "usable (Int64Array.wait)")
        else:
            self.add(WARN, "futex_waitv", f"refused ({strerror(p['futex_waitv'])})",
                     "Int64Array.wait() needs Linux 5.16 or later; Int32Array.wait() "
                     "works")

    @staticmethod
    def uring_refusal(err, disabled):
        """(why io_uring was refused, what to do) for its errno."""
        if err == errno.ENOSYS:
            return ("the kernel has no io_uring (or a sandbox hides it: ENOSYS)",
                    "a kernel with CONFIG_IO_URING, or a seccomp profile that allows it")
        if err == errno.EPERM:
            group = read("/proc/sys/kernel/io_uring_group")
            if disabled == "2":
                return ("io_uring is disabled system-wide (kernel.io_uring_disabled=2)",
                        "sysctl kernel.io_uring_disabled=0 to allow it")
            if disabled == "1":
                return ("io_uring is limited to group "
                        f"{group} (kernel.io_uring_disabled=1)",
                        f"add this user to group {group}, or sysctl "
                        "kernel.io_uring_disabled=0")
            seccomp = next((line.split()[1] for line in
                            (read("/proc/self/status") or "").splitlines()
                            if line.startswith("Seccomp:")), "0")
            if seccomp != "0":
                return ("a seccomp filter refuses io_uring (container runtimes' "
                        "default profiles do)",
                        "allow io_uring_setup/io_uring_enter in the seccomp profile")
            return "io_uring_setup() was refused (EPERM)", None
        if err == errno.ENOMEM:
            return ("io_uring rings do not fit RLIMIT_MEMLOCK (kernels before 5.12 "
                    "charge them to it)", "raise the locked-memory limit (ulimit -l)")
        if err == errno.EMFILE:
            return "no file descriptor was left for a ring", "raise ulimit -n"
        return f"io_uring_setup() failed ({strerror(err)})", None

    def limits(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        text = f"soft {soft}, hard {hard}: a channel holds a few fds, and each large " \
               "message in flight one"
        if soft < 64:
            self.add(FAIL, "RLIMIT_NOFILE", text, "ulimit -n 1024 (or more) before starting")
        elif soft < 1024:
            self.add(WARN, "RLIMIT_NOFILE", text,
                     f"ulimit -n {min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096}"
                     " for many workers or channels")
        else:
            self.add(OK, "RLIMIT_NOFILE", text)
        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        fmt = (lambda v: "unlimited" if v == resource.RLIM_INFINITY else size_text(v))
        self.add(INFO, "RLIMIT_MEMLOCK", f"soft {fmt(soft)}, hard {fmt(hard)} "
                 "(io_uring rings count against it before Linux 5.12)")
        maps = read("/proc/sys/vm/max_map_count")
        if maps is not None:
            self.add(INFO, "vm.max_map_count", f"{maps} (each region a process maps is one)")
        mem = self.cgroup_memory()
        if mem is not None:
            self.add(INFO, "memory cgroup", f"memory.max {mem} (shared memory is charged "
                     "to the cgroup of whoever touches its pages)")
        params = "/sys/module/pyshm/parameters"
        try:
            names = sorted(os.listdir(params))
        except OSError:
            self.add(INFO, "module parameters", "the module is not loaded")
        else:
            self.add(INFO, "module parameters",
                     ", ".join(f"{n}={read(os.path.join(params, n), '?')}" for n in names),
                     "change with: echo VALUE > /sys/module/pyshm/parameters/NAME "
                     "(Documentation/userspace-api.rst)")
        if os.access("/sys/kernel/debug/pyshm/regions", os.R_OK):
            self.add(OK, "region listing", "debugfs: stats lists every process's regions")
        else:
            self.add(INFO, "region listing",
                     "stats reads this user's processes only (no readable "
                     "/sys/kernel/debug/pyshm/regions)",
                     "load the module and run stats as root for the system-wide listing")

    @staticmethod
    def cgroup_memory():
        for line in (read("/proc/self/cgroup") or "").splitlines():
            if line.startswith("0::"):
                return read(f"/sys/fs/cgroup{line[3:]}/memory.max")
        return None

    def environment(self):
        env = {k: v for k, v in os.environ.items() if k.startswith("PYSHM_")}
        if not env:
            self.add(INFO, "environment", "no PYSHM_* variables set (defaults)")
        for k in sorted(env):
            what = ENVIRONMENT.get(k)
            self.add(INFO if what else WARN, "environment", f"{k}={env[k]}: "
                     + (what or "not a variable pyshm reads"),
                     None if what else "check the spelling (Documentation/python-api.rst)")


def _echo():
    """A doctor's worker: sends back its worker_data."""
    import pyshm_workers as pw
    pw.parent.post_message(pw.worker_data)


def doctor(args):
    rows = Doctor().run(workers=not args.no_workers)
    failed = any(r["status"] == FAIL for r in rows)
    if args.json:
        json.dump({"version": __version__, "ok": not failed, "checks": rows},
                  sys.stdout, indent=2)
        print()
        return 1 if failed else 0
    width = max(len(r["topic"]) for r in rows)
    print(f"pyshm_workers {__version__}: doctor")
    for r in rows:
        print(f"  {r['status']:<4}  {r['topic']:<{width}}  {r['text']}")
        if r["hint"] and r["status"] != OK:
            print(f"  {'':<4}  {'':<{width}}  -> {r['hint']}")
    print("something needed is missing (FAIL above)" if failed else
          "everything pyshm needs is here")
    return 1 if failed else 0


# -- stats ------------------------------------------------------------------

CHAN_MAGIC = b"CHAN"
CHAN_HDR_SIZE = 256
RING_MAGIC = b"PYRG"
RING_VERSION = 3
RING_HDR_SIZE = 256
POOL_MAGIC = b"POOL"
MEMFD_LINKS = ("/memfd:pyshm (deleted)", "/memfd:pyshm")
KMOD_LINK = "anon_inode:[pyshm-region]"
DEBUGFS = "/sys/kernel/debug/pyshm/regions"
# How the lead's workers name themselves (thread or process comm).
WORKER_COMM = "pw:"


def pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def status_fields(pid):
    fields = {}
    for line in (read(f"/proc/{pid}/status") or "").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return fields


def ring_inflight(hdr):
    """Bytes of one ring's records not yet consumed, and its out-of-line
    records (count, payload bytes), from its header (ring-layout.rst);
    None when the layout is not one this tool knows."""
    if len(hdr) < RING_HDR_SIZE or hdr[:4] != RING_MAGIC:
        return None
    version, hdr_size = struct.unpack_from("<HH", hdr, 4)
    if version != RING_VERSION or hdr_size != RING_HDR_SIZE:
        return None
    producer, = struct.unpack_from("<Q", hdr, 0x40)
    consumer, = struct.unpack_from("<Q", hdr, 0x80)
    ool, = struct.unpack_from("<Q", hdr, 0x98)
    return {"ring_bytes": max(producer - consumer, 0), "large_messages": ool >> 48,
            "large_bytes": ool & ((1 << 48) - 1)}


def read_channel(fd):
    """The ends (pids) of the channel region open on fd, and what it holds
    in flight per direction (ring s carries what side s sent): None for a
    ring layout this version does not know."""
    hdr = os.pread(fd, CHAN_HDR_SIZE, 0)
    _, _, ring_data = struct.unpack_from("<IIQ", hdr, 0)
    ends = [struct.unpack_from("<II", hdr, 16 + 16 * s) for s in (0, 1)]
    directions = []
    for s in (0, 1):
        off = CHAN_HDR_SIZE + s * (RING_HDR_SIZE + ring_data)
        directions.append(ring_inflight(os.pread(fd, RING_HDR_SIZE, off)))
    return {"ends": [{"pid": pid or None, "closed": bool(flags & 1)} for pid, flags in ends],
            "directions": directions}


def classify(path):
    """The kind of the memfd region at path (/proc/PID/fd/N), with what a
    channel holds in flight; ("unknown", None) when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return "unknown", None
    try:
        head = os.pread(fd, 4, 0)
        if head == CHAN_MAGIC:
            return "channel", read_channel(fd)
        if head == POOL_MAGIC:
            return "message", None
        return "buffer", None
    except (OSError, struct.error):
        return "unknown", None
    finally:
        os.close(fd)


def user_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, TypeError):
        return str(uid)


class Scan:
    """What this user's processes (every process, for root with
    all_users) hold: regions by their fds and mappings, and workers."""

    def __init__(self, all_users=False):
        self.uid = os.getuid()
        self.all_users = all_users
        self.regions = {}       # key -> region dict
        self.procs = {}         # pid -> process dict
        self.workers = []
        me = os.getpid()
        for pid in pids():
            if pid == me:
                continue
            try:
                self.process(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass            # it ended meanwhile

    def region(self, key, **init):
        r = self.regions.get(key)
        if r is None:
            r = self.regions[key] = {"id": key, "kind": "unknown", "size": None,
                                     "max_size": None, "owner": None, "pids": set(),
                                     "channel": None}
        for k, v in init.items():
            if v is not None and r.get(k) is None:
                r[k] = v
        return r

    def process(self, pid):
        st = status_fields(pid)
        if not st:
            return
        uid = int(st.get("Uid", ["-1"])[0])
        if uid != self.uid and not self.all_users:
            return
        comm = read(f"/proc/{pid}/comm", "?")
        ppid = int(st.get("PPid", ["0"])[0])
        held = set()
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except PermissionError:
            fds = []
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                link = os.readlink(path)
            except OSError:
                continue
            if link in MEMFD_LINKS:
                try:
                    s = os.stat(path)
                except OSError:
                    continue
                key = f"memfd:{s.st_ino}"
                r = self.region(key, size=s.st_size, owner=s.st_uid)
                if r["kind"] == "unknown":
                    r["kind"], r["channel"] = classify(path)
                r["pids"].add(pid)
                held.add(key)
            elif link == KMOD_LINK:
                info = dict(line.split(":\t", 1) for line in
                            (read(f"/proc/{pid}/fdinfo/{fd}") or "").splitlines()
                            if ":\t" in line)
                if "pyshm-id" not in info:
                    continue
                key = f"kmod:{info['pyshm-id'].strip()}"
                r = self.region(key, size=int(info.get("pyshm-size", "0")),
                                max_size=int(info.get("pyshm-max-size", "0")) or None,
                                owner=uid)
                r["pids"].add(pid)
                held.add(key)
        # Regions mapped but whose fd was closed still hold memory.
        for line in (read(f"/proc/{pid}/maps") or "").splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5] in MEMFD_LINKS:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                key = f"memfd:{parts[4]}"
                r = self.region(key, owner=uid)
                if r["size"] is None:
                    r["map_size"] = max(r.get("map_size", 0), end - start)
                r["pids"].add(pid)
                held.add(key)
        self.find_workers(pid, ppid, comm)
        if held:
            self.procs[pid] = {"pid": pid, "comm": comm, "regions": held}

    def find_workers(self, pid, ppid, comm):
        """Process workers run pyshm_workers._bootstrap (_worker.py's
        _process_argv()), or are children of a process template (its
        _template_argv(), whose parent is their creator); named workers, of
        either mode, have a comm of "pw:<name>": the process's main thread
        for a process worker, a thread of its creator's process for an
        interpreter worker."""
        named = comm.startswith(WORKER_COMM)
        cmdline = command_line(pid)
        if is_template(cmdline):
            if not is_template(command_line(ppid)):
                return                  # a template, not one of its workers
            ppid = int(status_fields(ppid).get("PPid", ["0"])[0])
        if named or is_template(cmdline) or (
                "pyshm_workers" in cmdline and "_bootstrap" in cmdline):
            self.workers.append({"pid": pid, "tid": pid,
                                 "name": comm[len(WORKER_COMM):] if named else None,
                                 "mode": "process", "parent": ppid})
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return
        for tid in sorted(tids):
            tcomm = read(f"/proc/{pid}/task/{tid}/comm", "")
            if tid != pid and tcomm.startswith(WORKER_COMM):
                self.workers.append({"pid": pid, "tid": tid,
                                     "name": tcomm[len(WORKER_COMM):],
                                     "mode": "interpreter", "parent": pid})


def command_line(pid):
    return (read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")


def is_template(cmdline):
    return "pyshm_workers" in cmdline and "_template.main()" in cmdline


def read_debugfs():
    """The module's listing (userspace-api.rst), or None when unreadable."""
    try:
        with open(DEBUGFS) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        f = line.split()
        if len(f) < 9:
            continue
        out.append({"id": f"kmod:{f[0]}", "size": int(f[1]), "max_size": int(f[2]),
                    "holds": int(f[3]), "maps": int(f[4]), "pins": int(f[5]),
                    "sealed": f[7] != "0", "owner": int(f[8])})
    return out


def stats_report(all_users=False):
    scan = Scan(all_users)
    listing = read_debugfs()
    if listing is not None:
        source = "debugfs"
        regions = {r["id"]: dict(r, kind="unknown", pids=set(), channel=None)
                   for r in listing}
        for key, r in scan.regions.items():
            if key in regions:
                regions[key].update(kind=r["kind"], channel=r["channel"], pids=r["pids"])
            elif key.startswith("memfd:"):
                regions[key] = r        # memfd regions beside the module's
    else:
        source = "proc"
        regions = scan.regions
    rows = []
    for r in regions.values():
        if r.get("size") is None:
            r["size"] = r.pop("map_size", None)
        r.pop("map_size", None)
        pids_ = sorted(r["pids"])
        r = dict(r, pids=pids_, holders=len(pids_), owner_name=None
                 if r.get("owner") is None else user_name(r["owner"]),
                 inflight_bytes=None, large_messages=None)
        ch = r["channel"]
        if ch is not None and None not in ch["directions"]:
            r["inflight_bytes"] = sum(d["ring_bytes"] + d["large_bytes"]
                                      for d in ch["directions"])
            r["large_messages"] = sum(d["large_messages"] for d in ch["directions"])
        rows.append(r)
    order = {"channel": 0, "buffer": 1, "message": 2, "unknown": 3}
    rows.sort(key=lambda r: (order.get(r["kind"], 9), -(r["size"] or 0), r["id"]))
    procs = []
    for p in sorted(scan.procs.values(), key=lambda p: p["pid"]):
        mine = [regions[k] for k in p["regions"] if k in regions]
        procs.append({"pid": p["pid"], "comm": p["comm"], "regions": len(mine),
                      "bytes": sum(r.get("size") or 0 for r in mine)})
    inflight = sum(r["inflight_bytes"] or 0 for r in rows)
    return {
        "version": __version__,
        "source": source,
        "scope": "all users" if all_users or source == "debugfs" else "this user",
        "totals": {"regions": len(rows), "bytes": sum(r["size"] or 0 for r in rows),
                   "inflight_bytes": inflight, "processes": len(procs),
                   "workers": len(scan.workers)},
        "regions": rows,
        "processes": procs,
        "workers": scan.workers,
    }


def table(headers, rows):
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers).rstrip()]
    out += [line.format(*map(str, r)).rstrip() for r in rows]
    return "\n".join("  " + s for s in out)


def inflight_text(r):
    if r["channel"] is None:
        return "-"
    if r["inflight_bytes"] is None:
        return "?"
    text = size_text(r["inflight_bytes"])
    if r["large_messages"]:
        text += f" ({r['large_messages']} large)"
    return text


def ends_text(r):
    if r["channel"] is None:
        return ""
    return " <-> ".join(f"{e['pid'] or 'in transit'}{' (closed)' if e['closed'] else ''}"
                        for e in r["channel"]["ends"])


def print_stats(rep):
    t = rep["totals"]
    where = ("the module's listing (debugfs)" if rep["source"] == "debugfs"
             else "/proc (" + ("every user's" if rep["scope"] == "all users"
                               else "this user's") + " processes)")
    print(f"pyshm_workers {rep['version']}: {t['regions']} regions, "
          f"{size_text(t['bytes'])}, {size_text(t['inflight_bytes'])} in flight, "
          f"{t['processes']} processes, {t['workers']} workers; from {where}")
    if rep["regions"]:
        print("\nregions")
        print(table(["REGION", "KIND", "SIZE", "HOLDERS", "OWNER", "PIDS", "IN FLIGHT",
                     "ENDS"],
                    [[r["id"], r["kind"], size_text(r["size"]), r["holders"],
                      r["owner_name"] or "-", ",".join(map(str, r["pids"])) or "-",
                      inflight_text(r), ends_text(r)] for r in rep["regions"]]))
        if any(inflight_text(r) == "?" for r in rep["regions"]):
            print("  ?: a ring layout this version does not read (another pyshm version)")
    if rep["processes"]:
        print("\nprocesses")
        print(table(["PID", "COMMAND", "REGIONS", "BYTES"],
                    [[p["pid"], p["comm"], p["regions"], size_text(p["bytes"])]
                     for p in rep["processes"]]))
    print("\nworkers")
    if rep["workers"]:
        print(table(["PID", "TID", "NAME", "MODE", "PARENT"],
                    [[w["pid"], w["tid"], w["name"] or "-", w["mode"], w["parent"]]
                     for w in rep["workers"]]))
    else:
        print("  none found")


def stats(args):
    rep = stats_report(args.all_users)
    if args.json:
        json.dump(rep, sys.stdout, indent=2)
        print()
    else:
        print_stats(rep)
    return 0


# -- main -------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m pyshm_workers",
        description="pyshm_workers: check this machine (doctor) and see what pyshm "
                    "holds (stats).")
    ap.add_argument("--version", action="version", version=f"pyshm_workers {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("doctor", help="what this machine lets pyshm use; "
                       "exit status 1 when something needed is missing")
    d.add_argument("--json", action="store_true", help="the checks as JSON")
    d.add_argument("--no-workers", action="store_true",
                   help="do not start a worker in each mode")
    d.set_defaults(run=doctor)
    s = sub.add_parser("stats", help="live regions, bytes in flight, workers")
    s.add_argument("--json", action="store_true", help="the report as JSON")
    s.add_argument("--all-users", action="store_true",
                   help="every user's processes (root), not only this user's")
    s.set_defaults(run=stats)
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 2
    return args.run(args)
