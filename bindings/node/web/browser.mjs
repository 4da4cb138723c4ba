// The `browser` export condition: the wasm engine, fetched beside this file
// (bundlers such as Vite and webpack emit the asset for `new URL(..., import.meta.url)`).
import web from '../lib/web.js';

const url = new URL('../wasm/tokenwell_wasm_bg.wasm', import.meta.url);
const response = await fetch(url);
const wasmModule =
  typeof WebAssembly.compileStreaming === 'function' && response.headers.get('content-type') === 'application/wasm'
    ? await WebAssembly.compileStreaming(response)
    : await WebAssembly.compile(await response.arrayBuffer());
const api = web.start(wasmModule);

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
