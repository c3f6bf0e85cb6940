/* app.js — the keyward web console: a small single-page app, no framework.
 *
 * Every action goes through the same JSON API and route policy as machines
 * (fetch with the session cookie, plus X-CSRFToken on every write); the
 * console has no private endpoints beyond sign-in.  The DOM is built with
 * textContent only, never innerHTML, so no string from the server (a key
 * label, an email) can become markup; the server's CSP forbids inline
 * script besides.  Routes are URL hashes (#/keys, #/project/1/activity, …);
 * /invite/<token> is the invitation page. */
'use strict';

/* The scope objects of lib/scope.c, in its order (a test compares them). */
const SCOPE_OBJECTS = [
  'action', 'activity_log', 'alert', 'annotation', 'batch_export', 'cohort',
  'dashboard', 'dashboard_template', 'early_access_feature', 'endpoint',
  'error_tracking', 'event_definition', 'experiment', 'export',
  'feature_flag', 'group', 'hog_function', 'insight', 'integration',
  'notebook', 'organization', 'organization_member', 'person', 'plugin',
  'project', 'property_definition', 'query', 'session_recording',
  'session_recording_playlist', 'sharing_configuration', 'subscription',
  'survey', 'user', 'webhook', 'personal_api_key',
];
/* What a project secret key may hold (SPEC §3). */
const SECRET_KEY_SCOPES = ['endpoint:read', 'experiment:read', 'feature_flag:read'];
const ACTIVITY_SCOPES = {
  PersonalAPIKey: 'Personal API key', ProjectSecretAPIKey: 'Project secret key',
  FeatureFlag: 'Feature flag', Project: 'Project', OrganizationInvite: 'Invitation',
  Endpoint: 'Endpoint',
};
const LEVELS = { 1: 'Member', 8: 'Admin', 15: 'Owner' };
const ONCE_TEXT = "You won't be able to see this key again.";

const state = { csrf: null, me: null, projects: [] };

/* ---- DOM and API helpers ------------------------------------------------- */

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail ? body.detail : `The request failed (HTTP ${status}).`;
    super(body && body.attr ? `${body.attr}: ${detail}` : detail);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRFToken'] = state.csrf;
  const resp = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch (e) { data = null; }
  }
  if (!resp.ok) {
    if (resp.status === 401 && state.me) signedOut('Your session has ended. Please sign in again.');
    throw new ApiError(resp.status, data);
  }
  return data;
}

function fmtTime(iso) {
  if (!iso) return h('span', { class: 'time' }, 'Never');
  const d = new Date(iso);
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  const units = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]];
  let text = 'just now';
  for (const [unit, n] of units) {
    if (Math.abs(secs) >= n) { text = rtf.format(Math.round(secs / n), unit); break; }
  }
  return h('time', { class: 'time', datetime: iso, title: d.toLocaleString() }, text);
}

function toast(text) {
  const t = h('div', { class: 'toast' }, text);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), 4000);
}

function scopeChips(scopes) {
  if (!scopes || !scopes.length) return h('span', { class: 'chip more' }, 'no access');
  if (scopes.includes('*')) return h('span', { class: 'chip all' }, 'All access');
  const shown = scopes.slice(0, 3).map((s) => h('span', { class: 'chip' }, s));
  if (scopes.length > 3) {
    shown.push(h('span', { class: 'chip more', title: scopes.join(', ') }, `+${scopes.length - 3} more`));
  }
  return h('div', { class: 'chips' }, shown);
}

async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (e) {
    const tmp = h('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
    tmp.value = text;
    document.body.append(tmp);
    tmp.select();
    try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    tmp.remove();
  }
  const label = button.textContent;
  button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
  setTimeout(() => { button.textContent = label; }, 1800);
}

/* ---- dialogs ------------------------------------------------------------- */

/* A modal <dialog> (focus stays inside, Esc closes); resolves with the
 * value passed to close(). */
function openDialog({ title, description, body, actions, wide }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = nextId('dlg-title');
    const dlg = h('dialog', { class: wide ? 'wide' : null, 'aria-labelledby': titleId });
    let result;
    const close = (value) => { result = value; dlg.close(); };
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.focus) opener.focus();
      resolve(result);
    });
    dlg.append(
      h('div', { class: 'dialog-head' }, h('h2', { id: titleId }, title), description ? h('p', {}, description) : null),
      h('div', { class: 'dialog-body' }, body || []),
      h('div', { class: 'dialog-foot' }, actions(close)),
    );
    document.body.append(dlg);
    dlg.showModal();
  });
}

function confirmDialog(title, message, confirmLabel, danger) {
  return openDialog({
    title,
    body: h('p', {}, message),
    actions: (close) => [
      h('button', { class: 'btn', type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { class: `btn ${danger ? 'danger' : 'primary'}`, type: 'button', onclick: () => close(true) }, confirmLabel),
    ],
  });
}

/* The one time a key's value is shown. */
function showSecret(title, value, what) {
  const inputId = nextId('secret');
  const input = h('input', { type: 'text', id: inputId, readonly: true, spellcheck: 'false', class: 'mono' });
  input.value = value;
  input.addEventListener('focus', () => input.select());
  const copy = h('button', { class: 'btn primary', type: 'button', onclick: (e) => copyText(value, e.currentTarget) }, 'Copy');
  return openDialog({
    title, wide: true,
    body: [
      h('div', { class: 'once', role: 'alert' }, h('strong', {}, ONCE_TEXT),
        ` Copy the ${what} now and keep it somewhere safe, such as your secret manager.`),
      h('label', { for: inputId }, `Your ${what}`),
      h('div', { class: 'secret-box' }, input, copy),
    ],
    actions: (close) => [h('button', { class: 'btn', type: 'button', onclick: () => close(true) }, "I've stored it")],
  });
}

/* A checkbox grid of every scope object with read / write, plus "all". */
function scopeGrid() {
  const allId = nextId('scope-all');
  const all = h('input', { type: 'checkbox', id: allId });
  const boxes = [];
  const rows = SCOPE_OBJECTS.map((obj) => {
    const read = h('input', { type: 'checkbox', 'aria-label': `${obj}: read`, 'data-scope': `${obj}:read` });
    const write = h('input', { type: 'checkbox', 'aria-label': `${obj}: write`, 'data-scope': `${obj}:write` });
    write.addEventListener('change', () => { if (write.checked) read.checked = true; });
    read.addEventListener('change', () => { if (!read.checked) write.checked = false; });
    boxes.push([obj, read, write]);
    return h('tr', {}, h('td', {}, h('code', {}, obj)), h('td', { class: 'c' }, read), h('td', { class: 'c' }, write));
  });
  const grid = h('div', { class: 'scope-grid', role: 'group', 'aria-label': 'Scopes by object' },
    h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Object'), h('th', { scope: 'col', class: 'c' }, 'Read'),
      h('th', { scope: 'col', class: 'c' }, 'Write'))), h('tbody', {}, rows)));
  all.addEventListener('change', () => {
    grid.classList.toggle('disabled', all.checked);
    for (const [, r, w] of boxes) { r.disabled = all.checked; w.disabled = all.checked; }
  });
  const element = h('fieldset', { class: 'field plain' },
    h('legend', { class: 'sr-only' }, 'Scopes'),
    h('div', { class: 'scope-all' }, all, h('label', { for: allId }, 'All access (*)'),
      h('span', { class: 'hint' }, '— everything you can do, now and later')),
    grid);
  const value = () => {
    if (all.checked) return ['*'];
    const out = [];
    for (const [obj, r, w] of boxes) {
      if (w.checked) out.push(`${obj}:write`);
      else if (r.checked) out.push(`${obj}:read`);
    }
    return out;
  };
  return { element, value };
}

function scopeList(scopes) {
  const boxes = scopes.map((s) => {
    const id = nextId('psk-scope');
    const box = h('input', { type: 'checkbox', id, value: s, 'data-scope': s });
    return [s, box, h('label', { for: id }, box, h('code', {}, s))];
  });
  return {
    element: h('fieldset', { class: 'field plain scope-list' }, h('legend', { class: 'sr-only' }, 'Scopes'), boxes.map((b) => b[2])),
    value: () => boxes.filter((b) => b[1].checked).map((b) => b[0]),
  };
}

/* Label + scopes; submits through `create` and shows the value once. */
function createKeyDialog({ title, description, picker, create, what }) {
  const labelId = nextId('label');
  const label = h('input', { type: 'text', id: labelId, maxlength: '40', required: true, autocomplete: 'off' });
  const err = h('div', { class: 'error', role: 'alert' });
  return openDialog({
    title, description, wide: true,
    body: [err,
      h('div', { class: 'field' }, h('label', { for: labelId }, 'Label'), label,
        h('div', { class: 'hint' }, 'What uses this key, e.g. "CI deploy" (up to 40 characters).')),
      h('div', { class: 'field' }, h('span', { class: 'label-text' }, h('strong', {}, 'Scopes')),
        h('div', { class: 'hint' }, 'Grant only what the key needs.'), picker.element)],
    actions: (close) => {
      const submit = h('button', { class: 'btn primary', type: 'button' }, 'Create key');
      submit.addEventListener('click', async () => {
        err.textContent = '';
        submit.disabled = true;
        try {
          const key = await create({ label: label.value.trim(), scopes: picker.value() });
          close(key);
        } catch (e) {
          err.textContent = e.message;
          submit.disabled = false;
        }
      });
      return [h('button', { class: 'btn', type: 'button', onclick: () => close(null) }, 'Cancel'), submit];
    },
  }).then((key) => (key ? showSecret('Your new key', key.value, what).then(() => key) : null));
}

/* ---- pages --------------------------------------------------------------- */

function pageHead(title, text, action) {
  return h('div', { class: 'page-head' },
    h('div', {}, h('h1', { tabindex: '-1', class: 'page-title' }, title), text ? h('p', {}, text) : null),
    action || null);
}

function keyTable(keys, columns, actions, empty) {
  if (!keys.length) return h('div', { class: 'empty' }, h('strong', {}, empty[0]), empty[1]);
  return h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c[0])), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    h('tbody', {}, keys.map((k) => h('tr', { 'data-key-id': k.id }, columns.map((c) => h('td', {}, c[1](k))), h('td', { class: 'actions' }, actions(k))))));
}

/* Personal API keys and project secret keys share this page shape. */
async function keysPage(main, cfg) {
  const list = h('div', { class: 'panel' }, h('div', { class: 'empty' }, 'Loading…'));
  const refresh = async () => {
    const keys = await cfg.list();
    list.replaceChildren(keyTable(keys, cfg.columns, (k) => cfg.canWrite ? [
      h('button', { class: 'btn small', type: 'button', 'aria-label': `Roll ${k.label}`, onclick: async () => {
        if (!await confirmDialog(`Roll "${k.label}"?`, 'A new value replaces the current one, which stops working immediately. Update everything that uses it.', 'Roll key', false)) return;
        try {
          const rolled = await api('POST', `${cfg.base}${encodeURIComponent(k.id)}/roll/`);
          await showSecret(`New value for "${k.label}"`, rolled.value, cfg.what);
          await refresh();
        } catch (e) { toast(e.message); }
      } }, 'Roll'),
      h('button', { class: 'btn small ghost link-danger', type: 'button', 'aria-label': `Delete ${k.label}`, onclick: async () => {
        if (!await confirmDialog(`Delete "${k.label}"?`, 'Anything using this key stops working at once. This cannot be undone.', 'Delete key', true)) return;
        try {
          await api('DELETE', `${cfg.base}${encodeURIComponent(k.id)}/`);
          toast(`Deleted "${k.label}".`);
          await refresh();
        } catch (e) { toast(e.message); }
      } }, 'Delete'),
    ] : [], cfg.empty));
  };
  const newButton = cfg.canWrite ? h('button', { class: 'btn primary', type: 'button', onclick: async () => {
    const key = await createKeyDialog({ title: cfg.createTitle, description: cfg.createText, picker: cfg.picker(), what: cfg.what,
      create: (body) => api('POST', cfg.base, body) });
    if (key) await refresh();
  } }, '+ New key') : null;
  main.replaceChildren(pageHead(cfg.title, cfg.text, newButton), list);
  await refresh();
}

const baseColumns = [
  ['Label', (k) => h('span', { class: 'label-cell' }, k.label)],
  ['Key', (k) => h('span', { class: 'mask' }, k.mask_value)],
  ['Scopes', (k) => scopeChips(k.scopes)],
  ['Created', (k) => fmtTime(k.created_at)],
  ['Last used', (k) => fmtTime(k.last_used_at)],
  ['Last rolled', (k) => fmtTime(k.last_rolled_at)],
];

function personalKeysPage(main) {
  return keysPage(main, {
    title: 'Personal API keys',
    text: 'Keys that act as you, for scripts and tools. Each holds only the scopes you give it and stops working if your account is deactivated.',
    base: '/api/personal_api_keys/', what: 'personal API key', canWrite: true,
    list: () => api('GET', '/api/personal_api_keys/'),
    columns: baseColumns,
    picker: scopeGrid,
    createTitle: 'New personal API key',
    createText: 'The key can do only what its scopes allow, and never more than you can.',
    empty: ['No personal API keys yet', 'Create one to call the API from a script or CI job.'],
  });
}

function project(id) { return state.projects.find((p) => String(p.id) === String(id)); }
function levelIn(orgId) {
  const org = (state.me.organizations || []).find((o) => o.id === orgId);
  return org ? org.membership_level : 0;
}

function secretKeysPage(main, pid) {
  const p = project(pid);
  const admin = p && levelIn(p.organization) >= 8;
  return keysPage(main, {
    title: 'Project secret keys',
    text: `Keys of the project ${p ? p.name : ''} for servers: flag definitions and endpoints. They belong to the project, not to a person, so they keep working when people leave.`,
    base: `/api/projects/${pid}/project_secret_api_keys/`, what: 'project secret key', canWrite: admin,
    list: async () => (await api('GET', `/api/projects/${pid}/project_secret_api_keys/?limit=100`)).results,
    columns: [...baseColumns.slice(0, 4), ['Created by', (k) => (k.created_by ? k.created_by.email : '—')], ...baseColumns.slice(4)],
    picker: () => scopeList(SECRET_KEY_SCOPES),
    createTitle: 'New project secret key',
    createText: 'Project secret keys may only read endpoints, experiments and feature flags.',
    empty: ['No project secret keys yet', admin ? 'Create one for a server that evaluates flags locally.' : 'Project admins can create them.'],
  });
}

async function tokenPage(main, pid) {
  main.replaceChildren(pageHead('Project token', 'The public token your apps embed to send events and evaluate flags. It cannot read or change anything else.'),
    h('div', { class: 'panel' }, h('div', { class: 'empty' }, 'Loading…')));
  const render = (proj, revealed) => {
    const inputId = nextId('token');
    const input = h('input', { type: 'text', id: inputId, readonly: true, spellcheck: 'false' });
    input.value = revealed ? proj.api_token : `${proj.api_token.slice(0, 4)}${'•'.repeat(24)}`;
    const admin = levelIn(proj.organization) >= 8;
    main.replaceChildren(
      pageHead('Project token', 'The public token your apps embed to send events and evaluate flags. It cannot read or change anything else.'),
      h('section', { class: 'panel' }, h('div', { class: 'panel-body' },
        h('dl', { class: 'kv' }, h('dt', {}, 'Project'), h('dd', {}, proj.name), h('dt', {}, 'Project ID'), h('dd', {}, h('code', {}, String(proj.id))),
          h('dt', {}, 'Organization'), h('dd', {}, proj.organization_name || '—')),
        h('label', { for: inputId }, 'Token'),
        h('div', { class: 'token-row' }, input,
          h('button', { class: 'btn', type: 'button', 'aria-pressed': revealed ? 'true' : 'false', onclick: () => render(proj, !revealed) }, revealed ? 'Hide' : 'Reveal'),
          h('button', { class: 'btn', type: 'button', onclick: (e) => copyText(proj.api_token, e.currentTarget) }, 'Copy')))),
      h('section', { class: 'panel danger-zone' }, h('div', { class: 'panel-body' },
        h('h2', {}, 'Reset the token'),
        h('p', { class: 'hint' }, 'A new token replaces the current one at once: apps still using the old one stop sending events until you update them.'),
        admin ? h('button', { class: 'btn danger', type: 'button', onclick: async () => {
          if (!await confirmDialog('Reset the project token?', 'Every app using the current token stops working until it gets the new one.', 'Reset token', true)) return;
          try {
            const fresh = await api('PATCH', `/api/projects/${pid}/reset_token/`);
            toast('The project token was reset.');
            render(fresh, true);
          } catch (e) { toast(e.message); }
        } }, 'Reset token…') : h('p', {}, 'Only organization admins can reset it.'))),
    );
  };
  render(await api('GET', `/api/projects/${pid}/`), false);
}

async function activityPage(main, pid) {
  const selectId = nextId('scope-filter');
  const select = h('select', { id: selectId }, h('option', { value: '' }, 'Everything'),
    Object.entries(ACTIVITY_SCOPES).map(([v, t]) => h('option', { value: v }, t)));
  const body = h('div', {}, h('div', { class: 'empty' }, 'Loading…'));
  const rows = h('tbody', {});
  const load = async (url, append) => {
    const page = await api('GET', url);
    if (!append) rows.replaceChildren();
    for (const e of page.results) {
      const d = e.detail || {};
      rows.append(h('tr', {},
        h('td', {}, fmtTime(e.created_at)),
        h('td', {}, e.user ? e.user.email : 'system'),
        h('td', {}, h('span', { class: `badge ${e.activity}` }, e.activity)),
        h('td', {}, h('span', {}, ACTIVITY_SCOPES[e.scope] || e.scope), d.name ? [' ', h('strong', {}, `“${d.name}”`)] : null),
        h('td', {}, h('code', {}, e.ip_address || '—'))));
    }
    const table = h('table', { class: 'data' }, h('thead', {}, h('tr', {},
      ['When', 'Who', 'Activity', 'What', 'From'].map((c) => h('th', { scope: 'col' }, c)))), rows);
    const parts = rows.children.length ? [table] : [h('div', { class: 'empty' }, h('strong', {}, 'Nothing here yet'), 'Changes to keys, flags and the project show up here.')];
    if (page.next) {
      const u = new URL(page.next, location.origin);
      parts.push(h('div', { class: 'more-row' }, h('button', { class: 'btn', type: 'button', onclick: () => load(u.pathname + u.search, true) }, 'Load older entries')));
    }
    body.replaceChildren(...parts);
  };
  const url = () => `/api/projects/${pid}/activity_log/?page_size=50${select.value ? `&scope=${encodeURIComponent(select.value)}` : ''}`;
  select.addEventListener('change', () => load(url(), false).catch((e) => toast(e.message)));
  main.replaceChildren(pageHead('Activity log', 'Who created, changed, rolled or deleted what, and from where. Key values are never recorded.'),
    h('div', { class: 'panel' }, h('div', { class: 'toolbar' }, h('div', { class: 'field' }, h('label', { for: selectId }, 'Show'), select)), body));
  await load(url(), false);
}

/* ---- key report ---------------------------------------------------------- */

const DAY_MS = 86400000;
const KIND_TEXT = { personal: 'Personal', project_secret: 'Project secret' };

/* Whole days from an ISO time to now, as "today" / "1 day" / "43 days". */
function daysText(n) {
  if (n < 1) return 'today';
  return n === 1 ? '1 day' : `${n.toLocaleString('en')} days`;
}

function ageCell(k) {
  const rolled = k.last_rolled_at && (!k.created_at || k.last_rolled_at > k.created_at);
  const since = rolled ? k.last_rolled_at : k.created_at;
  if (!since) return h('span', { class: 'time' }, '—');
  const days = Math.floor((Date.now() - new Date(since).getTime()) / DAY_MS);
  return h('div', { class: 'stacked' },
    h('time', { datetime: since, title: new Date(since).toLocaleString() }, days < 1 ? 'Under a day' : daysText(days)),
    h('span', { class: 'sub' }, rolled ? 'since rolled' : 'since created'));
}

/* The flags as badges that say what they mean (never colour alone). */
function flagBadges(k, rep) {
  const f = k.flags || {};
  const out = [];
  if (f.expired) out.push(h('span', { class: 'flag bad' }, 'Expired'));
  if (f.expiring_soon) out.push(h('span', { class: 'flag warn' }, 'Expires soon'));
  if (f.not_rotated) out.push(h('span', { class: 'flag warn', title: `Not created or rolled in the last ${rep.rotation_days} days` }, `Not rotated in ${rep.rotation_days} days`));
  if (f.unused) {
    out.push(h('span', { class: 'flag warn', title: k.last_used_at ? `Not used in the last ${rep.unused_days} days` : 'Never used' },
      k.last_used_at ? `Unused for ${rep.unused_days}+ days` : 'Never used'));
  }
  if (!out.length) out.push(h('span', { class: 'flag good' }, 'OK'));
  return h('div', { class: 'flags' }, out);
}

function allChips(scopes, none) {
  if (!scopes || !scopes.length) return h('span', { class: 'none' }, none);
  if (scopes.includes('*')) return h('span', { class: 'chip all' }, 'All access');
  return h('div', { class: 'chips' }, scopes.map((s) => h('span', { class: 'chip' }, s)));
}

function scopesCell(k) {
  return h('dl', { class: 'scope-pair' },
    h('dt', {}, 'Granted'), h('dd', {}, allChips(k.scopes, 'no access')),
    h('dt', {}, 'Used'), h('dd', {}, allChips(k.scopes_used, 'nothing yet')));
}

function suggestionCell(k) {
  if (k.suggestion === 'revoke') {
    return h('div', { class: 'suggest' }, h('span', { class: 'flag bad' }, 'Revoke'),
      h('p', {}, 'It has used no scope. Delete it unless something still needs it.'));
  }
  if (k.suggestion === 'narrow') {
    return h('div', { class: 'suggest' }, h('span', { class: 'flag info' }, 'Narrow'),
      h('p', {}, 'It uses less than it holds. Least scopes:'), allChips(k.suggested_scopes, '—'));
  }
  return h('div', { class: 'suggest' }, h('span', { class: 'flag good' }, 'Keep'),
    h('p', {}, 'It uses what it holds.'));
}

/* Keys needing attention first: expired, revoke, expiring, stale, over-scoped. */
function attention(k) {
  const f = k.flags || {};
  return (f.expired ? 32 : 0) + (k.suggestion === 'revoke' ? 16 : 0) + (f.expiring_soon ? 8 : 0) +
    (f.not_rotated ? 4 : 0) + (f.unused ? 2 : 0) + (k.suggestion === 'narrow' ? 1 : 0);
}

function reportTable(rep, caption, empty) {
  if (!rep.results.length) return h('div', { class: 'empty' }, h('strong', {}, empty[0]), empty[1]);
  const keys = rep.results.map((k, i) => [k, i]).sort((a, b) => attention(b[0]) - attention(a[0]) || a[1] - b[1]).map((p) => p[0]);
  const cols = ['Key', 'Kind', 'Age', 'Last used', 'Expires', 'Flags', 'Scopes: granted / used', 'Suggestion'];
  const table = h('table', { class: 'data report' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, keys.map((k) => h('tr', { 'data-key-id': k.id, 'data-kind': k.kind },
      h('th', { scope: 'row', class: 'key-cell' }, h('span', { class: 'label-cell' }, k.label), h('span', { class: 'mask' }, k.mask_value)),
      h('td', {}, h('span', { class: `kind ${k.kind}` }, KIND_TEXT[k.kind] || k.kind)),
      h('td', {}, ageCell(k)),
      h('td', {}, fmtTime(k.last_used_at)),
      h('td', {}, k.expires_at ? fmtTime(k.expires_at) : h('span', { class: 'time' }, 'Never')),
      h('td', {}, flagBadges(k, rep)),
      h('td', {}, scopesCell(k)),
      h('td', {}, suggestionCell(k))))));
  /* Wide content scrolls inside its own region, reachable by keyboard. */
  return h('div', { class: 'table-scroll', role: 'region', tabindex: '0', 'aria-label': caption }, table);
}

function reportStats(reports) {
  const seen = new Map();
  for (const rep of reports) for (const k of rep.results) seen.set(`${k.kind}:${k.id}`, k);
  const keys = [...seen.values()];
  const count = (fn) => keys.filter(fn).length;
  const stats = [
    ['Keys', keys.length, ''],
    ['Not rotated', count((k) => k.flags.not_rotated), 'warn'],
    ['Unused', count((k) => k.flags.unused), 'warn'],
    ['Expiring or expired', count((k) => k.flags.expiring_soon || k.flags.expired), 'warn'],
    ['Can be narrowed', count((k) => k.suggestion === 'narrow'), 'info'],
    ['To revoke', count((k) => k.suggestion === 'revoke'), 'bad'],
  ];
  return h('ul', { class: 'stats', 'aria-label': 'Summary' }, stats.map(([label, n, tone]) =>
    h('li', { class: `stat ${n && tone ? tone : ''}` }, h('span', { class: 'n' }, String(n)), h('span', { class: 'l' }, label))));
}

/* #/project/:id/report (or #/report with no project): the project's key
 * report and the personal key report; ?rotation_days= in the hash. */
async function reportPage(main, pid, params) {
  const p = pid ? project(pid) : null;
  const daysId = nextId('rotation-days');
  const hintId = nextId('rotation-hint');
  const initial = params && /^\d+$/.test(params.get('rotation_days') || '') ? params.get('rotation_days') : '90';
  const days = h('input', { type: 'number', id: daysId, min: '1', max: '3650', step: '1', required: true, inputmode: 'numeric',
    value: initial, 'aria-describedby': hintId, class: 'days' });
  const err = h('div', { class: 'error', role: 'alert' });
  const summary = h('div', { class: 'report-summary' });
  const legend = h('p', { class: 'hint legend', 'aria-live': 'polite' });
  const sections = h('div', { class: 'report-sections' }, h('div', { class: 'panel' }, h('div', { class: 'empty' }, 'Loading…')));
  const apply = h('button', { class: 'btn', type: 'submit' }, 'Apply');
  const form = h('form', { class: 'toolbar report-toolbar', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: daysId }, 'Rotation threshold'),
      h('div', { class: 'days-row' }, days, h('span', { class: 'unit' }, 'days'), apply),
      h('div', { class: 'hint', id: hintId }, 'A key not created or rolled within this many days is flagged.')),
    legend);

  const section = (title, text, rep, caption, empty, link) => {
    const headId = nextId('report-head');
    return h('section', { class: 'panel report-section', 'aria-labelledby': headId },
      h('div', { class: 'panel-head' }, h('div', {}, h('h2', { id: headId }, title), h('p', { class: 'hint' }, text)), link || null),
      reportTable(rep, caption, empty));
  };

  const load = async () => {
    const n = Number(days.value);
    if (!Number.isInteger(n) || n < 1 || n > 3650) {
      err.textContent = 'Enter a whole number of days between 1 and 3650.';
      days.setAttribute('aria-invalid', 'true');
      days.focus();
      return;
    }
    err.textContent = '';
    days.removeAttribute('aria-invalid');
    apply.disabled = true;
    const q = `?rotation_days=${n}`;
    try {
      const [projRep, ownRep] = await Promise.all([
        p ? api('GET', `/api/projects/${pid}/key_report/${q}`) : null,
        api('GET', `/api/personal_api_keys/report/${q}`),
      ]);
      const parts = [];
      if (p) {
        parts.push(section(`Project · ${p.name}`, 'The project\'s secret keys and your personal keys that can reach it.', projRep,
          `Key report: project ${p.name}`,
          ['No keys reach this project', 'Neither project secret keys nor personal keys of yours can act on it.'],
          h('a', { class: 'btn small', href: `#/project/${pid}/secret-keys` }, 'Secret keys')));
      }
      parts.push(section('Your personal API keys', 'Every personal key of yours, whatever it can reach.', ownRep, 'Key report: your personal API keys',
        ['No personal API keys', 'Keys you create for scripts and tools appear here with their use.'],
        h('a', { class: 'btn small', href: '#/keys' }, 'Personal API keys')));
      sections.replaceChildren(...parts);
      summary.replaceChildren(reportStats([projRep, ownRep].filter(Boolean)));
      legend.replaceChildren(h('span', {}, `Not rotated: not created or rolled in ${daysText(ownRep.rotation_days)}. `,
          `Unused: no use in ${daysText(ownRep.unused_days)}. Expires soon: within ${daysText(ownRep.expiring_days)}. Generated `,
          fmtTime(ownRep.generated_at), '.'));
      const hash = `${location.hash.split('?')[0]}${n === 90 ? '' : q}`;
      if (hash !== location.hash) history.replaceState(null, '', hash);
    } catch (e) {
      err.textContent = e.message;
    } finally {
      apply.disabled = false;
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });

  main.replaceChildren(pageHead('Key report', 'Which keys are old, idle, expiring, or hold more than they use. Suggestions come from the scopes each key actually exercised.'),
    h('div', { class: 'panel' }, form, h('div', { class: 'report-error' }, err), summary), sections);
  await load();
}

async function membersPage(main) {
  const orgs = (state.me.organizations || []).filter((o) => o.membership_level >= 8);
  main.replaceChildren(pageHead('Invite people', 'Invitations are one-time links, valid for 7 days. The person chooses their own name and password.'));
  if (!orgs.length) {
    main.append(h('div', { class: 'panel' }, h('div', { class: 'empty' }, h('strong', {}, 'Only organization admins can invite people'), 'Ask an admin of your organization.')));
    return;
  }
  const ids = { email: nextId('inv-email'), org: nextId('inv-org'), level: nextId('inv-level') };
  const email = h('input', { type: 'email', id: ids.email, required: true, autocomplete: 'off' });
  const org = h('select', { id: ids.org }, orgs.map((o) => h('option', { value: o.id }, o.name)));
  const level = h('select', { id: ids.level });
  const fillLevels = () => {
    const mine = orgs.find((o) => o.id === org.value).membership_level;
    level.replaceChildren(...Object.entries(LEVELS).filter(([v]) => Number(v) <= mine).map(([v, t]) => h('option', { value: v }, t)));
  };
  org.addEventListener('change', fillLevels);
  fillLevels();
  const err = h('div', { class: 'error', role: 'alert' });
  const result = h('div', { class: 'stack' });
  const form = h('form', { class: 'panel-body narrow', novalidate: true },
    err,
    h('div', { class: 'field' }, h('label', { for: ids.email }, 'Email address'), email),
    orgs.length > 1 ? h('div', { class: 'field' }, h('label', { for: ids.org }, 'Organization'), org) : null,
    h('div', { class: 'field' }, h('label', { for: ids.level }, 'Role'), level),
    h('button', { class: 'btn primary', type: 'submit' }, 'Create invitation'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const inv = await api('POST', `/api/organizations/${encodeURIComponent(org.value)}/invites/`, { email: email.value.trim(), level: Number(level.value) });
      const link = location.origin + inv.link;
      const linkId = nextId('inv-link');
      const input = h('input', { type: 'text', id: linkId, readonly: true });
      input.value = link;
      result.replaceChildren(h('section', { class: 'panel' }, h('div', { class: 'panel-body' },
        h('h2', {}, `Invitation for ${inv.target_email}`),
        h('div', { class: 'once', role: 'alert' }, h('strong', {}, 'This link is shown once.'), ' Send it to the person you invite; it works once and expires in 7 days.'),
        h('label', { for: linkId }, 'Invitation link'),
        h('div', { class: 'secret-box' }, input, h('button', { class: 'btn primary', type: 'button', onclick: (e) => copyText(link, e.currentTarget) }, 'Copy')))));
      email.value = '';
    } catch (e) { err.textContent = e.message; }
  });
  main.append(h('section', { class: 'panel' }, form), result);
}

/* ---- shell, routing, sign-in --------------------------------------------- */

function currentRoute() {
  const [path, query] = location.hash.split('?');
  const params = new URLSearchParams(query || '');
  const m = path.match(/^#\/project\/(\d+)\/(secret-keys|token|activity|report)$/);
  if (m && project(m[1])) return { page: m[2], pid: m[1], params };
  if (path === '#/report') return state.projects.length ? { page: 'report', pid: String(state.projects[0].id), params } : { page: 'report', params };
  if (path === '#/members') return { page: 'members' };
  return { page: 'keys' };
}

function shell() {
  const route = currentRoute();
  const pid = route.pid || (state.projects[0] && String(state.projects[0].id));
  const proj = project(pid);
  const link = (href, text, page) => h('li', {}, h('a', { href, 'aria-current': route.page === page ? 'page' : null }, text));
  const projectSelect = h('select', { 'aria-label': 'Project' }, state.projects.map((p) => h('option', { value: p.id, selected: String(p.id) === pid }, p.name)));
  projectSelect.addEventListener('change', () => {
    const page = route.pid ? route.page : 'secret-keys';
    location.hash = `#/project/${projectSelect.value}/${page}`;
  });
  const name = state.me.first_name || state.me.email;
  const main = h('main', { id: 'main', tabindex: '-1' });
  const root = h('div', {},
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/keys' }, h('img', { src: '/assets/logo.svg', alt: '' }), 'keyward'),
      h('div', { class: 'context' },
        h('span', { class: 'org' }, proj ? proj.organization_name : (state.me.organization ? state.me.organization.name : '')),
        proj ? [h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'), projectSelect] : null),
      h('div', { class: 'spacer' }),
      h('div', { class: 'who' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1)),
        h('span', { class: 'email' }, state.me.email),
        h('button', { class: 'btn small', type: 'button', onclick: signOut }, 'Sign out'))),
    h('div', { class: 'layout' },
      h('nav', { class: 'sidebar', 'aria-label': 'Console' },
        h('h2', {}, 'You'),
        h('ul', {}, link('#/keys', 'Personal API keys', 'keys'), proj ? null : link('#/report', 'Key report', 'report')),
        proj ? [h('h2', {}, `Project · ${proj.name}`),
          h('ul', {}, link(`#/project/${pid}/secret-keys`, 'Secret keys', 'secret-keys'),
            link(`#/project/${pid}/token`, 'Project token', 'token'),
            link(`#/project/${pid}/activity`, 'Activity log', 'activity'),
            link(`#/project/${pid}/report`, 'Key report', 'report'))] : null,
        h('h2', {}, 'Organization'),
        h('ul', {}, link('#/members', 'Invite people', 'members'))),
      main));
  return { root, main, route };
}

async function render() {
  const { root, main, route } = shell();
  document.getElementById('app').replaceChildren(root);
  const pages = { keys: personalKeysPage, 'secret-keys': secretKeysPage, token: tokenPage, activity: activityPage, report: reportPage, members: membersPage };
  try {
    await pages[route.page](main, route.pid, route.params);
  } catch (e) {
    main.append(h('div', { class: 'error', role: 'alert' }, e.message));
  }
  const title = main.querySelector('.page-title');
  document.title = `${title ? title.textContent : 'Console'} · keyward`;
  if (title && render.focus) title.focus();
  render.focus = true;
}

async function loadUser() {
  state.me = await api('GET', '/api/users/@me/');
  state.projects = (await api('GET', '/api/projects/?limit=1000')).results;
}

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

function signedOut(message) {
  state.csrf = null;
  state.me = null;
  signInPage(message);
}

async function signOut() {
  try { await api('POST', '/api/logout/'); } catch (e) { /* signed out either way */ }
  signedOut('You have signed out.');
}

async function start() {
  try {
    const s = await api('GET', '/api/session/');
    state.csrf = s.csrf_token;
  } catch (e) {
    if (e.status === 401) { signInPage(); return; }
    throw e;
  }
  await loadUser();
  render.focus = false;
  await render();
}

window.addEventListener('hashchange', () => {
  if (!location.hash.startsWith('#/')) return;  /* e.g. the skip link */
  if (state.me) render();
});
document.addEventListener('DOMContentLoaded', () => {
  document.querySelector('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    const main = document.getElementById('main');
    if (main) main.focus();
  });
  const m = location.pathname.match(/^\/invite\/([A-Za-z0-9_-]+)\/?$/);
  (m ? invitePage(m[1]) : start()).catch((e) => {
    document.getElementById('app').replaceChildren(h('p', { class: 'boot', role: 'alert' }, `The console could not load: ${e.message}`));
  });
});
