// End-to-end: callers hammer 5-second tokens (the `short_ttl` clients) for
// TOKENWELL_E2E_SOAK_SECONDS (default 30) on both servers at once. Every call
// succeeds, and no caller ever waits on the network after the first token:
// every refresh after the first is a background refresh-ahead (a caller waits
// only when a refresh has reason `initial`, `expired` or `invalidated`), and
// there is never more than one refresh in flight.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { SERVERS, Client, account, e2e, ofType } from './servers.mjs';

const unhandled = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));
after(() => assert.deepEqual(unhandled, [], 'no unhandled rejection'));

const SECONDS = Number(process.env.TOKENWELL_E2E_SOAK_SECONDS || 30);
const CALLERS = 4;

async function soak(client) {
  const server = client.server;
  const { account: a, events } = account(client.defaultOptions());
  try {
    const first = await a.token();
    const acquired0 = ofType(events, 'token_acquired')[0];
    const lifetime = acquired0.expiresAt - acquired0.at;
    assert.ok(lifetime <= 5_000, `${server}: short_ttl token lives ${lifetime} ms`);
    assert.equal(first.expiresAt.getTime(), acquired0.expiresAt);

    let calls = 0;
    let slowest = 0;
    const failures = [];
    const deadline = Date.now() + SECONDS * 1000;
    // Each caller yields to the event loop between calls (a cache hit resolves
    // in a microtask, which would starve the I/O of the background refresh).
    const caller = async () => {
      while (Date.now() < deadline) {
        const t0 = performance.now();
        try {
          const token = await a.getToken();
          if (!token) failures.push('an empty token');
        } catch (error) {
          failures.push(`${error.kind}: ${error.message}`);
        }
        slowest = Math.max(slowest, performance.now() - t0);
        calls++;
        await yieldToEventLoop();
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));

    assert.deepEqual(failures.slice(0, 3), [], `${server}: ${failures.length} of ${calls} calls failed`);
    const reasons = ofType(events, 'refresh_started').map((e) => e.reason);
    assert.equal(reasons[0], 'initial', server);
    assert.ok(
      reasons.slice(1).every((r) => r === 'ahead'),
      `${server}: a caller waited on the network: ${reasons.join(' ')}`,
    );
    const acquired = ofType(events, 'token_acquired').length;
    const expectedMin = Math.floor((SECONDS * 1000) / lifetime);
    assert.ok(acquired > expectedMin, `${server}: only ${acquired} tokens in ${SECONDS} s of ${lifetime} ms tokens`);
    assert.equal(ofType(events, 'refresh_failed').length, 0, `${server}: a refresh failed`);
    // Single flight: every refresh finished before the next one started.
    let open = 0;
    for (const event of events) {
      if (event.type === 'refresh_started') open++;
      else if (event.type === 'token_acquired' || event.type === 'refresh_failed') open--;
      assert.ok(open >= 0 && open <= 1, `${server}: two refreshes in flight at ${JSON.stringify(event)}`);
    }
    console.log(
      `${server}: ${calls} calls by ${CALLERS} callers in ${SECONDS} s, ${acquired} tokens of ${lifetime} ms, ` +
        `0 failures, every refresh ahead of expiry; slowest call ${slowest.toFixed(1)} ms`,
    );
  } finally {
    a.close();
  }
}

e2e(
  `5-second tokens are refreshed ahead for ${SECONDS} seconds on both servers at once`,
  { timeout: SECONDS * 1000 + 120_000 },
  async (s) => {
    // allSettled: both soaks run to their end, and both failures are reported.
    const outcomes = await Promise.allSettled(SERVERS.map((server) => soak(Client.of(s, server, 'short_ttl'))));
    const errors = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason);
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
  },
);
