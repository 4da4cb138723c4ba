// tokenwell/otel (lib/otel.js): OpenTelemetry metrics and spans from the engine's
// events, read back through the SDKs' in-memory exporters after a scripted
// timeline on a virtual clock against the loopback scripted token server:
// acquire, refresh ahead, an outage (503) with the cached token still served,
// recovery. And the package without @opentelemetry/api: the SDKs live in
// test-tools/otel (make otel-tools), not in this package's node_modules.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ServiceAccount } from '../index.js';
import { startScriptedTokenServer, virtualClock } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { Telemetry, INSTRUMENTS, SPAN_NAME } = require('../lib/otel.js');
const otelRequire = createRequire(new URL('../test-tools/otel/package.json', import.meta.url));
const { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } =
  otelRequire('@opentelemetry/sdk-metrics');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = otelRequire('@opentelemetry/sdk-trace-base');
const { SpanStatusCode } = otelRequire('@opentelemetry/api');

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

const SECRET = 'otel-s3cret+&%: é';
const CLIENT_ID = 'billing-worker';
const LIFETIME_S = 300;
/** The tokens the server hands out: long and recognisable, so a leak anywhere is found. */
const tokenNo = (n) => `eyJ-otel-access-token-number-${n}`;

/** A meter provider and a tracer provider whose output the test reads. */
function sdk() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  return {
    meterProvider,
    tracerProvider,
    spans: () => spanExporter.getFinishedSpans(),
    /** Every metric exported by a collection now, by name. */
    async metrics() {
      metricExporter.reset();
      await reader.forceFlush();
      const exported = metricExporter.getMetrics();
      const byName = new Map();
      for (const resourceMetrics of exported) {
        for (const scope of resourceMetrics.scopeMetrics) {
          for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
        }
      }
      return byName;
    },
    async shutdown() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** The value of the data point whose attributes include `attrs` (a sum or a gauge), or its histogram. */
function point(metric, attrs = {}) {
  assert.ok(metric, 'metric exported');
  const matches = metric.dataPoints.filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
  assert.equal(matches.length, 1, `one point of ${metric.descriptor.name} with ${JSON.stringify(attrs)}`);
  return matches[0];
}

/** Events, and `next(predicate)`: the first matching event from now on. */
function eventLog() {
  const events = [];
  const waiters = [];
  const onEvent = (event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  };
  const next = (predicate) => new Promise((resolve) => waiters.push({ predicate, resolve }));
  return { events, onEvent, next };
}

/** Every string and number attribute value in what the SDKs exported. */
function everyAttributeValue(metrics, spans) {
  const values = [];
  for (const metric of metrics.values()) {
    for (const p of metric.dataPoints) values.push(...Object.entries(p.attributes).flat());
  }
  for (const span of spans) {
    values.push(span.name, span.status.message ?? '', ...Object.entries(span.attributes).flat());
    for (const e of span.events) values.push(e.name, ...Object.entries(e.attributes ?? {}).flat());
  }
  return values.map(String);
}

test('a scripted timeline: acquire, refresh ahead, an outage served from the cache, recovery', async () => {
  // 1: the first token; 2: refreshed ahead; 3, 4: 503 (the body quotes the secret, as a
  // misbehaving proxy might); 5: recovery.
  const server = await startScriptedTokenServer((req, n) =>
    n === 3 || n === 4
      ? { status: 503, headers: { 'content-type': 'text/plain' }, body: `down; you sent ${SECRET}` }
      : { status: 200, body: { access_token: tokenNo(n), token_type: 'bearer', expires_in: LIFETIME_S } },
  );
  const otel = sdk();
  const clock = virtualClock();
  const log = eventLog();
  const telemetry = new Telemetry({
    meterProvider: otel.meterProvider,
    tracerProvider: otel.tracerProvider,
    clock,
    authMethod: 'client_secret_basic',
    onEvent: log.onEvent,
  });
  const account = new ServiceAccount({
    tokenUrl: server.url,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    clock,
    onEvent: telemetry.onEvent,
    backgroundRefresh: false,
  });
  const outcomeOf = (fetchId) =>
    log.next((e) => (e.type === 'token_acquired' || e.type === 'refresh_failed') && e.fetchId === fetchId);
  try {
    // Acquire, 40 ms on the virtual clock after the request started.
    const T0 = clock();
    assert.equal(await account.getToken(), tokenNo(1));
    const first = log.events.find((e) => e.type === 'token_acquired');
    assert.equal(first.at, T0);

    let metrics = await otel.metrics();
    assert.equal(point(metrics.get(INSTRUMENTS.remainingLifetime)).value, LIFETIME_S);
    clock.advance(60_000);
    metrics = await otel.metrics();
    assert.equal(point(metrics.get(INSTRUMENTS.remainingLifetime)).value, LIFETIME_S - 60, 'the gauge reads the clock');

    // Refresh ahead: the old token is served, the new one arrives 250 ms later (virtual).
    clock.set(first.refreshAt);
    const aheadOutcome = outcomeOf(2);
    const pending = account.getToken();
    clock.advance(250);
    assert.equal(await pending, tokenNo(1), 'served the valid token meanwhile');
    const second = await aheadOutcome;
    assert.equal(second.type, 'token_acquired');
    assert.equal(second.at, first.refreshAt + 250);
    assert.equal(await account.getToken(), tokenNo(2));

    // The outage: the refresh ahead of token 2 fails (503), the token is served all the same.
    clock.set(second.refreshAt);
    const failedOutcome = outcomeOf(3);
    assert.equal(await account.getToken(), tokenNo(2));
    const failed = await failedOutcome;
    assert.equal(failed.type, 'refresh_failed');
    assert.equal(failed.error.kind, 'server_error');
    const backoff = log.events.find((e) => e.type === 'backoff_scheduled');
    clock.set(backoff.retryAt);
    const retryOutcome = outcomeOf(4);
    assert.equal(await account.getToken(), tokenNo(2), 'still served during the outage');
    assert.equal((await retryOutcome).type, 'refresh_failed');

    // Inside the margin, the engine serves the token under outage grace (once per outage).
    clock.set(second.expiresAt - 20_000);
    const graceOutcome = outcomeOf(5);
    assert.equal(await account.getToken(), tokenNo(2), 'outage grace: served inside the margin');
    assert.ok(log.events.some((e) => e.type === 'outage_grace_served'), 'the engine announced outage grace');

    // Recovery: the next request gets token 5.
    const recovered = await graceOutcome;
    assert.equal(recovered.type, 'token_acquired');
    assert.equal(await account.getToken(), tokenNo(5));
    assert.equal(server.requests.length, 5);

    // ---- what the SDKs received ----
    metrics = await otel.metrics();
    const base = { 'tokenwell.client_id': CLIENT_ID, 'tokenwell.auth_method': 'client_secret_basic' };
    const requests = metrics.get(INSTRUMENTS.requests);
    assert.equal(requests.descriptor.unit, '{request}');
    const started = log.events.filter((e) => e.type === 'refresh_started').map((e) => e.reason);
    assert.deepEqual(started, ['initial', 'ahead', 'ahead', 'ahead', 'expired'], 'the engine\'s reasons');
    const count = (attrs) => point(requests, { ...base, ...attrs }).value;
    assert.equal(count({ 'tokenwell.refresh.reason': 'initial', 'tokenwell.outcome': 'success' }), 1);
    assert.equal(count({ 'tokenwell.refresh.reason': 'ahead', 'tokenwell.outcome': 'success' }), 1);
    assert.equal(count({ 'tokenwell.refresh.reason': 'ahead', 'tokenwell.outcome': 'failure' }), 2);
    assert.equal(count({ 'tokenwell.refresh.reason': 'expired', 'tokenwell.outcome': 'success' }), 1);
    assert.equal(requests.dataPoints.length, 4, 'no other series');
    const failure = point(requests, { 'tokenwell.outcome': 'failure' });
    assert.equal(failure.attributes['error.type'], 'server_error');
    assert.equal(failure.attributes['http.response.status_code'], 503);
    assert.ok(
      requests.dataPoints
        .filter((p) => p.attributes['tokenwell.outcome'] === 'success')
        .every((p) => !('error.type' in p.attributes) && !('http.response.status_code' in p.attributes)),
      'no error.type on success',
    );

    // Durations: every request took 0 ms of virtual time, except the refresh ahead (250 ms).
    const duration = metrics.get(INSTRUMENTS.duration);
    assert.equal(duration.descriptor.unit, 's');
    const ahead = point(duration, { 'tokenwell.refresh.reason': 'ahead', 'tokenwell.outcome': 'success' });
    assert.equal(ahead.value.count, 1);
    assert.equal(ahead.value.sum, 0.25);
    const aheadFailed = point(duration, { 'tokenwell.refresh.reason': 'ahead', 'tokenwell.outcome': 'failure' });
    assert.equal(aheadFailed.value.count, 2);
    assert.equal(aheadFailed.value.sum, 0);
    const total = duration.dataPoints.reduce((n, p) => n + p.value.count, 0);
    assert.equal(total, 5, 'one duration per request');

    // Lead time, for the one successful refresh ahead: token 1 still had this long to live.
    const lead = point(metrics.get(INSTRUMENTS.leadTime), base);
    assert.equal(metrics.get(INSTRUMENTS.leadTime).descriptor.unit, 's');
    assert.equal(lead.value.count, 1);
    assert.equal(lead.value.sum, (first.expiresAt - second.at) / 1000);
    assert.ok(lead.value.sum > 0 && lead.value.sum < LIFETIME_S);

    assert.equal(point(metrics.get(INSTRUMENTS.outageGrace), { 'error.type': 'server_error' }).value, 1);
    assert.equal(
      point(metrics.get(INSTRUMENTS.remainingLifetime), base).value,
      (recovered.expiresAt - clock()) / 1000,
      'the gauge follows the new token',
    );
    for (const absent of [INSTRUMENTS.secretFallbacks, INSTRUMENTS.cacheFileProblems, INSTRUMENTS.discoveryRequests]) {
      assert.equal(metrics.get(absent)?.dataPoints.length ?? 0, 0, `${absent}: nothing happened`);
    }

    // Spans: one per request, errors marked.
    const spans = otel.spans();
    assert.equal(spans.length, 5);
    assert.ok(spans.every((s) => s.name === SPAN_NAME));
    const byFetch = new Map(spans.map((s) => [s.attributes['tokenwell.fetch_id'], s]));
    for (const id of [1, 2, 5]) {
      assert.equal(byFetch.get(id).status.code, SpanStatusCode.UNSET, `fetch ${id} succeeded`);
      assert.equal(byFetch.get(id).attributes['tokenwell.token.lifetime'], LIFETIME_S);
    }
    for (const id of [3, 4]) {
      const span = byFetch.get(id);
      assert.equal(span.status.code, SpanStatusCode.ERROR, `fetch ${id} failed`);
      assert.equal(span.status.message, 'server_error');
      assert.equal(span.attributes['error.type'], 'server_error');
      assert.equal(span.attributes['http.response.status_code'], 503);
      assert.equal(span.attributes['tokenwell.error.retryable'], true);
    }
    const aheadSpan = byFetch.get(2);
    assert.equal(aheadSpan.attributes['tokenwell.refresh.reason'], 'ahead');
    assert.deepEqual(aheadSpan.startTime, [Math.floor(first.refreshAt / 1000), (first.refreshAt % 1000) * 1e6]);
    assert.deepEqual(aheadSpan.duration, [0, 250_000_000], 'span times are the events\' times');

    // No secret and no token in any attribute of any point or span.
    const values = everyAttributeValue(metrics, spans);
    assert.ok(values.length > 50 && values.includes(CLIENT_ID), 'the scan sees the attribute values');
    const forbidden = [SECRET, encodeURIComponent(SECRET), ...[1, 2, 5].map(tokenNo)];
    for (const value of values) {
      for (const bad of forbidden) assert.ok(!value.includes(bad), `an attribute holds a secret or token: ${value}`);
    }
  } finally {
    telemetry.close();
    account.close();
    await otel.shutdown();
    await server.close();
  }
});

test('counters for the secret file, secret fallback, the cache file and invalidation, from their events', async () => {
  const otel = sdk();
  const clock = virtualClock();
  const telemetry = new Telemetry({ meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider, clock });
  const at = clock();
  const actor = { at, actorType: 'client', actorId: CLIENT_ID };
  for (const event of [
    { type: 'refresh_started', fetchId: 1, reason: 'initial', secretIndex: 0 },
    { type: 'refresh_failed', fetchId: 1, error: { kind: 'invalid_client', status: 401, oauthError: 'invalid_client', fault: 'credentials', retryable: false } },
    { type: 'secret_fallback', fetchId: 1, fromIndex: 0, toIndex: 1 },
    { type: 'secret_file_rejected', source: 'CLIENT_SECRET_FILE', problem: 'no secret in /run/secrets/x' },
    { type: 'secrets_replaced', count: 2, holdLifted: false },
    { type: 'keys_replaced', count: 1, holdLifted: false },
    { type: 'cache_file_problem', path: '/tmp/c.json', problem: 'ignored', detail: 'symlink' },
    { type: 'cache_file_problem', path: '/tmp/c.json', problem: 'lock_timeout', detail: '' },
    { type: 'snapshot_imported', expiresAt: at + 90_000 },
    { type: 'token_invalidated', expiresAt: at + 90_000 },
    { type: 'invalidate_rate_limited', until: at + 5000 },
    { type: 'discovery_started', fetchId: 2, url: 'https://auth.example/.well-known/openid-configuration', cause: 'initial' },
    { type: 'refresh_failed', fetchId: 2, error: { kind: 'discovery_failed', status: 500 } },
    { type: 'discovery_started', fetchId: 3, url: 'https://auth.example/.well-known/openid-configuration', cause: 'initial' },
    { type: 'discovery_completed', fetchId: 3, tokenEndpoint: 'https://auth.example/token', authMethod: 'private_key_jwt' },
    { type: 'refresh_started', fetchId: 4, reason: 'initial', secretIndex: 0 },
    { type: 'fetch_abandoned', fetchId: 4 },
  ]) {
    telemetry.onEvent({ ...actor, ...event });
  }
  const metrics = await otel.metrics();
  assert.equal(point(metrics.get(INSTRUMENTS.secretFallbacks), { 'tokenwell.secret.from_index': 0, 'tokenwell.secret.to_index': 1 }).value, 1);
  assert.equal(point(metrics.get(INSTRUMENTS.credentialFileRejected), { 'tokenwell.credential_file.source': 'CLIENT_SECRET_FILE' }).value, 1);
  assert.equal(point(metrics.get(INSTRUMENTS.credentialsReplaced), { 'tokenwell.credential.type': 'client_secret' }).value, 1);
  assert.equal(point(metrics.get(INSTRUMENTS.credentialsReplaced), { 'tokenwell.credential.type': 'private_key' }).value, 1);
  const cacheFile = metrics.get(INSTRUMENTS.cacheFileProblems);
  assert.equal(point(cacheFile, { 'tokenwell.cache_file.problem': 'ignored', 'tokenwell.cache_file.detail': 'symlink' }).value, 1);
  assert.equal(point(cacheFile, { 'tokenwell.cache_file.problem': 'lock_timeout' }).value, 1);
  assert.ok(!('tokenwell.cache_file.detail' in point(cacheFile, { 'tokenwell.cache_file.problem': 'lock_timeout' }).attributes));
  const invalidations = metrics.get(INSTRUMENTS.invalidations);
  assert.equal(point(invalidations, { 'tokenwell.invalidation.result': 'invalidated' }).value, 1);
  assert.equal(point(invalidations, { 'tokenwell.invalidation.result': 'rate_limited' }).value, 1);
  assert.equal(metrics.get(INSTRUMENTS.remainingLifetime)?.dataPoints.length ?? 0, 0, 'no gauge after invalidation');
  assert.equal(point(metrics.get(INSTRUMENTS.discoveryRequests), { 'tokenwell.discovery.cause': 'initial' }).value, 2);
  assert.equal(point(metrics.get(INSTRUMENTS.discoveryFailures), { 'error.type': 'discovery_failed' }).value, 1);
  const requests = metrics.get(INSTRUMENTS.requests);
  assert.equal(point(requests, { 'error.type': 'invalid_client' }).value, 1, 'the discovery failure is not a token request');
  assert.equal(point(requests, { 'error.type': 'invalid_client' }).attributes['http.response.status_code'], 401);
  // After discovery, the auth method it chose is the attribute.
  const abandoned = point(requests, { 'error.type': 'fetch_abandoned' });
  assert.equal(abandoned.attributes['tokenwell.auth_method'], 'private_key_jwt');
  const spans = otel.spans();
  assert.deepEqual(spans.map((s) => [s.attributes['tokenwell.fetch_id'], s.status.code, s.attributes['error.type']]), [
    [1, SpanStatusCode.ERROR, 'invalid_client'],
    [4, SpanStatusCode.ERROR, 'fetch_abandoned'],
  ]);
  assert.equal(spans[0].attributes['tokenwell.oauth.error'], 'invalid_client');
  assert.equal(spans[0].attributes['tokenwell.error.fault'], 'credentials');
  telemetry.close();
  await otel.shutdown();
});

test('the onEvent option still sees every event; close() stops the gauge and ends open spans', async () => {
  const otel = sdk();
  const clock = virtualClock();
  const seen = [];
  const telemetry = new Telemetry({
    meterProvider: otel.meterProvider,
    tracerProvider: otel.tracerProvider,
    clock,
    attributes: { 'service.component': 'billing' },
    onEvent: (e) => seen.push(e.type),
  });
  const actor = { at: clock(), actorType: 'client', actorId: CLIENT_ID };
  telemetry.onEvent({ ...actor, type: 'snapshot_imported', expiresAt: clock() + 10_000 });
  telemetry.onEvent({ ...actor, type: 'refresh_started', fetchId: 1, reason: 'initial', secretIndex: 0 });
  telemetry.onEvent({ ...actor, type: 'clock_went_backwards', byMs: 5 });
  assert.deepEqual(seen, ['snapshot_imported', 'refresh_started', 'clock_went_backwards']);
  let metrics = await otel.metrics();
  const gauge = point(metrics.get(INSTRUMENTS.remainingLifetime));
  assert.equal(gauge.value, 10);
  assert.equal(gauge.attributes['service.component'], 'billing');
  assert.equal(otel.spans().length, 0);
  clock.advance(2000);
  telemetry.close();
  assert.equal(otel.spans().length, 1, 'the open span is ended at close');
  assert.deepEqual(otel.spans()[0].duration, [2, 0], 'ended at the clock\'s time');
  clock.advance(3000);
  metrics = await otel.metrics();
  // The SDK keeps a cumulative gauge's last value: the callback no longer observes 5 s.
  assert.equal(point(metrics.get(INSTRUMENTS.remainingLifetime)).value, 10, 'no observation after close');
  telemetry.onEvent({ ...actor, type: 'token_invalidated', expiresAt: 0 });
  assert.equal(seen.length, 4, 'events still pass through after close');
  await otel.shutdown();
});

test('without @opentelemetry/api: the main entry never loads it; tokenwell/otel needs it only for the global providers', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const script = `
    const tokenwell = require('./index.js');
    const loaded = Object.keys(require.cache).filter((p) => p.includes('opentelemetry'));
    if (loaded.length) throw new Error('loaded: ' + loaded.join());
    if (Object.keys(require.cache).some((p) => p.endsWith('otel.js'))) throw new Error('otel.js loaded by the main entry');
    let resolved = null;
    try { resolved = require.resolve('@opentelemetry/api'); } catch {}
    if (resolved) throw new Error('@opentelemetry/api resolves from the package: ' + resolved);
    const { Telemetry } = require('./lib/otel.js');
    try { new Telemetry(); throw new Error('no error'); } catch (e) {
      if (!/@opentelemetry\\/api is not installed/.test(e.message)) throw e;
    }
    console.log(typeof tokenwell.ServiceAccount);
  `;
  const run = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'function');
});
