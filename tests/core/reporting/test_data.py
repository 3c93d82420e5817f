"""Run resolution and per-patch measurements read from a real project."""

from __future__ import annotations

import numpy as np
import pytest

from cdfis_desktop.core.errors import ConfigError, StoreError
from cdfis_desktop.core.heatmap.metrics import measurement_metrics
from cdfis_desktop.core.reporting.data import patch_measurements, resolve_run
from cdfis_desktop.core.storage import Project


def test_resolve_run_by_id_and_last(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        assert resolve_run(project, str(trained_project.run_id)).id == trained_project.run_id
        assert resolve_run(project, "last").id == max(
            trained_project.run_id, trained_project.other_run_id
        )


def test_resolve_run_errors(trained_project, tmp_path) -> None:
    with Project.open(trained_project.folder) as project:
        with pytest.raises(StoreError, match="no run 999; its runs are: 1, 2"):
            resolve_run(project, "999")
        with pytest.raises(ConfigError, match="'last'"):
            resolve_run(project, "newest")
    with Project.create(tmp_path / "empty") as empty, pytest.raises(StoreError, match="no runs"):
        resolve_run(empty, "last")


def test_patch_measurements_cover_every_patch(trained_project) -> None:
    with Project.open(trained_project.folder) as project:
        table = patch_measurements(project, trained_project.run_id)
        stats = project.favoured_patches(trained_project.run_id, 5)
    assert len(table) == trained_project.n_patches
    assert set(table.values) == {m.key for m in measurement_metrics()}
    assert np.all(np.diff(table.patch_id) > 0)
    train = table.split == "train"
    assert np.all(np.isnan(table.values["favour"][~train]))
    assert table.values["times_chosen"].sum() == 3 * 10 * 8
    for stat in stats:
        row = table.index_of(stat.patch_id)
        assert table.values["times_chosen"][row] == stat.times_chosen
        assert table.values["favour"][row] == pytest.approx(stat.favour, rel=1e-5)
    assert set(np.unique(table.prediction)) <= {0, 1}
