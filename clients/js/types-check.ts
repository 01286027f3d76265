// types-check.ts - compiles only if pxl.d.ts describes pxl.js as used
// here (not shipped in the npm package):
//   npx -p typescript tsc --noEmit --strict --target es2022 \
//       --module nodenext --moduleResolution nodenext types-check.ts
import pxl, { connect, PxlError, backoffDelay, type PxlClient, type Frame } from './pxl.js';

const c: PxlClient = connect('ws://127.0.0.1:8080/ws', {
  token: async () => 'a-token', jitter: 'equal', maxAttempts: 3, queueLimit: 10,
});
const off = c.on('chat', 'message', (data: unknown, f: Frame) => { void data; void f.pos; });
off();
c.off('chat', 'message');
const remove = c.addEventListener('reconnecting', (e) => { const n: number = e.attempt + e.delay; void n; });
remove();
c.addEventListener('close', (e) => { const b: boolean = e.willReconnect; void b; });
c.addEventListener('resumed', (e) => { const r: boolean | undefined = e.rooms['lobby']?.recovered; void r; });
c.addEventListener('rejoined', (e) => { const s: string[] = e.rooms; void s; void e.resumeError; });

export async function use(): Promise<number> {
  const n = await c.request<number>('test', 'echo', 1, { timeout: 5 });
  const j = await c.join('lobby', { username: 'bob', timeout: 10 });
  const at: string = j.data.joinedAt;
  try {
    await c.leave('lobby');
  } catch (e) {
    if (e instanceof PxlError && e.code === 'timeout') void e.message;
  }
  await c.close(1000, 'bye');
  await c.closed();
  const state: 'connecting' | 'open' | 'reconnecting' | 'closed' = c.state;
  void state;
  return n + backoffDelay(2, { minDelay: 1 }) + at.length + (pxl.connect === connect ? 1 : 0);
}

// @ts-expect-error an unknown event
c.addEventListener('nope', () => {});
// @ts-expect-error jitter is 'full', 'equal' or 'none'
connect('ws://x', { jitter: 'half' });
