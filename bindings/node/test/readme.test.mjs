// Every `js` / `ts` code block of README.md runs, as a module in its own
// process, against a scripted token server and an API on 127.0.0.1, so the
// README cannot drift from the package. TypeScript blocks are transpiled with
// the devDependency `typescript` first.
//
// The README's placeholders are mapped to loopback and temporary files:
// its token URL (http://127.0.0.1:4444/oauth2/token) to the token server,
// https://your-api to the API, its secret, CA and cache paths to files made
// here, its private key file to the conformance suite's test-only P-256 key; `tokenUrl`, `clientId` and `clientSecret`, where a block uses them
// without declaring them, are given. The environment holds CLIENT_* and
// BILLING_* variables for the `fromEnv` blocks.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { startScriptedTokenServer } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, '..');
const readme = fs.readFileSync(path.join(pkgDir, 'README.md'), 'utf8');

/** The README's code blocks in JS or TS: `{ lang, code, line }`. */
const blocks = [];
{
  const fence = /^```(js|ts|mjs|javascript|typescript)\s*\n([\s\S]*?)^```/gm;
  for (let m; (m = fence.exec(readme)) !== null; ) {
    blocks.push({ lang: m[1].startsWith('t') ? 'ts' : 'js', code: m[2], line: readme.slice(0, m.index).split('\n').length });
  }
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-readme-'));
let tokenServer;
let api;
const apiCalls = [];

before(async () => {
  // The package and its dependency, as an installed project sees them.
  fs.mkdirSync(path.join(work, 'node_modules'));
  fs.symlinkSync(pkgDir, path.join(work, 'node_modules', 'tokenwell'));
  fs.symlinkSync(path.join(pkgDir, 'node_modules', 'undici'), path.join(work, 'node_modules', 'undici'));
  // The optional peer dependency of `tokenwell/otel`, as a project that uses it installs it (make otel-tools).
  fs.symlinkSync(path.join(pkgDir, 'test-tools', 'otel', 'node_modules', '@opentelemetry'), path.join(work, 'node_modules', '@opentelemetry'));
  fs.writeFileSync(path.join(work, 'ca.pem'), tls.rootCertificates.slice(0, 2).join('\n'));
  fs.writeFileSync(path.join(work, 'client-secret'), 'readme-secret\n');
  tokenServer = await startScriptedTokenServer();
  api = http.createServer((req, res) => {
    apiCalls.push(req.headers.authorization);
    req.resume();
    const ok = /^Bearer at-\d+$/.test(req.headers.authorization ?? '');
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    res.end(ok ? '{"invoices":[]}' : '{"error":"invalid_token"}');
  });
  await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  await tokenServer?.close();
  await new Promise((resolve) => (api ? (api.closeAllConnections(), api.close(resolve)) : resolve()));
  fs.rmSync(work, { recursive: true, force: true });
});

/** The block as a runnable module. */
async function runnable(block, index) {
  const apiBase = `http://127.0.0.1:${api.address().port}`;
  let code = block.code
    .replaceAll('http://127.0.0.1:4444/oauth2/token', tokenServer.url)
    .replaceAll('https://your-api', apiBase)
    .replaceAll('/etc/ssl/private-ca.pem', path.join(work, 'ca.pem'))
    .replaceAll('/run/secrets/billing/client-secret', path.join(work, 'client-secret'))
    .replaceAll('/run/secrets/billing/client-key.pem', path.join(here, '../../../tests/conformance/keys/test-only-p256.pkcs8.pem'))
    .replaceAll('/var/cache/billing-cron/token.json', path.join(work, `cache-${index}`, 'token.json'));
  const given = { tokenUrl: tokenServer.url, clientId: 'readme-client', clientSecret: 'readme-secret' };
  for (const [name, value] of Object.entries(given)) {
    const declared = new RegExp(`\\b(const|let|var)\\s+(\\{[^}]*\\b)?${name}\\b`).test(code);
    if (!declared && new RegExp(`\\b${name}\\b`).test(code)) code = `const ${name} = ${JSON.stringify(value)};\n${code}`;
  }
  if (block.lang === 'ts') {
    const ts = (await import('typescript')).default;
    code = ts.transpileModule(code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
  }
  return code;
}

function run(file) {
  const env = {
    ...process.env,
    CLIENT_ID: 'readme-client',
    CLIENT_SECRET: 'readme-secret',
    TOKEN_URL: tokenServer.url,
    BILLING_CLIENT_ID: 'billing-worker',
    BILLING_CLIENT_SECRET: 'readme-secret',
    BILLING_TOKEN_URL: tokenServer.url,
    BILLING_SCOPE: 'billing:read billing:write',
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd: work, env, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('the README has code blocks to run', () => {
  assert.ok(blocks.length >= 6, `only ${blocks.length} js/ts blocks found`);
});

blocks.forEach((block, index) => {
  test(`README block at line ${block.line} (${block.lang}) runs`, async () => {
    const file = path.join(work, `block-${index}.mjs`);
    fs.writeFileSync(file, await runnable(block, index));
    const calls = apiCalls.length;
    const result = await run(file);
    assert.equal(result.status, 0, `README.md:${block.line} failed:\n${result.stderr}`);
    assert.ok(!result.stderr.includes('TokenwellWarning'), `README.md:${block.line} warned:\n${result.stderr}`);
    if (block.code.includes('https://your-api/')) {
      assert.ok(apiCalls.length > calls, `README.md:${block.line}: the API was called`);
      assert.ok(apiCalls.slice(calls).every((a) => /^Bearer at-\d+$/.test(a)), 'with a bearer token');
    }
  });
});
