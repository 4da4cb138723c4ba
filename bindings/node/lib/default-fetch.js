'use strict';
// The `fetch` that sends token requests when the caller brings none: undici's,
// with a dispatcher chosen per request, because Node's global `fetch` ignores
// proxy variables and cannot be given a CA without changing it for the whole
// process.
//
//   https token URL  HTTPS_PROXY / https_proxy set (and the host not in
//                    NO_PROXY): a CONNECT tunnel through it; else direct.
//   http token URL   always direct. The engine allows plain http only on
//                    loopback, and a proxy would see the client's secret in
//                    clear text, so no proxy variable (http_proxy included) and
//                    no global dispatcher is ever used for it.
//
// A `caFile` (or TOKENWELL_CA_FILE) names the only CAs trusted for the token
// endpoint, as in every tokenwell host: the file replaces Node's default trust
// store (bundled roots and NODE_EXTRA_CA_CERTS) for token requests. Without
// one, Node's defaults apply, NODE_EXTRA_CA_CERTS included.

const fs = require('node:fs');
const tls = require('node:tls');
const { X509Certificate } = require('node:crypto');
const { configError } = require('./errors.js');

let undici = null;
/** undici is loaded on the first token request, not at `require('tokenwell')`. */
function loadUndici() {
  undici ??= require('undici');
  return undici;
}

/**
 * The proxy for https URLs, from the process environment at the time of the
 * request: `https_proxy`, else `HTTPS_PROXY` (curl's order). `http_proxy` is
 * not used for https, as in curl and Python.
 */
function httpsProxy(env = process.env) {
  const value = env.https_proxy || env.HTTPS_PROXY;
  return value ? value : undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Reads a CA file (PEM, one or more certificates). `field` names the option or
 * variable it came from in the `config` error thrown when it cannot be used.
 * @returns {string[]} the certificates, PEM
 */
function readCaFile(path, field) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw configError(field, `the CA file ${JSON.stringify(path)} cannot be read (${error.code ?? error.message})`);
  }
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) {
    throw configError(field, `the CA file ${JSON.stringify(path)} holds no PEM certificate`);
  }
  certificates.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw configError(field, `certificate ${i + 1} in the CA file ${JSON.stringify(path)} is not valid (${error.message})`);
    }
  });
  return certificates;
}

/**
 * A `fetch(url, init)` for token requests, with its own connection pools.
 * `caCertificates` (PEM strings, from `readCaFile`), when given, are the only
 * CAs trusted. `close()` closes its connections.
 */
function createDefaultFetch({ caCertificates } = {}) {
  if (process.versions.bun !== undefined) return createBunFetch({ caCertificates });
  const tlsOptions = caCertificates?.length ? { ca: caCertificates } : undefined;
  let direct = null;
  let tunnel = null;
  let closed = false;

  function dispatcherFor(url) {
    const { Agent, EnvHttpProxyAgent } = loadUndici();
    const proxy = url.protocol === 'https:' ? httpsProxy() : undefined;
    if (proxy === undefined) {
      direct ??= new Agent({ connect: tlsOptions });
      return direct;
    }
    if (tunnel?.proxy !== proxy) {
      tunnel?.agent.close().catch(() => {});
      // EnvHttpProxyAgent for its NO_PROXY handling (read from the
      // environment at each request); `httpProxy: ''` so that it can never
      // pick http_proxy for anything.
      const agent = new EnvHttpProxyAgent({
        httpProxy: '',
        httpsProxy: proxy,
        connect: tlsOptions,
        requestTls: tlsOptions,
        proxyTls: tlsOptions,
      });
      tunnel = { proxy, agent };
    }
    return tunnel.agent;
  }

  const fetch = (input, init) => {
    if (closed) return Promise.reject(new Error('the transport was closed'));
    const url = new URL(input instanceof URL ? input.href : String(input));
    return loadUndici().fetch(url, { ...init, dispatcher: dispatcherFor(url) });
  };
  fetch.close = () => {
    closed = true;
    for (const agent of [direct, tunnel?.agent]) agent?.destroy().catch(() => {});
    direct = null;
    tunnel = null;
  };
  return fetch;
}

/**
 * Under Bun, whose `undici` is a shim without dispatchers: Bun's own `fetch`,
 * which reads the proxy variables itself and takes the CA file's
 * certificates as its `tls.ca` extension.
 */
function createBunFetch({ caCertificates } = {}) {
  const tls = caCertificates?.length ? { ca: caCertificates } : undefined;
  let closed = false;
  const fetch = (input, init) => {
    if (closed) return Promise.reject(new Error('the transport was closed'));
    return globalThis.fetch(input, tls ? { ...init, tls } : init);
  };
  fetch.close = () => {
    closed = true;
  };
  return fetch;
}

module.exports = { createDefaultFetch, readCaFile, httpsProxy };
