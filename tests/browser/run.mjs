#!/usr/bin/env node
/*
 * tests/browser/run.mjs: parley in a real browser. Debian's Chromium, driven by
 * playwright-core (no browser download), runs the web chat widget on a shop's
 * page, the agent console and the analytics dashboard against the real `parley serve`.
 *
 * It starts, each on a free loopback port:
 *   - a static server (node's http module) for the shop pages in this folder:
 *     the widget runs on an origin of its own, as on a real shop;
 *   - `parley serve` on a temporary COPY of the default bot whose
 *     webchat.origins names that origin, a temporary database,
 *     PARLEY_AGENT_TOKEN and PARLEY_ANALYTICS_TOKEN set (the repository's own
 *     bot files are never written);
 *   - headless Chromium (PARLEY_CHROMIUM, default /usr/bin/chromium).
 *
 * The scenarios run in order and carry one conversation along: a shopper
 * orders on the widget, reloads, asks for a person; an agent in a second
 * browser context answers from the console and hands back to the bot. Then a
 * right-to-left page, a phone, and axe-core on the open panel. Last, shoppers
 * talk to the bot over the HTTP API across three days of parley's test clock,
 * and the analytics dashboard must show what the analytics API says. Output is TAP;
 * each scenario leaves a screenshot in tests/out/browser/ (git-ignored), and with
 * PARLEY_SHOTS=docs the pictures in docs/ that the README and docs pages show are refreshed too.
 *
 * Everything started here is stopped here: at the end, on an exception, on
 * SIGINT/SIGTERM and by a watchdog (BROWSER_SUITE_TIMEOUT seconds). parley
 * runs under coreutils' `timeout`, so that even a node killed with SIGKILL
 * leaves no server behind for long; Chromium exits when its pipe to node closes.
 *
 * Run alone (after `make parley`; `make test` runs `npm ci` here when needed):
 *   node tests/browser/run.mjs
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import widgetAuthor from './widget_author.mjs';
import { consoleAuthor } from './console_author.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const PARLEY = process.env.PARLEY_BIN || path.join(ROOT, 'parley');
const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'tests', 'out', 'browser'); // emptied at the start of each run
const DOCS = process.env.PARLEY_SHOTS === 'docs' ? path.join(ROOT, 'docs') : null;
const SUITE_TIMEOUT_S = Number(process.env.BROWSER_SUITE_TIMEOUT || 90); // the suite takes ~15 s
const SERVER_LIFETIME_S = SUITE_TIMEOUT_S + 30; // `timeout` ends parley even if node is gone
const WAIT_MS = 10000; // the longest wait for one thing on a page (a reply, a button)

const BOT = 'barista';
const TITLE = "Bea's Coffee"; // bot.json "title": the widget's name
const AGENT = 'Mia';
const AGENT_REPLY = "Hi, I'm Mia — how can I help?";
const TOKEN = 'browser-' + crypto.randomBytes(12).toString('hex');
const ANALYTICS_TOKEN = 'analytics-' + crypto.randomBytes(12).toString('hex');

// scripts/tone.lua words a few replies in several ways: these match every variant.
const GREETING = /Hi! I'm Bea, your barista|Hello and welcome! Bea here|Hey there! I'm Bea/;
const ASK_DRINK = /Which drink would you like\?|What are you in the mood for\?/;
const ASK_SIZE = (drink) => new RegExp(`What size for your ${drink}\\?|Which size would you like your ${drink} in\\?`);
const HANDOFF = "Of course! I'm getting one of our team for you.";
const AGENT_JOINED = `${AGENT} from our team is here to help.`;

const catalog = JSON.parse(fs.readFileSync(path.join(ROOT, 'catalog.json'), 'utf8'));
const product = (sku) => catalog.products.find((p) => p.sku === sku);
const euros = (minor) => new Intl.NumberFormat('en', { style: 'currency', currency: catalog.currency }).format(minor / 100);

/* --- TAP and the scenarios --------------------------------------------------------------- */

const tests = [];
// scenario(id, name, fn, needs): needs names the earlier scenarios whose conversation it
// carries on; when one of them failed this one is reported failed without running.
const scenario = (id, name, fn, needs = []) => tests.push({ id, name, fn, needs });
const say = (text) => process.stdout.write(String(text).replace(/^/gm, '# ') + '\n');

class Failure extends Error {}

/* --- what this run started (cleanup stops exactly these) ---------------------------------- */

const run = {
  tmp: null,
  shop: null,       // the static http.Server
  parley: null,     // the ChildProcess (coreutils timeout, with parley under it)
  parleyLog: [],
  browser: null,
  base: null,       // http://127.0.0.1:PORT of parley
  shopBase: null,   // http://127.0.0.1:PORT of the shop pages
  pageErrors: [],   // uncaught exceptions in any page: every scenario fails on a new one
  stopping: false,  // the watchdog or a signal is ending the run
};

let cleaning = null;
function cleanup() {
  if (!cleaning) cleaning = doCleanup();
  return cleaning;
}

async function doCleanup() {
  if (run.browser) await withTimeout(run.browser.close(), 5000, 'closing Chromium').catch(() => {});
  await stopParley();
  if (run.shop) {
    run.shop.closeAllConnections?.();
    run.shop.close();
  }
  if (run.tmp) fs.rmSync(run.tmp, { recursive: true, force: true });
}

// SIGTERM to `timeout`, which passes it on to parley (and sends SIGKILL 5 s later if parley
// is still there: `-k 5`); parley finishes the messages in flight and exits.
function stopParley() {
  const p = run.parley;
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const forced = setTimeout(() => { // (`timeout -k 5` has killed parley by now)
      p.kill('SIGKILL');
      resolve();
    }, 8000);
    p.once('exit', () => {
      clearTimeout(forced);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

const watchdog = setTimeout(async () => {
  run.stopping = true;
  console.log(`not ok - watchdog: the browser suite was still running after ${SUITE_TIMEOUT_S} s; stopping everything`);
  await withTimeout(cleanup(), 10000, 'cleanup').catch(() => {});
  process.exit(1);
}, SUITE_TIMEOUT_S * 1000);

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, async () => {
    run.stopping = true;
    console.log(`not ok - stopped by ${sig}`);
    await withTimeout(cleanup(), 10000, 'cleanup').catch(() => {});
    process.exit(1);
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what}: no end after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/* --- the shop pages and parley ------------------------------------------------------------ */

// The shop pages name the widget as http://127.0.0.1:PORT/...: the PORT becomes parley's.
function startShop() {
  const pages = { '/': 'shop.html', '/shop.html': 'shop.html', '/shop-rtl.html': 'shop-rtl.html' };
  const server = http.createServer((req, res) => {
    const file = pages[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404, { 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    const html = fs.readFileSync(path.join(HERE, file), 'utf8').replaceAll('http://127.0.0.1:PORT', run.base);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      run.shop = server;
      run.shopBase = `http://127.0.0.1:${server.address().port}`;
      resolve();
    });
  });
}

// A copy of the default bot (as tests/e2e/harness.py copy_default_bot makes it) that lets
// the widget onto the shop's origin. No timed greeting: a proactive message arriving in
// the middle of a scenario would make the transcripts differ from run to run.
function copyDefaultBot() {
  const dst = path.join(run.tmp, BOT);
  fs.mkdirSync(dst);
  for (const f of ['bot.json', 'catalog.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dst, f));
  for (const d of ['flows', 'scripts']) fs.cpSync(path.join(ROOT, d), path.join(dst, d), { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(dst, 'bot.json'), 'utf8'));
  manifest.webchat.origins = [run.shopBase];
  delete manifest.webchat.greet_after_seconds;
  manifest.webchat.greet_on_open = false; // these scenarios start by writing; widget_author.mjs's greet on open
  fs.writeFileSync(path.join(dst, 'bot.json'), JSON.stringify(manifest, null, 2));
  return dst;
}

async function startParley(botDir) {
  // the test clock: pacing for the rate limit moves parley's clock instead of waiting
  const env = { ...process.env, PARLEY_AGENT_TOKEN: TOKEN, PARLEY_ANALYTICS_TOKEN: ANALYTICS_TOKEN, PARLEY_TEST_CLOCK: '1' };
  for (const k of ['PARLEY_ADMIN_TOKEN', 'BARISTA_AGENT_TOKEN', 'BARISTA_ANALYTICS_TOKEN', 'PARLEY_PUBLIC_URL']) delete env[k];
  const args = ['-k', '5', String(SERVER_LIFETIME_S), PARLEY, 'serve', '--listen', '127.0.0.1:0',
    '--db', path.join(run.tmp, 'parley.db'), '--no-watch', botDir];
  const proc = spawn('timeout', args, { cwd: run.tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  run.parley = proc;
  const port = await new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        run.parleyLog.push(line);
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', onData);
    proc.once('error', reject);
    proc.once('exit', (code, sig) => reject(new Failure(`parley exited (${code ?? sig}) before listening:\n${run.parleyLog.join('\n')}`)));
    setTimeout(() => reject(new Failure(`parley did not say where it listens within 10 s:\n${run.parleyLog.join('\n')}`)), 10000);
  });
  run.base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      if ((await fetch(run.base + '/v1/health')).ok) return;
    } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Failure('parley /v1/health did not answer 200 within 10 s');
    await sleep(50);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* --- the browser ---------------------------------------------------------------------------- */

// Product pictures live on images.parley.example (catalog.json), which does not exist: the
// browser gets a small drawn picture instead, so cards show an image. Nothing leaves loopback.
const PICTURES = {
  espresso: ['☕', '#4b2e1e'], latte: ['☕', '#a0704c'], cappuccino: ['☕', '#8a5a3c'], 'flat-white': ['☕', '#b08462'],
  'matcha-latte': ['🍵', '#6f8f3a'], 'hot-chocolate': ['🍫', '#5a3322'], croissant: ['🥐', '#d9a441'],
  'pain-au-chocolat': ['🥐', '#b5773a'], biscotti: ['🍪', '#c99a5b'],
};

function picture(url) {
  const name = path.basename(new URL(url).pathname).replace(/\.\w+$/, '');
  const [emoji, color] = PICTURES[name] || ['🛍️', '#8a7f75'];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">` +
    `<rect width="400" height="300" fill="${color}"/><circle cx="200" cy="150" r="95" fill="#fff" fill-opacity=".18"/>` +
    `<text x="200" y="150" font-size="120" text-anchor="middle" dominant-baseline="central" ` +
    `font-family="Noto Color Emoji, sans-serif">${emoji}</text></svg>`;
}

async function newContext(options = {}) {
  const context = await run.browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce', // no pop-in animation half-way through a screenshot
    ...options,
  });
  context.setDefaultTimeout(WAIT_MS);
  await context.route((url) => url.protocol !== 'http:' || url.hostname !== '127.0.0.1', (route) => {
    const url = route.request().url();
    if (new URL(url).hostname === 'images.parley.example') {
      return route.fulfill({ status: 200, contentType: 'image/svg+xml', body: picture(url) });
    }
    return route.abort('blockedbyclient');
  });
  context.on('page', watchPage);
  return context;
}

function watchPage(page) {
  page.on('pageerror', (err) => run.pageErrors.push(`${page.url()}: ${err.message}`));
}

// The widget as a shopper (and a screen reader) finds it: by role and accessible name.
// words: the widget's own strings in the page's language (widget.js STRINGS).
const EN = { open: `Open chat with ${TITLE}`, dialog: `Chat with ${TITLE}`, input: 'Message', send: 'Send', close: 'Close chat' };
const AR = { open: `فتح المحادثة مع ${TITLE}`, dialog: `محادثة مع ${TITLE}`, input: 'الرسالة', send: 'إرسال', close: 'إغلاق المحادثة' };

function widgetOn(page, words = EN) {
  const dialog = page.getByRole('dialog', { name: words.dialog });
  return {
    page,
    launcher: page.getByRole('button', { name: words.open }),
    dialog,
    log: dialog.getByRole('log'),
    input: dialog.getByRole('textbox', { name: words.input }),
    close: dialog.getByRole('button', { name: words.close }),
  };
}

async function visible(locator, what, timeout = WAIT_MS) {
  try {
    await locator.waitFor({ state: 'visible', timeout });
  } catch (e) {
    throw new Failure(`${what}: ${waitError(e, timeout)}`);
  }
  return locator;
}

async function hidden(locator, what, timeout = WAIT_MS) {
  try {
    await locator.waitFor({ state: 'hidden', timeout });
  } catch (e) {
    throw new Failure(`${what} (to go away): ${waitError(e, timeout)}`);
  }
}

// A timeout says so; anything else (a locator matching two elements) says what it was.
function waitError(e, timeout) {
  if (e.name === 'TimeoutError') return `not there after ${timeout / 1000} s`;
  return e.message.split('\n').slice(0, 6).join('\n');
}

// Polls fn() until it returns something truthy; returns that.
async function until(fn, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Failure(`timed out after ${timeout / 1000} s waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(50);
  }
}

// The newest bot message matching text (a string or a RegExp).
function botSays(w, text) {
  return w.log.locator('.row.bot').filter({ hasText: text }).last();
}

// parley lets one shopper send PL_WEBCHAT_BURST messages or stream openings at once, then
// one per PL_WEBCHAT_REFILL_S seconds (runtime/http/webchat.h). A person never taps that fast; a
// test may. So each page keeps the same bucket and, when it is empty, moves parley's test clock
// on by the refill time (never sleeping): no 429 mid-scenario.
const webchatH = fs.readFileSync(path.join(ROOT, 'runtime', 'http', 'webchat.h'), 'utf8');
const BURST = Number(/#define PL_WEBCHAT_BURST ([\d.]+)/.exec(webchatH)[1]);
const REFILL_S = Number(/#define PL_WEBCHAT_REFILL_S ([\d.]+)/.exec(webchatH)[1]);
const buckets = new WeakMap();

async function spend(page, n) {
  const b = buckets.get(page) || { tokens: BURST, at: Date.now() };
  buckets.set(page, b);
  b.tokens = Math.min(BURST, b.tokens + (Date.now() - b.at) / 1000 / REFILL_S);
  b.at = Date.now();
  // one token in hand to spare: the server's clock and ours do not start at the same instant
  const short = n + 1 - b.tokens;
  if (short > 0) {
    await advanceClock(Math.ceil(short * REFILL_S));
    b.tokens += short;
    b.at = Date.now();
  }
  b.tokens -= n;
}

// Moves parley's test clock on (what fell due then happens: reminders fire).
async function advanceClock(seconds) {
  const r = await fetch(run.base + '/v1/test/clock', { method: 'POST', body: JSON.stringify({ advance: seconds }) });
  if (!r.ok) throw new Error(`POST /v1/test/clock answered ${r.status}`);
}

// A message costs one token, and the first one of a shopper also opens the stream.
async function spendForMessage(page) {
  const known = await page.evaluate((key) => !!localStorage.getItem(key), `parley-${BOT}-user`);
  await spend(page, known ? 1 : 2);
}

// Waits until the shopper's message is accepted by the server (no longer dimmed); if the
// widget took it back, says what the widget told the shopper.
async function accepted(w, text, what) {
  const row = w.log.locator('.row.me:not(.sending)').filter({ hasText: text }).last();
  try {
    await row.waitFor({ state: 'visible' });
  } catch (e) {
    const note = await w.dialog.locator('.note').textContent().catch(() => '');
    throw new Failure(`${what}: not accepted by parley${note ? ` (the widget says: ${note})` : ''}: ${waitError(e, WAIT_MS)}`);
  }
}

async function send(w, text) {
  await spendForMessage(w.page);
  await w.input.fill(text);
  await w.input.press('Enter');
  await accepted(w, text, `the message "${text}"`);
}

// Taps the newest button called name (older ones are retired by the widget) and waits for
// the server to accept the tap, shown in the shopper's messages by its title.
async function tap(w, name, shown = name) {
  const button = w.log.getByRole('button', { name }).last();
  await visible(button, `the button ${name}`);
  assert.equal(await button.isEnabled(), true, `the newest button ${name} is enabled`);
  await spendForMessage(w.page);
  await button.click();
  await accepted(w, shown, `the tap on ${name}`);
}

// tests/out/browser/NAME.png, and with PARLEY_SHOTS=docs the same picture as docs/DOCS.
async function shot(page, name, opts = {}) {
  const file = path.join(OUT, name + '.png');
  await page.screenshot({ path: file, animations: 'disabled', caret: 'hide', fullPage: !!opts.fullPage });
  if (DOCS && opts.docs) {
    fs.mkdirSync(DOCS, { recursive: true });
    fs.copyFileSync(file, path.join(DOCS, opts.docs));
  }
}

// The shopper's desktop: small enough that the panel reads well in the README's pictures.
const DESKTOP = { width: 1100, height: 760 };

/* --- the scenarios ---------------------------------------------------------------------------- */

const S = {}; // what a scenario leaves for the next: pages, contexts, the shopper's id

scenario('order', 'a shopper orders in the widget: greeting, drink, size, pastry cards, summary, payment link', async () => {
  S.shopper = await newContext({ viewport: DESKTOP });
  const page = await S.shopper.newPage();
  await page.goto(run.shopBase + '/shop.html');
  const w = widgetOn(page);
  S.w = w;

  await visible(w.launcher, 'the chat bubble');
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'false');
  await w.launcher.click();
  await visible(w.dialog, 'the chat panel');
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true', 'the bubble says the panel is open');
  await visible(w.dialog.getByText('Write a message to start the conversation.'), 'the empty-chat hint');
  assert.equal(await w.input.evaluate((el) => el === el.getRootNode().activeElement), true, 'opening focuses the message box');

  await send(w, 'hi');
  await visible(botSays(w, GREETING), 'the greeting');
  await visible(botSays(w, ASK_DRINK), 'the question for a drink');
  S.user = await page.evaluate(() => window.parleyWidget.user);
  assert.match(S.user, /^[0-9a-f]{32}$/, "the shopper's id is 32 hex characters");

  const latte = product('latte');
  await tap(w, `Latte · ${euros(latte.price)}`);
  await visible(botSays(w, ASK_SIZE('Latte')), 'the question for the size');
  const medium = latte.options.size.find((s) => s.value === 'medium');
  await tap(w, `Medium +${euros(medium.price)}`);
  await visible(botSays(w, /One Medium Latte, coming up!|Great choice: a Medium Latte/), 'the latte in the cart');

  // The pastry offer: a carousel of cards, each with a picture, its title and its price.
  const cards = w.log.getByRole('group', { name: 'Products' }).last();
  await visible(cards, 'the carousel of pastries');
  const items = cards.getByRole('group');
  const count = await items.count();
  assert.ok(count >= 1, 'at least one card');
  const shown = [];
  for (let i = 0; i < count; i++) {
    const card = items.nth(i);
    const name = await card.getAttribute('aria-label');
    const p = catalog.products.find((x) => x.title.en === name);
    assert.ok(p, `the card "${name}" is a catalog product`);
    assert.ok(p.tags.includes('food'), `the card "${name}" is a pastry (tag food)`);
    await visible(card.getByText(name, { exact: true }), `the title of the card ${name}`);
    await visible(card.getByText(euros(p.price), { exact: true }), `the price ${euros(p.price)} on the card ${name}`);
    const loaded = await until(() => card.locator('img').evaluate((img) => img.complete && img.naturalWidth > 0), `the picture of ${name}`);
    assert.ok(loaded);
    shown.push(p);
  }
  // The screenshot for the README: the open panel with the cards in view.
  await cards.scrollIntoViewIfNeeded();
  await page.mouse.move(5, 5); // no button under the mouse: no hover colour in the picture
  await shot(page, 'a1-widget-cards', { docs: 'widget.png' });

  // Accept the first pastry from its card's own button.
  const pastry = shown[0];
  await tap(w, `Choose: ${pastry.title.en}`, pastry.title.en);
  await visible(botSays(w, `Added ${pastry.title.en} to your order`), 'the pastry in the cart');
  const total = latte.price + medium.price + pastry.price;
  await visible(botSays(w, `That's 2 item(s) so far, ${euros(total)}. Anything else?`), 'the running total');
  await tap(w, "That's all");
  const summary = botSays(w, "Here's your order:");
  await visible(summary, 'the summary');
  const text = await summary.innerText();
  assert.match(text, new RegExp(`1 × Latte \\(Medium\\) — ${escapeRe(euros(latte.price + medium.price))}`));
  assert.match(text, new RegExp(`1 × ${escapeRe(pastry.title.en)} — ${escapeRe(euros(pastry.price))}`));
  assert.match(text, new RegExp(`Total: ${escapeRe(euros(total))}`));
  await visible(botSays(w, 'Shall I take the payment?'), 'the question how to pay');
  await tap(w, 'Pay now');

  const link = w.log.getByRole('link', { name: new RegExp(`^Pay ${escapeRe(euros(total))}`) }).last();
  await visible(link, 'the payment button');
  const href = await link.getAttribute('href');
  const testPage = new RegExp(`^${escapeRe(run.base)}/v1/bots/${BOT}/payments/test/(\\d+)\\?token=\\w+`);
  assert.match(href, testPage, "the payment link is this server's test payment page");
  const order = testPage.exec(href)[1];
  await visible(botSays(w, `Order #${order}: ${euros(total)}. Tap below to pay securely`), 'the order number and total');
  assert.equal(await link.getAttribute('target'), '_blank', 'the payment page opens in a new tab');
  await page.mouse.move(5, 5);
  await shot(page, 'a2-widget-payment', { docs: 'widget-payment.png' });

  // The link really leads to the order's payment page (not paid: the agent sees a full cart).
  const [tab] = await Promise.all([S.shopper.waitForEvent('page'), link.click()]);
  await tab.waitForLoadState();
  assert.equal(tab.url(), href);
  await visible(tab.getByRole('heading', { name: `Order #${order}` }), 'the test payment page of the order');
  await visible(tab.getByRole('button', { name: `Pay ${euros(total)}` }), 'the pay button of the test payment page');
  await shot(tab, 'a3-test-payment-page');
  await tab.close();
  S.order = { id: order, total, pastry, href };
});

scenario('reload', 'the shopper reloads the page: the same conversation, the panel still open', async () => {
  const w = S.w;
  const before = await w.log.innerText();
  await spend(w.page, 1); // the reloaded page opens a new stream
  await w.page.reload();
  await visible(w.dialog, 'the panel, open again after the reload');
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'true');
  const link = w.log.getByRole('link', { name: /^Pay / }).last();
  await visible(link, 'the payment button, replayed');
  assert.equal(await link.getAttribute('href'), S.order.href, 'the same payment link');
  const after = await until(async () => {
    const now = await w.log.innerText();
    return now === before ? now : null;
  }, 'the replayed conversation to read exactly as before the reload', 5000).catch(async (e) => {
    throw new Failure(`${e.message}\n${firstDifference(before, await w.log.innerText())}`);
  });
  assert.equal(after, before);
  assert.equal(await w.page.evaluate(() => window.parleyWidget.user), S.user, 'the same shopper id');
  // A panel restored by a reload does not take the focus from the page.
  assert.equal(await w.page.evaluate(() => document.activeElement === document.body), true, 'the focus stays on the page');
  // Only the newest buttons still work: "Pay now" was tapped, the summary's choices are retired.
  assert.equal(await w.log.getByRole('button', { name: 'Pay now' }).last().isDisabled(), true, 'the tapped choice is retired');
  await shot(w.page, 'b-widget-after-reload');
}, ['order']);

scenario('handoff', 'the shopper asks for a person: the handoff message', async () => {
  const w = S.w;
  await send(w, 'talk to a person');
  await visible(botSays(w, HANDOFF), 'the handoff message');
  await shot(w.page, 'c-widget-handoff');
}, ['order']);

scenario('agent', 'an agent signs in to the console, finds the shopper in the queue, claims and replies: the shopper sees it live', async () => {
  S.agent = await newContext();
  const page = await S.agent.newPage();
  S.console = page;
  await page.goto(run.base + '/agent');
  await page.getByLabel('Your name').fill(AGENT);
  await page.getByLabel('Agent token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await visible(page.getByText(`Signed in as ${AGENT}`), 'the console after signing in');
  await visible(page.getByRole('status').filter({ hasText: 'Live' }), 'the live stream of the queue');

  // The queue names a web chat shopper "Visitor N" (the widget's ids are random, with no display name).
  const queue = page.getByRole('navigation', { name: 'Queue' });
  const item = queue.getByRole('button', {
    name: new RegExp(`^Visitor \\d+, ${BOT}, webchat, waiting .*reason: asked for a person, not claimed`),
  });
  await visible(item, 'the shopper waiting in the queue, with the reason');
  await visible(queue.getByText('Waiting (1)'), 'one conversation waiting');
  await item.click();

  const panel = page.getByRole('tabpanel');
  await visible(panel.getByRole('heading', { name: /^Visitor \d+$/ }), "the conversation's heading (the shopper's visitor number)");
  await visible(page.getByRole('tab', { name: new RegExp(`^Visitor \\d+, ${BOT}, webchat`) }), 'a tab for the conversation');
  // The whole transcript, the bot's part included.
  const transcript = panel.getByRole('log', { name: 'Transcript' });
  for (const text of ['hi', "That's all", 'talk to a person', HANDOFF, `Order #${S.order.id}`]) {
    await visible(transcript.getByText(text).first(), `"${text}" in the transcript`);
  }
  await visible(transcript.getByRole('list', { name: 'Product cards shown (read-only)' }).first(), 'the cards the bot showed');
  // The cart with its lines and total.
  const cart = panel.getByRole('region', { name: 'Cart' });
  const table = cart.getByRole('table', { name: 'Cart lines and totals' });
  await visible(table, 'the cart');
  const latteLine = product('latte').price + product('latte').options.size.find((x) => x.value === 'medium').price;
  // (the option as the agent API gives it: "size: medium"; the bot's summary says "Latte (Medium)")
  await visible(table.getByRole('row', { name: new RegExp(`^1 × Latte .*medium.* ${escapeRe(euros(latteLine))}$`, 'i') }), 'the medium latte in the cart');
  await visible(table.getByRole('row', { name: `1 × ${S.order.pastry.title.en} ${euros(S.order.pastry.price)}`, exact: true }), 'the pastry in the cart');
  await visible(table.getByRole('row', { name: `Total ${euros(S.order.total)}`, exact: true }), 'the total of the cart');

  const reply = panel.getByRole('textbox', { name: /^Reply/ });
  assert.equal(await reply.isDisabled(), true, 'no reply before claiming');
  await panel.getByRole('button', { name: 'Claim this conversation' }).click();
  await visible(panel.getByText('claimed by you'), 'the conversation claimed by the agent');
  await until(() => reply.isEnabled(), 'the reply box to open after the claim');
  // The shopper hears who joined, live.
  const w = S.w;
  await w.page.evaluate(() => { window.__sameDocument = true; }); // a reload would lose this
  await visible(botSays(w, AGENT_JOINED), 'the agent_joined message in the widget');

  // While a person has the conversation the bot is quiet; the agent sees the shopper's words live.
  await send(w, 'Can I pick it up at 5?');
  await visible(transcript.getByText('Can I pick it up at 5?'), "the shopper's new message in the console, live");

  await reply.fill(AGENT_REPLY);
  await reply.press('Enter');
  await visible(transcript.getByText(AGENT_REPLY), 'the reply in the transcript');
  await visible(transcript.getByText(`${AGENT} (agent)`).last(), 'the reply marked as the agent’s in the console');

  const fromMia = w.log.locator('.row.agent').filter({ hasText: AGENT_REPLY });
  await visible(fromMia, "the agent's reply in the widget, live");
  assert.equal(await w.page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  assert.equal((await fromMia.locator('.who').innerText()).trim(), AGENT, 'the reply is marked with the agent’s name');
  assert.match(await fromMia.locator('.bubble').textContent(), new RegExp(`^${AGENT}: `), 'screen readers hear who wrote it');
  // Nothing from the bot between the shopper's question and the agent's answer.
  const after = await w.log.locator('.row').evaluateAll((rows) => rows.slice(-2).map((r) => r.className));
  assert.deepEqual(after.map((c) => c.includes('me') ? 'me' : c.includes('agent') ? 'agent' : 'bot'), ['me', 'agent'],
    'the bot does not answer while a person has the conversation');
  await transcript.getByText(AGENT_REPLY).scrollIntoViewIfNeeded();
  await page.mouse.move(0, 799);
  await shot(page, 'd1-agent-console', { docs: 'agent-console.png' });
  await shot(w.page, 'd2-widget-agent-reply');
}, ['handoff']);

scenario('handback', 'the agent hands back to the bot at drink › choose: the bot asks again, the shopper answers, the bot answers', async () => {
  const page = S.console;
  const panel = page.getByRole('tabpanel');
  await panel.getByRole('button', { name: 'Hand back…' }).click();
  const form = page.getByRole('form', { name: 'Hand back to the bot' });
  await visible(form, 'the hand-back form');
  await form.getByRole('combobox', { name: 'Flow' }).selectOption('drink');
  await form.getByRole('combobox', { name: 'Step' }).selectOption('choose');
  await form.getByRole('button', { name: 'Hand back to the bot' }).click();
  await visible(page.getByRole('status').filter({ hasText: 'back to the bot at drink › choose' }), 'the console confirming the hand back');
  await visible(page.getByRole('navigation', { name: 'Queue' }).getByText('No one is waiting.'), 'the queue empty again');

  const w = S.w;
  await visible(botSays(w, ASK_DRINK), 'the bot asking for a drink again');
  const flat = product('flat_white');
  await tap(w, `Flat White · ${euros(flat.price)}`);
  await visible(botSays(w, ASK_SIZE('Flat White')), 'the bot asking the size of the new drink');
  assert.equal(await w.page.evaluate(() => window.__sameDocument), true, 'all of it live, without a reload');
  await shot(w.page, 'e-widget-after-handback');
}, ['agent']);


scenario('rtl', 'right to left: the panel mirrors, Arabic and Hebrew render, the keyboard opens and closes it', async () => {
  const context = await newContext({ locale: 'ar', viewport: DESKTOP });
  S.rtl = context;
  const page = await context.newPage();
  await page.goto(run.shopBase + '/shop-rtl.html');
  const w = widgetOn(page, AR);
  await visible(w.launcher, 'the chat bubble (named in Arabic)');

  // Tab from the top of the page reaches the bubble (after the page's own links and buttons).
  const focused = () => w.launcher.evaluate((el) => el.getRootNode().activeElement === el && document.activeElement === el.getRootNode().host);
  let tabs = 0;
  while (!(await focused())) {
    assert.ok(++tabs <= 20, 'Tab reaches the bubble within 20 presses');
    await page.keyboard.press('Tab');
  }
  await page.keyboard.press('Enter');
  await visible(w.dialog, 'the panel, opened with Enter');
  assert.equal(await w.input.evaluate((el) => el.getRootNode().activeElement === el), true, 'Enter moves the focus to the message box');

  const direction = await w.dialog.evaluate((el) => getComputedStyle(el).direction);
  assert.equal(direction, 'rtl', "the panel's computed direction");
  const box = await w.launcher.boundingBox();
  assert.ok(box.x + box.width / 2 < 640, `the bubble sits on the left of a right-to-left page (x=${box.x})`);
  await visible(w.dialog.getByText('اكتب رسالة لبدء المحادثة.'), "the widget's own words in Arabic");
  assert.equal(await w.input.getAttribute('placeholder'), 'اكتب رسالة…');

  const arabic = 'مرحبا! أريد قهوة من فضلك';
  const hebrew = 'שלום, אפשר קפה?';
  await spendForMessage(page);
  await w.input.pressSequentially(arabic); // typed, as a keyboard does
  await w.input.press('Enter');
  const mine = w.log.locator('.row.me .text').filter({ hasText: arabic });
  await visible(mine, 'the Arabic message in the conversation');
  await visible(botSays(w, ASK_DRINK), "the bot's answer");
  await send(w, hebrew);
  const hebrewText = w.log.locator('.row.me .text').filter({ hasText: hebrew });
  await visible(botSays(w, 'Sorry, I didn\'t catch which drink.'), "the bot's answer to the Hebrew message");

  // Rendered with fonts that have the letters, not boxes: the fonts Chromium really used.
  const arabicFonts = await platformFonts(context, page, mine.last());
  const hebrewFonts = await platformFonts(context, page, hebrewText.last());
  const names = (fonts) => fonts.map((f) => `${f.familyName} (${f.glyphCount})`).join(', ');
  assert.ok(arabicFonts.some((f) => /Arabic|Naskh|Kufi|DejaVu/i.test(f.familyName) && f.glyphCount > 0),
    `Arabic letters are drawn with an Arabic font; used: ${names(arabicFonts)}`);
  assert.ok(hebrewFonts.some((f) => /Hebrew|DejaVu/i.test(f.familyName) && f.glyphCount > 0),
    `Hebrew letters are drawn with a Hebrew font; used: ${names(hebrewFonts)}`);
  say(`fonts: Arabic ${names(arabicFonts)}; Hebrew ${names(hebrewFonts)}`);
  // The shopper's own messages sit at the reading end: the left of a right-to-left panel.
  const side = await mine.last().evaluate((el) => {
    const bubble = el.closest('.bubble').getBoundingClientRect();
    const panel = el.closest('[role=dialog]').getBoundingClientRect();
    return { left: bubble.left - panel.left, right: panel.right - bubble.right };
  });
  assert.ok(side.left < side.right, `the shopper's message is on the left (${JSON.stringify(side)})`);
  // The picture starts at the shopper's Arabic message.
  await mine.last().evaluate((el) => el.closest('.row').scrollIntoView({ block: 'start' }));
  await page.mouse.move(DESKTOP.width - 5, 5);
  await shot(page, 'f-widget-rtl', { docs: 'widget-rtl.png' });

  // Escape closes the panel and gives the focus back to the bubble.
  await page.keyboard.press('Escape');
  await hidden(w.dialog, 'the panel after Escape');
  assert.equal(await focused(), true, 'the focus is back on the bubble');
  assert.equal(await w.launcher.getAttribute('aria-expanded'), 'false');
  await context.close();
});

scenario('phone', 'a phone (390×844): the open panel fills the screen, nothing overflows sideways', async () => {
  const context = await newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(run.shopBase + '/shop.html');
  const w = widgetOn(page);
  await visible(w.launcher, 'the chat bubble');
  await w.launcher.tap();
  await visible(w.dialog, 'the chat panel');
  await send(w, 'hi');
  await tap(w, /^Cappuccino · /, 'Cappuccino');
  await tap(w, 'Large +' + euros(product('cappuccino').options.size.find((s) => s.value === 'large').price));
  const cards = w.log.getByRole('group', { name: 'Products' }).last();
  await visible(cards, 'the carousel of pastries');
  await w.log.getByRole('button', { name: 'No thanks' }).last().scrollIntoViewIfNeeded();

  const box = await w.dialog.boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height].map(Math.round), [0, 0, 390, 844], 'the panel covers the screen');
  const m = await page.evaluate(() => {
    const root = document.querySelector('parley-chat').shadowRoot;
    const panel = root.querySelector('[role=dialog]');
    const scroller = root.querySelector('[role=region]');
    const outside = Array.from(panel.querySelectorAll('*'))
      .filter((el) => !el.closest('.carousel .card') && el.getClientRects().length)
      .map((el) => [el, el.getBoundingClientRect()])
      .filter(([, r]) => r.left < -0.5 || r.right > innerWidth + 0.5)
      .map(([el, r]) => `${el.className || el.tagName} ${Math.round(r.left)}..${Math.round(r.right)}`);
    return {
      page: document.documentElement.scrollWidth, viewport: innerWidth,
      panel: [panel.scrollWidth, panel.clientWidth], scroller: [scroller.scrollWidth, scroller.clientWidth],
      outside, modal: panel.getAttribute('aria-modal'),
      launcherShown: root.querySelector('button[aria-haspopup]').getClientRects().length > 0,
      inputFont: getComputedStyle(root.querySelector('textarea')).fontSize,
    };
  });
  assert.ok(m.page <= m.viewport, `the page does not scroll sideways (${m.page} > ${m.viewport})`);
  assert.ok(m.panel[0] <= m.panel[1], `the panel does not overflow sideways (${m.panel})`);
  assert.ok(m.scroller[0] <= m.scroller[1], `the messages do not overflow sideways (${m.scroller})`);
  assert.deepEqual(m.outside, [], 'nothing in the panel (but the cards of the scrolling carousel) sticks out of the screen');
  assert.equal(m.modal, 'true', 'full screen, the panel is modal');
  assert.equal(m.launcherShown, false, 'the bubble hides behind the full-screen panel');
  assert.equal(m.inputFont, '16px', 'the message box is 16px (iOS does not zoom the page on focus)');
  await shot(page, 'g-widget-phone');
  await w.close.tap();
  await hidden(w.dialog, 'the panel after its close button');
  await visible(w.launcher, 'the bubble, back');
  await context.close();
});

scenario('axe', 'axe-core: no serious or critical accessibility violations in the open panel', async () => {
  const page = S.w.page;
  const require = createRequire(import.meta.url);
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document.querySelector('parley-chat'), { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  for (const v of violations) say(`axe ${v.impact}: ${v.id} — ${v.help}: ${v.nodes.join(', ')}`);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => v.id), [], 'serious or critical violations');
}, ['order']);

widgetAuthor({ scenario, run, newContext, widgetOn, visible, hidden, until, botSays, shot, Failure, ROOT, HERE, PARLEY,
  SERVER_LIFETIME_S, DESKTOP, GREETING, ASK_DRINK, ASK_SIZE, product, euros, escapeRe });

/* --- the analytics dashboard ------------------------------------------------------------------ */

// One message of a shopper over the HTTP API (the rest channel, docs/http-api.md): its replies.
async function rest(user, fields) {
  const r = await fetch(`${run.base}/v1/bots/${BOT}/messages`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user, ...fields }),
  });
  const body = await r.json().catch(() => null);
  if (r.status !== 200) throw new Failure(`POST /v1/bots/${BOT}/messages ${JSON.stringify(fields)} for ${user}: ${r.status} ${JSON.stringify(body)}`);
  return body.replies;
}
const textsOf = (replies) => replies.map((r) => r.text || '').join('\n');

// hi, a drink in one sentence, a pastry or no thanks, that's all: at "Shall I take the payment?"
// (as tests/e2e/commerce_helpers.py to_checkout).
async function toCheckout(user, drink = 'a small latte', pastry = 'no') {
  await rest(user, { text: 'hi' });
  assert.match(textsOf(await rest(user, { text: drink })), /\b(Small|Medium|Large|Single|Double) [A-Z]/, `${user}: "${drink}" understood`);
  await rest(user, { payload: pastry });
  assert.match(textsOf(await rest(user, { payload: 'done' })), /Shall I take the payment\?/, `${user}: at the payment question`);
}

// Taps "Pay now" and answers the test provider's payment page with action (pay or decline),
// as the shopper's browser would post its form.
async function settle(user, action) {
  const link = (await rest(user, { payload: 'pay' })).find((r) => r.link)?.link;
  assert.ok(link, `${user}: a payment link`);
  const url = new URL(link.url);
  const r = await fetch(run.base + url.pathname, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: url.searchParams.get('token'), action }).toString(),
  });
  assert.equal(r.status, 200, `${user}: the test payment page took "${action}"`);
}

// The analytics API as the dashboard calls it (a Bearer token); throws with the server's reason.
async function analyticsApi(pathAndQuery) {
  const r = await fetch(run.base + pathAndQuery, { headers: { Authorization: `Bearer ${ANALYTICS_TOKEN}` } });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Failure(`GET ${pathAndQuery}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}
const analyticsOf = (q) => analyticsApi(`/v1/bots/${BOT}/analytics?${new URLSearchParams(q)}`);


// Days as the dashboard counts them: "YYYY-MM-DD"; the browser's today (the contexts are in UTC).
const dayOf = (d) => d.toISOString().slice(0, 10);
const plusDays = (day, k) => dayOf(new Date(Date.parse(day + 'T00:00:00Z') + k * 86400000));

// Numbers as the page writes them in the contexts' locale (en-US).
const fmt = {
  count: (n) => new Intl.NumberFormat('en-US').format(n),
  percent: (r) => new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 }).format(r),
  money(amount, currency) {
    const f = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    return f.format(amount / 10 ** f.resolvedOptions().maximumFractionDigits);
  },
};

// What the page shows, read from its tables (the bar charts are tables with a bar in a cell).
// A row: what it is about (its data-* attribute: a step, a day, a channel, a currency), then its cells.
const cellsOf = (rows) => rows.evaluateAll((trs) => trs.map((tr) =>
  [Object.values(tr.dataset)[0] ?? null, ...Array.from(tr.querySelectorAll('td'), (td) => td.textContent.trim())]));

// Waits until the page shows want (compared as JSON); says what it showed last if it never does.
async function shows(read, want, what) {
  let got;
  try {
    await until(async () => JSON.stringify(got = await read()) === JSON.stringify(want), what);
  } catch (e) {
    throw new Failure(`${what}:\n  page: ${JSON.stringify(got)}\n  API:  ${JSON.stringify(want)}`);
  }
}

async function signInAnalytics(page, token) {
  await page.getByLabel('Analytics token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// Every number the dashboard shows for report r, compared with r.
async function dashboardShows(page, r) {
  const region = (name) => page.getByRole('region', { name, exact: true });
  await shows(() => cellsOf(region('Funnel').locator('tbody tr')),
    r.funnel.map((s, i) => [s.step, fmt.count(s.count), i === 0 ? '—' : fmt.percent(s.rate)]), 'the funnel: count and step rate of each step');

  const daily = region('Conversations and orders per day');
  await shows(() => cellsOf(daily.locator('tbody tr')),
    r.days.map((d) => [d.day, fmt.count(d.conversations), fmt.count(d.engaged), fmt.count(d.orders)]), 'the daily numbers');
  const chart = daily.getByRole('img', { name: 'Conversations and orders per day' });
  const points = () => chart.locator('path').evaluateAll((ps) => ps.map((p) => (p.getAttribute('d').match(/[ML]/g) || []).length));
  await shows(points, [r.days.length, r.days.length], 'two lines (conversations, orders), one point a day');
  const total = (k) => fmt.count(r.days.reduce((t, d) => t + d[k], 0));
  assert.match(await chart.locator('desc').textContent(), new RegExp(`Conversations, ${total('conversations')} in all.*Orders, ${total('orders')} in all`),
    "the chart's description says the totals");
  // the keyboard reads the chart day by day: the tooltip and the screen reader say the numbers
  const plot = daily.getByRole('group', { name: /^Conversations and orders per day, a chart/ });
  await plot.focus();
  const tip = daily.locator('.tip');
  for (const [key, d] of [['End', r.days[r.days.length - 1]], ['ArrowLeft', r.days[r.days.length - 2]], ['Home', r.days[0]]]) {
    await page.keyboard.press(key);
    const said = `Conversations: ${fmt.count(d.conversations)}\nOrders: ${fmt.count(d.orders)}`;
    await until(async () => (await tip.innerText()).endsWith(said), `the tooltip of ${d.day} after ${key}: ${JSON.stringify(said)}`);
    await until(async () => (await page.locator('#announce').textContent()).endsWith(
      `Conversations ${fmt.count(d.conversations)}, Orders ${fmt.count(d.orders)}`), `${d.day} said to screen readers`);
  }
  await page.keyboard.press('Escape');

  const revenue = region('Revenue');
  await shows(() => cellsOf(revenue.locator('table').first().locator('tbody tr')),
    r.revenue.map((x) => [x.currency, fmt.count(x.orders), fmt.money(x.amount, x.currency), fmt.money(x.average, x.currency),
      fmt.count(x.refunds), fmt.money(x.refunded, x.currency)]), 'the revenue table');
  for (const { currency } of r.revenue) {
    const perDay = revenue.getByRole('region', { name: `Revenue per day, ${currency}, day by day`, includeHidden: true }); // (in a closed <details>)
    await shows(() => cellsOf(perDay.locator('tbody tr')), r.days.map((d) =>
      [d.day, fmt.money((d.revenue || []).filter((m) => m.currency === currency).reduce((t, m) => t + m.amount, 0), currency)]),
    `the revenue per day in ${currency}`);
  }

  const nu = region('Messages the bot did not understand');
  await shows(() => nu.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.cells, (c) => c.textContent))),
    r.not_understood.top.map((m) => [m.text, fmt.count(m.count)]), 'the most frequent messages not understood, as text');
  assert.equal(await nu.locator('tbody td *').count(), 0, "shoppers' words are text: no element made of them");
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no script of a shopper ran');
  await visible(nu.getByText(`${fmt.count(r.not_understood.count)} of ${fmt.count(r.not_understood.turns)} shopper messages ` +
    `(${fmt.percent(r.not_understood.rate)}) were not understood.`), 'the rate of messages not understood');

  await shows(() => cellsOf(region('Channels').locator('tbody tr')), r.channels.map((c) =>
    [c.channel, fmt.count(c.conversations), fmt.percent(c.conversations / r.channels.reduce((t, x) => t + x.conversations, 0))]), 'the channel split');
  if (r.drop_off.length) {
    await shows(() => cellsOf(region('Where conversations went quiet').locator('tbody tr')),
      r.drop_off.map((x) => [x.step, fmt.count(x.dropped), fmt.count(x.reached), fmt.percent(x.share)]), 'the drop-off by step');
  }
  const fact = (name, key) => region(name).locator(`[data-fact="${key}"] dd`).innerText();
  assert.match(await fact('Abandoned-cart reminders', 'sent'), new RegExp(`^${fmt.count(r.reminders.sent)}$`), 'reminders sent');
  assert.match(await fact('Abandoned-cart reminders', 'recovered'), new RegExp(`^${fmt.count(r.reminders.recovered)}\\b`), 'carts recovered');
  assert.match(await fact('Handoff to a person', 'requested'), new RegExp(`^${fmt.count(r.handoff.requested)}\\b`), 'handoffs asked for');
  await shows(() => cellsOf(region('Recommendations').locator('tbody tr')),
    [['shown', fmt.count(r.recommendations.shown)], ['taken', fmt.count(r.recommendations.taken)]], 'recommendations shown and taken');
}

// Last: it moves parley's clock two days on (the other scenarios' conversations stay on the first day).
scenario('analytics', 'the analytics dashboard: sign-in (a wrong token is refused with the reason), the funnel, the daily lines and the ' +
  'not-understood messages as the analytics API says, filters and range in the URL, a phone, axe-core', async () => {
  // Shoppers over the HTTP API, across three days of parley's clock: orders paid, a cart left and
  // recovered after its reminder, a declined payment, words the bot does not know, a handoff.
  const tag = crypto.randomBytes(4).toString('hex');
  const shopper = (name) => `an-${tag}-${name}`;
  const today = dayOf(new Date());
  // the three days of the clock, and room around them for a bot whose time zone is not UTC's
  const range = { from: plusDays(today, -3), to: plusDays(today, 3) };
  const restOnly = { ...range, channel: 'rest' };

  await toCheckout(shopper('ada'));
  await settle(shopper('ada'), 'pay');
  for (const who of ['bo', 'cy']) {
    await rest(shopper(who), { text: 'hi' });
    await rest(shopper(who), { text: 'blorp zzqx fnord' });
  }
  await rest(shopper('eve'), { text: 'hi' });
  await rest(shopper('eve'), { text: '<img src=x onerror="window.__pwned=1">zzqx' });
  await rest(shopper('dee'), { text: 'hi' });
  await rest(shopper('jun'), { text: 'こんにちは', locale: 'ja' });
  await rest(shopper('kai'), { text: 'hi' });
  await rest(shopper('kai'), { text: 'a small latte' });
  await rest(shopper('kai'), { payload: 'no' }); // and goes quiet with a latte in the cart

  await advanceClock(86400);
  await until(async () => (await analyticsOf(restOnly)).reminders.sent >= 1, "the abandoned cart's reminder (the API's reminders.sent)");
  assert.match(textsOf(await rest(shopper('kai'), { payload: 'done' })), /Shall I take the payment\?/, 'the reminded shopper comes back');
  await settle(shopper('kai'), 'pay');
  await toCheckout(shopper('fay'), 'a large cappuccino', 'croissant');
  await settle(shopper('fay'), 'pay');
  await rest(shopper('gus'), { text: 'hi' });
  await rest(shopper('gus'), { text: 'blorp zzqx fnord' });

  await advanceClock(86400);
  await toCheckout(shopper('hal'));
  await settle(shopper('hal'), 'decline');
  await rest(shopper('ivy'), { text: 'hi' });
  await rest(shopper('ivy'), { text: 'talk to a person' });

  // What the API says of those shoppers alone (the widget's scenarios talked over webchat), once
  // the payments' turns committed (each in a turn of its own, a moment after the payment page
  // answered; every other turn was committed before its answer came): 3 paid, 1 declined.
  const own = await until(async () => {
    const a = await analyticsOf(restOnly);
    return a.funnel.find((s) => s.step === 'paid')?.count >= 3 && a.errors.payments_failed >= 1 ? a : null;
  }, 'the payments of the HTTP shoppers in the API (3 paid, 1 declined)');
  const step = (name) => own.funnel.find((s) => s.step === name)?.count;
  assert.ok(step('conversations') >= 11, `the API counts the 11 conversations over HTTP: ${JSON.stringify(own.funnel)}`);
  assert.ok(step('paid') >= 3, `the API counts the 3 paid orders: ${JSON.stringify(own.funnel)}`);
  assert.ok(own.not_understood.top.some((m) => m.text === 'blorp zzqx fnord' && m.count >= 3), `"blorp zzqx fnord", 3 times: ${JSON.stringify(own.not_understood)}`);
  const bots = (await analyticsApi('/v1/analytics/bots')).bots;
  assert.deepEqual(bots.map((b) => b.name), [BOT], 'the token opens the one bot served');
  const all = await analyticsOf(range);

  // Sign-in: a wrong token is refused with the reason; the right one opens the last 7 days.
  const context = await newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const asked = [];
  page.on('request', (req) => asked.push(req.url()));
  await page.goto(run.base + '/analytics');
  await signInAnalytics(page, 'not-the-token');
  await visible(page.getByRole('alert').filter({ hasText: /^The analytics token was not accepted/ }), 'the reason a wrong token was refused');
  await visible(page.getByLabel('Analytics token'), 'the sign-in, still');
  await signInAnalytics(page, ANALYTICS_TOKEN);
  await visible(page.getByRole('heading', { name: TITLE, level: 1 }), 'the dashboard of the bot, by its title');
  await until(() => new URL(page.url()).hash === `#bot=${BOT}&from=${plusDays(today, -6)}&to=${today}`, 'the last 7 days, ending today, in the URL');
  assert.equal(await page.getByRole('button', { name: 'Last 7 days' }).getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByLabel('Bot', { exact: true }).isVisible(), false, 'no bot picker for a token that opens one bot');

  // The three days of the clock, from the URL; every number as the API says.
  await page.goto(`${run.base}/analytics#bot=${BOT}&from=${range.from}&to=${range.to}`);
  await until(async () => await page.getByLabel('From', { exact: true }).inputValue() === range.from &&
    await page.getByLabel('To', { exact: true }).inputValue() === range.to, 'the range of the URL in the date fields');
  await dashboardShows(page, all);

  // A channel filter goes into the URL, and a reload shows the same view (the token kept in the tab).
  const channels = bots[0].channels || [];
  const channel = channels.includes('rest') ? 'rest' : channels[0];
  if (channel) {
    await page.getByLabel('Channel', { exact: true }).selectOption(channel);
    await until(() => new URL(page.url()).hash.endsWith(`&channel=${channel}`), 'the channel in the URL');
    const filtered = await analyticsOf({ ...range, channel });
    await page.reload();
    await until(async () => await page.getByLabel('Channel', { exact: true }).inputValue() === channel, 'the channel, after the reload');
    await shows(() => cellsOf(page.getByRole('region', { name: 'Funnel', exact: true }).locator('tbody tr')),
      filtered.funnel.map((s, i) => [s.step, fmt.count(s.count), i === 0 ? '—' : fmt.percent(s.rate)]), `the funnel of channel ${channel}`);
    await page.getByLabel('Channel', { exact: true }).selectOption('');
    await shows(() => cellsOf(page.getByRole('region', { name: 'Funnel', exact: true }).locator('tbody tr')),
      all.funnel.map((s, i) => [s.step, fmt.count(s.count), i === 0 ? '—' : fmt.percent(s.rate)]), 'the funnel of all channels again');
  } else {
    say(`(no channel to filter by: ${JSON.stringify(bots[0])})`);
  }

  // axe-core on the whole page, with a table of daily numbers open.
  await page.getByRole('region', { name: 'Conversations and orders per day' }).getByText('The numbers, day by day').click();
  const require = createRequire(import.meta.url);
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })));
  for (const v of violations) say(`axe ${v.impact}: ${v.id} — ${v.help}: ${v.nodes.join(', ')}`);
  assert.deepEqual(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id), [], 'serious or critical violations');
  await page.getByText('The numbers, day by day').first().click();

  // The picture for docs/analytics.md: the pointer on the daily chart's second-to-last day.
  const plot = await page.getByRole('region', { name: 'Conversations and orders per day' }).locator('.plot').boundingBox();
  await page.mouse.move(plot.x + plot.width * (all.days.length - 2) / (all.days.length - 1) - 10, plot.y + plot.height / 2);
  await visible(page.locator('#daily .tip'), 'the tooltip under the pointer');
  await shot(page, 'h1-analytics', { docs: 'analytics.png', fullPage: true });
  const off = asked.filter((u) => !u.startsWith(run.base + '/'));
  assert.deepEqual(off, [], 'the page asks nothing of any other server');

  // A token that stops working (here: replaced in the tab) brings back the sign-in with the reason.
  await page.evaluate(() => sessionStorage.setItem('parley-analytics-token', 'revoked'));
  await page.reload();
  await visible(page.getByRole('alert').filter({ hasText: /^The analytics token was not accepted/ }), 'the sign-in again, with the reason');

  // A phone: everything in one column, nothing wider than the screen.
  const phone = await newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await small.goto(`${run.base}/analytics#bot=${BOT}&from=${range.from}&to=${range.to}`);
  await signInAnalytics(small, ANALYTICS_TOKEN);
  await shows(() => cellsOf(small.getByRole('region', { name: 'Funnel', exact: true }).locator('tbody tr')),
    all.funnel.map((s, i) => [s.step, fmt.count(s.count), i === 0 ? '—' : fmt.percent(s.rate)]), 'the funnel on a phone');
  const wide = await small.evaluate(() => Array.from(document.querySelectorAll('body *'))
    .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > innerWidth + 0.5)
    .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.getAttribute('class') || ''}`));
  assert.deepEqual(wide, [], 'nothing sticks out of the screen');
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'the page does not scroll sideways');
  await shot(small, 'h2-analytics-phone', { fullPage: true });
  await phone.close();
  await context.close();
});

// Where two texts part, line by line, with a little context.
function firstDifference(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  const around = (lines) => lines.slice(Math.max(0, i - 2), i + 3).map((l, k) => `${Math.max(0, i - 2) + k + 1}: ${l}`).join('\n');
  return `the texts part at line ${i + 1} (of ${x.length} before, ${y.length} after)\nbefore:\n${around(x)}\nafter:\n${around(y)}`;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The fonts Chromium drew an element's text with (CSS.getPlatformFontsForNode), as
// [{familyName, glyphCount}]: a missing font shows up as the wrong family, not as an error.
async function platformFonts(context, page, locator) {
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send('DOM.enable');
    await cdp.send('CSS.enable');
    await cdp.send('DOM.getDocument', { depth: -1, pierce: true });
    const marker = '__parleyFontProbe';
    await locator.evaluate((el, m) => { window[m] = el; }, marker);
    const { result } = await cdp.send('Runtime.evaluate', { expression: `window.${marker}` });
    const { nodeId } = await cdp.send('DOM.requestNode', { objectId: result.objectId });
    const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
    await page.evaluate((m) => delete window[m], marker);
    return fonts;
  } finally {
    await cdp.detach().catch(() => {});
  }
}

await consoleAuthor({ scenario, run, newContext, visible, hidden, until, shot, advanceClock, TOKEN, BOT });

/* --- main ------------------------------------------------------------------------------------- */

async function preflight() {
  const problems = [];
  if (!fs.existsSync(CHROMIUM)) {
    problems.push(`Chromium is not installed at ${CHROMIUM} (Debian package chromium: tools/deps.sh test installs it; PARLEY_CHROMIUM names another)`);
  }
  try {
    fs.accessSync(PARLEY, fs.constants.X_OK);
  } catch (e) {
    problems.push(`${PARLEY} is missing: run make parley`);
  }
  let pw = null;
  try {
    pw = await import('playwright-core');
  } catch (e) {
    problems.push('playwright-core is not installed in tests/browser/node_modules: run `npm ci` in tests/browser (make test does)');
  }
  try {
    createRequire(import.meta.url).resolve('axe-core/axe.min.js');
  } catch (e) {
    problems.push('axe-core is not installed in tests/browser/node_modules: run `npm ci` in tests/browser (make test does)');
  }
  return { problems, pw };
}

async function main() {
  const t0 = Date.now();
  const { problems, pw } = await preflight();
  if (problems.length) {
    console.log('1..1');
    console.log('not ok 1 - the browser suite cannot run');
    for (const p of problems) say(p);
    return 1;
  }
  console.log(`1..${tests.length}`);
  let failed = 0;
  try {
    fs.rmSync(OUT, { recursive: true, force: true }); // no pictures of an earlier run's failures
    fs.mkdirSync(OUT, { recursive: true });
    run.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-browser-'));
    await startShop();
    await startParley(copyDefaultBot());
    run.browser = await pw.chromium.launch({ executablePath: CHROMIUM, headless: true });
    const pwVersion = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', 'playwright-core', 'package.json'), 'utf8')).version;
    say(`parley ${run.base}, shop ${run.shopBase}, Chromium ${run.browser.version()}, playwright-core ${pwVersion}`);
  } catch (e) {
    console.log(`not ok 1 - start: ${e.message.split('\n')[0]}`);
    say(e.stack || e.message);
    return 1;
  }

  const failedIds = new Set();
  for (let i = 0; i < tests.length && !run.stopping; i++) {
    const t = tests[i];
    const n = i + 1;
    const started = Date.now();
    const errorsBefore = run.pageErrors.length;
    const missing = t.needs.filter((id) => failedIds.has(id));
    if (missing.length) {
      failed++;
      failedIds.add(t.id);
      console.log(`not ok ${n} - ${t.name}`);
      say(`not run: it carries on the conversation of ${missing.map((id) => `"${id}"`).join(', ')}, which failed`);
      continue;
    }
    try {
      await withTimeout(t.fn(), 45000, t.name);
      const errors = run.pageErrors.slice(errorsBefore);
      if (errors.length) throw new Failure(`uncaught errors in the page:\n${errors.join('\n')}`);
      if (run.stopping) break;
      console.log(`ok ${n} - ${t.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (e) {
      if (run.stopping) break; // the watchdog has said so, and is closing everything
      failed++;
      failedIds.add(t.id);
      console.log(`not ok ${n} - ${t.name}`);
      say(e instanceof Failure || e instanceof assert.AssertionError ? e.message : e.stack || String(e));
      await failureShots(n);
    }
  }
  if (run.stopping) return 1;
  if (failed) say('parley log (last 40 lines):\n' + run.parleyLog.slice(-40).join('\n'));
  say(`${tests.length - failed} of ${tests.length} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in tests/out/browser/` +
    (DOCS ? ' and docs/' : ''));
  return failed ? 1 : 0;
}

// A picture of every open page at the moment a scenario failed.
async function failureShots(n) {
  if (!run.browser) return;
  let k = 0;
  for (const context of run.browser.contexts()) {
    for (const page of context.pages()) {
      k++;
      await withTimeout(page.screenshot({ path: path.join(OUT, `failed-${n}-${k}.png`) }), 5000, 'screenshot').catch(() => {});
    }
  }
  if (k) say(`screenshots of the open pages: tests/out/browser/failed-${n}-*.png`);
}

let status = 1;
try {
  status = await main();
} catch (e) {
  console.log(`not ok - the browser suite crashed: ${e.message}`);
  say(e.stack || String(e));
} finally {
  await withTimeout(cleanup(), 15000, 'cleanup').catch((e) => say(e.message));
  clearTimeout(watchdog);
}
process.exit(status);
