// The secret file under the engine's one rule (SecretFileWatch): a Kubernetes
// secret update (the `..data` symlink swapped to a new timestamped directory)
// is picked up at the watch's next look; an unreadable file is the engine's
// `secret_file_rejected` event naming the path, never the contents; with no
// onEvent, it is a warning (the `logger` option, else process.emitWarning).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { ServiceAccount, TokenError } from '../index.js';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

/** A token server that accepts only `allowed.secret` (Basic auth), recording the secret each request used. */
async function secretCheckingServer(allowed, onRefused = () => {}) {
  return startScriptedTokenServer((req) => {
    const [, secret] = Buffer.from(req.headers.authorization.replace('Basic ', ''), 'base64').toString().split(':');
    req.secret = decodeURIComponent(secret.replace(/\+/g, ' '));
    if (req.secret !== allowed.secret) {
      onRefused();
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    return undefined;
  });
}

/**
 * A secret volume as the kubelet writes it: `<dir>/client-secret` ->
 * `..data/client-secret`, `..data` -> `..<timestamp>/`. An update writes a new
 * timestamped directory and renames a new `..data` symlink over the old one.
 */
function kubernetesVolume(dir, secret) {
  let generation = 0;
  const publish = (contents) => {
    generation += 1;
    const stamped = `..2026_11_28_14_00_0${generation}.${process.pid}`;
    fs.mkdirSync(path.join(dir, stamped));
    fs.writeFileSync(path.join(dir, stamped, 'client-secret'), contents);
    fs.symlinkSync(stamped, path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    return stamped;
  };
  const first = publish(secret);
  fs.symlinkSync('..data/client-secret', path.join(dir, 'client-secret'));
  return {
    file: path.join(dir, 'client-secret'),
    update(contents) {
      const old = fs.readlinkSync(path.join(dir, '..data'));
      publish(contents);
      fs.rmSync(path.join(dir, old), { recursive: true });
    },
    first,
  };
}

test('a Kubernetes secret update (..data symlink swap) is picked up at the next look, without a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-k8s-'));
  const volume = kubernetesVolume(dir, 'secret-one\n');
  const allowed = { secret: 'secret-one' };
  const server = await secretCheckingServer(allowed);
  const clock = virtualClock();
  const events = [];
  const account = ServiceAccount.fromEnv({
    env: { CLIENT_ID: 'billing', TOKEN_URL: server.url, CLIENT_SECRET_FILE: volume.file },
    clock,
    onEvent: (e) => events.push(e),
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(server.requests[0].secret, 'secret-one');
    // The file's own path never changes: only the symlink two levels up does.
    volume.update('secret-two\nsecret-one\n');
    allowed.secret = 'secret-two';
    clock.advance(999);
    assert.equal(await account.getToken(), 'at-1');
    assert.equal(account.secretCount, 1, 'not looked at again within the watch interval');
    clock.advance(1);
    assert.equal(await account.getToken(), 'at-1', 'the cached token is still served');
    assert.equal(account.secretCount, 2, 'the swap was seen at the next look');
    const replaced = events.filter((e) => e.type === 'secrets_replaced');
    assert.equal(replaced.length, 1);
    assert.equal(replaced[0].count, 2);
    clock.advance(3_600_000);
    assert.equal(await account.getToken(), 'at-2');
    assert.equal(server.requests.at(-1).secret, 'secret-two', 'the next token request uses the new secret');
    assert.equal(server.requests.length, 2, 'no failed attempt with the old secret');
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('after invalid_client the file is looked at at once, even within the interval', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-k8s-'));
  const volume = kubernetesVolume(dir, 'secret-one\n');
  const allowed = { secret: 'secret-one' };
  // The volume is updated while the server refuses the old secret: after the
  // account's regular look at the file, before its next one is due.
  const server = await secretCheckingServer(allowed, () => volume.update('secret-two\n'));
  const clock = virtualClock();
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'billing',
    clientSecretFile: volume.file,
    clock,
    backgroundRefresh: false,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    clock.advance(3_600_000);
    allowed.secret = 'secret-two';
    // The old secret is refused (invalid_client, a hold); the forced look at the file
    // reads the new one at once and lifts the hold, so the same call gets a token.
    assert.equal(await account.getToken(), 'at-3');
    assert.deepEqual(
      server.requests.map((r) => r.secret),
      ['secret-one', 'secret-one', 'secret-two'],
    );
    assert.equal(account.secretCount, 1);
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable secret file: the error names the variable and the path, never a secret', () => {
  const missing = path.join(os.tmpdir(), `tokenwell-missing-${process.pid}`, 'client-secret');
  for (const make of [
    () => ServiceAccount.fromEnv({ env: { CLIENT_ID: 'c', TOKEN_URL: 'https://a.example/t', CLIENT_SECRET_FILE: missing } }),
    () => new ServiceAccount({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecretFile: missing }),
  ]) {
    assert.throws(make, (error) => {
      assert.ok(error instanceof TokenError);
      assert.equal(error.kind, 'config');
      assert.ok(['CLIENT_SECRET_FILE', 'clientSecretFile'].includes(error.field), error.field);
      assert.equal(error.problem, `cannot read the secret file ${missing} (ENOENT)`);
      return true;
    });
  }
});

test('with no onEvent, a rejected secret file and a failed refresh are warnings through `logger`', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-warn-'));
  const file = path.join(dir, 'client-secret');
  fs.writeFileSync(file, 'Sup3r-s3cret\n');
  const server = await startScriptedTokenServer((req, n) => (n === 1 ? undefined : { status: 503, body: 'down' }));
  const clock = virtualClock();
  const warnings = [];
  let refreshFailed;
  const failed = new Promise((resolve) => {
    refreshFailed = resolve;
  });
  const logger = {
    warn(message) {
      warnings.push(message);
      if (message.includes('refresh_failed')) refreshFailed(message);
    },
  };
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: 'billing',
    clientSecretFile: file,
    clock,
    backgroundRefresh: false,
    logger,
  });
  try {
    assert.equal(await account.getToken(), 'at-1');
    assert.deepEqual(warnings, [], 'nothing to say while all is well');
    fs.rmSync(file);
    clock.advance(1000);
    assert.equal(await account.getToken(), 'at-1', 'the secrets in use are kept');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /secret_file_rejected/);
    assert.ok(warnings[0].includes(`cannot read the secret file ${file} (ENOENT)`), warnings[0]);
    fs.writeFileSync(file, '\n');
    clock.advance(1000);
    await account.getToken();
    assert.match(warnings[1], /secret_file_rejected .*clientSecretFile: the secret file holds no secret/);
    // A failed refresh (503) is a warning too; the valid token is still served.
    const token = await account.token();
    clock.set(token.expiresAt.getTime() - 60_000);
    assert.equal(await account.getToken(), 'at-1', 'served while the refresh ahead runs');
    assert.match(await failed, /refresh_failed \(client billing\): .*HTTP 503/);
    for (const w of warnings) assert.ok(!w.includes('Sup3r-s3cret'), w);
  } finally {
    account.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with neither onEvent nor logger, warnings go to process.emitWarning', async () => {
  const fetch = async () => new Response('{"error":"server_error"}', { status: 500 });
  const account = new ServiceAccount({
    tokenUrl: 'https://auth.example/oauth2/token',
    clientId: 'c',
    clientSecret: 's',
    fetch,
    backgroundRefresh: false,
  });
  const warned = once(process, 'warning');
  try {
    await assert.rejects(account.getToken(), (e) => e.kind === 'server_error');
    const [warning] = await warned;
    assert.equal(warning.name, 'TokenwellWarning');
    assert.equal(warning.code, 'refresh_failed');
    assert.match(warning.message, /refresh_failed \(client c\)/);
  } finally {
    account.close();
  }
});
