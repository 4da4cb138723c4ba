// Runs the worker against a scripted token server and an API, both on
// 127.0.0.1, and checks what it logs and how it exits. WORKER_RUNTIME picks
// the runtime, each running the same source unchanged:
//
//   node (default)  the compiled dist/worker.js; tokenwell's native module
//   deno            src/worker.ts as is; tokenwell through the `deno` export
//                   condition (wasm engine), from node_modules
//   bun             src/worker.ts as is; tokenwell's default entry (Bun loads
//                   the native module; with TOKENWELL_BACKEND=wasm, the wasm one)
//
// Deno and Bun come from bindings/node/test-tools (npm packages that ship
// their binaries: `make -C bindings/node runtimes`), or DENO / BUN.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const worker = fileURLToPath(new URL('../dist/worker.js', import.meta.url));
const source = fileURLToPath(new URL('../src/worker.ts', import.meta.url));
const tools = fileURLToPath(new URL('../../../bindings/node/test-tools/node_modules/.bin/', import.meta.url));
const cache = fileURLToPath(new URL('../../../.cache/', import.meta.url));
const RUNTIME = process.env.WORKER_RUNTIME ?? 'node';
const tokenwellDir = fs.realpathSync(fileURLToPath(new URL('../node_modules/tokenwell', import.meta.url)));

/** The command that runs the worker in RUNTIME, and the environment it needs besides the worker's. */
function command() {
  switch (RUNTIME) {
    case 'node':
      return { file: process.execPath, args: [worker], env: {} };
    case 'deno':
      return {
        file: process.env.DENO ?? `${tools}deno`,
        // --allow-read for tokenwell itself only because this example links it
        // from the repository (file:../../bindings/node): Deno reads packages
        // inside node_modules without a permission, as after a real install.
        args: ['run', '--allow-env', '--allow-net=127.0.0.1', `--allow-read=${tokenwellDir}`, '--no-prompt', source],
        env: { DENO_DIR: `${cache}deno`, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      };
    case 'bun':
      return {
        file: process.env.BUN ?? `${tools}bun`,
        args: [source],
        env: { BUN_INSTALL_CACHE_DIR: `${cache}bun`, DO_NOT_TRACK: '1', NO_COLOR: '1' },
      };
    default:
      throw new Error(`WORKER_RUNTIME must be node, deno or bun, not ${RUNTIME}`);
  }
}

/** A scripted token endpoint and API on loopback; `answerToken(n)` scripts the n-th token request. */
async function startServers(answerToken) {
  const tokenRequests = [];
  const apiCalls = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/oauth2/token') {
        tokenRequests.push(req.headers.authorization);
        const [status, body] = answerToken(tokenRequests.length);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      } else {
        apiCalls.push(req.headers.authorization);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"invoices":[{"id":1}]}');
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    env: { CLIENT_ID: 'billing-worker', CLIENT_SECRET: 'worker-secret', TOKEN_URL: `${base}/oauth2/token`, API_URL: `${base}/invoices`, SCOPE: 'billing:read' },
    tokenRequests,
    apiCalls,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

function runWorker(env) {
  const { file, args, env: runtimeEnv } = command();
  const backend = process.env.TOKENWELL_BACKEND ? { TOKENWELL_BACKEND: process.env.TOKENWELL_BACKEND } : {};
  const options = { env: { PATH: process.env.PATH, ...runtimeEnv, ...backend, ...env }, timeout: 30_000 };
  return new Promise((resolve) => {
    execFile(file, args, options, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, signal: error?.signal ?? null, output: stdout + stderr });
    });
  });
}

const ok = () => [200, { access_token: 'at-worker', token_type: 'bearer', expires_in: 300 }];

test('the worker calls the API with one token and stops after WORKER_ITERATIONS', async () => {
  const servers = await startServers(ok);
  try {
    const run = await runWorker({ ...servers.env, WORKER_ITERATIONS: '3', WORKER_INTERVAL_MS: '0' });
    assert.equal(run.code, 0, run.output);
    assert.equal(servers.tokenRequests.length, 1);
    assert.deepEqual(servers.apiCalls, ['Bearer at-worker', 'Bearer at-worker', 'Bearer at-worker']);
    assert.match(run.output, /run 3: API answered HTTP 200/);
    // Deno takes the `deno` export condition (wasm); Node and Bun the native module unless told otherwise.
    const engine = RUNTIME === 'deno' || process.env.TOKENWELL_BACKEND === 'wasm' ? 'wasm' : 'native';
    assert.match(run.output, new RegExp(`\\(engine: ${engine}\\)`));
    assert.ok(!run.output.includes('worker-secret') && !run.output.includes('at-worker'));
  } finally {
    await servers.close();
  }
});

test('without a token it fails closed: no API call, the error logged, a pause, exit 75 or 1', async () => {
  const unavailable = await startServers(() => [503, { error: 'temporarily_unavailable' }]);
  try {
    const run = await runWorker({ ...unavailable.env, WORKER_ITERATIONS: '2', WORKER_PAUSE_MS: '0' });
    assert.equal(run.code, 75, run.output);
    assert.equal(unavailable.apiCalls.length, 0, 'fail closed');
    assert.match(run.output, /no token \(temporarily_unavailable/);
    assert.match(run.output, /pausing 0 s/);
  } finally {
    await unavailable.close();
  }
  const refused = await startServers(() => [401, { error: 'invalid_client' }]);
  try {
    const run = await runWorker({ ...refused.env, WORKER_ITERATIONS: '1' });
    assert.equal(run.code, 1, run.output);
    assert.equal(refused.apiCalls.length, 0);
    assert.match(run.output, /no token \(invalid_client, fault credentials, not retryable/);
    assert.ok(!run.output.includes('worker-secret'));
  } finally {
    await refused.close();
  }
});

test('an incomplete environment is named and the worker does not start', async () => {
  const run = await runWorker({ CLIENT_ID: 'billing-worker', TOKEN_URL: 'https://auth.example/oauth2/token' });
  assert.equal(run.code, 78, run.output);
  assert.match(run.output, /CLIENT_SECRET/);
});
