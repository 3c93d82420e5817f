"""Crash safety: a writer process killed with SIGKILL mid-run leaves a sound database that
keeps every committed step and shows the run as interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from cdfis_desktop.core.storage import ALL_EPOCHS, Project
from cdfis_desktop.core.storage.aggregates import load

CHILD = Path(__file__).with_name("_writer_child.py")
FLUSH_EVERY = 5
ROWS = 200


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_mid_run_keeps_committed_steps(tmp_path: Path, row_patches, quick_checks) -> None:
    """... and the next open runs the integrity check (the writer never closed cleanly)."""
    folder = tmp_path / "p"
    with Project.create(folder) as project:
        row_patches(project, 1000)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), "loop"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        reported = 0
        while reported < 8 * FLUSH_EVERY:
            line = child.stdout.readline()
            assert line, "the writer process ended early"
            reported = int(line.split()[1])
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    checked = len(quick_checks)
    assert Project.pending_check_bytes(folder) > 0
    with Project.open(folder) as project:
        assert len(quick_checks) == checked + 1
        with project.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            steps = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT block + step_offset AS step, COUNT(*) FROM history WHERE run_id = 1 "
                        "GROUP BY step ORDER BY step"
                    )
                ).all()
            ]
            counts = set(
                conn.execute(
                    text(
                        "SELECT COUNT(*) FROM history WHERE run_id = 1 GROUP BY block + step_offset"
                    )
                ).scalars()
            )
            cumulative = load(conn, 1, ALL_EPOCHS, ("times_scored",))
            per_epoch = [load(conn, 1, epoch, ("times_scored",)) for epoch in project.epochs(1)]
        assert cumulative is not None
        scored = int(cumulative["times_scored"].sum())
        assert sum(int(a["times_scored"].sum()) for a in per_epoch if a is not None) == scored
        # every reported (committed) step is there, whole batches only, no partial step
        assert len(steps) >= reported and len(steps) % FLUSH_EVERY == 0
        assert steps == list(range(len(steps))) and counts == {ROWS}
        assert project.epochs(1) == list(range(steps[-1] // 50 + 1))
        assert scored == len(steps) * ROWS  # aggregates committed with their history
        summary = project.run(1)
        assert summary.status == "interrupted" and summary.steps == len(steps) - 1
        assert "ended without closing" in (summary.error or "")
