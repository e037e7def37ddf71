// The small comforts of the browser UI, in headless Chromium against one
// real node: drafts that outlive a reload, the unread count in the tab's
// title, links and emoji shortcodes in messages, and the theme choice.
// Screenshots go to screenshots/comfort/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, browser, openPage, register, message, send, postMessages, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'comfort');
mkdirSync(shots, { recursive: true });

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = 0;
const TESTS = 1;

before(async () => {
  node = new NodeProc('zeta');
  await node.prepare();
  await node.start([]);
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await node?.stop();
  if (passed === TESTS) node.cleanup();
  else console.log(`logs of ${node.name} kept in ${node.dir}`);
});

/** @param {import('playwright-core').Page} page @param {string} name */
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`) });
}

/** Every page opened, for screenshots when a test fails. @type {import('playwright-core').Page[]} */
const pages = [];

/** Runs a test body; on failure, screenshots every open page first. @param {string} name @param {() => Promise<void>} body */
async function guarded(name, body) {
  try {
    await body();
  } catch (e) {
    let i = 0;
    for (const p of pages) await p.screenshot({ path: join(shots, `failed-${name}-${i++}.png`) }).catch(() => {});
    throw e;
  }
}

/** @param {{width: number, height: number}} [viewport] */
async function open(viewport) {
  const opened = await openPage(chrome, node.url, problems, { viewport });
  pages.push(opened.page);
  return opened;
}

/** @param {import('playwright-core').Page} page @param {string} name */
async function createRoom(page, name) {
  await page.getByTestId('create-room-button').click();
  await page.getByTestId('create-room-name').fill(name);
  await page.getByTestId('create-room-public').check();
  await page.getByTestId('create-room-submit').click();
  await page.getByTestId('room-title').filter({ hasText: name }).waitFor();
  return /** @type {string} */ (await page.getByTestId('room-view').getAttribute('data-room-id'));
}

/** @param {import('playwright-core').Page} page @param {string} name */
async function openRoom(page, name) {
  await page.getByTestId('room-item').filter({ hasText: name }).click();
  await page.getByTestId('room-title').filter({ hasText: name }).waitFor();
}

test('drafts outlive a reload, per room, and the tab title counts unread messages', () => guarded('drafts', async () => {
  const { page } = await open();
  await register(page, 'uma');
  const notes = await createRoom(page, 'notes');
  await page.getByTestId('composer-input').fill('half a thought about the notes');
  await createRoom(page, 'other');
  await page.getByTestId('composer-input').fill('a different draft');
  await page.reload();
  await page.getByTestId('app-shell').waitFor();
  await openRoom(page, 'other');
  await page.getByTestId('composer-input').and(page.locator('textarea')).waitFor();
  assert.equal(await page.getByTestId('composer-input').inputValue(), 'a different draft');
  await openRoom(page, 'notes');
  assert.equal(await page.getByTestId('composer-input').inputValue(), 'half a thought about the notes');
  await shot(page, '01-draft-restored');
  // Sent, it is no longer a draft.
  await page.getByTestId('composer-input').press('Enter');
  await message(page, 'half a thought about the notes').and(page.locator('[data-state="confirmed"]')).waitFor();
  await page.reload();
  await openRoom(page, 'notes');
  await message(page, 'half a thought about the notes').waitFor();
  assert.equal(await page.getByTestId('composer-input').inputValue(), '');

  // Someone writes in "notes" while Uma reads "other": the title says so.
  await openRoom(page, 'other');
  await page.waitForFunction(() => document.title === 'Confab');
  await postMessages(page, { username: 'walt', room: notes, count: 3, template: 'news {n}' });
  await page.waitForFunction(() => document.title === '(3) Confab');
  await openRoom(page, 'notes');
  await message(page, 'news 0003').waitFor();
  await page.waitForFunction(() => document.title === 'Confab');
  assert.deepEqual(problems, []);
  passed++;
}));
