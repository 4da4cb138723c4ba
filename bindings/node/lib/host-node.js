'use strict';
// What a Node (or Bun) host offers the shared layer: files (the secret file,
// looked at by the engine's SecretFileWatch rule; a CA file; the cron cache,
// lib/cache-file.js), the default transport (undici, for proxies and a CA
// file), process warnings, the process environment.

const fs = require('node:fs');
const { createDefaultFetch, readCaFile } = require('./default-fetch.js');
const { CacheFile } = require('./cache-file.js');

/**
 * The engine's `FileStamp` of `path` (following symlinks, so a Kubernetes
 * `..data` swap is a new inode): `{ stamp }` as JSON with decimal strings,
 * or `{ code }` when it cannot be `stat`ed.
 */
function statFile(path) {
  try {
    const st = fs.statSync(path, { bigint: true });
    const stamp = JSON.stringify({
      device: String(st.dev),
      inode: String(st.ino),
      size: String(st.size),
      modifiedNs: String(st.mtimeNs),
      changedNs: String(st.ctimeNs),
    });
    return { stamp };
  } catch (error) {
    return { code: error.code ?? 'EIO' };
  }
}

/** The file's text, or `{ code }` when it cannot be read. */
function readTextFile(path) {
  try {
    return { contents: fs.readFileSync(path, 'utf8') };
  } catch (error) {
    return { code: error.code ?? 'EIO' };
  }
}

module.exports = {
  name: 'node',
  files: true,
  statFile,
  readTextFile,
  readCaFile,
  openCacheFile: (path, report) => new CacheFile(path, report),
  createDefaultFetch,
  warn: (message, code) => process.emitWarning(message, { type: 'TokenwellWarning', code }),
  defaultEnv: () => process.env,
};
