// test_pxljs.mjs - pxl.js (clients/js) under node:test against a real
// pxl-serve: requests, error texts, timeouts, pushed messages, rooms
// rejoined after a server restart on the same port, the token function on
// every reconnect, the bounded queue, maxAttempts, close(); the resume
// branch against a stand-in server speaking PROTOCOL.md's resume frames;
// npm pack. Run with the `ws` class passed in and with Node's global
// WebSocket (Node 20 needs --experimental-websocket: the file runs itself
// again with it). node:test prints TAP when stdout is not a terminal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

if (typeof globalThis.WebSocket !== 'function' && !process.env.PXLJS_REEXEC) {
  const r = spawnSync(process.execPath,
    ['--experimental-websocket', ...process.execArgv, fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, PXLJS_REEXEC: '1' } });
  process.exit(r.status ?? 1);
}

const { Server, appConfig, cleanup, WebSocket: WS, env } = await import('./pxltest.mjs');
const { connect, PxlError, backoffDelay } = await import('../../clients/js/pxl.js');

const SRCDIR = env('PXL_SRCDIR');
const IMPLS = [['ws', WS], ['global WebSocket', undefined]];
const FAST = { minDelay: 10, maxDelay: 100 };

// The next `name` event of client c whose detail passes pred.
function until(c, name, pred = () => true) {
  return new Promise((resolve) => {
    const off = c.addEventListener(name, (e) => {
      if (pred(e)) {
        off();
        resolve(e);
      }
    });
  });
}

async function opened(url, options = {}) {
  const c = connect(url, { WebSocket: WS, ...FAST, ...options });
  await until(c, 'open');
  return c;
}

// A port nothing listens on.
async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const b64url = (b) => Buffer.from(b).toString('base64url');
function jwt(payload, secret) {
  const m = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  return `${m}.${b64url(crypto.createHmac('sha256', secret).update(m).digest())}`;
}

const CFG = appConfig({ plugins: ['echo', 'system', 'testkit'] });
const srv = new Server(CFG, 'pxljs');
await srv.start();
const WSURL = srv.url();

test('backoffDelay: exponential from minDelay, capped, full/equal/none jitter', () => {
  const o = { minDelay: 100, maxDelay: 1000, factor: 2 };
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => backoffDelay(n, { ...o, jitter: 'none' })),
    [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoffDelay(3, { ...o, jitter: 'full' }, () => 0), 0);
  assert.equal(backoffDelay(3, { ...o, jitter: 'full' }, () => 0.5), 200);
  assert.equal(backoffDelay(3, { ...o, jitter: 'equal' }, () => 0), 200);
  assert.equal(backoffDelay(3, { ...o, jitter: 'equal' }, () => 0.999999), 400);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(1 + (i % 8), o);
    assert.ok(d >= 0 && d <= 1000, `full jitter ${d} within [0, cap]`);
  }
  assert.deepEqual([backoffDelay(1, {}, () => 0), backoffDelay(1, {}, () => 1)], [0, 500],
    'defaults: full jitter from 500 ms');
  assert.equal(backoffDelay(20, { jitter: 'none' }), 30000, 'default cap 30 s');
});

test('options are checked; no WebSocket implementation is a clear TypeError', () => {
  assert.throws(() => connect(WSURL, { WebSocket: WS, retries: 3 }), /unknown option "retries"/);
  assert.throws(() => connect(WSURL, { WebSocket: WS, jitter: 'half' }), /jitter must be/);
  assert.throws(() => connect(WSURL, { WebSocket: WS, queueLimit: -1 }), /queueLimit must be/);
  assert.throws(() => connect(WSURL, { WebSocket: WS, token: 5 }), /token must be/);
  assert.throws(() => connect(WSURL, { WebSocket: WS, reconnect: 'no' }), /reconnect must be/);
  assert.throws(() => connect('ftp://x/', { WebSocket: WS }), /must be ws:/);
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    assert.throws(() => connect(WSURL), (e) => e instanceof TypeError && /WebSocket option/.test(e.message));
  } finally {
    globalThis.WebSocket = saved;
  }
});

test('events only after connect() returns; close() at once; a throwing WebSocket class', async () => {
  const c = connect(WSURL, { WebSocket: WS });
  const ev = [];
  c.addEventListener('close', (e) => ev.push(e));
  await c.close(1000, 'never mind');
  assert.deepEqual([c.state, ev.map((e) => [e.code, e.reason, e.willReconnect])],
    ['closed', [[1000, 'never mind', false]]]);
  class Throws { constructor() { throw new Error('nope'); } }
  const d = connect(WSURL, { WebSocket: Throws, maxAttempts: 1, minDelay: 1 });
  const seen = [];
  for (const n of ['error', 'close', 'reconnecting', 'failed']) {
    d.addEventListener(n, (e) => seen.push(n === 'error' ? `error:${e.where}:${e.error.message}` : n));
  }
  await d.closed();
  assert.deepEqual(seen, ['error:connect:nope', 'close', 'reconnecting', 'error:connect:nope', 'close', 'failed']);
});

for (const [name, impl] of IMPLS) {
  test(`${name}: request and response, connected/open events, clientId`, async () => {
    const c = connect(WSURL, { WebSocket: impl });
    const connected = until(c, 'connected');
    const open = until(c, 'open');
    const early = c.request('test', 'echo', { early: true }); // queued until open
    const ce = await connected;
    assert.match(ce.clientId, /^[0-9a-f]{32}$/);
    assert.equal(ce.resumeToken, null, 'this server does not offer resume');
    const oe = await open;
    assert.deepEqual([oe.clientId, oe.reconnected, oe.resumed], [ce.clientId, false, false]);
    assert.equal(c.clientId, ce.clientId);
    assert.equal(c.state, 'open');
    assert.deepEqual(await early, { early: true });
    const data = { a: [1, 2.5, null, true], s: 'h\u00e9llo \u20ac' };
    assert.deepEqual(await c.request('test', 'echo', data), data);
    assert.equal(await c.request('echo', 'echo', 7), 7);
    assert.equal(await c.request('test', 'null'), null);
    assert.equal(await c.request('test', 'nothing'), undefined, 'a reply without response');
    // replies in any order, each to its own request
    const r = await Promise.all([40, 0, 20].map((ms) =>
      c.request('test', 'defer', { delay_ms: ms, value: ms })));
    assert.deepEqual(r, [40, 0, 20]);
    await c.close();
    assert.equal(c.state, 'closed');
  });

  test(`${name}: the server's error texts reject the request`, async () => {
    const c = await opened(WSURL, { WebSocket: impl });
    const rejects = (p, text) => assert.rejects(p, (e) =>
      e instanceof PxlError && e.code === 'server' && e.message === text
        && e.frame.type === 'error' && e.frame.action === 'message');
    await rejects(c.request('nope', 'x'), 'Unknown route: nope/x');
    await rejects(c.request('test', 'fail', 'z'), 'boom: z');
    await rejects(c.request('test', 'failPlain'), 'Unknown error');
    await rejects(c.request('test', 'defer', { delay_ms: 5, error: 'late boom' }), 'late boom');
    assert.equal(await c.request('test', 'echo', 1), 1, 'still open after errors');
    await c.close();
  });

  test(`${name}: pushed messages reach on() handlers; off() stops them`, async () => {
    const c = await opened(WSURL, { WebSocket: impl });
    const got = [];
    const any = [];
    const h = (data, frame) => got.push([data, frame]);
    c.on('news', 'flash', h);
    c.on('news', '*', (data) => any.push(data));
    const second = new Promise((resolve) => c.on('news', 'flash', (d) => d.n === 2 && resolve(d)));
    const msg = (n) => ({ message: { type: 'news', action: 'flash', data: { n } } });
    assert.equal(await c.request('test', 'sendAll', msg(1)), 1);
    assert.deepEqual(got, [[{ n: 1 }, { type: 'news', action: 'flash', data: { n: 1 } }]],
      'the push goes out before the reply');
    c.off('news', 'flash', h);
    assert.equal(await c.request('test', 'sendAll', msg(2)), 1);
    await second;
    assert.equal(got.length, 1, 'off() removed the handler');
    assert.deepEqual(any, [{ n: 1 }, { n: 2 }], 'the "*" action handler got both');
    // a room push
    const inRoom = new Promise((resolve) => c.on('chat', 'said', resolve));
    const j = await c.join('r1');
    assert.equal(j.success, true);
    assert.equal(j.data.roomName, 'r1');
    assert.deepEqual(c.rooms, ['r1']);
    assert.equal(await c.request('test', 'sendRoom',
      { room: 'r1', message: { type: 'chat', action: 'said', data: { text: 'hi' } } }), 1);
    assert.deepEqual(await inRoom, { text: 'hi' });
    await c.close();
  });

  test(`${name}: server restart on the same port: backoff, rooms rejoined, queued requests sent`, async () => {
    const a = new Server(CFG, 'restart-a');
    await a.start();
    const port = a.port;
    const c = await opened(a.url(), { WebSocket: impl, minDelay: 20, maxDelay: 200 });
    const firstId = c.clientId;
    const reconnecting = [];
    c.addEventListener('reconnecting', (e) => reconnecting.push(e));
    await c.join('lobby');
    await c.join('other', { username: 'bob' });
    const closed = until(c, 'close');
    let stateAtClose;
    c.addEventListener('reconnecting', () => { stateAtClose ??= c.state; });
    await a.stop(); // SIGTERM: the server closes everybody with 1001
    const ce = await closed;
    assert.deepEqual([ce.code, ce.willReconnect, stateAtClose], [1001, true, 'reconnecting']);
    const queued = [c.request('test', 'echo', 'q1'), c.request('test', 'echo', 'q2')];
    await until(c, 'reconnecting', (e) => e.attempt >= 2); // refused at least once
    const b = new Server(CFG.replace('port = 0;', `port = ${port};`), 'restart-b');
    const rejoined = until(c, 'rejoined');
    const reopened = until(c, 'open');
    await b.start();
    try {
      assert.equal(b.port, port);
      const rj = await rejoined;
      assert.deepEqual([rj.rooms.sort(), rj.failed, rj.resumeError], [['lobby', 'other'], [], undefined]);
      const oe = await reopened;
      assert.deepEqual([oe.reconnected, oe.resumed], [true, false]);
      assert.notEqual(c.clientId, firstId, 'a new connection, a new clientId');
      assert.deepEqual(await Promise.all(queued), ['q1', 'q2']);
      reconnecting.forEach((e, i) => {
        assert.equal(e.attempt, i + 1);
        assert.ok(e.delay >= 0 && e.delay <= 200, `delay ${e.delay} within the cap`);
      });
      assert.deepEqual(await c.request('system', 'listRooms'), { rooms: ['lobby', 'other'] });
      // a room broadcast after the restart reaches the client again
      const said = new Promise((resolve) => c.on('chat', 'said', resolve));
      const other = await opened(b.url());
      const members = await other.request('system', 'roomMembers', { roomName: 'other' });
      assert.deepEqual(members.members, [{ clientId: c.clientId, userId: c.clientId }]);
      assert.equal(await other.request('test', 'sendRoom',
        { room: 'lobby', message: { type: 'chat', action: 'said', data: { text: 'back' } } }), 1);
      assert.deepEqual(await said, { text: 'back' });
      await other.close();
      await c.close();
    } finally {
      c.close();
      await b.stop();
    }
  });
}

test('request timeout, per request and the default; a late reply is dropped', async () => {
  const c = await opened(WSURL, { requestTimeout: 50 });
  await assert.rejects(c.request('test', 'defer', { delay_ms: 300, value: 1 }),
    (e) => e instanceof PxlError && e.code === 'timeout' && /timed out after 50 ms/.test(e.message));
  await assert.rejects(c.request('test', 'defer', { delay_ms: 300, value: 2 }, { timeout: 20 }),
    (e) => e.code === 'timeout' && /after 20 ms/.test(e.message));
  // a longer timeout for one request; the late replies above are dropped
  assert.equal(await c.request('test', 'defer', { delay_ms: 400, value: 3 }, { timeout: 5000 }), 3);
  assert.equal(c.state, 'open');
  await c.close();
});

test('join/leave: a refused join rejects and is not remembered; leave forgets', async () => {
  const c = await opened(WSURL);
  await assert.rejects(c.join(''), (e) => e.code === 'refused' && e.message === 'Room name is required'
    && e.response.success === false);
  await c.join('a');
  await c.join('b');
  assert.deepEqual(c.rooms, ['a', 'b']);
  const left = await c.leave('a');
  assert.equal(left.message, 'Successfully left room: a');
  assert.deepEqual(c.rooms, ['b']);
  assert.deepEqual(await c.request('system', 'listRooms'), { rooms: ['b'] });
  await c.close();
});

test('token function called before every connect (auth.jwt required)', async () => {
  const secret = 'pxljs-secret';
  const a = new Server(appConfig({ plugins: ['system', 'testkit'],
    extra: `auth = { jwt = { secret = "${secret}"; required = true; }; };` }), 'auth');
  await a.start();
  try {
    const now = Math.floor(Date.now() / 1000);
    let calls = 0;
    const token = async () => {
      calls++;
      // the first token has expired already: 401, then a fresh one
      return jwt({ sub: String(100 + calls), exp: calls === 1 ? now - 60 : now + 60 }, secret);
    };
    const c = connect(a.url(), { WebSocket: WS, ...FAST, token });
    const auths = [];
    c.addEventListener('authenticated', (e) => auths.push(e.userId));
    const refused = until(c, 'close');
    await until(c, 'open');
    assert.equal((await refused).willReconnect, true, 'the expired token was refused');
    assert.deepEqual([calls, auths, c.userId], [2, [102], 102]);
    const again = until(c, 'open');
    await assert.rejects(c.request('test', 'close', { code: 4321, reason: 'again' }),
      (e) => e.code === 'closed' && e.closeCode === 4321);
    await again;
    assert.deepEqual([calls, auths, c.userId], [3, [102, 103], 103]);
    await c.close();
    // a plain string token
    const s = await opened(a.url(), { token: jwt({ sub: '5' }, secret) });
    assert.equal(s.userId, 5);
    await s.close();
  } finally {
    await a.stop();
  }
});

for (const [name, impl] of IMPLS) {
  test(`${name}: bounded queue: requests past queueLimit reject at once; close() rejects the rest`, async () => {
    const c = connect(`ws://127.0.0.1:${await deadPort()}/ws`, { WebSocket: impl, queueLimit: 2, minDelay: 1000 });
    const r1 = c.request('test', 'echo', 1);
    const r2 = c.request('test', 'echo', 2);
    await assert.rejects(c.request('test', 'echo', 3),
      (e) => e instanceof PxlError && e.code === 'queue_full' && /queue is full/.test(e.message));
    const closing = c.close();
    await Promise.all([assert.rejects(r1, (e) => e.code === 'closed'),
      assert.rejects(r2, (e) => e.code === 'closed'), closing]);
    await assert.rejects(c.request('test', 'echo', 4), (e) => e.code === 'closed');
  });

  test(`${name}: maxAttempts: the last failure ends with close (willReconnect false) and failed`, async () => {
    const c = connect(`ws://127.0.0.1:${await deadPort()}/ws`,
      { WebSocket: impl, maxAttempts: 3, minDelay: 5, maxDelay: 15, jitter: 'none' });
    const events = [];
    for (const n of ['close', 'reconnecting', 'failed']) c.addEventListener(n, (e) => events.push(e));
    const queued = assert.rejects(c.request('test', 'echo', 1), (e) => e.code === 'failed');
    const failed = await until(c, 'failed');
    assert.equal(failed.attempts, 3);
    assert.deepEqual(events.map((e) => e.type + (e.type === 'reconnecting' ? `:${e.attempt}:${e.delay}` : '')),
      ['close', 'reconnecting:1:5', 'close', 'reconnecting:2:10', 'close', 'reconnecting:3:15', 'close', 'failed']);
    assert.equal(events.at(-2).willReconnect, false);
    assert.equal(c.state, 'closed');
    await queued;
    await c.closed();
  });
}

test('close() stops reconnecting, also from a reconnecting listener', async () => {
  let made = 0;
  class Counting extends WS {
    constructor(...args) {
      super(...args);
      made++;
    }
  }
  const c = connect(`ws://127.0.0.1:${await deadPort()}/ws`,
    { WebSocket: Counting, minDelay: 30, maxDelay: 30, jitter: 'none' });
  const closes = [];
  c.addEventListener('close', (e) => closes.push(e));
  c.addEventListener('reconnecting', () => c.close());
  await c.closed();
  assert.deepEqual(closes.map((e) => e.willReconnect), [true, false]);
  // Proving an absence needs a wait: 5 backoff delays without a new socket.
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(made, 1);
  // close() while open: a pending request rejects, no reconnect
  const o = await opened(WSURL);
  const pending = assert.rejects(o.request('test', 'defer', { delay_ms: 300, value: 1 }),
    (e) => e.code === 'closed');
  const fin = until(o, 'close');
  await o.close();
  await pending;
  assert.deepEqual([(await fin).code, (await fin).willReconnect, o.state], [1000, false, 'closed']);
  // testkit leaks a deferred reply still pending at shutdown: wait for it
  // to fire (server timers of equal delay fire in order).
  const barrier = await opened(WSURL);
  assert.equal(await barrier.request('test', 'defer', { delay_ms: 300, value: 2 }), 2);
  await barrier.close();
});

// The resume branch, against a stand-in server that speaks exactly the
// frames of PROTOCOL.md "History and resume (pxl)" (pxl-serve has none yet).
test('resume: tried first after a reconnect when offered; falls back to rejoin', async () => {
  const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const conns = [];
  const arrived = [];
  let resumeReply;
  wss.on('connection', (ws) => {
    const n = conns.push({ ws, got: [] });
    ws.send(JSON.stringify({ type: 'system', action: 'connected',
      data: { clientId: `id${n}`, resumeToken: `tok${n}` } }));
    ws.on('message', (buf) => {
      const m = JSON.parse(buf.toString());
      conns[n - 1].got.push(m);
      const reply = (response) => ws.send(JSON.stringify({ type: m.type, action: m.action,
        response, requestId: m.requestId }));
      if (m.action === 'joinRoom') {
        reply({ success: true, message: `Successfully joined room: ${m.data.roomName}`, data: {} });
      } else if (m.action === 'resume') {
        const r = resumeReply(m, ws);
        reply(r);
      } else {
        reply(m.data);
      }
      for (const w of arrived.splice(0)) w();
    });
  });
  const url = `ws://127.0.0.1:${wss.address().port}/ws`;
  try {
    const c = await opened(url);
    await c.join('r1');
    await c.join('r2');
    const seen = [];
    c.on('bench', 'message', (d, f) => seen.push(f.pos));
    const two = new Promise((resolve) => c.on('x', 'y', resolve));
    conns[0].ws.send(JSON.stringify({ type: 'bench', action: 'message',
      data: { roomName: 'r1', payload: 1 }, pos: 'e1:4' }));
    conns[0].ws.send(JSON.stringify({ type: 'x', action: 'y', data: { roomName: 'r2' }, pos: 'e2:9' }));
    await two;

    // 1. resume works: missed frame first, then the reply; no joinRoom
    resumeReply = (m, ws) => {
      ws.send(JSON.stringify({ type: 'bench', action: 'message',
        data: { roomName: 'r1', payload: 2 }, pos: 'e1:5' }));
      return { success: true, clientId: 'id1', resumeToken: 'tokNEW',
        rooms: { r1: { recovered: true }, r2: { recovered: false } } };
    };
    const resumed = until(c, 'resumed');
    let open = until(c, 'open');
    conns[0].ws.close(1001, 'going away');
    const re = await resumed;
    assert.deepEqual([re.clientId, re.previousClientId, re.rooms],
      ['id1', 'id2', { r1: { recovered: true }, r2: { recovered: false } }]);
    assert.deepEqual([(await open).resumed, c.clientId], [true, 'id1']);
    assert.equal(await c.request('t', 'echo', 'after'), 'after');
    assert.deepEqual(conns[1].got.map((m) => m.action), ['resume', 'echo'], 'resume first, no joinRoom');
    assert.deepEqual(conns[1].got[0].data, { token: 'tok1', rooms: { r1: 'e1:4', r2: 'e2:9' } });
    assert.deepEqual(seen, ['e1:4', 'e1:5']);

    // 2. refused: the reply's new token was used; rooms joined again
    resumeReply = () => ({ success: false, error: 'Session expired' });
    const rejoined = until(c, 'rejoined');
    open = until(c, 'open');
    conns[1].ws.close(1001, 'going away');
    const rj = await rejoined;
    assert.deepEqual([rj.rooms.sort(), rj.failed, rj.resumeError], [['r1', 'r2'], [], 'Session expired']);
    assert.deepEqual([(await open).resumed, c.clientId], [false, 'id3']);
    assert.deepEqual(conns[2].got.map((m) => m.action), ['resume', 'joinRoom', 'joinRoom']);
    assert.deepEqual(conns[2].got[0].data, { token: 'tokNEW', rooms: { r1: 'e1:5' } },
      'r2 was not recovered: no position sent for it');

    // 3. the resume option off: straight to rejoin
    await c.close();
    const d = await opened(url, { resume: false });
    await d.join('r9');
    const rj2 = until(d, 'rejoined');
    conns[3].ws.close(1001);
    assert.deepEqual((await rj2).rooms, ['r9']);
    assert.deepEqual(conns[4].got.map((m) => m.action), ['joinRoom']);
    await d.close();
  } finally {
    for (const cn of conns) cn.ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});

test('package: version matches configure.ac; npm pack installs and imports', () => {
  const dir = path.join(SRCDIR, 'clients', 'js');
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const ac = /AC_INIT\(\[pxl\], \[([^\]]+)\]/.exec(fs.readFileSync(path.join(SRCDIR, 'configure.ac'), 'utf8'));
  assert.equal(pkg.version, ac[1]);
  assert.deepEqual(pkg.dependencies ?? {}, {}, 'no runtime dependencies');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxljs-pack-'));
  try {
    const run = (cmd, args, cwd) => {
      const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
      assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const tgz = run('npm', ['pack', '--silent', '--pack-destination', tmp], dir).trim().split('\n').at(-1);
    const listing = run('tar', ['tzf', path.join(tmp, tgz)], tmp).split('\n').filter(Boolean).sort();
    assert.deepEqual(listing, ['package/README.md', 'package/package.json', 'package/pxl.d.ts', 'package/pxl.js']);
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true,"type":"module"}\n');
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--silent', path.join(tmp, tgz)], app);
    const out = run(process.execPath, ['--input-type=module', '-e',
      `import { connect, PxlError, backoffDelay } from '${pkg.name}';
       import def from '${pkg.name}';
       console.log(typeof connect, typeof PxlError, typeof backoffDelay, typeof def.connect);`], app);
    assert.equal(out.trim(), 'function function function function');
    assert.ok(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'pxl.d.ts')));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('server exits 0 on SIGTERM, clean log', async () => {
  await srv.stop();
  cleanup();
});
