'use strict';
// Loads the native module (crate tokenwell-node, napi-rs) for this platform.
//
// Looked for, in order: $TOKENWELL_NATIVE_PATH, prebuilds/tokenwell.<platform>.node
// (a binary shipped in the package), tokenwell.<platform>.node (built from
// source at install by scripts/build-native.js). When none exists (npm 11 skips
// a dependency's install script unless the project allows it), it is built
// from source here, once, before the first load.

const fs = require('node:fs');
const path = require('node:path');
const { platformTarget, nativeFileName } = require('./platform');

function load() {
  const root = path.join(__dirname, '..');
  const candidates = [path.join(root, 'prebuilds', nativeFileName()), path.join(root, nativeFileName())];
  if (process.env.TOKENWELL_NATIVE_PATH) candidates.unshift(process.env.TOKENWELL_NATIVE_PATH);
  let found = candidates.find((file) => fs.existsSync(file));
  if (found === undefined) {
    const { build, BuildError } = require('../scripts/build-native.js');
    process.stderr.write(
      `tokenwell: no native module for ${platformTarget()} yet (the install script did not run): building it now\n`,
    );
    try {
      found = build() ?? undefined;
    } catch (error) {
      if (!(error instanceof BuildError)) throw error;
      throw new Error(`tokenwell: ${error.message}`);
    }
    if (found === undefined) {
      throw new Error(`tokenwell: no native module for ${platformTarget()} and TOKENWELL_SKIP_BUILD=1`);
    }
  }
  return require(found);
}

module.exports = { native: load(), platformTarget };
