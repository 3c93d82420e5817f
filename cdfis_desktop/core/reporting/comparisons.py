"""Comparisons kept in a project, so the GUI and the PDF report can show them.

``cdfis compare`` copies its summary files (:data:`KEPT_FILES`; results.csv, which can be
large, stays in the ``--out`` folder only) into ``<project>/comparisons/<name>/``, where
``<name>`` is the time it finished and its run ids. The folder appears whole or not at
all (filled under a hidden name, then renamed). ``runs.csv`` names the comparison's runs.

Thread rules: any thread; reading only touches those files.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cdfis_desktop.core.errors import ExportError

COMPARISONS_DIR = "comparisons"
KEPT_FILES = ("summary.md", "summary.csv", "runs.csv", "fixed_budget.csv", "comparison.png")


@dataclass(frozen=True)
class StoredComparison:
    """One kept comparison: its folder and the ids of the runs it made."""

    folder: Path
    run_ids: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def summary_path(self) -> Path:
        return self.folder / "summary.md"

    @property
    def plot_path(self) -> Path:
        return self.folder / "comparison.png"

    def summary_text(self) -> str:
        """summary.md (Markdown)."""
        return self.summary_path.read_text(encoding="utf-8")

    def conclusion(self) -> list[str]:
        """The items of summary.md's Conclusion section, without their bullets."""
        lines, inside = [], False
        for line in self.summary_text().splitlines():
            if line.startswith("## "):
                inside = line.strip() == "## Conclusion"
            elif inside and line.startswith("- "):
                lines.append(line[2:])
        return lines


def keep_in_project(project_folder: Path, out_dir: Path) -> StoredComparison:
    """Copy the summary files of the comparison in ``out_dir`` into the project. Raises
    :class:`ExportError` when they cannot be copied (nothing is left half-copied)."""
    parent = Path(project_folder) / COMPARISONS_DIR
    partial = parent / f".{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.partial"
    try:
        run_ids = _run_ids(out_dir / "runs.csv")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        final = parent / (f"{stamp}-runs-{min(run_ids)}-{max(run_ids)}" if run_ids else stamp)
        partial.mkdir(parents=True, exist_ok=True)
        for file_name in KEPT_FILES:
            shutil.copyfile(out_dir / file_name, partial / file_name)
        os.replace(partial, final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(
            f"cannot keep the comparison in {parent}: {exc.strerror or exc}; the files in "
            f"{out_dir} are complete"
        ) from exc
    return StoredComparison(final, run_ids)


def stored_comparisons(project_folder: Path) -> list[StoredComparison]:
    """The project's kept comparisons, newest first (unreadable folders are skipped)."""
    parent = Path(project_folder) / COMPARISONS_DIR
    if not parent.is_dir():
        return []
    found = []
    for folder in sorted(parent.iterdir(), reverse=True):
        if folder.name.startswith(".") or not (folder / "summary.md").is_file():
            continue
        try:
            found.append(StoredComparison(folder, _run_ids(folder / "runs.csv")))
        except (OSError, ValueError, KeyError):
            continue
    return found


def comparison_of_run(project_folder: Path, run_id: int) -> StoredComparison | None:
    """The newest kept comparison that made run ``run_id`` (None: none did)."""
    return next((c for c in stored_comparisons(project_folder) if run_id in c.run_ids), None)


def _run_ids(runs_csv: Path) -> tuple[int, ...]:
    with runs_csv.open(newline="", encoding="utf-8") as handle:
        return tuple(sorted(int(row["run_id"]) for row in csv.DictReader(handle)))
