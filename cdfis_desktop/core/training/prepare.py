"""Turning a project into training and validation index sets (checked before training).

Which patches a run may use: every labelled patch (label >= 0) whose stored split is not
``test`` (:func:`usable_patches`), with the review decisions in force when the run started
applied (relabelled patches train with their new label, excluded ones not at all;
``RunConfig.use_review``, :func:`reviewed_labels`). The patients named in ``RunConfig.test_groups`` are held
out as the run's test set. Validation: the patients named in ``RunConfig.val_groups`` when
given (the same split for every seed, as ``cdfis compare`` needs); else, when the project
already assigns some patches ``val``, that preset split; otherwise :func:`splits.choose_split`
splits by patient group (spatial fallback with a warning, see :mod:`.splits`). Training is
the rest. The split computed for a run is not written back to the patches; it is
reproducible from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.datasets import PatchDataset, SlidePatchDataset
from cdfis_desktop.core.training.splits import choose_split

DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class TrainingData:
    """``train_indices``/``val_indices``/``test_indices`` int64: positions in ``dataset``
    (``test_indices`` empty without ``RunConfig.test_groups``); ``num_classes`` outputs of
    the model; ``split_method`` ``groups``/``preset``/``group``/``spatial``; ``warning``
    "" or a sentence for the user."""

    dataset: PatchDataset
    train_indices: np.ndarray
    val_indices: np.ndarray
    num_classes: int
    split_method: str
    warning: str
    test_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass(frozen=True)
class UsablePatches:
    """The patches of a dataset a run may use: ``positions int64[n]`` in the dataset, with
    their patient group (``groups str[n]``; a slide without a group is ``slide-<id>``),
    ``labels int64[n]``, the stored split (``preset str[n]``) and ``slide_ids``,
    ``l0_x``, ``l0_y`` (int64[n], level-0 px) for the spatial fallback."""

    positions: np.ndarray
    groups: np.ndarray
    labels: np.ndarray
    preset: np.ndarray
    slide_ids: np.ndarray
    l0_x: np.ndarray
    l0_y: np.ndarray


def prepare_data(
    project: Project,
    config: RunConfig,
    dataset: PatchDataset | None = None,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> TrainingData:
    """Build (or check) the dataset and split it; nothing is trained or written.

    ``dataset``: an explicit dataset whose ``patch_ids`` are registered in ``project``
    (default: :func:`project_dataset`). The on-disk patch cache is reserved now (without
    room, training goes on without it and ``warning`` says so). Raises
    :class:`ConfigError` for no labelled patches, a single class, unknown patch ids or
    groups, validation and test groups that overlap, or a split that leaves training or
    validation empty, and :class:`SlideOpenError` for a slide file that is missing or
    unreadable.
    """
    dataset = project_dataset(project, config) if dataset is None else dataset
    labels = reviewed_labels(project, config, dataset.patch_ids, dataset.labels)
    if not np.array_equal(labels, dataset.labels):
        dataset = dataset.relabelled(labels)
    patches = usable_patches(project, dataset)
    num_classes = max(len(project.class_names()), int(patches.labels.max()) + 1)
    is_test = _in_groups(patches, config.test_groups, "test")
    rest = ~is_test
    if config.val_groups:
        overlap = sorted(set(config.val_groups) & set(config.test_groups or ()))
        if overlap:
            raise ConfigError(
                f"group(s) {', '.join(overlap)} are given for both validation and test"
            )
        is_val = _in_groups(patches, config.val_groups, "validation")
        method, warning = "groups", ""
    elif (patches.preset[rest] == "val").any():
        is_val = rest & (patches.preset == "val")
        method, warning = "preset", ""
    else:
        split = choose_split(
            patches.groups[rest],
            patches.slide_ids[rest],
            patches.l0_x[rest],
            patches.l0_y[rest],
            patches.labels[rest],
            val_fraction,
            config.seed,
        )
        is_val = np.zeros(len(rest), dtype=bool)
        is_val[rest] = split.is_val
        method, warning = split.method, split.warning
    positions = patches.positions
    train_indices, val_indices = positions[rest & ~is_val], positions[is_val]
    if train_indices.size == 0 or val_indices.size == 0:
        raise ConfigError(
            f"the split leaves {train_indices.size} training and {val_indices.size} validation "
            "patches; both must be non-empty (import more slides or change the splits)"
        )
    warnings = [w for w in (warning, dataset.reserve_storage()) if w]
    return TrainingData(
        dataset=dataset,
        train_indices=train_indices.astype(np.int64),
        val_indices=val_indices.astype(np.int64),
        num_classes=num_classes,
        split_method=method,
        warning=" ".join(warnings),
        test_indices=positions[is_test].astype(np.int64),
    )


def project_dataset(project: Project, config: RunConfig) -> PatchDataset:
    """The project's labelled patches outside the stored ``test`` split, read from their
    slides at ``config.input_px`` (preloaded when they fit in memory, through the project's
    patch cache). Every slide it reads is opened once now. Raises :class:`ConfigError` when
    there are none, :class:`SlideOpenError` for a missing or unreadable slide file."""
    table = project.patches()
    reviewed = reviewed_labels(project, config, table.id, table.label)
    usable = (reviewed >= 0) & (table.split != "test")
    if not usable.any():
        raise ConfigError(
            f"the project {project.folder} has no labelled patches to train on; import "
            "slides with annotations or labels first (cdfis import / cdfis import-patches)"
        )
    dataset = SlidePatchDataset.from_project(project, table.id[usable], input_px=config.input_px)
    dataset.check_slides()
    return dataset


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
    if not ids.size or not changes.any():
        return out
    order = np.argsort(ids, kind="stable")
    at = order[
        np.minimum(np.searchsorted(ids, decided.patch_id[changes], sorter=order), ids.size - 1)
    ]
    found = ids[at] == decided.patch_id[changes]
    out[at[found]] = decided.label[changes][found]
    return out


def usable_patches(project: Project, dataset: PatchDataset) -> UsablePatches:
    """The labelled patches of ``dataset`` outside the stored ``test`` split, with their
    groups. Raises :class:`ConfigError` for an empty dataset, patch ids not registered in
    ``project``, or fewer than two classes."""
    if len(dataset) == 0:
        raise ConfigError("the dataset is empty: there is nothing to train on")
    table = project.patches()
    rows = _rows_of(table.id, dataset.patch_ids, project)
    labels = dataset.labels
    keep = (labels >= 0) & (table.split[rows] != "test")
    classes = np.unique(labels[keep])
    if classes.size < 2:
        raise ConfigError(
            f"all {int(keep.sum())} labelled patches have the same class "
            f"({_class_name(project, classes)}); a classifier needs at least two classes"
        )
    usable = np.flatnonzero(keep)
    kept_rows = rows[usable]
    slide_group = {s.id: s.group or f"slide-{s.id}" for s in project.slides()}
    return UsablePatches(
        positions=usable.astype(np.int64),
        groups=np.array([slide_group[int(s)] for s in table.slide_id[kept_rows]]),
        labels=labels[usable].astype(np.int64),
        preset=table.split[kept_rows],
        slide_ids=table.slide_id[kept_rows],
        l0_x=table.l0_x[kept_rows],
        l0_y=table.l0_y[kept_rows],
    )


def _in_groups(patches: UsablePatches, names: tuple[str, ...] | None, role: str) -> np.ndarray:
    """``bool[n]``: the patches of the groups ``names`` (none when None); ConfigError for a
    group without usable patches."""
    if not names:
        return np.zeros(len(patches.groups), dtype=bool)
    known = set(patches.groups.tolist())
    unknown = sorted(set(names) - known)
    if unknown:
        listed = sorted(known)
        more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
        raise ConfigError(
            f"{role} group(s) {', '.join(unknown)} have no labelled patches; the groups "
            f"are: {', '.join(listed[:20])}{more}"
        )
    return np.isin(patches.groups, list(names))


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
