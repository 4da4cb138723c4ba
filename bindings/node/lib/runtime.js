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

let backend = null;
let loadBackend = null;
let hostServices = null;

/** Called by the entry point: a backend (or a function that loads one) and the host services. */
function configure(options) {
  if (options.backend !== undefined) backend = options.backend;
  if (options.loadBackend !== undefined) loadBackend = options.loadBackend;
  if (options.host !== undefined) hostServices = options.host;
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
