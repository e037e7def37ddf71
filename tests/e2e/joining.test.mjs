// A new member is not told the room's whole history is unread: unread
// starts at one's join. Once, joining a room of 40 messages put "40 new"
// on it. The join goes through the protocol on a socket of its own, so
// the page never opens the room (opening it would mark it read anyway).
// Screenshots go to screenshots/joining/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, browser, openPage, register, postMessages, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'joining');
mkdirSync(shots, { recursive: true });

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = false;

before(async () => {
  node = new NodeProc('zeta', { messagesPerMinute: 100000, requestsPerMinute: 100000 });
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

test('unread starts at one’s join, not at the room’s first message', async () => {
  const { page } = await openPage(chrome, node.url, problems);
  await register(page, 'nina');
  const room = await postMessages(page, {
    username: 'paul',
    settings: { name: 'townhall', visibility: 'public' },
    count: 40,
    template: 'before nina {n}',
  });
  await postMessages(page, { username: 'nina', room, count: 0, template: '' });
  const item = page.getByTestId('room-item').filter({ hasText: 'townhall' });
  await item.and(page.locator('[data-unread]')).waitFor();
  assert.equal(await item.getAttribute('data-unread'), '0', 'nothing before the join is new to her');
  await page.screenshot({ path: join(shots, '01-joined.png') });
  // Olga joins and writes after her: that message, and only that one, is
  // new to her (the list as the node gives it after a reload).
  await postMessages(page, { username: 'olga', room, count: 1, template: 'after nina {n}' });
  await page.reload();
  await item.and(page.locator('[data-unread="1"]')).waitFor();
  await page.screenshot({ path: join(shots, '02-one-new.png') });
  assert.deepEqual(problems, []);
  passed = true;
});
