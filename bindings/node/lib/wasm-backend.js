'use strict';
// The wasm-bindgen build of the engine (crate bindings/wasm) as an engine
// backend: the same internal interface as the napi-rs module, from the glue
// that `wasm-bindgen --target no-modules` generates (wasm/tokenwell_wasm.js).
//
// The module is instantiated synchronously from a compiled WebAssembly.Module:
// Workers and Vercel Edge refuse to compile wasm from bytes at run time, so
// their entry points import the .wasm file as a module; Node and Bun compile it
// from the file's bytes (lib/backend-node.js).
//
// Two builds (scripts/build-wasm.sh): the default engine, without RS/PS/ES
// signing (a private key is a configuration error naming `tokenwell/signed`),
// and the signed one, which `tokenwell/signed` loads. Each has its own glue,
// which holds its instance: one process may use both.

/** The file names of each build, in wasm/. */
const WASM_FILES = Object.freeze({
  default: 'tokenwell_wasm_bg.wasm',
  signed: 'tokenwell_wasm_signed_bg.wasm',
});

/**
 * @param {WebAssembly.Module} wasmModule the compiled wasm/tokenwell_wasm_bg.wasm
 *   (or wasm/tokenwell_wasm_signed_bg.wasm, with `signedGlue`)
 * @param {{ signedGlue?: object }} [options] for the signed build, its glue
 *   (wasm/tokenwell_wasm_signed.js), which the `tokenwell/signed` entries
 *   import themselves: a bundle of plain `tokenwell` carries one glue only
 * @returns the backend: `{ name: 'wasm', signed, createTokenCache, ... }`
 */
function createWasmBackend(wasmModule, options = {}) {
  const signed = options.signedGlue !== undefined;
  const glue = signed ? options.signedGlue : require('../wasm/tokenwell_wasm.js');
  glue.initSync({ module: wasmModule });
  return Object.freeze({
    name: 'wasm',
    // Whether this engine signs with private keys (RS/PS/ES); the native module always does.
    signed,
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

module.exports = { createWasmBackend, WASM_FILES };
