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
ranking scores the noise rate), then where the AUM ranking's top k goes wrong by stored
label. Goal: AUM precision >= 0.8. ``--run ID`` scores a run of ``--project`` trained
before (same seed and noise) instead of training; ``--sheets DIR`` writes contact sheets
of the top k's unflipped patches, of its flips and of the flips ranked last;
``--clean-run ID`` (a run with ``--noise 0``) compares the top k with the original labels
that run rejects.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.datamaps import RANKINGS, compute_data_map, label_error_ranking
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
    parser.add_argument("--run", type=int, help="score this run of --project (no training)")
    parser.add_argument("--sheets", type=Path, help="folder for contact sheets (PNG)")
    parser.add_argument(
        "--clean-run", type=int, help="a run of --project on the unflipped labels (--noise 0)"
    )
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
    run_id = args.run if args.run is not None else _train(project, dataset, noisy, val_groups, args)
    candidates = table.id[is_train]
    print(f"precision in the top k per ranking (random: {args.noise:.2f}; baseline: final_loss)")
    print("epochs  k    " + "  ".join(f"{name:>10s}" for name in RANKINGS))
    for row in recovery_by_epoch(project, run_id, candidates, table.id[flipped]):
        cells = "  ".join(f"{row.precision[name]:10.3f}" for name in RANKINGS)
        print(f"{row.epochs:6d}  {row.k:3d}  {cells}")
    positions = np.flatnonzero(is_train)
    ranked = positions[label_error_ranking(compute_data_map(project, run_id)[0], candidates)]
    _diagnose(ranked, flipped, noisy, dataset, args.sheets)
    if args.clean_run is not None:
        clean = compute_data_map(project, args.clean_run)[0].at("aum", candidates) < 0
        _compare_with_clean(ranked, flipped, positions[clean])


def _train(
    project: Project,
    dataset: SlidePatchDataset,
    noisy: np.ndarray,
    val_groups: tuple[str, ...],
    args: argparse.Namespace,
) -> int:
    """One run on the noisy labels; returns its id."""
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
    return run_id


def _diagnose(
    ranked: np.ndarray,
    flipped: np.ndarray,
    noisy: np.ndarray,
    dataset: SlidePatchDataset,
    sheets: Path | None,
) -> None:
    """Where the AUM ranking's top k goes wrong, by stored label; with ``sheets``, contact
    sheets of its first 40 unflipped patches, 40 of its flips and the 40 flips it ranks
    last (dataset positions: ``ranked`` all, ``flipped`` the flipped ones)."""
    k = len(flipped)
    top = ranked[:k]
    is_flip = np.isin(top, flipped)
    for label in np.unique(noisy[ranked]):
        mine = noisy[top] == label
        print(
            f"top {k}, stored label {label}: {int((mine & is_flip).sum())} flipped, "
            f"{int((mine & ~is_flip).sum())} not flipped"
        )
    if sheets is None:
        return
    sheets.mkdir(parents=True, exist_ok=True)
    flips_ranked = ranked[np.isin(ranked, flipped)]
    chosen = {
        "unflipped_in_top_k": top[~is_flip][:40],
        "flips_in_top_k": top[is_flip][:: max(int(is_flip.sum()) // 40, 1)][:40],
        "flips_ranked_last": flips_ranked[::-1][:40],
    }
    for name, positions in chosen.items():
        _contact_sheet(dataset, positions, noisy, sheets / f"{name}.png", name)
        print(f"wrote {sheets / name}.png")


def _compare_with_clean(ranked: np.ndarray, flipped: np.ndarray, rejected: np.ndarray) -> None:
    """How the AUM top k relates to ``rejected``: the training patches (dataset positions)
    whose original label a run that never saw a flipped label ranks below another class
    (AUM < 0). An unflipped patch among them was doubted before any flip; a flip of one of
    them gives it the label that run prefers, so no label-error ranking should find it."""
    k = len(flipped)
    top = ranked[:k]
    unflipped = top[~np.isin(top, flipped)]
    corrections = np.isin(flipped, rejected)
    print(
        f"clean run rejects {len(rejected)} original labels; of the top {k}'s "
        f"{len(unflipped)} unflipped patches it rejects {int(np.isin(unflipped, rejected).sum())}"
        f"; {int(corrections.sum())} of the {k} flips turn a label it rejects into the class "
        f"it prefers (corrections), and the top {k} holds "
        f"{int(np.isin(top, flipped[corrections]).sum())} of them"
    )


def _contact_sheet(
    dataset: SlidePatchDataset, positions: np.ndarray, labels: np.ndarray, path: Path, title: str
) -> None:
    """8 columns of patch images, each titled with its rank in ``positions`` and label."""
    import matplotlib.pyplot as plt

    rows = max((len(positions) + 7) // 8, 1)
    figure, axes = plt.subplots(rows, 8, figsize=(12, 1.7 * rows), squeeze=False)
    for n, ax in enumerate(axes.flat):
        ax.axis("off")
        if n < len(positions):
            ax.imshow(dataset.image_uint8(int(positions[n])).transpose(1, 2, 0))
            ax.set_title(f"{n + 1}: label {labels[positions[n]]}", fontsize=7)
    figure.suptitle(f"{title} (label = the stored, possibly flipped, label)", fontsize=9)
    figure.savefig(path, dpi=80)
    plt.close(figure)


if __name__ == "__main__":
    main()
