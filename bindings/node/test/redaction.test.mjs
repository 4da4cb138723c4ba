// Objects that hold a secret or a token serialize without it: JSON loggers
// (pino, winston) call JSON.stringify on whatever they are handed, so every
// such object has a redacting toJSON (and util.inspect), while the fields a
// host needs (request.headers, request.body, token.accessToken) stay readable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { ServiceAccount, TokenCache } from '../index.js';

const T0 = 1_700_000_000_000;
// Characters that JSON escapes, form encoding changes and Basic auth encodes.
const CLIENT_ID = 'billing worker:1';
const SECRET = 'Sup3r "s3cret"+&%: \\ é/=';
// An access token is visible ASCII; `"` and `\` are escaped in JSON.
const ACCESS_TOKEN = 'at-"Sup3r\\token/+=';

const form = (value) => new URLSearchParams({ v: value }).toString().slice(2);

/** Every spelling under which `value` could show up in serialized text. */
function spellings(value) {
  return [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), form(value)];
}

const FORBIDDEN = [
  ...spellings(SECRET),
  ...spellings(ACCESS_TOKEN),
  Buffer.from(`${form(CLIENT_ID)}:${form(SECRET)}`).toString('base64'),
  Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64'),
];

function assertNoLeak(what, text) {
  for (const spelling of FORBIDDEN) {
    assert.ok(!text.includes(spelling), `${what} leaks ${JSON.stringify(spelling)}: ${text}`);
  }
}

/** No spelling of the secret or the token, and a visible `[redacted]` where it was. */
function assertRedacted(what, text) {
  assertNoLeak(what, text);
  assert.match(text, /\[redacted\]/, what);
}

const TOKEN_BODY = JSON.stringify({ access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600 });

for (const authMethod of ['client_secret_basic', 'client_secret_post']) {
  test(`JSON of a TokenCache poll's request (${authMethod}) holds neither the Basic header nor the secret`, () => {
    const cache = new TokenCache(
      { tokenUrl: 'https://auth.example/oauth2/token', clientId: CLIENT_ID, clientSecret: SECRET, authMethod },
      1,
    );
    const poll = cache.poll(T0);
    assert.equal(poll.result, 'send');
    // What the host sends is untouched.
    if (authMethod === 'client_secret_post') {
      assert.ok(poll.request.body.includes(`client_secret=${form(SECRET)}`));
    } else {
      const auth = poll.request.headers.find(([n]) => n.toLowerCase() === 'authorization')[1];
      assert.equal(auth, `Basic ${Buffer.from(`${form(CLIENT_ID)}:${form(SECRET)}`).toString('base64')}`);
    }
    assertRedacted('JSON.stringify(request)', JSON.stringify(poll.request));
    assertRedacted('JSON.stringify(poll)', JSON.stringify(poll));
    assertRedacted('a JSON log line', JSON.stringify({ msg: 'sending', request: poll.request }));
    assertRedacted('inspect(request)', inspect(poll.request, { depth: 5 }));
    // The redacted view keeps what is useful in a log.
    const shown = JSON.parse(JSON.stringify(poll.request));
    assert.equal(shown.url, 'https://auth.example/oauth2/token');
    assert.equal(shown.fetchId, poll.request.fetchId);
    assert.match(shown.body, /^grant_type=client_credentials/);
    // Spreading or listing the fields still gives the wire values (toJSON is not enumerable).
    assert.deepEqual(Object.keys(poll.request).sort(), ['body', 'fetchId', 'headers', 'method', 'timeoutMs', 'url']);
    assert.equal({ ...poll.request }.body, poll.request.body);
  });
}

test('JSON of engine tokens (handleResponse, ready, ready_and_send) holds no access token', () => {
  const cache = new TokenCache(
    { tokenUrl: 'https://auth.example/oauth2/token', clientId: CLIENT_ID, clientSecret: SECRET, refreshAheadJitter: 0 },
    1,
  );
  const { request } = cache.poll(T0);
  const outcome = cache.handleResponse(request.fetchId, 200, [['content-type', 'application/json']], TOKEN_BODY, T0 + 1);
  assert.equal(outcome.result, 'token');
  assert.equal(outcome.token.accessToken, ACCESS_TOKEN, 'the token stays readable');
  assertRedacted('JSON.stringify(outcome)', JSON.stringify(outcome));
  assertRedacted('JSON.stringify(token)', JSON.stringify(outcome.token));
  const ready = cache.poll(T0 + 2);
  assert.equal(ready.result, 'ready');
  assertRedacted('JSON.stringify(ready)', JSON.stringify(ready));
  const ahead = cache.poll(outcome.token.refreshAt);
  assert.equal(ahead.result, 'ready_and_send');
  assert.equal(ahead.token.accessToken, ACCESS_TOKEN);
  assertRedacted('JSON.stringify(ready_and_send)', JSON.stringify(ahead));
  assertRedacted('inspect(ready_and_send)', inspect(ahead, { depth: 5 }));
  const shown = JSON.parse(JSON.stringify(outcome.token));
  assert.equal(shown.accessToken, '[redacted]');
  assert.equal(shown.expiresAt, outcome.token.expiresAt);
  assertNoLeak('JSON.stringify(cache)', JSON.stringify(cache));
});

test('JSON of account.token(), the account and its options holds neither the token nor the secret', async () => {
  const account = new ServiceAccount({
    tokenUrl: 'https://auth.example/oauth2/token',
    clientId: CLIENT_ID,
    clientSecret: [SECRET, `${SECRET}-old`],
    fetch: async () => new Response(TOKEN_BODY, { headers: { 'content-type': 'application/json' } }),
    backgroundRefresh: false,
  });
  try {
    const token = await account.token();
    assert.equal(token.accessToken, ACCESS_TOKEN, 'token.accessToken is the bearer value');
    assert.equal(await account.getToken(), ACCESS_TOKEN);
    assertRedacted('JSON.stringify(await account.token())', JSON.stringify(token));
    assertRedacted('a JSON log line', JSON.stringify({ msg: 'got a token', token }));
    assertRedacted('inspect(token)', inspect(token));
    const shown = JSON.parse(JSON.stringify(token));
    assert.equal(shown.tokenType.toLowerCase(), 'bearer');
    assert.equal(shown.expiresAt, token.expiresAt.toISOString());
    // The account and its options were redacted before; kept here as one list.
    assertRedacted('JSON.stringify(account)', JSON.stringify(account));
    assertRedacted('JSON.stringify(account.options)', JSON.stringify(account.options));
    assertRedacted('inspect(account)', inspect(account, { depth: 10 }));
  } finally {
    account.close();
  }
});
