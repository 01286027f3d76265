// test_browser.mjs - the example app in a real browser (issue 15):
// Debian's chromium, driven by playwright-core, opens the page that
// pxl-serve serves for plugins/chat/app.cfg in two pages with their own
// storage. Both choose a name and join a room, see each other in the
// member list, one says something and the other shows it; the server is
// restarted on the same port and both pages show "reconnecting…", come
// back by themselves (pxl.js joins their rooms again) and keep chatting,
// with the earlier messages loaded again from the database. Any console
// error fails the test, but the browser's own report of the WebSocket
// connections refused while the server was down. Screenshots go to
// tests/integration/screenshots/ in the build folder.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

import { Server, TAP, env } from './pxltest.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const tap = new TAP();
tap.deadline(120);

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.join(env('PXL_BUILDDIR'), 'tests', 'integration', 'screenshots');
fs.mkdirSync(shots, { recursive: true });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The real app file, on port, with its database in dbdir (default: the
// server's own temp folder).
function chatServer(port, name, dbdir) {
  const s = new Server(null, name, {
    file: path.join(env('PXL_SRCDIR'), 'plugins', 'chat', 'app.cfg'),
    args: ['-p', String(port)],
  });
  s.args.push('-o', `database.path=${dbdir || s.dir}/chat.db`);
  return s;
}

const REFUSED = /WebSocket connection to .* failed/;

async function openPage(browser, url, name, errors) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !REFUSED.test(m.text())) errors.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(url);
  await status(page, 'connected');
  await page.locator('#name').fill(name);
  await page.locator('#name').blur();
  return page;
}

function status(page, text, timeout = 15000) {
  return page.waitForFunction(
    (t) => document.getElementById('status').textContent.startsWith(t), text, { timeout });
}

function sees(page, text, timeout = 15000) {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes(t)),
    text, { timeout });
}

function members(page) {
  return page.$$eval('#members li', (lis) => lis.map((li) => li.textContent).sort());
}

async function say(page, text) {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
}

const port = await freePort();
let srv = chatServer(port, 'chat-a');
const dbdir = srv.dir;
const url = `http://127.0.0.1:${port}/`;
const errors = [];
let browser;
let alice;
let bob;
try {
  await srv.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

  await tap.case('two pages open the example, choose names and join #lobby', async () => {
    alice = await openPage(browser, url, 'alice', errors);
    bob = await openPage(browser, url, 'bob', errors);
    await alice.click('button[data-room="lobby"]');
    await bob.click('button[data-room="lobby"]');
    await alice.waitForFunction(() => document.querySelectorAll('#members li').length === 2);
    const got = await members(alice);
    if (JSON.stringify(got) !== JSON.stringify(['alice', 'bob'])) {
      throw new Error(`alice sees members ${JSON.stringify(got)}`);
    }
  }, 40000);

  await tap.case('alice says something; bob\'s page shows it, with her name', async () => {
    await say(alice, 'hello from alice');
    await sees(bob, 'hello from alice');
    const who = await bob.$$eval('#messages li', (lis) => lis
      .filter((li) => li.textContent.includes('hello from alice'))
      .map((li) => li.querySelector('.who').textContent));
    if (who[0] !== 'alice') throw new Error(`bob shows the sender as ${JSON.stringify(who)}`);
    await alice.screenshot({ path: path.join(shots, 'chat-alice.png') });
    await bob.screenshot({ path: path.join(shots, 'chat-bob.png') });
  }, 30000);

  await tap.case('the server restarts: both pages say reconnecting…, recover by themselves and '
    + 'keep chatting; the history comes back from the database', async () => {
    await srv.stop();
    await Promise.all([status(alice, 'reconnecting'), status(bob, 'reconnecting')]);
    await alice.screenshot({ path: path.join(shots, 'chat-reconnecting.png') });
    srv = chatServer(port, 'chat-b', dbdir);
    await srv.start();
    await Promise.all([status(alice, 'connected', 30000), status(bob, 'connected', 30000)]);
    await say(bob, 'back again, says bob');
    await sees(alice, 'back again, says bob');
    await sees(bob, 'hello from alice'); // reloaded from chat/history
    const who = await bob.$$eval('#messages li', (lis) => lis
      .filter((li) => li.textContent.includes('hello from alice'))
      .map((li) => li.querySelector('.who').textContent));
    if (who[0] !== 'alice') throw new Error(`after the restart bob shows ${JSON.stringify(who)}`);
    await alice.waitForFunction(() => document.querySelectorAll('#members li').length === 2);
    await alice.screenshot({ path: path.join(shots, 'chat-recovered.png') });
  }, 60000);

  tap.ok(errors.length === 0, 'no console errors in either page', errors.join('\n'));
} catch (e) {
  tap.ok(false, 'setup', e.stack);
} finally {
  if (browser) await browser.close();
  await tap.case('server exits 0 on SIGTERM, clean log', () => srv.stop());
  tap.done();
}
