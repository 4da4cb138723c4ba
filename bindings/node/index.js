'use strict';
// tokenwell: OAuth 2.0 client credentials tokens for Node services, from one Rust engine.
//
// The entry for Node and Bun. The engine is the native module for this
// platform when one loads, else its wasm build (lib/backend-node.js;
// TOKENWELL_BACKEND=native|wasm chooses). Workers, Vercel Edge, Deno and
// browsers get web/*.mjs through the package's export conditions.

const runtime = require('./lib/runtime.js');

runtime.configure({
  host: require('./lib/host-node.js'),
  loadBackend: () => require('./lib/backend-node.js').load(),
});

const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = require('./lib/api.js');

module.exports = { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend };
