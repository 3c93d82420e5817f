"""A slide-scale project end to end: 5 generated slides of 100,000 x 100,000 px, more than
200,000 tissue patches of 256 px at 0.5 µm/px, imported, trained, queried and reported.

Not a test (it takes minutes): run ``nice -n 10 python benchmarks/slide_scale.py``
(``--help`` for the options). Every stage runs in its own process, so the peak RSS printed
is that stage's own; the project stays in ``--folder`` (default ``$TMPDIR/cdfis-slide-scale``,
regenerated with ``--fresh``).

Stages:

- **generate**: 5 pyramidal TIFFs (factor-2 levels, 256 px deflate tiles) from a bank of 17
  tiles (glass, 8 normal and 8 tumour textures; every tile of a level is one of them, so a
  slide is a few MB: ``core/slides/tile_bank_tiff.py``), tissue in a few ellipses (~35 % of
  the slide), and QuPath GeoJSON annotations: ``Tumor`` ellipses and ``Normal`` tissue
  around them, outlines of 2,000 vertices like real hand-drawn ones.
- **import**: ``import_slides`` (what ``cdfis import`` and the GUI run) with progress;
  the first attempt is cancelled from another thread 2 s into the second slide (the cancel
  latency is printed), then the import is run again and imports the rest (the slide
  finished before the cancel is skipped as already in the project).
- **train**: the CDF sampler in history mode for ``--epochs`` epochs, per-patch history
  stored; patches read from the slides at 32 px (4 µm/px: the model input downscaled, to
  keep CPU time sane), preloaded.
- **query**: what the GUI does when it opens the project and moves the time slider: open
  the project, heatmap values per slide, metric and epoch, and the core overlay service
  (``render_overlay``, the path the viewer, report and PNG export share) for a 2048 px
  overlay; times per query (median and max).
- **report**: the PDF report, CSV, QuPath GeoJSON and PNG exports.

Prints one summary table at the end: wall time, CPU time and peak RSS per stage, import
time per slide, history rows and database size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

N_SLIDES = 5
SLIDE_PX = 100_000
MPP = 0.5
TILE_PX = 256
VARIANTS = 8  # texture variants per tissue kind
OUTLINE_VERTICES = 2000
RESULT_TAG = "STAGE_RESULT "


# -- generate --------------------------------------------------------------------------------


def _ellipses(seed: int) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """(tissue, tumour) ellipses (cx, cy, rx, ry) in level-0 px for slide ``seed``: three
    tissue blobs covering about a third of the slide, two tumours inside the first two."""
    rng = np.random.default_rng(seed)
    tissue = []
    for cx, cy in ((0.3, 0.32), (0.7, 0.35), (0.5, 0.73)):
        jitter = rng.uniform(-0.03, 0.03, 2)
        rx, ry = rng.uniform(0.17, 0.21, 2)
        tissue.append(
            ((cx + jitter[0]) * SLIDE_PX, (cy + jitter[1]) * SLIDE_PX, rx * SLIDE_PX, ry * SLIDE_PX)
        )
    tumour = [(cx + 0.2 * rx, cy - 0.1 * ry, 0.45 * rx, 0.4 * ry) for cx, cy, rx, ry in tissue[:2]]
    return tissue, tumour


def _inside(ellipses: list[tuple[float, ...]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    hit = np.zeros(np.broadcast(x, y).shape, bool)
    for cx, cy, rx, ry in ellipses:
        hit |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    return hit


def _outline(ellipse: tuple[float, ...], seed: int) -> list[list[float]]:
    """A hand-drawn-like closed outline of ``ellipse``: OUTLINE_VERTICES wobbly points."""
    cx, cy, rx, ry = ellipse
    rng = np.random.default_rng(seed)
    angle = np.linspace(0, 2 * np.pi, OUTLINE_VERTICES, endpoint=False)
    wobble = 1 + 0.01 * np.sin(23 * angle) + rng.normal(0, 0.002, OUTLINE_VERTICES)
    points = np.c_[cx + rx * wobble * np.cos(angle), cy + ry * wobble * np.sin(angle)]
    return np.vstack([points, points[:1]]).round(1).tolist()


def _annotations(seed: int) -> dict:
    import shapely

    tissue, tumour = _ellipses(seed)
    tissue_shapes = shapely.union_all(
        [shapely.Polygon(_outline(e, seed + i)) for i, e in enumerate(tissue)]
    )
    tumour_shapes = shapely.union_all(
        [shapely.Polygon(_outline(e, seed + 10 + i)) for i, e in enumerate(tumour)]
    ).intersection(tissue_shapes)
    normal = tissue_shapes.difference(tumour_shapes)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(shape),
                "properties": {"objectType": "annotation", "classification": {"name": name}},
            }
            for name, shape in (("Tumor", tumour_shapes), ("Normal", normal))
        ],
    }


def _tile_bank() -> list[np.ndarray]:
    """Glass, then VARIANTS normal (pink) and VARIANTS tumour (dense purple) textures."""
    rng = np.random.default_rng(0)
    bank = [np.full((TILE_PX, TILE_PX, 3), (236, 234, 238), np.uint8)]
    for mean, spread in (((222, 150, 190), 18), ((150, 90, 170), 28)):
        for _ in range(VARIANTS):
            noise = rng.normal(0, spread, (TILE_PX // 4, TILE_PX // 4, 3))
            texture = np.repeat(np.repeat(noise, 4, 0), 4, 1) + mean
            bank.append(np.clip(texture, 0, 255).astype(np.uint8))
    return bank


RENDERED_FROM = 16
"""Levels at this downsample and coarser are drawn from the layout pixel by pixel (flat
colours; a few hundred tiles), so thumbnails and the tissue mask see the real outlines;
finer levels take bank textures by the kind of tissue at each tile's centre."""

KIND_COLOURS = np.array([(236, 234, 238), (222, 150, 190), (150, 90, 170)], np.uint8)


def _kind(tissue: list, tumour: list, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0 glass, 1 normal, 2 tumour at level-0 positions (x, y)."""
    inside = _inside(tissue, x, y)
    return np.where(inside & _inside(tumour, x, y), 2, inside.astype(np.int64))


def _slide_tiles(index: int, bank: list[np.ndarray]):
    """(tile_ids, tile_image) callbacks for slide ``index`` (see RENDERED_FROM)."""
    tissue, tumour = _ellipses(index)
    rendered: dict[int, tuple[int, int, int]] = {}  # tile id -> (downsample, col, row)

    def tile_ids(level: int, cols: int, rows: int) -> np.ndarray:
        downsample = 2**level
        side = TILE_PX * downsample  # level-0 px per tile of this level
        if downsample >= RENDERED_FROM:
            ids = len(bank) + len(rendered) + np.arange(rows * cols).reshape(rows, cols)
            for (row, col), tile_id in np.ndenumerate(ids):
                rendered[int(tile_id)] = (downsample, col, row)
            return ids
        y, x = (np.mgrid[0:rows, 0:cols] + 0.5) * side
        kind = _kind(tissue, tumour, x, y)
        variant = (np.arange(cols)[None, :] * 7 + np.arange(rows)[:, None] * 3) % VARIANTS
        return np.where(kind == 0, 0, 1 + (kind - 1) * VARIANTS + variant)

    def tile_image(tile_id: int) -> np.ndarray:
        if tile_id < len(bank):
            return bank[tile_id]
        downsample, col, row = rendered[tile_id]
        y, x = (np.mgrid[0:TILE_PX, 0:TILE_PX] + 0.5) * downsample
        return KIND_COLOURS[
            _kind(tissue, tumour, x + col * TILE_PX * downsample, y + row * TILE_PX * downsample)
        ]

    return tile_ids, tile_image


def stage_generate(folder: Path) -> dict:
    from cdfis_desktop.core.slides.tile_bank_tiff import write_tile_bank_tiff

    folder.mkdir(parents=True, exist_ok=True)
    bank = _tile_bank()
    sizes = []
    started = time.perf_counter()
    for index in range(N_SLIDES):
        tile_ids, tile_image = _slide_tiles(index, bank)
        path = write_tile_bank_tiff(
            folder / f"slide-{index}.tiff",
            (SLIDE_PX, SLIDE_PX),
            MPP,
            tile_ids,
            tile_image,
            description=f"cdfis slide-scale benchmark slide {index}",
        )
        (folder / f"slide-{index}.geojson").write_text(json.dumps(_annotations(index)))
        sizes.append(path.stat().st_size)
    return {
        "seconds": time.perf_counter() - started,
        "slide_mb": [round(s / 1e6, 1) for s in sizes],
    }


# -- import ----------------------------------------------------------------------------------


def stage_import(folder: Path) -> dict:
    from cdfis_desktop.core.config import TilingConfig
    from cdfis_desktop.core.importing import import_slides
    from cdfis_desktop.core.progress import Cancelled, CancelToken
    from cdfis_desktop.core.storage import Project

    slides = [folder / f"slide-{i}.tiff" for i in range(N_SLIDES)]
    annotations = [folder / f"slide-{i}.geojson" for i in range(N_SLIDES)]
    tiling = TilingConfig(patch_px=256, mpp=MPP)
    events: list[tuple[float, str]] = []

    def progress(report) -> None:
        events.append((time.perf_counter(), report.message))
        print(f"  [{report.done}/{report.total}] {report.message}", flush=True)

    project_folder = folder / "project"
    shutil.rmtree(project_folder, ignore_errors=True)
    cancel = CancelToken()
    cancelled_at: list[float] = []

    def cancel_during_second_slide() -> None:
        while not any(message.startswith("importing slide-1") for _, message in events):
            time.sleep(0.05)
        time.sleep(2.0)
        cancelled_at.append(time.perf_counter())
        cancel.cancel()

    started = time.perf_counter()
    with Project.open(project_folder, create=True) as project:
        canceller = threading.Thread(target=cancel_during_second_slide, daemon=True)
        canceller.start()
        try:
            import_slides(
                project,
                slides,
                annotations=annotations,
                tiling=tiling,
                progress=progress,
                cancel=cancel,
            )
            latency = float("nan")
        except Cancelled:
            latency = time.perf_counter() - cancelled_at[0]
        kept = len(project.slides())
        print(
            f"  cancelled 2 s into the second slide: stopped {latency:.2f} s later, {kept} slide(s) kept"
        )
        events.clear()
        resumed = time.perf_counter()
        summary = import_slides(
            project, slides, annotations=annotations, tiling=tiling, progress=progress
        )
        finished = time.perf_counter()
        per_slide = _per_slide_seconds(events, finished)
        table = project.patches()
        counts = {
            name: int((table.label == value).sum())
            for value, name in enumerate(project.class_names())
        }
    return {
        "seconds": finished - started,
        "second_import_seconds": finished - resumed,
        "cancel_latency_s": latency,
        "kept_after_cancel": kept,
        "per_slide_s": per_slide,
        "patches": int(len(table)),
        "per_class": counts,
        "skipped": summary.skipped,
    }


def _per_slide_seconds(events: list[tuple[float, str]], finished: float) -> list[float]:
    starts = [t for t, message in events if message.startswith("importing ")]
    ends = [*starts[1:], finished]
    return [round(b - a, 1) for a, b in zip(starts, ends[: len(starts)], strict=True)]


# -- train -----------------------------------------------------------------------------------


def stage_train(folder: Path, epochs: int, batch: int) -> dict:
    from cdfis_desktop.core.config import RunConfig, SamplerConfig
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.engine import Trainer
    from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted, StepReport

    config = RunConfig(
        sampler=SamplerConfig(rule="cdf", mode="history", floor=0.1),
        model="smallcnn",
        batch_size=batch,
        epochs=epochs,
        input_px=32,
        augment=False,
        device="cpu",
        seed=0,
        checkpoint_every_steps=1000,
    )
    started = time.perf_counter()
    first_step = None
    steps = 0
    with Project.open(folder / "project") as project:
        for report in Trainer(project, run_name="slide scale").iter_run(config):
            if isinstance(report, RunStarted):
                print(
                    f"  run {report.run_id}: {report.n_train} train / {report.n_val} val",
                    flush=True,
                )
                run_id = report.run_id
            elif isinstance(report, StepReport):
                steps = report.step
                if first_step is None:
                    first_step = time.perf_counter()
                    print(
                        f"  first step after {first_step - started:.1f} s (dataset preload)",
                        flush=True,
                    )
                elif report.step % 500 == 0:
                    print(f"  step {report.step}: {report.samples_per_s:.0f} samples/s", flush=True)
            elif isinstance(report, EpochReport):
                print(
                    f"  epoch {report.epoch}: val accuracy {report.val_accuracy:.3f} "
                    f"at {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            elif isinstance(report, RunFinished):
                status = report.status
    finished = time.perf_counter()
    rows, db_bytes = _history_rows_and_size(folder / "project", run_id)
    return {
        "seconds": finished - started,
        "preload_s": (first_step or finished) - started,
        "steps": steps,
        "status": status,
        "run_id": run_id,
        "history_rows": rows,
        "db_mb": round(db_bytes / 1e6, 1),
    }


def _history_rows_and_size(project_folder: Path, run_id: int) -> tuple[int, int]:
    import sqlite3

    db = project_folder / "project.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM history WHERE run_id = ?", (run_id,)
        ).fetchone()
    size = sum(p.stat().st_size for p in project_folder.glob("project.db*"))
    return int(rows), size


# -- query -----------------------------------------------------------------------------------


def stage_query(folder: Path) -> dict:
    from cdfis_desktop.core.reporting import downsample_for, render_overlay
    from cdfis_desktop.core.storage import Project

    started = time.perf_counter()
    project = Project.open(folder / "project")
    opened = time.perf_counter() - started
    with project:
        run_id = project.runs()[-1].id
        epochs = project.epochs(run_id)
        slides = project.slides()
        heatmap: list[float] = []
        for slide in slides:
            for metric in ("favour", "times_chosen", "mean_score", "last_score"):
                for epoch in [None, *epochs]:  # the time slider: every epoch, then all
                    t = time.perf_counter()
                    project.heatmap_values(run_id, slide.id, metric, epoch)
                    heatmap.append(time.perf_counter() - t)
        overlay: list[float] = []
        background: list[float] = []
        for slide in slides:
            downsample = downsample_for(slide, max_px=2048)
            for epoch in epochs:
                t = time.perf_counter()
                render_overlay(
                    project,
                    run_id,
                    slide,
                    "favour",
                    downsample=downsample,
                    epoch=epoch,
                    with_background=False,
                )
                overlay.append(time.perf_counter() - t)
            t = time.perf_counter()
            render_overlay(project, run_id, slide, "favour", downsample=downsample)
            background.append(time.perf_counter() - t)
    return {
        "seconds": time.perf_counter() - started,
        "open_s": opened,
        "heatmap_queries": len(heatmap),
        "heatmap_median_ms": 1e3 * statistics.median(heatmap),
        "heatmap_max_ms": 1e3 * max(heatmap),
        "overlay_median_ms": 1e3 * statistics.median(overlay),
        "overlay_max_ms": 1e3 * max(overlay),
        "overlay_with_thumbnail_median_ms": 1e3 * statistics.median(background),
    }


# -- report ----------------------------------------------------------------------------------


def stage_report(folder: Path) -> dict:
    from cdfis_desktop.core.reporting import (
        downsample_for,
        export_csv,
        export_geojson,
        export_png,
        write_report,
    )
    from cdfis_desktop.core.storage import Project

    out = folder / "exports"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    times = {}
    with Project.open(folder / "project") as project:
        run_id = project.runs()[-1].id
        t = time.perf_counter()
        write_report(project, run_id, out / "report.pdf")
        times["report_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rows = export_csv(project, run_id, out / "patches.csv")
        times["csv_s"] = time.perf_counter() - t
        t = time.perf_counter()
        export_geojson(project, run_id, out / "geojson")
        times["geojson_s"] = time.perf_counter() - t
        t = time.perf_counter()
        downsample_of = {s.id: downsample_for(s, max_px=2048) for s in project.slides()}
        export_png(project, run_id, out / "png", metric="favour", downsample_of=downsample_of)
        times["png_s"] = time.perf_counter() - t
    sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in out.rglob("*") if p.is_file()}
    return {**times, "csv_rows": rows, "output_mb": round(sum(sizes.values()), 1)}


# -- driver ----------------------------------------------------------------------------------


STAGES = ("generate", "import", "train", "query", "report")


def _run_stage(args: argparse.Namespace) -> None:
    global N_SLIDES, SLIDE_PX
    N_SLIDES, SLIDE_PX = args.slides, args.slide_px  # a smaller project to try the script
    cpu = time.process_time()
    if args.stage == "generate":
        result = stage_generate(args.folder)
    elif args.stage == "import":
        result = stage_import(args.folder)
    elif args.stage == "train":
        result = stage_train(args.folder, args.epochs, args.batch)
    elif args.stage == "query":
        result = stage_query(args.folder)
    else:
        result = stage_report(args.folder)
    result["cpu_s"] = time.process_time() - cpu
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_TAG + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "cdfis-slide-scale"
    )
    parser.add_argument("--slides", type=int, default=N_SLIDES)
    parser.add_argument("--slide-px", type=int, default=SLIDE_PX)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to run")
    parser.add_argument("--fresh", action="store_true", help="delete the folder first")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # one stage, in-process
    args = parser.parse_args()
    if args.stage:
        _run_stage(args)
        return
    if args.fresh:
        shutil.rmtree(args.folder, ignore_errors=True)
    results = {}
    load_before = os.getloadavg()
    for stage in args.stages.split(","):
        print(f"== {stage}", flush=True)
        started = time.perf_counter()
        process = subprocess.run(
            [
                sys.executable,
                __file__,
                "--stage",
                stage,
                "--folder",
                str(args.folder),
                "--epochs",
                str(args.epochs),
                "--batch",
                str(args.batch),
                "--slides",
                str(args.slides),
                "--slide-px",
                str(args.slide_px),
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        lines = process.stdout.splitlines()
        print("\n".join(line for line in lines if not line.startswith(RESULT_TAG)))
        if process.returncode != 0:
            sys.exit(f"stage {stage} failed (exit {process.returncode})")
        result = json.loads(
            next(line for line in lines if line.startswith(RESULT_TAG))[len(RESULT_TAG) :]
        )
        result["wall_s"] = time.perf_counter() - started
        results[stage] = result
    print(
        "\n== summary (load average before/after: "
        f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"{'stage':<10}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}")
    for stage, result in results.items():
        print(
            f"{stage:<10}{result['wall_s']:>9.1f}{result['cpu_s']:>9.1f}{result['peak_rss_mb']:>13.0f}"
        )
    for stage, result in results.items():
        details = {k: v for k, v in result.items() if k not in ("wall_s", "cpu_s", "peak_rss_mb")}
        print(f"{stage}: {json.dumps(details, default=str)}")


if __name__ == "__main__":
    main()
