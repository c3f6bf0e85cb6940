/* report.js — the console's key report page (#/project/<id>/report, or
 * #/report with no project): the project's key report and the personal
 * key report side by side, with the rotation threshold kept in the hash.
 * Loaded after app.js, whose helpers (h, api, fmtTime …) it uses. */
'use strict';

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
