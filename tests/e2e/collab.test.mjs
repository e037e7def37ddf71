// Working together across federation, in real headless Chromium against
// two real nodes (the second with its gateway run apart): Alice on node
// alpha and Bob on node beta share a private room and use threads,
// reactions, edits and deletions, mentions with notifications, pins, an
// image upload, search that jumps to a message in context, and blocking.
// Every step is checked on the other person's screen, so each feature is
// seen to cross from one node to the other. Screenshots go to
// screenshots/collab/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import { twoNodes, browser, axeViolations, openPage, register, message, send, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'collab');
mkdirSync(shots, { recursive: true });

/** @type {import('./harness.mjs').NodeProc[]} */
let nodes = [];
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = 0;
const TESTS = 10;

/** Alice's page (node alpha). @type {import('playwright-core').Page} */
let alice;
/** Bob's page (node beta). @type {import('playwright-core').Page} */
let bob;
/** Their full ids. */
let aliceId = '';
let bobId = '';
const ROOM = 'collab';

before(async () => {
  nodes = await twoNodes({}, { gateway: 'separate' });
  chrome = await browser();
  const [a, b] = nodes;
  aliceId = a.user('alice');
  bobId = b.user('bob');
  alice = (await openPage(chrome, a.url, problems)).page;
  bob = (await openPage(chrome, b.url, problems)).page;
  await register(alice, 'alice');
  await register(bob, 'bob');

  // Alice makes a private room and invites Bob of the other node by his
  // full id; Bob accepts on his own node.
  await alice.getByTestId('create-room-button').click();
  await alice.getByTestId('create-room-name').fill(ROOM);
  await alice.getByTestId('create-room-private').check();
  await alice.getByTestId('create-room-submit').click();
  await alice.getByTestId('room-title').filter({ hasText: ROOM }).waitFor();
  await alice.getByTestId('invite-button').click();
  await alice.getByTestId('user-search-input').fill(bobId);
  await alice.getByTestId('user-search-result').and(alice.locator(`[data-user="${bobId}"]`)).click();
  await alice.getByTestId('user-picker-dialog').getByRole('status').filter({ hasText: 'Invited bob.' }).waitFor();
  await alice.getByTestId('user-picker-submit').click();
  await bob.getByTestId('invite-item').filter({ hasText: ROOM }).getByTestId('invite-accept').click();
  await bob.getByTestId('room-title').filter({ hasText: ROOM }).waitFor();
  // Both see each other in the room before the features start.
  await alice.getByTestId('system-message').and(alice.locator('[data-kind="join"]')).filter({ hasText: 'bob' }).waitFor();
  await alice.getByTestId('members-button').and(alice.locator('[aria-label="2 members"]')).waitFor();
  await bob.getByTestId('members-button').and(bob.locator('[aria-label="2 members"]')).waitFor();
});

after(async () => {
  await chrome?.close();
  for (const n of nodes) await n.stop();
  // On failure the logs stay: <tmp>/confab-e2e-*/node.log, gateway.log.
  if (passed === TESTS) for (const n of nodes) n.cleanup();
  else for (const n of nodes) console.log(`logs of ${n.name} kept in ${n.dir}`);
});

/** @param {import('playwright-core').Page} page @param {string} name */
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`) });
}

/** Accessibility problems found during the current test, asserted at its end. @type {string[]} */
let a11y = [];

/**
 * Scans the page with axe; serious or critical findings fail the test at
 * its end, after its behaviour was checked.
 * @param {import('playwright-core').Page} page @param {string} what
 */
async function noSeriousA11y(page, what) {
  const v = await axeViolations(page);
  if (v.length) a11y.push(`accessibility problems on ${what}: ${JSON.stringify(v, null, 1)}`);
}

/** Every open page, for screenshots and clean-up when a test fails. */
function pages() {
  return [alice, bob].filter(Boolean);
}

/**
 * Runs a test body; then checks accessibility findings and console errors.
 * On failure, screenshots both pages and reloads them, so the next test
 * does not start from what this one left behind.
 * @param {string} name @param {() => Promise<void>} body
 */
async function guarded(name, body) {
  a11y = [];
  try {
    await body();
    assert.deepEqual(a11y, []);
    assert.deepEqual(problems, []);
    passed++;
  } catch (e) {
    for (const [i, p] of pages().entries()) {
      await p.screenshot({ path: join(shots, `failed-${name}-${i ? 'bob' : 'alice'}.png`) }).catch(() => {});
      // A fresh start of the page for the next test (the session survives a reload).
      await p.reload().catch(() => {});
      await p.getByTestId('app-shell').waitFor().catch(() => {});
    }
    throw e;
  }
}

/** Opens room `name` from the sidebar, with no side panel. @param {import('playwright-core').Page} page @param {string} name */
async function openRoom(page, name) {
  if ((await page.getByTestId('side-panel').count()) > 0) await page.getByTestId('panel-close').click();
  await page.getByTestId('room-item').filter({ hasText: name }).click();
  await page.getByTestId('room-title').filter({ hasText: name }).waitFor();
  await page.getByTestId('timeline').and(page.locator('[aria-busy="false"]')).waitFor();
}

/**
 * Sends `text` and waits until the server confirmed it; returns its event id.
 * @param {import('playwright-core').Page} page @param {string} text
 */
async function sendConfirmed(page, text) {
  await send(page, text);
  const m = message(page, text).and(page.locator('[data-state="confirmed"]'));
  await m.waitFor();
  // A confirmed copy may still be the pending element for a moment: wait for the real event id.
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid="timeline"] [data-testid="message"][data-state="confirmed"]')].some((el) => el.textContent?.includes(t) && !el.getAttribute('data-event-id')?.startsWith('pending:') && !el.classList.contains('pending')),
    text,
  );
  const id = await page
    .getByTestId('timeline')
    .locator('[data-testid="message"][data-state="confirmed"]:not(.pending)')
    .filter({ hasText: text })
    .last()
    .getAttribute('data-event-id');
  if (!id) throw new Error(`no event id for "${text}"`);
  return id;
}

/** The event id a search or mention result points at. @param {import('playwright-core').Locator} result */
async function eventOf(result) {
  const id = await result.getAttribute('data-event-id');
  if (!id) throw new Error('a result without an event id');
  return id;
}

/**
 * Waits until the message `eid` is highlighted in the open room's timeline
 * and inside its visible part: where a jump (search hit, mention) lands.
 * @param {import('playwright-core').Page} page @param {string} eid
 */
function shownInContext(page, eid) {
  return page.waitForFunction((id) => {
    const list = document.querySelector('[data-testid="timeline"]');
    const el = list?.querySelector(`[data-testid="message"][data-event-id="${id}"]`);
    if (!list || !el || !(el.classList.contains('highlight') || el.classList.contains('flash'))) return false;
    const box = list.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    return r.top >= box.top && r.bottom <= box.bottom;
  }, eid);
}

/** The timeline message with event id `id`. @param {import('playwright-core').Page} page @param {string} id */
function byId(page, id) {
  return page.getByTestId('timeline').locator(`[data-testid="message"][data-event-id="${id}"]`);
}

/**
 * Clicks one of a message's hover actions (react, thread, more…).
 * @param {import('playwright-core').Locator} msg @param {string} testid
 */
async function act(msg, testid) {
  await msg.hover();
  await msg.getByTestId('message-actions').getByTestId(testid).click();
}

/** From a message's "More actions" menu. @param {import('playwright-core').Page} page @param {import('playwright-core').Locator} msg @param {string} testid */
async function moreAction(page, msg, testid) {
  await act(msg, 'action-more');
  await page.getByTestId('message-menu').getByTestId(testid).click();
}

/** A valid RGBA PNG of `w`×`h` pixels (a gradient), built with zlib. @param {number} w @param {number} h */
function png(w, h) {
  /** @param {string} type @param {Buffer} data */
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, no interlace
  const raw = Buffer.alloc(h * (1 + w * 4));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + w * 4);
    raw[row] = 0; // filter: none
    for (let x = 0; x < w; x++) raw.set([Math.round((x / w) * 255), Math.round((y / h) * 255), 180, 255], row + 1 + x * 4);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

test('a thread conversation across the two nodes', () => guarded('thread', async () => {
  const root = 'Shall we brainstorm the launch checklist here?';
  const rootId = await sendConfirmed(alice, root);
  await message(bob, root).waitFor();

  // Alice keeps the (still empty) thread open in her side panel.
  await act(byId(alice, rootId), 'action-thread');
  const alicePanel = alice.getByTestId('thread-panel').and(alice.locator(`[data-root="${rootId}"]`));
  await alicePanel.waitFor();
  await alicePanel.getByText('No replies yet').waitFor();

  // Bob opens the thread on his node and replies there.
  await act(byId(bob, rootId), 'action-thread');
  const bobPanel = bob.getByTestId('thread-panel').and(bob.locator(`[data-root="${rootId}"]`));
  await bobPanel.waitFor();
  await bob.getByTestId('thread-composer-input').fill('Item one: the press release.');
  await bob.getByTestId('thread-composer-input').press('Enter');
  await bobPanel.getByTestId('message').filter({ hasText: 'Item one: the press release.' }).and(bob.locator('[data-state="confirmed"]')).waitFor();
  // The reply stays out of the main timeline.
  assert.equal(await message(bob, 'Item one: the press release.').count(), 0, 'a thread reply is not in the timeline');

  // Alice: the reply count on the root, and the reply live in her panel.
  await byId(alice, rootId).getByTestId('thread-summary').and(alice.locator('[data-replies="1"]')).filter({ hasText: '1 reply' }).waitFor();
  await alicePanel.getByTestId('message').filter({ hasText: 'Item one: the press release.' }).waitFor();
  await alicePanel.getByText('1 reply', { exact: true }).waitFor();
  await shot(alice, '01-thread-alice');
  await noSeriousA11y(alice, 'the thread panel');

  // She answers in the thread; Bob sees it live and the count on his root.
  await alice.getByTestId('thread-composer-input').fill('Item two: the demo video.');
  await alice.getByTestId('thread-composer-input').press('Enter');
  await bobPanel.getByTestId('message').filter({ hasText: 'Item two: the demo video.' }).waitFor();
  await byId(bob, rootId).getByTestId('thread-summary').and(bob.locator('[data-replies="2"]')).filter({ hasText: '2 replies' }).waitFor();
  const order = (await bobPanel.locator('.thread-list [data-testid="message-body"]').allTextContents()).map((t) => t.trim());
  assert.deepEqual(order, ['Item one: the press release.', 'Item two: the demo video.'], 'replies in order in the thread');
  await shot(bob, '02-thread-bob');
  await alice.getByTestId('panel-close').click();
  await bob.getByTestId('panel-close').click();
}));

test('reactions: picked, aggregated, named and removed', () => guarded('reactions', async () => {
  const text = 'Reactions welcome on this plan.';
  const id = await sendConfirmed(alice, text);
  await byId(bob, id).waitFor();

  // Bob reacts through the picker, searching for the emoji.
  await act(byId(bob, id), 'action-react');
  await bob.getByTestId('emoji-picker').waitFor();
  await bob.getByTestId('emoji-search').fill('rocket');
  const options = bob.getByTestId('emoji-picker').getByTestId('emoji-option');
  await options.and(bob.locator('[data-emoji="🚀"]')).waitFor();
  assert.equal(await options.count(), 1, 'the search narrows the picker to the rocket');
  await shot(bob, '03-emoji-picker');
  await noSeriousA11y(bob, 'the emoji picker');
  await options.and(bob.locator('[data-emoji="🚀"]')).click();
  await bob.getByTestId('emoji-picker').waitFor({ state: 'detached' });

  // Alice sees one rocket, by Bob, and adds her own.
  const aliceRocket = byId(alice, id).getByTestId('reaction').and(alice.locator('[data-emoji="🚀"]'));
  await aliceRocket.and(alice.locator('[data-count="1"][aria-pressed="false"]')).waitFor();
  assert.equal(await aliceRocket.getByTestId('reaction-tooltip').textContent(), 'bob reacted with 🚀');
  await aliceRocket.click();
  await aliceRocket.and(alice.locator('[data-count="2"][aria-pressed="true"]')).waitFor();

  // Bob sees the count of two; the tooltip (the button's description) names them both.
  const bobRocket = byId(bob, id).getByTestId('reaction').and(bob.locator('[data-emoji="🚀"]'));
  await bobRocket.and(bob.locator('[data-count="2"][aria-pressed="true"]')).waitFor();
  const described = await bobRocket.evaluate((el) => document.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent ?? '');
  assert.equal(described, 'you and alice reacted with 🚀');
  assert.equal(await bobRocket.getAttribute('aria-label'), '🚀 2');
  await bobRocket.hover();
  await bob.waitForFunction(
    (eid) => {
      const tip = document.querySelector(`[data-testid="timeline"] [data-event-id="${eid}"] [data-emoji="🚀"] [data-testid="reaction-tooltip"]`);
      return !!tip && getComputedStyle(tip).opacity === '1';
    },
    id,
  );
  await shot(bob, '04-reactions');

  // Bob takes his back: Alice is left alone with hers.
  await bobRocket.click();
  await bobRocket.and(bob.locator('[data-count="1"][aria-pressed="false"]')).waitFor();
  await aliceRocket.and(alice.locator('[data-count="1"][aria-pressed="true"]')).waitFor();
  await alice.waitForFunction(
    (eid) => document.querySelector(`[data-testid="timeline"] [data-event-id="${eid}"] [data-emoji="🚀"] [data-testid="reaction-tooltip"]`)?.textContent === 'you reacted with 🚀',
    id,
  );
}));

test('an edit and a deletion reach the other node', () => guarded('edit-delete', async () => {
  const id = await sendConfirmed(alice, 'The launch is on Tuesday.');
  await byId(bob, id).filter({ hasText: 'Tuesday' }).waitFor();

  await moreAction(alice, byId(alice, id), 'action-edit');
  await alice.getByTestId('edit-input').fill('The launch is on Wednesday.');
  await alice.getByTestId('edit-input').press('Enter');
  await byId(alice, id).getByTestId('message-edited').waitFor();

  const edited = byId(bob, id);
  await edited.getByTestId('message-edited').waitFor();
  assert.equal((await edited.getByTestId('message-body').textContent())?.trim(), 'The launch is on Wednesday. (edited)');
  // Earlier versions are for the author and moderators: Bob sees a label,
  // Alice (the room's owner) a button that opens them.
  assert.equal(await edited.getByTestId('message-edited').evaluate((el) => el.tagName), 'SPAN', 'no history for Bob');
  await byId(alice, id).getByTestId('message-edited').click();
  const history = alice.getByTestId('edit-history-dialog');
  await history.getByTestId('edit-version').nth(1).waitFor();
  const versions = (await history.getByTestId('edit-version').locator('.msg-body').allTextContents()).map((t) => t.trim());
  assert.deepEqual(versions, ['The launch is on Tuesday.', 'The launch is on Wednesday.']);
  await history.getByTestId('edit-version').first().getByText('Original').waitFor();
  await shot(alice, '05a-edit-history');
  await noSeriousA11y(alice, 'the edit history');
  await history.getByTestId('dialog-close').click();
  await history.waitFor({ state: 'detached' });

  const oops = await sendConfirmed(alice, 'Oops, this was meant for another room.');
  await byId(bob, oops).filter({ hasText: 'Oops' }).waitFor();
  await moreAction(alice, byId(alice, oops), 'action-delete');
  await alice.getByTestId('confirm-dialog').getByTestId('confirm-ok').click();
  await byId(alice, oops).getByTestId('message-deleted').waitFor();
  await byId(bob, oops).getByTestId('message-deleted').filter({ hasText: 'Message deleted' }).waitFor();
  assert.equal(await byId(bob, oops).getByText('Oops').count(), 0, 'the deleted text is gone');
  await shot(bob, '05-edited-and-deleted');
}));

test('a mention notifies the other person and is in their Mentions', () => guarded('mention', async () => {
  // Bob is busy in a room of his own.
  await bob.getByTestId('create-room-button').click();
  await bob.getByTestId('create-room-name').fill('bob-notes');
  await bob.getByTestId('create-room-submit').click();
  await bob.getByTestId('room-title').filter({ hasText: 'bob-notes' }).waitFor();

  // Alice types "@bo" and picks Bob from the suggestions.
  await alice.getByTestId('composer-input').click();
  await alice.getByTestId('composer-input').pressSequentially('Ping @bo', { delay: 20 });
  const option = alice.getByTestId('mention-suggestions').getByTestId('mention-option').and(alice.locator(`[data-user="${bobId}"]`));
  await option.waitFor();
  await option.filter({ hasText: 'other node' }).waitFor();
  await shot(alice, '06-mention-autocomplete');
  await option.click();
  assert.equal(await alice.getByTestId('composer-input').inputValue(), 'Ping @bob ');
  await alice.getByTestId('composer-input').pressSequentially('can you review the checklist?');
  await alice.getByTestId('composer-input').press('Enter');
  const text = 'Ping @bob can you review the checklist?';
  await message(alice, text).and(alice.locator('[data-state="confirmed"]')).waitFor();

  // Bob: an in-app notification, and a mention badge on the room.
  await bob.getByTestId('toast').filter({ hasText: `alice in ${ROOM}: ${text}` }).waitFor();
  const item = bob.getByTestId('room-item').filter({ hasText: ROOM });
  await item.getByTestId('mention-badge').filter({ hasText: '@1' }).waitFor();
  await shot(bob, '07-mention-notified');

  // The Mentions view lists it, and opening it shows the message in the room.
  await bob.getByTestId('mentions-button').click();
  const hit = bob.getByTestId('mentions-view').getByTestId('mentions-item').filter({ hasText: text });
  await hit.waitFor();
  await shot(bob, '08-mentions-view');
  const id = await eventOf(hit);
  await hit.click();
  await bob.getByTestId('room-title').filter({ hasText: ROOM }).waitFor();
  await byId(bob, id).filter({ hasText: text }).waitFor();
  await shownInContext(bob, id);
  await item.and(bob.locator('[data-mentions="0"]')).waitFor();
  await bob.getByTestId('panel-close').click();
}));

test('a pinned message shows at the top of the room for the other person', () => guarded('pin', async () => {
  await openRoom(bob, ROOM);
  const id = await sendConfirmed(alice, 'Checklist lives at docs/launch.md');
  await byId(bob, id).waitFor();
  await moreAction(alice, byId(alice, id), 'action-pin');
  await alice.getByTestId('pins-bar').getByTestId('pin-item').and(alice.locator(`[data-event-id="${id}"]`)).waitFor();

  const bar = bob.getByTestId('pins-bar');
  await bar.filter({ hasText: '1 pinned message' }).waitFor();
  const pin = bar.getByTestId('pin-item').and(bob.locator(`[data-event-id="${id}"]`));
  await pin.filter({ hasText: 'Checklist lives at docs/launch.md' }).waitFor();
  await pin.filter({ hasText: 'alice' }).waitFor();
  await bob.getByTestId('system-message').and(bob.locator('[data-kind="pin"]')).filter({ hasText: 'alice pinned a message' }).waitFor();
  await shot(bob, '09-pinned');
}));

test('an uploaded image is shown on the other node', () => guarded('image', async () => {
  await openRoom(bob, ROOM);
  await alice.getByTestId('file-input').setInputFiles({ name: 'mockup.png', mimeType: 'image/png', buffer: png(64, 40) });
  await alice.getByTestId('upload-item').and(alice.locator('.done')).filter({ hasText: 'mockup.png' }).waitFor();
  const id = await sendConfirmed(alice, 'Here is the mockup.');
  await byId(alice, id).getByTestId('attachment-image').waitFor();

  const img = byId(bob, id).getByTestId('attachment-image').locator('img');
  await img.waitFor();
  assert.equal(await img.getAttribute('alt'), 'mockup.png');
  // The picture itself arrived on Bob's node and decoded in his browser.
  await bob.waitForFunction(
    (eid) => {
      const i = /** @type {HTMLImageElement|null} */ (document.querySelector(`[data-testid="timeline"] [data-event-id="${eid}"] [data-testid="attachment-image"] img`));
      return !!i && i.complete && i.naturalWidth === 64 && i.naturalHeight === 40;
    },
    id,
  );
  await shot(bob, '10-image');
  await byId(bob, id).getByTestId('attachment-image').click();
  await bob.getByTestId('image-dialog').waitFor();
  await bob.waitForFunction(() => {
    const i = /** @type {HTMLImageElement|null} */ (document.querySelector('[data-testid="image-dialog"] img'));
    return !!i && i.complete && i.naturalWidth === 64;
  });
  await bob.getByTestId('image-dialog').getByTestId('dialog-close').click();
  await bob.getByTestId('image-dialog').waitFor({ state: 'detached' });
}));

test('search finds an earlier message and shows it in context', () => guarded('search', async () => {
  const found = 'Shall we brainstorm the launch checklist here?';
  // In the room: the room's own search.
  await openRoom(bob, ROOM);
  await bob.getByTestId('search-button').click();
  await bob.getByTestId('search-input').fill('brainstorm');
  const inRoom = bob.getByTestId('search-panel').getByTestId('search-result').filter({ hasText: found });
  await inRoom.waitFor();
  assert.equal(await bob.getByTestId('search-panel').getByTestId('search-result').count(), 1, 'one hit in the room');
  // The beginning of a word finds it too: "checkl" is in "checklist".
  await bob.getByTestId('search-input').fill('checkl');
  await bob.getByTestId('search-panel').getByTestId('search-result').filter({ hasText: found }).waitFor();
  const id = await eventOf(inRoom);
  await inRoom.click();
  await shownInContext(bob, id);
  await shot(bob, '11-search-jump');
  await bob.getByTestId('panel-close').click();

  // From another room, across all his rooms: the hit opens its room.
  await openRoom(bob, 'bob-notes');
  await bob.getByTestId('search-all-button').click();
  await bob.getByTestId('search-input').fill('mockup');
  const anywhere = bob.getByTestId('search-panel').getByTestId('search-result').filter({ hasText: 'Here is the mockup.' });
  await anywhere.filter({ hasText: `in ${ROOM}` }).waitFor();
  const other = await eventOf(anywhere);
  await anywhere.click();
  await bob.getByTestId('room-title').filter({ hasText: ROOM }).waitFor();
  await shownInContext(bob, other);
  await shot(bob, '12-search-all-jump');
  await bob.getByTestId('panel-close').click();
}));

test('blocking folds away the blocked person’s messages, and unblocking brings them back', () => guarded('block', async () => {
  await openRoom(bob, ROOM);
  await bob.getByTestId('members-button').click();
  const member = bob.getByTestId('member-item').and(bob.locator(`[data-user="${aliceId}"]`));
  await member.getByRole('button', { name: 'Actions for alice' }).click();
  await bob.getByTestId('member-menu').getByTestId('member-block').click();
  await bob.getByTestId('confirm-dialog').filter({ hasText: 'Block alice?' }).getByTestId('confirm-ok').click();
  await bob.getByTestId('toast').filter({ hasText: 'Blocked.' }).waitFor();
  await bob.getByTestId('panel-close').click();

  // Alice writes on; Bob gets her message only as a folded placeholder.
  const id = await sendConfirmed(alice, 'Are you still reading these, Bob?');
  const folded = byId(bob, id);
  await folded.getByText('Message from a blocked user.').waitFor();
  assert.equal(await folded.getByText('Are you still reading these').count(), 0, 'the text is hidden');
  assert.match((await folded.getAttribute('aria-label')) ?? '', /^alice \(blocked\), /, 'named as blocked');
  await shot(bob, '13-blocked');

  // A folded message offers no actions: Bob unblocks from the member list.
  assert.equal(await folded.getByTestId('message-actions').count(), 0, 'no actions on a folded message');
  await bob.getByTestId('members-button').click();
  await member.getByRole('button', { name: 'Actions for alice (blocked)' }).click();
  await bob.getByTestId('member-menu').getByTestId('member-block').filter({ hasText: 'Unblock' }).click();
  await bob.getByTestId('toast').filter({ hasText: 'Unblocked.' }).waitFor();
  await byId(bob, id).getByTestId('message-body').filter({ hasText: 'Are you still reading these, Bob?' }).waitFor();
  assert.equal(await bob.getByTestId('timeline').getByText('Message from a blocked user.').count(), 0, 'nothing folded any more');
  await shot(bob, '14-unblocked');
  await bob.getByTestId('panel-close').click();
}));

test('the welcome bot greets Bob on his first join, for his eyes only, until he dismisses it', () => guarded('welcome', async () => {
  await openRoom(bob, ROOM);
  const note = bob.getByTestId('notice');
  await note.filter({ hasText: `Welcome to ${ROOM}, bob!` }).waitFor();
  for (const part of ['Mentions', 'Threads', 'Reactions', 'Only you can see this note.']) await note.getByText(part, { exact: false }).first().waitFor();
  await note.getByText('Only visible to you').waitFor();
  await shot(bob, '15-welcome-note');
  await noSeriousA11y(bob, 'the welcome note');
  // Alice created the room: no tour for her, and never Bob's.
  await openRoom(alice, ROOM);
  assert.equal(await alice.getByTestId('notice').count(), 0, 'Alice sees no note');
  // Dismissed, it stays gone across a reload.
  await note.getByTestId('notice-dismiss').click();
  await note.waitFor({ state: 'detached' });
  await bob.reload();
  await openRoom(bob, ROOM);
  await bob.getByTestId('message').first().waitFor();
  assert.equal(await bob.getByTestId('notice').count(), 0, 'the note is gone for good');
}));

test('a direct message shows Delivered once the other node has it, then Read', () => guarded('receipts', async () => {
  await alice.getByTestId('new-dm-button').click();
  await alice.getByTestId('user-search-input').fill(bobId);
  await alice.getByTestId('user-search-result').and(alice.locator(`[data-user="${bobId}"]`)).click();
  await alice.getByTestId('user-picker-dialog').waitFor({ state: 'hidden' });
  await alice.getByTestId('room-item').and(alice.locator('[data-direct="true"]')).waitFor();
  const text = 'Just between us: the budget is approved.';
  await sendConfirmed(alice, text);
  const mark = alice.getByTestId('read-mark');
  // Bob has not even accepted yet, but his node holds the conversation.
  await mark.and(alice.locator('[data-state="delivered"]')).filter({ hasText: 'Delivered' }).waitFor();
  await shot(alice, '16-delivered');
  await bob.getByTestId('invite-item').filter({ hasText: 'alice' }).getByTestId('invite-accept').click();
  await message(bob, text).waitFor();
  // Bob reads it: Alice's mark turns to Read, live.
  await mark.and(alice.locator('[data-state="read"]')).filter({ hasText: 'Read' }).waitFor();
  await shot(alice, '17-read');
  // And stays so after a reload (the position is kept by Alice's node).
  await alice.reload();
  await alice.getByTestId('room-item').and(alice.locator('[data-direct="true"]')).click();
  await alice.getByTestId('read-mark').and(alice.locator('[data-state="read"]')).waitFor();
}));
