"""Background work for the GUI: one-shot jobs and report streams, each in its own QThread.

Both take a :class:`~cdfis_desktop.core.progress.CancelToken` (``worker.cancel_token``) and
send results back through queued signals (their QThread object lives in the GUI thread,
so connected slots run there). Neither is ever terminated: cancelling sets the token and
the work stops at its next check; :meth:`stop` cancels and waits.

Thread rules: construct, start, cancel and stop from the GUI thread; the callables passed
in run in the worker thread and must not touch widgets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from cdfis_desktop.core.progress import Cancelled, CancelToken, Progress, ProgressCallback
from cdfis_desktop.gui.error_dialog import ErrorInfo, describe
from cdfis_desktop.gui.threads import register_thread

JobFn = Callable[[CancelToken, ProgressCallback], Any]
"""``fn(cancel, progress) -> result``; runs in the worker thread."""

StreamFn = Callable[[CancelToken], Iterable[Any]]
"""``fn(cancel) -> iterable of immutable reports``; iterated in the worker thread."""


class _Worker(QThread):
    failed = Signal(object)  # ErrorInfo
    cancelled = Signal()

    def __init__(self, what: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.setObjectName(what)
        self.cancel_token = CancelToken()
        register_thread(self)

    def cancel(self) -> None:
        """Ask the work to stop at its next check (any thread)."""
        self.cancel_token.cancel()

    def stop(self, timeout_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread to end; True when it ended. GUI thread."""
        self.cancel()
        return self.wait(timeout_ms) if self.isRunning() else True

    def _fail(self, exc: BaseException) -> None:
        info: ErrorInfo = describe(exc, self.what)
        self.failed.emit(info)


class JobWorker(_Worker):
    """Runs ``fn(cancel, progress)`` once. Signals: ``progressed(Progress)``,
    ``succeeded(result)``, ``failed(ErrorInfo)``, ``cancelled()`` (exactly one of the last
    three per run)."""

    progressed = Signal(object)
    succeeded = Signal(object)

    def __init__(self, what: str, fn: JobFn, parent: QObject | None = None) -> None:
        super().__init__(what, parent)
        self._fn = fn

    def run(self) -> None:  # QThread override: the worker thread
        try:
            result = self._fn(self.cancel_token, self._report)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # shown to the user as a dialog
            self._fail(exc)
        else:
            if self.cancel_token.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)

    def _report(self, progress: Progress) -> None:
        self.progressed.emit(progress)


class StreamWorker(_Worker):
    """Iterates ``fn(cancel)`` and forwards its reports in batches.

    ``reports(list)`` is emitted at most every ``min_interval_s`` seconds (so a fast
    generator cannot flood the GUI thread), and immediately for reports whose type is in
    ``urgent_types`` (e.g. end-of-epoch reports). ``finished_ok()`` after the generator ends
    (including when it stopped itself because the token was cancelled), ``failed(ErrorInfo)``
    when it raised. While it runs, torch uses ``torch_threads`` threads (default: all cores
    but one), so the GUI thread keeps a core.
    """

    reports = Signal(list)
    finished_ok = Signal()

    def __init__(
        self,
        what: str,
        fn: StreamFn,
        *,
        min_interval_s: float = 0.1,
        urgent_types: tuple[type, ...] = (),
        torch_threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(what, parent)
        self._fn = fn
        self._min_interval_s = min_interval_s
        self._urgent_types = urgent_types
        self._torch_threads = torch_threads or max(1, (os.cpu_count() or 2) - 1)

    def run(self) -> None:  # QThread override: the worker thread
        import torch

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self._torch_threads)
        pending: list[Any] = []
        last_emit = 0.0
        try:
            for report in self._fn(self.cancel_token):
                pending.append(report)
                now = time.monotonic()
                if (
                    isinstance(report, self._urgent_types)
                    or now - last_emit >= self._min_interval_s
                ):
                    self.reports.emit(pending)
                    pending, last_emit = [], now
            if pending:
                self.reports.emit(pending)
            self.finished_ok.emit()
        except Cancelled:
            if pending:
                self.reports.emit(pending)
            self.cancelled.emit()
        except Exception as exc:  # shown to the user as a dialog
            if pending:
                self.reports.emit(pending)
            self._fail(exc)
        finally:
            torch.set_num_threads(previous_threads)
