// Sign in and registration.

import { h, icon } from '../dom.js';
import { RequestError } from '../protocol.js';
import { isLocalpart, shortNode } from '../util.js';
import { errText } from '../client.js';

/** @typedef {import('../client.js').Client} Client */

/**
 * @param {HTMLElement} root @param {Client} client
 * @returns {() => void} cleanup
 */
export function renderLogin(root, client) {
  const s = client.store;
  /** @type {'login'|'register'} */
  let mode = 'login';
  const username = h('input', { id: 'lg-user', type: 'text', name: 'username', testid: 'login-username', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, maxlength: 32 });
  const password = h('input', { id: 'lg-pass', type: 'password', name: 'password', testid: 'login-password', autocomplete: 'current-password', required: true });
  const confirm = h('input', { id: 'lg-pass2', type: 'password', testid: 'login-password-confirm', autocomplete: 'new-password' });
  const invite = h('input', { id: 'lg-invite', type: 'text', testid: 'login-invite-code', autocomplete: 'off' });
  const error = h('p', { class: 'form-error', testid: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'login-submit' });
  const loginTab = h('button', { type: 'button', role: 'tab', class: 'tab', testid: 'login-tab', text: 'Sign in', id: 'tab-login', 'aria-controls': 'auth-form' });
  const registerTab = h('button', { type: 'button', role: 'tab', class: 'tab', testid: 'register-tab', text: 'Create account', id: 'tab-register', 'aria-controls': 'auth-form' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Sign in or create an account' }, loginTab, registerTab);
  const confirmField = h('div', { class: 'field' }, h('label', { for: 'lg-pass2', text: 'Repeat password' }), confirm);
  const inviteField = h('div', { class: 'field' }, h('label', { for: 'lg-invite', text: 'Invite code' }), invite, h('p', { class: 'help', text: 'This server needs an invite code to create an account. Ask its administrator.' }));
  const userHelp = h('p', { class: 'help', id: 'lg-user-help' });
  username.setAttribute('aria-describedby', 'lg-user-help');
  const status = h('p', { class: 'login-status', role: 'status' });
  const title = h('h1', {});
  const closedNote = h('p', { class: 'muted small', hidden: true, text: 'Registration is closed on this server. Ask an administrator for an account.' });

  const form = h(
    'form',
    { class: 'login-form form', id: 'auth-form', testid: 'login-form', 'data-mode': mode, novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'lg-user', text: 'User name' }), username, userHelp),
    h('div', { class: 'field' }, h('label', { for: 'lg-pass', text: 'Password' }), password),
    confirmField,
    inviteField,
    error,
    submit,
    closedNote,
  );
  const card = h(
    'main',
    { class: 'login', id: 'main', tabindex: -1 },
    h('div', { class: 'login-card' }, h('div', { class: 'login-brand' }, h('img', { src: '/icon.svg', alt: '', width: 40, height: 40 }), title), status, tabs, h('div', { role: 'tabpanel', 'aria-labelledby': 'tab-login' }, form)),
  );
  root.replaceChildren(card);

  const update = () => {
    const hello = s.hello;
    const reg = hello?.registration ?? 'open';
    title.textContent = hello ? `Confab · ${hello.node_name}` : 'Confab';
    if (mode === 'register' && reg === 'closed') mode = 'login';
    form.dataset.mode = mode;
    loginTab.setAttribute('aria-selected', String(mode === 'login'));
    registerTab.setAttribute('aria-selected', String(mode === 'register'));
    loginTab.tabIndex = mode === 'login' ? 0 : -1;
    registerTab.tabIndex = mode === 'register' ? 0 : -1;
    registerTab.hidden = reg === 'closed';
    closedNote.hidden = reg !== 'closed';
    confirmField.hidden = mode !== 'register';
    inviteField.hidden = mode !== 'register' || reg !== 'invite';
    password.autocomplete = mode === 'register' ? 'new-password' : 'current-password';
    submit.textContent = mode === 'register' ? 'Create account' : 'Sign in';
    userHelp.textContent = mode === 'register' ? `Lowercase letters, digits, “.”, “_” and “-”. You will be @name on ${hello ? hello.node_name : 'this server'}.` : '';
    const conn = s.conn.state;
    if (conn === 'online') status.replaceChildren();
    else if (conn === 'stopped') status.replaceChildren(icon('alert'), ' This page is out of date. Reload to continue.');
    else status.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), conn === 'connecting' ? ' Connecting to the server…' : ' The server is unreachable. Retrying…');
    submit.disabled = conn !== 'online' || busy;
    if (hello) status.title = `Node ${shortNode(hello.node)}`;
  };

  /** @param {string|null} text */
  const showError = (text) => {
    error.hidden = !text;
    error.textContent = text ?? '';
  };

  let busy = false;
  if (client.authError) {
    showError(client.authError);
    client.authError = null;
  }

  /** @param {'login'|'register'} m */
  const setMode = (m) => {
    mode = m;
    showError(null);
    update();
  };
  loginTab.addEventListener('click', () => setMode('login'));
  registerTab.addEventListener('click', () => setMode('register'));
  tabs.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    ev.preventDefault();
    const next = mode === 'login' && !registerTab.hidden ? 'register' : 'login';
    setMode(next);
    (next === 'login' ? loginTab : registerTab).focus();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    const name = username.value.trim().toLowerCase().replace(/^@/, '').replace(/:.*$/, '');
    if (!name || !password.value) {
      showError('Enter your user name and password.');
      (name ? password : username).focus();
      return;
    }
    if (mode === 'register') {
      if (!isLocalpart(name)) {
        showError('User names are 1–32 characters: a–z, 0–9, “.”, “_” and “-”, starting with a letter or digit.');
        username.focus();
        return;
      }
      if (password.value.length < 8) {
        showError('Choose a password of at least 8 characters.');
        password.focus();
        return;
      }
      if (password.value !== confirm.value) {
        showError('The passwords do not match.');
        confirm.focus();
        return;
      }
    }
    busy = true;
    showError(null);
    update();
    submit.textContent = mode === 'register' ? 'Creating account…' : 'Signing in…';
    try {
      /** @type {{username: string, password: string, invite_code?: string}} */
      const fields = { username: name, password: password.value };
      if (mode === 'register' && s.hello?.registration === 'invite') fields.invite_code = invite.value.trim();
      await client.signIn(mode, fields);
    } catch (e) {
      busy = false;
      update();
      showError(loginError(e, mode));
      password.focus();
    }
  });

  const offs = [s.on('conn', update), s.on('hello', update)];
  update();
  username.focus();
  return () => {
    for (const off of offs) off();
  };
}

/** @param {unknown} e @param {'login'|'register'} mode */
function loginError(e, mode) {
  if (!(e instanceof RequestError)) return errText(e);
  switch (e.code) {
    case 'unauthenticated':
      return 'Wrong user name or password.';
    case 'conflict':
      return 'That user name is taken. Try another one.';
    case 'registration_closed':
      return mode === 'register' ? e.message || 'Registration is closed, or the invite code is not valid.' : 'Registration is closed.';
    case 'disabled':
      return 'This account is disabled. Contact the administrator of this server.';
    case 'bad_request':
      return e.message || 'Please check what you entered.';
    default:
      return errText(e);
  }
}
