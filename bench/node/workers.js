// SPDX-License-Identifier: GPL-2.0
// Node worker_threads peers for `make bench`: prints one JSON object with
// medians (ns or msgs/s) for ping-pong, one-way throughput, start-up and a
// 64 MiB SharedArrayBuffer hand-off.
'use strict';
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (!isMainThread) {
  parentPort.on('message', (m) => {
    if (m.kind === 'count') {
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
  await w.terminate();
  console.log(JSON.stringify(out));
}

main();
