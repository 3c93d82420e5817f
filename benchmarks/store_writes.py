"""Benchmark of the run writes' SQL style: storing the predictions of 100,000 patches
through ``run_writes.set_predictions`` (SQLite statements run on the driver) against the
same upsert written with SQLAlchemy Core (``sqlite.insert(...).on_conflict_do_update``,
an executemany of dicts), in the same run, alternating, median of ``--repeats``.

Run: ``python benchmarks/store_writes.py [--patches 100000] [--repeats 5]``. Prints both
times and the ratio Core / driver (why core/storage/run_writes.py uses the driver).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from sqlalchemy.dialects.sqlite import insert as upsert

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.storage.schema import Prediction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.patches
    with tempfile.TemporaryDirectory() as folder, Project.create(f"{folder}/p") as project:
        slide = project.add_slide("/a.tiff", fingerprint="a", width=10, height=10, mpp=0.5)
        ids = project.add_patches(
            slide, l0_x=np.arange(n), l0_y=0, l0_size=1, patch_px=1, mpp=0.5, label=0,
            tissue_fraction=1.0,
        )  # fmt: skip
        run_id = project.create_run(RunConfig(), n_train=n)
        labels, probability = np.zeros(n, np.int64), np.full(n, 0.5)
        driver, core = [], []
        for epoch in range(args.repeats):
            started = time.perf_counter()
            project.set_predictions(run_id, epoch, ids, labels, probability)
            driver.append(time.perf_counter() - started)
            started = time.perf_counter()
            rows = [
                {"run_id": run_id, "epoch": epoch + 1000, "patch_id": i, "predicted_label": k,
                 "probability": p}
                for i, k, p in zip(ids.tolist(), labels.tolist(), probability.tolist(), strict=True)
            ]  # fmt: skip
            statement = upsert(Prediction)
            statement = statement.on_conflict_do_update(
                index_elements=["run_id", "epoch", "patch_id"],
                set_={"predicted_label": statement.excluded.predicted_label},
            )
            with project.engine.begin() as conn:
                conn.execute(statement, rows)
            core.append(time.perf_counter() - started)
    d, c = statistics.median(driver), statistics.median(core)
    print(
        f"predictions of {n:,} patches: driver {d:.3f} s, Core upsert {c:.3f} s, ratio {c / d:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
