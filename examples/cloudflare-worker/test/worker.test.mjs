// The Worker in workerd, for real: against a scripted token server and API on
// 127.0.0.1, and, when $TOKENWELL_SERVERS describes them (tests/integration/run.sh
// install), against the real Ory Hydra.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startWorker } from './workerd.mjs';

const SECRET = 'worker+secret: %&=';

/** A token endpoint and an API on loopback; the API answers 200 only to the current token. */
async function startServers({ answerToken }) {
  const tokenRequests = [];
  const apiCalls = [];
  let issued = null;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (req.url === '/oauth2/token') {
        tokenRequests.push({ authorization: req.headers.authorization, body });
        const [status, json] = answerToken(tokenRequests.length);
        if (json.access_token) issued = json.access_token;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
        return;
      }
      apiCalls.push({ url: req.url, authorization: req.headers.authorization });
      const ok = issued !== null && req.headers.authorization === `Bearer ${issued}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"invoices":[{"id":1}]}' : '{"error":"invalid_token"}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    tokenRequests,
    apiCalls,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

const basic = (id, secret) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret).replace(/%20/g, '+')}`).toString('base64')}`;

test('workerd: the Worker gets one token from the env bindings and calls the API with it', async (t) => {
  let n = 0;
  const servers = await startServers({
    answerToken: () => [200, { access_token: `at-${++n}`, token_type: 'bearer', expires_in: 300, scope: 'billing:read' }],
  });
  const worker = await startWorker({
    bindings: {
      CLIENT_ID: 'billing-worker',
      CLIENT_SECRET: SECRET,
      TOKEN_URL: `${servers.base}/oauth2/token`,
      SCOPE: 'billing:read',
      API_URL: `${servers.base}/api/`,
    },
  });
  t.after(async () => {
    await worker.close();
    await servers.close();
  });

  const info = await (await fetch(`${worker.url}/token`)).json();
  assert.equal(info.backend, 'wasm', 'workerd takes the workerd export condition: the wasm engine');
  assert.equal(info.clientId, 'billing-worker');
  assert.deepEqual(info.scope, ['billing:read']);
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${worker.url}/invoices?page=${i}`);
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual(await response.json(), { invoices: [{ id: 1 }] });
  }
  assert.equal(servers.tokenRequests.length, 1, 'one token for every request of the isolate');
  assert.equal(servers.tokenRequests[0].authorization, basic('billing-worker', SECRET), 'RFC 6749 §2.3.1 encoding');
  assert.match(servers.tokenRequests[0].body, /^grant_type=client_credentials&scope=billing%3Aread$/);
  assert.deepEqual(
    servers.apiCalls.map((c) => [c.url, c.authorization]),
    [0, 1, 2].map((i) => [`/api/invoices?page=${i}`, 'Bearer at-1']),
  );
  assert.ok(!worker.output().includes(SECRET) && !worker.output().includes('at-1'), worker.output());
});

test('workerd: without a token the Worker fails closed with the typed error, and a bad config is named', async (t) => {
  const servers = await startServers({ answerToken: () => [401, { error: 'invalid_client' }] });
  const worker = await startWorker({
    bindings: { CLIENT_ID: 'billing-worker', CLIENT_SECRET: SECRET, TOKEN_URL: `${servers.base}/oauth2/token`, API_URL: `${servers.base}/api/` },
  });
  const misconfigured = await startWorker({ bindings: { CLIENT_ID: 'billing-worker', CLIENT_SECRET: SECRET } });
  t.after(async () => {
    await worker.close();
    await misconfigured.close();
    await servers.close();
  });
  const refused = await fetch(`${worker.url}/invoices`);
  assert.equal(refused.status, 503);
  const body = await refused.json();
  assert.deepEqual({ ...body, retryAt: undefined }, { error: 'invalid_client', fault: 'credentials', retryable: false, retryAt: undefined });
  assert.ok(Date.parse(body.retryAt) > Date.now(), 'held: retryAt says when the engine tries again');
  assert.equal(servers.apiCalls.length, 0, 'fail closed: no API call without a token');
  const config = await fetch(`${misconfigured.url}/token`);
  assert.equal(config.status, 500);
  assert.equal((await config.json()).field, 'TOKEN_URL');
  for (const output of [worker.output(), misconfigured.output()]) assert.ok(!output.includes(SECRET), output);
});

const servers = process.env.TOKENWELL_SERVERS ? JSON.parse(fs.readFileSync(process.env.TOKENWELL_SERVERS, 'utf8')) : null;

test('workerd against Ory Hydra: a real token, reported active by Hydra', { skip: servers ? false : 'TOKENWELL_SERVERS is not set' }, async (t) => {
  const hydra = servers.hydra;
  // The secret with `: % + & space = é`: RFC 6749 §2.3.1 encoding, through the wasm engine.
  const client = hydra.clients.special_secret;
  const worker = await startWorker({
    bindings: {
      CLIENT_ID: client.client_id,
      CLIENT_SECRET: client.client_secret,
      TOKEN_URL: hydra.token_url,
      SCOPE: 'billing:read',
    },
  });
  t.after(() => worker.close());
  const response = await fetch(`${worker.url}/token`);
  const info = await response.json();
  assert.equal(response.status, 200, JSON.stringify(info));
  assert.equal(info.backend, 'wasm');
  assert.equal(info.clientId, client.client_id);
  assert.deepEqual(info.scope, ['billing:read']);
  assert.ok(Date.parse(info.expiresAt) > Date.now());
  assert.ok(!worker.output().includes(client.client_secret));
});
