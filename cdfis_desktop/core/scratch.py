"""Scratch files: the temporary files and folders every output is written through.

Every file the app writes (reports, exports, checkpoints, slides, backups) is first written
under a scratch name in the target's folder and then moved into place with ``os.replace``,
so readers never see half a file. The scratch name says which process owns it::

    .<target name>.cdfis-<host>-<pid>.<random><suffix>     (files)
    <prefix>cdfis-<host>-<pid>-<random>                    (folders, e.g. ``.pyramid-``)

where ``<host>`` is 8 hex digits of a hash of the computer's name. A process killed while
writing (SIGKILL, power cut, full disk) leaves its scratch behind; :func:`is_orphan` tells
whether the owner is gone (same computer, process no longer alive; on Windows, older than
a day), so ``cdfis check --fix``, a rerun of ``cdfis import-patches`` and the next write of
the same file (:func:`remove_orphans_of`) can delete it. Scratch written before owners were
recorded (``.<name>.<random>.partial|.tmp``, ``.pyramid-<random>``) counts as orphaned once
it is an hour old.

Permissions: ``tempfile.mkstemp`` creates files readable by their owner only (0600), and
``os.replace`` keeps that mode. :func:`scratch_file` gives them the mode a plain ``open``
would (0666 minus the umask) instead, so colleagues sharing a project can read its reports,
exports, checkpoints and slides as the umask allows.

Thread rules: every function may be called from any thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

LEGACY_MIN_AGE_S = 3600.0
"""Scratch without an owner tag is an orphan once it is this old (seconds)."""
WINDOWS_MIN_AGE_S = 86_400.0
"""On Windows a process's liveness is not checked: scratch is an orphan after a day."""
SCRATCH_SUFFIXES = (".partial", ".tmp")
SCRATCH_DIR_PREFIXES = (".pyramid-",)

_TAGGED = re.compile(r"cdfis-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)[.-]")
_LEGACY_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}(\.partial|\.tmp)$")


def host_tag() -> str:
    """8 hex digits naming this computer in scratch names."""
    return hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def owner_tag() -> str:
    """``cdfis-<host>-<pid>``: the owner part of this process's scratch names."""
    return f"cdfis-{host_tag()}-{os.getpid()}"


def file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 minus the process's umask."""
    return 0o666 & ~_umask()


def scratch_file(target: str | os.PathLike[str], suffix: str = ".partial") -> Path:
    """Create an empty scratch file next to ``target`` (same folder, so ``os.replace``
    onto ``target`` is atomic), with :func:`file_mode` permissions. Raises OSError."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.{owner_tag()}.", suffix=suffix, dir=folder
    )
    os.close(handle)
    try:
        os.chmod(name, file_mode())
    except OSError:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def scratch_folder(folder: str | os.PathLike[str], prefix: str) -> Path:
    """Create an empty scratch folder ``<prefix>cdfis-<host>-<pid>-<random>`` in
    ``folder``; the caller removes it (``shutil.rmtree``). Raises OSError."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=folder))


def is_scratch(path: Path) -> bool:
    """Whether ``path``'s name is one of our scratch names (tagged or legacy)."""
    name = path.name
    if name.startswith(SCRATCH_DIR_PREFIXES):
        return True
    if not name.startswith(".") or not name.endswith(SCRATCH_SUFFIXES):
        return False
    return _TAGGED.search(name) is not None or _LEGACY_FILE.match(name) is not None


def is_orphan(path: Path, *, now: float | None = None) -> bool:
    """Whether scratch ``path`` was left by a process that is gone (see the module
    docstring). False for names that are not scratch, for scratch of a live process and
    for scratch made on another computer (its owner cannot be checked from here)."""
    if not is_scratch(path):
        return False
    try:
        age_s = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False
    tagged = _TAGGED.search(path.name)
    if tagged is None:
        return age_s >= LEGACY_MIN_AGE_S
    if tagged["host"] != host_tag():
        return False
    if os.name == "nt":
        return age_s >= WINDOWS_MIN_AGE_S
    return not _process_alive(int(tagged["pid"]))


def orphans_in(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Orphaned scratch files and folders directly inside ``folders`` (missing folders
    are skipped), sorted."""
    found: list[Path] = []
    for folder in folders:
        try:
            entries = list(Path(folder).iterdir())
        except OSError:
            continue
        found.extend(p for p in entries if is_orphan(p))
    return sorted(found)


def remove(paths: Iterable[Path]) -> list[Path]:
    """Delete scratch files and folders; returns those removed (already gone counts)."""
    removed = []
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
        removed.append(path)
    return removed


def remove_orphans_of(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the orphaned scratch files of ``target`` (a killed earlier write of the
    same file); returns those removed. Never raises."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    try:
        siblings = [p for p in folder.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []
    return remove(p for p in siblings if is_orphan(p))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: alive, owned by another user
        return True
    return True


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting and restoring at once
    os.umask(mask)
    return mask
