// One timeline entry: a message (with its reactions, attachments, thread
// summary and actions), a pending message, or a system line.

import { confirmDialog, h, icon, iconButton, openDialog, openMenu, setServerHtml, toast } from '../dom.js';
import { enrich } from '../rich.js';
import { replaceShortcodes } from '../emoji.js';
import { downloadBlob, isInlineImage } from '../files.js';
import { errText } from '../client.js';
import { compareItems, fmtAgo, fmtFull, fmtShortDate, fmtSize, fmtTime, joinNames } from '../util.js';
import { avatar, userName } from './common.js';
import { pickEmoji } from './picker.js';
import { reportDialog } from './dialogs.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('../types.js').Item} Item */
/** @typedef {import('../types.js').PendingSend} PendingSend */
/** @typedef {import('../types.js').Attachment} Attachment */

/**
 * @typedef {object} MsgOpts
 * @property {boolean} cont continues the previous author's group
 * @property {boolean} inThread shown in the thread panel
 * @property {boolean} highlight
 * @property {'sent'|'delivered'|'read'|null} readMark
 */

/** Messages whose hidden content the user asked to see (blocked authors). */
const revealed = new Set();

/**
 * @param {Ctx} ctx @param {Item} item @param {MsgOpts} opts
 * @returns {HTMLElement}
 */
export function renderMessage(ctx, item, opts) {
  const s = ctx.store;
  const mine = item.author === s.me;
  const el = h('article', {
    class: `msg ${opts.cont ? 'cont' : ''} ${opts.highlight ? 'highlight' : ''} ${mine ? 'mine' : ''}`,
    testid: 'message',
    tabindex: -1,
    'data-event-id': item.id,
    'data-author': item.author,
    'data-kind': item.kind,
    'data-state': 'confirmed',
    'aria-label': `${s.displayName(item.author)}, ${fmtFull(item.ts)}`,
  });
  const blocked = s.blocked.has(item.author) && !revealed.has(item.id);
  el.append(gutter(ctx, item, opts.cont));
  const main = h('div', { class: 'msg-main' });
  if (!opts.cont) main.append(header(ctx, item));
  if (blocked) {
    main.append(
      h(
        'div',
        { class: 'msg-hidden' },
        'Message from a blocked user. ',
        h('button', {
          type: 'button',
          class: 'link-btn',
          text: 'Show',
          onclick: () => {
            revealed.add(item.id);
            el.replaceWith(renderMessage(ctx, item, opts));
          },
        }),
      ),
    );
    el.append(main);
    return el;
  }
  if (item.reply_to && !item.redacted) main.append(replyQuote(ctx, item.room, item.reply_to));
  const mayHistory = item.author === ctx.store.me || ctx.store.can(item.room, 'message.delete');
  main.append(body(item, mayHistory ? () => editHistoryDialog(ctx, item) : null));
  if (!item.redacted && item.attachments?.length) main.append(attachments(ctx, item.attachments));
  if (!item.redacted && item.reactions?.length) main.append(reactions(ctx, item));
  const summary = !opts.inThread && item.thread && item.thread.replies > 0 ? threadSummary(ctx, item) : null;
  if (summary) main.append(summary);
  if (opts.readMark) {
    main.append(
      h('div', {
        class: 'read-mark',
        testid: 'read-mark',
        'data-state': opts.readMark,
        text: { read: 'Read', delivered: 'Delivered', sent: 'Sent' }[opts.readMark],
        title: {
          read: 'They have read it',
          delivered: 'It reached their server',
          sent: 'Your server has it; their server has not confirmed yet',
        }[opts.readMark],
      }),
    );
  }
  el.append(main);
  if (!item.redacted) el.append(actions(ctx, item, opts, el));
  return el;
}

/** @param {Ctx} ctx @param {Item} item @param {boolean} cont */
function gutter(ctx, item, cont) {
  if (cont) {
    return h('div', { class: 'msg-gutter' }, h('time', { class: 'gutter-time', datetime: new Date(item.ts).toISOString(), title: fmtFull(item.ts), text: fmtTime(item.ts) }));
  }
  return h('div', { class: 'msg-gutter' }, avatar(ctx, item.author));
}

/** @param {Ctx} ctx @param {Item} item */
function header(ctx, item) {
  const author = userName(ctx, item.author, 'msg-author');
  author.setAttribute('data-testid', 'message-author');
  return h(
    'div',
    { class: 'msg-head' },
    author,
    h('time', {
      class: 'msg-time',
      testid: 'message-time',
      datetime: new Date(item.ts).toISOString(),
      title: fmtFull(item.ts),
      text: fmtTime(item.ts),
    }),
  );
}

/**
 * The text: the server's sanitized HTML, or plain text. With `onHistory`,
 * "(edited)" opens the earlier versions.
 * @param {Item} item @param {(() => void)|null} [onHistory]
 */
export function body(item, onHistory = null) {
  if (item.redacted != null) {
    return h('div', { class: 'msg-body deleted', testid: 'message-deleted' }, icon('trash'), ' Message deleted');
  }
  const edited = item.edited_body != null;
  const html = edited ? item.edited_html : item.html;
  const text = edited ? item.edited_body : item.body;
  const el = h('div', { class: 'msg-body', testid: 'message-body' });
  if (html) setServerHtml(el, html);
  else if (text) el.append(h('p', { class: 'plain', text }));
  enrich(el);
  if (edited) {
    // Inside the last paragraph when there is one, so it reads inline.
    const last = el.lastElementChild;
    const host = last && last.tagName === 'P' ? last : el;
    host.append(' ');
    host.append(
      onHistory
        ? h('button', { type: 'button', class: 'edited', testid: 'message-edited', title: 'Show earlier versions', onclick: onHistory, text: '(edited)' })
        : h('span', { class: 'edited', testid: 'message-edited', text: '(edited)' }),
    );
  }
  return el;
}

/**
 * A note only this user sees (the welcome bot's greeting), with a button
 * that dismisses it for good.
 * @param {Ctx} ctx @param {import('../types.js').Notice} n
 */
export function renderNotice(ctx, n) {
  const text = h('div', { class: 'msg-body' });
  setServerHtml(text, n.html);
  enrich(text);
  return h(
    'article',
    { class: 'notice', testid: 'notice', 'data-notice-id': n.id, tabindex: '-1', 'aria-label': `Note from ${n.from}, only visible to you` },
    h('div', { class: 'notice-gutter', 'aria-hidden': 'true', text: '🤖' }),
    h(
      'div',
      { class: 'notice-main' },
      h(
        'div',
        { class: 'msg-head' },
        h('span', { class: 'msg-author', text: n.from }),
        h('span', { class: 'tag', text: 'bot' }),
        h('time', { class: 'msg-time', datetime: new Date(n.ts).toISOString(), title: fmtFull(n.ts), text: fmtTime(n.ts) }),
        h('span', { class: 'muted small', text: 'Only visible to you' }),
      ),
      text,
      h('button', {
        type: 'button',
        class: 'btn btn-small',
        testid: 'notice-dismiss',
        text: 'Got it',
        onclick: () => ctx.client.dismissNotice(n.id).catch((e) => toast(errText(e), { kind: 'error' })),
      }),
    ),
  );
}

/** Every version of a message, oldest first. @param {Ctx} ctx @param {Item} item */
function editHistoryDialog(ctx, item) {
  return openDialog({ title: 'Edit history', testid: 'edit-history-dialog' }, () => {
    const list = h('ol', { class: 'edit-history', testid: 'edit-history', 'aria-busy': 'true' }, h('li', { class: 'muted', text: 'Loading…' }));
    ctx.client
      .editHistory(item.room, item.id)
      .then((versions) => {
        list.setAttribute('aria-busy', 'false');
        list.replaceChildren(
          ...versions.map((v, i) => {
            const text = h('div', { class: 'msg-body' });
            setServerHtml(text, v.html);
            enrich(text);
            return h(
              'li',
              { class: 'edit-version', testid: 'edit-version' },
              h('div', { class: 'muted small' }, h('span', { text: i === 0 ? 'Original' : `Edit ${i}` }), ' · ', h('time', { datetime: new Date(v.ts).toISOString(), text: fmtFull(v.ts) })),
              text,
            );
          }),
        );
      })
      .catch((e) => list.replaceChildren(h('li', { class: 'form-error', role: 'alert', text: errText(e) })));
    return list;
  });
}

/** @param {Ctx} ctx @param {string} room @param {string} target */
function replyQuote(ctx, room, target) {
  const q = ctx.client.findItem(room, target);
  const text = q ? (q.redacted != null ? 'Message deleted' : (q.edited_body ?? q.body ?? '').slice(0, 200) || 'Attachment') : 'Original message';
  return h(
    'button',
    {
      type: 'button',
      class: 'reply-quote',
      testid: 'reply-quote',
      'aria-label': 'Show the message this replies to',
      onclick: () => ctx.client.history.jumpTo(room, target),
    },
    icon('reply'),
    q ? userName(ctx, q.author, 'quote-author') : null,
    h('span', { class: 'quote-text', text }),
  );
}

/**
 * Fits an image into a box, for width/height attributes that reserve space.
 * @param {Attachment} a
 */
function fitImage(a, maxW = 360, maxH = 280) {
  if (!a.width || !a.height) return { w: null, h: null };
  const r = Math.min(1, maxW / a.width, maxH / a.height);
  return { w: Math.max(1, Math.round(a.width * r)), h: Math.max(1, Math.round(a.height * r)) };
}

/** @param {Ctx} ctx @param {Attachment[]} list */
export function attachments(ctx, list) {
  return h(
    'div',
    { class: 'attachments' },
    list.map((a) => {
      if (isInlineImage(a.mime)) {
        const size = fitImage(a);
        const img = h('img', { alt: a.name, width: size.w, height: size.h, decoding: 'async', class: 'loading' });
        ctx.client
          .blobUrl(a.blob)
          .then((url) => {
            img.src = url;
            img.classList.remove('loading');
          })
          .catch(() => img.classList.add('failed'));
        return h('button', { type: 'button', class: 'attachment-image', testid: 'attachment-image', 'aria-label': `Open image ${a.name}`, onclick: () => viewImage(ctx, a) }, img);
      }
      return h(
        'div',
        { class: 'attachment-file', testid: 'attachment-file' },
        h('span', { class: 'file-icon' }, icon('file')),
        h('span', { class: 'file-meta' }, h('span', { class: 'file-name', text: a.name }), h('span', { class: 'file-size', text: `${fmtSize(a.size)} · ${a.mime}` })),
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small',
            testid: 'attachment-download',
            onclick: () => downloadBlob(a.blob, a.name, () => ctx.client.accessToken()).catch((e) => toast(`Download failed: ${errText(e)}`, { kind: 'error' })),
          },
          icon('download'),
          ' Download',
        ),
      );
    }),
  );
}

/** @param {Ctx} ctx @param {Attachment} a */
function viewImage(ctx, a) {
  openDialog({ title: a.name, testid: 'image-dialog', wide: true }, () => {
    const img = h('img', { alt: a.name, class: 'viewer-img' });
    ctx.client.blobUrl(a.blob).then((url) => (img.src = url)).catch(() => {});
    return [
      h('div', { class: 'viewer' }, img),
      h(
        'div',
        { class: 'dialog-actions' },
        h('span', { class: 'muted', text: `${fmtSize(a.size)} · ${a.mime}` }),
        h('button', { type: 'button', class: 'btn', onclick: () => downloadBlob(a.blob, a.name, () => ctx.client.accessToken()) }, icon('download'), ' Download'),
      ),
    ];
  });
}

let tipSeq = 0;

/** @param {Ctx} ctx @param {Item} item */
function reactions(ctx, item) {
  const s = ctx.store;
  return h(
    'div',
    { class: 'reactions' },
    (item.reactions ?? []).map((r) => {
      const mine = !!s.me && r.users.includes(s.me);
      const names = r.users.map((u) => (u === s.me ? 'you' : s.displayName(u)));
      const who = names.length > 10 ? `${names.slice(0, 10).join(', ')} and ${names.length - 10} others` : joinNames(names, 10);
      const tipId = `tip-${++tipSeq}`;
      return h(
        'button',
        {
          type: 'button',
          class: `reaction ${mine ? 'mine' : ''}`,
          testid: 'reaction',
          'data-emoji': r.emoji,
          'data-count': r.users.length,
          'aria-pressed': mine ? 'true' : 'false',
          'aria-label': `${r.emoji} ${r.users.length}`,
          'aria-describedby': tipId,
          onclick: () => ctx.client.toggleReaction(item.room, item, r.emoji).catch((e) => toast(errText(e), { kind: 'error' })),
        },
        h('span', { class: 'emoji', text: r.emoji }),
        h('span', { class: 'count', text: r.users.length }),
        h('span', { class: 'tip', role: 'tooltip', id: tipId, testid: 'reaction-tooltip', text: `${who} reacted with ${r.emoji}` }),
      );
    }),
    h(
      'button',
      {
        type: 'button',
        class: 'reaction add',
        testid: 'add-reaction',
        'aria-label': 'Add reaction',
        title: 'Add reaction',
        onclick: (/** @type {MouseEvent} */ ev) => reactFrom(ctx, item, /** @type {HTMLElement} */ (ev.currentTarget)),
      },
      icon('smile'),
    ),
  );
}

/** @param {Ctx} ctx @param {Item} item @param {HTMLElement} anchor */
async function reactFrom(ctx, item, anchor) {
  const emoji = await pickEmoji(anchor);
  if (!emoji) return;
  const current = ctx.client.findItem(item.room, item.id) ?? item;
  const mine = current.reactions?.some((r) => r.emoji === emoji && ctx.store.me && r.users.includes(ctx.store.me));
  if (mine) return;
  ctx.client.toggleReaction(item.room, current, emoji).catch((e) => toast(errText(e), { kind: 'error' }));
}

/** @param {Ctx} ctx @param {Item} item */
function threadSummary(ctx, item) {
  const t = item.thread;
  if (!t) return null;
  return h(
    'button',
    {
      type: 'button',
      class: 'thread-summary',
      testid: 'thread-summary',
      'data-replies': t.replies,
      onclick: () => ctx.openPanel({ kind: 'thread', room: item.room, root: item.id }),
    },
    icon('thread'),
    h('strong', { text: t.replies === 1 ? '1 reply' : `${t.replies} replies` }),
    h('span', { class: 'muted', text: ` · last reply ${fmtAgo(t.last_ts)}` }),
  );
}

/** @param {Ctx} ctx @param {Item} item @param {MsgOpts} opts @param {HTMLElement} el */
function actions(ctx, item, opts, el) {
  const bar = h('div', { class: 'msg-actions', testid: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' });
  if (item.kind !== 'message') return bar;
  bar.append(
    iconButton('smile', 'Add reaction', {
      testid: 'action-react',
      onclick: (/** @type {MouseEvent} */ ev) => reactFrom(ctx, item, /** @type {HTMLElement} */ (ev.currentTarget)),
    }),
  );
  if (!opts.inThread) {
    bar.append(iconButton('thread', 'Reply in thread', { testid: 'action-thread', onclick: () => ctx.openPanel({ kind: 'thread', room: item.room, root: item.id }) }));
    bar.append(
      iconButton('reply', 'Quote reply', {
        testid: 'action-reply',
        onclick: () => {
          ctx.store.emit('reply', { room: item.room, event: item.id });
          ctx.focusComposer(item.room);
        },
      }),
    );
  }
  bar.append(
    iconButton('more', 'More actions', {
      testid: 'action-more',
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      onclick: (/** @type {MouseEvent} */ ev) => moreMenu(ctx, item, /** @type {HTMLElement} */ (ev.currentTarget), el),
    }),
  );
  return bar;
}

/** @param {Ctx} ctx @param {Item} item @param {HTMLElement} anchor @param {HTMLElement} el */
function moreMenu(ctx, item, anchor, el) {
  const s = ctx.store;
  const c = ctx.client;
  const mine = item.author === s.me;
  const room = item.room;
  const pinned = !!s.details.get(room)?.pins.includes(item.id);
  /** @type {{label: string, testid: string, danger?: boolean, run: () => void}[]} */
  const items = [];
  if (mine && item.kind === 'message') items.push({ label: 'Edit', testid: 'action-edit', run: () => startEdit(ctx, item, el) });
  if (s.can(room, 'message.pin')) {
    items.push(
      pinned
        ? { label: 'Unpin', testid: 'action-unpin', run: () => c.pin(room, item.id, false).catch((e) => toast(errText(e), { kind: 'error' })) }
        : { label: 'Pin to room', testid: 'action-pin', run: () => c.pin(room, item.id, true).then(() => toast('Pinned.')).catch((e) => toast(errText(e), { kind: 'error' })) },
    );
  }
  items.push({
    label: 'Copy text',
    testid: 'action-copy',
    run: () => navigator.clipboard?.writeText(item.edited_body ?? item.body ?? '').then(() => toast('Copied.')).catch(() => {}),
  });
  if (mine || s.can(room, 'message.delete')) {
    items.push({ label: 'Delete', testid: 'action-delete', danger: true, run: () => deleteMessage(ctx, item, mine) });
  }
  if (!mine) {
    items.push({ label: 'Report', testid: 'action-report', danger: true, run: () => reportDialog(ctx, room, item.id) });
    items.push({
      label: s.blocked.has(item.author) ? `Unblock ${s.displayName(item.author)}` : `Block ${s.displayName(item.author)}`,
      testid: 'action-block',
      danger: true,
      run: () => blockUser(ctx, item.author),
    });
  }
  openMenu(anchor, items, 'message-menu');
}

/** @param {Ctx} ctx @param {string} user */
export async function blockUser(ctx, user) {
  const s = ctx.store;
  const blocked = s.blocked.has(user);
  if (!blocked) {
    const ok = await confirmDialog(
      `Block ${s.displayName(user)}?`,
      'You will no longer see their messages, and they cannot send you direct messages. You can unblock them later.',
      'Block',
      true,
    );
    if (!ok) return;
  }
  try {
    await ctx.client.block(user, !blocked);
    toast(blocked ? 'Unblocked.' : 'Blocked.');
  } catch (e) {
    toast(errText(e), { kind: 'error' });
  }
}

/** @param {Ctx} ctx @param {Item} item @param {boolean} mine */
async function deleteMessage(ctx, item, mine) {
  let reason = '';
  if (mine) {
    const ok = await confirmDialog('Delete message?', 'The message is removed for everyone. This cannot be undone.', 'Delete', true);
    if (!ok) return;
  } else {
    const r = await openDialog({ title: 'Delete message', testid: 'delete-dialog' }, (close) => {
      const input = h('textarea', { id: 'delete-reason', rows: 3, maxlength: 500, testid: 'delete-reason' });
      return h(
        'form',
        {
          class: 'form',
          onsubmit: (/** @type {Event} */ ev) => {
            ev.preventDefault();
            close(input.value.trim());
          },
        },
        h('p', { text: 'The message is removed for everyone. The reason is kept for moderators.' }),
        h('label', { for: 'delete-reason', text: 'Reason (optional)' }),
        input,
        h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), h('button', { type: 'submit', class: 'btn btn-danger', testid: 'confirm-ok', text: 'Delete' })),
      );
    });
    if (r === undefined) return;
    reason = /** @type {string} */ (r);
  }
  try {
    await ctx.client.redact(item.room, item.id, reason);
  } catch (e) {
    toast(errText(e), { kind: 'error' });
  }
}

/**
 * Replaces the body with an editor. Enter saves, Escape cancels.
 * @param {Ctx} ctx @param {Item} item @param {HTMLElement} el
 */
export function startEdit(ctx, item, el) {
  const bodyEl = el.querySelector('.msg-body');
  if (!bodyEl || el.querySelector('.msg-editor')) return;
  const original = item.edited_body ?? item.body ?? '';
  const input = h('textarea', { class: 'edit-input', testid: 'edit-input', 'aria-label': 'Edit message', rows: 2, value: original });
  const done = () => {
    editor.replaceWith(bodyEl);
    el.focus();
  };
  const save = async () => {
    const text = replaceShortcodes(input.value.trim());
    if (!text || text === original) return done();
    saveBtn.disabled = true;
    try {
      await ctx.client.edit(item.room, item.id, text, item.mentions ?? []);
      done();
    } catch (e) {
      saveBtn.disabled = false;
      toast(errText(e), { kind: 'error' });
    }
  };
  const saveBtn = h('button', { type: 'button', class: 'btn btn-primary btn-small', testid: 'edit-save', text: 'Save', onclick: save });
  const editor = h(
    'div',
    { class: 'msg-editor' },
    input,
    h('div', { class: 'edit-actions' }, h('span', { class: 'muted small', text: 'Enter to save · Escape to cancel' }), h('button', { type: 'button', class: 'btn btn-small', testid: 'edit-cancel', text: 'Cancel', onclick: done }), saveBtn),
  );
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      save();
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      done();
    }
  });
  bodyEl.replaceWith(editor);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

/**
 * A message the user wrote that is not confirmed yet.
 * @param {Ctx} ctx @param {PendingSend} p @param {boolean} cont
 */
export function renderPending(ctx, p, cont) {
  const s = ctx.store;
  const failed = p.state === 'failed';
  const offline = s.conn.state !== 'online';
  const el = h('article', {
    class: `msg mine pending ${failed ? 'failed' : ''} ${cont ? 'cont' : ''}`,
    testid: 'message',
    'data-event-id': p.event ?? `pending:${p.key}`,
    'data-author': s.me ?? '',
    'data-kind': 'message',
    'data-state': p.state === 'sent' ? 'confirmed' : failed ? 'failed' : 'pending',
    tabindex: -1,
  });
  el.append(cont ? h('div', { class: 'msg-gutter' }) : h('div', { class: 'msg-gutter' }, s.me ? avatar(ctx, s.me) : null));
  const main = h('div', { class: 'msg-main' });
  if (!cont && s.me) main.append(h('div', { class: 'msg-head' }, userName(ctx, s.me, 'msg-author'), h('span', { class: 'msg-time', text: fmtTime(p.ts) })));
  main.append(enrich(h('div', { class: 'msg-body', testid: 'message-body' }, p.body ? h('p', { class: 'plain', text: p.body }) : null)));
  if (p.attachments.length) main.append(attachments(ctx, p.attachments));
  if (failed) {
    main.append(
      h(
        'div',
        { class: 'send-failed', testid: 'message-failed', role: 'alert' },
        icon('alert'),
        h('span', { text: `Failed — ${p.error ?? 'not sent'}` }),
        h('button', { type: 'button', class: 'link-btn', testid: 'message-retry', text: 'Retry', onclick: () => ctx.client.outbox.retry(p.key) }),
        h('button', { type: 'button', class: 'link-btn', testid: 'message-discard', text: 'Discard', onclick: () => ctx.client.outbox.discard(p.key) }),
      ),
    );
  } else if (p.state !== 'sent') {
    main.append(h('div', { class: 'send-status', text: offline ? 'Waiting for connection…' : 'Sending…' }));
  }
  el.append(main);
  return el;
}

/**
 * A join, leave, kick, ban, mute, role, settings, pin or archive line.
 * @param {Ctx} ctx @param {Item} item
 */
export function renderSystem(ctx, item) {
  const a = () => userName(ctx, item.author, 'sys-name');
  const t = () => (item.target ? userName(ctx, item.target, 'sys-name') : 'someone');
  const reason = item.reason ? h('span', { class: 'sys-reason', text: ` — “${item.reason}”` }) : null;
  /** @type {(Node|string|null)[]} */
  let parts;
  let ic = 'info';
  switch (item.kind) {
    case 'create':
      parts = [a(), item.direct ? ' started this conversation' : ' created this room'];
      ic = 'plus';
      break;
    case 'join':
      parts = [a(), ' joined'];
      ic = 'join';
      break;
    case 'leave':
      parts = [a(), ' left'];
      ic = 'logout';
      break;
    case 'invite':
      parts = [a(), ' invited ', t()];
      ic = 'user-plus';
      break;
    case 'kick':
      parts = [a(), ' removed ', t(), reason];
      ic = 'user-x';
      break;
    case 'ban':
      parts = [a(), ' banned ', t(), reason];
      ic = 'block';
      break;
    case 'unban':
      parts = [a(), ' lifted the ban on ', t()];
      ic = 'check';
      break;
    case 'mute':
      parts = [a(), ' muted ', t(), item.until ? ` until ${fmtShortDate(item.until)}` : '', reason];
      ic = 'mute';
      break;
    case 'unmute':
      parts = [a(), ' unmuted ', t()];
      ic = 'check';
      break;
    case 'role.define':
      parts = [a(), ' defined the role ', h('strong', { text: item.role ?? '' }), item.permissions?.length ? ` (${item.permissions.join(', ')})` : ' (no permissions)'];
      ic = 'shield';
      break;
    case 'role.grant':
      parts = [a(), ' gave ', t(), ' the role ', h('strong', { text: item.role ?? '' })];
      ic = 'shield';
      break;
    case 'role.revoke':
      parts = [a(), ' took the role ', h('strong', { text: item.role ?? '' }), ' from ', t(), reason];
      ic = 'shield';
      break;
    case 'pin':
    case 'unpin': {
      const target = item.target ?? '';
      parts = [
        a(),
        item.kind === 'pin' ? ' pinned ' : ' unpinned ',
        h('button', { type: 'button', class: 'link-btn', text: 'a message', onclick: () => ctx.client.history.jumpTo(item.room, target) }),
      ];
      ic = 'pin';
      break;
    }
    case 'archive':
      parts = [a(), ' archived this room. It is read-only now.'];
      ic = 'archive';
      break;
    case 'settings': {
      const st = item.settings ?? {};
      /** @type {(Node|string)[]} */
      const bits = [];
      if (st.name != null) bits.push('renamed the room to ', h('strong', { text: `“${st.name}”` }));
      if (st.topic != null) {
        if (bits.length) bits.push('; ');
        if (st.topic) bits.push('changed the topic to ', h('span', { class: 'sys-topic', text: `“${st.topic}”` }));
        else bits.push('cleared the topic');
      }
      if (st.visibility) {
        if (bits.length) bits.push('; ');
        bits.push(st.visibility === 'public' ? 'made the room public' : 'made the room private');
      }
      if (st.invites) {
        if (bits.length) bits.push('; ');
        bits.push(st.invites === 'members' ? 'let every member invite people' : 'let only people who can change room settings invite');
      }
      if (!bits.length) bits.push('changed the room settings');
      parts = [a(), ' ', ...bits];
      ic = 'settings';
      break;
    }
    default:
      parts = [a(), ` (${item.kind})`];
  }
  return h(
    'div',
    { class: `sys sys-${item.kind.replace('.', '-')}`, testid: 'system-message', 'data-kind': item.kind, 'data-event-id': item.id },
    icon(ic),
    h('span', { class: 'sys-text' }, ...parts),
    h('time', { class: 'sys-time', datetime: new Date(item.ts).toISOString(), title: fmtFull(item.ts), text: fmtTime(item.ts) }),
  );
}

/**
 * Whether `b` directly continues `a`'s group (same author, 5 minutes).
 * @param {Item|null} a @param {Item} b
 */
export function continues(a, b) {
  return !!a && a.kind === 'message' && b.kind === 'message' && a.author === b.author && b.ts - a.ts < 5 * 60 * 1000 && !a.redacted;
}

/**
 * The mark for the user's last message in a DM: read when the partner's
 * read position reached it; delivered when their node holds it (at once
 * for a partner of this node); sent otherwise.
 * @param {Ctx} ctx @param {string} room @param {Item} item
 * @returns {'sent'|'delivered'|'read'}
 */
export function readMarkFor(ctx, room, item) {
  const s = ctx.store;
  const other = s.rooms.get(room)?.direct_with;
  if (!other) return 'sent';
  const t = s.timelines.get(room);
  /** @param {string|undefined} ev */
  const reached = (ev) => {
    if (!ev) return false;
    if (ev === item.id) return true;
    const at = t?.byId.get(ev);
    return !!at && compareItems(at, item) >= 0;
  };
  if (reached(s.reads.get(room)?.get(other))) return 'read';
  const sameNode = !!s.me && other.slice(other.indexOf(':')) === s.me.slice(s.me.indexOf(':'));
  if (sameNode || reached(s.delivered.get(room)?.get(other))) return 'delivered';
  return 'sent';
}
