"""The packaging files (always) and a built PyInstaller bundle (when ``CDFIS_BUNDLE_DIR``
names one, e.g. ``/tmp/bundle/dist/cdfis-desktop``; see packaging/README.md).

The bundle tests run the frozen programs as subprocesses: ``cdfis import`` and
``cdfis-desktop info`` (the command line and the app's command dispatch, OpenSlide from
openslide-bin) on a generated slide, then the desktop app with ``--screenshot`` on Qt's
offscreen platform, with and without the project.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdfis_desktop.core.paths import resources_dir

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "cdfis-desktop.spec"
DESKTOP = PACKAGING / "cdfis-desktop.desktop"
APP_NAME = "cdfis-desktop"
FREEDESKTOP_MAIN_CATEGORIES = {
    "AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics",
    "Network", "Office", "Science", "Settings", "System", "Utility",
}  # fmt: skip
BUNDLE_TIMEOUT_S = 300


def read_desktop_entry(path: Path) -> dict[str, str]:
    """The ``[Desktop Entry]`` keys of a freedesktop ``.desktop`` file (case kept)."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def spec_paths(spec: Path, root: Path) -> list[Path]:
    """Every path the spec builds with ``/`` from ``ROOT`` (the repository) or from a name
    assigned such a path, resolved against ``root``."""
    known: dict[str, Path] = {"ROOT": root}

    def evaluate(node: ast.expr) -> Path | None:
        if isinstance(node, ast.Name):
            return known.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = evaluate(node.left)
            if left is not None and isinstance(node.right, ast.Constant):
                return left / str(node.right.value)
        return None

    found = []
    tree = ast.parse(spec.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = evaluate(node.value)
            if isinstance(target, ast.Name) and value is not None:
                known[target.id] = value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            value = evaluate(node)
            if value is not None:
                found.append(value)
    return found


def spec_list(spec: Path, name: str) -> list[str]:
    """The string list literal assigned to ``name`` in the spec."""
    for node in ast.walk(ast.parse(spec.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return [ast.literal_eval(item) for item in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError(f"{spec} assigns no list {name!r}")


def spec_exe_names(spec: Path) -> list[str]:
    """The ``name=`` of every ``EXE(...)`` in the spec."""
    names = []
    for node in ast.walk(ast.parse(spec.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EXE":
            names += [ast.literal_eval(k.value) for k in node.keywords if k.arg == "name"]
    return names


def imported_modules(package_dir: Path) -> set[str]:
    """Absolute module names imported anywhere under ``package_dir`` (top level or lazily)."""
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_desktop_entry_keys_are_valid() -> None:
    entry = read_desktop_entry(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Name"] == APP_NAME
    assert entry["Exec"].split()[0] == APP_NAME
    assert entry["TryExec"] == APP_NAME
    assert entry["Terminal"] == "false"
    assert entry["Comment"].strip()
    assert (resources_dir() / "icons" / f"{entry['Icon']}.svg").is_file()
    assert (resources_dir() / "icons" / f"{entry['Icon']}-48.png").is_file()
    categories = entry["Categories"]
    assert categories.endswith(";"), "freedesktop lists end with ';'"
    assert FREEDESKTOP_MAIN_CATEGORIES & set(categories.split(";"))
    assert entry["Keywords"].endswith(";")


def test_spec_references_existing_paths() -> None:
    paths = spec_paths(SPEC, ROOT)
    relative = {p.relative_to(ROOT).as_posix() for p in paths}
    assert {"resources", "packaging/launcher.py", "resources/icons/cdfis-256.png"} <= relative
    missing = [p for p in paths if not p.exists()]
    assert not missing, f"{SPEC} names paths that do not exist: {missing}"
    assert APP_NAME in spec_exe_names(SPEC), "the .desktop entry runs an EXE the spec builds"


def test_spec_excludes_no_module_the_app_imports() -> None:
    excludes = spec_list(SPEC, "excludes")
    imported = imported_modules(ROOT / "cdfis_desktop")
    clashes = sorted(
        name for name in imported for ex in excludes if name == ex or name.startswith(ex + ".")
    )
    assert not clashes, f"{SPEC} excludes modules cdfis_desktop imports: {clashes}"
    assert "PySide6.QtWidgets" in imported  # the scan sees imports at all


IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import cdfis_desktop
for info in pkgutil.walk_packages(cdfis_desktop.__path__, "cdfis_desktop."):
    importlib.import_module(info.name)
print("\\n".join(sys.modules))
"""


def test_spec_excludes_no_module_loaded_with_the_app() -> None:
    """What the app's modules pull in when imported (pyqtgraph imports QtOpenGL, torch some
    of torch.testing._internal): none of it may be excluded from the bundle."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"cdfis_desktop.gui.main_window", "pyqtgraph", "torch"} <= loaded
    excludes = spec_list(SPEC, "excludes")
    clashes = sorted(
        name for name in loaded for ex in excludes if name == ex or name.startswith(ex + ".")
    )
    assert not clashes, f"{SPEC} excludes modules the app loads: {clashes}"


def test_spec_path_scan_sees_a_missing_path(tmp_path: Path) -> None:
    spec = tmp_path / "x.spec"
    spec.write_text('A = ROOT / "resources"\nB = A / "no-such-file.png"\n', encoding="utf-8")
    paths = spec_paths(spec, ROOT)
    assert [p.exists() for p in paths] == [True, False]


@pytest.fixture(scope="session")  # set up before the session-scoped synthetic_slide
def bundle_exe() -> Path:
    """The ``cdfis-desktop`` program of the bundle in ``CDFIS_BUNDLE_DIR``; skips when unset."""
    folder = os.environ.get("CDFIS_BUNDLE_DIR")
    if not folder:
        pytest.skip(
            "CDFIS_BUNDLE_DIR is not set: no built bundle to test (build one with "
            "pyinstaller packaging/cdfis-desktop.spec, see packaging/README.md)"
        )
    exe = Path(folder) / (f"{APP_NAME}.exe" if sys.platform == "win32" else APP_NAME)
    if not exe.is_file():
        pytest.fail(f"CDFIS_BUNDLE_DIR={folder} has no {exe.name}: is it a built bundle?")
    return exe


def run_bundle(exe: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg")
    return subprocess.run(
        [str(exe), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUNDLE_TIMEOUT_S,
        check=False,
    )


def distinct_colours(png: Path) -> int:
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


@pytest.mark.slow
def test_bundle_starts_and_exits_cleanly(bundle_exe: Path, tmp_path: Path) -> None:
    shot = tmp_path / "empty.png"
    done = run_bundle(bundle_exe, "--screenshot", shot)
    assert done.returncode == 0, done.stderr
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert min(image.size) > 100


@pytest.mark.slow
def test_bundle_imports_a_slide_and_shows_it(
    bundle_exe: Path, synthetic_slide, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    cli_exe = bundle_exe.with_name(bundle_exe.name.replace(APP_NAME, "cdfis"))
    done = run_bundle(
        cli_exe, "import", "--project", project, synthetic_slide.slide_path,
        "--annotations", synthetic_slide.annotations_path, "--patch-px", "96", "--mpp", "1.0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_bundle(bundle_exe, "info", synthetic_slide.slide_path)  # the app's dispatch
    assert done.returncode == 0, done.stderr
    assert "levels" in done.stdout.lower()
    empty, with_slide = tmp_path / "empty.png", tmp_path / "slide.png"
    assert run_bundle(bundle_exe, "--screenshot", empty).returncode == 0
    done = run_bundle(bundle_exe, "--project", project, "--screenshot", with_slide)
    assert done.returncode == 0, done.stderr
    # the stained tissue drawn by OpenSlide adds far more colours than the bare widgets
    assert distinct_colours(with_slide) > 2 * distinct_colours(empty) + 500


def test_launcher_dispatches_cdfis_commands() -> None:
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "launcher.py"), "info", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: cdfis info")


@pytest.mark.slow
def test_wheel_ships_the_resources(tmp_path: Path) -> None:
    """A wheel built from the sources holds resources/ as cdfis_desktop/resources (setup.py)."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("cdfis_desktop", "resources"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        f"cdfis_desktop/resources/{p.relative_to(ROOT / 'resources').as_posix()}"
        for p in (ROOT / "resources").rglob("*")
        if p.is_file()
    }
    assert "cdfis_desktop/resources/style.qss" in expected
    assert expected <= names, f"missing from {wheel.name}: {sorted(expected - names)}"
