'use strict';
// ServiceAccount: a token for a service, from the engine, over `fetch`.
//
// The engine decides everything (when to refresh, whether to retry, which
// secret, what an error means). This class owns what a JS host owns: the
// clock, `fetch`, one unref'd timer, promises, the secret file and the cron
// cache file (through the runtime's host services: lib/host-node.js,
// lib/host-web.js). Every event comes from the engine; what a file is, when
// it is looked at, and when the cache file is written or deleted are the
// engine's rules and events too.
//
// Cache hits stay in JS: the current token and the engine's next deadline
// (`nextWakeup()`, capped at the secret file's next look) are kept here, and
// until that deadline nothing in the engine can change unless this class calls
// it (invalidate), so the token is served without calling the engine (native
// or wasm).

const { TokenCache, REDACTED, tokenOf, randomBytes32 } = require('./token-cache.js');
const { TokenError, configError, INSPECT } = require('./errors.js');
const { sendTokenRequest } = require('./transport.js');
const { SecretFile } = require('./secret-file.js');
const { engine, host: hostServices } = require('./runtime.js');

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options handled by the host; everything else goes to the engine. */
const HOST_OPTIONS = [
  'fetch',
  'caFile',
  'onEvent',
  'clock',
  'clientSecretFile',
  'privateKeyFile',
  'backgroundRefresh',
  'entropy',
  'waitUntil',
  'logger',
  'cachePath',
];

/**
 * Engine events a person should see when no `onEvent` is given: written
 * through `logger.warn`, else `process.emitWarning` (Python logs the same
 * ones at WARNING to its `tokenwell` logger).
 */
const WARN_EVENTS = new Set([
  'refresh_failed',
  'secret_file_rejected',
  'outage_grace_served',
  'fetch_abandoned',
  'cache_file_problem',
]);

/** Whether `event` is warned when no `onEvent` is given: an expired snapshot in the cache file is routine. */
const warnsOf = (event) =>
  WARN_EVENTS.has(event.type) &&
  !(event.type === 'cache_file_problem' && event.problem === 'ignored' && event.detail === 'expired');

/** One line for a warned event (events never hold a secret or a token). */
function describeEvent(event) {
  const { type, at, actorType, actorId, ...rest } = event;
  const who = `tokenwell ${type} (client ${actorId})`;
  if (type === 'refresh_failed') {
    const { kind, status, description } = rest.error ?? {};
    return `${who}: ${kind}${status == null ? '' : ` (HTTP ${status})`}${description == null ? '' : `: ${description}`}`;
  }
  if (type === 'secret_file_rejected') return `${who}: ${rest.source}: ${rest.problem}; the secrets in use are kept`;
  if (type === 'cache_file_problem') return `${who}: ${rest.problem} ${rest.path}${rest.detail ? `: ${rest.detail}` : ''}`;
  return `${who}: ${JSON.stringify(rest)}`;
}

/**
 * Splits ServiceAccount options into host options and engine options (camelCase).
 * `timeoutMs` and `refreshMarginSeconds` are the engine's `requestTimeoutMs`
 * and `refreshMarginMs` under friendlier names.
 */
function splitOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('ServiceAccount options must be an object');
  }
  const host = {};
  const engine = {};
  const renamed = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (HOST_OPTIONS.includes(key)) host[key] = value;
    else if (key === 'timeoutMs') {
      engine.requestTimeoutMs = value;
      renamed.requestTimeoutMs = 'timeoutMs';
    } else if (key === 'refreshMarginSeconds') {
      engine.refreshMarginMs = typeof value === 'number' ? Math.round(value * 1000) : value;
      renamed.refreshMarginMs = 'refreshMarginSeconds';
    } else engine[key] = value;
  }
  if (host.fetch !== undefined && typeof host.fetch !== 'function') throw new TypeError('fetch must be a function');
  if (host.onEvent !== undefined && typeof host.onEvent !== 'function') {
    throw new TypeError('onEvent must be a function');
  }
  if (host.clock !== undefined && typeof host.clock !== 'function') throw new TypeError('clock must be a function');
  if (host.waitUntil !== undefined && typeof host.waitUntil !== 'function') {
    throw new TypeError('waitUntil must be a function');
  }
  if (host.clientSecretFile !== undefined && typeof host.clientSecretFile !== 'string') {
    throw new TypeError('clientSecretFile must be a path');
  }
  if (host.privateKeyFile !== undefined && typeof host.privateKeyFile !== 'string') {
    throw new TypeError('privateKeyFile must be a path');
  }
  if (host.caFile !== undefined && typeof host.caFile !== 'string') throw new TypeError('caFile must be a path');
  if (host.cachePath !== undefined && typeof host.cachePath !== 'string') throw new TypeError('cachePath must be a path');
  if (host.logger !== undefined && typeof host.logger?.warn !== 'function') {
    throw new TypeError('logger must be an object with a warn(message) method');
  }
  if (host.caFile !== undefined && host.fetch !== undefined) {
    // Silently ignoring the CA would turn into a certificate error much later.
    throw configError('caFile', 'applies to the default transport only: with your own fetch, give its agent the CA');
  }
  return { host, engine, renamed };
}

/**
 * Renames an engine option in a config error back to the name the caller
 * used (`requestTimeoutMs` → `timeoutMs`); the engine's wording stays.
 */
function withCallerNames(fn, renamed) {
  try {
    return fn();
  } catch (error) {
    const caller = error instanceof TokenError && error.field !== undefined ? renamed[error.field] : undefined;
    if (caller === undefined) throw error;
    error.message = error.message.replace(error.field, caller);
    if (error.description !== undefined) error.description = error.description.replace(error.field, caller);
    error.field = caller;
    throw error;
  }
}

/** The environment's string values (what the engine's `read_env` looks up). */
function stringsOf(env) {
  const out = {};
  for (const [key, value] of Object.entries(env)) if (typeof value === 'string') out[key] = value;
  return out;
}

/**
 * The constructor's configuration: its options alone. The files it names
 * (`clientSecretFile`, `privateKeyFile`) are read here and their text handed
 * to the engine, which parses it: a file that holds no secret or no key, or
 * `privateKey` beside `privateKeyFile`, is a `config` error naming the
 * option, never quoting the file.
 */
function settingsFromOptions(options) {
  const parts = splitOptions(options);
  const { host } = parts;
  const now = (host.clock ?? Date.now)();
  let secretFile = null;
  let contents;
  if (host.clientSecretFile !== undefined) {
    secretFile = new SecretFile(host.clientSecretFile, 'clientSecretFile');
    contents = secretFile.readAtStart(now);
  }
  let keyFile = null;
  let keyContents;
  if (host.privateKeyFile !== undefined) {
    // Re-read on change by the secret file's rule (lib/secret-file.js), applied with replaceKeysFromFile.
    keyFile = new SecretFile(host.privateKeyFile, 'privateKeyFile', 'key');
    keyContents = keyFile.readAtStart(now);
  }
  const cache = withCallerNames(
    () => TokenCache._create(JSON.stringify(parts.engine), host.entropy, contents, keyContents),
    parts.renamed,
  );
  const ca = host.caFile === undefined ? null : { path: host.caFile, certificates: hostServices().readCaFile(host.caFile, 'caFile') };
  return { parts, cache, secretFile, keyFile, ca, insecureHttpFrom: null };
}

/**
 * `fromEnv`'s configuration, through the engine's host contract: `envPlan`
 * (read_env, merge_env with the explicit options winning field by field, every
 * missing variable named at once), then the secret file and the key file
 * (`CLIENT_PRIVATE_KEY_FILE`, or the explicit `privateKeyFile`, which replaces
 * it) it names are read, then `createTokenCacheFromEnv`
 * (into_config_with_keys: errors name the variable, `SCOPE[1]`, and never
 * quote a file).
 */
function settingsFromEnv(options) {
  const { prefix = '', env = hostServices().defaultEnv(), ...rest } = options ?? {};
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
  if (env === null || typeof env !== 'object') throw new TypeError('env must be an object');
  const parts = splitOptions(rest);
  const { host } = parts;
  const request = {
    prefix,
    envJson: JSON.stringify(stringsOf(env)),
    explicitJson: JSON.stringify(parts.engine),
    secretFile: host.clientSecretFile,
    caFile: host.caFile,
    keyFile: host.privateKeyFile,
  };
  const plan = JSON.parse(
    engine().envPlan(
      request.prefix,
      request.envJson,
      request.explicitJson,
      request.secretFile,
      request.caFile,
      request.keyFile,
    ),
  );
  if (plan.error) {
    withCallerNames(() => {
      throw TokenError.fromEngine(plan.error);
    }, parts.renamed);
  }
  const now = (host.clock ?? Date.now)();
  let secretFile = null;
  let contents;
  if (plan.secretFile != null) {
    secretFile = new SecretFile(plan.secretFile, plan.secretFileSource);
    contents = secretFile.readAtStart(now);
  }
  let keyFile = null;
  let keyContents;
  if (plan.keyFile != null) {
    // CLIENT_PRIVATE_KEY_FILE (or privateKeyFile): read now, re-read on change by the same rule as the secret file.
    keyFile = new SecretFile(plan.keyFile, plan.keyFileSource, 'key');
    keyContents = keyFile.readAtStart(now);
  }
  const cache = withCallerNames(
    () => TokenCache._createFromEnv(request, host.entropy, contents, keyContents),
    parts.renamed,
  );
  let ca = null;
  // A CA file from the environment is for the default transport: with a fetch of one's own it is not used.
  if (plan.caFile != null && (host.fetch === undefined || host.caFile !== undefined)) {
    ca = { path: plan.caFile, certificates: hostServices().readCaFile(plan.caFile, plan.caFileSource) };
  }
  return { parts, cache, secretFile, keyFile, ca, insecureHttpFrom: plan.sources.allowInsecureHttp ?? null };
}

/** Lets the process (Node, Bun) or the isolate (Deno) exit while only the refresh timer is left. */
function unref(timer) {
  if (typeof timer?.unref === 'function') timer.unref();
  else if (typeof globalThis.Deno?.unrefTimer === 'function') globalThis.Deno.unrefTimer(timer);
}

/** Whether a request body can be sent a second time (after a 401). */
function replayable(input, init) {
  const body = init?.body;
  if (body == null) return !(typeof Request === 'function' && input instanceof Request && input.body != null);
  if (typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  if (typeof URLSearchParams === 'function' && body instanceof URLSearchParams) return true;
  if (typeof Blob === 'function' && body instanceof Blob) return true;
  if (typeof FormData === 'function' && body instanceof FormData) return true;
  return false;
}

/**
 * A service account: an OAuth 2.0 client credentials token, always fresh.
 *
 * ```js
 * const account = new ServiceAccount({ tokenUrl, clientId, clientSecret, scope });
 * const res = await account.fetch('https://api.example/invoices');
 * ```
 */
class ServiceAccount {
  /** The settings `fromEnv` made, handed to the one constructor (never visible outside the class). */
  static #fromEnvSettings = null;

  #cache;
  /** For `account.fetch`: the caller's `fetch`, else the global one. */
  #fetch;
  /** For token requests: the caller's `fetch`, else the default transport (proxies, caFile). */
  #tokenFetch;
  #clock;
  #onEvent;
  /** `warn(message, code)`: the `logger` option's, else the runtime's (process.emitWarning). */
  #warn;
  #background;
  /** Keeps a runtime alive until a token request settles (a Worker's `ctx.waitUntil`), or null. */
  #waitUntil;
  /** The current access token and the engine's token object, or null. */
  #token = null;
  #info = null;
  /** Until then the token above is what the engine would serve (its wakeup, capped by the secret file's next check). */
  #deadline = 0;
  /** fetchId -> promise settled once its outcome was reported to the engine. */
  #flights = new Map();
  #timer = null;
  #timerAt = 0;
  #closed = false;
  #closeController = new AbortController();
  #secretFile = null;
  /** The key file (`privateKeyFile` or `CLIENT_PRIVATE_KEY_FILE`), watched like the secret file, or null. */
  #keyFile = null;
  #cacheFile = null;
  #description;
  #options;

  /**
   * @param {object} options tokenUrl or issuer, clientId, clientSecret (string or [current, previous]),
   *   privateKey (PEM or JWK / JWKS text, or [current, previous]), privateKeyFile (a file of such text,
   *   re-read when it changes), assertionSigningAlg, assertionAudience, authMethod, scope, audience,
   *   refreshMarginSeconds, timeoutMs, fetch, onEvent, logger, clientSecretFile, cachePath, caFile, clock,
   *   backgroundRefresh, and any engine option (camelCase).
   */
  constructor(options) {
    const settings = ServiceAccount.#fromEnvSettings ?? settingsFromOptions(options);
    ServiceAccount.#fromEnvSettings = null;
    const { parts, cache } = settings;
    const { host } = parts;
    this.#cache = cache;
    this.#fetch = host.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#clock = host.clock ?? Date.now;
    this.#onEvent = host.onEvent ?? null;
    const logger = host.logger;
    this.#warn = logger ? (message) => logger.warn(message) : (message, code) => hostServices().warn(message, code);
    this.#background = host.backgroundRefresh !== false;
    this.#waitUntil = host.waitUntil ?? null;
    this.#secretFile = settings.secretFile;
    this.#keyFile = settings.keyFile;
    this.#description = cache.describe();
    if (host.cachePath !== undefined) {
      // The cache file's problems are the engine's `cache_file_problem` events, delivered with the others.
      const report = (problem, path, detail) => this.#cache.reportCacheFileProblem(path, problem, detail, this.#clock());
      this.#cacheFile = hostServices().openCacheFile(host.cachePath, report);
    }
    this.#tokenFetch = host.fetch ?? hostServices().createDefaultFetch({ caCertificates: settings.ca?.certificates });
    this.#options = Object.freeze(this.#publicOptions(settings));
    if (settings.insecureHttpFrom !== null && this.#description.tokenUrl.startsWith('http:')) {
      this.#warn(
        `tokenwell: ${settings.insecureHttpFrom} allows the plain-http token URL ${this.#description.tokenUrl}: ` +
          'the client secret crosses the network unencrypted',
        'insecure_http',
      );
    }
  }

  /**
   * The configuration from environment variables, through the engine's host
   * contract (the variables are listed in the README and in core's `env`
   * module), each with an optional `prefix`. Explicit options win over the
   * environment, field by field. Missing or malformed values throw a `config`
   * TokenError naming the variable (every missing one at once).
   */
  static fromEnv(options = {}) {
    ServiceAccount.#fromEnvSettings = settingsFromEnv(options);
    try {
      return new ServiceAccount();
    } finally {
      ServiceAccount.#fromEnvSettings = null;
    }
  }

  /** An access token, valid for at least the refresh margin. Throws a TokenError when none can be had. */
  async getToken() {
    if (this.#token !== null && this.#clock() < this.#deadline) return this.#token;
    return (await this.#acquire()).accessToken;
  }

  /** The token with its details: `{ accessToken, tokenType, expiresAt, scope }`. */
  async token() {
    const info = this.#token !== null && this.#clock() < this.#deadline ? this.#info : await this.#acquire();
    // `accessToken` is a plain property; JSON and `inspect` show it redacted.
    return tokenOf({
      accessToken: info.accessToken,
      tokenType: info.tokenType,
      expiresAt: new Date(info.expiresAt),
      scope: [...info.scope],
    });
  }

  /**
   * `fetch` with `Authorization: Bearer <token>`. The engine's 401 rule
   * (`InvalidateOutcome::retry_request`, the same in Python's adapters): on a
   * 401 the token is invalidated, and the request is sent once more with the
   * token the account gives next when the engine says so (`invalidated` or
   * `not_current`, never `rate_limited`) and its body can be sent again. The
   * retry is never retried.
   */
  async fetch(input, init = undefined) {
    const token = await this.getToken();
    const response = await this.#authorized(input, init, token);
    if (response.status !== 401) return response;
    const outcome = this.invalidate(token);
    if (!engine().retryRequest(outcome) || !replayable(input, init)) return response;
    await response.body?.cancel().catch(() => {});
    return this.#authorized(input, init, await this.getToken());
  }

  /** An API rejected `accessToken` (401): drop it if it is still the current one. */
  invalidate(accessToken) {
    if (this.#closed) return 'not_current';
    const outcome = this.#cache.invalidate(accessToken, this.#clock());
    if (outcome === 'invalidated') {
      this.#token = null;
      this.#info = null;
    }
    this.#afterEngineCall();
    return outcome;
  }

  /**
   * Stops the timer and aborts a token request in flight; the process can
   * exit. `getToken()` then rejects with a TokenError of kind `closed`.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#token = null;
    this.#info = null;
    this.#deadline = 0;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#closeController.abort(new Error('the ServiceAccount was closed'));
    if (this.#tokenFetch !== this.#fetch) this.#tokenFetch.close();
  }

  /** The options, without secrets (safe to log). */
  get options() {
    return this.#options;
  }

  /** How many client secrets are configured now (after a rotation of the secret file, too). */
  get secretCount() {
    return this.#cache.describe().secretCount;
  }

  /** How many private keys are configured now (after a rotation of the key file, too). */
  get keyCount() {
    return this.#cache.describe().keyCount;
  }

  /**
   * The token endpoint token requests go to: `tokenUrl`, or the one
   * discovered from `issuer` (null until the metadata document was read).
   */
  get tokenEndpoint() {
    return this.#cache.describe().tokenEndpoint ?? null;
  }

  /** The auth method token requests use (with `issuer`, the one chosen with the metadata document). */
  get authMethod() {
    return this.#cache.describe().authMethod;
  }

  /** The engine's state: `idle`, `fetching`, `backing_off` or `held`. */
  get state() {
    return this.#cache.state;
  }

  toJSON() {
    const { tokenUrl, issuer, clientId, authMethod, scope, audience, keyCount } = this.#cache.describe();
    const out = { tokenUrl, clientId, clientSecret: REDACTED, authMethod, scope, audience, state: this.state };
    if (issuer != null) out.issuer = issuer;
    if (keyCount > 0) out.privateKey = REDACTED;
    return out;
  }

  [INSPECT](depth, options, insp) {
    return `ServiceAccount ${insp(this.toJSON(), options)}`;
  }

  // ---- internals ----------------------------------------------------------

  #publicOptions(settings) {
    const d = this.#description;
    const out = {
      tokenUrl: d.tokenUrl,
      clientId: d.clientId,
      clientSecret: REDACTED,
      authMethod: d.authMethod,
      scope: d.scope,
      audience: d.audience,
      refreshMarginSeconds: d.refreshMarginMs / 1000,
      timeoutMs: d.requestTimeoutMs,
    };
    if (d.issuer != null) out.issuer = d.issuer;
    if (d.keyCount > 0) out.privateKey = REDACTED;
    if (settings.secretFile) out.clientSecretFile = settings.secretFile.path;
    if (settings.keyFile) out.privateKeyFile = settings.keyFile.path;
    if (settings.ca) out.caFile = settings.ca.path;
    if (this.#cacheFile) out.cachePath = this.#cacheFile.path;
    return out;
  }

  #authorized(input, init, token) {
    const base = init?.headers ?? (typeof Request === 'function' && input instanceof Request ? input.headers : undefined);
    const headers = new Headers(base);
    headers.set('authorization', `Bearer ${token}`);
    return this.#fetch(input, { ...init, headers });
  }

  #closedError() {
    return TokenError.fromEngine(JSON.parse(engine().closedError()));
  }

  /**
   * The slow path: asks the engine, does what it says, until it serves a token
   * or fails. With `cachePath`, each step holds the cache file's lock (in
   * process and across processes), and a token request sent by this step
   * keeps it until its outcome is reported (and the snapshot written).
   */
  async #acquire() {
    for (;;) {
      if (this.#closed) throw this.#closedError();
      // Another caller may have installed a token while this one waited.
      if (this.#token !== null && this.#clock() < this.#deadline) return this.#info;
      const cacheFile = this.#cacheFile;
      const locked = cacheFile !== null && (await cacheFile.lock(this.#description.requestTimeoutMs + 2000)) === 'held';
      let step;
      try {
        if (this.#closed) throw this.#closedError();
        step = this.#step();
        if (locked && step.sent) await step.flight;
      } finally {
        if (locked) cacheFile.unlock();
      }
      if (step.token) return step.token;
      await step.flight;
    }
  }

  /**
   * One engine decision: look at the secret file and the cache file when the
   * rules say so, poll, do the non-waiting part of the answer. Returns
   * `{ token }`, or `{ flight, sent }` to await; throws the engine's error.
   */
  #step() {
    const now = this.#clock();
    this.#secretFile?.check(this.#cache, now);
    this.#keyFile?.check(this.#cache, now);
    this.#importCacheFile(now);
    // Fresh CSPRNG bytes before a poll that may send (core's EntropyPool rule): a
    // fork's assertions never share a `jti`. The cache-hit path never gets here.
    if (this.#mayNeedEntropy()) this.#cache.addEntropy(randomBytes32());
    const poll = this.#cache.poll(now);
    switch (poll.result) {
      case 'ready':
        this.#adopt(poll.token);
        this.#afterEngineCall();
        return { token: poll.token };
      case 'ready_and_send':
        this.#adopt(poll.token);
        this.#launch(poll.request);
        this.#afterEngineCall();
        return { token: poll.token };
      case 'send': {
        this.#forget();
        const flight = this.#launch(poll.request);
        this.#afterEngineCall();
        return { flight, sent: true };
      }
      case 'wait': {
        this.#forget();
        this.#afterEngineCall();
        const flight = this.#flights.get(poll.fetchId);
        if (flight === undefined) throw new Error(`tokenwell bug: fetch ${poll.fetchId} is not tracked`);
        return { flight, sent: false };
      }
      case 'fail':
        this.#forget();
        this.#afterEngineCall();
        throw poll.error;
      default:
        throw new Error(`tokenwell bug: unknown poll result ${poll.result}`);
    }
  }

  /**
   * Whether a request this poll may send can carry a signed client assertion:
   * keys, a JWT auth method, or an issuer whose metadata may choose one.
   */
  #mayNeedEntropy() {
    const { keyCount, authMethod, issuer } = this.#cache.describe();
    return keyCount > 0 || authMethod === 'private_key_jwt' || authMethod === 'client_secret_jwt' || issuer != null;
  }

  /** The background timer: poll at the engine's wakeup, send what it asks. */
  #tick() {
    this.#timer = null;
    this.#timerAt = 0;
    if (this.#closed) return;
    try {
      this.#step();
    } catch (error) {
      // `fail` has no caller to throw to: the engine's events report it.
      if (!(error instanceof TokenError)) this.#warn(`tokenwell: background refresh failed: ${error?.message ?? error}`);
    }
  }

  /** A snapshot another process (or an earlier run) wrote, if the file changed; the engine decides whether it is usable. */
  #importCacheFile(now) {
    if (this.#cacheFile === null) return;
    const text = this.#cacheFile.readIfChanged();
    if (text === null) return;
    const imported = this.#cache.importSnapshot(text, now);
    if (imported.result === 'error') this.#cache.reportCacheFileProblem(this.#cacheFile.path, 'ignored', imported.reason, now);
  }

  /** Sends a token request and reports its outcome to the engine. Never rejects for transport reasons. */
  #launch(request) {
    const id = request.fetchId;
    const flight = (async () => {
      const outcome = await sendTokenRequest(this.#tokenFetch, request, {
        maxResponseBytes: this.#description.maxResponseBytes,
        closeSignal: this.#closeController.signal,
      });
      if (this.#closed) return;
      const now = this.#clock();
      const result =
        outcome.type === 'response'
          ? this.#cache.handleResponse(id, outcome.status, outcome.headers, outcome.body, now)
          : this.#cache.handleTransportError(id, outcome.kind, outcome.message, now);
      if (result.result === 'token') this.#adopt(result.token);
      // The secret or key may have been rotated under us: the watches look at the files now.
      else if (result.error.kind === 'invalid_client') {
        this.#secretFile?.check(this.#cache, now, true);
        this.#keyFile?.check(this.#cache, now, true);
      }
      this.#afterEngineCall();
    })().finally(() => this.#flights.delete(id));
    this.#flights.set(id, flight);
    // A background refresh has no caller awaiting it: never an unhandled rejection.
    flight.catch(() => {});
    if (this.#waitUntil !== null) {
      try {
        this.#waitUntil(flight);
      } catch (error) {
        this.#warn(`tokenwell: waitUntil threw: ${error?.message ?? error}`);
      }
    }
    return flight;
  }

  #adopt(token) {
    this.#token = token.accessToken;
    this.#info = token;
  }

  #forget() {
    this.#token = null;
    this.#info = null;
  }

  /**
   * After any engine call: act on its events (the cache file), deliver them,
   * take its new deadline, re-arm the timer.
   */
  #afterEngineCall() {
    const events = this.#cache.drainEvents();
    if (this.#cacheFile !== null) {
      for (const event of events) this.#cacheFileFor(event);
      // A snapshot that could not be written is reported now (cache_file_problem), not at the next call.
      events.push(...this.#cache.drainEvents());
    }
    this.#deliverEvents(events);
    if (this.#closed) return;
    const wake = this.#cache.nextWakeup();
    // The secret and key files are looked at on the token path at the watch's interval: a hit may not outlive it.
    const watched = this.#secretFile ?? this.#keyFile;
    this.#deadline = wake === null ? 0 : watched === null ? wake : Math.min(wake, watched.nextCheck(this.#clock()));
    if (!this.#background || wake === null) {
      clearTimeout(this.#timer);
      this.#timer = null;
      this.#timerAt = 0;
      return;
    }
    if (this.#timer !== null && this.#timerAt === wake) return;
    clearTimeout(this.#timer);
    const delay = Math.min(Math.max(wake - this.#clock(), 0), MAX_TIMER_MS);
    this.#timerAt = wake;
    this.#timer = setTimeout(() => this.#tick(), delay);
    unref(this.#timer);
  }

  /**
   * The cache file follows the engine: a new token is written for the next
   * process; a token the engine dropped (the API refused it) is deleted, or
   * the next run would load it again.
   */
  #cacheFileFor(event) {
    if (event.type === 'token_acquired') {
      const snapshot = this.#cache.exportSnapshot(event.at);
      if (snapshot !== null) this.#cacheFile.write(snapshot);
    } else if (event.type === 'token_invalidated') {
      this.#cacheFile.removeIfUnchanged();
    }
  }

  #deliverEvents(events) {
    for (const event of events) {
      if (this.#onEvent === null) {
        if (warnsOf(event)) this.#warn(describeEvent(event), event.type);
        continue;
      }
      try {
        this.#onEvent(event);
      } catch (error) {
        this.#warn(`tokenwell: onEvent threw: ${error?.message ?? error}`);
      }
    }
  }
}

module.exports = { ServiceAccount };
