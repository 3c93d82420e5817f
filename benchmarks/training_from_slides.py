"""Training throughput on slide-backed patches against training on preloaded arrays.

A generated 20,000 x 20,000 px pyramidal TIFF (JPEG tiles, tissue-like texture, written
once to $TMPDIR by ``benchmarks/tiling.py``'s generator) with a 256 px grid at 0.5 µm/px
(6,084 patches) registered in a real project, read at the default 96 px input. Every
measurement trains the real training step (``TrainingSession.train_step``: uniform
sampler, smallcnn, batch 128, augmentation) on CPU and prints samples/s:

- (a) **preloaded arrays**: the patches already in RAM (the baseline, ratio 1);
- (b) **one read per patch**: ``SlidePatchDataset`` without preload or cache, every batch
  read with one ``read_region_at_mpp`` per patch (what large datasets did before);
  a few steps only;
- (c) **the patch cache**: ``SlidePatchDataset`` as ``cdfis train`` builds it for a dataset
  too large for RAM: the first epoch builds the cache (block reads,
  ``core/slides/patch_blocks.py``) and trains from it, later epochs train from the
  memory-mapped cache.

Each rate is printed with its ratio to (a) (samples/s of (a) / samples/s of the path:
lower is better, the goal is <= 1.5), plus the cache build time and decode rate against
one read per patch, and the process's peak RSS after each stage. Run:
``OMP_NUM_THREADS=1 taskset -c 1 nice -n 10 python benchmarks/training_from_slides.py``
(about 8 minutes on one busy core, the first run included, which writes the slide);
``--workers N`` also decodes the patches with N worker processes (on a machine with the
cores for them) and checks the pixels are the same.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import PatchDataset, SlidePatchDataset
from cdfis_desktop.core.training.devices import resolve_device
from cdfis_desktop.core.training.distributed import DistContext
from cdfis_desktop.core.training.memory import ArrayPatchDataset
from cdfis_desktop.core.training.prepare import TrainingData
from cdfis_desktop.core.training.session import TrainingSession

sys.path.insert(0, str(Path(__file__).parent))
from tiling import make_slide  # noqa: E402  (benchmarks/)

SIZE_PX = 20_000
PATCH_L0_PX = 256
INPUT_PX = 96
BATCH = 128
LATER_EPOCHS = 2
PER_PATCH_STEPS = 6
WORKERS = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 0
SLIDE_PATH = Path(tempfile.gettempdir()) / f"cdfis-bench-training-{SIZE_PX}.tiff"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_project(folder: Path) -> Project:
    """A project with the slide and its full 256 px grid, labels alternating 0/1."""
    project = Project.create(folder)
    project.set_class_names(["normal", "tumor"])
    with open_slide(SLIDE_PATH) as reader:
        width, height, fingerprint = *reader.dimensions, reader.fingerprint()
    slide_id = project.add_slide(
        SLIDE_PATH, fingerprint=fingerprint, width=width, height=height, mpp=0.5
    )
    xs, ys = np.meshgrid(
        np.arange(0, width - PATCH_L0_PX + 1, PATCH_L0_PX),
        np.arange(0, height - PATCH_L0_PX + 1, PATCH_L0_PX),
    )
    project.add_patches(
        slide_id,
        l0_x=xs.ravel(),
        l0_y=ys.ravel(),
        l0_size=PATCH_L0_PX,
        patch_px=INPUT_PX,
        mpp=0.5 * PATCH_L0_PX / INPUT_PX,
        label=np.arange(xs.size) % 2,
        tissue_fraction=1.0,
    )
    return project


def session_for(dataset: PatchDataset) -> TrainingSession:
    config = RunConfig(
        sampler=SamplerConfig(), batch_size=BATCH, input_px=INPUT_PX, device="cpu", epochs=1
    )
    n = len(dataset)
    data = TrainingData(
        dataset=dataset,
        train_indices=np.arange(n, dtype=np.int64),
        val_indices=np.zeros(1, np.int64),
        num_classes=2,
        split_method="preset",
        warning="",
    )
    return TrainingSession(config, data, resolve_device("cpu"), DistContext())


def train_rate(session: TrainingSession, steps: int) -> tuple[float, float]:
    """(samples/s, seconds) of ``steps`` training steps."""
    start = time.perf_counter()
    samples = 0
    for _ in range(steps):
        samples += session.train_step().samples_backpropagated
    seconds = time.perf_counter() - start
    return samples / seconds, seconds


def main() -> None:
    if not SLIDE_PATH.exists():
        start = time.perf_counter()
        make_slide(SLIDE_PATH, SIZE_PX)
        print(f"wrote {SLIDE_PATH} in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as folder, make_project(Path(folder) / "p") as project:
        # (c) the patch cache: first epoch (build + train), then later epochs
        cached = SlidePatchDataset.from_project(project, input_px=INPUT_PX, preload=False)
        n = len(cached)
        session = session_for(cached)
        steps = session.steps_per_epoch
        print(
            f"{n} patches of {PATCH_L0_PX} px at 0.5 µm/px read at {INPUT_PX} px, {steps} steps/epoch"
        )
        start = time.perf_counter()
        for _ in cached.iter_load():
            pass
        build_s = time.perf_counter() - start
        cache_mb = cached.cache_path.stat().st_size / 2**20
        first_rate, first_train_s = train_rate(session, steps)
        first_epoch_rate = n / (build_s + first_train_s)
        later = [train_rate(session, steps)[0]]
        rss_cache = peak_rss_mb()
        images = np.array(cached.load_batch(np.arange(n))[0].numpy())
        # (a) preloaded arrays, the baseline: epochs alternate with (c)'s later epochs, so
        # that a change in the machine's load hits both alike
        preloaded = ArrayPatchDataset(images, cached.labels, cached.patch_ids)
        baseline = session_for(preloaded)
        base_rates = [train_rate(baseline, steps)[0]]
        for _ in range(LATER_EPOCHS - 1):
            later.append(train_rate(session, steps)[0])
            base_rates.append(train_rate(baseline, steps)[0])
        later_rate, base_rate = float(np.median(later)), float(np.median(base_rates))
        rss_all = peak_rss_mb()
        cached.close()

        # (b) one read_region_at_mpp per patch, a few steps
        per_patch = SlidePatchDataset.from_project(
            project, input_px=INPUT_PX, preload=False, use_cache=False
        )
        per_patch_rate, per_patch_s = train_rate(session_for(per_patch), PER_PATCH_STEPS)
        decode_start = time.perf_counter()
        for i in range(min(n, 1000)):
            per_patch._read(i)
        per_patch_decode = min(n, 1000) / (time.perf_counter() - decode_start)
        per_patch.close()

        workers_rate = 0.0
        if WORKERS:
            in_ram = SlidePatchDataset.from_project(
                project, input_px=INPUT_PX, preload=True, use_cache=False
            )
            start = time.perf_counter()
            for _ in in_ram.iter_load(workers=WORKERS):
                pass
            workers_rate = n / (time.perf_counter() - start)
            assert np.array_equal(in_ram.load_batch(np.arange(n))[0].numpy(), images)

    def row(name: str, rate: float) -> str:
        return f"  {name:48s}{rate:8.0f} samples/s   x{base_rate / rate:5.2f} of (a)'s time"

    print("\ntraining throughput (median of epochs; ratio = time per sample / (a)'s)")
    print(row("(a) preloaded arrays (baseline)", base_rate))
    print(row(f"(b) one read per patch ({PER_PATCH_STEPS} steps)", per_patch_rate))
    print(row("(c) patch cache, first epoch incl. its build", first_epoch_rate))
    print(row("(c) patch cache, first epoch training only", first_rate))
    print(row(f"(c) patch cache, later epochs ({LATER_EPOCHS})", later_rate))
    print(
        f"\ncache build: {build_s:.1f} s for {n} patches = {n / build_s:.0f} patches/s by "
        f"blocks, against {per_patch_decode:.0f} patches/s one read per patch "
        f"(x{n / build_s / per_patch_decode:.1f}); cache file {cache_mb:.0f} MiB"
    )
    if WORKERS:
        print(
            f"decoding with {WORKERS} worker processes: {workers_rate:.0f} patches/s "
            f"(x{workers_rate * build_s / n:.2f} of the build without workers), same pixels"
        )
    print(
        f"peak RSS: {rss_cache:.0f} MB after (c) (the cache is memory-mapped: its pages "
        f"count while resident), {rss_all:.0f} MB after (a) (all images in RAM)"
    )


if __name__ == "__main__":
    main()
