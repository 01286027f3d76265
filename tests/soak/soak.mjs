// soak.mjs - a chaos soak of pxl-serve, bounded in time, loopback only.
//
// It starts its own redis-server (private port, temp dir, no persistence)
// and a pxl-serve cluster of 2 workers with Redis (plugins system and
// bench), then for --seconds runs at once:
//
//   churn     --connections connections in total, about --concurrent at a
//             time, from source addresses 127.0.0.2.. (ws localAddress),
//             that join and leave rooms, publish (bench/publish) with
//             unique ids, ask roomMembers, echo, and disconnect (close,
//             terminate, or terminate with a request in flight);
//   stable    --stable clients that stay connected, each a member of 4 of
//             the churn's rooms (every room has 2 of them), and count what
//             they receive;
//   echo      --echo well-behaved clients (own thread) with one bench/echo
//             in flight each, recording latency;
//   abuse     abusive clients (own thread, see abuse.mjs);
//   chaos     kill -9 of one worker (at 40 % of the run; the master
//             restarts it) and a restart of redis-server (at 70 %: stop,
//             2 s, start on the same port).
//
// Then every client leaves and it checks, one TAP case each (--tap;
// tests/soak/README.md lists them): no worker died but the one killed, a
// clean server log, a clean exit on SIGTERM, open fds of the master, each
// worker slot and redis-server back to their values before the run, RSS
// back within --rss-tolerance % (on AddressSanitizer builds with its
// quarantine off for the server; PXL_SOAK_ASAN_RSS=skip skips), every publish acked outside the chaos
// windows delivered exactly once to each stable member of its room, no
// duplicate ever, echo p99 under --p99 ms over the run and in every
// 10-second bucket, and for the abusive clients only what PROTOCOL.md
// and pxl.cfg(5) promise today (1009 over max_message_size, a client
// that does not read is dropped, limits.handshake_timeout).
//
// Environment: PXL_SERVE (the pxl-serve binary or libtool wrapper),
// PXL_PLUGIN_PATH (where system.so and bench.so are), NODE_PATH (the `ws`
// package), REDIS_SERVER (default /usr/bin/redis-server), PXL_KEEP_TMP=1
// keeps the temp dir (app file, logs).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

import { localAddr, now, openWs, percentile, pick, rand, sleep, sortedNums } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---- options -------------------------------------------------------------------

const HELP = `usage: soak.mjs [options]
  --seconds N        length of the chaos run (default 60)
  --connections N    churn connections opened in total (default 2000)
  --concurrent N     churn connections open at a time (default min(500, N))
  --stable N         stable clients (default 16)
  --echo N           echo clients (default 100)
  --rooms N          churn rooms (default 32; even)
  --action-ms N      mean pause between a churn client's requests (default 3000)
  --addresses N      source addresses 127.0.0.2.. (default 60)
  --margin N         seconds around each chaos event excluded from the
                     exactly-once check (default 3)
  --p99 N            echo p99 bound in ms (default 50)
  --rss-tolerance N  % of RSS growth allowed (default 10; 25 on an
                     AddressSanitizer build, whose allocator returns
                     memory to the system less exactly)
  --asan-rss MODE    skip|check the RSS cases for AddressSanitizer builds
                     (default check, with ASan's quarantine off for the
                     server; env PXL_SOAK_ASAN_RSS)
  --flood-rate N     message flooder's requests per second (default 5000)
  --no-kill          no worker kill      --no-redis-restart  no Redis restart
  --no-abuse         no abusive clients
  --abuse LIST       only these abusive clients, comma-separated, of
                     pingFlood,slowloris,silent,pipeline,nonReader,busyPub,
                     hugeUser,msgFlood (default all)
  --rss-cap MB       stop the abusive clients early if a server process
                     grows past MB (default 2048; protects the machine)
  --extra-config S   text appended to the app file (e.g. limits the server
                     learns later)
  --json FILE        write every figure to FILE
  --tap              TAP output (one case per check)`;

const ABUSE_KINDS = ['pingFlood', 'slowloris', 'silent', 'pipeline', 'nonReader', 'busyPub',
  'hugeUser', 'msgFlood'];

function parseArgs(argv) {
  const o = { seconds: 60, connections: 2000, concurrent: null, stable: 16, echo: 100,
    rooms: 32, actionMs: 3000, addresses: 60, margin: 3, p99: 50, rssTolerance: 10,
    asanRss: process.env.PXL_SOAK_ASAN_RSS || 'check', floodRate: 5000, kill: true,
    redisRestart: true, abuse: true, abuseKinds: ABUSE_KINDS, rssCap: 2048, extraConfig: '',
    json: null, tap: false };
  const num = { '--seconds': 'seconds', '--connections': 'connections',
    '--concurrent': 'concurrent', '--stable': 'stable', '--echo': 'echo', '--rooms': 'rooms',
    '--action-ms': 'actionMs', '--addresses': 'addresses', '--margin': 'margin',
    '--p99': 'p99', '--rss-tolerance': 'rssTolerance', '--flood-rate': 'floodRate',
    '--rss-cap': 'rssCap' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (num[a]) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
      o[num[a]] = v;
      if (a === '--rss-tolerance') o.rssToleranceSet = true;
    } else if (a === '--asan-rss') o.asanRss = argv[++i];
    else if (a === '--extra-config') o.extraConfig = argv[++i];
    else if (a === '--abuse') {
      o.abuseKinds = String(argv[++i]).split(',').filter(Boolean);
      const bad = o.abuseKinds.filter((k) => !ABUSE_KINDS.includes(k));
      if (bad.length) throw new Error(`unknown abusive client ${bad}`);
    }
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--tap') o.tap = true;
    else if (a === '--no-kill') o.kill = false;
    else if (a === '--no-redis-restart') o.redisRestart = false;
    else if (a === '--no-abuse') o.abuse = false;
    else if (a === '-h' || a === '--help') {
      console.log(HELP);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  if (o.concurrent === null) o.concurrent = Math.min(500, o.connections);
  o.concurrent = Math.min(o.concurrent, o.connections);
  if (o.rooms < 2 || o.rooms % 2) throw new Error('--rooms must be even and at least 2');
  if (!['skip', 'check'].includes(o.asanRss)) throw new Error('--asan-rss is skip or check');
  return o;
}

let opt;
try {
  opt = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

// ---- output ----------------------------------------------------------------------

const out = {
  n: 0, failed: [],
  line(s) { console.log(opt.tap ? `# ${s}` : s); },
  check(cond, name, diag, skip) {
    this.n++;
    const esc = name.replace(/#/g, '\\#');
    if (skip) {
      console.log(opt.tap ? `ok ${this.n} - ${esc} # SKIP ${skip}` : `SKIP  ${name} (${skip})`);
    } else if (opt.tap) {
      console.log(`${cond ? 'ok' : 'not ok'} ${this.n} - ${esc}`);
    } else {
      console.log(`${cond ? 'PASS' : 'FAIL'}  ${name}`);
    }
    if (!cond && !skip) this.failed.push(name);
    if (diag && (!cond || skip)) for (const l of String(diag).split('\n')) console.log(`#   ${l}`);
    return cond;
  },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxl-soak-'));
const children = new Set();
function killChildren() {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', () => {
  killChildren();
  if (!process.env.PXL_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

function bail(why) {
  console.log(opt.tap ? `Bail out! ${why}` : `ERROR: ${why}`);
  if (process.env.PXL_KEEP_TMP) console.log(`# files kept in ${tmp}`);
  process.exit(1);
}

// The whole script is bounded: setup + warm-up + run + settle + stop.
const DEADLINE_S = opt.seconds + 90;
setTimeout(() => bail(`did not finish within ${DEADLINE_S} s`), DEADLINE_S * 1000).unref();

function needEnv(name) {
  const v = process.env[name];
  if (!v) bail(`${name} is not set (run through make check, or set it)`);
  return v;
}

// ---- /proc -----------------------------------------------------------------------

function loadavg() {
  try { return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; }
}

function fdCount(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return null; }
}

function fdKinds(pid) {
  const k = {};
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let t;
      try { t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      t = t.replace(/\[\d+\]$/, '').replace(/^\/.*/, 'file');
      k[t] = (k[t] || 0) + 1;
    }
  } catch { /* gone */ }
  return k;
}

function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

const CLK_TCK = 100;
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch { return null; }
}

function childPids(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)
      .filter(Boolean).map(Number);
  } catch { return []; }
}

function hasAsan(pid) {
  try { return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan'); } catch { return false; }
}

// The process owning the server side of a client's TCP connection (from
// /proc/net/tcp and the fds of the candidates), or null.
function ownerOf(localAddress, localPort, serverPort, pids) {
  const hex = (ip, port) => ip.split('.').reverse()
    .map((x) => Number(x).toString(16).padStart(2, '0')).join('').toUpperCase()
    + ':' + port.toString(16).padStart(4, '0').toUpperCase();
  const want = hex(localAddress, localPort);
  let inode = null;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[2] === want && f[1].endsWith(':' + serverPort.toString(16).padStart(4, '0').toUpperCase())) {
      inode = f[9];
      break;
    }
  }
  if (!inode) return null;
  for (const pid of pids) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
        } catch { /* closed meanwhile */ }
      }
    } catch { /* gone */ }
  }
  return null;
}

// ---- redis-server ----------------------------------------------------------------

const REDIS = process.env.REDIS_SERVER || '/usr/bin/redis-server';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One inline command, the first reply line (or an error).
function redisCommand(port, cmd, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error('redis timeout')); }, timeoutMs);
    s.on('error', (e) => { clearTimeout(t); reject(e); });
    s.on('connect', () => s.write(cmd + '\r\n'));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        clearTimeout(t);
        s.destroy();
        resolve(buf.slice(0, i));
      }
    });
    s.on('close', () => { clearTimeout(t); resolve(buf || null); });
  });
}

class Redis {
  constructor(port) {
    this.port = port;
    this.proc = null;
    this.starts = 0;
  }

  async start() {
    const dir = path.join(tmp, 'redis');
    fs.mkdirSync(dir, { recursive: true });
    this.proc = spawn(REDIS, ['--port', String(this.port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no',
      '--logfile', path.join(dir, 'redis.log')], { stdio: 'ignore' });
    const p = this.proc;
    children.add(p);
    this.exited = new Promise((r) => p.once('exit', (code, sig) => {
      children.delete(p);
      r({ code, sig });
    }));
    this.starts++;
    const end = now() + 10000;
    while (now() < end) {
      if (p.exitCode !== null) throw new Error(`redis-server exited with ${p.exitCode}`);
      try {
        if (await redisCommand(this.port, 'PING', 500) === '+PONG') return;
      } catch { /* not yet */ }
      await sleep(20);
    }
    throw new Error('redis-server did not answer PING within 10 s');
  }

  get pid() { return this.proc ? this.proc.pid : null; }

  async stop() {
    try { await redisCommand(this.port, 'SHUTDOWN NOSAVE'); } catch { /* closes */ }
    const r = await Promise.race([this.exited, sleep(5000).then(() => null)]);
    if (!r) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

// ---- pxl-serve -------------------------------------------------------------------

const ROOMS = Array.from({ length: opt.rooms }, (_, i) => `soak-r${i}`);
const BUSY_ROOM = 'soak-busy';
const MAX_MESSAGE = 65536;
const HANDSHAKE_TIMEOUT = 10; // limits.handshake_timeout, the default

class Serve {
  constructor(redisPort) {
    this.cfgPath = path.join(tmp, 'soak.cfg');
    this.logPath = path.join(tmp, 'soak.log');
    fs.writeFileSync(this.cfgPath, [
      'name = "soak";',
      'workers = 2;',
      'listen = { host = "127.0.0.1"; port = 0; path = "/ws"; };',
      'plugins = ( "system", "bench" );',
      `limits = { max_message_size = ${MAX_MESSAGE}; max_frame_size = ${MAX_MESSAGE}; };`,
      'rooms = { notify_members = true; };',
      // info, not notice: the master's "worker N started/restarted (pid P)"
      // lines are at info. Nothing per connection is logged at info but
      // refused upgrades.
      'log = { level = "info"; format = "logfmt"; };',
      `redis = { host = "127.0.0.1"; port = ${redisPort}; required = false;`
        + ' heartbeat_interval = 1; dead_after = 2; retry_max_delay = 1; connect_timeout = 2; };',
      opt.extraConfig,
      '',
    ].join('\n'));
    this.workers = {}; // slot -> pid
  }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  async start() {
    const fd = fs.openSync(this.logPath, 'w');
    // Under AddressSanitizer, freed memory sits in its quarantine (256 MB)
    // and is not given back: without the quarantine, and with freed pages
    // returned to the system, RSS means what it means in a release build.
    // (Use-after-free is still caught while the memory is unused; the
    // rest of the suite keeps the quarantine.)
    const env = { ...process.env };
    env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0',
      'allocator_release_to_os_interval_ms=50'].filter(Boolean).join(':');
    this.proc = spawn(needEnv('PXL_SERVE'), [this.cfgPath], { stdio: ['ignore', fd, fd], env });
    fs.closeSync(fd);
    children.add(this.proc);
    this.exit = null;
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => {
      children.delete(this.proc);
      this.exit = { code, signal };
      r(this.exit);
    }));
    const end = now() + 30000;
    while (now() < end) {
      const log = this.log();
      const m = /cluster of 2 workers listening on ([\d.]+):(\d+)(\/\S*) \(node (\w+)\)/.exec(log);
      for (const w of log.matchAll(/worker (\d+) started \(pid (\d+)\)/g)) this.workers[w[1]] = Number(w[2]);
      if (m && this.workers[0] && this.workers[1]) {
        this.port = Number(m[2]);
        this.path = m[3];
        this.node = m[4];
        const kids = childPids(this.proc.pid).sort();
        const logged = Object.values(this.workers).sort();
        if (JSON.stringify(kids) !== JSON.stringify(logged)) {
          throw new Error(`worker pids in the log ${logged} are not the master's children ${kids}`);
        }
        return;
      }
      if (this.exit) throw new Error(`pxl-serve exited ${JSON.stringify(this.exit)}:\n${log}`);
      await sleep(50);
    }
    throw new Error(`pxl-serve did not start within 30 s:\n${this.log()}`);
  }

  url() { return `ws://127.0.0.1:${this.port}${this.path}`; }
}

// ---- shared state ------------------------------------------------------------------

// Times in the output are seconds since the start of the chaos run
// (negative: setup and warm-up).
let runStart = now();
const rel = (t) => ((t - runStart) / 1000).toFixed(1);
let serve;
let redis;
let stopping = false; // the chaos run is over: clients leave
let publishing = false; // churn publishes are tracked

const pubs = []; // {id, room, ts, ta, err}
const pubById = new Map();
const churnZero = () => ({
  opened: 0, active: 0, connectFailures: [], requests: 0, replyTimeouts: [], errorFrames: [],
  deliveries: 0, otherFrames: 0, dupDeliveries: 0, dupSample: null,
  serverCloses: [], joins: 0, leaves: 0, members: 0, echoes: 0, publishes: 0,
  disconnects: { close: 0, terminate: 0, inflight: 0, end: 0 },
});
const churn = churnZero();

// ---- churn clients -------------------------------------------------------------------

let addrSeq = 0;

// A sleep that a driver's leave() cuts short.
const napFor = (ctl, ms) => Promise.race([sleep(ms), ctl.left]);

async function churnClient(lifeMs, track, ctl) {
  const k = addrSeq++;
  const tag = `c${k}`;
  const pending = new Map();
  const seen = new Set();
  const rooms = new Set();
  let rid = 0;
  let seq = 0;
  let ws;
  const onMessage = (buf) => {
    let m;
    try {
      m = JSON.parse(buf.toString('utf8'));
    } catch {
      churn.errorFrames.push([now(), `not JSON: ${buf.toString('utf8').slice(0, 100)}`]);
      return;
    }
    if (m.requestId !== undefined) {
      const p = pending.get(m.requestId);
      if (p) {
        pending.delete(m.requestId);
        p(m);
      }
      return;
    }
    if (m.type === 'bench' && m.action === 'message') {
      churn.deliveries++;
      const id = m.data?.payload?.id;
      if (id !== undefined && track) {
        if (seen.has(id)) {
          churn.dupDeliveries++;
          churn.dupSample ??= `${tag} got ${id} twice`;
        } else seen.add(id);
      }
    } else churn.otherFrames++;
  };
  try {
    ws = await openWs(serve.url(), { localAddress: localAddr(k, opt.addresses), onMessage });
  } catch (e) {
    churn.connectFailures.push([now(), String(e.message || e)]);
    return;
  }
  churn.active++;
  let closed = false;
  ws.on('close', (code) => {
    closed = true;
    if (!ws.soakLeaving) churn.serverCloses.push([now(), code]);
    for (const p of pending.values()) p(null);
    pending.clear();
  });
  const req = (type, action, data) => new Promise((resolve) => {
    const id = ++rid;
    churn.requests++;
    const ts = now();
    const timer = setTimeout(() => {
      if (pending.delete(id)) {
        if (!closed) churn.replyTimeouts.push([ts, `${type}/${action}`]);
        resolve(null);
      }
    }, 10000);
    pending.set(id, (m) => {
      clearTimeout(timer);
      if (m && m.type === 'error') {
        churn.errorFrames.push([ts, `${type}/${action}: ${JSON.stringify(m).slice(0, 300)}`]);
      }
      resolve(m);
    });
    ws.send(JSON.stringify({ type, action, data, requestId: id }));
  });
  const endAt = now() + lifeMs;
  while (!closed && !ctl.leaving && now() < endAt) {
    await napFor(ctl, Math.min(rand(0.3, 1.7) * opt.actionMs, endAt - now()));
    if (closed || ctl.leaving || now() >= endAt) break;
    const r = Math.random();
    if (r < 0.4 && publishing) {
      const room = rooms.size && Math.random() < 0.7 ? pick([...rooms]) : pick(ROOMS);
      const id = `${tag}.${++seq}`;
      const p = { id, room, ts: now(), ta: 0, err: null };
      if (track) {
        pubs.push(p);
        pubById.set(id, p);
      }
      churn.publishes++;
      const m = await req('bench', 'publish',
        { roomName: room, payload: { id, pad: 'p'.repeat(Math.floor(rand(0, 200))) } });
      if (m && m.type === 'bench' && m.action === 'publish') p.ta = now();
      else if (m) p.err = JSON.stringify(m).slice(0, 200);
    } else if (r < 0.65 && rooms.size < 6) {
      const room = pick(ROOMS);
      churn.joins++;
      const m = await req('system', 'joinRoom', { roomName: room });
      if (m?.response?.success) rooms.add(room);
    } else if (r < 0.85 && rooms.size) {
      const room = pick([...rooms]);
      churn.leaves++;
      await req('system', 'leaveRoom', { roomName: room });
      rooms.delete(room);
    } else if (r < 0.95) {
      churn.members++;
      await req('system', 'roomMembers', { roomName: pick(ROOMS) });
    } else {
      churn.echoes++;
      await req('bench', 'echo', { tag, n: seq });
    }
  }
  if (!closed) {
    ws.soakLeaving = true;
    const r = Math.random();
    if (ctl.leaving || r < 0.6) {
      churn.disconnects[ctl.leaving ? 'end' : 'close']++;
      ws.close(1000);
      await Promise.race([new Promise((res) => ws.once('close', res)), sleep(3000)]);
      ws.terminate();
    } else if (r < 0.85) {
      churn.disconnects.terminate++;
      ws.terminate();
    } else {
      churn.disconnects.inflight++;
      ws.send(JSON.stringify({ type: 'system', action: 'joinRoom', data: { roomName: pick(ROOMS) } }));
      ws.terminate();
    }
  }
  churn.active--;
}

// Keep `concurrent` churn clients open until `total` were opened or
// stop() is called: then every client leaves (close 1000) and stop()
// resolves when all are gone.
function churnDriver({ concurrent, total, lifeMs, rampMs, track }) {
  const running = new Set();
  let started = 0;
  let leave;
  const ctl = { leaving: false, left: new Promise((r) => { leave = r; }) };
  const perTick = Math.max(1, Math.ceil(concurrent / (rampMs / 20)));
  const timer = setInterval(() => {
    if (ctl.leaving) return;
    for (let i = 0; i < perTick && running.size < concurrent && started < total; i++) {
      started++;
      if (track) churn.opened++;
      const p = churnClient(rand(0.2, 1.8) * lifeMs, track, ctl).finally(() => running.delete(p));
      running.add(p);
    }
  }, 20);
  return {
    get started() { return started; },
    async stop() {
      ctl.leaving = true;
      leave();
      clearInterval(timer);
      while (running.size) await Promise.all([...running]);
    },
  };
}

// ---- stable clients ------------------------------------------------------------------

class Stable {
  constructor(i) {
    this.i = i;
    const h = opt.rooms / 2;
    this.rooms = [2 * i, 2 * i + 1, 2 * i + h, 2 * i + 1 + h].map((r) => ROOMS[r % opt.rooms]);
    this.roomSet = new Set(this.rooms);
    this.conns = []; // {openAt, readyAt, closedAt, code}
    this.recv = new Map(); // payload id -> copies
    this.misrouted = 0;
    this.ws = null;
  }

  onMessage(buf) {
    let m;
    try { m = JSON.parse(buf.toString('utf8')); } catch { return; }
    if (m.requestId !== undefined) {
      if (this.waiting) this.waiting(m);
      return;
    }
    if (m.type === 'bench' && m.action === 'message') {
      const id = m.data?.payload?.id;
      if (!this.roomSet.has(m.data?.roomName)) this.misrouted++;
      if (id !== undefined) this.recv.set(id, (this.recv.get(id) || 0) + 1);
    }
  }

  async run() {
    while (!stopping) {
      let ws;
      try {
        ws = await openWs(serve.url(), { localAddress: localAddr(10000 + this.i, opt.addresses),
          onMessage: (b) => this.onMessage(b) });
      } catch {
        await sleep(200);
        continue;
      }
      const c = { openAt: now(), readyAt: null, closedAt: null, code: null };
      this.conns.push(c);
      this.ws = ws;
      const closed = new Promise((r) => ws.once('close', (code) => {
        c.closedAt = now();
        c.code = code;
        if (this.waiting) this.waiting(null);
        r();
      }));
      let ok = true;
      for (const room of this.rooms) {
        const m = await new Promise((resolve) => {
          this.waiting = resolve;
          ws.send(JSON.stringify({ type: 'system', action: 'joinRoom',
            data: { roomName: room, username: `stable${this.i}` }, requestId: room }));
          setTimeout(() => resolve(null), 10000);
        });
        this.waiting = null;
        if (!m?.response?.success) {
          ok = false;
          break;
        }
      }
      if (ok) c.readyAt = now();
      else ws.terminate();
      await closed;
      this.ws = null;
      if (!stopping) await sleep(200);
    }
  }

  ready() { const c = this.conns.at(-1); return !!(c && c.readyAt && !c.closedAt); }

  async close() {
    const ws = this.ws;
    if (!ws) return;
    ws.close(1000);
    await Promise.race([new Promise((r) => ws.once('close', r)), sleep(3000)]);
    ws.terminate();
  }
}

// ---- threads ---------------------------------------------------------------------------

function thread(file, data, onMsg) {
  const w = new Worker(path.join(HERE, file), { workerData: data });
  let result;
  const done = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.type === 'result') {
        result = m;
        resolve(m);
        w.terminate();
      } else if (onMsg) onMsg(m);
    });
    w.on('error', reject);
    w.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${file} exited ${code}`))));
  });
  const ready = new Promise((r) => w.on('message', (m) => m.type === 'ready' && r()));
  // stop(): the thread's result, or null if it gives none within 20 s.
  return { w, done, ready, stop() {
    w.postMessage('stop');
    return Promise.race([done.catch(() => null), sleep(20000).then(() => null)]).then((r) => {
      if (!r) w.terminate();
      return r;
    });
  } };
}

// ---- measurements ------------------------------------------------------------------------

// The current pid of each worker slot: the master's last "started" or
// "restarted" line for it (a worker that died on its own has a new one).
function refreshWorkers() {
  for (const m of serve.log().matchAll(/worker (\d+) (?:started|restarted) \(pid (\d+)/g)) {
    serve.workers[m[1]] = Number(m[2]);
  }
}

function procs() {
  return { master: serve.proc.pid, worker0: serve.workers[0], worker1: serve.workers[1],
    redis: redis.pid };
}

function snapshot() {
  refreshWorkers();
  const s = {};
  for (const [name, pid] of Object.entries(procs())) {
    s[name] = { pid, fds: fdCount(pid), rss: rssKb(pid), kinds: fdKinds(pid) };
  }
  return s;
}

const peaks = {};
let capHit = null; // a server process grew past --rss-cap: abuse stopped
const cpu = {}; // name -> seconds used by earlier pids of that name
function samplePeaks() {
  refreshWorkers();
  for (const [name, pid] of Object.entries(procs())) {
    const p = (peaks[name] ??= { rss: 0, fds: 0 });
    p.rss = Math.max(p.rss, rssKb(pid) || 0);
    p.fds = Math.max(p.fds, fdCount(pid) || 0);
    const r = rssKb(pid) || 0;
    if (!capHit && r > opt.rssCap * 1024 && onCap) {
      capHit = { t: now(), name, rss: r };
      out.line(`t=${rel(now())}s ${name} RSS ${mb(r)} MB passed --rss-cap ${opt.rssCap} MB: `
        + 'stopping the abusive clients now');
      onCap();
    }
  }
}
let onCap = null;
function cpuNow() {
  const c = {};
  for (const [name, pid] of Object.entries(procs())) c[name] = (cpuSeconds(pid) || 0) + (cpu[name] || 0);
  const u = process.cpuUsage();
  c.client = (u.user + u.system) / 1e6;
  return c;
}

// ---- chaos ---------------------------------------------------------------------------------

const windows = []; // {what, start, end, t}
let stables = [];
let nonReaderAt = null;

async function waitFor(cond, ms) {
  const end = now() + ms;
  while (now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

async function killWorker() {
  // Kill the worker that does not hold the non-reader (whose close code
  // we want to see), if we know which one that is.
  let slot = Math.random() < 0.5 ? 0 : 1;
  if (nonReaderAt) {
    const owner = ownerOf(nonReaderAt.localAddress, nonReaderAt.localPort, serve.port,
      [serve.workers[0], serve.workers[1]]);
    if (owner === serve.workers[0]) slot = 1;
    else if (owner === serve.workers[1]) slot = 0;
  }
  const pid = serve.workers[slot];
  const name = `worker${slot}`;
  cpu[name] = (cpu[name] || 0) + (cpuSeconds(pid) || 0);
  const t = now();
  process.kill(pid, 'SIGKILL');
  let newPid = null;
  await waitFor(() => {
    const m = new RegExp(`worker ${slot} restarted \\(pid (\\d+)`).exec(serve.log());
    if (m) newPid = Number(m[1]);
    return newPid !== null;
  }, 15000);
  const tRestart = now();
  if (newPid) serve.workers[slot] = newPid;
  await waitFor(() => stables.every((s) => s.ready()), 15000);
  const tRecovered = now();
  const w = { what: `kill -9 worker ${slot} (pid ${pid} -> ${newPid})`, slot, oldPid: pid, newPid,
    t, start: t - opt.margin * 1000, end: tRecovered + opt.margin * 1000,
    restartMs: tRestart - t, recoveredMs: tRecovered - t };
  windows.push(w);
  out.line(`t=${rel(t)}s chaos: killed worker ${slot} (pid ${pid}); restarted as pid ${newPid} `
    + `after ${(tRestart - t).toFixed(0)} ms; stable clients back after ${(tRecovered - t).toFixed(0)} ms`);
}

async function restartRedis() {
  const connectedLines = () => (serve.log().match(/msg="redis [^"]*: connected"/g) || []).length;
  const before = connectedLines();
  cpu.redis = (cpu.redis || 0) + (cpuSeconds(redis.pid) || 0);
  const t = now();
  await redis.stop();
  await sleep(2000);
  await redis.start();
  const tStarted = now();
  const ok = await waitFor(() => connectedLines() >= before + 2, 15000);
  const tBack = now();
  windows.push({ what: 'redis-server restart', t, start: t - opt.margin * 1000,
    end: tBack + opt.margin * 1000, downMs: tStarted - t, reconnectMs: tBack - tStarted,
    reconnected: ok });
  out.line(`t=${rel(t)}s chaos: redis-server stopped; started again after ${(tStarted - t).toFixed(0)} ms; `
    + `${ok ? 'both workers reconnected' : 'workers did NOT both reconnect'} after `
    + `${(tBack - tStarted).toFixed(0)} ms`);
}

// ---- analysis ---------------------------------------------------------------------------------

const inWindow = (a, b) => windows.some((w) => a < w.end && b > w.start);

function checkDeliveries() {
  const byRoom = new Map(ROOMS.map((r) => [r, []]));
  for (const s of stables) for (const r of s.rooms) byRoom.get(r).push(s);
  const res = { published: pubs.length, acked: 0, unacked: 0, errors: 0, expected: 0, delivered: 0,
    missing: 0, duplicates: 0, excludedWindow: 0, excludedNotMember: 0, missingSample: [],
    dupSample: [], extra: 0, misrouted: stables.reduce((a, s) => a + s.misrouted, 0) };
  for (const p of pubs) {
    if (p.err) res.errors++;
    if (!p.ta) {
      res.unacked++;
      continue;
    }
    res.acked++;
    const win = inWindow(p.ts, p.ta);
    for (const s of byRoom.get(p.room)) {
      const covered = s.conns.some((c) => c.readyAt && c.readyAt <= p.ts
        && (c.closedAt === null || c.closedAt > p.ta + 1000));
      if (win) { res.excludedWindow++; continue; }
      if (!covered) { res.excludedNotMember++; continue; }
      res.expected++;
      const n = s.recv.get(p.id) || 0;
      if (n === 1) res.delivered++;
      else if (n === 0) {
        res.missing++;
        if (res.missingSample.length < 5) res.missingSample.push(`${p.id} to stable${s.i} in ${p.room} sent t=${rel(p.ts)}s`);
      }
    }
  }
  // Duplicates anywhere, window or not; and copies nobody published.
  for (const s of stables) {
    for (const [id, n] of s.recv) {
      if (n > 1) {
        res.duplicates++;
        if (res.dupSample.length < 5) res.dupSample.push(`stable${s.i} got ${id} ${n} times`);
      }
      if (!pubById.has(id)) res.extra++;
    }
  }
  return res;
}

function echoAnalysis(r) {
  const killed = windows.find((w) => w.slot !== undefined);
  const st = r.st;
  const lat = r.lat;
  const who = r.who;
  // Clients of the killed worker: those whose connection dropped in its window.
  const dropped = new Set();
  if (killed) for (const [t, i] of r.stats.drops) if (t >= killed.start && t <= killed.end) dropped.add(i);
  const all = [];
  const excl = [];
  const buckets = new Map();
  for (let k = 0; k < r.n; k++) {
    all.push(lat[k]);
    const inKill = killed && st[k] >= killed.start && st[k] <= killed.end && dropped.has(who[k]);
    if (!inKill) excl.push(lat[k]);
    const b = Math.floor((st[k] - runStart) / 10000);
    if (!buckets.has(b)) buckets.set(b, []);
    buckets.get(b).push(lat[k]);
  }
  const sAll = sortedNums(all);
  const sEx = sortedNums(excl);
  const bucketP99 = [...buckets.entries()].sort((a, b) => a[0] - b[0])
    .map(([b, v]) => ({ from: b * 10, n: v.length, p99: percentile(sortedNums(v), 99) }));
  return {
    samples: r.n, p50: percentile(sAll, 50), p99: percentile(sAll, 99), p999: percentile(sAll, 99.9),
    max: sAll.length ? sAll[sAll.length - 1] : NaN, rate: r.n / opt.seconds,
    exclKilled: { samples: sEx.length, p99: percentile(sEx, 99), max: sEx.length ? sEx[sEx.length - 1] : NaN,
      clients: dropped.size },
    buckets: bucketP99, worstBucket: bucketP99.reduce((a, b) => (b.p99 > a.p99 ? b : a), { p99: 0 }),
    lost: r.stats.lost.length, drops: r.stats.drops.length, timeouts: r.stats.timeouts,
    wrong: r.stats.wrong, wrongSample: r.stats.wrongSample,
    connectFailures: r.stats.connectFailures, eld: r.eld,
  };
}

// Level err lines the chaos may cause, each allowed only inside its
// window. Today neither the kill nor the Redis restart logs any (they log
// warn lines: "worker N (pid P) was killed by SIGKILL ...; restarting",
// "redis HOST:PORT: connection lost (...)"); the one err line near them
// is a heartbeat that a starting Redis answers with LOADING.
const ERR_WHITELIST = [
  { re: /msg="redis: heartbeat failed: LOADING /, what: 'redis' },
];
const SANITIZER = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:', 'UndefinedBehaviorSanitizer'];

function logCheck(log) {
  const bad = [];
  const allowed = [];
  for (const line of log.split('\n')) {
    if (SANITIZER.some((s) => line.includes(s))) {
      bad.push(line);
      continue;
    }
    if (!/(^|\s)level=err(\s|$)/.test(line)) continue;
    const ts = Date.parse(/ts=(\S+)/.exec(line)?.[1] || '');
    const rule = ERR_WHITELIST.find((w) => w.re.test(line));
    const win = rule && windows.find((w) => (rule.what === 'redis' ? !('slot' in w) : 'slot' in w)
      && ts >= w.start && ts <= w.end);
    if (win) allowed.push(line);
    else bad.push(line);
  }
  return { bad, allowed };
}

// ---- main -------------------------------------------------------------------------------------

const fmtMs = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
const mb = (kb) => (kb / 1024).toFixed(1);

async function main() {
  needEnv('PXL_SERVE');
  needEnv('PXL_PLUGIN_PATH');
  if (!fs.existsSync(REDIS)) {
    // A missing server is a failure, never a skip (scripts/setup --test installs it).
    bail(`${REDIS} is not installed`);
  }
  const lim = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  const perProcess = opt.concurrent + opt.stable + opt.echo + 64;
  if (Number.isFinite(lim) && perProcess * 1.5 > lim) {
    bail(`ulimit -n ${lim} is too small for ${perProcess} client sockets`);
  }

  redis = new Redis(await freePort());
  await redis.start();
  serve = new Serve(redis.port);
  await serve.start();
  const asan = hasAsan(serve.proc.pid);
  const url = serve.url();
  // Each of the `concurrent` slots opens about 0.6 + seconds / life
  // connections (a renewal process with lives uniform in 0.2..1.8 life):
  // pick the life that makes `connections` in all.
  const lifeMs = opt.connections > 0.6 * opt.concurrent + opt.concurrent / 10
    ? Math.max(2000, (opt.concurrent * opt.seconds * 1000) / (opt.connections - 0.6 * opt.concurrent))
    : opt.seconds * 2000;
  out.line(`pxl-soak: ${opt.seconds} s, ${opt.connections} churn connections (${opt.concurrent} at a time, `
    + `mean life ${(lifeMs / 1000).toFixed(1)} s), ${opt.stable} stable, ${opt.echo} echo, `
    + `${opt.rooms} rooms, abuse ${opt.abuse ? 'on' : 'off'}`);
  out.line(`server: ${url} node ${serve.node}, master ${serve.proc.pid}, workers ${serve.workers[0]} `
    + `${serve.workers[1]}; redis-server ${redis.pid} on port ${redis.port}; `
    + `${asan ? 'AddressSanitizer build' : 'no AddressSanitizer'}; temp ${tmp}`);

  // Warm-up: the churn's own traffic, faster, with half as many clients
  // again as the run has (after the kill one worker holds more than
  // half), then all leave at once as at the end of the run, so that
  // allocator pools and tables are at their working size.
  publishing = true;
  const warmN = Math.ceil(opt.concurrent * 1.5);
  const warm = churnDriver({ concurrent: warmN, total: warmN, lifeMs: 60000,
    rampMs: 1500, track: false });
  const savedAction = opt.actionMs;
  opt.actionMs = 300;
  await sleep(4000);
  await warm.stop();
  opt.actionMs = savedAction;
  await sleep(2000);
  Object.assign(churn, churnZero()); // count the run only
  const base = snapshot();
  const load0 = loadavg();
  out.line('baseline after warm-up: ' + Object.entries(base)
    .map(([n, s]) => `${n} pid ${s.pid} fds ${s.fds} rss ${mb(s.rss)} MB`).join('; '));
  const cpu0 = cpuNow();

  // The run.
  runStart = now();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const sampler = setInterval(samplePeaks, 1000);
  const echo = thread('echo.mjs', { url, clients: opt.echo, addrOffset: 20000,
    addrCount: opt.addresses, gapMin: 50, gapMax: 150, timeoutMs: 5000 });
  let abuse = null;
  if (opt.abuse && opt.abuseKinds.length) {
    abuse = thread('abuse.mjs', { url, host: '127.0.0.1', port: serve.port, path: serve.path,
      kinds: opt.abuseKinds, pingSessionBytes: 256 << 20,
      addrOffset: 30000, addrCount: opt.addresses, maxMessage: MAX_MESSAGE, rooms: ROOMS,
      busyRoom: BUSY_ROOM, slowloris: 5, silent: 5, floodRate: opt.floodRate, busyRate: 100,
      busyPayload: 8192, hugeEvery: 1000 },
    (m) => { if (m.type === 'nonReader') nonReaderAt = m; });
  }
  stables = Array.from({ length: opt.stable }, (_, i) => new Stable(i));
  const stableRuns = stables.map((s) => s.run());
  await waitFor(() => stables.every((s) => s.ready()), 10000);
  await echo.ready;
  if (abuse) await abuse.ready;
  let abuseStop = null;
  if (abuse) {
    onCap = () => { abuseStop = abuse.stop(); };
  }
  const driver = churnDriver({ concurrent: opt.concurrent, total: opt.connections, lifeMs,
    rampMs: 3000, track: true });
  const chaos = [];
  if (opt.kill) chaos.push(sleep(opt.seconds * 400).then(killWorker));
  if (opt.redisRestart) chaos.push(sleep(opt.seconds * 700).then(restartRedis));
  const progress = setInterval(() => {
    out.line(`t=${rel(now())}s churn open ${churn.active}, opened ${churn.opened}, publishes ${pubs.length}, `
      + `deliveries ${churn.deliveries}`);
  }, 10000);
  await sleep(opt.seconds * 1000);
  await Promise.all(chaos);
  const runEnd = now();
  const atEnd = snapshot();
  out.line('at the end of the run: ' + Object.entries(atEnd)
    .map(([n, x]) => `${n} fds ${x.fds} rss ${mb(x.rss)} MB`).join('; '));

  // The end: stop publishing, let deliveries arrive, then everybody leaves.
  publishing = false;
  await sleep(2000);
  stopping = true;
  clearInterval(progress);
  const [abuseRes0, echoRes] = await Promise.all([abuse ? (abuseStop || abuse.stop()) : null, echo.stop(),
    driver.stop(), ...stables.map((s) => s.close())]);
  await Promise.all(stableRuns);
  if (!echoRes) bail('the echo clients\' thread gave no result');
  const abuseRes = abuseRes0 && abuseRes0.R ? abuseRes0 : null;
  if (abuse && !abuseRes) out.line('the abusive clients\' thread gave no result');
  clearInterval(sampler);
  eld.disable();
  const cpu1 = cpuNow();

  // Settle: at least 3 s, until every fd count is back (at most 12 s).
  const tLeft = now();
  let fin;
  for (;;) {
    await sleep(500);
    fin = snapshot();
    const back = Object.keys(base).every((n) => fin[n].fds === base[n].fds);
    if ((back && now() - tLeft >= 3000) || now() - tLeft >= 12000) break;
  }
  const settleMs = now() - tLeft;

  // Stop the server: SIGTERM once, exit 0 expected.
  serve.proc.kill('SIGTERM');
  const exit = await Promise.race([serve.exited, sleep(20000).then(() => null)]);
  if (!exit) serve.proc.kill('SIGKILL');
  await redis.stop();
  const log = serve.log();

  // ---- figures ----
  const dur = (runEnd - runStart) / 1000;
  const d = checkDeliveries();
  const e = echoAnalysis(echoRes);
  out.line('');
  out.line(`run ${dur.toFixed(1)} s (+ ${(settleMs / 1000).toFixed(1)} s settle); `
    + `chaos: ${windows.map((w) => `${w.what} at t=${((w.t - runStart) / 1000).toFixed(1)}s, `
      + `window ${((w.end - w.start) / 1000).toFixed(1)} s`).join('; ') || 'none'}`);
  out.line(`churn: ${churn.opened} connections opened (${churn.connectFailures.length} failed), `
    + `${churn.requests} requests (${churn.publishes} publishes, ${churn.joins} joins, ${churn.leaves} leaves, `
    + `${churn.members} roomMembers, ${churn.echoes} echoes), ${churn.deliveries} deliveries + `
    + `${churn.otherFrames} other frames received; disconnects ${JSON.stringify(churn.disconnects)}; `
    + `${churn.serverCloses.length} closed by the server; ${churn.replyTimeouts.length} reply timeouts; `
    + `${churn.errorFrames.length} error frames`);
  out.line(`stable: ${stables.length} clients, ${stables.reduce((a, s) => a + s.conns.length, 0)} connections; `
    + `publishes ${d.published} (${d.acked} acked, ${d.unacked} not acked, ${d.errors} errors); `
    + `deliveries checked ${d.expected}: ${d.delivered} exactly once, ${d.missing} missing; `
    + `${d.duplicates} duplicated; excluded ${d.excludedWindow} (chaos windows) + ${d.excludedNotMember} `
    + `(member not connected); ${d.extra} unknown ids, ${d.misrouted} misrouted`);
  out.line(`echo: ${e.samples} samples (${e.rate.toFixed(0)}/s) p50 ${fmtMs(e.p50)} ms p99 ${fmtMs(e.p99)} ms `
    + `p99.9 ${fmtMs(e.p999)} ms max ${fmtMs(e.max)} ms; worst 10-s bucket p99 ${fmtMs(e.worstBucket.p99)} ms `
    + `(t=${e.worstBucket.from}s); without the killed worker's clients in its window: p99 `
    + `${fmtMs(e.exclKilled.p99)} max ${fmtMs(e.exclKilled.max)} (${e.exclKilled.clients} clients); `
    + `${e.lost} in flight at a drop, ${e.drops} drops, ${e.timeouts} timeouts, ${e.wrong} wrong replies; `
    + `echo thread loop delay p99 ${fmtMs(e.eld.p99)} ms`);
  out.line(`echo p99 by 10 s: ${e.buckets.map((b) => `${b.from}s:${fmtMs(b.p99)}`).join(' ')}`);
  const names = Object.keys(base);
  for (const n of names) {
    out.line(`${n}: fds ${base[n].fds} -> ${fin[n].fds} (peak ${peaks[n]?.fds}); rss ${mb(base[n].rss)} -> `
      + `${mb(fin[n].rss)} MB (peak ${mb(peaks[n]?.rss || 0)} MB, ${((fin[n].rss / base[n].rss - 1) * 100).toFixed(1)} %); `
      + `pid ${base[n].pid}${fin[n].pid !== base[n].pid ? ` -> ${fin[n].pid}` : ''}; `
      + `cpu ${((cpu1[n] - cpu0[n]) / dur * 100).toFixed(0)} % of a core`);
  }
  out.line(`machine: ${os.cpus().length} CPUs, load average ${load0} before the run, ${loadavg()} after `
    + '(other programs on the machine inflate latency)');
  out.line(`soak client process: cpu ${((cpu1.client - cpu0.client) / dur * 100).toFixed(0)} % of a core, `
    + `main loop delay p99 ${fmtMs(eld.percentile(99) / 1e6)} ms max ${fmtMs(eld.max / 1e6)} ms`);
  if (abuseRes) reportAbuse(abuseRes.R);
  if (capHit) {
    out.line(`the abusive clients were stopped at t=${rel(capHit.t)}s: ${capHit.name} RSS `
      + `${mb(capHit.rss)} MB passed --rss-cap`);
  }

  // ---- checks ----
  const deaths = [...log.matchAll(/msg="worker (\d+) \(pid (\d+)\) ([^"]*?)(; restarting in \d+ ms)?"/g)]
    .filter((m) => !/^stopped/.test(m[3]));
  const restarts = [...log.matchAll(/worker (\d+) restarted \(pid (\d+)/g)];
  const kw = windows.find((w) => w.slot !== undefined);
  const expectedDeaths = kw ? 1 : 0;
  out.check(deaths.length === expectedDeaths && restarts.length === expectedDeaths
    && (!kw || (Number(deaths[0][1]) === kw.slot && Number(deaths[0][2]) === kw.oldPid
      && deaths[0][3].includes('SIGKILL'))) && !/crash-looping|failed to start/.test(log),
  `no crash: ${expectedDeaths} worker death (ours, SIGKILL) and ${expectedDeaths} restart`,
  [...deaths, ...restarts].map((m) => m[0]).join('\n'));
  const rw = windows.find((w) => w.what.startsWith('redis'));
  if (opt.redisRestart) {
    out.check(rw && rw.reconnected, 'both workers reconnected to the restarted redis-server');
  }
  const lc = logCheck(log);
  if (lc.allowed.length) out.line(`whitelisted err lines: ${lc.allowed.length}`);
  out.check(lc.bad.length === 0, 'server log: no err line (but whitelisted chaos ones), no sanitizer report',
    lc.bad.slice(0, 20).join('\n'));
  out.check(exit && exit.code === 0, 'pxl-serve exits 0 on SIGTERM', JSON.stringify(exit));

  for (const n of names) {
    out.check(fin[n].fds === base[n].fds,
      `${n}: open fds back to ${base[n].fds} (${fin[n].fds})`
        + (fin[n].pid !== base[n].pid ? ' [restarted process against its slot\'s baseline]' : ''),
      `before ${JSON.stringify(base[n].kinds)}\nafter  ${JSON.stringify(fin[n].kinds)}`);
  }
  const rssSkip = asan && opt.asanRss === 'skip'
    ? 'AddressSanitizer build: its quarantine and shadow memory keep RSS up (PXL_SOAK_ASAN_RSS=check to check)'
    : null;
  const tolerance = opt.rssToleranceSet || !asan ? opt.rssTolerance : 25;
  for (const n of names) {
    const lim = base[n].rss * (1 + tolerance / 100);
    out.check(fin[n].rss <= lim,
      `${n}: RSS back within ${tolerance} % (${mb(base[n].rss)} -> ${mb(fin[n].rss)} MB)`,
      `peak during the run ${mb(peaks[n]?.rss || 0)} MB`, rssSkip);
  }

  out.check(d.expected > 0 && d.missing === 0,
    `exactly once: ${d.expected} deliveries to stable members outside chaos windows`,
    `missing ${d.missing}: ${d.missingSample.join('; ')}`);
  out.check(d.duplicates === 0 && churn.dupDeliveries === 0,
    'no duplicate delivery to any client, ever',
    [...d.dupSample, churn.dupSample].filter(Boolean).join('\n'));
  out.check(d.misrouted === 0 && d.extra === 0, 'stable clients got only messages of their rooms',
    `${d.misrouted} misrouted, ${d.extra} unknown ids`);
  const unexpectedStable = stables.flatMap((s) => s.conns.filter((c) => c.closedAt !== null
    && !windows.some((w) => w.slot !== undefined && c.closedAt >= w.start && c.closedAt <= w.end)
    && c.closedAt < runEnd).map((c) => `stable${s.i} closed ${c.code} at t=${rel(c.closedAt)}s`));
  out.check(unexpectedStable.length === 0, 'stable clients dropped only by the worker kill',
    unexpectedStable.slice(0, 10).join('\n'));
  const outside = (list) => list.filter(([t]) => !inWindow(t, t) && t < runEnd);
  const cf = outside(churn.connectFailures);
  const rt = outside(churn.replyTimeouts);
  const sc = outside(churn.serverCloses);
  const ef = outside(churn.errorFrames);
  out.check(cf.length === 0 && rt.length === 0 && sc.length === 0 && ef.length === 0,
    'churn: outside chaos windows every connect succeeded, every request was answered without error, '
      + 'no client was closed by the server',
    `connect failures ${cf.length} ${JSON.stringify(cf.slice(0, 3))}; reply timeouts ${rt.length} `
      + `${JSON.stringify(rt.slice(0, 3))}; server closes ${sc.length} ${JSON.stringify(sc.slice(0, 3))}; `
      + `error frames ${ef.length} ${JSON.stringify(ef.slice(0, 3))}`);
  out.check(e.p99 < opt.p99, `echo p99 ${fmtMs(e.p99)} ms < ${opt.p99} ms over the run (all samples)`,
    `p50 ${fmtMs(e.p50)} max ${fmtMs(e.max)}; without the killed worker's clients in its window `
      + `${fmtMs(e.exclKilled.p99)}`);
  out.check(e.worstBucket.p99 < opt.p99, `echo p99 < ${opt.p99} ms in every 10-second bucket `
    + `(worst ${fmtMs(e.worstBucket.p99)} ms at t=${e.worstBucket.from}s)`,
  e.buckets.map((b) => `t=${b.from}s n=${b.n} p99=${fmtMs(b.p99)}`).join('\n'));
  const ecf = outside(e.connectFailures);
  out.check(e.wrong === 0 && e.timeouts === 0 && ecf.length === 0
    && echoRes.stats.drops.every(([t]) => inWindow(t, t)),
  'echo clients: every reply right, none late, dropped only by the kill',
  `wrong ${e.wrong} ${e.wrongSample || ''}; timeouts ${e.timeouts}; connect failures `
      + `${JSON.stringify(ecf.slice(0, 3))}; drops ${JSON.stringify(echoRes.stats.drops.slice(0, 5))}`);
  if (abuse) out.check(!!abuseRes, 'the abusive clients\' thread finished and reported');
  const ran = (k) => abuseRes && opt.abuseKinds.includes(k);
  if (ran('pipeline')) {
    const p = abuseRes.R.pipeline;
    out.check(p.attempts > 0 && p.bad.length === 0,
      `pipeliner: 50 replies then close 1009, ${p.ok} of ${p.attempts} times`,
      JSON.stringify(p.bad.slice(0, 5)));
  }
  if (ran('nonReader') && ran('busyPub')) {
    // The server closes with 4009 once limits.max_output_bytes are queued,
    // but that close frame waits behind what the client does not read: it
    // sees the connection dropped (from the kernel's table), rarely the frame.
    const ss = abuseRes.R.nonReader.sessions;
    const dropped = ss.filter((x) => x.closedByServer);
    const with4009 = dropped.filter((x) => x.closeCode === 4009);
    out.check(dropped.length > 0, `non-reader in the busy room: dropped by the server `
      + `(${dropped.length} of ${ss.length} sessions; a 4009 close frame reached it in ${with4009.length})`,
    JSON.stringify(ss.slice(0, 3)), opt.seconds < 40
      ? 'runs under 40 s are too short to fill max_output_bytes' : null);
  }
  for (const kind of ['slowloris', 'silent']) {
    if (!ran(kind)) continue;
    const limit = (HANDSHAKE_TIMEOUT + 2) * 1000;
    const ss = abuseRes.R[kind].sessions;
    const late = ss.filter((x) => (x.end ?? runEnd) - x.start > limit);
    out.check(late.length === 0, `${kind}: every upgrade still incomplete after limits.handshake_timeout `
      + `(${HANDSHAKE_TIMEOUT} s) was dropped within 2 s (${ss.length} sessions)`,
    `${late.length} lived longer: ${late.slice(0, 5).map((x) => `${((x.end - x.start) / 1000).toFixed(1)} s `
      + `(${x.bytes ?? 0} bytes sent, ${x.how})`).join('; ')}`);
  }

  const figures = { options: opt, asan, durationS: dur, settleMs, windows, churn: { ...churn,
    connectFailures: churn.connectFailures.length, replyTimeouts: churn.replyTimeouts.length,
    serverCloses: churn.serverCloses.length, errorFrames: churn.errorFrames.length }, deliveries: d,
  echo: { ...e, connectFailures: e.connectFailures.length }, base, fin, peaks,
  cpu: Object.fromEntries(Object.keys(cpu1).map((k) => [k, (cpu1[k] - cpu0[k]) / dur])),
  abuse: abuseRes?.R, failed: out.failed };
  if (opt.json) fs.writeFileSync(opt.json, JSON.stringify(figures, null, 1));
  if (opt.tap) console.log(`1..${out.n}`);
  out.line(out.failed.length ? `${out.failed.length} of ${out.n} checks failed` : `all ${out.n} checks passed`);
  if (out.failed.length && process.env.PXL_KEEP_TMP) out.line(`files kept in ${tmp}`);
  process.exit(out.failed.length ? 1 : 0);
}

function reportAbuse(R) {
  const on = (k) => opt.abuseKinds.includes(k);
  const sess = (list) => {
    const how = {};
    for (const s of list) how[s.how] = (how[s.how] || 0) + 1;
    const lives = list.filter((s) => s.end).map((s) => (s.end - s.start) / 1000);
    return `${list.length} sessions, lived ${lives.length ? `${Math.min(...lives).toFixed(1)}..${Math.max(...lives).toFixed(1)} s` : '-'}, ended: ${JSON.stringify(how)}`;
  };
  const pf = R.pingFlood.sessions;
  if (on('pingFlood')) out.line(`abuse ping flooder: ${sess(pf)}; ${mb(pf.reduce((a, s) => a + s.bytes, 0) / 1024)} MB of pings written`);
  if (on('slowloris')) out.line(`abuse slowloris (5): ${sess(R.slowloris.sessions)}`);
  if (on('silent')) out.line(`abuse silent sockets (5): ${sess(R.silent.sessions)}`);
  if (on('pipeline')) out.line(`abuse pipeliner: ${R.pipeline.ok}/${R.pipeline.attempts} got 50 replies then 1009`);
  const nr = R.nonReader.sessions;
  if (on('nonReader')) {
    out.line(`abuse non-reader: ${sess(nr)}; ${nr.filter((x) => x.closedByServer).length} dropped by the server, `
      + `close frames seen ${JSON.stringify(nr.map((x) => x.closeCode))}, read after the drop `
      + `${nr.map((x) => mb(x.bytesRead / 1024)).join(', ')} MB`);
  }
  if (on('busyPub')) out.line(`abuse busy-room publisher: ${R.busyPub.sent} sent, ${R.busyPub.acked} acked, ${R.busyPub.errors} errors, ${R.busyPub.drops} drops`);
  if (on('hugeUser')) {
    out.line(`abuse huge userId: ${R.hugeUser.joins} joins (${JSON.stringify(R.hugeUser.replies)}), slowest reply `
      + `${fmtMs(R.hugeUser.maxReplyMs)} ms, closes ${JSON.stringify(R.hugeUser.closes)}`);
  }
  const mf = R.msgFlood.sessions;
  if (on('msgFlood')) out.line(`abuse message flooder: ${mf.length} sessions, ${mf.reduce((a, s) => a + s.sent, 0)} sent, `
    + `${mf.reduce((a, s) => a + s.replies, 0)} replies, ${mf.reduce((a, s) => a + s.rateLimited, 0)} "Rate limit exceeded", `
    + `closes ${JSON.stringify(mf.map((s) => s.code))}`);
}

main().catch((e) => bail(e && e.stack ? e.stack.replace(/\n/g, '\n# ') : String(e)));
