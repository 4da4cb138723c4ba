'use strict';
// Chooses the engine backend in Node and Bun.
//
//   TOKENWELL_BACKEND=wasm    the wasm-bindgen build (wasm/), always: the default
//                             engine, or the signed one for `tokenwell/signed`
//   TOKENWELL_BACKEND=native  the native module, or an error saying why none loads
//   unset (or auto)           the native module if one loads, else wasm
//
// The native module is looked for, in order: $TOKENWELL_NATIVE_PATH;
// tokenwell.<platform>.node beside package.json (a build from source in the
// repository: make -C bindings/node build); the platform package
// @tokenwell/<platform> (an optional dependency that npm installs only on its
// platform: linux-x64-gnu, linux-arm64-musl, ...). Nothing is ever compiled
// at install or at load.

const fs = require('node:fs');
const path = require('node:path');
const { platformTarget, nativeFileName } = require('./platform.js');
const { createWasmBackend, WASM_FILES } = require('./wasm-backend.js');

const pkgDir = path.join(__dirname, '..');
const BACKENDS = ['auto', 'native', 'wasm'];

const INTERFACE = [
  'createTokenCache',
  'envPlan',
  'createTokenCacheFromEnv',
  'retryRequest',
  'closedError',
  'secretFileCheckIntervalMs',
  'NativeSecretFileWatch',
  'tryLockFile',
  'errorKinds',
];

function nativeBackend(exports, from) {
  const missing = INTERFACE.filter((name) => typeof exports?.[name] !== 'function');
  if (missing.length > 0) throw new Error(`not a tokenwell native module (no ${missing.join(', ')})`);
  const SecretFileWatch = exports.NativeSecretFileWatch;
  return Object.freeze({
    name: 'native',
    from,
    createTokenCache: exports.createTokenCache,
    envPlan: exports.envPlan,
    createTokenCacheFromEnv: exports.createTokenCacheFromEnv,
    retryRequest: exports.retryRequest,
    closedError: exports.closedError,
    secretFileCheckIntervalMs: exports.secretFileCheckIntervalMs(),
    createSecretFileWatch: () => new SecretFileWatch(),
    // flock(2) on a descriptor: the cron cache's cross-process lock (Python's too).
    tryLockFile: exports.tryLockFile,
    errorKinds: exports.errorKinds,
  });
}

/** The native module, or `{ failures }`: why each candidate did not load. */
function tryNative() {
  const failures = [];
  const candidates = [];
  if (process.env.TOKENWELL_NATIVE_PATH) candidates.push({ file: process.env.TOKENWELL_NATIVE_PATH, must: true });
  candidates.push({ file: path.join(pkgDir, nativeFileName()), must: false });
  for (const { file, must } of candidates) {
    if (!must && !fs.existsSync(file)) continue;
    try {
      return { backend: nativeBackend(require(file), file) };
    } catch (error) {
      failures.push(`${file}: ${error.message.split('\n')[0]}`);
    }
  }
  const pkg = `@tokenwell/${platformTarget()}`;
  try {
    return { backend: nativeBackend(require(pkg), pkg) };
  } catch (error) {
    const missing = error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(pkg);
    failures.push(missing ? `${pkg} is not installed` : `${pkg}: ${error.message.split('\n')[0]}`);
    return { failures, loadFailed: !missing || failures.length > 1 };
  }
}

function wasmBackend(signed) {
  const file = path.join(pkgDir, 'wasm', signed ? WASM_FILES.signed : WASM_FILES.default);
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(
      `tokenwell: the wasm engine ${file} is missing (${error.code ?? error.message}). ` +
        'In the repository, build it with `make -C bindings/node build`; an installed package ships it.',
    );
  }
  const options = signed ? { signedGlue: require('../wasm/tokenwell_wasm_signed.js') } : {};
  return createWasmBackend(new WebAssembly.Module(bytes), options);
}

/** The backend; `signed`: for `tokenwell/signed` (the wasm engine with RS/PS/ES signing). */
function load({ signed = false } = {}) {
  const wanted = process.env.TOKENWELL_BACKEND || 'auto';
  if (!BACKENDS.includes(wanted)) {
    throw new Error(`tokenwell: TOKENWELL_BACKEND must be one of ${BACKENDS.join(', ')} (got ${JSON.stringify(wanted)})`);
  }
  if (wanted === 'wasm') return wasmBackend(signed);
  const native = tryNative();
  if (native.backend) return native.backend;
  if (wanted === 'native') {
    throw new Error(`tokenwell: TOKENWELL_BACKEND=native but no native module loads:\n  ${native.failures.join('\n  ')}`);
  }
  // A binary that exists but cannot load (a glibc too old, a wrong
  // architecture) is worth a word; a platform without one is the normal case.
  if (native.loadFailed) {
    process.emitWarning(`tokenwell: using the wasm engine: ${native.failures.join('; ')}`);
  }
  return wasmBackend(signed);
}

module.exports = { load };
