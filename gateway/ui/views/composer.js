// The message composer: Enter sends, Shift+Enter adds a line; typing
// signals; @ mention autocomplete; reply-to; file uploads with progress;
// live markdown preview; and the read-only states (muted, archived, no
// permission, invited).

import { h, icon, iconButton, replace, toast } from '../dom.js';
import { errText } from '../client.js';
import { preview } from '../markdown.js';
import { byteLength, fmtShortDate, fmtSize, localpart, isUserId } from '../util.js';
import { avatar, userName } from './common.js';
import { pickEmoji } from './picker.js';
import { loadDraft, saveDraft } from '../drafts.js';
import { replaceShortcodes } from '../emoji.js';
import { shortcodeSuggest } from './shortcodes.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('./common.js').Draft} Draft */
/** @typedef {import('../types.js').Attachment} Attachment */

/**
 * @typedef {object} Upload
 * @property {number} id
 * @property {File} file
 * @property {'uploading'|'done'|'failed'} state
 * @property {number} loaded
 * @property {Attachment} [attachment]
 * @property {string} [error]
 * @property {() => void} abort
 */

const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 5000;
let uploadSeq = 0;
let composerSeq = 0;

/**
 * @param {Ctx} ctx
 * @param {{room: string, threadRoot?: string|null}} opts
 * @returns {{el: HTMLElement, focus: () => void, addFiles: (files: FileList|File[]) => void, destroy: () => void}}
 */
export function composer(ctx, opts) {
  const s = ctx.store;
  const c = ctx.client;
  const room = opts.room;
  const threadRoot = opts.threadRoot ?? null;
  const inThread = !!threadRoot;
  const seq = ++composerSeq;
  const draftKey = inThread ? `${room}|${threadRoot}` : room;
  const saved = ctx.drafts.has(draftKey) ? null : loadDraft(s.me, draftKey);
  /** @type {Draft} */
  const draft = ctx.drafts.get(draftKey) ?? { text: saved?.text ?? '', mentions: new Set(saved?.mentions ?? []), replyTo: saved?.replyTo ?? null };
  ctx.drafts.set(draftKey, draft);
  /** Writes the draft through to storage, so a reload finds it. */
  const keep = () => saveDraft(s.me, draftKey, { text: draft.text, mentions: [...draft.mentions], replyTo: draft.replyTo });
  /** @type {Upload[]} */
  let uploads = [];
  let lastTypingSent = 0;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let idleTimer;
  let previewOn = false;

  const inputId = `composer-input-${seq}`;
  const hintId = `composer-hint-${seq}`;
  const listId = `mention-list-${seq}`;
  const emojiListId = `emoji-list-${seq}`;
  const roomLabel = () => (inThread ? 'Reply in thread' : `Message ${s.rooms.get(room)?.direct_with ? s.roomName(room) : `#${s.roomName(room)}`}`);

  const input = h('textarea', {
    id: inputId,
    class: 'composer-input',
    testid: inThread ? 'thread-composer-input' : 'composer-input',
    rows: 1,
    placeholder: roomLabel(),
    'aria-describedby': hintId,
    'aria-autocomplete': 'list',
    'aria-controls': `${listId} ${emojiListId}`,
    autocomplete: 'off',
    spellcheck: 'true',
    enterkeyhint: 'send',
  });
  input.value = draft.text;
  const label = h('label', { class: 'sr-only', for: inputId, text: roomLabel() });
  const suggest = h('ul', { class: 'suggest', id: listId, role: 'listbox', testid: 'mention-suggestions', 'aria-label': 'People', hidden: true });
  const codes = shortcodeSuggest(input, emojiListId, () => {
    draft.text = input.value;
    keep();
    updateSend();
  });
  const previewEl = h('div', { class: 'md-preview', testid: 'markdown-preview', hidden: true, 'aria-live': 'polite', 'aria-label': 'Preview' });
  const uploadsEl = h('ul', { class: 'uploads', 'aria-label': 'Files to send' });
  const replyEl = h('div', { class: 'replying', hidden: true });
  const counter = h('span', { class: 'counter', 'aria-live': 'polite' });
  const fileInput = h('input', { type: 'file', multiple: true, class: 'sr-only', testid: 'file-input', tabindex: -1, 'aria-hidden': 'true' });
  const sendBtn = h('button', { type: 'submit', class: 'send-btn', testid: inThread ? 'thread-send-button' : 'send-button', 'aria-label': 'Send', title: 'Send (Enter)' }, icon('send'));
  const previewBtn = iconButton('eye', 'Preview formatting', { testid: 'preview-toggle', 'aria-pressed': 'false' });
  const attachBtn = iconButton('attach', 'Attach files', { testid: 'attach-button' });
  const emojiBtn = iconButton('smile', 'Insert emoji', { testid: 'composer-emoji' });

  const box = h(
    'div',
    { class: 'composer-box' },
    replyEl,
    uploadsEl,
    label,
    input,
    previewEl,
    h('div', { class: 'composer-tools' }, attachBtn, emojiBtn, previewBtn, h('span', { class: 'spacer' }), counter, sendBtn),
  );
  const hint = h('div', { class: 'composer-hint', id: hintId }, h('span', { text: 'Enter to send · Shift+Enter for a new line · **bold** _italic_ `code`' }));
  const note = h('div', { class: 'composer-note', hidden: true });
  const form = h('form', { class: `composer ${inThread ? 'composer-thread' : ''}`, testid: 'composer', 'data-room-id': room, 'aria-label': roomLabel() }, suggest, codes.el, box, hint, note, fileInput);

  // ---- state: can the user post?

  const refreshState = () => {
    const r = s.rooms.get(room);
    const d = s.details.get(room);
    const muted = s.mutedUntil(room);
    /** @type {HTMLElement|null} */
    let msg = null;
    if (r && r.invited) {
      msg = h(
        'div',
        { class: 'composer-readonly', testid: 'composer-readonly' },
        h('span', { text: 'You were invited to this room.' }),
        h('button', { type: 'button', class: 'btn btn-primary', testid: 'join-room', text: 'Join', onclick: () => c.joinRoom(room).catch((e) => toast(errText(e), { kind: 'error' })) }),
      );
    } else if (r && r.archived) {
      msg = h('div', { class: 'composer-readonly', testid: 'composer-readonly' }, icon('archive'), h('span', { text: 'This room is archived. It is read-only.' }));
    } else if (muted) {
      msg = h('div', { class: 'composer-muted', testid: 'composer-muted', role: 'status' }, icon('mute'), h('span', { text: `You are muted until ${fmtShortDate(muted)}. You can read, but not post.` }));
    } else if (d && !d.my_permissions.includes('message.send')) {
      msg = h('div', { class: 'composer-readonly', testid: 'composer-readonly' }, h('span', { text: "You don't have permission to post in this room." }));
    } else if (!r && s.roomsLoaded) {
      msg = h(
        'div',
        { class: 'composer-readonly', testid: 'composer-readonly' },
        h('span', { text: "You're not a member of this room." }),
        h('button', { type: 'button', class: 'btn btn-primary', testid: 'join-room', text: 'Join', onclick: () => c.joinRoom(room).catch((e) => toast(errText(e), { kind: 'error' })) }),
      );
    }
    box.hidden = !!msg;
    hint.hidden = !!msg;
    note.hidden = !msg;
    replace(note, msg);
    input.placeholder = roomLabel();
    label.textContent = roomLabel();
  };

  // ---- reply-to

  const renderReply = () => {
    const target = draft.replyTo ? c.findItem(room, draft.replyTo) : null;
    if (!draft.replyTo || !target) {
      replyEl.hidden = true;
      replyEl.replaceChildren();
      return;
    }
    replyEl.hidden = false;
    replace(
      replyEl,
      h(
        'div',
        { class: 'replying-inner', testid: 'replying-to' },
        icon('reply'),
        h('span', {}, 'Replying to ', userName(ctx, target.author, 'strong'), ': '),
        h('span', { class: 'quote-text', text: (target.edited_body ?? target.body ?? '').slice(0, 120) }),
        iconButton('close', 'Cancel reply', {
          testid: 'replying-cancel',
          onclick: () => {
            draft.replyTo = null;
            keep();
            renderReply();
            input.focus();
          },
        }),
      ),
    );
  };

  // ---- uploads

  const renderUploads = () => {
    uploadsEl.replaceChildren(
      ...uploads.map((u) =>
        h(
          'li',
          { class: `upload ${u.state}`, testid: 'upload-item' },
          icon(u.file.type.startsWith('image/') ? 'image' : 'file'),
          h('span', { class: 'upload-name', text: u.file.name }),
          u.state === 'uploading'
            ? h('progress', { testid: 'upload-progress', max: u.file.size || 1, value: u.loaded, 'aria-label': `Uploading ${u.file.name}` })
            : h('span', { class: u.state === 'failed' ? 'upload-error' : 'muted small', text: u.state === 'failed' ? u.error ?? 'Failed' : fmtSize(u.file.size) }),
          iconButton('close', `Remove ${u.file.name}`, {
            testid: 'upload-remove',
            onclick: () => {
              u.abort();
              uploads = uploads.filter((x) => x !== u);
              renderUploads();
            },
          }),
        ),
      ),
    );
    updateSend();
  };

  /** @param {FileList|File[]} files */
  const addFiles = (files) => {
    const max = s.hello?.limits.max_upload_bytes ?? Infinity;
    for (const file of Array.from(files)) {
      if (uploads.length >= 10) {
        toast('At most 10 files per message.', { kind: 'error' });
        break;
      }
      if (file.size > max) {
        toast(`${file.name} is too large (${fmtSize(file.size)}; the limit is ${fmtSize(max)}).`, { kind: 'error' });
        continue;
      }
      if (s.conn.state !== 'online') {
        toast("You're offline: files can be attached once the connection is back.", { kind: 'error' });
        break;
      }
      /** @type {Upload} */
      const u = { id: ++uploadSeq, file, state: 'uploading', loaded: 0, abort: () => {} };
      const handle = c.upload(file, (loaded) => {
        u.loaded = loaded;
        const bar = /** @type {HTMLProgressElement|null} */ (uploadsEl.children[uploads.indexOf(u)]?.querySelector('progress') ?? null);
        if (bar) bar.value = loaded;
      });
      u.abort = handle.abort;
      handle.done
        .then((a) => {
          u.state = 'done';
          u.attachment = a;
        })
        .catch((e) => {
          u.state = 'failed';
          u.error = errText(e);
        })
        .finally(renderUploads);
      uploads.push(u);
    }
    renderUploads();
    input.focus();
  };

  // ---- sending

  const updateSend = () => {
    const bytes = byteLength(input.value);
    const max = s.hello?.limits.max_message_bytes ?? 16384;
    const busy = uploads.some((u) => u.state === 'uploading');
    const ready = uploads.filter((u) => u.state === 'done');
    counter.textContent = bytes > max * 0.9 ? `${bytes} / ${max} bytes` : '';
    counter.classList.toggle('over', bytes > max);
    sendBtn.disabled = busy || bytes > max || (!input.value.trim() && ready.length === 0);
  };

  const send = () => {
    // `:tada:` goes out as 🎉, so every client shows the emoji.
    const text = replaceShortcodes(input.value.trim());
    const ready = uploads.filter((u) => u.state === 'done' && u.attachment).map((u) => /** @type {Attachment} */ (u.attachment));
    if (sendBtn.disabled || (!text && !ready.length)) return;
    const mentions = [...draft.mentions].filter((u) => text.includes(`@${localpart(u)}`));
    for (const m of text.matchAll(/@[a-z0-9][a-z0-9._-]{0,31}:[a-z2-7]{52}/g)) if (isUserId(m[0]) && !mentions.includes(m[0])) mentions.push(m[0]);
    c.outbox.send(room, text, { thread_root: threadRoot, reply_to: draft.replyTo, mentions, attachments: ready });
    input.value = '';
    draft.text = '';
    draft.mentions.clear();
    draft.replyTo = null;
    keep();
    uploads = [];
    renderUploads();
    renderReply();
    stopTyping();
    closeSuggest();
    codes.close();
    if (previewOn) togglePreview();
    updateSend();
    ctx.store.emit('sent', { room, threadRoot });
  };

  // ---- typing

  const stopTyping = () => {
    clearTimeout(idleTimer);
    if (lastTypingSent) {
      lastTypingSent = 0;
      c.typing(room, false);
    }
  };

  const onTyping = () => {
    c.activity();
    if (!input.value.trim()) return stopTyping();
    const now = Date.now();
    if (now - lastTypingSent > TYPING_REPEAT_MS) {
      lastTypingSent = now;
      c.typing(room, true);
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  };

  // ---- mentions

  /** @type {{user: string, name: string}[]} */
  let options = [];
  let active = 0;
  /** @type {{start: number, end: number}|null} */
  let mentionRange = null;

  const closeSuggest = () => {
    suggest.hidden = true;
    input.removeAttribute('aria-activedescendant');
    mentionRange = null;
    options = [];
  };

  const updateSuggest = () => {
    const caret = input.selectionStart ?? 0;
    const before = input.value.slice(0, caret);
    const m = /(^|[\s(])@([\p{L}\p{N}._-]{0,32})$/u.exec(before);
    if (!m) return closeSuggest();
    const q = m[2].toLowerCase();
    const members = s.details.get(room)?.members ?? [];
    options = members
      .filter((mem) => mem.user !== s.me)
      .map((mem) => ({ user: mem.user, name: s.displayName(mem.user) }))
      .filter((o) => localpart(o.user).startsWith(q) || o.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(q)) || o.name.toLowerCase().startsWith(q))
      .sort((a, b) => a.name.localeCompare(b.name))
      .slice(0, 8);
    if (!options.length) return closeSuggest();
    mentionRange = { start: caret - m[2].length - 1, end: caret };
    active = Math.min(active, options.length - 1);
    suggest.replaceChildren(
      ...options.map((o, i) =>
        h(
          'li',
          {
            id: `${listId}-${i}`,
            role: 'option',
            class: 'suggest-item',
            testid: 'mention-option',
            'data-user': o.user,
            'aria-selected': i === active ? 'true' : 'false',
            onmousedown: (/** @type {MouseEvent} */ ev) => {
              ev.preventDefault();
              pick(i);
            },
          },
          avatar(ctx, o.user, 'sm'),
          h('span', { class: 'suggest-name', text: o.name }),
          h('span', { class: 'muted small', text: `@${localpart(o.user)}${o.user.endsWith(`:${s.hello?.node ?? ''}`) ? '' : ' · other node'}` }),
        ),
      ),
    );
    suggest.hidden = false;
    input.setAttribute('aria-activedescendant', `${listId}-${active}`);
  };

  /** @param {number} i */
  const pick = (i) => {
    const o = options[i];
    if (!o || !mentionRange) return;
    const insert = `@${localpart(o.user)} `;
    input.setRangeText(insert, mentionRange.start, mentionRange.end, 'end');
    draft.mentions.add(o.user);
    draft.text = input.value;
    keep();
    closeSuggest();
    updateSend();
    input.focus();
  };

  // ---- preview

  const togglePreview = () => {
    previewOn = !previewOn;
    previewBtn.setAttribute('aria-pressed', String(previewOn));
    previewEl.hidden = !previewOn;
    if (previewOn) replace(previewEl, input.value.trim() ? preview(input.value) : h('p', { class: 'muted', text: 'Nothing to preview' }));
  };

  // ---- events

  input.addEventListener('input', () => {
    draft.text = input.value;
    keep();
    updateSend();
    onTyping();
    updateSuggest();
    codes.update();
    if (previewOn) replace(previewEl, input.value.trim() ? preview(input.value) : h('p', { class: 'muted', text: 'Nothing to preview' }));
  });
  input.addEventListener('click', () => {
    updateSuggest();
    codes.update();
  });
  input.addEventListener('blur', () =>
    setTimeout(() => {
      closeSuggest();
      codes.close();
    }, 150),
  );
  input.addEventListener('keydown', (ev) => {
    if (codes.onKey(ev)) return;
    if (!suggest.hidden && options.length) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        active = (active + (ev.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length;
        updateSuggest();
        return;
      }
      if (ev.key === 'Enter' || ev.key === 'Tab') {
        ev.preventDefault();
        pick(active);
        return;
      }
      if (ev.key === 'Escape') {
        ev.preventDefault();
        ev.stopPropagation();
        closeSuggest();
        return;
      }
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      send();
    } else if (ev.key === 'Escape' && (draft.replyTo || previewOn)) {
      ev.preventDefault();
      ev.stopPropagation();
      if (previewOn) togglePreview();
      else {
        draft.replyTo = null;
        keep();
        renderReply();
      }
    } else if (ev.key === 'ArrowUp' && !input.value && !inThread) {
      ev.preventDefault();
      s.emit('edit-last', room);
    }
  });
  input.addEventListener('paste', (ev) => {
    const files = ev.clipboardData?.files;
    if (files && files.length) {
      ev.preventDefault();
      addFiles(files);
    }
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });
  attachBtn.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    if (fileInput.files) addFiles(fileInput.files);
    fileInput.value = '';
  });
  previewBtn.addEventListener('click', togglePreview);
  emojiBtn.addEventListener('click', async () => {
    const e = await pickEmoji(emojiBtn);
    if (!e) return;
    input.focus();
    input.setRangeText(e, input.selectionStart ?? input.value.length, input.selectionEnd ?? input.value.length, 'end');
    draft.text = input.value;
    keep();
    updateSend();
  });

  const offs = [
    s.on('detail', (/** @type {string} */ r) => r === room && refreshState()),
    s.on('rooms', refreshState),
    s.on('reply', (/** @type {{room: string, event: string}} */ x) => {
      if (x.room !== room || inThread) return;
      draft.replyTo = x.event;
      keep();
      renderReply();
    }),
  ];

  refreshState();
  renderReply();
  updateSend();

  return {
    el: form,
    focus: () => input.focus(),
    addFiles,
    destroy: () => {
      stopTyping();
      for (const off of offs) off();
      for (const u of uploads) if (u.state === 'uploading') u.abort();
    },
  };
}
