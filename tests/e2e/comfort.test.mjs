// The small comforts of the browser UI, in headless Chromium against one
// real node: drafts that outlive a reload, the unread count in the tab's
// title, links and emoji shortcodes in messages, and the theme choice.
// Screenshots go to screenshots/comfort/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, browser, axeViolations, openPage, register, message, send, postMessages, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'comfort');
mkdirSync(shots, { recursive: true });

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = 0;
const TESTS = 3;

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
  // A room with an unread badge is named by its visible text first.
  assert.deepEqual(await axeViolations(page), [], 'accessibility with an unread badge');
  await openRoom(page, 'notes');
  await message(page, 'news 0003').waitFor();
  await page.waitForFunction(() => document.title === 'Confab');
  assert.deepEqual(problems, []);
  passed++;
}));

test('bare web addresses become safe links, and :shortcodes: become emoji, with a keyboard autocomplete', () => guarded('links', async () => {
  const { page } = await open();
  await register(page, 'xena');
  const room = await createRoom(page, 'links');
  // Written by another client, as plain markdown: addresses not in
  // brackets, shortcodes as typed, and things that must stay text.
  await postMessages(page, {
    username: 'yuri',
    room,
    count: 1,
    template: 'Docs at https://example.com/guide?x=1&y=2. :rocket: `:tada: https://example.com/code` javascript:alert(1) <img src=x onerror=alert(1)> https://example.com/"onmouseover="alert(1) {n}',
  });
  const theirs = message(page, 'Docs at');
  await theirs.waitFor();
  const body = theirs.getByTestId('message-body');
  const guide = body.locator('a[href="https://example.com/guide?x=1&y=2"]');
  await guide.waitFor();
  assert.equal(await guide.textContent(), 'https://example.com/guide?x=1&y=2', 'the full stop is not part of the link');
  assert.equal(await guide.getAttribute('target'), '_blank');
  const rel = ((await guide.getAttribute('rel')) ?? '').split(/\s+/);
  assert.ok(rel.includes('noopener') && rel.includes('noreferrer'), `rel is ${rel.join(' ')}`);
  assert.match(await body.textContent() ?? '', /🚀/);
  // Code stays as written; only http(s) links; no markup from the text.
  assert.equal(await body.locator('code').textContent(), ':tada: https://example.com/code');
  assert.equal(await body.locator('code a').count(), 0);
  const hrefs = await body.locator('a').evaluateAll((as) => as.map((a) => /** @type {HTMLAnchorElement} */ (a).href));
  assert.ok(hrefs.every((href) => /^https:\/\/example\.com\//.test(href)), `links: ${hrefs.join(' ')}`);
  assert.equal(await body.locator('img, [onerror], [onmouseover]').count(), 0);

  // The autocomplete: a colon and two letters open it.
  const input = page.getByTestId('composer-input');
  await input.click();
  await input.pressSequentially('Ship it :t');
  assert.equal(await page.getByTestId('emoji-suggestions').isVisible(), false, 'one letter is not enough');
  await input.pressSequentially('a');
  const list = page.getByTestId('emoji-suggestions');
  await list.waitFor();
  const tada = list.locator('[data-testid="emoji-suggestion"][data-shortcode="tada"]');
  await tada.and(page.locator('[aria-selected="true"]')).waitFor();
  await shot(page, '02-emoji-autocomplete');
  // Arrow keys move the choice, and come back.
  if ((await list.getByTestId('emoji-suggestion').count()) > 1) {
    await input.press('ArrowDown');
    await tada.and(page.locator('[aria-selected="false"]')).waitFor();
    await input.press('ArrowUp');
    await tada.and(page.locator('[aria-selected="true"]')).waitFor();
  }
  await input.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'Ship it 🎉', 'Enter picks, and does not send');
  await input.pressSequentially(' :roc');
  await list.locator('[data-shortcode="rocket"]').waitFor();
  await input.press('Tab');
  assert.equal(await input.inputValue(), 'Ship it 🎉 🚀');
  await input.pressSequentially(' :fi');
  await list.waitFor();
  await input.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'Ship it 🎉 🚀 :fi');
  // A shortcode typed out in full is sent as the emoji.
  await input.pressSequentially('nally :sparkles: see https://example.org/release');
  await input.press('Enter');
  const mine = message(page, 'Ship it').and(page.locator('[data-state="confirmed"]'));
  await mine.waitFor();
  assert.equal((await mine.getByTestId('message-body').textContent())?.trim(), 'Ship it 🎉 🚀 :finally ✨ see https://example.org/release');
  await mine.locator('a[href="https://example.org/release"]').waitFor();
  await shot(page, '03-links-and-emoji');
  assert.deepEqual(problems, []);
  passed++;
}));

/** The page's background colour. @param {import('playwright-core').Page} page */
const background = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
const DARK = 'rgb(23, 23, 28)';
const LIGHT = 'rgb(255, 255, 255)';

/** @param {import('playwright-core').Page} page @param {'system'|'light'|'dark'} theme */
async function chooseTheme(page, theme) {
  await page.getByTestId('profile-button').click();
  await page.getByTestId('theme-select').selectOption(theme);
  await page.getByTestId('profile-dialog').getByTestId('dialog-close').click();
  await page.getByTestId('profile-dialog').waitFor({ state: 'detached' });
}

test('a theme is chosen per user, light, dark or the system’s, and shown from the first frame', () => guarded('theme', async () => {
  const { page } = await open();
  await page.emulateMedia({ colorScheme: 'light' });
  await register(page, 'zoe');
  await createRoom(page, 'lounge');
  await send(page, 'Lights off, or on?');
  assert.equal(await background(page), LIGHT, 'the system is light');
  await chooseTheme(page, 'dark');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  assert.equal(await background(page), DARK);
  await shot(page, '04-dark-theme');

  // After a reload the theme is there in the very first frame: no flash.
  await page.addInitScript(() => {
    requestAnimationFrame(() => {
      // @ts-ignore a test hook
      window.__firstFrame = { theme: document.documentElement.dataset.theme ?? null, bg: document.body ? getComputedStyle(document.body).backgroundColor : null };
    });
  });
  await page.reload();
  await page.getByTestId('app-shell').waitFor();
  // @ts-ignore the test hook
  const first = await page.waitForFunction(() => window.__firstFrame).then((h) => h.jsonValue());
  assert.deepEqual(first, { theme: 'dark', bg: DARK }, 'dark from the first frame');

  // "Follow the system" follows it both ways; a choice beats the system.
  await chooseTheme(page, 'system');
  await page.waitForFunction(() => document.documentElement.dataset.theme === undefined);
  assert.equal(await background(page), LIGHT);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.waitForFunction((dark) => getComputedStyle(document.body).backgroundColor === dark, DARK);
  await chooseTheme(page, 'light');
  assert.equal(await background(page), LIGHT, 'light although the system is dark');

  // Another user of this browser has a theme of their own.
  await page.getByTestId('profile-button').click();
  await page.getByTestId('logout-button').click();
  await page.getByTestId('login-form').waitFor();
  await register(page, 'abe');
  await page.waitForFunction((dark) => getComputedStyle(document.body).backgroundColor === dark, DARK);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme ?? null), null, 'abe follows the system');
  await page.getByTestId('profile-button').click();
  assert.equal(await page.getByTestId('theme-select').inputValue(), 'system');
  await page.getByTestId('logout-button').click();
  await page.getByTestId('login-username').fill('zoe');
  await page.getByTestId('login-password').fill('correct horse battery');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('app-shell').waitFor();
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
  assert.equal(await background(page), LIGHT);
  assert.deepEqual(problems, []);
  passed++;
}));
