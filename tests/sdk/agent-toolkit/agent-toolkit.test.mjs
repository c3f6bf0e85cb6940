// agent-toolkit.test.mjs — PostHog's agent toolkit (@posthog/agent-toolkit,
// the tools behind PostHog's MCP server), unchanged, against a real
// `keyward serve`, driven as an agent would: through each tool's handler.
//
// The toolkit finds its organization and project from the key itself
// (/api/personal_api_keys/@current, /api/users/@me/), lists organizations
// and their projects, and works on the active project's feature flags.  The
// test makes a second project (staging) and a second organization through
// the API, then checks:
//   1. an unrestricted key sees both organizations; switching organization
//      and project moves the flag tools to that project, and nowhere else;
//   2. a key limited to one organization sees only that one, and the
//      other organization's projects are refused;
//   3. a key limited to one project (staging) works on that project's flags,
//      and the organization tools fail: a project-limited key never reaches
//      organization routes.
// Pinned in package.json / package-lock.json; installed with `npm ci` on
// first run (no install scripts).  Loopback only.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import test from 'node:test';

import { startKeyward } from '../keyward-server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..', '..');
const BIN = process.env.KEYWARD_BIN || [join(ROOT, 'build', 'keyward')].find(existsSync);
if (!existsSync(join(HERE, 'node_modules', '@posthog', 'agent-toolkit', 'package.json'))) {
  execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', HERE],
    { cwd: HERE, stdio: 'inherit' });
}
const { PostHogAgentToolkit } = await import('@posthog/agent-toolkit/tools');

const kw = await startKeyward(BIN, { org: 'Acme', project: 'Production' });

async function api(path, { status, key = kw.phx, ...opts }) {
  const r = await kw.http(path, { key, ...opts });
  assert.equal(r.status, status, `${opts.method || 'GET'} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/* The toolkit for `key`: tool(name, params) runs one tool the way an agent
   does and returns its parsed text answer; a refused call throws. */
async function toolkit(key) {
  const kit = new PostHogAgentToolkit({ posthogApiToken: key, posthogApiBaseUrl: kw.host });
  const context = kit.getContext();
  const tools = Object.fromEntries((await kit.getTools()).map((t) => [t.name, t]));
  return async (name, params = {}) => {
    assert.ok(tools[name], `the toolkit has a tool named ${name}`);
    const out = await tools[name].handler(context, tools[name].schema.parse(params));
    const text = out.content[0].text;
    try { return JSON.parse(text); } catch { return text; }
  };
}

const acme = (await api('/api/organizations/@current/', { status: 200 })).id;
const production = 1;
const staging = (await api('/api/projects/', { method: 'POST', body: { name: 'Staging' }, status: 201 })).id;
const other = (await api('/api/organizations/', { method: 'POST', body: { name: 'Other' }, status: 201 })).id;
const otherWeb = (await api(`/api/organizations/${other}/projects/`,
  { method: 'POST', body: { name: 'Other web' }, status: 201 })).id;

const personalKey = async (label, extra) => (await api('/api/personal_api_keys/',
  { method: 'POST', body: { label, scopes: ['*'], ...extra }, status: 201 })).value;
const flagKeys = async (project) => (await api(`/api/projects/${project}/feature_flags/`, { status: 200 }))
  .results.map((f) => f.key).sort();
const rollout = { groups: [{ properties: [], rollout_percentage: 30 }] };

test('an unrestricted key: organizations, projects, and flags where the agent switched', async () => {
  const tool = await toolkit(kw.phx);
  const orgs = await tool('organizations-get');
  assert.deepEqual(orgs.map((o) => o.id).sort(), [acme, other].sort());
  assert.equal((await tool('organization-details-get')).id, acme, 'the active organization comes first');
  assert.deepEqual((await tool('projects-get')).map((p) => p.id).sort(), [production, staging].sort());

  await tool('switch-project', { projectId: staging });
  const made = await tool('create-feature-flag', { name: 'Beta', key: 'beta', description: 'staging only',
    active: true, filters: rollout });
  assert.equal(made.key, 'beta');
  assert.deepEqual(await flagKeys(staging), ['beta']);
  assert.deepEqual(await flagKeys(production), [], 'the flag is not in the other environment');
  assert.deepEqual((await tool('feature-flag-get-all')).map((f) => f.key), ['beta']);
  assert.equal((await tool('update-feature-flag', { flagKey: 'beta', data: { active: false } })).active, false);
  assert.equal((await tool('feature-flag-get-definition', { flagKey: 'beta' })).active, false);

  await tool('switch-organization', { orgId: other });
  assert.equal((await tool('organization-details-get')).id, other);
  assert.deepEqual((await tool('projects-get')).map((p) => p.id), [otherWeb]);
  await tool('switch-project', { projectId: otherWeb });
  assert.deepEqual(await tool('feature-flag-get-all'), []);
  await tool('switch-project', { projectId: staging });
  await tool('delete-feature-flag', { flagKey: 'beta' });
  assert.deepEqual(await flagKeys(staging), []);
});

test('a key limited to one organization sees only that one', async () => {
  const tool = await toolkit(await personalKey('other org only', { scoped_organizations: [other] }));
  assert.deepEqual((await tool('organizations-get')).map((o) => o.id), [other]);
  await tool('switch-organization', { orgId: other });
  assert.deepEqual((await tool('projects-get')).map((p) => p.id), [otherWeb]);
  await tool('switch-organization', { orgId: acme });
  await assert.rejects(tool('organization-details-get'), /Failed to get organization details/);
  await assert.rejects(tool('projects-get'), /Failed to get projects/);
  await tool('switch-project', { projectId: staging });
  await assert.rejects(tool('feature-flag-get-all'), /Failed/);
  assert.deepEqual(await flagKeys(staging), []);
});

test('a key limited to one project works there and never reaches organization routes', async () => {
  const tool = await toolkit(await personalKey('staging only', { scoped_teams: [staging] }));
  await tool('create-feature-flag', { name: 'Staged', key: 'staged', description: 'd', active: true, filters: rollout });
  assert.deepEqual(await flagKeys(staging), ['staged']);
  assert.deepEqual((await tool('feature-flag-get-all')).map((f) => f.key), ['staged']);
  await assert.rejects(tool('organizations-get'), /Failed to get organizations/);
  await assert.rejects(tool('projects-get'));
  await tool('switch-project', { projectId: production });
  await assert.rejects(tool('create-feature-flag', { name: 'X', key: 'x', description: 'd', active: true, filters: rollout }));
  assert.deepEqual(await flagKeys(production), [], 'nothing was made in the other environment');
});

test.after(async () => {
  // A clean shutdown (under the sanitizers too: a leak report exits non-zero).
  assert.equal(await kw.stop(), 0, 'keyward serve exits 0 on SIGTERM');
});
