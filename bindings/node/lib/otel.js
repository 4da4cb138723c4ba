'use strict';
// tokenwell/otel: OpenTelemetry metrics and spans, translated from the engine's events.
//
//     const { Telemetry } = require('tokenwell/otel');
//     const telemetry = new Telemetry();   // the global meter and tracer providers
//     const account = new ServiceAccount({ ...options, onEvent: telemetry.onEvent });
//
// Nothing here decides anything: every number comes from an engine event
// (`refresh_started`, `token_acquired`, ...) and its `at` time, so metrics and
// spans say exactly what the engine did, the same way in Python
// (tokenwell.otel). Events never hold a secret, a token or an assertion, and
// only the fields named below become attributes.
//
// `@opentelemetry/api` is an optional peer dependency: the main entry never
// loads this module, and this module loads the API only to find the global
// providers when none is given.

const INSTRUMENTATION_SCOPE = 'tokenwell';

/** The API's `SpanStatusCode.ERROR` and `SpanKind.INTERNAL` (stable values of the API's enums). */
const SPAN_STATUS_ERROR = 2;
const SPAN_KIND_INTERNAL = 0;

/** The span of one token request. */
const SPAN_NAME = 'tokenwell token request';

/** Attribute names: OpenTelemetry's semantic conventions where one exists, else `tokenwell.`. */
const ATTR = Object.freeze({
  clientId: 'tokenwell.client_id',
  authMethod: 'tokenwell.auth_method',
  reason: 'tokenwell.refresh.reason',
  outcome: 'tokenwell.outcome',
  errorType: 'error.type',
  httpStatus: 'http.response.status_code',
  oauthError: 'tokenwell.oauth.error',
  fault: 'tokenwell.error.fault',
  retryable: 'tokenwell.error.retryable',
  fetchId: 'tokenwell.fetch_id',
  secretIndex: 'tokenwell.secret.index',
  lifetime: 'tokenwell.token.lifetime',
  lifetimeSource: 'tokenwell.token.lifetime_source',
  fromIndex: 'tokenwell.secret.from_index',
  toIndex: 'tokenwell.secret.to_index',
  fileSource: 'tokenwell.credential_file.source',
  credentialType: 'tokenwell.credential.type',
  cacheFileProblem: 'tokenwell.cache_file.problem',
  cacheFileDetail: 'tokenwell.cache_file.detail',
  discoveryCause: 'tokenwell.discovery.cause',
  invalidation: 'tokenwell.invalidation.result',
});

/** Instrument names (the same in tokenwell.otel for Python). */
const INSTRUMENTS = Object.freeze({
  requests: 'tokenwell.token.requests',
  duration: 'tokenwell.token.request.duration',
  remainingLifetime: 'tokenwell.token.remaining_lifetime',
  leadTime: 'tokenwell.token.refresh_ahead.lead_time',
  secretFallbacks: 'tokenwell.secret.fallbacks',
  outageGrace: 'tokenwell.outage_grace.served',
  credentialFileRejected: 'tokenwell.credential_file.rejected',
  credentialsReplaced: 'tokenwell.credentials.replaced',
  cacheFileProblems: 'tokenwell.cache_file.problems',
  discoveryRequests: 'tokenwell.discovery.requests',
  discoveryFailures: 'tokenwell.discovery.failures',
  invalidations: 'tokenwell.token.invalidations',
});

/** OpenTelemetry's HTTP client duration buckets (seconds): token requests are HTTP requests. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Lead times (seconds): tokens live from minutes to hours, refreshed at about 3/4 of their life. */
const LEAD_TIME_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

/** The `error.type` of a fetch the engine abandoned at its deadline (the host never reported on it). */
const ABANDONED = 'fetch_abandoned';

function globalApi() {
  try {
    return require('@opentelemetry/api');
  } catch (error) {
    if (error?.code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error(
      'tokenwell/otel: @opentelemetry/api is not installed; install it (npm install @opentelemetry/api), ' +
        'or pass meterProvider and tracerProvider',
    );
  }
}

/**
 * OpenTelemetry metrics and spans for one account, fed from its events:
 * pass `telemetry.onEvent` as the account's `onEvent`. Use one `Telemetry`
 * per account (fetch ids are per account); instruments are shared through
 * the meter.
 */
class Telemetry {
  #meter;
  #tracer;
  #clock;
  #next;
  #base;
  #authMethod;
  /** fetchId -> { start, reason, span, expiresBefore } for token requests in flight. */
  #fetches = new Map();
  /** fetchIds of metadata (discovery) requests in flight. */
  #discoveries = new Set();
  /** The current token's expiry (ms), or null when there is none. */
  #expiresAt = null;
  /** The client id, from the events' `actorId`. */
  #clientId = undefined;
  #instruments;
  #observe;
  #closed = false;

  /**
   * @param {object} [options]
   * @param {object} [options.meterProvider] default: the global one (`@opentelemetry/api`)
   * @param {object} [options.tracerProvider] default: the global one
   * @param {() => number} [options.clock] ms since the epoch, for the remaining-lifetime gauge:
   *   the account's clock when it has one injected. Default `Date.now`.
   * @param {string} [options.authMethod] the `tokenwell.auth_method` attribute until discovery names one
   * @param {Record<string, string|number|boolean>} [options.attributes] added to every metric point and span
   * @param {(event: object) => void} [options.onEvent] called with every event after it is recorded
   */
  constructor(options = {}) {
    const { meterProvider, tracerProvider, clock, authMethod, attributes, onEvent } = options;
    if (clock !== undefined && typeof clock !== 'function') throw new TypeError('clock must be a function');
    if (onEvent !== undefined && typeof onEvent !== 'function') throw new TypeError('onEvent must be a function');
    const api = meterProvider === undefined || tracerProvider === undefined ? globalApi() : null;
    const version = require('../package.json').version;
    this.#meter = (meterProvider ?? api.metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE, version);
    this.#tracer = (tracerProvider ?? api.trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE, version);
    this.#clock = clock ?? Date.now;
    this.#next = onEvent ?? null;
    this.#base = { ...(attributes ?? {}) };
    this.#authMethod = authMethod ?? null;
    this.#instruments = this.#createInstruments();
    this.onEvent = this.onEvent.bind(this);
  }

  #createInstruments() {
    const m = this.#meter;
    const counter = (name, description, unit = '{event}') => m.createCounter(name, { description, unit });
    const instruments = {
      requests: counter(INSTRUMENTS.requests, 'Token requests, by outcome and error type', '{request}'),
      duration: m.createHistogram(INSTRUMENTS.duration, {
        description: 'Duration of token requests, from refresh_started to their outcome',
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      leadTime: m.createHistogram(INSTRUMENTS.leadTime, {
        description: 'For refresh-ahead: how long the replaced token still had to live when its successor arrived',
        unit: 's',
        advice: { explicitBucketBoundaries: LEAD_TIME_BUCKETS },
      }),
      secretFallbacks: counter(INSTRUMENTS.secretFallbacks, 'invalid_client on one secret: the next one tried'),
      outageGrace: counter(INSTRUMENTS.outageGrace, 'Outages in which the cached token was served inside its margin'),
      credentialFileRejected: counter(INSTRUMENTS.credentialFileRejected, 'Secret or key files that could not be used'),
      credentialsReplaced: counter(INSTRUMENTS.credentialsReplaced, 'Secrets or keys replaced at run time'),
      cacheFileProblems: counter(INSTRUMENTS.cacheFileProblems, 'Problems with the token cache file'),
      discoveryRequests: counter(INSTRUMENTS.discoveryRequests, 'Metadata (discovery) requests sent', '{request}'),
      discoveryFailures: counter(INSTRUMENTS.discoveryFailures, 'Metadata (discovery) requests failed', '{request}'),
      invalidations: counter(INSTRUMENTS.invalidations, 'Tokens reported rejected by an API (invalidate)'),
      remainingLifetime: m.createObservableGauge(INSTRUMENTS.remainingLifetime, {
        description: 'Time until the cached token expires (0 once expired; absent when there is none)',
        unit: 's',
      }),
    };
    this.#observe = (result) => {
      if (this.#expiresAt === null) return;
      result.observe(Math.max(0, this.#expiresAt - this.#clock()) / 1000, this.#common());
    };
    instruments.remainingLifetime.addCallback(this.#observe);
    return instruments;
  }

  /** Records one engine event, then hands it to the `onEvent` option. Never throws for a well-formed event. */
  onEvent(event) {
    if (!this.#closed) this.#record(event);
    if (this.#next !== null) this.#next(event);
  }

  /** Stops the gauge's callback and ends the spans of requests still in flight (no status). */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#instruments.remainingLifetime.removeCallback(this.#observe);
    for (const fetch of this.#fetches.values()) fetch.span.end(new Date(this.#clock()));
    this.#fetches.clear();
  }

  /** Attributes on every point: the client id, the auth method, and `attributes`. */
  #common(extra) {
    const out = { ...this.#base };
    if (this.#clientId !== undefined) out[ATTR.clientId] = this.#clientId;
    if (this.#authMethod !== null) out[ATTR.authMethod] = this.#authMethod;
    return extra === undefined ? out : Object.assign(out, extra);
  }

  #record(event) {
    if (typeof event?.actorId === 'string') this.#clientId = event.actorId;
    const i = this.#instruments;
    switch (event.type) {
      case 'refresh_started':
        this.#started(event);
        break;
      case 'token_acquired':
        this.#acquired(event);
        break;
      case 'refresh_failed':
        if (this.#discoveries.delete(event.fetchId)) {
          i.discoveryFailures.add(1, this.#common({ [ATTR.errorType]: event.error?.kind ?? 'unknown' }));
        } else {
          this.#finished(event, event.error ?? null);
        }
        break;
      case 'fetch_abandoned':
        if (!this.#discoveries.delete(event.fetchId)) this.#finished(event, { kind: ABANDONED });
        break;
      case 'snapshot_imported':
        this.#expiresAt = event.expiresAt;
        break;
      case 'token_invalidated':
        this.#expiresAt = null;
        i.invalidations.add(1, this.#common({ [ATTR.invalidation]: 'invalidated' }));
        break;
      case 'invalidate_rate_limited':
        i.invalidations.add(1, this.#common({ [ATTR.invalidation]: 'rate_limited' }));
        break;
      case 'secret_fallback':
        i.secretFallbacks.add(1, this.#common({ [ATTR.fromIndex]: event.fromIndex, [ATTR.toIndex]: event.toIndex }));
        break;
      case 'outage_grace_served':
        i.outageGrace.add(1, this.#common({ [ATTR.errorType]: event.errorKind }));
        break;
      case 'secret_file_rejected':
        i.credentialFileRejected.add(1, this.#common({ [ATTR.fileSource]: event.source }));
        break;
      case 'secrets_replaced':
        i.credentialsReplaced.add(1, this.#common({ [ATTR.credentialType]: 'client_secret' }));
        break;
      case 'keys_replaced':
        i.credentialsReplaced.add(1, this.#common({ [ATTR.credentialType]: 'private_key' }));
        break;
      case 'cache_file_problem': {
        const extra = { [ATTR.cacheFileProblem]: event.problem };
        if (event.detail) extra[ATTR.cacheFileDetail] = event.detail;
        i.cacheFileProblems.add(1, this.#common(extra));
        break;
      }
      case 'discovery_started':
        this.#discoveries.add(event.fetchId);
        i.discoveryRequests.add(1, this.#common({ [ATTR.discoveryCause]: event.cause }));
        break;
      case 'discovery_completed':
        this.#discoveries.delete(event.fetchId);
        if (event.authMethod) this.#authMethod = event.authMethod;
        break;
      default:
        // backoff_scheduled, discovery_kept_cached, clock_went_backwards, ...: not metrics (yet).
        break;
    }
  }

  #started(event) {
    // A fetch id the engine replaced without an outcome (it never does today) ends unrecorded.
    this.#fetches.get(event.fetchId)?.span.end(new Date(event.at));
    const attributes = this.#common({
      [ATTR.reason]: event.reason,
      [ATTR.fetchId]: event.fetchId,
      [ATTR.secretIndex]: event.secretIndex,
    });
    const span = this.#tracer.startSpan(SPAN_NAME, { kind: SPAN_KIND_INTERNAL, startTime: new Date(event.at), attributes });
    this.#fetches.set(event.fetchId, { start: event.at, reason: event.reason, span, expiresBefore: this.#expiresAt });
  }

  #acquired(event) {
    const fetch = this.#fetches.get(event.fetchId);
    const previous = fetch?.expiresBefore ?? this.#expiresAt;
    this.#expiresAt = event.expiresAt;
    if (fetch === undefined) return;
    this.#fetches.delete(event.fetchId);
    const attributes = this.#common({ [ATTR.reason]: fetch.reason, [ATTR.outcome]: 'success' });
    this.#instruments.requests.add(1, attributes);
    this.#instruments.duration.record((event.at - fetch.start) / 1000, attributes);
    if (fetch.reason === 'ahead' && previous !== null) {
      this.#instruments.leadTime.record((previous - event.at) / 1000, this.#common());
    }
    fetch.span.setAttributes({
      [ATTR.lifetime]: (event.expiresAt - event.at) / 1000,
      [ATTR.lifetimeSource]: event.lifetimeSource,
    });
    if (this.#authMethod !== null) fetch.span.setAttribute(ATTR.authMethod, this.#authMethod);
    fetch.span.end(new Date(event.at));
  }

  /** A token request that ended without a token: `error` is the engine's error data. */
  #finished(event, error) {
    const fetch = this.#fetches.get(event.fetchId);
    if (fetch === undefined) return;
    this.#fetches.delete(event.fetchId);
    const kind = error?.kind ?? 'unknown';
    const attributes = this.#common({ [ATTR.reason]: fetch.reason, [ATTR.outcome]: 'failure', [ATTR.errorType]: kind });
    if (typeof error?.status === 'number') attributes[ATTR.httpStatus] = error.status;
    this.#instruments.requests.add(1, attributes);
    this.#instruments.duration.record((event.at - fetch.start) / 1000, attributes);
    const spanAttributes = { [ATTR.errorType]: kind };
    if (typeof error?.status === 'number') spanAttributes[ATTR.httpStatus] = error.status;
    if (typeof error?.oauthError === 'string') spanAttributes[ATTR.oauthError] = error.oauthError;
    if (typeof error?.fault === 'string') spanAttributes[ATTR.fault] = error.fault;
    if (typeof error?.retryable === 'boolean') spanAttributes[ATTR.retryable] = error.retryable;
    fetch.span.setAttributes(spanAttributes);
    // The status message is the error kind only: the description is server text.
    fetch.span.setStatus({ code: SPAN_STATUS_ERROR, message: kind });
    fetch.span.end(new Date(event.at));
  }
}

module.exports = { Telemetry, INSTRUMENTS, ATTRIBUTES: ATTR, SPAN_NAME };
