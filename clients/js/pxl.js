// pxl.js - the browser and Node.js client of pxl (PROTOCOL.md): requests
// matched to replies by requestId, pushed messages to handlers, rooms that
// come back after a reconnect, reconnect with backoff and a token refreshed
// before every connect. One ES module, no dependencies; the API is in
// README.md and pxl.d.ts.

const DEFAULTS = Object.freeze({
  token: undefined,
  WebSocket: undefined,
  reconnect: true,
  minDelay: 500,
  maxDelay: 30000,
  factor: 2,
  jitter: 'full',
  maxAttempts: Infinity,
  connectTimeout: 10000,
  requestTimeout: 10000,
  queueLimit: 100,
  resume: true,
});

const EVENTS = ['connected', 'authenticated', 'open', 'close', 'reconnecting',
  'failed', 'resumed', 'rejoined', 'error'];

// An Error with a `code` saying why a request or the client failed:
// 'server' (an error frame; the message is the server's text), 'refused'
// (a room route answered success:false), 'timeout', 'closed' (the
// connection or the client closed), 'queue_full', 'failed' (gave up
// reconnecting).
export class PxlError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'PxlError';
    this.code = code;
    Object.assign(this, extra);
  }
}

// The delay before reconnect attempt `attempt` (1, 2, ...): the exponential
// base min(maxDelay, minDelay * factor^(attempt-1)), then the jitter: 'full'
// a random value in [0, base], 'equal' in [base/2, base], 'none' the base.
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const o = { ...DEFAULTS, ...options };
  const base = Math.min(o.maxDelay, o.minDelay * o.factor ** Math.max(0, attempt - 1));
  if (o.jitter === 'full') return Math.round(random() * base);
  if (o.jitter === 'equal') return Math.round(base / 2 + random() * (base / 2));
  return Math.round(base);
}

function checkOptions(o) {
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULTS)) throw new TypeError(`pxl: unknown option "${k}"`);
  }
  if (!['undefined', 'string', 'function'].includes(typeof o.token) && o.token !== null) {
    throw new TypeError('pxl: token must be a string or a function');
  }
  if (o.WebSocket !== undefined && typeof o.WebSocket !== 'function') {
    throw new TypeError('pxl: WebSocket must be a class');
  }
  for (const k of ['reconnect', 'resume']) {
    if (typeof o[k] !== 'boolean') throw new TypeError(`pxl: ${k} must be true or false`);
  }
  if (!['full', 'equal', 'none'].includes(o.jitter)) {
    throw new TypeError(`pxl: jitter must be "full", "equal" or "none", not ${JSON.stringify(o.jitter)}`);
  }
  for (const k of ['minDelay', 'maxDelay', 'factor', 'maxAttempts', 'connectTimeout',
    'requestTimeout', 'queueLimit']) {
    if (typeof o[k] !== 'number' || !(o[k] >= 0)) {
      throw new TypeError(`pxl: ${k} must be a number >= 0`);
    }
  }
}

// ws:// and wss:// URLs as given; anything else is resolved against the
// page (browsers), http(s) becoming ws(s).
function baseUrl(url) {
  const loc = globalThis.location;
  const u = loc && loc.href ? new URL(String(url), loc.href) : new URL(String(url));
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`pxl: the URL must be ws:, wss:, http: or https:, not ${u.protocol}`);
  }
  return u;
}

function decode(data) {
  if (typeof data === 'string') return data;
  // Buffer, ArrayBuffer or a typed array (the server sends text, but a
  // WebSocket implementation may hand over bytes).
  return new TextDecoder().decode(data);
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function key(type, action) {
  return `${type}\u0000${action}`;
}

class Client {
  constructor(url, options) {
    const o = { ...DEFAULTS, ...options };
    checkOptions(o);
    this._url = baseUrl(url);
    this._o = o;
    this._WS = o.WebSocket || globalThis.WebSocket;
    if (typeof this._WS !== 'function') {
      throw new TypeError('pxl: no WebSocket implementation: this runtime has no global '
        + 'WebSocket, pass one as the WebSocket option (e.g. the ws package\'s class)');
    }
    this._state = 'connecting';
    this._ws = null;
    this._gen = 0; // counts sockets; work for an older socket is dropped
    this._nextId = 1;
    this._pending = new Map(); // requestId -> {msg, resolve, reject, timer, gen}
    this._queue = []; // requests waiting for the connection, oldest first
    this._handlers = new Map(); // key(type, action) -> Set(handler)
    this._listeners = new Map(); // event name -> Set(listener)
    this._rooms = new Map(); // roomName -> joinRoom data (remembered)
    this._pos = new Map(); // roomName -> last "EPOCH:OFFSET" seen
    this._clientId = null;
    this._userId = undefined;
    this._resumeToken = null; // the last session's, for system/resume
    this._everOpen = false;
    this._attempt = 0; // failed connects in a row
    this._retryTimer = null;
    this._closedPromise = null;
    this._closedResolve = null;
    // From a microtask: no event fires before connect() has returned.
    queueMicrotask(() => this._connect());
  }

  get state() { return this._state; }
  get clientId() { return this._clientId; }
  get userId() { return this._userId; }
  get rooms() { return [...this._rooms.keys()]; }

  // ---- events ------------------------------------------------------------

  addEventListener(name, listener) {
    if (!EVENTS.includes(name)) throw new TypeError(`pxl: unknown event "${name}"`);
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(listener);
    return () => this.removeEventListener(name, listener);
  }

  removeEventListener(name, listener) {
    const set = this._listeners.get(name);
    if (set) set.delete(listener);
  }

  _emit(name, detail) {
    const set = this._listeners.get(name);
    if (!set || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn({ type: name, ...detail });
      } catch (e) {
        this._report(e, name);
      }
    }
    return true;
  }

  // A throw from a listener or handler: the 'error' event, else the console.
  _report(error, where) {
    if (where !== 'error' && this._emit('error', { error, where })) return;
    if (globalThis.console) globalThis.console.error('pxl:', where, error);
  }

  // ---- pushed messages ---------------------------------------------------

  on(type, action, handler) {
    if (typeof handler !== 'function') throw new TypeError('pxl: on(type, action, handler) needs a function');
    const k = key(type, action);
    if (!this._handlers.has(k)) this._handlers.set(k, new Set());
    this._handlers.get(k).add(handler);
    return () => this.off(type, action, handler);
  }

  off(type, action, handler) {
    const k = key(type, action);
    const set = this._handlers.get(k);
    if (!set) return;
    if (handler === undefined) set.clear();
    else set.delete(handler);
    if (set.size === 0) this._handlers.delete(k);
  }

  _dispatch(frame) {
    const data = frame.data;
    const keys = [key(frame.type, frame.action), key(frame.type, '*'), key('*', '*')];
    for (const k of new Set(keys)) {
      const set = this._handlers.get(k);
      if (!set) continue;
      for (const fn of [...set]) {
        try {
          fn(data, frame);
        } catch (e) {
          this._report(e, `${frame.type}/${frame.action}`);
        }
      }
    }
  }

  // ---- requests ----------------------------------------------------------

  request(type, action, data, options) {
    return this._request(type, action, data, options || {}, false);
  }

  // internal: the restore step sends on a socket that is not 'open' yet.
  _request(type, action, data, options, internal) {
    if (typeof type !== 'string' || type === '' || typeof action !== 'string' || action === '') {
      return Promise.reject(new TypeError('pxl: request(type, action, ...) needs two non-empty strings'));
    }
    if (this._state === 'closed') {
      return Promise.reject(new PxlError('closed', 'Client is closed'));
    }
    const sendNow = internal || this._state === 'open';
    if (!sendNow && this._queue.length >= this._o.queueLimit) {
      return Promise.reject(new PxlError('queue_full',
        `Request queue is full (${this._o.queueLimit} waiting for the connection)`));
    }
    const timeout = options.timeout ?? this._o.requestTimeout;
    const requestId = this._nextId++;
    const msg = { type, action, requestId };
    if (data !== undefined) msg.data = data;
    return new Promise((resolve, reject) => {
      const p = { msg, resolve, reject, timer: null, gen: -1 };
      if (timeout > 0) {
        p.timer = setTimeout(() => {
          this._forget(requestId);
          reject(new PxlError('timeout', `Request ${type}/${action} timed out after ${timeout} ms`,
            { type, action, requestId }));
        }, timeout);
      }
      this._pending.set(requestId, p);
      if (sendNow) this._send(p);
      else this._queue.push(requestId);
    });
  }

  _forget(requestId) {
    const p = this._pending.get(requestId);
    if (!p) return null;
    this._pending.delete(requestId);
    if (p.timer) clearTimeout(p.timer);
    const i = this._queue.indexOf(requestId);
    if (i >= 0) this._queue.splice(i, 1);
    return p;
  }

  _send(p) {
    p.gen = this._gen;
    try {
      this._ws.send(JSON.stringify(p.msg));
    } catch (e) {
      this._forget(p.msg.requestId);
      p.reject(e);
    }
  }

  _settle(frame) {
    const p = this._forget(frame.requestId);
    if (!p) return; // timed out already, or not ours
    if (frame.type === 'error' && frame.action === 'message') {
      const text = isObject(frame.data) && typeof frame.data.error === 'string'
        ? frame.data.error : 'Unknown error';
      p.reject(new PxlError('server', text, { frame }));
    } else {
      p.resolve(frame.response);
    }
  }

  // Sent requests die with their socket; queued ones wait for the next.
  _failSent(gen, code, reason) {
    for (const [id, p] of [...this._pending]) {
      if (p.gen === gen) {
        this._forget(id);
        p.reject(new PxlError('closed', `Connection closed (${code}${reason ? ' ' + reason : ''})`,
          { closeCode: code, closeReason: reason }));
      }
    }
  }

  _failAll(error) {
    for (const id of [...this._pending.keys()]) this._forget(id).reject(error);
  }

  _flushQueue() {
    for (const id of this._queue.splice(0)) {
      const p = this._pending.get(id);
      if (p) this._send(p);
    }
  }

  // ---- rooms -------------------------------------------------------------

  async join(roomName, options) {
    const { timeout, ...rest } = options || {};
    const data = { ...rest, roomName };
    const r = await this.request('system', 'joinRoom', data, { timeout });
    if (!isObject(r) || r.success !== true) {
      throw new PxlError('refused', isObject(r) && r.error ? r.error : 'joinRoom failed', { response: r });
    }
    this._rooms.set(roomName, data);
    return r;
  }

  async leave(roomName, options) {
    // Forgotten at once: even if the reply is lost, no rejoin later.
    this._rooms.delete(roomName);
    this._pos.delete(roomName);
    const r = await this.request('system', 'leaveRoom', { roomName }, { timeout: options && options.timeout });
    if (!isObject(r) || r.success !== true) {
      throw new PxlError('refused', isObject(r) && r.error ? r.error : 'leaveRoom failed', { response: r });
    }
    return r;
  }

  // ---- the connection ----------------------------------------------------

  async _connect() {
    if (this._state === 'closed') return;
    const gen = ++this._gen;
    const url = new URL(this._url.href);
    try {
      const tok = typeof this._o.token === 'function' ? await this._o.token() : this._o.token;
      if (tok !== undefined && tok !== null && tok !== '') url.searchParams.set('token', String(tok));
    } catch (error) {
      if (gen !== this._gen || this._state === 'closed') return;
      this._emit('error', { error, where: 'token' });
      this._lost(gen, 1006, 'token function failed');
      return;
    }
    if (gen !== this._gen || this._state === 'closed') return;
    let ws;
    try {
      ws = new this._WS(url.href);
    } catch (error) {
      this._emit('error', { error, where: 'connect' });
      this._lost(gen, 1006, String(error && error.message));
      return;
    }
    this._ws = ws;
    try { ws.binaryType = 'arraybuffer'; } catch { /* not settable */ }
    const timer = this._o.connectTimeout > 0 ? setTimeout(() => {
      if (gen === this._gen && this._state !== 'open') {
        this._lost(gen, 1006, 'connect timeout');
        try { ws.close(); } catch { /* already closing */ }
      }
    }, this._o.connectTimeout) : null;
    const stopTimer = () => { if (timer) clearTimeout(timer); };
    ws.onopen = () => {
      if (gen === this._gen) this._attempt = 0;
    };
    // An error fails the connection (the close event that browsers send
    // next is then ignored): Node 20's WebSocket sends no close event for a
    // refused connection, and its close() fires the error event again at
    // once: _lost first, so that the generation has moved on.
    ws.onerror = () => {
      stopTimer();
      if (gen !== this._gen) return;
      this._lost(gen, 1006, 'connection error');
      try { ws.close(); } catch { /* closing already */ }
    };
    ws.onclose = (ev) => {
      stopTimer();
      this._lost(gen, ev.code, ev.reason);
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen || this._state === 'closed') return;
      let frame;
      try {
        frame = JSON.parse(decode(ev.data));
      } catch {
        return; // not JSON: nothing pxl sends
      }
      if (!isObject(frame)) return;
      if (frame.type === 'system' && frame.action === 'connected' && this._state === 'connecting'
        && isObject(frame.data) && !('requestId' in frame)) {
        stopTimer();
        this._onConnected(gen, frame.data);
        return;
      }
      this._onFrame(frame);
    };
  }

  _onFrame(frame) {
    // A frame with a requestId is a reply (pushed frames have none); one
    // for a request that timed out is dropped.
    if ('requestId' in frame) {
      this._settle(frame);
      return;
    }
    if (frame.type === 'auth' && frame.action === 'authenticated' && isObject(frame.data)) {
      this._userId = frame.data.userId;
      this._emit('authenticated', { userId: frame.data.userId, message: frame.data.message });
    }
    if (typeof frame.pos === 'string') {
      const room = this._roomOf(frame);
      if (room !== null) this._pos.set(room, frame.pos);
    }
    this._dispatch(frame);
  }

  // PROTOCOL.md puts `pos` on a room frame without naming the room: the
  // room is data.roomName when the frame has one (bench/publish, chat,
  // clientJoined...), else the only room this client is in.
  _roomOf(frame) {
    const d = frame.data;
    if (isObject(d) && typeof d.roomName === 'string' && this._rooms.has(d.roomName)) return d.roomName;
    if (this._rooms.size === 1) return this._rooms.keys().next().value;
    return null;
  }

  async _onConnected(gen, data) {
    const reconnected = this._everOpen;
    const previousToken = this._resumeToken;
    this._clientId = typeof data.clientId === 'string' ? data.clientId : null;
    this._resumeToken = typeof data.resumeToken === 'string' ? data.resumeToken : null;
    this._userId = undefined;
    this._emit('connected', { clientId: this._clientId, resumeToken: this._resumeToken });
    let resumed;
    try {
      resumed = await this._restore(gen, previousToken);
    } catch (error) {
      // Only a lost socket ends the restore early; its close event runs
      // the reconnect, so there is nothing left to do here.
      if (gen === this._gen) this._report(error, 'restore');
      return;
    }
    if (gen !== this._gen || this._state !== 'connecting') return;
    this._state = 'open';
    this._everOpen = true;
    this._emit('open', { clientId: this._clientId, reconnected, resumed });
    this._flushQueue();
  }

  // The "restore session" step after every reconnect, before queued
  // requests go out:
  //  1. the server offered resume (system/connected of the LAST connection
  //     carried data.resumeToken) and the resume option is on: send
  //     system/resume {token, rooms: {room: last pos}} as the first request;
  //     on success the clientId is the old one, the server has put the
  //     client back in its rooms and sent what it missed; emit 'resumed'.
  //  2. every remembered room the resume did not bring back (all of them
  //     without resume, or after "Session expired" / "Invalid resume
  //     token"): system/joinRoom again with the data first given; emit
  //     'rejoined'.
  // pxl-serve does not implement resume yet (PROTOCOL.md "History and
  // resume (pxl)" is the spec); step 1 is tested against a stand-in server.
  // Returns whether the session was resumed.
  async _restore(gen, previousToken) {
    let left = [...this._rooms.keys()];
    let resumed = false;
    let resumeError;
    if (this._o.resume && previousToken !== null && this._everOpen) {
      const rooms = {};
      for (const r of left) if (this._pos.has(r)) rooms[r] = this._pos.get(r);
      let reply;
      try {
        reply = await this._request('system', 'resume', { token: previousToken, rooms }, {}, true);
      } catch (error) {
        if (gen !== this._gen) throw error;
        reply = { success: false, error: error.message };
      }
      if (gen !== this._gen) throw new PxlError('closed', 'Connection lost while resuming');
      if (isObject(reply) && reply.success === true) {
        const previousClientId = this._clientId;
        if (typeof reply.clientId === 'string') this._clientId = reply.clientId;
        if (typeof reply.resumeToken === 'string') this._resumeToken = reply.resumeToken;
        const got = isObject(reply.rooms) ? reply.rooms : {};
        left = left.filter((r) => !(r in got));
        for (const r of Object.keys(got)) {
          if (!(isObject(got[r]) && got[r].recovered === true)) this._pos.delete(r);
        }
        resumed = true;
        this._emit('resumed', { clientId: this._clientId, previousClientId, rooms: got });
      } else {
        resumeError = isObject(reply) && typeof reply.error === 'string' ? reply.error : 'resume failed';
      }
    }
    if (left.length === 0) return resumed;
    const rooms = [];
    const failed = [];
    await Promise.all(left.map(async (r) => {
      try {
        const reply = await this._request('system', 'joinRoom', this._rooms.get(r), {}, true);
        if (isObject(reply) && reply.success === true) {
          rooms.push(r);
        } else {
          this._rooms.delete(r);
          failed.push({ roomName: r, error: isObject(reply) ? reply.error : 'joinRoom failed' });
        }
      } catch (error) {
        if (gen !== this._gen) throw error;
        failed.push({ roomName: r, error: error.message });
      }
    }));
    if (gen !== this._gen) throw new PxlError('closed', 'Connection lost while rejoining');
    for (const r of left) this._pos.delete(r); // a rejoin starts from now
    this._emit('rejoined', resumeError === undefined ? { rooms, failed } : { rooms, failed, resumeError });
    return resumed;
  }

  // The socket of generation `gen` is gone (closed, failed, timed out).
  _lost(gen, code, reason) {
    if (gen !== this._gen) return;
    this._gen++; // nothing of the old socket runs from here on
    this._ws = null;
    this._failSent(gen, code, reason);
    if (this._state === 'closed') return; // close() has said it all
    const willReconnect = this._o.reconnect && this._attempt < this._o.maxAttempts;
    this._state = willReconnect ? 'reconnecting' : 'closed';
    this._emit('close', { code, reason, willReconnect });
    if (!willReconnect) {
      const attempts = this._attempt;
      this._failAll(new PxlError('failed', `Connection failed (${code}${reason ? ' ' + reason : ''})`));
      if (this._o.reconnect) this._emit('failed', { attempts, code, reason });
      this._finish();
      return;
    }
    this._attempt++;
    const delay = backoffDelay(this._attempt, this._o);
    this._emit('reconnecting', { attempt: this._attempt, delay });
    if (this._state !== 'reconnecting') return; // a listener called close()
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._state !== 'reconnecting') return;
      this._state = 'connecting';
      this._connect();
    }, delay);
  }

  _finish() {
    if (this._closedResolve) this._closedResolve();
  }

  closed() {
    if (!this._closedPromise) {
      this._closedPromise = this._state === 'closed' && !this._ws
        ? Promise.resolve()
        : new Promise((resolve) => { this._closedResolve = resolve; });
    }
    return this._closedPromise;
  }

  close(code = 1000, reason = '') {
    if (this._state === 'closed') return this.closed();
    const done = this.closed();
    this._state = 'closed';
    if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    const ws = this._ws;
    const gen = this._gen;
    this._failAll(new PxlError('closed', 'Client is closed'));
    let finished = false;
    const finish = (c, r) => {
      if (finished) return;
      finished = true;
      if (ws) this._lost(gen, c, r);
      else this._gen++;
      this._emit('close', { code: c, reason: r, willReconnect: false });
      this._finish();
    };
    if (ws) {
      // An open socket ends with its close event (or an error); one still
      // connecting is dropped at once (some implementations never send
      // close for it).
      const open = ws.readyState === 1;
      ws.onclose = (ev) => finish(ev.code, ev.reason);
      ws.onerror = () => finish(1006, 'connection error');
      try {
        ws.close(code, reason);
      } catch {
        try { ws.close(); } catch { /* a code the WebSocket API refuses, or closing */ }
      }
      if (!open) finish(code, reason);
    } else {
      finish(code, reason);
    }
    return done;
  }
}

// Opens a client; it connects (and reconnects) by itself. See README.md.
export function connect(url, options) {
  return new Client(url, options || {});
}

export default { connect, PxlError, backoffDelay };
