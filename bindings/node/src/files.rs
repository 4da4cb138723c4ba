//! What the JS host needs from the engine about files, and the one file
//! operation JavaScript has no API for.
//!
//! - `NativeSecretFileWatch`: the engine's rule for noticing a changed secret
//!   file (`SecretFileWatch`); the JS host does the `stat` and the read.
//! - `tryLockFile(fd)`: `flock(fd, LOCK_EX | LOCK_NB)` on a descriptor the JS
//!   host opened and checked (the cron cache's `<path>.lock`). Node has no
//!   `flock`, and the lock must be the one Python's cron cache takes
//!   (`fcntl.flock`) so that a Node cron and a Python cron sharing a cache
//!   file serialize their token requests. The lock belongs to the open file
//!   description: closing the descriptor in JS releases it.

use napi::{Error, Result, Status};
use napi_derive::napi;
use tokenwell_js::JsonSecretFileWatch;

use crate::cache::arg_error;

/// How often (ms) the secret file is checked on the token path.
#[napi(catch_unwind)]
pub fn secret_file_check_interval_ms() -> f64 {
    tokenwell_js::SECRET_FILE_CHECK_INTERVAL_MS
}

/// The engine's rule for noticing a changed secret file: `stat` it when
/// `due(now, forced)`; read it when `changed(stamp, now)`; then `read(stamp)`.
/// A stamp is JSON `{device, inode, size, modifiedNs, changedNs}`, numbers as
/// decimal strings (from `fs.statSync(path, { bigint: true })`).
#[napi]
pub struct NativeSecretFileWatch {
    inner: JsonSecretFileWatch,
}

impl Default for NativeSecretFileWatch {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl NativeSecretFileWatch {
    /// A watch that has read nothing yet.
    #[napi(constructor)]
    pub fn new() -> Self {
        Self { inner: JsonSecretFileWatch::new() }
    }

    /// Whether to `stat` the file now (`forced` after `invalid_client`).
    #[napi(catch_unwind)]
    pub fn due(&self, now: f64, forced: bool) -> Result<bool> {
        self.inner.due(now, forced).map_err(arg_error)
    }

    /// Records a check that found `stamp`; whether the file must be read.
    #[napi(catch_unwind)]
    pub fn changed(&mut self, stamp: String, now: f64) -> Result<bool> {
        self.inner.changed(&stamp, now).map_err(arg_error)
    }

    /// Records a check that could not `stat` or read the file.
    #[napi(catch_unwind)]
    pub fn failed(&mut self, now: f64) -> Result<()> {
        self.inner.failed(now).map_err(arg_error)
    }

    /// Records that the file with `stamp` was read (valid or not).
    #[napi(catch_unwind)]
    pub fn read(&mut self, stamp: String) -> Result<()> {
        self.inner.read(&stamp).map_err(arg_error)
    }
}

/// Takes an exclusive `flock` on `fd` without waiting: `true` when taken,
/// `false` when another open file holds it. Errors name the OS error.
#[napi(catch_unwind)]
pub fn try_lock_file(fd: i32) -> Result<bool> {
    lock(fd)
}

#[cfg(unix)]
fn lock(fd: i32) -> Result<bool> {
    use std::fs::{File, TryLockError};
    use std::os::fd::BorrowedFd;

    if fd < 0 {
        return Err(Error::new(Status::InvalidArg, "fd must be an open file descriptor"));
    }
    // SAFETY: the JS caller passes a descriptor it holds open for the whole
    // call; it is only duplicated here (F_DUPFD_CLOEXEC), and a number that is
    // not open fails that with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let duplicate = borrowed.try_clone_to_owned().map_err(|e| Error::new(Status::GenericFailure, e.to_string()))?;
    // The duplicate shares the open file description, so the lock outlives it
    // and is released when JS closes its descriptor.
    match File::from(duplicate).try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::new(Status::GenericFailure, e.to_string())),
    }
}

#[cfg(not(unix))]
fn lock(_fd: i32) -> Result<bool> {
    Err(Error::new(Status::GenericFailure, "file locks are not supported on this platform"))
}
