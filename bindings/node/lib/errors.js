'use strict';
// TokenError: every failure to get a token, with the engine's classification.

const { engine } = require('./runtime.js');

/** `util.inspect.custom`, without loading node:util (absent outside Node). */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * Every engine error kind, with who has to act (`fault`) and whether the engine
 * retries it on its own. Kept in step with the engine's `ErrorKind::ALL` by a
 * test (test/errors.test.mjs) that compares it with the native list.
 */
const ERROR_KINDS = Object.freeze({
  config: { fault: 'configuration', retryable: false },
  invalid_client: { fault: 'credentials', retryable: false },
  invalid_scope: { fault: 'configuration', retryable: false },
  invalid_target: { fault: 'configuration', retryable: false },
  unauthorized_client: { fault: 'configuration', retryable: false },
  unsupported_grant_type: { fault: 'configuration', retryable: false },
  invalid_request: { fault: 'configuration', retryable: false },
  invalid_grant: { fault: 'configuration', retryable: false },
  rejected: { fault: 'configuration', retryable: false },
  rate_limited: { fault: 'authorization_server', retryable: true },
  server_error: { fault: 'authorization_server', retryable: true },
  temporarily_unavailable: { fault: 'authorization_server', retryable: true },
  transport: { fault: 'transport', retryable: true },
  timeout: { fault: 'transport', retryable: true },
  malformed_response: { fault: 'malformed_response', retryable: true },
  endpoint_not_found: { fault: 'configuration', retryable: false },
  tls_certificate: { fault: 'configuration', retryable: false },
  stale_fetch: { fault: 'host', retryable: false },
  closed: { fault: 'host', retryable: false },
  discovery_failed: { fault: 'configuration', retryable: false },
  issuer_mismatch: { fault: 'configuration', retryable: false },
  discovery_complete: { fault: 'host', retryable: false },
});

/**
 * The engine's own list: `[{kind, fault, retryable}]`, one entry per
 * `ErrorKind`. Internal: the tests import it from here to guard the table
 * above; the package does not export it.
 */
function engineErrorKinds() {
  return JSON.parse(engine().errorKinds());
}

/** A token could not be had. `kind` says what happened, `fault` who has to act. */
class TokenError extends Error {
  /**
   * @param {string} message
   * @param {object} fields kind, fault, retryable, retryAt (ms or Date), status,
   *   oauthError, description, field, problem
   */
  constructor(message, fields = {}) {
    super(message);
    const known = ERROR_KINDS[fields.kind];
    this.kind = fields.kind ?? 'config';
    this.fault = fields.fault ?? known?.fault ?? 'configuration';
    this.retryable = fields.retryable ?? known?.retryable ?? false;
    this.retryAt = fields.retryAt == null ? undefined : new Date(fields.retryAt);
    this.status = fields.status ?? undefined;
    this.oauthError = fields.oauthError ?? undefined;
    this.description = fields.description ?? undefined;
    if (fields.field !== undefined) this.field = fields.field;
    if (fields.problem !== undefined) this.problem = fields.problem;
  }

  /** From the engine's error JSON (camelCase keys). */
  static fromEngine(error) {
    return new TokenError(error.message ?? error.description ?? error.kind, error);
  }

  get name() {
    return 'TokenError';
  }

  toJSON() {
    const out = {
      name: this.name,
      message: this.message,
      kind: this.kind,
      fault: this.fault,
      retryable: this.retryable,
      retryAt: this.retryAt?.toISOString(),
      status: this.status,
      oauthError: this.oauthError,
      description: this.description,
    };
    if (this.field !== undefined) out.field = this.field;
    return out;
  }

  [INSPECT](depth, options, insp) {
    const fields = { ...this.toJSON() };
    delete fields.name;
    delete fields.message;
    for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
    return `${this.stack}\n${insp(fields, options)}`;
  }
}

/** A `config` error for an option or variable the host itself checks (a secret file it cannot read). */
function configError(field, problem) {
  return new TokenError(`invalid configuration (config): ${field}: ${problem}`, {
    kind: 'config',
    fault: 'configuration',
    retryable: false,
    description: `${field}: ${problem}`,
    field,
    problem,
  });
}

module.exports = { TokenError, ERROR_KINDS, engineErrorKinds, configError, INSPECT };
