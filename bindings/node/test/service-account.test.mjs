// ServiceAccount over a scripted loopback token server (127.0.0.1), on a virtual
// clock: stampedes, outage inside the margin, 401 -> invalidate -> one retry,
// transport failures, background refresh, close.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ServiceAccount, TokenError } from '../index.js';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

/** Collects events; `next(predicate)` resolves at the first matching event from now on. */
function eventLog() {
  const events = [];
  const waiters = [];
  const onEvent = (event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  };
  const next = (predicate) => new Promise((resolve) => waiters.push({ predicate, resolve }));
  return { events, onEvent, next };
}

async function account(server, extra = {}) {
  const clock = extra.clock ?? virtualClock();
  const log = eventLog();
  const acct = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'billing-worker',
    clientSecret: 'client-secret-1',
    scope: 'billing:read',
    clock,
    onEvent: log.onEvent,
    backgroundRefresh: false,
    ...extra,
  });
  return { acct, clock, log };
}

const concurrently = (n, fn) => Promise.all(Array.from({ length: n }, fn));

test('stampede: 1000 concurrent getToken() make one token request, cold, at the refresh point and at expiry', async () => {
  const server = await startScriptedTokenServer();
  const { acct, clock, log } = await account(server);
  try {
    // Cold.
    const cold = await concurrently(1000, () => acct.getToken());
    assert.equal(server.requests.length, 1);
    assert.ok(cold.every((t) => t === 'at-1'));
    const first = log.events.find((e) => e.type === 'token_acquired');

    // At the refresh-ahead point: everyone is served the valid token, one refresh goes out.
    clock.set(first.refreshAt);
    const refreshed = log.next((e) => e.type === 'token_acquired' && e.fetchId === 2);
    const ahead = await concurrently(1000, () => acct.getToken());
    assert.ok(ahead.every((t) => t === 'at-1'), 'callers keep the valid token meanwhile');
    const second = await refreshed;
    assert.equal(server.requests.length, 2);
    assert.equal(await acct.getToken(), 'at-2');

    // At expiry (no usable token): everyone waits for the same single request.
    clock.set(second.expiresAt);
    const expired = await concurrently(1000, () => acct.getToken());
    assert.equal(server.requests.length, 3);
    assert.ok(expired.every((t) => t === 'at-3'));
    const reasons = log.events.filter((e) => e.type === 'refresh_started').map((e) => e.reason);
    assert.deepEqual(reasons, ['initial', 'ahead', 'expired']);
  } finally {
    acct.close();
    await server.close();
  }
});

test('outage inside the margin: the valid token keeps being served, 0 failures; fail fast after', async () => {
  const server = await startScriptedTokenServer((req, n) =>
    n === 1
      ? undefined
      : { status: 503, body: '<html>maintenance</html>', headers: { 'content-type': 'text/html' } },
  );
  const { acct, clock, log } = await account(server);
  try {
    assert.equal(await acct.getToken(), 'at-1');
    const token = log.events.find((e) => e.type === 'token_acquired');
    const usableUntil = token.expiresAt - 30_000;
    let failures = 0;
    let served = 0;
    for (let t = token.refreshAt; t < usableUntil; t += 1000) {
      clock.set(t);
      const before = log.events.length;
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => acct.getToken()));
      for (const r of results) {
        if (r.status === 'fulfilled' && r.value === 'at-1') served++;
        else failures++;
      }
      // A refresh started in this step: wait for the engine's outcome of it.
      const started = log.events.slice(before).find((e) => e.type === 'refresh_started');
      if (started && !log.events.some((e) => e.type === 'refresh_failed' && e.fetchId === started.fetchId)) {
        await log.next((e) => e.type === 'refresh_failed' && e.fetchId === started.fetchId);
      }
    }
    assert.equal(failures, 0);
    assert.ok(served > 0);
    const attempts = server.requests.length - 1;
    assert.ok(attempts >= 1, 'refreshes were attempted');
    const steps = Math.ceil((usableUntil - token.refreshAt) / 1000);
    assert.ok(attempts <= steps, `backoff bounds the attempts (${attempts} for ${steps} steps)`);
    assert.ok(log.events.some((e) => e.type === 'backoff_scheduled'));

    // Inside the margin, outage grace keeps serving the token (announced once),
    // until 5 s before it expires; from then on a typed, retryable failure.
    clock.set(usableUntil);
    assert.equal(await acct.getToken(), 'at-1');
    assert.equal(log.events.filter((e) => e.type === 'outage_grace_served').length, 1);
    clock.set(token.expiresAt - 5_000);
    await assert.rejects(acct.getToken(), (e) => {
      assert.ok(e instanceof TokenError);
      assert.equal(e.kind, 'server_error');
      assert.equal(e.retryable, true);
      assert.equal(e.status, 503);
      assert.ok(e.retryAt instanceof Date);
      return true;
    });
  } finally {
    acct.close();
    await server.close();
  }
});

/** An API on 127.0.0.1 that accepts only the bearer tokens in `accepted`. */
async function startApi(accepted) {
  const calls = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      calls.push({ auth: req.headers.authorization, body: Buffer.concat(chunks).toString(), method: req.method });
      const ok = accepted.has(req.headers.authorization?.replace(/^Bearer /, ''));
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"invoices":[]}' : '{"error":"invalid_token"}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/invoices`,
    calls,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

test('401 from the API: the token is invalidated and the request retried once', async () => {
  const server = await startScriptedTokenServer();
  const api = await startApi(new Set(['at-2']));
  const { acct, log } = await account(server);
  try {
    const response = await acct.fetch(api.url, { method: 'POST', body: '{"amount":5}' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { invoices: [] });
    assert.deepEqual(
      api.calls.map((c) => c.auth),
      ['Bearer at-1', 'Bearer at-2'],
    );
    assert.deepEqual(
      api.calls.map((c) => c.body),
      ['{"amount":5}', '{"amount":5}'],
    );
    assert.equal(server.requests.length, 2);
    assert.ok(log.events.some((e) => e.type === 'token_invalidated'));
    assert.equal(log.events.filter((e) => e.type === 'refresh_started').at(-1).reason, 'invalidated');
  } finally {
    acct.close();
    await Promise.all([server.close(), api.close()]);
  }
});

test('an API that always answers 401: one retry, then the rate limit stops a refresh loop', async () => {
  const server = await startScriptedTokenServer();
  const api = await startApi(new Set());
  const { acct } = await account(server);
  try {
    const first = await acct.fetch(api.url);
    assert.equal(first.status, 401);
    assert.equal(api.calls.length, 2, 'one retry');
    assert.equal(server.requests.length, 2);
    const second = await acct.fetch(new URL(api.url), { headers: { 'x-request': '2' } });
    assert.equal(second.status, 401);
    assert.equal(api.calls.length, 3, 'rate-limited invalidation: no retry');
    assert.equal(server.requests.length, 2, 'no new token request');
    // A body that cannot be sent twice is not retried.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('x'));
        c.close();
      },
    });
    const third = await acct.fetch(api.url, { method: 'POST', body: stream, duplex: 'half' });
    assert.equal(third.status, 401);
  } finally {
    acct.close();
    await Promise.all([server.close(), api.close()]);
  }
});

test('transport: timeoutMs aborts the request; every failure is a typed TokenError', async (t) => {
  await t.test('a token server that never answers (scripted fault): kind timeout', async () => {
    const server = await startScriptedTokenServer(() => new Promise(() => {}));
    const { acct } = await account(server, { timeoutMs: 200 });
    try {
      await assert.rejects(acct.getToken(), (e) => e instanceof TokenError && e.kind === 'timeout' && e.retryable);
      assert.equal(acct.state, 'backing_off');
    } finally {
      acct.close();
      await server.close();
    }
  });
  await t.test('a body above the size limit: malformed_response, read no further', async () => {
    const server = await startScriptedTokenServer(() => ({ status: 200, body: 'x'.repeat(1_000_000) }));
    const { acct } = await account(server);
    try {
      await assert.rejects(acct.getToken(), (e) => {
        assert.equal(e.kind, 'malformed_response');
        assert.match(e.description, /larger than 65536/);
        return true;
      });
    } finally {
      acct.close();
      await server.close();
    }
  });
  await t.test('connection refused: kind transport', async () => {
    const server = await startScriptedTokenServer();
    await server.close();
    const { acct } = await account(server);
    try {
      const { port } = new URL(server.url);
      await assert.rejects(acct.getToken(), (e) => {
        assert.equal(e.kind, 'transport');
        assert.match(e.description, /ECONNREFUSED/);
        assert.ok(e.description.startsWith(`127.0.0.1:${port}: `), `the endpoint is named: ${e.description}`);
        return true;
      });
    } finally {
      acct.close();
    }
  });
  await t.test('a reset connection (scripted fault): kind transport', async () => {
    const server = await startScriptedTokenServer(() => ({ destroy: true }));
    const { acct } = await account(server);
    try {
      await assert.rejects(acct.getToken(), (e) => e.kind === 'transport');
    } finally {
      acct.close();
      await server.close();
    }
  });
  await t.test('an HTML 502 from a proxy: server_error with the status', async () => {
    const server = await startScriptedTokenServer(() => ({ status: 502, body: '<html>bad gateway</html>' }));
    const { acct } = await account(server);
    try {
      await assert.rejects(acct.getToken(), (e) => e.kind === 'server_error' && e.status === 502);
    } finally {
      acct.close();
      await server.close();
    }
  });
  await t.test('a wrong token URL (404, 405 from a scripted server): endpoint_not_found, held, not retried', async () => {
    for (const status of [404, 405]) {
      const server = await startScriptedTokenServer(() => ({
        status,
        body: '<html>not here</html>',
        headers: { 'content-type': 'text/html' },
      }));
      const { acct } = await account(server);
      try {
        await assert.rejects(acct.getToken(), (e) => {
          assert.ok(e instanceof TokenError);
          assert.equal(e.kind, 'endpoint_not_found');
          assert.equal(e.fault, 'configuration');
          assert.equal(e.retryable, false);
          assert.equal(e.status, status);
          assert.match(e.message, /token_url|tokenUrl|TOKEN_URL/);
          return true;
        });
        assert.equal(acct.state, 'held');
        await assert.rejects(acct.getToken(), (e) => e.kind === 'endpoint_not_found');
        assert.equal(server.requests.length, 1, 'held: no second request');
      } finally {
        acct.close();
        await server.close();
      }
    }
  });
  await t.test('an injected fetch that throws or returns garbage', async () => {
    for (const fetch of [
      () => {
        throw new Error('boom');
      },
      async () => 42,
    ]) {
      const acct = new ServiceAccount({
        tokenUrl: 'https://auth.example/oauth2/token',
        clientId: 'c',
        clientSecret: 's',
        fetch,
        backgroundRefresh: false,
      });
      await assert.rejects(acct.getToken(), (e) => e instanceof TokenError && e.kind === 'transport');
      acct.close();
    }
  });
});

test('an injected fetch receives the engine request exactly', async () => {
  const seen = [];
  const acct = new ServiceAccount({
    tokenUrl: 'https://auth.example/oauth2/token',
    clientId: 'billing worker',
    clientSecret: 'p@ss: %+&=',
    audience: ['https://api.example'],
    fetch: async (url, init) => {
      seen.push({ url, init });
      return new Response('{"access_token":"at-x","token_type":"bearer","expires_in":120,"scope":"a b"}');
    },
    backgroundRefresh: false,
  });
  const token = await acct.token();
  assert.equal(token.accessToken, 'at-x');
  assert.deepEqual(token.scope, ['a', 'b']);
  assert.ok(token.expiresAt instanceof Date);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, 'https://auth.example/oauth2/token');
  assert.equal(seen[0].init.method, 'POST');
  assert.equal(seen[0].init.body, 'grant_type=client_credentials&audience=https%3A%2F%2Fapi.example');
  const auth = new Headers(seen[0].init.headers).get('authorization');
  assert.equal(Buffer.from(auth.replace('Basic ', ''), 'base64').toString(), 'billing+worker:p%40ss%3A+%25%2B%26%3D');
  acct.close();
  await assert.rejects(acct.getToken(), (e) => {
    assert.ok(e instanceof TokenError, `a TokenError, got ${e}`);
    assert.equal(e.kind, 'closed');
    assert.equal(e.fault, 'host');
    assert.equal(e.retryable, false);
    return true;
  });
});

test('close() while a token request is in flight: its waiters reject with kind closed', async () => {
  let answer;
  const acct = new ServiceAccount({
    tokenUrl: 'https://auth.example/oauth2/token',
    clientId: 'c',
    clientSecret: 's',
    fetch: () =>
      new Promise((resolve) => {
        answer = resolve;
      }),
    backgroundRefresh: false,
  });
  const waiting = acct.getToken();
  await new Promise((resolve) => setImmediate(resolve)); // the request is handed to fetch
  assert.equal(typeof answer, 'function', 'the token request was sent');
  acct.close();
  answer(new Response('{"access_token":"too-late","expires_in":60}'));
  await assert.rejects(waiting, (e) => e instanceof TokenError && e.kind === 'closed');
});

test('background refresh on the engine wakeup (real clock): callers never wait', async () => {
  const server = await startScriptedTokenServer((req, n) => ({
    status: 200,
    body: { access_token: `at-${n}`, token_type: 'bearer', expires_in: 2 },
  }));
  const log = eventLog();
  const acct = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'c',
    clientSecret: 's',
    onEvent: log.onEvent,
  });
  // A guard only: the test fails rather than hangs if no refresh comes.
  const guard = setTimeout(() => log.onEvent({ type: 'guard' }), 10_000);
  try {
    assert.equal(await acct.getToken(), 'at-1');
    const ahead = await log.next((e) => (e.type === 'refresh_started' && e.reason === 'ahead') || e.type === 'guard');
    assert.equal(ahead.type, 'refresh_started', 'the timer started a refresh ahead of expiry');
    assert.equal(await acct.getToken(), 'at-1', 'served while the refresh runs');
    await log.next((e) => (e.type === 'token_acquired' && e.fetchId === ahead.fetchId) || e.type === 'guard');
    assert.equal(await acct.getToken(), 'at-2');
  } finally {
    clearTimeout(guard);
    acct.close();
    await server.close();
  }
});

test('a process with an account exits on its own, closed or not', () => {
  const index = fileURLToPath(new URL('../index.js', import.meta.url));
  for (const close of [true, false]) {
    const script = `
      const { ServiceAccount } = require(${JSON.stringify(index)});
      const a = new ServiceAccount({ tokenUrl: 'https://auth.example/t', clientId: 'c', clientSecret: 's',
        fetch: async () => new Response('{"access_token":"at","expires_in":3600}') });
      a.getToken().then((t) => { console.log(t); ${close ? 'a.close();' : ''} });`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.signal, null, `the process ${close ? 'with' : 'without'} close() exited by itself`);
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'at');
  }
});
