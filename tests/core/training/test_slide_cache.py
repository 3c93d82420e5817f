"""Slide-backed datasets: the patch cache (built from block reads, reused, rebuilt when the
patches or input size change, never left half-built), workers, a missing slide, and the
engine's loading step. Real OpenSlide reads of generated pyramidal TIFFs, a real store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import SlideOpenError
from cdfis_desktop.core.progress import Cancelled, CancelToken
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import SlidePatchDataset


def _project(folder: Path, slide_path: Path) -> Project:
    """Two copies of the synthetic slide (two patients) with patches of two sizes, some
    off the level-1 pixel grid, labelled 0/1 alternately."""
    project = Project.create(folder)
    project.set_class_names(["normal", "tumor"])
    for group, (l0_size, shift) in enumerate(((128, 0), (200, 3))):
        target = project.slides_dir / f"slide{group}.tiff"
        shutil.copy(slide_path, target)
        with open_slide(target) as reader:
            width, height, fingerprint = *reader.dimensions, reader.fingerprint()
        slide_id = project.add_slide(
            target, fingerprint=fingerprint, width=width, height=height, mpp=0.5,
            group=f"patient-{group}",
        )  # fmt: skip
        xs, ys = np.meshgrid(np.arange(0, width - 256, 160), np.arange(0, height - 256, 160))
        l0_x, l0_y = xs.ravel(), ys.ravel()
        l0_x[::5] += shift
        project.add_patches(
            slide_id, l0_x=l0_x, l0_y=l0_y, l0_size=l0_size, patch_px=32, mpp=0.5 * l0_size / 32,
            label=np.arange(len(l0_x)) % 2, tissue_fraction=1.0,
        )  # fmt: skip
    return project


@pytest.fixture()
def project(tmp_path: Path, synthetic_slide) -> Project:
    with _project(tmp_path / "project", synthetic_slide.slide_path) as opened:
        yield opened


def _one_by_one(dataset: SlidePatchDataset) -> np.ndarray:
    """Every image read with one read_region_at_mpp per patch (the reference)."""
    try:
        return np.stack([dataset._read(i).transpose(2, 0, 1) for i in range(len(dataset))])
    finally:
        dataset.close()


def _cache_files(project: Project) -> list[str]:
    return sorted(p.name for p in Path(project.cache_dir).iterdir() if "patches-" in p.name)


def test_cached_patches_equal_one_read_per_patch(project: Project) -> None:
    dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    reports = list(dataset.iter_load())
    assert reports[-1].done == reports[-1].total == len(dataset) > 100
    assert dataset.loaded and not dataset.preloaded
    assert [dataset.cache_path.name] == _cache_files(project)
    images = dataset.load_batch(np.arange(len(dataset)))[0].numpy()
    reference = SlidePatchDataset.from_project(project, input_px=32, use_cache=False)
    assert np.array_equal(images, _one_by_one(reference))


def test_the_cache_is_reused_and_rebuilt_when_input_size_or_grid_change(project: Project) -> None:
    first = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    assert list(first.iter_load())  # built: progress reported
    built = os.stat(first.cache_path)
    again = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    assert again.cache_path == first.cache_path
    assert list(again.iter_load()) == []  # reused: nothing decoded
    assert os.stat(again.cache_path).st_mtime_ns == built.st_mtime_ns
    other_px = SlidePatchDataset.from_project(project, input_px=24, preload=False)
    assert other_px.cache_path != first.cache_path and list(other_px.iter_load())
    assert other_px.load_batch([0])[0].shape == (1, 3, 24, 24)
    subset = project.patches().id[::2]  # another grid: other patches
    other_grid = SlidePatchDataset.from_project(project, subset, input_px=32, preload=False)
    assert other_grid.cache_path not in (first.cache_path, other_px.cache_path)
    assert list(other_grid.iter_load())
    assert np.array_equal(
        other_grid.load_batch([1])[0], first.load_batch([2])[0]
    )  # the same patch from either cache
    assert len(_cache_files(project)) == 3


def test_a_cancelled_build_leaves_no_cache_and_the_next_builds_it_whole(project: Project) -> None:
    dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    assert dataset.reserve_storage() == ""  # the scratch file is reserved now
    cancel = CancelToken()
    loading = dataset.iter_load(cancel)
    first = next(loading)
    assert first.done < first.total
    cancel.cancel()
    with pytest.raises(Cancelled):
        list(loading)
    assert _cache_files(project) == []  # neither the cache nor its scratch file
    assert not dataset.loaded
    assert list(dataset.iter_load())[-1].done == len(dataset)
    assert _cache_files(project) == [dataset.cache_path.name]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 1 CPU in CI: fine
def test_workers_decode_the_same_pixels(project: Project) -> None:
    serial = SlidePatchDataset.from_project(project, input_px=32, use_cache=False, preload=True)
    parallel = SlidePatchDataset.from_project(project, input_px=32, use_cache=False, preload=True)
    list(serial.iter_load(workers=0))
    list(parallel.iter_load(workers=2))
    rows = np.random.default_rng(0).permutation(len(serial))[:64]
    assert serial.preloaded and parallel.preloaded
    assert np.array_equal(serial.load_batch(rows)[0], parallel.load_batch(rows)[0])
    assert np.array_equal(serial.load_batch(rows)[0].numpy(), _one_by_one(serial)[rows])


@pytest.mark.parametrize("workers", [0, 2])
def test_a_moved_slide_is_named_and_no_cache_is_left(project: Project, workers: int) -> None:
    dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    dataset.reserve_storage()
    moved = Path(project.slides()[1].file)
    moved.rename(moved.with_name("elsewhere.tiff"))
    with pytest.raises(
        SlideOpenError,
        match=r"slide 2 of the project cannot be read: .*no such file.*Put the file back",
    ):
        list(dataset.iter_load(workers=workers))
    assert _cache_files(project) == []


def test_training_reports_loading_and_a_cancel_while_loading_stops_the_run(
    project: Project,
) -> None:
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import LoadProgress, RunFinished, StepReport

    config = RunConfig(input_px=32, batch_size=16, max_steps=2, epochs=None, device="cpu")
    dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    cancel = CancelToken()
    reports = []
    for report in Trainer(project, dataset=dataset).iter_run(config, cancel):
        reports.append(report)
        if isinstance(report, LoadProgress):
            cancel.cancel()
    loads = [r for r in reports if isinstance(r, LoadProgress)]
    assert len(loads) == 1 and loads[0].done < loads[0].total
    assert not any(isinstance(r, StepReport) for r in reports)
    assert isinstance(reports[-1], RunFinished) and reports[-1].status == "cancelled"
    assert _cache_files(project) == []
    # a new run builds the cache, reporting up to every patch, and trains
    dataset = SlidePatchDataset.from_project(project, input_px=32, preload=False)
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    loads = [r for r in reports if isinstance(r, LoadProgress)]
    assert loads[-1].done == loads[-1].total == len(dataset)
    assert reports[-1].status == "finished" and reports[-1].step == 2
