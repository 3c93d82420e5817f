"""Training engine throughput against a plain PyTorch loop, and the per-step cost of samplers.

Prints, measured in this run on the same model (SmallCNN), data (random uint8 patches of
``--px`` px preloaded in RAM) and batch size:

1. samples/s of the engine (uniform sampling, history recording, metrics, checkpoints) vs
   a hand-written loop (random batches, forward, backward, AdamW step); target >= 0.95.
2. for every sampler preset (importance sampling on from the first step): the mean time
   per step as a ratio to uniform sampling, and the rows forwarded (scored or trained)
   and back-propagated per trained row;
3. for ``cdf-prune`` (whose steps cost what uniform's do): the share of the training set a
   pass back-propagates once pruning is on, over ``--passes`` passes of its sampler fed
   with fixed distinct scores (the rule reads ranks only, so any distinct scores give the
   same share), against the rule's expectation ``1 - ratio (N - 1) / (2N)``.

Engine and plain loop both skip augmentation (the same batched code in either); the
presets train with it, as real runs do. Each measurement is
taken after ``--warmup`` steps; every repeat measures all variants back to back and the
ratios are medians over repeats of within-repeat ratios, which damps other load on a
shared machine. Usage: ``python benchmarks/training.py [--steps 12] [--batch 128] [--px 96]
[--device cpu]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.sampling import make_sampler
from cdfis_desktop.core.sampling.presets import SAMPLER_PRESETS, preset_config
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.augment import normalise
from cdfis_desktop.core.training.devices import resolve_device
from cdfis_desktop.core.training.engine import Trainer
from cdfis_desktop.core.training.memory import ArrayPatchDataset
from cdfis_desktop.core.training.models import build_model
from cdfis_desktop.core.training.reports import StepReport


def make_data(folder: Path, n: int, px: int) -> tuple[Project, ArrayPatchDataset]:
    """A project with ``n`` registered patches on 4 slide records (4 patient groups)."""
    project = Project.create(folder)
    project.set_class_names(["normal", "tumor"])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    ids = []
    per_slide = n // 4
    for g in range(4):
        slide = project.add_slide(
            folder / f"s{g}.tiff", fingerprint=str(g), width=10**5, height=10**5, mpp=0.5,
            group=f"patient-{g}",
        )  # fmt: skip
        k = np.arange(per_slide)
        ids.append(
            project.add_patches(
                slide,
                l0_x=(k % 64) * 512,
                l0_y=(k // 64) * 512,
                l0_size=512,
                patch_px=px,
                mpp=0.5,
                label=labels[g * per_slide : (g + 1) * per_slide],
                tissue_fraction=1.0,
            )  # fmt: skip
        )
    images = rng.integers(0, 256, (4 * per_slide, 3, px, px), dtype=np.uint8)
    return project, ArrayPatchDataset(images, labels[: 4 * per_slide], np.concatenate(ids))


def plain_loop_step_s(
    dataset: ArrayPatchDataset, batch: int, steps: int, warmup: int, device: str
) -> float:
    """Seconds per step of the hand-written loop (after ``warmup`` steps)."""
    setup = resolve_device(device)
    torch.manual_seed(0)
    model = build_model("smallcnn", 2).to(setup.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scaler = setup.grad_scaler()
    generator = torch.Generator().manual_seed(0)
    images = torch.from_numpy(dataset._array)
    labels = torch.from_numpy(dataset.labels)
    started = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            if setup.device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        rows = torch.randint(len(labels), (batch,), generator=generator)
        x = normalise(images[rows].to(setup.device))
        y = labels[rows].to(setup.device)
        with setup.autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        float(loss.detach())  # the engine reads the loss every step too
    return (time.perf_counter() - started) / steps


def engine_step_s(
    project: Project, dataset: ArrayPatchDataset, sampler: SamplerConfig, batch: int,
    steps: int, warmup: int, device: str, *, augment: bool = False,
) -> tuple[float, float, float, float]:  # fmt: skip
    """(seconds per step of the engine (training time, validation excluded), CPU seconds
    of the process per step (all threads; steadier than wall time on a shared machine),
    rows forwarded (scored or trained) per step, rows back-propagated per step), after
    ``warmup`` steps."""
    config = RunConfig(
        sampler=sampler, batch_size=batch, epochs=None, max_steps=warmup + steps, device=device,
        input_px=int(dataset._array.shape[-1]), augment=augment, val_every_steps=10**6,
        checkpoint_every_steps=10**6,
    )  # fmt: skip
    walls, cpu, forwarded, trained = {}, {}, 0, 0
    for report in Trainer(project, dataset=dataset).iter_run(config):
        if isinstance(report, StepReport):
            walls[report.step] = report.wall_s
            cpu[report.step] = time.process_time()
            if report.step > warmup:
                forwarded += report.samples_forwarded
                trained += report.samples_backpropagated
    last = warmup + steps
    return (
        (walls[last] - walls[warmup]) / steps,
        (cpu[last] - cpu[warmup]) / steps,
        forwarded / steps,
        trained / steps,
    )


def prune_pass_share(n: int, batch: int, passes: int) -> tuple[float, float]:
    """(measured mean share of the N samples a cdf-prune pass trains, the rule's expected
    share of samples kept), over ``passes`` passes after the first (full, unscored) one.
    Trained rows are counted, so the incomplete tail a pass drops (< b rows) is included,
    as in a real run."""
    config = preset_config("cdf-prune")
    sampler = make_sampler(config, n, batch, seed=0)
    scores = torch.randperm(n, generator=torch.Generator().manual_seed(0)).float()
    shares: list[float] = []
    current = torch.empty(0, dtype=torch.int64)
    step = 0
    while len(shares) <= passes:
        step += 1
        selection = sampler.select(sampler.plan(step, 0, None))
        sampler.observe(selection.dataset_indices, scores[selection.dataset_indices])
        if not torch.equal(sampler.pass_indices, current):  # a new pass started
            current = sampler.pass_indices
            shares.append(current.shape[0] // batch * batch / n)
    return float(np.mean(shares[1:])), 1.0 - config.prune_ratio * (n - 1) / (2 * n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--n", type=int, default=2048, help="training patches")
    parser.add_argument("--px", type=int, default=96, help="patch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--passes", type=int, default=200, help="cdf-prune passes to count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project, dataset = make_data(Path(tmp) / "project", args.n, args.px)
        common = (args.batch, args.steps, args.warmup, args.device)
        print(f"device {resolve_device(args.device).device}, batch {args.batch}, {args.px} px, "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip

        modes = {name: preset_config(name) for name in SAMPLER_PRESETS}  # warm-up none
        modes["cdf-presample r=4"] = preset_config(
            "cdf-presample", SamplerConfig(presample_ratio=4)
        )
        modes["cdf-history gradnorm"] = preset_config(
            "cdf-history", SamplerConfig(metric="gradnorm")
        )
        plain: list[float] = []
        bare: list[float] = []  # the engine without augmentation, against the plain loop
        seconds: dict[str, list[float]] = {name: [] for name in modes}
        cpu_seconds: dict[str, list[float]] = {name: [] for name in modes}
        rows: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeats):  # each repeat measures everything back to back
            plain.append(plain_loop_step_s(dataset, *common))
            bare.append(engine_step_s(project, dataset, SamplerConfig(), *common)[0])
            for name, sampler in modes.items():
                step_s, cpu_s, forwarded, backpropagated = engine_step_s(
                    project, dataset, sampler, *common, augment=True
                )
                seconds[name].append(step_s)
                cpu_seconds[name].append(cpu_s)
                rows[name] = (forwarded, backpropagated)
        uniform = np.array(seconds["uniform"])
        ratio_plain = float(np.median(np.array(plain) / np.array(bare)))
        print(f"plain loop      {args.batch / min(plain):8.0f} samples/s (best repeat)")
        print(f"engine uniform  {args.batch / min(bare):8.0f} samples/s (best repeat)")
        print(f"engine / plain samples/s, median over repeats: {ratio_plain:.3f}  (target >= 0.95)")
        print("presets, augmentation on (importance sampling from the first step):")
        uniform_cpu = np.array(cpu_seconds["uniform"])
        print(f"{'sampler':22s} {'best s/step':>11s} {'x uniform':>9s} {'x uniform cpu':>13s} "
              f"{'forwarded/step':>15s} {'backprop/step':>14s} {'forwarded/backprop':>19s}")  # fmt: skip
        for name, values in seconds.items():
            ratio = float(np.median(np.array(values) / uniform))
            cpu_ratio = float(np.median(np.array(cpu_seconds[name]) / uniform_cpu))
            forwarded, backpropagated = rows[name]
            print(f"{name:22s} {min(values):11.3f} {ratio:9.2f} {cpu_ratio:13.2f} "
                  f"{forwarded:15.1f} {backpropagated:14.1f} "
                  f"{forwarded / backpropagated:19.2f}")  # fmt: skip
        print("x uniform: median over repeats of the same-repeat ratio (wall / process CPU)")
        measured, expected = prune_pass_share(args.n, args.batch, args.passes)
        print(f"cdf-prune: a pass trains {measured:.3f} of the training set (mean over "
              f"{args.passes} passes; rule's expected share kept {expected:.3f}); rows "
              f"forwarded per trained row 1.00, so a pass costs {measured:.2f}x a uniform "
              "epoch (the tail, 12.5 % of a run, trains full passes)")  # fmt: skip
        project.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
