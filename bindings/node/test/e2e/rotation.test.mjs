// End-to-end: secret rotation in Ory Hydra, in the Kubernetes order, while a
// worker calls getToken() all the time. The mounted secret file gets
// `new\nold`, then the operator changes the client's secret with
// `hydra update client`, then the file drops the old one. Zero failed calls.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { ServiceAccount } from '../../index.js';
import { e2e, hydraAdmin, hydraCli, ofType, waitFor } from './servers.mjs';

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

/** Replaces `file` atomically (as a Kubernetes secret mount swaps a symlink): the reader never sees half a file. */
function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, contents, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

e2e('secret rotation in Hydra has zero failed calls', { timeout: 180_000 }, async (s) => {
  const admin = hydraAdmin(s);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-node-rotation-'));
  const [oldSecret, newSecret] = [`old:+% ${process.pid}`, `new&= é${process.pid}`];
  const clientFile = path.join(dir, 'client.json');
  const writeClient = (secret) =>
    fs.writeFileSync(
      clientFile,
      JSON.stringify({
        client_name: 'Rotating Worker (node)',
        client_secret: secret,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'billing:read',
        client_credentials_grant_access_token_lifespan: '4s',
      }),
      { mode: 0o600 },
    );
  writeClient(oldSecret);
  const created = JSON.parse(
    await hydraCli(s, ['create', 'client', '--endpoint', admin, '--format', 'json', '--file', clientFile]),
  );
  const clientId = created.client_id;
  assert.ok(clientId, 'hydra create client printed a client_id');

  const secretFile = path.join(dir, 'client-secret');
  writeAtomically(secretFile, `${oldSecret}\n`);
  const events = [];
  const account = new ServiceAccount({
    tokenUrl: s.hydra.token_url,
    clientId,
    clientSecretFile: secretFile,
    scope: 'billing:read',
    onEvent: (e) => events.push(e),
  });
  let stop = false;
  let worker;
  try {
    await account.getToken();
    const lifetime = ofType(events, 'token_acquired')[0].expiresAt - ofType(events, 'token_acquired')[0].at;
    assert.ok(lifetime <= 4_000, `the rotating client's tokens live ${lifetime} ms`);

    // The worker: calls all the time; a failed call is recorded, never thrown.
    worker = (async () => {
      let calls = 0;
      const failures = [];
      while (!stop) {
        try {
          await account.getToken();
        } catch (error) {
          failures.push(`${error.kind}: ${error.message}`);
        }
        calls++;
        await sleep(5); // the pace of a busy worker, not synchronization
      }
      return { calls, failures };
    })();

    /**
     * Tokens acquired by fetches started at or after event index `from`
     * (a fetch in flight before a step may still finish with the old state).
     */
    const acquiredSince = (from) => {
      const started = new Set(ofType(events, 'refresh_started', from).map((e) => e.fetchId));
      return ofType(events, 'token_acquired', from).filter((e) => started.has(e.fetchId)).length;
    };
    const replacedSince = (from) => events.findIndex((e, i) => i >= from && e.type === 'secrets_replaced');

    // 1. The mounted file gets [new, old]; once the engine has read it, the next
    //    refresh tries the new secret first, Hydra refuses it, the old one works.
    let mark = events.length;
    writeAtomically(secretFile, `${newSecret}\n${oldSecret}\n`);
    await waitFor('the [new, old] secret file to be read', () => replacedSince(mark) >= 0);
    assert.equal(events[replacedSince(mark)].count, 2);
    mark = replacedSince(mark);
    await waitFor('a token with [new, old]', () => acquiredSince(mark) >= 1);
    const before = ofType(events, 'secret_fallback', mark).map((e) => `${e.fromIndex}->${e.toIndex}`);
    assert.deepEqual(before, ['0->1'], 'Hydra refused the new secret, the old one was used');

    // 2. The operator rotates the secret in Hydra.
    const rotated = events.length;
    writeClient(newSecret);
    const updated = JSON.parse(
      await hydraCli(s, ['update', 'client', clientId, '--endpoint', admin, '--format', 'json', '--file', clientFile]),
    );
    assert.equal(updated.client_id, clientId);
    mark = events.length;
    await waitFor('two tokens after the rotation', () => acquiredSince(mark) >= 2);
    const afterRotation = ofType(events, 'secret_fallback', rotated).map((e) => `${e.fromIndex}->${e.toIndex}`);
    assert.deepEqual(afterRotation, ['1->0'], 'the remembered old secret was refused, the new one was used (once)');

    // 3. The file drops the old secret.
    const dropped = events.length;
    writeAtomically(secretFile, `${newSecret}\n`);
    await waitFor('the [new] secret file to be read', () => replacedSince(dropped) >= 0);
    assert.equal(events[replacedSince(dropped)].count, 1);
    mark = replacedSince(dropped);
    await waitFor('two tokens with only the new secret', () => acquiredSince(mark) >= 2);
    // Every token since is from the new secret (index 0 of the one-secret list), with no fallback.
    assert.ok(ofType(events, 'token_acquired', mark).every((e) => e.secretIndex === 0));
    assert.equal(ofType(events, 'secret_fallback', mark).length, 0);

    stop = true;
    const { calls, failures } = await worker;
    worker = undefined;
    assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${calls} calls failed`);
    assert.ok(calls > 100, `the worker made only ${calls} calls`);
    const fallbacks = ofType(events, 'secret_fallback').length;
    assert.ok(fallbacks >= 2, `${fallbacks} secret fallback(s): expected new->old before and old->new after the rotation`);
    assert.equal(ofType(events, 'secret_file_rejected').length, 0);
    for (const e of events) {
      const text = JSON.stringify(e);
      assert.ok(!text.includes(oldSecret) && !text.includes(newSecret), `a secret in an event: ${inspect(e)}`);
    }
    console.log(
      `rotation: ${calls} calls, 0 failures, ${ofType(events, 'token_acquired').length} tokens, ${fallbacks} secret fallbacks`,
    );
  } finally {
    stop = true;
    await worker;
    account.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
