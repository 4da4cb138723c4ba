'use strict';
// The on-disk token cache (`cachePath`): the engine's snapshot in a file, for
// processes that start and exit (crons) and for processes sharing one client.
// The same file, rules and lock as Python's `cache_path`
// (bindings/python/python/tokenwell/_cache_file.py), so a Node cron and a
// Python cron with the same configuration share one file:
//
// - The file holds exactly the engine's `exportSnapshot()` text (UTF-8 JSON);
//   whether a snapshot may be used is the engine's call (`importSnapshot`
//   refuses a corrupt, foreign or expired one). When to write it and when to
//   delete it comes from engine events (lib/service-account.js).
// - Written atomically: a temporary file in the same directory (mode 0600,
//   O_EXCL), fsync, then rename over the file: a reader sees the old or the
//   new snapshot.
// - A lock file beside it (`<path>.lock`, `flock(LOCK_EX)`) serializes token
//   fetches across processes: the holder fetches and writes; another waits,
//   then finds the fresh snapshot and makes no request. Node has no flock: the
//   native engine module provides it (`tryLockFile`); with the wasm engine the
//   file is shared without the lock.
// - Neither file is trusted by its name (cache directories may be shared):
//   both are opened with O_NOFOLLOW | O_NONBLOCK (a planted symlink is refused,
//   a FIFO cannot block the open) and checked on the open descriptor: a regular
//   file, one link, owned by this user, not writable by group or others. A
//   cache file readable by others is tightened to 0600 when it is ours.
// - Every refusal and every I/O error is reported through `report(problem,
//   path, detail)` and the account carries on without the file: nothing here
//   throws. The account hands each report to the engine
//   (`TokenCache.reportCacheFileProblem`), which emits the `cache_file_problem`
//   event: the problem names (`ignored`, `permissions_tightened`,
//   `write_failed`, `lock_failed`, `lock_timeout`) and the detail (the reason,
//   the error code and/or the mode, joined by ": ") are Python's. A refusal is
//   reported once until it changes.

const fs = require('node:fs');
const nodePath = require('node:path');
const crypto = require('node:crypto');
const os = require('node:os');
const { engine } = require('./runtime.js');

/** Snapshots are a few hundred bytes; anything much larger is not ours. */
const MAX_SNAPSHOT_BYTES = 1 << 20;
const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
const OPEN_FLAGS = (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);

/** What `lock` did. */
const HELD = 'held';
const BUSY = 'busy';
const UNUSABLE = 'unusable';

class Refused extends Error {
  constructor(reason, code) {
    super(reason);
    this.reason = reason;
    this.code = code;
  }
}

/** Opens `path` without following a symlink or blocking, and checks the descriptor: `{ fd, st }`. */
function openChecked(path, flags) {
  let fd;
  try {
    fd = fs.openSync(path, flags | OPEN_FLAGS, 0o600);
  } catch (error) {
    // EMLINK: FreeBSD's answer to O_NOFOLLOW.
    if (error.code === 'ELOOP' || error.code === 'EMLINK') throw new Refused('symlink');
    if ((error.code === 'ENOENT' || error.code === 'ENOTDIR') && !(flags & O_CREAT)) return null;
    throw new Refused('unusable', error.code);
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new Refused('not_regular_file');
    if (typeof process.getuid === 'function' && Number(st.uid) !== process.getuid()) {
      throw new Refused('foreign_owner');
    }
    // A hard link could make fchmod change another file's mode.
    if (st.nlink !== 1n) throw new Refused('hard_linked');
    return { fd, st };
  } catch (error) {
    fs.closeSync(fd);
    throw error instanceof Refused ? error : new Refused('unusable', error.code);
  }
}

/** Python's signature of a file: inode, device, size, mtime (ns). */
const signature = (st) => `${st.ino}:${st.dev}:${st.size}:${st.mtimeNs}`;

class CacheFile {
  #report;
  #seen = null;
  /** 'read' / 'lock' -> the last problem reported there (each is reported once until it changes). */
  #lastProblem = new Map();
  /** The in-process queue in front of the file lock (one holder per account at a time). */
  #queue = Promise.resolve();
  #lockFd = null;

  /** `report(problem, path, detail)` reports problems (see the top of this file); nothing here throws. */
  constructor(path, report) {
    this.path = nodePath.resolve(path);
    this.lockPath = `${this.path}.lock`;
    this.#report = report;
  }

  /** Reports `problem` with `fields` unless it is the last one reported for `where` ('read' or 'lock'). */
  #problem(where, problem, fields) {
    const key = JSON.stringify([problem, fields]);
    if (this.#lastProblem.get(where) === key) return;
    this.#lastProblem.set(where, key);
    this.#emit(problem, where === 'lock' ? this.lockPath : this.path, fields);
  }

  /** The detail is Python's: the reason, the error code and the mode that are set, joined by ": ". */
  #emit(problem, file, fields) {
    const detail = ['reason', 'error', 'mode']
      .map((k) => fields[k])
      .filter((v) => v !== undefined && v !== null)
      .join(': ');
    this.#report(problem, file, detail);
  }

  // ---- reading and writing ---------------------------------------------------

  /** The file's text if it changed since the last read or write, else null. */
  readIfChanged() {
    let opened;
    try {
      opened = openChecked(this.path, O_RDONLY);
    } catch (refused) {
      this.#seen = null;
      this.#problem('read', 'ignored', refusedFields(refused));
      return null;
    }
    if (opened === null) {
      this.#seen = null;
      this.#lastProblem.delete('read');
      return null;
    }
    const { fd, st } = opened;
    let data;
    try {
      const sig = signature(st);
      if (sig === this.#seen) return null;
      this.#seen = sig;
      const mode = Number(st.mode) & 0o777;
      if (mode & 0o022) {
        // Another user could have planted a token for us to send: ignore it
        // (the next snapshot replaces the file).
        this.#problem('read', 'ignored', { reason: 'insecure_permissions', mode: `0o${mode.toString(8)}` });
        return null;
      }
      if (mode & 0o077) {
        // Readable by others: ours, and only we could write it, so keep it,
        // but no longer let anyone else read the token.
        try {
          fs.fchmodSync(fd, 0o600);
        } catch (error) {
          this.#problem('read', 'ignored', { reason: 'insecure_permissions', error: error.code });
          return null;
        }
        this.#emit('permissions_tightened', this.path, { mode: `0o${mode.toString(8)}` });
      }
      if (st.size > BigInt(MAX_SNAPSHOT_BYTES)) {
        this.#problem('read', 'ignored', { reason: 'too_large' });
        return null;
      }
      try {
        data = readAll(fd, MAX_SNAPSHOT_BYTES + 1);
      } catch (error) {
        this.#problem('read', 'ignored', { reason: 'unreadable', error: error.code });
        return null;
      }
    } finally {
      fs.closeSync(fd);
    }
    this.#lastProblem.delete('read');
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      this.#problem('read', 'ignored', { reason: 'not_utf8' });
      return null;
    }
  }

  /** Atomically replaces the file with `text` (mode 0600). False (and a `write_failed` report) if it could not be written. */
  write(text) {
    const directory = nodePath.dirname(this.path);
    let temporary = null;
    try {
      fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
      temporary = nodePath.join(directory, `.tokenwell-${crypto.randomBytes(6).toString('hex')}.tmp`);
      const fd = fs.openSync(temporary, O_WRONLY | O_CREAT | O_EXCL | OPEN_FLAGS, 0o600);
      try {
        fs.writeSync(fd, Buffer.from(text, 'utf8'));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      // rename(2) replaces a symlink itself, never what it points at.
      fs.renameSync(temporary, this.path);
    } catch (error) {
      if (temporary !== null) fs.rmSync(temporary, { force: true });
      this.#emit('write_failed', this.path, { error: errorName(error) });
      return false;
    }
    try {
      this.#seen = signature(fs.lstatSync(this.path, { bigint: true }));
    } catch {
      this.#seen = null;
    }
    return true;
  }

  /**
   * Removes the file if it is still the one last read or written here (so a
   * token the engine dropped is not loaded again by the next process).
   */
  removeIfUnchanged() {
    try {
      if (this.#seen === null || signature(fs.lstatSync(this.path, { bigint: true })) !== this.#seen) return false;
      fs.unlinkSync(this.path);
    } catch {
      return false;
    }
    this.#seen = null;
    return true;
  }

  // ---- the cross-process lock ----------------------------------------------------

  /**
   * Takes the lock, waiting at most `timeoutMs`. Resolves to `'held'` (release
   * it with `unlock()`), `'busy'` (another holder kept it past the timeout) or
   * `'unusable'` (the lock file may not be used); either way but `'held'`, go
   * on without it (and do not call `unlock`).
   */
  async lock(timeoutMs) {
    const deadline = Date.now() + Math.max(timeoutMs, 0);
    // In-process first: one holder per CacheFile, in call order.
    let release;
    const mine = new Promise((resolve) => {
      release = resolve;
    });
    const before = this.#queue;
    this.#queue = before.then(() => mine);
    if (!(await settlesBefore(before, deadline))) {
      // Give the turn on once it comes, and go on without the lock.
      before.then(release);
      if (timeoutMs > 0) this.#emit('lock_timeout', this.path, {});
      return BUSY;
    }
    let outcome;
    try {
      outcome = await this.#takeFileLock(deadline);
    } catch (error) {
      release();
      throw error;
    }
    if (outcome !== HELD) {
      release();
      if (outcome === BUSY && timeoutMs > 0) this.#emit('lock_timeout', this.path, {});
      return outcome;
    }
    this.#release = release;
    return HELD;
  }

  #release = null;

  /** Releases the lock taken by `lock` (closing the descriptor releases the flock). */
  unlock() {
    const fd = this.#lockFd;
    const release = this.#release;
    this.#lockFd = null;
    this.#release = null;
    try {
      if (fd !== null) fs.closeSync(fd);
    } finally {
      release?.();
    }
  }

  async #takeFileLock(deadline) {
    const tryLock = engine().tryLockFile;
    if (typeof tryLock !== 'function') return HELD; // the wasm engine: no cross-process lock
    let opened;
    try {
      fs.mkdirSync(nodePath.dirname(this.path), { recursive: true, mode: 0o700 });
      opened = openChecked(this.lockPath, O_RDWR | O_CREAT);
    } catch (error) {
      this.#problem('lock', 'lock_failed', error instanceof Refused ? refusedFields(error) : { reason: 'unusable', error: error.code });
      return UNUSABLE;
    }
    const { fd, st } = opened;
    if (Number(st.mode) & 0o077) {
      try {
        fs.fchmodSync(fd, 0o600); // ours (checked): nobody else needs it
      } catch (error) {
        fs.closeSync(fd);
        this.#problem('lock', 'lock_failed', { reason: 'insecure_permissions', error: error.code });
        return UNUSABLE;
      }
    }
    this.#lastProblem.delete('lock');
    // flock has no timed wait: try without blocking, then back off briefly,
    // so a stuck peer cannot hold us past the deadline (Python's schedule).
    let pause = 2;
    for (;;) {
      let taken;
      try {
        taken = tryLock(fd);
      } catch (error) {
        fs.closeSync(fd);
        this.#problem('lock', 'lock_failed', { reason: 'unusable', error: errorName(error) });
        return UNUSABLE;
      }
      if (taken) {
        this.#lockFd = fd;
        return HELD;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        fs.closeSync(fd);
        return BUSY;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      pause = Math.min(pause * 2, 50);
    }
  }
}

/** Whether `promise` settles by `deadline` (ms since the epoch); a wait never keeps the process alive. */
async function settlesBefore(promise, deadline) {
  const wait = Math.max(deadline - Date.now(), 0);
  let timer;
  let immediate;
  const late = new Promise((resolve) => {
    if (wait === 0) {
      // No wait (`lock(0)`): the answer once what already settled has run. An
      // immediate always fires; an unref'd timer may not, in an idle process.
      immediate = setImmediate(() => resolve(false));
    } else {
      timer = setTimeout(() => resolve(false), wait);
      timer.unref?.();
    }
  });
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
    clearImmediate(immediate);
  }
}

/**
 * An error's errno name (`EACCES`), as Python's `errno.errorcode` gives it:
 * Node's `code`, or the `(os error N)` of a native module's message.
 */
function errorName(error) {
  if (typeof error?.code === 'string' && /^E[A-Z0-9]+$/.test(error.code)) return error.code;
  const number = /\(os error (\d+)\)/.exec(String(error?.message ?? ''))?.[1];
  if (number !== undefined) {
    const name = Object.keys(os.constants.errno).find((k) => os.constants.errno[k] === Number(number));
    if (name !== undefined) return name;
  }
  return error?.code ?? String(error?.message ?? error);
}

function refusedFields(refused) {
  if (!(refused instanceof Refused)) return { reason: 'unusable', error: errorName(refused) };
  return refused.code === undefined ? { reason: refused.reason } : { reason: refused.reason, error: refused.code };
}

function readAll(fd, limit) {
  const chunks = [];
  let total = 0;
  const buffer = Buffer.alloc(64 * 1024);
  while (total < limit) {
    const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, limit - total), null);
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
    total += n;
  }
  return Buffer.concat(chunks);
}

module.exports = { CacheFile, HELD, BUSY, UNUSABLE };
