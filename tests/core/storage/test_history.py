"""The batched history writer: rows, aggregates against a numpy reference, batching,
duplicate candidates, resume truncation, and a reader thread during writes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cdfis_desktop.core.errors import StoreError
from cdfis_desktop.core.heatmap.overlay import metric_values
from cdfis_desktop.core.storage import ALL_EPOCHS, Project
from cdfis_desktop.core.storage.aggregates import COLUMNS, EARLIER_EPOCHS, load


def _write_random_history(
    project: Project, run_id: int, ids: np.ndarray, steps: int, flush: int, seed: int = 0
) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """Record ``steps`` steps of 16 candidates (4 chosen); return what was recorded."""
    rng = np.random.default_rng(seed)
    recorded = []
    with project.history_writer(run_id, flush_every_steps=flush) as writer:
        for step in range(steps):
            cand = rng.choice(ids, 16, replace=False)
            score = rng.random(16).astype(np.float32)
            chosen = np.zeros(16, np.int32)
            chosen[rng.choice(16, 4, replace=False)] = 1
            writer.record(step, step // 4, cand, score, score / score.sum(), chosen, chosen * 2.0)
            recorded.append((step, step // 4, cand, score, chosen))
    return recorded


def _stats(project: Project, run_id: int, epoch: int) -> dict[int, tuple]:
    """The (run, epoch) aggregate arrays as {patch id: (times_scored, times_chosen,
    score_sum, last_score, last_step)} for every patch scored at least once."""
    with project.engine.connect() as conn:
        arrays = load(conn, run_id, epoch)
    if arrays is None:
        return {}
    columns = [arrays[name] for name in COLUMNS]
    scored = np.flatnonzero(arrays["times_scored"] > 0)
    return {int(pid): tuple(c[pid].item() for c in columns) for pid in scored}


def _reference(recorded, epoch: int | None) -> dict[int, tuple]:
    ref: dict[int, list] = {}
    for step, ep, cand, score, chosen in recorded:
        if epoch is not None and ep != epoch:
            continue
        for pid, s, c in zip(cand.tolist(), score.tolist(), chosen.tolist(), strict=True):
            entry = ref.setdefault(pid, [0, 0, 0.0, 0.0, -1])
            entry[0] += 1
            entry[1] += c
            entry[2] += s
            entry[3], entry[4] = s, step
    return {k: tuple(v) for k, v in ref.items()}


def _assert_stats_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for pid, row in want.items():
        assert got[pid][:2] == row[:2], pid
        assert got[pid][2] == pytest.approx(row[2], rel=1e-6)
        assert got[pid][3] == pytest.approx(row[3], rel=1e-6)
        assert got[pid][4] == row[4]


def test_aggregates_match_numpy_reference(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    run_id = make_run()
    recorded = _write_random_history(project, run_id, ids[:40], steps=13, flush=3)
    for epoch in range(4):
        _assert_stats_equal(_stats(project, run_id, epoch), _reference(recorded, epoch))
    _assert_stats_equal(_stats(project, run_id, ALL_EPOCHS), _reference(recorded, None))
    assert project.epochs(run_id) == [0, 1, 2, 3]
    assert project.run(run_id).steps == 12


def test_history_rows_roundtrip(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    run_id = make_run()
    recorded = _write_random_history(project, run_id, ids[:40], steps=6, flush=4)
    step, _, cand, score, chosen = recorded[5]
    scores = project.score_distribution(run_id, step=step)
    assert np.array_equal(np.sort(scores), np.sort(score))
    history = project.patch_history(run_id, int(cand[0]))
    at = np.flatnonzero(history.step == step)[0]
    assert history.score[at] == score[0] and history.times_chosen[at] == chosen[0]
    assert history.weight[at] == pytest.approx(chosen[0] * 2.0)
    assert np.all(np.diff(history.step) > 0)


def test_nothing_visible_before_flush(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    run_id = make_run()
    writer = project.history_writer(run_id, flush_every_steps=3)
    for step in range(2):
        writer.record(step, 0, ids[:4], np.ones(4), np.full(4, 0.25), np.ones(4), np.ones(4))
    assert writer.pending_steps == 2
    assert project.epochs(run_id) == []
    writer.record(2, 0, ids[:4], np.ones(4), np.full(4, 0.25), np.ones(4), np.ones(4))
    assert writer.pending_steps == 0
    assert len(project.patch_history(run_id, int(ids[0])).step) == 3
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.record(3, 0, ids[:1], [1.0], [1.0], [1], [1.0])


def test_duplicate_candidates_in_one_step_are_merged(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    run_id = make_run()
    cand = np.array([ids[0], ids[1], ids[0]])
    with project.history_writer(run_id) as writer:
        writer.record(0, 0, cand, [0.5, 0.2, 0.5], [0.4, 0.2, 0.4], [1, 0, 2], [1.0, 0.0, 2.0])
    history = project.patch_history(run_id, int(ids[0]))
    assert list(history.times_chosen) == [3] and list(history.weight) == [3.0]
    assert _stats(project, run_id, 0)[int(ids[0])][:2] == (1, 3)


def test_mismatched_lengths_are_rejected(project, slide_patches, make_run) -> None:
    _, ids = slide_patches
    with project.history_writer(make_run()) as writer, pytest.raises(ValueError, match="length"):
        writer.record(0, 0, ids[:3], [1.0, 2.0], [0.5, 0.5, 0.0], [1, 1, 0], [1.0, 1.0, 0.0])


def test_writer_refuses_a_finished_run(project, make_run) -> None:
    run_id = make_run()
    project.set_run_status(run_id, "finished")
    with pytest.raises(StoreError, match="run 1 is finished"):
        project.history_writer(run_id)


def test_truncate_rebuilds_the_same_aggregates(project, slide_patches, make_run) -> None:
    """Resuming from a checkpoint at step 7 must leave exactly what steps 0..7 wrote."""
    _, ids = slide_patches
    run_a, run_b = make_run(), make_run()
    full = _write_random_history(project, run_a, ids[:40], steps=12, flush=5, seed=3)
    _write_random_history(project, run_b, ids[:40], steps=8, flush=5, seed=3)
    project.log_metrics(run_a, 10, 2, 1.0, train_loss=0.3)
    project.history_writer(run_a, resume_after_step=7).close()
    for epoch in (0, 1, 2, ALL_EPOCHS):
        _assert_stats_equal(_stats(project, run_a, epoch), _stats(project, run_b, epoch))
    _assert_stats_equal(_stats(project, run_a, ALL_EPOCHS), _reference(full[:8], None))
    assert project.run(run_a).steps == 7
    assert len(project.metrics(run_a)["step"]) == 0


def test_reader_thread_sees_committed_batches_while_writing(
    project, slide_patches, make_run
) -> None:
    """A GUI-like reader polls heatmaps while the writer flushes and changes epoch every 4
    steps (an epoch change rewrites the two stored rows the cumulative aggregates are read
    from); every read is one snapshot: the cumulative times_scored always equals 16 x a
    whole number of flushed steps and never decreases."""
    slide_id, ids = slide_patches
    run_id = make_run()
    seen: list[float] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                values = metric_values(project, run_id, slide_id, "times_scored").value
                seen.append(float(np.nansum(values)))
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        _write_random_history(project, run_id, ids[:40], steps=300, flush=1)
    finally:
        done.set()
        reader.join(timeout=30)
    assert not reader.is_alive() and not errors
    assert len(seen) > 10 and all(total % 16 == 0 for total in seen)
    assert (np.diff(seen) >= 0).all(), "a read mixed two snapshots"


def test_failed_flush_is_not_counted_twice(project, slide_patches, make_run) -> None:
    """A flush that fails after folding its batch (here the run update is refused by a
    trigger) rolls back; the retry must count the batch once."""
    _, ids = slide_patches
    run_id = make_run()
    with project.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE OF last_step ON runs WHEN NEW.last_step = 3 "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    writer = project.history_writer(run_id, flush_every_steps=2)
    recorded = []
    for step in range(4):
        chosen = np.array([1, 0, 2])
        score = np.array([0.5, 0.25, 1.0 + step], np.float32)
        recorded.append((step, 0, ids[step : step + 3], score, chosen))
        if step < 3:
            writer.record(step, 0, ids[step : step + 3], score, score, chosen, chosen)
    with pytest.raises(StoreError, match="refused"):
        writer.record(3, 0, ids[3:6], recorded[3][3], recorded[3][3], chosen, chosen)
    assert writer.pending_steps == 2
    with project.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    writer.close()
    for epoch in (0, ALL_EPOCHS):
        _assert_stats_equal(_stats(project, run_id, epoch), _reference(recorded, None))


def test_deleted_slide_stays_out_of_the_aggregates(
    project, slide_patches, make_run, row_patches
) -> None:
    """Deleting a slide while a writer is open zeroes its patches in every aggregate row;
    the writer's next flush must not bring them back."""
    slide_id, ids = slide_patches
    _, other_ids = row_patches(project, 2, path="/b")
    run_id = make_run()
    both = np.concatenate([ids[:3], other_ids])
    writer = project.history_writer(run_id, flush_every_steps=1)
    writer.record(0, 0, both, np.ones(5), np.full(5, 0.2), np.ones(5), np.ones(5))
    project.delete_slide(slide_id)
    writer.record(1, 0, other_ids, np.ones(2), np.full(2, 0.5), [1, 0], [1.0, 0.0])
    writer.close()
    for epoch in (0, ALL_EPOCHS):
        stats = _stats(project, run_id, epoch)
        assert sorted(stats) == sorted(other_ids.tolist())
        assert [stats[int(p)][:2] for p in other_ids] == [(2, 2), (2, 1)]
    assert [p.patch_id for p in project.favoured_patches(run_id, 10)] == other_ids.tolist()
    assert project.favoured_patches(run_id, 1)[0].expected_uniform == pytest.approx(3 / 40)


def test_stored_rows_are_epochs_and_their_earlier_sum(project, slide_patches, make_run) -> None:
    """Stored: one row per epoch and one (EARLIER_EPOCHS) equal to the sum of every epoch
    but the latest; no stored cumulative row. A flush inside an epoch rewrites only that
    epoch's row."""
    _, ids = slide_patches
    run_id = make_run()
    recorded = _write_random_history(project, run_id, ids[:40], steps=13, flush=3)
    with project.engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT epoch FROM run_aggregates WHERE run_id = ? ORDER BY epoch", (run_id,)
        ).scalars()
        assert list(stored) == [EARLIER_EPOCHS, 0, 1, 2, 3]
        earlier = load(conn, run_id, EARLIER_EPOCHS)
    assert earlier is not None
    epochs_0_to_2 = [r for r in recorded if r[1] < 3]
    got = {
        int(p): (int(earlier["times_scored"][p]), int(earlier["times_chosen"][p]))
        for p in np.flatnonzero(earlier["times_scored"])
    }
    want = {p: row[:2] for p, row in _reference(epochs_0_to_2, None).items()}
    assert got == want

    def row_bytes() -> dict[int, bytes]:
        with project.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT epoch, times_scored FROM run_aggregates WHERE run_id = ?", (run_id,)
            ).all()
        return {int(e): bytes(b) for e, b in rows}

    project.set_run_status(run_id, "running")
    before = row_bytes()
    with project.history_writer(run_id, flush_every_steps=1) as writer:
        writer.record(13, 3, ids[:2], [1.0, 2.0], [0.5, 0.5], [1, 0], [1.0, 0.0])
    after = row_bytes()
    assert [e for e in after if after[e] != before[e]] == [3]


def test_steps_out_of_order_are_refused_when_recorded(project, slide_patches, make_run) -> None:
    """A step not after the latest one, or an epoch below it, is refused by record()
    whether the latest is buffered, flushed, or stored by an earlier writer; the writer
    goes on working after a refusal."""
    _, ids = slide_patches
    run_id = make_run()

    def record(writer, step: int, epoch: int) -> None:
        writer.record(step, epoch, ids[:2], [1.0, 2.0], [0.5, 0.5], [1, 0], [1.0, 0.0])

    writer = project.history_writer(run_id, flush_every_steps=2)
    record(writer, 10, 2)  # buffered
    for step, epoch in ((10, 2), (9, 2), (11, 1)):
        with pytest.raises(ValueError, match="steps must increase and epochs not decrease"):
            record(writer, step, epoch)
    record(writer, 11, 2)  # flushed with step 10
    for step, epoch in ((5, 2), (12, 1)):
        with pytest.raises(ValueError, match=f"step {step} .epoch {epoch}. recorded after step 11"):
            record(writer, step, epoch)
    assert writer.pending_steps == 0
    record(writer, 12, 3)
    writer.close()
    assert project.run(run_id).steps == 12 and project.epochs(run_id) == [2, 3]
    project.set_run_status(run_id, "running")
    with project.history_writer(run_id) as later, pytest.raises(ValueError, match="after step 12"):
        record(later, 12, 3)


def test_slide_deleted_during_a_flush_loses_no_other_counts(
    project, slide_patches, make_run, row_patches
) -> None:
    """delete_slide reads and rewrites every aggregate row; a history flush from another
    thread, started right after its first read (a cursor hook), must neither be lost nor
    be overwritten by the stale copy: it waits, then counts."""
    from sqlalchemy import event

    slide_id, ids = slide_patches
    _, kept = row_patches(project, 8, path="/b")
    run_id = make_run()
    writer = project.history_writer(run_id, flush_every_steps=1)
    both = np.concatenate([ids[:4], kept])
    writer.record(0, 0, both, np.ones(12), np.full(12, 0.1), np.ones(12), np.ones(12))
    flushes: list[threading.Thread] = []

    def flush_now(conn, cursor, statement, *args) -> None:
        if statement.startswith("SELECT times_scored") and not flushes:
            step = (1, 0, kept, np.ones(8), np.full(8, 0.1), np.ones(8), np.ones(8))
            flushes.append(threading.Thread(target=writer.record, args=step))
            flushes[0].start()
            flushes[0].join(timeout=0.5)  # commits now unless delete_slide holds the lock

    event.listen(project.engine, "after_cursor_execute", flush_now)
    try:
        project.delete_slide(slide_id)
    finally:
        event.remove(project.engine, "after_cursor_execute", flush_now)
    flushes[0].join(timeout=60)
    assert not flushes[0].is_alive()
    writer.close()
    stats = _stats(project, run_id, ALL_EPOCHS)
    assert sorted(stats) == sorted(kept.tolist())
    assert {stats[p][:2] for p in kept.tolist()} == {(2, 2)}
    assert project.run(run_id).steps == 1
