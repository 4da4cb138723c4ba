// `npm run bench`: what a cache hit costs, against a bare JS floor measured in
// the same run, and how many token requests 1000 concurrent callers make.
//
//   floor     an async function returning a cached string after a clock compare
//   getToken  ServiceAccount.getToken() on a cache hit (no native call)
//   poll      the engine's poll() through napi, for scale (what a hit would cost
//             if it crossed into native code)
//
// Each is timed in alternating rounds; the median round is reported.

import http from 'node:http';
import { ServiceAccount, TokenCache } from '../index.js';

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

const hit = await cacheHit();
const counts = await stampede();
const ratio = hit.hit / hit.floor;
const fmt = (ns) => `${ns.toFixed(1).padStart(8)} ns`;

console.log(`tokenwell (node ${process.version}, ${ROUNDS} rounds x ${CALLS} calls, median round)`);
console.log('');
console.log('cache hit');
console.log(`  bare JS floor (async fn, clock compare, cached string)  ${fmt(hit.floor)}`);
console.log(`  ServiceAccount.getToken() hit                           ${fmt(hit.hit)}`);
console.log(`  ratio getToken / floor                                  ${ratio.toFixed(2).padStart(8)}    (target <= 1.5)`);
console.log(`  for scale: TokenCache.poll() through napi (sync)        ${fmt(hit.poll)}`);
console.log('');
console.log('token requests for 1000 concurrent getToken() (loopback token server)');
console.log(`  cold                                                    ${String(counts.cold).padStart(8)}`);
console.log(`  at the refresh-ahead point                              ${String(counts.ahead).padStart(8)}`);
console.log(`  at expiry                                               ${String(counts.expired).padStart(8)}`);

if (ratio > 1.5 || counts.cold !== 1 || counts.ahead !== 1 || counts.expired !== 1) {
  console.log('\nFAIL: a target was missed');
  process.exitCode = 1;
}
