'use strict';
// The public API, the same in every runtime; the entry point has configured
// the runtime (lib/runtime.js) before this is loaded.

const { ServiceAccount } = require('./service-account.js');
const { TokenCache } = require('./token-cache.js');
const { TokenError, ERROR_KINDS } = require('./errors.js');
const { engine } = require('./runtime.js');

/** The engine backend serving this process: `'native'` (napi-rs) or `'wasm'` (wasm-bindgen). */
function engineBackend() {
  return engine().name;
}

module.exports = { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend };
