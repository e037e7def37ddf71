// The outbox: messages written but not yet confirmed by the server, sent in
// order one at a time, kept across reloads (IndexedDB, through the
// client's cache) and resent with the same idempotency key after a lost
// connection (PROTOCOL.md §2.5), so nothing is lost or posted twice.

import { RequestError } from './protocol.js';
import { toast } from './dom.js';
import { randomKey } from './util.js';
import { errText } from './errors.js';

/** @typedef {import('./types.js').Attachment} Attachment */
/** @typedef {import('./types.js').PendingSend} PendingSend */

export class Outbox {
  /** @param {import('./client.js').Client} client */
  constructor(client) {
    this.client = client;
    this.flushing = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.flushTimer = undefined;
  }

  /** Keeps the unsent messages for the next visit. */
  save() {
    this.client.persist('outbox', this.client.store.outbox.filter((p) => p.state !== 'sent'));
  }

  /**
   * Queues a message and sends it as soon as possible.
   * @param {string} room @param {string} body
   * @param {{thread_root?: string|null, reply_to?: string|null, mentions?: string[], attachments?: Attachment[]}} [opts]
   */
  send(room, body, opts = {}) {
    /** @type {PendingSend} */
    const p = {
      key: randomKey(),
      room,
      body,
      mentions: opts.mentions ?? [],
      thread_root: opts.thread_root ?? null,
      reply_to: opts.reply_to ?? null,
      attachments: opts.attachments ?? [],
      ts: Date.now(),
      state: 'queued',
    };
    this.client.store.outbox.push(p);
    this.client.store.emitOutbox(p);
    this.save();
    this.flush();
    return p;
  }

  /** @param {string} key */
  retry(key) {
    const p = this.client.store.outbox.find((x) => x.key === key);
    if (!p) return;
    p.state = 'queued';
    delete p.error;
    this.client.store.emitOutbox(p);
    this.save();
    this.flush();
  }

  /** @param {string} key */
  discard(key) {
    const p = this.client.store.outbox.find((x) => x.key === key);
    if (!p) return;
    this.client.store.outbox = this.client.store.outbox.filter((x) => x !== p);
    this.client.store.emitOutbox(p);
    this.save();
  }

  /**
   * Sends queued messages in order, one at a time. Without a connection
   * it stops and waits: the next sign-in on a new socket flushes again.
   */
  async flush() {
    const s = this.client.store;
    if (this.flushing) return;
    this.flushing = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    let lost = false;
    try {
      for (;;) {
        if (s.conn.state !== 'online') return;
        const p = s.outbox.find((x) => x.state === 'queued');
        if (!p) return;
        p.state = 'sending';
        s.emitOutbox(p);
        /** @type {Record<string, unknown>} */
        const fields = { room: p.room, body: p.body, idempotency_key: p.key };
        if (p.thread_root) fields.thread_root = p.thread_root;
        if (p.reply_to) fields.reply_to = p.reply_to;
        if (p.mentions.length) fields.mentions = p.mentions;
        if (p.attachments.length) fields.attachments = p.attachments;
        try {
          const r = await this.client.call('send', fields);
          const event = r && typeof r.event === 'string' ? r.event : undefined;
          const t = s.timelines.get(p.room);
          if (event && t && t.byId.has(event)) {
            s.outbox = s.outbox.filter((x) => x !== p);
          } else {
            p.state = 'sent';
            p.event = event;
            if (!event) s.outbox = s.outbox.filter((x) => x !== p);
          }
          this.client.marked.delete(p.room);
        } catch (e) {
          const code = e instanceof RequestError ? e.code : 'internal';
          if (code === 'offline' || code === 'disconnected') {
            p.state = 'queued';
            lost = true;
            return;
          }
          if (code === 'timeout' || code === 'unavailable') {
            p.state = 'queued';
            this.flushTimer = setTimeout(() => this.flush(), 3000);
            return;
          }
          if (code === 'rate_limited' && e instanceof RequestError) {
            p.state = 'queued';
            const wait = e.retry_after_ms ?? 1000;
            toast(`Sending too fast — retrying in ${Math.ceil(wait / 1000)} s.`);
            this.flushTimer = setTimeout(() => this.flush(), wait);
            return;
          }
          p.state = 'failed';
          p.error = errText(e);
          if (code === 'muted') this.client.ensureDetail(p.room, true);
        } finally {
          s.emitOutbox(p);
          this.save();
        }
      }
    } finally {
      this.flushing = false;
      // Queued while this flush was ending: go on in a later task, never a
      // microtask (a send that fails at once would then retry for ever and
      // starve the socket's own close event). A lost socket means waiting
      // for the next connection instead.
      if (!lost && s.conn.state === 'online' && s.outbox.some((x) => x.state === 'queued') && !this.flushTimer) {
        this.flushTimer = setTimeout(() => this.flush(), 0);
      }
    }
  }
}
