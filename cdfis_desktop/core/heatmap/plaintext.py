"""Drawing user text (class, slide and run names) with matplotlib exactly as written.

Matplotlib reads a string with two ``$`` as mathtext: ``Tumor $_$`` raises a ValueError at
draw time and ``$x$`` is drawn as a formula. Names come from users' files, so every figure
that shows them is built inside :func:`literal_text`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def literal_text() -> Iterator[None]:
    """Within the block, new matplotlib texts draw ``$`` and ``\\`` as plain characters
    (``text.parse_math`` off; each Text keeps the setting it was created with).
    Thread rules: matplotlib's rcParams are global; figures are built in one thread at a
    time in this app (reports, exports), and the setting only turns mathtext off."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        yield
