// The `workerd` export condition of `tokenwell/signed`: the signed wasm engine
// (RS/PS/ES private_key_jwt signing; web/workerd.mjs has the smaller default one).
// workerd (and wrangler, which bundles for it) imports a .wasm file as a compiled WebAssembly.Module: a Worker may not compile wasm from bytes at run time.
import wasmModule from '../wasm/tokenwell_wasm_signed_bg.wasm';
import signedGlue from '../wasm/tokenwell_wasm_signed.js';
import web from '../lib/web.js';

const api = web.start(wasmModule, { signedGlue });

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
