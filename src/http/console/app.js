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

/* The scope objects of lib/policy/scope.c, in its order (a test compares them). */
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
/* What a project secret key may hold: these read scopes only (the server
 * refuses any other, and the picker offers no more). */
const SECRET_KEY_SCOPES = ['endpoint:read', 'experiment:read', 'feature_flag:read'];
const ACTIVITY_SCOPES = {
  PersonalAPIKey: 'Personal API key', ProjectSecretAPIKey: 'Project secret key',
  FeatureFlag: 'Feature flag', Project: 'Project', OrganizationInvite: 'Invitation',
  Endpoint: 'Endpoint',
};
const LEVELS = { 1: 'Member', 8: 'Admin', 15: 'Owner' };
const ONCE_TEXT = "You won't be able to see this key again.";

/* org and pid: the organization and project chosen in the header. */
const state = { csrf: null, me: null, projects: [], org: null, pid: null };

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

/* A dialog's Cancel and submit buttons (its `actions`): submitting runs
 * `action` with the button disabled and closes the dialog with what it
 * resolves to; a refusal is shown in `err` in the server's words and the
 * button enabled again.  Enter in `enterFrom` (an input) submits too. */
function submitActions(close, label, err, action, enterFrom) {
  const submit = h('button', { class: 'btn primary', type: 'button' }, label);
  const go = async () => {
    err.textContent = '';
    submit.disabled = true;
    try { close(await action()); } catch (e) { err.textContent = e.message; submit.disabled = false; }
  };
  submit.addEventListener('click', go);
  if (enterFrom) enterFrom.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); go(); } });
  return [h('button', { class: 'btn', type: 'button', onclick: () => close(null) }, 'Cancel'), submit];
}

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
    actions: (close) => submitActions(close, 'Create key', err,
      () => create({ label: label.value.trim(), scopes: picker.value() })),
  }).then((key) => (key ? showSecret('Your new key', key.value, what).then(() => key) : null));
}

/* ---- pages --------------------------------------------------------------- */

function pageHead(title, text, action) {
  return h('div', { class: 'page-head' },
    h('div', {}, h('h1', { tabindex: '-1', class: 'page-title' }, title), text ? h('p', {}, text) : null),
    action || null);
}

/* An address that may break before its "@" when a table is short of room. */
function emailCell(email) {
  const at = email.indexOf('@');
  return at > 0 ? h('span', { class: 'email' }, email.slice(0, at), h('wbr'), email.slice(at)) : email;
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
    columns: [...baseColumns.slice(0, 4), ['Created by', (k) => (k.created_by ? emailCell(k.created_by.email) : '—')], ...baseColumns.slice(4)],
    picker: () => scopeList(SECRET_KEY_SCOPES),
    createTitle: 'New project secret key',
    createText: 'Project secret keys may only read endpoints, experiments and feature flags.',
    empty: ['No project secret keys yet', admin ? 'Create one for a server that evaluates flags locally.' : 'Project admins can create them.'],
  });
}

/* What posthog-js is told at init (its remote config): a project admin's
   switches, each saved as it is flipped (PATCH /api/projects/:id/). */
const SDK_SETTINGS = [
  ['autocapture_opt_out', 'Autocapture', 'Clicks, changes and submits become $autocapture events.', true],
  ['capture_performance_opt_in', 'Network timing', 'Page and request timings ($performance_event).', false],
  ['heatmaps_opt_in', 'Heatmaps', 'Where visitors click and scroll.', false],
];
function sdkSettings(proj, admin) {
  const rows = SDK_SETTINGS.map(([field, label, hint, inverted]) => {
    const id = nextId('sdk');
    const box = h('input', { type: 'checkbox', id, disabled: !admin });
    box.checked = inverted ? !proj[field] : !!proj[field];
    box.addEventListener('change', async () => {
      box.disabled = true;
      try {
        const fresh = await api('PATCH', `/api/projects/${proj.id}/`, { [field]: inverted ? !box.checked : box.checked });
        box.checked = inverted ? !fresh[field] : !!fresh[field];
        toast(`${label} ${box.checked ? 'on' : 'off'}.`);
      } catch (e) {
        box.checked = !box.checked;
        toast(e.message);
      }
      box.disabled = false;
    });
    return h('label', { for: id }, box, h('span', {}, h('strong', {}, label), ' — ', hint));
  });
  return h('section', { class: 'panel' }, h('div', { class: 'panel-body' },
    h('h2', {}, 'Browser SDK'),
    h('p', { class: 'hint' }, admin
      ? 'What posthog-js does on your pages, read when they load.'
      : 'What posthog-js does on your pages. Only organization admins can change it.'),
    h('fieldset', { class: 'field plain scope-list' }, h('legend', { class: 'sr-only' }, 'Browser SDK'), rows)));
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
      sdkSettings(proj, admin),
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

/* ---- shell, routing ----------------------------------------------------- */

/* The organization and project the header shows.  A page's address names
 * one (#/project/<id>/…, #/org/<id>/…); the others (#/keys, #/report)
 * keep the last one chosen in the switcher. */
function orgOf(id) { return (state.me.organizations || []).find((o) => o.id === id); }
function orgProjects(orgId) { return state.projects.filter((p) => p.organization === orgId); }

const PROJECT_PAGES = 'secret-keys|token|activity|report';
const ORG_PAGES = 'projects|members|invite|webhooks';

function currentRoute() {
  const [path, query] = location.hash.split('?');
  const params = new URLSearchParams(query || '');
  const pm = path.match(new RegExp(`^#/project/(\\d+)/(${PROJECT_PAGES})$`));
  const om = path.match(new RegExp(`^#/org/([0-9A-Za-z-]+)/(${ORG_PAGES})$`));
  let route = { page: 'keys' };
  if (pm && project(pm[1])) route = { page: pm[2], pid: pm[1], org: project(pm[1]).organization, params };
  else if (om && orgOf(om[1])) route = { page: om[2], org: om[1], orgPage: true };
  else if (path === '#/members') route = { page: 'invite', orgPage: true };  /* the old address of Invite people */
  else if (path === '#/report') route = { page: 'report', params };
  /* Remember the choice; fall back to the first organization. */
  if (route.org) state.org = route.org;
  if (!orgOf(state.org)) state.org = state.me.organization ? state.me.organization.id : ((state.me.organizations || [])[0] || {}).id;
  route.org = state.org;
  const mine = orgProjects(state.org);
  if (route.pid) state.pid = route.pid;
  if (!mine.some((p) => String(p.id) === String(state.pid))) state.pid = mine[0] ? String(mine[0].id) : null;
  if (route.page === 'report' && !route.pid && state.pid) route.pid = state.pid;
  return route;
}

/* The header's two switchers: choosing an organization keeps the kind of
 * page (its members stay members; a project page goes to the new
 * organization's first project); choosing a project keeps the project page. */
function switchers(route) {
  const orgs = state.me.organizations || [];
  const orgSelect = h('select', { 'aria-label': 'Organization', class: 'switch' },
    orgs.map((o) => h('option', { value: o.id, selected: o.id === route.org }, o.name)));
  orgSelect.addEventListener('change', () => {
    state.org = orgSelect.value;
    state.pid = null;
    const first = orgProjects(state.org)[0];
    if (route.orgPage) location.hash = `#/org/${state.org}/${route.page}`;
    else if (route.pid && first) location.hash = `#/project/${first.id}/${route.page}`;
    else if (route.pid) location.hash = `#/org/${state.org}/projects`;
    else render();
  });
  const mine = orgProjects(route.org);
  const projectSelect = h('select', { 'aria-label': 'Project', class: 'switch' },
    mine.map((p) => h('option', { value: p.id, selected: String(p.id) === state.pid }, p.name)));
  projectSelect.addEventListener('change', () => {
    const page = route.pid && !route.orgPage ? route.page : 'secret-keys';
    location.hash = `#/project/${projectSelect.value}/${page}`;
  });
  return h('div', { class: 'context' }, orgSelect, h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'),
    mine.length ? projectSelect : h('span', { class: 'none' }, 'No projects'));
}

function shell() {
  const route = currentRoute();
  const pid = state.pid;
  const proj = project(pid);
  const org = orgOf(route.org);
  const link = (href, text, page) => h('li', {}, h('a', { href, 'aria-current': route.page === page ? 'page' : null }, text));
  const name = state.me.first_name || state.me.email;
  const main = h('main', { id: 'main', tabindex: '-1' });
  const root = h('div', {},
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/keys' }, h('img', { src: '/assets/logo.svg', alt: '' }), 'keyward'),
      org ? switchers(route) : null,
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
        org ? [h('h2', {}, `Organization · ${org.name}`),
          h('ul', {}, link(`#/org/${org.id}/projects`, 'Projects', 'projects'),
            link(`#/org/${org.id}/members`, 'Members', 'members'),
            link(`#/org/${org.id}/invite`, 'Invite people', 'invite'),
            link(`#/org/${org.id}/webhooks`, 'Webhooks', 'webhooks'))] : null),
      main));
  return { root, main, route };
}

async function render() {
  const { root, main, route } = shell();
  document.getElementById('app').replaceChildren(root);
  const pages = { keys: personalKeysPage, 'secret-keys': secretKeysPage, token: tokenPage, activity: activityPage, report: reportPage,
    projects: projectsPage, members: membersPage, invite: invitePeoplePage, webhooks: webhooksPage };
  try {
    await pages[route.page](main, route.pid, route.params, route.org);
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
