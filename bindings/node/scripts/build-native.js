#!/usr/bin/env node
'use strict';
// The package's `install` step: builds the native module from source with cargo
// when no binary for this platform ships in the package.
//
//   node scripts/build-native.js            build only if no tokenwell.<platform>.node exists
//   node scripts/build-native.js --force    build (cargo is incremental: quick when nothing changed)
//
// lib/native.js calls `build()` too when the module is missing at first load:
// npm 11 skips dependencies' install scripts unless the project allows them
// (`allowScripts`), and the package must still work after one `npm install`.
//
// Two layouts:
// - in the tokenwell repository (bindings/node, a member of the Cargo
//   workspace): `cargo build --release -p tokenwell-node`, in the workspace's
//   target directory;
// - in an installed package (from `npm pack`): rust/Cargo.toml, a standalone
//   crate whose engine sources were vendored into rust/tokenwell by
//   scripts/vendor-core.js. Built in rust/target, which is removed afterwards
//   (set TOKENWELL_KEEP_TARGET=1 to keep it, or CARGO_TARGET_DIR to use yours).
//
// Environment: TOKENWELL_SKIP_BUILD=1 skips the build; CARGO picks the cargo binary.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { nativeFileName } = require('../lib/platform');

const pkgDir = path.join(__dirname, '..');
const log = (message) => process.stderr.write(`tokenwell: ${message}\n`);

class BuildError extends Error {}

function fail(message) {
  throw new BuildError(message);
}

function inWorkspace() {
  const manifest = path.join(pkgDir, '..', '..', 'Cargo.toml');
  if (!fs.existsSync(manifest) || !fs.existsSync(path.join(pkgDir, '..', '..', 'core', 'Cargo.toml'))) return false;
  return /\[workspace\][\s\S]*"bindings\/node"/.test(fs.readFileSync(manifest, 'utf8'));
}

function findCargo() {
  const candidates = [process.env.CARGO, 'cargo', path.join(os.homedir(), '.cargo', 'bin', 'cargo')].filter(Boolean);
  for (const cargo of candidates) {
    const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return cargo;
  }
  return null;
}

/**
 * Builds the native module unless one exists (or always, with `force`).
 * Returns the module's path, or null when TOKENWELL_SKIP_BUILD=1. Throws a
 * BuildError saying what to do when it cannot build.
 */
function build({ force = false } = {}) {
  const destination = path.join(pkgDir, nativeFileName());
  const prebuilt = path.join(pkgDir, 'prebuilds', nativeFileName());
  if (process.env.TOKENWELL_SKIP_BUILD === '1') {
    log('TOKENWELL_SKIP_BUILD=1: not building the native module');
    return null;
  }
  if (!force && fs.existsSync(prebuilt)) return prebuilt;
  if (!force && fs.existsSync(destination)) return destination;

  const cargo = findCargo();
  if (cargo === null) {
    fail(
      `no prebuilt native module ships for this platform (${nativeFileName()}) and cargo was not found.\n` +
        'Install a Rust toolchain (https://rustup.rs, 1.88 or newer); the module is then built at the next\n' +
        '`require("tokenwell")`, or now with `node node_modules/tokenwell/scripts/build-native.js`.',
    );
  }

  const workspace = inWorkspace();
  const args = ['build', '--release', '--message-format=json-render-diagnostics'];
  const env = { ...process.env };
  let ownTarget = null;
  if (workspace) {
    args.push('-p', 'tokenwell-node');
  } else {
    const manifest = path.join(pkgDir, 'rust', 'Cargo.toml');
    if (!fs.existsSync(manifest)) fail(`${manifest} is missing: this package was not packed with its Rust sources`);
    args.push('--manifest-path', manifest);
    if (!env.CARGO_TARGET_DIR) {
      ownTarget = path.join(pkgDir, 'rust', 'target');
      env.CARGO_TARGET_DIR = ownTarget;
    }
  }
  log(`building the native module from source: ${cargo} ${args.join(' ')} (a first build takes a few minutes)`);
  const run = spawnSync(cargo, args, {
    cwd: workspace ? pkgDir : path.join(pkgDir, 'rust'),
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) fail(`cargo build failed (exit ${run.status ?? run.signal})`);

  // The cdylib's path, as cargo reports it (whatever the target directory).
  let library = null;
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = JSON.parse(line);
    if (message.reason === 'compiler-artifact' && message.target?.name === 'tokenwell_node') {
      library = message.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? library;
    }
  }
  if (library === null) fail('cargo did not report the tokenwell_node library');

  // Copy then rename: a process that has the old module loaded keeps its mapping intact.
  const temporary = `${destination}.${process.pid}.tmp`;
  fs.copyFileSync(library, temporary);
  fs.renameSync(temporary, destination);
  log(`built ${path.relative(process.cwd(), destination) || destination}`);

  if (ownTarget !== null && process.env.TOKENWELL_KEEP_TARGET !== '1') {
    fs.rmSync(ownTarget, { recursive: true, force: true });
  }
  return destination;
}

module.exports = { build, BuildError };

if (require.main === module) {
  try {
    build({ force: process.argv.includes('--force') });
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    log(error.message);
    process.exit(1);
  }
}
