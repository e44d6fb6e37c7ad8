// SPDX-License-Identifier: GPL-2.0
// Node worker_threads peers for `make bench`: prints one JSON object with
// medians (ns or msgs/s) for ping-pong, one-way throughput, start-up, a
// 64 MiB SharedArrayBuffer hand-off, a 64 MiB ArrayBuffer copied and
// transferred, and an Atomics.waitAsync ping-pong.
'use strict';
const { Worker, isMainThread, parentPort } = require('worker_threads');

// Two workers hand a[0] back and forth, each waiting with Atomics.waitAsync
// in its event loop: role 1 makes it odd, role 0 even.
async function waitAsyncPingPong(sab, role, n) {
  const a = new Int32Array(sab);
  for (let k = 0; k < n; k++) {
    if (role === 1) { Atomics.store(a, 0, 2 * k + 1); Atomics.notify(a, 0); }
    const want = role === 0 ? 2 * k + 1 : 2 * k + 2;
    let v;
    while ((v = Atomics.load(a, 0)) !== want) {
      const r = Atomics.waitAsync(a, 0, v);
      if (r.async) await r.value;
    }
    if (role === 0) { Atomics.store(a, 0, 2 * k + 2); Atomics.notify(a, 0); }
  }
}

if (!isMainThread) {
  parentPort.on('message', (m) => {
    if (m instanceof ArrayBuffer) {
      parentPort.postMessage(m.byteLength);
    } else if (m.kind === 'abx') {
      parentPort.postMessage(m.ab, [m.ab]);
    } else if (m.kind === 'wa') {
      waitAsyncPingPong(m.sab, m.role, m.n).then(() => parentPort.postMessage('done'));
    } else if (m.kind === 'count') {
      if (m.last) parentPort.postMessage(m.n);
    } else {
      parentPort.postMessage(m.kind === 'sab' ? 'ack' : m);
    }
  });
  parentPort.postMessage('ready');
  return;
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const now = () => process.hrtime.bigint();
const once = (w) => new Promise((r) => w.once('message', r));

async function start() {
  const t0 = now();
  const w = new Worker(__filename);
  await once(w);
  return [w, Number(now() - t0)];
}

async function main() {
  const out = {};
  const starts = [];
  // As bench/worker_bench.py: a pause (untimed) before each start.
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const [w, ns] = await start();
    starts.push(ns);
    await w.terminate();
  }
  out.start_ns = median(starts);

  const [w] = await start();
  const msg = { id: 1, name: 'small', values: [1, 2, 3], score: 0.5 };
  const rt = [];
  for (let r = 0; r < 5; r++) {
    const n = 2000;
    const t0 = now();
    for (let i = 0; i < n; i++) { w.postMessage(msg); await once(w); }
    rt.push(Number(now() - t0) / n);
  }
  out.pingpong_ns = median(rt);

  const tp = [];
  for (let r = 0; r < 5; r++) {
    const n = 50000;
    const t0 = now();
    for (let i = 0; i < n; i++) w.postMessage({ kind: 'count', n: i, last: i === n - 1, v: msg });
    await once(w);
    tp.push(n / (Number(now() - t0) / 1e9));
  }
  out.oneway_per_s = median(tp);

  const sab = new SharedArrayBuffer(64 << 20);
  const hs = [];
  for (let r = 0; r < 5; r++) {
    const n = 50;
    const t0 = now();
    for (let i = 0; i < n; i++) { w.postMessage({ kind: 'sab', sab }); await once(w); }
    hs.push(Number(now() - t0) / n);
  }
  out.sab_ns = median(hs);

  // A 64 MiB ArrayBuffer there and back (bench E12): copied (structured
  // clone; the worker answers its byteLength), and transferred (the worker
  // transfers it back, so every round has the buffer). A round of each
  // first, to warm up.
  let ab = new ArrayBuffer(64 << 20);
  new Uint8Array(ab).fill(1);
  const abRound = async (transfer) => {
    if (transfer) {
      w.postMessage({ kind: 'abx', ab }, [ab]);
      ab = await once(w);
    } else {
      w.postMessage(ab);
      await once(w);
    }
  };
  await abRound(false);
  await abRound(true);
  const copies = [];
  const transfers = [];
  for (let r = 0; r < 5; r++) {
    for (const [transfer, times] of [[false, copies], [true, transfers]]) {
      const n = 2;
      const t0 = now();
      for (let i = 0; i < n; i++) await abRound(transfer);
      times.push(Number(now() - t0) / n);
    }
  }
  out.ab_copy_ns = median(copies);
  out.ab_transfer_ns = median(transfers);
  await w.terminate();

  // Atomics.waitAsync ping-pong between two workers' event loops (a round:
  // there and back).
  const [w0] = await start();
  const [w1] = await start();
  const was = [];
  for (let r = 0; r < 5; r++) {
    const n = 5000;
    const shared = new SharedArrayBuffer(8);
    const done = Promise.all([once(w0), once(w1)]);
    const t0 = now();
    w0.postMessage({ kind: 'wa', sab: shared, role: 0, n });
    w1.postMessage({ kind: 'wa', sab: shared, role: 1, n });
    await done;
    was.push(Number(now() - t0) / n);
  }
  out.wait_async_ns = median(was);
  await w0.terminate();
  await w1.terminate();
  console.log(JSON.stringify(out));
}

main();
