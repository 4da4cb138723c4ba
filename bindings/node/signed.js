'use strict';
// tokenwell/signed: the same API as `tokenwell`, with private_key_jwt signing
// by RSA and EC keys (RS256..PS512, ES256, ES384) on every backend.
//
// In Node and Bun the native module signs with every algorithm, so here this
// is `tokenwell` itself. Where the wasm engine serves (TOKENWELL_BACKEND=wasm,
// or no native module for the platform), it loads the signed build
// (wasm/tokenwell_wasm_signed_bg.wasm) instead of the default one, which
// leaves RS/PS/ES signing out to stay small. The signed engine then serves the
// whole process, `tokenwell` imports included (lib/runtime.js).
// Workers, Vercel Edge, Deno and browsers get web/*-signed.mjs through the
// export conditions of `tokenwell/signed`.

const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = require('./index.js');

require('./lib/runtime.js').configure({
  loadBackend: () => require('./lib/backend-node.js').load({ signed: true }),
  signed: true,
});

// Listed one by one, like index.js, so that Node's ESM import finds the names.
module.exports = { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend };
