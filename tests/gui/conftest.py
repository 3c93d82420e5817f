"""GUI test fixtures: offscreen Qt, per-test settings, a real project, a thread-leak check.

Every test gets its own QSettings folder (nothing touches the user's settings) and fails
when it leaves a GUI worker thread (tile/thumbnail pools, job or training threads) or any
new Python thread running.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PATCH_L0 = 128  # level-0 px per patch side on the test slide


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, qapp):
    """A fresh INI settings location and organisation name for this test."""
    from PySide6.QtCore import QCoreApplication, QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
    QCoreApplication.setOrganizationName(f"cdfis-test-{tmp_path.name}")
    QCoreApplication.setApplicationName("cdfis-desktop-test")
    yield tmp_path / "settings"


@pytest.fixture(autouse=True)
def no_threads_left(qapp):
    """Fail the test if it leaves a registered GUI worker or a new Python thread running."""
    from cdfis_desktop.gui.threads import busy_threads

    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        qapp.processEvents()
        busy = busy_threads()
        extra = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
        ]
        if not busy and not extra:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running after the test: {busy + [t.name for t in extra]}")


@dataclass(frozen=True)
class GuiProject:
    """A real project folder with one slide, a patch grid, and one finished run trained by
    the engine (epochs 0, 1, 2)."""

    folder: Path
    slide_path: Path
    slide_id: int
    run_id: int
    patch_ids: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray


@dataclass(frozen=True)
class GridSlide:
    """A slide registered with a square patch grid (label 1 on its right half)."""

    slide_id: int
    patch_ids: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray


def add_grid_slide(
    project: Any,
    slide_path: Path,
    *,
    l0_size: int,
    patch_px: int,
    mpp: float,
    group: str = "",
    split: Any = None,
) -> GridSlide:
    """Register ``slide_path`` (again) with ``l0_size`` patches covering it; ``split`` as
    ``Project.add_patches`` takes it (a list, one per patch, or None)."""
    from cdfis_desktop.core.slides import open_slide

    with open_slide(slide_path) as slide:
        width, height = slide.dimensions
        fingerprint, slide_mpp = slide.fingerprint(), slide.mpp
    slide_id = project.add_slide(
        slide_path, fingerprint=fingerprint, width=width, height=height, mpp=slide_mpp, group=group
    )
    xs, ys = np.meshgrid(
        np.arange(0, width - l0_size + 1, l0_size), np.arange(0, height - l0_size + 1, l0_size)
    )
    l0_x, l0_y = xs.ravel(), ys.ravel()
    split_of = split(l0_x.size) if callable(split) else split
    ids = project.add_patches(
        slide_id,
        l0_x=l0_x,
        l0_y=l0_y,
        l0_size=l0_size,
        patch_px=patch_px,
        mpp=mpp,
        label=(l0_x >= width // 2).astype(np.int64),
        tissue_fraction=1.0,
        split=split_of,
    )
    return GridSlide(slide_id, ids, l0_x, l0_y)


def build_project(folder: Path, slide_path: Path, epochs: int = 3, seed: int = 0) -> GuiProject:
    """A new project with a patch grid over the slide (label 1 on the right half, every
    5th patch held out for validation) and one finished CDF/presample/loss run trained on
    it by the engine itself (``Trainer.iter_run``): its epochs, metrics, predictions and
    history are what a real run writes, numbered as the engine numbers them."""
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import RunFinished

    project = Project.create(folder)
    try:
        project.set_class_names(["Stroma", "Tumor"])
        grid = add_grid_slide(
            project,
            slide_path,
            l0_size=PATCH_L0,
            patch_px=64,
            mpp=1.0,
            split=lambda n: ["val" if i % 5 == 0 else "train" for i in range(n)],
        )
        config = RunConfig(
            sampler=SamplerConfig(rule="cdf", presample_ratio=4.0),
            batch_size=16,
            epochs=epochs,
            input_px=32,
            augment=False,
            seed=seed,
            device="cpu",
            history_flush_steps=10,
        )
        reports = list(Trainer(project, run_name="test run").iter_run(config))
        finished = reports[-1]
        assert isinstance(finished, RunFinished) and finished.status == "finished", finished
    finally:
        project.close()
    return GuiProject(
        folder, slide_path, grid.slide_id, finished.run_id, grid.patch_ids, grid.l0_x, grid.l0_y
    )


@pytest.fixture(scope="session")
def _template_project(tmp_path_factory: pytest.TempPathFactory, synthetic_slide) -> GuiProject:
    folder = tmp_path_factory.mktemp("gui-template") / "project"
    return build_project(folder, synthetic_slide.slide_path)


@pytest.fixture
def gui_project(tmp_path: Path, _template_project: GuiProject) -> GuiProject:
    """A fresh copy (per test) of the project :func:`build_project` makes."""
    folder = tmp_path / "project"
    shutil.copytree(_template_project.folder, folder)
    return dataclasses.replace(_template_project, folder=folder)


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@dataclass(frozen=True)
class MultiSlideProject:
    """Four registrations of the test slide, as four patients: ``trained`` (a, b) were
    trained on, ``validation`` (c) validated the engine's run (``val_groups``), and
    ``imported_later`` (d) was added after the run. Slide a carries its annotation file
    (kept in the project, as an import does)."""

    folder: Path
    run_id: int
    trained: tuple[int, int]
    validation: int
    imported_later: int


MULTI_PATCH_L0 = 256


def build_multi_slide_project(folder: Path, synthetic_slide: Any) -> MultiSlideProject:
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.tiling.annotations import keep_annotations
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import RunFinished

    def add(project: Any, group: str) -> int:
        return add_grid_slide(
            project,
            synthetic_slide.slide_path,
            l0_size=MULTI_PATCH_L0,
            patch_px=32,
            mpp=4.0,
            group=group,
        ).slide_id

    with Project.create(folder) as project:
        project.set_class_names(["Stroma", "Tumor"])
        a, b, c = (add(project, group) for group in ("patient-a", "patient-b", "patient-c"))
        keep_annotations(folder, a, synthetic_slide.annotations_path)
        config = RunConfig(
            sampler=SamplerConfig(rule="cdf", presample_ratio=2.0),
            batch_size=16,
            epochs=2,
            input_px=32,
            augment=False,
            device="cpu",
            val_groups=("patient-c",),
        )
        reports = list(Trainer(project, run_name="multi").iter_run(config))
        finished = reports[-1]
        assert isinstance(finished, RunFinished) and finished.status == "finished", finished
        d = add(project, "patient-d")
    return MultiSlideProject(folder, finished.run_id, (a, b), c, d)


@pytest.fixture(scope="session")
def _template_multi(tmp_path_factory: pytest.TempPathFactory, synthetic_slide) -> MultiSlideProject:
    folder = tmp_path_factory.mktemp("gui-multi") / "project"
    return build_multi_slide_project(folder, synthetic_slide)


@pytest.fixture
def multi_project(tmp_path: Path, _template_multi: MultiSlideProject) -> MultiSlideProject:
    """A fresh copy (per test) of :func:`build_multi_slide_project`'s project."""
    folder = tmp_path / "multi"
    shutil.copytree(_template_multi.folder, folder)
    return dataclasses.replace(_template_multi, folder=folder)


def _settle(window: Any, qtbot: Any) -> None:
    qtbot.waitUntil(
        lambda: window.viewer.is_settled() and not window.jobs_running(), timeout=15_000
    )


@pytest.fixture
def settle(qtbot: Any) -> Any:
    """``settle(window)``: wait until the viewer's tiles are drawn and no job or overlay
    rendering is under way."""
    return lambda window: _settle(window, qtbot)


@pytest.fixture
def window_on(qtbot: Any) -> Any:
    """``window_on(folder, size=None)``: a shown :class:`MainWindow` on the project in
    ``folder``, settled; closed after the test."""
    from cdfis_desktop.gui.main_window import MainWindow

    windows: list[Any] = []

    def open_on(folder: Path, size: tuple[int, int] | None = None) -> Any:
        window = MainWindow()
        qtbot.addWidget(window)
        windows.append(window)
        if size is not None:
            window.resize(*size)
        window.show()
        assert window.open_project(folder)
        _settle(window, qtbot)
        return window

    yield open_on
    for window in windows:
        window.close()
