# SPDX-License-Identifier: GPL-2.0
"""pyshm workers against their peers, measured side by side in one run:
multiprocessing (Pipe, Queue, Process with fork/forkserver/spawn,
shared_memory, ProcessPoolExecutor), threads with queue.Queue, CPython
3.13's own subinterpreters and queues (as shipped, and spin-polling), and
Node's worker_threads. Printed as ratios (pyshm/peer for times).

    python bench/worker_bench.py [--quick]
"""

import argparse
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_targets as T                      # noqa: E402
import pyshm_workers as pw                     # noqa: E402
from pybench import REPEATS, fmt_time, python_banner, table_header, table_row  # noqa: E402

perf = time.perf_counter
MODES = ("interpreter", "process") if sys.version_info >= (3, 12) else ("process",)
SPAWN = mp.get_context("spawn")


def med(fn, repeats=REPEATS):
    return statistics.median(fn() for _ in range(repeats))


def mean_time(step, n, repeats=REPEATS):
    """Median over repeats of the mean time of one step() in n (warmed up)."""
    step()

    def run():
        t0 = perf()
        for _ in range(n):
            step()
        return (perf() - t0) / n

    return med(run, repeats)


def roundtrip(send, recv, msg=T.SMALL):
    """One message (a small dict) there and back, as a step for mean_time()."""
    return lambda: (send(msg), recv())


def fmt_rate(per_s):
    return f"{per_s / 1e3:.0f} k/s"


def row(name, ours, peer, goal, limit, fmt=fmt_time):
    """A time row: met when ours/peer <= limit; limit None: the ratio for
    information, nothing judged."""
    if peer is None:
        print(f"{name:<58} {fmt(ours):>14} {'n/a':>14}  {goal}  [peer unavailable]")
        return
    table_row(name, fmt(ours), fmt(peer), ours / peer, goal,
              None if limit is None else ours / peer <= limit)


def info(name, value, fmt=fmt_time):
    print(f"{name:<58} {fmt(value):>14}", flush=True)


# ---- A. round trips ----------------------------------------------------------

def pyshm_roundtrip(mode, n):
    w = pw.Worker(T.echo, mode=mode)
    result = mean_time(roundtrip(w.post_message, w.recv), n)
    w._port._close_send()
    w.join()
    return result


def pipe_roundtrip(n):
    a, b = SPAWN.Pipe()
    p = SPAWN.Process(target=T.mp_echo, args=(b,))
    p.start()
    result = mean_time(roundtrip(a.send, a.recv), n)
    a.send(None)
    p.join()
    return result


def thread_roundtrip(n):
    qi, qo = queue.Queue(), queue.Queue()

    def echo():
        while (m := qi.get()) is not None:
            qo.put(m)

    t = threading.Thread(target=echo)
    t.start()
    result = mean_time(roundtrip(qi.put, qo.get), n)
    qi.put(None)
    t.join()
    return result


def subinterp_modules():
    try:
        from test.support import interpreters
        from test.support.interpreters import queues
    except ImportError:
        return None
    return interpreters, queues


# What a subinterpreter thread runs: each message m from qi answered on qo
# with {reply} (m itself: an echo), until None.
SPIN_SERVE = """
while True:
    try:
        m = qi.get_nowait()
    except Exception:
        continue
    if m is None:
        break
    qo.put({reply})
"""
BLOCKING_SERVE = """
while True:
    m = qi.get()
    if m is None:
        break
    qo.put({reply})
"""


def subinterp_roundtrip(spin, n, msg=T.SMALL, reply="m", syncobj=False):
    """Mean round trip of msg to a subinterpreter thread answering reply
    (an expression of the message m), through two 3.13 queues. spin: both
    sides poll with get_nowait() rather than the shipped get(), which
    sleeps 10 ms while the queue is empty. syncobj: queues that share
    objects rather than pickle them ("shareable" objects only: bytes are
    copied once into the receiver, a memoryview is not copied at all).
    None where the queues are missing (Python < 3.13)."""
    mods = subinterp_modules()
    if mods is None:
        return None
    interpreters, queues = mods
    interp = interpreters.create()
    interp.exec("from test.support.interpreters import queues")
    qi, qo = queues.create(syncobj=syncobj), queues.create(syncobj=syncobj)
    interp.prepare_main(qi=qi, qo=qo)
    script = (SPIN_SERVE if spin else BLOCKING_SERVE).format(reply=reply)
    t = threading.Thread(target=interp.exec, args=(script,))
    t.start()

    def get():
        if not spin:
            return qo.get()
        while True:
            try:
                return qo.get_nowait()
            except queues.QueueEmpty:
                pass

    result = mean_time(roundtrip(qi.put, get, msg), n, 3 if not spin else REPEATS)
    qi.put(None)
    t.join()
    interp.close()
    return result


# ---- B. one-way throughput ---------------------------------------------------

def pyshm_oneway(mode, n):
    def run():
        w = pw.Worker(T.count, args=(n,), mode=mode)
        w.recv()                           # ready
        t0 = perf()
        for _ in range(n):
            w.post_message(T.SMALL)
        w.recv()
        took = perf() - t0
        w.join()
        return n / took

    return med(run)


def mpqueue_oneway(n):
    def run():
        q, done = SPAWN.Queue(), SPAWN.Queue()
        p = SPAWN.Process(target=T.mp_count, args=(q, done, n))
        p.start()
        done.get()
        t0 = perf()
        for _ in range(n):
            q.put(T.SMALL)
        done.get()
        took = perf() - t0
        p.join()
        return n / took

    return med(run)


# ---- C. start-up -------------------------------------------------------------

# Start-up is timed for a program that starts a worker now and then, not in
# a tight loop: every case waits this long (untimed) before each start. For
# pyshm's interpreter mode that is what lets the spare interpreter, made in
# the background after a start, be ready for the next one.
START_PAUSE = 0.05


def pyshm_startup(mode, join=False):
    """Worker() until its first message is in (T.hello posts one and
    returns); or join: w.join() called as soon as that message is in (no
    pause for the worker to end), what waiting for an interpreter's or a
    process's end costs."""
    def run():
        time.sleep(START_PAUSE)
        t0 = perf()
        w = pw.Worker(T.hello, mode=mode)
        w.recv()
        took = perf() - t0
        t0 = perf()
        w.join()
        return perf() - t0 if join else took

    return med(run)


def pyshm_startup_burst(mode, k=5):
    """Per worker, k workers started one after another without a pause,
    each as soon as the one before has said it runs: a program that
    starts several at once, which a single spare made ahead of time does
    not serve."""
    def run():
        time.sleep(START_PAUSE)
        t0 = perf()
        ws = []
        for _ in range(k):
            ws.append(pw.Worker(T.hello, mode=mode))
            ws[-1].recv()
        took = perf() - t0
        for w in ws:
            w.join()
        return took / k

    return med(run)


def subinterp_startup(join=False):
    """A bare 3.13 subinterpreter: created, a one-line exec on a thread
    that puts one message on a queue, until that message is in; or join:
    the thread joined and the interpreter closed as soon as it is, as
    pyshm_startup() times a worker's join(). None where the queues are
    missing."""
    mods = subinterp_modules()
    if mods is None:
        return None
    interpreters, queues = mods

    def run():
        time.sleep(START_PAUSE)
        t0 = perf()
        interp = interpreters.create()
        interp.exec("from test.support.interpreters import queues")
        q = queues.create()
        interp.prepare_main(q=q)
        t = threading.Thread(target=interp.exec, args=("q.put('ready')",))
        t.start()
        while True:
            try:
                q.get_nowait()
                break
            except queues.QueueEmpty:
                pass
        took = perf() - t0
        t0 = perf()
        t.join()
        interp.close()
        return perf() - t0 if join else took

    return med(run)


def mp_startup(method, join=False):
    """A multiprocessing Process started by method (its target puts one
    message on a queue and returns) until that message is in; or join:
    p.join() called as soon as it is."""
    ctx = mp.get_context(method)

    def run():
        q = ctx.Queue()
        time.sleep(START_PAUSE)
        t0 = perf()
        p = ctx.Process(target=T.mp_hello, args=(q,))
        p.start()
        q.get()
        took = perf() - t0
        t0 = perf()
        p.join()
        return perf() - t0 if join else took

    return med(run)


def pool_roundtrip(pool, n):
    return mean_time(lambda: pool.submit(T.square, 3).result(), n)


# ---- D, E. shared memory, CPU scaling -----------------------------------------

def pyshm_sab_handoff(mode, n):
    """A 64 MiB SharedArrayBuffer posted again and again to one worker,
    which answers its byte count: the buffer is shared, never copied."""
    return post_ack_time(mode, pw.SharedArrayBuffer(64 << 20), n)


def wait_async_pingpong(mode, n):
    """Per round (there and back) of two workers handing a[0] to each other
    with wait_async() in their event loops (T.wa_pingpong)."""
    def run():
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        ws = [pw.Worker(T.wa_pingpong, args=(a, role, n), mode=mode) for role in (0, 1)]
        for w in ws:
            w.recv()                        # ready
        t0 = perf()
        a.store(1, 1)
        a.notify(1)
        for w in ws:
            w.recv()                        # done
        took = perf() - t0
        for w in ws:
            w.join()
        return took / n

    return med(run)


def fan_out_run(mode, n, listeners=4, broadcast=True, poster_only=False):
    """Time per message to reach `listeners` workers, one run: one
    BroadcastChannel post, or one post_message() to each. poster_only: the
    poster's own time (n small enough that no channel fills), else until
    every listener has every message."""
    if broadcast:
        ws = [pw.Worker(T.bc_count, args=("bench", n), mode=mode)
              for _ in range(listeners)]
    else:
        ws = [pw.Worker(T.count, args=(n,), mode=mode) for _ in range(listeners)]
    for w in ws:
        w.recv()                            # ready
    bc = pw.BroadcastChannel("bench") if broadcast else None
    t0 = perf()
    for _ in range(n):
        if bc:
            bc.post_message(T.SMALL)
        else:
            for w in ws:
                w.post_message(T.SMALL)
    posted = perf() - t0
    for w in ws:
        w.recv()
    took = posted if poster_only else perf() - t0
    if bc:
        bc.close()
    for w in ws:
        w.join()
    return took / n


def fan_out(mode, n, poster_only=False, repeats=3 * REPEATS):
    """fan_out_run() for a broadcast and for 4 posts, alternately: medians
    (broadcast, posts). A run is a few ms of 5 processes on the machine's
    CPUs, so one preemption moves it a lot: many runs, taken in turns so
    that a slow minute hits both."""
    bc, posts = [], []
    for _ in range(repeats):
        bc.append(fan_out_run(mode, n, poster_only=poster_only))
        posts.append(fan_out_run(mode, n, broadcast=False, poster_only=poster_only))
    return statistics.median(bc), statistics.median(posts)


# ---- E10. numpy arrays -----------------------------------------------------------

ND_BYTES = 64 << 20


def numpy_or_none():
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def pool_task_time(pool, fn, a, n):
    return mean_time(lambda: pool.submit(fn, a).result(), n)


def memcpy_time(np, a):
    dst = np.empty_like(a)
    return mean_time(lambda: np.copyto(dst, a), 10)


def post_ack_time(mode, obj, n, target=None):
    """Mean time of post_message(obj) and the worker's answer; the worker
    runs target, by default one answering an array's or a SAB's byte
    count."""
    if target is None:
        target = T.ack_sabs if isinstance(obj, pw.SharedArrayBuffer) else T.ack_arrays
    w = pw.Worker(target, mode=mode)
    result = mean_time(lambda: (w.post_message(obj), w.recv()), n)
    w._port._close_send()
    w.join()
    return result


def numpy_rows(np, q):
    """E10: a 64 MiB float64 array through pool tasks (one way: the task
    returns a float; echoed: it returns the array), against
    ProcessPoolExecutor and a warm memcpy; an array over a
    SharedArrayBuffer against posting the buffer itself."""
    a = np.arange(ND_BYTES // 8, dtype="f8")
    n = max(3, 20 // q)
    copy = memcpy_time(np, a)
    info("peer: warm 64 MiB memcpy (numpy.copyto)", copy)
    with cf.ProcessPoolExecutor(1) as ppe:
        ppe_one = pool_task_time(ppe, T.nd_sum, a, max(2, 5 // q))
        ppe_echo = pool_task_time(ppe, T.nd_echo, a, max(2, 5 // q))
    # Process workers, and the default "auto" (process workers wherever
    # numpy refuses subinterpreters).
    for mode in ("process", "auto"):
        with pw.WorkerPool(1, mode=mode) as pool:
            one = pool_task_time(pool, T.nd_sum, a, n)
            echo = pool_task_time(pool, T.nd_echo, a, n)
        row(f"ndarray 64 MiB one way, WorkerPool {mode} vs ProcessPoolExecutor", one,
            ppe_one, "<= 0.025x", 0.025)
        row(f"ndarray 64 MiB one way, WorkerPool {mode} vs warm memcpy", one, copy,
            "<= 6x", 6.0)
        row(f"ndarray 64 MiB echoed, WorkerPool {mode} vs ProcessPoolExecutor", echo,
            ppe_echo, "<= 0.025x", 0.025)
    sab = pw.SharedArrayBuffer(ND_BYTES)
    view = np.frombuffer(sab, dtype="f8").reshape(-1, 1024)
    for mode in ("process",):
        row(f"ndarray over a 64 MiB SAB, {mode} post+ack vs posting the SAB",
            post_ack_time(mode, view, 200 // q), post_ack_time(mode, sab, 200 // q),
            "<= 2x", 2.0)


# ---- E12. large messages ---------------------------------------------------------

BIG = 64 << 20


def mp_big_peers(data, n, n_notify):
    """multiprocessing's ways to hand data (bytes) to a spawned process
    that answers over a Pipe, as (pipe, copy_in, notify): the bytes sent
    through the Pipe (send_bytes, the child's recv_bytes); copied into an
    already-created shared_memory block, the child notified over the Pipe
    (one byte) and answering; and that notification round trip alone,
    nothing copied, what handing over data already in shared memory costs
    at the least."""
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(create=True, size=len(data))
    a, b = SPAWN.Pipe()
    p = SPAWN.Process(target=T.mp_ack_len, args=(b,))
    p.start()
    try:
        notify = roundtrip(a.send_bytes, a.recv, b"\x01")

        def copy_in():
            shm.buf[:] = data
            notify()

        return (mean_time(roundtrip(a.send_bytes, a.recv, data), n),
                mean_time(copy_in, n), mean_time(notify, n_notify))
    finally:
        a.send_bytes(b"")
        p.join()
        shm.close()
        shm.unlink()


def big_rows(node, q):
    """E12: 64 MiB of bytes posted to a worker that answers len(), against
    multiprocessing (a Pipe; shared_memory), the 3.13 subinterpreter
    queues and Node's ArrayBuffer postMessage; then a held 64 MiB SAB
    posted again, against shared_memory's notification alone."""
    data = bytes(range(256)) * (BIG // 256)
    n = max(1, 2 // q)
    pipe, copy_in, notify = mp_big_peers(data, n, 2000 // q)
    info("peer: multiprocessing.Pipe (spawn), send_bytes", pipe)
    info("peer: shared_memory, copy-in + notification over a Pipe", copy_in)
    info("peer: shared_memory, notification round trip only", notify)
    sub = view = None
    if subinterp_modules() is None:
        print("# no test.support.interpreters queues (Python < 3.13): "
              "no subinterpreter peer")
    else:
        sub = subinterp_roundtrip(True, n, data, "len(m)", syncobj=True)
        view = subinterp_roundtrip(True, n, memoryview(data), "len(m)", syncobj=True)
        info("peer: 3.13 subinterp queue, bytes, spin-polling", sub)
        info("peer: 3.13 subinterp queue, memoryview, spin-polling", view)
    node_copy = node.get("ab_copy_ns", 0) / 1e9 or None
    if "ab_transfer_ns" in node:
        info("peer: node ArrayBuffer postMessage, copied", node_copy)
        info("peer: node ArrayBuffer postMessage, transferred", node["ab_transfer_ns"] / 1e9)
    for mode in MODES:
        ours = post_ack_time(mode, data, n, T.ack_len)
        row(f"pyshm {mode} bytes vs multiprocessing.Pipe", ours, pipe, "<= 0.5x", 0.5)
        row(f"pyshm {mode} bytes vs subinterp queue, bytes", ours, sub, "< 1x", 0.9999)
        row(f"pyshm {mode} bytes vs subinterp queue, memoryview", ours, view, "info", None)
        row(f"pyshm {mode} bytes vs shared_memory copy-in", ours, copy_in, "info", None)
        row(f"pyshm {mode} bytes vs node ArrayBuffer copy", ours, node_copy, "<= 1x", 1.0)
    row("re-posting a held 64 MiB SAB, process, vs shm notify-only",
        pyshm_sab_handoff("process", 200 // q), notify, "<= 1.5x", 1.5)


def lock_cycle(lock, n):
    """Seconds per uncontended acquire() + release() of lock."""
    acquire, release = lock.acquire, lock.release

    def step():
        for _ in range(100):
            acquire()
            release()

    return mean_time(step, n // 100) / 100


def pyshm_lock_contended(n):
    """Seconds per acquire+release when two process workers both take one
    pw.Lock n times as fast as they can."""
    def run():
        lock, go = pw.Lock(), pw.Event()
        counter = pw.Int32Array(pw.SharedArrayBuffer(4))
        ws = [pw.Worker(T.lock_hammer, args=(lock, counter, n, go), mode="process")
              for _ in range(2)]
        for w in ws:
            w.recv()
        t0 = perf()
        go.set()
        for w in ws:
            w.recv()
        took = perf() - t0
        for w in ws:
            w.join()
        assert counter[0] == 2 * n
        return took / (2 * n)

    return med(run, 3)


def lock_pingpong(n, pyshm):
    """Seconds per hand-off when two processes pass control back and forth
    through a pair of locks (each releases the lock the other waits on):
    pw.Lock in process workers, or multiprocessing.Lock in spawned
    processes."""
    def run():
        if pyshm:
            a, b = pw.Lock(), pw.Lock()
        else:
            a, b, out = SPAWN.Lock(), SPAWN.Lock(), SPAWN.Queue()
        a.acquire()
        b.acquire()
        if pyshm:
            ps = [pw.Worker(T.pw_lock_pingpong, args=(a, b, n), mode="process"),
                  pw.Worker(T.pw_lock_pingpong, args=(b, a, n), mode="process")]
            ready = done = lambda: [w.recv() for w in ps]
        else:
            ps = [SPAWN.Process(target=T.lock_pingpong, args=(a, b, n, out)),
                  SPAWN.Process(target=T.lock_pingpong, args=(b, a, n, out))]
            for p in ps:
                p.start()
            ready = done = lambda: [out.get() for _ in ps]
        ready()
        t0 = perf()
        a.release()
        done()
        took = perf() - t0
        for p in ps:
            p.join()
        return took / (2 * n)

    return med(run, 3)


def mp_lock_contended(n):
    """The same with a multiprocessing.Lock and two spawned processes."""
    def run():
        lock, go, out = SPAWN.Lock(), SPAWN.Event(), SPAWN.Queue()
        counter = SPAWN.RawValue("i", 0)
        ps = [SPAWN.Process(target=T.mp_lock_hammer, args=(lock, counter, n, go, out))
              for _ in range(2)]
        for p in ps:
            p.start()
        for _ in ps:
            out.get()
        t0 = perf()
        go.set()
        for _ in ps:
            out.get()
        took = perf() - t0
        for p in ps:
            p.join()
        assert counter.value == 2 * n
        return took / (2 * n)

    return med(run, 3)


def cpu_scaling(mode, tasks=8, size=2_000_000):
    def run(k):
        with pw.WorkerPool(max_workers=k, mode=mode) as pool:
            list(pool.map(T.square, range(k)))          # workers started
            t0 = perf()
            list(pool.map(T.cpu_work, [size] * tasks))
            return perf() - t0

    ones, twos = [], []
    for _ in range(3):
        ones.append(run(1))
        twos.append(run(2))
    return statistics.median(ones), statistics.median(twos)


def map_per_task(executor, tasks=3000, chunksize=100):
    """Median time per task of map(square, range(tasks), chunksize) on a
    warm executor."""
    list(executor.map(T.square, range(2 * chunksize), chunksize=chunksize))   # warm
    return med(lambda: _timed(lambda: list(executor.map(T.square, range(tasks),
                                                         chunksize=chunksize)))) / tasks


def _timed(fn):
    t0 = perf()
    fn()
    return perf() - t0


def node_figures():
    node = shutil.which("node")
    if not node:
        return {}
    out = subprocess.run([node, os.path.join(HERE, "node", "workers.js")],
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        print(f"# node failed: {out.stderr.strip()}")
        return {}
    return json.loads(out.stdout)


def table_e1(q, node):
    table_header("E1. Round trip of a small dict, parent <-> worker (default settings)")
    pipe = pipe_roundtrip(3000 // q)
    spin = subinterp_roundtrip(True, 3000 // q)
    shipped = subinterp_roundtrip(False, 30 // min(q, 3))
    info("peer: multiprocessing.Pipe (spawn)", pipe)
    info("peer: threads + queue.Queue (shared GIL)", thread_roundtrip(3000 // q))
    if spin is not None:
        info("peer: 3.13 subinterpreter queue, spin-polling", spin)
        info("peer: 3.13 subinterpreter queue as shipped (sleep-polls)", shipped)
    if "pingpong_ns" in node:
        info("peer: node worker_threads postMessage", node["pingpong_ns"] / 1e9)
    for mode in MODES:
        ours = pyshm_roundtrip(mode, 3000 // q)
        row(f"pyshm {mode} vs multiprocessing.Pipe", ours, pipe, "<= 0.5x", 0.5)
        row(f"pyshm {mode} vs node postMessage", ours,
            node.get("pingpong_ns", 0) / 1e9 or None, "<= 0.5x", 0.5)
        row(f"pyshm {mode} vs subinterp queue, spin-polling", ours, spin, "<= 1.5x", 1.5)
        row(f"pyshm {mode} vs subinterp queue as shipped", ours, shipped, "<= 0.01x", 0.01)


def table_e2(q, node):
    table_header("E2. One-way small dicts (per message time; throughput shown)")
    mpq = mpqueue_oneway(100_000 // q)
    node_rate = node.get("oneway_per_s")
    for mode in MODES:
        ours = pyshm_oneway(mode, 200_000 // q)
        table_row(f"pyshm {mode} vs multiprocessing.Queue", fmt_rate(ours), fmt_rate(mpq),
                  mpq / ours, ">= 3x throughput", ours >= 3 * mpq)
        if node_rate:
            table_row(f"pyshm {mode} vs node postMessage", fmt_rate(ours), fmt_rate(node_rate),
                      node_rate / ours, ">= 2x throughput", ours >= 2 * node_rate)


def table_e3(q, node):
    table_header("E3. Worker start -> first message; warm pool task round trip")
    sub = subinterp_startup()
    fork = mp_startup("fork")
    spawn = mp_startup("spawn")
    info("peer: multiprocessing fork", fork)
    info("peer: multiprocessing forkserver", mp_startup("forkserver"))
    info("peer: multiprocessing spawn", spawn)
    if "interpreter" in MODES:
        ours = pyshm_startup("interpreter")
        row("pyshm interpreter vs 3.13 subinterp create+thread+exec", ours, sub,
            "<= 0.75x", 0.75)
        row("pyshm interpreter vs node new Worker", ours,
            node.get("start_ns", 0) / 1e9 or None, "<= 0.5x", 0.5)
        row("pyshm interpreter vs multiprocessing fork", ours, fork, "<= 1x", 1.0)
        row("pyshm interpreter, 5 back to back (each) vs fork",
            pyshm_startup_burst("interpreter"), fork, "<= 1x", 1.0)
    ours = pyshm_startup("process")
    row("pyshm process vs multiprocessing spawn", ours, spawn, "<= 1x", 1.0)
    row("pyshm process vs multiprocessing fork", ours, fork, "<= 1.5x", 1.5)
    with cf.ProcessPoolExecutor(1) as ppe:
        peer = pool_roundtrip(ppe, 2000 // q)
    for mode in MODES:
        with pw.WorkerPool(1, mode=mode) as pool:
            ours = pool_roundtrip(pool, 2000 // q)
        row(f"WorkerPool {mode} task vs ProcessPoolExecutor", ours, peer, "<= 0.5x", 0.5)


def table_e4(q, node):
    table_header("E4. 64 MiB SharedArrayBuffer hand-off + ack")
    for mode in MODES:
        row(f"pyshm {mode} vs node SharedArrayBuffer post", pyshm_sab_handoff(mode, 50),
            node.get("sab_ns", 0) / 1e9 or None, "<= 1x", 1.0)


def table_e6(q, node):
    table_header("E6. One message to 4 workers: BroadcastChannel vs 4 post_message()")
    for mode in MODES:
        bc, posts = fan_out(mode, 1500, poster_only=True)
        row(f"BroadcastChannel {mode}: the poster's time vs 4 post_message() calls",
            bc, posts, "< 1x", 0.9999)
        bc, posts = fan_out(mode, 5000 // q, repeats=REPEATS)
        info(f"BroadcastChannel {mode}: until all 4 have it (4 posts: {fmt_time(posts)})", bc)


def table_e7(q, node):
    table_header("E7. Shared locks: uncontended, and contended between two processes")
    row("pw.Lock acquire+release vs threading.Lock", lock_cycle(pw.Lock(), 400_000 // q),
        lock_cycle(threading.Lock(), 400_000 // q), "<= 2x", 2.0)
    info("pw.RLock acquire+release (threading.RLock: "
         f"{fmt_time(lock_cycle(threading.RLock(), 400_000 // q))})",
         lock_cycle(pw.RLock(), 400_000 // q))
    row("hand-off through a pw.Lock pair, 2 process workers, vs multiprocessing.Lock",
        lock_pingpong(5000 // q, True), lock_pingpong(5000 // q, False), "< 1x", 0.9999)
    row("pw.Lock taken by 2 process workers at once vs multiprocessing.Lock",
        pyshm_lock_contended(20_000 // q), mp_lock_contended(20_000 // q), "< 1x", 0.9999)


def table_e8(q, node):
    table_header("E8. 3,000 tiny tasks through map(chunksize=100), 2 workers (per task)")
    with cf.ProcessPoolExecutor(2) as ppe:
        peer = map_per_task(ppe, 3000 // min(q, 3))
    for mode in MODES:
        with pw.WorkerPool(2, mode=mode) as pool:
            ours = map_per_task(pool, 3000 // min(q, 3))
        row(f"WorkerPool {mode} map vs ProcessPoolExecutor map", ours, peer, "<= 1x", 1.0)


def table_e10(q, node):
    table_header("E10. numpy: 64 MiB float64 ndarray, process and auto pools")
    np = numpy_or_none()
    if np is None:
        print("# numpy is not installed for this Python: E10 skipped")
    else:
        numpy_rows(np, q)


def table_e12(q, node):
    table_header("E12. Large messages: 64 MiB, post + ack")
    big_rows(node, q)


def table_e13(q, node):
    table_header("E13. join() of a worker whose target has returned")
    sub = subinterp_startup(join=True)
    fork = mp_startup("fork", join=True)
    if sub is not None:
        info("peer: 3.13 subinterp: thread join + close()", sub)
    info("peer: multiprocessing fork: Process.join()", fork)
    if "interpreter" in MODES:
        row("pyshm interpreter vs 3.13 subinterp thread join + close()",
            pyshm_startup("interpreter", join=True), sub, "<= 1.5x", 1.5)
    row("pyshm process vs multiprocessing fork Process.join()",
        pyshm_startup("process", join=True), fork, "<= 3x", 3.0)


def table_e11(q, node):
    table_header("E11. wait_async() ping-pong between two workers' event loops (a round)")
    for mode in MODES:
        if mode == "interpreter" and sys.version_info < (3, 13):
            print("# interpreter mode skipped: CPython 3.12 crashes when two interpreters "
                  "run asyncio event loops at once")
            continue
        row(f"{mode} workers vs Node Atomics.waitAsync between worker_threads",
            wait_async_pingpong(mode, 5000 // q),
            node.get("wait_async_ns", 0) / 1e9 or None, "< 1x", 0.9999)


def table_e5(q, node):
    table_header("E5. CPU-bound work, 8 tasks, 1 vs 2 workers")
    for mode in MODES:
        one, two = cpu_scaling(mode, size=2_000_000 // q)
        table_row(f"pyshm {mode}: 2 workers vs 1 (speed-up {one / two:.2f}x)",
                  fmt_time(two), fmt_time(one), two / one, ">= 1.8x speed-up",
                  one / two >= 1.8)


# In the order they run (make bench; --tables picks some).
TABLES = [("E1", table_e1), ("E2", table_e2), ("E3", table_e3), ("E4", table_e4),
          ("E6", table_e6), ("E7", table_e7), ("E8", table_e8), ("E10", table_e10),
          ("E12", table_e12), ("E13", table_e13), ("E11", table_e11), ("E5", table_e5)]
NODE_TABLES = {"E1", "E2", "E3", "E4", "E11", "E12"}    # with Node's figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--tables", help="only these tables, e.g. E10,E12 (default: all)")
    args = ap.parse_args()
    q = 10 if args.quick else 1
    wanted = set(args.tables.upper().split(",")) if args.tables else None
    unknown = (wanted or set()) - {tag for tag, _ in TABLES}
    if unknown:
        ap.error(f"no such tables: {', '.join(sorted(unknown))}")
    print(f"# {python_banner()}, backend {pw.backend()}, wake {pw._core.wake_path()}, "
          f"{os.cpu_count()} CPUs")
    node = node_figures() if wanted is None or wanted & NODE_TABLES else {}
    for tag, table in TABLES:
        if wanted is None or tag in wanted:
            table(q, node)


if __name__ == "__main__":
    main()
