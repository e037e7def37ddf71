// The message list of a room: keyed rendering, infinite scroll upward that
// keeps the reading position, the "New messages" divider, jump buttons,
// keyboard navigation between messages, and read marking.

import { h, icon } from '../dom.js';
import { fmtDay, sameDay } from '../util.js';
import { entryKey, reconcile, livePeople } from './common.js';
import { continues, readMarkFor, renderMessage, renderNotice, renderPending, renderSystem, startEdit } from './message.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('./common.js').Entry} Entry */
/** @typedef {import('../types.js').Item} Item */

const NEAR_BOTTOM_PX = 60;
const LOAD_MORE_PX = 400;

/**
 * @param {Ctx} ctx @param {string} room
 * @returns {{el: HTMLElement, destroy: () => void}}
 */
export function timelineView(ctx, room) {
  const s = ctx.store;
  const c = ctx.client;
  const top = h('div', { class: 'timeline-top' });
  const list = h('div', {
    class: 'timeline',
    role: 'log',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    'aria-label': `Messages in ${s.roomName(room)}`,
    tabindex: 0,
    testid: 'timeline',
  });
  list.append(top);
  const unreadPill = h('div', { class: 'pill pill-top', hidden: true });
  const latestBtn = h('button', { type: 'button', class: 'pill pill-bottom', testid: 'jump-to-latest', hidden: true, onclick: () => c.history.jumpToLatest(room) });
  const wrap = h('div', { class: 'timeline-wrap' }, list, unreadPill, latestBtn);

  let stick = true;
  let positioned = false;
  let pillDismissed = false;
  let newWhileAway = 0;
  let lastCount = 0;
  /** The item count when older items were last loaded without a scroll. */
  let autoAt = -1;

  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  c.atBottom = (r) => r !== room || stick;

  // ---- building the entries

  const render = () => {
    const t = s.timeline(room);
    renderTop(t);
    /** @type {Entry[]} */
    const entries = [];
    /** @type {Item|null} */
    let prev = null;
    const r = s.rooms.get(room);
    let lastMine = null;
    if (r?.direct_with) {
      for (let i = t.items.length - 1; i >= 0; i--) {
        if (t.items[i].author === s.me && t.items[i].kind === 'message') {
          lastMine = t.items[i].id;
          break;
        }
      }
    }
    // The user's own notes go in time order among the items (one older
    // than the loaded page waits until older messages are loaded).
    const notices = s.noticesIn(room).filter((n) => !t.moreBefore || !t.items.length || n.ts >= t.items[0].ts);
    /** @param {number} until */
    const noticesBefore = (until) => {
      while (notices.length && notices[0].ts <= until) {
        const n = /** @type {import('../types.js').Notice} */ (notices.shift());
        entries.push({ key: `note:${n.id}`, deps: [n], render: () => renderNotice(ctx, n) });
      }
    };
    for (const item of t.items) {
      noticesBefore(item.ts - 1);
      if (!prev || !sameDay(prev.ts, item.ts)) {
        const label = fmtDay(item.ts);
        entries.push({ key: `day:${new Date(item.ts).toDateString()}`, deps: [label], render: () => daySep(label) });
      }
      let divider = false;
      if (t.firstUnread === item.id) {
        divider = true;
        entries.push({ key: 'div:new', deps: [], render: newDivider });
      }
      const it = item;
      if (it.kind === 'message') {
        const cont = !divider && !!prev && sameDay(prev.ts, it.ts) && continues(prev, it);
        const highlight = t.highlight === it.id;
        const blocked = s.blocked.has(it.author);
        const mark = it.id === lastMine ? readMarkFor(ctx, room, it) : null;
        entries.push({
          key: `ev:${it.id}`,
          deps: [it, cont, highlight, blocked, mark],
          render: () => renderMessage(ctx, it, { cont, inThread: false, highlight, readMark: mark }),
        });
      } else {
        entries.push({ key: `ev:${it.id}`, deps: [it], render: () => renderSystem(ctx, it) });
      }
      prev = item;
    }
    if (!t.moreAfter) {
      noticesBefore(Infinity);
      const conn = s.conn.state;
      for (const p of s.pendingFor(room, null)) {
        const cont = !!prev && prev.kind === 'message' && prev.author === s.me;
        entries.push({ key: `pend:${p.key}`, deps: [p.state, p.error, p.event, cont, conn], render: () => renderPending(ctx, p, cont) });
        prev = /** @type {Item} */ ({ kind: 'message', author: s.me ?? '', ts: p.ts, id: p.key, room });
      }
    }
    preserve(() => reconcile(list, entries));
    list.setAttribute('aria-busy', t.loading === 'none' ? 'false' : 'true');
    // New items while scrolled up.
    const count = t.items.length;
    if (positioned && !stick && count > lastCount && t.loading === 'none') newWhileAway += count - lastCount;
    lastCount = count;
    if (!positioned && t.loaded && t.loading === 'none' && t.items.length) initialPosition();
    updateButtons();
    fillScreen();
  };

  /** @param {import('../state.js').Timeline} t */
  const renderTop = (t) => {
    /** @type {HTMLElement|null} */
    let content = null;
    if (t.loading === 'initial' && !t.items.length) {
      content = h('div', { class: 'state-msg', testid: 'timeline-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading messages…');
    } else if (t.error && !t.items.length) {
      content = h(
        'div',
        { class: 'state-msg error', testid: 'timeline-error', role: 'alert' },
        icon('alert'),
        h('span', { text: `Could not load messages: ${t.error}` }),
        h('button', { type: 'button', class: 'btn btn-small', text: 'Retry', onclick: () => c.openRoom(room) }),
      );
    } else if (t.loading === 'older') {
      content = h('div', { class: 'state-msg', testid: 'history-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading older messages…');
    } else if (!t.items.length && !t.loaded && s.conn.state !== 'online') {
      content = h('div', { class: 'state-msg', testid: 'timeline-offline' }, icon('offline'), "Messages will load when you're back online.");
    } else if (t.loaded && !t.moreBefore) {
      content = roomStart(t);
    } else if (t.moreBefore && t.loaded) {
      content = h('div', { class: 'state-msg subtle' }, h('button', { type: 'button', class: 'link-btn', testid: 'load-older', text: 'Load older messages', onclick: () => c.history.loadOlder(room) }));
    }
    const key = content ? `${content.dataset.testid ?? ''}|${content.textContent}` : '';
    if (top.dataset.key !== key) {
      top.dataset.key = key;
      top.replaceChildren(...(content ? [content] : []));
    }
  };

  /** @param {import('../state.js').Timeline} t */
  const roomStart = (t) => {
    const r = s.rooms.get(room);
    const name = s.roomName(room);
    const hasMessages = t.items.some((i) => i.kind === 'message') || s.pendingFor(room, null).length > 0;
    const start = h('div', { class: 'room-start', testid: 'history-start' });
    if (r?.direct_with) {
      start.append(h('h2', { text: name }), h('p', { class: 'muted', text: `This is the beginning of your direct messages with ${name}.` }));
    } else {
      start.append(h('h2', {}, icon(r?.visibility === 'private' ? 'lock' : 'hash'), ` ${name}`), h('p', { class: 'muted', text: `This is the very beginning of ${name}.` }));
    }
    if (!hasMessages) {
      const topic = r?.topic?.trim();
      const invite =
        r && r.visibility === 'private' && s.mayInvite(room)
          ? h('button', { type: 'button', class: 'btn btn-primary', testid: 'empty-room-invite', onclick: () => s.emit('invite-dialog', room) }, icon('user-plus'), ' Invite people')
          : null;
      start.append(
        h(
          'div',
          { class: 'empty-room', testid: 'empty-room' },
          h('div', { class: 'wave', 'aria-hidden': 'true', text: '👋' }),
          h('p', { class: 'empty-title', text: 'Be the first to say hello!' }),
          topic ? h('p', { class: 'empty-topic', text: topic }) : null,
          invite,
        ),
      );
    }
    return start;
  };

  // ---- scrolling

  /**
   * Keeps the reader's place across an update: the message (or system
   * line, or pending message) in the middle of the view stays where it is
   * on screen. Never a day separator or marker: their keys survive a
   * prepended page of the same day and move to its top, which once threw
   * the view to the oldest loaded message. Not the topmost message either:
   * an older page by the same author turns it into a continuation, shorter
   * by its header.
   * @param {() => void} fn
   */
  const preserve = (fn) => {
    const wasStick = stick && positioned;
    /** @type {Element|null} */
    let anchor = null;
    let offset = 0;
    const box = list.getBoundingClientRect();
    const listTop = box.top;
    if (!wasStick && positioned) {
      const middle = listTop + Math.min(box.height, list.clientHeight) / 2;
      for (const el of Array.from(list.children)) {
        const key = entryKey(el);
        if (!key || !(key.startsWith('ev:') || key.startsWith('pend:'))) continue;
        const rect = el.getBoundingClientRect();
        if (rect.bottom <= listTop) continue;
        anchor = el;
        offset = rect.top - listTop;
        if (rect.bottom > middle) break;
      }
    }
    const anchorKey = anchor ? entryKey(anchor) : null;
    fn();
    if (wasStick) list.scrollTop = list.scrollHeight;
    else if (anchorKey) {
      // The same element if it was kept, else its re-rendered successor.
      const el = anchor && anchor.isConnected ? anchor : Array.from(list.children).find((x) => entryKey(x) === anchorKey);
      if (el) list.scrollTop += el.getBoundingClientRect().top - listTop - offset;
    }
  };

  const initialPosition = () => {
    const t = s.timeline(room);
    positioned = true;
    const target = t.highlight ? findEvent(t.highlight) : t.firstUnread ? list.querySelector('[data-testid="new-messages-divider"]') : null;
    if (target) {
      target.scrollIntoView({ block: t.highlight ? 'center' : 'start' });
      stick = nearBottom();
    } else {
      list.scrollTop = list.scrollHeight;
      stick = true;
    }
    lastCount = t.items.length;
  };

  /** @param {string} id */
  const findEvent = (id) => /** @type {HTMLElement|null} */ (list.querySelector(`[data-event-id="${CSS.escape(id)}"]`));

  /**
   * Loads the next older page while the top of the loaded history is in
   * reach: after each page (the reader may still be at the top), when the
   * list does not fill the screen, and on a scroll near the top. A scroll
   * event alone is not enough: at scrollTop 0 the wheel scrolls nothing and
   * fires none. Unasked (after a render) it tries once per number of
   * items, so a page that fails is not asked for again and again.
   * @param {boolean} [unasked]
   */
  const loadOlderIfNear = (unasked = false) => {
    const t = s.timeline(room);
    if (!positioned || !t.loaded || !t.moreBefore || t.loading !== 'none' || s.conn.state !== 'online') return;
    if (list.scrollTop >= LOAD_MORE_PX && list.scrollHeight > list.clientHeight + 40) return;
    if (unasked && autoAt === t.items.length) return;
    if (unasked) autoAt = t.items.length;
    setTimeout(() => c.history.loadOlder(room), 0);
  };
  const fillScreen = () => loadOlderIfNear(true);

  const updateButtons = () => {
    const t = s.timeline(room);
    const far = list.scrollHeight - list.scrollTop - list.clientHeight > list.clientHeight * 0.5;
    latestBtn.hidden = !(far || t.moreAfter);
    latestBtn.replaceChildren(icon('arrow-down'), newWhileAway > 0 ? ` ${newWhileAway} new message${newWhileAway === 1 ? '' : 's'}` : ' Jump to latest');
    // The unread pill: while the divider is above the view (or not loaded yet).
    let show = false;
    if (!pillDismissed && t.unreadAtOpen > 0) {
      const div = list.querySelector('[data-testid="new-messages-divider"]');
      if (!div) show = t.moreBefore || !t.firstUnread;
      else show = div.getBoundingClientRect().bottom < list.getBoundingClientRect().top;
      if (div && !show && positioned && div.getBoundingClientRect().top < list.getBoundingClientRect().bottom) pillDismissed = true;
    }
    if (show !== !unreadPill.hidden) {
      unreadPill.hidden = !show;
      // The pill floats over the top of the list: room is made above the
      // "Load older messages" link so the pill never covers it. Away from
      // the top, the view is kept still while that room appears or goes.
      const before = top.offsetHeight;
      wrap.classList.toggle('with-top-pill', show);
      if (list.scrollTop > 0 && !(stick && positioned)) list.scrollTop += top.offsetHeight - before;
      if (show) {
        const n = t.unreadAtOpen;
        unreadPill.replaceChildren(
          h('button', { type: 'button', class: 'pill-main', testid: 'jump-to-unread', onclick: () => c.history.jumpToFirstUnread(room) }, icon('arrow-up'), ` Jump to first unread (${n} new)`),
          h('button', {
            type: 'button',
            class: 'pill-x',
            'aria-label': 'Dismiss',
            onclick: () => {
              pillDismissed = true;
              unreadPill.hidden = true;
            },
          }, icon('close')),
        );
      }
    }
  };

  list.addEventListener(
    'scroll',
    () => {
      stick = nearBottom();
      if (stick) newWhileAway = 0;
      const t = s.timeline(room);
      if (list.scrollTop < LOAD_MORE_PX && t.moreBefore && t.loading === 'none' && positioned) c.history.loadOlder(room);
      if (list.scrollHeight - list.scrollTop - list.clientHeight < LOAD_MORE_PX && t.moreAfter && t.loading === 'none') c.history.loadNewer(room);
      updateButtons();
      if (stick) c.markReadSoon(room);
    },
    { passive: true },
  );

  // At the very top the wheel (or a swipe) moves nothing and fires no
  // scroll event: ask for older messages directly.
  list.addEventListener(
    'wheel',
    (ev) => {
      if (ev.deltaY < 0 && list.scrollTop === 0) loadOlderIfNear();
    },
    { passive: true },
  );

  // ---- keyboard: Enter steps into messages, arrows move, Escape leaves

  list.addEventListener('keydown', (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    const msgs = /** @type {HTMLElement[]} */ (Array.from(list.querySelectorAll('.msg, .sys')));
    if (target === list && ev.key === 'Enter') {
      ev.preventDefault();
      const listTop = list.getBoundingClientRect().bottom;
      const visible = msgs.filter((m) => m.getBoundingClientRect().top < listTop);
      const m = visible[visible.length - 1] ?? msgs[msgs.length - 1];
      if (m) {
        m.tabIndex = -1;
        m.focus();
      }
      return;
    }
    const i = msgs.indexOf(target);
    if (i < 0) return;
    /** @type {HTMLElement|undefined} */
    let next;
    if (ev.key === 'ArrowUp') next = msgs[i - 1];
    else if (ev.key === 'ArrowDown') next = msgs[i + 1];
    else if (ev.key === 'Home') next = msgs[0];
    else if (ev.key === 'End') next = msgs[msgs.length - 1];
    else if (ev.key === 'Escape') next = list;
    else if (ev.key === 'e' && target.dataset.author === s.me) {
      const item = c.findItem(room, target.dataset.eventId ?? '');
      if (item) {
        ev.preventDefault();
        startEdit(ctx, item, target);
      }
      return;
    } else return;
    ev.preventDefault();
    if (next) {
      if (next !== list) next.tabIndex = -1;
      next.focus();
      next.scrollIntoView({ block: 'nearest' });
    }
  });

  // ---- store

  const offs = [
    s.on('timeline', (/** @type {string} */ r) => r === room && render()),
    s.on('outbox', (/** @type {string} */ r) => r === room && render()),
    s.on('reads', (/** @type {string} */ r) => r === room && render()),
    s.on('notices', (/** @type {string} */ r) => r === room && render()),
    s.on('conn', () => render()),
    s.on('detail', (/** @type {string} */ r) => r === room && renderTop(s.timeline(room))),
    s.on('sent', (/** @type {{room: string, threadRoot: string|null}} */ x) => {
      if (x.room !== room || x.threadRoot) return;
      const t = s.timeline(room);
      if (t.moreAfter) c.history.jumpToLatest(room);
      stick = true;
      newWhileAway = 0;
      list.scrollTop = list.scrollHeight;
    }),
    s.on('jump', (/** @type {{room: string, event: string|null, divider?: boolean}} */ j) => {
      if (j.room !== room) return;
      requestAnimationFrame(() => {
        if (!j.event) {
          list.scrollTop = list.scrollHeight;
          stick = true;
          newWhileAway = 0;
          updateButtons();
          return;
        }
        const target = j.divider ? /** @type {HTMLElement|null} */ (list.querySelector('[data-testid="new-messages-divider"]')) ?? findEvent(j.event) : findEvent(j.event);
        if (!target) return;
        positioned = true;
        s.timeline(room).highlight = null;
        target.scrollIntoView({ block: j.divider ? 'start' : 'center' });
        stick = nearBottom();
        if (!j.divider) {
          target.tabIndex = -1;
          target.focus({ preventScroll: true });
          target.classList.add('flash');
          setTimeout(() => target.classList.remove('flash'), 2000);
        } else {
          pillDismissed = true;
        }
        updateButtons();
      });
    }),
    s.on('edit-last', (/** @type {string} */ r) => {
      if (r !== room) return;
      const mine = /** @type {HTMLElement[]} */ (Array.from(list.querySelectorAll(`.msg[data-author="${CSS.escape(s.me ?? '')}"][data-state="confirmed"]`)));
      const el = mine[mine.length - 1];
      const item = el ? c.findItem(room, el.dataset.eventId ?? '') : null;
      if (el && item) {
        el.scrollIntoView({ block: 'nearest' });
        startEdit(ctx, item, el);
      }
    }),
    livePeople(ctx, list),
  ];
  const resize = new ResizeObserver(() => {
    if (stick && positioned) list.scrollTop = list.scrollHeight;
  });
  resize.observe(list);
  const ticker = setInterval(updateButtons, 2000);
  const onVisible = () => {
    if (!document.hidden && stick) c.markReadSoon(room);
  };
  document.addEventListener('visibilitychange', onVisible);

  render();
  requestAnimationFrame(() => {
    const t = s.timeline(room);
    if (!positioned && t.loaded && t.items.length) initialPosition();
    if (stick) c.markReadSoon(room);
  });

  return {
    el: wrap,
    destroy: () => {
      for (const off of offs) off();
      resize.disconnect();
      clearInterval(ticker);
      document.removeEventListener('visibilitychange', onVisible);
      c.atBottom = () => true;
    },
  };
}

/** @param {string} label */
function daySep(label) {
  return h('div', { class: 'day-sep', role: 'separator', 'aria-label': label }, h('span', { text: label }));
}

function newDivider() {
  return h('div', { class: 'new-divider', testid: 'new-messages-divider', role: 'separator', 'aria-label': 'New messages' }, h('span', { text: 'New messages' }));
}
