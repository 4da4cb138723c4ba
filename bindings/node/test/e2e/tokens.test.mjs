// End-to-end: ServiceAccount against Ory Hydra and oidc-provider on 127.0.0.1
// (the Node port of tests/integration/rust/tests/e2e_real_servers.rs): auth
// methods and scopes, typed configuration errors without a retry storm, a wrong
// secret never shown, reserved characters and 200 random secrets, the JWT
// `exp`, Hydra's introspection, and `account.fetch` after an API's 401.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { inspect } from 'node:util';
import { TokenError } from '../../index.js';
import { SERVERS, Client, account, e2e, hydraAdmin, hydraCli, jwtClaims, ofType, pool } from './servers.mjs';

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

/** Runs `fn(account, events, requests)` and closes the account whatever happens. */
async function withAccount(options, fn) {
  const a = account(options);
  try {
    return await fn(a.account, a.events, a.requests);
  } finally {
    a.account.close();
  }
}

/** Awaits `promise`, which must reject with a TokenError; returns the error. */
async function tokenError(promise, context) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TokenError, `${context}: not a TokenError: ${inspect(error)}`);
    return error;
  }
  assert.fail(`${context}: a token was served`);
}

e2e('basic and post auth get the requested scopes', {}, async (s) => {
  for (const server of SERVERS) {
    for (const role of ['basic', 'post']) {
      const client = Client.of(s, server, role);
      assert.equal(client.authMethod, role === 'basic' ? 'client_secret_basic' : 'client_secret_post');
      await withAccount(client.defaultOptions(), async (a, events) => {
        const token = await a.token();
        assert.ok(token.accessToken.length > 0, `${server}/${role}: empty token`);
        for (const scope of client.scopes) {
          assert.ok(token.scope.includes(scope), `${server}/${role}: ${scope} not granted: ${token.scope}`);
        }
        assert.equal(await a.getToken(), token.accessToken, `${server}/${role}: the cached token is served`);
        assert.equal(ofType(events, 'token_acquired').length, 1);
        assert.ok(events.every((e) => e.actorType === 'client' && e.actorId === client.clientId));
      });
      // Asking for less gets less.
      await withAccount(client.optionsFor(['billing:read']), async (a) => {
        assert.deepEqual((await a.token()).scope, ['billing:read'], `${server}/${role}`);
      });
    }
  }
});

e2e('a scope the client may not have is a held configuration error', {}, async (s) => {
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'basic');
    await withAccount(client.optionsFor(['billing:read', 'billing:admin']), async (a, events, requests) => {
      const started = Date.now();
      const error = await tokenError(a.getToken(), server);
      assert.equal(error.kind, 'invalid_scope', `${server}: ${inspect(error)}`);
      assert.equal(error.fault, 'configuration');
      assert.equal(error.retryable, false);
      assert.equal(error.status, 400);
      assert.equal(error.oauthError, 'invalid_scope');
      assert.ok(error.retryAt.getTime() >= started + 60_000, `${server}: held only until ${error.retryAt.toISOString()}`);
      assert.equal(a.state, 'held');
      // No retry storm: the next calls fail fast from the hold, without a request.
      for (let i = 0; i < 20; i++) {
        assert.equal((await tokenError(a.getToken(), server)).kind, 'invalid_scope');
      }
      assert.equal(ofType(events, 'refresh_started').length, 1, `${server}: one refresh only`);
      assert.equal(requests.count, 1, `${server}: one token request only`);
    });
  }
});

e2e('an audience the client may not have is a configuration error', {}, async (s) => {
  // Hydra takes the audience as `audience` (answering invalid_request, which the
  // engine classifies as invalid_target); oidc-provider as the RFC 8707
  // `resource` parameter (extraParams), answering invalid_target.
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'basic');
    const options = client.options(['billing:read'], ['https://not-allowed.tokenwell.test']);
    if (server === 'oidc_provider') assert.deepEqual(options.extraParams, [['resource', 'https://not-allowed.tokenwell.test']]);
    await withAccount(options, async (a, events, requests) => {
      const error = await tokenError(a.getToken(), server);
      assert.equal(error.kind, 'invalid_target', `${server}: ${inspect(error)}`);
      assert.equal(error.fault, 'configuration');
      assert.equal(error.retryable, false);
      assert.equal(error.status, 400);
      assert.equal((await tokenError(a.getToken(), server)).kind, 'invalid_target');
      assert.equal(ofType(events, 'refresh_started').length, 1, server);
      assert.equal(requests.count, 1, server);
    });
  }
});

e2e('a wrong secret is invalid_client and never shown', {}, async (s) => {
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'basic');
    const real = client.clientSecret;
    client.clientSecret = `wrong-${real}`;
    await withAccount(client.defaultOptions(), async (a, events, requests) => {
      const error = await tokenError(a.getToken(), server);
      assert.equal(error.kind, 'invalid_client', `${server}: ${inspect(error)}`);
      assert.equal(error.fault, 'credentials');
      assert.equal(error.retryable, false);
      assert.equal(error.status, 401);
      assert.equal(requests.count, 1, `${server}: one secret, one request`);
      const texts = {
        message: error.message,
        'String(error)': String(error),
        stack: error.stack,
        'util.inspect(error)': inspect(error, { depth: Infinity }),
        'JSON.stringify(error)': JSON.stringify(error),
        'util.inspect(account)': inspect(a, { depth: Infinity }),
        'JSON.stringify(account)': JSON.stringify(a),
        'JSON.stringify(account.options)': JSON.stringify(a.options),
        events: JSON.stringify(events),
      };
      for (const [where, text] of Object.entries(texts)) {
        // The real secret is a substring of the wrong one: neither may appear.
        assert.ok(!text.includes(client.clientSecret) && !text.includes(real), `${server}: the secret is in ${where}: ${text}`);
      }
      assert.match(texts['JSON.stringify(account)'], /\[redacted\]/);
    });
  }
});

e2e('secrets with reserved characters work', {}, async (s) => {
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'special_secret');
    for (const c of ['%', '+', ' ', ':', '&', '=']) {
      assert.ok(client.clientSecret.includes(c), `${server}: the special secret has no ${JSON.stringify(c)}`);
    }
    await withAccount(client.defaultOptions(), async (a) => {
      const token = await a.token().catch((e) => assert.fail(`${server}: ${inspect(e)}`));
      assert.ok(token.accessToken.length > 0);
    });
  }
});

e2e('two hundred random secrets are each accepted', { timeout: 300_000 }, async (s) => {
  for (const server of SERVERS) {
    const bulk = s[server].bulk_clients;
    assert.ok(Array.isArray(bulk), `${server}: no bulk_clients in servers.json`);
    assert.ok(bulk.length >= 200, `${server}: ${bulk.length} bulk clients`);
    const started = Date.now();
    const outcomes = await pool(bulk, 8, async (entry) => {
      const client = new Client(server, s[server], entry);
      return withAccount(client.options([], []), async (a) => {
        try {
          assert.ok((await a.getToken()).length > 0);
          return null;
        } catch (error) {
          // Never the secret: the client id and the engine's (scrubbed) error.
          return `${client.clientId}: ${error.kind ?? 'error'}: ${error.message}`;
        }
      });
    });
    const failures = outcomes.filter((f) => f !== null);
    assert.deepEqual(failures, [], `${server}: ${failures.length} of ${bulk.length} refused`);
    const nonAscii = bulk.filter((c) => /[^\x20-\x7e]/.test(c.client_secret)).length;
    // oidc-provider accepts printable ASCII only (RFC 6749 VSCHAR); Hydra's bulk secrets mix in Unicode.
    if (server === 'hydra') assert.ok(nonAscii > 0, 'hydra: no bulk secret has a non-ASCII character');
    console.log(`${server}: ${bulk.length} random secrets accepted (${nonAscii} with non-ASCII characters) in ${Date.now() - started} ms`);
  }
});

e2e('a JWT access token exp matches the engine expiry', {}, async (s) => {
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'jwt');
    await withAccount(client.defaultOptions(), async (a) => {
      const token = await a.token();
      const claims = jwtClaims(token.accessToken);
      assert.equal(typeof claims.exp, 'number', `${server}: no exp in ${JSON.stringify(claims)}`);
      const diff = Math.abs(claims.exp * 1000 - token.expiresAt.getTime());
      assert.ok(diff <= 2_000, `${server}: exp ${claims.exp * 1000} vs expiresAt ${token.expiresAt.getTime()} (${diff} ms apart)`);
      if (claims.client_id !== undefined) assert.equal(claims.client_id, client.clientId);
    });
  }
});

e2e('Hydra introspection says the token is active for the client', {}, async (s) => {
  for (const role of ['basic', 'jwt']) {
    const client = Client.of(s, 'hydra', role);
    await withAccount(client.defaultOptions(), async (a) => {
      const token = await a.getToken();
      const out = await hydraCli(s, ['introspect', 'token', '--endpoint', hydraAdmin(s), '--format', 'json', token]);
      const info = JSON.parse(out);
      assert.equal(info.active, true, `${role}: ${out}`);
      assert.equal(info.sub, client.clientId, `${role}: ${out}`);
      assert.equal(info.client_id, client.clientId, `${role}: ${out}`);
    });
  }
});

/** A tiny API on 127.0.0.1: 401 for the first bearer token it sees, 200 for any other. */
async function startApi() {
  const seen = [];
  const server = http.createServer((req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
    seen.push(token);
    const ok = token !== null && token !== seen[0];
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify(ok ? { invoices: [] } : { error: 'invalid_token' }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/invoices`;
  const close = () =>
    new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
  return { url, seen, close };
}

e2e('account.fetch after a 401 invalidates the token and retries once with a new one', {}, async (s) => {
  for (const server of SERVERS) {
    const client = Client.of(s, server, 'basic');
    const api = await startApi();
    try {
      await withAccount(client.defaultOptions(), async (a, events, requests) => {
        const res = await a.fetch(api.url);
        assert.equal(res.status, 200, server);
        assert.deepEqual(await res.json(), { invoices: [] });
        assert.equal(api.seen.length, 2, `${server}: one retry`);
        const [first, second] = api.seen;
        assert.ok(first && second && first !== second, `${server}: the retry carries a new token`);
        assert.equal(requests.count, 2, `${server}: two token requests`);
        const reasons = ofType(events, 'refresh_started').map((e) => e.reason);
        assert.deepEqual(reasons, ['initial', 'invalidated'], server);
        assert.equal(ofType(events, 'token_invalidated').length, 1, server);
        assert.equal(await a.getToken(), second, `${server}: the new token is the current one`);
        if (server === 'hydra') {
          const info = JSON.parse(
            await hydraCli(s, ['introspect', 'token', '--endpoint', hydraAdmin(s), '--format', 'json', second]),
          );
          assert.equal(info.active, true);
          assert.equal(info.sub, client.clientId);
        }
        // The next call uses the accepted token: no new token request.
        const again = await a.fetch(api.url);
        assert.equal(again.status, 200);
        await again.body?.cancel();
        assert.equal(requests.count, 2, server);
      });
    } finally {
      await api.close();
    }
  }
});
