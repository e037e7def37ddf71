// Small pure helpers: ids, ordering, formatting, keys.

/** @typedef {import('./types.js').Item} Item */

/** @param {string} user @returns {string} */
export function localpart(user) {
  const colon = user.indexOf(':');
  return user.startsWith('@') && colon > 0 ? user.slice(1, colon) : user;
}

/** @param {string} user @returns {string} */
export function nodeOf(user) {
  const colon = user.indexOf(':');
  return colon > 0 ? user.slice(colon + 1) : '';
}

const USER_RE = /^@[a-z0-9][a-z0-9._-]{0,31}:[a-z2-7]{52}$/;
const LOCALPART_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** @param {string} s */
export function isUserId(s) {
  return USER_RE.test(s);
}

/** @param {string} s */
export function isLocalpart(s) {
  return LOCALPART_RE.test(s);
}

/** A short form of a node id for people: its first 8 characters. */
/** @param {string} node */
export function shortNode(node) {
  return node.length > 8 ? `${node.slice(0, 8)}…` : node;
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** @type {Map<string, number>} */
const B32_RANK = new Map([...B32].map((c, i) => [c, i]));

/**
 * Compares two ids by their underlying bytes (base32 digit order).
 * @param {string} a @param {string} b
 */
export function compareIds(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 1; i < n; i++) {
    const x = B32_RANK.get(a[i]) ?? -1;
    const y = B32_RANK.get(b[i]) ?? -1;
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}

/**
 * Timeline order: (depth, id). Items without depth sort by time.
 * @param {Item} a @param {Item} b
 */
export function compareItems(a, b) {
  if (a.depth != null && b.depth != null) {
    if (a.depth !== b.depth) return a.depth - b.depth;
    return compareIds(a.id, b.id);
  }
  if (a.ts !== b.ts) return a.ts - b.ts;
  return compareIds(a.id, b.id);
}

/** 32 random hex digits (works without a secure context). */
export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** @param {string} s */
export function byteLength(s) {
  return new TextEncoder().encode(s).length;
}

/** A stable small number for a string (avatar colours). @param {string} s */
export function hashIndex(s, n = 8) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % n;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const rel = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/**
 * Runs `fn` at most once per `ms`, `ms` after the first call of a burst:
 * unlike a debounce, a steady stream of calls cannot postpone it forever.
 * @template {(...args: any[]) => void} F
 * @param {F} fn @param {number} ms
 * @returns {() => void}
 */
export function throttle(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let t;
  return () => {
    if (t !== undefined) return;
    t = setTimeout(() => {
      t = undefined;
      fn();
    }, ms);
  };
}

/** @param {number} ms */
export function fmtTime(ms) {
  return timeFmt.format(ms);
}

/** @param {number} ms */
export function fmtFull(ms) {
  return fullFmt.format(ms);
}

/** @param {number} ms */
export function fmtShortDate(ms) {
  return sameDay(ms, Date.now()) ? timeFmt.format(ms) : shortDateFmt.format(ms);
}

/** @param {number} a @param {number} b */
export function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

/** @param {number} ms */
export function fmtDay(ms) {
  const now = Date.now();
  if (sameDay(ms, now)) return 'Today';
  if (sameDay(ms, now - 86400000)) return 'Yesterday';
  return new Date(ms).getFullYear() === new Date(now).getFullYear() ? dayFmt.format(ms) : dayYearFmt.format(ms);
}

/** "5 minutes ago", "yesterday". @param {number} ms */
export function fmtAgo(ms, now = Date.now()) {
  const s = Math.round((ms - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return 'just now';
  if (abs < 3600) return rel.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return rel.format(Math.round(s / 3600), 'hour');
  if (abs < 86400 * 30) return rel.format(Math.round(s / 86400), 'day');
  return dayYearFmt.format(ms);
}

/** @param {number} bytes */
export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(1)} GB`;
}

/** "Alice", "Alice and Bob", "Alice, Bob and 3 others". @param {string[]} names */
export function joinNames(names, max = 3) {
  if (names.length === 0) return '';
  if (names.length === 1) return names[0];
  if (names.length <= max) return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  const rest = names.length - (max - 1);
  return `${names.slice(0, max - 1).join(', ')} and ${rest} others`;
}

/**
 * @template {(...args: any[]) => void} F
 * @param {F} fn @param {number} ms
 * @returns {F & {cancel: () => void}}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let t;
  const d = /** @type {F & {cancel: () => void}} */ (
    /** @type {unknown} */ (
      /** @param {any[]} args */
      (...args) => {
        clearTimeout(t);
        t = setTimeout(() => fn(...args), ms);
      }
    )
  );
  d.cancel = () => clearTimeout(t);
  return d;
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Human text for an error code (PROTOCOL.md §7). @param {{code: string, message?: string, retry_after_ms?: number, until?: number}} e */
export function errorText(e) {
  switch (e.code) {
    case 'offline':
    case 'disconnected':
      return "You're offline. Try again when the connection is back.";
    case 'timeout':
      return 'The server took too long to answer. Try again.';
    case 'rate_limited':
      return `Too many requests. Try again in ${Math.ceil((e.retry_after_ms ?? 1000) / 1000)} s.`;
    case 'muted':
      return e.until ? `You are muted until ${fmtShortDate(e.until)}.` : 'You are muted in this room.';
    case 'archived':
      return 'This room is archived and read-only.';
    case 'unavailable':
      return e.message || 'The server is unavailable right now. Try again.';
    case 'internal':
      return 'Something went wrong on the server. Try again.';
    case 'unknown_request':
      return 'This server does not support that yet.';
    case 'too_large':
      return e.message || 'That is too large.';
    default:
      return e.message || e.code.replace(/_/g, ' ');
  }
}
