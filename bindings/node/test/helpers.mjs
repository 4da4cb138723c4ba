// Shared test helpers: case conversion, the canonical shape of the conformance
// format, the subset matcher, a virtual clock and a scripted token server.

import http from 'node:http';
import { TokenError } from '../index.js';

export const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const camel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/** Top-level keys to camelCase (engine options as a JS caller writes them). */
export function camelKeys(object) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [camel(k), v]));
}

/** The binding's output in the conformance format's canonical (snake_case) shape. */
export function canonical(value) {
  if (value instanceof TokenError) {
    const out = {
      kind: value.kind,
      fault: value.fault,
      retryable: value.retryable,
      retry_at: value.retryAt ? value.retryAt.getTime() : null,
      status: value.status ?? null,
      oauth_error: value.oauthError ?? null,
      description: value.description ?? null,
    };
    if (value.field !== undefined) out.field = snake(value.field);
    if (value.problem !== undefined) out.problem = value.problem;
    return out;
  }
  if (value instanceof Date) return value.getTime();
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), canonical(v)]));
  }
  return value;
}

/** The README's subset match: returns the path of the first mismatch, or null. */
export function subsetMismatch(expected, actual, path = '') {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${JSON.stringify(actual)}`;
    if (expected.length !== actual.length) {
      return `${path}: expected ${expected.length} elements, got ${actual.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const m = subsetMismatch(expected[i], actual[i], `${path}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      return `${path}: expected an object, got ${JSON.stringify(actual)}`;
    }
    for (const [key, ev] of Object.entries(expected)) {
      if (!(key in actual)) return `${path}.${key}: missing in actual`;
      const m = subsetMismatch(ev, actual[key], `${path}.${key}`);
      if (m) return m;
    }
    return null;
  }
  return expected === actual ? null : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}

/** A clock the test moves by hand. */
export function virtualClock(start = 1_700_000_000_000) {
  let now = start;
  const clock = () => now;
  clock.set = (t) => {
    now = t;
  };
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

/**
 * A scripted token server on 127.0.0.1 for faults and counting (not a real
 * authorization server). `script(request, n)` returns {status, headers, body}
 * or a promise of one; the default issues `at-<n>` for 300 s.
 */
export async function startScriptedTokenServer(script) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const request = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      requests.push(request);
      const answer = (await script?.(request, requests.length)) ?? {
        status: 200,
        body: { access_token: `at-${requests.length}`, token_type: 'bearer', expires_in: 300 },
      };
      if (answer.destroy) {
        req.socket.destroy();
        return;
      }
      const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/oauth2/token`,
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
