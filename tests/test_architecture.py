"""The layering rule: core and cli run headless, without Qt; ``cdfis --help`` stays light."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph")

_IMPORT_ALL_HEADLESS = """
import importlib, pkgutil, sys
import cdfis_desktop.core, cdfis_desktop.cli
for package in (cdfis_desktop.core, cdfis_desktop.cli):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {qt})
print("QT:" + ",".join(loaded))
"""


def test_core_and_cli_import_without_loading_qt() -> None:
    code = _IMPORT_ALL_HEADLESS.replace("{qt}", repr(set(QT_MODULES)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("QT:"), result.stdout


def test_import_linter_contract_holds() -> None:
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([lint_imports], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_passes_mypy_strict() -> None:
    """``[tool.mypy]`` in pyproject.toml: strict on cdfis_desktop/core."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_cli_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from cdfis_desktop.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('torch', 'openslide', 'sqlalchemy', 'skimage', 'PySide6', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout


def test_ruff_finds_no_problems() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [ruff, "check", "cdfis_desktop", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
