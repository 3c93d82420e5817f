"""Per-user folders (settings, cache, logs) via platformdirs, and the bundled resources."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "cdfis-desktop"


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_demo_project_dir() -> Path:
    """Where ``cdfis demo`` puts its project when no ``--project`` is given."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "demo-project"


def resources_dir() -> Path:
    """The ``resources/`` folder (icons, style sheet), in a checkout or a frozen bundle."""
    here = Path(__file__).resolve().parent.parent  # cdfis_desktop/
    for candidate in (here / "resources", here.parent / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources"
