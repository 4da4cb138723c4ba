"""The on-disk token cache: the engine's snapshot in a file, for processes that
start and exit (crons) and for processes sharing one client.

- Written atomically (a temporary file in the same directory, mode 0600,
  fsync, then ``os.replace``), so a reader sees the old or the new snapshot.
- A lock file beside it (``<path>.lock``, ``fcntl.flock``) serializes token
  fetches across processes: the process that holds it fetches and writes;
  another waits, then finds the fresh snapshot and makes no request.
- What to do with a snapshot is the engine's call (``import_snapshot`` refuses
  a corrupt, foreign or expired one); this file only moves bytes.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process lock, the cache still works
    fcntl = None  # type: ignore[assignment]

__all__ = ["CacheFile"]

# Snapshots are a few hundred bytes; anything much larger is not ours.
MAX_SNAPSHOT_BYTES = 1 << 20

Signature = Tuple[int, int, int, int]


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


class CacheFile:
    """One snapshot file and its lock."""

    def __init__(self, path: "os.PathLike[str] | str") -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.lock_path = self.path + ".lock"
        self._thread_lock = threading.Lock()
        self._lock_fd: Optional[int] = None
        self._seen: Optional[Signature] = None

    # ---- reading and writing ---------------------------------------------------

    def read_if_changed(self) -> Tuple[Optional[str], Optional[str]]:
        """``(text, problem)``: the file's text if it changed since the last read
        or write; ``problem`` is a reason to ignore it (``"unreadable"``,
        ``"insecure_permissions"``, ``"too_large"``, ``"not_utf8"``)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen = None
            return None, None
        except OSError:
            return None, "unreadable"
        signature = _signature(st)
        if signature == self._seen:
            return None, None
        self._seen = signature
        if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
            # Another user could have planted a token for us to send: ignore it.
            return None, "insecure_permissions"
        if st.st_size > MAX_SNAPSHOT_BYTES:
            return None, "too_large"
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_SNAPSHOT_BYTES + 1)
        except OSError:
            return None, "unreadable"
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "not_utf8"

    def write(self, text: str) -> None:
        """Atomically replaces the file with ``text`` (mode 0600)."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tokenwell-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        try:
            self._seen = _signature(os.stat(self.path))
        except OSError:
            self._seen = None

    def remove_if_unchanged(self) -> bool:
        """Removes the file if it is still the one last read or written here
        (so a token the engine dropped is not loaded again by the next process)."""
        try:
            if self._seen is None or _signature(os.stat(self.path)) != self._seen:
                return False
            os.unlink(self.path)
        except OSError:
            return False
        self._seen = None
        return True

    # ---- the cross-process lock ----------------------------------------------------

    def lock(self, timeout: float) -> bool:
        """Takes the lock, waiting at most ``timeout`` seconds (the GIL is
        released while waiting). False: not taken (go on without it)."""
        if not self._thread_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        try:
            if self._take_file_lock(time.monotonic() + timeout):
                return True
        except BaseException:
            self._thread_lock.release()
            raise
        self._thread_lock.release()
        return False

    def try_lock(self) -> bool:
        """Takes the lock only if that needs no waiting."""
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            if self._take_file_lock(None):
                return True
        except BaseException:
            self._thread_lock.release()
            raise
        self._thread_lock.release()
        return False

    def unlock(self) -> None:
        """Releases the lock taken by ``lock`` or ``try_lock``."""
        fd, self._lock_fd = self._lock_fd, None
        try:
            if fd is not None:
                os.close(fd)  # closing the descriptor releases the flock
        finally:
            self._thread_lock.release()

    def _take_file_lock(self, deadline: Optional[float]) -> bool:
        if fcntl is None:
            return True
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        # flock has no timed wait: try without blocking, then back off briefly,
        # so a stuck peer cannot hang us past the deadline.
        pause = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return True
            except BlockingIOError:
                pass
            except BaseException:
                os.close(fd)
                raise
            if deadline is None or time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.05)
