// Runs the Worker in workerd (the open-source Workers runtime, from the npm
// package `workerd`) the way `wrangler dev` would, without wrangler's
// bundler: the module graph is read from the Worker's imports, the package
// `tokenwell` is resolved through its export conditions (workerd first), and
// workerd gets a config listing each module with its type.
//
// workerd serves on a listening socket this process opened on 127.0.0.1 and
// passes as a file descriptor, so there is no port race and no wait for
// readiness: connections queue until workerd accepts them.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const exampleDir = path.join(here, '..');
const repo = path.join(exampleDir, '..', '..');

/** Conditions in wrangler's order (esbuild's `conditions` for the workerd platform). */
export const WORKERD_CONDITIONS = ['workerd', 'worker', 'browser', 'import', 'default'];

export function workerdBinary() {
  const candidates = [
    process.env.WORKERD,
    path.join(repo, 'bindings/node/test-tools/node_modules/.bin/workerd'),
    path.join(exampleDir, 'node_modules/.bin/workerd'),
  ].filter(Boolean);
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`workerd not found (make -C bindings/node runtimes installs it): ${candidates.join(', ')}`);
  return found;
}

/** The file a package's "exports" gives for `conditions` (first matching key wins, as in Node). */
export function resolveExport(pkgDir, conditions, subpath = '.') {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  let entry = pkg.exports?.[subpath];
  while (entry !== null && typeof entry === 'object') {
    const key = Object.keys(entry).find((k) => conditions.includes(k));
    if (key === undefined) throw new Error(`${pkg.name}: no export for ${conditions.join(', ')}`);
    entry = entry[key];
  }
  if (typeof entry !== 'string') throw new Error(`${pkg.name}: no "exports" entry for ${subpath}`);
  return path.join(pkgDir, entry);
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:source\s+)?(?:[\w*{}\s,]+\s+from\s+)?['"]([^'"]+)['"]/g;
const REQUIRE = /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;

function moduleType(file) {
  if (file.endsWith('.wasm')) return 'wasm';
  if (file.endsWith('.mjs')) return 'esModule';
  if (file.endsWith('.cjs')) return 'commonJsModule';
  // A .js file is CommonJS in a package without "type": "module" (tokenwell), ESM in the example.
  return file.startsWith(path.join(exampleDir, 'src')) ? 'esModule' : 'commonJsModule';
}

/** Every module the Worker loads: relative imports and requires followed; `tokenwell` resolved for workerd. */
export function moduleGraph(entry) {
  const tokenwellDir = fs.realpathSync(path.join(exampleDir, 'node_modules', 'tokenwell'));
  const tokenwellEntry = resolveExport(tokenwellDir, WORKERD_CONDITIONS);
  const modules = new Map();
  const aliases = new Map();
  const visit = (file) => {
    if (modules.has(file)) return;
    const type = moduleType(file);
    modules.set(file, type);
    if (type === 'wasm') return;
    const text = fs.readFileSync(file, 'utf8');
    for (const pattern of [IMPORT, REQUIRE]) {
      for (const [, specifier] of text.matchAll(pattern)) {
        if (specifier === 'tokenwell') {
          aliases.set('tokenwell', tokenwellEntry);
          visit(tokenwellEntry);
        } else if (specifier.startsWith('.')) {
          visit(path.resolve(path.dirname(file), specifier.replace(/\?module$/, '')));
        } else {
          throw new Error(`${file} imports ${specifier}: not available in the Worker`);
        }
      }
    }
  };
  visit(entry);
  return { modules, aliases, tokenwellDir };
}

const capnpString = (text) => JSON.stringify(text);

/**
 * Starts workerd with the Worker at `entry` and `bindings` as its env (text
 * bindings). Returns `{ url, close(), output() }`.
 */
export async function startWorker({ entry = path.join(exampleDir, 'src/worker.js'), bindings = {} } = {}) {
  const { modules, aliases, tokenwellDir } = moduleGraph(entry);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenwell-workerd-'));
  const nameOf = (file) =>
    file.startsWith(tokenwellDir)
      ? `node_modules/tokenwell/${path.relative(tokenwellDir, file)}`
      : // workerd resolves a bare specifier beside the importing module: the Worker's
        // own modules sit at the root, where `tokenwell` names the package's entry.
        path.relative(path.join(exampleDir, 'src'), file);
  const lines = []; // the entry first: workerd's main module
  for (const [file, type] of modules) {
    const name = nameOf(file);
    fs.mkdirSync(path.join(dir, 'm', path.dirname(name)), { recursive: true });
    fs.copyFileSync(file, path.join(dir, 'm', name));
    lines.push(`(name = ${capnpString(name)}, ${type} = embed ${capnpString(`m/${name}`)})`);
    // Vercel's spelling, which the edge-light entry uses, names the same module.
    if (type === 'wasm') lines.push(`(name = ${capnpString(`${name}?module`)}, wasm = embed ${capnpString(`m/${name}`)})`);
  }
  for (const [alias, file] of aliases) {
    const target = `./${nameOf(file)}`;
    const source = `export * from ${JSON.stringify(target)};\nexport { default } from ${JSON.stringify(target)};\n`;
    fs.writeFileSync(path.join(dir, `alias-${alias}.mjs`), source);
    lines.push(`(name = ${capnpString(alias)}, esModule = embed ${capnpString(`alias-${alias}.mjs`)})`);
  }
  const bindingLines = Object.entries(bindings).map(
    ([name, value]) => `(name = ${capnpString(name)}, text = ${capnpString(String(value))})`,
  );
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # The Worker's outbound fetch: loopback allowed (the token server and the API are on 127.0.0.1).
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    ${lines.join(',\n    ')}
  ],
  bindings = [
    ${bindingLines.join(',\n    ')}
  ],
  compatibilityDate = "2025-09-01",
);
`;
  fs.writeFileSync(path.join(dir, 'config.capnp'), config);

  const listener = net.createServer();
  await new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', resolve);
  });
  const { port } = listener.address();
  const fd = listener._handle.fd;
  let output = '';
  const child = spawn(workerdBinary(), ['serve', path.join(dir, 'config.capnp'), '--socket-fd', `http=3`], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    cwd: dir,
  });
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  // workerd holds its own copy of the socket; ours is closed so that only workerd accepts.
  listener.close();
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
