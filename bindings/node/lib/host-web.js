'use strict';
// What a host without Node's APIs offers the shared layer (workerd, Vercel
// Edge, Deno, browsers): the platform's `fetch`, `console.warn`, and no file
// system. Options that need files are refused at construction with a `config`
// error that says what to do instead, never at the first token request.

const { configError } = require('./errors.js');

function noFiles(field, what) {
  throw configError(field, `${what} cannot be used in this runtime (no file system)`);
}

function readCaFile(path, field) {
  throw configError(
    field,
    "applies to Node's transport only: in this runtime the platform's fetch decides which CAs are trusted",
  );
}

/** The platform's fetch, as the default transport for token requests. */
function createDefaultFetch() {
  let closed = false;
  const fetch = (input, init) => {
    if (closed) return Promise.reject(new Error('the transport was closed'));
    return globalThis.fetch(input, init);
  };
  fetch.close = () => {
    closed = true;
  };
  return fetch;
}

/** `process.env` where the runtime has one (Deno and Bun do, Workers with nodejs_compat), else nothing. */
function defaultEnv() {
  return globalThis.process?.env ?? {};
}

module.exports = {
  name: 'web',
  // Secret files are refused by name before anything is read (lib/secret-file.js).
  files: false,
  statFile: () => ({ code: 'ENOSYS' }),
  readTextFile: () => ({ code: 'ENOSYS' }),
  readCaFile,
  openCacheFile: () => noFiles('cachePath', 'a cache file'),
  createDefaultFetch,
  warn: (message) => console.warn(message),
  defaultEnv,
};
