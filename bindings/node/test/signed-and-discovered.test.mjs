// Issue 12 through the Node host, against loopback servers (helpers.mjs):
// issuer discovery (GETs without a body, then the token request), signed
// client assertions (private_key_jwt) that the test server decodes and
// verifies with node:crypto, host entropy (two accounts with one seed and one
// clock never sign the same `jti`), a key file swapped under a running
// account, and a private key that never shows anywhere. The Python host's
// tests/test_signed_and_discovered.py checks the same behaviour.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { fileURLToPath } from 'node:url';
// tokenwell/signed: scenarios sign with RSA and EC keys, which the default wasm engine leaves out.
import { ServiceAccount, TokenCache, TokenError } from '../signed.js';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const KEYS = path.join(here, '../../../tests/conformance/keys');
const P256_JWK = fs.readFileSync(path.join(KEYS, 'test-only-p256.jwk.json'), 'utf8');
const P256_PEM = fs.readFileSync(path.join(KEYS, 'test-only-p256.pkcs8.pem'), 'utf8');
const RSA_JWK = fs.readFileSync(path.join(KEYS, 'test-only-rsa-2048.jwk.json'), 'utf8');
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CLIENT = 'billing-worker';
const START = 1_700_000_000_000;

/** Strings that would reveal a private key if they showed anywhere. */
function privateParts() {
  const parts = [];
  for (const text of [P256_JWK, RSA_JWK]) {
    const key = JSON.parse(text);
    for (const name of ['d', 'p', 'q', 'dp', 'dq', 'qi']) if (key[name]) parts.push(key[name]);
  }
  for (const line of P256_PEM.split('\n')) if (line && !line.startsWith('-----')) parts.push(line);
  return parts;
}

const unb64 = (text) => Buffer.from(text, 'base64url');

/** A client assertion as the server receives it. */
function decode(jwt) {
  const [head, claims, signature] = jwt.split('.');
  return {
    jwt,
    signingInput: Buffer.from(`${head}.${claims}`),
    header: JSON.parse(unb64(head)),
    claims: JSON.parse(unb64(claims)),
    signature: unb64(signature),
  };
}

/** The signature is the key's (its public half, from the JWK) over the signing input. */
function verify(assertion, jwkText) {
  const jwk = JSON.parse(jwkText);
  assert.equal(assertion.header.alg, jwk.alg);
  const { d, p, q, dp, dq, qi, ...publicJwk } = jwk;
  const key = crypto.createPublicKey({ key: publicJwk, format: 'jwk' });
  const ok =
    jwk.alg === 'ES256'
      ? crypto.verify('sha256', assertion.signingInput, { key, dsaEncoding: 'ieee-p1363' }, assertion.signature)
      : crypto.verify('sha256', assertion.signingInput, key, assertion.signature);
  assert.ok(ok, `the ${jwk.alg} signature verifies with the public key`);
}

function checkClaims(assertion, aud, now) {
  const { claims, header } = assertion;
  assert.equal(claims.iss, CLIENT);
  assert.equal(claims.sub, CLIENT);
  assert.equal(claims.aud, aud);
  assert.equal(claims.iat, Math.floor(now / 1000));
  assert.equal(claims.exp - claims.iat, 60);
  assert.ok(typeof claims.jti === 'string' && claims.jti.length >= 16, claims.jti);
  assert.equal(header.typ, 'JWT');
}

/**
 * A loopback authorization server: metadata at OpenID Connect's well-known
 * path (RFC 8414's answers 404), and a token endpoint that takes only signed
 * assertions when `signed`, decoding each one into `assertions`.
 */
async function authServer({ methods, signed = false, metadata = {} } = {}) {
  const assertions = [];
  const server = await startScriptedTokenServer((request, n) => {
    if (request.method === 'GET') {
      if (request.url !== '/.well-known/openid-configuration') return { status: 404, body: '{}' };
      const doc = { issuer: server.base, token_endpoint: server.url, ...metadata };
      if (methods) doc.token_endpoint_auth_methods_supported = methods;
      return { status: 200, body: doc };
    }
    const tokens = server.requests.filter((r) => r.method === 'POST').length;
    if (signed) {
      const form = new URLSearchParams(request.body);
      if (form.get('client_assertion_type') !== ASSERTION_TYPE || form.getAll('client_assertion').length !== 1) {
        return { status: 401, body: { error: 'invalid_client', error_description: 'no client assertion' } };
      }
      assertions.push(decode(form.get('client_assertion')));
    }
    return { status: 200, body: { access_token: `at-${tokens}`, token_type: 'bearer', expires_in: 300 } };
  });
  server.assertions = assertions;
  server.gets = () => server.requests.filter((r) => r.method === 'GET');
  server.posts = () => server.requests.filter((r) => r.method === 'POST');
  return server;
}

/** RFC 8414's URL first (404 here), then OpenID Connect's; both GETs without a body or Content-Type. */
function checkDiscoveryGets(server) {
  const gets = server.gets();
  assert.deepEqual(
    gets.map((r) => r.url),
    ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'],
  );
  for (const r of gets) {
    assert.equal(r.body, '');
    assert.equal(r.headers['content-type'], undefined);
    assert.ok((r.headers['content-length'] ?? '0') === '0', JSON.stringify(r.headers));
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.headers.accept, 'application/json');
  }
}

test('issuer discovery, then the token request, on the default transport', async () => {
  const server = await authServer({ methods: ['client_secret_post', 'client_secret_basic'] });
  const events = [];
  const account = new ServiceAccount({
    issuer: server.base,
    clientId: CLIENT,
    clientSecret: 's3cr3t',
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.options.issuer, server.base);
    assert.equal(account.options.tokenUrl, '');
    assert.equal(account.tokenEndpoint, null);
    assert.equal(await account.getToken(), 'at-1');
    checkDiscoveryGets(server);
    const [post] = server.posts();
    assert.equal(post.url, '/oauth2/token');
    assert.equal(post.headers.authorization, `Basic ${Buffer.from(`${CLIENT}:s3cr3t`).toString('base64')}`);
    assert.equal(account.tokenEndpoint, server.url);
    assert.equal(account.authMethod, 'client_secret_basic');
    const completed = events.filter((e) => e.type === 'discovery_completed');
    assert.deepEqual(completed.map((e) => e.tokenEndpoint), [server.url]);
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(server.gets().length, 2, 'the document is cached');
  } finally {
    account.close();
    await server.close();
  }
});

test('an issuer mismatch is a config error, and no token request goes out', async () => {
  const server = await authServer({ metadata: {} });
  const account = new ServiceAccount({ issuer: `${server.base}/elsewhere`, clientId: CLIENT, clientSecret: 's', backgroundRefresh: false });
  try {
    await assert.rejects(account.getToken(), (error) => {
      assert.ok(error instanceof TokenError, String(error));
      assert.ok(['issuer_mismatch', 'discovery_failed'].includes(error.kind), error.kind);
      assert.equal(error.retryable, false);
      return true;
    });
    assert.equal(server.posts().length, 0);
  } finally {
    account.close();
    await server.close();
  }
});

test('a signed assertion the server decodes and verifies, a fresh jti per request', async () => {
  const server = await authServer({ signed: true });
  const clock = virtualClock(START);
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKey: P256_JWK,
    scope: 'billing:read',
    clock,
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.authMethod, 'private_key_jwt');
    assert.equal(account.keyCount, 1);
    assert.equal(await account.getToken(), 'at-1');
    clock.advance(300_000); // the token expired: a second request, a second assertion
    assert.equal(await account.getToken(), 'at-2');
  } finally {
    account.close();
    await server.close();
  }
  const [first, second] = server.assertions;
  for (const [assertion, now] of [
    [first, START],
    [second, START + 300_000],
  ]) {
    assert.equal(assertion.header.alg, 'ES256');
    assert.equal(assertion.header.kid, 'test-only-p256');
    checkClaims(assertion, server.url, now);
    verify(assertion, P256_JWK);
  }
  assert.notEqual(first.claims.jti, second.claims.jti);
  for (const request of server.posts()) {
    const form = new URLSearchParams(request.body);
    assert.equal(form.get('grant_type'), 'client_credentials');
    assert.equal(form.get('scope'), 'billing:read');
    assert.equal(form.get('client_secret'), null);
    assert.equal(request.headers.authorization, undefined);
  }
});

test('discovered private_key_jwt with a PEM key, the issuer as audience', async () => {
  const server = await authServer({ methods: ['client_secret_basic', 'private_key_jwt'], signed: true });
  const clock = virtualClock(START);
  const account = new ServiceAccount({
    issuer: server.base,
    clientId: CLIENT,
    privateKey: [P256_PEM],
    assertionAudience: 'issuer',
    assertionSigningAlg: 'ES256',
    clock,
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(account.authMethod, 'private_key_jwt');
  } finally {
    account.close();
    await server.close();
  }
  checkDiscoveryGets(server);
  const [assertion] = server.assertions;
  checkClaims(assertion, server.base, START);
  verify(assertion, P256_JWK);
});

test('two accounts with one seed and one clock (a fork) never sign the same jti', async () => {
  const jtis = [];
  for (let i = 0; i < 2; i++) {
    const bodies = [];
    const account = new ServiceAccount({
      tokenUrl: 'http://127.0.0.1:9/t',
      clientId: CLIENT,
      privateKey: P256_JWK,
      entropy: 7,
      clock: virtualClock(START),
      backgroundRefresh: false,
      fetch: async (url, init) => {
        bodies.push(init.body);
        return new Response('{"access_token":"at-1","token_type":"bearer","expires_in":300}');
      },
    });
    await account.getToken();
    account.close();
    jtis.push(decode(new URLSearchParams(bodies[0]).get('client_assertion')).claims.jti);
  }
  assert.notEqual(jtis[0], jtis[1]);
  // The engine alone is deterministic: one seed, no host entropy, one jti; addEntropy separates them.
  const jtiOf = (cache) => decode(new URLSearchParams(cache.poll(START).request.body).get('client_assertion')).claims.jti;
  const options = { tokenUrl: 'https://a.example/t', clientId: CLIENT, privateKey: P256_JWK };
  assert.equal(jtiOf(new TokenCache(options, 7)), jtiOf(new TokenCache(options, 7)));
  const a = new TokenCache(options, 7);
  const b = new TokenCache(options, 7);
  a.addEntropy(new Uint8Array([1]));
  b.addEntropy();
  assert.notEqual(jtiOf(a), jtiOf(b));
  assert.throws(() => a.addEntropy('not bytes'), TypeError);
});

function replaceFile(file, text) {
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
}

test('fromEnv: CLIENT_PRIVATE_KEY_FILE is read, and a swapped key file is picked up', async () => {
  const server = await authServer({ methods: ['private_key_jwt'], signed: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-keys-'));
  const keyFile = path.join(dir, 'client-key');
  replaceFile(keyFile, P256_JWK);
  const clock = virtualClock(START);
  const events = [];
  const env = { BILLING_CLIENT_ID: CLIENT, BILLING_ISSUER_URL: server.base, BILLING_CLIENT_PRIVATE_KEY_FILE: keyFile };
  const account = ServiceAccount.fromEnv({ prefix: 'BILLING_', env, clock, onEvent: (e) => events.push(e), backgroundRefresh: false });
  try {
    assert.equal(account.options.privateKeyFile, keyFile);
    assert.equal(account.keyCount, 1);
    assert.equal(await account.getToken(), 'at-1');
    // A rotation: [new, old] swapped in (a rename, as Kubernetes does).
    replaceFile(keyFile, JSON.stringify({ keys: [JSON.parse(RSA_JWK), JSON.parse(P256_JWK)] }));
    clock.advance(1000); // the watch's next look
    assert.equal(await account.getToken(), 'at-1');
    assert.deepEqual(events.filter((e) => e.type === 'keys_replaced').map((e) => e.count), [2]);
    assert.equal(account.keyCount, 2);
    clock.advance(300_000);
    assert.equal(await account.getToken(), 'at-2');
    // A file that holds no key: the keys in use stay, one event names the variable.
    replaceFile(keyFile, 'hunter2');
    clock.advance(1000);
    assert.equal(await account.getToken(), 'at-2');
    const rejected = events.filter((e) => e.type === 'secret_file_rejected');
    assert.deepEqual(rejected.map((e) => e.source), ['BILLING_CLIENT_PRIVATE_KEY_FILE']);
    assert.equal(account.keyCount, 2);
    assert.ok(!JSON.stringify(events).includes('hunter2'));
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const [old, current] = server.assertions;
  assert.deepEqual([old.header.kid, current.header.kid], ['test-only-p256', 'test-only-rsa-2048']);
  assert.equal(current.header.alg, 'RS256');
  checkClaims(current, server.url, START + 301_000);
  verify(old, P256_JWK);
  verify(current, RSA_JWK);
});

test('the private key never shows in errors, events, options or inspect output', async () => {
  const events = [];
  const sent = [];
  const account = new ServiceAccount({
    tokenUrl: 'http://127.0.0.1:9/t',
    clientId: CLIENT,
    privateKey: [P256_PEM, RSA_JWK],
    clock: virtualClock(START),
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
    fetch: async (url, init) => {
      sent.push(init);
      return new Response('{"access_token":"at-1","token_type":"bearer","expires_in":300}');
    },
  });
  await account.getToken();
  const jwt = new URLSearchParams(sent[0].body).get('client_assertion');
  const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: CLIENT, privateKey: P256_PEM });
  const poll = cache.poll(START);
  const texts = [
    util.inspect(account),
    JSON.stringify(account),
    JSON.stringify(account.options),
    util.inspect(cache),
    JSON.stringify(cache),
    util.inspect(poll.request),
    JSON.stringify(poll.request),
    util.inspect(poll),
    JSON.stringify(events),
  ];
  assert.equal(account.options.privateKey, '[redacted]');
  assert.ok(JSON.stringify(poll.request).includes('client_assertion=[redacted]'));
  // Refusals: a broken key, a key the algorithm does not fit, a key file with no valid key.
  const broken = P256_PEM.replace('MIGHAgEAMBMG', 'MIGHAgEAMBMX');
  const refusals = [{ privateKey: broken }, { privateKey: P256_PEM, assertionSigningAlg: 'RS256' }];
  for (const options of refusals) {
    assert.throws(
      () => new ServiceAccount({ tokenUrl: 'http://127.0.0.1:9/t', clientId: CLIENT, ...options }),
      (error) => {
        assert.ok(error instanceof TokenError && error.kind === 'config', String(error));
        texts.push(String(error), util.inspect(error), JSON.stringify(error), error.problem ?? '');
        return true;
      },
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-keys-'));
  const half = path.join(dir, 'key');
  fs.writeFileSync(half, P256_PEM.slice(0, P256_PEM.length / 2));
  assert.throws(
    () => ServiceAccount.fromEnv({ env: { CLIENT_ID: CLIENT, TOKEN_URL: 'http://127.0.0.1:9/t', CLIENT_PRIVATE_KEY_FILE: half } }),
    (error) => {
      assert.equal(error.field, 'CLIENT_PRIVATE_KEY_FILE');
      texts.push(String(error), util.inspect(error), JSON.stringify(error));
      return true;
    },
  );
  fs.rmSync(dir, { recursive: true, force: true });
  account.close();
  for (const text of texts) {
    for (const part of privateParts()) assert.ok(!text.includes(part), text);
    assert.ok(!text.includes(jwt) && !text.includes(jwt.split('.')[2]), `the assertion is a credential too: ${text}`);
  }
});
