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


def build_project(folder: Path, slide_path: Path, epochs: int = 3, seed: int = 0) -> GuiProject:
    """A new project with a patch grid over the slide (label 1 on the right half, every
    5th patch held out for validation) and one finished CDF/presample/loss run trained on
    it by the engine itself (``Trainer.iter_run``): its epochs, metrics, predictions and
    history are what a real run writes, numbered as the engine numbers them."""
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import RunFinished

    with open_slide(slide_path) as slide:
        width, height = slide.dimensions
        fingerprint, mpp = slide.fingerprint(), slide.mpp
    project = Project.create(folder)
    try:
        slide_id = project.add_slide(
            slide_path, fingerprint=fingerprint, width=width, height=height, mpp=mpp
        )
        project.set_class_names(["Stroma", "Tumor"])
        xs, ys = np.meshgrid(
            np.arange(0, width - PATCH_L0 + 1, PATCH_L0),
            np.arange(0, height - PATCH_L0 + 1, PATCH_L0),
        )
        l0_x, l0_y = xs.ravel(), ys.ravel()
        label = (l0_x >= width // 2).astype(np.int64)
        split = ["val" if i % 5 == 0 else "train" for i in range(l0_x.size)]
        ids = project.add_patches(
            slide_id,
            l0_x=l0_x,
            l0_y=l0_y,
            l0_size=PATCH_L0,
            patch_px=64,
            mpp=1.0,
            label=label,
            tissue_fraction=1.0,
            split=split,
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
    return GuiProject(folder, slide_path, slide_id, finished.run_id, ids, l0_x, l0_y)


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
