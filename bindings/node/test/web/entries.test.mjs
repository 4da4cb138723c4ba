// The edge-light and browser entries (web/edge-light*.mjs, web/browser*.mjs),
// each of `tokenwell` and `tokenwell/signed`, bundled the way those platforms
// bundle (esbuild with the export condition), then run for real against a
// loopback token server on 127.0.0.1:
//
//   edge-light  Vercel's edge-runtime (the Edge Runtime VM, web APIs only):
//               the `.wasm?module` import becomes the WebAssembly.Module the
//               platform hands the function (compiled in the function's realm,
//               from the file, as Vercel does at deploy)
//   browser     Deno, with the bundle's `new URL('../wasm/...', import.meta.url)`
//               asset beside it, fetched and compiled as a browser does
//
// and `tokenwell/signed` unbundled in Deno (its `deno` condition; the plain
// entry runs there in examples/node-worker).
//
// The tools come from test-tools/ (`make runtimes`); run by `make test-web`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startScriptedTokenServer } from '../helpers.mjs';

const pkg = fileURLToPath(new URL('../..', import.meta.url));
const tools = path.join(pkg, 'test-tools');
const requireTool = createRequire(path.join(tools, 'package.json'));
const esbuild = requireTool('esbuild');
const { EdgeRuntime } = requireTool('edge-runtime');
const deno = path.join(tools, 'node_modules', '.bin', 'deno');
const p256Jwk = fs.readFileSync(fileURLToPath(new URL('../../../../tests/conformance/keys/test-only-p256.jwk.json', import.meta.url)), 'utf8');

/** A folder with node_modules/tokenwell -> this package, as an app that installed it has. */
function appDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-web-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(pkg, path.join(dir, 'node_modules', 'tokenwell'), 'dir');
  return dir;
}

/**
 * The app's code: a token for a client secret (plain entry) or a private key
 * (signed entry), and what the plain entry says of a private key.
 */
function appSource(specifier, tokenUrl) {
  const signed = specifier === 'tokenwell/signed';
  return `
import { ServiceAccount, TokenError, engineBackend } from ${JSON.stringify(specifier)};
export async function main() {
  const account = new ServiceAccount({
    tokenUrl: ${JSON.stringify(tokenUrl)},
    clientId: 'edge-app',
    ${signed ? `privateKey: ${JSON.stringify(p256Jwk)},` : "clientSecret: 'edge-secret',"}
  });
  let token;
  try {
    token = await account.getToken();
  } finally {
    account.close();
  }
  let refused = null;
  try {
    new ServiceAccount({ tokenUrl: ${JSON.stringify(tokenUrl)}, clientId: 'c', privateKey: ${JSON.stringify(p256Jwk)} }).close();
  } catch (error) {
    refused = { isTokenError: error instanceof TokenError, kind: error.kind, field: error.field, problem: error.problem };
  }
  return { backend: engineBackend(), token, refused };
}`;
}

/** Bundles `entry` for `condition` as esbuild does for that platform; `.wasm?module` imports read `globalThis.__wasm[name]`. */
async function bundle(dir, entry, condition, format) {
  const outfile = path.join(dir, 'out', 'bundle.js');
  const wasmModules = [];
  await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: dir,
    bundle: true,
    format,
    platform: 'neutral',
    conditions: [condition],
    mainFields: ['module', 'main'],
    outfile,
    logLevel: 'silent',
    plugins: [
      {
        name: 'vercel-wasm-module',
        setup(build) {
          build.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({
            path: path.resolve(args.resolveDir, args.path.replace(/\?module$/, '')),
            namespace: 'wasm-module',
          }));
          build.onLoad({ filter: /.*/, namespace: 'wasm-module' }, (args) => {
            wasmModules.push(args.path);
            return { contents: `export default globalThis.__wasm[${JSON.stringify(path.basename(args.path))}];`, loader: 'js' };
          });
        },
      },
    ],
  });
  return { code: fs.readFileSync(outfile, 'utf8'), outfile, wasmModules };
}

async function tokenServer() {
  return startScriptedTokenServer(() => ({
    status: 200,
    body: { access_token: 'edge-token', token_type: 'bearer', expires_in: 300 },
  }));
}

function checkRun(result, server, specifier) {
  assert.equal(result.backend, 'wasm');
  assert.equal(result.token, 'edge-token');
  assert.equal(server.requests.length, 1);
  const body = server.requests[0].body;
  if (specifier === 'tokenwell/signed') {
    assert.match(body, /client_assertion=ey/, 'the signed entry signs with the P-256 key');
    assert.equal(result.refused, null, 'the signed engine takes a private key');
  } else {
    assert.equal(server.requests[0].headers.authorization?.startsWith('Basic '), true);
    assert.deepEqual(
      [result.refused?.isTokenError, result.refused?.kind, result.refused?.field],
      [true, 'config', 'privateKey'],
    );
    assert.match(result.refused.problem, /import from "tokenwell\/signed"/);
  }
}

test('deno: tokenwell/signed takes the deno condition (a source-phase import of the signed engine) and signs', async () => {
  const server = await tokenServer();
  const dir = appDir();
  try {
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', dependencies: { tokenwell: '*' } }));
    fs.writeFileSync(path.join(dir, 'app.mjs'), appSource('tokenwell/signed', server.url));
    fs.writeFileSync(path.join(dir, 'main.mjs'), "import { main } from './app.mjs';\nconsole.log(JSON.stringify(await main()));\n");
    const run = await promisify(execFile)(
      deno,
      ['run', '--quiet', `--allow-read=${dir},${pkg}`, '--allow-net=127.0.0.1', '--no-prompt', path.join(dir, 'main.mjs')],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_DIR: path.join(dir, '.deno') }, timeout: 60_000 },
    );
    checkRun(JSON.parse(run.stdout.trim().split('\n').pop()), server, 'tokenwell/signed');
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const specifier of ['tokenwell', 'tokenwell/signed']) {
  const wasmFile = specifier === 'tokenwell' ? 'tokenwell_wasm_bg.wasm' : 'tokenwell_wasm_signed_bg.wasm';

  test(`edge-light: ${specifier} gets a token in Vercel's edge-runtime`, async () => {
    const server = await tokenServer();
    const dir = appDir();
    try {
      fs.writeFileSync(path.join(dir, 'app.mjs'), appSource(specifier, server.url));
      fs.writeFileSync(path.join(dir, 'entry.mjs'), "import { main } from './app.mjs';\nglobalThis.__result = main();\n");
      const { code, wasmModules } = await bundle(dir, './entry.mjs', 'edge-light', 'iife');
      assert.deepEqual(wasmModules.map((f) => path.relative(pkg, f)), [path.join('wasm', wasmFile)]);
      assert.doesNotMatch(code, /require\(["']node:/, 'the edge-light bundle needs no Node module');
      const glues = code.match(/function initSync\(/g)?.length;
      assert.equal(glues, specifier === 'tokenwell' ? 1 : 2, 'the plain bundle carries one glue; the signed one both');
      const bytes = fs.readFileSync(path.join(pkg, 'wasm', wasmFile));
      const runtime = new EdgeRuntime();
      assert.equal(typeof runtime.context.EdgeRuntime, 'string', 'inside the Edge Runtime VM');
      // What the platform does at deploy: the function receives a compiled module (of its realm).
      runtime.context.__wasmBytes = bytes;
      runtime.evaluate(
        `globalThis.__wasm = { ${JSON.stringify(wasmFile)}: new WebAssembly.Module(globalThis.__wasmBytes) }; delete globalThis.__wasmBytes;`,
      );
      runtime.evaluate(code);
      const result = await runtime.context.__result;
      checkRun(result, server, specifier);
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`browser: ${specifier}, bundled with the browser condition, gets a token (run in Deno)`, async () => {
    const server = await tokenServer();
    const dir = appDir();
    try {
      fs.writeFileSync(path.join(dir, 'app.mjs'), appSource(specifier, server.url));
      fs.writeFileSync(
        path.join(dir, 'entry.mjs'),
        "import { main } from './app.mjs';\nconsole.log(JSON.stringify(await main()));\n",
      );
      const { code, outfile } = await bundle(dir, './entry.mjs', 'browser', 'esm');
      // The asset the bundle fetches, where a bundler's asset step puts it.
      const asset = code.match(/new URL\("([^"]+\.wasm)", import\.meta\.url\)/);
      assert.ok(asset, 'the browser bundle fetches its wasm engine beside itself');
      assert.ok(asset[1].endsWith(wasmFile), asset[1]);
      const target = path.resolve(path.dirname(outfile), asset[1]);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(path.join(pkg, 'wasm', wasmFile), target);
      // Asynchronously: the token server answers from this process.
      const run = await promisify(execFile)(
        deno,
        ['run', '--quiet', '--no-config', `--allow-read=${dir}`, '--allow-net=127.0.0.1', outfile],
        { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_DIR: path.join(dir, '.deno') }, timeout: 60_000 },
      );
      checkRun(JSON.parse(run.stdout.trim().split('\n').pop()), server, specifier);
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
