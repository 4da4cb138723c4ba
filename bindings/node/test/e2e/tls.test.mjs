// End-to-end over TLS: ServiceAccount.fromEnv against a real Ory Hydra serving
// https with a certificate from a test CA (servers.json's `hydra_tls`, written
// by tests/integration/servers/with-servers.sh): TOKENWELL_CA_FILE → a token
// Hydra says is active; no CA → a held tls_certificate configuration fault;
// HTTPS_PROXY through the loopback CONNECT proxy
// (tests/integration/servers/connect-proxy.py) → a token, one CONNECT logged.
// With servers, a servers.json without `hydra_tls` is a failure (the harness always starts it).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { inspect } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { ServiceAccount, TokenError } from '../../index.js';
import { startConnectProxy, withProxyEnv } from '../tls-helpers.mjs';

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

const PATH = process.env.TOKENWELL_SERVERS;
const REQUIRED = process.env.TOKENWELL_REQUIRE_SERVERS === '1';
const HYDRA_TLS = PATH ? (JSON.parse(fs.readFileSync(PATH, 'utf8')).hydra_tls ?? null) : null;

function skipReason() {
  if (!PATH) return REQUIRED ? false : 'no TOKENWELL_SERVERS: run under tests/integration/run.sh';
  // with-servers.sh always starts the TLS Hydra: with servers, its absence is a failure (below).
  return false;
}

/** A test against Hydra over TLS; `fn` gets servers.json's `hydra_tls`. */
function e2eTls(name, fn, skip = skipReason()) {
  return test(name, { timeout: 120_000, skip }, () => {
    if (!PATH) throw new Error('TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1');
    if (HYDRA_TLS === null) throw new Error('servers.json has no hydra_tls (Hydra served over TLS with a test CA)');
    return fn(HYDRA_TLS);
  });
}

/** The variables a service on Hydra over TLS is given, with or without the CA. */
function environment(h, withCa) {
  const client = h.clients.basic;
  const env = {
    CLIENT_ID: client.client_id,
    CLIENT_SECRET: client.client_secret,
    TOKEN_URL: h.token_url,
    SCOPE: (client.scopes ?? []).join(' '),
    AUTH_METHOD: client.auth_method ?? 'client_secret_basic',
  };
  if (client.audience?.length) env.AUDIENCE = client.audience.join(' ');
  if (withCa) env.TOKENWELL_CA_FILE = h.ca_file;
  return env;
}

/** Hydra's admin introspection, directly (never through a proxy a test set), trusting the test CA. */
async function introspect(h, token) {
  const dispatcher = new Agent({ connect: { ca: fs.readFileSync(h.ca_file, 'utf8') } });
  try {
    const response = await undiciFetch(new URL('/admin/oauth2/introspect', h.admin_url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
      dispatcher,
    });
    assert.equal(response.status, 200, 'introspection answered');
    return await response.json();
  } finally {
    await dispatcher.close();
  }
}

async function withAccount(env, fn) {
  const events = [];
  const account = ServiceAccount.fromEnv({ env, onEvent: (e) => events.push(e), backgroundRefresh: false });
  try {
    return await fn(account, events);
  } finally {
    account.close();
  }
}

e2eTls('Hydra over TLS: fromEnv with TOKENWELL_CA_FILE gets a token Hydra says is active', async (h) => {
  await withProxyEnv({}, () =>
    withAccount(environment(h, true), async (account) => {
      assert.equal(account.options.caFile, h.ca_file);
      const token = await account.token();
      for (const scope of h.clients.basic.scopes ?? []) assert.ok(token.scope.includes(scope), `${scope} granted`);
      const info = await introspect(h, token.accessToken);
      assert.equal(info.active, true, JSON.stringify(info));
      assert.equal(info.client_id, h.clients.basic.client_id);
    }),
  );
});

e2eTls(
  'Hydra over TLS without the CA: tls_certificate, a held configuration fault naming caFile and TOKENWELL_CA_FILE',
  async (h) => {
    await withProxyEnv({}, () =>
      withAccount(environment(h, false), async (account, events) => {
        let error;
        try {
          await account.getToken();
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof TokenError, `a TokenError, got ${inspect(error)}`);
        assert.equal(error.kind, 'tls_certificate', inspect(error));
        assert.equal(error.fault, 'configuration');
        assert.equal(error.retryable, false);
        assert.match(error.message, /caFile/);
        assert.match(error.message, /TOKENWELL_CA_FILE/);
        assert.equal(account.state, 'held');
        for (let i = 0; i < 5; i++) await assert.rejects(account.getToken(), (e) => e.kind === 'tls_certificate');
        assert.equal(events.filter((e) => e.type === 'refresh_started').length, 1, 'held: one attempt only');
      }),
    );
  },
  skipReason() ||
    (HYDRA_TLS && process.env.NODE_EXTRA_CA_CERTS === HYDRA_TLS.ca_file ? 'NODE_EXTRA_CA_CERTS trusts the test CA' : false),
);

e2eTls('Hydra over TLS through HTTPS_PROXY: a token, one CONNECT logged by the loopback proxy', async (h) => {
  const proxy = await startConnectProxy();
  try {
    await withProxyEnv({ HTTPS_PROXY: proxy.url }, () =>
      withAccount(environment(h, true), async (account) => {
        const token = await account.getToken();
        assert.equal((await introspect(h, token)).active, true);
      }),
    );
    const { host } = new URL(h.token_url);
    const target = host.includes(':') ? host : `${host}:443`;
    assert.deepEqual(proxy.entries(), [{ method: 'CONNECT', target, allowed: true }]);
  } finally {
    await proxy.close();
  }
});
