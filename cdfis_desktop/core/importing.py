"""Import workflows used by the CLI and the GUI: whole slides (+ annotations or a labels
CSV) and patch sets (laid into mosaic slides).

Both check every input before writing anything (files open, annotations parse and fall
inside their slide, CSV columns and values are sane), so bad input leaves the project
untouched. Then each slide is one unit: its slide row and all its patches are stored, or,
if anything fails, the slide row (and a mosaic file written for it) is removed again before
the error propagates; slides imported before it stay.

Class names: patches store class numbers; the project's ``class_names`` give their names.
Without a class map, names already in the project keep their numbers and new names are
appended in sorted order (``exclude``/``ignore`` names drop their patches). With a class
map that disagrees with the names of a project that already has patches,
:class:`LabelsError` is raised before anything is written.

Thread rules: call from one worker thread; ``progress`` is called from that thread (once
per slide and per stage of a slide: tissue, labels, storing) and ``cancel`` is checked
between those stages and while tissue is read (a cancelled import keeps the slides
finished so far, registers nothing of the slide it was working on, and raises
``Cancelled``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cdfis_desktop.core import scratch
from cdfis_desktop.core.class_names import label_name
from cdfis_desktop.core.config import TilingConfig
from cdfis_desktop.core.errors import AnnotationError, ConfigError, LabelsError
from cdfis_desktop.core.progress import CancelToken, Progress, ProgressCallback
from cdfis_desktop.core.slides import open_slide
from cdfis_desktop.core.tiling.annotations import (
    Annotations,
    check_annotation_bounds,
    keep_annotations,
    load_annotations,
)
from cdfis_desktop.core.tiling.labels import (
    EXCLUDED,
    UNLABELLED,
    class_geometries_by_value,
    class_names_for,
    is_exclude_name,
    label_patches,
    lookup_class,
    read_patch_table,
)
from cdfis_desktop.core.tiling.patchsets import read_patch_set, safe_slide_name, write_mosaic
from cdfis_desktop.core.tiling.tissue import TissueMask, check_tissue_readable, detect_tissue

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project

MAX_PATCH_UPSCALE = 4.0
"""Largest enlargement of slide pixels into grid patches an import accepts."""

DEFAULT_PATCH_SET_MPP = 4.0
"""µm/px given to patch-set mosaics when the user names none: the IDC patches were taken
at about 2.5x, and a 40x scan (0.25 µm/px) downsampled 16x is 4 µm/px."""


@dataclass(frozen=True)
class SlideImport:
    """What one imported slide contributed: ``per_class`` maps class number (-1 =
    unlabelled) -> patch count; ``excluded`` patches were dropped by an exclude class."""

    slide_id: int
    path: str
    group: str
    patches: int
    per_class: dict[int, int]
    excluded: int = 0


@dataclass(frozen=True)
class ImportSummary:
    """Result of an import: the slides added, skipped files, the project's class names
    afterwards, and notes (repaired annotations, missing mpp...) to show as warnings."""

    slides: list[SlideImport]
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def patch_count(self) -> int:
        return sum(s.patches for s in self.slides)

    def per_class(self) -> dict[int, int]:
        total: Counter[int] = Counter()
        for s in self.slides:
            total.update(s.per_class)
        return dict(sorted(total.items()))

    def class_label(self, value: int) -> str:
        return label_name(self.class_names, value)

    def lines(self) -> list[str]:
        """A human-readable summary: one line per slide, then totals per class."""
        out = []
        for s in self.slides:
            counts = ", ".join(f"{self.class_label(v)} {n}" for v, n in sorted(s.per_class.items()))
            dropped = f"; {s.excluded} excluded" if s.excluded else ""
            out.append(f"{Path(s.path).name}: {s.patches} patches ({counts or 'none'}{dropped})")
        totals = ", ".join(f"{self.class_label(v)} {n}" for v, n in self.per_class().items())
        out.append(
            f"total: {len(self.slides)} slide(s), {self.patch_count} patches ({totals or 'none'})"
        )
        out.extend(f"skipped: {s}" for s in self.skipped)
        return out


# -- whole slides ----------------------------------------------------------------------------


@dataclass
class _SlidePlan:
    path: Path
    annotations: Annotations | None = None
    csv_rows: np.ndarray | None = None  # indices into the labels table
    notes: list[str] = field(default_factory=list)


def import_slides(
    project: Project,
    slide_paths: Sequence[str | Path],
    *,
    annotations: Sequence[str | Path] | Mapping[str | Path, str | Path] | None = None,
    labels_csv: str | Path | None = None,
    tiling: TilingConfig,
    class_map: Mapping[str, int] | None = None,
    mpp_override: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportSummary:
    """Register slides and their patches in ``project`` (a ``core.storage.Project``).

    Patches come from the tissue grid (``tiling``), labelled by ``annotations`` (a list
    matched to slides by file stem — ``a.svs`` <- ``a.geojson`` / ``a.xml`` /
    ``a.svs.geojson``; a single file with a single slide pairs regardless — or an explicit
    ``{slide: annotation}`` mapping), or are the rows of ``labels_csv`` (columns ``x, y,
    label`` in level-0 px, optional ``width``/``height`` = patch side, and a ``slide``
    column naming the slide file when several slides are imported; tissue fraction is then
    recorded as 1). Slides already in the project (same fingerprint) with their patches
    are skipped; one registered without patches (an import killed between the two writes)
    is removed and imported again, with a note. Raises SlideOpenError, AnnotationError, LabelsError, ConfigError before writing anything
    for bad input.
    """
    tiling.validate()
    paths = [Path(p).expanduser() for p in slide_paths]
    if not paths:
        raise LabelsError("no slide given; name at least one slide file")
    if annotations is not None and labels_csv is not None:
        raise LabelsError(
            "give annotations or a labels CSV, not both: both would label the patches"
        )
    plans = [_SlidePlan(p) for p in paths]
    if annotations is not None:
        _pair_annotations(plans, annotations, progress)
    table = None
    if labels_csv is not None:
        table = read_patch_table(labels_csv, required=("x", "y", "label"))
        _assign_csv_rows(plans, table)

    known = {s.fingerprint: s.id for s in project.slides()}
    with_patches = set(np.unique(project.patches().slide_id).tolist())
    checked: list[tuple[_SlidePlan, str]] = []
    skipped: list[str] = []
    unfinished: list[int] = []
    planned: set[str] = set()
    for plan in plans:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reader = open_slide(plan.path, mpp_override=mpp_override)
        plan.notes.extend(f"{plan.path.name}: {w.message}" for w in caught)
        with reader:
            fingerprint = reader.fingerprint()
            if plan.annotations is not None:
                check_annotation_bounds(plan.annotations, *reader.dimensions)
            if plan.csv_rows is None:  # tiled from its tissue: that read must fit
                _check_patch_resolution(plan.path, reader, tiling)
                check_tissue_readable(reader)
            else:
                _check_csv_rows(table, plan.csv_rows, reader.dimensions)
        slide_id = known.get(fingerprint)
        if fingerprint in planned or slide_id in with_patches:
            skipped.append(f"{plan.path}: already in the project")
            continue
        if slide_id is not None:  # registered, but killed before its patches were stored
            unfinished.append(slide_id)
            plan.notes.append(f"{plan.path.name}: left unfinished by an interrupted import; redone")
        planned.add(fingerprint)
        checked.append((plan, fingerprint))

    names: list[str] = []
    for plan, _ in checked:
        if plan.annotations is not None:
            names.extend(plan.annotations.class_names)
    if table is not None:
        names.extend(table.label_names())
    mapping, class_names = _plan_classes(project, sorted(set(names)), class_map)
    csv_labels = table.labels(mapping)[0] if table is not None else None
    _apply_class_names(project, class_names, [csv_labels] if csv_labels is not None else [])
    for slide_id in unfinished:
        project.delete_slide(slide_id)

    results: list[SlideImport] = []
    notes: list[str] = [n for plan in plans for n in plan.notes]
    for number, (plan, fingerprint) in enumerate(checked):

        def stage(message: str, number: int = number) -> None:
            if progress is not None:
                progress(Progress(number, len(checked), message))
            if cancel is not None:
                cancel.raise_if_cancelled()

        stage(f"importing {plan.path.name}")
        results.append(
            _import_one_slide(
                project,
                plan,
                fingerprint,
                tiling,
                mapping,
                table,
                csv_labels,
                mpp_override,
                notes,
                stage,
                cancel,
            )
        )
    if progress is not None:
        progress(Progress(len(checked), len(checked), "import finished"))
    return ImportSummary(results, project.class_names(), skipped, notes)


def _import_one_slide(
    project: Project,
    plan: _SlidePlan,
    fingerprint: str,
    tiling: TilingConfig,
    mapping: dict[str, int],
    table: Any,
    csv_labels: np.ndarray | None,
    mpp_override: float | None,
    notes: list[str],
    stage: Callable[[str], None],
    cancel: CancelToken | None,
) -> SlideImport:
    """Tile, label and store one slide. ``stage(message)`` reports progress and raises
    ``Cancelled`` when cancelled (between the stages; ``cancel`` is also checked while the
    tissue is read), so a cancel stops within a second or so and before the slide is
    registered; a slide of 100,000 x 100,000 px takes about 10 s of CPU."""
    from cdfis_desktop.core.tiling.grid import build_patch_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing-mpp warnings were collected in the checks
        reader = open_slide(plan.path, mpp_override=mpp_override)
    with reader:
        l0_per_px = tiling.mpp / reader.effective_mpp
        if plan.csv_rows is not None and csv_labels is not None:
            rows = plan.csv_rows
            # bounds were checked before anything was written (_check_csv_rows)
            l0_x = np.rint(table.numbers("x")[rows]).astype(np.int64)
            l0_y = np.rint(table.numbers("y")[rows]).astype(np.int64)
            default_size = round(tiling.patch_px * l0_per_px)
            sides = [table.numbers(c, minimum=1)[rows] for c in ("width", "height") if table.has(c)]
            l0_size = np.rint(np.max(sides, axis=0)).astype(np.int64) if sides else default_size
            label = csv_labels[rows]
            tissue = np.ones(rows.size)
        else:
            stage(f"{plan.path.name}: detecting tissue")
            detected = detect_tissue(reader, stain=tiling.stain, cancel=cancel)
            grid = build_patch_grid(reader, tiling, detected)
            notes.extend(_tissue_notes(plan.path, tiling, detected, len(grid)))
            l0_x, l0_y, l0_size = grid.l0_x, grid.l0_y, grid.l0_size
            tissue = grid.tissue_fraction
            label = np.full(l0_x.shape[0], UNLABELLED, dtype=np.int64)
            if plan.annotations is not None:
                stage(f"{plan.path.name}: labelling {len(grid)} patches")
                by_value, unmapped = class_geometries_by_value(plan.annotations.geometries, mapping)
                if unmapped:
                    notes.append(
                        f"{plan.annotations.path.name}: class(es) {', '.join(unmapped)} not in the "
                        "class map; their areas stay unlabelled"
                    )
                label = label_patches(
                    l0_x, l0_y, l0_size, by_value, min_coverage=tiling.min_label_coverage
                ).label
        keep = label != EXCLUDED
        stage(f"{plan.path.name}: storing {int(keep.sum())} patches")
        slide_id = project.add_slide(
            plan.path.resolve(),
            fingerprint=fingerprint,
            width=reader.dimensions[0],
            height=reader.dimensions[1],
            mpp=reader.mpp,
            mpp_overridden=mpp_override is not None,
            vendor=reader.vendor or "",
            group=plan.path.stem,
        )
    _add_patches_or_remove_slide(
        project,
        slide_id,
        l0_x=np.asarray(l0_x)[keep],
        l0_y=np.asarray(l0_y)[keep],
        l0_size=np.broadcast_to(np.asarray(l0_size), keep.shape)[keep],
        patch_px=tiling.patch_px,
        mpp=tiling.mpp,
        label=label[keep],
        tissue_fraction=np.broadcast_to(np.asarray(tissue), keep.shape)[keep],
    )
    if plan.annotations is not None:
        keep_annotations(project.folder, slide_id, plan.annotations.path)
    return SlideImport(
        slide_id,
        str(plan.path),
        plan.path.stem,
        int(keep.sum()),
        _counts(label[keep]),
        int((~keep).sum()),
    )


def _check_patch_resolution(path: Path, reader: Any, tiling: TilingConfig) -> None:
    """Raise ConfigError when grid patches would be blown up more than
    :data:`MAX_PATCH_UPSCALE` times from the slide's pixels (a wrong mpp in the file, often
    a 72 dpi default read as 352.8 µm/px, or a patch mpp far finer than the scan)."""
    upscale = reader.effective_mpp / tiling.mpp
    if upscale > MAX_PATCH_UPSCALE:
        raise ConfigError(
            f"{path.name} has {reader.effective_mpp:g} µm/px ({reader.mpp_source}), so a "
            f"{tiling.patch_px} px patch at {tiling.mpp:g} µm/px would be "
            f"{tiling.patch_px / upscale:.3g} slide pixels enlarged {upscale:.0f}x; give the "
            "slide's real resolution (--slide-mpp) or patches at a coarser mpp (at least "
            f"{reader.effective_mpp / MAX_PATCH_UPSCALE:.3g} µm/px)"
        )


def _tissue_notes(path: Path, tiling: TilingConfig, tissue: TissueMask, patches: int) -> list[str]:
    """Warnings about tissue detection: a slide taken for fluorescence by ``auto``, and a
    slide on which no patch reached the tissue threshold."""
    notes = []
    if tiling.stain == "auto" and tissue.stain == "fluorescence":
        notes.append(
            f"{path.name} looks like a fluorescence slide (dark background): tissue was found "
            "by brightness, not by the H&E rule; choose the brightfield rule (--stain "
            "brightfield) if it is not"
        )
    if patches == 0:
        notes.append(
            f"{path.name}: no patch has {tiling.min_tissue:.0%} tissue by the {tissue.stain} "
            f"rule ({float(tissue.mask.mean()):.1%} of the slide was found to be tissue); "
            "lower the minimum tissue (0 keeps every patch) or choose another stain rule"
        )
    return notes


def _add_patches_or_remove_slide(project: Project, slide_id: int, **columns: Any) -> None:
    try:
        project.add_patches(slide_id, **columns)
    except BaseException:
        project.delete_slide(slide_id)
        raise


def _counts(labels: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def _check_csv_rows(table: Any, rows: np.ndarray, size: tuple[int, int]) -> None:
    """Refuse CSV rows whose patch starts outside the slide (``size`` = level-0 w, h) or
    whose stated side is larger than the slide; done on the float values, before any
    cast to integers (which would overflow on e.g. ``1e300``)."""
    if rows.size == 0:
        return
    l0_x, l0_y = table.numbers("x")[rows], table.numbers("y")[rows]
    outside = (l0_x >= size[0]) | (l0_y >= size[1])
    if outside.all():
        raise LabelsError(
            f"{table.path}: every patch lies outside the slide ({size[0]} x {size[1]} level-0 "
            f"px; x up to {l0_x.max():.6g}, y up to {l0_y.max():.6g}); are x and y level-0 "
            "pixels?"
        )
    if outside.any():
        raise LabelsError(
            f"{table.path}: {int(outside.sum())} patch(es) start outside the slide "
            f"({size[0]} x {size[1]} level-0 px); remove them or fix their coordinates"
        )
    for column in ("width", "height"):
        if table.has(column):
            sides = table.numbers(column, minimum=1)[rows]
            if sides.max() > max(size):
                row = int(rows[int(np.argmax(sides))])
                raise LabelsError(
                    f"{table.path}: row {row + 2}, column {column!r}: {sides.max():.6g} is "
                    f"larger than the slide ({size[0]} x {size[1]} level-0 px)"
                )


def _slide_keys(path: Path) -> set[str]:
    """Names an annotation or CSV row may use for a slide: file name, stem, stem of stem."""
    return {path.name.casefold(), path.stem.casefold(), Path(path.stem).stem.casefold()}


def _pair_annotations(
    plans: list[_SlidePlan],
    annotations: Sequence[str | Path] | Mapping[str | Path, str | Path],
    progress: ProgressCallback | None,
) -> None:
    if isinstance(annotations, Mapping):
        by_slide = {Path(k).expanduser().resolve(): Path(v) for k, v in annotations.items()}
        for plan in plans:
            target = by_slide.pop(plan.path.resolve(), None)
            if target is not None:
                plan.annotations = load_annotations(target, progress=progress)
        if by_slide:
            raise AnnotationError(
                f"annotations given for slide(s) not imported: {', '.join(map(str, by_slide))}"
            )
        return
    files = [Path(a).expanduser() for a in annotations]
    if len(files) == 1 and len(plans) == 1:
        plans[0].annotations = load_annotations(files[0], progress=progress)
        return
    for file in files:
        stem_keys = {file.stem.casefold(), Path(file.stem).stem.casefold()}
        matches = [p for p in plans if _slide_keys(p.path) & stem_keys]
        if len(matches) != 1:
            raise AnnotationError(
                f"{file}: matches {len(matches)} of the slides by name; name the annotation "
                "file after its slide (slide.svs -> slide.geojson or slide.xml)"
            )
        if matches[0].annotations is not None:
            raise AnnotationError(
                f"{file}: slide {matches[0].path.name} already has an annotation file"
            )
        matches[0].annotations = load_annotations(file, progress=progress)


def _assign_csv_rows(plans: list[_SlidePlan], table: Any) -> None:
    if not table.has("slide"):
        if len(plans) > 1:
            raise LabelsError(
                f"{table.path}: has no 'slide' column, but {len(plans)} slides are imported; "
                "add a slide column naming each row's slide file"
            )
        plans[0].csv_rows = np.arange(table.rows)
        return
    cells = [c.casefold() for c in table.columns["slide"]]
    claimed = np.zeros(table.rows, dtype=bool)
    for plan in plans:
        keys = _slide_keys(plan.path)
        rows = np.array(
            [i for i, c in enumerate(cells) if c in keys or Path(c).name in keys], dtype=np.int64
        )
        claimed[rows] = True
        plan.csv_rows = rows
        if rows.size == 0:
            plan.notes.append(
                f"{table.path.name}: no rows for slide {plan.path.name}; no patches added"
            )
    if not claimed.all():
        row = int(np.flatnonzero(~claimed)[0])
        raise LabelsError(
            f"{table.path}: row {row + 2} names slide {table.columns['slide'][row]!r}, which is "
            "not among the slides imported"
        )


def _plan_classes(
    project: Project, names: list[str], class_map: Mapping[str, int] | None
) -> tuple[dict[str, int], list[str]]:
    """(class map for this import, the project's class names after it). Writes nothing;
    raises LabelsError when the map would renumber the classes of existing patches."""
    existing = project.class_names()
    if class_map is None:
        mapping = {name: value for value, name in enumerate(existing)}
        for name in names:
            if is_exclude_name(name):
                mapping[name] = EXCLUDED
            elif lookup_class(mapping, name) is None:
                mapping[name] = max([v for v in mapping.values() if v >= 0], default=-1) + 1
    else:
        mapping = dict(class_map)
    wanted = class_names_for(mapping) or existing
    if existing and wanted[: len(existing)] != existing and len(project.patches()) > 0:
        raise LabelsError(
            f"the project's classes are {', '.join(existing)} but this import maps "
            f"{', '.join(wanted)}; give a class map that keeps the existing numbers"
        )
    return mapping, wanted


def _apply_class_names(project: Project, names: list[str], labels: Sequence[np.ndarray]) -> None:
    """Store ``names``, extended with ``class k`` for numbers used but not named."""
    top = max((int(v.max()) for v in labels if v.size), default=-1)
    names = list(names) + [label_name(names, v) for v in range(len(names), top + 1)]
    if names != project.class_names():
        project.set_class_names(names)


# -- patch sets ------------------------------------------------------------------------------


def import_patch_set(
    project: Project,
    csv_path: str | Path,
    root: str | Path,
    *,
    group_by: str | None = None,
    mpp: float = DEFAULT_PATCH_SET_MPP,
    class_map: Mapping[str, int] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportSummary:
    """Lay each group of a patch-set CSV into a mosaic slide ``<project>/slides/<group>.tiff``
    (``mpp`` µm/px) and register it with one patch per CSV row (``l0_size`` = the larger
    image side, ``patch_px`` = ``l0_size``, tissue fraction 1, slide group = the group name,
    source = the image file as the CSV names it).
    Numeric labels are used as class numbers (``class_map`` then only names them, e.g.
    ``{"non-IDC": 0, "IDC": 1}``); text labels go through the class map.

    A rerun finishes an interrupted import: groups whose slide is registered with its
    patches are skipped (listed in ``skipped``); a mosaic written but not registered, or
    registered without patches, is written again (listed in ``notes``); scratch files of
    the killed import are deleted. Raises LabelsError (bad CSV or images) or ConfigError
    before writing anything.
    """
    if not mpp > 0:
        raise LabelsError(f"the mosaic mpp must be positive (got {mpp})")
    names = read_patch_table(csv_path, required=("label",)).label_names()
    mapping, class_names = _plan_classes(project, names, class_map)
    patch_set = read_patch_set(csv_path, root, group_by=group_by, class_map=mapping)

    project.slides_dir.mkdir(parents=True, exist_ok=True)
    scratch.remove(scratch.orphans_in([project.slides_dir]))  # a killed import's scratch
    registered = {s.file.resolve(): s.id for s in project.slides()}
    ids, counts = np.unique(project.patches().slide_id, return_counts=True)
    patch_count = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    todo: list[tuple[Any, Path]] = []
    unfinished: list[int] = []
    skipped: list[str] = []
    notes: list[str] = []
    used: set[str] = set()
    for group in patch_set.groups:
        name = safe_slide_name(group.name)
        while name.casefold() in used:
            name += "_"
        used.add(name.casefold())
        target = (project.slides_dir / f"{name}.tiff").resolve()
        slide_id = registered.get(target)
        if slide_id is not None and patch_count.get(slide_id, 0) > 0:
            skipped.append(
                f"{target.name}: group {group.name!r} is already imported (to import it "
                f"again, first: cdfis slides remove --project DIR {slide_id})"
            )
            continue
        if slide_id is not None:  # registered, but killed before its patches were
            unfinished.append(slide_id)
        if slide_id is not None or target.exists():
            notes.append(f"{target.name}: left unfinished by an interrupted import; redone")
        todo.append((group, target))

    _apply_class_names(project, class_names, [g.label for g in patch_set.groups])
    for slide_id in unfinished:
        project.delete_slide(slide_id)
    results: list[SlideImport] = []
    total = len(todo)
    for number, (group, target) in enumerate(todo):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(
                Progress(number, total, f"building mosaic {group.name} ({len(group)} patches)")
            )
        results.append(_import_group(project, group, target, mpp))
    if progress is not None:
        progress(Progress(total, total, "import finished"))
    return ImportSummary(results, project.class_names(), skipped, notes)


def _import_group(project: Project, group: Any, target: Path, mpp: float) -> SlideImport:
    write_mosaic(group, target, mpp)
    try:
        with open_slide(target) as reader:
            slide_id = project.add_slide(
                target,
                fingerprint=reader.fingerprint(),
                width=reader.dimensions[0],
                height=reader.dimensions[1],
                mpp=reader.mpp,
                vendor=reader.vendor or "",
                group=group.name,
            )
        side = np.maximum(group.width, group.height)
        _add_patches_or_remove_slide(
            project,
            slide_id,
            l0_x=group.l0_x,
            l0_y=group.l0_y,
            l0_size=side,
            patch_px=side,
            mpp=mpp,
            label=group.label,
            tissue_fraction=1.0,
            source=group.sources,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return SlideImport(slide_id, str(target), group.name, len(group), _counts(group.label))
