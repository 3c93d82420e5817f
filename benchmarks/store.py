"""Benchmark of the project store: history insert rate, recording overhead on a training
step, heatmap query time, and database size per million history rows.

Run: ``python benchmarks/store.py [--steps 1000] [--repeats 3] [--train-steps 80]``.
Everything goes to a temporary folder (``TMPDIR``; on a disk, as a project would be).
Targets (issue 4): insert >= 300,000 rows/s; recording overhead <= 5 % of a presample
step (b = 128 from B = 1024); heatmap of a 100,000-patch slide < 100 ms; <= 40 MB per
million history rows. The insert rate is the median of ``--repeats`` runs, each next to
a baseline run of the same writer with one row per INSERT statement (the ratio is the
robust number on a noisy machine); the recording overhead is a ratio against the same
steps without recording. Also prints what zlib level 1 would cost on the aggregate row a
flush writes (stored uncompressed), the cost of syncing each history flush
(``synchronous=FULL``, the durability choice in ``core/storage/database.py``) against not
syncing it, the integrity check run at open after an unclean close, and the load average
before and after (the machine may be shared: compare CPU-time numbers then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.heatmap.overlay import metric_values
from cdfis_desktop.core.storage import Project, database, history, integrity
from cdfis_desktop.core.storage.aggregates import COLUMNS, latest_epoch, load

CANDIDATES = 1024
BATCH = 128
N_PATCHES = 100_000
FLUSH = 20
SHIPPED_ROWS_PER_INSERT = history.ROWS_PER_INSERT
SHIPPED_SYNCHRONOUS = database.BATCH_SYNCHRONOUS


def _project_with_patches(folder: Path) -> tuple[Project, int, np.ndarray, int]:
    project = Project.create(folder)
    slide_id = project.add_slide(
        "/bench.svs", fingerprint="bench", width=200_000, height=200_000, mpp=0.25
    )
    k = np.arange(N_PATCHES)
    ids = project.add_patches(
        slide_id,
        l0_x=(k % 400) * 512,
        l0_y=(k // 400) * 512,
        l0_size=512,
        patch_px=256,
        mpp=0.5,
        label=k % 2,
        tissue_fraction=1.0,
        split="train",
    )
    run_id = project.create_run(
        RunConfig(sampler=SamplerConfig(rule="cdf")), n_train=N_PATCHES, device="cpu"
    )
    return project, slide_id, ids, run_id


def _fake_step(rng: np.random.Generator, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """One presample step's record: B candidates, b draws through the CDF of the scores."""
    cand = rng.choice(ids, CANDIDATES, replace=False)
    score = rng.gamma(2.0, 0.3, CANDIDATES)
    prob = (score / score.sum()).astype(np.float32)
    score = score.astype(np.float32)
    chosen = np.bincount(
        rng.choice(CANDIDATES, BATCH, p=score / score.sum(dtype=np.float64)), minlength=CANDIDATES
    ).astype(np.int32)
    return cand, score, prob, chosen, chosen.astype(np.float32)


def _timed_insert(
    folder: Path, records: list[tuple[np.ndarray, ...]], rows_per_insert: int
) -> tuple[Project, int, int, float, float, int]:
    """Write ``records`` into a new project with ``rows_per_insert`` history rows per
    INSERT statement; returns (project, slide, run, wall s, CPU s, bytes the database grew
    by)."""
    project, slide_id, ids, run_id = _project_with_patches(folder)
    assert np.array_equal(ids, np.arange(1, N_PATCHES + 1))  # the ids the records use
    before = _db_bytes(project)
    history.ROWS_PER_INSERT = rows_per_insert
    try:
        writer = project.history_writer(run_id, flush_every_steps=FLUSH)
        start, cpu_start = time.perf_counter(), time.process_time()
        for step, record in enumerate(records):
            writer.record(step, step * BATCH // N_PATCHES, *record)
        writer.close()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        history.ROWS_PER_INSERT = SHIPPED_ROWS_PER_INSERT
    with project.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return project, slide_id, run_id, elapsed, cpu, _db_bytes(project) - before


def bench_insert_and_size(folder: Path, steps: int, repeats: int) -> tuple[Project, int, int]:
    """History insert rate (median of ``repeats`` runs, alternating with a baseline of one
    row per INSERT statement), then size and compression on the last project."""
    rng = np.random.default_rng(0)
    ids = np.arange(1, N_PATCHES + 1)
    records = [_fake_step(rng, ids) for _ in range(steps)]
    rows = steps * CANDIDATES
    variants = (SHIPPED_ROWS_PER_INSERT, 1)
    rates: dict[int, list[tuple[float, float]]] = {v: [] for v in variants}
    for repeat in range(repeats):
        for variant in reversed(variants):
            result = _timed_insert(folder / f"{repeat}-{variant}", records, variant)
            project, slide_id, run_id, elapsed, cpu, growth = result
            rates[variant].append((rows / elapsed, rows / cpu))
            if variant != SHIPPED_ROWS_PER_INSERT or repeat < repeats - 1:
                project.close()
    for variant in variants:
        wall = statistics.median(r[0] for r in rates[variant])
        cpu_rate = statistics.median(r[1] for r in rates[variant])
        print(
            f"history insert, {variant} rows per INSERT: median of {repeats} x {rows:,} rows: "
            f"{wall:,.0f} rows/s ({cpu_rate:,.0f} rows per CPU-second)"
        )
    ratio = statistics.median(r[0] for r in rates[variants[0]]) / statistics.median(
        r[0] for r in rates[1]
    )
    print(
        f"  (history + per-epoch aggregates, one transaction per {FLUSH} steps of {CANDIDATES} "
        f"rows; target >= 300,000 rows/s); x{ratio:.2f} one row per statement"
    )
    per_million = growth / rows * 1e6 / 2**20
    print(
        f"database growth: {per_million:.1f} MiB per million history rows, aggregates and "
        "index included (target <= 40 MB)"
    )
    for name, size in _table_sizes(project).items():
        print(f"  {name:<24s} {size / rows * 1e6 / 2**20:6.1f} MiB per million rows")
    bench_compression(project, run_id)
    return project, slide_id, run_id


def bench_durability(folder: Path, steps: int, repeats: int) -> None:
    """The cost of ``synchronous=FULL`` on the commits that end a batch of steps (history
    flushes): the insert rate with FULL and with NORMAL, alternating, median of
    ``repeats``; and the integrity check run at open when the files changed."""
    rng = np.random.default_rng(1)
    ids = np.arange(1, N_PATCHES + 1)
    records = [_fake_step(rng, ids) for _ in range(steps)]
    seconds: dict[str, list[float]] = {"FULL": [], "NORMAL": []}
    for repeat in range(repeats):
        for level in ("NORMAL", "FULL"):
            database.BATCH_SYNCHRONOUS = level
            try:
                project, _, _, elapsed, _, _ = _timed_insert(
                    folder / f"sync-{repeat}-{level}", records, SHIPPED_ROWS_PER_INSERT
                )
            finally:
                database.BATCH_SYNCHRONOUS = SHIPPED_SYNCHRONOUS
            project.close()
            seconds[level].append(elapsed)
    full, normal = (statistics.median(seconds[k]) for k in ("FULL", "NORMAL"))
    flushes = steps / FLUSH
    print(
        f"durability: history flushes with synchronous=FULL: median {full:.2f} s vs {normal:.2f} s "
        f"with NORMAL for {steps} steps = x{normal / full:.2f} the insert rate, "
        f"{(full - normal) / flushes * 1000:+.1f} ms per flush of {FLUSH} steps"
    )
    db = folder / f"sync-{repeats - 1}-FULL" / "project.db"
    with Project.open(db.parent) as project:
        start = time.perf_counter()
        problems = integrity.quick_check(project.engine, db)
        elapsed = time.perf_counter() - start
    size = db.stat().st_size / 2**20
    print(
        f"integrity check at open (only after a change outside a clean close): {elapsed:.2f} s "
        f"for {size:.0f} MiB = {size / elapsed:.0f} MiB/s ({'ok' if not problems else problems})"
    )


def bench_compression(project: Project, run_id: int) -> None:
    """Time zlib level 1 on the latest epoch's aggregate row, the one row a flush within an
    epoch rewrites."""
    with project.engine.connect() as conn:
        epoch = latest_epoch(conn, run_id)
        assert epoch is not None
        arrays = load(conn, run_id, epoch)
    assert arrays is not None
    blobs = [arrays[name].tobytes() for name in COLUMNS]
    start = time.process_time()
    packed = [zlib.compress(blob, 1) for blob in blobs]
    cpu = time.process_time() - start
    raw = sum(len(b) for b in blobs)
    print(
        f"zlib level 1 on one flush's aggregate row ({raw / 2**20:.1f} MiB): "
        f"{cpu * 1000:.1f} ms CPU = {cpu / (FLUSH * CANDIDATES) * 1e6:.2f} us per history row "
        f"(budget at 300,000 rows/s: 3.33 us), ratio {raw / sum(len(p) for p in packed):.2f}; "
        "not used"
    )


def _db_bytes(project: Project) -> int:
    return sum(p.stat().st_size for p in project.folder.glob("project.db*"))


def _table_sizes(project: Project) -> dict[str, int]:
    """Bytes per table/index from SQLite's dbstat (empty when not compiled in)."""
    try:
        with project.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('history', "
                "'history_steps', 'run_aggregates') GROUP BY name"
            ).all()
    except Exception:  # dbstat is optional in SQLite builds
        return {}
    return {str(name): int(size) for name, size in rows}


def bench_heatmap(project: Project, slide_id: int, run_id: int) -> None:
    for metric in ("favour", "mean_score", "times_chosen"):
        times = []
        for _ in range(7):
            start = time.perf_counter()
            values = metric_values(project, run_id, slide_id, metric)
            times.append(time.perf_counter() - start)
        print(
            f"heatmap {metric:<13s} {len(values):,} patches: median "
            f"{statistics.median(times) * 1000:.0f} ms (target < 100 ms)"
        )


def bench_training_overhead(folder: Path, train_steps: int) -> None:
    """Presample steps of the project's SmallCNN on random 96 px tensors (score B = 1024
    without gradients, train on b = 128 drawn through the CDF), alternately without and
    with recording (the writer flushes every ``FLUSH`` recorded steps, in this thread);
    ratio of median step times."""
    import torch

    from cdfis_desktop.core.training.models import build_model

    torch.manual_seed(0)
    model = build_model("smallcnn", 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    images = torch.randn(CANDIDATES, 3, 96, 96)
    labels = torch.randint(0, 2, (CANDIDATES,))
    project, _, ids, run_id = _project_with_patches(folder)
    writer = project.history_writer(run_id, flush_every_steps=FLUSH)

    def step(index: int, record: bool) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            scores = loss_fn(model(images), labels)
        prob = scores / scores.sum()
        drawn = torch.multinomial(prob, BATCH, replacement=True)
        optimizer.zero_grad()
        loss_fn(model(images[drawn]), labels[drawn]).mean().backward()
        optimizer.step()
        if record:
            recording_start = time.perf_counter()
            chosen = torch.bincount(drawn, minlength=CANDIDATES).numpy().astype(np.int32)
            writer.record(
                index,
                0,
                ids[index * CANDIDATES % N_PATCHES :][:CANDIDATES],
                scores.numpy(),
                prob.numpy(),
                chosen,
                chosen.astype(np.float32),
            )
            recording.append(time.perf_counter() - recording_start)
        return time.perf_counter() - start

    step(0, False)  # warm-up
    recording: list[float] = []  # the recording's own time in each recorded step
    plain: list[float] = []
    recorded: list[float] = []
    for index in range(1, train_steps + 1):  # alternate, so slow drifts hit both alike
        (recorded if index % 2 else plain).append(step(index, bool(index % 2)))
    writer.close()
    project.close()
    base, with_rec = statistics.median(plain), statistics.median(recorded)
    print(
        f"training step (b={BATCH} from B={CANDIDATES}, smallcnn, 96 px): "
        f"median {base * 1000:.0f} ms without recording, {with_rec * 1000:.0f} ms with; "
        f"overhead {100 * (with_rec / base - 1):+.1f} % (target <= 5 %)"
    )
    own = sum(recording) / len(recording)
    print(
        f"  recording's own time, flushes included, in the training thread: {own * 1000:.1f} ms "
        f"per step = {100 * own / base:.1f} % of a step without recording (the engine records "
        "from a background writer thread instead)"
    )


GALLERY_SIZE = 48  # patches per gallery grid (gui/patch_controller.py)
SCALE_METRICS = ("favour", "times_chosen", "mean_score", "last_score", "label_probability")


def _naive_patch_table(project: Project, slide_id: int) -> int:
    """The baseline of the patch-table read: one Python row per patch (what
    ``queries.patch_table`` did before issue 18), converted to the same numpy columns."""
    from sqlalchemy import text

    with project.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, slide_id, l0_x, l0_y, l0_size, patch_px, mpp, label, "
                "tissue_fraction, split, source FROM patches WHERE slide_id = :s ORDER BY id"
            ),
            {"s": slide_id},
        ).all()
    columns = list(zip(*rows, strict=True))
    dtypes = (np.int64,) * 5 + (np.int32, np.float32, np.int16, np.float32, object, object)
    return len([np.asarray(c, dtype=d) for c, d in zip(columns, dtypes, strict=True)][0])


def _naive_heatmap(project: Project, run_id: int, slide_id: int, epoch: int) -> int:
    """The baseline of a heatmap query: times chosen per patch of one slide in one epoch
    summed from the raw history rows (what the per-epoch aggregates replace)."""
    ids = project.patches(slide_id=slide_id).id
    with project.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT h.patch_id, SUM(h.times_chosen) FROM history h WHERE h.run_id = ? "
            "AND h.block IN (SELECT DISTINCT block FROM history_steps WHERE run_id = ? "
            "AND epoch = ?) AND h.block + h.step_offset IN (SELECT step FROM history_steps "
            "WHERE run_id = ? AND epoch = ?) AND h.patch_id BETWEEN ? AND ? GROUP BY h.patch_id",
            (run_id, run_id, epoch, run_id, epoch, int(ids.min()), int(ids.max())),
        ).all()
    return len(rows)


CPU_TIMES: list[tuple[float, float]] = []
"""(wall s, CPU s) of every :func:`_timed` call: on a shared machine the CPU time is the
number to compare (the store's reads are CPU-bound once the file is in the page cache)."""


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    """Wall seconds of ``fn(*args, **kwargs)`` and its result; the CPU time goes to
    :data:`CPU_TIMES`."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    wall = time.perf_counter() - start
    CPU_TIMES.append((wall, time.process_time() - cpu))
    return wall, result


def open_as_the_gui(folder: Path) -> tuple[Project, dict[str, float]]:
    """What the main window does when it opens a project, timed step by step (s): open,
    the slide list and runs, then for the first slide and the newest run: the overlay
    controls' epochs, the patch table (the selection layer), both gallery grids and the
    first overlay (favour, all epochs)."""
    from cdfis_desktop.core.heatmap.overlay import OverlayRequest, render_overlay

    times: dict[str, float] = {}
    times["Project.open"], project = _timed(Project.open, folder)
    times["slides + runs"], (slides, runs) = _timed(lambda: (project.slides(), project.runs()))
    slide, run_id = slides[0], runs[0].id
    times["epochs + class names"], _ = _timed(
        lambda: (project.epochs(run_id), project.class_names())
    )
    times["patches(slide)"], _ = _timed(project.patches, slide_id=slide.id)
    times["gallery (favoured + ignored)"], _ = _timed(
        lambda: [project.favoured_patches(run_id, GALLERY_SIZE, ignored=i) for i in (False, True)]
    )
    times["first overlay"], _ = _timed(
        render_overlay, project, OverlayRequest(slide, run_id, "favour")
    )
    return project, times


def _history_rows(project: Project) -> int:
    with project.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM history").scalar() or 0)


def _quick_check_s(project: Project) -> float:
    """Seconds of the ``quick_check`` that :meth:`Project.open` runs when the files changed
    outside a clean close (a killed process, a copy)."""
    return _timed(integrity.quick_check, project.engine, project.db_path)[0]


def bench_scale(folder: Path, keep: bool) -> None:
    """The store at slide scale (issue 18): a >= 10-million-row project written through
    the store's write API (``benchmarks/scale_project.py``), opened as the GUI opens it
    (target < 2 s), heatmap queries over slides, metrics and epochs including the time
    slider at a middle epoch (target < 100 ms), against same-run naive baselines."""
    from scale_project import ScaleProject, build_scale_project, database_mib

    from cdfis_desktop.core.heatmap.overlay import OverlayRequest, render_overlay

    built = build_scale_project(folder) if not (folder / "project.db").exists() else None
    if built is None:  # --keep of an earlier run: measure it again
        with Project.open(folder) as project:
            run = project.runs()[0]
            built = ScaleProject(
                folder, run.id, len(project.patches()), _history_rows(project),
                len(project.epochs(run.id)), float("nan"),
            )  # fmt: skip
    print(
        f"scale project: {built.patches:,} patches, {built.history_rows:,} history rows in "
        f"{built.epochs} epochs, database {database_mib(folder):,.0f} MiB "
        f"({database_mib(folder) / built.history_rows * 1e6:.1f} MiB per million rows); "
        f"written in {built.build_s:.0f} s ({built.history_rows / built.build_s:,.0f} rows/s "
        "with the metrics and predictions)"
    )
    CPU_TIMES.clear()
    project, times = open_as_the_gui(folder)
    total = sum(times.values())
    for (name, seconds), (_, cpu) in zip(times.items(), CPU_TIMES, strict=True):
        print(f"  open step {name:<30s} {seconds * 1000:7.0f} ms ({cpu * 1000:5.0f} ms CPU)")
    slides = project.slides()
    naive_s, _ = _timed(_naive_patch_table, project, slides[0].id)
    print(
        f"open as the GUI does: {total:.2f} s, {sum(c for _, c in CPU_TIMES):.2f} s CPU "
        f"(target < 2 s); patches(slide) "
        f"x{naive_s / times['patches(slide)']:.1f} faster than one row per patch "
        f"({naive_s * 1000:.0f} ms)"
    )
    run_id = built.run_id
    middle = built.epochs // 2
    CPU_TIMES.clear()
    queries: list[float] = []
    for slide in slides:
        for metric in SCALE_METRICS:
            for epoch in (None, 0, middle, built.epochs - 1):
                queries.append(_timed(metric_values, project, run_id, slide.id, metric, epoch)[0])
    median, p95 = np.median(queries) * 1000, np.percentile(queries, 95) * 1000
    cpu = [c * 1000 for _, c in CPU_TIMES]
    naive_heatmap_s, _ = _timed(_naive_heatmap, project, run_id, slides[0].id, middle)
    print(
        f"heatmap query ({len(queries)} = slides x metrics x epochs all/first/middle/last): "
        f"median {median:.1f} ms, p95 {p95:.1f} ms (CPU: median {np.median(cpu):.1f} ms, "
        f"p95 {np.percentile(cpu, 95):.1f} ms; target < 100 ms); x"
        f"{naive_heatmap_s * 1000 / median:.0f} faster than summing the raw history rows of "
        f"one slide and epoch ({naive_heatmap_s * 1000:.0f} ms)"
    )
    CPU_TIMES.clear()
    for slide in slides:
        request = OverlayRequest(slide, run_id, "favour", epoch=middle)  # range over the run
        _timed(render_overlay, project, request)
    wall, cpu = (np.array(c) * 1000 for c in zip(*CPU_TIMES, strict=True))
    print(
        f"time slider at epoch {middle} (overlay, range over all {built.epochs} epochs): "
        f"median {np.median(wall):.0f} ms ({np.median(cpu):.0f} ms CPU), max {wall.max():.0f} ms"
    )
    print(f"integrity check at open after an unclean close: {_quick_check_s(project):.1f} s")
    project.close()
    if keep:
        print(f"kept {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps of 1024 history rows")
    parser.add_argument("--repeats", type=int, default=3, help="insert timings per variant")
    parser.add_argument("--train-steps", type=int, default=80, help="training steps (0 skips)")
    parser.add_argument(
        "--scale", action="store_true", help="only the >= 10-million-row project (issue 18)"
    )
    parser.add_argument(
        "--keep", type=Path, help="with --scale: build the project here and keep it (or reuse it)"
    )
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, CPUs: {os.cpu_count()}")
    if args.scale:
        with tempfile.TemporaryDirectory() as tmp:
            bench_scale(args.keep or Path(tmp) / "scale", keep=args.keep is not None)
        print(f"load average (1, 5, 15 min): {os.getloadavg()}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        project, slide_id, run_id = bench_insert_and_size(
            Path(tmp) / "insert", args.steps, args.repeats
        )
        bench_heatmap(project, slide_id, run_id)
        project.close()
        bench_durability(Path(tmp) / "durability", args.steps, args.repeats)
        if args.train_steps:
            bench_training_overhead(Path(tmp) / "train", args.train_steps)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
