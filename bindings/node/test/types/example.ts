// A typed use of the public API, compiled with `tsc --noEmit` in the test run
// (test/types.test.mjs): the declarations in index.d.ts must accept it.

import { ServiceAccount, TokenCache, TokenError, type PollResult, type TokenEvent, type TokenErrorKind } from 'tokenwell';

const events: TokenEvent[] = [];

const account = new ServiceAccount({
  tokenUrl: 'http://127.0.0.1:4444/oauth2/token',
  clientId: 'billing-worker',
  clientSecret: ['current', 'previous'],
  authMethod: 'client_secret_basic',
  scope: ['billing:read', 'billing:write'],
  audience: ['https://your-api'],
  refreshMarginSeconds: 30,
  timeoutMs: 10_000,
  onEvent: (event) => events.push(event),
});

// Explicit options win over the environment; a cron keeps its token in a file.
const fromEnv: ServiceAccount = ServiceAccount.fromEnv({
  prefix: 'BILLING_',
  env: { BILLING_CLIENT_ID: 'x' },
  clientId: 'explicit',
  clientSecretFile: '/run/secrets/billing/client-secret',
  cachePath: '/var/cache/billing-cron/token.json',
  logger: { warn: (message: string) => console.warn(message) },
});
// private_key_jwt with keys from a file, re-read when it changes.
const signed = new ServiceAccount({
  issuer: 'https://auth.example',
  clientId: 'billing-worker',
  privateKeyFile: '/run/secrets/billing/client-key.pem',
  assertionSigningAlg: 'ES256',
});
const keyFile: string | undefined = signed.options.privateKeyFile;
const keys: number = signed.keyCount;
void [keyFile, keys];
const secrets: number = fromEnv.secretCount;
const cachedAt: string | undefined = fromEnv.options.cachePath;
const closed: TokenErrorKind = 'closed';
void [secrets, cachedAt, closed];

async function work(): Promise<number> {
  const bearer: string = await account.getToken();
  const token = await account.token();
  const expires: Date = token.expiresAt;
  const scopes: string[] = token.scope;
  const response: Response = await account.fetch('https://your-api/invoices', { method: 'GET' });
  const outcome: 'invalidated' | 'not_current' | 'rate_limited' = account.invalidate(bearer);
  void [expires, scopes, outcome];
  return response.status;
}

function describe(error: unknown): string {
  if (error instanceof TokenError) {
    const kind: TokenErrorKind = error.kind;
    const when: Date | undefined = error.retryAt;
    const status: number | undefined = error.status;
    const code: string | undefined = error.oauthError;
    return `${kind} ${error.retryable} ${when?.toISOString()} ${status} ${code} ${error.fault}`;
  }
  return String(error);
}

// The sans-IO engine, driven by hand.
const cache = new TokenCache({ tokenUrl: 'https://a.example/t', clientId: 'c', clientSecret: 's' }, 42n);
const poll: PollResult = cache.poll(Date.now());
cache.reportSecretFileProblem('CLIENT_SECRET_FILE', 'cannot read the secret file /run/s (ENOENT)', Date.now());
cache.reportCacheFileProblem('/var/cache/app/token.json', 'write_failed', 'EACCES', Date.now());
const replaced = cache.replaceSecretsFromFile('new\nold\n', 'CLIENT_SECRET_FILE', Date.now());
if (replaced.result === 'error') describe(replaced.error);
switch (poll.result) {
  case 'send':
  case 'ready_and_send': {
    const outcome = cache.handleResponse(poll.request.fetchId, 200, [['content-type', 'application/json']], '{}', Date.now());
    if (outcome.result === 'error') describe(outcome.error);
    break;
  }
  case 'ready':
    poll.token.expiresAt.toFixed();
    break;
  case 'wait':
    poll.fetchId.toFixed();
    break;
  case 'fail':
    describe(poll.error);
    break;
}
const wake: number | null = cache.nextWakeup();

work().catch(describe).finally(() => {
  account.close();
  fromEnv.close();
});
void wake;
