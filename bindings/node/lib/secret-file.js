'use strict';
// A secret file (`clientSecretFile`, or the one the environment names), looked
// at by the engine's one rule (`SecretFileWatch`): a `stat` at most once per
// `secretFileCheckIntervalMs` on the token path and at once after
// `invalid_client`; a read whenever device, inode, size, mtime or ctime
// changed (an edit in place, a rename over it, a Kubernetes `..data` symlink
// swap). What the contents mean, and what a bad file does, is the engine's:
// `replaceSecretsFromFile` applies them, `reportSecretFileProblem` reports an
// unreadable file; both keep the secrets in use and the engine emits
// `secret_file_rejected`. The same rule and wording as Python's
// `_secret_file.py`. A key file (`privateKeyFile` or `CLIENT_PRIVATE_KEY_FILE`)
// is watched by the same rule and applied with `replaceKeysFromFile`.

const { configError } = require('./errors.js');
const { engine, host } = require('./runtime.js');

class SecretFile {
  #watch;

  /**
   * The file at `path`, named `source` in errors and events (the variable or
   * option that named it); `what` is `secret` or `key` (a private key file).
   */
  constructor(path, source, what = 'secret') {
    this.path = path;
    this.source = source;
    this.what = what;
    if (!host().files) {
      throw configError(source, `${what} files cannot be read in this runtime (no file system): give the ${what} itself`);
    }
    this.#watch = engine().createSecretFileWatch();
  }

  /** Where a person looks, never what the file holds. */
  #problem(code) {
    return `cannot read the ${this.what} file ${this.path} (${code})`;
  }

  /** The contents for the configuration; throws a `config` TokenError naming the source and the path. */
  readAtStart(now) {
    const stat = host().statFile(this.path);
    const read = stat.code === undefined ? host().readTextFile(this.path) : stat;
    if (read.code !== undefined) throw configError(this.source, this.#problem(read.code));
    this.#watch.changed(stat.stamp, now);
    this.#watch.read(stat.stamp);
    return read.contents;
  }

  /** When the token path must look at the file next, at the latest (ms). */
  nextCheck(now) {
    return now + engine().secretFileCheckIntervalMs;
  }

  /** Applies the file to `cache` if the watch says it is due and it changed. */
  check(cache, now, forced = false) {
    if (!this.#watch.due(now, forced)) return;
    const stat = host().statFile(this.path);
    if (stat.code !== undefined) {
      this.#watch.failed(now);
      cache.reportSecretFileProblem(this.source, this.#problem(stat.code), now);
      return;
    }
    if (!this.#watch.changed(stat.stamp, now)) return;
    const read = host().readTextFile(this.path);
    if (read.code !== undefined) {
      this.#watch.failed(now);
      cache.reportSecretFileProblem(this.source, this.#problem(read.code), now);
      return;
    }
    // Read, valid or not: an invalid file is not read again until it changes.
    this.#watch.read(stat.stamp);
    // A bad file: the engine kept the secrets (keys) and queued secret_file_rejected.
    if (this.what === 'key') cache.replaceKeysFromFile(read.contents, this.source, now);
    else cache.replaceSecretsFromFile(read.contents, this.source, now);
  }
}

module.exports = { SecretFile };
