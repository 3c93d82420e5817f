"""The validation split: by slide group (patient), never by patch.

Patches of one patient are strongly correlated; putting some in training and some in
validation leaks and inflates validation accuracy. So the split is over **groups**
(``SlideRecord.group``, the patient/case id; a slide without a group is its own group):

- :func:`split_by_group`: whole groups go to validation, in a seeded random order, until
  about ``val_fraction`` of the patches is reached. Among the first 64 seeded orders the
  first one whose validation set holds every class present (and leaves every class in
  training) is used, so AUC and balanced accuracy stay defined when possible.
- :func:`spatial_split` is the fallback when the project holds a single group: each slide
  is cut into a grid of square level-0 blocks (about 16 per slide) and whole blocks go to
  validation. Neighbouring patches still share tissue across block edges, so this split
  is optimistic; :class:`SplitResult` carries a warning saying so.

Both are deterministic for a given seed and input.

:func:`three_way_split` (for ``cdfis compare``) splits the patients into training,
validation and test, stratified by each patient's share of the rarest class, and refuses
a validation or test set that lacks a class (:func:`check_holds_every_class`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ConfigError

_ORDERS_TRIED = 64
_BLOCKS_PER_SIDE = 4


@dataclass(frozen=True)
class SplitResult:
    """``is_val bool[n]`` over the patches given; ``warning`` is "" or a sentence for the user."""

    is_val: np.ndarray
    method: str
    warning: str = ""


def split_by_group(
    groups: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """``is_val bool[n]``: whole groups (``groups[n]``, any hashable dtype) to validation."""
    unique, inverse = np.unique(groups, return_inverse=True)
    return _split_units(inverse, len(unique), labels, val_fraction, seed)


def spatial_split(
    slide_ids: np.ndarray,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
) -> np.ndarray:
    """``is_val bool[n]``: whole square level-0 blocks of each slide to validation."""
    units = np.zeros(len(slide_ids), dtype=np.int64)
    next_unit = 0
    for slide in np.unique(slide_ids):
        mine = slide_ids == slide
        x, y = l0_x[mine], l0_y[mine]
        side = max(int(x.max() - x.min()), int(y.max() - y.min()), 1) / _BLOCKS_PER_SIDE
        bx = np.minimum(((x - x.min()) / side).astype(np.int64), _BLOCKS_PER_SIDE - 1)
        by = np.minimum(((y - y.min()) / side).astype(np.int64), _BLOCKS_PER_SIDE - 1)
        units[mine] = next_unit + by * _BLOCKS_PER_SIDE + bx
        next_unit += _BLOCKS_PER_SIDE * _BLOCKS_PER_SIDE
    unique, inverse = np.unique(units, return_inverse=True)
    if len(unique) < 2:
        raise ConfigError(
            "all patches lie in one spot of one slide, so no validation set can be split off; "
            "import more tissue or slides"
        )
    return _split_units(inverse, len(unique), labels, val_fraction, seed)


def choose_split(
    groups: np.ndarray,
    slide_ids: np.ndarray,
    l0_x: np.ndarray,
    l0_y: np.ndarray,
    labels: np.ndarray,
    val_fraction: float,
    seed: int,
) -> SplitResult:
    """Split by group when there are at least two groups, else spatially (with a warning).

    All arrays have length n (one entry per labelled patch). Raises :class:`ConfigError`
    when ``val_fraction`` is not in (0, 1) or there are fewer than 2 patches.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be between 0 and 1 (got {val_fraction})")
    if len(labels) < 2:
        raise ConfigError("at least 2 labelled patches are needed to train and validate")
    if len(np.unique(groups)) >= 2:
        return SplitResult(split_by_group(groups, labels, val_fraction, seed), "group")
    is_val = spatial_split(slide_ids, l0_x, l0_y, labels, val_fraction, seed)
    return SplitResult(
        is_val,
        "spatial",
        "the project has a single patient/slide group, so validation uses spatial blocks of "
        "the same tissue; expect optimistic validation scores (add slides of other patients "
        "for an honest split)",
    )


def _split_units(
    unit_of: np.ndarray, n_units: int, labels: np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """Assign whole units to validation, trying seeded orders until classes are covered."""
    labels = np.asarray(labels)
    sizes = np.bincount(unit_of, minlength=n_units)
    target = val_fraction * len(unit_of)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    candidates = (
        _prefix_split(unit_of, sizes, rng.permutation(n_units), target)
        for _ in range(_ORDERS_TRIED)
    )
    first = next(candidates)
    if _covers(labels, first, classes):
        return first
    return next((c for c in candidates if _covers(labels, c, classes)), first)


def _prefix_split(
    unit_of: np.ndarray, sizes: np.ndarray, order: np.ndarray, target: float
) -> np.ndarray:
    """Validation = the shortest prefix of ``order`` reaching ``target`` patches, but never
    all units (at least one stays in training)."""
    cumulative = np.cumsum(sizes[order])
    n_val = min(max(int(np.searchsorted(cumulative, target)) + 1, 1), len(order) - 1)
    return np.isin(unit_of, order[:n_val])


def _covers(labels: np.ndarray, is_val: np.ndarray, classes: np.ndarray) -> bool:
    return bool(
        np.array_equal(np.unique(labels[is_val]), classes)
        and np.array_equal(np.unique(labels[~is_val]), classes)
    )


@dataclass(frozen=True)
class GroupSplit:
    """Patients (group names, sorted) of a three-way split; every patient is in one set."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def three_way_split(
    groups: np.ndarray,
    labels: np.ndarray,
    val: tuple[str, ...] | float,
    test: tuple[str, ...] | float,
    seed: int,
) -> GroupSplit:
    """Split the patients of ``groups[n]`` (one name per patch, ``labels int[n]``) into
    training, validation and test.

    ``val`` / ``test``: the patients to use (names), or a share of all patients (0 < share
    < 1, rounded to a whole number of patients, at least 1) drawn from the patients not
    named. The drawn patients are stratified: patients are ordered by their share of the
    rarest class (ties in a seeded random order), cut into consecutive strata, and each
    stratum gives validation and test patients in proportion to its size (largest
    remainders get the leftover places; within a stratum the patients are shuffled).
    Among the first 64 seeded draws the first whose validation and test sets each hold
    every class is used. Deterministic for a given seed.

    Raises :class:`ConfigError` for unknown or overlapping patients, shares that leave no
    training patient, or a validation or test set holding a single class.
    """
    groups = np.asarray(groups).astype(str)
    labels = np.asarray(labels)
    names, unit_of = np.unique(groups, return_inverse=True)
    fixed = {"validation": _named(names, val, "validation"), "test": _named(names, test, "test")}
    overlap = sorted(set(fixed["validation"]) & set(fixed["test"]))
    if overlap:
        raise ConfigError(f"patient(s) {', '.join(overlap)} are given for both validation and test")
    free = np.array([n not in fixed["validation"] and n not in fixed["test"] for n in names])
    n_val = _count(val, len(names), "validation")
    n_test = _count(test, len(names), "test")
    if n_val + n_test > int(free.sum()) - 1:
        raise ConfigError(
            f"{n_val} validation and {n_test} test patients leave no patient of {len(names)} "
            "to train on; ask for fewer"
        )
    classes = np.unique(labels)
    rarest = classes[np.argmin([np.sum(labels == c) for c in classes])]
    rare = np.bincount(unit_of, weights=(labels == rarest).astype(float), minlength=len(names))
    rare_share = rare / np.bincount(unit_of, minlength=len(names))
    rng = np.random.default_rng(seed)
    tries = _ORDERS_TRIED if n_val + n_test > 0 else 1  # nothing drawn: one possible split
    first_lack: tuple[str, tuple[str, ...], list[int]] | None = None
    for _ in range(tries):
        role = _stratified_roles(rare_share, free, n_val, n_test, rng)
        role[np.isin(names, fixed["validation"])] = 1
        role[np.isin(names, fixed["test"])] = 2
        split = GroupSplit(*(tuple(names[role == r].tolist()) for r in (0, 1, 2)))
        lacking = _lacking_classes(groups, labels, split)
        if not lacking:
            return split
        first_lack = first_lack or lacking[0]
    assert first_lack is not None  # the loop ran at least once
    raise _lacking_class_error(*first_lack)


def check_holds_every_class(groups: np.ndarray, labels: np.ndarray, split: GroupSplit) -> None:
    """ConfigError naming the set when the validation or test patients of ``split`` (or the
    training patients) lack a class present in ``labels[n]`` (``groups[n]`` per patch)."""
    lacking = _lacking_classes(groups, labels, split)
    if lacking:
        raise _lacking_class_error(*lacking[0])


def _lacking_class_error(role: str, members: tuple[str, ...], missing: list[int]) -> ConfigError:
    return ConfigError(
        f"the {role} set ({len(members)} patient(s)) has no patch of class(es) "
        f"{', '.join(map(str, missing))}, so its balanced accuracy and AUC mean nothing; "
        "choose other patients or a larger share"
    )


def _lacking_classes(
    groups: np.ndarray, labels: np.ndarray, split: GroupSplit
) -> list[tuple[str, tuple[str, ...], list[int]]]:
    """(role, its patients, the classes it lacks) for each set of ``split`` lacking one."""
    groups = np.asarray(groups).astype(str)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    lacking = []
    for role, members in (
        ("training", split.train),
        ("validation", split.val),
        ("test", split.test),
    ):
        present = np.unique(labels[np.isin(groups, list(members))])
        missing = [int(c) for c in classes if c not in present]
        if missing:
            lacking.append((role, members, missing))
    return lacking


def _named(names: np.ndarray, chosen: tuple[str, ...] | float, role: str) -> tuple[str, ...]:
    """The patients named for ``role`` (none for a share); ConfigError for unknown ones."""
    if isinstance(chosen, float):
        return ()
    unknown = sorted(set(chosen) - set(names.tolist()))
    if unknown:
        more = f" and {len(names) - 20} more" if len(names) > 20 else ""
        raise ConfigError(
            f"{role} patient(s) {', '.join(unknown)} have no labelled patches; the patients "
            f"are: {', '.join(names[:20].tolist())}{more}"
        )
    if not chosen:
        raise ConfigError(f"no {role} patients given")
    return tuple(chosen)


def _count(chosen: tuple[str, ...] | float, n_patients: int, role: str) -> int:
    """How many patients to draw for ``role`` (0 when they are named)."""
    if not isinstance(chosen, float):
        return 0
    if not 0.0 < chosen < 1.0:
        raise ConfigError(f"the {role} share must be between 0 and 1 (got {chosen})")
    return max(1, round(chosen * n_patients))


def _stratified_roles(
    key: np.ndarray, free: np.ndarray, n_val: int, n_test: int, rng: np.random.Generator
) -> np.ndarray:
    """``int8[n_patients]``: 0 train, 1 validation, 2 test for the ``free`` patients (the
    others 0), stratified by ``key float[n_patients]`` (see :func:`three_way_split`)."""
    role = np.zeros(len(key), dtype=np.int8)
    candidates = np.flatnonzero(free)
    if n_val + n_test == 0:
        return role
    shuffled = candidates[rng.permutation(len(candidates))]
    ordered = shuffled[np.argsort(key[shuffled], kind="stable")]
    # about one drawn patient of the smaller set per stratum, at least two patients each
    n_strata = max(1, min(min(n for n in (n_val, n_test) if n > 0), len(ordered) // 2))
    strata = np.array_split(ordered, n_strata)
    sizes = np.array([len(s) for s in strata])
    val_counts = _allocate(sizes, n_val, sizes, rng)
    test_counts = _allocate(sizes, n_test, sizes - val_counts, rng)
    for stratum, v, t in zip(strata, val_counts, test_counts, strict=True):
        members = stratum[rng.permutation(len(stratum))]
        role[members[:v]] = 1
        role[members[v : v + t]] = 2
    return role


def _allocate(
    sizes: np.ndarray, total: int, capacity: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``int[k]`` places per stratum summing to ``total``, proportional to ``sizes`` and at
    most ``capacity``: floors first, then the largest remainders (random tie-break)."""
    quota = total * sizes / sizes.sum()
    counts = np.minimum(np.floor(quota).astype(np.int64), capacity)
    remainder = quota - counts + rng.random(len(sizes)) * 1e-9
    while counts.sum() < total:
        open_ = counts < capacity
        chosen = int(np.argmax(np.where(open_, remainder, -np.inf)))
        counts[chosen] += 1
        remainder[chosen] -= 1.0
    return counts
