// lib.mjs - what the soak's threads share: the `ws` package (loaded with
// require, so NODE_PATH works), one clock for every thread, a promise
// wrapper for a ws connection, percentiles.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
export const WebSocket = require('ws');

// Milliseconds since the epoch, sub-millisecond, the same in every thread
// (performance.now() alone counts from each thread's own start).
export const now = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const rand = (a, b) => a + Math.random() * (b - a);
export const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];

// Source address number k of the pool 127.0.0.2 .. 127.0.0.(1+n).
export const localAddr = (k, n) => `127.0.0.${2 + (k % n)}`;

// Open a ws client; resolves the WebSocket once open, rejects on an error
// or a refusal (the error says which).
export function openWs(url, { localAddress, timeoutMs = 10000, onMessage } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress,
      handshakeTimeout: timeoutMs });
    let settled = false;
    if (onMessage) ws.on('message', onMessage);
    ws.once('open', () => {
      settled = true;
      resolve(ws);
    });
    ws.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    ws.once('unexpected-response', (req, res) => {
      settled = true;
      reject(new Error(`HTTP ${res.statusCode}`));
      req.destroy();
    });
    ws.once('close', () => {
      if (!settled) {
        settled = true;
        reject(new Error('closed before open'));
      }
    });
  });
}

// p in [0, 100] of a sorted numeric array (nearest rank).
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function sortedNums(arr) {
  return Float64Array.from(arr).sort();
}
