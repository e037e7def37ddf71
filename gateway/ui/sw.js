// Confab's service worker: keeps the app shell so the page opens offline
// (the page then shows the rooms and messages it kept in IndexedDB, and its
// outbox sends queued messages when the socket is back).
//
// Shell files: network first, so a connected browser always runs the
// gateway's current UI; the cache answers only when the network cannot.
// Nothing else is cached: not the API, blobs (private, token-protected),
// the WebSocket, health or metrics.

/// <reference lib="webworker" />

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

const CACHE = 'confab-shell-v1';
const SHELL = [
  '/',
  '/index.html',
  '/styles.css',
  '/app.js',
  '/client.js',
  '/errors.js',
  '/history.js',
  '/notify.js',
  '/outbox.js',
  '/protocol.js',
  '/rich.js',
  '/session.js',
  '/state.js',
  '/cache.js',
  '/files.js',
  '/dom.js',
  '/drafts.js',
  '/util.js',
  '/types.js',
  '/markdown.js',
  '/theme.js',
  '/themes.js',
  '/emoji.js',
  '/views/common.js',
  '/views/composer.js',
  '/views/dialogs.js',
  '/views/login.js',
  '/views/message.js',
  '/views/panels.js',
  '/views/picker.js',
  '/views/room.js',
  '/views/shell.js',
  '/views/shortcodes.js',
  '/views/sidebar.js',
  '/views/timeline.js',
  '/manifest.webmanifest',
  '/icon.svg',
];
const NETWORK_TIMEOUT_MS = 4000;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' }))))
      .catch(() => {
        /* a partial shell is still better than none; fetches fill it */
      })
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('confab-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

/** @param {URL} url */
function isShell(url) {
  if (url.origin !== sw.location.origin) return false;
  const p = url.pathname;
  if (p.startsWith('/api/') || p === '/ws' || p.startsWith('/health') || p === '/metrics') return false;
  return p === '/' || SHELL.includes(p);
}

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  const navigation = req.mode === 'navigate' && url.origin === sw.location.origin && url.pathname === '/';
  if (!navigation && !isShell(url)) return;
  event.respondWith(networkFirst(req, navigation ? '/' : url.pathname));
});

/**
 * @param {Request} req @param {string} key
 * @returns {Promise<Response>}
 */
async function networkFirst(req, key) {
  const cache = await caches.open(CACHE);
  try {
    const res = await withTimeout(fetch(req), NETWORK_TIMEOUT_MS);
    if (res.ok && res.type === 'basic') cache.put(key, res.clone()).catch(() => {});
    return res;
  } catch {
    const hit = (await cache.match(key)) ?? (key === '/' ? await cache.match('/index.html') : undefined);
    if (hit) return hit;
    return new Response('Confab is offline and this file is not cached yet.', { status: 503, headers: { 'Content-Type': 'text/plain' } });
  }
}

/**
 * @template T
 * @param {Promise<T>} p @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout(p, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
