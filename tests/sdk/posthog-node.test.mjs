// posthog-node.test.mjs — the real posthog-node SDK, unchanged, against a
// real `keyward serve`.
//
// posthog-node comes from npm at the version pinned in package.json
// (package-lock.json); a fresh checkout installs it on first run.  The test
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
//      with a phs_ key (endpoint:read);
//   4. flag changes reach the poller (ETag, 304), a rolled or deleted phs_
//      key gets 401 "Secret API token is invalid." on the SDK's next poll.
//
// Every wait is a bounded poll; nothing sleeps for a fixed time.  Loopback
// only.  The SDK's own requests are observed through its `fetch` option (a
// pass-through to Node's fetch that records method, path, headers, status).
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import test from 'node:test';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BIN = process.env.KEYWARD_BIN || [join(ROOT, 'build', 'keyward')].find(existsSync);

if (!existsSync(join(HERE, 'node_modules', 'posthog-node'))) {
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', HERE], { cwd: HERE, stdio: 'inherit' });
}
const { PostHog } = await import('posthog-node');
const SDK_VERSION = JSON.parse(readFileSync(join(HERE, 'node_modules', 'posthog-node', 'package.json'), 'utf8')).version;

assert.ok(BIN && existsSync(BIN), 'set KEYWARD_BIN to the keyward binary');

// Generous bounds: CI machines are small and busy.
const WAIT_MS = 60000;
const SDK_TIMEOUTS = { requestTimeout: 30000, featureFlagsRequestTimeoutMs: 30000, fetchRetryCount: 3, fetchRetryDelay: 200 };
const N_IDS = 200;
const SECRET_INVALID = { type: 'authentication_error', code: 'authentication_failed', detail: 'Secret API token is invalid.', attr: null };

// ---------------------------------------------------------------- server

const work = mkdtempSync(join(tmpdir(), 'kw-sdk-'));
const db = join(work, 'kw.db');
const initOut = execFileSync(BIN, ['init', '--email', 'sdk@example.com', '--org', 'Acme', '--project', 'Web', '--db', db], { encoding: 'utf8' });
const PHX = initOut.match(/phx_[0-9A-Za-z]+/g)?.pop();
const PHC = initOut.match(/phc_[0-9A-Za-z]+/g)?.pop();
assert.ok(PHX && PHC, `keyward init printed a phx_ key and a phc_ token: ${initOut}`);

const server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--threads', '2'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const HOST = await new Promise((ok, fail) => {
  let out = '';
  const timer = setTimeout(() => fail(new Error('keyward serve did not start')), 30000);
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) { clearTimeout(timer); ok(m[1]); }
  });
  server.on('exit', (code) => fail(new Error(`keyward serve exited (${code})`)));
});

async function http(path, { key, method = 'GET', body } = {}) {
  const headers = {};
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(HOST + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

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

/* A client whose requests are recorded in client.log. */
function sdk(opts = {}) {
  const log = [];
  const client = new PostHog(PHC, {
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

let flagIds = {};
let phsFlags, phsRoll;   // project secret keys
let local, localPhx, remote;

test(`posthog-node ${SDK_VERSION} against keyward`, { timeout: 280000 }, async (t) => {
  await t.test('setup: keys and flags through the API', async () => {
    phsFlags = await makeSecretKey('sdk', ['feature_flag:read', 'endpoint:read']);
    phsRoll = await makeSecretKey('sdk-roll', ['feature_flag:read']);
    assert.match(phsFlags.value, /^phs_/);
    const flags = {
      'rollout-30': [{ groups: [{ properties: [], rollout_percentage: 30 }] }],
      multi: [{ groups: [{ properties: [], rollout_percentage: 100 }], multivariate: { variants: VARIANTS }, payloads: PAYLOADS }],
      'by-plan': [{ groups: [
        { properties: [{ key: 'plan', value: ['pro', 'enterprise'], operator: 'exact', type: 'person' }], rollout_percentage: 100 },
        { properties: [{ key: 'email', value: '@EXAMPLE.com', operator: 'icontains', type: 'person' }], rollout_percentage: 50 },
      ] }],
      'bool-payload': [{ groups: [{ properties: [], rollout_percentage: 100 }], payloads: { true: JSON.stringify({ a: 1, b: [true, null] }) } }],
      inactive: [{ groups: [{ properties: [], rollout_percentage: 100 }] }, { active: false }],
      probe: [{ groups: [{ properties: [], rollout_percentage: 0 }] }],
    };
    for (const [key, [filters, extra]] of Object.entries(flags)) flagIds[key] = (await makeFlag(key, filters, extra)).id;
  });

  await t.test('local evaluation loads definitions with a phs_ key (secretKey) and a phx_ key (personalApiKey)', async () => {
    local = sdk({ secretKey: phsFlags.value, featureFlagsPollingInterval: 30000 });
    localPhx = sdk({ personalApiKey: PHX, featureFlagsPollingInterval: 30000 });
    remote = sdk({});  // no secret key: every evaluation goes to /flags
    assert.equal(await local.waitForLocalEvaluationReady(WAIT_MS), true, `phs_ client ready; requests: ${JSON.stringify(local.log)}`);
    assert.equal(await localPhx.waitForLocalEvaluationReady(WAIT_MS), true, `phx_ client ready; requests: ${JSON.stringify(localPhx.log)}`);
    const poll = local.log.find((r) => r.path.startsWith('/flags/definitions'));
    assert.ok(poll, 'the SDK polls /flags/definitions');
    assert.equal(poll.status, 200);
    assert.equal(poll.headers.Authorization, `Bearer ${phsFlags.value}`);
    assert.equal(local.errors.length, 0, String(local.errors));
  });

  await t.test(`local = remote = PostHog's rollout for ${N_IDS} ids (getFeatureFlag, isFeatureEnabled, getAllFlags)`, async () => {
    const tally = { 'rollout-30': 0, multi: {}, 'by-plan': 0 };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const personProperties = personOf(i);
      const remoteAll = await remote.getAllFlags(id, { personProperties });
      for (const key of FLAG_KEYS) {
        const want = expectedFor(key, id, i);
        const opts = { personProperties, onlyEvaluateLocally: true, sendFeatureFlagEvents: false };
        const got = await local.getFeatureFlag(key, id, opts);
        const gotPhx = await localPhx.getFeatureFlag(key, id, opts);
        const enabled = await local.isFeatureEnabled(key, id, opts);
        assert.equal(got, want, `local ${key} for ${id}`);
        assert.equal(gotPhx, want, `local (phx_) ${key} for ${id}`);
        assert.equal(enabled, want !== false, `isFeatureEnabled ${key} for ${id}`);
        assert.equal(remoteAll[key], want, `remote ${key} for ${id}: ${JSON.stringify(remoteAll)}`);
      }
      if (i % 20 === 0) {
        // getFeatureFlag without a secret key: one /flags?v=2 call per flag.
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
    const flagsCalls = remote.log.filter((r) => r.path.startsWith('/flags'));
    assert.ok(flagsCalls.length >= N_IDS);
    assert.ok(flagsCalls.every((r) => r.path.startsWith('/flags/?v=2') && r.status === 200), JSON.stringify(flagsCalls.find((r) => r.status !== 200)));
    // Local evaluation made no /flags call.
    assert.equal(local.log.filter((r) => r.path.startsWith('/flags/?')).length, 0);
  });

  await t.test('evaluateFlags: locally and remotely the same flags and payloads', async () => {
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
    // Every flag, enabled or not, with or without a payload: the same value
    // (null when there is none, both ways).
    for (let i = 0; i < 40; i++) {
      for (const key of FLAG_KEYS) {
        const o = { personProperties: personOf(i) };
        const l = await local.getFeatureFlagPayload(key, ids[i], undefined, { ...o, onlyEvaluateLocally: true });
        const r = await remote.getFeatureFlagPayload(key, ids[i], undefined, o);
        assert.deepEqual(r, l, `payload of ${key} for ${ids[i]}`);
      }
    }
  });

  await t.test('capture: gzip and plain batches are stored; read back through an endpoint with a phs_ key', async () => {
    const gz = sdk({});
    const plain = sdk({ disableCompression: true });
    const N_GZ = 25, N_PLAIN = 12;
    for (let i = 0; i < N_GZ; i++) gz.capture({ distinctId: ids[i], event: 'sdk gzip', properties: { i, plan: personOf(i).plan, nested: { ok: true } } });
    for (let i = 0; i < N_PLAIN; i++) plain.capture({ distinctId: ids[i], event: 'sdk plain', properties: { i } });
    // A remote evaluation with flag events on sends $feature_flag_called.
    assert.equal(await gz.getFeatureFlag('rollout-30', 'ff-called-user'), expectedFor('rollout-30', 'ff-called-user'));
    await gz.shutdown(WAIT_MS);
    await plain.shutdown(WAIT_MS);
    const batches = (c) => c.log.filter((r) => r.path === '/batch/');
    assert.ok(batches(gz).length >= 1 && batches(plain).length >= 1);
    for (const r of [...batches(gz), ...batches(plain)]) assert.equal(r.status, 200, JSON.stringify(r));
    assert.ok(batches(gz).every((r) => r.headers['Content-Encoding'] === 'gzip'), 'posthog-node gzips by default');
    assert.ok(batches(plain).every((r) => !r.headers['Content-Encoding']), 'disableCompression sends JSON');
    assert.equal(gz.errors.length + plain.errors.length, 0, String([...gz.errors, ...plain.errors]));

    await api('/api/projects/1/endpoints/', { method: 'POST', status: 201,
      body: { name: 'sdk-counts', query: { kind: 'event_counts' } } });
    await api('/api/projects/1/endpoints/', { method: 'POST', status: 201,
      body: { name: 'sdk-recent', query: { kind: 'recent_events', event: 'sdk gzip', limit: 1000 } } });
    const run = await http('/api/projects/1/endpoints/sdk-counts/run/', { key: phsFlags.value });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    const counts = Object.fromEntries(run.body.results.map(([event, count]) => [event, count]));
    assert.equal(counts['sdk gzip'], N_GZ, JSON.stringify(counts));
    assert.equal(counts['sdk plain'], N_PLAIN, JSON.stringify(counts));
    assert.equal(counts.$feature_flag_called, 1, JSON.stringify(counts));

    const recent = await http('/api/projects/1/endpoints/sdk-recent/run/', { key: phsFlags.value, method: 'POST', body: {} });
    assert.equal(recent.status, 200, JSON.stringify(recent.body));
    const col = (name) => recent.body.columns.indexOf(name);
    const rows = recent.body.results;
    assert.equal(rows.length, N_GZ);
    const byI = new Map(rows.map((row) => {
      const props = typeof row[col('properties')] === 'string' ? JSON.parse(row[col('properties')]) : row[col('properties')];
      return [props.i, { row, props }];
    }));
    for (let i = 0; i < N_GZ; i++) {
      const { row, props } = byI.get(i);
      assert.equal(row[col('distinct_id')], ids[i]);
      assert.equal(props.plan, personOf(i).plan);
      assert.deepEqual(props.nested, { ok: true });
      assert.equal(props.$lib, 'posthog-node');
      assert.equal(props.$lib_version, SDK_VERSION);
      assert.match(row[col('uuid')], /^[0-9a-f-]{36}$/);
    }
  });

  await t.test('flag changes reach the poller (If-None-Match → 304, then 200)', async () => {
    const poller = sdk({ secretKey: phsRoll.value, featureFlagsPollingInterval: 200 });
    assert.equal(await poller.waitForLocalEvaluationReady(WAIT_MS), true);
    const defs = () => poller.log.filter((r) => r.path.startsWith('/flags/definitions'));
    await waitFor('a 304 for an unchanged poll', () => defs().some((r) => r.status === 304));
    assert.ok(defs().filter((r) => r.status === 304).every((r) => r.headers['If-None-Match']?.startsWith('W/"')));
    assert.equal(await poller.getFeatureFlag('probe', 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }), false);
    await patchFlag(flagIds.probe, { filters: { groups: [{ properties: [], rollout_percentage: 100 }] } });
    await waitFor('the poller to see probe at 100%', () =>
      poller.getFeatureFlag('probe', 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }));
    assert.equal(poller.errors.length, 0, String(poller.errors));
  });

  await t.test('a rolled phs_ key: the old value gets 401 on the next poll, the new value works', async () => {
    const old = sdk({ secretKey: phsRoll.value, featureFlagsPollingInterval: 200 });
    assert.equal(await old.waitForLocalEvaluationReady(WAIT_MS), true);
    const rolled = await api(`/api/projects/1/project_secret_api_keys/${phsRoll.id}/roll/`, { method: 'POST', status: 200 });
    assert.notEqual(rolled.value, phsRoll.value);
    await waitFor('a 401 on the old key\'s poll', () => old.log.some((r) => r.path.startsWith('/flags/definitions') && r.status === 401));
    await waitFor('the SDK to report the 401', () => old.errors.some((e) => /key is invalid/i.test(String(e?.message ?? e))));
    const direct = await http(`/flags/definitions?token=${PHC}&send_cohorts`, { key: phsRoll.value });
    assert.equal(direct.status, 401);
    assert.deepEqual(direct.body, SECRET_INVALID);

    const fresh = sdk({ secretKey: rolled.value, featureFlagsPollingInterval: 200 });
    assert.equal(await fresh.waitForLocalEvaluationReady(WAIT_MS), true);
    assert.equal(await fresh.getFeatureFlag('probe', 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }), true);
    phsRoll = rolled;
    phsRoll.client = fresh;
  });

  await t.test('a deleted phs_ key: 401 on the next poll; the SDK keeps its last definitions', async () => {
    const client = phsRoll.client;
    const before = client.log.length;
    await api(`/api/projects/1/project_secret_api_keys/${phsRoll.id}/`, { method: 'DELETE', status: 204 });
    await waitFor('a 401 on the deleted key\'s poll', () =>
      client.log.slice(before).some((r) => r.path.startsWith('/flags/definitions') && r.status === 401));
    await waitFor('the SDK to report the 401', () => client.errors.some((e) => /key is invalid/i.test(String(e?.message ?? e))));
    const direct = await http(`/flags/definitions?token=${PHC}&send_cohorts`, { key: phsRoll.value });
    assert.equal(direct.status, 401);
    assert.deepEqual(direct.body, SECRET_INVALID);

    // posthog-node does not drop its definitions on a 401 (only on 402): it
    // goes on evaluating with the last ones it had, and no longer sees flag
    // changes.  Revocation cuts the key off from new definitions; remote
    // evaluation (phc_) is unaffected.
    await patchFlag(flagIds.probe, { filters: { groups: [{ properties: [], rollout_percentage: 0 }] } });
    assert.equal(await remote.getFeatureFlag('probe', 'probe-user', { sendFeatureFlagEvents: false }), false);
    assert.equal(await client.getFeatureFlag('probe', 'probe-user', { onlyEvaluateLocally: true, sendFeatureFlagEvents: false }), true,
      'stale definitions after revocation');
    // The key with endpoint:read still works; the deleted one nowhere.
    assert.equal((await http('/api/projects/1/endpoints/sdk-counts/run/', { key: phsRoll.value })).status, 401);
  });
});

test.after(async () => {
  for (const c of clients) {
    try { await c.shutdown(5000); } catch { /* already shut down */ }
  }
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
  rmSync(work, { recursive: true, force: true });
});
