// fromEnv (errors name the variable), clientSecretFile reload, and redaction of
// the account, its options and its errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { ServiceAccount, TokenError } from '../index.js';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

const SECRET = 'Sup3r-s3cret+value';

function configErrorOf(fn) {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TokenError, `a TokenError, got ${error}`);
    assert.equal(error.kind, 'config');
    return error;
  }
  assert.fail('no error');
}

function assertNoSecret(...texts) {
  for (const text of texts) {
    assert.ok(!text.includes(SECRET), `a secret leaked: ${text}`);
    assert.ok(!text.includes(encodeURIComponent(SECRET)), `a secret leaked: ${text}`);
  }
}

test('fromEnv: missing or malformed values are reported by variable name, the secret never echoed', () => {
  const full = { CLIENT_ID: 'billing', CLIENT_SECRET: SECRET, TOKEN_URL: 'https://auth.example/oauth2/token' };
  const cases = [
    [{ ...full, CLIENT_ID: undefined }, '', 'CLIENT_ID'],
    [{ ...full, CLIENT_SECRET: undefined }, '', 'CLIENT_SECRET'],
    [{ ...full, TOKEN_URL: undefined }, '', 'TOKEN_URL'],
    [{ ...full, TOKEN_URL: 'not a url' }, '', 'TOKEN_URL'],
    [{ ...full, TOKEN_URL: `https://u:${SECRET}@auth.example/t` }, '', 'TOKEN_URL'],
    [{ ...full, AUTH_METHOD: 'basic' }, '', 'AUTH_METHOD'],
    [{ ...full, SCOPE: 'ok "bad"' }, '', 'SCOPE[1]'],
    [{ ...full, CLIENT_SECRET_FILE: '/nonexistent/secret' }, '', 'CLIENT_SECRET'],
    [{ CLIENT_ID: 'billing', CLIENT_SECRET_FILE: '/nonexistent/secret', TOKEN_URL: full.TOKEN_URL }, '', 'CLIENT_SECRET_FILE'],
    [{ BILLING_CLIENT_ID: 'b', BILLING_CLIENT_SECRET: SECRET }, 'BILLING_', 'BILLING_TOKEN_URL'],
    [{ ...full }, 'BILLING_', 'BILLING_CLIENT_ID'],
  ];
  for (const [env, prefix, variable] of cases) {
    const error = configErrorOf(() => ServiceAccount.fromEnv({ prefix, env }));
    assert.equal(error.field, variable, JSON.stringify(env));
    assert.match(error.message, new RegExp(variable.replace(/[[\]]/g, '\\$&')));
    assertNoSecret(error.message, error.stack, inspect(error), JSON.stringify(error));
  }
  // A non-environment option given beside it is named as the caller wrote it.
  const error = configErrorOf(() => ServiceAccount.fromEnv({ env: full, timeoutMs: 0 }));
  assert.equal(error.field, 'timeoutMs');
  const margin = configErrorOf(() => ServiceAccount.fromEnv({ env: full, refreshMarginSeconds: 'soon' }));
  assert.equal(margin.field, 'refreshMarginSeconds');
});

test('fromEnv: a prefixed configuration with HYDRA_URL works end to end', async () => {
  const server = await startScriptedTokenServer();
  const account = ServiceAccount.fromEnv({
    prefix: 'BILLING_',
    env: {
      BILLING_CLIENT_ID: 'billing',
      BILLING_CLIENT_SECRET: `${SECRET}, previous-secret`,
      BILLING_HYDRA_URL: `${server.base}/`,
      BILLING_SCOPE: 'billing:read billing:write',
      BILLING_AUDIENCE: 'https://api.example',
      CLIENT_ID: 'someone-else',
    },
    timeoutMs: 2000,
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.options.tokenUrl, server.url);
    assert.equal(account.options.timeoutMs, 2000);
    assert.deepEqual(account.options.scope, ['billing:read', 'billing:write']);
    assert.equal(await account.getToken(), 'at-1');
    assert.match(server.requests[0].body, /scope=billing%3Aread\+billing%3Awrite&audience=https%3A%2F%2Fapi\.example/);
    assertNoSecret(inspect(account), JSON.stringify(account), inspect(account.options));
  } finally {
    account.close();
    await server.close();
  }
});

/** A token server that accepts only `allowed.secret` (Basic auth). */
async function secretCheckingServer(allowed) {
  return startScriptedTokenServer((req, n) => {
    const [, secret] = Buffer.from(req.headers.authorization.replace('Basic ', ''), 'base64').toString().split(':');
    req.secret = decodeURIComponent(secret.replace(/\+/g, ' '));
    if (req.secret !== allowed.secret) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    return undefined;
  });
}

/** Replaces the file the way Kubernetes updates a mounted secret: write aside, then rename over it. */
function rotateFile(file, contents) {
  const aside = `${file}.next`;
  fs.writeFileSync(aside, contents);
  fs.renameSync(aside, file);
}

test('clientSecretFile: a rotated secret is picked up without a restart, and lifts a hold', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-'));
  const file = path.join(dir, 'client-secret');
  fs.writeFileSync(file, 'secret-one\n');
  const allowed = { secret: 'secret-one' };
  const server = await secretCheckingServer(allowed);
  const clock = virtualClock();
  const events = [];
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'billing',
    clientSecretFile: file,
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(account.options.clientSecretFile, file);
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(server.requests[0].secret, 'secret-one');

    // Rotation: the server now wants the new secret; the file changes.
    allowed.secret = 'secret-two';
    rotateFile(file, 'secret-two\nsecret-one\n');
    clock.advance(3_600_000);
    assert.equal(await account.getToken(), 'at-2');
    assert.equal(server.requests.length, 2, 'the new secret worked at once');
    assert.equal(server.requests[1].secret, 'secret-two');
    assert.ok(events.some((e) => e.type === 'secrets_replaced' && e.count === 2));

    // Revoked without a new secret: invalid_client is held...
    allowed.secret = 'secret-three';
    clock.advance(3_600_000);
    await assert.rejects(account.getToken(), (e) => e.kind === 'invalid_client' && !e.retryable);
    const held = server.requests.length;
    await assert.rejects(account.getToken(), (e) => e.kind === 'invalid_client');
    assert.equal(server.requests.length, held, 'fail fast while held');
    // ...until the file brings the new one: the hold is lifted at the watch's next look (within a second).
    rotateFile(file, 'secret-three\n');
    clock.advance(1000);
    assert.equal(await account.getToken(), `at-${held + 1}`);
    assert.ok(events.some((e) => e.type === 'secrets_replaced' && e.holdLifted === true));

    // A half-written (empty) file is not taken: the secret in use stays.
    rotateFile(file, '\n');
    clock.advance(3_600_000);
    assert.equal(await account.getToken(), `at-${held + 2}`);
    assert.equal(server.requests.at(-1).secret, 'secret-three');
    assert.ok(events.some((e) => e.type === 'secret_file_rejected' && e.source === 'clientSecretFile'));
    assertNoSecret(JSON.stringify(events));
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLIENT_SECRET_FILE from the environment is read and re-read the same way', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-'));
  const file = path.join(dir, 'secret');
  fs.writeFileSync(file, 'env-one');
  const allowed = { secret: 'env-one' };
  const server = await secretCheckingServer(allowed);
  const clock = virtualClock();
  const account = ServiceAccount.fromEnv({
    env: { CLIENT_ID: 'c', CLIENT_SECRET_FILE: file, TOKEN_URL: server.url },
    clock,
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    allowed.secret = 'env-two';
    rotateFile(file, 'env-two');
    clock.advance(3_600_000);
    assert.equal(await account.getToken(), 'at-2');
    assert.equal(server.requests[1].secret, 'env-two');
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const empty = path.join(os.tmpdir(), `tokenwell-empty-${process.pid}`);
  fs.writeFileSync(empty, '\n');
  try {
    const error = configErrorOf(() =>
      ServiceAccount.fromEnv({ env: { CLIENT_ID: 'c', CLIENT_SECRET_FILE: empty, TOKEN_URL: 'https://a.example/t' } }),
    );
    assert.equal(error.field, 'CLIENT_SECRET_FILE');
  } finally {
    fs.rmSync(empty);
  }
});

test('redaction: inspect and JSON of the account, its options, its tokens and its errors hold no secret', async () => {
  const server = await startScriptedTokenServer((req, n) =>
    n === 1
      ? undefined
      : {
          status: 400,
          body: { error: 'invalid_request', error_description: `bad secret ${SECRET} / ${encodeURIComponent(SECRET)}` },
        },
  );
  const clock = virtualClock();
  const events = [];
  const options = {
    tokenUrl: server.url,
    clientId: 'billing',
    clientSecret: [SECRET, `${SECRET}-old`],
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  };
  const account = new ServiceAccount(options);
  try {
    const token = await account.token();
    clock.advance(3_600_000);
    const error = await account.getToken().then(
      () => assert.fail('expected a failure'),
      (e) => e,
    );
    assert.equal(error.kind, 'invalid_request');
    // Server text holding a credential is withheld whole, never cut around the secret.
    assert.equal(error.description, '[withheld: contained a credential]');
    assertNoSecret(
      inspect(account, { depth: 10 }),
      JSON.stringify(account),
      inspect(account.options),
      JSON.stringify(account.options),
      `${account}`,
      error.message,
      error.stack,
      inspect(error),
      JSON.stringify(error),
      JSON.stringify(events),
      inspect(events, { depth: 10 }),
    );
    assert.ok(!inspect(token).includes(token.accessToken), 'the access token is hidden from inspect');
    assert.equal(account.options.clientSecret, '[redacted]');
    assert.ok(Object.isFrozen(account.options));
    const bad = configErrorOf(() => new ServiceAccount({ ...options, timeoutMs: SECRET }));
    assert.equal(bad.field, 'timeoutMs');
    assertNoSecret(bad.message, inspect(bad), JSON.stringify(bad));
  } finally {
    account.close();
    await server.close();
  }
});
