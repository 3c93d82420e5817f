"""Versioned schema migrations: a small ordered list of functions, one per version step.

Why not Alembic: the schema has a handful of tables, one shipping backend (SQLite) and
changes that are additive; a list of plain functions ``MIGRATIONS[v]`` (upgrade v -> v+1)
run inside one transaction after a backup copy is simpler to read, test and package than
an Alembic environment. A database newer than the code is never touched (the caller
raises :class:`SchemaVersionError`).

History: version 1 is the prototype layout (slides without a patient group, no per-patch
predictions); version 2 adds ``slides.group_name`` and the ``predictions`` table.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from cdfis_desktop.core.storage.schema import Prediction


def _v1_to_v2(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE slides ADD COLUMN group_name VARCHAR(200) NOT NULL DEFAULT ''"))
    Prediction.__table__.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}
"""``MIGRATIONS[v](conn)`` upgrades a version-``v`` database to ``v + 1``."""


def migrate(conn: Connection, from_version: int, to_version: int) -> None:
    """Apply the migrations from ``from_version`` up to ``to_version`` inside the caller's
    transaction (all or nothing)."""
    for version in range(from_version, to_version):
        MIGRATIONS[version](conn)


def backup_sqlite(engine: Engine, db_path: Path, version: int) -> Path:
    """Copy the SQLite database to ``<db>.v<version>-backup-<unix time>`` with SQLite's
    online backup (consistent even with a WAL), atomically (temp file + rename).
    Returns the backup path."""
    target = db_path.with_name(f"{db_path.name}.v{version}-backup-{int(time.time())}")
    partial = target.with_name(target.name + ".partial")
    with engine.connect() as conn:
        source = conn.connection.dbapi_connection
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)  # type: ignore[union-attr]
        finally:
            destination.close()
    os.replace(partial, target)
    return target
