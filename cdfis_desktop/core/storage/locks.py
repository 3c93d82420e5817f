"""Per-run writer locks: an OS file lock held by the process that writes a run.

The lock file is ``<project>/locks/run-<id>.lock``. While a run is ``running`` its writer
process holds an exclusive, non-blocking OS lock on it (``flock`` on POSIX, ``msvcrt`` on
Windows). The OS drops the lock when the process dies, even by SIGKILL, so "status is
running but the lock is free" means the writer is gone: the run was interrupted. The file
also holds ``pid@host`` of the holder, for error messages only (liveness is the lock).

Locks are per open file, so two :class:`RunLock` objects in one process also exclude each
other. Lock files must live on a local disk; network file systems may not honour them.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import IO

from cdfis_desktop.core.errors import RunLockedError, StoreError

if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def writer_identity() -> tuple[int, str]:
    """``(pid, hostname)`` of this process, as recorded with a running run."""
    return os.getpid(), socket.gethostname()


class RunLock:
    """The exclusive writer lock of one run. Not thread-safe: owned by the writing thread."""

    def __init__(self, locks_dir: Path, run_id: int) -> None:
        self.path = locks_dir / f"run-{run_id}.lock"
        self.run_id = run_id
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def try_acquire(self) -> bool:
        """Take the lock if free; return whether this object now holds it.
        Raises :class:`StoreError` when the lock file cannot be created."""
        if self._handle is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        except OSError as exc:
            raise StoreError(
                f"cannot create the run lock {self.path}: {exc.strerror or exc}; "
                "check the project folder's permissions"
            ) from exc
        if not _try_lock(handle):
            handle.close()
            return False
        pid, host = writer_identity()
        handle.seek(0)
        handle.truncate()
        handle.write(f"{pid}@{host}\n")
        handle.flush()
        self._handle = handle
        return True

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the holder."""
        if not self.try_acquire():
            raise RunLockedError(
                f"run {self.run_id} is being written by another process ({self.holder()}); "
                "stop that process first, or start a new run"
            )

    def holder(self) -> str:
        """``pid@host`` written by the last holder ('unknown' if unreadable)."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        if self._handle is None:
            return
        try:
            _unlock(self._handle)
        finally:
            self._handle.close()
            self._handle = None


class RunLocks:
    """The writer locks of the runs this open project writes (one per run id). Any
    thread may ask; each lock is taken and released by the run's writing thread."""

    def __init__(self, locks_dir: Path) -> None:
        self.locks_dir = locks_dir
        self._held: dict[int, RunLock] = {}

    def take(self, run_id: int) -> RunLock:
        """The lock of ``run_id``, taken now if this project does not hold it yet;
        :class:`RunLockedError` when another process holds it."""
        lock = self._held.get(run_id) or RunLock(self.locks_dir, run_id)
        lock.acquire()
        self._held[run_id] = lock
        return lock

    def holds(self, run_id: int) -> bool:
        return run_id in self._held

    def release(self, run_id: int) -> None:
        """Release the lock of ``run_id`` (no-op when not held)."""
        lock = self._held.pop(run_id, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        for run_id in list(self._held):
            self.release(run_id)
