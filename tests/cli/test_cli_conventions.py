"""Conventions every ``cdfis`` command follows: --help works, usage errors exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cdfis_desktop.cli.main import command_names, command_words


def _cdfis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdfis_desktop.cli.main", *args], capture_output=True, text=True
    )


def test_top_level_help_lists_every_command() -> None:
    result = _cdfis("--help")
    assert result.returncode == 0
    for name in command_names():
        assert name in result.stdout


@pytest.mark.parametrize("name", command_names())
def test_each_command_has_help(name: str) -> None:
    result = _cdfis(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = _cdfis("no-such-command")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "Traceback" not in result.stderr


def test_python_dash_m_runs_commands_by_any_of_their_names() -> None:
    """``python -m cdfis_desktop WORD`` is the CLI for every command word, aliases too
    (``torchrun -m cdfis_desktop train`` relies on it); anything else opens the app."""
    words = command_words()
    assert {"import", "import-slides", "train", "compare", "demo"} <= words
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop", "import", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cdfis import")
