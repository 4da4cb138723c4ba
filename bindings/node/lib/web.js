'use strict';
// The entry of runtimes without Node's APIs (workerd, edge-light, deno,
// browser): the wasm engine, from a WebAssembly.Module the ESM entry in web/
// obtained the way its runtime allows, and the web host services.

const runtime = require('./runtime.js');
const { createWasmBackend } = require('./wasm-backend.js');

/** Configures the runtime with `wasmModule` (once) and returns the public API. */
function start(wasmModule) {
  runtime.configure({ host: require('./host-web.js'), backend: createWasmBackend(wasmModule) });
  return require('./api.js');
}

module.exports = { start };
