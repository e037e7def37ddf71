// The outbox against a connection that drops under it: a message sent
// while the socket is closing must wait for the next connection, and the
// page must keep running meanwhile (an outbox that retried in microtasks
// froze the tab for good: the socket's own close event never ran).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NodeProc, browser, openPage, register, message, send, GUARD_MS } from './harness.mjs';

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = false;

before(async () => {
  node = new NodeProc('delta');
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

test('a message sent as the socket drops waits for the next connection, and the page keeps running', async () => {
  const { page } = await openPage(chrome, node.url, problems);
  // Every socket the page opens, so the test can drop one.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    /** @type {WebSocket[]} */
    const sockets = [];
    // @ts-ignore a test hook
    window.__sockets = sockets;
    window.WebSocket = class extends Native {
      /** @param {string | URL} url @param {string | string[]} [protocols] */
      constructor(url, protocols) {
        super(url, protocols);
        sockets.push(this);
      }
    };
  });
  await page.reload();
  await register(page, 'erin');
  await page.getByTestId('create-room-button').click();
  await page.getByTestId('create-room-name').fill('outbox');
  await page.getByTestId('create-room-public').check();
  await page.getByTestId('create-room-submit').click();
  await page.getByTestId('room-title').filter({ hasText: 'outbox' }).waitFor();
  await send(page, 'before the drop');
  await message(page, 'before the drop').and(page.locator('[data-state="confirmed"]')).waitFor();

  // The socket starts closing, and in the same task the message is sent:
  // the send finds no open socket before the page has seen the close.
  await page.getByTestId('composer-input').fill('sent as it dropped');
  await page.evaluate(() => {
    // In a task of its own, after this call has returned.
    setTimeout(() => {
      // @ts-ignore the test hook
      const sockets = /** @type {WebSocket[]} */ (window.__sockets);
      sockets[sockets.length - 1].close();
      const input = /** @type {HTMLElement} */ (document.querySelector('[data-testid="composer-input"]'));
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    }, 0);
  });
  // The page still runs scripts (a frozen page never answers: the guard
  // only ends the wait).
  const answer = await Promise.race([
    page.evaluate(() => 6 * 7),
    new Promise((resolve) => setTimeout(() => resolve('no answer'), 3 * GUARD_MS).unref()),
  ]);
  assert.equal(answer, 42, 'the page stopped running scripts');
  // It reconnects by itself and the message goes out once.
  await message(page, 'sent as it dropped').and(page.locator('[data-state="confirmed"]')).waitFor();
  assert.equal(await message(page, 'sent as it dropped').count(), 1);
  assert.deepEqual(problems, []);
  passed = true;
});
