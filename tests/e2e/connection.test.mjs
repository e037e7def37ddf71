// A lost connection, seen as the user sees it: the network goes away
// (Playwright's offline mode, which the browser reports) or the socket just
// goes silent (frames stop both ways, nothing reported). The page says so
// within seconds, not after the 80 s it once took, shows its user away, keeps
// what is written meanwhile, and resumes without loss or duplicates.
// Screenshots go to screenshots/connection/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProc, ExpectedErrors, browser, openPage, register, message, send, postMessages, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'connection');
mkdirSync(shots, { recursive: true });

/** @type {NodeProc} */
let node;
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = 0;
const TESTS = 2;
/** A page in the browser's offline mode may fail a request it tries. */
const cut = new ExpectedErrors(/net::ERR_INTERNET_DISCONNECTED/);
/** Every page opened, for screenshots when a test fails. @type {import('playwright-core').Page[]} */
const pages = [];

before(async () => {
  node = new NodeProc('eta');
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

async function open() {
  const opened = await openPage(chrome, node.url, problems, { expected: cut });
  pages.push(opened.page);
  return opened;
}

/** @param {import('playwright-core').Page} page @param {string} name */
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`) });
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

/** The user's own presence dot. @param {import('playwright-core').Page} page @param {string} presence */
function myPresence(page, presence) {
  return page.getByTestId('me-card').locator(`[data-testid="presence-dot"][data-presence="${presence}"]`);
}

/** @param {import('playwright-core').Page} page @param {string} text */
function confirmed(page, text) {
  return message(page, text).and(page.locator('[data-state="confirmed"]'));
}

/** @type {import('playwright-core').Page} */
let lee;

test('a lost network shows at once, the user is away, and what was written goes out once when it is back', () => guarded('offline', async () => {
  const { page: kim, ctx: kimCtx } = await open();
  ({ page: lee } = await open());
  await register(kim, 'kim');
  await register(lee, 'lee');
  const room = await createRoom(kim, 'wire');
  await send(kim, 'before the cut');
  await confirmed(kim, 'before the cut').waitFor();
  await postMessages(lee, { username: 'lee', room, count: 0, template: '' });
  await lee.getByTestId('room-item').filter({ hasText: 'wire' }).click();
  await message(lee, 'before the cut').waitFor();
  await myPresence(kim, 'online').waitFor();

  cut.start();
  await kimCtx.setOffline(true);
  await kim.getByTestId('offline-banner').and(kim.locator('[data-state="offline"]')).waitFor();
  await myPresence(kim, 'away').waitFor();
  await send(kim, 'written while the network was down');
  await message(kim, 'written while the network was down').and(kim.locator('[data-state="pending"]')).waitFor();
  await shot(kim, '01-offline');
  await send(lee, 'sent while kim was offline');
  await confirmed(lee, 'sent while kim was offline').waitFor();

  await kimCtx.setOffline(false);
  await kim.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  await confirmed(kim, 'written while the network was down').waitFor();
  await message(kim, 'sent while kim was offline').waitFor();
  await myPresence(kim, 'online').waitFor();
  cut.stop();
  await message(lee, 'written while the network was down').waitFor();
  await shot(kim, '02-back-online');
  for (const [page, text] of [
    [kim, 'written while the network was down'],
    [kim, 'sent while kim was offline'],
    [lee, 'written while the network was down'],
  ]) {
    assert.equal(await message(/** @type {import('playwright-core').Page} */ (page), /** @type {string} */ (text)).count(), 1, `${text} shown once`);
  }
  assert.deepEqual(problems, []);
  passed++;
}));

test('a socket that goes silent, with nothing reported, is noticed within seconds and replaced', () => guarded('silent', async () => {
  const { page: mia } = await open();
  // The page's sockets can be made silent: from then on a socket passes no
  // frame either way (a dead link the browser does not know of), for good.
  await mia.addInitScript(() => {
    const Native = window.WebSocket;
    /** @type {Set<WebSocket & {silent: boolean}>} */
    const all = new Set();
    let silence = false;
    // @ts-ignore test hooks
    window.__silence = () => {
      silence = true;
      for (const s of all) s.silent = true;
    };
    // @ts-ignore
    window.__speak = () => {
      silence = false;
    };
    window.WebSocket = class extends Native {
      /** @param {string | URL} url @param {string | string[]} [protocols] */
      constructor(url, protocols) {
        super(url, protocols);
        this.silent = silence;
        all.add(this);
        // Registered first, so the page's own listener never hears.
        super.addEventListener('message', (ev) => {
          if (this.silent) ev.stopImmediatePropagation();
        });
      }

      /** @param {string | ArrayBufferLike | Blob | ArrayBufferView} data */
      send(data) {
        if (!this.silent) super.send(data);
      }
    };
  });
  await mia.reload();
  await register(mia, 'mia');
  const room = await createRoom(mia, 'quiet');
  await send(mia, 'before the silence');
  await confirmed(mia, 'before the silence').waitFor();
  await myPresence(mia, 'online').waitFor();

  // @ts-ignore the test hook
  await mia.evaluate(() => window.__silence());
  // The banner waits out no minute-long timeout (the guard only ends a hang).
  await mia.getByTestId('offline-banner').waitFor();
  await myPresence(mia, 'away').waitFor();
  await send(mia, 'written into the silence');
  await message(mia, 'written into the silence').and(mia.locator('[data-state="pending"]')).waitFor();
  await shot(mia, '03-silent-socket');
  await postMessages(lee, { username: 'lee', room, count: 1, template: 'said during the silence {n}' });

  // @ts-ignore the test hook
  await mia.evaluate(() => window.__speak());
  await mia.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  await message(mia, 'said during the silence 0001').waitFor();
  await confirmed(mia, 'written into the silence').waitFor();
  await myPresence(mia, 'online').waitFor();
  assert.equal(await message(mia, 'said during the silence 0001').count(), 1);
  assert.equal(await message(mia, 'written into the silence').count(), 1);
  assert.deepEqual(problems, []);
  passed++;
}));
