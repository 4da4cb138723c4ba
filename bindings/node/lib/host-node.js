'use strict';
// What a Node (or Bun) host offers the shared layer: files (the secret file,
// re-read when it changes; a CA file), the default transport (undici, for
// proxies and a CA file), process warnings, the process environment.

const fs = require('node:fs');
const { configError } = require('./errors.js');
const { createDefaultFetch, readCaFile } = require('./default-fetch.js');

function readSecretFile(path, field) {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw configError(field, `the secret file ${JSON.stringify(path)} cannot be read (${error.code ?? error.message})`);
  }
}

/** The secret file's contents, or `{ code }` when it cannot be read now (it is re-read later). */
function rereadSecretFile(path) {
  try {
    return { contents: fs.readFileSync(path, 'utf8') };
  } catch (error) {
    return { code: error.code ?? 'EIO' };
  }
}

/** Changes when the file is replaced or rewritten (a Kubernetes secret update swaps a symlink). */
function fileStamp(path) {
  try {
    const st = fs.statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (error) {
    return `error:${error.code}`;
  }
}

module.exports = {
  name: 'node',
  readSecretFile,
  rereadSecretFile,
  fileStamp,
  readCaFile,
  createDefaultFetch,
  warn: (message) => process.emitWarning(message),
  defaultEnv: () => process.env,
};
