/* orgs.js — the console's organization pages: its projects (create,
 * rename, delete with a typed confirmation), its members (levels, removal)
 * and invitations.  The console decides nothing here: every rule — who may
 * create or delete a project, never above one's own level, the last owner
 * stays — is the server's (lib/org/), and a refusal is shown with the
 * server's own message.  Offering only the levels the server would accept
 * is a convenience, not a check.  Loaded after app.js, whose helpers (h,
 * api, openDialog …) it uses. */
'use strict';

const LEVEL_NOUNS = { 1: 'a member', 8: 'an admin', 15: 'an owner' };

/* A note that outlives the re-render after an action (shown once). */
function takeNotice() {
  const n = state.notice;
  state.notice = null;
  return n ? h('div', { class: 'notice', role: 'status' }, n) : null;
}

/* Reloads the user's organizations and projects (the header and sidebar
 * list them), then draws the page again. */
async function reloadAll() {
  await loadUser();
  await render();
}

function nameDialog({ title, description, label, value, submitLabel, submit }) {
  const id = nextId('name');
  const input = h('input', { type: 'text', id, maxlength: '200', required: true, autocomplete: 'off' });
  input.value = value || '';
  const err = h('div', { class: 'error', role: 'alert' });
  return openDialog({
    title, description,
    body: [err, h('div', { class: 'field' }, h('label', { for: id }, label), input)],
    actions: (close) => submitActions(close, submitLabel, err, () => submit(input.value.trim()), input),
  });
}

/* Deleting a project: says what stops working, and the button stays
 * disabled until the project's name is typed exactly. */
async function deleteProjectDialog(p) {
  let keys = null;
  try { keys = (await api('GET', `/api/projects/${p.id}/project_secret_api_keys/?limit=1`)).count; } catch (e) { keys = null; }
  const what = keys === null ? 'its project secret keys (phs_)' : `its ${keys} project secret key${keys === 1 ? '' : 's'} (phs_)`;
  const id = nextId('confirm');
  const hintId = nextId('confirm-hint');
  const typed = h('input', { type: 'text', id, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': hintId });
  const err = h('div', { class: 'error', role: 'alert' });
  const done = await openDialog({
    title: `Delete the project "${p.name}"?`,
    body: [err,
      h('p', {}, `This revokes at once ${what} and its project token (phc_): every server and app using them stops working. `,
        'Its flags, events and endpoints are deleted. Personal API keys are not deleted, but they no longer reach this project. ',
        h('strong', {}, 'This cannot be undone.')),
      h('div', { class: 'field' }, h('label', { for: id }, 'Type the project name to confirm'), typed,
        h('div', { class: 'hint', id: hintId }, 'Project name: ', h('code', {}, p.name)))],
    actions: (close) => {
      const del = h('button', { class: 'btn danger', type: 'button', disabled: true }, 'Delete project');
      typed.addEventListener('input', () => { del.disabled = typed.value !== p.name; });
      del.addEventListener('click', async () => {
        if (typed.value !== p.name) return;
        err.textContent = '';
        del.disabled = true;
        try {
          await api('DELETE', `/api/projects/${p.id}/`);
          close(true);
        } catch (e) { err.textContent = e.message; del.disabled = false; }
      });
      return [h('button', { class: 'btn', type: 'button', onclick: () => close(false) }, 'Cancel'), del];
    },
  });
  if (done) {
    state.notice = `Project "${p.name}" was deleted: ${what} and its project token were revoked and no longer work.`;
    await reloadAll();
  }
}

/* #/org/<id>/projects */
async function projectsPage(main, pid, params, orgId) {
  const org = orgOf(orgId);
  const admin = org.membership_level >= 8;
  const create = admin ? h('button', { class: 'btn primary', type: 'button', onclick: async () => {
    const made = await nameDialog({
      title: 'New project', label: 'Name',
      description: 'A project is an environment (staging, production …) with its own project token, secret keys and flags.',
      submitLabel: 'Create project',
      submit: (name) => api('POST', `/api/organizations/${encodeURIComponent(org.id)}/projects/`, { name }),
    });
    if (!made) return;
    state.notice = `Project "${made.name}" was created with its own project token.`;
    state.pid = String(made.id);
    await reloadAll();
  } }, '+ New project') : null;
  const notice = takeNotice();
  main.replaceChildren(pageHead('Projects', `The environments of ${org.name}. A key of one project is refused on the others.`, create), notice || []);
  const projects = (await api('GET', `/api/organizations/${encodeURIComponent(org.id)}/projects/?limit=1000`)).results;
  const rows = projects.map((p) => h('tr', { 'data-project-id': p.id },
    h('td', {}, h('a', { class: 'label-cell', href: `#/project/${p.id}/secret-keys` }, p.name)),
    h('td', {}, h('code', {}, String(p.id))),
    h('td', {}, h('span', { class: 'mask' }, `${p.api_token.slice(0, 8)}…`)),
    h('td', {}, fmtTime(p.created_at)),
    h('td', { class: 'actions' }, admin ? [
      h('button', { class: 'btn small', type: 'button', 'aria-label': `Rename ${p.name}`, onclick: async () => {
        const renamed = await nameDialog({
          title: `Rename "${p.name}"`, label: 'New name', value: p.name, submitLabel: 'Rename',
          submit: (name) => api('PATCH', `/api/projects/${p.id}/`, { name }),
        });
        if (!renamed) return;
        state.notice = `Project "${p.name}" is now "${renamed.name}".`;
        await reloadAll();
      } }, 'Rename'),
      h('button', { class: 'btn small ghost link-danger', type: 'button', 'aria-label': `Delete ${p.name}`,
        onclick: () => deleteProjectDialog(p).catch((e) => toast(e.message)) }, 'Delete'),
    ] : [])));
  const table = projects.length ? h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, ['Name', 'ID', 'Project token', 'Created'].map((c) => h('th', { scope: 'col' }, c)),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    h('tbody', {}, rows))
    : h('div', { class: 'empty' }, h('strong', {}, 'No projects yet'), admin ? 'Create one for each environment.' : 'Organization admins can create them.');
  main.append(h('div', { class: 'panel' }, table));
  if (!admin) main.append(h('p', { class: 'hint' }, 'Only organization admins and owners create, rename or delete projects.'));
}

/* #/org/<id>/members */
async function membersPage(main, pid, params, orgId) {
  const org = orgOf(orgId);
  const mine = org.membership_level;
  const base = `/api/organizations/${encodeURIComponent(org.id)}/members/`;
  const err = h('div', { class: 'error', role: 'alert' }, state.problem || '');
  state.problem = null;
  const list = h('div', {}, h('div', { class: 'empty' }, 'Loading…'));
  const invite = mine >= 8 ? h('a', { class: 'btn primary', href: `#/org/${org.id}/invite` }, '+ Invite people') : null;
  main.replaceChildren(pageHead('Members', `Who belongs to ${org.name}, and at which level. Admins manage projects and invite people; owners can do everything.`, invite),
    takeNotice() || [], h('div', { class: 'panel' }, h('div', { class: 'members-error' }, err), list));

  /* A refusal may come from a page that is out of date (someone changed a
   * level meanwhile): show the server's words over the levels as they are now. */
  const refused = async (e) => {
    state.problem = e.message;
    try { await reloadAll(); } catch (e2) { err.textContent = e.message; }
  };
  /* After a change to oneself the header and every page's rights change too. */
  const after = async (m, text) => {
    if (m.user.id === state.me.id) {
      state.notice = text;
      await reloadAll();
      return;
    }
    toast(text);
    await refresh();
  };
  const levelCell = (m) => {
    const editable = mine >= 8 && m.level <= mine;
    if (!editable) return h('span', { class: `level l${m.level}` }, LEVELS[m.level] || String(m.level));
    const select = h('select', { class: 'level-select', 'aria-label': `Level of ${m.user.email}` },
      Object.entries(LEVELS).map(([v, t]) => h('option', { value: v, selected: Number(v) === m.level, disabled: Number(v) > mine }, t)));
    select.addEventListener('change', async () => {
      err.textContent = '';
      select.disabled = true;
      try {
        const got = await api('PATCH', `${base}${encodeURIComponent(m.user.uuid)}/`, { level: Number(select.value) });
        await after(m, `${m.user.email} is now ${LEVEL_NOUNS[got.level] || `at level ${got.level}`}.`);
      } catch (e) { await refused(e); }
    });
    return select;
  };
  const removeButton = (m) => {
    if (mine < 8 || m.level > mine) return null;
    const self = m.user.id === state.me.id;
    return h('button', { class: 'btn small ghost link-danger', type: 'button', 'aria-label': `${self ? 'Leave' : 'Remove'} ${m.user.email}`,
      onclick: async () => {
        err.textContent = '';
        if (!await confirmDialog(self ? `Leave ${org.name}?` : `Remove ${m.user.email} from ${org.name}?`,
          `${self ? 'Your' : 'Their'} personal API keys stop reaching this organization at once. Project secret keys ${self ? 'you' : 'they'} created keep working.`,
          self ? 'Leave' : 'Remove member', true)) return;
        try {
          await api('DELETE', `${base}${encodeURIComponent(m.user.uuid)}/`);
          if (!self) { await after(m, `${m.user.email} was removed from ${org.name}.`); return; }
          state.notice = `You left ${org.name}.`;
          history.replaceState(null, '', '#/keys');
          await reloadAll();
        } catch (e) { await refused(e); }
      } }, self ? 'Leave' : 'Remove');
  };
  async function refresh() {
    const members = (await api('GET', `${base}?limit=1000`)).results;
    list.replaceChildren(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['Member', 'Level', 'Joined'].map((c) => h('th', { scope: 'col' }, c)),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, members.map((m) => h('tr', { 'data-user': m.user.email },
        h('td', {}, h('div', { class: 'stacked member' },
          h('span', { class: 'label-cell' }, m.user.first_name || m.user.email,
            m.user.id === state.me.id ? h('span', { class: 'you' }, ' (you)') : null),
          m.user.first_name ? h('span', { class: 'sub' }, emailCell(m.user.email)) : null)),
        h('td', {}, levelCell(m)),
        h('td', {}, fmtTime(m.joined_at)),
        h('td', { class: 'actions' }, removeButton(m)))))));
  }
  await refresh();
}

/* #/org/<id>/invite */
async function invitePeoplePage(main, pid, params, orgId) {
  const org = orgOf(orgId);
  main.replaceChildren(pageHead('Invite people', `Invitations to ${org.name} are one-time links, valid for 7 days. The person chooses their own name and password.`));
  if (org.membership_level < 8) {
    main.append(h('div', { class: 'panel' }, h('div', { class: 'empty' }, h('strong', {}, 'Only organization admins can invite people'), 'Ask an admin of your organization.')));
    return;
  }
  const ids = { email: nextId('inv-email'), level: nextId('inv-level') };
  const email = h('input', { type: 'email', id: ids.email, required: true, autocomplete: 'off' });
  const level = h('select', { id: ids.level },
    Object.entries(LEVELS).filter(([v]) => Number(v) <= org.membership_level).map(([v, t]) => h('option', { value: v }, t)));
  const err = h('div', { class: 'error', role: 'alert' });
  const result = h('div', { class: 'stack' });
  const form = h('form', { class: 'panel-body narrow', novalidate: true },
    err,
    h('div', { class: 'field' }, h('label', { for: ids.email }, 'Email address'), email),
    h('div', { class: 'field' }, h('label', { for: ids.level }, 'Role'), level),
    h('button', { class: 'btn primary', type: 'submit' }, 'Create invitation'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const inv = await api('POST', `/api/organizations/${encodeURIComponent(org.id)}/invites/`, { email: email.value.trim(), level: Number(level.value) });
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
