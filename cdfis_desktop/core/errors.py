"""One exception hierarchy for everything the user can cause.

Every :class:`CdfisError` carries a message written for the user: what went wrong, naming
the file, and what to do. The CLI prints it as ``error: <message>`` and exits with status 2;
the GUI shows it in a dialog. Anything else that escapes is a bug (exit status 1).
"""

from __future__ import annotations


class CdfisError(Exception):
    """Base class of errors caused by input, configuration or environment."""


class ConfigError(CdfisError):
    """An invalid option or run configuration (rejected before any work starts)."""


class SlideOpenError(CdfisError):
    """A file is missing, not a slide, truncated, or in a format OpenSlide cannot read."""


class SlideTooLargeError(SlideOpenError):
    """Reading a slide region would decode more pixels than the configured limit."""


class SlideWriteError(CdfisError):
    """A slide file (a patch-set mosaic, a demo slide) could not be written."""


class AnnotationError(CdfisError):
    """An annotation file (GeoJSON, ASAP XML) is unreadable or has unusable geometry."""


class LabelsError(CdfisError):
    """A labels/coordinates CSV is unreadable, lacks columns, or has values out of range."""


class StoreError(CdfisError):
    """The project store cannot be opened or written."""


class NotAProjectError(StoreError):
    """A folder or file is not a cdfis project / database."""


class SchemaVersionError(StoreError):
    """The database was written by a newer cdfis-desktop than this one."""


class StorageFullError(StoreError):
    """The disk (or database size limit) is full; nothing committed before was lost."""


class DamagedDatabaseError(StoreError):
    """The project database failed SQLite's integrity check; nothing is written to it.
    ``path``: the database file; ``problems``: SQLite's findings."""

    def __init__(self, message: str, *, path: object = None, problems: object = ()) -> None:
        super().__init__(message)
        self.path = path
        self.problems = list(problems)  # type: ignore[call-overload]


class RunLockedError(StoreError):
    """Another process is already writing this run."""


class TrainingError(CdfisError):
    """Training stopped because of the data or the numbers (NaN loss, out of memory)."""


class ExportError(CdfisError):
    """A report or export could not be written."""


class ReviewError(CdfisError):
    """A review decision is invalid (unknown patch, action, label or reason; nothing to
    undo); no decision of the batch is stored."""
