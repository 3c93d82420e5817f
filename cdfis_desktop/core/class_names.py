"""Class labels and their display names (no dependencies; safe from any thread).

A patch label ``k >= 0`` is class ``names[k]`` of the project's class names (the store's
``class_names()``); :data:`UNLABELLED` (-1) is a patch no class covers. :func:`label_name`
is the one place that turns a label into text: the GUI, the reports, the exports and the
import summary all call it.
"""

from __future__ import annotations

from collections.abc import Sequence

UNLABELLED = -1
"""The label of a patch without a class (also "no prediction")."""


def label_name(names: Sequence[str], label: int, *, unlabelled: str = "unlabelled") -> str:
    """``names[label]``; ``class <label>`` past the end of ``names``; ``unlabelled`` for a
    negative label."""
    label = int(label)
    if label < 0:
        return unlabelled
    return names[label] if label < len(names) else f"class {label}"


def category_names(names: Sequence[str], n_classes: int) -> tuple[str, ...]:
    """The display names of labels ``0 .. n_classes - 1`` (a categorical legend)."""
    return tuple(label_name(names, k) for k in range(n_classes))
