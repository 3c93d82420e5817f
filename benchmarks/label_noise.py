"""Goal measurement of issue 17: do the data map's flagged patches find flipped labels?

Run: ``python benchmarks/label_noise.py [--data DIR] [--project DIR] [--epochs 12]``.
Imports the IDC cohort patch set (``<data>/patches/idc_cohort``, 7,553 patches of 215
patients) into a project (``--project``: reused when it already holds it, else a temporary
folder), holds out 20 % of the patients for validation (seeded), flips the labels of
``--noise`` (5 %) of the training patches (seeded), and trains one ordinary run on the
noisy labels (SmallCNN, 48 px input, batch 64, augmentation on, uniform sampler, CPU).
``--input-px``, ``--no-augment``, ``--learning-rate`` and ``--sampler`` (a preset) vary
these settings. Then, after each epoch E, ranks the training patches by every ranking the
review queue offers (area under the margin, mean label probability, and the baseline,
final loss alone) and prints the precision in the top k (k = the number flipped; random
ranking scores the noise rate). Goal: AUM precision >= 0.8.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.datamaps import RANKINGS
from cdfis_desktop.core.experiments.label_noise import flip_labels, recovery_by_epoch
from cdfis_desktop.core.importing import import_patch_set
from cdfis_desktop.core.sampling.presets import preset_config
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import SlidePatchDataset
from cdfis_desktop.core.training.engine import Trainer
from cdfis_desktop.core.training.reports import EpochReport, RunFinished


def _project(folder: Path, data: Path) -> Project:
    """The project holding the IDC cohort (imported on first use)."""
    project = Project.open(folder, create=True)
    if not project.slides():
        started = time.perf_counter()
        cohort = data / "patches" / "idc_cohort"
        import_patch_set(
            project, cohort / "labels.csv", cohort, group_by="patient",
            class_map={"non-IDC": 0, "IDC": 1},
        )  # fmt: skip
        print(f"imported the IDC cohort in {time.perf_counter() - started:.0f} s")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CDFIS_TEST_DATA", "")))
    parser.add_argument("--project", type=Path, help="project folder to (re)use")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--noise", type=float, default=0.05, help="share of labels flipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-px", type=int, default=48, help="model input side (px)")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--sampler", default="uniform", help="sampler preset (cdfis train)")
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(args.project or Path(tmp) / "idc", args.data)
        with project:
            run(project, args)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


def run(project: Project, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    groups = sorted({s.group for s in project.slides()})
    val_groups = tuple(sorted(rng.choice(groups, len(groups) // 5, replace=False).tolist()))
    table = project.patches()
    group_of = {s.id: s.group for s in project.slides()}
    is_train = np.array([group_of[int(s)] not in val_groups for s in table.slide_id])
    dataset = SlidePatchDataset.from_project(project, table.id, input_px=args.input_px)
    noisy, flipped = flip_labels(
        dataset.labels, np.flatnonzero(is_train), args.noise, 2, seed=args.seed
    )
    print(
        f"{int(is_train.sum())} training patches ({len(val_groups)} of {len(groups)} patients "
        f"held out), {len(flipped)} labels flipped ({args.noise:.0%})"
    )
    config = RunConfig(
        sampler=preset_config(args.sampler), batch_size=64, epochs=args.epochs,
        input_px=args.input_px, augment=not args.no_augment, learning_rate=args.learning_rate,
        device="cpu", seed=args.seed, val_groups=val_groups, use_review=False,
    )  # fmt: skip
    started = time.perf_counter()
    run_id = -1
    for report in Trainer(project, dataset=dataset.relabelled(noisy)).iter_run(config):
        if isinstance(report, EpochReport) and report.step > 0:
            print(
                f"  epoch {report.epoch}: validation accuracy {report.val_accuracy:.3f} "
                f"(on true labels), {time.perf_counter() - started:.0f} s"
            )
        if isinstance(report, RunFinished):
            run_id = report.run_id
    print(
        f"run {run_id}: {time.perf_counter() - started:.0f} s wall, "
        f"{time.process_time():.0f} s CPU for {args.epochs} epochs"
    )
    candidates = table.id[is_train]
    print(f"precision in the top k per ranking (random: {args.noise:.2f}; baseline: final_loss)")
    print("epochs  k    " + "  ".join(f"{name:>10s}" for name in RANKINGS))
    for row in recovery_by_epoch(project, run_id, candidates, table.id[flipped]):
        cells = "  ".join(f"{row.precision[name]:10.3f}" for name in RANKINGS)
        print(f"{row.epochs:6d}  {row.k:3d}  {cells}")


if __name__ == "__main__":
    main()
