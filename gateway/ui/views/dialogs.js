// Dialogs: create a room, pick a user (DM or invite), browse public rooms,
// profile and account, room settings, report, mute.

import { confirmDialog, h, icon, openDialog, replace, toast } from '../dom.js';
import { errText, roomNotifyLevel, setRoomNotifyLevel } from '../client.js';
import { debounce, isUserId, localpart, nodeOf, shortNode } from '../util.js';
import { avatar, lastSeenText, presenceDot } from './common.js';
import { getTheme, setTheme } from '../themes.js';

/** @typedef {import('./common.js').Ctx} Ctx */
/** @typedef {import('../types.js').Profile} Profile */
/** @typedef {import('../types.js').Settings} Settings */

let fieldSeq = 0;

/**
 * A labelled field.
 * @param {string} label @param {HTMLElement} control @param {string} [help]
 */
function field(label, control, help) {
  const id = control.id || `f-${++fieldSeq}`;
  control.id = id;
  const helpEl = help ? h('p', { class: 'help', id: `${id}-help`, text: help }) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control, helpEl);
}

/** @returns {HTMLElement} */
function formError() {
  return h('p', { class: 'form-error', testid: 'form-error', role: 'alert', hidden: true });
}

/** @param {HTMLElement} el @param {string|null} text */
function showError(el, text) {
  el.hidden = !text;
  el.textContent = text ?? '';
}

/** @param {Ctx} ctx */
export function createRoomDialog(ctx) {
  return openDialog({ title: 'Create a room', testid: 'create-room-dialog' }, (close) => {
    const name = h('input', { type: 'text', maxlength: 100, required: true, testid: 'create-room-name', autocomplete: 'off', placeholder: 'e.g. design-team' });
    const topic = h('textarea', { rows: 2, maxlength: 1000, testid: 'create-room-topic', placeholder: 'What is this room about?' });
    const pub = h('input', { type: 'radio', name: 'vis', value: 'public', checked: true, testid: 'create-room-public', id: `vis-pub-${++fieldSeq}` });
    const priv = h('input', { type: 'radio', name: 'vis', value: 'private', testid: 'create-room-private', id: `vis-priv-${fieldSeq}` });
    const err = formError();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'create-room-submit', text: 'Create room' });
    return h(
      'form',
      {
        class: 'form',
        onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          const n = name.value.trim();
          if (!n) return showError(err, 'Give the room a name.');
          submit.disabled = true;
          showError(err, null);
          try {
            /** @type {Settings} */
            const settings = { name: n, visibility: priv.checked ? 'private' : 'public' };
            if (topic.value.trim()) settings.topic = topic.value.trim();
            const room = await ctx.client.createRoom(settings, []);
            close();
            ctx.navigate(room);
          } catch (e) {
            showError(err, errText(e));
            submit.disabled = false;
          }
        },
      },
      field('Name', name),
      field('Topic (optional)', topic),
      h(
        'fieldset',
        { class: 'choices' },
        h('legend', { text: 'Who can join?' }),
        h('label', { class: 'choice', for: pub.id }, pub, h('span', {}, h('strong', { text: 'Public' }), h('span', { class: 'muted small', text: 'Listed in the directory; anyone on this and connected nodes can join.' }))),
        h('label', { class: 'choice', for: priv.id }, priv, h('span', {}, h('strong', { text: 'Private' }), h('span', { class: 'muted small', text: 'Only people you invite can join.' }))),
      ),
      err,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), submit),
    );
  });
}

/**
 * Finds a user to message directly or to invite to a room. A full id
 * (`@bob:<node>`) of any node can be entered too.
 * @param {Ctx} ctx @param {'dm'|'invite'} purpose @param {string|null} room
 */
export function userPickerDialog(ctx, purpose, room) {
  const s = ctx.store;
  const title = purpose === 'dm' ? 'New message' : `Invite to ${room ? s.roomName(room) : 'room'}`;
  return openDialog({ title, testid: 'user-picker-dialog', attrs: { 'data-purpose': purpose } }, (close) => {
    const input = h('input', {
      type: 'search',
      testid: 'user-search-input',
      placeholder: 'Name, @user or @user:node-id',
      autocomplete: 'off',
      'aria-controls': 'user-results',
    });
    const results = h('ul', { class: 'pick-list', id: 'user-results', 'aria-label': 'People', 'aria-live': 'polite' });
    const err = h('p', { class: 'form-error', testid: 'user-picker-error', role: 'alert', hidden: true });
    const status = h('p', { class: 'muted small', role: 'status' });
    const invited = new Set();
    const members = new Set((room && s.details.get(room)?.members.map((m) => m.user)) || []);

    /** @param {string} user */
    const choose = async (user) => {
      showError(err, null);
      try {
        if (purpose === 'dm') {
          const r = await ctx.client.directRoom(user);
          close();
          ctx.navigate(r);
        } else if (room) {
          await ctx.client.invite(room, user);
          invited.add(user);
          status.textContent = `Invited ${s.displayName(user)}.`;
          toast(`Invited ${s.displayName(user)}.`);
          render(lastUsers);
        }
      } catch (e) {
        showError(err, errText(e));
      }
    };

    /** @type {Profile[]} */
    let lastUsers = [];
    /** @param {Profile[]} users */
    const render = (users) => {
      lastUsers = users;
      const q = input.value.trim();
      const list = users.filter((u) => u.user !== s.me);
      if (isUserId(q) && !list.some((u) => u.user === q)) {
        list.unshift({ user: q, display_name: '', status: '' });
      }
      if (!list.length) {
        replace(results, q ? h('li', { class: 'muted small pick-empty', text: 'No one found. Paste a full id like @bob:<node id> to reach someone on another node.' }) : null);
        return;
      }
      replace(
        results,
        list.map((p) => {
          const isMember = members.has(p.user);
          const done = invited.has(p.user);
          const remote = s.hello ? nodeOf(p.user) !== s.hello.node : false;
          return h(
            'li',
            {},
            h(
              'button',
              {
                type: 'button',
                class: 'pick-item',
                testid: 'user-search-result',
                'data-user': p.user,
                disabled: purpose === 'invite' && (isMember || done),
                onclick: () => choose(p.user),
              },
              h('span', { class: 'dm-avatar' }, avatar(ctx, p.user, 'md'), presenceDot(ctx, p.user)),
              h(
                'span',
                { class: 'pick-text' },
                h('strong', { text: p.display_name || localpart(p.user) }),
                h('span', { class: 'muted small', text: `@${localpart(p.user)}${remote ? ` · node ${shortNode(nodeOf(p.user))}` : ''}${lastSeenText(ctx, p.user) ? ` · ${lastSeenText(ctx, p.user)}` : ''}` }),
              ),
              h('span', { class: 'pick-cta', text: purpose === 'dm' ? 'Message' : isMember ? 'Member' : done ? 'Invited' : 'Invite' }),
            ),
          );
        }),
      );
    };

    let seq = 0;
    const search = debounce(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) return render([]);
      try {
        const users = await ctx.client.searchUsers(q.startsWith('@') && !isUserId(q) ? q.slice(1) : q);
        if (mine === seq) render(users);
      } catch (e) {
        if (mine === seq) {
          render([]);
          showError(err, errText(e));
        }
      }
    }, 250);
    input.addEventListener('input', () => {
      showError(err, null);
      search();
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown') {
        const first = /** @type {HTMLElement|null} */ (results.querySelector('button:not([disabled])'));
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      } else if (ev.key === 'Enter') {
        ev.preventDefault();
        const q = input.value.trim();
        if (isUserId(q)) choose(q);
        else /** @type {HTMLElement|null} */ (results.querySelector('button:not([disabled])'))?.click();
      }
    });
    results.addEventListener('keydown', (ev) => {
      const items = /** @type {HTMLElement[]} */ (Array.from(results.querySelectorAll('button:not([disabled])')));
      const i = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
      if (ev.key === 'ArrowDown' && i >= 0) items[Math.min(items.length - 1, i + 1)]?.focus();
      else if (ev.key === 'ArrowUp') (i <= 0 ? input : items[i - 1]).focus();
      else return;
      ev.preventDefault();
    });
    render([]);
    return [
      field(purpose === 'dm' ? 'To' : 'Person', input, 'Search people on this node and on connected nodes.'),
      err,
      results,
      status,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', testid: 'user-picker-submit', text: 'Done', onclick: () => close() })),
    ];
  });
}

/** @param {Ctx} ctx */
export function browseDialog(ctx) {
  const s = ctx.store;
  return openDialog({ title: 'Browse rooms', testid: 'browse-dialog', wide: true }, (close) => {
    const input = h('input', { type: 'search', testid: 'public-room-search', placeholder: 'Search public rooms', autocomplete: 'off' });
    const results = h('ul', { class: 'pick-list rooms', 'aria-label': 'Public rooms', 'aria-busy': 'true' });
    const err = formError();
    let seq = 0;
    const load = debounce(async () => {
      const mine = ++seq;
      results.setAttribute('aria-busy', 'true');
      replace(results, h('li', { class: 'state-msg', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Searching…'));
      try {
        const rooms = await ctx.client.publicRooms(input.value.trim());
        if (mine !== seq) return;
        showError(err, null);
        if (!rooms.length) {
          replace(results, h('li', { class: 'muted pick-empty', text: input.value.trim() ? 'No public rooms match.' : 'There are no public rooms yet. Create the first one!' }));
        } else {
          replace(
            results,
            rooms.map((r) => {
              const joined = s.rooms.has(r.room) && !s.rooms.get(r.room)?.invited;
              const btn = h('button', {
                type: 'button',
                class: `btn btn-small ${joined ? '' : 'btn-primary'}`,
                testid: joined ? 'public-room-open' : 'public-room-join',
                text: joined ? 'Open' : 'Join',
                onclick: async () => {
                  try {
                    btn.disabled = true;
                    if (!joined) await ctx.client.joinRoom(r.room);
                    close();
                    ctx.navigate(r.room);
                  } catch (e) {
                    btn.disabled = false;
                    showError(err, errText(e));
                  }
                },
              });
              return h(
                'li',
                { class: 'public-room', testid: 'public-room-item', 'data-room-id': r.room },
                h('span', { class: 'room-glyph' }, icon('hash')),
                h('span', { class: 'pick-text' }, h('strong', { text: r.name || 'Untitled room' }), r.topic ? h('span', { class: 'muted small clamp', text: r.topic }) : null, h('span', { class: 'muted small', text: `${r.members} member${r.members === 1 ? '' : 's'}` })),
                btn,
              );
            }),
          );
        }
      } catch (e) {
        if (mine === seq) {
          results.replaceChildren();
          showError(err, errText(e));
        }
      } finally {
        if (mine === seq) results.setAttribute('aria-busy', 'false');
      }
    }, 250);
    input.addEventListener('input', load);
    load();
    return [field('Search', input), err, results];
  });
}

/** @param {Ctx} ctx */
export function profileDialog(ctx) {
  const s = ctx.store;
  const me = s.me;
  if (!me) return;
  const p = s.profiles.get(me);
  return openDialog({ title: 'Profile and settings', testid: 'profile-dialog' }, (close) => {
    const display = h('input', { type: 'text', maxlength: 64, testid: 'profile-display-name', value: p?.display_name ?? '', autocomplete: 'name' });
    const status = h('input', { type: 'text', maxlength: 200, testid: 'profile-status', value: p?.status ?? '', placeholder: 'What are you up to?' });
    const file = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', testid: 'profile-avatar-input', class: 'file-field' });
    const preview = h('span', { class: 'avatar-preview' }, avatar(ctx, me, 'lg'));
    const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Uploading picture' });
    const err = formError();
    /** @type {string|null|undefined} undefined: unchanged */
    let avatarBlob;
    let uploading = false;
    const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'profile-save', text: 'Save' });
    file.addEventListener('change', async () => {
      const f = file.files?.[0];
      if (!f) return;
      uploading = true;
      save.disabled = true;
      progress.hidden = false;
      try {
        const handle = ctx.client.upload(f, (loaded, total) => {
          progress.max = total || 1;
          progress.value = loaded;
        });
        const a = await handle.done;
        if (!a.mime.startsWith('image/')) throw new Error('Please choose an image.');
        avatarBlob = a.blob;
        const img = h('img', { alt: '' });
        ctx.client.blobUrl(a.blob).then((u) => (img.src = u)).catch(() => {});
        replace(preview, h('span', { class: 'avatar avatar-lg' }, img));
      } catch (e) {
        showError(err, errText(e));
      } finally {
        uploading = false;
        save.disabled = false;
        progress.hidden = true;
      }
    });
    const notifyBtn =
      'Notification' in window && Notification.permission !== 'granted'
        ? h('button', {
            type: 'button',
            class: 'btn',
            testid: 'notifications-enable',
            text: Notification.permission === 'denied' ? 'Notifications are blocked in this browser' : 'Enable desktop notifications',
            disabled: Notification.permission === 'denied',
            onclick: async (/** @type {MouseEvent} */ ev) => {
              const r = await Notification.requestPermission();
              const b = /** @type {HTMLButtonElement} */ (ev.currentTarget);
              b.textContent = r === 'granted' ? 'Notifications enabled' : 'Notifications not allowed';
              b.disabled = true;
            },
          })
        : h('p', { class: 'muted small', text: 'Desktop notifications are on for mentions and direct messages while Confab is in the background.' });
    const sound = h('input', { type: 'checkbox', checked: localStorage.getItem('confab.sound') === 'on', testid: 'sound-toggle', id: `snd-${++fieldSeq}` });
    // Applied at once, not on Save: the choice is seen while it is made.
    const theme = h(
      'select',
      { testid: 'theme-select', id: `theme-${++fieldSeq}` },
      ...[['system', 'Follow the system'], ['light', 'Light'], ['dark', 'Dark']].map(([v, label]) => h('option', { value: v, text: label, selected: getTheme(me) === v })),
    );
    theme.addEventListener('change', () => setTheme(me, /** @type {import('../themes.js').Theme} */ (theme.value)));
    sound.addEventListener('change', () => localStorage.setItem('confab.sound', sound.checked ? 'on' : 'off'));
    return h(
      'form',
      {
        class: 'form',
        onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          if (uploading) return;
          save.disabled = true;
          showError(err, null);
          /** @type {{display_name?: string, status?: string, avatar?: string|null}} */
          const f = {};
          if (display.value.trim() !== (p?.display_name ?? '')) f.display_name = display.value.trim();
          if (status.value.trim() !== (p?.status ?? '')) f.status = status.value.trim();
          if (avatarBlob !== undefined) f.avatar = avatarBlob;
          try {
            if (Object.keys(f).length) await ctx.client.setProfile(f);
            close();
            toast('Profile saved.');
          } catch (e) {
            showError(err, errText(e));
            save.disabled = false;
          }
        },
      },
      h(
        'div',
        { class: 'profile-top' },
        preview,
        h(
          'div',
          { class: 'profile-ids' },
          h('strong', { text: s.displayName(me) }),
          h('span', { class: 'muted small selectable', text: me }),
          h(
            'div',
            { class: 'avatar-actions' },
            h('label', { class: 'btn btn-small', for: (file.id = `avatar-${++fieldSeq}`) }, icon('image'), ' Change picture'),
            file,
            p?.avatar
              ? h('button', {
                  type: 'button',
                  class: 'btn btn-small',
                  testid: 'profile-avatar-remove',
                  text: 'Remove',
                  onclick: () => {
                    avatarBlob = null;
                    replace(preview, h('span', { class: 'avatar avatar-lg avatar-c0', text: '—' }));
                  },
                })
              : null,
          ),
          progress,
        ),
      ),
      field('Display name', display, 'Shown instead of your user name.'),
      field('Status', status),
      err,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), save),
      h('hr'),
      h('h3', { class: 'sub-title', text: 'Notifications' }),
      notifyBtn,
      h('label', { class: 'check', for: sound.id }, sound, ' Play a sound for mentions and direct messages'),
      h('hr'),
      h('h3', { class: 'sub-title', text: 'Appearance' }),
      field('Theme', theme),
      h('hr'),
      h('h3', { class: 'sub-title', text: 'Session' }),
      h(
        'div',
        { class: 'row-actions' },
        h('button', {
          type: 'button',
          class: 'btn',
          testid: 'logout-button',
          onclick: () => {
            close();
            ctx.client.logout(false);
          },
        }, icon('logout'), ' Sign out'),
        h('button', {
          type: 'button',
          class: 'btn btn-danger',
          testid: 'logout-all-button',
          text: 'Sign out everywhere',
          onclick: async () => {
            if (await confirmDialog('Sign out everywhere?', 'Every browser signed in to this account will be signed out.', 'Sign out everywhere', true)) {
              close();
              ctx.client.logout(true);
            }
          },
        }),
      ),
    );
  });
}

/** @param {Ctx} ctx @param {string} room */
export function settingsDialog(ctx, room) {
  const s = ctx.store;
  const r = s.rooms.get(room);
  const can = s.can(room, 'room.settings');
  const dm = !!r?.direct_with;
  return openDialog({ title: dm ? 'Conversation settings' : 'Room settings', testid: 'settings-dialog' }, (close) => {
    const name = h('input', { type: 'text', maxlength: 100, testid: 'settings-name', value: r?.name ?? '', disabled: !can || r?.archived });
    const topic = h('textarea', { rows: 3, maxlength: 1000, testid: 'settings-topic', value: r?.topic ?? '', disabled: !can || r?.archived });
    const pub = h('input', { type: 'radio', name: 'svis', testid: 'settings-public', checked: r?.visibility !== 'private', disabled: !can || r?.archived, id: `svp-${++fieldSeq}` });
    const priv = h('input', { type: 'radio', name: 'svis', testid: 'settings-private', checked: r?.visibility === 'private', disabled: !can || r?.archived, id: `svq-${fieldSeq}` });
    const detail = s.details.get(room);
    // Rooms of rules version 1 let every member invite and have no such setting.
    const hasInvites = !!detail && detail.rules_version >= 2;
    const invites = h(
      'select',
      { testid: 'settings-invites', disabled: !can || r?.archived },
      [
        h('option', { value: 'room.settings', selected: detail?.invites !== 'members', text: 'Only people who can change room settings' }),
        h('option', { value: 'members', selected: detail?.invites === 'members', text: 'Every member' }),
      ],
    );
    const level = h(
      'select',
      { testid: 'settings-notify' },
      ['all', 'mentions', 'none'].map((v) => h('option', { value: v, selected: roomNotifyLevel(room) === v, text: v === 'all' ? 'All messages' : v === 'mentions' ? 'Mentions, direct messages and replies to my threads' : 'Nothing' })),
    );
    level.addEventListener('change', () => setRoomNotifyLevel(room, /** @type {'all'|'mentions'|'none'} */ (level.value)));
    const err = formError();
    const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'settings-save', text: 'Save changes', disabled: !can || r?.archived });
    const form = h(
      'form',
      {
        class: 'form',
        onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          if (!r) return;
          /** @type {Settings} */
          const st = {};
          if (name.value.trim() && name.value.trim() !== r.name) st.name = name.value.trim();
          if (topic.value.trim() !== (r.topic ?? '')) st.topic = topic.value.trim();
          const vis = priv.checked ? 'private' : 'public';
          if (vis !== r.visibility) st.visibility = vis;
          if (hasInvites && invites.value !== detail?.invites) st.invites = /** @type {'members'|'room.settings'} */ (invites.value);
          if (!Object.keys(st).length) return close();
          save.disabled = true;
          try {
            await ctx.client.changeSettings(room, st);
            close();
            toast('Room settings saved.');
          } catch (e) {
            showError(err, errText(e));
            save.disabled = false;
          }
        },
      },
      dm ? null : field('Name', name),
      dm ? null : field('Topic', topic),
      dm
        ? null
        : h(
            'fieldset',
            { class: 'choices' },
            h('legend', { text: 'Visibility' }),
            h('label', { class: 'choice', for: pub.id }, pub, h('span', { text: 'Public — listed, anyone can join' })),
            h('label', { class: 'choice', for: priv.id }, priv, h('span', { text: 'Private — invite only' })),
          ),
      dm || !hasInvites ? null : field('Who can invite to this room while it is private', invites),
      !can && !dm ? h('p', { class: 'muted small', text: 'Only members with the room.settings permission can change these.' }) : null,
      err,
      dm ? null : h('div', { class: 'dialog-actions' }, save),
      h('hr'),
      field('Notify me about', level),
      h('hr'),
      h(
        'div',
        { class: 'row-actions' },
        can && !r?.archived && !dm
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn btn-danger',
                testid: 'archive-room',
                onclick: async () => {
                  if (!(await confirmDialog('Archive this room?', 'Nobody can post in an archived room. Its history stays readable.', 'Archive', true))) return;
                  try {
                    await ctx.client.archiveRoom(room);
                    close();
                    toast('Room archived.');
                  } catch (e) {
                    showError(err, errText(e));
                  }
                },
              },
              icon('archive'),
              ' Archive room',
            )
          : null,
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-danger',
            testid: 'leave-room',
            onclick: async () => {
              const msg = r?.visibility === 'private' ? 'You will need a new invitation to come back.' : 'You can join again from the directory.';
              if (!(await confirmDialog(`Leave ${s.roomName(room)}?`, msg, 'Leave', true))) return;
              try {
                await ctx.client.leaveRoom(room);
                close();
                ctx.navigate(null);
              } catch (e) {
                showError(err, errText(e));
              }
            },
          },
          icon('logout'),
          dm ? ' Leave conversation' : ' Leave room',
        ),
      ),
    );
    return form;
  });
}

/** @param {Ctx} ctx @param {string} room @param {string} event */
export function reportDialog(ctx, room, event) {
  return openDialog({ title: 'Report message', testid: 'report-dialog' }, (close) => {
    const reason = h('textarea', { rows: 4, maxlength: 500, required: true, testid: 'report-reason', placeholder: 'What is wrong with this message?' });
    const err = formError();
    const submit = h('button', { type: 'submit', class: 'btn btn-danger', testid: 'report-submit', text: 'Send report' });
    return h(
      'form',
      {
        class: 'form',
        onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          if (!reason.value.trim()) return showError(err, 'Please say why.');
          submit.disabled = true;
          try {
            await ctx.client.report(room, event, reason.value.trim());
            close();
            toast('Thanks — the report was sent to the administrators of your node.');
          } catch (e) {
            showError(err, errText(e));
            submit.disabled = false;
          }
        },
      },
      h('p', { class: 'muted', text: 'The administrators of your node will see the message and your reason.' }),
      field('Reason', reason),
      err,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), submit),
    );
  });
}

/** @param {Ctx} ctx @param {string} room @param {string} user */
export function muteDialog(ctx, room, user) {
  const s = ctx.store;
  return openDialog({ title: `Mute ${s.displayName(user)}`, testid: 'mute-dialog' }, (close) => {
    const dur = h(
      'select',
      { testid: 'mute-duration' },
      [
        [15, '15 minutes'],
        [60, '1 hour'],
        [480, '8 hours'],
        [1440, '24 hours'],
        [10080, '1 week'],
      ].map(([m, label]) => h('option', { value: m, text: label })),
    );
    const reason = h('input', { type: 'text', maxlength: 500, testid: 'mute-reason' });
    const err = formError();
    return h(
      'form',
      {
        class: 'form',
        onsubmit: async (/** @type {Event} */ ev) => {
          ev.preventDefault();
          try {
            await ctx.client.moderate(room, { kind: 'mute', target: user, until: Date.now() + Number(dur.value) * 60000, reason: reason.value.trim() });
            close();
            toast(`${s.displayName(user)} is muted.`);
          } catch (e) {
            showError(err, errText(e));
          }
        },
      },
      h('p', { class: 'muted', text: 'They can still read the room but cannot post, react or edit until the mute ends.' }),
      field('For', dur),
      field('Reason (optional)', reason),
      err,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), h('button', { type: 'submit', class: 'btn btn-danger', testid: 'mute-submit', text: 'Mute' })),
    );
  });
}

/**
 * Asks for a reason, then kicks or bans.
 * @param {Ctx} ctx @param {string} room @param {string} user @param {'kick'|'ban'} kind
 */
export async function removeMember(ctx, room, user, kind) {
  const s = ctx.store;
  const name = s.displayName(user);
  const r = await openDialog({ title: kind === 'ban' ? `Ban ${name}` : `Remove ${name}`, testid: `${kind}-dialog` }, (close) => {
    const reason = h('input', { type: 'text', maxlength: 500, testid: `${kind}-reason` });
    return h(
      'form',
      {
        class: 'form',
        onsubmit: (/** @type {Event} */ ev) => {
          ev.preventDefault();
          close(reason.value.trim());
        },
      },
      h('p', { class: 'muted', text: kind === 'ban' ? 'They are removed and cannot come back until unbanned.' : 'They are removed from the room and may rejoin if the room allows it.' }),
      field('Reason (optional)', reason),
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close() }), h('button', { type: 'submit', class: 'btn btn-danger', testid: `${kind}-submit`, text: kind === 'ban' ? 'Ban' : 'Remove' })),
    );
  });
  if (r === undefined) return;
  try {
    await ctx.client.moderate(room, { kind, target: user, reason: r });
    toast(kind === 'ban' ? `${name} is banned.` : `${name} was removed.`);
  } catch (e) {
    toast(errText(e), { kind: 'error' });
  }
}
