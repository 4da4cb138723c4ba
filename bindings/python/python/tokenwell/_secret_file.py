"""A secret file (``client_secret_file`` or ``CLIENT_SECRET_FILE``) or a key
file (``private_key_file`` or ``CLIENT_PRIVATE_KEY_FILE``), watched by
the engine's rule (``SecretFileWatch``): a ``stat`` at most once a second on
the token path and at once after ``invalid_client``; a read whenever device,
inode, size, mtime or ctime changed (an edit in place, a rename over it, a
Kubernetes ``..data`` symlink swap). What the contents mean, and what happens
to a bad file, is the engine's: ``replace_secrets_from_file`` (or
``replace_keys_from_file``) applies them, ``report_secret_file_problem``
reports an unreadable file. Both keep the secrets (keys) already loaded and
emit the engine's ``secret_file_rejected`` event.
"""

from __future__ import annotations

import errno
import os
from typing import Tuple

from . import _native
from ._errors import InvalidConfigError

__all__ = ["SecretFile"]

# How long a token path may go without looking at the file (seconds).
CHECK_INTERVAL_S = _native.SecretFileWatch.CHECK_INTERVAL_MS / 1000.0


def _stamp(st: os.stat_result) -> "_native.FileStamp":
    return _native.FileStamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return errno.errorcode.get(error.errno, type(error).__name__)
    return type(error).__name__


class SecretFile:
    """The file at ``path``, named ``source`` in errors and events (the
    variable or the option that named it); ``what`` is ``"secret"`` or
    ``"key"`` (a private key file). Methods that take the engine are called
    with the account's lock held."""

    def __init__(self, path: str, source: str, what: str = "secret") -> None:
        self.path = path
        self.source = source
        self.what = what
        self._watch = _native.SecretFileWatch()

    def _problem(self, error: BaseException) -> str:
        # The path helps a person find the file; the contents are never shown.
        return f"cannot read the {self.what} file {self.path} ({_reason(error)})"

    def _stat_and_read(self) -> Tuple["_native.FileStamp", str]:
        stamp = _stamp(os.stat(self.path))
        with open(self.path, "r", encoding="utf-8") as handle:
            return stamp, handle.read()

    def read_at_start(self, now_ms: int) -> str:
        """The contents for the configuration; raises ``InvalidConfigError``
        naming the source and the path when the file cannot be read."""
        try:
            stamp, contents = self._stat_and_read()
        except (OSError, UnicodeDecodeError) as error:
            raise _native.config_error(self.source, self._problem(error)) from None
        self._watch.changed(stamp, now_ms)
        self._watch.read(stamp)
        return contents

    def check(self, engine: "_native.TokenCache", now_ms: int, forced: bool = False) -> None:
        """Applies the file if the watch says it is due and it changed."""
        if not self._watch.due(now_ms, forced):
            return
        try:
            stamp = _stamp(os.stat(self.path))
        except OSError as error:
            self._watch.failed(now_ms)
            engine.report_secret_file_problem(self.source, self._problem(error), now_ms)
            return
        if not self._watch.changed(stamp, now_ms):
            return
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                contents = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            self._watch.failed(now_ms)
            engine.report_secret_file_problem(self.source, self._problem(error), now_ms)
            return
        # Read, valid or not: an invalid file is not read again until it changes.
        self._watch.read(stamp)
        try:
            if self.what == "key":
                engine.replace_keys_from_file(contents, self.source, now_ms)
            else:
                engine.replace_secrets_from_file(contents, self.source, now_ms)
        except InvalidConfigError:
            pass  # the engine kept the secrets (keys) and queued secret_file_rejected
