// Scrolling back through a long room: 1,000 messages, posted fast through
// the protocol, read back from the newest by scrolling alone (scrollTop and
// the mouse wheel, no clicks) down to the very first message, with the
// message under the reader's eye kept still as each older page is put in
// above it. Once, only the first older page came: the view jumped to the
// oldest loaded message, sat at the top where the wheel scrolled nothing,
// and the "Load older messages" link hid under the unread pill.
// Screenshots go to screenshots/history/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, browser, openPage, register, message, postMessages, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'history');
mkdirSync(shots, { recursive: true });
const COUNT = 1000;

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = false;

before(async () => {
  // The backlog is posted at once, far over the default 60 a minute.
  node = new NodeProc('epsilon', { messagesPerMinute: 100000, requestsPerMinute: 100000 });
  await node.prepare();
  await node.start([]);
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await node?.stop();
  if (passed) node.cleanup();
  else console.log(`logs of ${node.name} kept in ${node.dir}`);
});

/** @param {import('playwright-core').Page} page */
const shownCount = (page) => page.getByTestId('timeline').getByTestId('message').count();

test('a room of 1,000 messages scrolls back to its first message and keeps the place on every page', async () => {
  const { page } = await openPage(chrome, node.url, problems);
  try {
    await register(page, 'rita');
    const room = await postMessages(page, { username: 'paul', settings: { name: 'archive', visibility: 'public' }, count: 0, template: '' });
    // Rita joins on a socket of her own: her page has never opened the
    // room, so it follows none of what Paul posts next.
    await postMessages(page, { username: 'rita', room, count: 0, template: '' });
    await postMessages(page, { username: 'paul', room, count: COUNT, template: 'archive message {n}' });
    const item = page.getByTestId('room-item').filter({ hasText: 'archive' });
    // The node counts unread messages up to 999.
    await item.and(page.locator('[data-unread="999"]')).waitFor();
    await item.click();
    await message(page, `archive message ${COUNT}`).waitFor();
    await page.getByTestId('jump-to-unread').waitFor();
    const timeline = page.getByTestId('timeline');

    // Scrolled to the top, in one task (before the page has seen the
    // scroll and asked for older messages): the "Load older messages" link,
    // when there, is not under the pill, and the message in the middle of
    // the view is noted with the number of messages shown.
    const scrollUpAndLook = () =>
      timeline.evaluate((list) => {
        list.scrollTop = 0;
        // By its words, as the reader finds it.
        const link = Array.from(list.querySelectorAll('button')).find((b) => b.textContent === 'Load older messages');
        let cover = null;
        if (link) {
          const r = link.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          if (!hit || !link.contains(hit)) cover = `covered by ${hit?.outerHTML.slice(0, 120)}`;
        }
        const box = list.getBoundingClientRect();
        const middle = box.top + list.clientHeight / 2;
        const msg = /** @type {HTMLElement[]} */ (Array.from(list.querySelectorAll('[data-testid="message"]'))).find((m) => m.getBoundingClientRect().bottom > middle);
        return {
          cover,
          count: list.querySelectorAll('[data-testid="message"]').length,
          id: msg?.dataset.eventId ?? null,
          top: msg ? msg.getBoundingClientRect().top : 0,
        };
      });
    const first = await scrollUpAndLook();
    assert.equal(first.cover, null, 'the Load older messages link is not under the pill');

    // Each older page goes in above the message the reader looks at, and
    // that message stays where it is on screen.
    let seen = first;
    for (let pages = 0; pages < 4; pages++) {
      assert.ok(seen.id, 'a message is under the reader’s eye');
      await page.waitForFunction(
        (n) => document.querySelectorAll('[data-testid="timeline"] [data-testid="message"]').length > n,
        seen.count,
      );
      const now = await timeline.evaluate((list, id) => {
        const el = list.querySelector(`[data-event-id="${CSS.escape(id)}"]`);
        return el ? el.getBoundingClientRect().top : null;
      }, seen.id);
      assert.ok(now !== null && Math.abs(now - seen.top) <= 1, `the message read stayed put (${seen.top} → ${now})`);
      seen = await scrollUpAndLook();
    }
    await shot(page, '01-older-page');

    // The wheel alone, from wherever the view is, reaches the beginning.
    await timeline.hover();
    while ((await page.getByTestId('history-start').count()) === 0) {
      const had = await shownCount(page);
      await page.mouse.wheel(0, -100000);
      await page.waitForFunction(
        (n) => document.querySelectorAll('[data-testid="timeline"] [data-testid="message"]').length > n || document.querySelector('[data-testid="history-start"]'),
        had,
      );
    }
    await page.mouse.wheel(0, -100000);
    await page.getByTestId('history-start').waitFor();
    await message(page, 'archive message 0001').waitFor();
    const bodies = await timeline.getByTestId('message').getByTestId('message-body').allTextContents();
    assert.equal(bodies.length, COUNT, 'every message is shown');
    assert.equal(new Set(bodies.map((b) => b.trim())).size, COUNT, 'each once');
    assert.equal(bodies[0].trim(), 'archive message 0001', 'the first message comes first');
    await timeline.evaluate((list) => (list.scrollTop = 0));
    await shot(page, '02-beginning');
    assert.deepEqual(problems, []);
    passed = true;
  } catch (e) {
    await page.screenshot({ path: join(shots, 'failed.png') }).catch(() => {});
    throw e;
  }
});

/** @param {import('playwright-core').Page} page @param {string} name */
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`) });
}
