"""``cdfis``: the command-line entry point.

Every public module in this package (``common`` and ``_private`` ones aside) defines ``register(subparsers)`` is a command. It adds
its sub-parser and sets ``func=run`` where ``run(args) -> int``. Modules import only the
standard library at top level (torch, numpy, openslide... are imported inside ``run``) so
``cdfis --help`` is instant.

Exit status: 0 success (also when the reader of stdout stops early, as ``| head`` does);
2 bad input or usage (one line ``error: ...`` on stderr, no traceback); 1 an unexpected
failure (traceback saved to the log folder); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from cdfis_desktop import __version__

_NOT_COMMANDS = {"main", "common"}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors follow our convention (exit 2, one line)."""

    def error(self, message: str) -> None:  # argparse's name
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def command_names() -> list[str]:
    """Names of the ``cdfis`` sub-commands, from the modules of this package."""
    import cdfis_desktop.cli as package

    names = [
        m.name
        for m in pkgutil.iter_modules(package.__path__)
        if m.name not in _NOT_COMMANDS and not m.name.startswith("_")
    ]
    return sorted(name.replace("_", "-") for name in names)


def build_parser() -> argparse.ArgumentParser:
    return _build_parser()[0]


def command_words() -> set[str]:
    """Every word that starts a ``cdfis`` command, aliases included (e.g. ``import``)."""
    return set(_build_parser()[1].choices)


def _build_parser() -> tuple[argparse.ArgumentParser, argparse.Action]:
    parser = _Parser(
        prog="cdfis",
        description="CDF-based importance sampling for tissue-patch classifiers.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"cdfis {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in command_names():
        module = importlib.import_module(f"cdfis_desktop.cli.{name.replace('-', '_')}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from cdfis_desktop.core.errors import CdfisError

    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except CdfisError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `cdfis runs | head`: the reader has all it wanted
        _silence_stdout()
        return 0
    except Exception as exc:  # a bug: say so, keep the traceback
        log_path = _save_traceback()
        print(
            f"unexpected error: {type(exc).__name__}: {_one_line(str(exc))}\n"
            f"the details are in {log_path}; please report it",
            file=sys.stderr,
        )
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit cannot raise BrokenPipeError again
    (what the Python documentation recommends for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _save_traceback() -> str:
    from cdfis_desktop.core.paths import user_log_dir

    try:
        folder = user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "last-error.txt"
        path.write_text(traceback.format_exc(), encoding="utf-8")
        return str(path)
    except OSError:
        traceback.print_exc()
        return "the traceback above"


if __name__ == "__main__":
    sys.exit(main())
