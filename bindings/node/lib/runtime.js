'use strict';
// What this runtime gives the shared JS layer, chosen once per process by the
// package's entry point (index.js for Node and Bun, web/*.mjs for workerd,
// edge-light, deno and browser):
//
//   engine()  the engine backend: the napi-rs module or the wasm-bindgen module,
//             both serving one internal interface (createTokenCache, envPlan,
//             createTokenCacheFromEnv, retryRequest, closedError,
//             createSecretFileWatch, tryLockFile (native only), errorKinds,
//             and the cache's methods), loaded on first use
//   host()    what the runtime offers besides: files (secret file, CA file, cron
//             cache), the default transport, warnings, the process environment
//             (lib/host-node.js, lib/host-web.js)

//
// Two entries may configure one process: `tokenwell` and `tokenwell/signed`
// share this module (and so one API). The signed engine wins: once an entry
// asks for it (`signed: true`), a later plain entry changes nothing, and a wasm
// engine without RS/PS/ES signing that is already in use serves only what was
// created with it (each cache keeps its engine instance); what is created from
// then on uses the signed engine. The native module signs with every algorithm.

let backend = null;
let loadBackend = null;
let hostServices = null;
let signed = false;

/**
 * Called by the entry point: a backend (or a function that loads one), the
 * host services, and whether the entry is `tokenwell/signed` (`signed: true`).
 */
function configure(options) {
  if (options.host !== undefined) hostServices = options.host;
  if (signed && options.signed !== true) return;
  const upgrade = options.signed === true && !signed;
  if (options.signed === true) signed = true;
  if (options.backend !== undefined) backend = options.backend;
  if (options.loadBackend !== undefined) {
    loadBackend = options.loadBackend;
    if (upgrade && backend !== null && backend.signed === false) backend = null;
  }
}

/** The engine backend, loaded on first use. */
function engine() {
  if (backend === null) {
    if (loadBackend === null) throw new Error('tokenwell: no engine backend was configured (load the package through its entry point)');
    backend = loadBackend();
  }
  return backend;
}

function host() {
  if (hostServices === null) throw new Error('tokenwell: no host was configured (load the package through its entry point)');
  return hostServices;
}

module.exports = { configure, engine, host };
