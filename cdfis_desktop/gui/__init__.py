"""The desktop application: the only package that imports Qt (PySide6) and pyqtgraph.

PySide6-Essentials 6.12.0 on Python 3.11 drops a reference to ``True`` on every
``Signal.emit()`` and aborts the interpreter after a few thousand emits; pyproject.toml
keeps Python < 3.12 on PySide6 < 6.12 (``tests/gui/test_app.py`` guards it).
"""
