'use strict';
// ServiceAccount: a token for a service, from the engine, over `fetch`.
//
// The engine decides everything (when to refresh, whether to retry, which
// secret, what an error means). This class owns what a JS host owns: the
// clock, `fetch`, one unref'd timer, promises, and the secret file (through
// the runtime's host services: lib/host-node.js, lib/host-web.js).
//
// Cache hits stay in JS: the current token and the engine's next deadline
// (`nextWakeup()`) are kept here, and until that deadline nothing in the engine
// can change unless this class calls it (invalidate, replaceSecrets), so the
// token is served without calling the engine (native or wasm).

const { TokenCache, REDACTED, tokenOf } = require('./token-cache.js');
const { TokenError, configError, INSPECT } = require('./errors.js');
const { sendTokenRequest } = require('./transport.js');
const { engine, host: hostServices } = require('./runtime.js');

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options handled by the host; everything else goes to the engine. */
const HOST_OPTIONS = [
  'fetch',
  'caFile',
  'onEvent',
  'clock',
  'clientSecretFile',
  'backgroundRefresh',
  'entropy',
  'waitUntil',
];

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
  if (host.caFile !== undefined && typeof host.caFile !== 'string') throw new TypeError('caFile must be a path');
  if (host.caFile !== undefined && host.fetch !== undefined) {
    // Silently ignoring the CA would turn into a certificate error much later.
    throw configError('caFile', 'applies to the default transport only: with your own fetch, give its agent the CA');
  }
  return { host, engine, renamed };
}

/** Renames an engine option in a config error back to the name the caller used. */
function withCallerNames(fn, renamed) {
  try {
    return fn();
  } catch (error) {
    const caller = error instanceof TokenError && error.field !== undefined ? renamed[error.field] : undefined;
    if (caller === undefined) throw error;
    throw configError(caller, error.problem);
  }
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

const CONSTRUCT = Symbol('tokenwell.construct');

/**
 * A service account: an OAuth 2.0 client credentials token, always fresh.
 *
 * ```js
 * const account = new ServiceAccount({ tokenUrl, clientId, clientSecret, scope });
 * const res = await account.fetch('https://api.example/invoices');
 * ```
 */
class ServiceAccount {
  #cache;
  /** For `account.fetch`: the caller's `fetch`, else the global one. */
  #fetch;
  /** For token requests: the caller's `fetch`, else the default transport (proxies, caFile). */
  #tokenFetch;
  #clock;
  #onEvent;
  #background;
  /** Keeps a runtime alive until a token request settles (a Worker's `ctx.waitUntil`), or null. */
  #waitUntil;
  /** The current access token and the engine's token object, or null. */
  #token = null;
  #info = null;
  /** The engine's next wakeup: until then the token above is what the engine would serve. */
  #deadline = 0;
  /** fetchId -> promise settled once its outcome was reported to the engine. */
  #flights = new Map();
  #timer = null;
  #timerAt = 0;
  #closed = false;
  #closeController = new AbortController();
  #secretFile = null;
  #description;
  #options;

  /**
   * @param {object} options tokenUrl, clientId, clientSecret (string or [current, previous]),
   *   authMethod, scope, audience, refreshMarginSeconds, timeoutMs, fetch, onEvent,
   *   clientSecretFile, clock, backgroundRefresh, and any engine option (camelCase).
   */
  constructor(options, internal) {
    let parts;
    let cache;
    if (options === CONSTRUCT) {
      ({ parts, cache } = internal);
    } else {
      parts = splitOptions(options);
      const { host, engine, renamed } = parts;
      const json = JSON.stringify(engine);
      if (host.caFile !== undefined) {
        parts.ca = { path: host.caFile, certificates: hostServices().readCaFile(host.caFile, 'caFile') };
      }
      if (host.clientSecretFile !== undefined) {
        const contents = hostServices().readSecretFile(host.clientSecretFile, 'clientSecretFile');
        cache = withCallerNames(() => TokenCache._create(json, host.entropy, contents), renamed);
        parts.secretFile = { path: host.clientSecretFile, field: 'clientSecretFile' };
      } else {
        cache = withCallerNames(() => TokenCache._create(json, host.entropy, undefined), renamed);
      }
    }
    const { host } = parts;
    this.#cache = cache;
    this.#fetch = host.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#tokenFetch = host.fetch ?? hostServices().createDefaultFetch({ caCertificates: parts.ca?.certificates });
    this.#clock = host.clock ?? Date.now;
    this.#onEvent = host.onEvent ?? null;
    this.#background = host.backgroundRefresh !== false;
    this.#waitUntil = host.waitUntil ?? null;
    if (parts.secretFile) {
      this.#secretFile = { ...parts.secretFile, stamp: hostServices().fileStamp(parts.secretFile.path) };
    }
    this.#description = cache.describe();
    this.#options = Object.freeze(this.#publicOptions(parts));
  }

  /**
   * Reads the configuration from environment variables (`CLIENT_ID`,
   * `CLIENT_SECRET` or `CLIENT_SECRET_FILE`, `TOKEN_URL` or `HYDRA_URL`, `SCOPE`,
   * `AUDIENCE`, `AUTH_METHOD`), each with an optional prefix. Missing or
   * malformed values throw a `config` TokenError naming the variable.
   * `TOKENWELL_CA_FILE` (no prefix) is the `caFile` of the default transport,
   * unless `caFile` or `fetch` is given.
   */
  static fromEnv(options = {}) {
    const { prefix = '', env = hostServices().defaultEnv(), ...rest } = options ?? {};
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
    if (env === null || typeof env !== 'object') throw new TypeError('env must be an object');
    const parts = splitOptions(rest);
    if (parts.host.clientSecretFile !== undefined) {
      throw new TypeError('fromEnv reads the secret file from CLIENT_SECRET_FILE; do not pass clientSecretFile');
    }
    // Hand the engine only the variables it may read: those with the prefix.
    const relevant = {};
    for (const [key, value] of Object.entries(env)) {
      if (key.startsWith(prefix) && typeof value === 'string') relevant[key] = value;
    }
    const envJson = JSON.stringify(relevant);
    const file = JSON.parse(engine().secretFileFromEnvironment(prefix, envJson));
    if (file?.error) throw TokenError.fromEngine(file.error);
    const contents = file ? hostServices().readSecretFile(file.path, file.variable) : undefined;
    const cache = withCallerNames(
      () => TokenCache._createFromEnv(prefix, envJson, JSON.stringify(parts.engine), parts.host.entropy, contents),
      parts.renamed,
    );
    if (file) parts.secretFile = { path: file.path, field: file.variable };
    if (parts.host.caFile !== undefined) {
      parts.ca = { path: parts.host.caFile, certificates: hostServices().readCaFile(parts.host.caFile, 'caFile') };
    } else if (parts.host.fetch === undefined && env.TOKENWELL_CA_FILE) {
      const certificates = hostServices().readCaFile(env.TOKENWELL_CA_FILE, 'TOKENWELL_CA_FILE');
      parts.ca = { path: env.TOKENWELL_CA_FILE, certificates };
    }
    return new ServiceAccount(CONSTRUCT, { parts, cache });
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
   * `fetch` with `Authorization: Bearer <token>`. On a 401 the token is
   * invalidated (the engine rate-limits this) and the request is sent once
   * more with a fresh token, if its body can be sent again.
   */
  async fetch(input, init = undefined) {
    const token = await this.getToken();
    const response = await this.#authorized(input, init, token);
    if (response.status !== 401) return response;
    const outcome = this.invalidate(token);
    if (outcome === 'rate_limited' || !replayable(input, init)) return response;
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

  /** Stops the timer and aborts a token request in flight; the process can exit. */
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

  /** The engine's state: `idle`, `fetching`, `backing_off` or `held`. */
  get state() {
    return this.#cache.state;
  }

  toJSON() {
    const { tokenUrl, clientId, authMethod, scope, audience } = this.#description;
    return { tokenUrl, clientId, clientSecret: REDACTED, authMethod, scope, audience, state: this.state };
  }

  [INSPECT](depth, options, insp) {
    return `ServiceAccount ${insp(this.toJSON(), options)}`;
  }

  // ---- internals ----------------------------------------------------------

  #publicOptions(parts) {
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
    if (parts.secretFile) out.clientSecretFile = parts.secretFile.path;
    if (parts.ca) out.caFile = parts.ca.path;
    return out;
  }

  #authorized(input, init, token) {
    const base = init?.headers ?? (typeof Request === 'function' && input instanceof Request ? input.headers : undefined);
    const headers = new Headers(base);
    headers.set('authorization', `Bearer ${token}`);
    return this.#fetch(input, { ...init, headers });
  }

  /** The slow path: asks the engine, does what it says, until it serves a token or fails. */
  async #acquire() {
    for (;;) {
      if (this.#closed) throw new Error('the ServiceAccount is closed');
      // Another caller may have installed a token while this one waited.
      if (this.#token !== null && this.#clock() < this.#deadline) return this.#info;
      this.#syncSecretFile();
      const poll = this.#cache.poll(this.#clock());
      switch (poll.result) {
        case 'ready':
          this.#adopt(poll.token);
          this.#afterEngineCall();
          return poll.token;
        case 'ready_and_send':
          this.#adopt(poll.token);
          this.#launch(poll.request);
          this.#afterEngineCall();
          return poll.token;
        case 'send': {
          this.#forget();
          const flight = this.#launch(poll.request);
          this.#afterEngineCall();
          await flight;
          break;
        }
        case 'wait': {
          this.#forget();
          this.#afterEngineCall();
          const flight = this.#flights.get(poll.fetchId);
          if (flight === undefined) throw new Error(`tokenwell bug: fetch ${poll.fetchId} is not tracked`);
          await flight;
          break;
        }
        case 'fail':
          this.#forget();
          this.#afterEngineCall();
          throw poll.error;
        default:
          throw new Error(`tokenwell bug: unknown poll result ${poll.result}`);
      }
    }
  }

  /** The background timer: poll at the engine's wakeup, send what it asks. */
  #tick() {
    this.#timer = null;
    this.#timerAt = 0;
    if (this.#closed) return;
    try {
      this.#syncSecretFile();
      const poll = this.#cache.poll(this.#clock());
      if (poll.token) this.#adopt(poll.token);
      else this.#forget();
      if (poll.request) this.#launch(poll.request);
      // `fail` has no caller to throw to: the engine's events report it.
      this.#afterEngineCall();
    } catch (error) {
      hostServices().warn(`tokenwell: background refresh failed: ${error?.message ?? error}`);
    }
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
      this.#afterEngineCall();
    })().finally(() => this.#flights.delete(id));
    this.#flights.set(id, flight);
    // A background refresh has no caller awaiting it: never an unhandled rejection.
    flight.catch(() => {});
    if (this.#waitUntil !== null) {
      try {
        this.#waitUntil(flight);
      } catch (error) {
        hostServices().warn(`tokenwell: waitUntil threw: ${error?.message ?? error}`);
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

  /** After any engine call: deliver its events, take its new deadline, re-arm the timer. */
  #afterEngineCall() {
    if (this.#onEvent !== null) this.#deliverEvents(this.#cache.drainEvents());
    if (this.#closed) return;
    const wake = this.#cache.nextWakeup();
    this.#deadline = wake ?? 0;
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

  #deliverEvents(events) {
    for (const event of events) {
      try {
        this.#onEvent(event);
      } catch (error) {
        hostServices().warn(`tokenwell: onEvent threw: ${error?.message ?? error}`);
      }
    }
  }

  /**
   * Re-reads the secret file when it changed (one `stat` per engine call; a
   * Kubernetes secret update swaps a symlink, which changes the inode).
   */
  #syncSecretFile() {
    const file = this.#secretFile;
    if (file === null) return;
    const stamp = hostServices().fileStamp(file.path);
    if (stamp === file.stamp) return;
    const { contents, code } = hostServices().rereadSecretFile(file.path);
    if (contents === undefined) {
      this.#hostEvent({ type: 'secret_file_rejected', field: file.field, problem: `cannot be read (${code})` });
      return;
    }
    const outcome = this.#cache.replaceSecretsFromFile(contents, file.field, this.#clock());
    if (outcome.result === 'error') {
      // Half-written or empty: keep the secrets in use and look again next time.
      this.#hostEvent({ type: 'secret_file_rejected', field: file.field, problem: outcome.error.problem });
      return;
    }
    file.stamp = stamp;
    this.#afterEngineCall();
  }

  /** An event of the host's own (the secret file could not be used), in the engine's event shape. */
  #hostEvent(fields) {
    if (this.#onEvent === null) return;
    this.#deliverEvents([
      { at: this.#clock(), actorType: 'client', actorId: this.#description.clientId, ...fields },
    ]);
  }
}

module.exports = { ServiceAccount };
