"""Bad input and hostile environments: each gives a clear StoreError subclass and loses
nothing already stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.errors import (
    NotAProjectError,
    RunLockedError,
    StorageFullError,
    StoreError,
)
from cdfis_desktop.core.storage import Project

CHILD = Path(__file__).with_name("_writer_child.py")


def test_folder_under_a_file_is_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create a project in .*file.txt"):
        Project.create(blocker / "project")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_is_unwritable(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="choose a folder you can write to"):
            Project.create(folder / "project")
    finally:
        folder.chmod(0o700)


def test_file_that_is_not_sqlite(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "project.db").write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(NotAProjectError, match="not a cdfis project database"):
        Project.open(folder)
    assert (folder / "project.db").read_bytes().startswith(b"this is a text file")


def test_sqlite_database_of_another_program(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    with sqlite3.connect(folder / "project.db") as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(NotAProjectError, match="no 'meta' table"):
        Project.open(folder)


def test_opening_a_file_instead_of_the_folder(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    with pytest.raises(NotAProjectError, match="choose the project folder"):
        Project.open(tmp_path / "p" / "project.db")


def test_unreadable_project_toml(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    (tmp_path / "p" / "project.toml").write_text("name = [unclosed")
    with pytest.raises(NotAProjectError, match="project.toml is not a readable project file"):
        Project.open(tmp_path / "p")


def test_full_disk_keeps_committed_history(tmp_path: Path, row_patches, new_run) -> None:
    """Cap the database at a few pages (SQLite's max_page_count) and write until full."""
    with Project.create(tmp_path / "p") as project:
        _, ids = row_patches(project, 200)
        run_id = new_run(project, 200)
        with project.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    flushed = 0
    with Project.open(tmp_path / "p", sqlite_pragmas={"max_page_count": pages + 12}) as capped:
        capped.set_run_status(run_id, "running")
        writer = capped.history_writer(run_id, flush_every_steps=1)
        with pytest.raises(StorageFullError, match="full; free some space"):
            for step in range(10_000):
                writer.record(
                    step, 0, ids, np.full(200, 0.5), np.full(200, 0.005), np.ones(200), np.ones(200)
                )
                flushed = step + 1
        assert writer.pending_steps == 1  # the failed batch stays buffered
        capped.set_run_status(run_id, "failed", error="disk full")
    assert flushed > 0
    with Project.open(tmp_path / "p") as project:
        steps = project.patch_history(run_id, int(ids[0])).step
        assert list(steps) == list(range(flushed))
        assert project.run(run_id).steps == flushed - 1
        assert project.run(run_id).status == "failed"
        with project.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_second_process_cannot_write_a_running_run(tmp_path: Path, row_patches) -> None:
    """A real second process holds run 1; this process may read it but not write it, and
    it is not taken for interrupted until that process dies."""
    folder = tmp_path / "p"
    with Project.create(folder) as project:
        row_patches(project, 10)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id = int(child.stdout.readline().split()[1])
        with Project.open(folder) as project:
            assert project.run(run_id).status == "running"
            with pytest.raises(RunLockedError, match=f"{child.pid}@"):
                project.history_writer(run_id)
            with pytest.raises(RunLockedError):
                project.set_run_status(run_id, "cancelled")
            assert project.run(run_id).status == "running"
            child.kill()
            child.wait(timeout=30)
            assert project.run(run_id).status == "interrupted"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
