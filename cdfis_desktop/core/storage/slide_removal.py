"""Removing slides from a project: ``cdfis slides remove`` (and the GUI's remove action).

A slide is removed with everything recorded about it, in one transaction
(:meth:`Project.delete_slide`: its patches, and every run's history, aggregates and
predictions of those patches; the runs themselves stay). It is refused while any run is
being trained (a live writer holds the run's lock, see :mod:`.locks`), since that run reads
and records the slide's patches. A slide file inside the project's ``slides/`` folder
(a mosaic written by ``cdfis import-patches``) is deleted after the commit; a slide file
anywhere else belongs to the user and is never touched.

Thread rules: call from one thread; the GUI calls it from a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdfis_desktop.core.errors import ConfigError, RunLockedError
from cdfis_desktop.core.storage.locks import RunLock
from cdfis_desktop.core.storage.records import SlideRecord


@dataclass(frozen=True)
class RemovedSlide:
    """One removed slide: its record, how many patches went with it, and whether its file
    (a mosaic in the project's ``slides/`` folder) was deleted."""

    slide: SlideRecord
    patches: int
    file_deleted: bool


def find_slides(project: Any, keys: Sequence[str]) -> list[SlideRecord]:
    """The slides named by ``keys``: an id, or a file name (``8863.tiff``) or stem
    (``8863``) matching exactly one slide. Raises ConfigError naming a key that matches
    none or several."""
    slides = project.slides()
    found: list[SlideRecord] = []
    for key in keys:
        text = key.strip()
        if text.isdigit():
            matches = [s for s in slides if s.id == int(text)]
        else:
            matches = [s for s in slides if text in (s.file.name, s.file.stem)]
        if len(matches) != 1:
            listing = ", ".join(f"{s.id} ({s.name})" for s in slides) or "none"
            what = "no slide" if not matches else f"{len(matches)} slides"
            raise ConfigError(
                f"{what} of {project.folder} match {key!r}; give a slide id (its slides: {listing})"
            )
        if matches[0] not in found:
            found.append(matches[0])
    return found


def remove_slides(project: Any, slides: Sequence[SlideRecord]) -> list[RemovedSlide]:
    """Remove ``slides`` from ``project`` (see the module docstring), in order; returns
    what was removed. Raises RunLockedError while a run is being trained, StoreError
    when the database cannot be written (slides removed before it stay removed)."""
    _refuse_while_training(project)
    removed = []
    for slide in slides:
        patches = len(project.patches(slide_id=slide.id))
        project.delete_slide(slide.id)
        removed.append(RemovedSlide(slide, patches, _delete_owned_file(project, slide)))
    return removed


def _refuse_while_training(project: Any) -> None:
    for run in project.runs():  # runs() first marks runs of dead writers interrupted
        if run.status != "running":
            continue
        lock = RunLock(project.locks_dir, run.id)
        if not lock.try_acquire():
            raise RunLockedError(
                f"run {run.id} is being trained ({lock.holder()}) and reads the project's "
                "slides; stop it (or let it finish), then remove the slide"
            )
        lock.release()  # its writer just ended


def owns_file(project: Any, slide: SlideRecord) -> bool:
    """Whether the slide's file is a mosaic inside the project's ``slides/`` folder (the
    project's to delete with the slide) rather than the user's file."""
    try:
        return slide.file.resolve().is_relative_to(Path(project.slides_dir).resolve())
    except OSError:
        return False


def _delete_owned_file(project: Any, slide: SlideRecord) -> bool:
    """Delete the slide's file when it is a mosaic inside the project's ``slides/``."""
    path = slide.file
    if not owns_file(project, slide) or any(s.file == path for s in project.slides()):
        return False  # the user's file, or still used by another slide record
    try:
        path.unlink()
    except OSError:  # already gone, or not ours to delete after all: the slide is removed
        return False
    return True
