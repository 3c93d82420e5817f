"""``cdfis report``: writes the PDF; bad input exits 2 with one ``error:`` line."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.storage import Project


@pytest.mark.slow  # renders the whole report (~15 s on a shared 2-core CPU)
def test_report_of_last_run(trained_project, tmp_path, capsys) -> None:
    target = tmp_path / "report.pdf"
    code = main(
        ["report", "--project", str(trained_project.folder), "--run", "last", "-o", str(target)]
    )
    assert code == 0
    last = max(trained_project.run_id, trained_project.other_run_id)
    assert f"report of run {last} written" in capsys.readouterr().out
    assert f"Run {last}: configuration" in PdfReader(target).pages[0].extract_text()


@pytest.mark.parametrize(
    ("run", "output", "message"),
    [
        ("99", "r.pdf", "has no run 99; its runs are: 1, 2"),
        ("first", "r.pdf", "run id or 'last'"),
        ("1", "missing/r.pdf", "cannot write"),
    ],
)
def test_bad_input_exits_2(trained_project, tmp_path, capsys, run, output, message) -> None:
    code = main(
        [
            "report",
            "--project",
            str(trained_project.folder),
            "--run",
            run,
            "-o",
            str(tmp_path / output),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error:") and message in err[-1]
    assert not (tmp_path / "r.pdf").exists()


def test_project_without_runs_exits_2(tmp_path, capsys) -> None:
    Project.create(tmp_path / "empty").close()
    code = main(["report", "--project", str(tmp_path / "empty"), "-o", str(tmp_path / "r.pdf")])
    assert code == 2
    assert "has no runs yet" in capsys.readouterr().err
