"""The demo project behind ``cdfis demo``: generated slides, imported, ready to train.

A demo project is an ordinary project: three synthetic H&E slides (one per "patient", so
validation is split by patient) with QuPath annotations of Tumor and Stroma, tiled at
96 px and 1 µm/px. Building it again in the same folder reuses what is there.
"""

from __future__ import annotations

from pathlib import Path

from cdfis_desktop.core.config import RunConfig, TilingConfig
from cdfis_desktop.core.demo.generate import generate_demo_slides
from cdfis_desktop.core.progress import CancelToken, ProgressCallback
from cdfis_desktop.core.sampling.presets import default_sampler_config
from cdfis_desktop.core.storage import Project

DEMO_SLIDES = 3
DEMO_TILING = TilingConfig(patch_px=96, mpp=1.0, min_tissue=0.5, min_label_coverage=0.5)
DEMO_CLASS_MAP = {"Stroma": 0, "Tumor": 1}


def build_demo_project(
    folder: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Project:
    """Open (or create) the demo project in ``folder`` and make sure it holds the demo
    slides and their labelled patches. Returns the open project (the caller closes it).
    Raises :class:`~cdfis_desktop.core.errors.StoreError` when the folder cannot be used."""
    from cdfis_desktop.core.importing import import_slides

    project = Project.open(folder, create=True)
    try:
        if not project.slides():
            demo = generate_demo_slides(project.slides_dir / "demo", n_slides=DEMO_SLIDES)
            import_slides(
                project,
                [d.slide_path for d in demo],
                annotations=[d.annotations_path for d in demo],
                tiling=DEMO_TILING,
                class_map=DEMO_CLASS_MAP,
                progress=progress,
                cancel=cancel,
            )
    except BaseException:
        project.close()
        raise
    return project


DEMO_RUN_NAME = "demo"
DEMO_STEPS = 60


def demo_run_config(seed: int = 0) -> RunConfig:
    """The demo's run, also the training form's defaults: the default sampler
    (``core.sampling.presets.default_sampler_config``: CDF pruning, switched on after one
    uniform epoch, floor 0.1). Bounded by steps, not time, so every machine trains the
    same ``DEMO_STEPS`` steps (6 epochs of the demo slides, about a minute on a 2-core
    CPU) and a seed gives the same run."""
    sampler = default_sampler_config()
    return RunConfig(
        sampler=sampler, batch_size=64, epochs=None, max_steps=DEMO_STEPS, input_px=96, seed=seed
    )
