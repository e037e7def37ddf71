// The signed-in layout: offline banner, room drawer, the open room, the
// side panel, and hash routing (#/room/<id>).

import { h, icon, replace } from '../dom.js';
import { roomView } from './room.js';
import { sidebar } from './sidebar.js';
import { panelView } from './panels.js';
import { livePeople } from './common.js';
import { browseDialog, createRoomDialog, userPickerDialog } from './dialogs.js';

/** @typedef {import('../client.js').Client} Client */
/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('./common.js').PanelSpec} PanelSpec */

const NARROW = window.matchMedia('(max-width: 760px)');

/**
 * @param {HTMLElement} root @param {Client} client
 * @returns {() => void} cleanup
 */
export function renderShell(root, client) {
  const s = client.store;
  const banner = h('div', { class: 'banner', testid: 'offline-banner', role: 'status', 'aria-live': 'polite', hidden: true });
  const main = h('main', { class: 'main', id: 'main', tabindex: -1 });
  const panelHost = h('aside', { class: 'side', 'aria-label': 'Details', hidden: true });
  const scrim = h('div', { class: 'scrim', 'aria-hidden': 'true' });
  const shell = h('div', { class: 'shell', testid: 'app-shell', 'data-user': s.me ?? '' });

  /** @type {ReturnType<typeof roomView>|null} */
  let current = null;
  /** @type {{el: HTMLElement, focus: () => void, destroy: () => void}|null} */
  let panel = null;
  /** @type {PanelSpec|null} */
  let panelSpec = null;
  let drawerOpen = false;

  /** @type {Ctx} */
  const ctx = {
    client,
    store: s,
    drafts: new Map(),
    openPanel: (spec) => openPanel(spec),
    panel: () => panelSpec,
    toggleDrawer: (open) => setDrawer(open ?? !drawerOpen),
    navigate: (room) => {
      location.hash = room ? `#/room/${encodeURIComponent(room)}` : '#/';
    },
    focusComposer: (room) => {
      if (s.current === room) current?.focus();
    },
  };

  const side = sidebar(ctx);
  shell.append(banner, side.el, scrim, main, panelHost);
  root.replaceChildren(shell);

  // ---- drawer (narrow screens)

  /** @param {boolean} open */
  const setDrawer = (open) => {
    drawerOpen = open && NARROW.matches;
    shell.classList.toggle('drawer-open', drawerOpen);
    side.el.toggleAttribute('inert', NARROW.matches && !drawerOpen);
    for (const b of shell.querySelectorAll('[data-testid="sidebar-toggle"]')) b.setAttribute('aria-expanded', String(drawerOpen));
    if (drawerOpen) /** @type {HTMLElement|null} */ (side.el.querySelector('[aria-current="page"], a, button'))?.focus();
  };
  scrim.addEventListener('click', () => setDrawer(false));
  const onNarrow = () => setDrawer(!s.current && NARROW.matches);
  NARROW.addEventListener('change', onNarrow);

  // ---- side panel

  /** @param {PanelSpec|null} spec */
  const openPanel = (spec) => {
    panel?.destroy();
    panel = null;
    panelSpec = spec;
    if (!spec) {
      panelHost.hidden = true;
      panelHost.replaceChildren();
      shell.classList.remove('with-panel');
      current?.focus();
      return;
    }
    panel = panelView(ctx, spec);
    panelHost.replaceChildren(panel.el);
    panelHost.hidden = false;
    shell.classList.add('with-panel');
    panel.focus();
  };

  // ---- routing

  const route = () => {
    const m = /^#\/room\/(.+)$/.exec(location.hash);
    const room = m ? decodeURIComponent(m[1]) : null;
    // The view on screen decides, not the stored current room: a jump to
    // another room marks it current before this runs.
    if (current && current.room === room) return;
    current?.destroy();
    current = null;
    if (panelSpec && panelSpec.kind !== 'mentions' && !(panelSpec.kind === 'search' && !panelSpec.room)) openPanel(null);
    if (!room) {
      s.setCurrent(null);
      replace(main, welcome(ctx));
      setDrawer(NARROW.matches);
      return;
    }
    current = roomView(ctx, room);
    replace(main, current.el);
    setDrawer(false);
    // A jump opened it already (with the message to show); opening again
    // would forget that message.
    if (s.current !== room) client.openRoom(room);
    if (!NARROW.matches || document.activeElement === document.body) current.focus();
  };
  window.addEventListener('hashchange', route);

  // ---- banner

  /** @type {ReturnType<typeof setInterval>|undefined} */
  let tick;
  const renderBanner = () => {
    const c = s.conn;
    clearInterval(tick);
    if (c.state === 'online') {
      banner.hidden = true;
      banner.replaceChildren();
      shell.classList.remove('is-offline');
      return;
    }
    banner.hidden = false;
    shell.classList.add('is-offline');
    banner.dataset.state = c.state === 'offline' ? 'offline' : c.state === 'stopped' ? 'stopped' : 'connecting';
    const draw = () => {
      if (c.state === 'stopped') {
        replace(
          banner,
          icon('alert'),
          h('span', { text: c.reason === 'unsupported_version' ? 'Confab was updated on the server. Reload to continue.' : 'The connection was refused.' }),
          h('button', { type: 'button', class: 'link-btn', text: 'Reload', onclick: () => location.reload() }),
        );
        return;
      }
      if (c.state === 'connecting' || c.state === 'authenticating') {
        replace(banner, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { text: c.state === 'connecting' ? 'Connecting…' : 'Signing in…' }));
        return;
      }
      const secs = c.retryAt ? Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000)) : 0;
      const queued = s.outbox.filter((p) => p.state === 'queued').length;
      const why = c.reason === 'too_many_connections' ? 'Too many Confab tabs are open — close some.' : "You're offline.";
      // Without a network the next try waits for it (protocol.js), not for the clock.
      const when = !navigator.onLine ? 'Reconnecting when the network is back.' : secs > 0 ? `Reconnecting in ${secs} s…` : 'Reconnecting…';
      replace(
        banner,
        icon('offline'),
        h('span', { text: `${why} ${when}${queued ? ` ${queued} message${queued === 1 ? '' : 's'} will be sent when you're back.` : ''}` }),
        h('button', { type: 'button', class: 'link-btn', testid: 'reconnect-now', text: 'Retry now', onclick: () => client.socket.reconnectNow() }),
      );
    };
    draw();
    if (c.state === 'offline') tick = setInterval(draw, 1000);
  };

  // ---- keys

  /** @param {KeyboardEvent} ev */
  const onKey = (ev) => {
    if (ev.defaultPrevented) return;
    if (ev.key === 'Escape') {
      if (document.querySelector('dialog[open]') || document.querySelector('.menu')) return;
      if (drawerOpen && s.current) {
        setDrawer(false);
        ev.preventDefault();
      } else if (panelSpec) {
        openPanel(null);
        ev.preventDefault();
      }
    } else if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'k') {
      ev.preventDefault();
      setDrawer(true);
      /** @type {HTMLElement|null} */ (side.el.querySelector('[aria-current="page"]') ?? side.el.querySelector('.room-item'))?.focus();
    }
  };
  document.addEventListener('keydown', onKey);

  const offs = [
    s.on('conn', renderBanner),
    s.on('outbox', () => s.conn.state !== 'online' && renderBanner()),
    s.on('open-thread', (/** @type {{room: string, root: string}} */ x) => openPanel({ kind: 'thread', room: x.room, root: x.root })),
    livePeople(ctx, main),
  ];
  renderBanner();
  route();

  return () => {
    current?.destroy();
    panel?.destroy();
    side.destroy();
    for (const off of offs) off();
    clearInterval(tick);
    window.removeEventListener('hashchange', route);
    document.removeEventListener('keydown', onKey);
    NARROW.removeEventListener('change', onNarrow);
  };
}

/** The screen without a room. @param {Ctx} ctx */
function welcome(ctx) {
  const s = ctx.store;
  const name = s.me ? s.displayName(s.me) : '';
  return h(
    'section',
    { class: 'welcome', testid: 'welcome' },
    h('header', { class: 'room-header' }, h('button', { type: 'button', class: 'icon-btn only-narrow', testid: 'sidebar-toggle', 'aria-label': 'Open room list', 'aria-controls': 'sidebar', onclick: () => ctx.toggleDrawer() }, icon('menu')), h('h1', { class: 'room-title', text: 'Home' })),
    h(
      'div',
      { class: 'welcome-body' },
      h('img', { src: '/icon.svg', alt: '', width: 64, height: 64 }),
      h('h2', { text: name ? `Welcome, ${name}` : 'Welcome to Confab' }),
      h('p', { class: 'muted', text: 'Pick a room on the left, or get started:' }),
      h(
        'div',
        { class: 'welcome-actions' },
        h('button', { type: 'button', class: 'btn', onclick: () => browseDialog(ctx) }, icon('compass'), ' Browse public rooms'),
        h('button', { type: 'button', class: 'btn', onclick: () => createRoomDialog(ctx) }, icon('plus'), ' Create a room'),
        h('button', { type: 'button', class: 'btn', onclick: () => userPickerDialog(ctx, 'dm', null) }, icon('edit'), ' Message someone'),
      ),
    ),
  );
}
