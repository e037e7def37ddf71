// The browser chat end to end, in real headless Chromium against real
// node and gateway processes: two organisations' users register on their
// own nodes, meet in a room across federation, talk, see each other type
// and come online, reload, and ride out a killed gateway without losing a
// message. Screenshots of the key screens go to screenshots/chat/, and an
// axe-core scan of each main screen must find nothing serious or critical.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { twoNodes, ExpectedErrors, browser, axeViolations, openPage, register, message, send, SHOTS } from './harness.mjs';

const shots = join(SHOTS, 'chat');
mkdirSync(shots, { recursive: true });

/** @type {import('./harness.mjs').NodeProc[]} */
let nodes = [];
/** @type {import('playwright-core').Browser} */
let chrome;
/** @type {string[]} */
const problems = [];
let passed = false;

before(async () => {
  nodes = await twoNodes({}, { gateway: 'separate' });
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  for (const n of nodes) await n.stop();
  // On failure the logs stay: <tmp>/confab-e2e-*/node.log, gateway.log.
  if (passed) for (const n of nodes) n.cleanup();
  else for (const n of nodes) console.log(`logs of ${n.name} kept in ${n.dir}`);
});

/** @param {import('playwright-core').Page} page @param {string} name */
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

/** @param {import('playwright-core').Page} page @param {string} what */
async function noSeriousA11y(page, what) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `accessibility problems on ${what}: ${JSON.stringify(v, null, 1)}`);
}

/**
 * While Bob's gateway is down on purpose (and only then), his page's
 * reconnects may be refused, or answered 502 by a gateway that is up but
 * not yet linked to its node: expected, whenever a retry happens to fall.
 */
const down = new ExpectedErrors(/net::ERR_CONNECTION_REFUSED|Unexpected response code: 502/);

/** @param {import('playwright-core').Browser} b @param {string} url @param {ExpectedErrors} [expected] */
function open(b, url, expected) {
  return openPage(b, url, problems, { expected });
}

test('two organisations chat across federation in the browser', async () => {
  const [a, b] = nodes;
  const { page: alice } = await open(chrome, a.url);
  const { page: bob, ctx: bobCtx } = await open(chrome, b.url, down);

  await alice.getByTestId('login-form').waitFor();
  await shot(alice, '01-sign-in');
  await noSeriousA11y(alice, 'the sign-in screen');
  await register(alice, 'alice');
  await register(bob, 'bob');
  await shot(alice, '02-home');
  await noSeriousA11y(alice, 'the home screen');

  // Alice makes a private room and invites Bob of the other node.
  await alice.getByTestId('create-room-button').click();
  await alice.getByTestId('create-room-name').fill('launch');
  await alice.getByTestId('create-room-private').check();
  await alice.getByTestId('create-room-submit').click();
  await alice.getByTestId('room-view').waitFor();
  await alice.getByTestId('empty-room').waitFor();
  await shot(alice, '03-empty-room');
  await alice.getByTestId('invite-button').click();
  await alice.getByTestId('user-search-input').fill(b.user('bob'));
  await alice.getByTestId('user-search-result').first().click();
  await alice.getByTestId('user-picker-submit').click();

  // Bob sees the invitation on his node and joins.
  await bob.getByTestId('invite-item').waitFor();
  await shot(bob, '04-invitation');
  await bob.getByTestId('invite-accept').click();
  await bob.getByTestId('room-view').waitFor();

  await send(alice, 'Hello from alpha!');
  await message(alice, 'Hello from alpha!').and(alice.locator('[data-state="confirmed"]')).waitFor();
  await message(bob, 'Hello from alpha!').waitFor();
  await send(bob, 'Hi Alice, beta here.');
  await message(alice, 'Hi Alice, beta here.').waitFor();
  await shot(alice, '05-conversation');
  await noSeriousA11y(alice, 'the room view');

  // Typing shows on the other side.
  await bob.getByTestId('composer-input').pressSequentially('typing…', { delay: 20 });
  await alice.getByTestId('typing-indicator').filter({ hasText: 'bob' }).waitFor();
  await shot(alice, '06-typing');
  await bob.getByTestId('composer-input').fill('');

  // Presence: Bob is online in Alice's member list.
  await alice.getByTestId('members-button').click();
  await alice.getByTestId('members-panel').waitFor();
  await shot(alice, '07-members');
  await alice.getByTestId('member-item').filter({ hasText: 'bob' }).locator('[data-testid="presence-dot"][data-presence="online"]').waitFor();
  await shot(alice, '07-members');

  // A reload keeps the session and the conversation.
  await bob.reload();
  await bob.getByTestId('app-shell').waitFor();
  await bob.getByTestId('room-item').filter({ hasText: 'launch' }).click();
  await message(bob, 'Hello from alpha!').waitFor();

  // Bob's gateway dies; Alice writes meanwhile; the gateway comes back
  // and Bob's page reconnects by itself with nothing lost.
  down.start();
  await b.killGateway();
  await bob.getByTestId('offline-banner').waitFor();
  await shot(bob, '08-offline');
  await send(alice, 'Did you get this while you were away?');
  await message(alice, 'Did you get this while you were away?').and(alice.locator('[data-state="confirmed"]')).waitFor();
  await b.startGateway();
  await message(bob, 'Did you get this while you were away?').waitFor();
  await bob.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  down.stop();
  await shot(bob, '09-reconnected');
  assert.equal(await message(bob, 'Did you get this while you were away?').count(), 1, 'shown once');
  await bobCtx.close();
  assert.deepEqual(problems, []);
  passed = true;
});
