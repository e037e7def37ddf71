// What the gateway's markdown leaves as text, made friendlier in the page:
// bare web addresses become links, and `:shortcode:` names become emoji
// (for messages from clients that send them as written). It works on the
// DOM after the sanitized HTML is in: text nodes are split and new nodes
// built, never HTML parsed, so user text cannot become markup. Code and
// existing links are left alone.

import { replaceShortcodeText } from './emoji.js';

/** A web address: http(s) only, up to a space or a character HTML quotes. */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
/** Punctuation that ends a sentence rather than the address. */
const TRAILING = /[.,;:!?'"*_~]+$/;
const SKIP = new Set(['A', 'CODE', 'PRE', 'BUTTON', 'KBD', 'SAMP']);

/**
 * An address as written, trimmed of trailing punctuation (and of a closing
 * bracket it does not open), and its checked URL.
 * @param {string} raw
 * @returns {{text: string, href: string}|null}
 */
function webAddress(raw) {
  let text = raw.replace(TRAILING, '');
  for (const [open, close] of [['(', ')'], ['[', ']']]) {
    while (text.endsWith(close) && text.split(open).length < text.split(close).length) {
      text = text.slice(0, -1).replace(TRAILING, '');
    }
  }
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  // Nothing but the web: the scheme is checked on the parsed URL, as the
  // browser will follow it.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  return { text, href: url.href };
}

/** @param {string} href @param {string} text */
function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  a.rel = 'noopener noreferrer nofollow';
  a.target = '_blank';
  return a;
}

/**
 * The nodes for one run of text: links and emoji in place.
 * @param {string} text
 * @returns {Node[]|null} null when nothing changes
 */
function enrichText(text) {
  /** @type {Node[]} */
  const out = [];
  let last = 0;
  let changed = false;
  for (const m of text.matchAll(URL_RE)) {
    const at = m.index ?? 0;
    const found = webAddress(m[0]);
    if (!found) continue;
    if (at > last) out.push(document.createTextNode(replaceShortcodeText(text.slice(last, at))));
    out.push(link(found.href, found.text));
    last = at + found.text.length;
    changed = true;
  }
  const rest = text.slice(last);
  const replaced = replaceShortcodeText(rest);
  if (!changed && replaced === text) return null;
  if (replaced) out.push(document.createTextNode(replaced));
  return out;
}

/**
 * Links bare addresses and turns shortcodes into emoji inside `root`.
 * @param {Element} root
 */
export function enrich(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let p = node.parentElement; p && p !== root; p = p.parentElement) {
        if (SKIP.has(p.tagName)) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  /** @type {Text[]} */
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(/** @type {Text} */ (n));
  for (const t of texts) {
    const nodes = enrichText(t.data);
    if (nodes) t.replaceWith(...nodes);
  }
  return root;
}
