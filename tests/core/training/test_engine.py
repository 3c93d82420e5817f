"""The training engine on a real project store (SQLite in tmp_path) and real training steps.

Images come from an in-memory dataset whose patch ids are registered in the project
(see synthetic_project.py); end-to-end runs over real slide patches are in tests/cli.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.errors import ConfigError, TrainingError
from cdfis_desktop.core.progress import CancelToken
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.checkpoints import load_checkpoint
from cdfis_desktop.core.training.engine import Trainer
from cdfis_desktop.core.training.memory import ArrayPatchDataset
from cdfis_desktop.core.training.reports import EpochReport, RunFinished, RunStarted, StepReport

from .synthetic_project import make_images, make_project

PX = 32


def _config(**changes: object) -> RunConfig:
    values: dict = dict(
        batch_size=8, epochs=2, input_px=PX, device="cpu", checkpoint_every_steps=4,
        history_flush_steps=3,
    )  # fmt: skip
    values.update(changes)
    return RunConfig(**values)


@pytest.fixture
def project_and_data(tmp_path: Path):
    project, dataset = make_project(tmp_path / "project", n_per_group=16, n_groups=4, px=PX)
    yield project, dataset
    project.close()


def _history_rows(project: Project, run_id: int) -> list[tuple[int, int, int, float]]:
    with sqlite3.connect(project.db_path) as conn:
        return conn.execute(
            "SELECT block + step_offset AS step, patch_id, times_chosen, weight FROM history "
            "WHERE run_id = ? "
            "ORDER BY step, patch_id",
            (run_id,),
        ).fetchall()


def test_a_run_yields_reports_and_records_everything(project_and_data) -> None:
    project, dataset = project_and_data
    reports = list(Trainer(project, dataset=dataset).iter_run(_config()))
    started, finished = reports[0], reports[-1]
    assert isinstance(started, RunStarted) and isinstance(finished, RunFinished)
    assert finished.status == "finished" and started.split_method == "group"
    steps = [r for r in reports if isinstance(r, StepReport)]
    epochs = [r for r in reports if isinstance(r, EpochReport)]
    spe = started.steps_per_epoch
    assert [s.step for s in steps] == list(range(1, 2 * spe + 1))
    assert [e.step for e in epochs] == [0, spe, 2 * spe]
    assert all(isinstance(s.candidate_scores, np.ndarray) for s in steps)
    assert steps[-1].chosen_share > 0.5
    assert all(np.isfinite(s.train_loss) and s.samples_per_s > 0 for s in steps)
    # the store
    summary = project.run(finished.run_id)
    stamped = summary.config["review_as_of"]  # the review decisions in force at the start
    assert summary.status == "finished" and stamped <= summary.started_at
    assert summary.config == {**_config().to_dict(), "review_as_of": stamped}
    rows = _history_rows(project, finished.run_id)
    assert {r[0] for r in rows} == set(range(1, 2 * spe + 1))
    per_step = {}
    for step, _, chosen, _ in rows:
        per_step[step] = per_step.get(step, 0) + chosen
    assert set(per_step.values()) == {8}
    metrics = project.metrics(finished.run_id)
    assert np.isfinite(metrics["val_accuracy"]).sum() == 3
    assert len(project.checkpoints(finished.run_id)) >= 2
    assert Path(finished.checkpoint).is_file()
    with sqlite3.connect(project.db_path) as conn:
        (n_final,) = conn.execute(
            "SELECT COUNT(*) FROM predictions WHERE run_id = ? AND epoch = 1", (finished.run_id,)
        ).fetchone()
    assert n_final == len(dataset)  # all patches at the end, training ones included
    # one epoch numbering: the reports say the epoch the store files the step under
    assert [e.epoch for e in epochs] == [0, 0, 1]
    stored = dict(zip(metrics["step"].tolist(), metrics["epoch"].tolist(), strict=True))
    assert all(stored[e.step] == e.epoch for e in epochs)
    assert all(stored[s.step] == s.epoch == (s.step - 1) // spe for s in steps)
    assert steps[spe - 1].epoch_progress == 1.0
    assert project.epochs(finished.run_id) == [0, 1]


@pytest.mark.slow
def test_training_lowers_the_validation_loss(project_and_data) -> None:
    project, dataset = project_and_data
    epochs = [
        r
        for r in Trainer(project, dataset=dataset).iter_run(_config(epochs=4))
        if isinstance(r, EpochReport)
    ]
    assert epochs[-1].val_loss < epochs[0].val_loss
    assert epochs[-1].val_accuracy >= 0.75


@pytest.mark.parametrize(
    "sampler",
    [
        SamplerConfig(rule="cdf", presample_ratio=2.0),
        SamplerConfig(rule="topk", presample_ratio=2.0, metric="gradnorm"),
        SamplerConfig(rule="cdf", mode="history", warmup="steps:2", weighting="unbiased"),
        SamplerConfig(rule="cdf", presample_ratio=2.0, metric="gradnorm_wb", warmup="loss:0.99"),
        SamplerConfig(rule="cdf", mode="prune", warmup="steps:2", weighting="unbiased"),
    ],
    ids=["cdf-presample", "topk-gradnorm", "cdf-history", "gradnorm_wb-losswarmup", "cdf-prune"],
)
def test_importance_samplers_run_and_record(project_and_data, sampler: SamplerConfig) -> None:
    project, dataset = project_and_data
    reports = list(
        Trainer(project, dataset=dataset).iter_run(
            _config(sampler=sampler, epochs=None, max_steps=6)
        )
    )
    finished = reports[-1]
    assert finished.status == "finished"
    steps = [r for r in reports if isinstance(r, StepReport)]
    active = [s for s in steps if s.is_active]
    summary = project.run(finished.run_id)
    if sampler.warmup == "none":
        assert len(active) == len(steps) and summary.switch_step == 0
    elif sampler.warmup == "steps:2":
        assert [s.step for s in active] == [3, 4, 5, 6] and summary.switch_step == 2
    rows = _history_rows(project, finished.run_id)
    if sampler.mode == "presample" and active:
        first_active = active[0].step
        candidates = [r for r in rows if r[0] == first_active]
        assert len(candidates) == 16  # B = 2 x 8 candidates recorded, chosen or not
        assert sum(r[2] for r in candidates) == 8
        assert any(r[2] == 0 and r[3] == 0.0 for r in candidates)
    assert all(np.isfinite(s.candidate_scores).all() for s in steps)


def _weights(project: Project, checkpoint: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(Path(checkpoint))["session"]["model"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["presample", "history"])
def test_resume_after_cancel_reproduces_the_straight_run(tmp_path: Path, mode: str) -> None:
    sampler = SamplerConfig(rule="cdf", mode=mode, presample_ratio=2.0, warmup="steps:2")
    config = _config(sampler=sampler, epochs=None, max_steps=9, checkpoint_every_steps=100)
    project_a, data_a = make_project(tmp_path / "a", n_per_group=16, n_groups=4, px=PX)
    straight_reports = list(Trainer(project_a, dataset=data_a).iter_run(config))
    straight = straight_reports[-1]
    project_b, data_b = make_project(tmp_path / "b", n_per_group=16, n_groups=4, px=PX)
    cancel = CancelToken()
    first = []
    for report in Trainer(project_b, dataset=data_b).iter_run(config, cancel):
        first.append(report)
        if isinstance(report, StepReport) and report.step == 4:
            cancel.cancel()
    stopped = first[-1]
    assert stopped.status == "cancelled" and stopped.step == 4
    assert f"--resume {stopped.run_id}" in stopped.message
    assert project_b.run(stopped.run_id).status == "cancelled"
    resumed = list(Trainer(project_b, dataset=data_b).iter_resume(stopped.run_id))
    assert resumed[0].resumed_from_step == 4
    assert resumed[-1].status == "finished" and resumed[-1].step == 9
    a, b = _weights(project_a, straight.checkpoint), _weights(project_b, resumed[-1].checkpoint)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    # the cost counters continue across the resume
    costs = [
        [
            (r.samples_forwarded, r.samples_backpropagated)
            for r in reports
            if isinstance(r, EpochReport)
        ][-1]
        for reports in (straight_reports, resumed)
    ]
    assert costs[0] == costs[1]
    forwarded, backpropagated = costs[0]
    assert backpropagated == 9 * 8
    if mode == "presample":  # 7 steps after warm-up score 16 candidates
        assert forwarded == 9 * 8 + 7 * 16
    else:  # and history mode rescores up to ceil(0.25 * 8) = 2 stale samples per step
        assert 9 * 8 < forwarded <= 9 * 8 + 7 * 2
    # the history is the same, recorded once per step
    assert _history_rows(project_a, straight.run_id) == _history_rows(project_b, stopped.run_id)
    project_a.close()
    project_b.close()


def test_closing_the_generator_counts_as_cancel(project_and_data) -> None:
    project, dataset = project_and_data
    reports = Trainer(project, dataset=dataset).iter_run(_config())
    run_id = next(reports).run_id
    for report in reports:
        if isinstance(report, StepReport) and report.step == 2:
            break
    reports.close()
    assert project.run(run_id).status == "cancelled"
    assert project.latest_checkpoint(run_id).step == 2


def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(project_and_data) -> None:
    project, dataset = project_and_data
    config = _config(learning_rate=1e30, checkpoint_every_steps=1, epochs=3)
    seen = []
    with pytest.raises(TrainingError, match="lower learning rate"):
        for report in Trainer(project, dataset=dataset).iter_run(config):
            seen.append(report)
    finished = seen[-1]
    assert isinstance(finished, RunFinished) and finished.status == "failed"
    summary = project.run(finished.run_id)
    assert summary.status == "failed" and "loss became" in summary.error
    latest = project.latest_checkpoint(finished.run_id)
    assert latest is not None and latest.step == finished.step
    assert Path(latest.path).is_file()


def test_time_budget_and_early_stopping_stop_the_run(project_and_data) -> None:
    project, dataset = project_and_data
    budget = list(
        Trainer(project, dataset=dataset).iter_run(_config(epochs=None, time_budget_s=0.05))
    )
    assert budget[-1].status == "finished" and budget[-1].wall_s >= 0.05
    patience = _config(epochs=50, early_stopping_patience=1, learning_rate=0.5)
    stopped = list(Trainer(project, dataset=dataset).iter_run(patience))
    assert stopped[-1].status == "finished" and stopped[-1].step < 50 * stopped[0].steps_per_epoch


def test_bad_configurations_are_rejected_before_a_run_is_recorded(project_and_data) -> None:
    project, dataset = project_and_data
    trainer = Trainer(project, dataset=dataset)
    with pytest.raises(ConfigError, match="presample ratio"):
        next(trainer.iter_run(_config(sampler=SamplerConfig(presample_ratio=0.5))))
    with pytest.raises(ConfigError, match="batch size 500"):
        next(trainer.iter_run(_config(batch_size=500)))
    with pytest.raises(ConfigError, match="unknown model"):
        next(trainer.iter_run(_config(model="alexnet")))
    one_class = ArrayPatchDataset(
        make_images(np.zeros(len(dataset), np.int64), PX, 0),
        np.zeros(len(dataset), np.int64),
        dataset.patch_ids,
    )
    with pytest.raises(ConfigError, match="same class"):
        next(Trainer(project, dataset=one_class).iter_run(_config()))
    unknown = ArrayPatchDataset(dataset._array, dataset.labels, dataset.patch_ids + 10_000)
    with pytest.raises(ConfigError, match="not registered"):
        next(Trainer(project, dataset=unknown).iter_run(_config()))
    assert project.runs() == []


def test_empty_project_is_rejected(tmp_path: Path) -> None:
    with Project.create(tmp_path / "empty") as project:
        with pytest.raises(ConfigError, match="no labelled patches"):
            next(Trainer(project).iter_run(_config()))


def test_single_patient_uses_a_spatial_split_with_a_warning(tmp_path: Path) -> None:
    project, dataset = make_project(tmp_path / "p", n_per_group=64, n_groups=1, px=PX)
    started = next(Trainer(project, dataset=dataset).iter_run(_config(max_steps=1)))
    assert started.split_method == "spatial" and "single patient" in started.warning
    project.close()


def test_resuming_a_finished_run_is_refused(project_and_data) -> None:
    project, dataset = project_and_data
    finished = list(Trainer(project, dataset=dataset).iter_run(_config(epochs=None, max_steps=1)))[
        -1
    ]
    with pytest.raises(ConfigError, match="already finished"):
        Trainer(project, dataset=dataset).iter_resume(finished.run_id)


def test_no_writer_thread_is_left_running(project_and_data) -> None:
    import threading

    project, dataset = project_and_data
    list(Trainer(project, dataset=dataset).iter_run(_config(epochs=None, max_steps=2)))
    with pytest.raises(TrainingError):
        list(Trainer(project, dataset=dataset).iter_run(_config(learning_rate=1e30, epochs=3)))
    assert not [t for t in threading.enumerate() if t.name == "cdfis-store-writer"]


def test_named_validation_groups_fix_the_split_for_every_seed(project_and_data) -> None:
    project, dataset = project_and_data
    counts = []
    for seed in (0, 1):
        config = _config(max_steps=1, seed=seed, val_groups=("patient-1", "patient-3"))
        started = next(Trainer(project, dataset=dataset).iter_run(config))
        counts.append((started.split_method, started.n_train, started.n_val))
    per_group = len(dataset) // 4
    assert counts == [("groups", 2 * per_group, 2 * per_group)] * 2
    stored = RunConfig.from_dict(project.runs()[0].config)
    assert stored.val_groups == ("patient-1", "patient-3")
    with pytest.raises(ConfigError, match="patient-9"):
        next(Trainer(project, dataset=dataset).iter_run(_config(val_groups=("patient-9",))))
    project.close()


def test_validation_on_a_grid_of_training_seconds_with_test_scores_and_costs(
    project_and_data,
) -> None:
    project, dataset = project_and_data
    config = _config(
        sampler=SamplerConfig(rule="cdf", presample_ratio=2.0),
        epochs=None,
        time_budget_s=0.4,
        val_every_s=0.05,
        val_groups=("patient-1",),
        test_groups=("patient-3",),
        test_at_s=(0.1, 0.2, 0.4),
    )
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    started = reports[0]
    per_group = len(dataset) // 4
    assert (started.n_train, started.n_val) == (2 * per_group, per_group)  # test held out
    steps = [r for r in reports if isinstance(r, StepReport)]
    validations = [r for r in reports if isinstance(r, EpochReport)]
    # a validation at step 0, then at each step whose training time passed a multiple of
    # 0.05 s since the one before, and at the end
    crossed = [
        s.step
        for s, before in zip(steps, [0.0] + [s.wall_s for s in steps[:-1]], strict=True)
        if s.wall_s // 0.05 > before // 0.05
    ]
    expected = sorted({0, *crossed, steps[-1].step})
    assert [v.step for v in validations] == expected
    # the test set is scored at the first validation at or after each test time, only there
    tested = [v for v in validations if v.test is not None]
    firsts = sorted({next(v.step for v in validations if v.wall_s >= t) for t in (0.1, 0.2, 0.4)})
    assert [v.step for v in tested] == firsts
    assert all(0.0 <= v.test.balanced_accuracy <= 1.0 for v in tested)
    # every step trains 8 rows and, with presample ratio 2, scores 16 candidates first
    last = validations[-1]
    assert last.samples_backpropagated == 8 * last.step
    assert last.samples_forwarded == (8 + 16) * last.step


def test_time_cadence_and_test_settings_are_checked(project_and_data) -> None:
    project, dataset = project_and_data
    trainer = Trainer(project, dataset=dataset)
    with pytest.raises(ConfigError, match="not both"):
        next(trainer.iter_run(_config(val_every_s=1.0, val_every_steps=3)))
    with pytest.raises(ConfigError, match="no test groups"):
        next(trainer.iter_run(_config(test_at_s=(1.0,))))
    with pytest.raises(ConfigError, match="both validation and test"):
        next(trainer.iter_run(_config(val_groups=("patient-1",), test_groups=("patient-1",))))
    with pytest.raises(ConfigError, match="test group"):
        next(trainer.iter_run(_config(test_groups=("patient-9",))))
    assert project.runs() == []


def _mislabelled(tmp_path: Path) -> tuple[Project, ArrayPatchDataset, np.ndarray]:
    """A project whose dataset has every 8th label flipped: patches whose loss stays high
    whatever the model learns (known hard samples). Returns their patch ids too."""
    project, clean = make_project(tmp_path / "p", n_per_group=24, n_groups=4, px=PX)
    labels = clean.labels.copy()
    flipped = np.arange(len(labels)) % 8 == 3
    labels[flipped] = 1 - labels[flipped]
    dataset = ArrayPatchDataset(clean._array, labels, clean.patch_ids)
    return project, dataset, clean.patch_ids[flipped]


def _rows_between(project: Project, run_id: int, after: int, until: int) -> np.ndarray:
    """float64[m, 3]: (patch id, times chosen, weight) of the steps in (after, until]."""
    with sqlite3.connect(project.db_path) as conn:
        return np.array(
            conn.execute(
                "SELECT patch_id, times_chosen, weight FROM history WHERE run_id = ? "
                "AND block + step_offset > ? AND block + step_offset <= ?",
                (run_id, after, until),
            ).fetchall(),
            dtype=np.float64,
        )


@pytest.mark.parametrize(
    "preset", ["cdf-history", "cdf-selective", "cdf-selective-lowres", "cdf-prune", "uniform"]
)
def test_known_hard_samples_drive_the_selection(tmp_path: Path, preset: str) -> None:
    """After the warm-up, the CDF samplers choose the mislabelled patches (high loss) far
    more often than their uniform share; uniform does not (the control). Pruning can at
    most keep every hard patch, so it also shows as fewer drops: the hard patches' drop
    probabilities (p = 1 - 1 / weight) are far below the others'."""
    from cdfis_desktop.core.sampling.presets import preset_config

    project, dataset, hard = _mislabelled(tmp_path)
    sampler = replace(preset_config(preset, SamplerConfig(warmup="epochs:2")), floor=0.0)
    config = _config(sampler=sampler, epochs=7, learning_rate=3e-3, checkpoint_every_steps=1000)
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    started, finished = reports[0], reports[-1]
    spe = started.steps_per_epoch
    # cdf-prune trains on the full data in the last 12.5 % of the run: left out
    until = int(0.875 * 7 * spe) if preset == "cdf-prune" else 7 * spe
    rows = _rows_between(project, finished.run_id, 2 * spe, until)
    patch = rows[:, 0].astype(np.int64)
    chosen = np.bincount(patch, weights=rows[:, 1])
    trained = np.unique(patch)
    is_hard = np.isin(trained, hard)
    ratio = chosen[trained[is_hard]].mean() / chosen[trained[~is_hard]].mean()
    if preset == "uniform":
        assert 0.6 < ratio < 1.6, ratio
    elif preset == "cdf-prune":
        drop = 1.0 - 1.0 / rows[:, 2]
        on_hard = np.isin(patch, hard)
        assert drop[on_hard].mean() < 0.15 and drop[~on_hard].mean() > 0.25, drop
        assert ratio > 1.2, ratio
    else:
        assert ratio > 2.0, ratio
    project.close()


def test_cdf_prune_returns_to_the_full_data_at_the_end(project_and_data) -> None:
    """With an epoch limit the engine's step limit sets the tail: every step in the last
    12.5 % trains with weight 1 (no sample dropped), earlier passes were pruned."""
    from cdfis_desktop.core.sampling.presets import preset_config

    project, dataset = project_and_data
    config = _config(sampler=preset_config("cdf-prune"), epochs=8, checkpoint_every_steps=1000)
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    started, finished = reports[0], reports[-1]
    limit = 8 * started.steps_per_epoch
    assert finished.step == limit
    tail_start = math.ceil(0.875 * limit)  # progress before step s is (s - 1) / limit
    before = _rows_between(project, finished.run_id, started.steps_per_epoch, tail_start)
    tail = _rows_between(project, finished.run_id, tail_start, limit)
    assert (before[:, 2] > 1).any()
    assert len(tail) == 8 * (limit - tail_start) and (tail[:, 2] == 1).all()
    project.close()


def test_low_resolution_scoring_forwards_the_smaller_input(project_and_data) -> None:
    """cdf-selective-lowres: every scoring forward (no gradients) sees the candidates at
    half the side length, every training forward the chosen rows at full size."""
    from cdfis_desktop.core.sampling.presets import preset_config
    from cdfis_desktop.core.training.devices import resolve_device
    from cdfis_desktop.core.training.distributed import DistContext
    from cdfis_desktop.core.training.prepare import prepare_data
    from cdfis_desktop.core.training.session import TrainingSession

    project, dataset = project_and_data
    config = _config(sampler=preset_config("cdf-selective-lowres"), batch_size=16)
    data = prepare_data(project, config, dataset)
    session = TrainingSession(config, data, resolve_device("cpu"), DistContext())
    seen: list[tuple[bool, tuple[int, ...]]] = []
    session.module.register_forward_pre_hook(
        lambda _m, inputs: seen.append((torch.is_grad_enabled(), tuple(inputs[0].shape)))
    )
    for _ in range(3):
        result = session.train_step()
        assert (result.samples_forwarded, result.samples_backpropagated) == (16 + 4, 4)
    assert seen == [(False, (16, 3, PX // 2, PX // 2)), (True, (4, 3, PX, PX))] * 3


def test_history_draws_use_the_scores_the_store_recorded(tmp_path: Path) -> None:
    """The stored score of a patch is the one the sampler uses next: every draw's recorded
    probability equals the patch's last recorded score over the sum of all last scores."""
    from cdfis_desktop.core.sampling.presets import preset_config

    project, dataset, _ = _mislabelled(tmp_path)
    sampler = preset_config("cdf-history", SamplerConfig(warmup="epochs:1", refresh=0.5))
    config = _config(sampler=sampler, epochs=4, checkpoint_every_steps=1000)
    reports = list(Trainer(project, dataset=dataset).iter_run(config))
    started, finished = reports[0], reports[-1]
    with sqlite3.connect(project.db_path) as conn:
        rows = conn.execute(
            "SELECT block + step_offset AS step, patch_id, score_bits, probability_bits, "
            "times_chosen FROM history WHERE run_id = ? ORDER BY step",
            (finished.run_id,),
        ).fetchall()
    table = np.array(rows, dtype=np.int64)
    score = table[:, 2].astype(np.int32).view(np.float32).astype(np.float64)
    probability = table[:, 3].astype(np.int32).view(np.float32)
    latest: dict[int, float] = {}
    checked = rescored = 0
    for step in np.unique(table[:, 0]):
        at = table[:, 0] == step
        if step > started.steps_per_epoch:  # importance sampling on: check this draw
            total = sum(latest.values())
            assert len(latest) == started.n_train
            for patch, p in zip(table[at, 1], probability[at], strict=True):
                assert p == pytest.approx(latest[int(patch)] / total, rel=1e-5)
                checked += 1
            rescored += int((table[at, 4] == 0).sum())
        latest.update(zip(table[at, 1].tolist(), score[at].tolist(), strict=True))
    assert checked > 100 and rescored > 0
    project.close()
