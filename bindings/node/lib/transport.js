'use strict';
// Sends one token request the engine asked for, with `fetch`, and turns every
// outcome into what the engine takes: a response (status, headers, body read
// up to the engine's size limit) or a transport failure of a given kind.
// It never throws and never decides anything: classification is the engine's.

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT',
  'ETIMEDOUT',
]);
/**
 * The server's certificate could not be verified: OpenSSL's verification
 * results as Node names them, and Node's own host name check. Reported as
 * `tls`, which the engine holds as a configuration fault (trust the CA, or fix
 * the URL) instead of retrying it as a network blip.
 */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);
const IO_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_BODY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/** Rejects when `signal` aborts, so a `fetch` that ignores its signal cannot hang us. */
function untilAborted(promise, signal) {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** `chunks` joined, `size` bytes at most. */
function concatBytes(chunks, size) {
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= size) break;
    const part = chunk.subarray(0, size - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** The body, read until `limit + 1` bytes at most: enough for the engine to see it is too large. */
async function readLimited(response, limit, signal) {
  const stream = response.body;
  if (stream == null) {
    if (typeof response.arrayBuffer !== 'function') return new Uint8Array(0);
    const all = new Uint8Array(await untilAborted(response.arrayBuffer(), signal));
    return all.subarray(0, limit + 1);
  }
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await untilAborted(reader.read(), signal);
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > limit) break;
    }
  } finally {
    if (size > limit || signal.aborted) reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
  return concatBytes(chunks, Math.min(size, limit + 1));
}

function codeOf(error) {
  for (let e = error, depth = 0; e != null && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/**
 * The certificate failure anywhere in the cause chain, as text (the `fetch
 * failed` around it says nothing more), or null when there is none.
 */
function certificateFailure(error) {
  for (let e = error, depth = 0; e != null && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string' && TLS_CODES.has(e.code)) return `${e.message} (${e.code})`;
  }
  return null;
}

function describe(error) {
  if (error == null) return 'unknown error';
  const parts = [];
  for (let e = error, depth = 0; e != null && depth < 3; e = e.cause, depth++) {
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    parts.push(typeof e.code === 'string' && !text.includes(e.code) ? `${text} (${e.code})` : text);
  }
  return parts.join(' <- ');
}

/**
 * `AbortSignal.any(signals)`, or the same built by hand where the runtime
 * lacks it (Vercel's Edge Runtime: test/web/entries.test.mjs runs there).
 */
function anySignal(signals) {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const controller = new AbortController();
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return controller.signal;
  }
  const onAbort = (event) => controller.abort(event.target.reason);
  for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
  // The timeout fires in the end, so the long-lived close signal keeps no listener.
  controller.signal.addEventListener(
    'abort',
    () => signals.forEach((signal) => signal.removeEventListener('abort', onAbort)),
    { once: true },
  );
  return controller.signal;
}

/**
 * Sends `request` (from the engine) with `fetchImpl`: its method (`POST` for
 * a token request, `GET` without a body or `Content-Type` for the issuer's
 * metadata document), headers and body as given.
 * @returns {Promise<{type: 'response', status, headers, body} | {type: 'transport', kind, message}>}
 */
async function sendTokenRequest(fetchImpl, request, { maxResponseBytes, closeSignal }) {
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = closeSignal ? anySignal([timeout, closeSignal]) : timeout;
  let stage = 'connect';
  const bodiless = request.method === 'GET' || request.method === 'HEAD';
  try {
    const response = await untilAborted(
      Promise.resolve().then(() =>
        fetchImpl(request.url, {
          method: request.method,
          headers: bodiless ? request.headers.filter(([n]) => n.toLowerCase() !== 'content-type') : request.headers,
          // A GET (issuer discovery) carries no body: `fetch` refuses one, even empty.
          ...(bodiless ? {} : { body: request.body }),
          redirect: 'manual',
          signal,
        }),
      ),
      signal,
    );
    if (response == null || typeof response.status !== 'number') {
      return { type: 'transport', kind: 'other', message: 'fetch did not return a Response' };
    }
    stage = 'read';
    const body = await readLimited(response, maxResponseBytes, signal);
    const headers = response.headers == null ? [] : Array.from(response.headers, ([n, v]) => [n, v]);
    return { type: 'response', status: response.status, headers, body };
  } catch (error) {
    // A failure to reach the endpoint names its host and port (never more of the URL), as in Python.
    const at = endpoint(request.url);
    if (timeout.aborted) {
      return { type: 'transport', kind: 'timeout', message: `${at}: no complete response within ${request.timeoutMs} ms` };
    }
    if (closeSignal?.aborted) return { type: 'transport', kind: 'other', message: 'aborted: the account was closed' };
    const certificate = certificateFailure(error);
    if (certificate !== null) return { type: 'transport', kind: 'tls', message: `${at}: ${certificate}` };
    const code = codeOf(error);
    let kind = stage === 'read' ? 'io' : 'other';
    if (CONNECT_CODES.has(code)) kind = 'connect';
    else if (IO_CODES.has(code)) kind = 'io';
    else if (TIMEOUT_CODES.has(code)) kind = 'timeout';
    const message = describe(error);
    return { type: 'transport', kind, message: kind === 'other' ? message : `${at}: ${message}` };
  }
}

/** `host:port` of a URL (the scheme's default port when none is given). */
function endpoint(url) {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`; // IPv6 hostnames keep their brackets
  } catch {
    return 'the token endpoint';
  }
}

module.exports = { sendTokenRequest, readLimited, TLS_CODES };
