// A billing worker: every few seconds it calls the billing API with a
// service-account token from tokenwell.
//
// - Configuration from the environment (ServiceAccount.fromEnv): CLIENT_ID,
//   CLIENT_SECRET, CLIENT_SECRET_FILE or CLIENT_PRIVATE_KEY_FILE (private_key_jwt),
//   TOKEN_URL, or ISSUER_URL to discover it (HYDRA_URL: Hydra's /oauth2/token), SCOPE, AUDIENCE.
// - API_URL: the billing API to call (GET, with Authorization: Bearer). Without
//   it the worker only checks that it can get a token.
// - Fails closed: when no token can be had it does not call the API; it logs
//   the TokenError and pauses (60 s by default) before trying again.
// - WORKER_ITERATIONS=N stops after N iterations (a demo terminates);
//   WORKER_INTERVAL_MS (default 5000) and WORKER_PAUSE_MS (default 60000) set the pace.
//
// Exit codes: 0 when the last iteration succeeded; 75 when it failed on a
// transient token error (retrying later may succeed); 1 when the credentials
// or configuration must be fixed; 78 for an incomplete environment.

import { ServiceAccount, TokenError, engineBackend, type TokenEvent } from 'tokenwell';

const EX_TEMPFAIL = 75;
const EX_CONFIG = 78;

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} billing-worker: ${message}\n`);
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    log(`${name} must be a non-negative number, not ${JSON.stringify(raw)}`);
    process.exit(EX_CONFIG);
  }
  return value;
}

/** Events worth a log line: refreshes and failures, never a secret or a token. */
function onEvent(event: TokenEvent): void {
  switch (event.type) {
    case 'token_acquired':
      log(`token acquired (expires ${new Date(event.expiresAt ?? 0).toISOString()}, scope ${JSON.stringify(event.scope)})`);
      break;
    case 'refresh_failed':
      log(`token refresh failed: ${event.error?.kind}: ${event.error?.description ?? ''}`);
      break;
    case 'discovery_completed':
      log(`discovered the token endpoint ${event.tokenEndpoint} (auth ${event.authMethod})`);
      break;
    case 'keys_replaced':
    case 'secret_fallback':
    case 'secrets_replaced':
    case 'secret_file_rejected':
      log(`${event.type} ${JSON.stringify({ ...event, at: undefined, actorType: undefined })}`);
      break;
    default:
      break;
  }
}

/** Waits `ms`, or less if the worker is asked to stop. */
function pause(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (stop.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve();
    }
    stop.addEventListener('abort', done, { once: true });
  });
}

type Outcome = 'ok' | 'token-transient' | 'token-permanent' | 'api-error';

async function iteration(account: ServiceAccount, apiUrl: string | undefined, n: number): Promise<Outcome> {
  try {
    if (apiUrl === undefined) {
      const token = await account.token();
      log(`run ${n}: token valid until ${token.expiresAt.toISOString()} (no API_URL set: not calling an API)`);
      return 'ok';
    }
    const response = await account.fetch(apiUrl, { headers: { accept: 'application/json' } });
    const body = await response.text();
    if (!response.ok) {
      log(`run ${n}: API answered HTTP ${response.status}: ${body.slice(0, 200)}`);
      return 'api-error';
    }
    log(`run ${n}: API answered HTTP ${response.status} (${body.length} bytes)`);
    return 'ok';
  } catch (error) {
    if (error instanceof TokenError) {
      // Fail closed: no token, no API call.
      const when = error.retryAt ? `, next attempt allowed at ${error.retryAt.toISOString()}` : '';
      log(
        `run ${n}: no token (${error.kind}, fault ${error.fault}, ${error.retryable ? 'retryable' : 'not retryable'}${when}): ${error.message}`,
      );
      return error.retryable ? 'token-transient' : 'token-permanent';
    }
    log(`run ${n}: API call failed: ${error instanceof Error ? error.message : String(error)}`);
    return 'api-error';
  }
}

async function main(): Promise<number> {
  const iterations = numberFromEnv('WORKER_ITERATIONS', Number.POSITIVE_INFINITY);
  const intervalMs = numberFromEnv('WORKER_INTERVAL_MS', 5_000);
  const pauseMs = numberFromEnv('WORKER_PAUSE_MS', 60_000);
  const apiUrl = process.env.API_URL?.trim() || undefined;

  let account: ServiceAccount;
  try {
    account = ServiceAccount.fromEnv({ onEvent });
  } catch (error) {
    if (error instanceof TokenError) {
      log(`bad configuration, not starting: ${error.message}`);
      return EX_CONFIG;
    }
    throw error;
  }
  const where = account.options.issuer ? `issuer ${account.options.issuer}` : account.options.tokenUrl;
  log(`starting as ${account.options.clientId} against ${where}, auth ${account.options.authMethod} (engine: ${engineBackend()})`);

  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      stop.abort();
    });
  }

  let last: Outcome = 'ok';
  for (let n = 1; n <= iterations && !stop.signal.aborted; n++) {
    last = await iteration(account, apiUrl, n);
    if (n >= iterations || stop.signal.aborted) break;
    if (last === 'token-transient' || last === 'token-permanent') {
      log(`pausing ${pauseMs / 1000} s before trying again`);
      await pause(pauseMs, stop.signal);
    } else {
      await pause(intervalMs, stop.signal);
    }
  }
  account.close();
  if (last === 'token-transient') return EX_TEMPFAIL;
  if (last === 'token-permanent' || last === 'api-error') return 1;
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(`crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
