"""Headless core: sampling, slides, tiling, storage, training, heatmaps, reporting.

Nothing under this package imports Qt or pyqtgraph (enforced by import-linter and by
``tests/test_architecture.py``).
"""
