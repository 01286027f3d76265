// rawws.mjs - hand-made WebSocket bytes for the soak's abusive clients:
// an upgrade request, masked client frames, a frame parser, and a raw
// socket that completes the upgrade (net.Socket, no `ws`).
import crypto from 'node:crypto';
import net from 'node:net';

export function upgradeRequest(host, port, path) {
  const key = crypto.randomBytes(16).toString('base64');
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n`
    + 'Upgrade: websocket\r\nConnection: Upgrade\r\n'
    + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 'latin1');
}

// A masked client frame (FIN set) with the given opcode and payload.
export function frame(opcode, payload) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  let head;
  if (p.length < 126) {
    head = Buffer.alloc(2);
    head[1] = 0x80 | p.length;
  } else if (p.length < 65536) {
    head = Buffer.alloc(4);
    head[1] = 0x80 | 126;
    head.writeUInt16BE(p.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(p.length), 2);
  }
  head[0] = 0x80 | opcode;
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

export const textFrame = (obj) => frame(0x1, typeof obj === 'string' ? obj : JSON.stringify(obj));

// Server frames (unmasked) from a byte stream: push() bytes, get frames
// {opcode, payload} back; a close frame also has .code.
export class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b[1] & 0x80) off += 4; // servers do not mask; tolerate it anyway
      if (b.length < off + len) break;
      const f = { opcode: b[0] & 0x0f, payload: b.subarray(off, off + len) };
      if (f.opcode === 0x8) f.code = len >= 2 ? f.payload.readUInt16BE(0) : 1005;
      out.push(f);
      this.buf = b.subarray(off + len);
    }
    return out;
  }
}

// Connect, send the upgrade, wait for the response head. Resolves
// {sock, status, rest} (rest: bytes after the head); the socket is left
// flowing with no 'data' listener (callers pause() it or attach theirs).
export function rawConnect({ host, port, path, localAddress, timeoutMs = 10000 }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no upgrade response'));
    }, timeoutMs);
    const fail = (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    sock.once('connect', () => sock.write(upgradeRequest(host, port, path)));
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 65536) fail(new Error('upgrade response head too long'));
        return;
      }
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', fail);
      sock.off('close', onClose);
      sock.on('error', () => {}); // callers add their own; never unhandled
      sock.pause();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head.toString('latin1'))?.[1] || 0);
      resolve({ sock, status, rest: head.subarray(end + 4) });
    };
    sock.on('data', onData);
    const onClose = () => fail(new Error('closed before the upgrade response'));
    sock.once('close', onClose);
  });
}
