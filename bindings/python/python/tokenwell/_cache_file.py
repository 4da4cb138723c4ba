"""The on-disk token cache: the engine's snapshot in a file, for processes that
start and exit (crons) and for processes sharing one client.

- Written atomically (a temporary file in the same directory, mode 0600,
  fsync, then ``os.replace``), so a reader sees the old or the new snapshot.
- A lock file beside it (``<path>.lock``, ``fcntl.flock``) serializes token
  fetches across processes: the process that holds it fetches and writes;
  another waits, then finds the fresh snapshot and makes no request.
- What to do with a snapshot is the engine's call (``import_snapshot`` refuses
  a corrupt, foreign or expired one); this file only moves bytes.

Cache directories may be shared with other users (``/tmp``, a group-writable
``/var/cache``), so neither file is trusted by its name. Both are opened with
``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`` (a planted symlink is refused, a FIFO
cannot block the open) and checked on the open descriptor: a regular file,
with one link, owned by this user, not writable by group or others. A cache
file readable by others is tightened to 0600 (``fchmod``) when it is ours.
Every refusal and every ``OSError`` is reported through ``report`` (an event)
and the account carries on without that file: nothing here raises.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process lock, the cache still works
    fcntl = None  # type: ignore[assignment]

__all__ = ["CacheFile", "HELD", "BUSY", "UNUSABLE"]

# Snapshots are a few hundred bytes; anything much larger is not ours.
MAX_SNAPSHOT_BYTES = 1 << 20

_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

# What ``lock`` did.
HELD, BUSY, UNUSABLE = "held", "busy", "unusable"

Signature = Tuple[int, int, int, int]
Report = Callable[..., None]


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def _error_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, type(error).__name__)


class _Refused(Exception):
    """A file that must not be used: ``reason`` says why; ``error`` names the errno."""

    def __init__(self, reason: str, error: Optional[str] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error

    def fields(self) -> Dict[str, str]:
        return {"reason": self.reason} if self.error is None else {"reason": self.reason, "error": self.error}


def _open_checked(path: str, flags: int) -> Tuple[int, os.stat_result]:
    """Opens ``path`` without following a symlink or blocking, and checks the
    descriptor. Returns ``(fd, stat)`` or raises ``_Refused``."""
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o600)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's answer to O_NOFOLLOW
            raise _Refused("symlink") from None
        if error.errno in (errno.ENOENT, errno.ENOTDIR) and not flags & os.O_CREAT:
            raise FileNotFoundError(error.errno, error.strerror, path) from None  # nothing there to read
        raise _Refused("unusable", _error_name(error)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("not_regular_file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise _Refused("foreign_owner")
        if st.st_nlink != 1:
            # A hard link could make fchmod change another file's mode.
            raise _Refused("hard_linked")
        return fd, st
    except BaseException:
        os.close(fd)
        raise


class CacheFile:
    """One snapshot file and its lock. Problems are reported through
    ``report(problem, **fields)`` (the engine's cache-file problem names), each one once until it changes."""

    def __init__(self, path: "os.PathLike[str] | str", report: Report) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.lock_path = self.path + ".lock"
        self._report = report
        self._thread_lock = threading.Lock()
        self._lock_fd: Optional[int] = None
        self._seen: Optional[Signature] = None
        self._last_problem: Dict[str, Tuple[str, Dict[str, Any]]] = {}  # "read"/"lock": the last one reported

    def _problem(self, where: str, event: str, **fields: Any) -> None:
        """Reports a problem unless the same one was the last reported for ``where``."""
        if self._last_problem.get(where) == (event, fields):
            return
        self._last_problem[where] = (event, fields)
        self._report(event, path=self.path if where != "lock" else self.lock_path, **fields)

    # ---- reading and writing ---------------------------------------------------

    def read_if_changed(self) -> Optional[str]:
        """The file's text if it changed since the last read or write, else
        ``None``. A file that may not be used is reported (problem ``ignored`` with
        a ``reason``) and read as ``None``."""
        try:
            fd, st = _open_checked(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._seen = None
            self._last_problem.pop("read", None)
            return None
        except _Refused as refused:
            self._seen = None
            self._problem("read", "ignored", **refused.fields())
            return None
        try:
            signature = _signature(st)
            if signature == self._seen:
                return None
            self._seen = signature
            if st.st_mode & 0o022:
                # Another user could have planted a token for us to send: ignore it
                # (the next snapshot replaces the file).
                self._problem("read", "ignored", reason="insecure_permissions", mode=oct(stat.S_IMODE(st.st_mode)))
                return None
            if st.st_mode & 0o077:
                # Readable by others: ours, and only we could write it, so keep
                # it, but no longer let anyone else read the token.
                try:
                    os.fchmod(fd, 0o600)
                except OSError as error:
                    self._problem("read", "ignored", reason="insecure_permissions", error=_error_name(error))
                    return None
                self._report("permissions_tightened", path=self.path, mode=oct(stat.S_IMODE(st.st_mode)))
            if st.st_size > MAX_SNAPSHOT_BYTES:
                self._problem("read", "ignored", reason="too_large")
                return None
            try:
                data = _read_all(fd, MAX_SNAPSHOT_BYTES + 1)
            except OSError as error:
                self._problem("read", "ignored", reason="unreadable", error=_error_name(error))
                return None
        finally:
            os.close(fd)
        self._last_problem.pop("read", None)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self._report("ignored", path=self.path, reason="not_utf8")
            return None

    def write(self, text: str) -> bool:
        """Atomically replaces the file with ``text`` (mode 0600). A rename never
        follows a symlink or opens what it replaces. False (and a
        problem ``write_failed``) if it could not be written."""
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tokenwell-", suffix=".tmp")  # 0600, O_EXCL
        except OSError as error:
            self._report("write_failed", path=self.path, error=_error_name(error))
            return False
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            self._report("write_failed", path=self.path, error=_error_name(error))
            return False
        try:
            self._seen = _signature(os.lstat(self.path))
        except OSError:
            self._seen = None
        return True

    def remove_if_unchanged(self) -> bool:
        """Removes the file if it is still the one last read or written here
        (so a token the engine dropped is not loaded again by the next process)."""
        try:
            if self._seen is None or _signature(os.lstat(self.path)) != self._seen:
                return False
            os.unlink(self.path)
        except OSError:
            return False
        self._seen = None
        return True

    # ---- the cross-process lock ----------------------------------------------------

    def lock(self, timeout: float) -> str:
        """Takes the lock, waiting at most ``timeout`` seconds (0: only if free
        now; the GIL is released while waiting). Returns ``HELD`` (release it
        with ``unlock``), ``BUSY`` (another holder kept it past the timeout; a
        problem ``lock_timeout`` when ``timeout`` > 0) or ``UNUSABLE`` (the
        lock file may not be used; reported as ``lock_failed``). Either
        way but ``HELD``, go on without it."""
        deadline = time.monotonic() + max(timeout, 0.0)
        if not self._thread_lock.acquire(timeout=max(timeout, 0.0)):
            return self._busy(timeout)
        try:
            outcome = self._take_file_lock(deadline)
        except BaseException:
            self._thread_lock.release()
            raise
        if outcome != HELD:
            self._thread_lock.release()
            if outcome == BUSY:
                return self._busy(timeout)
        return outcome

    def _busy(self, timeout: float) -> str:
        if timeout > 0:
            self._report("lock_timeout", path=self.path)
        return BUSY

    def unlock(self) -> None:
        """Releases the lock taken by ``lock``."""
        fd, self._lock_fd = self._lock_fd, None
        try:
            if fd is not None:
                os.close(fd)  # closing the descriptor releases the flock
        finally:
            self._thread_lock.release()

    def _take_file_lock(self, deadline: float) -> str:
        if fcntl is None:
            return HELD
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd, st = _open_checked(self.lock_path, os.O_RDWR | os.O_CREAT)
        except OSError as error:
            self._problem("lock", "lock_failed", reason="unusable", error=_error_name(error))
            return UNUSABLE
        except _Refused as refused:
            self._problem("lock", "lock_failed", **refused.fields())
            return UNUSABLE
        if st.st_mode & 0o077:
            try:
                os.fchmod(fd, 0o600)  # ours (checked): nobody else needs it
            except OSError as error:
                os.close(fd)
                self._problem("lock", "lock_failed", reason="insecure_permissions", error=_error_name(error))
                return UNUSABLE
        self._last_problem.pop("lock", None)
        # flock has no timed wait: try without blocking, then back off briefly,
        # so a stuck peer cannot hang us past the deadline.
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return HELD
            except BlockingIOError:
                pass
            except OSError as error:
                os.close(fd)
                self._problem("lock", "lock_failed", reason="unusable", error=_error_name(error))
                return UNUSABLE
            except BaseException:
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                os.close(fd)
                return BUSY
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.05)


def _read_all(fd: int, limit: int) -> bytes:
    chunks = []
    total = 0
    while total < limit:
        chunk = os.read(fd, limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
