// The side panel: a thread, the member list, search, and mentions.

import { h, icon, iconButton, openMenu, replace, toast } from '../dom.js';
import { errText } from '../client.js';
import { debounce, fmtShortDate, localpart } from '../util.js';
import { avatar, lastSeenText, livePeople, presenceDot, reconcile, userName } from './common.js';
import { composer } from './composer.js';
import { blockUser, continues, renderMessage, renderPending } from './message.js';
import { muteDialog, removeMember, userPickerDialog } from './dialogs.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('./common.js').PanelSpec} PanelSpec */
/** @typedef {import('./common.js').Entry} Entry */
/** @typedef {import('../types.js').Item} Item */
/** @typedef {import('../types.js').Page} Page */

/**
 * @param {Ctx} ctx @param {PanelSpec} spec
 * @returns {{el: HTMLElement, focus: () => void, destroy: () => void}}
 */
export function panelView(ctx, spec) {
  switch (spec.kind) {
    case 'thread':
      return threadPanel(ctx, spec.room, spec.root);
    case 'members':
      return membersPanel(ctx, spec.room);
    case 'search':
      return searchPanel(ctx, spec.room);
    case 'mentions':
      return mentionsPanel(ctx);
  }
}

/**
 * @param {Ctx} ctx @param {string} title @param {string} testid @param {string} kind @param {...(Node|null)} body
 */
function frame(ctx, title, testid, kind, ...body) {
  const titleId = `panel-title-${kind}`;
  return h(
    'section',
    { class: `panel panel-${kind}`, testid: 'side-panel', 'data-panel': kind, 'aria-labelledby': titleId },
    h('header', { class: 'panel-head' }, h('h2', { id: titleId, text: title }), iconButton('close', 'Close panel', { testid: 'panel-close', onclick: () => ctx.openPanel(null) })),
    h('div', { class: 'panel-body', testid }, ...body),
  );
}

/** @param {Ctx} ctx @param {string} room @param {string} root */
function threadPanel(ctx, room, root) {
  const s = ctx.store;
  const c = ctx.client;
  const rootEl = h('div', { class: 'thread-root' });
  const list = h('div', { class: 'thread-list', role: 'log', 'aria-live': 'polite', 'aria-label': 'Replies', tabindex: 0 });
  const top = h('div', { class: 'thread-top' });
  list.append(top);
  const comp = composer(ctx, { room, threadRoot: root });
  const el = frame(ctx, 'Thread', 'thread-panel', 'thread', rootEl, list, comp.el);
  el.querySelector('[data-testid="thread-panel"]')?.setAttribute('data-root', root);
  let stick = true;
  list.addEventListener('scroll', () => {
    stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  });

  const render = () => {
    const rootItem = c.findItem(room, root);
    replace(
      rootEl,
      rootItem
        ? renderMessage(ctx, rootItem, { cont: false, inThread: true, highlight: false, readMark: null })
        : h('p', { class: 'muted', text: 'Loading…' }),
      h('div', { class: 'thread-count', text: rootItem?.thread ? `${rootItem.thread.replies} ${rootItem.thread.replies === 1 ? 'reply' : 'replies'}` : 'No replies yet' }),
    );
    const th = s.thread(room, root);
    replace(
      top,
      th.loading ? h('div', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading replies…') : null,
      th.error ? h('div', { class: 'state-msg error', role: 'alert' }, h('span', { text: th.error }), h('button', { type: 'button', class: 'btn btn-small', text: 'Retry', onclick: () => c.loadThread(room, root) })) : null,
      th.moreBefore && !th.loading ? h('button', { type: 'button', class: 'link-btn', text: 'Show earlier replies', onclick: () => c.loadThread(room, root) }) : null,
    );
    /** @type {Entry[]} */
    const entries = [];
    /** @type {Item|null} */
    let prev = null;
    for (const it of th.items) {
      const item = it;
      const cont = continues(prev, item);
      entries.push({ key: `ev:${item.id}`, deps: [item, cont, s.blocked.has(item.author)], render: () => renderMessage(ctx, item, { cont, inThread: true, highlight: false, readMark: null }) });
      prev = item;
    }
    for (const p of s.pendingFor(room, root)) entries.push({ key: `pend:${p.key}`, deps: [p.state, p.error, p.event, s.conn.state], render: () => renderPending(ctx, p, false) });
    reconcile(list, entries);
    if (stick) list.scrollTop = list.scrollHeight;
  };

  const offs = [
    s.on('thread', (/** @type {string} */ r) => r === root && render()),
    s.on('timeline', (/** @type {string} */ r) => r === room && render()),
    s.on('outbox', (/** @type {string} */ r) => r === room && render()),
    s.on('sent', (/** @type {{threadRoot: string|null}} */ x) => {
      if (x.threadRoot === root) {
        stick = true;
        list.scrollTop = list.scrollHeight;
      }
    }),
    livePeople(ctx, el),
  ];
  if (!s.thread(room, root).loaded) c.loadThread(room, root);
  render();
  return {
    el,
    focus: () => comp.focus(),
    destroy: () => {
      for (const off of offs) off();
      comp.destroy();
    },
  };
}

/** @param {Ctx} ctx @param {string} room */
function membersPanel(ctx, room) {
  const s = ctx.store;
  const c = ctx.client;
  const filter = h('input', { type: 'search', placeholder: 'Filter members', 'aria-label': 'Filter members', class: 'panel-filter', testid: 'member-filter' });
  const list = h('ul', { class: 'member-list', testid: 'member-list' });
  const inviteBtn = h('button', { type: 'button', class: 'btn btn-small', onclick: () => userPickerDialog(ctx, 'invite', room) }, icon('user-plus'), ' Invite');
  const el = frame(ctx, 'Members', 'members-panel', 'members', h('div', { class: 'panel-tools' }, filter, inviteBtn), list);

  const rank = (/** @type {string} */ u) => {
    const p = s.presence.get(u)?.presence;
    return p === 'online' ? 0 : p === 'away' ? 1 : 2;
  };

  const render = () => {
    const d = s.details.get(room);
    if (!d) {
      replace(list, h('li', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading members…'));
      return;
    }
    const q = filter.value.trim().toLowerCase();
    const members = d.members
      .filter((m) => !q || s.displayName(m.user).toLowerCase().includes(q) || localpart(m.user).includes(q))
      .sort((a, b) => rank(a.user) - rank(b.user) || s.displayName(a.user).localeCompare(s.displayName(b.user)));
    const canMute = s.can(room, 'user.mute');
    const canKick = s.can(room, 'user.kick');
    const canBan = s.can(room, 'user.ban');
    replace(
      list,
      members.map((m) => {
        const muted = m.muted_until && m.muted_until > Date.now() ? m.muted_until : null;
        const presence = s.presence.get(m.user)?.presence ?? 'offline';
        const remote = s.hello ? !m.user.endsWith(`:${s.hello.node}`) : false;
        /** @type {{label: string, testid: string, danger?: boolean, run: () => void}[]} */
        const acts = [];
        if (m.user !== s.me) {
          acts.push({ label: 'Send a message', testid: 'member-dm', run: () => c.directRoom(m.user).then((r) => ctx.navigate(r)).catch((e) => toast(errText(e), { kind: 'error' })) });
          if (canMute)
            acts.push(
              muted
                ? { label: 'Unmute', testid: 'member-unmute', run: () => c.moderate(room, { kind: 'unmute', target: m.user }).catch((e) => toast(errText(e), { kind: 'error' })) }
                : { label: 'Mute…', testid: 'member-mute', run: () => muteDialog(ctx, room, m.user) },
            );
          if (canKick) acts.push({ label: 'Remove from room…', testid: 'member-kick', danger: true, run: () => removeMember(ctx, room, m.user, 'kick') });
          if (canBan) acts.push({ label: 'Ban…', testid: 'member-ban', danger: true, run: () => removeMember(ctx, room, m.user, 'ban') });
          acts.push({ label: s.blocked.has(m.user) ? 'Unblock' : 'Block…', testid: 'member-block', danger: true, run: () => blockUser(ctx, m.user) });
        }
        return h(
          'li',
          { class: 'member', testid: 'member-item', 'data-user': m.user, 'data-presence': presence },
          h('span', { class: 'dm-avatar' }, avatar(ctx, m.user, 'md'), presenceDot(ctx, m.user)),
          h(
            'span',
            { class: 'member-text' },
            h('span', { class: 'member-name' }, userName(ctx, m.user), m.user === s.me ? h('span', { class: 'muted small', text: ' (you)' }) : null),
            h('span', { class: 'muted small', testid: 'last-seen', 'data-last-seen-of': m.user, text: lastSeenText(ctx, m.user) || (remote ? 'Other node' : '') }),
            h(
              'span',
              { class: 'member-tags' },
              m.roles.map((r) => h('span', { class: 'tag', text: r })),
              muted ? h('span', { class: 'tag tag-warn', text: `muted until ${fmtShortDate(muted)}` }) : null,
              remote ? h('span', { class: 'tag tag-quiet', text: 'remote' }) : null,
            ),
          ),
          acts.length
            ? iconButton('more', `Actions for ${s.displayName(m.user)}`, {
                'aria-haspopup': 'menu',
                onclick: (/** @type {MouseEvent} */ ev) => openMenu(/** @type {HTMLElement} */ (ev.currentTarget), acts, 'member-menu'),
              })
            : null,
        );
      }),
    );
  };
  filter.addEventListener('input', render);
  const offs = [
    s.on('detail', (/** @type {string} */ r) => r === room && render()),
    s.on('presence', debounce(render, 300)),
    livePeople(ctx, el),
  ];
  c.ensureDetail(room, true);
  render();
  return {
    el,
    focus: () => filter.focus(),
    destroy: () => {
      for (const off of offs) off();
    },
  };
}

/**
 * A result row: room, author, time and text; activating it jumps there.
 * @param {Ctx} ctx @param {Item} item @param {string} testid
 */
function resultRow(ctx, item, testid) {
  const s = ctx.store;
  const text = item.redacted != null ? 'Message deleted' : item.edited_body ?? item.body ?? (item.attachments?.length ? 'Attachment' : '');
  return h(
    'li',
    {},
    h(
      'button',
      {
        type: 'button',
        class: 'result',
        testid,
        'data-event-id': item.id,
        'data-room-id': item.room,
        onclick: () => {
          ctx.client.history.jumpTo(item.room, item.id);
          if (window.matchMedia('(max-width: 1100px)').matches) ctx.openPanel(null);
        },
      },
      h('span', { class: 'result-head' }, avatar(ctx, item.author, 'sm'), userName(ctx, item.author, 'strong'), h('span', { class: 'muted small', text: ` in ${s.roomName(item.room)} · ${fmtShortDate(item.ts)}` })),
      h('span', { class: 'result-text', text: text.length > 300 ? `${text.slice(0, 300)}…` : text }),
    ),
  );
}

/** @param {Ctx} ctx @param {string|null} room */
function searchPanel(ctx, room) {
  const s = ctx.store;
  const input = h('input', { type: 'search', testid: 'search-input', placeholder: 'Search messages', 'aria-label': 'Search messages', autocomplete: 'off' });
  const scope = h(
    'select',
    { testid: 'search-scope', 'aria-label': 'Where to search' },
    room ? h('option', { value: 'room', text: `In ${s.roomName(room)}`, selected: true }) : null,
    h('option', { value: 'all', text: 'In all my rooms', selected: !room }),
  );
  const results = h('ul', { class: 'results', 'aria-live': 'polite', 'aria-label': 'Results' });
  const more = h('button', { type: 'button', class: 'btn btn-small', hidden: true, text: 'More results' });
  const el = frame(ctx, 'Search', 'search-panel', 'search', h('form', { class: 'panel-tools', role: 'search', onsubmit: (/** @type {Event} */ ev) => (ev.preventDefault(), run(false)) }, input, scope), results, more);
  /** @type {string|null} */
  let cursor = null;
  let seq = 0;
  /** @param {boolean} append */
  const run = async (append) => {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) {
      results.replaceChildren();
      more.hidden = true;
      return;
    }
    if (!append) {
      cursor = null;
      replace(results, h('li', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Searching…'));
    }
    try {
      const page = await ctx.client.search(q, scope.value === 'room' ? room : null, append ? cursor : null);
      if (mine !== seq) return;
      if (!append) results.replaceChildren();
      const items = page.items.filter((i) => !i.rejected && !s.blocked.has(i.author));
      results.append(...items.map((i) => resultRow(ctx, i, 'search-result')));
      if (!results.children.length) results.append(h('li', { class: 'muted pick-empty', text: `No messages match “${q}”.` }));
      cursor = page.items.length ? page.items[page.items.length - 1].id : null;
      more.hidden = !page.more_before;
    } catch (e) {
      if (mine === seq) replace(results, h('li', { class: 'state-msg error', role: 'alert', text: errText(e) }));
    }
  };
  const debounced = debounce(() => run(false), 350);
  input.addEventListener('input', debounced);
  scope.addEventListener('change', () => run(false));
  more.addEventListener('click', () => run(true));
  const off = livePeople(ctx, el);
  return { el, focus: () => input.focus(), destroy: off };
}

/** @param {Ctx} ctx */
function mentionsPanel(ctx) {
  const s = ctx.store;
  const results = h('ul', { class: 'results', testid: 'mentions-view', 'aria-label': 'Mentions' });
  const more = h('button', { type: 'button', class: 'btn btn-small', hidden: true, text: 'Older mentions' });
  const el = frame(ctx, 'Mentions', 'mentions-panel', 'mentions', results, more);
  /** @type {string|null} */
  let cursor = null;
  /** @param {boolean} append */
  const load = async (append) => {
    if (!append) replace(results, h('li', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
    try {
      const page = await ctx.client.mentions(append ? cursor : null);
      if (!append) results.replaceChildren();
      results.append(...page.items.filter((i) => !i.rejected && !s.blocked.has(i.author)).map((i) => resultRow(ctx, i, 'mentions-item')));
      if (!results.children.length) results.append(h('li', { class: 'muted pick-empty', text: 'Nobody has mentioned you yet.' }));
      cursor = page.items.length ? page.items[page.items.length - 1].id : null;
      more.hidden = !page.more_before;
    } catch (e) {
      replace(results, h('li', { class: 'state-msg error', role: 'alert', text: errText(e) }));
    }
  };
  more.addEventListener('click', () => load(true));
  load(false);
  const off = livePeople(ctx, el);
  return { el, focus: () => /** @type {HTMLElement|null} */ (results.querySelector('button'))?.focus(), destroy: off };
}
