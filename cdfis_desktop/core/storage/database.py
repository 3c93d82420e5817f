"""Engine setup (one per database), SQLite pragmas, error translation, schema creation.

SQLite connections get ``journal_mode=WAL`` (readers never block the writer and see the
last committed transaction), ``foreign_keys=ON``, ``synchronous=NORMAL`` (in WAL mode a
killed process loses nothing it committed; only a power cut may lose the commits since the
last sync), except that the commits ending a batch of training steps (the history
writer's flushes) run with ``synchronous=FULL`` through :func:`durable_transaction`, which
syncs the WAL up to and including them: after a power cut a run resumes from its last
flushed batch, as after a killed process (``benchmarks/store.py``: x1.00 the insert rate,
+0.4 ms per flush of 20 steps on the development disk), a busy timeout, a 64 MiB page
cache and a 64 MiB WAL checkpoint threshold (the WAL file is truncated back to that size
after a checkpoint), on every new connection; a new database gets 16 KiB pages (SQLite
keeps the page size of an existing file). The store is SQLite only: its SQL uses SQLite's
``group_concat``, ``WITHOUT ROWID`` tables and upserts, no other database is tested, and
a project's database is an SQLite file inside its folder (:mod:`.location`).

Thread rules: the engine's pool hands each thread its own connection; every store call
checks one out for the duration of one transaction, so calls from different threads do
not share a connection.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, OperationalError

from cdfis_desktop import __version__
from cdfis_desktop.core.errors import (
    NotAProjectError,
    SchemaVersionError,
    StorageFullError,
    StoreError,
)
from cdfis_desktop.core.progress import Cancelled, CancelToken, ProgressCallback
from cdfis_desktop.core.storage.migrations import backup_sqlite, migrate
from cdfis_desktop.core.storage.schema import SCHEMA_VERSION, Base, Meta

BUSY_TIMEOUT_MS = 30_000
CACHE_KIB = 65_536
"""Page cache per connection: history inserts hit random patch ids, which thrash SQLite's
default 2 MiB cache once the database outgrows it."""
PAGE_SIZE = 16_384
"""Page size of new databases, bytes (SQLite's default is 4,096). History rows are
appended in key order and every flush rewrites an aggregate row of 24 bytes per patch
(~2.3 MiB at 100,000 patches) as a chain of overflow pages: larger pages mean fewer page
splits, overflow pages and WAL frames (~1.2x the history insert rate in
``benchmarks/store.py``; same size per history row)."""
WAL_AUTOCHECKPOINT_BYTES = 64 * 2**20
"""Checkpoint the WAL once it holds this many bytes of pages (SQLite's default is 1,000
pages), and truncate the WAL file back to this size after a checkpoint. With the default
each history flush's commit triggered a checkpoint that copied the rewritten aggregate
row again; now a checkpoint copies the latest version of those pages once per many
flushes (about 20 % less CPU per history row, ``benchmarks/store.py``). Checkpointing in
a background thread instead was measured at x1.04-1.25 the insert rate, with more CPU per
row: not worth a thread, as training already writes history from a background thread."""


BATCH_SYNCHRONOUS = "FULL"
"""SQLite ``synchronous`` level of :func:`durable_transaction` commits (the benchmark
switches it to measure its cost)."""


def make_engine(url: str, *, sqlite_pragmas: Mapping[str, int | str] | None = None) -> Engine:
    """Create the engine for ``url``; for SQLite, set the pragmas above plus
    ``sqlite_pragmas`` (e.g. ``{"max_page_count": 100}`` to cap the file size) on every
    connection."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        extra = dict(sqlite_pragmas or {})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before the WAL exists
                cursor.execute("PRAGMA journal_mode=WAL")
                page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                checkpoint_pages = WAL_AUTOCHECKPOINT_BYTES // page_size
                cursor.execute(f"PRAGMA wal_autocheckpoint={checkpoint_pages}")
                cursor.execute(f"PRAGMA journal_size_limit={WAL_AUTOCHECKPOINT_BYTES}")
                for name, value in extra.items():
                    cursor.execute(f"PRAGMA {name}={value}")
            finally:
                cursor.close()

    return engine


@contextmanager
def translated_errors(where: str) -> Iterator[None]:
    """Turn database/OS failures into the store's :class:`StoreError` family.

    ``where`` names the database (path or URL) in the message. Raises
    :class:`StorageFullError` (disk or size limit full), :class:`NotAProjectError` (not a
    database) or :class:`StoreError` (locked, read-only, unopenable, other I/O)."""
    try:
        yield
    except (OperationalError, DatabaseError) as exc:
        raise _store_error(str(exc.orig if exc.orig is not None else exc), where) from exc
    except sqlite3.DatabaseError as exc:
        raise _store_error(str(exc), where) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFullError(
                f"{where}: the disk is full; free some space and try again "
                "(everything saved before is kept)"
            ) from exc
        raise StoreError(f"{where}: {exc.strerror or exc}") from exc


def _store_error(message: str, where: str) -> StoreError:
    lowered = message.lower()
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return StorageFullError(
            f"{where}: the disk (or the database size limit) is full; free some space and "
            "try again (everything saved before is kept)"
        )
    if "not a database" in lowered or "file is encrypted" in lowered:
        return NotAProjectError(
            f"{where} is not a cdfis project database (not an SQLite file); choose the "
            "project folder, or move this file away"
        )
    if "database is locked" in lowered or "database is busy" in lowered:
        return StoreError(
            f"{where} is locked by another program for longer than "
            f"{BUSY_TIMEOUT_MS // 1000} s; close the other program and try again"
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return StoreError(
            f"{where} cannot be written ({message}); check the folder's permissions "
            "and free space, or choose another folder"
        )
    return StoreError(f"{where}: database error: {message}")


def prepare_schema(
    engine: Engine,
    *,
    create: bool,
    where: str,
    db_path: Path | None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Create the schema in an empty database (``create``), or check and migrate it.

    An older schema is migrated after a backup copy next to ``db_path`` (SQLite only).
    Creation and migration each run in one transaction that holds the write lock from its
    first statement: a failure, a cancel or a killed process leaves the database as it
    was, and of two processes opening an old project at once, the second finds it
    migrated. ``progress``/``cancel``: the backup's and the migration's (see
    :func:`.migrations.migrate`; a cancel raises :class:`Cancelled`).
    Raises :class:`NotAProjectError` (empty and not ``create``, or foreign tables),
    :class:`SchemaVersionError` (written by a newer cdfis-desktop)."""
    with translated_errors(where):
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        if not tables:
            if not create:
                raise NotAProjectError(
                    f"{where} is an empty database, not a cdfis project; create a project "
                    "first (cdfis import / 'New project' in the app)"
                )
            with engine.begin() as conn:
                begin_writing(conn)
                if not inspect(conn).get_table_names():  # nobody created it meanwhile
                    Base.metadata.create_all(conn)
                    _write_meta(conn, SCHEMA_VERSION)
            return
        if Meta.__tablename__ not in tables:
            raise NotAProjectError(
                f"{where} is a database but not a cdfis project (it has no 'meta' table); "
                "choose a cdfis project folder"
            )
        with engine.connect() as conn:
            version = read_schema_version(conn, where)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{where} was written by a newer cdfis-desktop (schema version {version}; "
                f"this is {__version__}, which reads up to version {SCHEMA_VERSION}); "
                "update cdfis-desktop to open it"
            )
        if version < SCHEMA_VERSION:
            backup = (
                None
                if db_path is None
                else backup_sqlite(engine, db_path, version, progress=progress, cancel=cancel)
            )
            try:
                with engine.begin() as conn:
                    begin_writing(conn)
                    version = read_schema_version(conn, where)  # another process may have
                    if version < SCHEMA_VERSION:  # migrated meanwhile
                        migrate(conn, version, SCHEMA_VERSION, progress=progress, cancel=cancel)
                        _write_meta(conn, SCHEMA_VERSION)
            except Cancelled:
                if backup is not None:  # the database is unchanged: nothing to keep
                    backup.unlink(missing_ok=True)
                raise


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one committed state (SQLite: a deferred ``BEGIN``,
    ended when the connection goes back to the pool). Without it, every SELECT outside a
    transaction sees the latest commit, so a query of several SELECTs could mix the states
    before and after a concurrent history flush or slide deletion."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        yield conn


@contextmanager
def durable_transaction(engine: Engine) -> Iterator[Connection]:
    """Like ``engine.begin()``, but on SQLite the commit is synced to disk
    (``synchronous`` = :data:`BATCH_SYNCHRONOUS`), which also makes every earlier commit in
    the WAL durable; the connection goes back to ``NORMAL`` afterwards."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # on the driver's connection: no SQLAlchemy transaction begins
            conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                f"PRAGMA synchronous={BATCH_SYNCHRONOUS}"
            )
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA synchronous=NORMAL"
                )


def begin_writing(conn: Connection) -> None:
    """Open the caller's transaction now, holding SQLite's write lock (``BEGIN
    IMMEDIATE``; other backends: nothing to do). Needed before DDL or reads that must be
    part of the transaction: Python's sqlite3 module begins it only at the first
    INSERT/UPDATE/DELETE, so statements before that commit on their own."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def read_schema_version(conn: Connection, where: str) -> int:
    """The ``schema_version`` stored in ``meta``; raises :class:`NotAProjectError` if absent."""
    value = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
    try:
        return int(value) if value is not None else _missing_version(where)
    except ValueError:
        return _missing_version(where)


def stored_schema_version(db_path: Path) -> int | None:
    """The ``schema_version`` of the SQLite file ``db_path``, read read-only without an
    engine, or None when the file is missing, not a database or has no version."""
    if not db_path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row is not None else None
    except (sqlite3.Error, ValueError):
        return None


def _missing_version(where: str) -> int:
    raise NotAProjectError(
        f"{where} has no valid schema version; it was not written by cdfis-desktop"
    )


def _write_meta(conn: Connection, version: int) -> None:
    for key, value in (("schema_version", str(version)), ("app_version", __version__)):
        conn.execute(
            text(
                "INSERT INTO meta (key, value) VALUES (:key, :value) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            ),
            {"key": key, "value": value},
        )
