#!/usr/bin/env node
// selfcheck.mjs - a quick check of server.mjs: starts it on port 0, talks
// to it with `ws`, and checks the hello, bench/echo, system/joinRoom,
// bench/publish to two members, bench/user's errors without a database,
// requestId, the error frame and a clean SIGTERM. Prints TAP; exits 0 when every case passes, else 1.
//
//   node selfcheck.mjs              start server.mjs and check it
//   node selfcheck.mjs --url URL    check a server already running at URL
//                                   (e.g. pxl-serve with the system and
//                                   bench plugins); the SIGTERM case is
//                                   skipped
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

// Loaded with require so NODE_PATH works too (as in tests/integration).
const require = createRequire(import.meta.url);
const WebSocket = require('ws');

const here = path.dirname(fileURLToPath(import.meta.url));
const HEX32 = /^[0-9a-f]{32}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// ---- TAP ----------------------------------------------------------------

let n = 0;
let failed = 0;

function ok(cond, name, diag) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond) {
    failed++;
    if (diag) for (const line of String(diag).split('\n')) console.log(`# ${line}`);
  }
}

async function check(name, fn, timeoutMs = 5000) {
  let timer;
  try {
    await Promise.race([fn(), new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    })]);
    ok(true, name);
  } catch (e) {
    ok(false, name, e && e.stack ? e.stack : e);
  } finally {
    clearTimeout(timer);
  }
}

// ---- server and client --------------------------------------------------

function startServer() {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not say it was listening')), 5000);
    child.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^listening on (127\.0\.0\.1):(\d+)(\/ws)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: `ws://${m[1]}:${m[2]}${m[3]}`, line: m[0] });
      }
    });
  });
}

// A socket whose frames are read in order with next().
class Client {
  static open(url) {
    const c = new Client(new WebSocket(url));
    return new Promise((resolve, reject) => {
      c.ws.once('open', () => resolve(c));
      c.ws.once('error', reject);
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    ws.on('message', (raw, isBinary) => {
      const frame = { text: raw.toString(), isBinary };
      const w = this.waiters.shift();
      if (w) w(frame);
      else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }

  async next() {
    const frame = this.frames.length
      ? this.frames.shift()
      : await new Promise((resolve) => this.waiters.push(resolve));
    assert.equal(frame.isBinary, false, 'frames from the server are text');
    return JSON.parse(frame.text);
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  async request(obj) {
    this.send(obj);
    return this.next();
  }

  // Opens a client and reads its `connected` hello.
  static async connect(url) {
    const c = await Client.open(url);
    const hello = await c.next();
    assert.deepEqual(Object.keys(hello), ['type', 'action', 'data']);
    assert.equal(hello.type, 'system');
    assert.equal(hello.action, 'connected');
    assert.deepEqual(Object.keys(hello.data), ['clientId']);
    assert.match(hello.data.clientId, HEX32);
    c.clientId = hello.data.clientId;
    return c;
  }
}

// ---- cases --------------------------------------------------------------

function argUrl(argv) {
  const i = argv.findIndex((a) => a === '--url' || a.startsWith('--url='));
  if (i < 0) return null;
  const url = argv[i].startsWith('--url=') ? argv[i].slice(6) : argv[i + 1];
  if (!url || !/^wss?:\/\/.+\/ws$/.test(url)) {
    console.log(`Bail out! --url wants ws://HOST:PORT/ws, got ${url}`);
    process.exit(1);
  }
  return url;
}

async function main() {
  let url = argUrl(process.argv.slice(2));
  let child = null;
  if (url === null) {
    try {
      const srv = await startServer();
      ok(true, `server started: ${srv.line}`);
      ({ child, url } = srv);
    } catch (e) {
      ok(false, 'server started', e.message);
      console.log(`1..${n}`);
      process.exit(1);
    }
  }
  const exited = child && new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const clients = [];
  const connect = async () => {
    const c = await Client.connect(url);
    clients.push(c);
    return c;
  };

  await check('connected hello with a 32-hex clientId, unique per client', async () => {
    const a = await connect();
    const b = await connect();
    assert.notEqual(a.clientId, b.clientId);
  });

  await check('bench/echo replies with response = data', async () => {
    const c = await connect();
    const data = { a: [1, 2.5, null, true], s: 'h\u00e9llo \u20ac', o: { x: {} } };
    assert.deepEqual(await c.request({ type: 'bench', action: 'echo', data }),
      { type: 'bench', action: 'echo', response: data });
    const r = await c.request({ type: 'bench', action: 'echo' });
    assert.deepEqual(r, { type: 'bench', action: 'echo' });
    assert.ok(!('response' in r), 'no data -> no response key');
    assert.deepEqual(await c.request({ type: 'bench', action: 'echo', data: null }),
      { type: 'bench', action: 'echo', response: null });
  });

  await check('requestId echoed (string, number, "" and 0); other types not', async () => {
    const c = await connect();
    for (const requestId of ['r1', 42, '', 0, -7.5]) {
      const r = await c.request({ type: 'bench', action: 'echo', data: 1, requestId });
      assert.deepEqual(Object.keys(r), ['type', 'action', 'response', 'requestId']);
      assert.deepEqual(r, { type: 'bench', action: 'echo', response: 1, requestId });
    }
    for (const requestId of [null, true, { a: 1 }, [1]]) {
      const r = await c.request({ type: 'bench', action: 'echo', data: 1, requestId });
      assert.deepEqual(r, { type: 'bench', action: 'echo', response: 1 });
    }
    // Requests in flight: replies come back in order, each with its id.
    for (let i = 0; i < 16; i++) c.send({ type: 'bench', action: 'echo', data: { i }, requestId: i });
    for (let i = 0; i < 16; i++) {
      assert.deepEqual(await c.next(), { type: 'bench', action: 'echo', response: { i }, requestId: i });
    }
  });

  await check('system/joinRoom: reply shape and defaults', async () => {
    const c = await connect();
    const r = await c.request({ type: 'system', action: 'joinRoom', data: { roomName: 'lobby' }, requestId: 'j' });
    assert.deepEqual(Object.keys(r), ['type', 'action', 'response', 'requestId']);
    assert.equal(r.type, 'system');
    assert.equal(r.action, 'joinRoom');
    assert.equal(r.requestId, 'j');
    assert.deepEqual(Object.keys(r.response), ['success', 'message', 'data']);
    assert.equal(r.response.success, true);
    assert.equal(r.response.message, 'Successfully joined room: lobby');
    const d = r.response.data;
    assert.deepEqual(Object.keys(d), ['userId', 'userType', 'username', 'roomName', 'joinedAt']);
    assert.equal(d.userId, c.clientId);
    assert.equal(d.userType, 'user');
    assert.equal(d.username, `user_${c.clientId.slice(0, 8)}`);
    assert.equal(d.roomName, 'lobby');
    assert.match(d.joinedAt, ISO_MS);
    assert.ok(Math.abs(Date.parse(d.joinedAt) - Date.now()) < 5000);

    const given = await c.request({ type: 'system', action: 'joinRoom',
      data: { roomName: 'b', userId: 7, userType: 'admin', username: 'ann' } });
    assert.equal(given.response.data.userId, 7);
    assert.equal(given.response.data.userType, 'admin');
    assert.equal(given.response.data.username, 'ann');

    for (const data of [undefined, 5, { roomName: '' }, { roomName: 3 }]) {
      assert.deepEqual(await c.request({ type: 'system', action: 'joinRoom', data }), {
        type: 'system', action: 'joinRoom',
        response: { success: false, error: 'Room name is required', clientId: c.clientId },
      });
    }
    const long = await c.request({ type: 'system', action: 'joinRoom', data: { roomName: 'x'.repeat(129) } });
    assert.equal(long.response.error, 'Room name is too long');
  });

  await check('bench/publish to 2 members: each gets the message, publisher gets delivered', async () => {
    const m1 = await connect();
    const m2 = await connect();
    const pub = await connect();
    for (const m of [m1, m2]) {
      const r = await m.request({ type: 'system', action: 'joinRoom', data: { roomName: 'fan' } });
      assert.equal(r.response.success, true);
    }
    // Rejoining does not duplicate membership.
    assert.equal((await m1.request({ type: 'system', action: 'joinRoom', data: { roomName: 'fan' } }))
      .response.success, true);

    const payload = { seq: 1, t: [1, 2, 3], s: '\u00e9' };
    assert.deepEqual(await pub.request({ type: 'bench', action: 'publish',
      data: { roomName: 'fan', payload }, requestId: 'p1' }),
    { type: 'bench', action: 'publish', response: { delivered: 2 }, requestId: 'p1' });
    const expected = { type: 'bench', action: 'message', data: { roomName: 'fan', payload } };
    assert.deepEqual(await m1.next(), expected);
    assert.deepEqual(await m2.next(), expected);

    // A member publishing gets its own copy before its reply; absent payload -> null.
    m1.send({ type: 'bench', action: 'publish', data: { roomName: 'fan' }, requestId: 2 });
    const nullMsg = { type: 'bench', action: 'message', data: { roomName: 'fan', payload: null } };
    assert.deepEqual(await m1.next(), nullMsg);
    assert.deepEqual(await m1.next(), { type: 'bench', action: 'publish', response: { delivered: 2 }, requestId: 2 });
    assert.deepEqual(await m2.next(), nullMsg);

    // An unknown room delivers nothing; a missing name is an error frame.
    assert.deepEqual(await pub.request({ type: 'bench', action: 'publish', data: { roomName: 'none', payload: 1 } }),
      { type: 'bench', action: 'publish', response: { delivered: 0 } });
    assert.deepEqual(await pub.request({ type: 'bench', action: 'publish', data: { payload: 1 }, requestId: 'e' }),
      { type: 'error', action: 'message', data: { error: 'Room name is required' }, requestId: 'e' });

    // A member that disconnects leaves the room.
    m2.ws.close();
    await m2.closed;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await pub.request({ type: 'bench', action: 'publish', data: { roomName: 'fan', payload: 3 } }))
      .response, { delivered: 1 });
    assert.deepEqual(await m1.next(), { type: 'bench', action: 'message', data: { roomName: 'fan', payload: 3 } });
  });

  await check('bench/user without a database: Invalid id, then database unavailable', async () => {
    const c = await connect();
    const err = (error, requestId) => ({ type: 'error', action: 'message', data: { error }, requestId });
    assert.deepEqual(await c.request({ type: 'bench', action: 'user', data: { id: 'x' }, requestId: 1 }),
      err('Invalid id', 1));
    assert.deepEqual(await c.request({ type: 'bench', action: 'user', requestId: 2 }), err('Invalid id', 2));
    assert.deepEqual(await c.request({ type: 'bench', action: 'user', data: { id: 1 }, requestId: 'u' }),
      err('database unavailable', 'u'));
  });

  await check('error frames: bad JSON, not an object, missing type/action, unknown route', async () => {
    const c = await connect();
    const err = (error, requestId) => {
      const f = { type: 'error', action: 'message', data: { error } };
      if (requestId !== undefined) f.requestId = requestId;
      return f;
    };
    assert.deepEqual(await c.request('{"type":'), err('Failed to parse JSON'));
    assert.deepEqual(await c.request('[1,2]'), err('Invalid WebSocket message'));
    assert.deepEqual(await c.request('null'), err('Invalid WebSocket message'));
    assert.deepEqual(await c.request({ action: 'echo', requestId: 1 }), err('Missing WebSocket message type', 1));
    assert.deepEqual(await c.request({ type: 'bench', action: '' }), err('Missing WebSocket message action'));
    assert.deepEqual(await c.request({ type: 'nope', action: 'x', requestId: 'u' }), err('Unknown route: nope/x', 'u'));
    // Binary frames are handled like text; invalid UTF-8 is a parse error.
    c.ws.send(Buffer.from('{"type":"bench","action":"echo","data":5}'));
    assert.deepEqual(await c.next(), { type: 'bench', action: 'echo', response: 5 });
    c.ws.send(Buffer.from([0x7b, 0xff, 0x7d]));
    assert.deepEqual(await c.next(), err('Failed to parse JSON'));
    // Still open after the errors.
    assert.deepEqual(await c.request({ type: 'bench', action: 'echo', data: 'ok' }),
      { type: 'bench', action: 'echo', response: 'ok' });
  });

  await check('wrong path is refused with 404', async () => {
    const status = await new Promise((resolve) => {
      const ws = new WebSocket(url.replace(/\/ws$/, '/other'));
      ws.on('unexpected-response', (req, res) => {
        resolve(res.statusCode);
        req.destroy();
      });
      ws.on('error', () => {});
      ws.on('open', () => resolve('opened'));
    });
    assert.equal(status, 404);
  });

  if (child) await check('SIGTERM closes clients with 1001 and exits 0', async () => {
    const open = clients.filter((c) => c.ws.readyState === WebSocket.OPEN);
    assert.ok(open.length > 0);
    child.kill('SIGTERM');
    const codes = await Promise.all(open.map((c) => c.closed));
    assert.ok(codes.every((code) => code === 1001), `close codes ${codes}`);
    assert.deepEqual(await exited, { code: 0, signal: null });
  });

  for (const c of clients) c.ws.terminate();
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  console.log(`1..${n}`);
  if (failed) console.log(`# ${failed} of ${n} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`Bail out! ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
