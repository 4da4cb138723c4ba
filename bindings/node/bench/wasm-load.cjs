'use strict';
// One cold load of the wasm engine, in a fresh process (bench.mjs runs it several
// times): compiling the module from its bytes, then instantiating it with the glue.
const fs = require('node:fs');
const path = require('node:path');
const { createWasmBackend } = require('../lib/wasm-backend.js');

const bytes = fs.readFileSync(path.join(__dirname, '..', 'wasm', 'tokenwell_wasm_bg.wasm'));
const t0 = process.hrtime.bigint();
const wasmModule = new WebAssembly.Module(bytes);
const t1 = process.hrtime.bigint();
const backend = createWasmBackend(wasmModule);
const t2 = process.hrtime.bigint();
backend.errorKinds();
process.stdout.write(JSON.stringify({ compileMs: Number(t1 - t0) / 1e6, instantiateMs: Number(t2 - t1) / 1e6 }));
