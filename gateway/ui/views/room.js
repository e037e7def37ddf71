// An open room: header, pinned messages, timeline, typing indicator,
// composer and the drag-and-drop target.

import { h, icon, iconButton, replace, toast } from '../dom.js';
import { errText } from '../client.js';
import { joinNames } from '../util.js';
import { avatar, lastSeenText, livePeople, presenceDot, userName } from './common.js';
import { composer } from './composer.js';
import { timelineView } from './timeline.js';
import { settingsDialog, userPickerDialog } from './dialogs.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('../types.js').Item} Item */

/**
 * @param {Ctx} ctx @param {string} room
 * @returns {{room: string, el: HTMLElement, focus: () => void, destroy: () => void}}
 */
export function roomView(ctx, room) {
  const s = ctx.store;
  const c = ctx.client;
  const header = h('header', { class: 'room-header', testid: 'room-header' });
  const pins = h('div', { class: 'pins', testid: 'pins-bar', hidden: true });
  const typing = h('div', { class: 'typing', testid: 'typing-indicator', 'aria-live': 'polite' });
  const drop = h('div', { class: 'drop-zone', testid: 'drop-zone', hidden: true }, icon('attach'), h('span', { text: 'Drop files to share them' }));
  const tl = timelineView(ctx, room);
  const comp = composer(ctx, { room });
  const el = h('section', { class: 'room', testid: 'room-view', 'data-room-id': room, 'aria-labelledby': 'room-title' }, header, pins, tl.el, typing, comp.el, drop);

  // ---- header

  const renderHeader = () => {
    const r = s.rooms.get(room);
    const d = s.details.get(room);
    const name = s.roomName(room);
    const dm = r?.direct_with ?? null;
    const members = d ? d.members.length : r?.members ?? 0;
    const sub = dm
      ? h('p', { class: 'room-topic', testid: 'room-topic', 'data-last-seen-of': dm, text: lastSeenText(ctx, dm) || (s.profiles.get(dm)?.status ?? '') })
      : h('p', { class: 'room-topic', testid: 'room-topic', title: r?.topic ?? '', text: r?.topic || (r?.archived ? 'Archived' : '') });
    replace(
      header,
      iconButton('menu', 'Open room list', { class: 'icon-btn only-narrow', testid: 'sidebar-toggle', 'aria-controls': 'sidebar', onclick: () => ctx.toggleDrawer() }),
      h(
        'div',
        { class: 'room-ident' },
        dm ? h('span', { class: 'dm-avatar' }, avatar(ctx, dm, 'sm'), presenceDot(ctx, dm)) : h('span', { class: 'room-glyph' }, icon(r?.visibility === 'private' ? 'lock' : 'hash')),
        h('div', { class: 'room-titles' }, h('h1', { id: 'room-title', class: 'room-title', testid: 'room-title', text: name }), sub),
      ),
      h(
        'div',
        { class: 'room-actions' },
        r?.archived ? h('span', { class: 'badge', text: 'Archived' }) : null,
        iconButton('search', 'Search in this room', { testid: 'search-button', onclick: () => ctx.openPanel({ kind: 'search', room }) }),
        dm
          ? null
          : h(
              'button',
              { type: 'button', class: 'icon-btn with-count', testid: 'members-button', 'aria-label': `${members} members`, title: 'Members', onclick: () => ctx.openPanel({ kind: 'members', room }) },
              icon('users'),
              h('span', { class: 'count', text: members }),
            ),
        !s.mayInvite(room)
          ? null
          : iconButton('user-plus', 'Invite people', { testid: 'invite-button', onclick: () => userPickerDialog(ctx, 'invite', room) }),
        iconButton('settings', 'Room settings', { testid: 'room-settings-button', onclick: () => settingsDialog(ctx, room) }),
      ),
    );
  };

  // ---- pins

  /** @type {Map<string, Item|null>} pinned items fetched on their own */
  const pinItems = new Map();
  let pinsOpen = false;

  /** @param {string} id @returns {Item|null} */
  const pinItem = (id) => {
    const known = c.findItem(room, id);
    if (known) return known;
    if (!pinItems.has(id) && s.conn.state === 'online') {
      pinItems.set(id, null);
      c.call('history', { room, around: id, limit: 1 })
        .then((/** @type {import('../types.js').Page} */ page) => {
          const it = page.items.find((i) => i.id === id);
          if (it) {
            pinItems.set(id, it);
            renderPins();
          }
        })
        .catch(() => pinItems.delete(id));
    }
    return pinItems.get(id) ?? null;
  };

  const renderPins = () => {
    const d = s.details.get(room);
    const ids = d?.pins ?? [];
    pins.hidden = ids.length === 0;
    if (!ids.length) return pins.replaceChildren();
    const canPin = s.can(room, 'message.pin');
    const rows = ids.map((id) => {
      const it = pinItem(id);
      const text = it ? (it.redacted != null ? 'Message deleted' : (it.edited_body ?? it.body ?? '').slice(0, 160) || 'Attachment') : 'Loading…';
      return h(
        'li',
        { class: 'pin', testid: 'pin-item', 'data-event-id': id },
        icon('pin'),
        it ? userName(ctx, it.author, 'pin-author') : null,
        h('span', { class: 'pin-text', text }),
        h('button', { type: 'button', class: 'link-btn', testid: 'pin-jump', text: 'Jump', onclick: () => c.history.jumpTo(room, id) }),
        canPin
          ? iconButton('close', 'Unpin', {
              testid: 'pin-unpin',
              onclick: () => c.pin(room, id, false).catch((e) => toast(errText(e), { kind: 'error' })),
            })
          : null,
      );
    });
    replace(
      pins,
      h(
        'button',
        { type: 'button', class: 'pins-toggle', 'aria-expanded': String(pinsOpen), onclick: () => ((pinsOpen = !pinsOpen), renderPins()) },
        icon('pin'),
        h('strong', { text: ids.length === 1 ? '1 pinned message' : `${ids.length} pinned messages` }),
      ),
      h('ul', { class: `pin-list ${pinsOpen ? 'open' : ''}` }, pinsOpen ? rows : rows.slice(0, 1)),
    );
  };

  // ---- typing

  const renderTyping = () => {
    const users = s.typingIn(room);
    if (!users.length) {
      typing.replaceChildren();
      typing.classList.remove('active');
      return;
    }
    const names = users.map((u) => s.displayName(u));
    const verb = users.length === 1 ? 'is' : 'are';
    typing.classList.add('active');
    replace(typing, h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', { text: `${joinNames(names)} ${verb} typing…` }));
  };

  // ---- drag and drop

  let dragDepth = 0;
  /** @param {DragEvent} ev */
  const hasFiles = (ev) => !!ev.dataTransfer && Array.from(ev.dataTransfer.types).includes('Files');
  el.addEventListener('dragenter', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    dragDepth++;
    drop.hidden = false;
  });
  el.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'copy';
  });
  el.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) drop.hidden = true;
  });
  el.addEventListener('drop', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    dragDepth = 0;
    drop.hidden = true;
    const files = ev.dataTransfer?.files;
    if (files && files.length) comp.addFiles(files);
  });

  const offs = [
    s.on('rooms', () => renderHeader()),
    s.on('detail', (/** @type {string} */ r) => {
      if (r !== room) return;
      renderHeader();
      renderPins();
    }),
    s.on('timeline', (/** @type {string} */ r) => r === room && !pins.hidden && renderPins()),
    s.on('typing', (/** @type {string} */ r) => r === room && renderTyping()),
    s.on('profile', () => renderTyping()),
    s.on('invite-dialog', (/** @type {string} */ r) => r === room && userPickerDialog(ctx, 'invite', room)),
    livePeople(ctx, header),
    livePeople(ctx, pins),
  ];
  const typingTicker = setInterval(renderTyping, 1000);

  renderHeader();
  renderPins();
  renderTyping();

  return {
    room,
    el,
    focus: () => comp.focus(),
    destroy: () => {
      for (const off of offs) off();
      clearInterval(typingTicker);
      tl.destroy();
      comp.destroy();
    },
  };
}
