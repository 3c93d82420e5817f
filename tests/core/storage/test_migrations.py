"""Schema versions: an older database is migrated after a backup; a newer one is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cdfis_desktop.core.errors import SchemaVersionError
from cdfis_desktop.core.storage import SCHEMA_VERSION, Project


def _make_version_1(folder: Path) -> Path:
    """A hand-made version-1 project: no slides.group_name, no predictions table."""
    with Project.create(folder) as project:
        project.add_slide("/old.svs", fingerprint="old", width=10, height=20, mpp=0.5)
    db = folder / "project.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE predictions")
        conn.execute("ALTER TABLE slides DROP COLUMN group_name")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    return db


def test_older_database_is_backed_up_and_migrated(tmp_path: Path) -> None:
    db = _make_version_1(tmp_path / "p")
    with Project.open(tmp_path / "p") as project:
        slides = project.slides()
        assert [(s.path, s.group) for s in slides] == [("/old.svs", "")]
        slide_id = project.add_slide(
            "/new.svs", fingerprint="n", width=1, height=1, mpp=None, group="case-1"
        )
        assert project.slides()[1].id == slide_id and project.slides()[1].group == "case-1"
    backups = list(db.parent.glob("project.db.v1-backup-*"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            "1",
        )
        assert conn.execute("SELECT path FROM slides").fetchall() == [("/old.svs",)]
    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert version == (str(SCHEMA_VERSION),) and "predictions" in tables


def test_newer_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    db = tmp_path / "p" / "project.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    before = db.read_bytes()
    with pytest.raises(SchemaVersionError, match="newer cdfis-desktop") as info:
        Project.open(tmp_path / "p")
    assert str(db) in str(info.value) and "update cdfis-desktop" in str(info.value)
    assert db.read_bytes() == before
    assert not list(db.parent.glob("*backup*"))
