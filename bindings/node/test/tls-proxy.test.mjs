// TLS with a test CA and proxies, over loopback: a scripted https token server
// with a certificate from a CA made here with `openssl`, reached with `caFile`
// or `TOKENWELL_CA_FILE` (a token), without it (a held `tls_certificate`
// configuration fault), through the loopback CONNECT proxy of
// tests/integration/servers/connect-proxy.py with HTTPS_PROXY (one CONNECT
// logged), and a plain-http loopback token URL with every proxy variable set
// (nothing reaches the proxy).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { ServiceAccount, TokenError } from '../index.js';
import { startScriptedTokenServer } from './helpers.mjs';
import { makeTestCa, startHttpsTokenServer, startConnectProxy, withProxyEnv } from './tls-helpers.mjs';

let ca;
let server;
let proxy;

before(async () => {
  ca = makeTestCa();
  server = await startHttpsTokenServer(ca);
  proxy = await startConnectProxy();
});

after(async () => {
  await Promise.all([server?.close(), proxy?.close()]);
  ca?.remove();
});

function accountFor(tokenUrl, extra = {}) {
  return new ServiceAccount({ tokenUrl, clientId: 'billing', clientSecret: 'tls-secret', backgroundRefresh: false, ...extra });
}

async function tokenErrorOf(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TokenError, `a TokenError, got ${inspect(error)}`);
    return error;
  }
  assert.fail('a token was served');
}

/**
 * Runs a Node script in a child process (asynchronously: the token server is
 * in this process and must keep answering). Resolves to {status, signal, stdout, stderr}.
 */
function runNode(args, options) {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { encoding: 'utf8', timeout: 30_000, ...options }, (error, stdout, stderr) => {
      resolve({ status: error ? error.code : 0, signal: error?.signal ?? null, stdout, stderr });
    });
  });
}

/** The requests the proxy logged since `from`. */
const proxied = (from) => proxy.entries().slice(from);

test('https with caFile (a test CA): a token', async () => {
  await withProxyEnv({}, async () => {
    const before = server.requests.length;
    const account = accountFor(server.url, { caFile: ca.caFile });
    try {
      assert.match(await account.getToken(), /^tls-at-\d+$/);
      assert.equal(server.requests.length, before + 1);
      assert.equal(account.options.caFile, ca.caFile);
    } finally {
      account.close();
    }
  });
});

test('https without the CA: tls_certificate, a held configuration fault whose message says how to trust a CA', async () => {
  await withProxyEnv({}, async () => {
    const before = server.requests.length;
    for (const extra of [{}, { caFile: ca.otherCaFile }]) {
      const account = accountFor(server.url, extra);
      try {
        const error = await tokenErrorOf(account.getToken());
        assert.equal(error.kind, 'tls_certificate', inspect(error));
        assert.equal(error.fault, 'configuration');
        assert.equal(error.retryable, false);
        assert.match(error.message, /caFile/);
        assert.match(error.message, /TOKENWELL_CA_FILE/);
        assert.match(error.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
        assert.equal(account.state, 'held');
        // Held, not retried: the next call fails fast without a handshake.
        assert.equal((await tokenErrorOf(account.getToken())).kind, 'tls_certificate');
      } finally {
        account.close();
      }
    }
    assert.equal(server.requests.length, before, 'no token request got through TLS');
  });
});

test('fromEnv: TOKENWELL_CA_FILE is the CA of the default transport; a bad one is a config error naming it', async () => {
  await withProxyEnv({}, async () => {
    const env = { CLIENT_ID: 'billing', CLIENT_SECRET: 'tls-secret', TOKEN_URL: server.url, TOKENWELL_CA_FILE: ca.caFile };
    const account = ServiceAccount.fromEnv({ env, backgroundRefresh: false });
    try {
      assert.match(await account.getToken(), /^tls-at-\d+$/);
      assert.equal(account.options.caFile, ca.caFile);
    } finally {
      account.close();
    }
    const without = ServiceAccount.fromEnv({ env: { ...env, TOKENWELL_CA_FILE: '' }, backgroundRefresh: false });
    try {
      assert.equal((await tokenErrorOf(without.getToken())).kind, 'tls_certificate');
    } finally {
      without.close();
    }
    const notPem = path.join(ca.dir, 'not-a-certificate.pem');
    fs.writeFileSync(notPem, 'hello\n');
    for (const [file, problem] of [
      [path.join(ca.dir, 'missing.pem'), /cannot be read \(ENOENT\)/],
      [notPem, /holds no PEM certificate/],
    ]) {
      assert.throws(
        () => ServiceAccount.fromEnv({ env: { ...env, TOKENWELL_CA_FILE: file } }),
        (e) => e instanceof TokenError && e.kind === 'config' && e.field === 'TOKENWELL_CA_FILE' && problem.test(e.problem),
      );
      assert.throws(
        () => accountFor(server.url, { caFile: file }),
        (e) => e instanceof TokenError && e.kind === 'config' && e.field === 'caFile' && problem.test(e.problem),
      );
    }
  });
});

test('caFile with your own fetch is refused: that fetch brings its own agent', async () => {
  assert.throws(
    () => accountFor(server.url, { caFile: ca.caFile, fetch: globalThis.fetch }),
    (e) => e instanceof TokenError && e.kind === 'config' && e.field === 'caFile',
  );
  // TOKENWELL_CA_FILE in the environment does not apply to a fetch of the caller's:
  // this undici fetch trusts the test CA through its own Agent, as the README shows.
  await withProxyEnv({}, async () => {
    const dispatcher = new Agent({ connect: { ca: fs.readFileSync(ca.caFile, 'utf8') } });
    const account = ServiceAccount.fromEnv({
      env: { CLIENT_ID: 'billing', CLIENT_SECRET: 'tls-secret', TOKEN_URL: server.url, TOKENWELL_CA_FILE: '/nonexistent' },
      fetch: (input, init) => undiciFetch(input, { ...init, dispatcher }),
      backgroundRefresh: false,
    });
    try {
      assert.match(await account.getToken(), /^tls-at-\d+$/);
    } finally {
      account.close();
      await dispatcher.close();
    }
  });
});

test('HTTPS_PROXY: the https token request goes through the CONNECT proxy (one CONNECT logged)', async () => {
  for (const variable of ['HTTPS_PROXY', 'https_proxy']) {
    await withProxyEnv({ [variable]: proxy.url }, async () => {
      const from = proxy.entries().length;
      const before = server.requests.length;
      const account = accountFor(server.url, { caFile: ca.caFile });
      try {
        assert.match(await account.getToken(), /^tls-at-\d+$/, variable);
        assert.equal(server.requests.length, before + 1);
        assert.deepEqual(proxied(from), [{ method: 'CONNECT', target: server.hostPort, allowed: true }], variable);
      } finally {
        account.close();
      }
    });
  }
});

test('HTTPS_PROXY without the CA: still tls_certificate (the tunnel is not the fault)', async () => {
  await withProxyEnv({ HTTPS_PROXY: proxy.url }, async () => {
    const from = proxy.entries().length;
    const account = accountFor(server.url);
    try {
      assert.equal((await tokenErrorOf(account.getToken())).kind, 'tls_certificate');
      assert.deepEqual(proxied(from).map((e) => e.method), ['CONNECT']);
    } finally {
      account.close();
    }
  });
});

test('NO_PROXY naming the token host: direct, nothing reaches the proxy', async () => {
  for (const noProxy of ['127.0.0.1', `127.0.0.1:${new URL(server.url).port}`, '*']) {
    await withProxyEnv({ HTTPS_PROXY: proxy.url, NO_PROXY: noProxy }, async () => {
      const from = proxy.entries().length;
      const account = accountFor(server.url, { caFile: ca.caFile });
      try {
        assert.match(await account.getToken(), /^tls-at-\d+$/);
        assert.deepEqual(proxied(from), [], `NO_PROXY=${noProxy}`);
      } finally {
        account.close();
      }
    });
  }
});

test('a plain-http loopback token URL never goes through a proxy, whatever the proxy variables say', async () => {
  const plain = await startScriptedTokenServer();
  const everything = {
    http_proxy: proxy.url,
    HTTP_PROXY: proxy.url,
    https_proxy: proxy.url,
    HTTPS_PROXY: proxy.url,
    ALL_PROXY: proxy.url,
  };
  try {
    await withProxyEnv(everything, async () => {
      const from = proxy.entries().length;
      const account = accountFor(plain.url);
      try {
        assert.equal(await account.getToken(), 'at-1');
        assert.equal(plain.requests.length, 1);
        assert.deepEqual(proxied(from), [], 'the proxy saw nothing');
      } finally {
        account.close();
      }
    });
  } finally {
    await plain.close();
  }
});

test('NODE_EXTRA_CA_CERTS works alone; a caFile replaces it (the file names the only trusted CAs)', async () => {
  const index = fileURLToPath(new URL('../index.js', import.meta.url));
  const script = `
    const { ServiceAccount } = require(${JSON.stringify(index)});
    const caFile = process.argv[1] || undefined;
    const a = new ServiceAccount({ tokenUrl: ${JSON.stringify(server.url)}, clientId: 'c', clientSecret: 's', caFile });
    a.getToken().then((t) => { console.log(t); a.close(); }, (e) => { console.log(e.kind); a.close(); });`;
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: ca.caFile };
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) delete env[name];
  for (const [caFile, expected] of [['', /^tls-at-\d+$/], [ca.otherCaFile, /^tls_certificate$/]]) {
    const child = await runNode(['-e', script, caFile], { env });
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout.trim(), expected, `caFile=${caFile || '(none)'}: ${child.stdout}${child.stderr}`);
  }
});

test('the default transport does not keep a process alive', async () => {
  const index = fileURLToPath(new URL('../index.js', import.meta.url));
  const script = `
    const { ServiceAccount } = require(${JSON.stringify(index)});
    const a = new ServiceAccount({ tokenUrl: ${JSON.stringify(server.url)}, clientId: 'c', clientSecret: 's',
      caFile: ${JSON.stringify(ca.caFile)} });
    a.getToken().then((t) => console.log(t));`;
  const child = await runNode(['-e', script]);
  assert.equal(child.signal, null, 'the process exited by itself');
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout.trim(), /^tls-at-\d+$/);
});
