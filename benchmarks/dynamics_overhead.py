"""Benchmark: what recording the training dynamics (label probability and margin of every
trained row, issue 17) adds to a training step.

Run: ``python benchmarks/dynamics_overhead.py [--steps 60] [--mode presample|uniform]``.
Real steps of the project's SmallCNN on random 96 px tensors: presample scores B = 1024
candidates without gradients and trains on b = 128 drawn through the CDF of the scores;
uniform trains on 128 rows. Every step records its history (as training does); steps
alternate between recording **without** dynamics (the baseline: what the store recorded
before) and **with** them (:func:`step_dynamics` on the step's logits, two more history
columns, four more per-epoch aggregate arrays). Each variant writes its own run and
flushes every 20 of its steps *in the training thread* (the engine writes from a
background thread, so this is an upper bound). Prints the ratio of median step times
(target: <= 3 % more), and, robust on a shared machine, the CPU time the dynamics add per
step (:func:`step_dynamics` in the steps, the store's extra from many recorded steps
without training) over a step's CPU time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from store import BATCH, CANDIDATES, FLUSH, N_PATCHES, _project_with_patches  # benchmarks/

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.sampling import DrawRecord
from cdfis_desktop.core.storage import HistoryWriter, Project
from cdfis_desktop.core.training.dynamics import step_dynamics
from cdfis_desktop.core.training.models import build_model


def _project(folder: Path) -> tuple[Project, list[int]]:
    """100,000 patches (``benchmarks/store.py``'s project) and two runs: without / with
    dynamics."""
    project, _slide_id, _ids, run_id = _project_with_patches(folder)
    other = project.create_run(RunConfig(), n_train=N_PATCHES, device="cpu", name="dynamics")
    return project, [run_id, other]


def _store_cost(n: int, steps: int) -> float:
    """Extra CPU seconds per recorded step of ``n`` entries (b = 128 of them trained) with
    dynamics, from ``steps`` steps per variant recorded in alternating blocks of one flush
    (median over blocks, per step)."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        project, runs = _project(Path(tmp) / "p")
        writers = [project.history_writer(run, flush_every_steps=FLUSH) for run in runs]
        blocks: dict[bool, list[float]] = {False: [], True: []}
        for block in range(2 * steps // FLUSH):
            dynamics = bool(block % 2)
            values = []
            for _ in range(FLUSH):
                ids = rng.choice(N_PATCHES, n, replace=False) + 1
                trained = np.zeros(n, bool)
                trained[rng.choice(n, BATCH, replace=False)] = True
                score = rng.random(n).astype(np.float32)
                extra = {}
                if dynamics:
                    extra = {
                        "label_probability": np.where(trained, score, np.nan).astype(np.float32),
                        "margin": np.where(trained, score - 0.5, np.nan).astype(np.float32),
                    }
                values.append((ids, score, trained, extra))
            step = len(blocks[dynamics]) * FLUSH
            start = time.process_time()
            for ids, score, trained, extra in values:
                step += 1
                writers[int(dynamics)].record(
                    step, step * BATCH // N_PATCHES, ids, score, score, trained, trained, **extra
                )
            blocks[dynamics].append((time.process_time() - start) / FLUSH)
        for writer in writers:
            writer.close()
        project.close()
    without, with_dynamics = statistics.median(blocks[False]), statistics.median(blocks[True])
    print(
        f"  store alone ({n} entries per step, {BATCH} trained, 100,000 patches, flush every "
        f"{FLUSH}): median CPU per recorded step {without * 1000:.2f} ms without dynamics, "
        f"{with_dynamics * 1000:.2f} ms with"
    )
    return with_dynamics - without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps (half each)")
    parser.add_argument("--mode", choices=("presample", "uniform"), default="presample")
    parser.add_argument(
        "--store-steps", type=int, default=400, help="recorded steps per variant (store part)"
    )
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, CPUs: {os.cpu_count()}")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model("smallcnn", 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    n = CANDIDATES if args.mode == "presample" else BATCH
    images = torch.randn(n, 3, 96, 96)
    labels = torch.randint(0, 2, (n,))
    with tempfile.TemporaryDirectory() as tmp:
        project, runs = _project(Path(tmp) / "p")
        writers = [project.history_writer(run, flush_every_steps=FLUSH) for run in runs]
        own: list[float] = []  # CPU s of step_dynamics

        def step(index: int, dynamics: bool) -> tuple[float, float]:
            start, cpu_start = time.perf_counter(), time.process_time()
            if args.mode == "presample":
                with torch.no_grad():
                    scores = loss_fn(model(images), labels)
                prob = scores / scores.sum()
                drawn = torch.multinomial(prob, BATCH, replacement=True)
            else:
                drawn = torch.arange(BATCH)
                prob = torch.full((n,), 1.0 / n)
            model.train()
            optimizer.zero_grad()
            logits = model(images[drawn])
            per_sample = loss_fn(logits, labels[drawn])
            per_sample.mean().backward()
            optimizer.step()
            chosen = torch.bincount(drawn, minlength=n).numpy().astype(np.int32)
            scored = scores if args.mode == "presample" else per_sample  # one per entry
            record = DrawRecord(
                np.arange(n, dtype=np.int64),
                scored.detach().numpy().astype(np.float32),
                prob.numpy().astype(np.float32),
                chosen,
                chosen.astype(np.float32),
            )
            ids = rng.choice(N_PATCHES, n, replace=False) + 1
            writer: HistoryWriter = writers[int(dynamics)]
            extra: dict[str, np.ndarray] = {}
            if dynamics:
                dynamics_start = time.process_time()
                found = step_dynamics(logits, labels[drawn], drawn, record)
                own.append(time.process_time() - dynamics_start)
                extra = {"label_probability": found.label_probability, "margin": found.margin}
            writer.record(
                index, index * BATCH // N_PATCHES, ids, record.score, record.probability,
                record.times_chosen, record.weight, **extra,
            )  # fmt: skip
            return time.perf_counter() - start, time.process_time() - cpu_start

        step(0, False)  # warm-up
        times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for index in range(1, args.steps + 1):  # alternate, so slow drifts hit both alike
            with_dynamics = bool(index % 2)
            times[with_dynamics].append(step(index, with_dynamics))
        for writer in writers:
            writer.close()
        project.close()
    what = f"{args.mode}: b={BATCH}" + (f" from B={CANDIDATES}" if n > BATCH else "")
    for k, unit in ((0, "wall"), (1, "CPU")):
        base = statistics.median(t[k] for t in times[False])
        with_dynamics = statistics.median(t[k] for t in times[True])
        print(
            f"training step ({what}, smallcnn, 96 px, history written in this thread), median "
            f"{unit} time: {base * 1000:.0f} ms without dynamics, {with_dynamics * 1000:.0f} ms "
            f"with; ratio {with_dynamics / base:.3f} (target <= 1.03)"
        )
    base_cpu = statistics.median(t[1] for t in times[False])
    mean_own = statistics.mean(own)
    extra_store = _store_cost(n, args.store_steps)
    print(
        f"  added CPU per step: step_dynamics {mean_own * 1000:.2f} ms + store "
        f"{extra_store * 1000:.2f} ms (history columns, aggregate arrays; flushes included) "
        f"= {100 * (mean_own + extra_store) / base_cpu:.2f} % of a step's CPU time "
        "(the robust number on a shared machine; target <= 3 %)"
    )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
