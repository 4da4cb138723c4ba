// The `deno` export condition: the wasm engine, always (Deno loads Node-API
// addons only with --allow-ffi; the wasm engine needs no permission).
// A source-phase import gives the compiled WebAssembly.Module, with no read
// permission and no compile from bytes.
import source wasmModule from '../wasm/tokenwell_wasm_bg.wasm';
import web from '../lib/web.js';

const api = web.start(wasmModule);

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
