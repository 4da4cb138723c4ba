// `npm run bench`: what a cache hit costs, against a bare JS floor measured in
// the same run, for each engine backend; the wasm engine's load time; the first
// token of each backend against a bare `fetch` of the same token endpoint; the
// size of every artifact; and how many token requests 1000 concurrent callers make.
//
//   floor     an async function returning a cached string after a clock compare
//   getToken  ServiceAccount.getToken() on a cache hit (no engine call, either backend)
//   poll      the engine's poll(), for scale (what a hit would cost if it called the engine)
//
// Each backend is measured in its own process (TOKENWELL_BACKEND=native / wasm;
// the backend is chosen once per process), with its own floor measured in that
// process. Timings alternate in rounds; the median round is reported.
//
// The numbers are also written as JSON to $TOKENWELL_BENCH_RESULTS/node.json
// (default bench-results/ at the repo root), which `make bench-charts` draws.

import http from 'node:http';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync, execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ServiceAccount, TokenCache, engineBackend } from '../index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, '..');
const execFileAsync = promisify(execFile);

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const T0 = 1_700_000_000_000;

async function timeAsync(fn, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await fn();
  return Number(process.hrtime.bigint() - start) / calls;
}

function timeSync(fn, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) fn();
  return Number(process.hrtime.bigint() - start) / calls;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function cacheHit() {
  // The floor: what a hand-written cache in plain JS does on a hit.
  const cached = 'ory_at_cached';
  const deadline = Date.now() + 3_600_000;
  async function floor() {
    if (Date.now() < deadline) return cached;
    throw new Error('unreachable in this bench');
  }

  let requests = 0;
  const account = new ServiceAccount({
    tokenUrl: 'https://auth.example/oauth2/token',
    clientId: 'bench',
    clientSecret: 'bench-secret',
    fetch: async () => {
      requests++;
      return new Response('{"access_token":"ory_at_bench","token_type":"bearer","expires_in":3600}');
    },
  });
  await account.getToken();

  const cache = new TokenCache({ tokenUrl: 'https://auth.example/t', clientId: 'c', clientSecret: 's' }, 1);
  const { request } = cache.poll(T0);
  cache.handleResponse(request.fetchId, 200, [], '{"access_token":"x","expires_in":3600}', T0);
  const poll = () => cache.poll(T0 + 1);

  // Warm up the JIT on all three.
  await timeAsync(floor, CALLS);
  await timeAsync(() => account.getToken(), CALLS);
  timeSync(poll, CALLS / 10);

  const floorNs = [];
  const hitNs = [];
  const pollNs = [];
  for (let round = 0; round < ROUNDS; round++) {
    floorNs.push(await timeAsync(floor, CALLS));
    hitNs.push(await timeAsync(() => account.getToken(), CALLS));
    pollNs.push(timeSync(poll, CALLS / 10));
  }
  account.close();
  if (requests !== 1) throw new Error(`expected 1 token request during the hit bench, saw ${requests}`);
  return { floor: median(floorNs), hit: median(hitNs), poll: median(pollNs) };
}

/** A scripted token server on 127.0.0.1 that counts requests. */
async function countingServer() {
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: `at-${count}`, token_type: 'bearer', expires_in: 300 }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/oauth2/token`,
    count: () => count,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

async function stampede() {
  const server = await countingServer();
  let now = T0;
  let acquired = null;
  let onAcquired = () => {};
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'bench',
    clientSecret: 'bench-secret',
    clock: () => now,
    backgroundRefresh: false,
    onEvent: (e) => {
      if (e.type === 'token_acquired') {
        acquired = e;
        onAcquired(e);
      }
    },
  });
  const all = () => Promise.all(Array.from({ length: 1000 }, () => account.getToken()));

  await all();
  const cold = server.count();

  now = acquired.refreshAt;
  const refreshed = new Promise((resolve) => (onAcquired = resolve));
  await all();
  await refreshed;
  const ahead = server.count() - cold;

  now = acquired.expiresAt;
  await all();
  const expired = server.count() - cold - ahead;

  account.close();
  await server.close();
  return { cold, ahead, expired };
}

/** The first token in a fresh process (asynchronously: this process serves the token endpoint). */
async function firstTokenOnce(what, tokenUrl, backend) {
  const env = { ...process.env, TOKENWELL_BACKEND: backend ?? '' };
  const { stdout } = await execFileAsync(process.execPath, [path.join(here, 'first-token.mjs'), what, tokenUrl], { env });
  return JSON.parse(stdout).ms;
}

function wasmLoad(runs) {
  const loads = Array.from({ length: runs }, () =>
    JSON.parse(execFileSync(process.execPath, [path.join(here, 'wasm-load.cjs')], { encoding: 'utf8' })),
  );
  return { compile: median(loads.map((l) => l.compileMs)), instantiate: median(loads.map((l) => l.instantiateMs)) };
}

function artifactSizes() {
  const rows = [];
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  // The default engine (`tokenwell`, no RS/PS/ES signing) and the signed one (`tokenwell/signed`).
  for (const [name, what] of [
    ['tokenwell_wasm', 'wasm engine, default'],
    ['tokenwell_wasm_signed', 'wasm engine, tokenwell/signed'],
  ]) {
    const wasm = path.join(pkgDir, 'wasm', `${name}_bg.wasm`);
    if (!fs.existsSync(wasm)) continue;
    const bytes = fs.readFileSync(wasm);
    const budget = name === 'tokenwell_wasm' ? ' (budget 150 KB)' : '';
    rows.push([`${what} (wasm/${name}_bg.wasm)`, `${kib(bytes.length)}, ${kib(zlib.gzipSync(bytes, { level: 9 }).length)} gzipped by zlib -9${budget}`]);
    rows.push([`its glue (wasm/${name}.js)`, kib(fs.statSync(path.join(pkgDir, 'wasm', `${name}.js`)).size)]);
  }
  for (const file of fs.readdirSync(pkgDir).filter((f) => f.endsWith('.node'))) {
    rows.push([`native module, repo build (${file})`, kib(fs.statSync(path.join(pkgDir, file)).size)]);
  }
  const dist = path.join(pkgDir, '..', '..', 'dist');
  for (const sub of ['npm', 'python']) {
    const dir = path.join(dist, sub);
    if (!fs.existsSync(dir)) continue;
    for (const file of fs.readdirSync(dir).sort()) rows.push([`dist/${sub}/${file}`, kib(fs.statSync(path.join(dir, file)).size)]);
  }
  if (!fs.existsSync(dist)) rows.push(['dist/', 'not built (make dist, or make dist-host)']);
  return rows;
}

// A child process measuring one backend's cache hit: BENCH_ONLY=hit prints JSON.
if (process.env.BENCH_ONLY === 'hit') {
  process.stdout.write(JSON.stringify({ backend: engineBackend(), ...(await cacheHit()) }));
  process.exit(0);
}

function hitIn(backend) {
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_ONLY: 'hit', TOKENWELL_BACKEND: backend },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`the ${backend} bench failed: ${run.stderr}`);
  const result = JSON.parse(run.stdout);
  if (result.backend !== backend) throw new Error(`asked for ${backend}, measured ${result.backend}`);
  return result;
}

const hits = { native: hitIn('native'), wasm: hitIn('wasm') };
const counts = await stampede();
const load = wasmLoad(7);
const server = await countingServer();
const RUNS = Number(process.env.BENCH_FIRST_TOKEN_RUNS ?? 7);
// Interleaved, so that a slow moment of the machine hits all three alike.
const samples = { fetch: [], native: [], wasm: [] };
for (let i = 0; i < RUNS; i++) {
  samples.fetch.push(await firstTokenOnce('fetch', server.url, null));
  samples.native.push(await firstTokenOnce('tokenwell', server.url, 'native'));
  samples.wasm.push(await firstTokenOnce('tokenwell', server.url, 'wasm'));
}
const first = { fetch: median(samples.fetch), native: median(samples.native), wasm: median(samples.wasm) };
await server.close();
const fmt = (ns) => `${ns.toFixed(1).padStart(8)} ns`;
const ms = (v) => `${v.toFixed(1).padStart(8)} ms`;
const ratio = (r) => (r.hit / r.floor).toFixed(2).padStart(8);

console.log(`tokenwell (node ${process.version}, ${ROUNDS} rounds x ${CALLS} calls, median round; each backend in its own process)`);
console.log('');
for (const backend of ['native', 'wasm']) {
  const r = hits[backend];
  console.log(`cache hit, ${backend} backend`);
  console.log(`  bare JS floor (async fn, clock compare, cached string)  ${fmt(r.floor)}`);
  console.log(`  ServiceAccount.getToken() hit                           ${fmt(r.hit)}`);
  console.log(`  ratio getToken / floor                                  ${ratio(r)}    (target <= 1.5)`);
  console.log(`  for scale: TokenCache.poll() through ${backend === 'native' ? 'napi        ' : 'wasm-bindgen'}       ${fmt(r.poll)}`);
  console.log('');
}
console.log(`wasm engine load (fresh process, median of 7)`);
console.log(`  compile WebAssembly.Module from the file's bytes         ${ms(load.compile)}`);
console.log(`  instantiate (glue initSync)                              ${ms(load.instantiate)}`);
console.log('');
console.log(`first token in a fresh process (loopback token server, median of ${RUNS})`);
console.log(`  bare fetch() of the token endpoint                       ${ms(first.fetch)}`);
console.log(`  import tokenwell + getToken(), native backend            ${ms(first.native)}   (+${(first.native - first.fetch).toFixed(1)} ms)`);
console.log(`  import tokenwell + getToken(), wasm backend              ${ms(first.wasm)}   (+${(first.wasm - first.fetch).toFixed(1)} ms)`);
console.log('');
console.log('token requests for 1000 concurrent getToken() (loopback token server)');
console.log(`  cold                                                    ${String(counts.cold).padStart(8)}`);
console.log(`  at the refresh-ahead point                              ${String(counts.ahead).padStart(8)}`);
console.log(`  at expiry                                               ${String(counts.expired).padStart(8)}`);
console.log('');
console.log('artifact sizes');
for (const [name, size] of artifactSizes()) console.log(`  ${name.padEnd(86)} ${size}`);

const resultsDir = process.env.TOKENWELL_BENCH_RESULTS || path.join(pkgDir, '..', '..', 'bench-results');
fs.mkdirSync(resultsDir, { recursive: true });
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
const results = {
  host: 'node',
  versions: { tokenwell: version, runtime: `node ${process.version}` },
  machine: { cpu: os.cpus()[0]?.model ?? '', cores: os.cpus().length, os: process.platform, arch: process.arch },
  cache_hit: ['native', 'wasm'].map((backend) => ({
    label: `getToken(), ${backend} backend`,
    hit_ns: hits[backend].hit,
    floor_ns: hits[backend].floor,
    floor_label: 'async fn, clock compare, cached string',
    poll_ns: hits[backend].poll,
  })),
  stampede: [
    { label: 'cold', callers: 1000, requests: counts.cold },
    { label: 'at the refresh-ahead point', callers: 1000, requests: counts.ahead },
    { label: 'at expiry', callers: 1000, requests: counts.expired },
  ],
  wasm_load_ms: load,
  first_token_ms: first,
};
fs.writeFileSync(path.join(resultsDir, 'node.json'), `${JSON.stringify(results, null, 2)}\n`);
