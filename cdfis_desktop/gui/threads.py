"""A registry of the GUI's background threads, so shutdown and tests can check them.

Every :class:`QThreadPool` and :class:`QThread` the GUI starts is registered here (weakly).
:func:`busy_threads` lists the ones still doing work; the application waits for them on
exit and the test suite fails a test that leaves one running. GUI thread only.
"""

from __future__ import annotations

import weakref

import shiboken6
from PySide6.QtCore import QThread, QThreadPool

_pools: weakref.WeakSet[QThreadPool] = weakref.WeakSet()
_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def register_pool(pool: QThreadPool) -> QThreadPool:
    _pools.add(pool)
    return pool


def register_thread(thread: QThread) -> QThread:
    _threads.add(thread)
    return thread


def busy_threads() -> list[str]:
    """Descriptions of registered pools with active work and registered running threads."""
    pools = [p for p in list(_pools) if shiboken6.isValid(p)]
    threads = [t for t in list(_threads) if shiboken6.isValid(t)]
    busy = [
        f"thread pool {pool.objectName() or id(pool)}: {pool.activeThreadCount()} active"
        for pool in pools
        if pool.activeThreadCount() > 0
    ]
    busy += [
        f"thread {thread.objectName() or type(thread).__name__}"
        for thread in threads
        if thread.isRunning()
    ]
    return busy
