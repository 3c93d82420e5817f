"""Benchmark: opening a run's data map and review queue at 100,000 patches (target < 1 s).

Run: ``python benchmarks/datamap_open.py [--epochs 10]``.
A project with 100,000 patches and one run whose history trains every patch once per epoch (``--epochs``), written by the store's real history writer (label
probability and margin per trained row). Timed (median of 5, after one untimed call):

- computing the data map from the per-epoch aggregates (what the first open does; the
  same-run baseline the stored map is compared with);
- opening the stored data map with what the scatter plot needs: the map (regions
  included) and each patch's slide and label (:meth:`Project.patch_keys`);
- opening the review queue: the ranking of every trained patch and the first 100 entries
  with their patch rows, slide names and decisions (the GUI shows them one at a time).

Wall and CPU time are both printed: on a shared machine the CPU time is the robust one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from store import N_PATCHES, _project_with_patches  # benchmarks/

from cdfis_desktop.core.datamaps import compute_data_map, data_map
from cdfis_desktop.core.datamaps.queue import build_queue
from cdfis_desktop.core.storage import Project

PER_STEP = 1000


def _project(folder: Path, epochs: int) -> tuple[Project, int]:
    """``benchmarks/store.py``'s project (100,000 patches, one run) with ``epochs`` epochs of
    history training every patch once per epoch, with dynamics."""
    project, _slide_id, ids, run_id = _project_with_patches(folder)
    project.set_class_names(["normal", "tumour"])
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 1.5, ids.max() + 1)
    step = 0
    with project.history_writer(run_id, flush_every_steps=20) as writer:
        for epoch in range(epochs):
            order = rng.permutation(ids)
            for start in range(0, len(order), PER_STEP):
                step += 1
                batch = order[start : start + PER_STEP]
                margin = difficulty[batch] + 0.4 * epoch + rng.normal(0, 0.5, len(batch))
                margin = margin.astype(np.float32)
                probability = (1 / (1 + np.exp(-margin))).astype(np.float32)
                ones = np.ones(len(batch))
                writer.record(
                    step, epoch, batch, -np.log(probability), ones / len(batch), ones, ones,
                    label_probability=probability, margin=margin,
                )  # fmt: skip
    return project, run_id


def _median_s(call: Callable[[], object], repeats: int = 5) -> tuple[float, float]:
    """Median (wall s, CPU s) of ``repeats`` calls after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def _ms(times: tuple[float, float]) -> str:
    return f"{times[0] * 1000:.0f} ms wall, {times[1] * 1000:.0f} ms CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        project, run_id = _project(Path(tmp) / "p", args.epochs)
        print(
            f"{N_PATCHES:,} patches, {args.epochs} epochs of history written in "
            f"{time.perf_counter() - started:.0f} s"
        )
        with project:
            compute = _median_s(lambda: compute_data_map(project, run_id))

            def open_map() -> None:
                data_map(project, run_id)  # regions included: stored with the map
                project.patch_keys()

            stored_map = _median_s(lambda: data_map(project, run_id))
            stored = _median_s(open_map)
            queue = _median_s(lambda: build_queue(project, run_id, top=100))
            entries = len(build_queue(project, run_id, top=100).entries)
    print(f"compute the data map (first open; baseline): {_ms(compute)}")
    print(
        f"read the stored data map: {_ms(stored_map)} (x{compute[1] / stored_map[1]:.1f} less "
        f"CPU than computing it; computing grows with the epochs, reading does not)"
    )
    print(f"open the data map with each patch's slide and label: {_ms(stored)} (target < 1000 ms)")
    print(
        f"open the review queue ({entries} entries of {N_PATCHES:,}): {_ms(queue)} "
        "(target < 1000 ms)"
    )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
