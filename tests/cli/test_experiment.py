"""``cdfis experiment synthetic``: files written, usage and output errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdfis_desktop.cli.main import main


def test_synthetic_command_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "exp"
    assert main(["experiment", "synthetic", "--out", str(out), "--seeds", "1", "--steps", "5"]) == 0
    assert (out / "results.csv").is_file() and (out / "accuracy.png").is_file()
    printed = capsys.readouterr().out
    assert "cdf-history" in printed and "results.csv" in printed


def test_bad_steps_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "synthetic", "--out", str(tmp_path), "--steps", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code = main(["experiment", "synthetic", "--out", str(blocker), "--seeds", "1", "--steps", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "file.txt" in err
