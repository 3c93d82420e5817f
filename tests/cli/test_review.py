"""``cdfis review`` end to end on a real trained project: queue CSV, decisions applied,
exported (CSV, QuPath GeoJSON) and used by the next ``cdfis train``; bad input exits 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.cli.main import main
from cdfis_desktop.core.config import RunConfig, SamplerConfig
from cdfis_desktop.core.reporting.review_files import QUEUE_COLUMNS
from cdfis_desktop.core.storage import Project, ReviewInput

TRAIN = ("--batch", "8", "--input-px", "32", "--device", "cpu", "--sampler", "uniform")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_slide) -> Path:
    """The synthetic slide imported as 32 px patches and one 2-epoch uniform run."""
    folder = tmp_path_factory.mktemp("review") / "project"
    assert main(
        [
            "import", "--project", str(folder), str(synthetic_slide.slide_path),
            "--annotations", str(synthetic_slide.annotations_path),
            "--patch-px", "32", "--mpp", "2.0",
        ]
    ) == 0  # fmt: skip
    assert main(["train", "--project", str(folder), "--epochs", "2", *TRAIN]) == 0
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_queue_csv_ranks_trained_patches_by_aum(trained: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "queue.csv"
    assert main(["review", "--project", str(trained), "--run", "last", "--top", "12",
                 "--csv", str(out)]) == 0  # fmt: skip
    assert "12 of " in capsys.readouterr().out
    rows = _rows(out)
    assert tuple(rows[0]) == QUEUE_COLUMNS and len(rows) == 12
    assert [int(r["rank"]) for r in rows] == list(range(1, 13))
    aum = [float(r["aum"]) for r in rows]
    assert aum == sorted(aum)
    with Project.open(trained) as project:
        table = project.patches()
        names = project.class_names()
    for r in rows:
        row = int(np.searchsorted(table.id, int(r["patch_id"])))
        assert (int(r["l0_x"]), int(r["l0_y"])) == (table.l0_x[row], table.l0_y[row])
        assert r["label"] == names[table.label[row]] and r["slide"].endswith(".tiff")
        assert r["flag"] == ("label error?" if float(r["aum"]) < 0 else r["flag"])


@pytest.mark.parametrize(
    ("rank", "column", "descending"),
    [("confidence", "confidence", False), ("final_loss", "final_loss", True)],
)
def test_queue_csv_follows_the_chosen_ranking(
    trained: Path, tmp_path: Path, capsys, rank: str, column: str, descending: bool
) -> None:
    out = tmp_path / "queue.csv"
    assert main(["review", "--project", str(trained), "--top", "20", "--rank", rank,
                 "--csv", str(out)]) == 0  # fmt: skip
    assert f"ranked by {rank}" in capsys.readouterr().out
    values = [float(r[column]) for r in _rows(out)]
    assert len(values) == 20 and values == sorted(values, reverse=descending)
    assert values != sorted(values, reverse=not descending)  # the order is not trivial


def test_an_unknown_ranking_exits_2_naming_the_choices(
    trained: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "queue.csv"
    assert main(["review", "--project", str(trained), "--rank", "loss", "--csv", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown ranking 'loss'")
    assert "aum, confidence, final_loss" in err[0] and not out.exists()


def test_the_rank_help_names_every_ranking(capsys) -> None:
    from cdfis_desktop.core.datamaps import RANKINGS

    with pytest.raises(SystemExit):
        main(["review", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in RANKINGS)


def test_decisions_round_trip_to_store_exports_and_the_next_run(
    trained: Path, tmp_path: Path, capsys
) -> None:
    queue = tmp_path / "queue.csv"
    assert main(["review", "--project", str(trained), "--csv", str(queue), "--top", "5"]) == 0
    rows = _rows(queue)
    with Project.open(trained) as project:
        names = project.class_names()
    relabelled, excluded, confirmed, skipped = (int(r["patch_id"]) for r in rows[:4])
    other = next(n for n in names if n != rows[0]["label"])
    fills = [("relabel", other, ""), ("exclude", "", "Pen"), ("confirm", "", ""),
             ("skip", "", "unsure")]  # fmt: skip
    for row, (decision, new_label, reason) in zip(rows, fills, strict=False):
        row.update(decision=decision, new_label=new_label, reason=reason)
    with queue.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=QUEUE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert main(["review", "--project", str(trained), "--apply", str(queue),
                 "--reviewer", "dr who"]) == 0  # fmt: skip
    assert "4 decisions by dr who stored" in capsys.readouterr().out

    decisions_csv = tmp_path / "decisions.csv"
    assert main(["review", "--project", str(trained), "--export-decisions",
                 str(decisions_csv)]) == 0  # fmt: skip
    exported = {int(r["patch_id"]): r for r in _rows(decisions_csv)}
    assert exported[relabelled]["action"] == "relabel" and exported[relabelled]["label"] == other
    assert exported[relabelled]["original_label"] == rows[0]["label"]
    assert exported[excluded]["reason"] == "pen" and exported[skipped]["reason"] == "unsure"
    assert {r["reviewer"] for r in exported.values()} == {"dr who"}

    geojson = tmp_path / "geo"
    assert main(["review", "--project", str(trained), "--geojson", str(geojson)]) == 0
    features = [
        f for path in geojson.glob("*.geojson") for f in json.loads(path.read_text())["features"]
    ]
    by_patch = {f["properties"]["measurements"]["patch_id"]: f for f in features}
    assert set(by_patch) == {relabelled, excluded, confirmed}  # skips change nothing
    assert by_patch[relabelled]["properties"]["classification"]["name"] == other
    assert by_patch[relabelled]["properties"]["review"]["decision"] == "relabel"
    assert by_patch[excluded]["properties"]["review"]["reason"] == "pen"

    export_csv = tmp_path / "all.csv"
    assert main(["export", "--project", str(trained), "--format", "csv", "-o",
                 str(export_csv)]) == 0  # fmt: skip
    review_of = {int(r["patch_id"]): r["review_decision"] for r in _rows(export_csv)}
    assert review_of[excluded] == "exclude" and review_of[relabelled] == "relabel"

    # the next run trains without the excluded patch, unless told to ignore the review
    assert main(["train", "--project", str(trained), "--steps", "2", *TRAIN]) == 0
    assert main(["train", "--project", str(trained), "--steps", "2", "--ignore-review",
                 *TRAIN]) == 0  # fmt: skip
    with Project.open(trained) as project:
        reviewed, ignored = project.runs()[1], project.runs()[0]
        assert reviewed.config["use_review"] and not ignored.config["use_review"]
        predicted = {}
        for run in (reviewed, ignored):
            measured = project.slide_measurements(run.id, 1)
            predicted[run.id] = set(measured.patch_id[measured.prediction >= 0].tolist())
    assert excluded not in predicted[reviewed.id] and excluded in predicted[ignored.id]

    undo = tmp_path / "undo.csv"
    undo.write_text(f"patch_id,decision\n{excluded},undo\n")
    assert main(["review", "--project", str(trained), "--apply", str(undo)]) == 0
    with Project.open(trained) as project:
        in_force = project.review_decisions(in_force_at=float("inf"))
        assert excluded not in in_force.patch_id.tolist()
        assert len(project.review_decisions()) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("patch_id,decision\n1,delete\n", "unknown decision"),
        ("patch_id,decision\nabc,confirm\n", "is not a number"),
        ("patch_id,decision,new_label\n1,relabel,nonsense\n", "relabel needs new_label"),
        ("patch,decision\n1,confirm\n", "missing column"),
        ("patch_id,decision,reason\n1,confirm,\n999999,exclude,pen\n", "no such patch"),
    ],
)
def test_bad_decisions_exit_2_with_one_line_and_store_nothing(
    trained: Path, tmp_path: Path, capsys, content: str, message: str
) -> None:
    with Project.open(trained) as project:
        before = len(project.review_decisions())
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["review", "--project", str(trained), "--apply", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    with Project.open(trained) as project:
        assert len(project.review_decisions()) == before


def test_a_run_without_dynamics_or_an_unknown_run_exits_2(
    trained: Path, tmp_path: Path, capsys
) -> None:
    assert main(["review", "--project", str(trained), "--run", "99", "--csv",
                 str(tmp_path / "q.csv")]) == 2  # fmt: skip
    assert "has no run 99" in capsys.readouterr().err
    with Project.open(trained) as project:
        run_id = project.create_run(
            RunConfig(sampler=SamplerConfig(rule="uniform")), n_train=1, device="cpu"
        )
        project.set_run_status(run_id, "failed")
    assert main(["review", "--project", str(trained), "--run", str(run_id), "--csv",
                 str(tmp_path / "q.csv")]) == 2  # fmt: skip
    assert "recorded no training dynamics" in capsys.readouterr().err
    assert not (tmp_path / "q.csv").exists()


def test_report_has_the_data_map_flagged_patches_and_decisions(
    trained: Path, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    with Project.open(trained) as project:
        first_run = min(r.id for r in project.runs())
        if not len(project.review_decisions()):
            patch_id = int(project.patches().id[0])
            project.add_review_decisions([ReviewInput(patch_id, "confirm", "ana")])
        decisions = len(project.review_decisions())
    pdf = tmp_path / "report.pdf"
    assert main(["report", "--project", str(trained), "--run", str(first_run), "-o",
                 str(pdf)]) == 0  # fmt: skip
    pages = [page.extract_text() for page in PdfReader(pdf).pages]

    def page(title: str) -> str:
        found = [text for text in pages if title in text]
        assert len(found) == 1, title
        return found[0]

    assert "trained patches over 2 epochs" in page(f"Run {first_run}: data map of training")
    assert "AUM" in page(f"Run {first_run}: the 6 likeliest label errors")
    assert f"{decisions} decisions" in page("Review decisions") == pages[-1]
