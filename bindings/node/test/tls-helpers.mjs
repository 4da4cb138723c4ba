// Helpers for the TLS and proxy tests: a test CA made with the `openssl` CLI, a
// loopback https token server (scripted, not a real authorization server), the
// loopback CONNECT proxy of tests/integration/servers/connect-proxy.py, and
// process environment changes undone after a test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const CONNECT_PROXY = path.join(REPO, 'tests/integration/servers/connect-proxy.py');

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA and a server certificate it signed for 127.0.0.1 (subjectAltName
 * IP:127.0.0.1), in a fresh temporary directory. Also a second, unrelated CA
 * (`otherCaFile`). `remove()` deletes the directory.
 */
export function makeTestCa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  for (const name of ['ca', 'other-ca']) {
    const subject = `/CN=tokenwell test ${name}`;
    openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject, ...caExt], dir);
  }
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  const signing = ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext'];
  openssl(['x509', '-req', '-in', 'server.csr', ...signing, '-out', 'server.pem'], dir);
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    otherCaFile: path.join(dir, 'other-ca.pem'),
    key: fs.readFileSync(path.join(dir, 'server.key')),
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A scripted https token server on 127.0.0.1 with the test CA's certificate:
 * issues `tls-at-<n>` for 300 s. `requests` counts the token requests that
 * got through TLS.
 */
export async function startHttpsTokenServer(ca) {
  const requests = [];
  const server = https.createServer({ key: ca.key, cert: ca.cert }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: `tls-at-${requests.length}`, token_type: 'bearer', expires_in: 300 }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `https://127.0.0.1:${port}/oauth2/token`,
    hostPort: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The loopback CONNECT proxy (tests/integration/servers/connect-proxy.py):
 * `{ url, entries(), close() }`, where `entries()` are the JSON lines of its
 * log so far ({method, target, allowed}).
 */
export async function startConnectProxy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-proxy-'));
  const ready = path.join(dir, 'ready.json');
  const log = path.join(dir, 'proxy.log');
  const args = [CONNECT_PROXY, '--ready-file', ready, '--log', log, '--parent-pid', String(process.pid)];
  const child = spawn('python3', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 15_000;
  while (!fs.existsSync(ready)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`connect-proxy.py did not start (exit ${child.exitCode})`);
    }
    await sleep(20);
  }
  const { url } = JSON.parse(fs.readFileSync(ready, 'utf8'));
  return {
    url,
    entries: () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    close: async () => {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
PROXY_VARIABLES.push('ALL_PROXY', 'all_proxy');

/**
 * Runs `fn` with the process environment's proxy variables cleared and
 * `vars` set, then puts the environment back as it was.
 */
export async function withProxyEnv(vars, fn) {
  const saved = Object.fromEntries(PROXY_VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of PROXY_VARIABLES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const name of PROXY_VARIABLES) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}
