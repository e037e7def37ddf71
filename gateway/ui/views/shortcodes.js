// The composer's `:` autocomplete: after a colon and two letters, a list
// of matching emoji shortcodes; ArrowUp/ArrowDown move, Enter or Tab puts
// the emoji in place of what was typed, Escape closes. The composer owns
// the textarea and asks this module first about each key.

import { h } from '../dom.js';
import { shortcodesFor } from '../emoji.js';

/** A colon starting a word, then at least two name characters, at the caret. */
const TYPED = /(?:^|[\s([{])(:([a-z0-9_+-]{2,40}))$/i;

/**
 * @param {HTMLTextAreaElement} input
 * @param {string} listId
 * @param {() => void} changed called after an emoji went in
 */
export function shortcodeSuggest(input, listId, changed) {
  const list = h('ul', { class: 'suggest', id: listId, role: 'listbox', testid: 'emoji-suggestions', 'aria-label': 'Emoji', hidden: true });
  /** @type {{name: string, emoji: string}[]} */
  let options = [];
  let active = 0;
  /** @type {{start: number, end: number}|null} */
  let range = null;

  const close = () => {
    if (list.hidden) return;
    list.hidden = true;
    options = [];
    range = null;
    // The mention list may own the active option; only drop ours.
    if (input.getAttribute('aria-activedescendant')?.startsWith(`${listId}-`)) input.removeAttribute('aria-activedescendant');
  };

  const render = () => {
    list.replaceChildren(
      ...options.map((o, i) =>
        h(
          'li',
          {
            id: `${listId}-${i}`,
            role: 'option',
            class: 'suggest-item',
            testid: 'emoji-suggestion',
            'data-emoji': o.emoji,
            'data-shortcode': o.name,
            'aria-selected': i === active ? 'true' : 'false',
            onmousedown: (/** @type {MouseEvent} */ ev) => {
              // Before the textarea loses focus (and the list closes).
              ev.preventDefault();
              pick(i);
            },
          },
          h('span', { class: 'suggest-emoji', 'aria-hidden': 'true', text: o.emoji }),
          h('span', { class: 'suggest-name', text: `:${o.name}:` }),
        ),
      ),
    );
    list.hidden = false;
    input.setAttribute('aria-activedescendant', `${listId}-${active}`);
  };

  /** Reads what is typed before the caret; opens, updates or closes the list. */
  const update = () => {
    const caret = input.selectionStart ?? 0;
    if (caret !== input.selectionEnd) return close();
    const m = TYPED.exec(input.value.slice(0, caret));
    const found = m ? shortcodesFor(m[2]) : [];
    if (!m || !found.length) return close();
    const sameList = !list.hidden && options.length === found.length && options.every((o, i) => o.name === found[i].name);
    options = found;
    if (!sameList) active = 0;
    range = { start: caret - m[1].length, end: caret };
    render();
  };

  /** @param {number} i */
  const pick = (i) => {
    const o = options[i];
    if (!o || !range) return;
    input.setRangeText(o.emoji, range.start, range.end, 'end');
    close();
    input.focus();
    changed();
  };

  /**
   * Handles a key while the list is open; true when it was the list's.
   * @param {KeyboardEvent} ev
   */
  const onKey = (ev) => {
    if (list.hidden || !options.length || ev.isComposing) return false;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      active = (active + (ev.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length;
      render();
    } else if (ev.key === 'Enter' || ev.key === 'Tab') {
      pick(active);
    } else if (ev.key === 'Escape') {
      close();
      ev.stopPropagation();
    } else {
      return false;
    }
    ev.preventDefault();
    return true;
  };

  return { el: list, update, close, onKey };
}
