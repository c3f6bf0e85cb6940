// console.test.mjs — the web console in a real browser.
//
// Starts a real `keyward serve` ($KEYWARD_BIN) on a fresh database, drives
// Debian's /usr/bin/chromium (headless, fresh profile) with playwright-core
// and goes through what a person does: sign in, create a personal key and
// use it over HTTP, roll it (the old value stops, the new works), see the
// audit entry, manage project secret keys and the project token, invite a
// second person, sign out; switch organization and project in the header,
// create / rename / delete a project (typed confirmation), change members'
// levels and see the server's refusals.  Along the way it checks the cookie flags, the
// CSRF refusal, and that the second person cannot see the first one's
// keys.  A screenshot of every page goes to $KEYWARD_SCREENSHOTS (default
// tests/browser/screenshots/) to be looked at.  Loopback only.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import test from 'node:test';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BIN = process.env.KEYWARD_BIN || [join(ROOT, 'build', 'keyward')].find(existsSync);
const SHOTS = process.env.KEYWARD_SCREENSHOTS || join(HERE, 'screenshots');
const CHROMIUM = process.env.KEYWARD_CHROMIUM || '/usr/bin/chromium';
const ALICE = { email: 'alice@example.com', password: 'alice-very-secret-pw' };
const BOB = { email: 'bob@example.com', password: 'bob-also-secret-pw', name: 'Bob' };
const CSRF_DETAIL = 'CSRF Failed: CSRF token missing or incorrect.';

// playwright-core comes from npm (package-lock.json); a fresh checkout
// installs it on first run.
if (!existsSync(join(HERE, 'node_modules', 'playwright-core'))) {
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, stdio: 'inherit' });
}
const { chromium } = await import('playwright-core');

assert.ok(BIN && existsSync(BIN), 'set KEYWARD_BIN to the keyward binary');
assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (scripts/deps installs Debian's chromium)`);
mkdirSync(SHOTS, { recursive: true });

const work = mkdtempSync(join(tmpdir(), 'kw-browser-'));
const db = join(work, 'kw.db');
execFileSync(BIN, ['init', '--email', ALICE.email, '--org', 'Acme Inc', '--project', 'Storefront', '--db', db]);
execFileSync(BIN, ['user', 'set-password', ALICE.email, '--db', db], { input: `${ALICE.password}\n` });

// The server, on a free loopback port read from its first line.
// --webhook-allow-private: the webhooks page's test sends to a receiver on loopback.
const server = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--threads', '2',
  '--webhook-allow-private', '--webhook-retry-base', '0.2'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((ok, fail) => {
  let out = '';
  const timer = setTimeout(() => fail(new Error('keyward serve did not start')), 10000);
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) { clearTimeout(timer); ok(m[1]); }
  });
  server.on('exit', (code) => fail(new Error(`keyward serve exited (${code})`)));
});

const profile = mkdtempSync(join(tmpdir(), 'kw-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1360, height: 860 },
  deviceScaleFactor: 1,
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(15000);
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));

// Every page must fit a 1280 px wide window (a laptop) as well as a wider
// one: nothing scrolls sideways, and no table or button sticks out of the
// panel or dialog that holds it.
const FIT_WIDTHS = [1280, 1440];
async function assertFits(name) {
  const size = page.viewportSize();
  try {
  for (const width of FIT_WIDTHS) {
    await page.setViewportSize({ width, height: size.height });
    await page.waitForTimeout(60);
    const bad = await page.evaluate(() => {
      const out = [];
      const over = document.documentElement.scrollWidth - window.innerWidth;
      if (over > 0) out.push(`the page scrolls sideways by ${over}px`);
      for (const el of document.querySelectorAll('.panel table, .panel .btn, dialog table, dialog .btn')) {
        if (!el.getClientRects().length) continue;  // not shown
        const box = el.closest('.panel, dialog').getBoundingClientRect();
        const r = el.getBoundingClientRect();
        const scroller = el.closest('.table-scroll, .scope-grid, .dialog-body');
        if (scroller && box.right >= scroller.getBoundingClientRect().right - 1) continue;
        if (r.right > box.right + 1 || r.left < box.left - 1) {
          const what = el.tagName === 'TABLE' ? 'a table' : `the button "${el.textContent.trim()}"`;
          out.push(`${what} spans ${Math.round(r.left)}-${Math.round(r.right)}px, outside its box ` +
                   `(${Math.round(box.left)}-${Math.round(box.right)}px)`);
        }
      }
      return out;
    });
    if (width !== size.width) await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
    assert.deepEqual(bad, [], `${name} at ${width} px`);
  }
  } finally {
    await page.setViewportSize(size);
  }
}

async function shot(name) {
  await page.waitForTimeout(150);  // let focus rings and transitions settle
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await assertFits(name);
}

async function http(path, { key, cookie, method = 'GET', body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (cookie) h.Cookie = `kw_session=${cookie}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
}

async function sessionCookie() {
  return (await context.cookies(base)).find((c) => c.name === 'kw_session');
}

/* Reads the value from the "shown once" dialog and closes it. */
async function takeShownOnce() {
  const dlg = page.getByRole('dialog');
  await assert.doesNotReject(dlg.getByText("You won't be able to see this key again.").waitFor());
  const value = await dlg.getByRole('textbox').inputValue();
  await dlg.getByRole('button', { name: 'Copy' }).click();
  return value;
}

async function closeShownOnce() {
  await page.getByRole('dialog').getByRole('button', { name: "I've stored it" }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

let aliceCookie, keyValue, rolledValue, keyId;

test('console in Chromium', { timeout: 240000 }, async (t) => {
  await t.test('sign-in page; a wrong password is refused', async () => {
    await page.goto(base + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot('01-sign-in');
    await page.getByLabel('Email').fill(ALICE.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('Invalid email or password.').waitFor();
    await shot('02-sign-in-error');
  });

  await t.test('signs in; the cookie is HttpOnly and SameSite=Lax', async () => {
    await page.getByLabel('Password').fill(ALICE.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Personal API keys' }).waitFor();
    const c = await sessionCookie();
    assert.ok(c, 'kw_session cookie set');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Lax');
    assert.equal(c.path, '/');
    assert.equal(await page.evaluate(() => document.cookie.includes('kw_session')), false);
    aliceCookie = c.value;
    // the header's switcher names the organization and the project
    const orgSwitch = page.getByRole('combobox', { name: 'Organization' });
    assert.equal(await orgSwitch.locator('option:checked').textContent(), 'Acme Inc');
    assert.equal(await page.getByRole('combobox', { name: 'Project' }).locator('option:checked').textContent(), 'Storefront');
    await shot('03-personal-keys');
  });

  await t.test('creates a key, shown once, and uses it over HTTP', async () => {
    await page.getByRole('button', { name: '+ New key' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Label').fill('CI deploy');
    await dlg.getByLabel('user: read').check();
    await dlg.getByLabel('personal_api_key: write').check();
    assert.equal(await dlg.getByLabel('personal_api_key: read').isChecked(), true, 'write implies read');
    await shot('04-create-key');
    await dlg.getByRole('button', { name: 'Create key' }).click();
    keyValue = await takeShownOnce();
    assert.match(keyValue, /^phx_[0-9A-Za-z]{54}$/);
    await shot('05-key-shown-once');
    await closeShownOnce();
    const row = page.locator('tr', { hasText: 'CI deploy' });
    await row.waitFor();
    assert.match(await row.textContent(), /phx_\.\.\./);
    keyId = await row.getAttribute('data-key-id');
    const me = await http('/api/users/@me/', { key: keyValue });
    assert.equal(me.status, 200);
    assert.equal(me.body.email, ALICE.email);
  });

  await t.test('rolls the key: the old value fails, the new one works', async () => {
    await page.getByRole('button', { name: 'Roll CI deploy' }).click();
    await page.getByRole('dialog').getByText('stops working immediately').waitFor();
    await shot('06-roll-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Roll key' }).click();
    rolledValue = await takeShownOnce();
    await closeShownOnce();
    assert.notEqual(rolledValue, keyValue);
    assert.equal((await http('/api/users/@me/', { key: keyValue })).status, 401);
    assert.equal((await http('/api/users/@me/', { key: rolledValue })).status, 200);
    await page.locator('tr', { hasText: 'CI deploy' }).getByText('just now').last().waitFor();
  });

  await t.test('writes without the CSRF token are refused', async () => {
    const fromPage = await page.evaluate(async () => {
      const r = await fetch('/api/personal_api_keys/', {
        method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ label: 'csrf', scopes: ['*'] }),
      });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(fromPage.status, 403);
    assert.deepEqual(fromPage.body, { type: 'authentication_error', code: 'permission_denied', detail: CSRF_DETAIL, attr: null });
    const fromNode = await http(`/api/personal_api_keys/${keyId}/`, { cookie: aliceCookie, method: 'DELETE' });
    assert.equal(fromNode.status, 403);
    assert.equal(fromNode.body.detail, CSRF_DETAIL);
    assert.equal((await http('/api/users/@me/', { key: rolledValue })).status, 200);
  });

  await t.test('the activity log shows the roll', async () => {
    await page.getByRole('link', { name: 'Activity log' }).click();
    await page.getByRole('heading', { name: 'Activity log' }).waitFor();
    const rolled = page.locator('tr', { hasText: 'rolled' }).filter({ hasText: 'CI deploy' });
    await rolled.first().waitFor();
    await page.getByLabel('Show').selectOption('PersonalAPIKey');
    await rolled.first().waitFor();
    assert.ok(await page.locator('tr', { hasText: 'created' }).filter({ hasText: 'CI deploy' }).count() >= 1);
    await shot('07-activity');
  });

  await t.test('project secret keys: limited scopes, shown once', async () => {
    await page.getByRole('link', { name: 'Secret keys' }).click();
    await page.getByRole('heading', { name: 'Project secret keys' }).waitFor();
    await page.getByRole('button', { name: '+ New key' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Label').fill('flag poller');
    assert.equal(await dlg.getByRole('checkbox').count(), 3);
    await dlg.getByLabel('feature_flag:read').check();
    await shot('08-create-secret-key');
    await dlg.getByRole('button', { name: 'Create key' }).click();
    const psk = await takeShownOnce();
    assert.match(psk, /^phs_/);
    await closeShownOnce();
    await page.locator('tr', { hasText: 'flag poller' }).waitFor();
    const defs = await fetch(`${base}/api/projects/@current/feature_flags/local_evaluation/`, { headers: { Authorization: `Bearer ${psk}` } });
    assert.equal(defs.status, 200);
    await shot('09-secret-keys');
  });

  await t.test('the key report: scopes used, suggestions, flags, rotation threshold', async () => {
    // Two more personal keys: an idle all-access one that expires in 5 days,
    // and one whose expiry is already past.
    const csrf = (await http('/api/session/', { cookie: aliceCookie })).body.csrf_token;
    const post = (body) => http('/api/personal_api_keys/', { cookie: aliceCookie, method: 'POST', body, headers: { 'X-CSRFToken': csrf } });
    const idle = await post({ label: 'nightly export', scopes: ['*'], expires_at: new Date(Date.now() + 5 * 86400000).toISOString() });
    assert.equal(idle.status, 201);
    const old = await post({ label: 'old deploy', scopes: ['feature_flag:read'] });
    assert.equal(old.status, 201);
    const expire = await http(`/api/personal_api_keys/${old.body.id}/`, {
      cookie: aliceCookie, method: 'PATCH', body: { expires_at: new Date(Date.now() - 60000).toISOString() }, headers: { 'X-CSRFToken': csrf },
    });
    assert.equal(expire.status, 200);

    await page.getByRole('link', { name: 'Key report' }).click();
    await page.getByRole('heading', { name: 'Key report', level: 1 }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Key report' }).getAttribute('aria-current'), 'page');
    // keyboard: focus starts on the page title; Tab reaches the threshold
    // (the title is focused once the page has loaded its data, after the
    // heading appears: wait for that, or Tab starts from the clicked link)
    await page.waitForFunction(() => document.activeElement && document.activeElement.classList.contains('page-title'));
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.labels[0].textContent), 'Rotation threshold');
    const proj = page.getByRole('region', { name: 'Key report: project Storefront' });
    const mine = page.getByRole('region', { name: 'Key report: your personal API keys' });
    await proj.waitFor();
    await mine.waitFor();
    // real table semantics: column headers, and each key names its row
    assert.deepEqual(await proj.getByRole('columnheader').allTextContents(),
      ['Key', 'Kind', 'Age', 'Last used', 'Expires', 'Flags', 'Scopes: granted / used', 'Suggestion']);
    const ci = proj.getByRole('row', { name: /CI deploy/ });
    await ci.getByRole('rowheader').waitFor();
    const cells = ci.getByRole('cell');
    assert.equal(await cells.nth(0).textContent(), 'Personal');
    assert.match(await cells.nth(1).textContent(), /since rolled/);
    assert.match(await cells.nth(2).textContent(), /just now|minute/);
    assert.equal(await cells.nth(4).textContent(), 'OK');
    // granted user:read + personal_api_key:write; the key only read the user
    const used = ci.locator('.scope-pair dd').nth(1);
    assert.equal(await used.textContent(), 'user:read');
    assert.match(await ci.locator('.scope-pair dd').nth(0).textContent(), /personal_api_key:write/);
    const suggest = cells.nth(6);
    assert.match(await suggest.textContent(), /^Narrow.*Least scopes:user:read$/);
    // the project secret key used exactly what it holds
    const psk = proj.getByRole('row', { name: /flag poller/ });
    assert.equal(await psk.getByRole('cell').nth(0).textContent(), 'Project secret');
    assert.equal(await psk.locator('.scope-pair dd').nth(1).textContent(), 'feature_flag:read');
    assert.match(await psk.getByRole('cell').nth(6).textContent(), /^Keep/);
    // the idle key: never used, expiring soon, all access → revoke; listed first
    const idleRow = mine.getByRole('row', { name: /nightly export/ });
    assert.match(await idleRow.getByRole('cell').nth(4).textContent(), /Expires soon.*Never used/);
    assert.match(await idleRow.getByRole('cell').nth(6).textContent(), /^Revoke/);
    const expiredRow = mine.getByRole('row', { name: /old deploy/ });
    assert.match(await expiredRow.getByRole('cell').nth(4).textContent(), /^Expired/);
    assert.deepEqual((await mine.getByRole('rowheader').allTextContents()).map((t) => t.split('phx_')[0]),
      ['old deploy', 'nightly export', 'keyward init', 'CI deploy']);  // most in need of attention first
    assert.match(await page.locator('.stats').textContent(), /^5Keys/);

    // It looks like the rest of the console: styled badges, nothing spilling
    // out of the page or its panels at this width.
    await shot('10-key-report');
    const look = await page.evaluate(() => {
      const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor;
      const panel = document.querySelector('.report-section').getBoundingClientRect();
      const table = document.querySelector('table.report').getBoundingClientRect();
      return {
        pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
        tableInside: table.width <= panel.width + 1, tableWidth: table.width, panelWidth: panel.width,
        flagBg: bg('.flag.bad'), okBg: bg('.flag.good'), chipBg: bg('.scope-pair .chip'),
        font: getComputedStyle(document.body).fontFamily,
      };
    });
    assert.ok(look.pageOverflow <= 0, `the page scrolls sideways by ${look.pageOverflow}px`);
    assert.ok(look.tableInside, `the report table (${look.tableWidth}px) is wider than its panel (${look.panelWidth}px)`);
    for (const c of [look.flagBg, look.okBg, look.chipBg]) assert.notEqual(c, 'rgba(0, 0, 0, 0)');
    assert.match(look.font, /system-ui/);

    // the rotation threshold: validated, then applied and kept in the URL
    const days = page.getByLabel('Rotation threshold');
    await days.fill('0');
    await days.press('Enter');
    await page.getByRole('alert').getByText('between 1 and 3650').waitFor();
    assert.equal(await days.getAttribute('aria-invalid'), 'true');
    await days.fill('30');
    await days.press('Enter');
    await page.getByText('Not rotated: not created or rolled in 30 days.').waitFor();
    assert.match(page.url(), /#\/project\/\d+\/report\?rotation_days=30$/);
    assert.equal(await days.getAttribute('aria-invalid'), null);
    await page.reload();
    await page.getByText('Not rotated: not created or rolled in 30 days.').waitFor();
    assert.equal(await page.getByLabel('Rotation threshold').inputValue(), '30');
  });

  await t.test('project token: reveal, reset with confirmation', async () => {
    await page.getByRole('link', { name: 'Project token' }).click();
    const input = page.getByLabel('Token');
    await input.waitFor();
    assert.match(await input.inputValue(), /^phc_•+$/);
    await page.getByRole('button', { name: 'Reveal' }).click();
    const before = await page.getByLabel('Token').inputValue();
    assert.match(before, /^phc_[0-9A-Za-z]{54}$/);
    await shot('11-token');
    await page.getByRole('button', { name: 'Reset token…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Reset token' }).click();
    await page.getByText('The project token was reset.').waitFor();
    const after = await page.getByLabel('Token').inputValue();
    assert.match(after, /^phc_/);
    assert.notEqual(after, before);
  });

  await t.test('project token page: the browser SDK switches save at once', async () => {
    const autocapture = page.getByLabel(/^Autocapture/);
    assert.equal(await autocapture.isChecked(), true);
    await autocapture.uncheck();
    await page.getByText('Autocapture off.').waitFor();
    const pid = page.url().match(/#\/project\/(\d+)/)[1];
    const got = await http(`/api/projects/${pid}/`, { cookie: aliceCookie });
    assert.equal(got.body.autocapture_opt_out, true);
    const cfg = await http(`/array/${got.body.api_token}/config`);
    assert.equal(cfg.body.autocapture_opt_out, true);
    await autocapture.check();
    await page.getByText('Autocapture on.').waitFor();
    assert.equal((await http(`/api/projects/${pid}/`, { cookie: aliceCookie })).body.autocapture_opt_out, false);
    await shot('11b-token-sdk');
  });

  // Writes as Alice straight over HTTP (the session cookie and its CSRF
  // token), to set up what a page then shows.
  const asAlice = async (method, path, body) => {
    const csrf = (await http('/api/session/', { cookie: aliceCookie })).body.csrf_token;
    return http(path, { cookie: aliceCookie, method, body, headers: { 'X-CSRFToken': csrf } });
  };
  const selected = (name) => page.getByRole('combobox', { name }).locator('option:checked').textContent();
  let storefrontId;

  await t.test('the switcher: another organization shows its own project and keys', async () => {
    storefrontId = page.url().match(/#\/project\/(\d+)/)[1];
    const org = await asAlice('POST', '/api/organizations/', { name: 'Globex' });
    assert.equal(org.status, 201);
    const proj = await asAlice('POST', `/api/organizations/${org.body.id}/projects/`, { name: 'Globex web' });
    assert.equal(proj.status, 201);
    await page.goto(`${base}/#/project/${storefrontId}/secret-keys`);
    await page.reload();  // the console reads the user's organizations when it loads
    await page.locator('tr', { hasText: 'flag poller' }).waitFor();
    assert.deepEqual(await page.getByRole('combobox', { name: 'Organization' }).locator('option').allTextContents(), ['Acme Inc', 'Globex']);
    await page.getByRole('combobox', { name: 'Organization' }).selectOption({ label: 'Globex' });
    await page.waitForURL(new RegExp(`#/project/${proj.body.id}/secret-keys$`));
    await page.getByText('No project secret keys yet').waitFor();
    assert.equal(await page.locator('tr', { hasText: 'flag poller' }).count(), 0);
    assert.equal(await selected('Project'), 'Globex web');
    assert.deepEqual(await page.getByRole('combobox', { name: 'Project' }).locator('option').allTextContents(), ['Globex web']);
    await page.getByRole('heading', { name: 'Project · Globex web' }).waitFor();
    await page.getByRole('heading', { name: 'Organization · Globex' }).waitFor();
    await shot('17-switcher-other-org');
    // back: the organization's first project, its keys
    await page.getByRole('combobox', { name: 'Organization' }).selectOption({ label: 'Acme Inc' });
    await page.waitForURL(new RegExp(`#/project/${storefrontId}/secret-keys$`));
    await page.locator('tr', { hasText: 'flag poller' }).waitFor();
  });

  let staging;
  await t.test('projects: create one, switch to it, rename it', async () => {
    await page.getByRole('link', { name: 'Projects', exact: true }).click();
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await page.locator('tr', { hasText: 'Storefront' }).waitFor();
    await page.getByRole('button', { name: '+ New project' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Name').fill('Staging');
    await shot('18-new-project');
    await dlg.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('status').getByText('Project "Staging" was created').waitFor();
    const row = page.locator('tr', { hasText: 'Staging' });
    await row.waitFor();
    staging = { id: await row.getAttribute('data-project-id') };
    assert.match(await row.textContent(), /phc_/);
    await shot('19-projects');
    // the switcher lists it; choosing it opens its pages
    assert.deepEqual(await page.getByRole('combobox', { name: 'Project' }).locator('option').allTextContents(), ['Storefront', 'Staging']);
    await page.getByRole('combobox', { name: 'Project' }).selectOption({ label: 'Staging' });
    await page.waitForURL(new RegExp(`#/project/${staging.id}/secret-keys$`));
    await page.getByText('No project secret keys yet').waitFor();
    // its own keys, which work until the project is deleted
    const psk = await asAlice('POST', `/api/projects/${staging.id}/project_secret_api_keys/`, { label: 'staging poller', scopes: ['feature_flag:read'] });
    assert.equal(psk.status, 201);
    staging.phs = psk.body.value;
    staging.phc = (await http(`/api/projects/${staging.id}/`, { cookie: aliceCookie })).body.api_token;
    assert.equal((await http('/flags/definitions', { key: staging.phs })).status, 200);
    assert.equal((await http('/flags/?v=2', { method: 'POST', body: { token: staging.phc, distinct_id: 'd1' } })).status, 200);
    // rename: a blank name is the server's refusal, shown in the dialog
    await page.getByRole('link', { name: 'Projects', exact: true }).click();
    await page.getByRole('button', { name: 'Rename Staging' }).click();
    const ren = page.getByRole('dialog');
    await ren.getByLabel('New name').fill('   ');
    await ren.getByRole('button', { name: 'Rename' }).click();
    await ren.getByRole('alert').getByText('name: This field may not be blank.').waitFor();
    await ren.getByLabel('New name').fill('Staging EU');
    await ren.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('status').getByText('Project "Staging" is now "Staging EU".').waitFor();
    await page.locator('tr', { hasText: 'Staging EU' }).waitFor();
    assert.deepEqual(await page.getByRole('combobox', { name: 'Project' }).locator('option').allTextContents(), ['Storefront', 'Staging EU']);
    assert.equal((await http(`/api/projects/${staging.id}/`, { cookie: aliceCookie })).body.name, 'Staging EU');
  });

  await t.test('projects: delete with a typed confirmation revokes its keys and token', async () => {
    await page.getByRole('button', { name: 'Delete Staging EU' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByText('1 project secret key (phs_) and its project token (phc_)').waitFor();
    const del = dlg.getByRole('button', { name: 'Delete project' });
    const typed = dlg.getByLabel('Type the project name to confirm');
    assert.equal(await del.isDisabled(), true, 'disabled before anything is typed');
    for (const wrong of ['Staging', 'staging eu', 'Staging EU ', 'Storefront']) {
      await typed.fill(wrong);
      assert.equal(await del.isDisabled(), true, `disabled with "${wrong}"`);
    }
    await typed.fill('Staging EU');
    assert.equal(await del.isDisabled(), false);
    await shot('20-delete-project');
    // still working until the click
    assert.equal((await http('/flags/definitions', { key: staging.phs })).status, 200);
    await del.click();
    await page.getByRole('status').getByText('Project "Staging EU" was deleted: its 1 project secret key (phs_) and its project token were revoked').waitFor();
    await page.locator('tr', { hasText: 'Staging EU' }).waitFor({ state: 'detached' });
    assert.deepEqual(await page.getByRole('combobox', { name: 'Project' }).locator('option').allTextContents(), ['Storefront']);
    assert.equal((await http('/flags/definitions', { key: staging.phs })).status, 401);
    assert.equal((await http('/flags/?v=2', { method: 'POST', body: { token: staging.phc, distinct_id: 'd1' } })).status, 401);
    assert.equal((await http(`/api/projects/${staging.id}/`, { cookie: aliceCookie })).status, 404);
    await shot('21-project-deleted');
  });

  await t.test('members: change a level; the server\'s refusals are shown', async () => {
    // Carol joins Acme Inc as a member (an invitation accepted over HTTP).
    const acme = (await http('/api/users/@me/', { cookie: aliceCookie })).body.organizations.find((o) => o.name === 'Acme Inc');
    const inv = await asAlice('POST', `/api/organizations/${acme.id}/invites/`, { email: 'carol@example.com', level: 1 });
    assert.equal(inv.status, 201);
    const token = inv.body.link.split('/').pop();
    const joined = await http('/api/invites/accept/', { method: 'POST', body: { token, password: 'carol-secret-pw-1', first_name: 'Carol' } });
    assert.equal(joined.status, 201);
    await page.getByRole('link', { name: 'Members', exact: true }).click();
    await page.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
    const carol = page.getByRole('combobox', { name: 'Level of carol@example.com' });
    const mine = page.getByRole('combobox', { name: `Level of ${ALICE.email}` });
    assert.equal(await selected(`Level of ${ALICE.email}`), 'Owner');
    assert.equal(await selected('Level of carol@example.com'), 'Member');
    await page.locator('tr', { hasText: ALICE.email }).getByText('(you)').waitFor();
    await shot('22-members');
    await carol.selectOption({ label: 'Admin' });
    await page.getByText('carol@example.com is now an admin.').waitFor();
    const levels = async () => Object.fromEntries((await http(`/api/organizations/${acme.id}/members/`, { cookie: aliceCookie })).body.results
      .map((m) => [m.user.email, m.level]));
    assert.deepEqual(await levels(), { [ALICE.email]: 15, 'carol@example.com': 8 });
    // the last owner can be neither demoted nor removed: the server's words
    await mine.selectOption({ label: 'Member' });
    const err = page.locator('.members-error').getByRole('alert');
    await err.getByText('level: An organization must keep an owner: the last owner cannot be demoted.').waitFor();
    assert.equal(await selected(`Level of ${ALICE.email}`), 'Owner', 'the level is unchanged');
    await shot('23-members-refused');
    await page.getByRole('button', { name: `Leave ${ALICE.email}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Leave' }).click();
    await err.getByText('level: An organization must keep an owner: the last owner cannot be removed.').waitFor();
    assert.deepEqual(await levels(), { [ALICE.email]: 15, 'carol@example.com': 8 });
    // Behind this page's back Carol becomes an owner and makes Alice an
    // admin: the page still offers Carol's select, the server refuses to let
    // an admin act on an owner, and the page shows why.
    const carolCookie = joined.headers.get('set-cookie').match(/kw_session=([^;]+)/)[1];
    const asCarol = (method, path, body) => http(path, { cookie: carolCookie, method, body, headers: { 'X-CSRFToken': joined.body.csrf_token } });
    const carolUuid = joined.body.user.uuid;
    const aliceUuid = (await http('/api/users/@me/', { cookie: aliceCookie })).body.uuid;
    assert.equal((await asAlice('PATCH', `/api/organizations/${acme.id}/members/${carolUuid}/`, { level: 15 })).status, 200);
    assert.equal((await asCarol('PATCH', `/api/organizations/${acme.id}/members/${aliceUuid}/`, { level: 8 })).status, 200);
    await carol.selectOption({ label: 'Member' });
    await err.getByText('level: You cannot change the account of someone above your own level.').waitFor();
    assert.deepEqual(await levels(), { [ALICE.email]: 8, 'carol@example.com': 15 });
    // the page now shows the levels as they are: Carol an owner, out of an
    // admin's reach (no select, no Remove); Alice an admin, offered no Owner
    await page.locator('tr', { hasText: 'carol@example.com' }).locator('.level').getByText('Owner').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Remove carol@example.com' }).count(), 0);
    assert.equal(await selected(`Level of ${ALICE.email}`), 'Admin');
    assert.equal(await mine.locator('option', { hasText: 'Owner' }).isDisabled(), true);
    await shot('23b-members-above-own-level');
    // Carol gives the ownership back; the page, reloaded, shows it
    assert.equal((await asCarol('PATCH', `/api/organizations/${acme.id}/members/${aliceUuid}/`, { level: 15 })).status, 200);
    await page.reload();
    await page.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
    assert.equal(await selected('Level of carol@example.com'), 'Owner');
    // removing Carol (an owner, not the last): her row goes, and so does her membership
    await page.getByRole('button', { name: 'Remove carol@example.com' }).click();
    await page.getByRole('dialog').getByText('Project secret keys they created keep working.').waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove member' }).click();
    await page.getByText('carol@example.com was removed from Acme Inc.').waitFor();
    await page.locator('tr', { hasText: 'carol@example.com' }).waitFor({ state: 'detached' });
    assert.equal(await page.locator('.members-error .error').textContent(), '');
    assert.deepEqual(await levels(), { [ALICE.email]: 15 });
  });

  await t.test('webhooks: create (secret once), a signed test delivery and its log, off, delete', async () => {
    // A receiver on loopback keeps what keyward sends.
    const got = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { got.push({ headers: req.headers, body }); res.writeHead(204).end(); });
    });
    await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
    const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
    try {
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
      await page.getByText('No webhooks yet').waitFor();
      await page.getByRole('button', { name: '+ New webhook' }).click();
      const dlg = page.getByRole('dialog');
      // the server's refusal is shown in the dialog
      await dlg.getByLabel('Endpoint URL').fill('ftp://example.com/x');
      await dlg.getByRole('button', { name: 'Create webhook' }).click();
      await dlg.getByRole('alert').filter({ hasText: 'url' }).waitFor();
      await dlg.getByLabel('Endpoint URL').fill(hookUrl);
      await dlg.getByRole('checkbox', { name: /webhook\.test/ }).check();
      await dlg.getByRole('checkbox', { name: /key\.revoked/ }).check();
      await shot('24-webhook-new');
      await dlg.getByRole('button', { name: 'Create webhook' }).click();
      const secret = await takeShownOnce();
      assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
      await closeShownOnce();
      const row = page.locator('tr', { hasText: hookUrl });
      await row.getByText('No deliveries yet').waitFor();
      assert.equal(await page.getByText(secret).count(), 0, 'the secret is not on the page');
      // a test event: it arrives signed, and the row and the log show it
      await row.getByRole('button', { name: `Send a test event to ${hookUrl}` }).click();
      for (let i = 0; i < 100 && !got.length; i++) await page.waitForTimeout(100);
      assert.equal(got.length, 1, 'the test event arrived');
      const h = got[0].headers;
      const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
        .update(`${h['webhook-id']}.${h['webhook-timestamp']}.${got[0].body}`).digest('base64');
      assert.ok(h['webhook-signature'].split(' ').includes(`v1,${expected}`), 'signed with the secret shown');
      assert.equal(JSON.parse(got[0].body).type, 'webhook.test');
      await page.reload();
      await row.getByText('delivered (HTTP 204)').waitFor();
      await row.getByRole('button', { name: `Delivery log of ${hookUrl}` }).click();
      await page.getByRole('dialog').locator('tr', { hasText: 'webhook.test' }).getByText('delivered (HTTP 204)').waitFor();
      await shot('25-webhook-log');
      await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
      // the events it takes
      await row.getByRole('button', { name: `Events of ${hookUrl}` }).click();
      await page.getByRole('dialog').getByRole('checkbox', { name: /key\.rate_limited/ }).check();
      await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
      await row.getByText('key.rate_limited').waitFor();
      // off: the server says so
      const acme = (await http('/api/users/@me/', { cookie: aliceCookie })).body.organizations.find((o) => o.name === 'Acme Inc');
      const hooks = async () => (await http(`/api/organizations/${acme.id}/webhooks/`, { cookie: aliceCookie })).body.results;
      await row.getByRole('checkbox', { name: `Send events to ${hookUrl}` }).uncheck();
      await page.getByText('Webhook off').waitFor();
      assert.equal((await hooks())[0].enabled, false);
      assert.deepEqual((await hooks())[0].events.sort(), ['key.rate_limited', 'key.revoked', 'webhook.test']);
      await shot('26-webhooks');
      // delete, with confirmation
      await row.getByRole('button', { name: `Delete ${hookUrl}` }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Delete webhook' }).click();
      await page.getByText('No webhooks yet').waitFor();
      assert.deepEqual(await hooks(), []);
    } finally {
      receiver.close();
    }
  });

  let inviteLink;
  await t.test('invites a second person', async () => {
    await page.getByRole('link', { name: 'Invite people', exact: true }).click();
    await page.getByLabel('Email address').fill(BOB.email);
    await page.getByLabel('Role').selectOption('1');
    await page.getByRole('button', { name: 'Create invitation' }).click();
    inviteLink = await page.getByLabel('Invitation link').inputValue();
    assert.match(inviteLink, /\/invite\/[A-Za-z0-9_-]{43}$/);
    await shot('12-invite');
  });

  await t.test('deletes a key with confirmation', async () => {
    await page.getByRole('link', { name: 'Personal API keys' }).click();
    await page.getByRole('button', { name: 'Delete CI deploy' }).click();
    await page.getByRole('dialog').getByText('cannot be undone').waitFor();
    await shot('13-delete-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Delete key' }).click();
    await page.getByText('Deleted "CI deploy".').waitFor();
    // The notice can appear a moment before the list is re-rendered.
    await page.locator('tr', { hasText: 'CI deploy' }).first().waitFor({ state: 'detached' });
    assert.equal(await page.locator('tr', { hasText: 'CI deploy' }).count(), 0);
    assert.equal((await http('/api/users/@me/', { key: rolledValue })).status, 401);
  });

  await t.test('keeps a key for the isolation check, then signs out', async () => {
    const kept = await http('/api/personal_api_keys/', {
      cookie: aliceCookie, method: 'POST', body: { label: 'alice private', scopes: ['user:read'] },
      headers: { 'X-CSRFToken': (await http('/api/session/', { cookie: aliceCookie })).body.csrf_token },
    });
    assert.equal(kept.status, 201);
    keyId = kept.body.id;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await sessionCookie(), undefined);
    assert.equal((await http('/api/session/', { cookie: aliceCookie })).status, 401, 'session revoked');
  });

  await t.test('the second person joins and cannot see the first one\'s keys', async () => {
    await page.goto(inviteLink);
    await page.getByRole('heading', { name: 'Join Acme Inc on keyward' }).waitFor();
    await shot('14-accept-invite');
    await page.getByLabel('Your name').fill(BOB.name);
    await page.getByLabel('Choose a password').fill(BOB.password);
    await page.getByRole('button', { name: 'Join' }).click();
    await page.getByRole('heading', { name: 'Personal API keys' }).waitFor();
    await page.getByText('No personal API keys yet').waitFor();
    assert.equal(await page.getByText('alice private').count(), 0);
    await shot('15-second-user');
    const bobCookie = (await sessionCookie()).value;
    const theirs = await http(`/api/personal_api_keys/${keyId}/`, { cookie: bobCookie });
    assert.equal(theirs.status, 404);
    assert.deepEqual(await (await http('/api/personal_api_keys/', { cookie: bobCookie })).body, []);
    // a member sees the project's secret keys but may not create them
    await page.getByRole('link', { name: 'Secret keys' }).click();
    await page.locator('tr', { hasText: 'flag poller' }).waitFor();
    assert.equal(await page.getByRole('button', { name: '+ New key' }).count(), 0);
    // the key report: the project's key, none of the first person's, and
    // an empty personal report
    await page.getByRole('link', { name: 'Key report' }).click();
    const proj = page.getByRole('region', { name: 'Key report: project Storefront' });
    await proj.getByRole('row', { name: /flag poller/ }).waitFor();
    assert.equal(await proj.getByRole('rowheader').count(), 1);
    await page.getByText('No personal API keys', { exact: true }).waitFor();
    await shot('16-key-report-member');
    // a plain member sees the organization's projects and members, and
    // changes none of them
    await page.getByRole('link', { name: 'Projects', exact: true }).click();
    await page.locator('tr', { hasText: 'Storefront' }).waitFor();
    assert.deepEqual(await page.getByRole('combobox', { name: 'Organization' }).locator('option').allTextContents(), ['Acme Inc']);
    assert.equal(await page.getByRole('button', { name: '+ New project' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: /^(Rename|Delete) / }).count(), 0);
    await page.getByRole('link', { name: 'Members', exact: true }).click();
    await page.locator('tr', { hasText: BOB.email }).getByText('(you)').waitFor();
    assert.equal(await page.locator('tr', { hasText: ALICE.email }).locator('.level').textContent(), 'Owner');
    assert.equal(await page.getByRole('combobox', { name: /^Level of/ }).count(), 0);
    assert.equal(await page.getByRole('button', { name: /^(Remove|Leave) / }).count(), 0);
    await shot('24-members-as-member');
  });

  await t.test('no script errors on any page', () => {
    assert.deepEqual(consoleErrors.filter((e) => !/status of 40[013]/.test(e)), []);
  });
});

test.after(async () => {
  await context.close().catch(() => {});
  server.kill('SIGTERM');
  const code = await new Promise((ok) => {
    if (server.exitCode !== null) ok(server.exitCode); else server.on('exit', (c) => ok(c));
  });
  rmSync(profile, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  console.log(`screenshots: ${SHOTS}`);
  // A clean exit on SIGTERM (under ASan, also: no leaks).
  assert.equal(code, 0, 'keyward serve exits 0 on SIGTERM');
});
