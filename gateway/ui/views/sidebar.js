// The room navigation: the user's card, actions, invitations, rooms and
// direct messages with unread and mention badges.

import { h, icon, iconButton, srOnly, toast } from '../dom.js';
import { errText } from '../client.js';
import { avatar, livePeople, presenceDot, userName } from './common.js';
import { browseDialog, createRoomDialog, profileDialog, userPickerDialog } from './dialogs.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('../types.js').RoomSummary} RoomSummary */

/**
 * @param {Ctx} ctx
 * @returns {{el: HTMLElement, destroy: () => void}}
 */
export function sidebar(ctx) {
  const s = ctx.store;
  const c = ctx.client;
  const me = h('div', { class: 'me-card', testid: 'me-card' });
  const brand = h('span', { class: 'brand-name', text: s.hello?.node_name || 'Confab' });
  const lists = h('div', { class: 'room-lists', testid: 'room-list' });
  const nav = h(
    'nav',
    { class: 'sidebar', id: 'sidebar', testid: 'sidebar', 'aria-label': 'Rooms' },
    h(
      'div',
      { class: 'sidebar-head' },
      h('div', { class: 'brand' }, h('img', { src: '/icon.svg', alt: '', width: 24, height: 24 }), brand),
      iconButton('close', 'Close room list', { class: 'icon-btn only-narrow', onclick: () => ctx.toggleDrawer(false) }),
    ),
    me,
    h(
      'div',
      { class: 'sidebar-actions' },
      action('edit', 'New message', 'new-dm-button', () => userPickerDialog(ctx, 'dm', null)),
      action('plus', 'Create room', 'create-room-button', () => createRoomDialog(ctx)),
      action('compass', 'Browse rooms', 'browse-rooms-button', () => browseDialog(ctx)),
      action('at', 'Mentions', 'mentions-button', () => ctx.openPanel({ kind: 'mentions' })),
      action('search', 'Search all rooms', 'search-all-button', () => ctx.openPanel({ kind: 'search', room: null })),
    ),
    lists,
  );

  const renderMe = () => {
    const user = s.me;
    if (!user) return me.replaceChildren();
    const p = s.profiles.get(user);
    me.replaceChildren(
      h(
        'button',
        { type: 'button', class: 'me-btn', testid: 'profile-button', title: 'Your profile and settings', onclick: () => profileDialog(ctx) },
        h('span', { class: 'dm-avatar' }, avatar(ctx, user, 'md'), presenceDot(ctx, user)),
        h('span', { class: 'me-text' }, userName(ctx, user, 'me-name'), h('span', { class: 'me-status', text: p?.status || 'Set a status' }), h('span', { class: 'sr-only', text: ' — profile and settings' })),
        icon('settings'),
      ),
    );
  };

  const renderLists = () => {
    const focused = /** @type {HTMLElement|null} */ (document.activeElement);
    const focusKey = focused && lists.contains(focused) ? `${focused.dataset.testid}|${focused.closest('[data-room-id]')?.getAttribute('data-room-id')}` : null;
    const all = [...s.rooms.values()];
    const invites = all.filter((r) => r.invited);
    const channels = all.filter((r) => !r.invited && !r.direct_with).sort((a, b) => s.roomName(a.room).localeCompare(s.roomName(b.room)));
    const dms = all.filter((r) => !r.invited && r.direct_with).sort((a, b) => b.last_ts - a.last_ts);
    const sections = [];
    if (invites.length) {
      sections.push(
        section(
          'Invitations',
          invites.map((r) =>
            h(
              'li',
              { class: 'invite', testid: 'invite-item', 'data-room-id': r.room },
              h('a', { href: `#/room/${encodeURIComponent(r.room)}`, class: 'invite-name' }, icon(r.direct_with ? 'at' : r.visibility === 'private' ? 'lock' : 'hash'), h('span', { text: s.roomName(r.room) })),
              h(
                'div',
                { class: 'invite-actions' },
                h('button', {
                  type: 'button',
                  class: 'btn btn-primary btn-small',
                  testid: 'invite-accept',
                  text: 'Accept',
                  onclick: async () => {
                    try {
                      await c.joinRoom(r.room);
                      ctx.navigate(r.room);
                    } catch (e) {
                      toast(errText(e), { kind: 'error' });
                    }
                  },
                }),
                h('button', {
                  type: 'button',
                  class: 'btn btn-small',
                  testid: 'invite-decline',
                  text: 'Decline',
                  onclick: () => c.leaveRoom(r.room).catch((e) => toast(errText(e), { kind: 'error' })),
                }),
              ),
            ),
          ),
        ),
      );
    }
    sections.push(section('Rooms', channels.map((r) => roomItem(r)), channels.length ? null : emptyNote('No rooms yet. Create one or browse public rooms.')));
    sections.push(section('Direct messages', dms.map((r) => roomItem(r)), dms.length ? null : emptyNote('Start a conversation with “New message”.')));
    if (!s.roomsLoaded && all.length === 0) {
      sections.unshift(h('div', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), s.conn.state === 'online' ? 'Loading rooms…' : 'Waiting for connection…'));
    }
    lists.replaceChildren(...sections);
    if (focusKey) {
      const [tid, rid] = focusKey.split('|');
      const el = /** @type {HTMLElement|null} */ (lists.querySelector(`[data-room-id="${CSS.escape(rid ?? '')}"] [data-testid="${tid}"], [data-room-id="${CSS.escape(rid ?? '')}"][data-testid="${tid}"]`));
      el?.focus();
    }
  };

  /** @param {RoomSummary} r */
  const roomItem = (r) => {
    const current = s.current === r.room;
    const name = s.roomName(r.room);
    const unread = r.unread > 0 && !current;
    // The counts are said in words after the name, not through aria-label:
    // a label that differs from the visible text (a badge's "3") fails
    // WCAG's label-in-name, and the badges are hidden from screen readers.
    const counts = [r.mentions ? `${r.mentions} mention${r.mentions === 1 ? '' : 's'}` : '', r.unread ? `${r.unread} unread` : ''].filter(Boolean).join(', ');
    return h(
      'li',
      {},
      h(
        'a',
        {
          href: `#/room/${encodeURIComponent(r.room)}`,
          class: `room-item ${current ? 'current' : ''} ${unread ? 'unread' : ''} ${r.archived ? 'archived' : ''}`,
          testid: 'room-item',
          'data-room-id': r.room,
          'data-unread': r.unread,
          'data-mentions': r.mentions,
          'data-direct': r.direct_with ? 'true' : null,
          'aria-current': current ? 'page' : null,
        },
        r.direct_with ? h('span', { class: 'dm-avatar', 'aria-hidden': 'true' }, avatar(ctx, r.direct_with, 'sm'), presenceDot(ctx, r.direct_with)) : h('span', { class: 'room-glyph' }, icon(r.visibility === 'private' ? 'lock' : 'hash')),
        h('span', { class: 'room-item-name', testid: 'room-item-name', text: name }),
        counts ? srOnly(`, ${counts}`) : null,
        r.mentions > 0 ? h('span', { class: 'badge badge-mention', testid: 'mention-badge', 'aria-hidden': 'true', text: `@${r.mentions}` }) : null,
        r.unread > 0 && !r.mentions ? h('span', { class: 'badge', testid: 'unread-badge', 'aria-hidden': 'true', text: r.unread > 99 ? '99+' : r.unread }) : null,
        r.unread > 0 && r.mentions > 0 ? h('span', { class: 'badge subtle', testid: 'unread-badge', 'aria-hidden': 'true', text: r.unread > 99 ? '99+' : r.unread }) : null,
      ),
    );
  };

  const offs = [
    s.on('rooms', renderLists),
    s.on('current', renderLists),
    s.on('conn', () => !s.roomsLoaded && renderLists()),
    s.on('profile', (/** @type {string} */ u) => {
      if (u === s.me) renderMe();
      if ([...s.rooms.values()].some((r) => r.direct_with === u)) renderLists();
    }),
    s.on('me', renderMe),
    s.on('hello', () => (brand.textContent = s.hello?.node_name || 'Confab')),
    livePeople(ctx, nav),
  ];
  renderMe();
  renderLists();
  return {
    el: nav,
    destroy: () => {
      for (const off of offs) off();
    },
  };
}

/** @param {string} ic @param {string} label @param {string} testid @param {() => void} run */
function action(ic, label, testid, run) {
  return h('button', { type: 'button', class: 'side-action', testid, onclick: run }, icon(ic), h('span', { text: label }));
}

/** @param {string} title @param {HTMLElement[]} items @param {HTMLElement|null} [empty] */
function section(title, items, empty = null) {
  const id = `sec-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return h('section', { class: 'room-section', 'aria-labelledby': id }, h('h2', { id, class: 'section-title', text: title }), items.length ? h('ul', { class: 'room-ul' }, items) : empty);
}

/** @param {string} text */
function emptyNote(text) {
  return h('p', { class: 'muted small side-empty', text });
}
