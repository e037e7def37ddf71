// Notifications of new messages: desktop notifications, toasts and the
// sound, by each room's level ("all", "mentions" — the default — or
// "none"), kept in this browser.

import { toast } from './dom.js';

/** @typedef {import('./types.js').Item} Item */

/**
 * Tells the user of a new message, as the room's level asks: a desktop
 * notification while the tab is hidden, else a toast, and maybe a sound.
 * @param {import('./client.js').Client} client @param {string} room @param {Item} item
 */
export function notifyOf(client, room, item) {
  const s = client.store;
  if (item.kind !== 'message' || item.author === s.me || item.rejected || s.blocked.has(item.author)) return;
  const level = roomNotifyLevel(room);
  const r = s.rooms.get(room);
  const mentioned = !!(s.me && item.mentions?.includes(s.me));
  const direct = !!r?.direct_with;
  // A reply in a thread this user started.
  const root = item.thread_root ? s.timelines.get(room)?.byId.get(item.thread_root) : undefined;
  const myThread = !!root && root.author === s.me;
  // "mentions" (the default) also covers DMs and replies to one's threads;
  // "all" every message; "none" nothing.
  if (level === 'none' || (level === 'mentions' && !mentioned && !direct && !myThread)) return;
  if (!document.hidden && s.current === room) return;
  const title = direct
    ? s.displayName(item.author)
    : myThread && !mentioned
      ? `${s.displayName(item.author)} replied to your thread in ${s.roomName(room)}`
      : `${s.displayName(item.author)} in ${s.roomName(room)}`;
  const body = (item.body ?? '').slice(0, 140) || 'Sent an attachment';
  if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    const n = new Notification(title, { body, tag: room });
    n.addEventListener('click', () => {
      window.focus();
      client.history.jumpTo(room, item.id);
      n.close();
    });
  } else if (!document.hidden) {
    toast(`${title}: ${body}`, { action: { label: 'Open', run: () => client.history.jumpTo(room, item.id) } });
  }
  if (localStorage.getItem('confab.sound') === 'on') beep();
}


/** @param {string} room @returns {'all'|'mentions'|'none'} */
export function roomNotifyLevel(room) {
  const v = localStorage.getItem(`confab.notify.${room}`);
  return v === 'all' || v === 'none' ? v : 'mentions';
}

/** @param {string} room @param {'all'|'mentions'|'none'} level */
export function setRoomNotifyLevel(room, level) {
  localStorage.setItem(`confab.notify.${room}`, level);
}

function beep() {
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator();
    const g = ctx.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.05;
    o.connect(g).connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.12);
    o.addEventListener('ended', () => ctx.close());
  } catch {
    /* no audio */
  }
}
