//! The on-disk token cache: the engine's snapshot in a file, shared with the
//! Python (`cache_path`) and Node (`cachePath`) cron caches. The same file,
//! rules and lock as `bindings/python/python/tokenwell/_cache_file.py`:
//!
//! - The file holds exactly the engine's `export_snapshot()` text; whether a
//!   snapshot may be used is the engine's call (`import_snapshot`).
//! - Written atomically: a temporary file in the same directory (mode 0600,
//!   `O_EXCL`), fsync, then rename over the file.
//! - A lock file beside it (`<path>.lock`, `flock(LOCK_EX)`) serializes token
//!   fetches across processes: the holder fetches and writes; another waits,
//!   then finds the fresh snapshot and makes no request.
//! - Neither file is trusted by its name: both are opened with
//!   `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` and checked on the open descriptor
//!   (a regular file, one link, owned by this user, not writable by group or
//!   others). A cache file readable by others is tightened to 0600.
//! - Every refusal and I/O error is returned as a [`Problem`] for the engine
//!   (`TokenCache::report_cache_file_problem`); nothing here fails the command.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokenwell::CacheFileProblem;

/// Snapshots are a few hundred bytes; anything much larger is not ours.
const MAX_SNAPSHOT_BYTES: u64 = 1 << 20;
const OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// A problem to report through the engine: `(path, problem, detail)`, the
/// detail being the reason, error name and/or mode joined by `": "` (Python's).
pub type Problem = (String, CacheFileProblem, String);

/// Why a file was refused: the reason and, for an I/O error, its errno name.
struct Refused {
    reason: &'static str,
    error: Option<String>,
}

impl Refused {
    fn detail(&self) -> String {
        match &self.error {
            Some(error) => format!("{}: {error}", self.reason),
            None => self.reason.to_owned(),
        }
    }
}

/// The errno name Python's `errno.errorcode` gives (`EACCES`, ...).
fn errno_name(error: &std::io::Error) -> String {
    let name = match error.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::ENAMETOOLONG) => "ENAMETOOLONG",
        Some(libc::EIO) => "EIO",
        Some(libc::ENXIO) => "ENXIO",
        Some(libc::EWOULDBLOCK) => "EWOULDBLOCK",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOLCK) => "ENOLCK",
        Some(other) => return format!("errno {other}"),
        None => return format!("{:?}", error.kind()),
    };
    name.to_owned()
}

/// Opens `path` without following a symlink or blocking, and checks the
/// descriptor. `Ok(None)`: nothing there to read (only without `create`).
fn open_checked(path: &Path, write: bool, create: bool) -> Result<Option<(File, std::fs::Metadata)>, Refused> {
    let mut options = OpenOptions::new();
    options.read(true).write(write).create(create).mode(0o600).custom_flags(OPEN_FLAGS);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) => {
            return match error.raw_os_error() {
                // EMLINK: FreeBSD's answer to O_NOFOLLOW.
                Some(libc::ELOOP) | Some(libc::EMLINK) => Err(Refused { reason: "symlink", error: None }),
                Some(libc::ENOENT) | Some(libc::ENOTDIR) if !create => Ok(None),
                _ => Err(Refused { reason: "unusable", error: Some(errno_name(&error)) }),
            };
        }
    };
    let metadata = file.metadata().map_err(|error| Refused { reason: "unusable", error: Some(errno_name(&error)) })?;
    if !metadata.file_type().is_file() {
        return Err(Refused { reason: "not_regular_file", error: None });
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    if metadata.uid() != unsafe { libc::getuid() } {
        return Err(Refused { reason: "foreign_owner", error: None });
    }
    if metadata.nlink() != 1 {
        // A hard link could make fchmod change another file's mode.
        return Err(Refused { reason: "hard_linked", error: None });
    }
    Ok(Some((file, metadata)))
}

/// One snapshot file and its lock file.
pub struct CacheFile {
    path: PathBuf,
    lock_path: PathBuf,
    /// The lock, while held: closing the descriptor releases the flock.
    lock: Option<File>,
    problems: Vec<Problem>,
}

/// What [`CacheFile::lock`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Held until [`CacheFile::unlock`] (or exit).
    Held,
    /// Another process kept it past the wait: go on without it.
    Busy,
    /// The lock file may not be used: go on without it.
    Unusable,
}

impl CacheFile {
    /// The cache file at `path` (made absolute) and its lock `<path>.lock`.
    pub fn new(path: &Path) -> Self {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self { path, lock_path: PathBuf::from(lock_path), lock: None, problems: Vec::new() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The problems met since the last call, for the engine to word as events.
    pub fn take_problems(&mut self) -> Vec<Problem> {
        std::mem::take(&mut self.problems)
    }

    /// Records a problem with the cache file (the lock file's are recorded by `lock`).
    pub fn problem(&mut self, problem: CacheFileProblem, detail: String) {
        self.problems.push((self.path.display().to_string(), problem, detail));
    }

    /// The file's text, or `None` (nothing there, or refused: then a problem
    /// `ignored` with the reason is recorded).
    pub fn read(&mut self) -> Option<String> {
        let (mut file, metadata) = match open_checked(&self.path, false, false) {
            Ok(Some(opened)) => opened,
            Ok(None) => return None,
            Err(refused) => {
                self.problem(CacheFileProblem::Ignored, refused.detail());
                return None;
            }
        };
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            // Another user could have planted a token for us to send: ignore it
            // (the next snapshot replaces the file).
            self.problem(CacheFileProblem::Ignored, format!("insecure_permissions: {mode:#o}"));
            return None;
        }
        if mode & 0o077 != 0 {
            // Readable by others: ours, and only we could write it, so keep it,
            // but no longer let anyone else read the token.
            if let Err(error) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                self.problem(CacheFileProblem::Ignored, format!("insecure_permissions: {}", errno_name(&error)));
                return None;
            }
            self.problem(CacheFileProblem::PermissionsTightened, format!("{mode:#o}"));
        }
        if metadata.len() > MAX_SNAPSHOT_BYTES {
            self.problem(CacheFileProblem::Ignored, "too_large".to_owned());
            return None;
        }
        let mut data = Vec::new();
        if let Err(error) = (&mut file).take(MAX_SNAPSHOT_BYTES + 1).read_to_end(&mut data) {
            self.problem(CacheFileProblem::Ignored, format!("unreadable: {}", errno_name(&error)));
            return None;
        }
        match String::from_utf8(data) {
            Ok(text) => Some(text),
            Err(_) => {
                self.problem(CacheFileProblem::Ignored, "not_utf8".to_owned());
                None
            }
        }
    }

    /// Atomically replaces the file with `text` (mode 0600). A rename never
    /// follows a symlink or opens what it replaces. False (and a problem
    /// `write_failed`) if it could not be written.
    pub fn write(&mut self, text: &str) -> bool {
        match self.try_write(text) {
            Ok(()) => true,
            Err(error) => {
                self.problem(CacheFileProblem::WriteFailed, errno_name(&error));
                false
            }
        }
    }

    fn try_write(&self, text: &str) -> std::io::Result<()> {
        let directory = self.path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)?;
        let (mut file, temporary) = create_temporary(directory)?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
        let renamed = written.and_then(|()| std::fs::rename(&temporary, &self.path));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        renamed
    }

    /// Takes the lock, waiting at most `timeout` (as Python's cron cache does:
    /// the request timeout + 2 s). Problems are recorded; only `Held` holds it.
    pub fn lock(&mut self, timeout: Duration) -> Lock {
        let lock_path = self.lock_path.display().to_string();
        let directory = self.path.parent().unwrap_or_else(|| Path::new("."));
        if let Err(error) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory) {
            self.problems.push((lock_path, CacheFileProblem::LockFailed, format!("unusable: {}", errno_name(&error))));
            return Lock::Unusable;
        }
        let (file, metadata) = match open_checked(&self.lock_path, true, true) {
            Ok(Some(opened)) => opened,
            Ok(None) => return Lock::Unusable,
            Err(refused) => {
                self.problems.push((lock_path, CacheFileProblem::LockFailed, refused.detail()));
                return Lock::Unusable;
            }
        };
        if metadata.mode() & 0o077 != 0 {
            if let Err(error) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                let detail = format!("insecure_permissions: {}", errno_name(&error));
                self.problems.push((lock_path, CacheFileProblem::LockFailed, detail));
                return Lock::Unusable;
            }
        }
        // flock has no timed wait: try without blocking, then back off briefly,
        // so a stuck peer cannot hang us past the deadline (Python's rule).
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            // SAFETY: the descriptor is open for the whole call.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                self.lock = Some(file);
                return Lock::Held;
            }
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) && error.raw_os_error() != Some(libc::EINTR) {
                self.problems.push((
                    lock_path,
                    CacheFileProblem::LockFailed,
                    format!("unusable: {}", errno_name(&error)),
                ));
                return Lock::Unusable;
            }
            let now = Instant::now();
            if now >= deadline {
                self.problem(CacheFileProblem::LockTimeout, String::new());
                return Lock::Busy;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Releases the lock, if held.
    pub fn unlock(&mut self) {
        self.lock = None;
    }
}

/// A new file in `directory`, mode 0600, created exclusively (Python's
/// `mkstemp(prefix=".tokenwell-", suffix=".tmp")`).
fn create_temporary(directory: &Path) -> std::io::Result<(File, PathBuf)> {
    let mut attempt = 0u32;
    loop {
        let mut bytes = [0u8; 8];
        let random = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => u64::from(std::process::id()) << 32 | u64::from(attempt),
        };
        let path = directory.join(format!(".tokenwell-{random:016x}.tmp"));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path);
        match opened {
            Ok(file) => return Ok((file, path)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tokenwell-cli-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_0600_and_reads_back() {
        let dir = scratch("rw");
        let mut cache = CacheFile::new(&dir.join("sub/token.json"));
        assert!(cache.write("{\"x\":1}"));
        let mode = std::fs::metadata(cache.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(cache.read().as_deref(), Some("{\"x\":1}"));
        assert!(cache.take_problems().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_symlink_and_a_group_writable_file() {
        let dir = scratch("refuse");
        std::fs::write(dir.join("real.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.join("real.json"), dir.join("link.json")).unwrap();
        let mut linked = CacheFile::new(&dir.join("link.json"));
        assert_eq!(linked.read(), None);
        let problems = linked.take_problems();
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].1, problems[0].2.as_str()), (CacheFileProblem::Ignored, "symlink"));

        let open = dir.join("open.json");
        std::fs::write(&open, "{}").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o620)).unwrap();
        let mut writable = CacheFile::new(&open);
        assert_eq!(writable.read(), None);
        assert_eq!(writable.take_problems()[0].2, "insecure_permissions: 0o620");

        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut readable = CacheFile::new(&open);
        assert_eq!(readable.read().as_deref(), Some("{}"));
        assert_eq!(readable.take_problems()[0].1, CacheFileProblem::PermissionsTightened);
        assert_eq!(std::fs::metadata(&open).unwrap().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_holder_times_out() {
        let dir = scratch("lock");
        let mut first = CacheFile::new(&dir.join("t.json"));
        let mut second = CacheFile::new(&dir.join("t.json"));
        assert_eq!(first.lock(Duration::ZERO), Lock::Held);
        assert_eq!(second.lock(Duration::from_millis(20)), Lock::Busy);
        first.unlock();
        assert_eq!(second.lock(Duration::ZERO), Lock::Held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
