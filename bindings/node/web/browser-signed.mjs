// The `browser` export condition of `tokenwell/signed`: the signed wasm engine
// (RS/PS/ES private_key_jwt signing; web/browser.mjs has the smaller default one), fetched beside this file
// (bundlers such as Vite and webpack emit the asset for `new URL(..., import.meta.url)`).
import signedGlue from '../wasm/tokenwell_wasm_signed.js';
import web from '../lib/web.js';

const url = new URL('../wasm/tokenwell_wasm_signed_bg.wasm', import.meta.url);
const response = await fetch(url);
const wasmModule =
  typeof WebAssembly.compileStreaming === 'function' && response.headers.get('content-type') === 'application/wasm'
    ? await WebAssembly.compileStreaming(response)
    : await WebAssembly.compile(await response.arrayBuffer());
const api = web.start(wasmModule, { signedGlue });

export const { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineBackend } = api;
export default api;
