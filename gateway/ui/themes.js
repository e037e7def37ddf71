// The theme choice, kept per user in localStorage (the protocol has no
// per-user settings store): "light", "dark" or "system" (follow the
// browser's prefers-color-scheme). theme.js applies it at boot, before
// first paint; this module changes it and re-applies it when the signed-in
// user changes. The key format is shared with theme.js.

/** @typedef {'light'|'dark'|'system'} Theme */

/** @param {string} user */
const key = (user) => `confab.theme|${user}`;

/** @param {string|null} user @returns {Theme} */
export function getTheme(user) {
  const v = user ? localStorage.getItem(key(user)) : null;
  return v === 'light' || v === 'dark' ? v : 'system';
}

/** Shows `user`'s theme (the system's when nobody is signed in). @param {string|null} user */
export function applyTheme(user) {
  const t = getTheme(user);
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

/** @param {string} user @param {Theme} theme */
export function setTheme(user, theme) {
  if (theme === 'system') localStorage.removeItem(key(user));
  else localStorage.setItem(key(user), theme);
  applyTheme(user);
}
