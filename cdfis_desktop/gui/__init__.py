"""The desktop application: the only package that imports Qt (PySide6) and pyqtgraph."""

from cdfis_desktop.gui.pyside_compat import make_bools_immortal

make_bools_immortal()
