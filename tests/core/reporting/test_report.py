"""The PDF report, parsed back with pypdf: sections, run id, embedded images; cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from cdfis_desktop.core.errors import ExportError
from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress
from cdfis_desktop.core.reporting import write_report
from cdfis_desktop.core.storage import Project


def _image_count(reader: PdfReader) -> int:
    count = 0
    for page in reader.pages:
        resources = page.get("/Resources") or {}
        xobjects = resources.get("/XObject") or {}
        count += sum(1 for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image")
    return count


@pytest.mark.slow  # ~15 s on a shared 2-core CPU: 8 pages, 34 embedded images
def test_report_has_every_section_and_the_images(trained_project, tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"
    seen: list[Progress] = []
    with Project.open(trained_project.folder) as project:
        write_report(project, trained_project.run_id, target, progress=seen.append)
    reader = PdfReader(target)
    text = "\n".join(page.extract_text() for page in reader.pages)
    for section in (
        f"Run {trained_project.run_id}: configuration and provenance",
        "training curves",
        "Comparison of samplers",
        "score distribution",
        "Slide ",
        "most favoured patches",
        "most ignored patches",
        "Importance sampling on from",
        "step 6",
        "Software",
    ):
        assert section in text, section
    assert len(reader.pages) == 8  # config, curves, comparison, scores, 2 slides, 2 galleries
    # per slide: thumbnail + 4 overlays; galleries: 12 patches each
    assert _image_count(reader) >= 2 * 5 + 2 * 12
    assert seen[-1].done == seen[-1].total == len(reader.pages)
    assert reader.metadata.title == f"cdfis run {trained_project.run_id} report"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left


def test_cancel_leaves_no_file(trained_project, tmp_path: Path) -> None:
    token = CancelToken()
    target = tmp_path / "report.pdf"

    def cancel_after_first(progress: Progress) -> None:
        token.cancel()

    with Project.open(trained_project.folder) as project, pytest.raises(Cancelled):
        write_report(
            project, trained_project.run_id, target, progress=cancel_after_first, cancel=token
        )
    assert list(tmp_path.iterdir()) == []


def test_unwritable_path_is_an_export_error(trained_project, tmp_path: Path) -> None:
    with (
        Project.open(trained_project.folder) as project,
        pytest.raises(ExportError, match="no-such-folder"),
    ):
        write_report(project, trained_project.run_id, tmp_path / "no-such-folder" / "r.pdf")


@pytest.mark.slow  # a full report (~15 s on a shared 2-core CPU)
def test_report_of_a_compared_run_includes_the_comparison(trained_project, tmp_path: Path) -> None:
    import shutil
    import sys

    from cdfis_desktop.core.experiments.compare import judge_comparison
    from cdfis_desktop.core.experiments.comparison_outputs import write_outputs
    from cdfis_desktop.core.reporting.comparisons import keep_in_project

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    from synthetic_comparison import synthetic_runs

    folder = tmp_path / "project"
    shutil.copytree(trained_project.folder, folder)
    runs = synthetic_runs(seeds=5, first_run_id=trained_project.run_id)
    write_outputs(tmp_path / "out", runs, judge_comparison(runs), statistics_s=0.0)
    keep_in_project(folder, tmp_path / "out")
    target = tmp_path / "report.pdf"
    with Project.open(folder) as project:
        write_report(project, trained_project.run_id, target)
    reader = PdfReader(target)
    assert len(reader.pages) == 9  # the 8 pages of a report, and the comparison's
    text = reader.pages[3].extract_text()
    assert "Sampler comparison" in text and "cdf-history reached the target in 5 of 5" in text
    assert _image_count(reader) >= 2 * 5 + 2 * 12 + 1  # the comparison figure


def test_the_configuration_page_names_the_settings_of_the_sampler_mode() -> None:
    """A history run is not described by a presample ratio, nor a prune run by either."""
    from dataclasses import asdict

    from cdfis_desktop.core.reporting.report import _mode_rows
    from cdfis_desktop.core.sampling.presets import preset_config

    def keys(name: str) -> list[str]:
        return [k for k, _ in _mode_rows(asdict(preset_config(name)))]

    assert keys("cdf-history") == ["Stalest rescored per step"]
    assert keys("cdf-prune") == ["Prune ratio", "Full data for the last"]
    assert keys("cdf-presample") == ["Presample ratio (B / b)"]
    assert keys("cdf-selective-lowres") == [
        "Presample ratio (B / b)",
        "Trained share of each batch",
        "Scored at input scale",
    ]
    assert keys("uniform") == []
