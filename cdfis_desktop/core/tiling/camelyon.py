"""Camelyon16 annotation groups -> classes.

Camelyon16 ASAP XML files put every polygon in a group (``PartOfGroup``): ``metastasis``
(in older files ``_0`` and ``_1``) outline tumour; ``negative`` (older ``_2``) outline
non-tumour areas drawn inside tumour outlines, which the Camelyon16 convention excludes from
the tumour. So here:

- ``Tumor`` = union of the tumour groups **minus** the union of the exclusion groups;
- exclusion regions are not a class of their own: a patch inside one is labelled only by
  another class covering it, else it stays unlabelled (the rest of the slide is not
  annotated either);
- any other group name is kept as it is.

Group names match case-insensitively. Pure functions (any thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from cdfis_desktop.core.errors import AnnotationError

TUMOR = "Tumor"
TUMOR_GROUPS = frozenset({"metastasis", "_0", "_1", "tumor", "tumour"})
EXCLUSION_GROUPS = frozenset({"negative", "_2"})


def camelyon_classes(
    path: Path, geometries: Mapping[str, BaseGeometry]
) -> tuple[dict[str, BaseGeometry], list[str]]:
    """(class name -> geometry, notes) from per-group geometries (level-0 px) of an ASAP
    file, by the rules of the module docstring. Files without Camelyon group names come back
    unchanged with no notes. Raises AnnotationError when only exclusion regions are left."""
    tumour = [g for name, g in geometries.items() if name.casefold() in TUMOR_GROUPS]
    excluded = [g for name, g in geometries.items() if name.casefold() in EXCLUSION_GROUPS]
    if not tumour and not excluded:
        return dict(geometries), []
    classes = {
        name: g
        for name, g in geometries.items()
        if name.casefold() not in TUMOR_GROUPS | EXCLUSION_GROUPS
    }
    notes = []
    if tumour:
        merged = shapely.union_all(tumour)
        if excluded:
            cut = shapely.union_all(excluded)
            kept = merged.difference(cut)
            notes.append(
                f"Camelyon16 groups: {len(excluded)} exclusion group(s) (negative/_2) cut "
                f"{merged.area - kept.area:.0f} px² out of {TUMOR}"
            )
            merged = kept
        if not merged.is_empty:
            classes[TUMOR] = merged
    elif excluded:
        notes.append("Camelyon16 exclusion regions (negative/_2) without tumour regions; ignored")
    if not classes:
        raise AnnotationError(
            f"{path}: has only Camelyon16 exclusion regions (negative/_2) and no tumour "
            "(metastasis/_0/_1) left to label; give the file with the tumour outlines"
        )
    return classes, notes
