// The controller: owns the socket and the session, keeps the store in step
// with the server, and offers the actions the views call. Every request of
// the protocol is issued from here.

import { RequestError, Socket, socketUrl } from './protocol.js';
import { Session } from './session.js';
import { Store } from './state.js';
import { cacheClear, cacheGet, cacheSet } from './cache.js';
import { blobUrl, upload } from './files.js';
import { compareItems, throttle } from './util.js';
import { toast } from './dom.js';
import { clearDrafts } from './drafts.js';
import { errText, isOffline } from './errors.js';
import { History, PAGE } from './history.js';
import { notifyOf } from './notify.js';
import { Outbox } from './outbox.js';

// The views import these from here.
export { errText, isOffline } from './errors.js';
export { roomNotifyLevel, setRoomNotifyLevel } from './notify.js';

/** @typedef {import('./types.js').Item} Item */
/** @typedef {import('./types.js').Page} Page */
/** @typedef {import('./types.js').Push} Push */
/** @typedef {import('./types.js').Hello} Hello */
/** @typedef {import('./types.js').Profile} Profile */
/** @typedef {import('./types.js').Settings} Settings */
/** @typedef {import('./types.js').RoomSummary} RoomSummary */
/** @typedef {import('./types.js').RoomDetail} RoomDetail */
/** @typedef {import('./types.js').Attachment} Attachment */
/** @typedef {import('./types.js').PendingSend} PendingSend */

/** Rooms kept subscribed and in memory besides the open one. */
const KEEP_ROOMS = 8;
const PROFILE_TTL_MS = 10 * 60 * 1000;
/** Kinds after which the room's details (members, roles, pins, settings) are re-read. */
const DETAIL_KINDS = new Set([
  'join', 'leave', 'invite', 'kick', 'ban', 'unban', 'mute', 'unmute', 'settings',
  'pin', 'unpin', 'role.define', 'role.grant', 'role.revoke', 'archive',
]);

export class Client {
  constructor() {
    this.store = new Store();
    this.session = new Session({
      revoked: () => this.signedOut('You were signed out.'),
      otherUser: () => location.reload(),
    });
    this.socket = new Socket(socketUrl(), {
      hello: (hello) => this.onHello(hello),
      push: (push) => this.onPush(push),
      state: (state, info) => this.onSocketState(state, info),
    });
    /** Rooms in the order they were last opened (most recent last). */
    /** @type {string[]} */
    this.recent = [];
    /** @type {Map<string, string>} room → last event marked read */
    this.marked = new Map();
    /** @type {Map<string, Promise<void>>} */
    this.profileFetches = new Map();
    /** @type {Map<string, number>} */
    this.profileFetched = new Map();
    /** @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.detailTimers = new Map();
    this.outbox = new Outbox(this);
    this.history = new History(this);
    this.authError = /** @type {string|null} */ (null);
    // Throttled, not debounced: a busy room must not postpone saving forever.
    this.saveProfiles = throttle(() => this.persist('profiles', [...this.store.profiles.values()]), 2000);
    this.saveRooms = throttle(() => this.persist('rooms', [...this.store.rooms.values()]), 1000);
    /** @type {Map<string, () => void>} */
    this.saveTimelines = new Map();
    this.awayTimer = /** @type {ReturnType<typeof setTimeout>|undefined} */ (undefined);
    this.presence = /** @type {'online'|'away'} */ ('online');
    document.addEventListener('visibilitychange', () => this.updatePresence());
    window.addEventListener('focus', () => this.updatePresence());
  }

  /** Starts: shows cached data for a remembered login, then connects. */
  async start() {
    if (this.session.hasLogin && this.session.user) {
      this.store.me = this.session.user;
      await this.loadCache();
    }
    this.store.emit('me');
    this.socket.connect();
  }

  // ---------------------------------------------------------------- cache

  /** @param {string} key */
  cacheKey(key) {
    return `${this.store.me}|${key}`;
  }

  /** @param {string} key @param {unknown} value */
  persist(key, value) {
    if (!this.store.me) return;
    cacheSet(this.cacheKey(key), value).catch(() => {});
  }

  async loadCache() {
    const s = this.store;
    const [rooms, profiles, outbox] = await Promise.all([
      cacheGet(this.cacheKey('rooms')),
      cacheGet(this.cacheKey('profiles')),
      cacheGet(this.cacheKey('outbox')),
    ]);
    if (Array.isArray(profiles)) for (const p of profiles) s.profiles.set(p.user, p);
    if (Array.isArray(rooms) && !s.roomsLoaded) {
      s.rooms = new Map(rooms.map((r) => [r.room, r]));
      s.emit('rooms');
    }
    if (Array.isArray(outbox)) {
      s.outbox = outbox.map((p) => (p.state === 'sending' ? { ...p, state: 'queued' } : p));
    }
  }

  /** @param {string} room */
  saveTimeline(room) {
    let d = this.saveTimelines.get(room);
    if (!d) {
      d = throttle(() => {
        const t = this.store.timelines.get(room);
        if (!t || t.moreAfter || !t.loaded) return;
        const items = [...t.byId.values()].filter((i) => !i.rejected).sort((a, b) => (a.depth ?? 0) - (b.depth ?? 0));
        this.persist(`tl|${room}`, { items: items.slice(-PAGE * 2), liveLast: t.liveLast, moreBefore: true });
      }, 3000);
      this.saveTimelines.set(room, d);
    }
    d();
  }

  // --------------------------------------------------------------- socket

  /** @param {import('./protocol.js').SocketState} state @param {{retryAt?: number, code?: number, reason?: string}} info */
  onSocketState(state, info) {
    const s = this.store;
    if (state === 'connecting') s.setConn({ state: 'connecting' });
    else if (state === 'waiting') {
      s.setConn({ state: 'offline', retryAt: info.retryAt, reason: info.code === 4008 ? 'too_many_connections' : undefined });
      for (const t of s.timelines.values()) t.subscribed = false;
      // Nobody can hear from this user now: their own dot says away until
      // the next sign-in sets their presence again.
      if (s.me && s.presence.get(s.me)?.presence === 'online') s.setPresence(s.me, 'away', Date.now());
    } else if (state === 'stopped' && info.reason) {
      s.setConn({ state: 'stopped', reason: info.reason });
    }
  }

  /** @param {Hello} hello */
  async onHello(hello) {
    const s = this.store;
    s.hello = hello;
    s.emit('hello');
    if (!this.session.hasLogin) {
      s.setConn({ state: 'online' });
      return;
    }
    s.setConn({ state: 'authenticating' });
    try {
      const user = await this.session.authenticate(this.socket);
      if (s.me && s.me !== user) {
        location.reload();
        return;
      }
      await this.onSignedIn(user);
    } catch (e) {
      if (e instanceof RequestError && (e.code === 'unauthenticated' || e.code === 'disabled')) {
        this.signedOut(e.code === 'disabled' ? 'This account is disabled.' : 'Your session has ended. Please sign in again.');
      } else {
        // Transient (rate limit, node down): try again on a new socket.
        setTimeout(() => this.socket.drop(), 2000);
      }
    }
  }

  /** After authentication on a fresh socket: resynchronise everything. @param {string} user */
  async onSignedIn(user) {
    const s = this.store;
    const first = s.me !== user;
    s.me = user;
    if (first) s.emit('me');
    s.setConn({ state: 'online' });
    this.ensureProfile(user, true);
    this.updatePresence(true);
    const rooms = this.listRooms();
    this.loadNotices();
    // Resume every room we follow from the last event seen, then flush.
    const rooms2 = [...new Set([...(s.current ? [s.current] : []), ...this.recent])];
    await Promise.all(rooms2.map((r) => this.ensureLive(r).catch(() => {})));
    await rooms;
    if (s.current) this.ensureDetail(s.current, true);
    this.outbox.flush();
  }

  /** The welcome bot's notes (only this user sees them). */
  async loadNotices() {
    try {
      /** @type {{notices: import('./types.js').Notice[]}} */
      const r = await this.call('notices');
      this.store.setNotices(r.notices);
    } catch (e) {
      if (!isOffline(e)) console.warn('notices failed', e);
    }
  }

  /** @param {string} id */
  async dismissNotice(id) {
    this.store.removeNotice(id);
    await this.call('dismiss_notice', { notice: id });
  }

  /**
   * Earlier versions of a message (its author's or a moderator's view).
   * @param {string} room @param {string} target
   * @returns {Promise<import('./types.js').MessageVersion[]>}
   */
  async editHistory(room, target) {
    const r = await this.call('edit_history', { room, target });
    return r.versions;
  }

  async listRooms() {
    try {
      /** @type {{rooms: RoomSummary[]}} */
      const r = await this.call('list_rooms');
      this.store.setRooms(r.rooms);
      this.saveRooms();
      for (const room of r.rooms) if (room.direct_with) this.ensureProfile(room.direct_with);
    } catch (e) {
      if (!isOffline(e)) toast(`Could not load your rooms: ${errText(e)}`, { kind: 'error' });
    }
  }

  /**
   * Sends a request; refreshes an expired access token once.
   * @param {string} type @param {Record<string, unknown>} [fields]
   * @returns {Promise<any>}
   */
  async call(type, fields = {}) {
    try {
      return await this.socket.request(type, fields);
    } catch (e) {
      if (e instanceof RequestError && e.code === 'token_expired') {
        await this.session.refresh(this.socket);
        return this.socket.request(type, fields);
      }
      throw e;
    }
  }

  /** A valid access token for HTTP requests. */
  async accessToken() {
    const sess = this.session;
    if (sess.accessToken && sess.accessExpires - Date.now() > 20000) return sess.accessToken;
    if (this.socket.state === 'open') await sess.refresh(this.socket);
    if (!sess.accessToken) throw new RequestError({ code: 'unauthenticated', message: 'not signed in' });
    return sess.accessToken;
  }

  // ---------------------------------------------------------------- pushes

  /** @param {Push} p */
  onPush(p) {
    const s = this.store;
    switch (p.push) {
      case 'room_event':
        this.onRoomEvent(p.room, p.item);
        break;
      case 'room_update': {
        if (p.summary.left) {
          s.removeRoom(p.summary.room);
          this.saveRooms();
          break;
        }
        const prev = s.rooms.get(p.summary.room);
        const looking = s.current === p.summary.room && !document.hidden && this.atBottom(p.summary.room);
        if (looking && (p.summary.unread > 0 || p.summary.mentions > 0)) {
          // The open room is being read: keep it at zero, and say so.
          s.updateRoom({ ...p.summary, unread: 0, mentions: 0 });
          this.markRead(p.summary.room);
        } else {
          s.updateRoom(p.summary);
        }
        if (p.summary.direct_with) this.ensureProfile(p.summary.direct_with);
        if (!prev && p.summary.invited) toast(`You were invited to ${s.roomName(p.summary.room)}.`);
        this.saveRooms();
        break;
      }
      case 'typing':
        s.setTyping(p.room, p.user, p.typing);
        if (p.typing) {
          this.ensureProfile(p.user);
          setTimeout(() => s.emit('typing', p.room), 6100);
        }
        break;
      case 'presence':
        s.setPresence(p.user, p.presence, p.last_active);
        break;
      case 'read':
        s.setRead(p.room, p.user, p.event);
        break;
      case 'delivered':
        s.setDelivered(p.room, p.user, p.event);
        break;
      case 'notice':
        s.addNotice(p.notice);
        break;
      case 'notice_dismissed':
        s.removeNotice(p.notice);
        break;
      case 'revoked':
        this.session.forget();
        this.signedOut('You were signed out (this session was ended elsewhere).');
        break;
      default:
        break;
    }
  }

  /** @param {string} room @param {Item} item */
  onRoomEvent(room, item) {
    const s = this.store;
    const isNew = s.addLive(room, item);
    this.ensureProfile(item.author);
    if (item.target && item.target.startsWith('@')) this.ensureProfile(item.target);
    // Our own confirmed message: drop its pending copy. The push may come
    // before the reply that names the event: match the message in flight.
    const before = s.outbox.length;
    if (item.author === s.me && item.kind === 'message') {
      const inFlight = s.outbox.find(
        (p) => p.state === 'sending' && !p.event && p.room === room && p.body === (item.body ?? '') && (p.thread_root ?? null) === (item.thread_root ?? null),
      );
      if (inFlight) inFlight.event = item.id;
    }
    s.outbox = s.outbox.filter((p) => p.event !== item.id);
    if (s.outbox.length !== before) {
      s.emit('outbox', room);
      if (item.thread_root) s.emit('thread', item.thread_root);
      this.outbox.save();
    }
    if (DETAIL_KINDS.has(item.kind) && s.details.has(room)) this.scheduleDetail(room);
    if (item.kind === 'leave' && item.author === s.me) s.removeRoom(room);
    if (isNew && (item.kind === 'kick' || item.kind === 'ban') && item.target === s.me && !item.rejected) {
      toast(`You were ${item.kind === 'ban' ? 'banned' : 'removed'} from ${s.roomName(room)}.`, { kind: 'error' });
      s.removeRoom(room);
    }
    if (isNew) {
      this.saveTimeline(room);
      if (room === s.current) this.markReadSoon(room);
      notifyOf(this, room, item);
    }
  }

  /** @param {string} room */
  scheduleDetail(room) {
    clearTimeout(this.detailTimers.get(room));
    this.detailTimers.set(room, setTimeout(() => this.ensureDetail(room, true), 400));
  }

  // ---------------------------------------------------------------- auth

  /**
   * @param {'login'|'register'} how
   * @param {{username: string, password: string, invite_code?: string}} fields
   */
  async signIn(how, fields) {
    const prev = localStorage.getItem('confab.user');
    const user = await this.session.signIn(this.socket, how, fields);
    if (prev && prev !== user) await cacheClear();
    this.store.me = null;
    await this.loadCacheFor(user);
    await this.onSignedIn(user);
  }

  /** @param {string} user */
  async loadCacheFor(user) {
    this.store.me = user;
    await this.loadCache();
    this.store.me = null;
  }

  /** @param {boolean} everywhere */
  async logout(everywhere) {
    try {
      await this.session.logout(this.socket, everywhere);
    } catch (e) {
      if (!isOffline(e)) toast(`The server did not confirm: ${errText(e)}`, { kind: 'error' });
    }
    this.signedOut(null);
  }

  /** Clears everything of the user and shows the sign-in screen. @param {string|null} why */
  signedOut(why) {
    const s = this.store;
    if (s.me) clearDrafts(s.me);
    this.session.forget();
    cacheClear().catch(() => {});
    s.me = null;
    s.rooms = new Map();
    s.roomsLoaded = false;
    s.details.clear();
    s.timelines.clear();
    s.threads.clear();
    s.outbox = [];
    s.current = null;
    this.recent = [];
    this.authError = why;
    s.emit('me');
    // The server has made this socket unauthenticated (PROTOCOL.md §3); it
    // stays open for the sign-in form.
  }

  // -------------------------------------------------------------- presence

  /** @param {boolean} [force] */
  updatePresence(force = false) {
    clearTimeout(this.awayTimer);
    const want = document.hidden ? 'away' : 'online';
    if (!document.hidden) {
      // Away after 5 minutes without focus or input.
      this.awayTimer = setTimeout(() => this.setPresence('away'), 5 * 60 * 1000);
    }
    if (want !== this.presence || force) this.setPresence(want);
  }

  /** @param {'online'|'away'} presence */
  setPresence(presence) {
    this.presence = presence;
    if (this.store.conn.state !== 'online' || !this.store.me) return;
    this.store.setPresence(this.store.me, presence, Date.now());
    this.call('set_presence', { presence }).catch(() => {});
  }

  /** Call on user input: keeps presence "online". */
  activity() {
    if (this.presence !== 'online' && !document.hidden) this.updatePresence();
  }

  // --------------------------------------------------------------- profiles

  /** @param {string} user @param {boolean} [force] */
  ensureProfile(user, force = false) {
    if (!user || !user.startsWith('@')) return;
    const s = this.store;
    const fetched = this.profileFetched.get(user) ?? 0;
    if (!force && (this.profileFetches.has(user) || (s.profiles.has(user) && Date.now() - fetched < PROFILE_TTL_MS))) return;
    if (!force && s.profiles.has(user) && fetched === 0 && s.conn.state !== 'online') return;
    if (s.conn.state !== 'online') return;
    const p = this.call('get_profile', { user })
      .then((/** @type {Profile} */ prof) => {
        this.profileFetched.set(user, Date.now());
        s.setProfile(prof);
        this.saveProfiles();
      })
      .catch(() => {
        this.profileFetched.set(user, Date.now());
      })
      .finally(() => this.profileFetches.delete(user));
    this.profileFetches.set(user, p);
  }

  /**
   * @param {{display_name?: string, status?: string, avatar?: string|null}} fields
   */
  async setProfile(fields) {
    await this.call('set_profile', fields);
    if (this.store.me) this.ensureProfile(this.store.me, true);
  }

  /** @param {string} query @param {number} [limit] @returns {Promise<Profile[]>} */
  async searchUsers(query, limit = 20) {
    const r = await this.call('search_users', { query, limit });
    for (const p of r.users) if (!this.store.profiles.has(p.user)) this.store.setProfile(p);
    return r.users;
  }

  /** @param {string} user @param {boolean} blocked */
  async block(user, blocked) {
    await this.call('block', { user, blocked });
    this.store.setBlocked(user, blocked);
  }

  // ------------------------------------------------------------------ rooms

  /**
   * Opens a room: cached items at once, then the live timeline.
   * @param {string} room
   */
  async openRoom(room) {
    const s = this.store;
    const t = s.timeline(room);
    const summary = s.rooms.get(room);
    t.unreadAtOpen = summary?.unread ?? 0;
    t.firstUnread = null;
    t.highlight = null;
    this.recent = [...this.recent.filter((r) => r !== room), room];
    this.trimRooms();
    s.setCurrent(room);
    if (!t.loaded) {
      const cached = await cacheGet(this.cacheKey(`tl|${room}`));
      if (cached && Array.isArray(cached.items) && !t.loaded) {
        s.addPage(room, cached.items, true);
        t.loaded = true;
        t.fromCache = true;
        t.moreBefore = true;
        t.liveLast = cached.liveLast ?? null;
        for (const i of cached.items) this.ensureProfile(i.author);
      }
    }
    this.history.computeFirstUnread(room);
    if (s.conn.state === 'online') {
      await Promise.all([this.ensureLive(room), this.ensureDetail(room)]);
      this.history.computeFirstUnread(room);
      s.emit('timeline', room);
    } else {
      s.emit('timeline', room);
    }
  }

  /** Unsubscribes rooms not opened lately. */
  trimRooms() {
    const s = this.store;
    while (this.recent.length > KEEP_ROOMS + 1) {
      const old = /** @type {string} */ (this.recent.shift());
      if (old === s.current) continue;
      const t = s.timelines.get(old);
      if (t?.subscribed && s.conn.state === 'online') this.call('unsubscribe', { room: old }).catch(() => {});
      s.timelines.delete(old);
    }
  }

  /**
   * Makes sure a room's timeline is subscribed and current: resumes from the
   * last event seen, or loads the newest page.
   * @param {string} room
   */
  async ensureLive(room) {
    const s = this.store;
    const t = s.timeline(room);
    if (t.subscribed) return;
    const r = s.rooms.get(room);
    if (r && r.invited) return;
    if (t.loaded && t.liveLast) {
      try {
        t.subscribed = true;
        await this.call('subscribe', { room, since: t.liveLast });
        t.fromCache = false;
        t.error = null;
        s.emit('timeline', room);
        return;
      } catch (e) {
        t.subscribed = false;
        if (!(e instanceof RequestError) || e.code !== 'not_found') {
          t.error = errText(e);
          s.emit('timeline', room);
          throw e;
        }
        // `since` is unknown: start over from the newest page.
      }
    }
    await this.history.loadLatest(room);
  }

  /** @param {string} room */
  markReadSoon(room) {
    clearTimeout(this.detailTimers.get(`read|${room}`));
    this.detailTimers.set(`read|${room}`, setTimeout(() => this.markRead(room), 800));
  }

  /** Moves the read position to the newest item, if the room is being looked at. @param {string} room */
  markRead(room) {
    const s = this.store;
    if (document.hidden || s.current !== room || s.conn.state !== 'online') return;
    const t = s.timelines.get(room);
    if (!t || t.moreAfter || !t.loaded) return;
    if (!this.atBottom(room)) return;
    const last = t.items[t.items.length - 1];
    const event = t.liveLast ?? last?.id;
    if (!event || this.marked.get(room) === event) return;
    this.marked.set(room, event);
    const r = s.rooms.get(room);
    if (r && (r.unread || r.mentions)) s.updateRoom({ ...r, unread: 0, mentions: 0 });
    this.call('mark_read', { room, event }).catch(() => this.marked.delete(room));
  }

  /**
   * Whether the newest items of a room are on screen; the open room's
   * timeline view replaces this while it is shown.
   * @param {string} _room
   */
  atBottom(_room) {
    return true;
  }

  /** @param {string} room @param {boolean} [force] */
  async ensureDetail(room, force = false) {
    const s = this.store;
    if (!force && s.details.has(room)) return;
    if (s.conn.state !== 'online') return;
    const r = s.rooms.get(room);
    if (r && r.invited) return;
    try {
      /** @type {RoomDetail} */
      const d = await this.call('room_info', { room });
      s.setDetail(d);
      for (const m of d.members.slice(0, 100)) this.ensureProfile(m.user);
      for (const m of d.members) {
        if (m.user === s.me) continue;
        if (m.read_up_to) s.setRead(room, m.user, m.read_up_to);
        if (m.delivered_up_to) s.setDelivered(room, m.user, m.delivered_up_to);
      }
      const me = d.members.find((m) => m.user === s.me);
      if (me && me.muted_until && me.muted_until > Date.now()) {
        // Re-read when the mute ends so the composer opens again.
        setTimeout(() => this.ensureDetail(room, true), Math.min(me.muted_until - Date.now() + 500, 2 ** 31 - 1));
      }
    } catch (e) {
      if (!isOffline(e)) console.warn('room_info failed', e);
    }
  }

  /** @param {Settings} settings @param {string[]} invite @returns {Promise<string>} */
  async createRoom(settings, invite) {
    const r = await this.call('create_room', { settings, invite });
    await this.listRooms();
    return r.room;
  }

  /** Opens the DM with a user, creating it if needed. @param {string} user @returns {Promise<string>} */
  async directRoom(user) {
    for (const r of this.store.rooms.values()) if (r.direct_with === user && !r.invited) return r.room;
    const r = await this.call('create_room', { settings: { visibility: 'private' }, direct_with: user, invite: [] });
    await this.listRooms();
    return r.room;
  }

  /** @param {string} query @returns {Promise<RoomSummary[]>} */
  async publicRooms(query) {
    const r = await this.call('public_rooms', { query, limit: 50 });
    return r.rooms;
  }

  /** @param {string} room */
  async joinRoom(room) {
    await this.call('join_room', { room });
    const r = this.store.rooms.get(room);
    if (r) this.store.updateRoom({ ...r, invited: false });
    await this.listRooms();
    const t = this.store.timeline(room);
    t.subscribed = false;
    t.loaded = false;
    if (this.store.current === room) await this.openRoom(room);
  }

  /** @param {string} room */
  async leaveRoom(room) {
    await this.call('leave_room', { room });
    const s = this.store;
    s.removeRoom(room);
    s.timelines.delete(room);
    s.details.delete(room);
    this.recent = this.recent.filter((r) => r !== room);
    this.saveRooms();
  }

  /** @param {string} room @param {string} user */
  async invite(room, user) {
    await this.call('invite', { room, user });
  }

  /** @param {string} room @param {Settings} settings */
  async changeSettings(room, settings) {
    await this.call('change_settings', { room, settings });
    await this.ensureDetail(room, true);
  }

  /** @param {string} room */
  async archiveRoom(room) {
    await this.call('archive_room', { room });
    await this.ensureDetail(room, true);
  }

  /** @param {string} room @param {Record<string, unknown>} action */
  async moderate(room, action) {
    await this.call('moderate', { room, action });
    await this.ensureDetail(room, true);
  }

  // --------------------------------------------------------------- messages

  /** @param {string} room @param {string} target @param {string} body @param {string[]} mentions */
  async edit(room, target, body, mentions) {
    await this.call('edit', { room, target, body, mentions });
  }

  /** @param {string} room @param {string} target @param {string} reason */
  async redact(room, target, reason) {
    await this.call('redact', { room, target, reason });
  }

  /** Adds or removes the user's reaction. @param {string} room @param {Item} item @param {string} emoji */
  async toggleReaction(room, item, emoji) {
    const s = this.store;
    const mine = !!item.reactions?.some((r) => r.emoji === emoji && s.me && r.users.includes(s.me));
    const kind = mine ? 'unreact' : 'react';
    // Optimistic: fold a synthetic event, idempotent with the real one.
    if (s.me) s.fold(room, { id: `local:${emoji}`, room, author: s.me, ts: Date.now(), kind, target: item.id, emoji });
    s.emit('timeline', room);
    try {
      await this.call(kind, { room, target: item.id, emoji });
    } catch (e) {
      if (!(e instanceof RequestError && e.code === 'conflict')) {
        if (s.me) s.fold(room, { id: `local:${emoji}`, room, author: s.me, ts: Date.now(), kind: mine ? 'react' : 'unreact', target: item.id, emoji });
        s.emit('timeline', room);
        throw e;
      }
    }
  }

  /** @param {string} room @param {string} target @param {boolean} pin */
  async pin(room, target, pin) {
    await this.call(pin ? 'pin' : 'unpin', { room, target });
    await this.ensureDetail(room, true);
  }

  /** @param {string} room @param {string} event @param {string} reason */
  async report(room, event, reason) {
    await this.call('report', { room, event, reason });
  }

  /** @param {string} query @param {string|null} room @param {string|null} before @returns {Promise<Page>} */
  async search(query, room, before) {
    /** @type {Record<string, unknown>} */
    const f = { query, limit: 20 };
    if (room) f.room = room;
    if (before) f.before = before;
    const page = await this.call('search', f);
    for (const i of page.items) this.ensureProfile(i.author);
    return page;
  }

  /** @param {string|null} before @returns {Promise<Page>} */
  async mentions(before) {
    const page = await this.call('mentions', before ? { before, limit: 30 } : { limit: 30 });
    for (const i of page.items) this.ensureProfile(i.author);
    return page;
  }

  /** Loads a thread's replies. @param {string} room @param {string} root */
  async loadThread(room, root) {
    const s = this.store;
    const th = s.thread(room, root);
    if (th.loading) return;
    th.loading = true;
    th.error = null;
    s.emit('thread', root);
    try {
      /** @type {Record<string, unknown>} */
      const f = { room, root, limit: PAGE };
      if (th.loaded && th.items[0]) f.before = th.items[0].id;
      /** @type {Page} */
      const page = await this.call('thread', f);
      for (const i of page.items) {
        this.ensureProfile(i.author);
        if (i.id === root) {
          s.replaceItem(room, i);
          continue;
        }
        if (!i.rejected && !th.items.some((x) => x.id === i.id)) th.items.push(i);
        s.timeline(room).byId.set(i.id, i);
      }
      th.items.sort(compareItems);
      th.moreBefore = page.more_before;
      th.loaded = true;
    } catch (e) {
      th.error = errText(e);
    } finally {
      th.loading = false;
      s.emit('thread', root);
    }
  }

  /** Finds an item anywhere (timelines, threads). @param {string} room @param {string} id */
  findItem(room, id) {
    return this.store.timelines.get(room)?.byId.get(id) ?? null;
  }

  /** Typing state for a room, debounced by the composer. @param {string} room @param {boolean} typing */
  typing(room, typing) {
    if (this.store.conn.state !== 'online') return;
    this.call('typing', { room, typing }).catch(() => {});
  }

  /**
   * Uploads a file with progress.
   * @param {File} file @param {(loaded: number, total: number) => void} onProgress
   */
  upload(file, onProgress) {
    return upload(file, () => this.accessToken(), onProgress);
  }

  /** @param {string} blob */
  blobUrl(blob) {
    return blobUrl(blob, () => this.accessToken());
  }
}
