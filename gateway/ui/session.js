// Tokens (PROTOCOL.md §3): the refresh token lives in localStorage, the
// access token in memory. Tabs share one refresh token, so refreshes are
// serialised with a Web Lock and new access tokens are shared over a
// BroadcastChannel; a tab never uses a rotated refresh token (reuse would
// revoke the whole login).

import { RequestError } from './protocol.js';

/** @typedef {import('./types.js').SessionGrant} SessionGrant */
/** @typedef {import('./protocol.js').Socket} Socket */

const REFRESH_KEY = 'confab.refresh';
const USER_KEY = 'confab.user';
const LOCK_NAME = 'confab-refresh';
/** Refresh this long before the access token expires. */
const REFRESH_AHEAD_MS = 60000;

/**
 * @typedef {object} SessionEvents
 * @property {() => void} revoked the login ended (here or in another tab)
 * @property {(user: string) => void} otherUser another tab signed in as someone else
 */

export class Session {
  /** @param {SessionEvents} events */
  constructor(events) {
    this.events = events;
    /** @type {string|null} */
    this.accessToken = null;
    this.accessExpires = 0;
    /** @type {string|null} */
    this.user = localStorage.getItem(USER_KEY);
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    /** @type {Socket|null} */
    this.socket = null;
    /** @type {BroadcastChannel|null} */
    this.channel = 'BroadcastChannel' in window ? new BroadcastChannel('confab-auth') : null;
    this.channel?.addEventListener('message', (ev) => this.onBroadcast(ev.data));
  }

  /** True if this browser holds a login. */
  get hasLogin() {
    return !!localStorage.getItem(REFRESH_KEY) && !!this.user;
  }

  /** @param {any} msg */
  onBroadcast(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'token') {
      if (this.user && msg.user !== this.user) {
        this.events.otherUser(msg.user);
        return;
      }
      if (msg.access_expires > this.accessExpires) {
        this.accessToken = msg.access_token;
        this.accessExpires = msg.access_expires;
        this.schedule();
      }
    } else if (msg.type === 'logout') {
      this.forget();
      this.events.revoked();
    }
  }

  /** @param {SessionGrant} grant */
  adopt(grant) {
    localStorage.setItem(REFRESH_KEY, grant.refresh_token);
    localStorage.setItem(USER_KEY, grant.user);
    this.user = grant.user;
    this.accessToken = grant.access_token;
    this.accessExpires = grant.access_expires;
    this.channel?.postMessage({
      type: 'token',
      user: grant.user,
      access_token: grant.access_token,
      access_expires: grant.access_expires,
    });
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.accessExpires) return;
    const wait = Math.max(1000, this.accessExpires - REFRESH_AHEAD_MS - Date.now());
    this.timer = setTimeout(() => {
      const s = this.socket;
      if (s && s.state === 'open') this.refresh(s).catch(() => {});
    }, wait);
  }

  /** Forgets every token (after logout or revocation). */
  forget() {
    clearTimeout(this.timer);
    this.accessToken = null;
    this.accessExpires = 0;
    localStorage.removeItem(REFRESH_KEY);
    localStorage.removeItem(USER_KEY);
    this.user = null;
  }

  /**
   * Authenticates a freshly opened socket. Resolves with the user, or
   * rejects with `unauthenticated` when the login is gone.
   * @param {Socket} socket
   * @returns {Promise<string>}
   */
  async authenticate(socket) {
    this.socket = socket;
    if (this.accessToken && this.accessExpires - Date.now() > 30000) {
      try {
        const r = await socket.request('authenticate', { access_token: this.accessToken });
        return r.user;
      } catch (e) {
        if (!(e instanceof RequestError) || (e.code !== 'token_expired' && e.code !== 'unauthenticated')) throw e;
      }
    }
    const grant = await this.refresh(socket);
    return grant.user;
  }

  /**
   * Trades the refresh token for new tokens, one tab at a time.
   * @param {Socket} socket
   * @returns {Promise<{user: string}>}
   */
  async refresh(socket) {
    const run = async () => {
      // Another tab may have refreshed while we waited for the lock.
      if (this.accessToken && this.accessExpires - Date.now() > REFRESH_AHEAD_MS + 30000) {
        const r = await socket.request('authenticate', { access_token: this.accessToken });
        return { user: /** @type {string} */ (r.user) };
      }
      const token = localStorage.getItem(REFRESH_KEY);
      if (!token) throw new RequestError({ code: 'unauthenticated', message: 'not signed in' });
      /** @type {SessionGrant} */
      const grant = await socket.request('refresh', { refresh_token: token });
      this.adopt(grant);
      return { user: grant.user };
    };
    if (navigator.locks) return navigator.locks.request(LOCK_NAME, run);
    return run();
  }

  /**
   * @param {Socket} socket
   * @param {'login'|'register'} how
   * @param {{username: string, password: string, invite_code?: string}} fields
   */
  async signIn(socket, how, fields) {
    this.socket = socket;
    /** @type {SessionGrant} */
    const grant = await socket.request(how, fields);
    if (this.user && this.user !== grant.user) {
      // A different account: the cached data of the last one must go.
      this.user = grant.user;
    }
    this.adopt(grant);
    return grant.user;
  }

  /** @param {Socket} socket @param {boolean} everywhere */
  async logout(socket, everywhere) {
    const token = localStorage.getItem(REFRESH_KEY);
    try {
      if (everywhere) await socket.request('logout_all');
      else if (token) await socket.request('logout', { refresh_token: token });
    } finally {
      this.forget();
      this.channel?.postMessage({ type: 'logout' });
    }
  }
}
