"""The sampler comparison dialog on a real project folder holding a kept comparison (files
written by the comparison's own writers from known curves), through the main window."""

from __future__ import annotations

import sys
from pathlib import Path

from cdfis_desktop.core.experiments.compare import judge_comparison
from cdfis_desktop.core.experiments.comparison_outputs import write_outputs
from cdfis_desktop.core.reporting.comparisons import keep_in_project
from cdfis_desktop.gui.comparison_dialog import ComparisonDialog
from cdfis_desktop.gui.main_window import MainWindow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "experiments"))
from synthetic_comparison import synthetic_runs  # noqa: E402


def _keep(project: Path, out: Path, first_run_id: int):
    runs = synthetic_runs(seeds=5, first_run_id=first_run_id)
    write_outputs(out, runs, judge_comparison(runs), statistics_s=0.0)
    return keep_in_project(project, out)


def test_the_dialog_shows_the_comparison_of_the_selected_run(qtbot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(tmp_path / "project", create=True)
    older = _keep(tmp_path / "project", tmp_path / "a", first_run_id=1)
    newer = _keep(tmp_path / "project", tmp_path / "b", first_run_id=100)
    assert older.name != newer.name
    window.show_comparisons(select_run=older.run_ids[2])  # a run of the older comparison
    dialog = window.findChild(ComparisonDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.list.count() == 2
    assert dialog.shown == older  # the comparison that made the selected run
    assert "cdf-history reached the target in 5 of 5 seeds" in dialog.summary.toPlainText()
    assert not dialog.plot.pixmap().isNull()
    dialog.list.setCurrentRow(0)  # newest first
    assert dialog.shown == newer
    dialog.close()
    window.close()


def test_a_project_without_comparisons_says_how_to_make_one(qtbot, tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    dialog = ComparisonDialog(tmp_path / "project")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.list.count() == 0 and dialog.shown is None
    labels = [w.text() for w in dialog.findChildren(type(dialog.plot)) if w.text()]
    assert any("cdfis compare" in text for text in labels)
