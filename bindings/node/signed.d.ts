// tokenwell/signed: the API of `tokenwell`, with RS/PS/ES private_key_jwt
// signing in the wasm engine too (see signed.js).
export * from './index';
