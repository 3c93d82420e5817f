"""``cdfis doctor [--project DIR] [--json]``: what this machine provides for cdfis-desktop.

Reports the Qt platform plugin (and the system packages it lacks), the display, OpenSlide,
torch and CUDA, and whether the project folder can be written. Exit status 0 when the
desktop app can start and the folder is writable, 3 (``GUI_UNAVAILABLE_EXIT``) otherwise;
every problem is printed as a ``problem: ...`` line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check Qt, the display, OpenSlide, torch/CUDA and project folder access",
        description=(
            "Report what this machine provides for cdfis-desktop: the Qt platform plugin and "
            "the system packages it lacks, the display, OpenSlide, torch and CUDA, and write "
            "access to the project folder. Exit status 0 when all is well, 3 otherwise."
        ),
    )
    parser.add_argument(
        "--project", type=Path, help="project folder to check (default: the demo project's)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cdfis_desktop.core.environment import GUI_UNAVAILABLE_EXIT
    from cdfis_desktop.core.paths import default_demo_project_dir

    folder = (args.project or default_demo_project_dir()).expanduser().resolve()
    report = collect(folder)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(as_text(report))
    return GUI_UNAVAILABLE_EXIT if report["problems"] else 0


def collect(folder: Path) -> dict[str, Any]:
    """Every check as a JSON-ready dict; ``problems`` lists one line per failed check."""
    from cdfis_desktop import __version__

    qt = _qt_section()
    project = _folder_section(folder)
    problems = [f"desktop app: {qt['problem']}"] if qt["problem"] else []
    if not project["writable"]:
        problems.append(f"project folder: {project['problem']}")
    return {
        "cdfis_desktop": __version__,
        "python": sys.version.split()[0],
        "system": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "qt": qt,
        "openslide": _openslide_section(),
        "torch": _torch_section(),
        "project": project,
        "problems": problems,
    }


def _qt_section() -> dict[str, Any]:
    from cdfis_desktop.core.environment import check_qt_platform

    check = check_qt_platform()
    return {
        "pyside6": _version("PySide6-Essentials") or _version("PySide6"),
        "platform": check.platform,
        "plugin": str(check.plugin) if check.plugin else None,
        "display": check.display,
        "missing_libraries": list(check.missing),
        "packages_to_install": check.packages(),
        "problem": check.problem,
    }


def _openslide_section() -> dict[str, Any]:
    try:
        import openslide
    except (ImportError, OSError) as exc:
        return {"python": _version("openslide-python"), "library": None, "problem": str(exc)}
    return {
        "python": openslide.__version__,
        "library": openslide.__library_version__,
        "problem": None,
    }


def _torch_section() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "mps_available": mps,
        "cpu_threads": torch.get_num_threads(),
    }


def _folder_section(folder: Path) -> dict[str, Any]:
    """Write access: a temporary file made (and removed) in ``folder``, or in its nearest
    existing parent when the folder does not exist yet (the project would be made there)."""
    target = folder
    while not target.exists() and target != target.parent:
        target = target.parent
    problem = None
    if not target.is_dir():
        problem = f"{target} is not a folder, so {folder} cannot be made"
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=target, prefix=".cdfis-doctor-"):
                pass
        except OSError as exc:
            problem = f"cannot write in {target}: {exc.strerror or exc}"
    return {
        "path": str(folder),
        "exists": folder.is_dir(),
        "is_project": (folder / "project.toml").is_file(),
        "writable": problem is None,
        "problem": problem,
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def as_text(report: dict[str, Any]) -> str:
    qt, slide, torch, project = (
        report["qt"],
        report["openslide"],
        report["torch"],
        report["project"],
    )
    cuda = (
        f"available ({', '.join(torch['cuda_devices'])})"
        if torch["cuda_available"]
        else f"not available (build: {torch['cuda_build'] or 'CPU only'})"
    )
    lines = [
        f"cdfis-desktop {report['cdfis_desktop']} · Python {report['python']} · {report['system']}",
        f"Qt:        PySide6 {qt['pyside6'] or 'not installed'}, platform plugin "
        f"{qt['platform']} ({'loads' if not qt['missing_libraries'] else 'does not load'})",
        f"display:   {qt['display'] or 'none'}",
        f"OpenSlide: library {slide['library'] or 'missing'} "
        f"(openslide-python {slide['python'] or 'missing'})",
        f"torch:     {torch['version']}, CUDA {cuda}"
        + (", MPS available" if torch["mps_available"] else ""),
        f"project:   {project['path']} "
        f"({'project' if project['is_project'] else 'no project yet'}, "
        f"{'writable' if project['writable'] else 'NOT writable'})",
    ]
    if qt["packages_to_install"]:
        lines.append(f"install:   sudo apt-get install {' '.join(qt['packages_to_install'])}")
    lines += [f"problem:   {problem}" for problem in report["problems"]]
    if not report["problems"]:
        lines.append("all checks passed")
    return "\n".join(lines)
