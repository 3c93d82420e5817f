"""The synthetic experiment: dataset design, results.csv, accuracy.png."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from matplotlib.image import imread

from cdfis_desktop.core.experiments.synthetic import (
    RESULT_COLUMNS,
    SyntheticSettings,
    make_dataset,
    run_experiment,
    sampler_configs,
    summary_table,
)


def test_dataset_design() -> None:
    settings = SyntheticSettings(n_train=20_000, n_val=4_000)
    data = make_dataset(0, settings)
    assert data.x_train.shape == (20_000, settings.dims) and data.x_train.dtype == torch.float32
    hard = data.group_train == 1
    assert abs(float(hard.float().mean()) - settings.hard_fraction) < 0.02
    assert abs(float(data.noisy_train.float().mean()) - settings.noise_fraction) < 0.01
    # clean labels follow the documented rules: XOR outside, the opposite rule inside
    xor = (torch.sign(data.x_train[:, 0]) != torch.sign(data.x_train[:, 1])).long()
    clean = torch.where(hard, 1 - xor, xor)
    assert torch.equal(clean[~data.noisy_train], data.y_train[~data.noisy_train])
    assert not torch.any(clean[data.noisy_train] == data.y_train[data.noisy_train])
    assert torch.all(data.x_train[hard, :2].abs() <= 1.5)
    # the same seed gives the same data
    assert torch.equal(make_dataset(0, settings).x_val, data.x_val)


def test_run_writes_csv_and_png(tmp_path: Path) -> None:
    settings = SyntheticSettings(steps=12, eval_every=4, n_train=1000, n_val=200)
    rows = run_experiment(tmp_path / "out", 2, settings)
    with (tmp_path / "out" / "results.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0].keys()) == RESULT_COLUMNS
    names = list(sampler_configs(settings))
    assert len(table) == len(rows) == 2 * len(names) * 4  # steps 0, 4, 8, 12
    assert {r["sampler"] for r in table} == set(names)
    for row in table:
        assert 0.0 <= float(row["val_accuracy"]) <= 1.0
        assert float(row["wall_s"]) >= 0.0 and float(row["train_loss"]) > 0.0
    image = imread(tmp_path / "out" / "accuracy.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800
    assert np.std(image[..., :3]) > 0.05  # not a blank canvas
    text = summary_table(rows)
    assert all(name in text for name in names)
