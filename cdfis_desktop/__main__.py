"""``python -m cdfis_desktop``: the desktop app, or a ``cdfis`` command when one is named.

``python -m cdfis_desktop`` (no arguments, or only GUI options such as ``--project``) opens
the desktop app; ``python -m cdfis_desktop train ...`` runs the command line, so
``torchrun -m cdfis_desktop train ...`` works.
"""

from __future__ import annotations

import sys


def main() -> int:
    from cdfis_desktop.cli.main import command_words

    argv = sys.argv[1:]
    if argv and (argv[0] in command_words() or argv[0] in {"-V", "--version"}):
        from cdfis_desktop.cli.main import main as cli_main

        return cli_main(argv)
    from cdfis_desktop.gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
