'use strict';
// The wasm-bindgen build of the engine (crate bindings/wasm) as an engine
// backend: the same internal interface as the napi-rs module, from the glue
// that `wasm-bindgen --target no-modules` generates (wasm/tokenwell_wasm.js).
//
// The module is instantiated synchronously from a compiled WebAssembly.Module:
// Workers and Vercel Edge refuse to compile wasm from bytes at run time, so
// their entry points import the .wasm file as a module; Node and Bun compile it
// from the file's bytes (lib/backend-node.js).

/**
 * @param {WebAssembly.Module} wasmModule the compiled wasm/tokenwell_wasm_bg.wasm
 * @returns the backend: `{ name: 'wasm', createTokenCache, ... }`
 */
function createWasmBackend(wasmModule) {
  const glue = require('../wasm/tokenwell_wasm.js');
  glue.initSync({ module: wasmModule });
  return Object.freeze({
    name: 'wasm',
    createTokenCache: glue.createTokenCache,
    envPlan: glue.envPlan,
    createTokenCacheFromEnv: glue.createTokenCacheFromEnv,
    retryRequest: glue.retryRequest,
    closedError: glue.closedError,
    secretFileCheckIntervalMs: glue.secretFileCheckIntervalMs(),
    createSecretFileWatch: () => new glue.WasmSecretFileWatch(),
    // No flock in wasm: a cron cache file is shared without the cross-process
    // lock (a second process may fetch a token of its own; never a wrong one).
    tryLockFile: null,
    errorKinds: glue.errorKinds,
  });
}

module.exports = { createWasmBackend };
