// Replays every host-contract scenario (tests/conformance/host/*.json, format
// at the end of tests/conformance/README.md) through the public Node API, so
// Node cannot drift from the other hosts. `make test` runs this file with the
// native engine and again with TOKENWELL_BACKEND=wasm.
//
// - `env`: ServiceAccount.fromEnv({ prefix, env, ...explicit }) with the
//   explicit options in Node's spelling (camelCase; `timeoutMs`,
//   `refreshMarginSeconds`); the account's configuration, or the `config`
//   TokenError, is compared. The scenario's file paths are replaced by real
//   files in a temporary directory (the secret file holding
//   `secret_file_contents`, the key file holding `key_file_contents`, a CA
//   file of PEM certificates), in the expectation too.
// - `secret_file`: through an account watching a real file (replaced with
//   `contents`, found at the watch's next look a second later), and through
//   the engine, `TokenCache.replaceSecretsFromFile`, like the Rust runner.
// - `unauthorized`: account.fetch against a loopback API that refuses every
//   token, on an account whose `invalidate` answers the scenario's outcome:
//   the request is retried once exactly when `expect.retry` holds.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
// tokenwell/signed: scenarios sign with RSA and EC keys, which the default wasm engine leaves out.
import { ServiceAccount, TokenCache, TokenError, engineBackend } from '../signed.js';
import { canonical, camel, snake, subsetMismatch, virtualClock } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// TOKENWELL_HOST_SCENARIOS replays another copy (as TOKENWELL_SCENARIOS does for conformance.test.mjs).
const scenarioDir = process.env.TOKENWELL_HOST_SCENARIOS ?? path.join(here, '../../../tests/conformance/host');
const scenarios = fs
  .readdirSync(scenarioDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, ...JSON.parse(fs.readFileSync(path.join(scenarioDir, f), 'utf8')) }));
const ofKind = (kind) => scenarios.filter((s) => s.kind === kind);

/** Secret values of the scenarios: none may show in an error. */
const HOST_SECRETS = ['s3cr3t', 'new-secret', 'old-secret', 'hunter2'];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-host-contract-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Engine options Node takes under another name (and unit). */
const NODE_NAMES = {
  request_timeout_ms: { name: 'timeoutMs', value: (ms) => ms },
  refresh_margin_ms: { name: 'refreshMarginSeconds', value: (ms) => ms / 1000 },
};

/** The scenario's explicit options (the engine's snake_case, ms) as a JS caller writes them. */
function nodeSpelling(explicit) {
  const out = {};
  for (const [name, value] of Object.entries(explicit)) {
    const renamed = NODE_NAMES[name];
    if (renamed) out[renamed.name] = renamed.value(value);
    else out[camel(name)] = value;
  }
  return out;
}

/** A field as the engine names it: options back to snake_case (and Node's own names to the engine's), variables as they are. */
function engineField(field) {
  if (!/^[a-z]/.test(field)) return field;
  const at = field.indexOf('[');
  const base = at < 0 ? field : field.slice(0, at);
  const index = at < 0 ? '' : field.slice(at);
  const engineName = Object.entries(NODE_NAMES).find(([, n]) => n.name === base)?.[0];
  return (engineName ?? snake(base)) + index;
}

/** A PEM file of real CA certificates (Node's bundled roots). */
const pemBundle = path.join(work, 'roots.pem');
fs.writeFileSync(pemBundle, tls.rootCertificates.slice(0, 3).join('\n'));

/** A real file for every path the scenario names: `{ scenario path: real path }`. */
function realFiles(scenario, dir) {
  const prefix = scenario.prefix ?? '';
  const secretPaths = [scenario.env[`${prefix}CLIENT_SECRET_FILE`], scenario.explicit_secret_file].filter(Boolean);
  const caPaths = [scenario.env.TOKENWELL_CA_FILE, scenario.explicit_ca_file].filter(Boolean);
  const keyPaths = [scenario.env[`${prefix}CLIENT_PRIVATE_KEY_FILE`]].filter(Boolean);
  const paths = {};
  keyPaths.forEach((p, i) => {
    const real = path.join(dir, `key-${i}`);
    if (scenario.key_file_contents != null) fs.writeFileSync(real, scenario.key_file_contents);
    paths[p] = real;
  });
  secretPaths.forEach((p, i) => {
    const real = path.join(dir, `secret-${i}`);
    if (scenario.secret_file_contents != null) fs.writeFileSync(real, scenario.secret_file_contents);
    paths[p] = real;
  });
  caPaths.forEach((p, i) => {
    const real = path.join(dir, `ca-${i}.pem`);
    fs.copyFileSync(pemBundle, real);
    paths[p] = real;
  });
  return paths;
}

const replaced = (value, paths) => (typeof value === 'string' && value in paths ? paths[value] : value);

/** `{ config }` or `{ error }` in the scenario's canonical shape, and the expectation with real paths. */
function runEnvCase(scenario) {
  const dir = fs.mkdtempSync(path.join(work, 'env-'));
  const paths = realFiles(scenario, dir);
  const env = Object.fromEntries(Object.entries(scenario.env).map(([k, v]) => [k, replaced(v, paths)]));
  const options = { prefix: scenario.prefix ?? '', env, backgroundRefresh: false, ...nodeSpelling(scenario.explicit) };
  if (scenario.explicit_secret_file) options.clientSecretFile = paths[scenario.explicit_secret_file];
  if (scenario.explicit_ca_file) options.caFile = paths[scenario.explicit_ca_file];
  let expected;
  if (scenario.expect) {
    expected = { config: Object.fromEntries(Object.entries(scenario.expect).map(([k, v]) => [k, replaced(v, paths)])) };
  } else {
    expected = { error: scenario.expect_error };
  }
  let account;
  try {
    account = ServiceAccount.fromEnv(options);
  } catch (error) {
    assert.ok(error instanceof TokenError, `a TokenError, got ${error?.stack ?? error}`);
    assert.equal(error.kind, 'config');
    return { actual: { error: { field: engineField(error.field), problem: error.problem } }, expected };
  }
  try {
    const o = account.options;
    const actual = {
      config: {
        token_url: o.tokenUrl,
        client_id: o.clientId,
        auth_method: o.authMethod,
        scopes: o.scope,
        audiences: o.audience,
        secret_count: account.secretCount,
        key_count: account.keyCount,
        key_file: o.privateKeyFile ?? null,
        secret_file: o.clientSecretFile ?? null,
        ca_file: o.caFile ?? null,
        issuer: o.issuer ?? null,
      },
    };
    return { actual, expected };
  } finally {
    account.close();
  }
}

function check(expected, actual, where) {
  const mismatch = subsetMismatch(expected, actual);
  assert.equal(mismatch, null, `${where} (${engineBackend()}): ${mismatch}\n  actual: ${JSON.stringify(actual)}`);
  if (actual?.error) {
    const text = JSON.stringify(actual);
    for (const secret of HOST_SECRETS) assert.ok(!text.includes(secret), `${where}: an error shows a secret: ${text}`);
  }
}

test('every host-contract scenario kind is replayed here', () => {
  assert.ok(scenarios.length >= 32, `only ${scenarios.length} host-contract scenarios`);
  const replayed = ofKind('env').length + ofKind('secret_file').length + ofKind('unauthorized').length;
  assert.equal(replayed, scenarios.length, 'a scenario kind is not replayed here');
});

for (const scenario of ofKind('env')) {
  test(`host contract, env: ${scenario.name}`, () => {
    const { actual, expected } = runEnvCase(scenario);
    check(expected, actual, scenario.file);
  });
}

// ---- secret files ------------------------------------------------------------------

/** A new file renamed over the old one (a new inode: always a change). */
function replaceFile(file, text) {
  const staged = `${file}.new`;
  fs.writeFileSync(staged, text);
  fs.renameSync(staged, file);
}

/** A source as the engine names it (`clientSecretFile` is Node's `client_secret_file`). */
const engineSource = (source) => engineField(source);

for (const scenario of ofKind('secret_file')) {
  test(`host contract, secret file through an account: ${scenario.name}`, async () => {
    const dir = fs.mkdtempSync(path.join(work, 'file-'));
    const secretFile = path.join(dir, 'client-secret');
    replaceFile(secretFile, scenario.current.map((s) => `${s}\n`).join(''));
    const clock = virtualClock();
    const events = [];
    const common = {
      clock,
      onEvent: (e) => events.push(e),
      backgroundRefresh: false,
      fetch: async () => new Response('{"access_token":"at-1","token_type":"bearer","expires_in":300}'),
    };
    let account;
    if (scenario.source === 'client_secret_file') {
      account = new ServiceAccount({ tokenUrl: 'http://127.0.0.1:9/t', clientId: 'c', clientSecretFile: secretFile, ...common });
    } else {
      // A variable: fromEnv, with the prefix the variable implies.
      const prefix = scenario.source.slice(0, -'CLIENT_SECRET_FILE'.length);
      const env = { [`${prefix}CLIENT_ID`]: 'c', [`${prefix}TOKEN_URL`]: 'http://127.0.0.1:9/t', [scenario.source]: secretFile };
      account = ServiceAccount.fromEnv({ prefix, env, ...common });
    }
    try {
      assert.equal(await account.getToken(), 'at-1');
      const mark = events.length;
      replaceFile(secretFile, scenario.contents);
      clock.advance(1000); // the watch's next look
      assert.equal(await account.getToken(), 'at-1');
      const seen = canonical(events.slice(mark)).map((e) => ('source' in e ? { ...e, source: engineSource(e.source) } : e));
      const rejected = seen.filter((e) => e.type === 'secret_file_rejected');
      const actual = { secret_count: account.secretCount, events: seen };
      if (rejected.length > 0) {
        Object.assign(actual, { result: 'rejected', error: { field: rejected[0].source, problem: rejected[0].problem } });
      } else {
        Object.assign(actual, { result: 'replaced', changed: seen.some((e) => e.type === 'secrets_replaced') });
      }
      check(scenario.expect, actual, scenario.file);
    } finally {
      account.close();
    }
  });

  test(`host contract, secret file through the engine: ${scenario.name}`, () => {
    const cache = new TokenCache({ tokenUrl: 'https://auth.example/oauth2/token', clientId: 'c', clientSecret: scenario.current });
    const outcome = cache.replaceSecretsFromFile(scenario.contents, scenario.source, 1_700_000_000_000);
    const actual =
      outcome.result === 'error'
        ? { result: 'rejected', error: { field: engineField(outcome.error.field), problem: outcome.error.problem } }
        : { result: 'replaced', changed: outcome.changed };
    Object.assign(actual, { secret_count: cache.describe().secretCount, events: canonical(cache.drainEvents()) });
    check(scenario.expect, actual, scenario.file);
  });
}

// ---- the 401 rule --------------------------------------------------------------------

/** An API on 127.0.0.1 that refuses every token, logging the Authorization it got. */
async function refusingApi() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"error":"invalid_token"}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/invoices`,
    seen,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

/** An account whose `invalidate` answers `outcome`, handing out token-1, token-2, ... */
class OutcomeAccount extends ServiceAccount {
  handedOut = 0;

  constructor(outcome) {
    super({ tokenUrl: 'http://127.0.0.1:9/t', clientId: 'c', clientSecret: 's', backgroundRefresh: false });
    this.outcome = outcome;
  }

  async getToken() {
    this.handedOut += 1;
    return `token-${this.handedOut}`;
  }

  invalidate() {
    return this.outcome;
  }
}

for (const scenario of ofKind('unauthorized')) {
  test(`host contract, 401 rule through account.fetch: ${scenario.name}`, async () => {
    const api = await refusingApi();
    const account = new OutcomeAccount(scenario.invalidate_outcome);
    try {
      const response = await account.fetch(api.url);
      assert.equal(response.status, 401, 'a retry, if any, is refused too: never a second retry');
      assert.deepEqual(api.seen.slice(1), api.seen.length === 2 ? ['Bearer token-2'] : []);
      check(scenario.expect, { retry: api.seen.length === 2 }, scenario.file);
    } finally {
      account.close();
      await api.close();
    }
  });
}
