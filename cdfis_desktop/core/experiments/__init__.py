"""Experiments that compare sampling rules end to end (headless; numpy/torch/matplotlib)."""
