"""The ``cdfis`` command line. One module per command; see :mod:`cdfis_desktop.cli.main`."""
