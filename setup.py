"""Build hook only (all metadata is in pyproject.toml): ship the top-level ``resources/``
folder (icons, style sheet) inside the package, as ``cdfis_desktop/resources`` in the wheel,
which is the first place :func:`cdfis_desktop.core.paths.resources_dir` looks."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = Path(__file__).resolve().parent / "resources"


class BuildPyWithResources(build_py):
    """``build_py`` that also copies ``resources/`` to ``<build_lib>/cdfis_desktop/resources``."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads resources/ from the checkout
            shutil.copytree(
                RESOURCES, Path(self.build_lib) / "cdfis_desktop" / "resources", dirs_exist_ok=True
            )


setup(cmdclass={"build_py": BuildPyWithResources})
