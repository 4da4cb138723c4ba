'use strict';
// TokenCache: the sans-IO engine, for hosts that bring their own transport.
// One method per engine call; results are plain objects (camelCase keys, times
// in ms since the Unix epoch), errors are TokenError instances.

const { engine } = require('./runtime.js');
const { TokenError, INSPECT } = require('./errors.js');

const REDACTED = '[redacted]';
/** What `handleTransportError` accepts: the engine's `TransportErrorKind`, by its serde names. */
const TRANSPORT_ERROR_KINDS = Object.freeze(['timeout', 'connect', 'io', 'tls', 'other']);
const FROM_NATIVE = Symbol('tokenwell.fromNative');

function instant(name, value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a finite, non-negative number of ms since the Unix epoch`);
  }
  return value;
}

function fetchIdOf(value) {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError('fetchId must be the id of a request');
  return value;
}

/** 32 bytes from the platform's CSPRNG, for the engine's entropy pool (signed assertions). */
function randomBytes32() {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/** 64 bits of jitter entropy from the platform's CSPRNG (the engine draws none of its own). */
function randomEntropy() {
  return globalThis.crypto.getRandomValues(new BigUint64Array(1))[0];
}

function checkEntropy(entropy) {
  if (entropy === undefined) return randomEntropy();
  if (typeof entropy === 'bigint') return BigInt.asUintN(64, entropy);
  if (Number.isSafeInteger(entropy) && entropy >= 0) return entropy;
  throw new TypeError('entropy must be a non-negative integer or a bigint');
}

/**
 * Gives `raw` a redacting `toJSON` and `util.inspect` (both non-enumerable, so
 * spreading or `Object.entries` still sees the real fields): JSON loggers
 * (pino, winston) call `JSON.stringify` on whatever they are handed.
 */
function redacting(raw, label, redacted) {
  Object.defineProperty(raw, 'toJSON', {
    value() {
      return redacted();
    },
    configurable: true,
    writable: true,
  });
  Object.defineProperty(raw, INSPECT, {
    value(depth, options, insp) {
      return `${label} ${insp(redacted(), options)}`;
    },
    configurable: true,
    writable: true,
  });
  return raw;
}

/** Form fields that carry a credential: a secret, or a signed client assertion. */
const CREDENTIAL_FIELDS = ['client_secret=', 'client_assertion='];

/**
 * A request to send. `request.method`, `request.headers` and `request.body`
 * are exactly what to put on the wire (`GET` with an empty body, which is not
 * sent, for issuer discovery); JSON and `inspect` show it without its
 * credentials (the Basic header's value, a `client_secret` or
 * `client_assertion` form field).
 */
function requestOf(raw) {
  return redacting(raw, 'TokenRequest', () => ({
    ...raw,
    headers: raw.headers.map(([n, v]) =>
      n.toLowerCase() === 'authorization' ? [n, `${String(v).split(' ')[0]} ${REDACTED}`] : [n, v],
    ),
    body: String(raw.body)
      .split('&')
      .map((p) => {
        const field = CREDENTIAL_FIELDS.find((f) => p.startsWith(f));
        return field === undefined ? p : `${field}${REDACTED}`;
      })
      .join('&'),
  }));
}

/**
 * A token. `token.accessToken` is the bearer value to use; JSON and `inspect`
 * show `accessToken: "[redacted]"` so a logged token object gives nothing away.
 */
function tokenOf(raw) {
  return redacting(raw, 'Token', () => ({ ...raw, accessToken: REDACTED }));
}

function pollOf(raw) {
  if (raw.token) tokenOf(raw.token);
  if (raw.request) requestOf(raw.request);
  if (raw.error) raw.error = TokenError.fromEngine(raw.error);
  return raw;
}

function headerPairs(headers) {
  if (headers == null) return [];
  if (typeof headers[Symbol.iterator] === 'function') {
    return Array.from(headers, ([name, value]) => [String(name), String(value)]);
  }
  if (typeof headers === 'object') return Object.entries(headers).map(([n, v]) => [n, String(v)]);
  throw new TypeError('headers must be a Headers object, a list of [name, value] pairs or a plain object');
}

const NodeBuffer = globalThis.Buffer;

/** The body's bytes: a Buffer where there is one (napi takes Buffers), else a Uint8Array (wasm takes either). */
function bodyBytes(body) {
  let bytes;
  if (NodeBuffer?.isBuffer(body)) return body;
  if (body == null) bytes = new Uint8Array(0);
  else if (typeof body === 'string') bytes = new TextEncoder().encode(body);
  else if (ArrayBuffer.isView(body)) bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body);
  else throw new TypeError('body must be a string, a Buffer, a typed array or an ArrayBuffer');
  if (NodeBuffer === undefined || NodeBuffer.isBuffer(bytes)) return bytes;
  return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Unwraps a backend's create result: the cache, or the config error as JSON. */
function unwrap(created) {
  if (typeof created === 'string') throw TokenError.fromEngine(JSON.parse(created));
  return created;
}

/**
 * The engine's token cache for one client. Drive it like this: `poll(now)`; on
 * `send` / `ready_and_send` send `request` and report the outcome with
 * `handleResponse` or `handleTransportError`; on `wait` await the fetch in
 * flight, then poll again; poll again at `nextWakeup()` even if no caller asks.
 */
class TokenCache {
  #native;

  /**
   * @param {object} options engine options, camelCase (tokenUrl, clientId, clientSecret, ...)
   * @param {number|bigint} [entropy] jitter seed; random when omitted
   */
  constructor(options, entropy) {
    if (options === FROM_NATIVE) {
      this.#native = entropy;
      return;
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError('TokenCache options must be an object');
    }
    this.#native = unwrap(engine().createTokenCache(JSON.stringify(options), checkEntropy(entropy), undefined));
  }

  /** @internal Wraps a native cache (ServiceAccount, fromEnv). */
  static _wrap(nativeCache) {
    return new TokenCache(FROM_NATIVE, nativeCache);
  }

  /** @internal Creates the native cache with secrets and keys read from files (`clientSecretFile`, `privateKeyFile`). */
  static _create(optionsJson, entropy, secretFileContents, keyFileContents) {
    const created = engine().createTokenCache(
      optionsJson,
      checkEntropy(entropy),
      secretFileContents ?? undefined,
      keyFileContents ?? undefined,
    );
    return TokenCache._wrap(unwrap(created));
  }

  /**
   * @internal The cache `fromEnv` builds: `request` is `{ prefix, envJson,
   * explicitJson, secretFile, caFile, keyFile }`, as given to the backend's `envPlan`.
   */
  static _createFromEnv(request, entropy, secretFileContents, keyFileContents) {
    const { prefix, envJson, explicitJson, secretFile, caFile, keyFile } = request;
    const created = engine().createTokenCacheFromEnv(
      prefix,
      envJson,
      explicitJson,
      secretFile ?? undefined,
      caFile ?? undefined,
      checkEntropy(entropy),
      secretFileContents ?? undefined,
      keyFileContents ?? undefined,
      keyFile ?? undefined,
    );
    return TokenCache._wrap(unwrap(created));
  }

  /**
   * Mixes fresh randomness into the engine's entropy pool, which makes the
   * `jti` of each signed client assertion (`private_key_jwt`,
   * `client_secret_jwt`). The engine draws none of its own: before every
   * `poll` that may send, pass at least 16 bytes from the platform's CSPRNG
   * (`crypto.getRandomValues(new Uint8Array(32))`), so that two processes
   * forked from one parent never sign the same `jti`. Without `bytes`, 32
   * such bytes are drawn here.
   */
  addEntropy(bytes) {
    const given = bytes === undefined ? randomBytes32() : bytes;
    if (!ArrayBuffer.isView(given) && !(given instanceof ArrayBuffer)) {
      throw new TypeError('bytes must be a Uint8Array, a Buffer or an ArrayBuffer');
    }
    this.#native.addEntropy(bodyBytes(given));
  }

  /** What the host should do now. */
  poll(now) {
    return pollOf(JSON.parse(this.#native.poll(instant('now', now))));
  }

  /** Reports the HTTP response to fetch `fetchId`. */
  handleResponse(fetchId, status, headers, body, now) {
    if (!Number.isInteger(status) || status < 0 || status > 999) throw new TypeError('status must be an HTTP status');
    const raw = JSON.parse(
      this.#native.handleResponse(
        fetchIdOf(fetchId),
        status,
        JSON.stringify(headerPairs(headers)),
        bodyBytes(body),
        instant('now', now),
      ),
    );
    if (raw.token) tokenOf(raw.token);
    if (raw.error) raw.error = TokenError.fromEngine(raw.error);
    return raw;
  }

  /**
   * Reports that fetch `fetchId` failed without a response: `timeout`,
   * `connect`, `io`, `tls` (the server's certificate could not be verified) or `other`.
   */
  handleTransportError(fetchId, kind, message, now) {
    if (!TRANSPORT_ERROR_KINDS.includes(kind)) {
      throw new TypeError(`kind must be one of ${TRANSPORT_ERROR_KINDS.map((k) => `"${k}"`).join(', ')}`);
    }
    const raw = JSON.parse(
      this.#native.handleTransportError(fetchIdOf(fetchId), kind, String(message ?? ''), instant('now', now)),
    );
    raw.error = TokenError.fromEngine(raw.error);
    return raw;
  }

  /** When to poll again even if no caller asks (ms), or null. */
  nextWakeup() {
    return this.#native.nextWakeup() ?? null;
  }

  /** An API answered 401 for `accessToken`: `invalidated`, `not_current` or `rate_limited`. */
  invalidate(accessToken, now) {
    if (typeof accessToken !== 'string') throw new TypeError('accessToken must be a string');
    return this.#native.invalidate(accessToken, instant('now', now));
  }

  /** Replaces the client secrets (current first). */
  replaceSecrets(secrets, now) {
    const list = typeof secrets === 'string' ? [secrets] : secrets;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
      throw new TypeError('secrets must be a string or a list of strings');
    }
    return replacedOf(JSON.parse(this.#native.replaceSecrets(JSON.stringify(list), instant('now', now))));
  }

  /**
   * Replaces the secrets with a secret file's contents (one per line, current
   * first), the engine's one entry point for secret files: a file without a
   * valid secret keeps the secrets in use, returns the error and queues one
   * `secret_file_rejected` event naming `source` (the variable or option that
   * named the file).
   */
  replaceSecretsFromFile(contents, source, now) {
    if (typeof contents !== 'string') throw new TypeError('contents must be a string');
    if (typeof source !== 'string') throw new TypeError('source must be the name of the variable or option');
    return replacedOf(JSON.parse(this.#native.replaceSecretsFromFile(contents, source, instant('now', now))));
  }

  /**
   * Replaces the private keys with a key file's contents (PEM blocks, a JWK
   * or a JWKS; current first), the engine's one entry point for key files: a
   * file without a valid key keeps the keys in use, returns the error (which
   * never quotes the file) and queues one `secret_file_rejected` event naming
   * `source`.
   */
  replaceKeysFromFile(contents, source, now) {
    if (typeof contents !== 'string') throw new TypeError('contents must be a string');
    if (typeof source !== 'string') throw new TypeError('source must be the name of the variable or option');
    return replacedOf(JSON.parse(this.#native.replaceKeysFromFile(contents, source, instant('now', now))));
  }

  /**
   * The secret file named by `source` could not be read (`problem` says why,
   * never what it holds): the secrets in use stay, and the engine queues one
   * `secret_file_rejected` event.
   */
  reportSecretFileProblem(source, problem, now) {
    if (typeof source !== 'string' || typeof problem !== 'string') {
      throw new TypeError('source and problem must be strings');
    }
    this.#native.reportSecretFileProblem(source, problem, instant('now', now));
  }

  /**
   * The host's cache file (`cachePath`) at `path` could not be used as it
   * should: `problem` is `ignored`, `permissions_tightened`, `write_failed`,
   * `lock_failed` or `lock_timeout`, `detail` a non-secret reason, error code
   * or mode (`"symlink"`, `"unusable: EACCES"`, `"0o644"`). The engine queues
   * one `cache_file_problem` event.
   */
  reportCacheFileProblem(path, problem, detail, now) {
    if (typeof path !== 'string' || typeof problem !== 'string' || typeof detail !== 'string') {
      throw new TypeError('path, problem and detail must be strings');
    }
    this.#native.reportCacheFileProblem(path, problem, detail, instant('now', now));
  }

  /** Takes every queued event, oldest first. */
  drainEvents() {
    return JSON.parse(this.#native.drainEvents());
  }

  /** The cached token as JSON text for persistence (holds the access token), or null. */
  exportSnapshot(now) {
    return this.#native.exportSnapshot(instant('now', now)) ?? null;
  }

  /** Loads a persisted token: `{result: "imported"}` or `{result: "error", reason}`. */
  importSnapshot(snapshot, now) {
    const text = typeof snapshot === 'string' ? snapshot : JSON.stringify(snapshot);
    const reason = this.#native.importSnapshot(text, instant('now', now));
    return reason == null ? { result: 'imported' } : { result: 'error', reason };
  }

  /** `idle`, `fetching`, `backing_off` or `held`. */
  get state() {
    return this.#native.state;
  }

  /** The id of the fetch in flight, or null. */
  get inFlight() {
    return this.#native.inFlight ?? null;
  }

  /** The configuration without secrets. */
  describe() {
    return JSON.parse(this.#native.describe());
  }

  toJSON() {
    return { ...this.describe(), state: this.state };
  }

  [INSPECT](depth, options, insp) {
    return `TokenCache ${insp(this.toJSON(), options)}`;
  }
}

function replacedOf(raw) {
  if (raw.error) raw.error = TokenError.fromEngine(raw.error);
  return raw;
}

module.exports = { TokenCache, REDACTED, TRANSPORT_ERROR_KINDS, tokenOf, randomEntropy, randomBytes32 };
