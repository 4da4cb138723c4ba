// Type declarations for `tokenwell` (hand-written; checked by `tsc --noEmit` in the test run).

/** Every engine error kind (the engine's `ErrorKind`, same names in every language). */
export type TokenErrorKind =
  | 'config'
  | 'invalid_client'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_request'
  | 'invalid_grant'
  | 'rejected'
  | 'rate_limited'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'transport'
  | 'timeout'
  | 'malformed_response'
  | 'endpoint_not_found'
  | 'tls_certificate'
  | 'stale_fetch'
  | 'closed'
  | 'discovery_failed'
  | 'issuer_mismatch'
  | 'discovery_complete';

/** Who has to act on an error. */
export type Fault =
  | 'configuration'
  | 'credentials'
  | 'authorization_server'
  | 'transport'
  | 'malformed_response'
  | 'host';

export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'client_secret_jwt';

/** Algorithms a client assertion is signed with (`private_key_jwt`: RS/PS/ES; `client_secret_jwt`: HS). */
export type AssertionSigningAlg =
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384'
  | 'HS256' | 'HS384' | 'HS512';

/** Thrown for every failure to get a token. Never contains a secret. */
export class TokenError extends Error {
  constructor(message: string, fields?: Partial<TokenErrorFields>);
  /** Builds a TokenError from the engine's error object (as in `TokenCache` results). */
  static fromEngine(error: EngineError): TokenError;
  readonly name: 'TokenError';
  /** What happened. */
  kind: TokenErrorKind;
  /** Who has to act. */
  fault: Fault;
  /** Whether the engine retries on its own (with backoff). */
  retryable: boolean;
  /** When the engine next allows a token request. */
  retryAt?: Date;
  /** HTTP status of the token endpoint's response, if there was one. */
  status?: number;
  /** The RFC 6749 `error` code, if the server sent one. */
  oauthError?: string;
  /** The server's `error_description`, or what went wrong. */
  description?: string;
  /** For `config` errors: the option or environment variable at fault (`tokenUrl`, `CLIENT_ID`). */
  field?: string;
  /** For `config` errors: what is wrong with it. */
  problem?: string;
  toJSON(): Record<string, unknown>;
}

export interface TokenErrorFields {
  kind: TokenErrorKind;
  fault: Fault;
  retryable: boolean;
  retryAt: Date | number | null;
  status: number | null;
  oauthError: string | null;
  description: string | null;
  field: string;
  problem: string;
}

/** The engine's table: every kind with its fault and whether it is retried. */
export const ERROR_KINDS: Readonly<Record<TokenErrorKind, { fault: Fault; retryable: boolean }>>;
/**
 * The engine backend serving this process: `'native'` (the prebuilt napi-rs
 * module of the platform package) or `'wasm'` (its wasm-bindgen build: always
 * under the `workerd`, `edge-light`, `deno` and `browser` export conditions,
 * where no native module loads, and with `TOKENWELL_BACKEND=wasm`).
 */
export function engineBackend(): 'native' | 'wasm';

/**
 * What went wrong with the cache file (`cachePath`), the `problem` of a
 * `cache_file_problem` event: not used (`ignored`), readable by others and
 * narrowed to 0600 (`permissions_tightened`), a snapshot not written
 * (`write_failed`), the lock file not usable (`lock_failed`), the lock held
 * by another process past the wait (`lock_timeout`).
 */
export type CacheFileProblem = 'ignored' | 'permissions_tightened' | 'write_failed' | 'lock_failed' | 'lock_timeout';

/** An event for audit logs and metrics. `type` says which; the other fields depend on it. */
export interface TokenEvent {
  /** ms since the Unix epoch. */
  at: number;
  actorType: 'client';
  /** The client id. */
  actorId: string;
  type:
    | 'refresh_started'
    | 'token_acquired'
    | 'refresh_failed'
    | 'secret_fallback'
    | 'backoff_scheduled'
    | 'fetch_abandoned'
    | 'token_invalidated'
    | 'invalidate_rate_limited'
    | 'secrets_replaced'
    | 'snapshot_imported'
    | 'clock_went_backwards'
    | 'outage_grace_served'
    | 'secret_file_rejected'
    | 'cache_file_problem'
    | 'discovery_started'
    | 'discovery_completed'
    | 'discovery_kept_cached'
    | 'keys_replaced'
    | (string & {});
  fetchId?: number;
  reason?: 'initial' | 'ahead' | 'expired' | 'invalidated';
  secretIndex?: number;
  expiresAt?: number;
  refreshAt?: number;
  retryAt?: number;
  error?: EngineError;
  errorKind?: TokenErrorKind;
  /** `secret_file_rejected`: the variable or option that named the file. */
  source?: string;
  /**
   * `secret_file_rejected`: what is wrong with the file (its path, never its
   * contents). `cache_file_problem`: what went wrong with the cache file, a
   * {@link CacheFileProblem}.
   */
  problem?: string;
  /** `cache_file_problem`: the cache file (or its `.lock` file). */
  path?: string;
  /** `discovery_started`: the metadata URL asked for. */
  url?: string;
  /** `discovery_started`: why (`initial`, `interval`, `endpoint_not_found`). */
  cause?: 'initial' | 'interval' | 'endpoint_not_found';
  /** `discovery_completed`: the token endpoint the metadata document names. */
  tokenEndpoint?: string;
  /** `discovery_completed`: the auth method chosen with it. */
  authMethod?: AuthMethod;
  /** `keys_replaced`: how many private keys are configured now. */
  count?: number;
  /**
   * `cache_file_problem`: the non-secret detail, the reason, the error code
   * and/or the mode joined by ": " (`"symlink"`, `"unusable: EACCES"`,
   * `"insecure_permissions: 0o666"`, `"EISDIR"`, `"0o644"`, `"expired"`; `""`
   * for `lock_timeout`).
   */
  detail?: string;
  [field: string]: unknown;
}

/** Engine options a ServiceAccount passes through (camelCase, durations in ms). */
export type EngineTuning = Partial<
  Omit<
    TokenCacheOptions,
    'tokenUrl' | 'issuer' | 'clientId' | 'clientSecret' | 'privateKey' | 'requestTimeoutMs' | 'refreshMarginMs'
  >
>;

export interface ServiceAccountOptions extends EngineTuning {
  /**
   * The token endpoint, e.g. `https://hydra.example/oauth2/token` (plain http
   * only on loopback). Give it or `issuer`.
   */
  tokenUrl?: string;
  /**
   * The issuer, e.g. `https://auth.example/realms/billing`: the token endpoint
   * and auth method are discovered from its metadata document
   * (`/.well-known/oauth-authorization-server`, then
   * `/.well-known/openid-configuration`), whose `issuer` must match exactly.
   */
  issuer?: string;
  clientId: string;
  /** One secret, or `[current, previous]` during a rotation. Or use `clientSecretFile`. */
  clientSecret?: string | string[];
  /**
   * For `private_key_jwt`: the private key (PKCS#8 / SEC1 / PKCS#1 PEM, or a
   * JWK / JWKS as JSON text), or `[current, previous]` during a rotation. The
   * engine signs a client assertion with it for every token request; it never
   * shows in errors, events or `inspect`. Or use `privateKeyFile` (with
   * `fromEnv`, `CLIENT_PRIVATE_KEY_FILE`).
   */
  privateKey?: string | string[];
  /**
   * For `private_key_jwt`, instead of `privateKey`: a file holding the
   * private key(s) (PEM blocks, or a JWK / JWKS; several keys current first,
   * `[new, old]` during a rotation), looked at and re-read by the secret
   * file's rule. A file with no valid key is a `config` error at construction
   * (`field` `privateKeyFile`; the file is never quoted) and, later, keeps
   * the keys in use (the engine's `secret_file_rejected` event); a changed
   * file with valid keys is a `keys_replaced` event. With `privateKey` too, a
   * `config` error. With a secret too, the secret is used unless `authMethod`
   * is `private_key_jwt`.
   */
  privateKeyFile?: string;
  /**
   * The algorithm for keys whose JWK names none (`RS256`, `PS256`, ...; EC
   * keys sign with their curve's), or `HS256` (default) / `HS384` / `HS512`
   * for `client_secret_jwt`.
   */
  assertionSigningAlg?: AssertionSigningAlg;
  /** The assertion's `aud`: `token_endpoint` (default) or `issuer`. */
  assertionAudience?: 'token_endpoint' | 'issuer';
  /**
   * A file holding the secret (or several, one per line), looked at by the
   * engine's rule (a `stat` at most once a second on the token path, at once
   * after `invalid_client`) and re-read when it changed (a Kubernetes `..data`
   * swap included). A bad or unreadable file keeps the secrets in use and is
   * the engine's `secret_file_rejected` event.
   */
  clientSecretFile?: string;
  /**
   * Default `client_secret_basic`, or `private_key_jwt` with keys and no
   * secret; with `issuer`, the configured one or the best the server supports.
   */
  authMethod?: AuthMethod;
  /** Scopes: a list or one space-separated string. */
  scope?: string | string[];
  /** Audiences: a list or one space-separated string. */
  audience?: string | string[];
  /** A token is never served this close to its expiry. Default 30 (capped at half the lifetime). */
  refreshMarginSeconds?: number;
  /** Timeout of one token request. Default 10000. */
  timeoutMs?: number;
  /**
   * The `fetch` used for token requests and `account.fetch`, as is: the way to
   * bring your own agent (undici's `fetch` with a `dispatcher`, for example).
   * Default: token requests go through tokenwell's transport (undici, honouring
   * `HTTPS_PROXY` / `NO_PROXY` and `caFile`), `account.fetch` through `globalThis.fetch`.
   */
  fetch?: FetchFunction;
  /**
   * A PEM file of CA certificates to trust for the token endpoint, on top of
   * Node's defaults (`NODE_EXTRA_CA_CERTS` included). Default transport only:
   * not allowed together with `fetch`.
   */
  caFile?: string;
  /** Called with every engine event (never contains a secret or a token). */
  onEvent?: (event: TokenEvent) => void;
  /**
   * Where warnings go when no `onEvent` is given (a failed refresh, a rejected
   * secret file, outage grace, an abandoned fetch; cache-file problems).
   * Default: `process.emitWarning` (type `TokenwellWarning`), `console.warn`
   * outside Node.
   */
  logger?: { warn(message: string): void };
  /**
   * A file that keeps the token between runs (crons): the engine's snapshot,
   * 0600, replaced atomically, `<cachePath>.lock` (flock) serializing token
   * requests across processes. The same file format and rules as Python's
   * `cache_path`: a Node cron and a Python cron with the same configuration
   * share one file. Node and Bun only. A file that cannot be used as it
   * should is the engine's `cache_file_problem` event (the account goes on
   * without it).
   */
  cachePath?: string;
  /** The clock, ms since the Unix epoch. Default `Date.now` (tests inject a virtual one). */
  clock?: () => number;
  /** Refresh in the background on an unref'd timer at the engine's wakeup. Default true. */
  backgroundRefresh?: boolean;
  /**
   * Called with the promise of every token request sent, so the runtime keeps
   * running until it settles: in a Cloudflare Worker, a function that passes
   * it to the current request's `ctx.waitUntil`.
   */
  waitUntil?: (settled: Promise<void>) => void;
  /** Jitter entropy. Default: 64 random bits. */
  entropy?: number | bigint;
}

/**
 * `fromEnv`'s options: any constructor option, given explicitly, wins over the
 * environment field by field (`clientSecret` or `clientSecretFile` replaces
 * both `CLIENT_SECRET` and `CLIENT_SECRET_FILE`; `privateKey` or
 * `privateKeyFile` replaces `CLIENT_PRIVATE_KEY_FILE`, which is then not read).
 */
export interface FromEnvOptions extends Partial<ServiceAccountOptions> {
  /** Variable prefix, e.g. `BILLING_` for `BILLING_CLIENT_ID`. */
  prefix?: string;
  /** Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * What tokenwell reads of a `fetch` response, so that the global `fetch`,
 * undici's (whose `Response` type differs from the DOM one) and look-alikes fit.
 */
export interface FetchResponse {
  readonly status: number;
  readonly headers: object | null;
  readonly body: object | null;
}

/** A `fetch` tokenwell can use: `(input, init) => Promise<response>`. */
export type FetchFunction = (input: any, init?: any) => Promise<FetchResponse>;

/**
 * A token with its details. `accessToken` is the bearer value; `JSON.stringify`
 * and `util.inspect` show it as `[redacted]`.
 */
export interface AccountToken {
  accessToken: string;
  tokenType: string;
  expiresAt: Date;
  scope: string[];
}

/** The account's options without secrets (safe to log). */
export interface RedactedOptions {
  tokenUrl: string;
  /** The issuer, when one is configured (`issuer`, `ISSUER_URL`). */
  issuer?: string;
  clientId: string;
  clientSecret: '[redacted]';
  clientSecretFile?: string;
  /** Present when private keys are configured. */
  privateKey?: '[redacted]';
  /** The key file (`privateKeyFile` or `CLIENT_PRIVATE_KEY_FILE`), when the keys come from one. */
  privateKeyFile?: string;
  caFile?: string;
  cachePath?: string;
  authMethod: AuthMethod;
  scope: string[];
  audience: string[];
  refreshMarginSeconds: number;
  timeoutMs: number;
}

export type EngineState = 'idle' | 'fetching' | 'backing_off' | 'held';

export class ServiceAccount {
  constructor(options: ServiceAccountOptions);
  /**
   * Configuration from `CLIENT_ID`, `CLIENT_SECRET` / `CLIENT_SECRET_FILE` /
   * `CLIENT_PRIVATE_KEY_FILE`, `TOKEN_URL` / `HYDRA_URL` / `ISSUER_URL`
   * (`ISSUER_URL`: discovery), `SCOPE`, `AUDIENCE`, `AUTH_METHOD` (with
   * `prefix`), through the engine's host contract:
   * explicit options win; every missing variable is named at once.
   */
  static fromEnv(options?: FromEnvOptions): ServiceAccount;
  /** An access token. Rejects with a TokenError when none can be had. */
  getToken(): Promise<string>;
  /** The token with its expiry and scope. */
  token(): Promise<AccountToken>;
  /**
   * `fetch` with `Authorization: Bearer`. On 401 the token is invalidated and
   * the request retried once when the engine's 401 rule says so (`invalidated`
   * or `not_current`, not `rate_limited`).
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** An API rejected this token: drop it if it is still the current one. */
  invalidate(accessToken: string): 'invalidated' | 'not_current' | 'rate_limited';
  /** Stops the timer and aborts a request in flight; `getToken()` then rejects with kind `closed`. */
  close(): void;
  readonly options: Readonly<RedactedOptions>;
  /** How many client secrets are configured now (the secret file may change it). */
  readonly secretCount: number;
  /** How many private keys are configured now (the key file may change it). */
  readonly keyCount: number;
  /** Where token requests go: `tokenUrl`, or the discovered endpoint (null before discovery). */
  readonly tokenEndpoint: string | null;
  /** The auth method in use (with `issuer`, the one chosen with the metadata document). */
  readonly authMethod: AuthMethod;
  readonly state: EngineState;
  toJSON(): Record<string, unknown>;
}

// ---- the sans-IO engine ---------------------------------------------------

/** Engine options, camelCase (snake_case is accepted too). Durations in ms. */
export interface TokenCacheOptions {
  /** The token endpoint; or `issuer`, to discover it. */
  tokenUrl?: string;
  /** The issuer whose metadata document names the token endpoint (RFC 8414 / OpenID discovery). */
  issuer?: string;
  clientId: string;
  /** A secret, or `[current, previous]`; or use `privateKey`. */
  clientSecret?: string | string[];
  /** `private_key_jwt` keys (PEM, or a JWK / JWKS as JSON text), current first. */
  privateKey?: string | string[];
  assertionSigningAlg?: AssertionSigningAlg;
  /** The assertion's `aud`: `token_endpoint` (default) or `issuer`. */
  assertionAudience?: 'token_endpoint' | 'issuer';
  /** `exp` - `iat` of an assertion (ms, whole seconds; default 60000). */
  assertionLifetimeMs?: number;
  /** How long a discovered metadata document is used (ms; default 86400000). */
  discoveryRefreshMs?: number;
  authMethod?: AuthMethod;
  scope?: string | string[];
  audience?: string | string[];
  /** Pairs (sent in order), or a mapping of names to a value or a list of values (sent in name order). */
  extraParams?: Record<string, string | string[]> | Array<[string, string]>;
  allowInsecureHttp?: boolean;
  refreshMarginMs?: number;
  refreshAhead?: number;
  refreshAheadJitter?: number;
  defaultLifetimeMs?: number;
  minLifetimeMs?: number;
  maxLifetimeMs?: number;
  maxResponseBytes?: number;
  requestTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  backoffMinMs?: number;
  backoffJitter?: boolean;
  maxRetryAfterMs?: number;
  configErrorHoldMs?: number;
  invalidateMinIntervalMs?: number;
  /** After a transient refresh failure, serve the cached token inside its margin (default true). */
  outageGrace?: boolean;
  /** Outage grace stops this long before the token expires (ms, default 5000). */
  outageGraceSafetyMs?: number;
}

/**
 * A token as the engine hands it out (times in ms since the Unix epoch). Its
 * JSON and `inspect` views show `accessToken` as `[redacted]`.
 */
export interface EngineToken {
  accessToken: string;
  tokenType: string;
  scope: string[];
  receivedAt: number;
  expiresAt: number;
  usableUntil: number;
  refreshAt: number;
  lifetimeSource: 'expires_in' | 'jwt_exp' | 'default';
}

/**
 * A token request to send exactly as given, then report against `fetchId`.
 * Its JSON and `inspect` views hide the credentials (the Basic header's value,
 * a `client_secret` or `client_assertion` field); `headers` and `body` are the
 * real ones. `method` is `POST`, or `GET` for the issuer's metadata document:
 * send that without a body.
 */
export interface TokenRequest {
  fetchId: number;
  method: 'POST' | 'GET';
  url: string;
  headers: Array<[string, string]>;
  body: string;
  timeoutMs: number;
}

/** An engine error as plain data (inside events). */
export interface EngineError {
  kind: TokenErrorKind;
  fault: Fault;
  retryable: boolean;
  retryAt: number | null;
  status: number | null;
  oauthError: string | null;
  description: string | null;
  message?: string;
}

export type PollResult =
  | { result: 'ready'; token: EngineToken }
  | { result: 'ready_and_send'; token: EngineToken; request: TokenRequest }
  | { result: 'send'; request: TokenRequest }
  | { result: 'wait'; fetchId: number }
  | { result: 'fail'; error: TokenError };

export type FetchOutcome = { result: 'token'; token: EngineToken } | { result: 'error'; error: TokenError };

export type ReplaceOutcome = { result: 'replaced'; changed: boolean } | { result: 'error'; error: TokenError };

/** How a token request failed without a response; `tls`: the server's certificate could not be verified. */
export type TransportErrorKind = 'timeout' | 'connect' | 'io' | 'tls' | 'other';

/**
 * The engine's token cache, for hosts that bring their own transport. `poll`;
 * send what it asks and report with `handleResponse` / `handleTransportError`;
 * poll again, and at `nextWakeup()`.
 */
export class TokenCache {
  constructor(options: TokenCacheOptions, entropy?: number | bigint);
  /**
   * Fresh CSPRNG bytes (at least 16) for the `jti` of signed client
   * assertions: call before every `poll` that may send. Default: 32 random bytes.
   */
  addEntropy(bytes?: Uint8Array | ArrayBuffer): void;
  poll(now: number): PollResult;
  handleResponse(
    fetchId: number,
    status: number,
    headers: Headers | Iterable<[string, string]> | Record<string, string>,
    body: string | Uint8Array | ArrayBuffer,
    now: number,
  ): FetchOutcome;
  handleTransportError(fetchId: number, kind: TransportErrorKind, message: string, now: number): { result: 'error'; error: TokenError };
  nextWakeup(): number | null;
  invalidate(accessToken: string, now: number): 'invalidated' | 'not_current' | 'rate_limited';
  replaceSecrets(secrets: string | string[], now: number): ReplaceOutcome;
  /**
   * A secret file's contents (one secret per line, current first); `source`
   * names the file (the variable or option). A file without a valid secret
   * keeps the secrets in use and queues a `secret_file_rejected` event.
   */
  replaceSecretsFromFile(contents: string, source: string, now: number): ReplaceOutcome;
  /**
   * A key file's contents (PEM blocks or a JWK / JWKS, current first). A file
   * without a valid key keeps the keys in use and queues a
   * `secret_file_rejected` event; the error never quotes the file.
   */
  replaceKeysFromFile(contents: string, source: string, now: number): ReplaceOutcome;
  /** The secret file named by `source` could not be read: one `secret_file_rejected` event. */
  reportSecretFileProblem(source: string, problem: string, now: number): void;
  /**
   * The host's cache file at `path` could not be used as it should (`detail`:
   * a non-secret reason, error code or mode): one `cache_file_problem` event.
   */
  reportCacheFileProblem(path: string, problem: CacheFileProblem, detail: string, now: number): void;
  drainEvents(): TokenEvent[];
  exportSnapshot(now: number): string | null;
  importSnapshot(
    snapshot: string | object,
    now: number,
  ): { result: 'imported' } | { result: 'error'; reason: 'corrupt' | 'unsupported_version' | 'fingerprint_mismatch' | 'expired' };
  readonly state: EngineState;
  readonly inFlight: number | null;
  describe(): {
    tokenUrl: string;
    issuer: string | null;
    /** `tokenUrl`, or the discovered endpoint (null until discovered). */
    tokenEndpoint: string | null;
    clientId: string;
    authMethod: AuthMethod;
    scope: string[];
    audience: string[];
    secretCount: number;
    keyCount: number;
    maxResponseBytes: number;
    requestTimeoutMs: number;
    refreshMarginMs: number;
  };
}
