"""Work-arounds for defects of the PySide6 build the app runs on.

PySide6 6.12.0 on Python 3.11 drops one reference to ``True`` on every ``Signal.emit()``
without having taken it (reproduce: emit a signal in a loop and watch
``sys.getrefcount(True)`` fall by one per emit). After a few thousand emits - seconds of
panning, since pyqtgraph emits several signals per frame - the count reaches zero and
CPython aborts with "Fatal Python error: bool_dealloc". Python 3.12 made ``True``/``False``
immortal (PEP 683), which hides the defect; :func:`make_bools_immortal` does the same on
older Pythons by raising their reference counts far beyond what any session can drop.
"""

from __future__ import annotations

import ctypes
import sys

IMMORTAL_REFCOUNT = 1 << 60


def make_bools_immortal() -> None:
    """Give ``True`` and ``False`` a reference count no emit sequence can exhaust.

    No effect on Python >= 3.12, where both are immortal already. Call from the GUI thread
    before any signal is emitted (the GUI package does it on import)."""
    if sys.version_info >= (3, 12):
        return
    for value in (True, False):
        # ob_refcnt is the first field of every CPython object
        ctypes.c_ssize_t.from_address(id(value)).value = IMMORTAL_REFCOUNT
