// End-to-end, issue 12: the Node host against the real Hydra and Keycloak of
// $TOKENWELL_SERVERS (tests/integration/servers/with-servers.sh), configured by
// issuer only (the Node port of bindings/python/tests/test_integration_signed.py):
// a token with a client secret; private_key_jwt with Hydra's RS256 and ES256
// clients and Keycloak's signed-JWT client (each of its keys), Keycloak's
// client_secret_jwt client; key rotations through `privateKeyFile` under load
// with no failed call (Hydra's rotating client, Keycloak's signed-JWT client);
// a replayed assertion refused as a typed error by both; `fromEnv` with
// ISSUER_URL and CLIENT_PRIVATE_KEY_FILE. Skipped without servers (unless
// TOKENWELL_REQUIRE_SERVERS=1), like the other files here.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { servers, ofType, waitFor } from './servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// RSA and EC keys: `tokenwell/signed` where the package has it (its default wasm engine leaves RS/PS/ES signing out).
const entry = fs.existsSync(path.join(here, '../../signed.js')) ? '../../signed.js' : '../../index.js';
const { ServiceAccount, TokenCache, TokenError } = await import(entry);

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

const REQUIRED = process.env.TOKENWELL_REQUIRE_SERVERS === '1';
const SKIP = !process.env.TOKENWELL_SERVERS && !REQUIRED ? 'no TOKENWELL_SERVERS: run under tests/integration/run.sh' : false;

/** `node:test`'s `test` with servers.json: `fn(s, t)`; skipped without servers (see servers.mjs's `e2e`). */
function e2e(name, fn, timeout = 120_000) {
  return test(name, { timeout, skip: SKIP }, (t) => fn(servers(), t));
}

/** `s[name]`, or a skip when servers.json has none (Keycloak with TOKENWELL_KEYCLOAK=0). */
function serverOr(t, s, name) {
  const server = s[name];
  if (!server) t.skip(`no ${name} in servers.json`);
  return server ?? null;
}

/** Keycloak takes no audience parameter (a mapper on each client sets it); Hydra takes `audience`. */
function audienceFor(server, audiences) {
  return server.audience_parameter === 'audience' && audiences?.length ? { audience: audiences } : {};
}

function headerOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

const readText = (file) => fs.readFileSync(file, 'utf8');

/** A `fetch` (the global one) that keeps every client assertion it sent. */
function recordingFetch() {
  const assertions = [];
  const fetch = (input, init) => {
    if (typeof init?.body === 'string') {
      const assertion = new URLSearchParams(init.body).get('client_assertion');
      if (assertion !== null) assertions.push(assertion);
    }
    return globalThis.fetch(input, init);
  };
  return { fetch, assertions };
}

/** Runs `fn(account, events)` and closes the account whatever happens. */
async function withAccount(options, fn) {
  const events = [];
  const account = new ServiceAccount({ backgroundRefresh: false, onEvent: (e) => events.push(e), ...options });
  try {
    return await fn(account, events);
  } finally {
    account.close();
  }
}

// ---- by issuer only -------------------------------------------------------------------

for (const name of ['hydra', 'keycloak']) {
  e2e(`${name}: a token with a client secret, by issuer only`, async (s, t) => {
    const server = serverOr(t, s, name);
    if (!server) return;
    const client = server.clients.basic;
    const options = { issuer: server.issuer, clientId: client.client_id, clientSecret: client.client_secret };
    await withAccount(options, async (account, events) => {
      assert.equal(account.tokenEndpoint, null, 'nothing is discovered before the first token');
      const token = await account.token();
      assert.ok(token.accessToken.length > 0);
      assert.equal(account.tokenEndpoint, server.token_url, 'the discovered token endpoint');
      assert.ok(['client_secret_basic', 'client_secret_post'].includes(account.authMethod), account.authMethod);
      assert.equal(ofType(events, 'discovery_completed').length, 1, JSON.stringify(events.map((e) => e.type)));
      assert.equal(ofType(events, 'token_acquired').length, 1);
      assert.equal(await account.getToken(), token.accessToken, 'then served from the cache');
    });
  });
}

// ---- private_key_jwt and client_secret_jwt --------------------------------------------

for (const role of ['rs256', 'es256']) {
  e2e(`hydra: private_key_jwt (${role}) by issuer, the key from privateKeyFile`, async (s) => {
    const hydra = s.hydra;
    const client = hydra.jwt_clients[role];
    const [key] = client.keys;
    const recorder = recordingFetch();
    const options = {
      issuer: hydra.issuer,
      clientId: client.client_id,
      privateKeyFile: key.private_key_file,
      scope: client.scopes,
      fetch: recorder.fetch,
      ...audienceFor(hydra, client.audience),
    };
    await withAccount(options, async (account) => {
      const token = await account.token();
      assert.ok(token.accessToken.length > 0);
      for (const scope of client.scopes) assert.ok(token.scope.includes(scope), `${scope} not granted: ${token.scope}`);
      assert.equal(account.authMethod, 'private_key_jwt');
      assert.equal(account.tokenEndpoint, hydra.token_url);
      assert.equal(account.options.privateKeyFile, key.private_key_file);
    });
    assert.equal(recorder.assertions.length, 1, 'one token request, one assertion');
    const header = headerOf(recorder.assertions[0]);
    assert.equal(header.kid, key.kid);
    assert.equal(header.alg, client.signing_alg);
  });
}

e2e('keycloak: private_key_jwt with each key (RS256, ES256), and client_secret_jwt (HS256)', async (s, t) => {
  const keycloak = serverOr(t, s, 'keycloak');
  if (!keycloak) return;
  const pk = keycloak.jwt_clients.private_key_jwt;
  assert.deepEqual(pk.keys.map((k) => k.alg), ['RS256', 'ES256']);
  for (const key of pk.keys) {
    const recorder = recordingFetch();
    const options = { issuer: keycloak.issuer, clientId: pk.client_id, privateKeyFile: key.private_key_file, fetch: recorder.fetch };
    await withAccount(options, async (account) => {
      assert.ok((await account.getToken()).length > 0, key.alg);
      assert.equal(account.authMethod, 'private_key_jwt');
    });
    assert.equal(recorder.assertions.length, 1);
    assert.deepEqual([headerOf(recorder.assertions[0]).kid, headerOf(recorder.assertions[0]).alg], [key.kid, key.alg]);
  }
  const hs = keycloak.jwt_clients.client_secret_jwt;
  const recorder = recordingFetch();
  const options = {
    issuer: keycloak.issuer,
    clientId: hs.client_id,
    clientSecret: hs.client_secret,
    authMethod: 'client_secret_jwt',
    fetch: recorder.fetch,
  };
  await withAccount(options, async (account) => {
    assert.ok((await account.getToken()).length > 0);
    assert.equal(account.authMethod, 'client_secret_jwt');
  });
  assert.equal(recorder.assertions.length, 1);
  assert.equal(headerOf(recorder.assertions[0]).alg, 'HS256');
});

e2e('hydra: fromEnv with ISSUER_URL and CLIENT_PRIVATE_KEY_FILE', async (s) => {
  const hydra = s.hydra;
  const client = hydra.jwt_clients.es256;
  const env = {
    BILLING_CLIENT_ID: client.client_id,
    BILLING_ISSUER_URL: hydra.issuer,
    BILLING_CLIENT_PRIVATE_KEY_FILE: client.keys[0].private_key_file,
    BILLING_SCOPE: client.scopes.join(' '),
  };
  const account = ServiceAccount.fromEnv({ prefix: 'BILLING_', env, backgroundRefresh: false });
  try {
    assert.ok((await account.getToken()).length > 0);
    assert.equal(account.authMethod, 'private_key_jwt');
    assert.equal(account.tokenEndpoint, hydra.token_url);
    assert.equal(account.options.privateKeyFile, client.keys[0].private_key_file);
  } finally {
    account.close();
  }
});

// ---- key rotation under load, with no failed call ------------------------------------

/** Hydra: the client's registered keys (admin API, JSON Patch), as an operator would. */
async function hydraSetJwks(hydra, clientId, keys) {
  const response = await fetch(`${hydra.admin_url}/admin/clients/${encodeURIComponent(clientId)}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ op: 'replace', path: '/jwks', value: { keys } }]),
  });
  assert.equal(response.status, 200, `hydra PATCH jwks: ${await response.text()}`);
  await response.body?.cancel().catch(() => {});
}

/** Keycloak's admin REST API, with a fresh admin token (master realm, admin-cli) per call. */
async function keycloakAdmin(keycloak, method, pathname, body) {
  const form = new URLSearchParams({
    grant_type: 'password',
    client_id: 'admin-cli',
    username: keycloak.admin.username,
    password: keycloak.admin.password,
  });
  const login = await fetch(`${keycloak.base_url}/realms/master/protocol/openid-connect/token`, { method: 'POST', body: form });
  assert.equal(login.status, 200, 'keycloak admin login');
  const { access_token: adminToken } = await login.json();
  const response = await fetch(`${keycloak.base_url}/admin/realms/${keycloak.realm}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(response.ok, `keycloak ${method} ${pathname}: HTTP ${response.status}`);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Keycloak keeps a client's keys in its attribute `jwks.string` (use.jwks.string = true). */
async function keycloakSetJwks(keycloak, clientId, keys) {
  const [found] = await keycloakAdmin(keycloak, 'GET', `/clients?clientId=${encodeURIComponent(clientId)}`);
  assert.ok(found?.id, `keycloak: no client ${clientId}`);
  const representation = await keycloakAdmin(keycloak, 'GET', `/clients/${found.id}`);
  representation.attributes = { ...representation.attributes, 'jwks.string': JSON.stringify({ keys }) };
  await keycloakAdmin(keycloak, 'PUT', `/clients/${found.id}`, representation);
}

/**
 * The rotation of Python's test, with concurrent callers throughout: the
 * server learns the new key ([new, old]); the key file is swapped atomically
 * to new + old PEM; once the account reports `keys_replaced`, a fresh token
 * (signed with the new key); the server forgets the old key ([new]); a fresh
 * token again. Returns what was measured; `restore` runs in a finally.
 */
async function rotateUnderLoad({ issuer, clientId, old, next, setServerKeys, restore, extra = {} }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-rotation-'));
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, readText(old.private_key_file), { mode: 0o600 });
  const swap = (text) => {
    const staged = path.join(dir, 'staged');
    fs.writeFileSync(staged, text, { mode: 0o600 });
    fs.renameSync(staged, keyFile);
  };
  const events = [];
  const recorder = recordingFetch();
  const failures = [];
  let calls = 0;
  let stop = false;
  const account = new ServiceAccount({
    issuer,
    clientId,
    privateKeyFile: keyFile,
    fetch: recorder.fetch,
    onEvent: (e) => events.push(e),
    invalidateMinIntervalMs: 0,
    backgroundRefresh: false,
    ...extra,
  });
  const load = async () => {
    while (!stop) {
      try {
        await account.getToken();
        calls++;
      } catch (error) {
        failures.push(error instanceof TokenError ? `${error.kind}: ${error.message}` : inspect(error));
      }
      // A cache hit resolves at once: give the event loop (responses, timers) its turn.
      await yieldToLoop();
    }
  };
  const freshToken = async () => {
    account.invalidate(await account.getToken());
    await account.getToken();
  };
  let mark = 0;
  let workers = [];
  const started = Date.now();
  try {
    await account.getToken();
    // (Discovery's first well-known URL may answer 404: a refresh_failed before this mark is tolerated.)
    mark = events.length;
    workers = Array.from({ length: 4 }, load);
    await setServerKeys([next.public_jwk, old.public_jwk]); // the server learns the new key
    swap(readText(next.private_key_file) + readText(old.private_key_file)); // [new, old]
    await waitFor('keys_replaced', () => ofType(events, 'keys_replaced').length > 0, 30_000);
    await freshToken();
    await setServerKeys([next.public_jwk]); // the old key is removed
    await freshToken();
  } finally {
    stop = true;
    await Promise.all(workers);
    account.close();
    fs.rmSync(dir, { recursive: true, force: true });
    await restore();
  }
  const kids = recorder.assertions.map((a) => headerOf(a).kid);
  return { events, mark, failures, calls, kids, ms: Date.now() - started };
}

function checkRotation(name, outcome, old, next) {
  const { events, mark, failures, calls, kids, ms } = outcome;
  console.log(`${name}: ${calls} calls during the rotation (${ms} ms), ${failures.length} failed; assertions signed by ${JSON.stringify(kids)}`);
  assert.deepEqual(failures, [], `${name}: failed calls`);
  assert.ok(calls > 0, `${name}: the callers ran`);
  const failed = ofType(events, 'refresh_failed', mark);
  assert.deepEqual(failed, [], `${name}: refresh_failed after the first token`);
  const replaced = ofType(events, 'keys_replaced', mark);
  assert.equal(replaced.length, 1, JSON.stringify(replaced));
  assert.equal(replaced[0].count, 2);
  assert.equal(kids[0], old.kid, `${name}: the first token was signed with the old key`);
  assert.deepEqual(kids.slice(-2), [next.kid, next.kid], `${name}: the last two with the new key`);
}

e2e(
  'hydra: a key rotation through privateKeyFile under load, with no failed call',
  async (s) => {
    const hydra = s.hydra;
    const client = hydra.jwt_clients.rotating;
    const [old] = client.keys;
    const next = client.next_key;
    const outcome = await rotateUnderLoad({
      issuer: hydra.issuer,
      clientId: client.client_id,
      old,
      next,
      extra: { scope: client.scopes, ...audienceFor(hydra, client.audience) },
      setServerKeys: (keys) => hydraSetJwks(hydra, client.client_id, keys),
      restore: () => hydraSetJwks(hydra, client.client_id, [old.public_jwk]), // as with-servers.sh made it
    });
    checkRotation('hydra', outcome, old, next);
  },
  180_000,
);

e2e(
  'keycloak: a key rotation through privateKeyFile under load, with no failed call',
  async (s, t) => {
    const keycloak = serverOr(t, s, 'keycloak');
    if (!keycloak) return;
    const client = keycloak.jwt_clients.private_key_jwt;
    const [old, next] = client.keys; // old: the RSA key, new: the EC key
    await keycloakSetJwks(keycloak, client.client_id, [old.public_jwk]);
    const outcome = await rotateUnderLoad({
      issuer: keycloak.issuer,
      clientId: client.client_id,
      old,
      next,
      setServerKeys: (keys) => keycloakSetJwks(keycloak, client.client_id, keys),
      // As with-servers.sh made it: both keys.
      restore: () => keycloakSetJwks(keycloak, client.client_id, [old.public_jwk, next.public_jwk]),
    });
    checkRotation('keycloak', outcome, old, next);
  },
  180_000,
);

// ---- a replayed assertion ----------------------------------------------------------

/**
 * One signed token request, sent twice: the first answer is someone else's
 * (the assertion was stolen and used first); the second is fed to the engine,
 * which must make the refusal a typed error.
 */
async function replayed(tokenUrl, clientId, keyFile, extra = {}) {
  const cache = new TokenCache({ tokenUrl, clientId, privateKey: readText(keyFile), ...extra });
  cache.addEntropy();
  const poll = cache.poll(Date.now());
  assert.equal(poll.result, 'send');
  const { request } = poll;
  assert.equal(request.method, 'POST');
  const send = () => fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
  const stolen = await send();
  assert.equal(stolen.status, 200, `the first use of the assertion: ${await stolen.clone().text()}`);
  await stolen.body?.cancel();
  const again = await send();
  const body = Buffer.from(await again.arrayBuffer());
  return cache.handleResponse(request.fetchId, again.status, again.headers, body, Date.now());
}

function checkRefused(name, outcome) {
  assert.equal(outcome.result, 'error', `${name}: ${inspect(outcome)}`);
  const { error } = outcome;
  assert.ok(error instanceof TokenError, `${name}: ${inspect(error)}`);
  assert.ok(error.status >= 400 && error.status < 500, `${name}: ${inspect(error)}`);
  assert.equal(error.retryable, false, `${name}: ${inspect(error)}`);
  assert.ok(['credentials', 'configuration'].includes(error.fault), `${name}: ${inspect(error)}`);
  console.log(`${name}: the replayed assertion is ${error.kind} (HTTP ${error.status}, ${error.oauthError}, fault ${error.fault})`);
}

e2e('hydra: a replayed assertion is refused as a typed error', async (s) => {
  const hydra = s.hydra;
  const client = hydra.jwt_clients.es256;
  const outcome = await replayed(hydra.token_url, client.client_id, client.keys[0].private_key_file, {
    scope: client.scopes,
  });
  checkRefused('hydra', outcome);
});

e2e('keycloak: a replayed assertion is refused as a typed error', async (s, t) => {
  const keycloak = serverOr(t, s, 'keycloak');
  if (!keycloak) return;
  const client = keycloak.jwt_clients.private_key_jwt;
  const outcome = await replayed(keycloak.token_url, client.client_id, client.keys[0].private_key_file);
  checkRefused('keycloak', outcome);
});
