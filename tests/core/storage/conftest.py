"""Fixtures of the store tests: a fresh project in tmp_path, with one slide of patches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.storage import Project

N_PATCHES = 60


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A new, empty project in a fresh folder."""
    with Project.create(tmp_path / "project") as opened:
        yield opened


@pytest.fixture
def slide_patches(project: Project) -> tuple[int, np.ndarray]:
    """One slide with a 10 x 6 grid of 512 px (level 0) patches; the first 40 are train,
    the rest val; labels alternate 0/1. Returns (slide_id, patch ids)."""
    slide_id = project.add_slide(
        "/data/a.svs", fingerprint="fp-a", width=5120, height=3072, mpp=0.25, vendor="aperio"
    )
    k = np.arange(N_PATCHES)
    ids = project.add_patches(
        slide_id,
        l0_x=(k % 10) * 512,
        l0_y=(k // 10) * 512,
        l0_size=512,
        patch_px=256,
        mpp=0.5,
        label=k % 2,
        tissue_fraction=np.linspace(0.5, 1.0, N_PATCHES),
        split=["train"] * 40 + ["val"] * 20,
    )
    return slide_id, ids


@pytest.fixture
def make_run(project: Project) -> Callable[..., int]:
    """``make_run(n_train=40, **overrides) -> run_id``: a running CDF/presample/loss run."""

    def make(n_train: int = 40, **kwargs: object) -> int:
        return _new_run(project, n_train, RunConfig(batch_size=4), **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def new_run() -> Callable[..., int]:
    """``new_run(project, n_train, **overrides) -> run_id``: a CDF/presample/loss run with an
    empty config in any open project (seed 0, cpu)."""

    def make(project: Project, n_train: int, **kwargs: object) -> int:
        return _new_run(project, n_train, RunConfig(), **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def row_patches() -> Callable[..., tuple[int, np.ndarray]]:
    """``row_patches(project, n, *, path="/a", label=0, split="train") -> (slide_id, ids)``:
    adds a 10 x 10 px slide at ``path`` (fingerprint: the file's stem, mpp 0.5) and ``n``
    1-px level-0 patches in a row (l0_x = 0 .. n-1, l0_y = 0; patch_px 1 at mpp 0.5, tissue
    fraction 1). ``label`` and ``split`` are one value or one per patch."""

    def add(
        project: Project,
        n: int,
        *,
        path: str = "/a",
        label: int | Sequence[int] = 0,
        split: str | Sequence[str] = "train",
    ) -> tuple[int, np.ndarray]:
        slide_id = project.add_slide(
            path, fingerprint=PurePosixPath(path).stem, width=10, height=10, mpp=0.5
        )
        ids = project.add_patches(
            slide_id,
            l0_x=np.arange(n),
            l0_y=0,
            l0_size=1,
            patch_px=1,
            mpp=0.5,
            label=label,
            tissue_fraction=1.0,
            split=split,
        )
        return slide_id, ids

    return add


def _new_run(
    project: Project,
    n_train: int,
    config: RunConfig,
    *,
    sampler_rule: str = "cdf",
    sampler_mode: str = "presample",
    metric: str = "loss",
    seed: int = 0,
    name: str = "",
) -> int:
    sampler = replace(config.sampler, rule=sampler_rule, mode=sampler_mode, metric=metric)
    config = replace(config, sampler=sampler, seed=seed)
    return project.create_run(config, n_train=n_train, device="cpu", name=name)
