"""Shared fixtures. Tests that need the real data in ``CDFIS_TEST_DATA`` use ``real_data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder (slides/, patches/, tiles_tissue/); skips when absent."""
    folder = os.environ.get("CDFIS_TEST_DATA")
    if not folder:
        pytest.skip("CDFIS_TEST_DATA is not set: real-data tests skipped (CI sets it to ../shared/data)")
    path = Path(folder)
    if not path.is_dir():
        pytest.skip(f"CDFIS_TEST_DATA={folder} is not a folder: real-data tests skipped")
    return path
