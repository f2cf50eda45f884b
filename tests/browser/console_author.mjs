/*
 * tests/browser/console_author.mjs: the agent console as a commerce agent uses it
 * (runtime/web/agent.html, docs/handoff.md), run by tests/browser/run.mjs after its own
 * scenarios, on the same parley, browser and helpers.
 *
 * A web chat shopper (talking over HTTP, as the widget does, from a shop page that names
 * itself with each message) orders a latte, pays, and asks for a person. An agent with
 * alerts on, in a browser context that granted notifications, gets a desktop notification
 * (the Notification constructor is watched) and a chime (WebAudio's oscillators are
 * counted) while looking at another window; finds "Visitor N" on the shop's page in the
 * queue; sees the paid order beside the cart; inserts a canned reply with "/" and sends
 * it; closes the conversation; and finds it again under Closed by words of the
 * transcript and by the order's number. Each step leaves a screenshot (docs/ with
 * PARLEY_SHOTS=docs).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

const AGENT = 'Leo';
const PAGE_TITLE = 'Latte – Bea’s Coffee';
const READY = 'Your drinks will be ready for pick-up within 10 minutes of payment.'; // bot.json canned "ready"
const HELLO = "Hi! I'm here to help with your order."; // bot.json canned "hello"

// Watches what the console asks of the browser: the notifications it shows and the tones
// it plays; and makes the page look unfocused (the agent is in another window), which is
// when the console notifies.
function watchAlerts() {
  window.__notifications = [];
  window.__tones = 0;
  const Real = window.Notification;
  if (Real) {
    window.Notification = new Proxy(Real, {
      construct(target, args) {
        window.__notifications.push({ title: args[0], body: args[1] && args[1].body });
        return Reflect.construct(target, args);
      },
    });
  }
  const Ctx = window.AudioContext;
  if (Ctx) {
    const make = Ctx.prototype.createOscillator;
    Ctx.prototype.createOscillator = function () {
      window.__tones++;
      return make.call(this);
    };
  }
  document.hasFocus = () => false;
}

export async function consoleAuthor(h) {
  const { scenario, run, newContext, visible, hidden, until, shot, advanceClock, TOKEN, BOT } = h;
  const C = {}; // what one scenario leaves for the next
  const word = 'oatmilk' + crypto.randomBytes(3).toString('hex');

  // The shopper's side: POST /webchat/messages as the widget does (a 429 moves parley's
  // test clock on by its Retry-After, never waiting).
  async function shopperSays(fields) {
    for (let tries = 0; tries < 5; tries++) {
      const r = await fetch(`${run.base}/v1/bots/${BOT}/webchat/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: C.user, locale: 'en', page: C.page, ...fields }),
      });
      if (r.status === 202) return;
      if (r.status !== 429) throw new Error(`the shopper's ${JSON.stringify(fields)} answered ${r.status}: ${await r.text()}`);
      await advanceClock(Number(r.headers.get('retry-after')) || 5);
    }
    throw new Error('the shopper stayed rate-limited');
  }

  async function agentApi(path) {
    const r = await fetch(run.base + path, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200, `GET ${path}`);
    return r.json();
  }

  scenario('console-alert', 'a shopper pays and asks for a person: the console (alerts on) notifies and chimes, and names them "Visitor N" on their page', async () => {
    C.context = await newContext({ permissions: ['notifications'] });
    await C.context.addInitScript(watchAlerts);
    const page = await C.context.newPage();
    C.page_ = page;
    await page.goto(run.base + '/agent');
    await page.getByLabel('Your name').fill(AGENT);
    await page.getByLabel('Agent token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await visible(page.getByRole('status').filter({ hasText: 'Live' }), 'the live stream of the queue');
    const alerts = page.getByRole('button', { name: 'Alerts off' });
    await alerts.click();
    await visible(page.getByRole('button', { name: 'Alerts on', pressed: true }), 'alerts on (the permission was granted)');
    const tonesBefore = await page.evaluate(() => window.__tones);
    assert.ok(tonesBefore > 0, 'turning alerts on plays the chime once, so the agent knows it');
    await page.reload(); // remembered in localStorage
    await visible(page.getByRole('button', { name: 'Alerts on', pressed: true }), 'alerts still on after a reload');
    await visible(page.getByRole('status').filter({ hasText: 'Live' }), 'the live stream again');

    C.user = 'w' + crypto.randomBytes(12).toString('hex');
    C.page = { url: `${run.shopBase}/shop.html?product=latte`, title: PAGE_TITLE };
    await shopperSays({ text: 'hi' });
    await shopperSays({ payload: 'latte' });
    await shopperSays({ payload: 'small' });
    await shopperSays({ payload: 'no' });
    await shopperSays({ payload: 'done' });
    await shopperSays({ payload: 'pay' });
    const path = `/v1/agent/conversations/${BOT}/webchat/${C.user}`;
    const order = (await agentApi(path)).orders[0];
    assert.equal(order.state, 'pending', 'the order waits for its payment');
    const link = new URL(order.payment_url);
    const paid = await fetch(run.base + link.pathname, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: link.searchParams.get('token'), action: 'pay' }),
    });
    assert.equal(paid.status, 200, 'the test payment page takes the payment');
    C.order = (await agentApi(path)).orders[0];
    assert.equal(C.order.state, 'paid');

    await shopperSays({ text: 'talk to a person' });
    const queue = page.getByRole('navigation', { name: 'Queue' });
    const item = queue.getByRole('button', { name: new RegExp(`^Visitor \\d+, ${BOT}, webchat, waiting .*, on ${PAGE_TITLE}$`) });
    await visible(item, 'the shopper in the queue as "Visitor N", on the shop page they are on');
    C.name = /^(Visitor \d+),/.exec(await item.getAttribute('aria-label'))[1];
    await visible(item.getByText(`On ${PAGE_TITLE}`), 'the page under the name');
    const notes = await until(() => page.evaluate(() => window.__notifications.length && window.__notifications), 'the desktop notification');
    assert.equal(notes.length, 1, 'one notification for one conversation that started waiting');
    assert.equal(notes[0].title, `Waiting: ${C.name}`);
    assert.match(notes[0].body, new RegExp(`${BOT} · webchat\\nasked for a person\\nOn ${PAGE_TITLE}`));
    assert.ok(await page.evaluate(() => window.__tones) > 0, 'the chime played (WebAudio oscillators)');
    assert.match(await page.title(), /\b\d+ waiting · parley · agent console$/, 'the tab title counts the waiting conversations');
    await shot(page, 'e1-console-queue-visitor');
  });

  scenario('console-orders', 'the conversation shows the paid order beside the cart: lines with options, total, state', async () => {
    const page = C.page_;
    await page.getByRole('navigation', { name: 'Queue' }).getByRole('button', { name: new RegExp(`^${C.name}, `) }).click();
    const panel = page.getByRole('tabpanel');
    await visible(panel.getByRole('heading', { name: C.name, exact: true }), 'the heading names the visitor');
    await visible(panel.getByRole('link', { name: PAGE_TITLE }), 'the page they are on, as a link');
    const card = panel.getByRole('article', { name: new RegExp(`^Order ${C.order.id}, paid, `) });
    await visible(card, 'the paid order beside the cart');
    await visible(card.getByText('1 × Latte · Small'), "the order's line with its size");
    await visible(card.getByText(/^Paid /), 'when it was paid');
    assert.equal(await card.getByRole('link', { name: 'Payment link' }).count(), 0, 'a paid order offers no payment link');
    await shopperSays({ text: `Can I swap to ${word}?` });
    await visible(panel.getByRole('log', { name: 'Transcript' }).getByText(`Can I swap to ${word}?`), "the shopper's message, live");
    await page.mouse.move(0, 799);
    await shot(page, 'e2-console-orders', { docs: 'agent-console-orders.png' });
  }, ['console-alert']);

  scenario('console-canned', 'canned replies: "/" offers the bot\'s, Enter inserts one, Enter sends it; a click inserts another', async () => {
    const page = C.page_;
    const panel = page.getByRole('tabpanel');
    await panel.getByRole('button', { name: 'Claim this conversation' }).click();
    const reply = panel.getByRole('textbox', { name: `Reply to ${C.name}` });
    await until(() => reply.isEnabled(), 'the reply box after the claim');
    await reply.focus();
    await reply.pressSequentially('/rea');
    const menu = panel.getByRole('listbox', { name: 'Canned replies' });
    await visible(menu.getByRole('option', { name: /^\/ready · Ready time/, selected: true }), 'the matching canned reply offered');
    assert.equal(await menu.getByRole('option').count(), 1, '"/rea" matches one shortcut');
    await shot(page, 'e3-console-canned', { docs: 'agent-console-canned.png' });
    await reply.press('Enter');
    await hidden(menu, 'the menu once the reply is inserted');
    assert.equal(await reply.inputValue(), READY, 'the canned text replaces "/rea"');
    await reply.press('Enter');
    const transcript = panel.getByRole('log', { name: 'Transcript' });
    await visible(transcript.getByText(READY), 'the canned reply sent, in the transcript');
    await until(async () => (await reply.inputValue()) === '', 'the reply box emptied after sending');
    const sent = await agentApi(`/v1/agent/conversations/${BOT}/webchat/${C.user}`);
    assert.ok(sent.transcript.some((l) => Array.isArray(l.body) && l.body.some((r) => r.text === READY && r.agent && r.agent.name === AGENT)),
      "the shopper's transcript has the canned text as the agent's words");
    await panel.getByRole('group', { name: /^Canned replies/ }).getByRole('button', { name: /^Insert Greeting/ }).click();
    assert.equal(await reply.inputValue(), HELLO, 'a click inserts the canned text');
    await reply.fill('');
  }, ['console-orders']);

  scenario('console-closed', 'closed conversations: closing moves it to Closed, where words of the transcript and the order number find it', async () => {
    const page = C.page_;
    const panel = page.getByRole('tabpanel');
    await panel.getByRole('button', { name: 'Close…' }).click();
    await panel.getByRole('button', { name: 'Close conversation' }).click();
    await hidden(page.getByRole('tab', { name: new RegExp(`^${C.name},`) }), 'the tab once closed');
    await page.getByRole('button', { name: 'Closed', exact: true }).click();
    const list = page.getByRole('navigation', { name: 'Queue and closed conversations' });
    const search = list.getByRole('searchbox', { name: 'Search closed conversations' });
    const found = list.getByRole('button', { name: new RegExp(`^${C.name}, ${BOT}, webchat, Closed by ${AGENT}`) });
    await visible(found, 'the closed conversation, latest first');
    await search.fill(word.toUpperCase());
    await visible(list.getByText(`1 found for “${word.toUpperCase()}”`), 'one found by the words of the transcript');
    await visible(found, 'found by the words of the transcript');
    await search.fill('#' + C.order.id);
    await visible(found, "found by the order's number");
    await search.fill('nobody-said-' + word);
    await visible(list.getByText(`Nothing closed matches “nobody-said-${word}”.`), 'nothing for words nobody wrote');
    await search.fill(word);
    await found.click();
    const tab = page.getByRole('tabpanel');
    await visible(tab.getByText(new RegExp(`^Closed by ${AGENT}, .*this is the conversation as it was\\.$`)), 'what became of it');
    await visible(tab.getByRole('log', { name: 'Transcript' }).getByText(READY), 'its transcript, read-only');
    assert.equal(await tab.getByRole('textbox', { name: /^Reply/ }).isDisabled(), true, 'no replies to a closed conversation');
    assert.equal(await tab.getByRole('group', { name: /^Canned replies/ }).count(), 0, 'nor canned ones');
    await hidden(page.locator('#toast'), 'the note that the conversation was closed'); // not in the picture
    await page.mouse.move(0, 799);
    await shot(page, 'e4-console-closed', { docs: 'agent-console-closed.png' });
    await C.context.close();
  }, ['console-canned']);
}
