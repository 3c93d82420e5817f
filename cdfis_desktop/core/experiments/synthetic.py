"""The synthetic experiment: uniform vs top-k vs CDF (presample) vs CDF (history).

Dataset design (2 classes, ``dims`` features; the first two are informative, the rest
are N(0, 1) noise):

- easy (1 - hard_fraction of the samples): four Gaussian clusters (std 0.6) centred at
  (+-3, +-3), labelled XOR-style by quadrant (sign(u) == sign(v) -> class 0). A small MLP
  learns them within a few dozen steps; afterwards they carry little information.
- hard subgroup (hard_fraction): uniform in the square [-1.5, 1.5]^2 between the
  clusters, labelled by the opposite rule (sign(u) == sign(v) -> class 1). The network
  must carve out a region that contradicts the majority rule around it, which takes many
  more steps, so a sampler that keeps drawing it should reach a high accuracy sooner.
- label noise (noise_fraction of the training samples, any group): the label is flipped.
  These samples keep a high loss for ever, so pure hard mining (top-k) keeps training on
  them; the validation set has no flipped labels.

Each sampler trains the same MLP (same initial weights per seed) for the same number of
steps; validation accuracy and the full training-set loss are measured every
``eval_every`` steps (evaluation time is excluded from ``wall_s``).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.core.reporting.files import atomic_output, ensure_folder
from cdfis_desktop.core.sampling import make_sampler, score_batch, scores_from_outputs

RESULT_COLUMNS = ("sampler", "seed", "step", "wall_s", "train_loss", "val_accuracy")


@dataclass(frozen=True)
class SyntheticData:
    """x_*: float32[n, dims]; y_*: int64[n] in {0, 1}; group_train: int64[n]
    (0 easy, 1 hard subgroup); noisy_train: bool[n] (label flipped)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    group_train: torch.Tensor
    noisy_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclass(frozen=True)
class SyntheticSettings:
    """Sizes and training settings. Defaults finish in well under a minute on 2 CPU cores."""

    steps: int = 400
    batch_size: int = 32
    eval_every: int = 25
    n_train: int = 20_000
    n_val: int = 4_000
    dims: int = 4
    hard_fraction: float = 0.2
    noise_fraction: float = 0.05
    hidden: int = 64
    learning_rate: float = 1e-2
    presample_ratio: float = 4.0
    history_floor: float = 0.2
    warmup_fraction: float = 0.1


@dataclass(frozen=True)
class ResultRow:
    sampler: str
    seed: int
    step: int
    wall_s: float
    train_loss: float
    val_accuracy: float


def make_dataset(seed: int, settings: SyntheticSettings) -> SyntheticData:
    """The dataset described in the module docstring, reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    x_train, y_train, group_train = _samples(settings.n_train, settings, gen)
    x_val, y_val, _ = _samples(settings.n_val, settings, gen)
    noisy = torch.rand(settings.n_train, generator=gen) < settings.noise_fraction
    y_train = torch.where(noisy, 1 - y_train, y_train)
    return SyntheticData(x_train, y_train, group_train, noisy, x_val, y_val)


def _samples(
    n: int, settings: SyntheticSettings, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hard = torch.rand(n, generator=gen) < settings.hard_fraction
    corner = torch.randint(0, 2, (n, 2), generator=gen).float() * 2 - 1
    easy_xy = corner * 3.0 + 0.6 * torch.randn(n, 2, generator=gen)
    hard_xy = (torch.rand(n, 2, generator=gen) * 2 - 1) * 1.5
    xy = torch.where(hard[:, None], hard_xy, easy_xy)
    easy_label = (torch.sign(xy[:, 0]) != torch.sign(xy[:, 1])).long()
    y = torch.where(hard, 1 - easy_label, easy_label)
    noise = torch.randn(n, settings.dims - 2, generator=gen)
    return torch.cat([xy, noise], dim=1), y, hard.long()


class MLP(nn.Module):
    """dims -> hidden -> hidden -> 2 with ReLU; follows the sampler protocol."""

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(dims, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.classifier = nn.Linear(hidden, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def sampler_configs(settings: SyntheticSettings) -> dict[str, SamplerConfig]:
    """The four samplers compared, by the name used in results.csv."""
    warmup = f"steps:{int(settings.warmup_fraction * settings.steps)}"
    ratio = settings.presample_ratio
    return {
        "uniform": SamplerConfig(rule="uniform"),
        "topk": SamplerConfig(rule="topk", presample_ratio=ratio, warmup=warmup),
        "cdf-presample": SamplerConfig(rule="cdf", presample_ratio=ratio, warmup=warmup),
        "cdf-history": SamplerConfig(
            rule="cdf", mode="history", floor=settings.history_floor, warmup=warmup
        ),
    }


def train_one(
    name: str, config: SamplerConfig, data: SyntheticData, seed: int, settings: SyntheticSettings
) -> list[ResultRow]:
    """Train the MLP with one sampler; one row per evaluation (step 0 included)."""
    torch.manual_seed(seed)
    model = MLP(settings.dims, settings.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    sampler = make_sampler(config, data.x_train.shape[0], settings.batch_size, seed)
    rows = [_evaluate(name, seed, 0, 0.0, model, data)]
    wall_s = 0.0
    for step in range(settings.steps):
        epoch = step // sampler.steps_per_epoch
        started = time.perf_counter()
        plan = sampler.plan(step, epoch)
        scores = None
        if plan.needs_scores:  # no augmentation here: scored as trained, in train mode
            idx = plan.candidate_indices[plan.scored_positions]
            scores = score_batch(
                model, data.x_train[idx], data.y_train[idx], config.metric, train_mode=True
            )
        selection = sampler.select(plan, scores)
        x = data.x_train[selection.dataset_indices]
        y = data.y_train[selection.dataset_indices]
        logits = model(x)
        per_sample = F.cross_entropy(logits, y, reduction="none")
        optimizer.zero_grad(set_to_none=True)
        (selection.weights * per_sample).mean().backward()
        optimizer.step()
        observed = scores_from_outputs(logits.detach(), y, config.metric)
        sampler.observe(selection.dataset_indices, observed)
        sampler.update_warmup(step=step + 1, epoch=(step + 1) // sampler.steps_per_epoch)
        wall_s += time.perf_counter() - started
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            rows.append(_evaluate(name, seed, step + 1, wall_s, model, data))
    return rows


@torch.no_grad()
def _evaluate(
    name: str, seed: int, step: int, wall_s: float, model: nn.Module, data: SyntheticData
) -> ResultRow:
    model.eval()
    train_loss = float(F.cross_entropy(model(data.x_train), data.y_train))
    accuracy = float((model(data.x_val).argmax(1) == data.y_val).float().mean())
    model.train()
    return ResultRow(name, seed, step, wall_s, train_loss, accuracy)


def run_experiment(
    out_dir: Path,
    seeds: int,
    settings: SyntheticSettings,
    *,
    on_run: Callable[[str, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[ResultRow]:
    """Run every sampler for seeds 0..seeds-1; write results.csv and accuracy.png in out_dir.

    on_run(sampler, seed) is called (from this thread) before each training run. Torch
    runs single-threaded meanwhile (the MLP is far too small to gain from threads, and
    timings are steadier); the thread count is restored after. Raises
    :class:`ExportError` when out_dir cannot be written; ``Cancelled`` when cancelled.
    """
    ensure_folder(out_dir)
    rows: list[ResultRow] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in range(seeds):
            data = make_dataset(seed, settings)
            for name, config in sampler_configs(settings).items():
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if on_run is not None:
                    on_run(name, seed)
                rows += train_one(name, config, data, seed, settings)
    finally:
        torch.set_num_threads(threads)
    write_results(out_dir / "results.csv", rows)
    plot_results(out_dir / "accuracy.png", rows)
    return rows


def write_results(path: Path, rows: list[ResultRow]) -> None:
    """results.csv with :data:`RESULT_COLUMNS`, written atomically."""
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.sampler,
                    r.seed,
                    r.step,
                    f"{r.wall_s:.4f}",
                    f"{r.train_loss:.5f}",
                    f"{r.val_accuracy:.5f}",
                ]
            )


def curves(rows: list[ResultRow]) -> dict[str, dict[str, np.ndarray]]:
    """Per sampler: ``step`` int[t], ``wall_s`` float[seeds, t], ``accuracy`` float[seeds, t]."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in dict.fromkeys(r.sampler for r in rows):
        mine = [r for r in rows if r.sampler == name]
        seeds = sorted({r.seed for r in mine})
        steps = sorted({r.step for r in mine})
        wall = np.full((len(seeds), len(steps)), np.nan)
        acc = np.full((len(seeds), len(steps)), np.nan)
        for r in mine:
            i, j = seeds.index(r.seed), steps.index(r.step)
            wall[i, j], acc[i, j] = r.wall_s, r.val_accuracy
        out[name] = {"step": np.array(steps), "wall_s": wall, "accuracy": acc}
    return out


def plot_results(path: Path, rows: list[ResultRow]) -> None:
    """accuracy.png: validation accuracy vs steps and vs training wall time; mean line
    and min-max band over seeds. Rendered with matplotlib's Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    by_step, by_time = figure.subplots(1, 2, sharey=True)
    for name, c in curves(rows).items():
        mean = np.nanmean(c["accuracy"], axis=0)
        low, high = np.nanmin(c["accuracy"], axis=0), np.nanmax(c["accuracy"], axis=0)
        (line,) = by_step.plot(c["step"], mean, label=name)
        by_step.fill_between(c["step"], low, high, color=line.get_color(), alpha=0.2)
        wall = np.nanmean(c["wall_s"], axis=0)
        by_time.plot(wall, mean, color=line.get_color(), label=name)
        by_time.fill_between(wall, low, high, color=line.get_color(), alpha=0.2)
    n_seeds = len({r.seed for r in rows})
    by_step.set(
        xlabel="training step",
        ylabel="validation accuracy",
        title=f"accuracy vs steps (mean, min-max of {n_seeds} seeds)",
    )
    by_time.set(xlabel="training wall time (s, evaluation excluded)", title="accuracy vs wall time")
    for axes in (by_step, by_time):
        axes.grid(alpha=0.3)
    by_step.legend(loc="lower right")
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")


def summary_table(rows: list[ResultRow]) -> str:
    """A plain-text table: final accuracy (mean +- sd), final training loss, wall time,
    and the steps / seconds each sampler needed to reach uniform's final mean accuracy."""
    table = curves(rows)
    finals = {name: float(np.nanmean(c["accuracy"][:, -1])) for name, c in table.items()}
    target = finals.get("uniform", max(finals.values()))
    lines = [
        f"target accuracy = uniform's final mean = {target:.4f}",
        f"{'sampler':<14} {'final acc':>16} {'train loss':>10} {'wall s':>8} "
        f"{'steps to target':>15} {'s to target':>11}",
    ]
    for name, c in table.items():
        acc = c["accuracy"]
        losses = [r.train_loss for r in rows if r.sampler == name and r.step == c["step"][-1]]
        hit = np.nanmean(acc, axis=0) >= target - 1e-9
        first = int(np.argmax(hit)) if hit.any() else -1
        steps_to = str(c["step"][first]) if first >= 0 else "-"
        secs_to = f"{np.nanmean(c['wall_s'][:, first]):.2f}" if first >= 0 else "-"
        lines.append(
            f"{name:<14} {np.nanmean(acc[:, -1]):>8.4f} +- {np.nanstd(acc[:, -1]):.4f} "
            f"{np.mean(losses):>10.4f} {np.nanmean(c['wall_s'][:, -1]):>8.2f} "
            f"{steps_to:>15} {secs_to:>11}"
        )
    return "\n".join(lines)
