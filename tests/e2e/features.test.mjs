// The chat's everyday features in headless Chromium against one real node
// process (its gateway in-process): direct messages, the public room
// directory, profiles and status, room settings and archiving, unread
// counts with the "New messages" divider, history that scrolls back,
// keyboard-only use, a phone-sized layout, and the offline app shell with
// a queued message sent on reconnect. Screenshots go to
// screenshots/features/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, ExpectedErrors, browser, axeViolations, openPage, register, message, send, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'features');
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
  node = new NodeProc('gamma');
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

/** Runs a test body; on failure, screenshots every open page first. @param {() => Promise<void>} body */
async function guarded(name, body) {
  try {
    await body();
  } catch (e) {
    let i = 0;
    for (const p of pages) await p.screenshot({ path: join(shots, `failed-${name}-${i++}.png`) }).catch(() => {});
    throw e;
  }
}

/**
 * The offline test stops the node and cuts the network on purpose: while
 * they are down (and only then) the browser's own reports of the requests
 * and reconnects that fail are expected (a refused socket while the server
 * is down, a disconnected network, a file the offline shell lacks),
 * whenever a retry happens to fall; any other error fails the test.
 */
const down = new ExpectedErrors(/Failed to load resource|net::ERR_INTERNET_DISCONNECTED|net::ERR_CONNECTION_REFUSED/);

/** @param {{width: number, height: number}} [viewport] */
async function open(viewport) {
  const opened = await openPage(chrome, node.url, problems, { viewport, expected: down });
  pages.push(opened.page);
  return opened;
}

/** @param {import('playwright-core').Page} page @param {string} name @param {'public'|'private'} vis */
async function createRoom(page, name, vis) {
  await page.getByTestId('create-room-button').click();
  await page.getByTestId('create-room-name').fill(name);
  await page.getByTestId(vis === 'public' ? 'create-room-public' : 'create-room-private').check();
  await page.getByTestId('create-room-submit').click();
  await page.getByTestId('room-view').waitFor();
  await page.getByTestId('room-title').filter({ hasText: name }).waitFor();
}

test('direct messages, the room directory, profiles and room settings', () => guarded('dm', async () => {
  const { page: carol } = await open();
  const { page: dave } = await open();
  await register(carol, 'carol');
  await register(dave, 'dave');

  // Carol edits her profile: a display name and a status.
  await carol.getByTestId('profile-button').click();
  await carol.getByTestId('profile-display-name').fill('Carol Jones');
  await carol.getByTestId('profile-status').fill('Planning the offsite');
  await carol.getByTestId('profile-save').click();
  await carol.getByTestId('profile-dialog').waitFor({ state: 'hidden' });
  await carol.getByTestId('me-card').filter({ hasText: 'Planning the offsite' }).waitFor();

  // A public room Dave finds in the directory and joins.
  await createRoom(carol, 'town-square', 'public');
  await send(carol, 'Welcome, everyone');
  await message(carol, 'Welcome, everyone').and(carol.locator('[data-state="confirmed"]')).waitFor();
  await dave.getByTestId('browse-rooms-button').click();
  await dave.getByTestId('public-room-search').fill('town');
  const listed = dave.getByTestId('public-room-item').filter({ hasText: 'town-square' });
  await listed.waitFor();
  await shot(dave, '01-directory');
  assert.deepEqual(await axeViolations(dave), [], 'directory accessibility');
  await listed.getByTestId('public-room-join').click();
  await dave.getByTestId('room-view').waitFor();
  await message(dave, 'Welcome, everyone').waitFor();
  await message(dave, 'Welcome, everyone').getByTestId('message-author').filter({ hasText: 'Carol Jones' }).waitFor();

  // Dave writes to Carol directly.
  await dave.getByTestId('new-dm-button').click();
  await dave.getByTestId('user-search-input').fill('car');
  await dave.getByTestId('user-search-result').filter({ hasText: 'Carol' }).first().click();
  await dave.getByTestId('user-picker-dialog').waitFor({ state: 'hidden' });
  await dave.getByTestId('room-title').filter({ hasText: 'Carol Jones' }).waitFor();
  await send(dave, 'Got a minute?');
  // A direct conversation starts as an invitation for the other person.
  await carol.getByTestId('invite-item').waitFor();
  await carol.getByTestId('invite-accept').click();
  await carol.getByTestId('room-item').and(carol.locator('[data-direct="true"]')).waitFor();
  await message(carol, 'Got a minute?').waitFor();
  await shot(carol, '02-direct-message');

  // The owner renames the room and sets a topic; then archives it.
  await carol.getByTestId('room-item').filter({ hasText: 'town-square' }).click();
  await carol.getByTestId('room-settings-button').click();
  await carol.getByTestId('settings-name').fill('plaza');
  await carol.getByTestId('settings-topic').fill('Announcements and hellos');
  await carol.getByTestId('settings-save').click();
  await carol.getByTestId('room-title').filter({ hasText: 'plaza' }).waitFor();
  await dave.getByTestId('room-item').filter({ hasText: 'plaza' }).waitFor();
  await carol.getByTestId('room-settings-button').click();
  await carol.getByTestId('archive-room').click();
  await carol.getByTestId('confirm-ok').click();
  await dave.getByTestId('room-item').filter({ hasText: 'plaza' }).click();
  await dave.getByTestId('composer-readonly').waitFor();
  await shot(dave, '03-archived');
  assert.deepEqual(problems, []);
  passed++;
}));

test('unread counts, the New messages divider and history that scrolls back', () => guarded('unread', async () => {
  const { page: erin } = await open();
  const { page: frank } = await open();
  await register(erin, 'erin');
  await register(frank, 'frank');
  await createRoom(erin, 'history', 'public');
  // Frank joins, then looks elsewhere while Erin writes a long backlog.
  await frank.getByTestId('browse-rooms-button').click();
  await frank.getByTestId('public-room-search').fill('history');
  await frank.getByTestId('public-room-item').filter({ hasText: 'history' }).getByTestId('public-room-join').click();
  await frank.getByTestId('room-view').waitFor();
  await frank.getByTestId('welcome').or(frank.getByTestId('room-view')).first().waitFor();
  await frank.goto(`${node.url}/#/`);
  await frank.getByTestId('welcome').waitFor();
  for (let i = 1; i <= 80; i++) {
    await send(erin, `backlog ${i}`);
  }
  await message(erin, 'backlog 80').and(erin.locator('[data-state="confirmed"]')).waitFor();
  const item = frank.getByTestId('room-item').filter({ hasText: 'history' });
  await item.and(frank.locator('[data-unread="80"]')).waitFor();
  await shot(frank, '04-unread');
  await item.click();
  await frank.getByTestId('new-messages-divider').waitFor();
  await message(frank, 'backlog 80').waitFor();
  await shot(frank, '05-divider');
  // Scrolling to the top loads older messages and keeps the place.
  const timeline = frank.getByTestId('timeline');
  const shown = () => frank.getByTestId('timeline').getByTestId('message').count();
  while ((await frank.getByTestId('history-start').count()) === 0) {
    const had = await shown();
    await timeline.evaluate((el) => el.scrollTo({ top: 0 }));
    // Each scroll to the top loads an older page (or reaches the start).
    await frank.waitForFunction(
      (n) => document.querySelectorAll('[data-testid="timeline"] [data-testid="message"]').length > n || document.querySelector('[data-testid="history-start"]'),
      had,
    );
  }
  await message(frank, 'backlog 2').first().waitFor();
  // The room is read now.
  await item.and(frank.locator('[data-unread="0"]')).waitFor();
  assert.deepEqual(problems, []);
  passed++;
}));

test('keyboard only, a phone-sized screen, and offline with a queued message', () => guarded('offline', async () => {
  // Keyboard only: no clicks from here to a sent message.
  const { page: gina, ctx } = await open();
  await register(gina, 'gina');
  await gina.getByTestId('create-room-button').focus();
  await gina.keyboard.press('Enter');
  await gina.getByTestId('create-room-name').waitFor();
  await gina.keyboard.type('pocket');
  await gina.keyboard.press('Enter');
  await gina.getByTestId('room-title').filter({ hasText: 'pocket' }).waitFor();
  // The composer has focus when a room opens; Enter sends.
  await gina.getByTestId('composer-input').and(gina.locator(':focus')).waitFor();
  await gina.keyboard.type('typed without a mouse');
  await gina.keyboard.press('Enter');
  await message(gina, 'typed without a mouse').and(gina.locator('[data-state="confirmed"]')).waitFor();

  // The same account on a phone-sized screen: the room list is a drawer.
  const { page: phone } = await open({ width: 390, height: 844 });
  await phone.getByTestId('login-username').fill('gina');
  await phone.getByTestId('login-password').fill('correct horse battery');
  await phone.getByTestId('login-submit').click();
  await phone.getByTestId('app-shell').waitFor();
  await shot(phone, '06-phone-home');
  if ((await phone.getByTestId('sidebar-toggle').first().getAttribute('aria-expanded')) !== 'true') {
    await phone.getByTestId('sidebar-toggle').first().click();
  }
  await phone.getByTestId('room-item').filter({ hasText: 'pocket' }).click();
  await message(phone, 'typed without a mouse').waitFor();
  await phone.getByTestId('composer-input').click();
  await phone.getByTestId('composer-input').fill('from the phone');
  await phone.getByTestId('send-button').click();
  await message(phone, 'from the phone').and(phone.locator('[data-state="confirmed"]')).waitFor();
  await shot(phone, '07-phone-room');
  assert.deepEqual(await axeViolations(phone), [], 'phone room accessibility');
  await phone.context().close();

  // Offline: the page says so; a message written now waits and is sent
  // when the connection is back.
  // The server goes away first (the page sees its socket close), then the
  // network: a reload must come from the service worker.
  down.start();
  await node.stop();
  await gina.getByTestId('offline-banner').waitFor();
  await ctx.setOffline(true);
  await send(gina, 'written while offline');
  await message(gina, 'written while offline').and(gina.locator('[data-state="pending"]')).waitFor();
  await shot(gina, '08-offline-queued');
  // The app shell opens without the server, from the service worker.
  await gina.reload();
  await gina.getByTestId('app-shell').waitFor();
  await gina.getByTestId('room-item').filter({ hasText: 'pocket' }).waitFor();
  await gina.getByTestId('room-item').filter({ hasText: 'pocket' }).click();
  await message(gina, 'written while offline').waitFor();
  await node.start([]);
  await ctx.setOffline(false);
  await gina.getByTestId('reconnect-now').click().catch(() => {});
  await message(gina, 'written while offline').and(gina.locator('[data-state="confirmed"]')).waitFor();
  // Connected again, as the page shows: no try can still be failing.
  await gina.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  down.stop();
  assert.equal(await message(gina, 'written while offline').count(), 1, 'sent once');
  assert.deepEqual(problems, []);
  passed++;
}));
