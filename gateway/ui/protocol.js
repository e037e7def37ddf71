// The WebSocket client of the browser protocol (gateway/PROTOCOL.md):
// request ids and replies, pushes, keep-alive and reconnection with
// exponential back-off. It knows nothing of rooms or the UI.

/** @typedef {import('./types.js').Hello} Hello */
/** @typedef {import('./types.js').Push} Push */
/** @typedef {import('./types.js').ErrorBody} ErrorBody */
/** @typedef {'idle'|'connecting'|'open'|'waiting'|'stopped'} SocketState */

export const PROTOCOL_VERSION = 1;
/** Most bytes of a frame the server accepts (PROTOCOL.md §8). */
export const MAX_FRAME_BYTES = 64 * 1024;
const REQUEST_TIMEOUT_MS = 20000;
// A dead link (a laptop that slept, a network that went away without the
// browser noticing) shows within about 10 s: after 5 s without a frame the
// client pings, and a ping unanswered for 5 s ends the socket. An idle
// socket costs one small request every 5 s.
const KEEPALIVE_IDLE_MS = 5000;
const KEEPALIVE_REPLY_MS = 5000;
const KEEPALIVE_CHECK_MS = 1000;
/** A socket that has not said hello this long after connecting is given up. */
const HELLO_TIMEOUT_MS = 10000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const STABLE_MS = 10000;

/** A failed request: a protocol error code, or a client-side one (`offline`, `disconnected`, `timeout`). */
export class RequestError extends Error {
  /** @param {ErrorBody} body */
  constructor(body) {
    super(body.message || body.code);
    this.code = body.code;
    this.retry_after_ms = body.retry_after_ms;
    this.until = body.until;
  }
}

/**
 * @typedef {object} SocketEvents
 * @property {(hello: Hello) => void} hello a new socket is open and said hello
 * @property {(push: Push) => void} push any other push
 * @property {(state: SocketState, info: {retryAt?: number, code?: number, reason?: string}) => void} state
 */

/**
 * One logical connection that reconnects by itself until stopped.
 */
export class Socket {
  /**
   * @param {string} url
   * @param {SocketEvents} events
   */
  constructor(url, events) {
    this.url = url;
    this.events = events;
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {SocketState} */
    this.state = 'idle';
    this.nextId = 1;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: RequestError) => void, timer: ReturnType<typeof setTimeout>}>} */
    this.pending = new Map();
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.keepalive = undefined;
    this.lastReceived = 0;
    this.openedAt = 0;
    this.pinging = false;
    /** Minimum wait before the next try (set by a 4008 close). */
    this.minDelay = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.helloTimer = undefined;
    window.addEventListener('online', () => this.reconnectNow());
    // The browser knows the network is gone: no need to wait for a ping.
    window.addEventListener('offline', () => {
      if (this.ws && this.state !== 'stopped') this.abandon(this.ws, 'offline');
    });
  }

  /** Opens the socket (or does nothing if it is open or opening). */
  connect() {
    if (this.state === 'connecting' || this.state === 'open') return;
    clearTimeout(this.retryTimer);
    this.setState('connecting', {});
    let ws;
    try {
      ws = new WebSocket(`${this.url}?v=${PROTOCOL_VERSION}`);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => {
      if (ws === this.ws && this.state === 'connecting') this.abandon(ws, 'no hello');
    }, HELLO_TIMEOUT_MS);
    ws.addEventListener('open', () => {
      this.openedAt = Date.now();
      this.lastReceived = Date.now();
    });
    ws.addEventListener('message', (ev) => this.onMessage(ws, ev));
    ws.addEventListener('close', (ev) => this.onClose(ws, ev.code, ev.reason));
    ws.addEventListener('error', () => {
      /* a close event follows */
    });
  }

  /** Tries at once (the user pressed "Retry now" or the browser came online). */
  reconnectNow() {
    if (this.state === 'stopped' || this.state === 'open' || this.state === 'connecting') return;
    this.attempt = 0;
    this.minDelay = 0;
    this.connect();
  }

  /** Closes for good (logout). */
  stop() {
    this.setState('stopped', {});
    clearTimeout(this.retryTimer);
    clearTimeout(this.helloTimer);
    this.stopKeepalive();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.failAll('disconnected');
  }

  /** Starts again after `stop`. */
  restart() {
    if (this.state === 'stopped') this.state = 'idle';
    this.attempt = 0;
    this.connect();
  }

  /** Forces a reconnect (e.g. after an authentication mix-up). */
  drop() {
    if (this.ws) this.ws.close(4000, 'client reset');
  }

  /**
   * Sends a request and resolves with its `ok` payload.
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   * @param {{timeout?: number}} [opts]
   * @returns {Promise<any>}
   */
  request(type, fields = {}, opts = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.state !== 'open') {
      return Promise.reject(new RequestError({ code: 'offline', message: 'not connected' }));
    }
    const id = this.nextId++;
    const text = JSON.stringify({ ...fields, id, type });
    if (new TextEncoder().encode(text).length > MAX_FRAME_BYTES) {
      return Promise.reject(new RequestError({ code: 'too_large', message: 'That is too large to send.' }));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new RequestError({ code: 'timeout', message: 'no reply' }));
      }, opts.timeout ?? REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(text);
    });
  }

  /** @param {SocketState} state @param {{retryAt?: number, code?: number, reason?: string}} info */
  setState(state, info) {
    this.state = state;
    this.events.state(state, info);
  }

  /** @param {WebSocket} ws @param {MessageEvent} ev */
  onMessage(ws, ev) {
    if (ws !== this.ws || typeof ev.data !== 'string') return;
    this.lastReceived = Date.now();
    /** @type {any} */
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (typeof msg.push === 'string') {
      if (msg.push === 'hello') {
        if (msg.protocol !== PROTOCOL_VERSION) {
          this.stop();
          this.setState('stopped', { code: 4001, reason: 'unsupported_version' });
          return;
        }
        clearTimeout(this.helloTimer);
        this.setState('open', {});
        this.startKeepalive(ws);
        this.events.hello(/** @type {Hello} */ (msg));
      } else {
        this.events.push(/** @type {Push} */ (msg));
      }
      return;
    }
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new RequestError(msg.error));
      else p.resolve(msg.ok ?? null);
    }
  }

  /**
   * Gives a socket up as dead now, without waiting for its close event: on
   * a dead link the closing handshake cannot finish, and the browser may
   * take a minute to report the close. Its late events are ignored.
   * @param {WebSocket} ws @param {string} why
   */
  abandon(ws, why) {
    if (ws !== this.ws) return;
    try {
      ws.close(4000, why);
    } catch {
      /* already closing */
    }
    this.onClose(ws, 4000, why);
  }

  /** @param {WebSocket} ws @param {number} code @param {string} reason */
  onClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.helloTimer);
    this.stopKeepalive();
    this.failAll('disconnected');
    if (this.state === 'stopped') return;
    if (code === 4001) {
      this.setState('stopped', { code, reason: 'unsupported_version' });
      return;
    }
    if (code === 1008) {
      this.setState('stopped', { code, reason: reason || 'policy' });
      return;
    }
    if (this.openedAt && Date.now() - this.openedAt > STABLE_MS) this.attempt = 0;
    this.openedAt = 0;
    this.minDelay = code === 4008 ? 30000 : 0;
    this.scheduleRetry(code, reason);
  }

  /** @param {number} [code] @param {string} [reason] */
  scheduleRetry(code, reason) {
    // Offline, a try cannot work: the browser's `online` event tries at
    // once, and a slow try covers a browser that never sends it.
    const base = navigator.onLine ? Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt) : BACKOFF_MAX_MS;
    const delay = Math.max(this.minDelay, base * (0.8 + Math.random() * 0.4));
    this.attempt++;
    const retryAt = Date.now() + delay;
    this.setState('waiting', { retryAt, code, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** @param {string} code */
  failAll(code) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new RequestError({ code, message: 'connection lost' }));
    }
    this.pending.clear();
  }

  /** @param {WebSocket} ws */
  startKeepalive(ws) {
    this.stopKeepalive();
    this.keepalive = setInterval(() => {
      if (ws !== this.ws || this.pinging) return;
      if (Date.now() - this.lastReceived < KEEPALIVE_IDLE_MS) return;
      this.pinging = true;
      this.request('ping', {}, { timeout: KEEPALIVE_REPLY_MS })
        .catch((e) => {
          // Any reply (even an error) proves the link; only silence kills it.
          if (e instanceof RequestError && e.code === 'timeout') this.abandon(ws, 'keepalive');
        })
        .finally(() => {
          this.pinging = false;
        });
    }, KEEPALIVE_CHECK_MS);
  }

  stopKeepalive() {
    clearInterval(this.keepalive);
    this.keepalive = undefined;
    this.pinging = false;
  }
}

/** The WebSocket URL of this page's gateway. */
export function socketUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws`;
}
