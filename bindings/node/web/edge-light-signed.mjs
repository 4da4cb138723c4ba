// The `edge-light` export condition of `tokenwell/signed`: the signed wasm engine
// (RS/PS/ES private_key_jwt signing; web/edge-light.mjs has the smaller default one).
// Vercel Edge (and Next.js middleware) imports a .wasm file with the ?module suffix as a compiled WebAssembly.Module: edge functions may not compile wasm from bytes at run time.
import wasmModule from '../wasm/tokenwell_wasm_signed_bg.wasm?module';
import signedGlue from '../wasm/tokenwell_wasm_signed.js';
import web from '../lib/web.js';

const api = web.start(wasmModule, { signedGlue });

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
