"""Issue 16's fuzz test: 300 seeded mutations of a real SVS, a GeoJSON, an ASAP XML and a
labels CSV through the CLI. Every outcome is exit 0 or 2, never 1, a crash or a hang, and
the projects they were imported into stay intact. The cases run in one child process
(``fuzz_campaign.py``, in-process CLI calls, ~30 s here), so a crash in native code fails
this test with the case that caused it instead of ending the test session."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main

CAMPAIGN = Path(__file__).with_name("fuzz_campaign.py")
SEED = 16


@pytest.mark.slow
@pytest.mark.realdata
def test_mutated_inputs_exit_0_or_2_and_leave_the_projects_intact(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "fuzz"
    result = subprocess.run(
        [sys.executable, str(CAMPAIGN), "--data", str(real_data), "--work", str(work),
         "--seed", str(SEED)],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    records = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    last_start = next((r for r in reversed(records) if r["event"] == "start"), None)
    assert result.returncode == 0, (
        f"the campaign died (status {result.returncode}) during {last_start}; replay it with "
        f"{CAMPAIGN.name} --only <case>\n{result.stderr[-3000:]}"
    )
    assert records[-1] == {"event": "finished", "cases": 300}
    done = [r for r in records if r["event"] == "done"]
    bad = [r for r in done if r["code"] not in (0, 2)]
    assert not bad, "\n".join(
        f"{r['case']} {r['command']}: {r['code']} {r['message']}" for r in bad
    )
    assert {r["command"] for r in done} == {"info", "import", "slides remove"}
    assert any(r["code"] == 0 for r in done if r["command"] == "import")  # not all refused
    for project in sorted(work.glob("project-*")):
        connection = sqlite3.connect(project / "project.db")
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], project
        assert connection.execute("SELECT COUNT(*) FROM slides").fetchone() == (0,), project
        connection.close()
        assert main(["check", "--project", str(project)]) == 0, capsys.readouterr().out
        strays = [p for p in project.rglob(".*") if p.is_file() or p.is_dir()]
        assert strays == []
