"""The per-KB write lock: one writer at a time per KB folder; readers are never blocked.

Every writer of a KB folder (`kb build`, `kb index`, `kb add-faces`, i.e. `KBWriter`,
`build_text_index`, `build_face_index`) holds an OS file lock on `<KB folder>/.write.lock`
(`filelock`: `flock` on POSIX) for its whole run. A second writer does not wait: it fails at
once with `KBBusyError` ("KB 'w' is being built by process 1234 since …"), since a build can
take hours and a queued second build would silently redo or undo the first one. The OS drops the
lock when its holder exits or is killed (SIGKILL included), so a lock is never stale.

Readers take no lock: writers only rename complete files into place. While holding the lock, a
writer removes the temporary files (`.<name>.<pid>-<random>.tmp`) that killed writers left.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from filelock import FileLock, Timeout

from kb.errors import KBBusyError
from kb.files import TEMP_SUFFIX

log = logging.getLogger(__name__)

LOCK_FILE = ".write.lock"
_STALE = (f".*{TEMP_SUFFIX}", f".*{TEMP_SUFFIX}-*", "kb.sqlite.tmp", "kb.sqlite.tmp-*")  # the last two: older versions


class WriteLock:
    """The write lock of KB folder `kb_dir`, held by a writer that is `doing` something to it
    ("built", "indexed", …). Use as a context manager, or `acquire()` / `release()`."""

    def __init__(self, kb_dir: str | os.PathLike, doing: str):
        self.kb_dir = Path(kb_dir)
        self.doing = doing
        self.path = self.kb_dir / LOCK_FILE
        self._lock: FileLock | None = None

    def acquire(self) -> WriteLock:
        """Take the lock or raise `KBBusyError` at once; then remove stale temporary files."""
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise KBBusyError(self._busy_message()) from None
        self._lock = lock
        # the holder's description, for the message others get (a second descriptor: closing
        # it does not release the flock of the first)
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        self.path.write_text(json.dumps({"pid": os.getpid(), "doing": self.doing, "since": since}))
        for pattern in _STALE:
            for stale in self.kb_dir.glob(pattern):
                log.info("removing %s, left by an interrupted writer", stale.name)
                stale.unlink(missing_ok=True)
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _busy_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            who = f"being {holder['doing']} by process {holder['pid']} (since {holder['since']})"
        except (OSError, ValueError, KeyError, TypeError):  # written a moment after locking
            who = "being written by another process"
        return (f"KB {self.kb_dir.name!r} is {who}: wait for it to finish, or use another --kb "
                f"(a killed process releases the lock at once)")
