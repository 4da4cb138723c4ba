#!/usr/bin/env node
'use strict';
// Builds the native module from source in the repository, for development and
// for the tests: `cargo build --release -p tokenwell-node` in the workspace,
// copied to tokenwell.<platform>.node beside package.json, which
// lib/backend-node.js loads before any platform package.
//
// Installs never compile: the published package takes its native module from
// the platform package npm installs (@tokenwell/<platform>, built by
// `make dist`), and uses the wasm engine where there is none.
//
// Environment: CARGO picks the cargo binary.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { nativeFileName } = require('../lib/platform.js');

const pkgDir = path.join(__dirname, '..');
const log = (message) => process.stderr.write(`tokenwell: ${message}\n`);

class BuildError extends Error {}

function findCargo() {
  const candidates = [process.env.CARGO, 'cargo', path.join(os.homedir(), '.cargo', 'bin', 'cargo')].filter(Boolean);
  for (const cargo of candidates) {
    const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return cargo;
  }
  return null;
}

/** Builds the native module (cargo is incremental: quick when nothing changed) and returns its path. */
function build() {
  const destination = path.join(pkgDir, nativeFileName());
  if (!fs.existsSync(path.join(pkgDir, '..', '..', 'core', 'Cargo.toml'))) {
    throw new BuildError('building from source needs the tokenwell repository (an installed package uses its platform package or wasm)');
  }
  const cargo = findCargo();
  if (cargo === null) throw new BuildError('cargo was not found: install a Rust toolchain (https://rustup.rs, 1.88 or newer)');
  const args = ['build', '--release', '-p', 'tokenwell-node', '--message-format=json-render-diagnostics'];
  const run = spawnSync(cargo, args, {
    cwd: pkgDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) throw new BuildError(`cargo build failed (exit ${run.status ?? run.signal})`);

  // The cdylib's path, as cargo reports it (whatever the target directory).
  let library = null;
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = JSON.parse(line);
    if (message.reason === 'compiler-artifact' && message.target?.name === 'tokenwell_node') {
      library = message.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? library;
    }
  }
  if (library === null) throw new BuildError('cargo did not report the tokenwell_node library');

  // Copy then rename: a process that has the old module loaded keeps its mapping intact.
  const temporary = `${destination}.${process.pid}.tmp`;
  fs.copyFileSync(library, temporary);
  fs.renameSync(temporary, destination);
  return destination;
}

module.exports = { build, BuildError };

if (require.main === module) {
  try {
    build();
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    log(error.message);
    process.exit(1);
  }
}
