// The sans-IO TokenCache as a JS caller uses it: arguments checked, shapes, redaction.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { TokenCache, TokenError } from '../index.js';

const T0 = 1_700_000_000_000;
const OPTIONS = {
  tokenUrl: 'https://auth.example/oauth2/token',
  clientId: 'billing-worker',
  clientSecret: 'hunter2-secret',
  scope: ['billing:read', 'billing:write'],
};

test('a full cycle: send, respond, ready, refresh ahead, next wakeup', () => {
  const cache = new TokenCache(OPTIONS, 7);
  const first = cache.poll(T0);
  assert.equal(first.result, 'send');
  assert.equal(first.request.method, 'POST');
  assert.equal(first.request.body, 'grant_type=client_credentials&scope=billing%3Aread+billing%3Awrite');
  assert.equal(cache.poll(T0 + 1).result, 'wait');
  assert.equal(cache.inFlight, first.request.fetchId);
  const body = Buffer.from('{"access_token":"at-1","token_type":"Bearer","expires_in":3600}');
  const outcome = cache.handleResponse(first.request.fetchId, 200, new Headers({ 'x-a': 'b' }), body, T0 + 20);
  assert.equal(outcome.result, 'token');
  assert.equal(outcome.token.accessToken, 'at-1');
  assert.equal(outcome.token.expiresAt, T0 + 20 + 3_600_000);
  assert.equal(cache.nextWakeup(), outcome.token.refreshAt);
  assert.equal(cache.poll(T0 + 30).result, 'ready');
  const ahead = cache.poll(outcome.token.refreshAt);
  assert.equal(ahead.result, 'ready_and_send');
  assert.equal(ahead.token.accessToken, 'at-1');
  const events = cache.drainEvents();
  assert.deepEqual(
    events.map((e) => e.type),
    ['refresh_started', 'token_acquired', 'refresh_started'],
  );
  assert.ok(events.every((e) => e.actorType === 'client' && e.actorId === 'billing-worker'));
  assert.equal(events[2].reason, 'ahead');
  assert.deepEqual(cache.drainEvents(), []);
});

test('bad arguments are TypeErrors naming the argument; nothing panics', () => {
  const cache = new TokenCache(OPTIONS, 1);
  assert.throws(() => cache.poll(-1), { name: 'TypeError', message: /now/ });
  assert.throws(() => cache.poll(Number.NaN), { name: 'TypeError', message: /now/ });
  assert.throws(() => cache.poll('soon'), { name: 'TypeError', message: /now/ });
  assert.throws(() => cache.handleResponse(1.5, 200, [], '', T0), { name: 'TypeError', message: /fetchId/ });
  assert.throws(() => cache.handleResponse(1, 70000, [], '', T0), { name: 'TypeError', message: /status/ });
  assert.throws(() => cache.handleResponse(1, 200, 5, '', T0), { name: 'TypeError', message: /headers/ });
  assert.throws(() => cache.handleResponse(1, 200, [], 5, T0), { name: 'TypeError', message: /body/ });
  assert.throws(() => cache.handleTransportError(1, 'dns', '', T0), { name: 'TypeError', message: /kind/ });
  assert.throws(() => cache.replaceSecrets([1], T0), { name: 'TypeError', message: /secrets/ });
  assert.throws(() => new TokenCache('x'), { name: 'TypeError' });
  assert.throws(() => new TokenCache(OPTIONS, -1), { name: 'TypeError', message: /entropy/ });
  // Huge numbers, odd bodies and headers: answers, never a crash.
  assert.equal(cache.poll(2 ** 53 - 1).result, 'send');
  const outcome = cache.handleResponse(1, 200, [['a', 'b']], new Uint8Array([0xff, 0xfe, 0]), 2 ** 53 - 1);
  assert.equal(outcome.error.kind, 'malformed_response');
});

test('configuration errors name the camelCase option and never echo a value', () => {
  const cases = [
    [{ ...OPTIONS, tokenUrl: undefined }, 'tokenUrl'],
    [{ ...OPTIONS, tokenUrl: 'http://auth.example/t' }, 'tokenUrl'],
    [{ ...OPTIONS, clientSecret: ['a', ''] }, 'clientSecret[1]'],
    [{ ...OPTIONS, scope: ['ok', 'not ok'] }, 'scope[1]'],
    [{ ...OPTIONS, refreshMarginMs: 'hunter2-secret' }, 'refreshMarginMs'],
    [{ ...OPTIONS, authMethod: 'hunter2-secret' }, 'authMethod'],
    [{ ...OPTIONS, colour: 'red' }, 'colour'],
    [{ ...OPTIONS, extraParams: { scope: 'x' } }, 'extraParams'],
  ];
  for (const [options, field] of cases) {
    const error = (() => {
      try {
        new TokenCache(options);
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(error instanceof TokenError, field);
    assert.equal(error.kind, 'config');
    assert.equal(error.field, field);
    assert.equal(error.retryable, false);
    assert.match(error.message, new RegExp(field.replace(/[[\]]/g, '\\$&')));
    for (const text of [error.message, error.stack, inspect(error), JSON.stringify(error)]) {
      assert.ok(!text.includes('hunter2'), text);
    }
  }
});

test('requests, tokens and the cache print without credentials', () => {
  for (const authMethod of ['client_secret_basic', 'client_secret_post']) {
    const cache = new TokenCache({ ...OPTIONS, authMethod }, 1);
    const poll = cache.poll(T0);
    // The wire fields carry the credentials; their JSON and inspect views do not (test/redaction.test.mjs).
    const wire = `${poll.request.body} ${poll.request.headers.flat().join(' ')}`;
    assert.ok(authMethod === 'client_secret_post' ? wire.includes('hunter2-secret') : wire.includes('Basic '));
    assert.ok(!JSON.stringify(poll.request).includes('hunter2'));
    const shown = inspect(poll, { depth: 5 });
    assert.ok(!shown.includes('hunter2') && !shown.includes('aHVudGVyMi'), shown);
    assert.match(shown, /\[redacted\]/);
    const outcome = cache.handleResponse(1, 200, [], '{"access_token":"at-secret-value","expires_in":60}', T0 + 1);
    assert.ok(!inspect(outcome, { depth: 5 }).includes('at-secret-value'));
    assert.equal(outcome.token.accessToken, 'at-secret-value');
    const described = `${inspect(cache)} ${JSON.stringify(cache)}`;
    assert.ok(!described.includes('hunter2') && !described.includes('at-secret'), described);
  }
});

test('secrets are replaced from a list or a file, errors naming the field', () => {
  const cache = new TokenCache(OPTIONS, 1);
  assert.deepEqual(cache.replaceSecrets(['new', 'old'], T0), { result: 'replaced', changed: true });
  assert.deepEqual(cache.replaceSecrets(['new', 'old'], T0), { result: 'replaced', changed: false });
  assert.deepEqual(cache.replaceSecretsFromFile('newer\nnew\n', 'CLIENT_SECRET_FILE', T0), {
    result: 'replaced',
    changed: true,
  });
  const bad = cache.replaceSecretsFromFile('\n\n', 'CLIENT_SECRET_FILE', T0);
  assert.equal(bad.result, 'error');
  assert.equal(bad.error.field, 'CLIENT_SECRET_FILE');
  const empty = cache.replaceSecrets(['x', ''], T0);
  assert.equal(empty.error.field, 'clientSecret[1]');
  // A rejected file is the engine's event, naming the file's source.
  assert.deepEqual(cache.drainEvents().map((e) => e.type), ['secrets_replaced', 'secrets_replaced', 'secret_file_rejected']);
  cache.reportSecretFileProblem('CLIENT_SECRET_FILE', 'cannot read the secret file /run/s (ENOENT)', T0);
  const [unreadable] = cache.drainEvents();
  assert.equal(unreadable.type, 'secret_file_rejected');
  assert.equal(unreadable.source, 'CLIENT_SECRET_FILE');
  assert.match(unreadable.problem, /\/run\/s \(ENOENT\)/);
});

test('a cache file problem is the engine event, with the problem names every host uses', () => {
  const cache = new TokenCache(OPTIONS, 1);
  cache.reportCacheFileProblem('/var/cache/app/token.json', 'ignored', 'insecure_permissions: 0o666', T0);
  cache.reportCacheFileProblem('/var/cache/app/token.json', 'lock_timeout', '', T0 + 1);
  assert.deepEqual(
    cache.drainEvents().map(({ type, at, path, problem, detail }) => ({ type, at, path, problem, detail })),
    [
      { type: 'cache_file_problem', at: T0, path: '/var/cache/app/token.json', problem: 'ignored', detail: 'insecure_permissions: 0o666' },
      { type: 'cache_file_problem', at: T0 + 1, path: '/var/cache/app/token.json', problem: 'lock_timeout', detail: '' },
    ],
  );
  assert.throws(() => cache.reportCacheFileProblem('/p', 'cache_ignored', 'symlink', T0), /problem must be one of/);
  assert.throws(() => cache.reportCacheFileProblem('/p', 'ignored', undefined, T0), TypeError);
  assert.deepEqual(cache.drainEvents(), []);
});

test('a snapshot round-trips into a second cache and is refused elsewhere', () => {
  const a = new TokenCache(OPTIONS, 1);
  const { request } = a.poll(T0);
  a.handleResponse(request.fetchId, 200, [], '{"access_token":"at-1","expires_in":600}', T0);
  const text = a.exportSnapshot(T0 + 1000);
  assert.equal(typeof text, 'string');
  assert.ok(!text.includes('hunter2'));
  const b = new TokenCache({ ...OPTIONS, clientSecret: 'another' }, 2);
  assert.deepEqual(b.importSnapshot(text, T0 + 2000), { result: 'imported' });
  assert.equal(b.poll(T0 + 2000).token.accessToken, 'at-1');
  const c = new TokenCache({ ...OPTIONS, clientId: 'other' }, 3);
  assert.deepEqual(c.importSnapshot(JSON.parse(text), T0 + 2000), { result: 'error', reason: 'fingerprint_mismatch' });
  assert.deepEqual(c.importSnapshot('nope', T0), { result: 'error', reason: 'corrupt' });
  assert.equal(new TokenCache(OPTIONS).exportSnapshot(T0), null);
});
