"""A slide-scale project store for the ``--scale`` modes of ``store.py`` and ``viewer.py``:
>= 10 million history rows written through the store's real write API (no training).

Layout: ``slides`` slides of ``patches_per_slide`` patches each (default 5 x 50,000 =
250,000 patches of 256 px at 0.5 µm/px on 100,000 x 100,000 px slides, the slide-scale
project of issue 18), one finished history-mode run of ``epochs`` epochs whose steps each
record ``candidates`` scored patches (scores, the sampler's probabilities, draws and the
training dynamics of the drawn rows) through :meth:`Project.history_writer`, a metrics row
per step, and every patch's prediction at the last epoch. Default: 10 epochs x 245 steps x
4,096 candidates = 10,035,200 history rows (each patch scored ~4 times per epoch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SLIDE_PX = 100_000
PATCH_L0_PX = 512  # 256 px at 0.5 µm/px on a 0.25 µm/px slide


@dataclass(frozen=True)
class ScaleProject:
    """What :func:`build_scale_project` wrote, and how long it took (s)."""

    folder: Path
    run_id: int
    patches: int
    history_rows: int
    epochs: int
    build_s: float


def build_scale_project(
    folder: Path,
    *,
    slides: int = 5,
    patches_per_slide: int = 50_000,
    epochs: int = 10,
    steps_per_epoch: int = 245,
    candidates: int = 4096,
    batch: int = 256,
    seed: int = 0,
    slide_files: list[Path] | None = None,
) -> ScaleProject:
    """Create the project in ``folder`` (which must not hold one). Deterministic in
    ``seed``. ``slide_files``: real slide files to register (one per slide, e.g. from
    ``slide_scale.py``'s generate stage, for the viewer); default: paths that do not
    exist (the store alone)."""
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.storage import Project

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    side = SLIDE_PX // PATCH_L0_PX
    k = np.arange(patches_per_slide)
    with Project.create(folder) as project:
        project.set_class_names(["Normal", "Tumor"])
        all_ids = []
        for index in range(slides):
            slide_id = project.add_slide(
                slide_files[index] if slide_files else f"/scale/slide-{index}.tiff",
                fingerprint=f"scale-{index}",
                width=SLIDE_PX,
                height=SLIDE_PX,
                mpp=0.25,
                group=f"case-{index}",
            )
            all_ids.append(
                project.add_patches(
                    slide_id,
                    l0_x=(k % side) * PATCH_L0_PX,
                    l0_y=(k // side) * PATCH_L0_PX,
                    l0_size=PATCH_L0_PX,
                    patch_px=256,
                    mpp=0.5,
                    label=(k % side > side // 2).astype(np.int64),
                    tissue_fraction=0.9,
                    split="val" if index == slides - 1 else "train",
                )
            )
        train_ids = np.concatenate(all_ids[:-1] if slides > 1 else all_ids)
        run_id = project.create_run(
            RunConfig(sampler=SamplerConfig(rule="cdf", mode="history")),
            n_train=int(train_ids.size),
            device="cpu",
            name="scale",
        )
        rows = 0
        step = 0
        with project.history_writer(run_id, flush_every_steps=20) as writer:
            for epoch in range(epochs):
                for _ in range(steps_per_epoch):
                    step += 1
                    cand = np.sort(rng.choice(train_ids, candidates, replace=False))
                    score = rng.gamma(2.0, 0.3, candidates).astype(np.float32)
                    prob = (score / score.sum()).astype(np.float32)
                    chosen = rng.multinomial(batch, prob / prob.sum(dtype=np.float64))
                    trained = chosen > 0
                    label_probability = np.where(trained, rng.random(candidates), np.nan)
                    margin = np.where(trained, rng.normal(0.5, 1.0, candidates), np.nan)
                    writer.record(
                        step,
                        epoch,
                        cand,
                        score,
                        prob,
                        chosen,
                        chosen.astype(np.float32),
                        label_probability=label_probability.astype(np.float32),
                        margin=margin.astype(np.float32),
                    )
                    project.log_metrics(
                        run_id, step, epoch, step * 0.1, train_loss=float(score.mean())
                    )
                    rows += candidates
        every = np.concatenate(all_ids)
        project.set_predictions(
            run_id,
            epochs - 1,
            every,
            (rng.random(every.size) > 0.5).astype(np.int64),
            rng.random(every.size),
        )
        project.set_run_status(run_id, "finished")
    return ScaleProject(
        folder=folder,
        run_id=run_id,
        patches=int(slides * patches_per_slide),
        history_rows=rows,
        epochs=epochs,
        build_s=time.perf_counter() - started,
    )


def database_mib(folder: Path) -> float:
    """Size of the project's database files (``project.db*``), MiB."""
    return sum(p.stat().st_size for p in folder.glob("project.db*")) / 2**20
