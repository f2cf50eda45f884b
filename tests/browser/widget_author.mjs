/*
 * tests/browser/widget_author.mjs: the widget as issue 14's first-time bot author met it, in
 * the browser suite (run.mjs calls the function below, which adds its scenarios):
 *
 *   - greet on open: opening the panel shows the bot's greeting and its choices; a reload, a
 *     second tab, closing and opening again never greet a second time;
 *   - paid: after paying on the test payment page, the widget's Pay button turns into a
 *     disabled "Paid ✓" (aria-disabled, holding the focus the Pay link had; and so after a reload);
 *   - navigate: a message waiting out a 429 goes along to the next page and is sent from there, once;
 *   - outbox limits: a refused greeting on open drops only itself; a message parley keeps answering
 *     503 for about three minutes is given back to the shopper (a few attempts, not forever);
 *   - 429: a shopper who writes faster than the bot allows sees "Sending in N s…", and the
 *     messages arrive by themselves, in the order written.
 *
 * These run on a parley of their own (started here, on a free loopback port, under coreutils'
 * `timeout` like run.mjs's): copies of the default bot as it ships (greeting on open) and one
 * with a tiny allowance ("slowcafe": 3 messages, then one every 30 s), so that the 429 is
 * certain. The wait is then moved on, never slept: parley's test clock and the page's clock
 * (Playwright's clock) both jump by the Retry-After.
 *
 * The shop page is run.mjs's shop.html, served here too (a page of its own origin on loopback,
 * as Chromium lets only such pages reach a loopback parley) at /{bot}.html, with the widget's
 * tag pointing at this parley and bot.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const SLOW = { burst: 3, refill_seconds: 30 }; // slowcafe's webchat.rate_limit
const EMPTY_HINT = 'Write a message to start the conversation.';

// t: what run.mjs lends (its run state and helpers); see the call there.
export default function widgetAuthor(t) {
  const { scenario, run, newContext, widgetOn, visible, hidden, until, botSays, shot, Failure } = t;
  const own = { proc: null, base: null, log: [], shop: null, shopBase: null };
  const W = {}; // what a scenario leaves for the next

  process.once('exit', () => own.proc && own.proc.exitCode === null && own.proc.kill('SIGKILL'));

  // A copy of the default bot, as run.mjs's copyDefaultBot makes it, with its own name and settings.
  function copyBot(name, webchat) {
    const dst = path.join(run.tmp, 'author-' + name);
    fs.mkdirSync(dst);
    for (const f of ['bot.json', 'catalog.json']) fs.copyFileSync(path.join(t.ROOT, f), path.join(dst, f));
    for (const d of ['flows', 'scripts']) fs.cpSync(path.join(t.ROOT, d), path.join(dst, d), { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(dst, 'bot.json'), 'utf8'));
    if (manifest.name !== name) {
      // another bot's name: the default bot's secrets are not in its namespace (and not needed)
      manifest.name = name;
      for (const k of ['channels', 'api_token_env', 'agent_token_env']) delete manifest[k];
      manifest.payments = { provider: 'test' };
    }
    manifest.webchat.origins = [own.shopBase];
    delete manifest.webchat.greet_after_seconds; // no timed greeting in the middle of a scenario
    Object.assign(manifest.webchat, webchat);
    fs.writeFileSync(path.join(dst, 'bot.json'), JSON.stringify(manifest, null, 2));
    return dst;
  }

  // SHOP/{bot}.html: the shop page with this parley's widget of that bot.
  function startOwnShop() {
    const html = fs.readFileSync(path.join(t.HERE, 'shop.html'), 'utf8');
    own.shop = http.createServer((req, res) => {
      const m = /^\/([a-z]+)\.html$/.exec(new URL(req.url, 'http://x').pathname);
      if (!m) {
        res.writeHead(404, { 'Cache-Control': 'no-store' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html.replaceAll('http://127.0.0.1:PORT/v1/bots/barista/', `${own.base}/v1/bots/${m[1]}/`));
    });
    return new Promise((resolve, reject) => {
      own.shop.once('error', reject);
      own.shop.listen(0, '127.0.0.1', () => {
        own.shopBase = `http://127.0.0.1:${own.shop.address().port}`;
        resolve();
      });
    });
  }

  async function startOwnParley() {
    const bots = [copyBot('barista', {}), copyBot('slowcafe', { rate_limit: SLOW })];
    const env = { ...process.env, PARLEY_TEST_CLOCK: '1' };
    for (const k of ['PARLEY_ADMIN_TOKEN', 'PARLEY_AGENT_TOKEN', 'PARLEY_PUBLIC_URL', 'BARISTA_STRIPE_SECRET_KEY']) delete env[k];
    const args = ['-k', '5', String(t.SERVER_LIFETIME_S), t.PARLEY, 'serve', '--listen', '127.0.0.1:0',
      '--db', path.join(run.tmp, 'author.db'), '--no-watch', ...bots];
    own.proc = spawn('timeout', args, { cwd: run.tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const port = await new Promise((resolve, reject) => {
      let buffered = '';
      const onData = (chunk) => {
        buffered += chunk;
        for (let nl; (nl = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(nl + 1)) {
          const line = buffered.slice(0, nl);
          own.log.push(line);
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
          if (m) resolve(Number(m[1]));
        }
      };
      own.proc.stdout.setEncoding('utf8').on('data', onData);
      own.proc.stderr.setEncoding('utf8').on('data', onData);
      own.proc.once('exit', (code, sig) => reject(new Failure(`parley (author) exited (${code ?? sig}):\n${own.log.join('\n')}`)));
      setTimeout(() => reject(new Failure(`parley (author) did not listen within 10 s:\n${own.log.join('\n')}`)), 10000);
    });
    own.base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(own.base + '/v1/health')).ok, 'parley (author) /v1/health');
  }

  function stopOwnParley() {
    if (own.shop) {
      own.shop.closeAllConnections?.();
      own.shop.close();
      own.shop = null;
    }
    const p = own.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', resolve);
      p.kill('SIGTERM');
    });
  }

  // A browser context, and a record of every message its widgets posted (their JSON bodies).
  async function authorContext(options = {}) {
    const context = await newContext({ viewport: t.DESKTOP, ...options });
    context.on('console', (msg) => own.log.push(`console: ${msg.text()}`));
    const posted = [];
    context.on('request', (req) => {
      if (req.method() === 'POST' && req.url().endsWith('/webchat/messages')) posted.push(JSON.parse(req.postData()));
    });
    return { context, posted };
  }

  const opens = (posted) => posted.filter((b) => b.event && b.event.type === 'open').length;

  // Waits until the shopper's message is in the conversation, accepted (no longer dimmed).
  async function accepted(w, text, what) {
    await visible(w.log.locator('.row.me:not(.sending)').filter({ hasText: text }).last(), what);
  }

  async function tapOn(w, name, shown = name) {
    const button = w.log.getByRole('button', { name }).last();
    await visible(button, `the button ${name}`);
    assert.equal(await button.isEnabled(), true, `the newest button ${name} is enabled`);
    await button.click();
    await accepted(w, shown, `the tap on ${name}`);
  }

  async function advanceOwnClock(seconds) {
    const r = await fetch(own.base + '/v1/test/clock', { method: 'POST', body: JSON.stringify({ advance: seconds }) });
    if (!r.ok) throw new Error(`POST /v1/test/clock answered ${r.status}`);
  }

  scenario('author-greet', 'greeting on open: the greeting and its choices when the panel opens; no second greeting on reload, in another tab, or on opening again', async () => {
    await startOwnShop();
    await startOwnParley();
    const { context, posted } = await authorContext();
    W.context = context;
    W.posted = posted;
    const page = await context.newPage();
    await page.goto(`${own.shopBase}/barista.html`);
    const w = widgetOn(page);
    W.w = w;
    await visible(w.launcher, 'the chat bubble').catch((e) => { throw new Failure(e.message + '\n' + own.log.slice(-20).join('\n')); });
    await w.launcher.click();
    await visible(w.dialog, 'the chat panel');
    await visible(botSays(w, t.GREETING), 'the greeting, before the shopper wrote anything');
    await visible(botSays(w, t.ASK_DRINK), 'the question for a drink');
    await hidden(w.dialog.getByText(EMPTY_HINT), 'the empty-chat hint');
    assert.equal(await w.log.locator('.row.me').count(), 0, 'nothing from the shopper');
    const latte = t.product('latte');
    const choice = w.log.getByRole('button', { name: `Latte · ${t.euros(latte.price)}` });
    assert.equal(await choice.isEnabled(), true, "the greeting's choices work");
    assert.equal(opens(posted), 1, 'one open event');
    await page.mouse.move(5, 5);
    await shot(page, 'w1-widget-greeting', { docs: 'widget-greeting.png' });

    // A reload: the same conversation, the same single greeting, no second open event.
    const before = await w.log.innerText();
    await page.reload();
    await visible(w.dialog, 'the panel, open again after the reload');
    await until(async () => (await w.log.innerText()) === before, 'the replayed conversation, as before the reload');
    // the stream's "ready" has come: the widget decided whether to greet
    await until(() => page.evaluate(() => !!window.parleyWidget && document.readyState === 'complete'), 'the page');
    const greetings = () => w.log.locator('.row.bot').filter({ hasText: t.GREETING }).count();
    // Close and open again, and a second tab: still one greeting, one open event in all.
    await w.close.click();
    await w.launcher.click();
    const tab = await context.newPage();
    await tab.goto(`${own.shopBase}/barista.html`);
    const w2 = widgetOn(tab);
    await w2.launcher.click();
    await until(async () => (await w2.log.innerText()) === before, 'the conversation in the second tab');
    // a message the shopper writes now comes after anything the widget sent before it
    await w.input.fill('hello again');
    await w.input.press('Enter');
    await accepted(w, 'hello again', 'the message after the reload');
    await visible(botSays(w2, /Sorry, I didn't catch which drink\.|didn't catch/), 'the answer, in the second tab too');
    assert.equal(opens(posted), 1, `one open event in all: ${JSON.stringify(posted)}`);
    assert.equal(await greetings(), 1, 'exactly one greeting in the conversation');
    assert.equal(await w2.log.locator('.row.bot').filter({ hasText: t.GREETING }).count(), 1, 'one greeting in the other tab');
    await tab.close();
  });

  scenario('author-paid', 'after paying on the test payment page, the Pay button becomes a disabled "Paid ✓"', async () => {
    const w = W.w;
    const latte = t.product('latte');
    await tapOn(w, `Latte · ${t.euros(latte.price)}`);
    await visible(botSays(w, t.ASK_SIZE('Latte')), 'the question for the size');
    await tapOn(w, 'Small');
    await tapOn(w, 'No thanks');
    await tapOn(w, "That's all");
    await tapOn(w, 'Pay now');
    const price = t.euros(latte.price);
    const link = w.log.getByRole('link', { name: new RegExp(`^Pay ${t.escapeRe(price)}`) }).last();
    await visible(link, 'the payment button');

    const [tab] = await Promise.all([W.context.waitForEvent('page'), link.click()]);
    await tab.waitForLoadState();
    const hasFocus = (el) => el.getRootNode().activeElement === el;
    assert.equal(await link.evaluate(hasFocus), true, 'the Pay link holds the focus in the chat');
    await tab.getByRole('button', { name: `Pay ${price}` }).click();
    await visible(tab.getByText('Payment received. You can go back to the chat.'), 'the payment page saying it was paid');
    await tab.close();

    const paid = w.log.getByRole('button', { name: `Paid ${price}` });
    await visible(paid, 'the Pay button, now "Paid" (its accessible name says what was paid)');
    assert.equal(await paid.isDisabled(), true, 'a paid order cannot be paid again');
    assert.equal(await paid.getAttribute('aria-disabled'), 'true', 'aria-disabled: it stays focusable');
    assert.equal(await paid.evaluate(hasFocus), true, 'the focus moved from the Pay link to "Paid ✓", not to the page');
    assert.equal((await paid.innerText()).replace(/\s+/g, ''), 'Paid✓', 'it reads "Paid ✓"');
    assert.equal(await w.log.getByRole('link', { name: /^Pay / }).count(), 0, 'no Pay link left');
    await visible(botSays(w, /Payment received, thank you!|All paid!/), "the bot's thank-you");
    await paid.scrollIntoViewIfNeeded();
    await w.page.mouse.move(5, 5);
    await shot(w.page, 'w2-widget-paid', { docs: 'widget-paid.png' });

    await w.page.reload();
    await visible(w.log.getByRole('button', { name: `Paid ${price}` }), '"Paid" again after a reload');
    assert.equal(await w.log.getByRole('link', { name: /^Pay / }).count(), 0, 'no Pay link after the reload');
    await W.context.close();
  }, ['author-greet']);

  scenario('author-429-navigate', 'a message waiting out a 429 when the shopper goes to another page is sent from that page, once', async () => {
    const { context, posted } = await authorContext();
    await context.clock.install();
    const page = await context.newPage();
    await page.goto(`${own.shopBase}/slowcafe.html`);
    const w = widgetOn(page);
    await visible(w.launcher, 'the chat bubble');
    await w.launcher.click();
    await visible(botSays(w, t.GREETING), 'the greeting on open'); // the stream and the greeting: two of three
    await w.input.fill('one');
    await w.input.press('Enter');
    await accepted(w, 'one', 'the third message of the allowance');
    await w.input.fill('two');
    await w.input.press('Enter');
    await visible(w.dialog.locator('.note').getByText(/^Sending in \d+ s…$/), 'the countdown, after the 429');

    // Off to another page of the shop before "two" could go: it comes along, still to be sent.
    await page.goto(`${own.shopBase}/slowcafe.html?from=navigation`);
    const w2 = widgetOn(page);
    await visible(w2.log.locator('.row.me.sending').filter({ hasText: 'two' }), '"two" on the next page, not yet sent');
    const note = w2.dialog.locator('.note');
    await visible(note.getByText(/^Sending in \d+ s…$/), 'the countdown again: parley still says not yet');
    await advanceOwnClock(2 * SLOW.refill_seconds + 1); // room for the stream and "two"
    await page.clock.runFor((2 * SLOW.refill_seconds + 1) * 1000);
    await accepted(w2, 'two', '"two" sent from the new page');
    const rows = await until(async () => {
      const got = await w2.log.locator('.row.me').evaluateAll((els) => els.map((el) => [el.querySelector('.text').textContent, Number(el.dataset.line || 0)]));
      return got.length >= 2 && got.every(([, id]) => id > 0) ? got : null;
    }, 'the messages confirmed by the stream');
    assert.deepEqual(rows.map(([text]) => text), ['one', 'two'], '"two" once, after "one"');
    const twos = posted.filter((b) => b.text === 'two');
    assert.ok(twos.length >= 2, `"two" posted from both pages: ${twos.length}`);
    assert.equal(new Set(twos.map((b) => b.id)).size, 1, 'with one id, so parley would record it once in any case');
    assert.equal(opens(posted), 1, 'no greeting on the next page');
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), 'parley-slowcafe-outbox'), null, 'nothing left to send');
    await context.close();
  }, ['author-greet']);

  scenario('author-outbox-limits', 'a refused greeting drops only itself; a message kept waiting (503) for minutes comes back to the shopper', async () => {
    const { context, posted } = await authorContext();
    await context.clock.install();
    const page = await context.newPage();
    // parley's answers are made here: the greeting refused once the shopper's message waits
    // behind it, then 503 with Retry-After for as long as the scenario says
    let releaseOpen = null;
    const openHeld = new Promise((resolve) => (releaseOpen = resolve));
    let unavailable = false;
    const cors = { 'Access-Control-Allow-Origin': own.shopBase, 'Access-Control-Expose-Headers': 'Retry-After' };
    await page.route('**/webchat/messages', async (route) => {
      const body = JSON.parse(route.request().postData() || '{}');
      if (body.event && body.event.type === 'open') {
        await openHeld;
        return route.fulfill({ status: 400, headers: cors, contentType: 'application/json', body: '{"error": "refused here"}' });
      }
      if (unavailable) {
        return route.fulfill({ status: 503, headers: { ...cors, 'Retry-After': '60' }, contentType: 'application/json',
          body: '{"error": "the message could not be stored; please retry"}' });
      }
      return route.continue();
    });
    await page.goto(`${own.shopBase}/barista.html`);
    const w = widgetOn(page);
    await visible(w.launcher, 'the chat bubble');
    await w.launcher.click();
    await until(async () => opens(posted) === 1, 'the greeting on open asked for');
    await w.input.fill('hello');
    await w.input.press('Enter'); // queued behind the greeting, which is still being posted
    releaseOpen();
    await accepted(w, 'hello', '"hello" sent although the greeting before it was refused');
    assert.equal(await w.input.inputValue(), '', 'nothing given back to the shopper');
    assert.equal(await w.dialog.locator('.note').innerText(), '', 'no "could not be sent" note');

    unavailable = true;
    await w.input.fill('later');
    await w.input.press('Enter');
    const note = w.dialog.locator('.note');
    await visible(note.getByText(/^Sending in \d+ s…$/), 'the countdown after a 503 with Retry-After');
    // every text the note shows, kept: the clock runs a minute at a time, past the seconds
    // the note stays up
    await note.evaluate((el) => {
      window.notesShown = [];
      new MutationObserver(() => window.notesShown.push(el.textContent))
        .observe(el, { childList: true, subtree: true, characterData: true });
    });
    for (let i = 0; i < 4 && (await w.input.inputValue()) === ''; i++) {
      const before = posted.filter((b) => b.text === 'later').length;
      await page.clock.runFor(61 * 1000);
      await until(async () => posted.filter((b) => b.text === 'later').length > before || (await w.input.inputValue()) !== '',
        'the next attempt, or the message given back');
    }
    await until(async () => (await w.input.inputValue()) === 'later', '"later" back in the box after about three minutes');
    await until(async () => (await page.evaluate(() => window.notesShown))
      .includes('Your message could not be sent. Please try again.'), 'the note saying so');
    assert.equal(await w.log.locator('.row.me').filter({ hasText: 'later' }).count(), 0, 'no longer shown as sending');
    const attempts = posted.filter((b) => b.text === 'later').length;
    assert.ok(attempts >= 3 && attempts <= 4, `a few attempts, not forever: ${attempts}`);
    await context.close();
  }, ['author-greet']);

  scenario('author-429', 'too fast (429): "Sending in N s…", then the waiting messages arrive by themselves, in order', async () => {
    const { context, posted } = await authorContext();
    await context.clock.install(); // the widget's countdown is moved on, not waited for
    const page = await context.newPage();
    await page.goto(`${own.shopBase}/slowcafe.html`);
    const w = widgetOn(page);
    await visible(w.launcher, 'the chat bubble');
    await w.launcher.click();
    // the stream and the greeting on open: two of slowcafe's three
    await visible(botSays(w, t.GREETING), 'the greeting on open');
    await w.input.fill('one');
    await w.input.press('Enter');
    await accepted(w, 'one', 'the third message of the allowance');

    await w.input.fill('two');
    await w.input.press('Enter');
    const note = w.dialog.locator('.note');
    await visible(note.getByText(/^Sending in \d+ s…$/), 'the countdown, after the 429');
    const waiting = (text) => w.log.locator('.row.me.waiting').filter({ hasText: text });
    await visible(waiting('two'), '"two" waiting, in the conversation');
    await w.input.fill('three');
    await w.input.press('Enter');
    await visible(waiting('three'), '"three" waiting behind it');
    assert.equal(await w.input.inputValue(), '', 'the box is free for the next message');
    assert.equal(posted.filter((b) => b.text === 'three').length, 0, '"three" is not sent before "two"');
    await page.mouse.move(5, 5);
    await shot(page, 'w3-widget-waiting', { docs: 'widget-waiting.png' });

    // parley's clock and the page's move on by the wait: "two" goes, "three" then waits its turn.
    for (const text of ['two', 'three']) {
      const seconds = Number(/(\d+)/.exec(await note.innerText())[1]);
      assert.ok(seconds >= 1 && seconds <= SLOW.refill_seconds + 1, `a wait of about ${SLOW.refill_seconds} s: ${seconds}`);
      await advanceOwnClock(seconds + 1);
      await page.clock.runFor((seconds + 1) * 1000);
      await accepted(w, text, `"${text}" sent after the wait`);
      if (text === 'two') await visible(note.getByText(/^Sending in \d+ s…$/), 'the countdown for "three"');
    }
    await until(async () => (await note.innerText()) === '', 'the note gone once everything is sent');
    // In the order written, on the server too: the stream's line ids grow.
    const rows = await until(async () => {
      const got = await w.log.locator('.row.me').evaluateAll((els) => els.map((el) => [el.querySelector('.text').textContent, Number(el.dataset.line || 0)]));
      return got.length === 3 && got.every(([, id]) => id > 0) ? got : null;
    }, 'the three messages confirmed by the stream');
    assert.deepEqual(rows.map(([text]) => text), ['one', 'two', 'three'], 'on screen in the order written');
    assert.ok(rows[0][1] < rows[1][1] && rows[1][1] < rows[2][1], `stored in the order written: ${JSON.stringify(rows)}`);
    assert.deepEqual(posted.filter((b) => b.text).map((b) => b.text), ['one', 'two', 'two', 'three', 'three'],
      'each waiting message posted again after its wait, none out of turn');
    await context.close();
    await stopOwnParley();
  }, ['author-greet']);
}
