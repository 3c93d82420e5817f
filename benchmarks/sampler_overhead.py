"""Sampler overhead, measured side by side in one run (ratios against uniform).

1. Time per training step of the SmallCNN on random 96 px patches for uniform,
   presample (r = 2, 4, 8; CDF on the loss) and history mode (CDF, floor 0.1), as ratios
   to uniform. Steps of the different samplers are interleaved round by round (the
   order rotating each round) so that load changes on a shared machine hit all of them
   alike; the median is reported, with the time spent inside the sampler's own calls.
2. History-mode draw time (plan + select, and observe) at N = 10^4, 10^6 and 10^7.
3. Closed-form last-layer gradient norms (one batched forward) vs a per-sample autograd
   loop at B = 1024 (the loop is timed on a subset and scaled; target >= 50x), and the
   norms alone given the forward's outputs (what gradnorm scoring adds to loss scoring).

Usage: python benchmarks/sampler_overhead.py [--batch 64] [--rounds 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from cdfis_desktop.core.config import SamplerConfig
from cdfis_desktop.core.sampling import Sampler, make_sampler, score_batch, scores_from_outputs
from cdfis_desktop.core.training.models import SmallCNN


def train_step(
    sampler: Sampler,
    model: SmallCNN,
    optimizer: torch.optim.Optimizer,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    step: int,
) -> tuple[float, float]:
    """One engine-style step; returns (step wall time, time spent in sampler calls) in s."""
    started = time.perf_counter()
    plan = sampler.plan(step, 0)
    scores = None
    in_sampler = time.perf_counter() - started
    if plan.needs_scores:
        idx = plan.candidate_indices
        scores = score_batch(model, x_all[idx], y_all[idx], "loss")
    t0 = time.perf_counter()
    selection = sampler.select(plan, scores)
    in_sampler += time.perf_counter() - t0
    x, y = x_all[selection.dataset_indices], y_all[selection.dataset_indices]
    logits = model(x)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    optimizer.zero_grad(set_to_none=True)
    (selection.weights * per_sample).mean().backward()
    optimizer.step()
    t0 = time.perf_counter()
    sampler.observe(selection.dataset_indices, scores_from_outputs(logits.detach(), y, "loss"))
    selection.completed_record(per_sample.detach())
    in_sampler += time.perf_counter() - t0
    return time.perf_counter() - started, in_sampler


def bench_steps(batch: int, rounds: int) -> None:
    n = 8 * batch
    gen = torch.Generator().manual_seed(0)
    x_all = torch.randn(n, 3, 96, 96, generator=gen)
    y_all = torch.randint(0, 2, (n,), generator=gen)
    configs = {"uniform": SamplerConfig(rule="uniform")}
    for ratio in (2, 4, 8):
        configs[f"presample r={ratio}"] = SamplerConfig(rule="cdf", presample_ratio=ratio)
    configs["history"] = SamplerConfig(rule="cdf", mode="history", floor=0.1)
    runs = {}
    for name, config in configs.items():
        torch.manual_seed(0)
        model = SmallCNN()
        runs[name] = (
            make_sampler(config, n, batch, 0),
            model,
            torch.optim.Adam(model.parameters()),
        )
    times: dict[str, list[float]] = {name: [] for name in configs}
    sampler_times: dict[str, list[float]] = {name: [] for name in configs}
    names = list(runs)
    for step in range(rounds + 2):
        for name in names[step % len(names) :] + names[: step % len(names)]:
            sampler, model, optimizer = runs[name]
            elapsed, in_sampler = train_step(sampler, model, optimizer, x_all, y_all, step)
            if step >= 2:  # the first steps warm up allocators
                times[name].append(elapsed)
                sampler_times[name].append(in_sampler)
    base = statistics.median(times["uniform"])
    print(f"\n1. training step, SmallCNN, b={batch}, 96 px, median of {rounds} interleaved rounds")
    for name, values in times.items():
        median = statistics.median(values)
        own = statistics.median(sampler_times[name])
        print(
            f"   {name:<18} {median * 1e3:9.1f} ms   x{median / base:5.2f} of uniform   "
            f"(sampler calls {own * 1e3:5.2f} ms = {own / base:6.2%} of a uniform step)"
        )


def bench_history_draws(batch: int, repeats: int) -> None:
    print(f"\n2. history mode, b={batch}: draw (plan + select) and observe, median of {repeats}")
    for n in (10**4, 10**6, 10**7):
        config = SamplerConfig(rule="cdf", mode="history", floor=0.1)
        sampler = make_sampler(config, n, batch, 0)
        started = time.perf_counter()
        sampler.observe(torch.arange(n), torch.rand(n, generator=torch.Generator().manual_seed(1)))
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        sampler.refresh()  # what every epoch boundary costs
        rebuild_s = time.perf_counter() - started
        draw_s, observe_s = [], []
        for step in range(repeats):
            t0 = time.perf_counter()
            selection = sampler.select(sampler.plan(step, 0))
            t1 = time.perf_counter()
            sampler.observe(selection.dataset_indices, torch.rand(batch))
            t2 = time.perf_counter()
            draw_s.append(t1 - t0)
            observe_s.append(t2 - t1)
        print(
            f"   N={n:>10,}: draw {statistics.median(draw_s) * 1e3:6.2f} ms, observe "
            f"{statistics.median(observe_s) * 1e3:6.2f} ms; refresh once per epoch "
            f"{rebuild_s:5.2f} s; observing all N at once {fill_s:5.2f} s"
        )


def bench_gradnorm(candidates: int, loop_subset: int) -> None:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x = torch.randn(candidates, 3, 96, 96)
    y = torch.randint(0, 2, (candidates,))
    score_batch(model, x[:64], y[:64], "gradnorm_wb")
    started = time.perf_counter()
    closed = score_batch(model, x, y, "gradnorm_wb")
    closed_s = time.perf_counter() - started
    started = time.perf_counter()
    looped = []
    for i in range(loop_subset):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        gw, gb = model.classifier.weight.grad, model.classifier.bias.grad
        looped.append(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()))
    loop_s = (time.perf_counter() - started) * candidates / loop_subset
    assert torch.allclose(torch.stack(looped), closed[:loop_subset], rtol=1e-4, atol=1e-6)
    print(f"\n3. last-layer (weight + bias) gradient norms of B={candidates} candidates")
    print(f"   closed form (one batched forward): {closed_s:7.3f} s")
    print(
        f"   per-sample autograd loop:          {loop_s:7.3f} s "
        f"(timed on {loop_subset}, scaled to {candidates})"
    )
    print(f"   speed-up x{loop_s / closed_s:.0f} (target >= 50)")
    # the norms alone, given the forward pass that loss scoring or training runs anyway
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.classifier(features)
    started = time.perf_counter()
    scores_from_outputs(logits, y, "gradnorm_wb", features)
    norms_s = time.perf_counter() - started
    print(
        f"   norms alone from that forward's outputs: {norms_s * 1e3:7.3f} ms, "
        f"x{loop_s / norms_s:,.0f} faster than the loop"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_steps(args.batch, args.rounds)
    bench_history_draws(128, 50)
    bench_gradnorm(1024, 64)


if __name__ == "__main__":
    main()
