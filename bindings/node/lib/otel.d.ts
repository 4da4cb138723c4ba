// Type declarations for `tokenwell/otel` (lib/otel.js). Structural types, so that
// this file does not need `@opentelemetry/api`: any API-compatible provider fits.

import type { TokenEvent } from '../index.js';

/** What `Telemetry` calls on a meter provider (`@opentelemetry/api`'s `MeterProvider`). */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): any;
}

/** What `Telemetry` calls on a tracer provider (`@opentelemetry/api`'s `TracerProvider`). */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): any;
}

export interface TelemetryOptions {
  /** Default: the global one (`metrics.getMeterProvider()` of `@opentelemetry/api`). */
  meterProvider?: MeterProviderLike;
  /** Default: the global one (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProviderLike;
  /** ms since the epoch, for the remaining-lifetime gauge: the account's `clock` if it has one. Default `Date.now`. */
  clock?: () => number;
  /** The `tokenwell.auth_method` attribute until discovery names one. */
  authMethod?: string;
  /** Added to every metric point and span. */
  attributes?: Record<string, string | number | boolean>;
  /**
   * Called with every event after it is recorded. An account given an
   * `onEvent` no longer warns about its events: chain your handler here.
   */
  onEvent?: (event: TokenEvent) => void;
}

/**
 * OpenTelemetry metrics and spans for one account, fed from its events:
 * `new ServiceAccount({ ..., onEvent: telemetry.onEvent })`. One per account.
 */
export class Telemetry {
  constructor(options?: TelemetryOptions);
  /** Records one engine event, then hands it to the `onEvent` option (bound: pass it as is). */
  readonly onEvent: (event: TokenEvent) => void;
  /** Stops the gauge's callback and ends the spans of requests still in flight. */
  close(): void;
}

/** Instrument names, the same in Python's `tokenwell.otel`. */
export const INSTRUMENTS: Readonly<{
  requests: 'tokenwell.token.requests';
  duration: 'tokenwell.token.request.duration';
  remainingLifetime: 'tokenwell.token.remaining_lifetime';
  leadTime: 'tokenwell.token.refresh_ahead.lead_time';
  secretFallbacks: 'tokenwell.secret.fallbacks';
  outageGrace: 'tokenwell.outage_grace.served';
  credentialFileRejected: 'tokenwell.credential_file.rejected';
  credentialsReplaced: 'tokenwell.credentials.replaced';
  cacheFileProblems: 'tokenwell.cache_file.problems';
  discoveryRequests: 'tokenwell.discovery.requests';
  discoveryFailures: 'tokenwell.discovery.failures';
  invalidations: 'tokenwell.token.invalidations';
}>;

/** Attribute names (OpenTelemetry semantic conventions where one exists, else `tokenwell.`). */
export const ATTRIBUTES: Readonly<Record<string, string>>;

/** The name of the span of one token request. */
export const SPAN_NAME: 'tokenwell token request';
