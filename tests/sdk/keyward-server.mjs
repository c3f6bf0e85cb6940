// keyward-server.mjs — what the SDK tests share: a fresh SQLite database made
// by `keyward init`, a real `keyward serve` on a free loopback port, and a
// small JSON client for setting things up through the API.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export async function startKeyward(bin, { email = 'sdk@example.com', org = 'Acme', project = 'Web' } = {}) {
  assert.ok(bin && existsSync(bin), 'set KEYWARD_BIN to the keyward binary');
  const work = mkdtempSync(join(tmpdir(), 'kw-sdk-'));
  const db = join(work, 'kw.db');
  const initOut = execFileSync(bin, ['init', '--email', email, '--org', org, '--project', project, '--db', db], { encoding: 'utf8' });
  const phx = initOut.match(/phx_[0-9A-Za-z]+/g)?.pop();
  const phc = initOut.match(/phc_[0-9A-Za-z]+/g)?.pop();
  assert.ok(phx && phc, `keyward init printed a phx_ key and a phc_ token: ${initOut}`);
  const server = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--threads', '2'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const host = await new Promise((ok, fail) => {
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
    const r = await fetch(host + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
  }

  // SIGTERM; resolves with the exit code, then removes the database.
  async function stop() {
    server.kill('SIGTERM');
    const code = await new Promise((r) => (server.exitCode !== null ? r(server.exitCode) : server.once('exit', (c) => r(c))));
    rmSync(work, { recursive: true, force: true });
    return code;
  }

  return { host, phx, phc, db, work, server, http, stop };
}
