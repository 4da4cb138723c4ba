// The `workerd` export condition: the wasm engine, always.
// workerd (and wrangler, which bundles for it) imports a .wasm file as a compiled WebAssembly.Module: a Worker may not compile wasm from bytes at run time.
import wasmModule from '../wasm/tokenwell_wasm_bg.wasm';
import web from '../lib/web.js';

const api = web.start(wasmModule);

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
