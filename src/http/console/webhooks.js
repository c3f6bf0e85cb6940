/* webhooks.js — the console's Webhooks page of an organization: list its
 * webhooks with their last delivery, create one (the signing secret shown
 * once), switch one on or off, choose its events, send a test event, read
 * its delivery log, delete it.  As on the other organization pages the
 * server decides (admins only, at most 20, an address it will call) and a
 * refusal is shown in its own words.  Loaded after app.js and orgs.js,
 * whose helpers (h, api, openDialog, showSecret, orgOf …) it uses. */
'use strict';

const WEBHOOK_EVENTS = [
  ['key.created', 'A key is created'],
  ['key.rolled', 'A key gets a new value'],
  ['key.deleted', 'A key is deleted'],
  ['key.revoked', 'A leak report revoked a key'],
  ['key.expiring_soon', 'A key expires soon'],
  ['key.expired', 'A key has expired'],
  ['key.rate_limited', 'A key was refused for its rate limit'],
  ['webhook.test', 'Test events'],
];

/* Checkboxes of the events; none checked means every event. */
function eventPicker(chosen) {
  const boxes = WEBHOOK_EVENTS.map(([name, text]) => {
    const id = nextId('wh-event');
    const box = h('input', { type: 'checkbox', id, value: name, checked: (chosen || []).includes(name) });
    return [name, box, h('label', { for: id }, box, h('code', {}, name), h('span', { class: 'hint' }, ` — ${text}`))];
  });
  return {
    element: h('fieldset', { class: 'field plain scope-list' },
      h('legend', {}, 'Events ', h('span', { class: 'hint' }, '(none checked: every event)')),
      boxes.map((b) => b[2])),
    value: () => boxes.filter((b) => b[1].checked).map((b) => b[0]),
  };
}

function eventsCell(events) {
  if (!events || !events.length) return h('span', { class: 'chip all' }, 'Every event');
  return h('div', { class: 'chips' }, events.map((e) => h('span', { class: 'chip' }, e)));
}

function deliveryStatus(d) {
  if (!d) return h('span', { class: 'sub' }, 'No deliveries yet');
  const code = d.last_status ? ` (HTTP ${d.last_status})` : '';
  return h('div', { class: 'stacked' },
    h('span', { class: `delivery ${d.status}` }, `${d.status}${code}`),
    h('span', { class: 'sub' }, d.event, ' · ', fmtTime(d.last_attempt_at || d.created_at)));
}

function createWebhookDialog(base) {
  const urlId = nextId('wh-url');
  const url = h('input', { type: 'url', id: urlId, required: true, autocomplete: 'off', placeholder: 'https://' });
  const picker = eventPicker([]);
  const err = h('div', { class: 'error', role: 'alert' });
  return openDialog({
    title: 'New webhook', wide: true,
    description: 'keyward POSTs each event as JSON, signed the Standard Webhooks way with a secret shown once.',
    body: [err, h('div', { class: 'field' }, h('label', { for: urlId }, 'Endpoint URL'), url), picker.element],
    actions: (close) => submitActions(close, 'Create webhook', err,
      () => api('POST', base, { url: url.value.trim(), events: picker.value() })),
  });
}

function editEventsDialog(base, w) {
  const picker = eventPicker(w.events);
  const err = h('div', { class: 'error', role: 'alert' });
  return openDialog({
    title: 'Events', wide: true, description: w.url,
    body: [err, picker.element],
    actions: (close) => submitActions(close, 'Save', err,
      () => api('PATCH', `${base}${encodeURIComponent(w.id)}/`, { events: picker.value() })),
  });
}

async function deliveriesDialog(base, w) {
  const rows = (await api('GET', `${base}${encodeURIComponent(w.id)}/deliveries/?limit=50`)).results;
  const table = rows.length
    ? h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['Event', 'Status', 'Attempts', 'Latency', 'Last attempt'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((d) => h('tr', { 'data-delivery': d.id },
        h('td', {}, h('code', {}, d.event)),
        h('td', {}, h('span', { class: `delivery ${d.status}` }, d.status + (d.last_status ? ` (HTTP ${d.last_status})` : '')),
          d.last_error ? h('div', { class: 'sub' }, d.last_error) : null),
        h('td', {}, String(d.attempts)),
        h('td', {}, d.last_latency_ms === null ? '–' : `${d.last_latency_ms} ms`),
        h('td', {}, fmtTime(d.last_attempt_at)))))))
    : h('div', { class: 'empty' }, 'No deliveries yet.');
  return openDialog({
    title: 'Delivery log', wide: true, description: w.url,
    body: [table],
    actions: (close) => [h('button', { class: 'btn', type: 'button', onclick: () => close(true) }, 'Close')],
  });
}

/* #/org/<id>/webhooks */
async function webhooksPage(main, pid, params, orgId) {
  const org = orgOf(orgId);
  const base = `/api/organizations/${encodeURIComponent(org.id)}/webhooks/`;
  const admin = org.membership_level >= 8;
  const err = h('div', { class: 'error', role: 'alert' });
  const list = h('div', {}, h('div', { class: 'empty' }, 'Loading…'));
  const create = admin ? h('button', { class: 'btn primary', type: 'button', onclick: async () => {
    const made = await createWebhookDialog(base);
    if (!made) return;
    await showSecret('Webhook signing secret', made.secret, 'signing secret');
    toast('Webhook created.');
    await refresh();
  } }, '+ New webhook') : null;
  main.replaceChildren(pageHead('Webhooks', `Where keyward tells ${org.name}'s systems about key events: created, rolled, deleted, revoked after a leak, expiring, rate limited.`, create),
    h('div', { class: 'panel' }, h('div', { class: 'webhooks-error' }, err), list));
  if (!admin) {
    list.replaceChildren(h('div', { class: 'empty' }, h('strong', {}, 'Only organization admins manage webhooks'), 'Ask an admin of your organization.'));
    return;
  }
  const act = async (fn) => {
    err.textContent = '';
    try { await fn(); } catch (e) { err.textContent = e.message; }
  };
  const actions = (w) => [
    h('button', { class: 'btn small', type: 'button', 'aria-label': `Send a test event to ${w.url}`,
      onclick: () => act(async () => {
        await api('POST', `${base}${encodeURIComponent(w.id)}/test/`);
        toast('Test event queued.');
        setTimeout(() => refresh().catch(() => {}), 1500);
      }) }, 'Test'),
    h('button', { class: 'btn small', type: 'button', 'aria-label': `Delivery log of ${w.url}`,
      onclick: () => act(() => deliveriesDialog(base, w)) }, 'Log'),
    h('button', { class: 'btn small', type: 'button', 'aria-label': `Events of ${w.url}`,
      onclick: () => act(async () => { if (await editEventsDialog(base, w)) await refresh(); }) }, 'Events'),
    h('button', { class: 'btn small ghost link-danger', type: 'button', 'aria-label': `Delete ${w.url}`,
      onclick: () => act(async () => {
        if (!await confirmDialog('Delete this webhook?', `${w.url} gets no more events, and its delivery log goes with it.`, 'Delete webhook', true)) return;
        await api('DELETE', `${base}${encodeURIComponent(w.id)}/`);
        toast('Webhook deleted.');
        await refresh();
      }) }, 'Delete'),
  ];
  const enabledCell = (w) => {
    const box = h('input', { type: 'checkbox', checked: w.enabled, 'aria-label': `Send events to ${w.url}` });
    box.addEventListener('change', () => act(async () => {
      box.disabled = true;
      try {
        await api('PATCH', `${base}${encodeURIComponent(w.id)}/`, { enabled: box.checked });
        toast(box.checked ? 'Webhook on.' : 'Webhook off: events are no longer sent to it.');
      } catch (e) { box.checked = !box.checked; throw e; } finally { box.disabled = false; }
    }));
    return box;
  };
  async function refresh() {
    const hooks = (await api('GET', `${base}?limit=100`)).results;
    const last = await Promise.all(hooks.map((w) =>
      api('GET', `${base}${encodeURIComponent(w.id)}/deliveries/?limit=1`).then((r) => r.results[0]).catch(() => null)));
    if (!hooks.length) {
      list.replaceChildren(h('div', { class: 'empty' }, h('strong', {}, 'No webhooks yet'), 'Create one to hear about key events.'));
      return;
    }
    list.replaceChildren(h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'On', 'Last delivery'].map((c) => h('th', { scope: 'col' }, c)),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, hooks.map((w, i) => h('tr', { 'data-webhook': w.id },
        h('td', {}, h('span', { class: 'label-cell url' }, w.url)),
        h('td', {}, eventsCell(w.events)),
        h('td', {}, enabledCell(w)),
        h('td', {}, deliveryStatus(last[i])),
        h('td', { class: 'actions' }, actions(w))))))));
  }
  await refresh();
}
