"""The background store writer keeps order and hands failures to the training thread."""

from __future__ import annotations

import pytest

from cdfis_desktop.core.errors import StorageFullError
from cdfis_desktop.core.training.writer import BackgroundWriter


def test_writes_run_in_order_and_drain_waits() -> None:
    done: list[int] = []
    writer = BackgroundWriter(max_pending=2)
    for i in range(50):
        writer.submit(done.append, i)
    writer.drain()
    assert done == list(range(50))
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(done.append, 99)


def test_a_failed_write_stops_later_writes_and_is_raised() -> None:
    done: list[int] = []

    def fail() -> None:
        raise StorageFullError("disk full")

    writer = BackgroundWriter()
    writer.submit(done.append, 1)
    writer.submit(fail)
    writer.submit(done.append, 2)
    with pytest.raises(StorageFullError, match="disk full"):
        writer.drain()
    with pytest.raises(StorageFullError):
        writer.submit(done.append, 3)
    writer.close(raise_error=False)
    assert done == [1]
