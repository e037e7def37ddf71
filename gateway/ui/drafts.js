// Unsent composer text that outlives a reload: one entry in localStorage
// per user and room (or thread). The user id names the node too
// (`@alice:<node id>`), so two accounts, or two nodes' accounts, never see
// each other's drafts. Only what the composer needs to carry on is kept:
// the text, the people picked from the @ list, the message replied to.

const PREFIX = 'confab.draft|';

/**
 * @typedef {object} SavedDraft
 * @property {string} text
 * @property {string[]} mentions
 * @property {string|null} replyTo
 */

/** @param {string} user @param {string} key room, or `room|root` for a thread */
function storageKey(user, key) {
  return `${PREFIX}${user}|${key}`;
}

/**
 * @param {string|null} user @param {string} key
 * @returns {SavedDraft|null}
 */
export function loadDraft(user, key) {
  if (!user) return null;
  try {
    const v = JSON.parse(localStorage.getItem(storageKey(user, key)) ?? 'null');
    if (!v || typeof v.text !== 'string') return null;
    return {
      text: v.text,
      mentions: Array.isArray(v.mentions) ? v.mentions.filter((/** @type {unknown} */ m) => typeof m === 'string') : [],
      replyTo: typeof v.replyTo === 'string' ? v.replyTo : null,
    };
  } catch {
    return null;
  }
}

/**
 * Saves at once (a reload can come any moment); an empty draft is removed.
 * @param {string|null} user @param {string} key @param {SavedDraft} draft
 */
export function saveDraft(user, key, draft) {
  if (!user) return;
  try {
    if (!draft.text && !draft.replyTo) localStorage.removeItem(storageKey(user, key));
    else localStorage.setItem(storageKey(user, key), JSON.stringify(draft));
  } catch {
    /* storage full or disabled: the draft lives as long as the page */
  }
}

/** Forgets every draft of a user (on sign-out). @param {string} user */
export function clearDrafts(user) {
  const mine = `${PREFIX}${user}|`;
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (k && k.startsWith(mine)) localStorage.removeItem(k);
  }
}
