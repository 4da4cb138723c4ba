'use strict';
// The entry of runtimes without Node's APIs (workerd, edge-light, deno,
// browser): the wasm engine, from a WebAssembly.Module the ESM entry in web/
// obtained the way its runtime allows, and the web host services.

const runtime = require('./runtime.js');
const { createWasmBackend } = require('./wasm-backend.js');

/**
 * Configures the runtime with `wasmModule` and returns the public API.
 * `signedGlue`: `wasmModule` is the signed build and this its glue (the
 * `tokenwell/signed` entries), which then serves the whole program
 * (lib/runtime.js). The module is instantiated on first use.
 */
function start(wasmModule, options = {}) {
  const signed = options.signedGlue !== undefined;
  runtime.configure({
    host: require('./host-web.js'),
    loadBackend: () => createWasmBackend(wasmModule, signed ? { signedGlue: options.signedGlue } : {}),
    signed,
  });
  return require('./api.js');
}

module.exports = { start };
