// abuse.mjs - the soak's abusive clients, in their own thread. Each kind
// runs in a loop until the parent posts 'stop', then the thread posts
// {type: 'result', ...} with what each saw, and exits. The soak asserts
// nothing about how the server treats them beyond what PROTOCOL.md says
// (1009 for a message over limits.max_message_size, 4009 for a client
// that lets more than limits.max_output_bytes pile up); the rest is
// reported. The kinds:
//
//   pingFlood  raw socket: masked pings as fast as the socket takes
//              them, never reads; at most pingSessionBytes per
//              connection (then it only holds the socket), reconnects
//              when the server drops it
//   slowloris  the upgrade request one byte per second
//   silent     connect, send nothing
//   pipeline   50 bench/echo then one message over max_message_size:
//              expects the 50 replies, then close 1009
//   nonReader  joins the busy room, never reads nor writes; once the
//              kernel shows the server closed its side (/proc/net/tcp),
//              reads what is left to find a close frame, and starts again
//   busyPub    (well-behaved) publishes big payloads into the busy room
//   hugeUser   joinRoom/leaveRoom with a userId as big as the message
//              limit allows, in the churn's rooms
//   msgFlood   bench/echo far faster than any normal client (reads the
//              replies): counts "Rate limit exceeded" and the close code
//
// workerData: {url, host, port, path, kinds, addrOffset, addrCount,
// maxMessage, rooms, busyRoom, slowloris, silent, floodRate, busyRate,
// busyPayload, hugeEvery, pingSessionBytes}.
import { parentPort, workerData } from 'node:worker_threads';

import { localAddr, now, openWs, pick, sleep } from './lib.mjs';
import { FrameParser, frame, rawConnect, textFrame, upgradeRequest } from './rawws.mjs';
import { readFileSync } from 'node:fs';
import net from 'node:net';

const cfg = workerData;
let stopping = false;
let addrN = 0;
const nextAddr = () => localAddr(cfg.addrOffset + addrN++, cfg.addrCount);
const waiters = new Set(); // sleeps to cut short at stop
const nap = (ms) => new Promise((r) => {
  const t = setTimeout(() => { waiters.delete(w); r(); }, ms);
  const w = () => { clearTimeout(t); r(); };
  waiters.add(w);
});
const live = new Set(); // sockets / ws to end at stop

const R = {
  pingFlood: { sessions: [], connectFailures: 0 },
  slowloris: { sessions: [], connectFailures: 0 },
  silent: { sessions: [], connectFailures: 0 },
  pipeline: { attempts: 0, ok: 0, bad: [], connectFailures: 0 },
  nonReader: { sessions: [], connectFailures: 0 },
  busyPub: { sent: 0, acked: 0, errors: 0, drops: 0 },
  hugeUser: { maxReplyMs: 0, joins: 0, joinOk: 0, leaves: 0, replies: {}, closes: [], connectFailures: 0 },
  msgFlood: { sessions: [], connectFailures: 0 },
};

const rawOpts = () => ({ host: cfg.host, port: cfg.port, path: cfg.path, localAddress: nextAddr() });

// ---- ping flooder -----------------------------------------------------------

async function pingFlood() {
  // 64 KiB of masked 8-byte pings (14 bytes each).
  const one = () => frame(0x9, Buffer.from('soakping'));
  const chunk = Buffer.concat(Array.from({ length: 4681 }, one));
  while (!stopping) {
    let c;
    try {
      c = await rawConnect(rawOpts());
    } catch {
      R.pingFlood.connectFailures++;
      await nap(1000);
      continue;
    }
    const s = { start: now(), bytes: 0, end: null, how: null };
    R.pingFlood.sessions.push(s);
    live.add(c.sock);
    // Never read: paused, no 'data' listener.
    await new Promise((resolve) => {
      let done = false;
      const finish = (how) => {
        if (done) return;
        done = true;
        s.end = now();
        s.how = how;
        resolve();
      };
      c.sock.on('error', (e) => finish(e.code || String(e)));
      c.sock.on('close', () => finish('closed'));
      const pump = () => {
        while (!done && !stopping && s.bytes < cfg.pingSessionBytes) {
          s.bytes += chunk.length;
          if (!c.sock.write(chunk)) {
            c.sock.once('drain', () => setImmediate(pump));
            return;
          }
        }
        if (stopping) finish('still open at the end');
      };
      c.stopHook = () => finish(s.bytes >= cfg.pingSessionBytes
        ? 'session cap written, held open until the end'
        : 'still open at the end (stalled: the server stopped reading)');
      stopHooks.add(c.stopHook);
      pump();
    });
    stopHooks.delete(c.stopHook);
    live.delete(c.sock);
    c.sock.destroy();
    if (!stopping) await nap(1000);
  }
}
const stopHooks = new Set();

// ---- slowloris and silent sockets -------------------------------------------

async function slowloris(k) {
  while (!stopping) {
    const req = upgradeRequest(cfg.host, cfg.port, cfg.path);
    const sock = net.connect({ host: cfg.host, port: cfg.port, localAddress: nextAddr() });
    live.add(sock);
    const s = { start: now(), bytes: 0, end: null, how: null, k };
    R.slowloris.sessions.push(s);
    await new Promise((resolve) => {
      let timer = null;
      const finish = (how) => {
        if (s.how) return;
        s.how = how;
        s.end = now();
        clearInterval(timer);
        resolve();
      };
      sock.on('error', (e) => finish(e.code || String(e)));
      sock.on('data', (d) => finish(`got ${JSON.stringify(d.toString('latin1').split('\r\n')[0])}`));
      sock.on('close', () => finish('closed by the server'));
      sock.on('connect', () => {
        timer = setInterval(() => {
          if (stopping) return finish('still open at the end');
          if (s.bytes < req.length) sock.write(req.subarray(s.bytes, ++s.bytes));
        }, 1000);
      });
      stopHooks.add(() => finish('still open at the end'));
    });
    live.delete(sock);
    sock.destroy();
    if (!stopping) await nap(500);
  }
}

async function silent(k) {
  while (!stopping) {
    const sock = net.connect({ host: cfg.host, port: cfg.port, localAddress: nextAddr() });
    live.add(sock);
    const s = { start: now(), end: null, how: null, k };
    R.silent.sessions.push(s);
    await new Promise((resolve) => {
      const finish = (how) => {
        if (s.how) return;
        s.how = how;
        s.end = now();
        resolve();
      };
      sock.on('error', (e) => finish(e.code || String(e)));
      sock.on('data', (d) => finish(`got ${JSON.stringify(d.toString('latin1').split('\r\n')[0])}`));
      sock.on('close', () => finish('closed by the server'));
      stopHooks.add(() => finish('still open at the end'));
    });
    live.delete(sock);
    sock.destroy();
    if (!stopping) await nap(500);
  }
}

// ---- pipeliner -----------------------------------------------------------------

async function pipeline() {
  while (!stopping) {
    R.pipeline.attempts++;
    const got = [];
    let ws;
    try {
      ws = await openWs(cfg.url, {
        localAddress: nextAddr(),
        onMessage: (b) => {
          try { got.push(JSON.parse(b.toString('utf8'))); } catch { got.push(null); }
        },
      });
    } catch {
      R.pipeline.attempts--;
      R.pipeline.connectFailures++;
      await nap(1000);
      continue;
    }
    live.add(ws);
    const closed = new Promise((r) => ws.once('close', (code) => r(code)));
    for (let i = 1; i <= 50; i++) {
      ws.send(`{"type":"bench","action":"echo","data":${i},"requestId":${i}}`);
    }
    ws.send('{"type":"bench","action":"echo","data":"' + 'x'.repeat(cfg.maxMessage) + '"}');
    const code = await Promise.race([closed, sleep(10000).then(() => 'no close within 10 s')]);
    live.delete(ws);
    ws.terminate();
    const replies = got.filter((m) => m && m.requestId !== undefined);
    const inOrder = replies.length === 50 && replies.every((m, i) => m.type === 'bench'
      && m.action === 'echo' && m.response === i + 1 && m.requestId === i + 1);
    if (inOrder && code === 1009) {
      R.pipeline.ok++;
    } else if (stopping && code !== 1009) {
      R.pipeline.attempts--; // cut short by the end of the run
    } else {
      R.pipeline.bad.push({ t: now(), replies: replies.length, inOrder, code });
    }
    if (!stopping) await nap(2000);
  }
}

// ---- non-reader in the busy room -------------------------------------------------

// Whether the server closed its side of our connection, from the
// kernel's table (/proc/net/tcp): its socket is gone or no longer
// established (a server that closes with unsent data stays in FIN_WAIT1
// behind a peer that does not read: that peer itself never sees the FIN).
function serverClosed(sock) {
  const hex = (ip, port) => ip.split('.').reverse()
    .map((x) => Number(x).toString(16).padStart(2, '0')).join('').toUpperCase()
    + ':' + port.toString(16).padStart(4, '0').toUpperCase();
  const local = hex(sock.localAddress, sock.localPort);
  const remote = hex(sock.remoteAddress, sock.remotePort);
  let mine = null;
  let theirs = null;
  try {
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1] === local && f[2] === remote) mine = f[3];
      else if (f[1] === remote && f[2] === local) theirs = f[3];
    }
  } catch { return null; /* no /proc: cannot tell */ }
  if (mine !== '01' || theirs !== '01') return `client side ${mine}, server side ${theirs}`;
  return null;
}

async function nonReaderSession() {
  const r = { start: now(), bytesRead: 0, frames: 0, closeCode: null, end: null, how: null,
    closedByServer: false };
  let c;
  try {
    c = await rawConnect(rawOpts());
  } catch (e) {
    R.nonReader.connectFailures++;
    return;
  }
  R.nonReader.sessions.push(r);
  const where = { localAddress: c.sock.localAddress, localPort: c.sock.localPort,
    remoteAddress: c.sock.remoteAddress, remotePort: c.sock.remotePort };
  parentPort.postMessage({ type: 'nonReader', ...where });
  c.sock.write(textFrame({ type: 'system', action: 'joinRoom', data: { roomName: cfg.busyRoom },
    requestId: 1 }));
  // Never read (the socket stays paused) and never write again (so that
  // the server can close it gracefully), until the kernel says the server
  // closed its side, or the run ends.
  let eofResolve;
  const eof = new Promise((res) => { eofResolve = res; });
  c.sock.on('error', (e) => { r.how ??= e.code || String(e); eofResolve(); });
  c.sock.on('end', () => { r.eof = true; eofResolve(); });
  c.sock.on('close', () => eofResolve());
  while (!stopping) {
    await nap(1000);
    const st = serverClosed(c.sock);
    if (st) {
      r.closedByServer = true;
      r.tcp = st;
      r.how = `dropped by the server (${st})`;
      break;
    }
  }
  // Now read everything the server sent, to find its close frame.
  const parser = new FrameParser();
  const onData = (d) => {
    r.bytesRead += d.length;
    for (const f of parser.push(d)) {
      r.frames++;
      if (f.opcode === 0x8) {
        r.closeCode = f.code;
        r.how = `close frame ${f.code}`;
      }
    }
  };
  if (c.rest.length) onData(c.rest);
  c.sock.on('data', onData);
  c.sock.resume();
  // An open stream does not end: stop after a quiet second.
  let last = r.bytesRead;
  for (;;) {
    const end = await Promise.race([eof.then(() => true), sleep(1000).then(() => false)]);
    if (end || r.bytesRead === last) break;
    last = r.bytesRead;
  }
  r.end = now();
  if (!r.closedByServer && r.closeCode === null) r.how = 'still open at the end';
  c.sock.destroy();
}

async function nonReader() {
  while (!stopping) {
    await nonReaderSession();
    if (!stopping) await nap(1000);
  }
}

// ---- busy-room publisher ---------------------------------------------------------

async function busyPub() {
  const payload = 'b'.repeat(cfg.busyPayload);
  while (!stopping) {
    let ws;
    let inflight = 0;
    try {
      ws = await openWs(cfg.url, {
        localAddress: nextAddr(),
        onMessage: (b) => {
          const m = JSON.parse(b.toString('utf8'));
          if (m.requestId === undefined) return;
          inflight--;
          if (m.type === 'bench') R.busyPub.acked++;
          else R.busyPub.errors++;
        },
      });
    } catch {
      await nap(500);
      continue;
    }
    live.add(ws);
    let closed = false;
    ws.once('close', () => { closed = true; });
    let seq = 0;
    const tick = 10; // ms
    const per = cfg.busyRate * tick / 1000;
    let credit = 0;
    while (!stopping && !closed) {
      credit += per;
      while (credit >= 1 && inflight < 200) {
        credit--;
        inflight++;
        R.busyPub.sent++;
        ws.send(`{"type":"bench","action":"publish","data":{"roomName":"${cfg.busyRoom}","payload":{"n":${++seq},"p":"${payload}"}},"requestId":${seq}}`);
      }
      if (credit > 1) credit = 1;
      await sleep(tick);
    }
    live.delete(ws);
    if (!stopping) {
      R.busyPub.drops++;
      await nap(300);
    }
  }
}

// ---- huge userId ---------------------------------------------------------------

async function hugeUser() {
  // The biggest joinRoom that still fits limits.max_message_size.
  const room0 = cfg.rooms[0];
  const base = JSON.stringify({ type: 'system', action: 'joinRoom',
    data: { roomName: room0, userId: '' }, requestId: 999999 });
  const userId = 'U'.repeat(cfg.maxMessage - base.length - 64);
  while (!stopping) {
    let ws;
    let waiting = null;
    let rid = 0;
    try {
      ws = await openWs(cfg.url, {
        localAddress: nextAddr(),
        onMessage: (b) => {
          const m = JSON.parse(b.toString('utf8'));
          if (m.requestId !== undefined && waiting && m.requestId === rid) waiting(m);
        },
      });
    } catch {
      R.hugeUser.connectFailures++;
      await nap(1000);
      continue;
    }
    live.add(ws);
    let closed = false;
    ws.once('close', (code) => {
      closed = true;
      if (!stopping) R.hugeUser.closes.push(code);
      if (waiting) waiting(null);
    });
    const req = (action, data) => new Promise((resolve) => {
      const t0 = now();
      const mine = ++rid;
      waiting = (m) => {
        waiting = null;
        if (m) R.hugeUser.maxReplyMs = Math.max(R.hugeUser.maxReplyMs, now() - t0);
        resolve(m);
      };
      ws.send(JSON.stringify({ type: 'system', action, data, requestId: mine }));
      setTimeout(() => { if (waiting && rid === mine) waiting(null); }, 10000);
    });
    while (!stopping && !closed) {
      const room = pick(cfg.rooms);
      R.hugeUser.joins++;
      const j = await req('joinRoom', { roomName: room, userId });
      const key = j ? (j.response?.success ? 'success' : (j.response?.error || j.data?.error || j.type))
        : 'no reply';
      R.hugeUser.replies[key] = (R.hugeUser.replies[key] || 0) + 1;
      if (j?.response?.success) R.hugeUser.joinOk++;
      if (closed || stopping) break;
      await nap(cfg.hugeEvery / 2);
      R.hugeUser.leaves++;
      await req('leaveRoom', { roomName: room });
      await nap(cfg.hugeEvery / 2);
    }
    live.delete(ws);
    if (!stopping) await nap(1000);
  }
}

// ---- message flooder -------------------------------------------------------------

async function msgFlood() {
  while (!stopping) {
    const s = { start: now(), sent: 0, replies: 0, rateLimited: 0, otherErrors: 0,
      end: null, code: null };
    let ws;
    try {
      ws = await openWs(cfg.url, {
        localAddress: nextAddr(),
        onMessage: (b) => {
          const t = b.toString('utf8');
          if (t.includes('"Rate limit exceeded"')) s.rateLimited++;
          else if (t.startsWith('{"type":"error"')) s.otherErrors++;
          else if (t.startsWith('{"type":"bench"')) s.replies++;
        },
      });
    } catch {
      R.msgFlood.connectFailures++;
      await nap(1000);
      continue;
    }
    R.msgFlood.sessions.push(s);
    live.add(ws);
    let closed = false;
    ws.once('close', (code) => { closed = true; s.code = code; s.end = now(); });
    const tick = 10;
    const per = cfg.floodRate * tick / 1000;
    let credit = 0;
    while (!stopping && !closed) {
      credit += per;
      // Do not buffer without bound on our side either.
      while (credit >= 1 && ws.bufferedAmount < (1 << 20)) {
        credit--;
        s.sent++;
        ws.send(`{"type":"bench","action":"echo","data":${s.sent},"requestId":${s.sent}}`);
      }
      if (credit > per) credit = per;
      await sleep(tick);
    }
    live.delete(ws);
    if (!closed) {
      s.end = now();
      s.code = 'still open at the end';
    }
    if (!stopping) await nap(1000);
  }
}

// ---- run -----------------------------------------------------------------------

const kinds = { nonReader: () => [nonReader()], busyPub: () => [busyPub()],
  pingFlood: () => [pingFlood()], pipeline: () => [pipeline()], hugeUser: () => [hugeUser()],
  msgFlood: () => [msgFlood()],
  slowloris: () => Array.from({ length: cfg.slowloris }, (_, k) => slowloris(k)),
  silent: () => Array.from({ length: cfg.silent }, (_, k) => silent(k)) };
const runs = cfg.kinds.flatMap((k) => kinds[k]());
parentPort.postMessage({ type: 'ready' });

parentPort.on('message', async (msg) => {
  if (msg !== 'stop') return;
  stopping = true;
  for (const w of waiters) w();
  for (const h of stopHooks) h();
  await Promise.all(runs);
  for (const x of live) {
    if (typeof x.terminate === 'function') x.terminate();
    else x.destroy();
  }
  parentPort.postMessage({ type: 'result', R });
});
