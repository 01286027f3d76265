#!/usr/bin/env node
// server.mjs - the reference server for pxl's side-by-side benchmark.
//
// Node.js + `ws` (the library the Node.js framework runs on), written the
// way a typical `ws` app is: one http server with a noServer
// WebSocketServer on its `upgrade` event, JSON.parse per message,
// JSON.stringify per send, a Map of room name -> Set of sockets, ws.send
// per recipient (a broadcast is serialised once and the same string sent
// to every member). It speaks the subset of PROTOCOL.md the benchmark
// drives: the `system/connected` hello, system/joinRoom, bench/echo,
// bench/publish, bench/user, requestId echo and the error frame.
//
// bench/user reads one row of PostgreSQL's bench_users by primary key
// with `pg` (node-postgres): a Pool, a named prepared statement, await.
//
//   node server.mjs [--port N] [--host H] [--database URL] [--pool N]
//   (env PORT, DATABASE_URL; default port 0, pool 4)
//
// Prints "listening on HOST:PORT/ws" on stdout once listening. SIGTERM or
// SIGINT closes every client with 1001 and exits 0.
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import process from 'node:process';

// Loaded with require so NODE_PATH works too (as in tests/integration).
const require = createRequire(import.meta.url);
const { WebSocket, WebSocketServer } = require('ws');

const PATH = '/ws';
const MAX_MESSAGE_SIZE = 4 * 1024 * 1024; // pxl's limits.max_message_size
const MAX_ROOM_NAME = 128; // pxl's rooms.max_name_length (bytes)
const MAX_ROOMS_PER_CLIENT = 64; // pxl's rooms.max_per_client
const SHUTDOWN_GRACE_MS = 2000;

// ---- options ------------------------------------------------------------

function usage(status) {
  (status ? process.stderr : process.stdout).write(
    'usage: node server.mjs [--port N] [--host H] [--database URL] [--pool N]\n' +
    '       (env PORT, DATABASE_URL; port 0 = any; pool 4)\n');
  process.exit(status);
}

function parseArgs(argv) {
  const opts = {
    host: '127.0.0.1',
    port: process.env.PORT ?? '0',
    database: process.env.DATABASE_URL,
    pool: '4',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (name === '--port' || name === '-p') opts.port = value();
    else if (name === '--host') opts.host = value();
    else if (name === '--database') opts.database = value();
    else if (name === '--pool') opts.pool = value();
    else if (name === '--help' || name === '-h') usage(0);
    else {
      process.stderr.write(`server.mjs: unknown option ${arg}\n`);
      usage(2);
    }
  }
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`server.mjs: bad port ${opts.port}\n`);
    process.exit(2);
  }
  const pool = Number(opts.pool);
  if (!Number.isInteger(pool) || pool < 1 || pool > 256) {
    process.stderr.write(`server.mjs: bad pool size ${opts.pool}\n`);
    process.exit(2);
  }
  if (!opts.host) usage(2);
  return { host: opts.host, port, database: opts.database, pool };
}

// ---- rooms --------------------------------------------------------------

const rooms = new Map(); // room name -> Set of sockets

// PROTOCOL.md "Details": required, invalid (U+0000), too long - in order.
function roomNameError(name) {
  if (typeof name !== 'string' || name === '') return 'Room name is required';
  if (name.includes('\u0000')) return 'Invalid room name';
  if (Buffer.byteLength(name) > MAX_ROOM_NAME) return 'Room name is too long';
  return null;
}

function leaveAllRooms(ws) {
  for (const name of ws.rooms) {
    const members = rooms.get(name);
    if (members === undefined) continue;
    members.delete(ws);
    if (members.size === 0) rooms.delete(name);
  }
  ws.rooms.clear();
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// ---- routes: (ws, data) -> response (undefined = no response key) ---------

function joinRoom(ws, data) {
  const roomName = isObject(data) ? data.roomName : undefined;
  const refuse = (error) => ({ success: false, error, clientId: ws.clientId });
  const bad = roomNameError(roomName);
  if (bad !== null) return refuse(bad);

  if (!ws.rooms.has(roomName)) {
    if (ws.rooms.size >= MAX_ROOMS_PER_CLIENT) return refuse('Too many rooms');
    let members = rooms.get(roomName);
    if (members === undefined) {
      members = new Set();
      rooms.set(roomName, members);
    }
    members.add(ws);
    ws.rooms.add(roomName);
  }
  const { userId, userType, username } = data;
  return {
    success: true,
    message: `Successfully joined room: ${roomName}`,
    data: {
      userId: typeof userId === 'string' || typeof userId === 'number' ? userId : ws.clientId,
      userType: typeof userType === 'string' ? userType : 'user',
      username: typeof username === 'string' ? username : `user_${ws.clientId.slice(0, 8)}`,
      roomName,
      joinedAt: new Date().toISOString(),
    },
  };
}

function echo(ws, data) {
  return data;
}

function publish(ws, data) {
  const roomName = isObject(data) ? data.roomName : undefined;
  const bad = roomNameError(roomName);
  if (bad !== null) throw new Error(bad);
  const payload = data.payload === undefined ? null : data.payload;

  let delivered = 0;
  const members = rooms.get(roomName);
  if (members !== undefined) {
    const frame = JSON.stringify({ type: 'bench', action: 'message', data: { roomName, payload } });
    for (const member of members) {
      if (member.readyState !== WebSocket.OPEN) continue;
      member.send(frame);
      delivered++;
    }
  }
  return { delivered };
}

// bench/user {id} -> the row of bench_users with that primary key, as
// pxl's bench plugin replies it. The pool is made once the options are
// read; timestamptz stays PostgreSQL's text, as pxl sends it (no Date).
const USER_QUERY = {
  name: 'bench-user',
  text: 'SELECT id, name, email, created FROM bench_users WHERE id = $1',
};
let db = null;

async function user(ws, data) {
  const id = isObject(data) ? data.id : undefined;
  if (!Number.isInteger(id)) throw new Error('Invalid id');
  if (db === null) throw new Error('database unavailable');
  const { rows } = await db.query({ ...USER_QUERY, values: [id] });
  if (rows.length === 0) throw new Error('User not found');
  return rows[0];
}

const routes = new Map([
  ['system:joinRoom', joinRoom],
  ['bench:echo', echo],
  ['bench:publish', publish],
  ['bench:user', user],
]);

// ---- messages -----------------------------------------------------------

function sendError(ws, error, requestId) {
  const frame = { type: 'error', action: 'message', data: { error } };
  if (requestId !== undefined) frame.requestId = requestId;
  ws.send(JSON.stringify(frame));
}

function onMessage(ws, raw, isBinary) {
  // A binary frame is handled like a text one; ws has already checked
  // that text frames are UTF-8.
  if (isBinary && !isUtf8(raw)) return sendError(ws, 'Failed to parse JSON');
  let msg;
  try {
    msg = JSON.parse(raw.toString());
  } catch {
    return sendError(ws, 'Failed to parse JSON');
  }
  if (!isObject(msg)) return sendError(ws, 'Invalid WebSocket message');

  const { type, action, data, requestId: rid } = msg;
  const requestId = typeof rid === 'string' || typeof rid === 'number' ? rid : undefined;
  if (typeof type !== 'string' || type === '') {
    return sendError(ws, 'Missing WebSocket message type', requestId);
  }
  if (typeof action !== 'string' || action === '') {
    return sendError(ws, 'Missing WebSocket message action', requestId);
  }
  const handler = routes.get(`${type}:${action}`);
  if (handler === undefined) {
    return sendError(ws, `Unknown route: ${type}/${action}`, requestId);
  }

  const fail = (err) => sendError(ws, (err instanceof Error && err.message) || 'Unknown error', requestId);
  const answer = (response) => {
    // The client may have gone while an async handler ran.
    if (ws.readyState !== WebSocket.OPEN) return;
    const reply = { type, action };
    if (response !== undefined) reply.response = response;
    if (requestId !== undefined) reply.requestId = requestId;
    ws.send(JSON.stringify(reply));
  };
  let response;
  try {
    response = handler(ws, data);
  } catch (err) {
    return fail(err);
  }
  if (response instanceof Promise) {
    response.then(answer, (err) => {
      if (ws.readyState === WebSocket.OPEN) fail(err);
    });
  } else {
    answer(response);
  }
}

// ---- server -------------------------------------------------------------

const { host, port, database, pool } = parseArgs(process.argv.slice(2));

if (database) {
  // Only with a database: a node_modules with ws alone still serves the rest.
  const pg = require('pg');
  pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (text) => text);
  db = new pg.Pool({ connectionString: database, max: pool });
  db.on('error', (err) => process.stderr.write(`database: ${err.message}\n`));
}

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_SIZE });

wss.on('connection', (ws) => {
  ws.clientId = randomUUID().replace(/-/g, '');
  ws.rooms = new Set();
  ws.on('message', (raw, isBinary) => onMessage(ws, raw, isBinary));
  ws.on('close', () => leaveAllRooms(ws));
  ws.on('error', (err) => process.stderr.write(`client ${ws.clientId}: ${err.message}\n`));
  ws.send(JSON.stringify({ type: 'system', action: 'connected', data: { clientId: ws.clientId } }));
});

function refuseHttp(socket, status, text) {
  const body = `${text}\n`;
  socket.end(`HTTP/1.1 ${status} ${text}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' + body);
}

const server = http.createServer((req, res) => {
  // Plain HTTP: a GET /ws without the upgrade is a bad upgrade (400).
  const onPath = req.url.split('?', 1)[0] === PATH;
  const body = onPath ? 'Bad Request\n' : 'Not Found\n';
  res.writeHead(onPath ? 400 : 404, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
  res.end(body);
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  if (req.url.split('?', 1)[0] !== PATH) return refuseHttp(socket, 404, 'Not Found');
  // ws answers bad upgrades itself (400, or 426 for a wrong version).
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.on('error', (err) => {
  process.stderr.write(`server.mjs: ${err.message}\n`);
  process.exit(1);
});

server.listen(port, host, () => {
  process.stdout.write(`listening on ${host}:${server.address().port}${PATH}\n`);
});

let stopping = false;

function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close();
  const exit = () => process.exit(0);
  // wss 'close' fires once every client has gone (then the pool's
  // connections are closed); bound the wait.
  wss.close(() => (db === null ? exit() : db.end().finally(exit)));
  setTimeout(() => {
    for (const ws of wss.clients) ws.terminate();
    exit();
  }, SHUTDOWN_GRACE_MS).unref();
  for (const ws of wss.clients) ws.close(1001, 'server shutdown');
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
