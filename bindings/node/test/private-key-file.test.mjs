// The `privateKeyFile` option (issue 12): the private key (PEM blocks, or a
// JWK / JWKS; current first) read from a file at construction and re-read when
// the file changes, by the secret file's rule (the engine's SecretFileWatch).
// The JS layer only reads the file: what it holds, whether it is usable and
// what an error says are the engine's (`parse_key_file`,
// `replace_keys_from_file`), as in Python's `private_key_file`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { fileURLToPath } from 'node:url';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// RSA and EC keys: `tokenwell/signed` where the package has it (its default wasm engine leaves RS/PS/ES signing out).
const entry = fs.existsSync(path.join(here, '../signed.js')) ? '../signed.js' : '../index.js';
const { ServiceAccount, TokenError } = await import(entry);
const KEYS = path.join(here, '../../../tests/conformance/keys');
const read = (name) => fs.readFileSync(path.join(KEYS, name), 'utf8');
const P256_PEM = read('test-only-p256.pkcs8.pem');
const P256_JWK = read('test-only-p256.jwk.json');
const RSA_PEM = read('test-only-rsa-2048.pkcs8.pem');
const RSA_JWK = read('test-only-rsa-2048.jwk.json');
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const CLIENT = 'billing-worker';
const START = 1_700_000_000_000;
/** The engine's SecretFileWatch interval: a changed file is seen at the first look after it. */
const LOOK = 1_000;

/** Lines of the private keys' PEM bodies and JWK private members: none may ever show. */
function privateParts() {
  const parts = [];
  for (const pem of [P256_PEM, RSA_PEM]) for (const line of pem.split('\n')) if (line && !line.startsWith('-----')) parts.push(line);
  for (const text of [P256_JWK, RSA_JWK]) {
    const key = JSON.parse(text);
    for (const name of ['d', 'p', 'q', 'dp', 'dq', 'qi']) if (key[name]) parts.push(key[name]);
  }
  return parts;
}

function assertNoKeyMaterial(text, where) {
  for (const part of privateParts()) assert.ok(!text.includes(part), `key material in ${where}: ${text}`);
}

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-key-file-'));
}

/** Replaces `file` by a rename, as Kubernetes and `mv` do. */
function replaceFile(file, text) {
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
}

/** The client assertion a token request carried, decoded (not verified). */
function assertionOf(request) {
  const form = new URLSearchParams(request.body);
  assert.equal(form.get('client_assertion_type'), ASSERTION_TYPE);
  assert.equal(form.get('client_secret'), null);
  const jwt = form.get('client_assertion');
  const [head, claims, signature] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(head, 'base64url')),
    claims: JSON.parse(Buffer.from(claims, 'base64url')),
    signingInput: Buffer.from(`${head}.${claims}`),
    signature: Buffer.from(signature, 'base64url'),
  };
}

/** Whether the assertion was signed by the key whose JWK is `jwkText`. */
function signedBy(assertion, jwkText) {
  const { d, p, q, dp, dq, qi, ...publicJwk } = JSON.parse(jwkText);
  const key = crypto.createPublicKey({ key: publicJwk, format: 'jwk' });
  if (publicJwk.kty === 'EC') {
    return crypto.verify('sha256', assertion.signingInput, { key, dsaEncoding: 'ieee-p1363' }, assertion.signature);
  }
  return crypto.verify('sha256', assertion.signingInput, key, assertion.signature);
}

/** A token endpoint that takes signed assertions only; `at-<n>` for 300 s. */
async function signedTokenServer() {
  return startScriptedTokenServer((request, n) => {
    const form = new URLSearchParams(request.body);
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'no client assertion' } };
    }
    return { status: 200, body: { access_token: `at-${n}`, token_type: 'bearer', expires_in: 300 } };
  });
}

/** Calls `fn`, which must throw a `config` TokenError; returns it. */
function configErrorOf(fn) {
  let thrown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof TokenError, `not a TokenError: ${util.inspect(thrown)}`);
  assert.equal(thrown.kind, 'config', util.inspect(thrown));
  assert.equal(thrown.fault, 'configuration');
  assert.equal(thrown.retryable, false);
  return thrown;
}

/** Every way an error is shown: none may hold key material. */
function errorTexts(error) {
  return [error.message, String(error), error.stack, util.inspect(error), JSON.stringify(error), error.problem ?? ''];
}

test('privateKeyFile: a PEM key read from a file signs private_key_jwt assertions', async () => {
  const server = await signedTokenServer();
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, P256_PEM);
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKeyFile: keyFile,
    scope: 'billing:read',
    clock: virtualClock(START),
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.authMethod, 'private_key_jwt', 'keys and no secret: the engine picks private_key_jwt');
    assert.equal(account.keyCount, 1);
    assert.equal(account.options.privateKeyFile, keyFile);
    assert.equal(account.options.privateKey, '[redacted]');
    assert.equal(await account.getToken(), 'at-1');
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const assertion = assertionOf(server.requests[0]);
  assert.equal(assertion.header.alg, 'ES256');
  assert.equal(assertion.claims.iss, CLIENT);
  assert.equal(assertion.claims.aud, server.url);
  assert.ok(signedBy(assertion, P256_JWK), 'signed with the key in the file');
  for (const text of [util.inspect(account), JSON.stringify(account), JSON.stringify(account.options)]) {
    assertNoKeyMaterial(text, 'the account');
  }
});

test('privateKeyFile: a JWKS file, and the signing algorithm applies to keys that name none', async () => {
  const server = await signedTokenServer();
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-keys.json');
  // A JWKS [new, old]: the current key first.
  const { alg, ...rsaWithoutAlg } = JSON.parse(RSA_JWK);
  fs.writeFileSync(keyFile, JSON.stringify({ keys: [rsaWithoutAlg, JSON.parse(P256_JWK)] }));
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKeyFile: keyFile,
    assertionSigningAlg: 'PS256',
    clock: virtualClock(START),
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.keyCount, 2);
    assert.equal(await account.getToken(), 'at-1');
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(assertionOf(server.requests[0]).header.alg, 'PS256');
  assert.equal(assertionOf(server.requests[0]).header.kid, 'test-only-rsa-2048');
});

test('privateKeyFile rotation: [new, old] swapped in is keys_replaced, and the next assertion is signed with the new key', async () => {
  const server = await signedTokenServer();
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, P256_PEM);
  const clock = virtualClock(START);
  const events = [];
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKeyFile: keyFile,
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    // The rotation: new + old PEM in one file, renamed over the old one.
    replaceFile(keyFile, RSA_PEM + P256_PEM);
    clock.advance(LOOK - 1);
    assert.equal(await account.getToken(), 'at-1', 'a cache hit until the watch looks again');
    assert.deepEqual(events.filter((e) => e.type === 'keys_replaced'), [], 'not looked at yet');
    clock.advance(1);
    assert.equal(await account.getToken(), 'at-1', 'the token in hand is still served');
    const replaced = events.filter((e) => e.type === 'keys_replaced');
    assert.equal(replaced.length, 1, JSON.stringify(events));
    assert.equal(replaced[0].count, 2);
    assert.equal(replaced[0].actorId, CLIENT);
    assert.equal(account.keyCount, 2);
    assert.equal(account.authMethod, 'private_key_jwt');
    // The file unchanged: no second event at the next looks.
    clock.advance(LOOK);
    await account.getToken();
    assert.equal(events.filter((e) => e.type === 'keys_replaced').length, 1);
    // The next token request is signed with the new key (the first in the file).
    clock.advance(300_000);
    assert.equal(await account.getToken(), 'at-2');
    // Only the new key left.
    replaceFile(keyFile, RSA_PEM);
    clock.advance(LOOK);
    await account.getToken();
    assert.deepEqual(events.filter((e) => e.type === 'keys_replaced').map((e) => e.count), [2, 1]);
    assert.equal(account.keyCount, 1);
    assert.equal(events.filter((e) => e.type === 'secret_file_rejected').length, 0);
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const [old, current] = server.requests.map(assertionOf);
  assert.equal(old.header.alg, 'ES256');
  assert.ok(signedBy(old, P256_JWK), 'the first assertion: the old key');
  assert.equal(current.header.alg, 'RS256');
  assert.ok(signedBy(current, RSA_JWK), 'after the rotation: the new key');
  assertNoKeyMaterial(JSON.stringify(events), 'the events');
});

test('privateKeyFile: a rotated file is looked at at once after invalid_client', async () => {
  // The server already refuses the old key; the new file is in place, but the watch is not due.
  let accepted = P256_JWK;
  const server = await startScriptedTokenServer((request, n) => {
    const ok = signedBy(assertionOf(request), accepted);
    return ok
      ? { status: 200, body: { access_token: `at-${n}`, token_type: 'bearer', expires_in: 300 } }
      : { status: 401, body: { error: 'invalid_client', error_description: 'unknown key' } };
  });
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, P256_PEM);
  const clock = virtualClock(START);
  const events = [];
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKeyFile: keyFile,
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    clock.advance(5 * LOOK);
    assert.equal(await account.getToken(), 'at-1'); // the watch looks: the file is unchanged
    accepted = RSA_JWK;
    replaceFile(keyFile, RSA_PEM);
    // An API refused the token: a new one is fetched now, before the watch is due again.
    assert.equal(account.invalidate('at-1'), 'invalidated');
    const token = await account.getToken();
    const types = events.map((e) => e.type).filter((t) => t !== 'refresh_started' && t !== 'token_invalidated');
    assert.deepEqual(types, ['token_acquired', 'refresh_failed', 'backoff_scheduled', 'keys_replaced', 'token_acquired']);
    assert.equal(events.find((e) => e.type === 'keys_replaced').holdLifted, true);
    assert.equal(events.find((e) => e.type === 'refresh_failed').error.kind, 'invalid_client');
    // The new key lifted the hold: the same call got a token, signed with it.
    assert.equal(token, 'at-3');
    assert.equal(server.requests.length, 3);
    assert.ok(signedBy(assertionOf(server.requests[2]), RSA_JWK));
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('privateKeyFile: a bad file at construction is a config error naming the option, never quoting the file', () => {
  const dir = tempDir();
  const options = { tokenUrl: 'http://127.0.0.1:9/t', clientId: CLIENT };
  try {
    const cases = {
      // Not a key at all.
      garbage: 'hunter2 is not a key',
      // Half a key: the PEM body is key material, and must not be echoed.
      half: P256_PEM.slice(0, P256_PEM.length / 2),
      // A PEM block that is not a key.
      'not a key': '-----BEGIN PRIVATE KEY-----\naHVudGVyMg==\n-----END PRIVATE KEY-----\n',
      // A public key only.
      public: JSON.stringify((({ d, ...rest }) => rest)(JSON.parse(P256_JWK))),
      empty: '',
    };
    for (const [name, text] of Object.entries(cases)) {
      const file = path.join(dir, name.replace(/ /g, '-'));
      fs.writeFileSync(file, text);
      const error = configErrorOf(() => new ServiceAccount({ ...options, privateKeyFile: file }));
      assert.equal(error.field, 'privateKeyFile', `${name}: ${error.message}`);
      assert.match(error.problem, /^the key file/, name);
      for (const shown of errorTexts(error)) {
        assertNoKeyMaterial(shown, `${name}'s error`);
        assert.ok(!shown.includes('hunter2') && !shown.includes('aHVudGVyMg'), `${name}: the file is quoted: ${shown}`);
      }
    }
    // Unreadable: missing, or a directory.
    for (const [file, code] of [
      [path.join(dir, 'missing'), 'ENOENT'],
      [dir, 'EISDIR'],
    ]) {
      const error = configErrorOf(() => new ServiceAccount({ ...options, privateKeyFile: file }));
      assert.equal(error.field, 'privateKeyFile');
      assert.equal(error.problem, `cannot read the key file ${file} (${code})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('privateKeyFile with privateKey is a config error from the engine; a secret beside it is the engine\'s call', () => {
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  const secretFile = path.join(dir, 'client-secret');
  fs.writeFileSync(keyFile, P256_PEM);
  fs.writeFileSync(secretFile, 's3cr3t\n');
  const options = { tokenUrl: 'http://127.0.0.1:9/t', clientId: CLIENT, backgroundRefresh: false };
  try {
    const twice = configErrorOf(() => new ServiceAccount({ ...options, privateKey: RSA_PEM, privateKeyFile: keyFile }));
    assert.equal(twice.field, 'privateKey');
    assert.equal(twice.problem, 'set only one of private_key and private_key_file');
    for (const shown of errorTexts(twice)) assertNoKeyMaterial(shown, 'the error');
    const secrets = configErrorOf(() => new ServiceAccount({ ...options, clientSecret: 'x', clientSecretFile: secretFile }));
    assert.equal(secrets.field, 'clientSecret');
    // A key file with a secret (or a secret file): the secret is used (Basic) unless authMethod says otherwise.
    for (const secret of [{ clientSecret: 's3cr3t' }, { clientSecretFile: secretFile }]) {
      const basic = new ServiceAccount({ ...options, ...secret, privateKeyFile: keyFile });
      assert.deepEqual([basic.authMethod, basic.keyCount, basic.secretCount], ['client_secret_basic', 1, 1]);
      basic.close();
      const signed = new ServiceAccount({ ...options, ...secret, privateKeyFile: keyFile, authMethod: 'private_key_jwt' });
      assert.deepEqual([signed.authMethod, signed.keyCount], ['private_key_jwt', 1]);
      signed.close();
    }
    // An HMAC method with a key file only: the engine says what is missing.
    const hmac = configErrorOf(() => new ServiceAccount({ ...options, privateKeyFile: keyFile, authMethod: 'client_secret_jwt' }));
    assert.equal(hmac.field, 'clientSecret');
    assert.throws(() => new ServiceAccount({ ...options, privateKeyFile: 42 }), TypeError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('privateKeyFile: a file that turns bad keeps the keys in use, with one secret_file_rejected naming the option', async () => {
  const server = await signedTokenServer();
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, P256_PEM);
  const clock = virtualClock(START);
  const events = [];
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT,
    privateKeyFile: keyFile,
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  const rejected = () => events.filter((e) => e.type === 'secret_file_rejected');
  try {
    assert.equal(await account.getToken(), 'at-1');
    // Garbage with key material in it (half a key).
    replaceFile(keyFile, RSA_PEM.slice(0, 900));
    clock.advance(LOOK);
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(rejected().length, 1);
    assert.equal(rejected()[0].source, 'privateKeyFile');
    assert.equal(account.keyCount, 1);
    // Read once: an invalid file is not read again until it changes.
    clock.advance(LOOK);
    await account.getToken();
    assert.equal(rejected().length, 1);
    // The file is gone: reported, the keys stay.
    fs.rmSync(keyFile);
    clock.advance(LOOK);
    await account.getToken();
    assert.equal(rejected().length, 2);
    assert.match(rejected()[1].problem, /cannot read the key file .* \(ENOENT\)/);
    // The old key still signs.
    clock.advance(300_000);
    assert.equal(await account.getToken(), 'at-2');
    assert.ok(signedBy(assertionOf(server.requests[1]), P256_JWK));
    assert.deepEqual(events.filter((e) => e.type === 'keys_replaced'), []);
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assertNoKeyMaterial(JSON.stringify(events), 'the events');
});

test('fromEnv: an explicit privateKeyFile replaces CLIENT_PRIVATE_KEY_FILE, which is not read', async () => {
  const server = await signedTokenServer();
  const dir = tempDir();
  const keyFile = path.join(dir, 'client-key.pem');
  fs.writeFileSync(keyFile, P256_PEM);
  const env = { CLIENT_ID: CLIENT, TOKEN_URL: server.url, CLIENT_PRIVATE_KEY_FILE: path.join(dir, 'missing') };
  const clock = virtualClock(START);
  const events = [];
  const account = ServiceAccount.fromEnv({
    env,
    privateKeyFile: keyFile,
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.options.privateKeyFile, keyFile);
    assert.equal(account.keyCount, 1);
    assert.equal(await account.getToken(), 'at-1');
    replaceFile(keyFile, 'hunter2');
    clock.advance(LOOK);
    await account.getToken();
    assert.deepEqual(events.filter((e) => e.type === 'secret_file_rejected').map((e) => e.source), ['privateKeyFile']);
  } finally {
    account.close();
    await server.close();
  }
  try {
    fs.writeFileSync(keyFile, P256_PEM);
    const bad = path.join(dir, 'bad');
    fs.writeFileSync(bad, 'hunter2');
    const error = configErrorOf(() => ServiceAccount.fromEnv({ env, privateKeyFile: bad }));
    assert.equal(error.field, 'privateKeyFile');
    assert.ok(!error.message.includes('hunter2'));
    const twice = configErrorOf(() => ServiceAccount.fromEnv({ env, privateKey: P256_PEM, privateKeyFile: keyFile }));
    assert.equal(twice.field, 'privateKey');
    // Without any key or secret in the environment, the explicit file is enough.
    const plain = ServiceAccount.fromEnv({ env: { CLIENT_ID: CLIENT, TOKEN_URL: server.url }, privateKeyFile: keyFile });
    assert.deepEqual([plain.authMethod, plain.keyCount], ['private_key_jwt', 1]);
    plain.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
