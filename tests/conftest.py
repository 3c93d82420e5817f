"""Shared fixtures. Tests that need the real data in ``CDFIS_TEST_DATA`` use ``real_data``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder (slides/, patches/, tiles_tissue/); skips when absent."""
    folder = os.environ.get("CDFIS_TEST_DATA")
    if not folder:
        pytest.skip(
            "CDFIS_TEST_DATA is not set: real-data tests skipped (CI sets it to ../shared/data)"
        )
    path = Path(folder)
    if not path.is_dir():
        pytest.skip(f"CDFIS_TEST_DATA={folder} is not a folder: real-data tests skipped")
    return path


REAL_SLIDES = (
    "CMU-1-Small-Region.svs",
    "tcga-cr-7395-01a-01-ts1.svs",
    "generic-boxes-4levels.tiff",
    "ndpi/test3-DAPI-2.ndpi",
    "ndpi/test3 TRITC 2 (560).ndpi",
)
"""Every readable slide of ``CDFIS_TEST_DATA/slides`` (Aperio, generic TIFF, Hamamatsu)."""

BAD_REAL_SLIDES = {
    "text-named.svs": "not in a slide format",
    "untiled-rgb.tif": "plain TIFF image",
    "unopenable.tiff": "cannot be read",
    "unreadable.svs": "truncated or damaged",
}
"""Every file of ``CDFIS_TEST_DATA/slides/bad`` -> a phrase its error message must hold."""


@pytest.fixture(params=REAL_SLIDES)
def real_slide(request: pytest.FixtureRequest, real_data: Path) -> Path:
    """Each real slide file in turn (the test runs once per file)."""
    return real_data / "slides" / request.param


@pytest.fixture(params=sorted(BAD_REAL_SLIDES))
def bad_real_slide(request: pytest.FixtureRequest, real_data: Path) -> tuple[Path, str]:
    """Each real file a reader must refuse, with the phrase its message must hold."""
    return real_data / "slides" / "bad" / request.param, BAD_REAL_SLIDES[request.param]


class SyntheticSlideFiles(NamedTuple):
    """A generated demo slide: pyramidal TIFF and its QuPath GeoJSON annotations."""

    slide_path: Path
    annotations_path: Path


SYNTHETIC_SLIDE_SIZE_PX = (2048, 1536)
SYNTHETIC_SLIDE_MPP = 0.5


@pytest.fixture(scope="session")
def synthetic_slide(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSlideFiles:
    """One small synthetic H&E demo slide, generated once per session (read-only: copy it
    before changing it). 2048 x 1536 level-0 px at 0.5 µm/px, levels 1/4/16, Tumor and
    Stroma annotations in level-0 px; seed 0, so the same pixels every run."""
    from cdfis_desktop.core.demo import generate_demo_slides

    folder = tmp_path_factory.mktemp("synthetic-slide")
    (demo,) = generate_demo_slides(
        folder, n_slides=1, size_px=SYNTHETIC_SLIDE_SIZE_PX, mpp=SYNTHETIC_SLIDE_MPP, seed=0
    )
    return SyntheticSlideFiles(demo.slide_path, demo.annotations_path)


class TrainedProject(NamedTuple):
    """A project folder holding the synthetic slide (registered twice, as two cases), its
    patches with labels, and two finished runs with history, metrics and predictions."""

    folder: Path
    run_id: int
    other_run_id: int
    n_patches: int


@pytest.fixture(scope="session")
def trained_project(
    tmp_path_factory: pytest.TempPathFactory, synthetic_slide: SyntheticSlideFiles
) -> TrainedProject:
    """A real project filled through the store's public API (read-only: copy it before
    changing it). Run ``run_id`` is CDF/presample/loss over 3 epochs with importance sampling
    switched on at step 6; ``other_run_id`` is uniform. Scores are higher on Tumor patches
    and near the slide's right edge, so favoured patches cluster there. Seeded."""
    import numpy as np

    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.tiling.annotations import load_annotations
    from cdfis_desktop.core.tiling.labels import label_patches

    folder = tmp_path_factory.mktemp("trained-project")
    annotations = load_annotations(synthetic_slide.annotations_path)
    names = annotations.class_names
    geometries = {names.index(n): g for n, g in annotations.geometries.items()}
    rng = np.random.default_rng(0)
    with open_slide(synthetic_slide.slide_path) as reader, Project.create(folder) as project:
        width, height = reader.dimensions
        project.set_class_names(names)
        cols, rows = np.meshgrid(np.arange(width // 128), np.arange(height // 128))
        l0_x, l0_y = cols.ravel() * 128, rows.ravel() * 128
        labels = label_patches(l0_x, l0_y, 128, geometries, min_coverage=0.5).label
        ids = []
        for group in ("case-a", "case-b"):
            slide_id = project.add_slide(
                synthetic_slide.slide_path,
                fingerprint=reader.fingerprint(),
                width=width,
                height=height,
                mpp=reader.mpp,
                vendor=reader.vendor or "",
                group=group,
            )
            split = ["train" if g < 0.75 else "val" for g in rng.random(l0_x.size)]
            ids.append(
                project.add_patches(
                    slide_id,
                    l0_x=l0_x,
                    l0_y=l0_y,
                    l0_size=128,
                    patch_px=64,
                    mpp=1.0,
                    label=labels,
                    tissue_fraction=1.0,
                    split=split,
                )
            )
        table = project.patches()
        train = table.id[table.split == "train"]
        hardness = {
            int(i): 0.2 + 1.5 * (lab == names.index("Tumor")) + 1.0 * x / width
            for i, lab, x in zip(table.id, table.label, table.l0_x, strict=True)
        }
        run_ids = []
        for rule in ("cdf", "uniform"):
            config = RunConfig(sampler=SamplerConfig(rule=rule, floor=0.1), batch_size=8, epochs=3)
            run_id = project.create_run(
                config, n_train=int(train.size), device="cpu", name=f"{rule} demo"
            )
            with project.history_writer(run_id, flush_every_steps=5) as writer:
                step = 0
                for epoch in range(3):
                    for _ in range(10):
                        step += 1
                        candidates = rng.choice(train, size=32, replace=False)
                        decay = 1.0 / (1.0 + 0.1 * step)
                        score = np.array([hardness[int(c)] for c in candidates]) * decay
                        score *= rng.lognormal(0.0, 0.3, size=32)
                        p = (
                            score / score.sum()
                            if rule == "cdf" and step > 5
                            else np.full(32, 1 / 32)
                        )
                        chosen = np.bincount(rng.choice(32, size=8, p=p), minlength=32)
                        writer.record(
                            step,
                            epoch,
                            candidates,
                            score.astype(np.float32),
                            p.astype(np.float32),
                            chosen,
                            (chosen > 0).astype(np.float32),
                        )
                        project.log_metrics(
                            run_id,
                            step,
                            epoch,
                            wall_s=0.5 * step,
                            train_loss=float(score.mean()),
                            samples_per_s=16.0,
                        )
                    speed = 1.3 if rule == "cdf" else 1.0
                    project.log_metrics(
                        run_id,
                        step,
                        epoch,
                        wall_s=0.5 * step,
                        val_loss=1.0 / (epoch + 2),
                        val_accuracy=min(0.97, 0.6 + 0.12 * speed * (epoch + 1)),
                        val_auc=0.8,
                    )
                    wrong = rng.random(table.id.size) < 0.3 / (epoch + 1)
                    predicted = np.where(wrong, 1 - np.maximum(table.label, 0), table.label)
                    predicted = np.where(table.label < 0, 0, predicted)
                    project.set_predictions(
                        run_id, epoch, table.id, predicted, rng.uniform(0.5, 1.0, table.id.size)
                    )
            if rule == "cdf":
                project.set_switch_step(run_id, 6)
            project.set_run_status(run_id, "finished")
            run_ids.append(run_id)
    return TrainedProject(folder, run_ids[0], run_ids[1], int(sum(i.size for i in ids)))


@pytest.fixture()
def bad_slide_input(tmp_path: Path, synthetic_slide: SyntheticSlideFiles) -> Callable[[str], Path]:
    """Factory: ``bad_slide_input(kind)`` creates one kind of unusable slide input in tmp_path
    and returns its path. Kinds: missing, folder, empty, truncated (half of a real TIFF
    slide), png (a PNG named .svs), text (a text file named .tiff)."""
    import numpy as np
    from PIL import Image

    def make(kind: str) -> Path:
        names = {
            "folder": "slides",
            "png": "photo.svs",
            "text": "notes.tiff",
            "truncated": "cut.tiff",
        }
        path = tmp_path / names.get(kind, "missing.svs")
        if kind == "folder":
            path.mkdir()
        elif kind == "empty":
            path = tmp_path / "empty.svs"
            path.touch()
        elif kind == "truncated":
            data = synthetic_slide.slide_path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "png":
            Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(path, format="PNG")
        elif kind == "text":
            path.write_text("this is not an image\n" * 50)
        elif kind != "missing":
            raise ValueError(f"unknown bad input kind {kind!r}")
        return path

    return make


@pytest.fixture(scope="session")
def as_version_5() -> Callable[[Any], None]:
    """``as_version_5(conn)``: turn an open ``sqlite3`` connection's project database back
    into the version-5 layout (removes the training-dynamics columns, data maps, review
    decisions and the patches' source file), so opening it migrates it again."""
    from cdfis_desktop.core.storage.migrations import DYNAMICS_COLUMNS

    def strip(conn: Any) -> None:
        conn.execute("DROP TABLE data_maps")
        conn.execute("DROP TABLE review_decisions")
        conn.execute("ALTER TABLE patches DROP COLUMN source")
        for table, columns in DYNAMICS_COLUMNS.items():
            present = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            for column in set(columns) & present:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")

    return strip


@pytest.fixture()
def quick_checks() -> Iterator[list[str]]:
    """The ``quick_check`` statements run by any engine while the test runs."""
    from sqlalchemy import Engine, event

    seen: list[str] = []

    def listener(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if "quick_check" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", listener)
    yield seen
    event.remove(Engine, "before_cursor_execute", listener)
