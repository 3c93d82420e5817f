"""Atomic output files and output-path checks shared by reports and exports.

Every report or export is written to a scratch file in the target's folder
(:mod:`cdfis_desktop.core.scratch`: the mode a plain ``open`` gives, respecting the umask)
and moved into place with ``os.replace``: readers never see half a file, and a failure (or a
cancel) leaves an older file of the same name untouched. Scratch left by a killed earlier
write of the same file is removed first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdfis_desktop.core.disk import full_error, is_full_error
from cdfis_desktop.core.errors import CdfisError, ExportError
from cdfis_desktop.core.scratch import remove_orphans_of, scratch_file


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit move it onto ``path``.

    On any exception the temporary file is removed and the exception propagates (an
    ``OSError`` becomes :class:`ExportError` naming ``path``, or :class:`StorageFullError`
    when the disk is full). The folder must exist.
    """
    target = Path(path)
    remove_orphans_of(target)
    try:
        tmp_path = scratch_file(target, ".partial")
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _write_error(target, exc) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def ensure_folder(path: str | os.PathLike[str]) -> Path:
    """Create folder ``path`` (and parents) if missing; :class:`ExportError` if impossible."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(folder, exc) from exc
    if not folder.is_dir():
        raise ExportError(f"cannot write into {folder}: it is not a folder; choose a folder")
    return folder


def _write_error(path: Path, exc: OSError) -> CdfisError:
    if is_full_error(exc):
        return full_error(path, path.name)
    reason = exc.strerror or str(exc)
    return ExportError(
        f"cannot write {path}: {reason}; choose a path in a folder that exists and that you "
        "can write to"
    )
