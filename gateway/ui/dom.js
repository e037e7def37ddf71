// DOM helpers. Every piece of user-provided text enters the page through
// text nodes or attribute values; the only HTML ever parsed is the server's
// sanitized `html` fields, and only through `setServerHtml`.

/**
 * @typedef {Node|string|number|null|undefined|false} Child
 * @typedef {Child|Child[]} Children
 */

/**
 * Creates an element. `attrs` keys: `class`, `testid` (data-testid), `text`
 * (textContent), `on<event>` (listeners), boolean or string attributes,
 * `data-*` and `aria-*`. `null`, `undefined` and `false` values are skipped.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [attrs]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'testid') el.setAttribute('data-testid', String(v));
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) /** @type {HTMLInputElement} */ (el).value = String(v);
    else if (k === 'checked' && 'checked' in el) /** @type {HTMLInputElement} */ (el).checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {Children[]} children */
export function append(el, children) {
  for (const c of children.flat(2)) {
    if (c == null || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Replaces all children. @param {Element} el @param {...Children} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Inserts server-sanitized HTML (PROTOCOL.md §4.7: rendered from markdown
 * and cleaned by the gateway). Nothing else may be inserted as HTML.
 * @param {Element} el @param {string} html
 */
export function setServerHtml(el, html) {
  el.innerHTML = html;
  for (const a of el.querySelectorAll('a[href]')) {
    a.setAttribute('rel', 'noopener noreferrer nofollow');
    a.setAttribute('target', '_blank');
  }
}

/** An inline SVG icon from the sprite in index.html. @param {string} name @param {string} [label] */
export function icon(name, label) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('viewBox', '0 0 24 24');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** A button with an icon and an accessible name. @param {string} name @param {string} label @param {Record<string, any>} [attrs] */
export function iconButton(name, label, attrs = {}) {
  return h('button', { type: 'button', class: 'icon-btn', 'aria-label': label, title: label, ...attrs }, icon(name));
}

/** A visually hidden label text. @param {string} text */
export function srOnly(text) {
  return h('span', { class: 'sr-only', text });
}

let liveRegion = /** @type {HTMLElement|null} */ (null);

/** Announces text to screen readers. @param {string} text */
export function announce(text) {
  if (!liveRegion) {
    liveRegion = h('div', { class: 'sr-only', 'aria-live': 'polite', role: 'status' });
    document.body.append(liveRegion);
  }
  const r = liveRegion;
  r.textContent = '';
  setTimeout(() => {
    r.textContent = text;
  }, 50);
}

/** @type {HTMLElement|null} */
let toastHost = null;

/**
 * Shows a short notice.
 * @param {string} text
 * @param {{kind?: 'info'|'error', action?: {label: string, run: () => void}, ms?: number}} [opts]
 */
export function toast(text, opts = {}) {
  if (!toastHost) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastHost);
  }
  const close = () => t.remove();
  const t = h(
    'div',
    { class: `toast ${opts.kind === 'error' ? 'toast-error' : ''}`, testid: 'toast' },
    h('span', { text }),
    opts.action &&
      h('button', {
        type: 'button',
        class: 'link-btn',
        text: opts.action.label,
        onclick: () => {
          close();
          opts.action?.run();
        },
      }),
    h('button', { type: 'button', class: 'icon-btn small', 'aria-label': 'Dismiss', onclick: close }, icon('close')),
  );
  toastHost.append(t);
  setTimeout(close, opts.ms ?? (opts.kind === 'error' ? 8000 : 4000));
}

/**
 * Opens a modal dialog built by `build`; resolves when it closes. Escape,
 * the close button and `close()` end it; focus returns to the opener.
 * @template T
 * @param {{title: string, testid: string, wide?: boolean, attrs?: Record<string, any>}} opts
 * @param {(close: (value?: T) => void, dialog: HTMLDialogElement) => Children} build
 * @returns {Promise<T|undefined>}
 */
export function openDialog(opts, build) {
  const opener = /** @type {HTMLElement|null} */ (document.activeElement);
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const dialog = h('dialog', {
    class: `dialog ${opts.wide ? 'dialog-wide' : ''}`,
    testid: opts.testid,
    'aria-labelledby': titleId,
    ...opts.attrs,
  });
  /** @type {T|undefined} */
  let result;
  return new Promise((resolve) => {
    /** @param {T} [value] */
    const close = (value) => {
      result = value;
      if (dialog.open) dialog.close();
    };
    dialog.addEventListener('close', () => {
      // Focus goes back to what opened the dialog, unless the dialog's
      // action moved it on (a room it opened focused its composer).
      const moved = document.activeElement && document.activeElement !== document.body && !dialog.contains(document.activeElement);
      dialog.remove();
      if (opener && opener.isConnected && !moved) opener.focus();
      resolve(result);
    });
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog) close();
    });
    append(dialog, [
      h(
        'div',
        { class: 'dialog-head' },
        h('h2', { id: titleId, text: opts.title }),
        iconButton('close', 'Close', { testid: 'dialog-close', onclick: () => close() }),
      ),
      h('div', { class: 'dialog-body' }, build(close, dialog)),
    ]);
    document.body.append(dialog);
    dialog.showModal();
    const first = /** @type {HTMLElement|null} */ (dialog.querySelector('[autofocus], input, textarea, select'));
    first?.focus();
  });
}

/**
 * Asks for confirmation.
 * @param {string} title @param {string} text @param {string} ok @param {boolean} [danger]
 * @returns {Promise<boolean>}
 */
export async function confirmDialog(title, text, ok, danger = false) {
  const r = await openDialog({ title, testid: 'confirm-dialog' }, (close) => [
    h('p', { text }),
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn', testid: 'confirm-cancel', text: 'Cancel', onclick: () => close(false) }),
      h('button', {
        type: 'button',
        class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`,
        testid: 'confirm-ok',
        text: ok,
        autofocus: true,
        onclick: () => close(true),
      }),
    ),
  ]);
  return r === true;
}

/**
 * A small menu anchored to a button; arrow keys move, Escape closes.
 * @param {HTMLElement} anchor
 * @param {{label: string, testid: string, danger?: boolean, run: () => void}[]} items
 * @param {string} testid
 */
export function openMenu(anchor, items, testid) {
  closeMenus();
  const menu = h('div', { class: 'menu', role: 'menu', testid });
  const buttons = items.map((it) =>
    h('button', {
      type: 'button',
      role: 'menuitem',
      class: `menu-item ${it.danger ? 'danger' : ''}`,
      testid: it.testid,
      text: it.label,
      tabindex: -1,
      onclick: () => {
        done();
        it.run();
      },
    }),
  );
  append(menu, buttons);
  const done = () => {
    menu.remove();
    document.removeEventListener('pointerdown', outside, true);
    anchor.setAttribute('aria-expanded', 'false');
  };
  /** @param {Event} ev */
  const outside = (ev) => {
    if (!menu.contains(/** @type {Node} */ (ev.target)) && ev.target !== anchor) done();
  };
  menu.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (ev.key === 'ArrowDown') buttons[(i + 1) % buttons.length].focus();
    else if (ev.key === 'ArrowUp') buttons[(i - 1 + buttons.length) % buttons.length].focus();
    else if (ev.key === 'Home') buttons[0].focus();
    else if (ev.key === 'End') buttons[buttons.length - 1].focus();
    else if (ev.key === 'Escape' || ev.key === 'Tab') {
      done();
      if (ev.key === 'Escape') anchor.focus();
    } else return;
    ev.preventDefault();
    ev.stopPropagation();
  });
  document.body.append(menu);
  placeNear(menu, anchor);
  anchor.setAttribute('aria-expanded', 'true');
  document.addEventListener('pointerdown', outside, true);
  buttons[0]?.focus();
  return done;
}

export function closeMenus() {
  for (const m of document.querySelectorAll('.menu')) m.remove();
}

/**
 * Positions a floating element next to an anchor, inside the viewport.
 * Positions are computed numbers, never user data.
 * @param {HTMLElement} el @param {HTMLElement} anchor
 */
export function placeNear(el, anchor) {
  const r = anchor.getBoundingClientRect();
  el.classList.add('floating');
  const w = el.offsetWidth;
  const hgt = el.offsetHeight;
  let left = Math.min(window.innerWidth - w - 8, Math.max(8, r.right - w));
  let top = r.bottom + 4;
  if (top + hgt > window.innerHeight - 8) top = Math.max(8, r.top - hgt - 4);
  if (left < 8) left = 8;
  el.style.left = `${Math.round(left)}px`;
  el.style.top = `${Math.round(top)}px`;
}

/** Sets or clears a boolean attribute. @param {Element} el @param {string} name @param {boolean} on */
export function toggleAttr(el, name, on) {
  if (on) el.setAttribute(name, '');
  else el.removeAttribute(name);
}
