// The `edge-light` export condition: the wasm engine, always.
// Vercel Edge (and Next.js middleware) imports a .wasm file with the ?module suffix as a compiled WebAssembly.Module: edge functions may not compile wasm from bytes at run time.
import wasmModule from '../wasm/tokenwell_wasm_bg.wasm?module';
import web from '../lib/web.js';

const api = web.start(wasmModule);

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
