// echo.mjs - the soak's well-behaved echo clients, in their own thread so
// that the churn's work does not delay them: each keeps one bench/echo in
// flight, then pauses gapMin..gapMax ms, and records when it sent each
// request and how long the reply took. A connection that drops (the
// killed worker) is recorded and opened again.
//
// workerData: {url, clients, addrOffset, addrCount, gapMin, gapMax,
// timeoutMs}. The parent posts 'stop'; the thread answers with
// {type: 'result', ...} and exits.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

import { localAddr, now, openWs, rand, sleep } from './lib.mjs';

const cfg = workerData;
let stopping = false;
const sockets = new Set();

// Samples: send time (epoch ms), latency (ms), client index.
let cap = 1 << 16;
let st = new Float64Array(cap);
let lat = new Float64Array(cap);
let who = new Int32Array(cap);
let n = 0;
function record(t, l, i) {
  if (n === cap) {
    cap *= 2;
    const grow = (a, C) => { const b = new C(cap); b.set(a); return b; };
    st = grow(st, Float64Array);
    lat = grow(lat, Float64Array);
    who = grow(who, Int32Array);
  }
  st[n] = t;
  lat[n] = l;
  who[n] = i;
  n++;
}

const stats = { connects: 0, connectFailures: [], drops: [], lost: [], timeouts: 0,
  wrong: 0, wrongSample: null };

async function client(i) {
  let seq = 0;
  while (!stopping) {
    let ws;
    let pending = null; // {rid, data, t0, resolve}
    try {
      ws = await openWs(cfg.url, {
        localAddress: localAddr(cfg.addrOffset + i, cfg.addrCount),
        onMessage: (buf) => {
          let m;
          try { m = JSON.parse(buf.toString('utf8')); } catch { stats.wrong++; return; }
          if (m.requestId === undefined) return; // system/connected
          if (!pending || m.requestId !== pending.rid) {
            stats.wrong++;
            return;
          }
          const p = pending;
          pending = null;
          const ok = m.type === 'bench' && m.action === 'echo'
            && JSON.stringify(m.response) === p.data;
          if (!ok) {
            stats.wrong++;
            stats.wrongSample ??= buf.toString('utf8').slice(0, 300);
          }
          p.resolve(true);
        },
      });
    } catch (e) {
      stats.connectFailures.push([now(), i, String(e.message || e)]);
      await sleep(300);
      continue;
    }
    stats.connects++;
    sockets.add(ws);
    let closed = false;
    let closeInfo = null;
    let wake = null;
    ws.on('close', (code) => {
      closed = true;
      closeInfo = code;
      if (pending) pending.resolve(false);
      if (wake) wake();
    });
    while (!stopping && !closed) {
      const rid = ++seq;
      const data = JSON.stringify({ i, n: rid, pad: 'e'.repeat(rid % 64) });
      const t0 = now();
      const got = await new Promise((resolve) => {
        pending = { rid, data, t0, resolve };
        const timer = setTimeout(() => resolve(null), cfg.timeoutMs);
        pending.resolve = (v) => { clearTimeout(timer); resolve(v); };
        ws.send(`{"type":"bench","action":"echo","data":${data},"requestId":${rid}}`);
      });
      const t1 = now();
      if (got === true) {
        record(t0, t1 - t0, i);
      } else if (got === null) {
        // No reply within timeoutMs on an open connection: a sample as
        // slow as the timeout, and the connection is given up.
        stats.timeouts++;
        record(t0, t1 - t0, i);
        pending = null;
        ws.terminate();
        break;
      } else {
        stats.lost.push([t0, i]); // in flight when the connection dropped
        break;
      }
      if (stopping || closed) break;
      await new Promise((r) => {
        wake = r;
        setTimeout(r, rand(cfg.gapMin, cfg.gapMax));
      });
      wake = null;
    }
    if (!stopping) {
      if (!closed) await new Promise((r) => ws.once('close', r));
      stats.drops.push([now(), i, closeInfo]);
      sockets.delete(ws);
      await sleep(200);
    }
  }
}

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const runs = [];
for (let i = 0; i < cfg.clients; i++) {
  runs.push(client(i));
  await sleep(5);
}
parentPort.postMessage({ type: 'ready' });

parentPort.on('message', async (msg) => {
  if (msg !== 'stop') return;
  stopping = true;
  await Promise.all(runs);
  const closes = [...sockets].map((ws) => new Promise((r) => {
    if (ws.readyState === ws.CLOSED) return r();
    ws.once('close', r);
    ws.close(1000);
    setTimeout(() => { ws.terminate(); r(); }, 3000);
  }));
  await Promise.all(closes);
  eld.disable();
  parentPort.postMessage({
    type: 'result', stats, n,
    st: st.slice(0, n), lat: lat.slice(0, n), who: who.slice(0, n),
    eld: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
  });
});
