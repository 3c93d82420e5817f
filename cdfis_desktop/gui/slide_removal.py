"""Removing a slide from the open project: the window's *File › Remove slide from project*
action and the slide list's context menu.

:func:`ask_remove_slide` says what will be lost and asks (modal question);
:func:`start_remove_slide` removes in a worker through
``core.storage.slide_removal.remove_slides`` (one transaction: the slide, its patches and
every run's history of them; the runs stay) and then refreshes the slide and run lists.
Refused while this window trains (that run reads the slide's patches); a run trained by
another process is refused by the core with an error dialog. GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

from cdfis_desktop.core.progress import CancelToken, ProgressCallback
from cdfis_desktop.core.storage.slide_removal import owns_file, remove_slides

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import SlideRecord
    from cdfis_desktop.gui.main_window import MainWindow
    from cdfis_desktop.gui.workers import JobWorker


def removal_question(slide: SlideRecord, patches: int, owned_file: bool) -> str:
    """The confirmation text: what goes, what stays, and what happens to the file."""
    file_note = (
        "Its mosaic file in the project's slides folder is deleted too."
        if owned_file
        else f"The slide file itself ({slide.file}) is not touched."
    )
    return (
        f"Remove {slide.name} and its {patches:,} patches from the project?\n\n"
        "Every run loses what it recorded for this slide (history, predictions); the runs "
        f"stay. This cannot be undone. {file_note}"
    )


def ask_remove_slide(window: MainWindow, slide_id: int) -> JobWorker | None:
    """Ask, then remove slide ``slide_id`` (None when refused or not confirmed)."""
    project = window.state.project
    slide = next((s for s in window.state.slides if s.id == slide_id), None)
    if project is None or slide is None:
        return None
    if window.training.running():
        QMessageBox.information(
            window,
            "Training is running",
            "Stop the training run before removing a slide: the run reads its patches.",
        )
        return None
    patches = len(project.patches(slide_id=slide.id))
    question = removal_question(slide, patches, owns_file(project, slide))
    answer = QMessageBox.question(window, "Remove slide", question)
    if answer != QMessageBox.StandardButton.Yes:
        return None
    return start_remove_slide(window, slide_id)


def start_remove_slide(window: MainWindow, slide_id: int) -> JobWorker:
    """Remove slide ``slide_id`` in a worker; the lists refresh and the status bar says
    what went. Errors (a run trained elsewhere, a read-only database) show the error
    dialog and change nothing."""
    project = window.state.project
    assert project is not None
    slide = next(s for s in window.state.slides if s.id == slide_id)

    def work(_cancel: CancelToken, _progress: ProgressCallback) -> str:
        (removed,) = remove_slides(project, [slide])
        deleted = " and its mosaic file" if removed.file_deleted else ""
        return f"Removed {slide.name}{deleted} ({removed.patches:,} patches) from the project"

    def done(message: str) -> None:
        window.reload_slides()
        window.state.set_runs(project.runs())
        window.jobs.notify(message)

    return window.jobs.run(f"Remove {slide.name}", work, done)
