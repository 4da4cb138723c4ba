// A loopback oidc-provider (the certified Node OpenID provider) for tokenwell's
// integration tests: client_credentials grant only, confidential clients with
// client_secret_basic and client_secret_post, scopes and resource indicators.
//
// It listens on 127.0.0.1 only, on OIDC_PORT (default 0 = a free port chosen
// by the kernel, so there is no pick-then-bind race), and once listening it
// writes a JSON description of itself (issuer, endpoints, clients with their
// secrets) to OIDC_READY_FILE atomically (write + rename) and to stdout.
//
// Environment:
//   OIDC_PORT              port to listen on (default 0: any free port)
//   OIDC_READY_FILE        where to write the description JSON (optional)
//   OIDC_ACCESS_TOKEN_TTL  access token lifetime in seconds (default 300)
//   OIDC_SHORT_TTL         lifetime for the `short_ttl` client (default 5)
//   OIDC_AUDIENCE          the default resource indicator / audience
//                          (default https://billing.tokenwell.test)
//   OIDC_PARENT_PID        if set, exit when that process is gone
//   OIDC_BULK_CLIENTS      how many "bulk" clients to add (default 200)
//
// Bulk clients (`bulk_clients` in the description): `tokenwell-bulk-000`, ...,
// client_secret_basic, no scopes requested, each with a random secret of 8-40
// printable ASCII characters (../random-secrets.mjs), generated here at startup.
// ASCII only: oidc-provider enforces RFC 6749 Appendix A (client-secret =
// *VSCHAR, %x20-7E) both when it loads a client and when it decodes the
// credentials, so a Unicode secret is refused (Hydra's bulk clients have them).
//
// Secrets: the description (which has every secret) goes to OIDC_READY_FILE
// only; it is printed on stdout only when there is no ready file (a manual run).
//
// Audience: oidc-provider implements RFC 8707 resource indicators
// (`resource=` form parameter). It does NOT understand Auth0/Hydra-style
// `audience=`; an unknown parameter like that is silently ignored. When a
// client sends no `resource`, the default resource (OIDC_AUDIENCE) is used,
// so every token has aud = that resource and carries the billing scopes.
// Requesting any other resource gets `invalid_target`.
//
// Scopes: without a resource server oidc-provider only keeps OpenID scopes in
// client_credentials tokens; with one, requested scopes are intersected with
// the resource server's scopes (unknown scopes are silently dropped, unlike
// Hydra, which answers invalid_scope). Asking for a scope the client is not
// allowed (`billing:admin` is known to the provider but no client has it)
// gets invalid_scope.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

import Provider, { errors } from 'oidc-provider';

import { randomSecret } from '../random-secrets.mjs';

const require = createRequire(import.meta.url);
const { version: OIDC_PROVIDER_VERSION } = require('oidc-provider/package.json');

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.env.OIDC_PORT ?? '0', 10);
const TTL = Number.parseInt(process.env.OIDC_ACCESS_TOKEN_TTL ?? '300', 10);
const SHORT_TTL = Number.parseInt(process.env.OIDC_SHORT_TTL ?? '5', 10);
const AUDIENCE = process.env.OIDC_AUDIENCE ?? 'https://billing.tokenwell.test';
const SCOPES = ['billing:read', 'billing:write'];
const READY_FILE = process.env.OIDC_READY_FILE;
const BULK = Number.parseInt(process.env.OIDC_BULK_CLIENTS ?? '200', 10);

for (const [k, v] of [['OIDC_ACCESS_TOKEN_TTL', TTL], ['OIDC_SHORT_TTL', SHORT_TTL], ['OIDC_PORT', PORT],
  ['OIDC_BULK_CLIENTS', BULK]]) {
  if (!Number.isInteger(v) || v < 0) {
    console.error(`oidc-provider: bad ${k}`);
    process.exit(2);
  }
}

const secret = () => crypto.randomBytes(24).toString('base64url');

// role -> client. `format` and `ttl` are ours (applied through the resource
// server info below); the rest is standard client metadata.
const CLIENTS = {
  basic: {
    client_id: 'tokenwell-basic',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_basic',
    format: 'opaque',
    ttl: TTL,
  },
  post: {
    client_id: 'tokenwell-post',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_post',
    format: 'opaque',
    ttl: TTL,
  },
  jwt: {
    client_id: 'tokenwell-jwt',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_basic',
    format: 'jwt',
    ttl: TTL,
  },
  special_secret: {
    client_id: 'tokenwell-special',
    // Must be form-urlencoded inside HTTP Basic (RFC 6749 2.3.1).
    // ASCII only: oidc-provider enforces RFC 6749 Appendix A, where
    // client-secret = *VSCHAR (%x20-7E), and answers invalid_request to a
    // decoded secret with anything else (Hydra accepts non-ASCII secrets).
    client_secret: `tw:50%41 +&=/?-${secret().slice(0, 8)}`,
    token_endpoint_auth_method: 'client_secret_basic',
    format: 'opaque',
    ttl: TTL,
  },
  short_ttl: {
    client_id: 'tokenwell-short',
    client_secret: secret(),
    token_endpoint_auth_method: 'client_secret_basic',
    format: 'opaque',
    ttl: SHORT_TTL,
  },
};
// Many clients with random VSCHAR secrets (ASCII only, see above).
const BULK_CLIENTS = Array.from({ length: BULK }, (_, i) => ({
  client_id: `tokenwell-bulk-${String(i).padStart(3, '0')}`,
  client_secret: randomSecret({ unicode: false }),
  token_endpoint_auth_method: 'client_secret_basic',
  format: 'opaque',
  ttl: TTL,
}));
const ALL_CLIENTS = [...Object.values(CLIENTS), ...BULK_CLIENTS];
const byId = new Map(ALL_CLIENTS.map((c) => [c.client_id, c]));

// A fresh signing key per run (JWT access tokens); nothing is persisted.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `tw-${secret().slice(0, 8)}`, use: 'sig', alg: 'RS256' };

const server = http.createServer();
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;

  const provider = new Provider(issuer, {
    clients: ALL_CLIENTS.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPES.join(' '),
    })),
    scopes: ['openid', 'offline_access', ...SCOPES, 'billing:admin'],
    jwks: { keys: [jwk] },
    cookies: { keys: [secret()] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated client of ours may introspect any token.
        allowedPolicy: async () => true,
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => AUDIENCE,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          if (resourceIndicator !== AUDIENCE) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          const c = byId.get(client.clientId);
          return {
            scope: SCOPES.join(' '),
            audience: AUDIENCE,
            accessTokenTTL: c?.ttl ?? TTL,
            accessTokenFormat: c?.format ?? 'opaque',
            ...(c?.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
          };
        },
      },
    },
    ttl: {
      // Used only when no resource server is involved (never, given the
      // default resource above), kept consistent anyway.
      ClientCredentials: (ctx, token, client) => token.resourceServer?.accessTokenTTL
        ?? byId.get(client.clientId)?.ttl ?? TTL,
    },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));

  server.on('request', provider.callback());

  const description = {
    version: OIDC_PROVIDER_VERSION,
    pid: process.pid,
    issuer,
    token_url: `${issuer}/token`,
    introspection_url: `${issuer}/token/introspection`,
    revocation_url: `${issuer}/token/revocation`,
    jwks_url: `${issuer}/jwks`,
    discovery_url: `${issuer}/.well-known/openid-configuration`,
    access_token_ttl_seconds: TTL,
    default_audience: AUDIENCE,
    audience_parameter: 'resource',
    clients: Object.fromEntries(Object.entries(CLIENTS).map(([role, c]) => [role, {
      client_id: c.client_id,
      client_secret: c.client_secret,
      auth_method: c.token_endpoint_auth_method,
      scopes: SCOPES,
      audience: [AUDIENCE],
      access_token_format: c.format,
      access_token_ttl_seconds: c.ttl,
    }])),
    // Requested with no scope and no resource: the default resource applies.
    bulk_clients: BULK_CLIENTS.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      auth_method: c.token_endpoint_auth_method,
      scopes: [],
      audience: [],
      access_token_format: c.format,
      access_token_ttl_seconds: c.ttl,
    })),
  };
  const json = JSON.stringify(description, null, 2);
  if (READY_FILE) {
    const tmp = path.join(path.dirname(READY_FILE), `.${path.basename(READY_FILE)}.${process.pid}`);
    fs.writeFileSync(tmp, json, { mode: 0o600 });
    fs.renameSync(tmp, READY_FILE);
  } else {
    console.log(json); // a manual run: the only way to learn the secrets
  }
  console.error(`oidc-provider ${OIDC_PROVIDER_VERSION} listening on ${issuer}`
    + ` (${Object.keys(CLIENTS).length} clients + ${BULK_CLIENTS.length} bulk clients)`);
});

server.on('error', (err) => {
  console.error('oidc-provider: listen failed:', err.message);
  process.exit(1);
});

const stop = (sig) => {
  console.error(`oidc-provider: ${sig}, stopping`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

// Never outlive the harness that started us, even if it was SIGKILLed.
const parent = Number.parseInt(process.env.OIDC_PARENT_PID ?? '', 10);
if (Number.isInteger(parent) && parent > 1) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      stop('parent gone');
    }
  }, 1000).unref();
}
