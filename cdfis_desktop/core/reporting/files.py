"""Atomic output files and output-path checks shared by reports and exports.

Every report or export is written to a temporary file in the target's folder and moved
into place with ``os.replace``: readers never see half a file, and a failure (or a cancel)
leaves an older file of the same name untouched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdfis_desktop.core.errors import ExportError


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit move it onto ``path``.

    On any exception the temporary file is removed and the exception propagates (an
    ``OSError`` becomes :class:`ExportError` naming ``path``). The folder must exist.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    tmp_path = _new_file(folder, target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _write_error(target, exc) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _new_file(folder: Path, target: Path) -> Path:
    """An empty, new temporary file in ``folder`` with the permissions of any new file
    (0666 minus the umask; ``tempfile.mkstemp`` would make it 0600, and ``os.replace``
    would give the export that mode)."""
    for _ in range(100):
        candidate = folder / f".{target.name}.{secrets.token_hex(4)}.partial"
        try:
            handle = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _write_error(target, exc) from exc
        os.close(handle)
        return candidate
    raise ExportError(f"cannot make a temporary file next to {target}")


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


def _write_error(path: Path, exc: OSError) -> ExportError:
    reason = exc.strerror or str(exc)
    return ExportError(
        f"cannot write {path}: {reason}; choose a path in a folder that exists and that you "
        "can write to"
    )
