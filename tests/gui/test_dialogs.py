"""Import dialog (real import into a real project), error dialogs and the global hook."""

from __future__ import annotations

import sys

import pytest

from cdfis_desktop.core.errors import AnnotationError
from cdfis_desktop.core.storage import Project
from cdfis_desktop.gui.error_dialog import ErrorReporter, describe, install_excepthook
from cdfis_desktop.gui.import_dialog import ImportDialog
from cdfis_desktop.gui.main_window import MainWindow


def test_import_slides_with_annotations_in_a_worker(qtbot, tmp_path, synthetic_slide):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(tmp_path / "new", create=True)
    dialog = ImportDialog(window, patch_set=False)
    dialog.slides.addItem(str(synthetic_slide.slide_path))
    dialog.annotations.addItem(str(synthetic_slide.annotations_path))
    dialog.patch_px.setValue(64)
    dialog.mpp.setValue(2.0)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.worker is None, timeout=60_000)
    assert dialog.summary is not None and dialog.summary.patch_count > 0
    assert "total: 1 slide(s)" in dialog.message.text()
    qtbot.waitUntil(
        lambda: window.project_panel.slide_list.count() == 1 and window.viewer.is_settled(),
        timeout=10_000,
    )
    with Project.open(tmp_path / "new") as project:
        assert len(project.patches()) == dialog.summary.patch_count
        assert set(project.class_names()) >= {"Tumor", "Stroma"}
    window.close()


def test_import_with_a_broken_annotation_file_shows_the_error(qtbot, tmp_path, synthetic_slide):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window.open_project(tmp_path / "new", create=True)
    broken = tmp_path / "demo-1.geojson"
    broken.write_text("{not json")
    dialog = ImportDialog(window, patch_set=False)
    dialog.slides.addItem(str(synthetic_slide.slide_path))
    dialog.annotations.addItem(str(broken))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.worker is None, timeout=60_000)
    info = window.errors.shown[-1]
    assert info.user_error and "demo-1.geojson" in info.message
    assert "failed" in dialog.message.text()
    with Project.open(tmp_path / "new") as project:
        assert project.slides() == []  # bad input leaves the project untouched
    window.close()


@pytest.mark.qt_no_exception_capture
def test_error_reporter_and_excepthook(qtbot):
    reporter = ErrorReporter()
    info = describe(AnnotationError("a.geojson: not JSON; export it again"), "Import")
    assert info.user_error and info.title == "Import" and "a.geojson" in info.message
    bug = describe(ZeroDivisionError("division by zero"))
    assert not bug.user_error and "bug" in bug.message and "ZeroDivisionError" in bug.details
    previous = sys.excepthook
    try:
        install_excepthook(reporter)
        try:
            raise KeyError("missing")
        except KeyError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        sys.excepthook = previous
    assert reporter.shown[-1].details.count("KeyError") >= 1
    box = reporter.show(info)
    assert box.detailedText() == info.details
    reporter.close_all()
