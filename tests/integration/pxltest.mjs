// pxltest.mjs - the Node side of pxltest.py: TAP output, a pxl-serve on
// port 0 started from an app file in a temp dir (stderr in a file, polled
// for "listening on HOST:PORT/PATH"), stopped with one SIGTERM and checked
// for exit 0 and a log without ERR lines or sanitizer reports. The `ws`
// package is loaded with require so NODE_PATH works as well.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
export const WebSocket = require('ws');

export function env(name) {
  const v = process.env[name];
  if (!v) {
    console.log(`Bail out! ${name} is not set (run through make check, or set it)`);
    process.exit(1);
  }
  return v;
}

// ---- TAP ----------------------------------------------------------------

const servers = new Set();
const tmpdirs = [];

export class TAP {
  constructor() {
    this.n = 0;
    this.failed = 0;
  }

  diag(text) {
    for (const line of String(text).split('\n')) console.log('# ' + line);
  }

  ok(cond, name, diag) {
    this.n++;
    console.log(`${cond ? 'ok' : 'not ok'} ${this.n} - ${name.replace(/#/g, '\\#')}`);
    if (!cond) {
      this.failed++;
      if (diag) this.diag(diag);
    }
    return cond;
  }

  // Run the async fn as one case; a throw or a timeout fails it.
  async case(name, fn, timeoutMs = 20000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([fn(), timeout]);
      return this.ok(true, name);
    } catch (e) {
      return this.ok(false, name, e && e.stack ? e.stack : String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  // Kill every server and bail out if the file runs longer.
  deadline(seconds) {
    const t = setTimeout(() => {
      console.log(`Bail out! did not finish within ${seconds} s`);
      killAll();
      process.exit(1);
    }, seconds * 1000);
    t.unref();
  }

  done() {
    console.log(`1..${this.n}`);
    if (this.failed) this.diag(`${this.failed} of ${this.n} failed`);
    cleanup();
    process.exit(this.failed || this.n === 0 ? 1 : 0);
  }
}

function killAll() {
  for (const s of servers) {
    try { s.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

export function cleanup() {
  killAll();
  if (process.env.PXL_KEEP_TMP) return;
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
}

process.on('exit', killAll);

// ---- app files and servers -----------------------------------------------

export function appConfig({ plugins = ['echo', 'testkit'], name = 'pxltest',
  rawText, limits, extra = '' } = {}) {
  const out = [
    `name = "${name}";`,
    'listen = { host = "127.0.0.1"; port = 0; path = "/ws"; };',
    `plugins = ( ${plugins.map((p) => (p.trim().startsWith('{') ? p : `"${p}"`)).join(', ')} );`,
    'log = { level = "info"; format = "logfmt"; };',
  ];
  if (rawText !== undefined) out.push(`raw_text = ${rawText ? 'true' : 'false'};`);
  if (limits) {
    out.push(`limits = { ${Object.entries(limits).map(([k, v]) => `${k} = ${v};`).join(' ')} };`);
  }
  if (extra) out.push(extra);
  return out.join('\n') + '\n';
}

const SANITIZER = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:',
  'UndefinedBehaviorSanitizer'];
const ERR_LINE = /(^|\s)level=err(\s|$)|"level":"err"/;

export function logProblems(text) {
  return text.split('\n').filter((l) => ERR_LINE.test(l) || SANITIZER.some((m) => l.includes(m)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Server {
  // config: the app file's text, or null with opts.file (an app file to
  // serve as it is); opts.args: pxl-serve options before the file.
  constructor(config, name = 'app', opts = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxltest-'));
    tmpdirs.push(this.dir);
    this.args = opts.args || [];
    this.cfg = opts.file || path.join(this.dir, `${name}.cfg`);
    if (config !== null) fs.writeFileSync(this.cfg, config);
    this.logPath = path.join(this.dir, `${name}.log`);
    this.proc = null;
    this.port = null;
    this.exit = null;
    this.signalled = false;
  }

  log() {
    try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
  }

  async start(timeoutMs = 20000) {
    const fd = fs.openSync(this.logPath, 'w');
    this.proc = spawn(env('PXL_SERVE'), [...this.args, this.cfg],
      { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    servers.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        servers.delete(this);
        resolve(this.exit);
      });
    });
    const end = Date.now() + timeoutMs;
    let delay = 5;
    while (Date.now() < end) {
      const m = /listening on (\S+):(\d+)(\/[^\s"]*)/.exec(this.log());
      if (m) {
        this.port = Number(m[2]);
        this.path = m[3];
        return this;
      }
      if (this.exit) throw new Error(`pxl-serve exited (${JSON.stringify(this.exit)}) before listening:\n${this.log()}`);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
    this.proc.kill('SIGKILL');
    throw new Error(`pxl-serve did not log 'listening on' within ${timeoutMs} ms:\n${this.log()}`);
  }

  url() {
    return `ws://127.0.0.1:${this.port}${this.path}`;
  }

  // One SIGTERM, wait, then throw unless exit 0 and a clean log.
  async stop(timeoutMs = 20000) {
    if (!this.proc) throw new Error('the server was never started');
    if (!this.exit && !this.signalled) {
      this.signalled = true;
      this.proc.kill('SIGTERM');
    }
    let timer;
    const res = await Promise.race([this.exited,
      new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
    clearTimeout(timer);
    if (res === null) {
      this.proc.kill('SIGKILL');
      throw new Error(`pxl-serve did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    const problems = [];
    if (res.code !== 0) problems.push(`exit ${JSON.stringify(res)}, expected code 0`);
    const bad = logProblems(this.log());
    if (bad.length) problems.push('bad log lines:\n' + bad.slice(0, 40).join('\n'));
    if (problems.length) {
      throw new Error(problems.join('\n') + '\n-- log tail --\n' + this.log().split('\n').slice(-60).join('\n'));
    }
  }
}

// ---- a promise-based client ----------------------------------------------

function isConnected(o) {
  return o !== null && typeof o === 'object' && o.type === 'system' && o.action === 'connected';
}

// Wraps a ws client: a queue of incoming messages, awaited one at a time.
// A first text frame that is the (pxl) system/connected frame is kept in
// `connected` and not queued.
export class Client {
  static open(url, opts = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
      const c = new Client(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.first = true;
    this.connected = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`closed ${code} ${reason}`));
      });
    });
    ws.on('error', () => {}); // surfaced through close
    ws.on('message', (data, isBinary) => {
      if (this.first) {
        this.first = false;
        if (!isBinary) {
          try {
            const o = JSON.parse(data.toString('utf8'));
            if (isConnected(o)) {
              this.connected = o;
              return;
            }
          } catch { /* not JSON: an ordinary message */ }
        }
      }
      const m = { data, isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.queue.push(m);
    });
  }

  next(timeoutMs = 10000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`closed ${this.closeInfo.code}`));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      w.resolve = (m) => { clearTimeout(t); resolve(m); };
      w.reject = (e) => { clearTimeout(t); reject(e); };
      this.waiters.push(w);
    });
  }

  async json(timeoutMs) {
    const m = await this.next(timeoutMs);
    if (m.isBinary) throw new Error('expected a text frame, got binary');
    return JSON.parse(m.data.toString('utf8'));
  }

  send(data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts || {}, (e) => (e ? reject(e) : resolve())));
  }

  async request(obj, timeoutMs) {
    await this.send(JSON.stringify(obj));
    return this.json(timeoutMs);
  }

  close(code = 1000, reason = '') {
    if (!this.closeInfo) this.ws.close(code, reason);
    return this.closed;
  }
}
