// The emoji picker: a small modal next to its button, with search and a
// grid navigable by arrow keys.

import { h, placeNear } from '../dom.js';
import { EMOJI } from '../emoji.js';

const COLS = 8;
const RECENT_KEY = 'confab.recentEmoji';

/** @returns {string[]} */
function recent() {
  try {
    const r = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(r) ? r.filter((x) => typeof x === 'string').slice(0, COLS) : [];
  } catch {
    return [];
  }
}

/** @param {string} e */
function remember(e) {
  const r = [e, ...recent().filter((x) => x !== e)].slice(0, COLS);
  localStorage.setItem(RECENT_KEY, JSON.stringify(r));
}

/**
 * Opens the picker; resolves with the chosen emoji or null.
 * @param {HTMLElement} anchor
 * @returns {Promise<string|null>}
 */
export function pickEmoji(anchor) {
  return new Promise((resolve) => {
    /** @type {string|null} */
    let chosen = null;
    const dialog = h('dialog', { class: 'picker', testid: 'emoji-picker', 'aria-label': 'Choose a reaction' });
    const search = h('input', { type: 'search', class: 'picker-search', testid: 'emoji-search', placeholder: 'Search emoji', 'aria-label': 'Search emoji', autocomplete: 'off' });
    // A group of buttons with arrow-key movement: a grid role would need
    // rows and cells, which buttons in a wrapping flow are not.
    const grid = h('div', { class: 'picker-grid', role: 'group', 'aria-label': 'Emoji' });
    /** @type {HTMLButtonElement[]} */
    let buttons = [];
    const render = () => {
      const q = search.value.trim().toLowerCase();
      const rec = q ? [] : recent();
      const list = EMOJI.filter(([e, words]) => !q || words.includes(q) || e === q)
        .map(([e]) => e)
        .filter((e) => !rec.includes(e));
      const all = [...rec, ...list];
      buttons = all.map((e, i) =>
        h('button', {
          type: 'button',
          class: 'picker-emoji',
          testid: 'emoji-option',
          'data-emoji': e,
          tabindex: i === 0 ? 0 : -1,
          'aria-label': EMOJI.find(([x]) => x === e)?.[1].split(' ')[0] ?? e,
          text: e,
          onclick: () => choose(e),
        }),
      );
      grid.replaceChildren(...buttons);
      if (!buttons.length) grid.append(h('p', { class: 'muted small', text: 'No emoji found' }));
    };
    /** @param {string} e */
    const choose = (e) => {
      chosen = e;
      remember(e);
      dialog.close();
    };
    search.addEventListener('input', render);
    search.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown' && buttons[0]) {
        ev.preventDefault();
        buttons[0].focus();
      } else if (ev.key === 'Enter' && buttons[0]) {
        ev.preventDefault();
        choose(buttons[0].textContent ?? '');
      }
    });
    grid.addEventListener('keydown', (ev) => {
      const i = buttons.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
      if (i < 0) return;
      /** @type {number|null} */
      let next = null;
      if (ev.key === 'ArrowRight') next = i + 1;
      else if (ev.key === 'ArrowLeft') next = i - 1;
      else if (ev.key === 'ArrowDown') next = i + COLS;
      else if (ev.key === 'ArrowUp') next = i - COLS < 0 ? -1 : i - COLS;
      else if (ev.key === 'Home') next = 0;
      else if (ev.key === 'End') next = buttons.length - 1;
      if (next === null) return;
      ev.preventDefault();
      if (next < 0) {
        search.focus();
        return;
      }
      next = Math.min(buttons.length - 1, next);
      buttons[i].tabIndex = -1;
      buttons[next].tabIndex = 0;
      buttons[next].focus();
    });
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (anchor.isConnected) anchor.focus();
      resolve(chosen);
    });
    dialog.append(search, grid);
    render();
    document.body.append(dialog);
    dialog.showModal();
    placeNear(dialog, anchor);
    search.focus();
  });
}
