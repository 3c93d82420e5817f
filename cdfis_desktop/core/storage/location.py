"""Where a project's database is, and whether it may be written.

The database is ``<project>/project.db`` unless ``project.toml`` sets ``database_url`` (or
the caller passes ``url``). That setting is **confined**: a project folder may come from a
colleague or a shared drive, and a URL pointing elsewhere would make even ``cdfis runs``
create or change a database outside the folder, or, with a server URL and a driver
installed, open a network connection. So it may only name an SQLite file inside the
project folder (links resolved): ``sqlite:///<path>`` or a plain path, relative paths
meaning relative to the folder. Anything else is refused with a :class:`StoreError`.

A project on a read-only disk or folder (a DVD, a read-only share, an archive) is opened
**read-only**: SQLite's ``mode=ro``, plus ``immutable=1`` when no ``-wal`` file is present
(SQLite could not create its ``-shm`` file there; it then assumes nobody changes the
file while it is open). Every query works; writes raise :class:`StoreError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cdfis_desktop.core.errors import StoreError

DATABASE_FILE = "project.db"


@dataclass(frozen=True)
class DatabaseLocation:
    """``url``: the SQLAlchemy URL to open; ``path``: the SQLite file; ``read_only``: the
    file or its folder cannot be written; ``is_default``: ``path`` is ``project.db``."""

    url: str
    path: Path
    read_only: bool
    is_default: bool


def locate_database(folder: Path, configured: str | None) -> DatabaseLocation:
    """The database of the project in ``folder`` (resolved), given ``configured`` (the
    ``database_url`` setting or the caller's URL; None: ``project.db``).

    Raises StoreError for a URL that is not SQLite or a file outside ``folder``."""
    default = folder / DATABASE_FILE
    path = default if not configured else _confined_path(folder, configured)
    read_only = _is_read_only(path)
    return DatabaseLocation(
        url=_sqlite_url(path, read_only),
        path=path,
        read_only=read_only,
        is_default=path == default,
    )


def _confined_path(folder: Path, configured: str) -> Path:
    text = configured.strip()
    scheme, separator, rest = text.partition("://")
    if separator:
        if scheme.lower() not in ("sqlite", "sqlite+pysqlite"):
            raise StoreError(
                f"{folder / 'project.toml'}: database_url {text!r} is not an SQLite file; a "
                "project keeps its database in its own folder (remove database_url to use "
                f"{DATABASE_FILE})"
            )
        text = rest[1:] if rest.startswith("/") else rest  # sqlite:///x -> x, sqlite:////x -> /x
        text = text.split("?", 1)[0]
    if not text or text == ":memory:":
        raise StoreError(
            f"{folder / 'project.toml'}: database_url {configured!r} names no database file"
        )
    candidate = Path(text).expanduser()
    path = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    if not path.is_relative_to(folder):
        raise StoreError(
            f"{folder / 'project.toml'}: database_url points to {path}, outside the project "
            f"folder; a project keeps its database inside its folder (remove database_url to "
            f"use {DATABASE_FILE}, or move the file into {folder})"
        )
    return path


def _is_read_only(path: Path) -> bool:
    """True when ``path`` exists but it, or its folder, cannot be written (a read-only
    mount counts: ``access`` reports EROFS even for root)."""
    if not path.exists():
        return False
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _sqlite_url(path: Path, read_only: bool) -> str:
    if not read_only:
        return f"sqlite:///{path}"
    wal = path.with_name(path.name + "-wal")
    options = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return f"sqlite:///file:{quote(str(path))}?{options}&uri=true"
