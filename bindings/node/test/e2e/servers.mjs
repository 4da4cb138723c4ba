// Helpers for the end-to-end suite: the Node host (`ServiceAccount`) against
// real authorization servers on 127.0.0.1, Ory Hydra and oidc-provider, started
// by tests/integration/servers/with-servers.sh (which writes servers.json and
// sets TOKENWELL_SERVERS). The Node port of tests/integration/rust/lib.rs.

import { test } from 'node:test';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceAccount } from '../../index.js';

/** The two real servers by name, as keys of servers.json. */
export const SERVERS = ['hydra', 'oidc_provider'];

const REQUIRED = process.env.TOKENWELL_REQUIRE_SERVERS === '1';
const PATH = process.env.TOKENWELL_SERVERS;

let described;
/**
 * The parsed servers.json, or null when the suite runs without the harness (the
 * tests then skip). With TOKENWELL_REQUIRE_SERVERS=1 (set by
 * tests/integration/run.sh) a missing description is a failure, never a skip.
 */
export function servers() {
  if (described !== undefined) return described;
  if (!PATH) {
    if (REQUIRED) throw new Error('TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1');
    described = null;
  } else {
    described = JSON.parse(fs.readFileSync(PATH, 'utf8'));
  }
  return described;
}

/**
 * `node:test`'s `test`, skipped without servers (unless they are required, in
 * which case the test runs and fails in `servers()`); `fn` gets servers.json.
 */
export function e2e(name, options, fn) {
  const skip = !PATH && !REQUIRED ? 'no TOKENWELL_SERVERS: run under tests/integration/run.sh' : false;
  return test(name, { timeout: 120_000, ...options, skip }, () => fn(servers()));
}

/** A client of a server as described in servers.json (a role's entry, or a bulk client). */
export class Client {
  constructor(server, s, c) {
    this.server = server;
    this.tokenUrl = s.token_url;
    this.clientId = c.client_id;
    this.clientSecret = c.client_secret;
    this.authMethod = c.auth_method ?? 'client_secret_basic';
    this.scopes = c.scopes ?? [];
    this.audience = c.audience ?? [];
    this.audienceParameter = s.audience_parameter ?? 'audience';
  }

  /** The client with `role` on `server`. */
  static of(s, server, role) {
    const c = s[server]?.clients?.[role];
    if (c === null || typeof c !== 'object') throw new Error(`no client ${role} on ${server}`);
    return new Client(server, s[server], c);
  }

  /**
   * ServiceAccount options asking for `scopes` and `audiences`: sent as
   * `audience`, or as `extraParams` `resource=` where the server uses RFC 8707.
   */
  options(scopes, audiences) {
    const options = {
      tokenUrl: this.tokenUrl,
      clientId: this.clientId,
      clientSecret: this.clientSecret,
      authMethod: this.authMethod,
      scope: scopes,
    };
    if (this.audienceParameter === 'audience') options.audience = audiences;
    else options.extraParams = audiences.map((a) => [this.audienceParameter, a]);
    return options;
  }

  /** The client's full allowed scopes and audience. */
  defaultOptions() {
    return this.options(this.scopes, this.audience);
  }

  /** Its scopes narrowed to `scopes`, with its audience. */
  optionsFor(scopes) {
    return this.options(scopes, this.audience);
  }
}

/**
 * A ServiceAccount for `options` that records its events and counts the token
 * requests it sends (through an injected `fetch` wrapping the global one; calls
 * of `account.fetch` to other URLs are not counted).
 */
export function account(options) {
  const events = [];
  const requests = { count: 0 };
  const tokenHref = new URL(options.tokenUrl).href;
  const instance = new ServiceAccount({
    ...options,
    onEvent: (event) => events.push(event),
    fetch: (input, init) => {
      if (new URL(input instanceof Request ? input.url : String(input)).href === tokenHref) requests.count++;
      return globalThis.fetch(input, init);
    },
  });
  return { account: instance, events, requests };
}

/** Events of `type` (optionally from index `from` on). */
export const ofType = (events, type, from = 0) => events.slice(from).filter((e) => e.type === type);

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(what, condition, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Runs the real `hydra` CLI ($HYDRA_BIN, else servers.json's hydra.bin); resolves to stdout. */
export function hydraCli(s, args) {
  const bin = process.env.HYDRA_BIN || s.hydra.bin;
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 60_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`hydra ${args.slice(0, 2).join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Hydra's admin URL ($HYDRA_ADMIN_URL, else servers.json). */
export const hydraAdmin = (s) => process.env.HYDRA_ADMIN_URL || s.hydra.admin_url;

/** The claims of a JWT, not verified. */
export function jwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

/** Runs `fn` over `items` with at most `limit` at once; resolves to the results in order. */
export async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
