"""Project folder lifecycle, slides, classes and patches, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import tomllib

from cdfis_desktop.core.errors import ConfigError, NotAProjectError, StoreError
from cdfis_desktop.core.storage import SCHEMA_VERSION, Project


def test_create_makes_folder_layout_and_toml(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "proj"
    with Project.create(folder) as project:
        assert project.db_path == folder.resolve() / "project.db"
        for sub in (project.checkpoints_dir, project.cache_dir, project.slides_dir):
            assert sub.is_dir()
    settings = tomllib.loads((folder / "project.toml").read_text())
    assert settings["name"] == "proj"
    assert settings["schema_version"] == SCHEMA_VERSION
    assert settings["app_version"] and settings["created"]
    with sqlite3.connect(folder / "project.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_refuses_existing_project_and_open_reopens(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    with pytest.raises(StoreError, match="already holds a cdfis project"):
        Project.create(tmp_path / "p")
    with Project.open(tmp_path / "p") as project:
        assert project.slides() == []


def test_open_missing_folder_without_create_is_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(NotAProjectError, match="not a cdfis project"):
        Project.open(tmp_path / "nothing")
    with Project.open(tmp_path / "nothing", create=True) as project:
        assert project.db_path.exists()


def test_slides_roundtrip_mpp_override_and_group(project: Project) -> None:
    a = project.add_slide("/d/a.svs", fingerprint="fa", width=100, height=50, mpp=None)
    b = project.add_slide(
        "/d/b.tif",
        fingerprint="fb",
        width=7,
        height=9,
        mpp=0.5,
        vendor="generic-tiff",
        group="patient-7",
    )
    project.set_slide_mpp(a, 0.2521)
    project.set_slide_group(a, "patient-3")
    slides = {s.id: s for s in project.slides()}
    assert slides[a].mpp == pytest.approx(0.2521) and slides[a].mpp_overridden
    assert slides[a].group == "patient-3"
    assert slides[b].mpp == 0.5 and not slides[b].mpp_overridden
    assert (slides[b].width, slides[b].height, slides[b].vendor) == (7, 9, "generic-tiff")
    with pytest.raises(ConfigError):
        project.set_slide_mpp(a, 0.0)
    with pytest.raises(StoreError, match="no slide with id 99"):
        project.set_slide_mpp(99, 0.5)


def test_class_names_replace(project: Project) -> None:
    assert project.class_names() == []
    project.set_class_names(["normal", "tumor"])
    project.set_class_names(["normal", "tumor", "stroma"])
    assert project.class_names() == ["normal", "tumor", "stroma"]


def test_add_patches_roundtrip(project: Project, slide_patches: tuple[int, np.ndarray]) -> None:
    slide_id, ids = slide_patches
    assert ids.dtype == np.int64 and len(np.unique(ids)) == 60
    table = project.patches(slide_id)
    assert np.array_equal(table.id, ids)
    assert np.array_equal(table.l0_x, (np.arange(60) % 10) * 512)
    assert np.array_equal(table.l0_y, (np.arange(60) // 10) * 512)
    assert set(table.l0_size) == {512} and set(table.patch_px) == {256}
    assert np.array_equal(table.label, np.arange(60) % 2)
    assert np.allclose(table.tissue_fraction, np.linspace(0.5, 1.0, 60))
    assert len(project.patches(split="train")) == 40
    assert len(project.patches(split="val")) == 20


def test_add_patches_ids_follow_input_order_across_slides(project: Project) -> None:
    a = project.add_slide("/a", fingerprint="a", width=10, height=10, mpp=0.5)
    b = project.add_slide("/b", fingerprint="b", width=10, height=10, mpp=0.5)
    ids_a = project.add_patches(
        a, l0_x=[5, 1], l0_y=[0, 0], l0_size=1, patch_px=1, mpp=0.5, label=-1, tissue_fraction=1.0
    )
    ids_b = project.add_patches(
        b, l0_x=[3], l0_y=[4], l0_size=1, patch_px=1, mpp=0.5, label=0, tissue_fraction=1.0
    )
    table = project.patches()
    assert list(table.l0_x[np.searchsorted(table.id, ids_a)]) == [5, 1]
    assert list(table.slide_id[np.searchsorted(table.id, ids_b)]) == [b]


def test_add_patches_rejects_bad_input(project: Project) -> None:
    slide_id = project.add_slide("/a", fingerprint="a", width=10, height=10, mpp=0.5)
    with pytest.raises(ValueError, match="unknown split"):
        project.add_patches(
            slide_id,
            l0_x=[0],
            l0_y=[0],
            l0_size=1,
            patch_px=1,
            mpp=0.5,
            label=0,
            tissue_fraction=1.0,
            split="training",
        )
    with pytest.raises(StoreError, match="no slide with id 42"):
        project.add_patches(
            42, l0_x=[0], l0_y=[0], l0_size=1, patch_px=1, mpp=0.5, label=0, tissue_fraction=1.0
        )
    assert len(project.patches()) == 0


def test_set_splits(project: Project, slide_patches: tuple[int, np.ndarray]) -> None:
    _, ids = slide_patches
    project.set_splits(ids[:5], "test")
    project.set_splits(ids[5:7], [None, "val"])
    table = project.patches()
    assert list(table.split[:7]) == ["test"] * 5 + [None, "val"]


def test_delete_slide_removes_patches_and_their_history(
    project: Project, slide_patches: tuple[int, np.ndarray], make_run, row_patches
) -> None:
    slide_id, ids = slide_patches
    other, other_ids = row_patches(project, 1, path="/b")
    run_id = make_run()
    both = np.concatenate([ids[:3], other_ids])
    with project.history_writer(run_id) as writer:
        writer.record(0, 0, both, np.ones(4), np.full(4, 0.25), np.ones(4), np.ones(4))
    project.delete_slide(slide_id)
    assert [s.id for s in project.slides()] == [other]
    assert np.array_equal(project.patches().id, other_ids)
    assert len(project.patch_history(run_id, int(ids[0])).step) == 0
    assert len(project.patch_history(run_id, int(other_ids[0])).step) == 1
    assert len(project.runs()) == 1


def test_add_patches_returns_its_ids_while_another_slide_is_deleted(
    project: Project, row_patches
) -> None:
    """A slide deleted by another thread while add_patches runs (it starts right after the
    highest id is read) must wait for it: the returned ids are exactly those inserted."""
    import threading
    import time

    from sqlalchemy import event

    row_patches(project, 10, path="/a")
    slide_b, _ = row_patches(project, 10, path="/b")  # the highest ids
    slide_c = project.add_slide("/c", fingerprint="c", width=10, height=10, mpp=0.5)
    others: list[threading.Thread] = []

    @event.listens_for(project.engine, "before_cursor_execute")
    def delete_after_max_id(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO patches") and not others:
            others.append(threading.Thread(target=project.delete_slide, args=(slide_b,)))
            others[0].start()
            time.sleep(0.3)  # let the deletion run now if nothing holds it back

    new = project.add_patches(
        slide_c,
        l0_x=np.arange(5),
        l0_y=0,
        l0_size=1,
        patch_px=1,
        mpp=0.5,
        label=0,
        tissue_fraction=1.0,
    )
    others[0].join()
    assert new.tolist() == project.patches(slide_c).id.tolist()
    assert [s.id for s in project.slides()] == [1, slide_c]


def test_failed_creation_leaves_nothing_half_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creation fails after the tables (here: writing the version rows): the database is
    left empty, and opening the folder finishes the creation."""
    from cdfis_desktop.core.storage import database

    def full_disk(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(database, "_write_meta", full_disk)
    with pytest.raises(StoreError, match="full"):
        Project.create(tmp_path / "p")
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / "p" / "project.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)
    with Project.open(tmp_path / "p") as project:
        assert project.slides() == []


def test_creation_killed_before_the_schema_is_finished_on_open(tmp_path: Path) -> None:
    """Killed after project.toml and an empty database file were made: opening finishes
    the creation. A missing database is refused instead (it may have been lost)."""
    Project.create(tmp_path / "p").close()
    for path in (tmp_path / "p").glob("project.db*"):
        path.unlink()
    with pytest.raises(NotAProjectError, match="database project.db is missing; restore it"):
        Project.open(tmp_path / "p")
    assert not (tmp_path / "p" / "project.db").exists()
    (tmp_path / "p" / "project.db").touch()  # SQLite makes an empty file at first connect
    with Project.open(tmp_path / "p") as project:
        project.add_slide("/a.svs", fingerprint="a", width=1, height=1, mpp=0.5)
        assert len(project.slides()) == 1


def test_create_run_validates_the_config_once_and_records_nothing_when_refused(
    project: Project,
) -> None:
    from dataclasses import replace

    from cdfis_desktop.core.config import RunConfig, SamplerConfig

    for bad, message in (
        (RunConfig(model="vgg"), "unknown model 'vgg'"),
        (RunConfig(batch_size=0), "batch size"),
        (RunConfig(sampler=SamplerConfig(mode="later")), "unknown sampler mode"),
    ):
        with pytest.raises(ConfigError, match=message):
            project.create_run(bad, n_train=10)
    assert project.runs() == []
    config = RunConfig(seed=7, sampler=SamplerConfig(rule="cdf", metric="gradnorm"))
    run_id = project.create_run(config, n_train=10, device="cpu")
    summary = project.run(run_id)
    assert (summary.sampler, summary.seed, summary.device) == ("cdf/presample/gradnorm", 7, "cpu")
    assert RunConfig.from_dict(summary.config) == config
    assert project.run(project.create_run(replace(config, device="cpu"), n_train=1)).device == "cpu"
