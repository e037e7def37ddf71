// Pieces shared by the views: the view context, people (names, avatars,
// presence) that update in place, and keyed list reconciliation.

import { h } from '../dom.js';
import { fmtAgo, hashIndex, localpart } from '../util.js';

/** @typedef {import('../client.js').Client} Client */
/** @typedef {import('../state.js').Store} Store */

/**
 * @typedef {{kind: 'thread', room: string, root: string}
 *   | {kind: 'members', room: string}
 *   | {kind: 'search', room: string|null}
 *   | {kind: 'mentions'}} PanelSpec
 */

/**
 * @typedef {object} Draft
 * @property {string} text
 * @property {Set<string>} mentions
 * @property {string|null} replyTo
 */

/**
 * What every view gets.
 * @typedef {object} Ctx
 * @property {Client} client
 * @property {Store} store
 * @property {(panel: PanelSpec|null) => void} openPanel
 * @property {() => PanelSpec|null} panel
 * @property {(open?: boolean) => void} toggleDrawer
 * @property {(room: string|null) => void} navigate
 * @property {Map<string, Draft>} drafts key: room, or `room|root` for a thread
 * @property {(room: string) => void} focusComposer
 */

/**
 * A person's name; updated in place when their profile arrives.
 * @param {Ctx} ctx @param {string} user @param {string} [cls]
 */
export function userName(ctx, user, cls = 'uname') {
  ctx.client.ensureProfile(user);
  return h('span', { class: cls, 'data-name-of': user, title: user, text: ctx.store.displayName(user) });
}

/**
 * An avatar: the uploaded picture, or initials on a colour picked from the id.
 * @param {Ctx} ctx @param {string} user @param {'sm'|'md'|'lg'} [size]
 */
export function avatar(ctx, user, size = 'md') {
  const el = h('span', { class: `avatar avatar-${size} avatar-c${hashIndex(user)}`, 'data-avatar-of': user, 'aria-hidden': 'true' });
  fillAvatar(ctx, el, user);
  return el;
}

/** @param {Ctx} ctx @param {HTMLElement} el @param {string} user */
function fillAvatar(ctx, el, user) {
  const p = ctx.store.profiles.get(user);
  const name = ctx.store.displayName(user);
  const initials = initialsOf(name);
  el.replaceChildren(initials);
  if (p && p.avatar) {
    const blob = p.avatar;
    ctx.client
      .blobUrl(blob)
      .then((url) => {
        if (ctx.store.profiles.get(user)?.avatar !== blob) return;
        const img = h('img', { alt: '', src: url, decoding: 'async' });
        el.replaceChildren(img);
      })
      .catch(() => {});
  }
}

/** @param {string} name */
export function initialsOf(name) {
  const parts = name.replace(/[^\p{L}\p{N} ]/gu, ' ').trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  if (parts.length === 1) return [...parts[0]].slice(0, 2).join('').toUpperCase();
  return ([...parts[0]][0] + [...parts[parts.length - 1]][0]).toUpperCase();
}

/** A presence dot. @param {Ctx} ctx @param {string} user */
export function presenceDot(ctx, user) {
  const el = h('span', { class: 'presence', 'data-presence-of': user, testid: 'presence-dot', role: 'img' });
  fillPresence(ctx, el, user);
  return el;
}

/** @param {Ctx} ctx @param {HTMLElement} el @param {string} user */
function fillPresence(ctx, el, user) {
  const p = ctx.store.presence.get(user)?.presence ?? 'offline';
  el.dataset.presence = p;
  el.setAttribute('aria-label', p === 'online' ? 'Online' : p === 'away' ? 'Away' : 'Offline');
}

/** "Online", "Away", "Last seen 5 minutes ago". @param {Ctx} ctx @param {string} user */
export function lastSeenText(ctx, user) {
  const p = ctx.store.presence.get(user);
  if (!p) return '';
  if (p.presence === 'online') return 'Online';
  if (p.presence === 'away') return p.last_active ? `Away · active ${fmtAgo(p.last_active)}` : 'Away';
  return p.last_active ? `Last seen ${fmtAgo(p.last_active)}` : 'Offline';
}

/**
 * Keeps names, avatars and presence dots on the page current. Returns the
 * cleanup function.
 * @param {Ctx} ctx @param {HTMLElement} root
 */
export function livePeople(ctx, root) {
  const offProfile = ctx.store.on('profile', (/** @type {string} */ user) => {
    const sel = CSS.escape(user);
    for (const el of root.querySelectorAll(`[data-name-of="${sel}"]`)) el.textContent = ctx.store.displayName(user);
    for (const el of root.querySelectorAll(`[data-avatar-of="${sel}"]`)) fillAvatar(ctx, /** @type {HTMLElement} */ (el), user);
  });
  const offPresence = ctx.store.on('presence', (/** @type {string} */ user) => {
    const sel = CSS.escape(user);
    for (const el of root.querySelectorAll(`[data-presence-of="${sel}"]`)) fillPresence(ctx, /** @type {HTMLElement} */ (el), user);
    for (const el of root.querySelectorAll(`[data-last-seen-of="${sel}"]`)) el.textContent = lastSeenText(ctx, user);
  });
  return () => {
    offProfile();
    offPresence();
  };
}

/**
 * @typedef {object} Entry
 * @property {string} key
 * @property {unknown[]} deps re-render when any of these changed (by identity)
 * @property {() => HTMLElement} render
 */

/** @type {WeakMap<Element, {key: string, deps: unknown[]}>} */
const entryInfo = new WeakMap();

/**
 * Makes `container`'s children match `entries`, reusing elements whose key
 * and deps are unchanged, so focus and loaded images survive updates.
 * Children without an entry key (markers) are left before the entries.
 * @param {HTMLElement} container @param {Entry[]} entries @param {Node|null} [before] insert entries before this node
 */
export function reconcile(container, entries, before = null) {
  /** @type {Map<string, HTMLElement>} */
  const existing = new Map();
  for (const el of Array.from(container.children)) {
    const info = entryInfo.get(el);
    if (info) existing.set(info.key, /** @type {HTMLElement} */ (el));
  }
  const wanted = new Set(entries.map((e) => e.key));
  for (const [key, el] of existing) {
    if (!wanted.has(key)) {
      el.remove();
      existing.delete(key);
    }
  }
  /** @type {ChildNode|null} */
  let cursor = firstEntry(container);
  for (const e of entries) {
    let el = existing.get(e.key);
    const info = el ? entryInfo.get(el) : undefined;
    if (el && info && !sameDeps(info.deps, e.deps)) {
      const fresh = e.render();
      const hadFocus = el.contains(document.activeElement);
      el.replaceWith(fresh);
      if (cursor === el) cursor = fresh;
      el = fresh;
      entryInfo.set(el, { key: e.key, deps: e.deps });
      if (hadFocus) el.focus({ preventScroll: true });
    }
    if (!el) {
      el = e.render();
      entryInfo.set(el, { key: e.key, deps: e.deps });
    }
    if (cursor === el) {
      cursor = nextEntry(el);
    } else {
      container.insertBefore(el, cursor ?? before);
    }
  }
}

/** @param {HTMLElement} container */
function firstEntry(container) {
  for (const el of Array.from(container.children)) if (entryInfo.has(el)) return el;
  return null;
}

/** @param {Element} el */
function nextEntry(el) {
  let n = el.nextElementSibling;
  while (n && !entryInfo.has(n)) n = n.nextElementSibling;
  return n;
}

/** @param {unknown[]} a @param {unknown[]} b */
function sameDeps(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The key of an entry element, if it is one. @param {Element} el */
export function entryKey(el) {
  return entryInfo.get(el)?.key ?? null;
}

/** @param {string} user */
export function shortUser(user) {
  return `@${localpart(user)}`;
}
