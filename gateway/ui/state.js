// The client's state: rooms, timelines, threads, profiles, presence,
// typing, the outbox of unsent messages. Views read it and subscribe to
// topics; the controller (client.js) is the only writer.

import { compareItems, localpart } from './util.js';

/** @typedef {import('./types.js').Item} Item */
/** @typedef {import('./types.js').Hello} Hello */
/** @typedef {import('./types.js').RoomSummary} RoomSummary */
/** @typedef {import('./types.js').RoomDetail} RoomDetail */
/** @typedef {import('./types.js').Profile} Profile */
/** @typedef {import('./types.js').Presence} Presence */
/** @typedef {import('./types.js').PendingSend} PendingSend */

/** Kinds that change an earlier item instead of being shown. */
export const FOLDED_KINDS = new Set(['edit', 'redact', 'react', 'unreact']);

/**
 * @typedef {object} Timeline
 * @property {Item[]} items shown items in timeline order (no folded kinds, rejected items or thread replies)
 * @property {Map<string, Item>} byId every item known in the room, thread replies included
 * @property {boolean} moreBefore older items exist
 * @property {boolean} moreAfter the window does not reach the newest item (after a jump)
 * @property {'none'|'initial'|'older'|'newer'} loading
 * @property {string|null} error
 * @property {boolean} loaded a page has been loaded (or restored from the cache)
 * @property {boolean} fromCache what is shown came from the offline cache
 * @property {string|null} liveLast the newest event seen live: `since` for a resubscribe
 * @property {boolean} subscribed
 * @property {number} unreadAtOpen the unread count when the room was opened
 * @property {string|null} firstUnread id of the first unread item (the divider goes above it)
 * @property {string|null} highlight an item to highlight after a jump
 */

/**
 * @typedef {object} ThreadState
 * @property {string} root
 * @property {string} room
 * @property {Item[]} items replies, oldest first (the root is not among them)
 * @property {boolean} moreBefore
 * @property {boolean} loading
 * @property {string|null} error
 * @property {boolean} loaded
 */

/**
 * @typedef {{state: 'offline'|'connecting'|'authenticating'|'online'|'stopped', retryAt?: number, reason?: string}} ConnState
 */

/** @returns {Timeline} */
function newTimeline() {
  return {
    items: [],
    byId: new Map(),
    moreBefore: true,
    moreAfter: false,
    loading: 'none',
    error: null,
    loaded: false,
    fromCache: false,
    liveLast: null,
    subscribed: false,
    unreadAtOpen: 0,
    firstUnread: null,
    highlight: null,
  };
}

/** @param {Item} item */
export function isShown(item) {
  return !item.rejected && !FOLDED_KINDS.has(item.kind) && !item.thread_root;
}

/** Messages that count as unread: others' messages. @param {Item} item @param {string|null} me */
export function countsAsUnread(item, me) {
  return item.kind === 'message' && item.author !== me && !item.rejected && !item.thread_root;
}

/**
 * Inserts `item` into `list` (sorted), replacing an item with the same id.
 * @param {Item[]} list @param {Item} item
 */
function upsertSorted(list, item) {
  const at = list.findIndex((x) => x.id === item.id);
  if (at >= 0) {
    list[at] = item;
    return;
  }
  let i = list.length;
  while (i > 0 && compareItems(list[i - 1], item) > 0) i--;
  list.splice(i, 0, item);
}

export class Store {
  constructor() {
    /** @type {string|null} */
    this.me = null;
    /** @type {Hello|null} */
    this.hello = null;
    /** @type {ConnState} */
    this.conn = { state: 'offline' };
    /** @type {Map<string, RoomSummary>} */
    this.rooms = new Map();
    this.roomsLoaded = false;
    /** @type {Map<string, RoomDetail>} */
    this.details = new Map();
    /** @type {Map<string, Timeline>} */
    this.timelines = new Map();
    /** @type {Map<string, ThreadState>} */
    this.threads = new Map();
    /** @type {Map<string, Profile>} */
    this.profiles = new Map();
    /** @type {Map<string, {presence: Presence, last_active: number|null}>} */
    this.presence = new Map();
    /** @type {Map<string, Map<string, number>>} room → user → expiry */
    this.typing = new Map();
    /** @type {Map<string, Map<string, string>>} room → user → event read */
    this.reads = new Map();
    /** @type {Map<string, Map<string, string>>} room → user → newest event their node holds */
    this.delivered = new Map();
    /** @type {Map<string, import('./types.js').Notice>} the user's notes by id */
    this.notices = new Map();
    /** @type {PendingSend[]} */
    this.outbox = [];
    /** @type {Set<string>} */
    this.blocked = new Set(JSON.parse(localStorage.getItem('confab.blocked') || '[]'));
    /** @type {string|null} */
    this.current = null;
    /** @type {Map<string, Set<(arg: any) => void>>} */
    this.listeners = new Map();
  }

  /**
   * Subscribes to a topic; returns the unsubscribe function.
   * Topics: `rooms`, `conn`, `me`, `timeline` (room), `thread` (root),
   * `detail` (room), `profile` (user), `presence` (user), `typing` (room),
   * `outbox` (room), `reads` (room), `current`.
   * @param {string} topic @param {(arg: any) => void} fn
   */
  on(topic, fn) {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** @param {string} topic @param {unknown} [arg] */
  emit(topic, arg) {
    const set = this.listeners.get(topic);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (e) {
        console.error(`listener for ${topic} failed`, e);
      }
    }
  }

  /** @param {ConnState} conn */
  setConn(conn) {
    this.conn = conn;
    this.emit('conn', conn);
  }

  // ---- people ----

  /** @param {string} user */
  displayName(user) {
    if (this.blocked.has(user)) return `${localpart(user)} (blocked)`;
    const p = this.profiles.get(user);
    return (p && p.display_name.trim()) || localpart(user);
  }

  /** @param {Profile} p */
  setProfile(p) {
    this.profiles.set(p.user, p);
    if (p.presence) this.presence.set(p.user, { presence: p.presence, last_active: p.last_active ?? null });
    this.emit('profile', p.user);
    this.emit('presence', p.user);
  }

  /** @param {string} user @param {Presence} presence @param {number|null} lastActive */
  setPresence(user, presence, lastActive) {
    this.presence.set(user, { presence, last_active: lastActive });
    this.emit('presence', user);
  }

  /** @param {string} user @param {boolean} blocked */
  setBlocked(user, blocked) {
    if (blocked) this.blocked.add(user);
    else this.blocked.delete(user);
    localStorage.setItem('confab.blocked', JSON.stringify([...this.blocked]));
    this.emit('profile', user);
    for (const room of this.timelines.keys()) this.emit('timeline', room);
  }

  // ---- rooms ----

  /** @param {RoomSummary[]} list */
  setRooms(list) {
    this.rooms = new Map(list.map((r) => [r.room, r]));
    this.roomsLoaded = true;
    this.emit('rooms');
  }

  /** @param {RoomSummary} summary */
  updateRoom(summary) {
    this.rooms.set(summary.room, summary);
    const d = this.details.get(summary.room);
    if (d) d.summary = summary;
    this.emit('rooms');
    this.emit('detail', summary.room);
  }

  /** @param {string} room */
  removeRoom(room) {
    this.rooms.delete(room);
    this.emit('rooms');
  }

  /** @param {RoomDetail} detail */
  setDetail(detail) {
    this.details.set(detail.summary.room, detail);
    this.rooms.set(detail.summary.room, detail.summary);
    this.emit('detail', detail.summary.room);
    this.emit('rooms');
  }

  /** @param {string} room @param {string} perm */
  can(room, perm) {
    const d = this.details.get(room);
    return !!d && d.my_permissions.includes(perm);
  }

  /**
   * Whether the user may invite into the room, as its rules judge it: a
   * private room of rules version 1, or one that lets members invite, asks
   * only for message.send. @param {string} room
   */
  mayInvite(room) {
    const d = this.details.get(room);
    if (!d || d.summary.direct_with || d.summary.archived) return false;
    if (d.summary.visibility !== 'private' || d.rules_version < 2 || d.invites === 'members') {
      return d.my_permissions.includes('message.send');
    }
    return d.my_permissions.includes('room.settings');
  }

  /** The end of the user's active mute in a room, if any. @param {string} room */
  mutedUntil(room) {
    const d = this.details.get(room);
    if (!d || !this.me) return null;
    const m = d.members.find((x) => x.user === this.me);
    return m && m.muted_until && m.muted_until > Date.now() ? m.muted_until : null;
  }

  /** Name shown for a room (a DM shows the other person). @param {string} room */
  roomName(room) {
    const r = this.rooms.get(room);
    if (!r) return 'Room';
    if (r.direct_with) return this.displayName(r.direct_with);
    return r.name || 'Untitled room';
  }

  /** @param {string|null} room */
  setCurrent(room) {
    this.current = room;
    this.emit('current', room);
  }

  // ---- timelines ----

  /** @param {string} room */
  timeline(room) {
    let t = this.timelines.get(room);
    if (!t) this.timelines.set(room, (t = newTimeline()));
    return t;
  }

  /**
   * Adds items from a history page or from the cache. Folded kinds in pages
   * are not applied: page items already carry their aggregates.
   * @param {string} room @param {Item[]} items @param {boolean} replace
   */
  addPage(room, items, replace) {
    const t = this.timeline(room);
    if (replace) {
      t.items = [];
      t.byId = new Map();
    }
    for (const item of items) this.place(t, item);
    this.emit('timeline', room);
  }

  /**
   * A live item (push): new, or an update of one we have.
   * @param {string} room @param {Item} item
   * @returns {boolean} whether it was new
   */
  addLive(room, item) {
    const t = this.timeline(room);
    const isNew = !t.byId.has(item.id);
    t.liveLast = item.id;
    if (isNew && FOLDED_KINDS.has(item.kind)) this.fold(room, item);
    if (isNew && item.thread_root && !item.rejected) this.bumpThread(room, item);
    if (!t.moreAfter || t.byId.has(item.id)) this.place(t, item);
    else t.byId.set(item.id, item);
    if (item.thread_root) this.placeInThread(item);
    this.emit('timeline', room);
    return isNew;
  }

  /** @param {Timeline} t @param {Item} item */
  place(t, item) {
    t.byId.set(item.id, item);
    if (isShown(item)) upsertSorted(t.items, item);
    else if (item.rejected) {
      const at = t.items.findIndex((x) => x.id === item.id);
      if (at >= 0) t.items.splice(at, 1);
    }
  }

  /**
   * Replaces an item everywhere it is shown.
   * @param {string} room @param {Item} item
   */
  replaceItem(room, item) {
    const t = this.timeline(room);
    this.place(t, item);
    if (item.thread_root) this.placeInThread(item);
    const th = this.threads.get(item.id);
    if (th) this.emit('thread', item.id);
  }

  /** Applies an edit, redaction or reaction to its target, idempotently. @param {string} room @param {Item} ev */
  fold(room, ev) {
    const t = this.timeline(room);
    const target = ev.target ? t.byId.get(ev.target) : undefined;
    if (!target || ev.rejected) return;
    /** @type {Item} */
    let next = target;
    if (ev.kind === 'edit' && ev.author === target.author && !target.redacted) {
      next = { ...target, edited_body: ev.body ?? null, edited_html: ev.html ?? null };
    } else if (ev.kind === 'redact') {
      next = {
        ...target,
        redacted: ev.reason ?? '',
        body: null,
        html: null,
        edited_body: null,
        edited_html: null,
        attachments: [],
        mentions: [],
        reactions: [],
      };
    } else if ((ev.kind === 'react' || ev.kind === 'unreact') && ev.emoji) {
      const reactions = (target.reactions ?? []).map((r) => ({ emoji: r.emoji, users: [...r.users] }));
      let r = reactions.find((x) => x.emoji === ev.emoji);
      if (ev.kind === 'react') {
        if (!r) reactions.push((r = { emoji: ev.emoji, users: [] }));
        if (!r.users.includes(ev.author)) r.users.push(ev.author);
      } else if (r) {
        r.users = r.users.filter((u) => u !== ev.author);
      }
      next = { ...target, reactions: reactions.filter((x) => x.users.length > 0) };
    }
    if (next !== target) this.replaceItem(room, next);
  }

  /** Counts a new live reply on its root (unless the root already counts it). @param {string} room @param {Item} reply */
  bumpThread(room, reply) {
    const t = this.timeline(room);
    const root = reply.thread_root ? t.byId.get(reply.thread_root) : undefined;
    if (!root) return;
    if (root.thread && root.thread.last_ts >= reply.ts) return;
    const replies = (root.thread?.replies ?? 0) + 1;
    this.replaceItem(room, { ...root, thread: { replies, last_ts: reply.ts } });
  }

  /** @param {Item} item */
  placeInThread(item) {
    if (!item.thread_root) return;
    const th = this.threads.get(item.thread_root);
    if (!th) return;
    if (item.rejected) th.items = th.items.filter((x) => x.id !== item.id);
    else upsertSorted(th.items, item);
    this.emit('thread', th.root);
  }

  /** @param {string} room @param {string} root */
  thread(room, root) {
    let th = this.threads.get(root);
    if (!th) {
      th = { root, room, items: [], moreBefore: false, loading: false, error: null, loaded: false };
      this.threads.set(root, th);
    }
    return th;
  }

  /** @param {string} room */
  clearTimeline(room) {
    this.timelines.delete(room);
    this.emit('timeline', room);
  }

  // ---- outbox ----

  /** @param {string} room @param {string|null} threadRoot */
  pendingFor(room, threadRoot) {
    return this.outbox.filter((p) => p.room === room && (p.thread_root ?? null) === threadRoot);
  }

  /** @param {PendingSend} p */
  emitOutbox(p) {
    this.emit('outbox', p.room);
    if (p.thread_root) this.emit('thread', p.thread_root);
  }

  // ---- ephemeral ----

  /** @param {string} room @param {string} user @param {boolean} on */
  setTyping(room, user, on) {
    let m = this.typing.get(room);
    if (!m) this.typing.set(room, (m = new Map()));
    if (on) m.set(user, Date.now() + 6000);
    else m.delete(user);
    this.emit('typing', room);
  }

  /** Users typing in a room now. @param {string} room */
  typingIn(room) {
    const m = this.typing.get(room);
    if (!m) return [];
    const now = Date.now();
    return [...m].filter(([u, exp]) => exp > now && u !== this.me).map(([u]) => u);
  }

  /** @param {string} room @param {string} user @param {string} event */
  setRead(room, user, event) {
    let m = this.reads.get(room);
    if (!m) this.reads.set(room, (m = new Map()));
    m.set(user, event);
    this.emit('reads', room);
  }

  /** @param {string} room @param {string} user @param {string} event */
  setDelivered(room, user, event) {
    let m = this.delivered.get(room);
    if (!m) this.delivered.set(room, (m = new Map()));
    m.set(user, event);
    this.emit('reads', room);
  }

  /** @param {import('./types.js').Notice[]} list */
  setNotices(list) {
    this.notices = new Map(list.map((n) => [n.id, n]));
    for (const r of new Set(list.map((n) => n.room))) this.emit('notices', r);
  }

  /** @param {import('./types.js').Notice} n */
  addNotice(n) {
    this.notices.set(n.id, n);
    this.emit('notices', n.room);
  }

  /** @param {string} id */
  removeNotice(id) {
    const n = this.notices.get(id);
    if (!n) return;
    this.notices.delete(id);
    this.emit('notices', n.room);
  }

  /** The user's notes in a room, oldest first. @param {string} room */
  noticesIn(room) {
    return [...this.notices.values()].filter((n) => n.room === room).sort((a, b) => a.ts - b.ts);
  }
}
