"""Disk space: reserve it before writing through a memory map, and name a full disk.

A write through a memory map to a sparse file has no way to report a full disk: the kernel
kills the process with SIGBUS when a page cannot be backed. So every memory-mapped file the
app fills (the patch cache in ``cache/``, the pyramid levels of a mosaic being written) is
**reserved** first with ``posix_fallocate``: the blocks are allocated now, or the call fails
with ENOSPC and a :class:`StorageFullError` says how much is needed and free. Where the file
system cannot allocate (no ``posix_fallocate``, or EINVAL/EOPNOTSUPP), the free space
reported by the file system is checked instead.

Thread rules: any thread.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from cdfis_desktop.core.errors import StorageFullError

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""OS errors meaning "no room": disk full, quota exceeded, file size limit."""


def is_full_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError saying the disk (or a quota / size limit) is full."""
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def full_error(
    path: str | os.PathLike[str], what: str, needed_bytes: int | None = None
) -> StorageFullError:
    """A :class:`StorageFullError` for ``what`` (e.g. "the slide 8863.tiff") at ``path``,
    naming the space needed (when known) and free."""
    folder = Path(path).parent
    free = free_bytes(folder)
    need = f"it needs {_mib(needed_bytes)}, " if needed_bytes is not None else ""
    have = f"only {_mib(free)} are free" if free is not None else "the disk is full"
    return StorageFullError(
        f"not enough disk space for {what}: {need}{have} in {folder}; free some space (or "
        "choose a folder on another disk) and try again. Nothing saved before was lost"
    )


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes available to this user in ``folder``'s file system (None when unknown)."""
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


def reserve(path: str | os.PathLike[str], nbytes: int, what: str) -> None:
    """Allocate the first ``nbytes`` bytes of existing file ``path`` (it grows to at least
    that size), so later writes through a memory map cannot hit a full disk.

    Raises :class:`StorageFullError` (naming ``what``, the space needed and free) when
    there is no room; the file is left as it was (the caller removes it)."""
    path = Path(path)
    if nbytes <= 0:
        return
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is not None:
        fd = os.open(path, os.O_RDWR)
        try:
            allocate(fd, 0, nbytes)
            return
        except OSError as exc:
            if exc.errno in FULL_ERRNOS:
                raise full_error(path, what, nbytes) from None
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        finally:
            os.close(fd)
    free = free_bytes(path.parent)
    allocated = _allocated_bytes(path)
    if free is not None and nbytes - allocated > free:
        raise full_error(path, what, nbytes)


def reserved_memmap(
    path: str | os.PathLike[str], dtype: np.dtype | type, shape: tuple[int, ...], what: str
) -> np.memmap:
    """A new ``.npy`` file at ``path`` opened as a writable memory map of ``shape`` and
    ``dtype``, with all its bytes reserved (:func:`reserve`). Raises StorageFullError
    when it does not fit; on any error the file is deleted first."""
    path = Path(path)
    try:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        try:
            reserve(path, int(array.offset) + int(array.nbytes), what)
        except BaseException:
            del array
            raise
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if is_full_error(exc):  # the header or the sparse file's last byte did not fit
            raise full_error(path, what, int(np.prod(shape)) * np.dtype(dtype).itemsize) from None
        raise
    return array


def _allocated_bytes(path: Path) -> int:
    try:
        stat = path.stat()
    except OSError:
        return 0
    blocks = getattr(stat, "st_blocks", None)
    return int(blocks) * 512 if blocks is not None else int(stat.st_size)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f} MiB"
