// The `deno` export condition of `tokenwell/signed`: the signed wasm engine
// (RS/PS/ES private_key_jwt signing; web/deno.mjs has the smaller default one), always (Deno loads Node-API
// addons only with --allow-ffi; the wasm engine needs no permission).
// A source-phase import gives the compiled WebAssembly.Module, with no read
// permission and no compile from bytes.
import source wasmModule from '../wasm/tokenwell_wasm_signed_bg.wasm';
import signedGlue from '../wasm/tokenwell_wasm_signed.js';
import web from '../lib/web.js';

const api = web.start(wasmModule, { signedGlue });

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
