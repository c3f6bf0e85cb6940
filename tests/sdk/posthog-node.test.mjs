// posthog-node.test.mjs — the real posthog-node SDK, unchanged, against a
// real `keyward serve`.
//
// posthog-node comes from npm at the versions pinned in package.json
// (package-lock.json; older majors under npm aliases); a fresh checkout
// installs them on first run.  Each version runs the same suite:
//   5.x  polls /flags/definitions, evaluates remotely with /flags/?v=2, gzips /batch/;
//   4.18 polls /api/feature_flag/local_evaluation, /flags/?v=2, plain /batch/;
//   4.2  polls /api/feature_flag/local_evaluation, /decide/?v=3, plain /batch/.  The test
// starts `keyward serve` ($KEYWARD_BIN) on a fresh SQLite database on a free
// loopback port, creates project secret keys and flags through the API, and
// then uses only the SDK's public API:
//
//   1. local evaluation (secretKey=phs_, and personalApiKey=phx_): a 30%
//      rollout over 200 ids, a multivariate flag and a property-filtered
//      flag agree with the server's remote answers (/flags?v=2) and with the
//      rollout computed here from sha1 (PostHog's rule);
//   2. payloads, locally and remotely;
//   3. capture with and without gzip, read back through an endpoint run
//      with a phs_ key (endpoint:read); on 5.x also Capture V1
//      (POSTHOG_CAPTURE_MODE=v1, /i/v1/analytics/events) and the AI events'
//      routes (/i/v0/ai/batch/);
//   3b. group flags: groupIdentify teaches keyward the group type, and a
//      group flag evaluates the same locally and remotely over 200 group keys;
//   4. flag changes reach the poller (ETag, 304), a rolled or deleted phs_
//      key gets 401 "Secret API token is invalid." on the SDK's next poll.
//
// Every wait is a bounded poll; nothing sleeps for a fixed time.  Loopback
// only.  The SDK's own requests are observed through its `fetch` option (a
// pass-through to Node's fetch that records method, path, headers, status).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import test from 'node:test';

import { startKeyward } from './keyward-server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BIN = process.env.KEYWARD_BIN || [join(ROOT, 'build', 'keyward')].find(existsSync);

// The SDKs under test: package name in package.json, what each one calls.
const SDKS = [
  { pkg: 'posthog-node', label: 'v5', defs: '/flags/definitions', remote: '/flags/?v=2', gzip: true, modern: true },
  { pkg: 'posthog-node-v4', label: 'v4', defs: '/api/feature_flag/local_evaluation', remote: '/flags/?v=2', gzip: false },
  { pkg: 'posthog-node-v4-decide', label: 'v4decide', defs: '/api/feature_flag/local_evaluation', remote: '/decide/?v=3', gzip: false },
];
if (!SDKS.every((s) => existsSync(join(HERE, 'node_modules', s.pkg, 'package.json')))) {
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', HERE], { cwd: HERE, stdio: 'inherit' });
}
/* Does this Node satisfy an `engines.node` range?  Enough of semver for
   what posthog-node declares: `^X.Y.Z` and `>=X.Y.Z` joined by `||`. */
function nodeSatisfies(range) {
  const cmp = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const have = process.versions.node.split('.').map(Number);
  return range.split('||').map((r) => r.trim()).some((r) => {
    const m = r.match(/^(\^|>=)\s*(\d+)\.(\d+)\.(\d+)$/);
    if (!m) return true;  // a form we do not parse: let the SDK try
    const want = m.slice(2).map(Number);
    return cmp(have, want) >= 0 && (m[1] === '>=' || have[0] === want[0]);
  });
}
for (const s of SDKS) {
  const meta = JSON.parse(readFileSync(join(HERE, 'node_modules', s.pkg, 'package.json'), 'utf8'));
  s.version = meta.version;
  s.engines = meta.engines?.node ?? '*';
  // An SDK this Node cannot run is skipped with the reason, not failed.
  s.skip = nodeSatisfies(s.engines) ? false : `posthog-node ${s.version} needs Node ${s.engines}; this is ${process.versions.node}`;
  if (!s.skip) s.PostHog = (await import(s.pkg)).PostHog;
}

// Generous bounds: CI machines are small and busy.
const WAIT_MS = 60000;
const SDK_TIMEOUTS = { requestTimeout: 30000, featureFlagsRequestTimeoutMs: 30000, fetchRetryCount: 3, fetchRetryDelay: 200 };
const N_IDS = 200;
const SECRET_INVALID = { type: 'authentication_error', code: 'authentication_failed', detail: 'Secret API token is invalid.', attr: null };

// ---------------------------------------------------------------- server

const kw = await startKeyward(BIN);
const { phx: PHX, phc: PHC, host: HOST, http } = kw;

async function api(path, { status, ...opts }) {
  const r = await http(path, { key: PHX, ...opts });
  assert.equal(r.status, status, `${opts.method || 'GET'} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

const makeSecretKey = (label, scopes) => api('/api/projects/1/project_secret_api_keys/',
  { method: 'POST', body: { label, scopes }, status: 201 });
const makeFlag = (key, filters, extra = {}) => api('/api/projects/1/feature_flags/',
  { method: 'POST', body: { key, name: `${key} flag`, active: true, filters, ...extra }, status: 201 });
const patchFlag = (id, body) => api(`/api/projects/1/feature_flags/${id}/`, { method: 'PATCH', body, status: 200 });

// Bounded polling: resolves with the first truthy value of fn(), or fails.
async function waitFor(what, fn, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- SDK clients

const clients = [];

/* A client of SDK `s` whose requests are recorded in client.log. */
function sdk(s, opts = {}) {
  const log = [];
  const client = new s.PostHog(PHC, {
    host: HOST,
    flushAt: 1,
    flushInterval: 0,
    ...SDK_TIMEOUTS,
    ...opts,
    fetch: async (url, options) => {
      const entry = { method: options.method, path: new URL(url).pathname + new URL(url).search, headers: { ...options.headers } };
      log.push(entry);
      try {
        const res = await fetch(url, options);
        entry.status = res.status;
        return res;
      } catch (e) {
        entry.error = String(e);
        throw e;
      }
    },
  });
  client.log = log;
  client.errors = [];
  client.on('error', (e) => client.errors.push(e));
  clients.push(client);
  return client;
}

/* Local evaluation with a secret key: `secretKey` from 5.x on, `personalApiKey` before. */
const withKey = (s, key, extra = {}) => ({ ...(s.modern ? { secretKey: key } : { personalApiKey: key }), ...extra });

/* Definitions loaded: waitForLocalEvaluationReady where the SDK has it, else
   until an always-on flag evaluates locally. */
async function ready(client) {
  if (typeof client.waitForLocalEvaluationReady === 'function') return client.waitForLocalEvaluationReady(WAIT_MS);
  return waitFor('local evaluation', () => client.getFeatureFlag('bool-payload', 'ready', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }));
}

// ---------------------------------------------------------------- PostHog's rollout, in JS

function phash(key, id, salt = '') {
  const hex = createHash('sha1').update(`${key}.${id}${salt}`).digest('hex').slice(0, 15);
  return Number(BigInt(`0x${hex}`)) / Number(0xFFFFFFFFFFFFFFFn);
}

function expectedVariant(key, id, variants) {
  const h = phash(key, id, 'variant');
  let low = 0;
  for (const v of variants) {
    const high = low + v.rollout_percentage / 100;
    if (h >= low && h < high) return v.key;
    low = high;
  }
  return null;
}

// ---------------------------------------------------------------- fixtures

const VARIANTS = [
  { key: 'control', name: 'Control', rollout_percentage: 50 },
  { key: 'test', name: 'Test', rollout_percentage: 30 },
  { key: 'third', name: 'Third', rollout_percentage: 20 },
];
const PAYLOADS = {
  control: JSON.stringify({ color: 'blue', size: 1 }),
  test: JSON.stringify({ color: 'red', list: [1, 2, 3] }),
  third: JSON.stringify('just a string'),
};
const PLANS = ['pro', 'free', 'enterprise', 'trial'];
const ids = Array.from({ length: N_IDS }, (_, i) => `user-${i}-${(i * 7919) % 1000}`);
const personOf = (i) => ({
  plan: PLANS[i % PLANS.length],
  email: i % 3 === 0 ? `u${i}@example.com` : `u${i}@other.org`,
});

function expectedFor(flag, id, i) {
  switch (flag) {
    case 'rollout-30': return phash('rollout-30', id) <= 0.30;
    case 'multi': return expectedVariant('multi', id, VARIANTS) ?? false;
    case 'by-plan': {
      const p = personOf(i);
      if (p.plan === 'pro' || p.plan === 'enterprise') return true;
      return p.email.toLowerCase().includes('@example.com') && phash('by-plan', id) <= 0.5;
    }
    case 'bool-payload': return true;
    case 'inactive': return false;
    default: throw new Error(flag);
  }
}

const FLAG_KEYS = ['rollout-30', 'multi', 'by-plan', 'bool-payload', 'inactive'];
let phsShared;   // feature_flag:read + endpoint:read, used by every SDK's local client
let groupFlags = false;  // the group flags, made by the first SDK's group test

test('setup: flags and a project secret key through the API', async () => {
  phsShared = await makeSecretKey('sdk', ['feature_flag:read', 'endpoint:read']);
  assert.match(phsShared.value, /^phs_/);
  const flags = {
    'rollout-30': [{ groups: [{ properties: [], rollout_percentage: 30 }] }],
    multi: [{ groups: [{ properties: [], rollout_percentage: 100 }], multivariate: { variants: VARIANTS }, payloads: PAYLOADS }],
    'by-plan': [{ groups: [
      { properties: [{ key: 'plan', value: ['pro', 'enterprise'], operator: 'exact', type: 'person' }], rollout_percentage: 100 },
      { properties: [{ key: 'email', value: '@EXAMPLE.com', operator: 'icontains', type: 'person' }], rollout_percentage: 50 },
    ] }],
    'bool-payload': [{ groups: [{ properties: [], rollout_percentage: 100 }], payloads: { true: JSON.stringify({ a: 1, b: [true, null] }) } }],
    inactive: [{ groups: [{ properties: [], rollout_percentage: 100 }] }, { active: false }],
  };
  for (const [key, [filters, extra]] of Object.entries(flags)) await makeFlag(key, filters, extra);
  await api('/api/projects/1/endpoints/', { method: 'POST', status: 201,
    body: { name: 'sdk-counts', query: { kind: 'event_counts' } } });
  await api('/api/projects/1/endpoints/', { method: 'POST', status: 201,
    body: { name: 'sdk-recent', query: { kind: 'recent_events', event: '{variables.event}', limit: 1000 },
      variables: { event: { type: 'string', default: null } } } });
});

for (const s of SDKS) {
  test(`posthog-node ${s.version} (${s.pkg}) against keyward`, { timeout: 250000, skip: s.skip }, async (t) => {
    let local, localPhx, remote, probeId;
    const L = s.label;

    await t.test(`local evaluation loads definitions from ${s.defs} with a phs_ and a phx_ key`, async () => {
      probeId = (await makeFlag(`probe-${L}`, { groups: [{ properties: [], rollout_percentage: 0 }] })).id;
      local = sdk(s, withKey(s, phsShared.value, { featureFlagsPollingInterval: 30000 }));
      localPhx = sdk(s, { personalApiKey: PHX, featureFlagsPollingInterval: 30000 });
      remote = sdk(s, {});  // no secret key: every evaluation is remote
      assert.ok(await ready(local), `phs_ client ready; requests: ${JSON.stringify(local.log)}`);
      assert.ok(await ready(localPhx), `phx_ client ready; requests: ${JSON.stringify(localPhx.log)}`);
      // The first answered poll: the SDK may have a second one in flight.
      const poll = await waitFor(`an answered poll of ${s.defs}: ${JSON.stringify(local.log)}`,
        () => local.log.find((r) => r.path.startsWith(s.defs) && r.status !== undefined));
      assert.equal(poll.status, 200);
      assert.equal(poll.headers.Authorization, `Bearer ${phsShared.value}`);
      assert.equal(local.errors.length, 0, String(local.errors));
    });

    await t.test(`local = remote (${s.remote}) = PostHog's rollout for ${N_IDS} ids`, async () => {
      const tally = { 'rollout-30': 0, multi: {}, 'by-plan': 0 };
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        const personProperties = personOf(i);
        const remoteAll = await remote.getAllFlags(id, { personProperties });
        for (const key of FLAG_KEYS) {
          const want = expectedFor(key, id, i);
          const opts = { personProperties, onlyEvaluateLocally: true, sendFeatureFlagEvents: false };
          assert.equal(await local.getFeatureFlag(key, id, opts), want, `local ${key} for ${id}`);
          assert.equal(await localPhx.getFeatureFlag(key, id, opts), want, `local (phx_) ${key} for ${id}`);
          assert.equal(await local.isFeatureEnabled(key, id, opts), want !== false, `isFeatureEnabled ${key} for ${id}`);
          assert.equal(remoteAll[key], want, `remote ${key} for ${id}: ${JSON.stringify(remoteAll)}`);
        }
        if (i % 20 === 0) {
          for (const key of ['rollout-30', 'multi', 'by-plan']) {
            assert.equal(await remote.getFeatureFlag(key, id, { personProperties, sendFeatureFlagEvents: false }),
              expectedFor(key, id, i), `remote getFeatureFlag ${key} for ${id}`);
          }
        }
        if (expectedFor('rollout-30', id, i)) tally['rollout-30']++;
        if (expectedFor('by-plan', id, i)) tally['by-plan']++;
        const v = expectedFor('multi', id, i);
        tally.multi[v] = (tally.multi[v] || 0) + 1;
      }
      // The fixtures exercise both sides of every rule.
      assert.ok(tally['rollout-30'] > 30 && tally['rollout-30'] < 90, JSON.stringify(tally));
      assert.ok(tally['by-plan'] > N_IDS / 2 && tally['by-plan'] < N_IDS, JSON.stringify(tally));
      assert.deepEqual(Object.keys(tally.multi).sort(), ['control', 'test', 'third'], JSON.stringify(tally));
      const evals = remote.log.filter((r) => r.method === 'POST' && !r.path.startsWith('/batch'));
      assert.ok(evals.length >= N_IDS);
      for (const r of evals) {
        assert.ok(r.path.startsWith(s.remote), `remote evaluation calls ${s.remote}: ${r.path}`);
        assert.equal(r.status, 200, JSON.stringify(r));
      }
      // Local evaluation made no remote call.
      assert.equal(local.log.filter((r) => r.method === 'POST' && !r.path.startsWith('/batch')).length, 0);
    });

    await t.test('evaluateFlags: locally and remotely the same flags and payloads', { skip: !s.modern && 'evaluateFlags is 5.x' }, async () => {
      for (let i = 0; i < 40; i++) {
        const id = ids[i];
        const personProperties = personOf(i);
        const l = await local.evaluateFlags(id, { personProperties, onlyEvaluateLocally: true });
        const r = await remote.evaluateFlags(id, { personProperties });
        for (const key of FLAG_KEYS) {
          assert.equal(l.getFlag(key, { sendFeatureFlagEvents: false }), expectedFor(key, id, i), `evaluateFlags local ${key} ${id}`);
          assert.equal(r.getFlag(key, { sendFeatureFlagEvents: false }), expectedFor(key, id, i), `evaluateFlags remote ${key} ${id}`);
          // "No payload": evaluateFlags gives undefined locally and null
          // remotely (PostHog's flag service sends `"payload": null`, and so
          // does keyward); getFeatureFlagPayload gives null both ways.
          assert.deepEqual(l.getFlagPayload(key) ?? null, r.getFlagPayload(key) ?? null, `payload ${key} ${id}`);
        }
      }
    });

    await t.test('getFeatureFlagPayload: locally and remotely equal', async () => {
      for (let i = 0; i < 60; i++) {
        const id = ids[i];
        const personProperties = personOf(i);
        const variant = expectedFor('multi', id, i);
        const l = await local.getFeatureFlagPayload('multi', id, undefined, { personProperties, onlyEvaluateLocally: true });
        const r = await remote.getFeatureFlagPayload('multi', id, undefined, { personProperties });
        assert.deepEqual(l, JSON.parse(PAYLOADS[variant]), `local payload for ${id} (${variant})`);
        assert.deepEqual(r, l, `remote payload for ${id} (${variant})`);
      }
      const want = { a: 1, b: [true, null] };
      assert.deepEqual(await local.getFeatureFlagPayload('bool-payload', 'x', undefined, { onlyEvaluateLocally: true }), want);
      assert.deepEqual(await remote.getFeatureFlagPayload('bool-payload', 'x'), want);
      // Every flag, enabled or not, with or without a payload: the same value.
      for (let i = 0; i < 40; i++) {
        for (const key of FLAG_KEYS) {
          const o = { personProperties: personOf(i) };
          const l = await local.getFeatureFlagPayload(key, ids[i], undefined, { ...o, onlyEvaluateLocally: true });
          const r = await remote.getFeatureFlagPayload(key, ids[i], undefined, o);
          assert.deepEqual(r ?? null, l ?? null, `payload of ${key} for ${ids[i]}`);
        }
      }
    });

    await t.test(`capture: /batch/ (${s.gzip ? 'gzip by default, and plain' : 'plain JSON'}) stored; read back through an endpoint with a phs_ key`, async () => {
      const main = sdk(s, {});
      const plain = s.gzip ? sdk(s, { disableCompression: true }) : null;
      const N_MAIN = 25, N_PLAIN = 12;
      const ev = (kind) => `sdk ${L} ${kind}`;
      for (let i = 0; i < N_MAIN; i++) main.capture({ distinctId: ids[i], event: ev('main'), properties: { i, plan: personOf(i).plan, nested: { ok: true } } });
      if (plain) for (let i = 0; i < N_PLAIN; i++) plain.capture({ distinctId: ids[i], event: ev('plain'), properties: { i } });
      // A remote evaluation with flag events on sends $feature_flag_called.
      const ffUser = `ff-called-${L}`;
      assert.equal(await main.getFeatureFlag('rollout-30', ffUser), expectedFor('rollout-30', ffUser));
      await main.shutdown(WAIT_MS);
      if (plain) await plain.shutdown(WAIT_MS);
      const batches = (c) => (c ? c.log.filter((r) => r.path === '/batch/') : []);
      assert.ok(batches(main).length >= 1);
      for (const r of [...batches(main), ...batches(plain)]) assert.equal(r.status, 200, JSON.stringify(r));
      assert.ok(batches(main).every((r) => (r.headers['Content-Encoding'] === 'gzip') === s.gzip), 'Content-Encoding as the SDK sends it');
      assert.ok(batches(plain).every((r) => !r.headers['Content-Encoding']), 'disableCompression sends JSON');
      assert.equal(main.errors.length + (plain?.errors.length ?? 0), 0, String([...main.errors, ...(plain?.errors ?? [])]));

      const run = await http('/api/projects/1/endpoints/sdk-counts/run/', { key: phsShared.value });
      assert.equal(run.status, 200, JSON.stringify(run.body));
      const counts = Object.fromEntries(run.body.results.map(([event, count]) => [event, count]));
      assert.equal(counts[ev('main')], N_MAIN, JSON.stringify(counts));
      if (plain) assert.equal(counts[ev('plain')], N_PLAIN, JSON.stringify(counts));

      const recent = await http('/api/projects/1/endpoints/sdk-recent/run/', { key: phsShared.value, method: 'POST', body: { variables: { event: ev('main') } } });
      assert.equal(recent.status, 200, JSON.stringify(recent.body));
      const col = (name) => recent.body.columns.indexOf(name);
      const rows = recent.body.results;
      assert.equal(rows.length, N_MAIN);
      const byI = new Map(rows.map((row) => {
        const props = typeof row[col('properties')] === 'string' ? JSON.parse(row[col('properties')]) : row[col('properties')];
        return [props.i, { row, props }];
      }));
      for (let i = 0; i < N_MAIN; i++) {
        const { row, props } = byI.get(i);
        assert.equal(row[col('distinct_id')], ids[i]);
        assert.equal(props.plan, personOf(i).plan);
        assert.deepEqual(props.nested, { ok: true });
        assert.equal(props.$lib, 'posthog-node');
        assert.equal(props.$lib_version, s.version);
        assert.match(row[col('uuid')], /^[0-9a-f-]{36}$/);
      }
      const called = await http('/api/projects/1/endpoints/sdk-recent/run/', { key: phsShared.value, method: 'POST', body: { variables: { event: '$feature_flag_called' } } });
      const calledRows = called.body.results.filter((row) => row[col('distinct_id')] === ffUser);
      assert.equal(calledRows.length, 1, JSON.stringify(called.body.results));
    });

    await t.test('capture: a batch over the body limit gets its 413, and the SDK halves it until every event is stored', {
      skip: !s.modern && 'halving on 413 is 5.x',
    }, async () => {
      // 1000 events of ~5 KB as plain JSON: ~5 MB, five times the 1 MiB
      // limit.  Each 413 must reach the SDK (not a connection reset, which
      // it would retry with the same batch): it then sends halves.
      const N = 1000;
      const big = sdk(s, { disableCompression: true, flushAt: N, maxBatchSize: N });
      const pad = 'x'.repeat(5000);
      for (let i = 0; i < N; i++) big.capture({ distinctId: ids[i % ids.length], event: `sdk ${L} big`, properties: { i, pad } });
      await big.shutdown(WAIT_MS);
      const statuses = big.log.filter((r) => r.path === '/batch/').map((r) => r.status ?? r.error);
      assert.equal(statuses[0], 413, JSON.stringify(statuses));
      assert.ok(statuses.every((st) => st === 413 || st === 200), JSON.stringify(statuses));
      assert.equal(big.errors.length, 0, String(big.errors));
      const run = await http('/api/projects/1/endpoints/sdk-counts/run/', { key: phsShared.value });
      assert.equal(run.status, 200, JSON.stringify(run.body));
      const counts = Object.fromEntries(run.body.results.map(([event, count]) => [event, count]));
      assert.equal(counts[`sdk ${L} big`], N, JSON.stringify(counts));
    });

    await t.test('capture v1 (POSTHOG_CAPTURE_MODE=v1): /i/v1/analytics/events and the AI routes stored', {
      skip: !s.modern && 'Capture V1 and captureAi are 5.x',
    }, async () => {
      // The mode is read from the environment when a client is made.
      process.env.POSTHOG_CAPTURE_MODE = 'v1';
      let gz, plain;
      try {
        gz = sdk(s, {});
        plain = sdk(s, { disableCompression: true });
      } finally {
        delete process.env.POSTHOG_CAPTURE_MODE;
      }
      const ev = (kind) => `sdk ${L} v1 ${kind}`;
      const N = 15;
      for (let i = 0; i < N; i++) {
        gz.capture({ distinctId: ids[i], event: ev('gzip'), properties: { i, $session_id: `sess-${i}`, $process_person_profile: false, nested: { ok: true } } });
        plain.capture({ distinctId: ids[i], event: ev('plain'), properties: { i } });
      }
      // $ai_ events: capture() keeps them on the legacy /batch/ in v1 mode;
      // captureAi() sends them to the AI batch route.
      gz.capture({ distinctId: 'ai-user', event: '$ai_generation', properties: { $ai_model: 'm', tag: `${L}-capture` } });
      gz.captureAi({ distinctId: 'ai-user', event: '$ai_span', properties: { $ai_span_name: 's', tag: `${L}-captureAi` } });
      await plain.captureAiImmediate({ distinctId: 'ai-user', event: '$ai_trace', properties: { tag: `${L}-immediate` } });
      await gz.shutdown(WAIT_MS);
      await plain.shutdown(WAIT_MS);
      const sent = (c, path) => c.log.filter((r) => r.path === path);
      const V1 = '/i/v1/analytics/events', AI = '/i/v0/ai/batch/';
      for (const c of [gz, plain]) {
        assert.ok(sent(c, V1).length >= 1, JSON.stringify(c.log));
        for (const r of sent(c, V1)) {
          assert.equal(r.status, 200, JSON.stringify(r));
          assert.equal(r.headers.Authorization, `Bearer ${PHC}`);
          assert.match(r.headers['PostHog-Sdk-Info'], /^posthog-node\//);
        }
        assert.equal(c.errors.length, 0, String(c.errors));
      }
      assert.ok(sent(gz, V1).every((r) => r.headers['Content-Encoding'] === 'gzip'), 'v1 gzips by default');
      assert.ok(sent(plain, V1).every((r) => !r.headers['Content-Encoding']), 'disableCompression sends JSON');
      assert.ok(sent(gz, '/batch/').some((r) => r.status === 200), 'capture() of an $ai_ event goes to /batch/');
      const ai = [...sent(gz, AI), ...sent(plain, AI)];
      assert.ok(ai.length >= 2 && ai.every((r) => r.status === 200), JSON.stringify(ai));

      const col = (body, name) => body.columns.indexOf(name);
      const recent = async (event) => {
        const r = await http('/api/projects/1/endpoints/sdk-recent/run/', { key: phsShared.value, method: 'POST', body: { variables: { event } } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.results.map((row) => {
          const raw = row[col(r.body, 'properties')];
          return { distinct: row[col(r.body, 'distinct_id')], uuid: row[col(r.body, 'uuid')], props: typeof raw === 'string' ? JSON.parse(raw) : raw };
        });
      };
      const rows = await recent(ev('gzip'));
      assert.equal(rows.length, N);
      for (const { distinct, uuid, props } of rows) {
        assert.equal(distinct, ids[props.i]);
        // what the SDK lifted out of the properties is back in them
        assert.equal(props.$session_id, `sess-${props.i}`);
        assert.equal(props.$process_person_profile, false);
        assert.equal(props.$lib, 'posthog-node');
        assert.equal(props.$lib_version, s.version);
        assert.deepEqual(props.nested, { ok: true });
        assert.match(uuid, /^[0-9a-f-]{36}$/);
      }
      assert.equal((await recent(ev('plain'))).length, N);
      const tags = async (event) => (await recent(event)).map((r) => r.props.tag);
      assert.ok((await tags('$ai_generation')).includes(`${L}-capture`));
      assert.ok((await tags('$ai_span')).includes(`${L}-captureAi`));
      assert.ok((await tags('$ai_trace')).includes(`${L}-immediate`));
    });

    await t.test(`group flags: groupIdentify learns the type; local = remote = PostHog's rollout for ${N_IDS} group keys`, async () => {
      // groupIdentify captures $groupidentify; keyward learns "company" (index 0).
      const gi = sdk(s, {});
      gi.groupIdentify({ groupType: 'company', groupKey: 'acme', properties: { tier: 'gold' } });
      await gi.shutdown(WAIT_MS);
      assert.equal(gi.errors.length, 0, String(gi.errors));
      const types = await api('/api/projects/1/groups_types/', { status: 200 });
      assert.equal(types[0].group_type, 'company');
      assert.equal(types[0].group_type_index, 0);
      if (!groupFlags) {
        groupFlags = true;
        await makeFlag('group-50', { aggregation_group_type_index: 0, groups: [{ properties: [], rollout_percentage: 50 }] });
        await makeFlag('group-gold', { aggregation_group_type_index: 0, groups: [
          { properties: [{ key: 'tier', value: ['gold'], operator: 'exact', type: 'group', group_type_index: 0 }], rollout_percentage: 100 }] });
      }
      const loc = sdk(s, withKey(s, phsShared.value, { featureFlagsPollingInterval: 30000 }));
      assert.ok(await ready(loc));
      const quiet = { sendFeatureFlagEvents: false };
      let on = 0;
      for (let i = 0; i < N_IDS; i++) {
        const groupKey = `company-${i}`;
        const person = ids[i];
        const want = phash('group-50', groupKey) <= 0.5;
        const groups = { company: groupKey };
        assert.equal(await loc.getFeatureFlag('group-50', person, { groups, onlyEvaluateLocally: true, ...quiet }), want, `local group-50 for ${groupKey}`);
        assert.equal(await remote.getFeatureFlag('group-50', person, { groups, ...quiet }), want, `remote group-50 for ${groupKey}`);
        if (want) on++;
      }
      assert.ok(on > N_IDS / 4 && on < (3 * N_IDS) / 4, `group-50 on for ${on} of ${N_IDS}`);
      // group properties from the call decide; one company, the others not
      for (const [tier, want] of [['gold', true], ['silver', false]]) {
        const opts = { groups: { company: 'acme' }, groupProperties: { company: { tier } }, ...quiet };
        assert.equal(await loc.getFeatureFlag('group-gold', 'someone', { ...opts, onlyEvaluateLocally: true }), want, `local group-gold ${tier}`);
        assert.equal(await remote.getFeatureFlag('group-gold', 'someone', opts), want, `remote group-gold ${tier}`);
      }
      // without the group the flag is off both ways
      assert.equal(await loc.getFeatureFlag('group-gold', 'someone', { onlyEvaluateLocally: true, ...quiet }), false);
      assert.equal(await remote.getFeatureFlag('group-gold', 'someone', quiet), false);
      assert.equal(loc.errors.length + remote.errors.length, 0, String([...loc.errors, ...remote.errors]));
    });

    await t.test('flag changes reach the poller (If-None-Match → 304, then 200)', async () => {
      const phs = await makeSecretKey(`sdk-${L}-poll`, ['feature_flag:read']);
      const poller = sdk(s, withKey(s, phs.value, { featureFlagsPollingInterval: 200 }));
      assert.ok(await ready(poller));
      const defs = () => poller.log.filter((r) => r.path.startsWith(s.defs));
      const probe = () => poller.getFeatureFlag(`probe-${L}`, 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false });
      if (s.modern) {
        await waitFor('a 304 for an unchanged poll', () => defs().some((r) => r.status === 304));
        assert.ok(defs().filter((r) => r.status === 304).every((r) => r.headers['If-None-Match']?.startsWith('W/"')));
      } else {
        await waitFor('a second poll', () => defs().filter((r) => r.status === 200).length >= 2);
      }
      assert.equal(await probe(), false);
      await patchFlag(probeId, { filters: { groups: [{ properties: [], rollout_percentage: 100 }] } });
      await waitFor('the poller to see the probe flag at 100%', probe);
      assert.equal(poller.errors.length, 0, String(poller.errors));
    });

    await t.test('roll, then delete, the phs_ key: 401 "Secret API token is invalid." on the next poll', async () => {
      const phs = await makeSecretKey(`sdk-${L}-roll`, ['feature_flag:read']);
      const old = sdk(s, withKey(s, phs.value, { featureFlagsPollingInterval: 200 }));
      assert.ok(await ready(old));
      const defs401 = (c, from = 0) => c.log.slice(from).some((r) => r.path.startsWith(s.defs) && r.status === 401);
      const reported = (c) => c.errors.some((e) => /key is invalid/i.test(String(e?.message ?? e)));
      const direct = async (key) => {
        const r = await http(`${s.defs}?token=${PHC}&send_cohorts`, { key });
        assert.equal(r.status, 401);
        assert.deepEqual(r.body, SECRET_INVALID);
      };

      const rolled = await api(`/api/projects/1/project_secret_api_keys/${phs.id}/roll/`, { method: 'POST', status: 200 });
      assert.notEqual(rolled.value, phs.value);
      await waitFor('a 401 on the old value\'s poll', () => defs401(old));
      await waitFor('the SDK to report the 401', () => reported(old));
      await direct(phs.value);

      const fresh = sdk(s, withKey(s, rolled.value, { featureFlagsPollingInterval: 200 }));
      assert.ok(await ready(fresh));
      assert.equal(await fresh.getFeatureFlag(`probe-${L}`, 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }), true);

      const before = fresh.log.length;
      await api(`/api/projects/1/project_secret_api_keys/${phs.id}/`, { method: 'DELETE', status: 204 });
      await waitFor('a 401 on the deleted key\'s poll', () => defs401(fresh, before));
      await waitFor('the SDK to report the 401', () => reported(fresh));
      await direct(rolled.value);

      // posthog-node does not drop its definitions on a 401 (only on a 402):
      // it goes on evaluating with the last ones it had and no longer sees
      // flag changes.  Remote evaluation (phc_) is unaffected.
      await patchFlag(probeId, { filters: { groups: [{ properties: [], rollout_percentage: 0 }] } });
      assert.equal(await remote.getFeatureFlag(`probe-${L}`, 'probe-user', { sendFeatureFlagEvents: false }), false);
      assert.equal(await fresh.getFeatureFlag(`probe-${L}`, 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }), true,
        'stale definitions after revocation');
    });

    await t.test('getRemoteConfigPayload (remote-config flags)', { skip: typeof local.getRemoteConfigPayload !== 'function' && 'not in this version' }, async () => {
      assert.deepEqual(await local.getRemoteConfigPayload('bool-payload'), { a: 1, b: [true, null] });
    });
  });
}

test.after(async () => {
  for (const c of clients) {
    try { await c.shutdown(5000); } catch { /* already shut down */ }
  }
  const code = await kw.stop();
  // A clean shutdown (under the sanitizers too: a leak report exits non-zero).
  assert.equal(code, 0, 'keyward serve exits 0 on SIGTERM');
});
