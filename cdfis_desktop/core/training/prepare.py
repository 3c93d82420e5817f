"""Turning a project into training and validation index sets (checked before training).

Which patches train: every labelled patch (label >= 0) whose stored split is not
``test``, with the review decisions in force when the run started applied (relabelled
patches train with their new label, excluded ones not at all; ``RunConfig.use_review``). Validation: the patients named in ``RunConfig.val_groups`` when given (the same
split for every seed, as ``cdfis compare --val-groups`` needs); else, when the project
already assigns some patches ``val``, that preset split; otherwise :func:`splits.choose_split`
splits by patient group (spatial fallback with a warning, see :mod:`.splits`). The split
computed for a run is not written back to the patches; it is reproducible from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import PatchDataset, SlidePatchDataset
from cdfis_desktop.core.training.splits import choose_split

DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class TrainingData:
    """``train_indices``/``val_indices`` int64: positions in ``dataset``; ``num_classes``
    outputs of the model; ``split_method`` ``preset``/``group``/``spatial``; ``warning``
    "" or a sentence for the user."""

    dataset: PatchDataset
    train_indices: np.ndarray
    val_indices: np.ndarray
    num_classes: int
    split_method: str
    warning: str


def prepare_data(
    project: Project,
    config: RunConfig,
    dataset: PatchDataset | None = None,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> TrainingData:
    """Build (or check) the dataset and split it; nothing is trained or written.

    ``dataset``: an explicit dataset whose ``patch_ids`` are registered in ``project``
    (default: the project's labelled patches read from their slides, preloaded when they
    fit in memory). Raises :class:`ConfigError` for no labelled patches, a single class,
    unknown patch ids, or a split that leaves training or validation empty.
    """
    table = project.patches()
    if dataset is None:
        reviewed = reviewed_labels(project, config, table.id, table.label)
        usable = (reviewed >= 0) & (table.split != "test")
        if not usable.any():
            raise ConfigError(
                f"the project {project.folder} has no labelled patches to train on; import "
                "slides with annotations or labels first (cdfis import / cdfis import-patches)"
            )
        dataset = SlidePatchDataset.from_project(
            project, table.id[usable], input_px=config.input_px
        )
    if len(dataset) == 0:
        raise ConfigError("the dataset is empty: there is nothing to train on")
    labels = reviewed_labels(project, config, dataset.patch_ids, dataset.labels)
    if not np.array_equal(labels, dataset.labels):
        dataset = dataset.relabelled(labels)
    rows = _rows_of(table.id, dataset.patch_ids, project)
    labels = dataset.labels
    keep = (labels >= 0) & (table.split[rows] != "test")
    classes = np.unique(labels[keep])
    if classes.size < 2:
        raise ConfigError(
            f"all {int(keep.sum())} labelled patches have the same class "
            f"({_class_name(project, classes)}); a classifier needs at least two classes"
        )
    num_classes = max(len(project.class_names()), int(classes.max()) + 1)
    usable = np.flatnonzero(keep)
    preset = table.split[rows][usable]
    slide_group = {s.id: s.group or f"slide-{s.id}" for s in project.slides()}
    groups = np.array([slide_group[int(s)] for s in table.slide_id[rows][usable]])
    if config.val_groups:
        unknown = sorted(set(config.val_groups) - set(groups.tolist()))
        if unknown:
            raise ConfigError(
                f"validation group(s) {', '.join(unknown)} have no labelled patches in "
                f"{project.folder}; the groups are: {', '.join(sorted(set(groups.tolist())))}"
            )
        is_val = np.isin(groups, list(config.val_groups))
        method, warning = "groups", ""
    elif (preset == "val").any():
        is_val = preset == "val"
        method, warning = "preset", ""
    else:
        split = choose_split(
            groups,
            table.slide_id[rows][usable],
            table.l0_x[rows][usable],
            table.l0_y[rows][usable],
            labels[usable],
            val_fraction,
            config.seed,
        )
        is_val, method, warning = split.is_val, split.method, split.warning
    train_indices, val_indices = usable[~is_val], usable[is_val]
    if train_indices.size == 0 or val_indices.size == 0:
        raise ConfigError(
            f"the split leaves {train_indices.size} training and {val_indices.size} validation "
            "patches; both must be non-empty (import more slides or change the splits)"
        )
    return TrainingData(
        dataset=dataset,
        train_indices=train_indices.astype(np.int64),
        val_indices=val_indices.astype(np.int64),
        num_classes=num_classes,
        split_method=method,
        warning=warning,
    )


def reviewed_labels(
    project: Project, config: RunConfig, patch_ids: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """``labels`` int[n] of ``patch_ids`` int64[n] with the review decisions in force at
    ``config.review_as_of`` applied (relabelled: the new label; excluded: -1), as int64;
    unchanged when ``config.use_review`` is off or no time is set."""
    out = np.asarray(labels, dtype=np.int64).copy()
    if not config.use_review or config.review_as_of is None:
        return out
    decided = project.review_decisions(in_force_at=config.review_as_of)
    changes = np.isin(decided.action, ("relabel", "exclude"))
    ids = np.asarray(patch_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, decided.patch_id[changes], sorter=order)
    at = order[np.minimum(at, max(len(ids) - 1, 0))] if len(ids) else at
    found = ids[at] == decided.patch_id[changes] if len(ids) else np.zeros(0, bool)
    out[at[found]] = decided.label[changes][found]
    return out


def _rows_of(table_ids: np.ndarray, patch_ids: np.ndarray, project: Project) -> np.ndarray:
    """Rows of the (id-ordered) patch table holding ``patch_ids``; ConfigError when absent."""
    rows = np.searchsorted(table_ids, patch_ids)
    rows = np.minimum(rows, max(len(table_ids) - 1, 0))
    found = table_ids[rows] == patch_ids if len(table_ids) else np.zeros(len(patch_ids), bool)
    if not found.all():
        missing = patch_ids[~found][:5].tolist()
        raise ConfigError(
            f"patch id(s) {missing} of the dataset are not registered in the project "
            f"{project.folder}; register the patches before training on them"
        )
    return rows


def _class_name(project: Project, classes: np.ndarray) -> str:
    names = project.class_names()
    if classes.size == 0:
        return "none"
    label = int(classes[0])
    return names[label] if 0 <= label < len(names) else f"label {label}"
