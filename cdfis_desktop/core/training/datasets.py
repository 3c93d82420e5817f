"""Torch datasets of patch images: registered slide patches, class folders, PCam HDF5.

Every dataset yields items ``(image float32[3, H, W] normalised, label int, patch_id int)``
with H = W = ``input_px``, and also serves whole batches through :meth:`PatchDataset.batch`
(one indexing op on a preloaded uint8 tensor + batched augmentation) — the fast path the
trainer should use on a CPU; ``__getitem__`` is the per-item path for a DataLoader.

Speed (benchmarks/bench_labels_datasets.py, shared 2-core CPU under load): a batch of 64
patches at 96 px took ~400 ms read lazily from a JPEG-tiled slide and ~45 ms from the
preloaded uint8 array including normalisation (x9). So before training every image is
decoded once into one ``uint8[N, 3, H, W]`` array (:meth:`PatchDataset.iter_load`, with
progress and cancel): in RAM when that fits in ``preload_limit_bytes`` (1 GiB: ~38k
patches of 96 px), and, when the dataset has a ``cache_path``, into an on-disk cache (a
uint8 ``.npy`` file in the project's ``cache/`` folder, memory-mapped by later epochs and
reused by later runs). Slide patches are decoded a block of slide at a time
(:mod:`cdfis_desktop.core.slides.patch_blocks`, pixel-identical to one read per patch);
benchmarks/training_from_slides.py measures training from the cache against training from
preloaded arrays. The cache is built under a scratch name and moved into place when
complete, so a cache file is always whole: a cancelled or failed build leaves none. Its
disk space is reserved first (:mod:`cdfis_desktop.core.disk`), so a full disk is never a
SIGBUS: without room, the dataset goes on without a cache (patches read one by one) and
says so in :attr:`PatchDataset.storage_warning`.

Thread/process rules: slide and HDF5 handles are opened lazily and keyed by ``os.getpid()``,
so each DataLoader worker process opens its own (``iter_load(workers=n)`` decodes in n
worker processes this way); one dataset object must not be used by two threads at once.
Load the dataset (:meth:`PatchDataset.iter_load`) before creating a DataLoader with
workers, so the workers inherit the loaded array (or re-map the cache file) instead of
each loading its own.
"""

from __future__ import annotations

import copy
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cdfis_desktop.core.disk import reserved_memmap
from cdfis_desktop.core.errors import CdfisError, LabelsError, SlideOpenError, StorageFullError
from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.scratch import remove_orphans_of, scratch_file
from cdfis_desktop.core.slides.imageops import resize_rgb
from cdfis_desktop.core.training.augment import Augmentation, augment_and_normalise

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project

DEFAULT_PRELOAD_LIMIT_BYTES = 1 << 30
READ_CHUNK = 64
"""Images per read job of a dataset without a faster batched read."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

Item = tuple[torch.Tensor, int, int]


class PatchDataset(Dataset[Item], ABC):
    """Base class: ``labels`` int64[N], ``patch_ids`` int64[N], images read by
    :meth:`_read` as uint8[input_px, input_px, 3].

    ``preload``: True / False / None (auto: True when N * 3 * input_px**2 bytes fit in
    ``preload_limit_bytes``). ``cache_path``: a ``.npy`` file for the on-disk memmap cache
    (None = no cache). ``augmentation``: applied by ``__getitem__`` and, unless told
    otherwise, by :meth:`batch` (None = only normalise).
    """

    def __init__(
        self,
        labels: np.ndarray,
        patch_ids: np.ndarray,
        input_px: int,
        *,
        augmentation: Augmentation | None = None,
        preload: bool | None = None,
        preload_limit_bytes: int = DEFAULT_PRELOAD_LIMIT_BYTES,
        cache_path: Path | None = None,
    ) -> None:
        if input_px < 8:
            raise ValueError(f"input size must be at least 8 px, got {input_px}")
        self.labels = np.asarray(labels, dtype=np.int64)
        self.patch_ids = np.asarray(patch_ids, dtype=np.int64)
        if self.labels.shape != self.patch_ids.shape:
            raise ValueError("labels and patch ids differ in length")
        self.input_px = int(input_px)
        self.augmentation = augmentation
        self.preload_wanted = (
            self.nbytes <= preload_limit_bytes if preload is None else bool(preload)
        )
        self.cache_path = cache_path
        # every image, uint8[N, 3, px, px]: in RAM, or a complete cache file mapped read-only
        self._images: np.ndarray | None = None
        self._scratch: tuple[Path, np.memmap] | None = None  # the cache being built
        self.storage_warning = ""

    # -- subclasses ------------------------------------------------------------------

    @abstractmethod
    def _read(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8[input_px, input_px, 3] (RGB); every subclass defines it."""

    def _read_jobs(self, indices: np.ndarray) -> list[Any]:
        """Split the dataset ``indices`` int64[k] into picklable units of work for
        :meth:`_run_job` (default: runs of :data:`READ_CHUNK` images)."""
        return [indices[i : i + READ_CHUNK] for i in range(0, len(indices), READ_CHUNK)]

    def _run_job(self, job: Any) -> tuple[np.ndarray, np.ndarray]:
        """(dataset indices int64[k], images uint8[k, input_px, input_px, 3]) of one job."""
        return job, np.stack([self._checked(int(i)) for i in job])

    # -- public ----------------------------------------------------------------------

    @property
    def _shape(self) -> tuple[int, int, int, int]:
        return (len(self), 3, self.input_px, self.input_px)

    @property
    def nbytes(self) -> int:
        """Bytes of all images as uint8 at input_px."""
        return len(self) * 3 * self.input_px * self.input_px

    @property
    def preloaded(self) -> bool:
        """Every image is in RAM."""
        return self._images is not None and not isinstance(self._images, np.memmap)

    @property
    def loaded(self) -> bool:
        """Every image is in RAM or in the complete disk cache (batches index one array)."""
        return self._images is not None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def relabelled(self, labels: np.ndarray) -> PatchDataset:
        """A shallow copy serving the same images (those loaded so far are shared) with ``labels``
        int[N] instead (e.g. review decisions, or labels flipped on purpose); this dataset
        is left as it is."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != self.labels.shape:
            raise ValueError(f"expected {self.labels.shape[0]} labels, got {labels.shape[0]}")
        copied = copy.copy(self)
        copied.labels = labels
        return copied

    def __getitem__(self, index: int) -> Item:
        images, labels, ids = self.batch([int(index)])
        return images[0], int(labels[0]), int(ids[0])

    def image_uint8(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8[3, input_px, input_px], from memory/cache when there."""
        if self._images is None and self.cache_path is not None:
            self._images = _open_complete_cache(self.cache_path, self._shape)
        if self._images is not None:
            return np.asarray(self._images[index])
        return np.ascontiguousarray(self._checked(index).transpose(2, 0, 1))

    def load_batch(
        self, indices: Sequence[int] | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(uint8[k, 3, px, px], labels int64[k], patch ids int64[k]) for dataset indices.
        Loads every image first (:meth:`iter_load`, without progress) when the dataset is
        to be preloaded or cached and is not yet."""
        index = np.asarray(indices, dtype=np.int64)
        if self._images is None and (self.preload_wanted or self.cache_path is not None):
            for _ in self.iter_load():
                pass
        if self._images is not None:
            images = torch.from_numpy(np.asarray(self._images[index]))
        else:
            images = torch.from_numpy(np.stack([self.image_uint8(int(i)) for i in index]))
        return images, torch.from_numpy(self.labels[index]), torch.from_numpy(self.patch_ids[index])

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        augment: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(float32[k, 3, px, px] normalised (and augmented unless ``augment=False``),
        labels int64[k], patch ids int64[k])."""
        images, labels, ids = self.load_batch(indices)
        augmentation = self.augmentation if augment else None
        return augment_and_normalise(images, augmentation, generator), labels, ids

    def preload(
        self,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        *,
        workers: int = 0,
    ) -> None:
        """Put every image in RAM (through the disk cache when there is one): see
        :meth:`iter_load`."""
        self.preload_wanted = True
        for report in self.iter_load(cancel, workers=workers):
            if progress is not None:
                progress(report)

    def iter_load(
        self, cancel: CancelToken | None = None, *, workers: int = 0
    ) -> Iterator[Progress]:
        """Make every image available from one array, yielding progress (images done of
        all) while decoding: a complete disk cache is opened (and copied to RAM when the
        dataset is to be preloaded); otherwise every image is decoded, into the disk cache
        when there is one (built under a scratch name, moved into place when complete),
        else into RAM when preloading. Without either nothing is done (images are read one
        by one). ``workers`` > 0 decodes in that many DataLoader worker processes, each
        opening its own slide/HDF5 handles; the pixels do not depend on it.

        Raises ``Cancelled`` via ``cancel`` (a partly built cache is deleted, the dataset
        stays unloaded) and what :meth:`_read` raises (e.g. SlideOpenError).
        Thread rules: the thread owning the dataset.
        """
        if self._images is None:
            self._prepare_storage()
        if self._images is None and (self.preload_wanted or self._scratch is not None):
            yield from self._decode_all(cancel, workers)
        if self.preload_wanted and isinstance(self._images, np.memmap):
            self._images = None  # unmapped first, so RAM never holds the cache twice
            assert self.cache_path is not None
            self._images = np.load(self.cache_path)

    # -- storage ---------------------------------------------------------------------

    def reserve_storage(self) -> str:
        """Open the on-disk cache now (or reserve the disk space of the one to build).
        When the disk has no room for it (or it cannot be written at all), the dataset
        goes on without a cache (patches are read from their source) and a sentence for
        the user is returned; "" otherwise. Call before training starts, so this is known
        before anything is recorded."""
        self._prepare_storage()
        return self.storage_warning

    def _prepare_storage(self) -> None:
        """Open the complete cache, or reserve a scratch file to build it in."""
        if self._images is not None or self._scratch is not None or self.cache_path is None:
            return
        self._images = _open_complete_cache(self.cache_path, self._shape)
        if self._images is not None:
            return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            remove_orphans_of(self.cache_path)
            scratch = scratch_file(self.cache_path, ".partial")
            try:
                what = f"the patch cache {self.cache_path.name}"
                array = reserved_memmap(scratch, np.uint8, self._shape, what)
            except BaseException:
                scratch.unlink(missing_ok=True)
                raise
            self._scratch = (scratch, array)
        except (StorageFullError, OSError) as exc:  # full, read-only, no permission
            self.cache_path = None
            reason = str(exc) if isinstance(exc, StorageFullError) else exc.strerror
            self.storage_warning = (
                f"the patch cache cannot be written ({reason}); training goes on "
                "without it (patches are read from their source instead)"
            )

    def _decode_all(self, cancel: CancelToken | None, workers: int) -> Iterator[Progress]:
        """Decode every image into the scratch cache (then moved into place) or RAM."""
        from torch.utils.data import DataLoader

        scratch = self._scratch
        target = scratch[1] if scratch is not None else np.empty(self._shape, np.uint8)
        message = "building the patch cache" if scratch is not None else "loading patches"
        done = 0
        try:
            jobs = _Jobs(self, self._read_jobs(np.arange(len(self), dtype=np.int64)))
            loader = DataLoader(jobs, batch_size=None, num_workers=workers, collate_fn=_as_is)
            for result in loader:
                if isinstance(result, CdfisError):
                    raise result
                positions, images = result
                target[positions] = images.transpose(0, 3, 1, 2)
                before, done = done, done + len(positions)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if done * 100 // len(self) > before * 100 // len(self):  # every percent
                    yield Progress(done, len(self), message)
            self._images = target if self._scratch is None else self._finish_cache()
        finally:
            if self._scratch is not None:  # cancelled or failed: no half-built cache stays
                self._scratch[0].unlink(missing_ok=True)
                self._scratch = None

    def _finish_cache(self) -> np.ndarray:
        """Flush the scratch cache and move it into place; the cache mapped read-only."""
        assert self._scratch is not None and self.cache_path is not None
        scratch, array = self._scratch
        array.flush()
        del array
        self._scratch = None
        os.replace(scratch, self.cache_path)
        return np.load(self.cache_path, mmap_mode="r")

    def _checked(self, index: int) -> np.ndarray:
        image = self._read(index)
        expected = (self.input_px, self.input_px, 3)
        if image.shape != expected or image.dtype != np.uint8:
            raise RuntimeError(
                f"{type(self).__name__}._read returned {image.dtype}{list(image.shape)}"
            )
        return image

    def __getstate__(self) -> dict[str, Any]:
        # memmaps are re-opened in the worker; handles are per process anyway
        state = self.__dict__.copy()
        state["_scratch"] = None
        if isinstance(state.get("_images"), np.memmap):
            state["_images"] = None
        return state


class _Jobs(Dataset[Any]):
    """The read jobs of a dataset as a torch Dataset (one job per item), so a DataLoader
    can run them in worker processes. A :class:`CdfisError` is returned, not raised, so
    the main process re-raises it with its own one-line message."""

    def __init__(self, dataset: PatchDataset, jobs: list[Any]) -> None:
        self.dataset = dataset
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray] | CdfisError:
        try:
            return self.dataset._run_job(self.jobs[index])
        except CdfisError as exc:
            return exc


def _as_is(item: Any) -> Any:
    """DataLoader collate function that leaves numpy results as they are."""
    return item


def _open_complete_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cache file at ``path`` mapped read-only when it holds uint8 ``shape`` (a file
    there is always complete: it is moved into place only when built), else None."""
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if images.shape != shape or images.dtype != np.uint8:
        return None
    return images


def _to_input_size(image: np.ndarray, size_px: int) -> np.ndarray:
    """uint8[h, w, 3] -> uint8[size_px, size_px, 3] (identity when already that size)."""
    return resize_rgb(np.ascontiguousarray(image), size_px, size_px)


# -- registered slide patches -------------------------------------------------------------


@dataclass(frozen=True)
class SlideSource:
    """How to open one slide: ``path`` and the mpp override it was registered with."""

    path: str
    mpp_override: float | None = None


class SlidePatchDataset(PatchDataset):
    """Patches read lazily from their slides.

    ``slides``: slide id -> :class:`SlideSource`; per patch (arrays of length N):
    ``slide_id`` int64, ``l0_x``/``l0_y`` int64 top-left corner and ``l0_size`` int64 side
    (level-0 px). A patch is read with ``read_region_at_mpp`` at ``slide mpp * l0_size /
    input_px`` µm/px, so it covers exactly its ``l0_size`` level-0 px and comes out
    ``input_px`` wide.
    """

    def __init__(
        self,
        slides: dict[int, SlideSource],
        slide_id: np.ndarray,
        l0_x: np.ndarray,
        l0_y: np.ndarray,
        l0_size: np.ndarray,
        labels: np.ndarray,
        patch_ids: np.ndarray,
        input_px: int,
        **options: Any,
    ) -> None:
        super().__init__(labels, patch_ids, input_px, **options)
        self.slides = dict(slides)
        self.slide_id = np.asarray(slide_id, dtype=np.int64)
        self.l0_x = np.asarray(l0_x, dtype=np.int64)
        self.l0_y = np.asarray(l0_y, dtype=np.int64)
        self.l0_size = np.asarray(l0_size, dtype=np.int64)
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    @classmethod
    def from_project(
        cls,
        project: Project,
        patch_ids: np.ndarray | None = None,
        *,
        input_px: int,
        use_cache: bool = True,
        **options: Any,
    ) -> SlidePatchDataset:
        """Dataset over ``project``'s patches (all, or those with ``patch_ids``, in that
        order). With ``use_cache`` the disk cache goes to ``project.cache_dir``, keyed by
        the patches (ids, slides, corners, sides: the grid), their slide files (path, size,
        modification time, mpp override) and ``input_px``, so any change builds a new one
        (``v2``: whole files only; the partly filled caches of earlier versions, with a
        ``-filled.npy`` mask, are never read)."""
        table = project.patches()
        if patch_ids is not None:
            position = {int(p): i for i, p in enumerate(table.id)}
            missing = [int(p) for p in patch_ids if int(p) not in position]
            if missing:
                raise CdfisError(
                    f"patch id(s) {missing[:5]} are not in the project {project.folder}"
                )
            rows = np.array([position[int(p)] for p in patch_ids], dtype=np.int64)
        else:
            rows = np.arange(len(table))
        sources = {
            record.id: SlideSource(str(record.file), record.mpp_override)
            for record in project.slides()
        }
        arrays = {
            name: np.asarray(getattr(table, name))[rows]
            for name in ("id", "slide_id", "l0_x", "l0_y", "l0_size", "label")
        }
        cache_path = None
        if use_cache:
            key = _cache_key(sources, arrays, input_px)
            cache_path = Path(project.cache_dir) / f"patches-v2-{input_px}px-{key}.npy"
        return cls(
            sources,
            arrays["slide_id"],
            arrays["l0_x"],
            arrays["l0_y"],
            arrays["l0_size"],
            arrays["label"],
            arrays["id"],
            input_px,
            cache_path=cache_path,
            **options,
        )

    def check_slides(self) -> None:
        """Open every slide the dataset reads once (then close it), so a missing or
        unreadable slide file fails before training starts. Raises SlideOpenError naming
        the slide id and how to go on."""
        for slide_id in np.unique(self.slide_id).tolist():
            self._open(slide_id).close()

    def _open(self, slide_id: int) -> Any:
        """A new reader of slide ``slide_id``; SlideOpenError naming the slide and how to
        go on when its file is missing, moved or unreadable."""
        import warnings

        from cdfis_desktop.core.slides import open_slide

        source = self.slides[slide_id]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # missing mpp: reported at import
                return open_slide(source.path, mpp_override=source.mpp_override)
        except SlideOpenError as exc:
            raise SlideOpenError(
                f"slide {slide_id} of the project cannot be read: {exc}. Put the file "
                f"back at {source.path}, or remove the slide from the project "
                f"(cdfis slides remove --project DIR {slide_id})"
            ) from None

    def _read(self, index: int) -> np.ndarray:
        slide = self._slide(int(self.slide_id[index]))
        read_mpp = slide.effective_mpp * int(self.l0_size[index]) / self.input_px
        return slide.read_region_at_mpp(
            int(self.l0_x[index]), int(self.l0_y[index]), self.input_px, self.input_px, read_mpp
        )

    def _read_jobs(self, indices: np.ndarray) -> list[Any]:
        """One job per block of a slide (:func:`plan_patch_blocks`): (slide id, block with
        dataset indices as positions). Opens each slide to plan its blocks."""
        from cdfis_desktop.core.slides.patch_blocks import plan_patch_blocks

        jobs: list[Any] = []
        for slide_id in np.unique(self.slide_id[indices]).tolist():
            rows = indices[self.slide_id[indices] == slide_id]
            blocks = plan_patch_blocks(
                self._slide(slide_id),
                self.l0_x[rows],
                self.l0_y[rows],
                self.l0_size[rows],
                self.input_px,
            )
            jobs.extend((slide_id, replace(b, positions=rows[b.positions])) for b in blocks)
        return jobs

    def _run_job(self, job: Any) -> tuple[np.ndarray, np.ndarray]:
        from cdfis_desktop.core.slides.patch_blocks import read_patch_block

        slide_id, block = job
        return block.positions, read_patch_block(self._slide(slide_id), block, self.input_px)

    def _slide(self, slide_id: int) -> Any:
        if self._pid != os.getpid():  # a forked DataLoader worker: never reuse the parent's
            self._handles = {}
            self._pid = os.getpid()
        handle = self._handles.get(slide_id)
        if handle is None:
            handle = self._open(slide_id)
            self._handles[slide_id] = handle
        return handle

    def close(self) -> None:
        """Close the slide handles this process opened."""
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_handles"] = {}
        return state


def _cache_key(
    sources: dict[int, SlideSource], arrays: dict[str, np.ndarray], input_px: int
) -> str:
    digest = hashlib.sha1(str(input_px).encode())
    for slide_id in sorted(sources):
        source = sources[slide_id]
        stat = os.stat(source.path) if os.path.exists(source.path) else None
        digest.update(f"{slide_id}|{source.path}|{source.mpp_override}|".encode())
        if stat is not None:
            digest.update(f"{stat.st_size}|{stat.st_mtime_ns}".encode())
    for name in ("id", "slide_id", "l0_x", "l0_y", "l0_size"):
        digest.update(np.ascontiguousarray(arrays[name], dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


# -- a folder of class sub-folders -----------------------------------------------------------


class FolderPatchDataset(PatchDataset):
    """Images in ``root/<class>/*.png|jpg|tif``; classes are the sub-folder names sorted
    (``class_names``), labels their index; patch ids are positions in the sorted file list.
    Images of another size are resized to ``input_px`` (area average when shrinking,
    bilinear when enlarging).

    Raises :class:`LabelsError` when ``root`` is missing, not a folder, or holds no class
    folder with images.
    """

    def __init__(self, root: str | Path, input_px: int, **options: Any) -> None:
        root = Path(root)
        if not root.is_dir():
            raise LabelsError(
                f"{root}: {'is not a folder' if root.exists() else 'no such folder'}; give a "
                "folder with one sub-folder of images per class"
            )
        classes = sorted(
            p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        files: list[Path] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            found = sorted(
                p
                for p in (root / name).iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()  # no FIFO: would block
            )
            files.extend(found)
            labels.extend([label] * len(found))
        if not files:
            raise LabelsError(
                f"{root}: found no images in class sub-folders ({', '.join(classes) or 'none'}); "
                f"expected e.g. {root}/tumor/a.png and {root}/normal/b.png"
            )
        super().__init__(np.array(labels), np.arange(len(files)), input_px, **options)
        self.class_names = classes
        self.files = files

    def _read(self, index: int) -> np.ndarray:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise SlideOpenError(f"{path}: cannot be read as an image ({exc})") from None
        return _to_input_size(rgb, self.input_px)


# -- PatchCamelyon-style HDF5 ----------------------------------------------------------------


class H5PatchDataset(PatchDataset):
    """PatchCamelyon-style HDF5: ``x_path`` holds uint8[N, h, w, 3] (dataset ``x``, or the
    only dataset in the file), ``y_path`` labels of shape [N] or [N, 1, 1, 1] (dataset ``y``;
    None: all unlabelled, -1). Patch ids are row numbers.

    Raises :class:`SlideOpenError` for an unreadable image file and :class:`LabelsError`
    for an unreadable label file or a row-count mismatch.
    """

    def __init__(
        self, x_path: str | Path, y_path: str | Path | None, input_px: int, **options: Any
    ) -> None:
        self.x_path = Path(x_path)
        with _open_h5(self.x_path, SlideOpenError) as file:
            self.x_key = _dataset_key(file, "x", self.x_path, SlideOpenError)
            shape = file[self.x_key].shape
            if len(shape) != 4 or shape[3] != 3:
                raise SlideOpenError(
                    f"{self.x_path}: dataset {self.x_key!r} has shape {shape}; expected "
                    "[N, height, width, 3] RGB patches"
                )
        if y_path is None:
            labels = np.full(shape[0], -1, dtype=np.int64)
        else:
            y_path = Path(y_path)
            with _open_h5(y_path, LabelsError) as file:
                key = _dataset_key(file, "y", y_path, LabelsError)
                labels = np.asarray(file[key][...]).reshape(-1).astype(np.int64)
            if labels.shape[0] != shape[0]:
                raise LabelsError(
                    f"{y_path}: has {labels.shape[0]} labels but {self.x_path} has {shape[0]} "
                    "patches; pair the _x and _y files of the same split"
                )
        super().__init__(labels, np.arange(shape[0]), input_px, **options)
        self._file: Any = None
        self._pid = os.getpid()

    def _read(self, index: int) -> np.ndarray:
        return _to_input_size(np.asarray(self._dataset()[index], dtype=np.uint8), self.input_px)

    def load_batch(
        self, indices: Sequence[int] | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.preload_wanted and not self.preloaded:
            self._preload_bulk()
        return super().load_batch(indices)

    def _preload_bulk(self) -> None:
        """Read the whole file in one h5py call (much faster than row by row)."""
        data = np.asarray(self._dataset()[...], dtype=np.uint8)
        if data.shape[1] != self.input_px or data.shape[2] != self.input_px:
            data = np.stack([_to_input_size(image, self.input_px) for image in data])
        self._images = np.ascontiguousarray(data.transpose(0, 3, 1, 2))

    def _dataset(self) -> Any:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.x_path, "r")
            self._pid = os.getpid()
        return self._file[self.x_key]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_file"] = None
        return state


def _open_h5(path: Path, error: type[CdfisError]) -> Any:
    import h5py

    if not path.exists():
        raise error(f"{path}: no such HDF5 file")
    if path.is_dir():
        raise error(f"{path}: is a folder; give the .h5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise error(f"{path}: is not a readable HDF5 file ({exc}); is it complete?") from None


def _dataset_key(file: Any, preferred: str, path: Path, error: type[CdfisError]) -> str:
    if preferred in file:
        return preferred
    keys = [k for k in file.keys() if hasattr(file[k], "shape")]
    if len(keys) == 1:
        return str(keys[0])
    raise error(
        f"{path}: has no dataset {preferred!r} (found: {', '.join(keys) or 'none'}); "
        "expected a PatchCamelyon-style file"
    )
