// Confab's web UI: entry point. Plain ES modules, no build step; every file
// is served by the gateway (gateway/PROTOCOL.md §9.4).

import { Client } from './client.js';
import { renderLogin } from './views/login.js';
import { renderShell } from './views/shell.js';
import { applyTheme } from './themes.js';

const client = new Client();
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {(() => void)|null} */
let unmount = null;
/** @type {boolean|null} */
let signedIn = null;

function mount() {
  const now = !!client.store.me;
  if (now === signedIn) return;
  signedIn = now;
  unmount?.();
  unmount = now ? renderShell(root, client) : renderLogin(root, client);
}

client.store.on('me', mount);
// Each user's own theme (theme.js showed the last user's before paint).
client.store.on('me', () => applyTheme(client.store.me));

// The tab's title counts the unread messages of all rooms, so a tab in the
// background still says there is something to read: "(3) Confab".
const updateTitle = () => {
  let unread = 0;
  for (const r of client.store.rooms.values()) if (!r.invited) unread += r.unread;
  const title = unread > 0 ? `(${unread}) Confab` : 'Confab';
  if (document.title !== title) document.title = title;
};
client.store.on('rooms', updateTitle);
client.store.on('me', updateTitle);

// The skip link focuses the main region without touching the hash route.
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  const target = /** @type {HTMLElement|null} */ (document.querySelector('[data-testid="composer-input"]') ?? document.getElementById('main'));
  target?.focus();
});

// Failures nobody awaited are logged (actions report their own errors).
window.addEventListener('unhandledrejection', (ev) => {
  console.error(ev.reason);
});

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((e) => console.warn('service worker not registered', e));
}

client.start();
