"""Schema versions: an older database is migrated after a backup; a newer one is refused."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.errors import SchemaVersionError
from cdfis_desktop.core.heatmap.overlay import metric_values
from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress
from cdfis_desktop.core.storage import ALL_EPOCHS, SCHEMA_VERSION, Project, migrations
from cdfis_desktop.core.storage.aggregates import EARLIER_EPOCHS, load
from cdfis_desktop.core.storage.migrations import DYNAMICS_COLUMNS

V2_HISTORY = (
    "CREATE TABLE history (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, "
    "step INTEGER NOT NULL, patch_id INTEGER NOT NULL, epoch INTEGER NOT NULL, "
    "score FLOAT NOT NULL, probability FLOAT NOT NULL, times_chosen INTEGER NOT NULL, "
    "weight FLOAT NOT NULL, PRIMARY KEY (run_id, step, patch_id)) WITHOUT ROWID",
    "CREATE INDEX ix_history_patch ON history (run_id, patch_id, step)",
)
"""The version-1/2 history layout (REAL scores, epoch per row, (run, patch, step) index)."""

V3_EPOCH_STATS = (
    "CREATE TABLE epoch_stats (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, "
    "epoch INTEGER NOT NULL, patch_id INTEGER NOT NULL, times_scored INTEGER NOT NULL, "
    "times_chosen INTEGER NOT NULL, score_sum FLOAT NOT NULL, last_score FLOAT NOT NULL, "
    "last_step INTEGER NOT NULL, PRIMARY KEY (run_id, epoch, patch_id)) WITHOUT ROWID"
)
"""The version-1/2/3 aggregates layout: one row per (run, epoch, patch)."""


V5_AGGREGATES = ("times_scored", "times_chosen", "score_sum", "last_score", "last_step")
"""The aggregate arrays of versions 4 and 5, in column order."""


def _old_aggregates_layout(conn: sqlite3.Connection, as_version_5) -> None:
    as_version_5(conn)
    conn.execute("DROP TABLE run_aggregates")
    conn.execute(V3_EPOCH_STATS)


def _old_history_layout(conn: sqlite3.Connection, as_version_5) -> None:
    _old_aggregates_layout(conn, as_version_5)
    conn.execute("DROP TABLE history")
    conn.execute("DROP TABLE history_steps")
    for statement in V2_HISTORY:
        conn.execute(statement)


def _make_version_1(folder: Path, as_version_5) -> Path:
    """A hand-made version-1 project: no slides.group_name, no predictions table."""
    with Project.create(folder) as project:
        project.add_slide("/old.svs", fingerprint="old", width=10, height=20, mpp=0.5)
    db = folder / "project.db"
    with sqlite3.connect(db) as conn:
        _old_history_layout(conn, as_version_5)
        conn.execute("DROP TABLE predictions")
        conn.execute("ALTER TABLE slides DROP COLUMN group_name")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    return db


def test_older_database_is_backed_up_and_migrated(tmp_path: Path, as_version_5) -> None:
    db = _make_version_1(tmp_path / "p", as_version_5)
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


def test_version_2_history_is_rekeyed_without_loss(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """A version-2 database with history rows (REAL scores): after the migration every row,
    its epoch and float32 values read back exactly, and the aggregates are unchanged."""
    folder = tmp_path / "p"
    rng = np.random.default_rng(5)
    with Project.create(folder) as project:
        slide_id, ids = row_patches(project, 30, path="/a.svs")
        run_id = new_run(project, 30)
    rows = []
    for step in range(70):  # crosses a 64-step block of the migrated layout
        for pid in rng.choice(ids, 8, replace=False).tolist():
            score, prob = rng.random(2).astype(np.float32).tolist()
            chosen = int(rng.integers(0, 3))
            rows.append((run_id, step, pid, step // 30, score, prob, chosen, chosen * 0.5))
    db = folder / "project.db"
    with sqlite3.connect(db) as conn:
        _old_history_layout(conn, as_version_5)
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Project.open(folder) as project:
        for pid in ids[:5].tolist():
            mine = [r for r in rows if r[2] == pid]
            history = project.patch_history(run_id, pid)
            assert history.step.tolist() == [r[1] for r in mine]
            assert history.epoch.tolist() == [r[3] for r in mine]
            assert history.score.tolist() == [r[4] for r in mine]
            assert history.probability.tolist() == [r[5] for r in mine]
            assert history.times_chosen.tolist() == [r[6] for r in mine]
            assert history.weight.tolist() == [r[7] for r in mine]
        at_65 = sorted(r[4] for r in rows if r[1] == 65)
        assert sorted(project.score_distribution(run_id, step=65).tolist()) == at_65
        project.set_run_status(run_id, "running")
        project.history_writer(run_id, resume_after_step=69).close()  # rebuilds aggregates
        values = metric_values(project, run_id, slide_id, "times_scored")
        assert np.nansum(values.value) == len(rows)
        assert project.epochs(run_id) == [0, 1, 2]
        with project.engine.connect() as conn:
            cumulative = load(conn, run_id, ALL_EPOCHS, ("last_step",))
        assert cumulative is not None and cumulative["last_step"][rows[-1][2]] == 69
    assert len(list(folder.glob("project.db.v2-backup-*"))) == 1


def test_version_3_aggregates_become_packed_arrays(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """A version-3 database with ``epoch_stats`` rows: after the migration (backup first)
    every query that reads aggregates gives what those rows say, and the table is gone."""
    folder = tmp_path / "p"
    with Project.create(folder) as project:
        slide_id, ids = row_patches(
            project, 6, path="/a.svs", label=[0, 1, 0, 1, 0, 1], split=["train"] * 5 + ["val"]
        )
        run_id = new_run(project, 5)
    a, b, c = ids[:3].tolist()
    # (epoch, patch, times_scored, times_chosen, score_sum, last_score, last_step)
    stats = [
        (0, a, 2, 3, 1.5, 0.25, 3),
        (0, b, 1, 0, 0.75, 0.75, 1),
        (1, c, 3, 1, 2.0, 0.5, 9),
        (ALL_EPOCHS, a, 2, 3, 1.5, 0.25, 3),
        (ALL_EPOCHS, b, 1, 0, 0.75, 0.75, 1),
        (ALL_EPOCHS, c, 3, 1, 2.0, 0.5, 9),
    ]
    db = folder / "project.db"
    with sqlite3.connect(db) as conn:
        _old_aggregates_layout(conn, as_version_5)
        conn.executemany(
            "INSERT INTO epoch_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *row) for row in stats],
        )
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Project.open(folder) as project:
        assert project.epochs(run_id) == [0, 1]
        chosen = metric_values(project, run_id, slide_id, "times_chosen").value
        assert chosen[:5].tolist() == [3, 0, 1, 0, 0] and np.isnan(chosen[5])
        mean = metric_values(project, run_id, slide_id, "mean_score", 0).value
        assert mean[:2].tolist() == [0.75, 0.75] and np.isnan(mean[2:]).all()
        last = metric_values(project, run_id, slide_id, "last_score", 1).value
        assert last[2] == 0.5 and np.isnan(last[[0, 1, 3, 4, 5]]).all()
        favour = metric_values(project, run_id, slide_id, "favour").value
        assert favour[:5] == pytest.approx([3 - 4 / 5, -4 / 5, 1 - 4 / 5, -4 / 5, -4 / 5])
        top = project.favoured_patches(run_id, 3)
        assert [(p.patch_id, p.times_scored, p.last_score) for p in top] == [
            (a, 2, 0.25),
            (c, 3, 0.5),
            (b, 1, 0.75),
        ]
        assert sorted(project.score_distribution(run_id, epoch=0).tolist()) == [0.25, 0.75]
        with project.engine.connect() as conn:
            cumulative = load(conn, run_id, ALL_EPOCHS, ("last_step",))
            tables = set(
                conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'").scalars()
            )
        assert cumulative is not None and cumulative["last_step"][[a, b, c]].tolist() == [3, 1, 9]
        assert "epoch_stats" not in tables
    assert len(list(folder.glob("project.db.v3-backup-*"))) == 1


V4_HISTORY = (
    "CREATE TABLE history (run_id INTEGER NOT NULL, block INTEGER NOT NULL, "
    "patch_id INTEGER NOT NULL, step_offset INTEGER NOT NULL, score_bits INTEGER NOT NULL, "
    "probability_bits INTEGER NOT NULL, times_chosen INTEGER NOT NULL, weight FLOAT NOT NULL, "
    "step INTEGER GENERATED ALWAYS AS (block + step_offset) VIRTUAL, "
    "PRIMARY KEY (run_id, block, patch_id, step_offset), "
    "FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE) WITHOUT ROWID"
)
"""The version-3/4 history table: a virtual ``step`` column and a foreign key on runs."""


@dataclass
class Version4:
    """A hand-made version-4 project (see :func:`_make_version_4`) and what it read as."""

    folder: Path
    slide_id: int
    run_id: int
    ids: np.ndarray
    aggregates: dict[int, dict[str, np.ndarray]]
    histories: list


def _make_version_4(folder: Path, row_patches, new_run, as_version_5) -> Version4:
    """30 patches, one run of 30 steps in 3 epochs written by this version, then turned
    into the version-4 layout: a stored cumulative row, history with a virtual step
    column and a foreign key."""
    rng = np.random.default_rng(11)
    with Project.create(folder) as project:
        slide_id, ids = row_patches(project, 30, path="/a.svs")
        run_id = new_run(project, 30)
        with project.history_writer(run_id, flush_every_steps=4) as writer:
            for step in range(30):
                cand = rng.choice(ids, 8, replace=False)
                score = rng.random(8).astype(np.float32)
                chosen = rng.integers(0, 2, 8)
                writer.record(step, step // 10, cand, score, score / 4, chosen, chosen * 1.5)
        with project.engine.connect() as conn:
            before = {e: load(conn, run_id, e) for e in (ALL_EPOCHS, 0, 1, 2)}
        histories = [project.patch_history(run_id, int(p)) for p in ids[:5]]
    cumulative = before[ALL_EPOCHS]
    with sqlite3.connect(folder / "project.db") as conn:
        as_version_5(conn)
        conn.execute("DELETE FROM run_aggregates WHERE epoch < 0")
        conn.execute(
            "INSERT INTO run_aggregates VALUES (?, -1, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                len(cumulative["times_scored"]),
                *(cumulative[name].tobytes() for name in V5_AGGREGATES),
            ),
        )
        conn.execute("ALTER TABLE history RENAME TO history_new")
        conn.execute(V4_HISTORY)
        conn.execute("INSERT INTO history SELECT * FROM history_new")
        conn.execute("DROP TABLE history_new")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    return Version4(folder, slide_id, run_id, ids, before, histories)


def _assert_migrated(old: Version4) -> None:
    """The project reads as it did before it was made version 4, in the version-5 layout."""
    run_id, ids, before = old.run_id, old.ids, old.aggregates
    with Project.open(old.folder) as project:
        with project.engine.connect() as conn:
            after = {e: load(conn, run_id, e) for e in (ALL_EPOCHS, 0, 1, 2)}
            earlier = load(conn, run_id, EARLIER_EPOCHS)
            stored = list(
                conn.exec_driver_sql("SELECT epoch FROM run_aggregates ORDER BY epoch").scalars()
            )
            columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_xinfo(history)")]
            keys = conn.exec_driver_sql("PRAGMA foreign_key_list(history)").all()
        for epoch, arrays in before.items():
            for name, values in arrays.items():
                np.testing.assert_allclose(after[epoch][name], values, rtol=1e-12, err_msg=name)
        assert stored == [EARLIER_EPOCHS, 0, 1, 2]
        np.testing.assert_array_equal(
            earlier["times_scored"], before[0]["times_scored"] + before[1]["times_scored"]
        )
        assert "step" not in columns and keys == []
        for pid, history in zip(ids[:5].tolist(), old.histories, strict=True):
            new = project.patch_history(run_id, pid)
            assert new.step.tolist() == history.step.tolist()
            assert new.score.tolist() == history.score.tolist()
        assert np.nansum(metric_values(project, run_id, old.slide_id, "times_scored").value) == 240


def test_version_4_cumulative_row_becomes_earlier_epochs(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """After the migration the cumulative aggregates, every epoch and every history row
    read the same, the stored rows are the epochs and their earlier sum, and history has
    no step column or foreign key; one backup was made."""
    old = _make_version_4(tmp_path / "p", row_patches, new_run, as_version_5)
    _assert_migrated(old)
    assert len(list(old.folder.glob("project.db.v4-backup-*"))) == 1


_KILLED_MID_MIGRATION = """
import os, signal, sys
from cdfis_desktop.core.storage import Project, migrations

def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)

migrations.load_aggregates = killed  # called after history was copied to the new table
Project.open(sys.argv[1])
"""


def test_migration_killed_midway_leaves_the_old_database(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """SIGKILL in the middle of the v4 -> v5 migration (a real child process): the
    database is still version 4, complete, and the next open migrates it."""
    old = _make_version_4(tmp_path / "p", row_patches, new_run, as_version_5)
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_MIGRATION, str(old.folder)], capture_output=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    with sqlite3.connect(old.folder / "project.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        rows = conn.execute("SELECT COUNT(*) FROM history").fetchone()
    assert version == ("4",) and "history_v4" not in tables and rows == (240,)
    _assert_migrated(old)


def _stored_state(folder: Path) -> tuple:
    """(integrity, schema version, history rows, tables) of the project's database."""
    with sqlite3.connect(folder / "project.db") as conn:
        return (
            conn.execute("PRAGMA integrity_check").fetchone()[0],
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM history").fetchone()[0],
            {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")},
        )


def test_migration_reports_progress_per_unit_of_work(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """Opening a version-4 project reports the backup's pages, then each migration, the
    v4 -> v5 history copy once per history block (8 blocks of 4 steps), in order."""
    old = _make_version_4(tmp_path / "p", row_patches, new_run, as_version_5)
    seen: list[Progress] = []
    Project.open(old.folder, progress=seen.append).close()
    backup = [p for p in seen if p.message.startswith("Backing up")]
    assert backup and backup[-1].done == backup[-1].total > 0
    to_5 = [(p.done, p.total) for p in seen if p.message.endswith("version 5")]
    assert to_5 == [(0, 0), *((k, 8) for k in range(8))]
    assert any(p.message.endswith("version 6") for p in seen)
    assert seen.index(backup[-1]) < min(
        k for k, p in enumerate(seen) if p.message.endswith("version 5")
    )
    _assert_migrated(old)


@pytest.mark.parametrize("when", ["backup", "history copy", "inside a statement", "failure"])
def test_cancelled_or_failed_migration_leaves_the_old_database(
    tmp_path: Path, row_patches, new_run, as_version_5, monkeypatch, when: str
) -> None:
    """A cancel during the backup, between history blocks, or inside one SQL statement
    (SQLite interrupted through its progress handler), and an error mid-migration: the
    database is still version 4 and intact (the cancels leave no backup), and the next open
    migrates it."""
    old = _make_version_4(tmp_path / "p", row_patches, new_run, as_version_5)
    before = _stored_state(old.folder)
    cancel = CancelToken()

    def progress(report: Progress) -> None:
        if when == "backup" and report.message.startswith("Backing up"):
            cancel.cancel()
        if when == "history copy" and report.message.endswith("version 5") and report.done == 3:
            cancel.cancel()
        if when == "inside a statement" and report.message.endswith("version 5"):
            cancel.cancel()  # after the last check between units: SQLite interrupts

    if when == "inside a statement":
        monkeypatch.setattr(migrations, "CHECK_EVERY_VM_STEPS", 1)
    if when == "failure":

        def broken(*args: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(migrations, "load_aggregates", broken)
    expected = RuntimeError if when == "failure" else Cancelled
    with pytest.raises(expected) as info:
        Project.open(old.folder, progress=progress, cancel=cancel)
    if when == "inside a statement":
        assert "interrupt" in str(info.value.__cause__)
    assert _stored_state(old.folder) == before
    assert before[:3] == ("ok", "4", 240)
    backups = list(old.folder.glob("project.db.v4-backup-*"))
    assert len(backups) == (1 if when == "failure" else 0)
    assert not list(old.folder.glob("*.partial"))
    monkeypatch.undo()
    _assert_migrated(old)


def test_two_openers_of_an_old_project_both_succeed(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """Two threads open the same version-4 project at once (each its own engine): one
    migrates, the other waits and finds it migrated; no backup collides."""
    old = _make_version_4(tmp_path / "p", row_patches, new_run, as_version_5)
    errors: list[BaseException] = []

    def open_once() -> None:
        try:
            Project.open(old.folder).close()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    openers = [threading.Thread(target=open_once) for _ in range(2)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=60)
    assert not errors, errors
    _assert_migrated(old)
    assert not list(old.folder.glob("*.partial"))


def test_version_5_gains_dynamics_data_maps_reviews_and_sources(
    tmp_path: Path, row_patches, new_run, as_version_5
) -> None:
    """A version-5 project with history: after the migration (backup first) its history and
    aggregates read as before, its runs have no dynamics (NaN, zero arrays as long as the
    others), new steps record dynamics that fold into the aggregates, and the new tables
    and the patches' source column exist."""
    folder = tmp_path / "p"
    rng = np.random.default_rng(3)
    with Project.create(folder) as project:
        slide_id, ids = row_patches(project, 20, path="/a.svs")
        run_id = new_run(project, 20)
        with project.history_writer(run_id, flush_every_steps=3) as writer:
            for step in range(1, 11):
                cand = rng.choice(ids, 6, replace=False)
                score = rng.random(6).astype(np.float32)
                writer.record(step, step // 5, cand, score, score / 3, np.ones(6), np.ones(6))
        with project.engine.connect() as conn:
            before = {e: load(conn, run_id, e, V5_AGGREGATES) for e in (ALL_EPOCHS, 0, 1, 2)}
        history = project.patch_history(run_id, int(ids[0]))
    db = folder / "project.db"
    with sqlite3.connect(db) as conn:
        as_version_5(conn)
    with Project.open(folder) as project:
        with project.engine.connect() as conn:
            after = {e: load(conn, run_id, e) for e in (ALL_EPOCHS, 0, 1, 2)}
            tables = set(
                conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'").scalars()
            )
        for epoch, arrays in before.items():
            for name, values in arrays.items():
                np.testing.assert_array_equal(after[epoch][name], values, err_msg=name)
            for name in DYNAMICS_COLUMNS["run_aggregates"]:
                assert after[epoch][name].shape == values.shape
                assert not after[epoch][name].any()
        migrated = project.patch_history(run_id, int(ids[0]))
        assert migrated.score.tolist() == history.score.tolist()
        assert np.isnan(migrated.label_probability).all() and np.isnan(migrated.margin).all()
        assert {"data_maps", "review_decisions"} <= tables
        assert project.patches().source.tolist() == [None] * 20
        project.set_run_status(run_id, "running")
        with project.history_writer(run_id) as writer:
            trained = np.array([0.75, np.nan], np.float32)
            writer.record(
                11,
                2,
                ids[:2],
                np.ones(2),
                np.full(2, 0.5),
                [1, 0],
                [1.0, 0.0],
                label_probability=trained,
                margin=np.array([1.5, np.nan], np.float32),
            )
        with project.engine.connect() as conn:
            epoch_2 = load(conn, run_id, 2)
        assert epoch_2 is not None
        assert epoch_2["label_seen"][ids[:2]].tolist() == [1, 0]
        assert epoch_2["label_probability_sum"][ids[0]] == 0.75
        assert epoch_2["margin_sum"][ids[0]] == 1.5 and epoch_2["label_correct"][ids[0]] == 1
        assert project.patch_history(run_id, int(ids[0])).label_probability[-1] == 0.75
    assert len(list(folder.glob("project.db.v5-backup-*"))) == 1
