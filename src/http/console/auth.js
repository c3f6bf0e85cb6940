/* auth.js — the console's pages before a session: sign-in and accepting
 * an invitation (/invite/<token>).  Both refuse nothing themselves: the
 * server checks the password, the login limit and the token.  Loaded
 * after app.js, whose helpers (h, api, start …) it uses. */
'use strict';

function authCard(title, sub, content) {
  return h('div', { class: 'auth' }, h('main', { class: 'auth-card', id: 'main' },
    h('div', { class: 'brand' }, h('img', { src: '/assets/logo.svg', alt: '' }), 'keyward'),
    h('h1', {}, title), sub ? h('p', { class: 'sub' }, sub) : null, content));
}

function signInPage(message) {
  document.title = 'Sign in · keyward';
  const err = h('div', { class: 'error', role: 'alert' }, message || '');
  const email = h('input', { type: 'email', id: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
  const form = h('form', { novalidate: true }, err,
    h('div', { class: 'field' }, h('label', { for: 'email' }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), password),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    submit.disabled = true;
    try {
      const r = await api('POST', '/api/login/', { email: email.value.trim(), password: password.value });
      state.csrf = r.csrf_token;
      await start();
    } catch (e) {
      err.textContent = e.status === 400 && e.body && e.body.code === 'invalid_credentials' ? e.body.detail : e.message;
      submit.disabled = false;
      password.focus();
    }
  });
  document.getElementById('app').replaceChildren(authCard('Sign in', 'Manage your API keys and see who changed what.', [form,
    h('p', { class: 'auth-foot' }, 'No password yet? Ask an admin for an invitation, or run ', h('code', {}, 'keyward user set-password'), '.')]));
  email.focus();
}

async function invitePage(token) {
  document.title = 'Join · keyward';
  const app = document.getElementById('app');
  let info;
  try {
    info = await api('GET', `/api/invites/${encodeURIComponent(token)}/`);
  } catch (e) {
    app.replaceChildren(authCard('This invitation is not valid', 'It may have expired or been used already. Ask for a new one.',
      h('a', { class: 'btn primary', href: '/' }, 'Go to sign in')));
    return;
  }
  const err = h('div', { class: 'error', role: 'alert' });
  const first = h('input', { type: 'text', id: 'first_name', autocomplete: 'given-name' });
  const password = h('input', { type: 'password', id: 'password', autocomplete: info.has_account ? 'current-password' : 'new-password', required: true, minlength: '10' });
  const form = h('form', { novalidate: true }, err,
    h('div', { class: 'field' }, h('label', { for: 'invite-email' }, 'Email'), h('input', { type: 'email', id: 'invite-email', readonly: true, value: info.target_email })),
    info.has_account ? null : h('div', { class: 'field' }, h('label', { for: 'first_name' }, 'Your name'), first),
    h('div', { class: 'field' }, h('label', { for: 'password' }, info.has_account ? 'Your current password' : 'Choose a password'), password,
      h('div', { class: 'hint' }, info.has_account ? 'You already have an account: sign in to join.' : 'At least 10 characters.')),
    h('button', { class: 'btn primary', type: 'submit' }, info.has_account ? 'Sign in and join' : 'Join'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const r = await api('POST', '/api/invites/accept/', { token, password: password.value, first_name: first.value.trim() });
      state.csrf = r.csrf_token;
      history.replaceState(null, '', '/#/keys');
      await start();
    } catch (e) { err.textContent = e.message; }
  });
  app.replaceChildren(authCard(`Join ${info.organization_name || 'your team'} on keyward`,
    `You were invited as ${LEVELS[info.level] ? LEVELS[info.level].toLowerCase() : 'a member'}.`, form));
}
