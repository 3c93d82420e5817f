"""Folder and HDF5 patch datasets, preloading, the disk cache, and batched augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from cdfis_desktop.core.errors import LabelsError, SlideOpenError
from cdfis_desktop.core.training.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Augmentation,
    augment_and_normalise,
    hed_jitter,
    normalise,
    random_dihedral,
)
from cdfis_desktop.core.training.datasets import FolderPatchDataset, H5PatchDataset


def _write_h5(tmp_path: Path, n: int = 6, px: int = 16) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, px, px, 3), dtype=np.uint8)
    x_path, y_path = tmp_path / "t_x.h5", tmp_path / "t_y.h5"
    with h5py.File(x_path, "w") as f:
        f["x"] = images
    with h5py.File(y_path, "w") as f:
        f["y"] = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1)
    return x_path, y_path, images


@pytest.mark.parametrize("preload", [True, False])
def test_h5_items_are_normalised_images_labels_and_ids(tmp_path: Path, preload: bool) -> None:
    x_path, y_path, images = _write_h5(tmp_path)
    dataset = H5PatchDataset(x_path, y_path, 16, preload=preload)
    assert len(dataset) == 6
    image, label, patch_id = dataset[3]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert (label, patch_id) == (1, 3)
    expected = normalise(torch.from_numpy(images[3]).permute(2, 0, 1)[None])[0]
    assert torch.allclose(image, expected)
    assert dataset.preloaded is preload
    batch, labels, ids = dataset.batch([5, 0, 2])
    assert (
        batch.shape == (3, 3, 16, 16) and labels.tolist() == [1, 0, 0] and ids.tolist() == [5, 0, 2]
    )


def test_h5_resizes_and_unlabelled_and_pickles(tmp_path: Path) -> None:
    x_path, _, _ = _write_h5(tmp_path, px=32)
    dataset = H5PatchDataset(x_path, None, 16, preload=False)
    assert dataset.labels.tolist() == [-1] * 6
    assert dataset[0][0].shape == (3, 16, 16)
    clone = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker gets
    assert torch.equal(clone[1][0], dataset[1][0])


def test_h5_bad_input(tmp_path: Path) -> None:
    x_path, y_path, _ = _write_h5(tmp_path)
    with pytest.raises(SlideOpenError, match="no such HDF5 file"):
        H5PatchDataset(tmp_path / "none.h5", None, 16)
    empty = tmp_path / "empty_x.h5"
    empty.write_bytes(b"")
    with pytest.raises(SlideOpenError, match="not a readable HDF5 file"):
        H5PatchDataset(empty, None, 16)
    short = tmp_path / "short_y.h5"
    with h5py.File(short, "w") as f:
        f["y"] = np.zeros(2, dtype=np.uint8)
    with pytest.raises(LabelsError, match="has 2 labels but"):
        H5PatchDataset(x_path, short, 16)
    two = tmp_path / "two_x.h5"
    with h5py.File(two, "w") as f:
        f["a"] = np.zeros((1, 4, 4, 3), np.uint8)
        f["b"] = np.zeros((1, 4, 4, 3), np.uint8)
    with pytest.raises(SlideOpenError, match="no dataset 'x'"):
        H5PatchDataset(two, None, 16)


def _write_folder(root: Path) -> None:
    for name, value in (("normal", 40), ("tumor", 200)):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 24, 3), value + i, np.uint8)).save(
                root / name / f"{i}.png"
            )


def test_folder_dataset_classes_resize_and_disk_cache(tmp_path: Path) -> None:
    root = tmp_path / "patches"
    _write_folder(root)
    cache = tmp_path / "cache" / "folder.npy"
    dataset = FolderPatchDataset(root, 12, preload=False, cache_path=cache)
    assert dataset.class_names == ["normal", "tumor"]
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1, 1]
    images, _, _ = dataset.load_batch([0, 4])
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 12, 12)
    assert images[0].unique().tolist() == [40] and images[1].unique().tolist() == [201]
    assert dataset.loaded and not dataset.preloaded  # the whole cache was built at once
    # a second dataset with the same cache file reads the cached pixels, not the files
    Image.fromarray(np.full((20, 24, 3), 99, np.uint8)).save(root / "normal" / "0.png")
    again = FolderPatchDataset(root, 12, preload=True, cache_path=cache)
    assert again.image_uint8(0).max() == 40
    assert again.image_uint8(1).max() == 41  # never read before: cached with the rest
    again.preload()
    assert again.preloaded and again.load_batch([0])[0].max() == 40
    # a different patch count does not fit the cache: it is rebuilt
    (root / "normal" / "2.png").unlink()
    rebuilt = FolderPatchDataset(root, 12, preload=True, cache_path=cache)
    assert len(rebuilt) == 5 and rebuilt.image_uint8(0).max() == 99


def test_folder_bad_input(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="no such folder"):
        FolderPatchDataset(tmp_path / "none", 8)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(LabelsError, match="found no images"):
        FolderPatchDataset(tmp_path / "empty", 8)
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.png").write_bytes(b"not a png")
    with pytest.raises(SlideOpenError, match="cannot be read as an image"):
        FolderPatchDataset(tmp_path / "bad", 8, preload=False)[0]


def test_dihedral_keeps_pixels_and_covers_all_eight_cases() -> None:
    base = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).expand(400, 3, 4, 4)
    out = random_dihedral(base, Augmentation(), torch.Generator().manual_seed(0))
    assert torch.equal(
        out.sort(dim=-1)[0].flatten(1).sort(dim=1)[0], base.flatten(1).sort(dim=1)[0]
    )
    variants = {tuple(o[0].flatten().tolist()) for o in out}
    assert len(variants) == 8  # 4 rotations x 2 flips, each reached at a fixed seed
    none = random_dihedral(base, Augmentation(flips=False, rotations=False))
    assert torch.equal(none, base)


def test_hed_jitter_is_identity_at_zero_and_mild_otherwise() -> None:
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.uniform(0.2, 0.95, (4, 3, 8, 8)).astype(np.float32))
    assert torch.allclose(hed_jitter(images, 0.0, 0.0), images, atol=1e-5)
    jittered = hed_jitter(images, 0.05, 0.01, torch.Generator().manual_seed(0))
    change = (jittered - images).abs().mean().item()
    assert 0.001 < change < 0.08


def test_augment_and_normalise_off_is_plain_normalisation() -> None:
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = augment_and_normalise(images, None)
    expected = (1.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[0, :, 0, 0], expected)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        augment_and_normalise(images[0], None)


def test_slide_dataset_opens_a_slide_stored_relative_to_the_project(
    synthetic_slide, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training opens a registered slide as the GUI and reports do: its path resolved
    against the project folder and with the project's mpp override."""
    import shutil

    from cdfis_desktop.core.slides import open_slide
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.datasets import SlidePatchDataset

    with open_slide(synthetic_slide.slide_path) as reader:
        width, height, fingerprint = *reader.dimensions, reader.fingerprint()
        expected = reader.read_region_at_mpp(256, 128, 16, 16, 0.5 * 128 / 16)
    with Project.create(tmp_path / "project") as project:
        shutil.copy(synthetic_slide.slide_path, project.slides_dir / "inside.tiff")
        slide_id = project.add_slide(
            "slides/inside.tiff", fingerprint=fingerprint, width=width, height=height, mpp=0.5
        )
        project.set_slide_mpp(slide_id, 0.5)
        project.add_patches(
            slide_id,
            l0_x=[256],
            l0_y=[128],
            l0_size=128,
            patch_px=16,
            mpp=4.0,
            label=0,
            tissue_fraction=1.0,
        )
        record = project.slides()[0]
        monkeypatch.chdir(tmp_path)  # not the project folder: a relative open would fail
        with record.open() as reader:
            assert reader.mpp == 0.5 and reader.path == project.folder / "slides/inside.tiff"
        dataset = SlidePatchDataset.from_project(
            project, input_px=16, preload=False, use_cache=False
        )
        try:
            assert np.array_equal(dataset.image_uint8(0), expected.transpose(2, 0, 1))
        finally:
            dataset.close()
