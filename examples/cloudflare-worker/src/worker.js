// A Cloudflare Worker that calls an API as a service account.
//
// Configuration comes from the Worker's env bindings (wrangler.toml `[vars]`,
// and `wrangler secret put CLIENT_SECRET`), read by ServiceAccount.fromEnv:
// CLIENT_ID, CLIENT_SECRET, TOKEN_URL (or HYDRA_URL), SCOPE, AUDIENCE; and
// API_URL, the API this Worker calls with `Authorization: Bearer`.
//
//   GET /token  the token's details (never the token itself) and the engine backend
//   GET /...    forwarded to API_URL + path, with the service account's token
//
// Under the `workerd` export condition tokenwell runs its wasm engine (a
// Worker cannot load a native addon). The account lives at module scope, so
// the isolate's requests share one token and one refresh; each token request
// is handed to the current request's ctx.waitUntil, so the runtime lets it
// finish even when the request that started it has already been answered.

import { ServiceAccount, TokenError, engineBackend } from 'tokenwell';

let account = null;
let currentContext = null;

function serviceAccount(env) {
  account ??= ServiceAccount.fromEnv({
    env,
    // A Worker has no timers between requests: refresh when a request asks.
    backgroundRefresh: false,
    waitUntil: (settled) => currentContext?.waitUntil(settled),
  });
  return account;
}

function problem(status, error) {
  const body = { error: error.kind, fault: error.fault, retryable: error.retryable };
  if (error.retryAt) body.retryAt = error.retryAt.toISOString();
  if (error.field) body.field = error.field;
  return Response.json(body, { status });
}

export default {
  async fetch(request, env, ctx) {
    currentContext = ctx;
    const url = new URL(request.url);
    try {
      const service = serviceAccount(env);
      if (url.pathname === '/token') {
        const token = await service.token();
        return Response.json({
          backend: engineBackend(),
          clientId: service.options.clientId,
          tokenType: token.tokenType,
          expiresAt: token.expiresAt.toISOString(),
          scope: token.scope,
        });
      }
      if (!env.API_URL) return Response.json({ error: 'API_URL is not set' }, { status: 500 });
      const target = new URL(url.pathname.replace(/^\/+/, '') + url.search, env.API_URL.replace(/\/*$/, '/'));
      const response = await service.fetch(target, { headers: { accept: 'application/json' } });
      return new Response(response.body, {
        status: response.status,
        headers: { 'content-type': response.headers.get('content-type') ?? 'application/octet-stream' },
      });
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      // Fail closed: no token, no API call. A configuration error is ours (500);
      // anything else is the token endpoint's, and the client may retry (503).
      return problem(error.kind === 'config' ? 500 : 503, error);
    }
  },
};
