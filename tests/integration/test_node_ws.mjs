// test_node_ws.mjs - pxl-serve with Node's `ws` client: routed round trip
// with requestId, error reply, binary echo, ping/pong, a close code sent by
// the server, a 64 KiB message and 50 concurrent clients.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { Client, Server, TAP, appConfig } from './pxltest.mjs';

const tap = new TAP();
tap.deadline(60);

const reply = (type, action, response, requestId) => {
  const r = { type, action };
  if (response !== undefined) r.response = response;
  if (requestId !== undefined) r.requestId = requestId;
  return r;
};

async function withClient(url, fn) {
  const c = await Client.open(url);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

async function main(srv) {
  const url = srv.url();

  await tap.case('routed round trip with requestId', () => withClient(url, async (c) => {
    const data = { a: [1, 2.5, null, true], s: 'h\u00e9llo \u20ac' };
    assert.deepStrictEqual(
      await c.request({ type: 'test', action: 'echo', data, requestId: 'n1' }),
      reply('test', 'echo', data, 'n1'));
    assert.deepStrictEqual(
      await c.request({ type: 'echo', action: 'echo', data: 7, requestId: 0 }),
      reply('echo', 'echo', 7, 0));
    assert.deepStrictEqual(await c.request({ type: 'test', action: 'nothing' }),
      reply('test', 'nothing'));
  }));

  await tap.case('error reply: Unknown route and a handler error, with requestId', () => withClient(url, async (c) => {
    assert.deepStrictEqual(
      await c.request({ type: 'nope', action: 'x', requestId: 5 }),
      { type: 'error', action: 'message', data: { error: 'Unknown route: nope/x' }, requestId: 5 });
    assert.deepStrictEqual(
      await c.request({ type: 'test', action: 'fail', data: 'z', requestId: 'f' }),
      { type: 'error', action: 'message', data: { error: 'boom: z' }, requestId: 'f' });
    await c.send('{"type":"test"');
    assert.deepStrictEqual(await c.json(),
      { type: 'error', action: 'message', data: { error: 'Failed to parse JSON' } });
    assert.deepStrictEqual(await c.request({ type: 'test', action: 'echo', data: 1 }),
      reply('test', 'echo', 1), 'still open after errors');
  }));

  await tap.case('binary message echoed as binary', () => withClient(url, async (c) => {
    const data = crypto.randomBytes(1000);
    data[0] = 0xff;
    await c.send(data, { binary: true });
    const m = await c.next();
    assert.equal(m.isBinary, true, 'echo is a binary frame');
    assert.ok(Buffer.compare(Buffer.from(m.data), data) === 0, 'same bytes');
  }));

  await tap.case('ws.ping(data) -> pong event with the same data', () => withClient(url, async (c) => {
    for (const payload of [Buffer.from('abc'), Buffer.alloc(0), crypto.randomBytes(125)]) {
      const pong = new Promise((resolve) => c.ws.once('pong', resolve));
      c.ws.ping(payload);
      const got = await pong;
      assert.ok(Buffer.compare(got, payload) === 0, `pong ${got.toString('hex')} for ${payload.toString('hex')}`);
    }
  }));

  await tap.case('close code and reason from the server via test/close', async () => {
    const c = await Client.open(url);
    await c.send(JSON.stringify({ type: 'test', action: 'close', data: { code: 4123, reason: 'see you' } }));
    const info = await c.closed;
    assert.deepStrictEqual(info, { code: 4123, reason: 'see you' });
  });

  await tap.case('64 KiB text message round trip', () => withClient(url, async (c) => {
    const data = 'x'.repeat(64 * 1024 - 7) + '\u00e9\u20ac';
    assert.deepStrictEqual(
      await c.request({ type: 'test', action: 'echo', data, requestId: 64 }),
      reply('test', 'echo', data, 64));
  }));

  await tap.case('64 KiB binary message echoed', () => withClient(url, async (c) => {
    const data = crypto.randomBytes(64 * 1024);
    await c.send(data, { binary: true });
    const m = await c.next();
    assert.equal(m.isBinary, true);
    assert.ok(Buffer.compare(Buffer.from(m.data), data) === 0, 'same bytes');
  }));

  await tap.case('50 concurrent clients, one request each', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => Client.open(url)));
    try {
      const replies = await Promise.all(clients.map((c, i) =>
        c.request({ type: 'test', action: 'echo', data: { i }, requestId: `c${i}` })));
      replies.forEach((r, i) => assert.deepStrictEqual(r, reply('test', 'echo', { i }, `c${i}`)));
      const deferred = await Promise.all(clients.map((c, i) =>
        c.request({ type: 'test', action: 'defer', data: { delay_ms: 50 - i, value: i }, requestId: i })));
      deferred.forEach((r, i) => assert.deepStrictEqual(r, reply('test', 'defer', i, i)));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }, 40000);
}

const srv = new Server(appConfig({ plugins: ['echo', 'testkit'] }), 'node');
try {
  await srv.start();
  await main(srv);
} catch (e) {
  tap.ok(false, 'setup', e.stack);
} finally {
  await tap.case('server exits 0 on SIGTERM, clean log', () => srv.stop());
  tap.done();
}
