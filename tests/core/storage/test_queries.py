"""Queries used by the GUI and reports: heatmap values, favoured/ignored patches, metrics,
run summaries and comparisons, predictions, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError, RunLockedError, StoreError
from cdfis_desktop.core.heatmap.metrics import metric_keys
from cdfis_desktop.core.heatmap.overlay import metric_values
from cdfis_desktop.core.storage import Project


def _two_epochs(project: Project, run_id: int, ids: np.ndarray) -> None:
    """Epoch 0: step 0 scores ids[0:4] (chosen 2,1,0,0 times), step 1 scores ids[0:2].
    Epoch 1: step 2 scores ids[2:4] (chosen 0, 3)."""
    with project.history_writer(run_id, flush_every_steps=2) as writer:
        writer.record(
            0,
            0,
            ids[0:4],
            [1.0, 2.0, 3.0, 4.0],
            [0.1, 0.2, 0.3, 0.4],
            [2, 1, 0, 0],
            [1.0, 1.0, 0.0, 0.0],
        )
        writer.record(1, 0, ids[0:2], [5.0, 6.0], [0.5, 0.5], [0, 0], [0.0, 0.0])
        writer.record(2, 1, ids[2:4], [7.0, 8.0], [0.4, 0.6], [0, 3], [0.0, 1.0])


def test_heatmap_values_per_metric(project, slide_patches, make_run) -> None:
    slide_id, ids = slide_patches
    run_id = make_run(n_train=40)
    _two_epochs(project, run_id, ids)
    hv = metric_values(project, run_id, slide_id, "times_chosen")
    assert np.array_equal(hv.patch_id, ids) and np.array_equal(hv.l0_x, (np.arange(60) % 10) * 512)
    assert list(hv.value[:5]) == [2, 1, 0, 3, 0]
    assert np.isnan(hv.value[40:]).all()  # validation patches were never training patches
    assert list(metric_values(project, run_id, slide_id, "times_chosen", 0).value[:4]) == [
        2,
        1,
        0,
        0,
    ]
    mean = metric_values(project, run_id, slide_id, "mean_score").value
    assert list(mean[:4]) == [3.0, 4.0, 5.0, 6.0] and np.isnan(mean[4])
    assert list(metric_values(project, run_id, slide_id, "last_score").value[:4]) == [5, 6, 7, 8]
    assert list(metric_values(project, run_id, slide_id, "loss", 1).value[2:4]) == [7, 8]
    assert list(metric_values(project, run_id, slide_id, "times_scored").value[:4]) == [2, 2, 2, 2]
    assert list(metric_values(project, run_id, slide_id, "label").value[:4]) == [0, 1, 0, 1]


def test_favour_is_chosen_minus_uniform_expectation(project, slide_patches, make_run) -> None:
    slide_id, ids = slide_patches
    run_id = make_run(n_train=40)
    _two_epochs(project, run_id, ids)
    favour = metric_values(project, run_id, slide_id, "favour").value
    expected = 6 / 40  # 6 draws in the run, 40 training patches
    assert favour[0] == pytest.approx(2 - expected) and favour[5] == pytest.approx(-expected)
    assert np.nansum(favour[:40]) == pytest.approx(0.0, abs=1e-5)  # uniform would give 0
    epoch0 = metric_values(project, run_id, slide_id, "favour", 0).value
    assert epoch0[0] == pytest.approx(2 - 3 / 40)


def test_favoured_and_ignored_patches(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    run_id = make_run(n_train=40)
    _two_epochs(project, run_id, ids)
    top = project.favoured_patches(run_id, 2)
    assert [p.patch_id for p in top] == [ids[3], ids[0]]
    assert top[0].times_chosen == 3 and top[0].favour == pytest.approx(3 - 6 / 40)
    assert top[0].mean_score == pytest.approx(6.0) and top[0].last_score == 8.0
    ignored = project.favoured_patches(run_id, 1, ignored=True)
    assert ignored[0].patch_id == ids[2] and ignored[0].times_scored == 2
    assert [p.patch_id for p in project.favoured_patches(run_id, 5, label=1)] == [ids[3], ids[1]]
    in_epoch0 = project.favoured_patches(run_id, 1, epoch=0)
    assert in_epoch0[0].patch_id == ids[0] and in_epoch0[0].epoch == 0
    assert project.favoured_patches(run_id, 3, slide_id=999) == []


def test_heatmap_rejects_unknown_or_unused_metric(project, slide_patches, make_run) -> None:
    slide_id, _ = slide_patches
    run_id = make_run()
    assert "favour" in metric_keys()
    with pytest.raises(ConfigError, match="unknown heatmap metric"):
        metric_values(project, run_id, slide_id, "importance")
    with pytest.raises(ConfigError, match="scored patches by 'loss'"):
        metric_values(project, run_id, slide_id, "gradnorm")
    with pytest.raises(StoreError, match="no run with id 77"):
        metric_values(project, 77, slide_id, "favour")


def test_predictions_latest_epoch_by_default(project, slide_patches, make_run) -> None:
    slide_id, ids = slide_patches
    run_id = make_run()
    project.set_predictions(run_id, 0, ids[40:42], [1, 1], [0.6, 0.7])
    project.set_predictions(run_id, 1, ids[40:42], [0, 1], [0.9, 0.8])
    values = metric_values(project, run_id, slide_id, "prediction").value
    assert list(values[40:42]) == [0, 1] and np.isnan(values[0])
    probs = metric_values(project, run_id, slide_id, "prediction_probability", 0).value
    assert probs[40:42] == pytest.approx([0.6, 0.7])


def test_metrics_merge_and_series(project, make_run) -> None:
    run_id = make_run()
    project.log_metrics(run_id, 10, 0, 5.0, train_loss=0.7, samples_per_s=100.0)
    project.log_metrics(run_id, 10, 0, 5.5, val_accuracy=0.6, val_auc=0.7)
    project.log_metrics(run_id, 20, 1, 9.0, train_loss=0.5, val_accuracy=0.8)
    series = project.metrics(run_id)
    assert list(series["step"]) == [10, 20]
    assert list(series["train_loss"]) == [0.7, 0.5]
    assert list(series["val_accuracy"]) == [0.6, 0.8]
    assert series["wall_s"][0] == 5.5 and np.isnan(series["val_loss"]).all()
    summary = project.run(run_id)
    assert summary.best_val_accuracy == 0.8 and summary.steps == 20


def test_run_lifecycle_and_summaries(project, make_run) -> None:
    a = make_run(name="uniform", sampler_rule="uniform", seed=3)
    b = make_run(sampler_mode="history", metric="gradnorm")
    project.set_switch_step(b, 50)
    project.set_run_status(a, "failed", error="NaN loss")
    runs = project.runs()
    assert [r.id for r in runs] == [b, a]
    assert runs[1].status == "failed" and runs[1].error == "NaN loss"
    assert runs[1].duration_s is not None and runs[1].duration_s >= 0
    assert runs[0].status == "running" and runs[0].switch_step == 50
    assert runs[0].sampler == "cdf/history/gradnorm"
    assert runs[0].versions["cdfis"] and runs[0].config["batch_size"] == 4
    project.set_run_status(a, "running")  # resume
    assert project.run(a).status == "running" and project.run(a).error is None
    with pytest.raises(ConfigError, match="unknown run status"):
        project.set_run_status(a, "done")
    with pytest.raises(ConfigError, match="unknown sampler rule"):
        make_run(sampler_rule="best")
    comparison = project.compare_runs([a, b])
    assert [s.id for s in comparison.summaries] == [a, b] and set(comparison.metrics) == {a, b}


def test_two_projects_in_one_process_exclude_each_other(project, make_run) -> None:
    run_id = make_run()
    with Project.open(project.folder) as second:
        assert second.run(run_id).status == "running"  # not taken for dead
        with pytest.raises(RunLockedError, match=f"run {run_id} is being written"):
            second.history_writer(run_id)
        with pytest.raises(RunLockedError, match=f"run {run_id} is being written"):
            second.truncate_run(run_id, 0)


def test_checkpoints_registry(project, make_run, tmp_path) -> None:
    run_id = make_run()
    assert project.latest_checkpoint(run_id) is None
    inside = project.checkpoints_dir / "run1-step100.pt"
    outside = tmp_path / "elsewhere.pt"
    project.register_checkpoint(run_id, 100, 0, inside)
    project.register_checkpoint(run_id, 200, 1, outside)
    project.register_checkpoint(run_id, 50, 0, inside)
    latest = project.latest_checkpoint(run_id)
    assert latest is not None and latest.step == 200 and latest.path == str(outside.resolve())
    assert project.checkpoints(run_id)[1].path == str(inside)


def test_heatmap_follows_patch_changes_of_another_project_instance(
    project, slide_patches, make_run
) -> None:
    """The cached slide geometry is refreshed when patches or splits change anywhere."""
    slide_id, ids = slide_patches
    run_id = make_run()
    assert np.isnan(metric_values(project, run_id, slide_id, "times_chosen").value[45])
    with Project.open(project.folder) as other:
        other.set_splits(ids[45:46], "train")
        other.add_patches(
            slide_id,
            l0_x=[9999],
            l0_y=[0],
            l0_size=512,
            patch_px=256,
            mpp=0.5,
            label=0,
            tissue_fraction=1.0,
        )
    values = metric_values(project, run_id, slide_id, "times_chosen")
    assert values.value[45] == 0.0 and len(values) == 61 and values.l0_x[-1] == 9999


def test_heatmap_ignores_other_slides_inside_the_id_range(project, make_run) -> None:
    a = project.add_slide("/a", fingerprint="a", width=10, height=10, mpp=0.5)
    b = project.add_slide("/b", fingerprint="b", width=10, height=10, mpp=0.5)
    kw = {
        "l0_y": 0,
        "l0_size": 1,
        "patch_px": 1,
        "mpp": 0.5,
        "label": 0,
        "tissue_fraction": 1.0,
        "split": "train",
    }
    first = project.add_patches(a, l0_x=[0], **kw)
    middle = project.add_patches(b, l0_x=[1], **kw)
    last = project.add_patches(a, l0_x=[2], **kw)
    run_id = make_run(n_train=3)
    with project.history_writer(run_id) as writer:
        both = np.concatenate([first, middle, last])
        writer.record(0, 0, both, [1.0, 2.0, 3.0], [0.2, 0.3, 0.5], [1, 5, 2], [1.0, 1.0, 1.0])
    values = metric_values(project, run_id, a, "times_chosen")
    assert list(values.patch_id) == [first[0], last[0]] and list(values.value) == [1, 2]


def test_a_query_reads_one_snapshot_while_a_slide_is_deleted(
    project, make_run, row_patches
) -> None:
    """favoured_patches reads aggregates, candidates and patch rows in three statements;
    a slide deleted by another thread between the second and third (forced with a cursor
    hook) must not be half seen: the answer is the state before the deletion."""
    import threading

    from sqlalchemy import event

    _, ids_a = row_patches(project, 10, path="/a")
    slide_b, ids_b = row_patches(project, 10, path="/b")
    run_id = make_run(20)
    ids = np.concatenate([ids_a, ids_b])
    with project.history_writer(run_id) as writer:
        chosen = np.where(np.isin(ids, ids_b), 5, 1)
        writer.record(0, 0, ids, np.ones(20), np.full(20, 0.05), chosen, np.ones(20))
    deleted = []

    @event.listens_for(project.engine, "before_cursor_execute")
    def delete_before_patch_rows(conn, cursor, statement, *args) -> None:
        if statement.startswith("SELECT id, slide_id, l0_x") and not deleted:
            deleted.append(True)
            other = threading.Thread(target=project.delete_slide, args=(slide_b,))
            other.start()
            other.join()

    top = project.favoured_patches(run_id, 5)
    assert deleted and [p.patch_id for p in top] == ids_b[:5].tolist()
    assert project.favoured_patches(run_id, 5)[0].patch_id in ids_a.tolist()


def test_a_run_resumed_while_another_instance_recovers_it(project, make_run) -> None:
    """One project instance marks a dead writer's run interrupted while another resumes
    it at that very moment (forced with a cursor hook): the resumer is refused, never left
    writing a run marked interrupted."""
    from sqlalchemy import event

    run_id = make_run()
    project.set_run_status(run_id, "interrupted")  # releases this instance's lock

    def left_running_by_a_dead_writer() -> None:
        with project.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))

    with Project.open(project.folder) as resumer:
        left_running_by_a_dead_writer()
        outcome: list[str] = []

        def resume_now(conn, cursor, statement, *args) -> None:
            if statement.startswith("UPDATE runs SET status") and not outcome:
                try:
                    resumer.set_run_status(run_id, "running")
                    outcome.append("resumed")
                except RunLockedError:
                    outcome.append("refused")

        event.listen(project.engine, "before_cursor_execute", resume_now)
        try:
            assert project.recover_interrupted_runs() == [run_id]
        finally:
            event.remove(project.engine, "before_cursor_execute", resume_now)
        assert outcome == ["refused"] and resumer.run(run_id).status == "interrupted"


def test_score_ages_per_epoch(project, slide_patches, make_run) -> None:
    """Epoch 0 ends at step 1: ids[0:2] scored at 1 (age 0), ids[2:4] at 0 (age 1).
    Epoch 1 ends at step 2: ids[2:4] at 2 (age 0), ids[0:2] still from step 1 (age 1)."""
    _, ids = slide_patches
    run_id = make_run()
    assert project.score_ages(run_id).epoch.size == 0  # nothing recorded yet
    _two_epochs(project, run_id, ids)
    with project.history_writer(run_id) as writer:  # epoch 2: only ids[0] at step 6
        writer.record(6, 2, ids[0:1], [1.0], [1.0], [1], [1.0])
    ages = project.score_ages(run_id)
    assert ages.epoch.tolist() == [0, 1, 2] and ages.step.tolist() == [1, 2, 6]
    assert ages.scored.tolist() == [4, 4, 4]
    assert ages.median_steps.tolist() == [0.5, 0.5, 4.0]  # epoch 2: ages 0, 5, 4, 4
    np.testing.assert_allclose(ages.p90_steps, np.percentile([[0, 0, 1, 1], [1, 1, 0, 0],
                                                             [0, 5, 4, 4]], 90, axis=1))  # fmt: skip


def test_chosen_shares_accumulate_over_epochs(project, slide_patches, make_run) -> None:
    """Epoch 0 (ends at step 1) chose ids[0] and ids[1]; epoch 1 (step 2) adds ids[3];
    epoch 2 (step 6) chooses ids[0] again, which adds nothing. 40 training patches."""
    _, ids = slide_patches
    run_id = make_run(n_train=40)
    steps, shares = project.chosen_shares(run_id)
    assert steps.size == 0 and shares.size == 0  # nothing recorded yet
    _two_epochs(project, run_id, ids)
    with project.history_writer(run_id) as writer:
        writer.record(6, 2, ids[0:1], [1.0], [1.0], [1], [1.0])
    steps, shares = project.chosen_shares(run_id)
    assert steps.tolist() == [1, 2, 6]
    np.testing.assert_allclose(shares, [2 / 40, 3 / 40, 3 / 40])


def _patch_rows(project: Project, where: str = "1", params: tuple = ()) -> list[tuple]:
    """The patch table as plain rows read with the sqlite3 module (the reference)."""
    import sqlite3

    with sqlite3.connect(project.db_path) as conn:
        return conn.execute(
            "SELECT id, slide_id, l0_x, l0_y, l0_size, patch_px, mpp, label, tissue_fraction, "
            f"split, source FROM patches WHERE {where} ORDER BY id",
            params,
        ).fetchall()


def _as_rows(table) -> list[tuple]:
    return [
        (
            int(table.id[k]),
            int(table.slide_id[k]),
            int(table.l0_x[k]),
            int(table.l0_y[k]),
            int(table.l0_size[k]),
            int(table.patch_px[k]),
            float(table.mpp[k]),
            int(table.label[k]),
            float(table.tissue_fraction[k]),
            table.split[k],
            table.source[k],
        )
        for k in range(len(table))
    ]


def test_patch_table_equals_the_rows_it_reads(project) -> None:
    """``patches()`` (numbers as group_concat texts, splits as codes, sources as rows)
    gives exactly the stored rows (floats as float32), for every filter: two slides
    interleaved in id order, every split and None, sources with commas and None."""
    rng = np.random.default_rng(4)
    splits = ["train", "val", "test", None]
    for index in range(4):  # slides a, b, a, b: each slide's ids are two ranges
        slide_id = (index % 2) + 1
        if index < 2:
            project.add_slide(f"/{index}.svs", fingerprint=str(index), width=9, height=9, mpp=0.5)
        n = 25
        project.add_patches(
            slide_id,
            l0_x=rng.integers(0, 10**6, n),
            l0_y=rng.integers(0, 10**6, n),
            l0_size=rng.integers(1, 2000, n),
            patch_px=rng.integers(1, 512, n),
            mpp=rng.uniform(0.1, 4.0, n),
            label=rng.integers(-1, 3, n),
            tissue_fraction=rng.random(n),
            split=[splits[k] for k in rng.integers(0, 4, n)],
            source=[None if k % 3 == 0 else f"dir, {k}/p,{k}.png" for k in range(n)],
        )

    def reference(rows: list[tuple]) -> list[tuple]:
        as_f32 = np.float32
        return [(*r[:6], float(as_f32(r[6])), r[7], float(as_f32(r[8])), *r[9:]) for r in rows]

    every = _patch_rows(project)
    assert _as_rows(project.patches()) == reference(every)
    assert _as_rows(project.patches(slide_id=2)) == reference(
        _patch_rows(project, "slide_id = ?", (2,))
    )
    assert _as_rows(project.patches(split="val")) == reference(
        _patch_rows(project, "split = ?", ("val",))
    )
    some = np.array([every[k][0] for k in (3, 40, 77, 99)] + [10**9])
    assert _as_rows(project.patches(slide_id=1, patch_ids=some)) == reference(
        _patch_rows(project, "slide_id = 1 AND id IN (?, ?, ?, ?)", tuple(some[:4].tolist()))
    )
    empty = project.patches(slide_id=99)
    assert len(empty) == 0 and empty.id.dtype == np.int64 and empty.split.dtype == object
