// posthog-js.test.mjs — the real posthog-js, loaded by PostHog's HTML
// snippet, in a real browser against a real `keyward serve`.
//
// The page is an app on another origin (http://app.test, answered by
// playwright) that pastes PostHog's snippet with api_host = keyward, so
// every request posthog-js makes is cross-origin, as on a real site.  The
// posthog-js files are the copy scripts/deps installs into the build tree
// (or $KEYWARD_JS_DIR); without one the test is skipped with the reason.
// Checks: the snippet loads /static/array.js, array.js loads the remote
// config (/array/<token>/config.js), flags load and evaluate; a click is
// stored as $autocapture; an admin's autocapture_opt_out stops that on the
// next page load; posthog.group() makes a group flag true for the targeted
// company only (the group type learned from capture); no script or CORS
// error.  Loopback only.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import test from 'node:test';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BIN = process.env.KEYWARD_BIN || [join(ROOT, 'build', 'keyward')].find(existsSync);
const CHROMIUM = process.env.KEYWARD_CHROMIUM || '/usr/bin/chromium';
const DIST = ['posthog-js', 'node_modules', 'posthog-js', 'dist'];
const JS_DIR = process.env.KEYWARD_JS_DIR ||
  [join(dirname(BIN || ''), ...DIST), join(ROOT, 'build', ...DIST)].find((d) => existsSync(join(d, 'array.js'))) ||
  join(dirname(BIN || ''), ...DIST);
const APP = 'http://app.test';
const WAIT = 20000;

const skip = !existsSync(join(JS_DIR, 'array.js'))
  ? `no posthog-js copy at ${JS_DIR} (scripts/deps installs it; or set KEYWARD_JS_DIR)`
  : !existsSync(CHROMIUM) ? `${CHROMIUM} is missing` : false;

let server, base, context, work, profile, phx, phc;
const consoleErrors = [];
const requests = [];

async function http(path, { method = 'GET', body } = {}) {
  const h = { Authorization: `Bearer ${phx}` };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/* Stored events named `event`, newest first (an endpoint run with phx_). */
async function stored(event) {
  const r = await http('/api/projects/1/endpoints/recent/run/', { method: 'POST', body: { variables: { event } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const col = (n) => r.body.columns.indexOf(n);
  return r.body.results.map((row) => {
    const p = row[col('properties')];
    return { distinct_id: row[col('distinct_id')], properties: typeof p === 'string' ? JSON.parse(p) : p };
  });
}

async function until(what, fn, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/* The app's page: PostHog's HTML snippet, as its docs give it, with
   api_host pointing at keyward.  opt_out_useragent_filter: posthog-js
   drops the events of an automated browser unless told (its own advice
   for end-to-end tests). */
function appPage(marker) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>app ${marker}</title>
<script>
!function(t,e){var o,n,p,r;e.__SV||(window.posthog&&window.posthog.__loaded)||(window.posthog=e,e._i=[],e.init=function(i,s,a){function g(t,e){var o=e.split(".");2==o.length&&(t=t[o[0]],e=o[1]),t[e]=function(){t.push([e].concat(Array.prototype.slice.call(arguments,0)))}}(p=t.createElement("script")).type="text/javascript",p.crossOrigin="anonymous",p.async=!0,p.src=s.api_host.replace(".i.posthog.com","-assets.i.posthog.com")+"/static/array.js",(r=t.getElementsByTagName("script")[0]).parentNode.insertBefore(p,r);var u=e;for(void 0!==a?u=e[a]=[]:a="posthog",u.people=u.people||[],u.toString=function(t){var e="posthog";return"posthog"!==a&&(e+="."+a),t||(e+=" (stub)"),e},u.people.toString=function(){return u.toString(1)+".people (stub)"},o="init capture register register_once register_for_session unregister unregister_for_session getFeatureFlag getFeatureFlagPayload isFeatureEnabled reloadFeatureFlags updateEarlyAccessFeatureEnrollment getEarlyAccessFeatures on onFeatureFlags onSessionId getSurveys getActiveMatchingSurveys renderSurvey canRenderSurvey getNextSurveyStep identify setPersonProperties group resetGroups setPersonPropertiesForFlags resetPersonPropertiesForFlags setGroupPropertiesForFlags resetGroupPropertiesForFlags reset get_distinct_id getGroups get_session_id get_session_replay_url alias set_config startSessionRecording stopSessionRecording sessionRecordingStarted captureException loadToolbar get_property getSessionProperty createPersonProfile opt_in_capturing opt_out_capturing has_opted_in_capturing has_opted_out_capturing clear_opt_in_out_capturing debug".split(" "),n=0;n<o.length;n++)g(u,o[n]);e._i.push([i,s,a])},e.__SV=1)}(document,window.posthog||[]);
posthog.init(${JSON.stringify(phc)}, {api_host: ${JSON.stringify(base)}, person_profiles: 'identified_only',
  opt_out_useragent_filter: true,
  loaded: function () { window.__phLoaded = true; }});
</script></head>
<body><h1>Shop</h1><button id="buy" data-marker="${marker}">Buy now</button></body></html>`;
}

test('posthog-js from the HTML snippet against keyward', { skip, timeout: 180000 }, async (t) => {
  // playwright-core from npm (package-lock.json), as the console test
  if (!existsSync(join(HERE, 'node_modules', 'playwright-core'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, stdio: 'inherit' });
  }
  const { chromium } = await import('playwright-core');
  work = mkdtempSync(join(tmpdir(), 'kw-phjs-'));
  const db = join(work, 'kw.db');
  const init = execFileSync(BIN, ['init', '--email', 'a@example.com', '--db', db], { encoding: 'utf8' });
  phx = init.match(/phx_[0-9A-Za-z]+/g).pop();
  phc = init.match(/phc_[0-9A-Za-z]+/g).pop();
  server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--threads', '2', '--js-dir', JS_DIR],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('keyward serve did not start')), 10000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    server.on('exit', (code) => fail(new Error(`keyward serve exited (${code})`)));
  });

  // flags, an endpoint to read events back, and the company group type
  // (learned from a $groupidentify, as any SDK's group() sends)
  const flag = (key, filters) => http('/api/projects/1/feature_flags/', { method: 'POST', body: { key, filters } });
  assert.equal((await flag('snippet-on', { groups: [{ properties: [], rollout_percentage: 100 }] })).status, 201);
  assert.equal((await flag('acme-gold', { aggregation_group_type_index: 0, groups: [{
    properties: [{ key: 'tier', value: ['gold'], operator: 'exact', type: 'group', group_type_index: 0 }],
    rollout_percentage: 100 }] })).status, 201);
  assert.equal((await http('/api/projects/1/endpoints/', { method: 'POST', body: {
    name: 'recent', query: { kind: 'recent_events', event: '{variables.event}', limit: 1000 },
    variables: { event: { type: 'string', default: null } } } })).status, 201);
  const gi = await fetch(`${base}/batch/`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ api_key: phc, batch: [{ event: '$groupidentify', distinct_id: 'setup',
      properties: { $group_type: 'company', $group_key: 'seed' } }] }) });
  assert.equal(gi.status, 200);

  profile = mkdtempSync(join(tmpdir(), 'kw-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,

    // The app's origin is a made-up public host and keyward is on loopback,
    // which Chromium's private/local network access rules block for a page
    // that is not a secure context; on a real site keyward is not on the
    // visitor's loopback, so those rules are switched off here.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,' +
        'PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks'],
  });
  let marker = 'first';
  await context.route(`${APP}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: appPage(marker) }));
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('response', (r) => {
    if (r.url().startsWith(base)) requests.push({ method: r.request().method(), path: new URL(r.url()).pathname, status: r.status() });
  });
  const seen = (path) => requests.filter((r) => r.path === path);

  await t.test('the snippet loads array.js, the remote config and the flags', async () => {
    await page.goto(`${APP}/`);
    await page.waitForFunction(() => window.__phLoaded === true);
    assert.deepEqual(seen('/static/array.js').map((r) => r.status), [200]);
    await until('the remote config', () => seen(`/array/${phc}/config.js`).some((r) => r.status === 200));
    assert.equal(await page.evaluate((tok) => window._POSTHOG_REMOTE_CONFIG[tok].config.token, phc), phc);
    await page.waitForFunction(() => window.posthog.isFeatureEnabled('snippet-on') === true);
    assert.ok(requests.some((r) => r.path.startsWith('/flags') && r.status === 200), JSON.stringify(requests));
  });

  await t.test('a click is stored as $autocapture', async () => {
    await page.click('#buy');
    const ev = await until("$autocapture", async () => (await stored('$autocapture'))
      .find((e) => String(e.properties.$elements_chain || '').includes('first')));
    assert.equal(ev.distinct_id, await page.evaluate(() => window.posthog.get_distinct_id()));
    assert.ok(seen('/i/v0/e/').length + seen('/e/').length > 0, JSON.stringify(requests));
    assert.ok(requests.every((r) => r.status < 400), JSON.stringify(requests.filter((r) => r.status >= 400)));
  });

  await t.test('posthog.group(): the group flag is on for the targeted company only', async () => {
    await page.evaluate(() => window.posthog.group('company', 'acme', { tier: 'gold' }));
    await page.waitForFunction(() => window.posthog.isFeatureEnabled('acme-gold') === true);
    await page.evaluate(() => window.posthog.group('company', 'globex', { tier: 'silver' }));
    await page.waitForFunction(() => window.posthog.isFeatureEnabled('acme-gold') === false);
    await until('the $groupidentify of acme', async () => (await stored('$groupidentify'))
      .some((e) => e.properties.$group_key === 'acme'));
  });

  await t.test('autocapture_opt_out set by an admin: the next page load sends no $autocapture', async () => {
    const r = await http('/api/projects/1/', { method: 'PATCH', body: { autocapture_opt_out: true } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    marker = 'second';
    await page.goto(`${APP}/?again`);
    await page.waitForFunction(() => window.__phLoaded === true);
    await page.waitForFunction((tok) => window._POSTHOG_REMOTE_CONFIG?.[tok]?.config?.autocapture_opt_out === true, phc);
    await page.click('#buy');
    // a marker event after the click: once it is stored, so would the click be
    await page.evaluate(() => window.posthog.capture('after-click'));
    await until('the marker event', async () => (await stored('after-click')).length > 0);
    const clicks = (await stored('$autocapture')).filter((e) => String(e.properties.$elements_chain || '').includes('second'));
    assert.deepEqual(clicks, []);
  });

  await t.test('no script or CORS errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

test.after(async () => {
  if (context) await context.close().catch(() => {});
  if (server) {
    server.kill('SIGTERM');
    const code = await new Promise((ok) => (server.exitCode !== null ? ok(server.exitCode) : server.on('exit', (c) => ok(c))));
    assert.equal(code, 0, 'keyward serve exits 0 on SIGTERM');
  }
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});
