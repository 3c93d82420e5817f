"""A tiny real project for engine tests: real SQLite store in tmp_path, patches registered
on fake slide records (no slide files: images come from an in-memory dataset).

Class 1 patches are redder than class 0 patches plus noise, so a few steps of training
lower the loss. Groups: ``n_groups`` patients, one slide each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.memory import ArrayPatchDataset


def make_images(labels: np.ndarray, px: int, seed: int) -> np.ndarray:
    """uint8[n, 3, px, px]: noisy pink tissue; class 1 has a stronger red channel."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    base = np.array([200, 150, 190], dtype=np.float32).reshape(1, 3, 1, 1)
    shift = np.where(labels == 1, 30.0, -30.0).astype(np.float32).reshape(n, 1, 1, 1)
    channel = np.array([1.0, -0.3, 0.0], dtype=np.float32).reshape(1, 3, 1, 1)
    noise = rng.normal(0, 25, size=(n, 3, px, px)).astype(np.float32)
    return np.clip(base + shift * channel + noise, 0, 255).astype(np.uint8)


def make_project(
    folder: Path, *, n_per_group: int = 24, n_groups: int = 4, px: int = 32, seed: int = 0
) -> tuple[Project, ArrayPatchDataset]:
    """A project with ``n_groups`` slides of ``n_per_group`` patches each (both classes in
    every slide) and the matching in-memory dataset."""
    project = Project.create(folder)
    project.set_class_names(["normal", "tumor"])
    ids: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    side = int(np.ceil(np.sqrt(n_per_group)))
    for group in range(n_groups):
        slide_id = project.add_slide(
            folder / f"slide{group}.tiff",
            fingerprint=f"fp{group}",
            width=side * 256,
            height=side * 256,
            mpp=0.5,
            group=f"patient-{group}",
        )
        k = np.arange(n_per_group)
        label = (k % 2).astype(np.int64)
        ids.append(
            project.add_patches(
                slide_id,
                l0_x=(k % side) * 256,
                l0_y=(k // side) * 256,
                l0_size=256,
                patch_px=px,
                mpp=0.5,
                label=label,
                tissue_fraction=1.0,
            )
        )
        labels.append(label)
    all_labels = np.concatenate(labels)
    dataset = ArrayPatchDataset(make_images(all_labels, px, seed), all_labels, np.concatenate(ids))
    return project, dataset
