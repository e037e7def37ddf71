// A room's history in pages: the newest page, older and newer pages as the
// reader scrolls, a page around a message to jump to, and where the "New
// messages" divider goes. Part of the controller (client.js), which owns
// the socket and the store.

import { countsAsUnread } from './state.js';
import { toast } from './dom.js';
import { errText, isOffline } from './errors.js';

/** @typedef {import('./types.js').Page} Page */

/** Items per page. */
export const PAGE = 50;

export class History {
  /** @param {import('./client.js').Client} client */
  constructor(client) {
    this.client = client;
  }

  /** Replaces the timeline with the newest page and subscribes after it. @param {string} room */
  async loadLatest(room) {
    const s = this.client.store;
    const t = s.timeline(room);
    t.loading = 'initial';
    t.error = null;
    s.emit('timeline', room);
    try {
      /** @type {Page} */
      const page = await this.client.call('history', { room, limit: PAGE });
      s.addPage(room, page.items, true);
      t.moreBefore = page.more_before;
      t.moreAfter = false;
      t.loaded = true;
      t.fromCache = false;
      const last = page.items[page.items.length - 1];
      t.liveLast = last ? last.id : null;
      for (const i of page.items) this.client.ensureProfile(i.author);
      t.subscribed = true;
      await this.client.call('subscribe', t.liveLast ? { room, since: t.liveLast } : { room });
      this.client.saveTimeline(room);
    } catch (e) {
      t.subscribed = false;
      t.error = errText(e);
      throw e;
    } finally {
      t.loading = 'none';
      s.emit('timeline', room);
    }
  }

  /** @param {string} room */
  async loadOlder(room) {
    const s = this.client.store;
    const t = s.timeline(room);
    if (t.loading !== 'none' || !t.moreBefore || s.conn.state !== 'online') return;
    const first = t.items[0] ?? [...t.byId.values()][0];
    if (!first) return;
    t.loading = 'older';
    s.emit('timeline', room);
    try {
      /** @type {Page} */
      const page = await this.client.call('history', { room, before: first.id, limit: PAGE });
      s.addPage(room, page.items, false);
      t.moreBefore = page.more_before;
      for (const i of page.items) this.client.ensureProfile(i.author);
      if (t.unreadAtOpen && !t.firstUnread) this.computeFirstUnread(room);
    } catch (e) {
      if (!isOffline(e)) toast(`Could not load older messages: ${errText(e)}`, { kind: 'error' });
    } finally {
      t.loading = 'none';
      s.emit('timeline', room);
    }
  }

  /** After a jump: loads newer items until the window meets the live end. @param {string} room */
  async loadNewer(room) {
    const s = this.client.store;
    const t = s.timeline(room);
    if (t.loading !== 'none' || !t.moreAfter || s.conn.state !== 'online') return;
    const last = t.items[t.items.length - 1];
    if (!last) return;
    t.loading = 'newer';
    s.emit('timeline', room);
    try {
      /** @type {Page} */
      const page = await this.client.call('history', { room, after: last.id, limit: PAGE });
      s.addPage(room, page.items, false);
      t.moreAfter = page.more_after;
      for (const i of page.items) this.client.ensureProfile(i.author);
    } catch (e) {
      if (!isOffline(e)) toast(`Could not load newer messages: ${errText(e)}`, { kind: 'error' });
    } finally {
      t.loading = 'none';
      s.emit('timeline', room);
    }
  }

  /**
   * Shows a message in context (search hit, pin, mention, reply quote).
   * @param {string} room @param {string} event
   */
  async jumpTo(room, event) {
    const s = this.client.store;
    if (s.current !== room) {
      location.hash = `#/room/${encodeURIComponent(room)}`;
      await this.client.openRoom(room);
    }
    const t = s.timeline(room);
    /** The item to show: the message, or the root of its thread. */
    let target = event;
    const known = t.items.find((i) => i.id === event);
    if (known?.thread_root) {
      target = known.thread_root;
      s.emit('open-thread', { room, root: known.thread_root });
    }
    if (!known) {
      t.loading = 'initial';
      s.emit('timeline', room);
      try {
        /** @type {Page} */
        const page = await this.client.call('history', { room, around: event, limit: PAGE });
        s.addPage(room, page.items, true);
        t.moreBefore = page.more_before;
        t.moreAfter = page.more_after;
        for (const i of page.items) this.client.ensureProfile(i.author);
        const hit = page.items.find((i) => i.id === event);
        // A thread reply is shown in its thread.
        if (hit && hit.thread_root) {
          target = hit.thread_root;
          s.emit('open-thread', { room, root: hit.thread_root });
        }
      } catch (e) {
        toast(`Could not open that message: ${errText(e)}`, { kind: 'error' });
        return;
      } finally {
        t.loading = 'none';
      }
    }
    // A view that is not listening yet (the room is being built) scrolls to
    // the highlight when it first positions itself.
    t.highlight = target;
    s.emit('timeline', room);
    s.emit('jump', { room, event: target });
  }

  /** @param {string} room */
  async jumpToLatest(room) {
    const t = this.client.store.timeline(room);
    if (t.moreAfter) await this.loadLatest(room).catch(() => {});
    this.client.store.emit('jump', { room, event: null });
  }

  /** Loads older pages until the first unread item is loaded, then jumps. @param {string} room */
  async jumpToFirstUnread(room) {
    const s = this.client.store;
    const t = s.timeline(room);
    for (let i = 0; i < 10 && !t.firstUnread && t.moreBefore; i++) {
      await this.loadOlder(room);
      this.computeFirstUnread(room);
    }
    if (!t.firstUnread && t.items.length) t.firstUnread = t.items[0].id;
    s.emit('timeline', room);
    if (t.firstUnread) s.emit('jump', { room, event: t.firstUnread, divider: true });
  }

  /** Places the "New messages" divider from the unread count at opening. @param {string} room */
  computeFirstUnread(room) {
    const s = this.client.store;
    const t = s.timeline(room);
    if (!t.unreadAtOpen || t.firstUnread) return;
    let n = 0;
    for (let i = t.items.length - 1; i >= 0; i--) {
      if (countsAsUnread(t.items[i], s.me)) n++;
      if (n >= t.unreadAtOpen) {
        t.firstUnread = t.items[i].id;
        return;
      }
    }
    if (!t.moreBefore && t.items.length) {
      const firstCounted = t.items.find((i) => countsAsUnread(i, s.me));
      t.firstUnread = firstCounted ? firstCounted.id : null;
    }
  }
}
