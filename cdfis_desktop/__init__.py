"""cdfis-desktop: CDF-based importance sampling for tissue-patch classifiers, with the
importance of every patch recorded and shown on the whole-slide image.

Layout: ``core`` is headless (no Qt), ``cli`` is the ``cdfis`` command line, ``gui`` is the
only package that imports Qt.
"""

__version__ = "0.1.0"
