// Every engine error kind maps to TokenError with its fields (the exhaustive-mapping guard).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tokenwell from '../index.js';
import { TokenCache, TokenError, ERROR_KINDS } from '../index.js';
import { engineErrorKinds } from '../lib/errors.js';

const T0 = 1_700_000_000_000;

test('the JS kind table lists exactly the engine kinds, with the same fault and retryability', () => {
  const engine = engineErrorKinds();
  assert.ok(engine.length >= 16);
  assert.deepEqual(Object.keys(ERROR_KINDS).sort(), engine.map((k) => k.kind).sort());
  for (const { kind, fault, retryable } of engine) {
    assert.deepEqual(ERROR_KINDS[kind], { fault, retryable }, kind);
  }
});

test('every engine kind becomes a TokenError carrying every field', () => {
  for (const { kind, fault, retryable } of engineErrorKinds()) {
    const error = TokenError.fromEngine({
      kind,
      fault,
      retryable,
      retryAt: T0 + 5000,
      status: 503,
      oauthError: kind,
      description: `about ${kind}`,
      message: `message for ${kind}`,
    });
    assert.ok(error instanceof TokenError && error instanceof Error, kind);
    assert.equal(error.name, 'TokenError');
    assert.equal(error.kind, kind);
    assert.equal(error.fault, fault);
    assert.equal(error.retryable, retryable);
    assert.deepEqual(error.retryAt, new Date(T0 + 5000));
    assert.equal(error.status, 503);
    assert.equal(error.oauthError, kind);
    assert.equal(error.description, `about ${kind}`);
    assert.equal(error.message, `message for ${kind}`);
    assert.equal(JSON.parse(JSON.stringify(error)).kind, kind);
    // Absent values are absent, not null.
    const bare = TokenError.fromEngine({ kind, fault, retryable, retryAt: null, status: null, oauthError: null });
    assert.equal(bare.retryAt, undefined);
    assert.equal(bare.status, undefined);
    assert.equal(bare.oauthError, undefined);
  }
});

/** Drives a real engine into a failure with the given response; returns the TokenError. */
function engineFailure(status, body, headers = [['content-type', 'application/json']]) {
  const cache = new TokenCache(
    { tokenUrl: 'https://auth.example/oauth2/token', clientId: 'c', clientSecret: 's', backoffJitter: false },
    1,
  );
  const { request } = cache.poll(T0);
  const outcome = cache.handleResponse(request.fetchId, status, headers, body, T0 + 10);
  assert.equal(outcome.result, 'error');
  return outcome.error;
}

test('engine failures arrive as TokenError instances with the engine classification', () => {
  const cases = [
    [400, '{"error":"invalid_client"}', 'invalid_client', false],
    [400, '{"error":"invalid_scope"}', 'invalid_scope', false],
    [400, '{"error":"invalid_target"}', 'invalid_target', false],
    [400, '{"error":"unauthorized_client"}', 'unauthorized_client', false],
    [400, '{"error":"unsupported_grant_type"}', 'unsupported_grant_type', false],
    [400, '{"error":"invalid_request"}', 'invalid_request', false],
    [400, '{"error":"invalid_grant"}', 'invalid_grant', false],
    [400, '{"error":"access_denied"}', 'rejected', false],
    [429, '', 'rate_limited', true],
    [503, '<html>busy</html>', 'server_error', true],
    [400, '{"error":"temporarily_unavailable"}', 'temporarily_unavailable', true],
    [200, '<html>proxy</html>', 'malformed_response', true],
    [404, '<html>not found</html>', 'endpoint_not_found', false],
    [405, '', 'endpoint_not_found', false],
  ];
  for (const [status, body, kind, retryable] of cases) {
    const error = engineFailure(status, body);
    assert.ok(error instanceof TokenError, kind);
    assert.equal(error.kind, kind);
    assert.equal(error.retryable, retryable, kind);
    assert.equal(error.status, status);
    assert.equal(error.fault, ERROR_KINDS[kind].fault);
    assert.ok(error.retryAt instanceof Date, `${kind} has a retry time`);
  }
  const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecret: 's' }, 1);
  const { request } = cache.poll(T0);
  assert.equal(cache.handleTransportError(request.fetchId, 'timeout', '', T0 + 1).error.kind, 'timeout');
  assert.equal(cache.handleTransportError(request.fetchId, 'io', '', T0 + 2).error.kind, 'stale_fetch');
  const { request: second } = cache.poll(T0 + 3_600_000);
  assert.equal(cache.handleTransportError(second.fetchId, 'connect', 'ECONNREFUSED', T0 + 3_600_001).error.kind, 'transport');
  assert.throws(() => new TokenCache({ clientId: 'c' }), (e) => e instanceof TokenError && e.kind === 'config');
});

test("transport kind 'tls' (a certificate not verified) is tls_certificate: a held configuration fault", () => {
  const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecret: 'a-long-secret-42' }, 1);
  const { request } = cache.poll(T0);
  const { error } = cache.handleTransportError(request.fetchId, 'tls', 'unable to verify the first certificate', T0 + 1);
  assert.ok(error instanceof TokenError);
  assert.equal(error.kind, 'tls_certificate');
  assert.equal(error.fault, 'configuration');
  assert.equal(error.retryable, false);
  assert.match(error.description, /TOKENWELL_CA_FILE/);
  assert.equal(cache.state, 'held');
  assert.throws(() => cache.handleTransportError(request.fetchId, 'ssl', '', T0 + 2), { name: 'TypeError', message: /"tls"/ });
});

test('the package entry exports the public API only (no internal helpers such as engineErrorKinds)', () => {
  const names = Object.keys(tokenwell).filter((name) => name !== 'default' && name !== 'module.exports');
  assert.deepEqual(names.sort(), ['ERROR_KINDS', 'ServiceAccount', 'TokenCache', 'TokenError', 'engineBackend']);
});
