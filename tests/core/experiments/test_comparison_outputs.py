"""The comparison's files and the copies kept in the project, from known curves."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from cdfis_desktop.core.errors import ExportError
from cdfis_desktop.core.experiments.compare import judge_comparison
from cdfis_desktop.core.experiments.comparison_outputs import (
    OUTPUT_FILES,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    write_outputs,
)
from cdfis_desktop.core.reporting.comparisons import (
    comparison_of_run,
    keep_in_project,
    stored_comparisons,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_comparison import synthetic_runs  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    runs = synthetic_runs()
    out = tmp_path_factory.mktemp("out")
    write_outputs(out, runs, judge_comparison(runs), statistics_s=0.01)
    return out, runs


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_file_is_written_with_its_columns(written) -> None:
    out, runs = written
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    results = _rows(out / "results.csv")
    assert list(results[0]) == list(RESULT_COLUMNS) and len(results) == len(runs.points)
    summary = _rows(out / "summary.csv")
    assert list(summary[0]) == list(SUMMARY_COLUMNS)
    assert [r["sampler"] for r in summary] == ["uniform", "cdf-history", "topk"]
    by_name = {r["sampler"]: r for r in summary}
    # cdf-history is exactly twice as fast: its ratio and its cost ratio are about 0.5
    assert float(by_name["cdf-history"]["ratio_geomean"]) == pytest.approx(0.5, abs=0.06)
    assert float(by_name["cdf-history"]["ratio_ci95_high"]) < 1.0
    assert by_name["cdf-history"]["seeds_reaching_target"] == "6"
    assert float(by_name["topk"]["ratio_geomean"]) > 1.0
    fixed = _rows(out / "fixed_budget.csv")
    assert {(r["sampler"], r["budget_share"]) for r in fixed} == {
        (s, share) for s in ("uniform", "cdf-history", "topk") for share in ("0.25", "0.5", "1")
    }
    assert (out / "comparison.png").stat().st_size > 20_000


def test_the_summary_states_the_conclusion_with_its_numbers(written) -> None:
    out, _ = written
    text = (out / "summary.md").read_text()
    conclusion = text.split("## Conclusion")[1].split("## ")[0]
    assert "cdf-history reached the target in 6 of 6 seeds" in conclusion
    assert "faster than uniform" in conclusion
    assert "topk" in conclusion and "slower than uniform" in conclusion
    assert "Only" not in conclusion  # 6 seeds: no warning about too few
    assert "Protocol overhead" in text and "% of the 1800 s of training measured" in text


def test_few_seeds_are_flagged() -> None:
    runs = synthetic_runs(seeds=3)
    from cdfis_desktop.core.experiments.comparison_summary import conclusion

    lines = conclusion(runs, judge_comparison(runs))
    assert any("Only 3 seed(s)" in line and "0.25" in line for line in lines)


def test_kept_comparisons_are_found_by_run(written, tmp_path: Path) -> None:
    out, runs = written
    project = tmp_path / "project"
    project.mkdir()
    assert stored_comparisons(project) == []
    kept = keep_in_project(project, out)
    assert kept.run_ids == tuple(sorted(r.run_id for r in runs.runs))
    assert comparison_of_run(project, runs.runs[3].run_id) == kept
    assert comparison_of_run(project, 10_000) is None
    assert kept.conclusion()[0].startswith("Target: validation balanced accuracy")
    assert [p.name for p in project.joinpath("comparisons").iterdir()] == [kept.name]


def test_keeping_fails_cleanly_when_a_file_is_missing(written, tmp_path: Path) -> None:
    out, _ = written
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "runs.csv").write_bytes((out / "runs.csv").read_bytes())
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(ExportError, match="cannot keep the comparison"):
        keep_in_project(project, partial)
    assert list((project / "comparisons").iterdir()) == []  # nothing half-copied
