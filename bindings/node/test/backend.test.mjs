// Which engine backend serves the suite: TOKENWELL_BACKEND (set by
// `make test-native` / `make test-wasm`) must be what actually runs, so the
// wasm run of the whole suite cannot silently test the native module.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineBackend, TokenCache } from '../index.js';

const index = fileURLToPath(new URL('../index.js', import.meta.url));
const pkgDir = path.dirname(index);

/** A copy of the package as npm installs it without a platform package: no native module anywhere. */
function packageWithoutNative() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-no-native-'));
  for (const entry of ['package.json', 'index.js', 'lib', 'wasm']) {
    fs.cpSync(path.join(pkgDir, entry), path.join(dir, entry), { recursive: true });
  }
  return dir;
}

test('the backend TOKENWELL_BACKEND asks for is the one in use', () => {
  const wanted = process.env.TOKENWELL_BACKEND;
  if (wanted === 'native' || wanted === 'wasm') assert.equal(engineBackend(), wanted);
  else assert.ok(['native', 'wasm'].includes(engineBackend()));
});

function inChild(env, code) {
  const run = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr };
}

test('both backends answer the same poll, byte for byte', () => {
  const code = `
    const { TokenCache, engineBackend } = require(${JSON.stringify(index)});
    const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecret: 's p+ce' }, 7n);
    const poll = cache.poll(1700000000000);
    const id = poll.request.fetchId;
    const done = cache.handleResponse(id, 200, [['content-type', 'application/json']], '{"access_token":"x","expires_in":"60"}', 1700000000001);
    console.log(JSON.stringify({ backend: engineBackend(), request: { ...poll.request }, done, wake: cache.nextWakeup(), events: cache.drainEvents() }));`;
  const native = inChild({ TOKENWELL_BACKEND: 'native' }, code);
  const wasm = inChild({ TOKENWELL_BACKEND: 'wasm' }, code);
  assert.equal(native.status, 0, native.stderr);
  assert.equal(wasm.status, 0, wasm.stderr);
  const a = JSON.parse(native.stdout);
  const b = JSON.parse(wasm.stdout);
  assert.equal(a.backend, 'native');
  assert.equal(b.backend, 'wasm');
  delete a.backend;
  delete b.backend;
  assert.deepEqual(b, a);
});

test('an unknown TOKENWELL_BACKEND is refused by name', () => {
  const run = inChild({ TOKENWELL_BACKEND: 'jvm' }, `require(${JSON.stringify(index)}).engineBackend()`);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /TOKENWELL_BACKEND must be one of auto, native, wasm/);
});

test('without a native module: TOKENWELL_BACKEND=native says why, auto serves wasm', (t) => {
  const dir = packageWithoutNative();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const copy = JSON.stringify(path.join(dir, 'index.js'));
  const refused = inChild({ TOKENWELL_BACKEND: 'native' }, `require(${copy}).engineBackend()`);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /no native module loads/);
  assert.match(refused.stderr, /@tokenwell\/linux-\w+-\w+ is not installed/);
  const quiet = inChild({ TOKENWELL_BACKEND: '' }, `console.log(require(${copy}).engineBackend())`);
  assert.equal(quiet.status, 0, quiet.stderr);
  assert.equal(quiet.stdout, 'wasm');
  assert.equal(quiet.stderr, '', 'a platform without a native module is the normal case: no warning');
  const broken = inChild(
    { TOKENWELL_BACKEND: '', TOKENWELL_NATIVE_PATH: path.join(dir, 'package.json') },
    `console.log(require(${copy}).engineBackend())`,
  );
  assert.equal(broken.status, 0, broken.stderr);
  assert.equal(broken.stdout, 'wasm');
  assert.match(broken.stderr, /using the wasm engine/, 'a native module that exists but does not load is worth a warning');
});

test('a bad argument to the engine is an exception, and the engine keeps working after it', () => {
  const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecret: 's' }, 1);
  assert.throws(() => cache.poll(-1), /now must be/);
  assert.throws(() => cache.handleResponse(1, 200, [], '', Number.NaN), /now must be/);
  assert.equal(cache.poll(1_700_000_000_000).result, 'send');
});
