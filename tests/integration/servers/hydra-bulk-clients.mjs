// node hydra-bulk-clients.mjs ADMIN_URL COUNT TTL_SECONDS OUT_FILE
//
// Creates COUNT client_credentials clients in Ory Hydra through its admin REST
// API (POST /admin/clients, 8 requests in flight), each with a random secret
// of printable ASCII mixed with Unicode (random-secrets.mjs), and writes their
// servers.json entries (a JSON array) to OUT_FILE atomically, mode 0600.
//
// The hydra CLI would be one process per client (~0.1-0.3 s each on a busy
// machine); the main clients are still created with the CLI by with-servers.sh.
// Hydra stores secrets as given (no trimming, no normalization): each answer
// must echo the secret it was sent, byte for byte, or this script fails.
// Nothing here prints a secret; errors carry the HTTP status and Hydra's error
// code only.

import fs from 'node:fs';
import path from 'node:path';

import { randomSecret } from './random-secrets.mjs';

const [adminUrl, countArg, ttlArg, outFile] = process.argv.slice(2);
const count = Number.parseInt(countArg ?? '', 10);
const ttl = Number.parseInt(ttlArg ?? '', 10);
if (!adminUrl || !outFile || !Number.isInteger(count) || count < 0 || !Number.isInteger(ttl) || ttl <= 0) {
  console.error('usage: node hydra-bulk-clients.mjs ADMIN_URL COUNT TTL_SECONDS OUT_FILE');
  process.exit(2);
}
const PARALLEL = 8;
const ATTEMPTS = 3;

async function create(i) {
  const name = `tokenwell bulk ${String(i).padStart(3, '0')}`;
  const secret = randomSecret({ unicode: true });
  const body = JSON.stringify({
    client_name: name,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    audience: [],
  });
  for (let attempt = 1; ; attempt++) {
    let problem;
    try {
      const response = await fetch(`${adminUrl}/admin/clients`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status === 201) {
        const client = JSON.parse(text);
        if (client.client_secret !== secret) throw new Error(`${name}: Hydra did not keep the secret as sent`);
        return {
          client_id: client.client_id,
          client_secret: secret,
          name,
          auth_method: 'client_secret_basic',
          scopes: [],
          audience: [],
          access_token_format: 'opaque',
          access_token_ttl_seconds: ttl,
        };
      }
      let code = '';
      try {
        code = JSON.parse(text).error ?? '';
      } catch { /* not JSON */ }
      problem = `HTTP ${response.status} ${code}`.trim();
      // A 4xx is final (the request is wrong); a 5xx may be SQLite being busy.
      if (response.status < 500) throw new Error(`${name}: ${problem}`);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(name)) throw error;
      problem = error?.name ?? 'network error';
    }
    if (attempt >= ATTEMPTS) throw new Error(`${name}: ${problem} (after ${attempt} attempts)`);
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

const clients = new Array(count);
let next = 0;
async function worker() {
  while (next < count) {
    const i = next++;
    clients[i] = await create(i);
  }
}

try {
  await Promise.all(Array.from({ length: Math.min(PARALLEL, count) }, worker));
} catch (error) {
  console.error(`hydra-bulk-clients: ${error.message}`);
  process.exit(1);
}
const tmp = path.join(path.dirname(outFile), `.${path.basename(outFile)}.${process.pid}`);
fs.writeFileSync(tmp, JSON.stringify(clients), { mode: 0o600 });
fs.renameSync(tmp, outFile);
