"""Scratch files (owner tags, permissions, orphans) and disk-space reservation on a real
file system: a file-size limit (RLIMIT_FSIZE) everywhere on POSIX, and a real full tmpfs
when the tests run as root."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from cdfis_desktop.core import scratch
from cdfis_desktop.core.disk import reserve, reserved_memmap
from cdfis_desktop.core.errors import StorageFullError
from cdfis_desktop.core.reporting.files import atomic_output
from cdfis_desktop.core.slides.tiff_writer import write_pyramidal_tiff_bands
from cdfis_desktop.core.training.checkpoints import save_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file limits and modes")


def dead_pid() -> int:
    """The pid of a process that has ended (just ran and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def orphan_beside(target: Path, suffix: str = ".partial") -> Path:
    """A scratch file of ``target`` as a killed process of this computer leaves it."""
    path = target.with_name(
        f".{target.name}.cdfis-{scratch.host_tag()}-{dead_pid()}.x1y2z3{suffix}"
    )
    path.write_bytes(b"half a file")
    return path


@contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """Files of this process cannot grow past ``nbytes`` (EFBIG, like a full disk)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _band(width: int):
    return lambda l0_y, band_h: np.full((band_h, width, 3), 128, np.uint8)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask_mode(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        with atomic_output(tmp_path / "report.pdf") as tmp:
            tmp.write_bytes(b"%PDF")
        save_checkpoint(tmp_path / "run1-step2.pt", {"step": 2})
        write_pyramidal_tiff_bands(tmp_path / "mosaic.tiff", (300, 200), _band(300), mpp=1.0)
    for name in ("report.pdf", "run1-step2.pt", "mosaic.tiff"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_a_killed_writers_scratch_goes_at_the_next_write(tmp_path: Path) -> None:
    report = orphan_beside(tmp_path / "report.pdf")
    checkpoint = orphan_beside(tmp_path / "run1-step2.pt", ".tmp")
    mosaic = orphan_beside(tmp_path / "mosaic.tiff", ".tmp")
    live = tmp_path / f".report.pdf.{scratch.owner_tag()}.abcdef.partial"  # this process
    live.write_bytes(b"being written")
    with atomic_output(tmp_path / "report.pdf") as tmp:
        tmp.write_bytes(b"%PDF")
    save_checkpoint(tmp_path / "run1-step2.pt", {"step": 2})
    write_pyramidal_tiff_bands(tmp_path / "mosaic.tiff", (64, 64), _band(64), mpp=1.0)
    assert not report.exists() and not checkpoint.exists() and not mosaic.exists()
    assert live.exists()  # a live writer's scratch is never touched
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"report.pdf", "run1-step2.pt", "mosaic.tiff", live.name}


def test_orphans_are_told_apart(tmp_path: Path) -> None:
    orphan = orphan_beside(tmp_path / "a.pdf")
    other_host = tmp_path / f".b.pdf.cdfis-00000000-{dead_pid()}.abcdef.partial"
    other_host.write_bytes(b"")
    legacy_new = tmp_path / ".c.pdf.k2j4h6.partial"
    legacy_new.write_bytes(b"")
    legacy_old = tmp_path / ".d.pdf.k2j4h6.partial"
    legacy_old.write_bytes(b"")
    an_hour_ago = legacy_old.stat().st_mtime - 2 * scratch.LEGACY_MIN_AGE_S
    os.utime(legacy_old, (an_hour_ago, an_hour_ago))
    users_file = tmp_path / "notes.partial"
    users_file.write_bytes(b"")
    assert scratch.orphans_in([tmp_path, tmp_path / "missing"]) == sorted([orphan, legacy_old])


def test_reserve_refuses_what_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "cache.npy"
    path.write_bytes(b"")
    with file_size_limit(1 << 20), pytest.raises(StorageFullError, match="it needs 4.0 MiB"):
        reserve(path, 4 << 20, "the test cache")
    with file_size_limit(1 << 20), pytest.raises(StorageFullError, match="the patch cache"):
        reserved_memmap(tmp_path / "big.npy", np.uint8, (4 << 20,), "the patch cache")
    assert not (tmp_path / "big.npy").exists()
    reserve(path, 1 << 16, "the test cache")
    assert path.stat().st_size == 1 << 16 and path.stat().st_blocks * 512 >= 1 << 16


def test_a_pyramid_that_does_not_fit_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "mosaic.tiff"
    with file_size_limit(200_000), pytest.raises(StorageFullError, match="mosaic.tiff"):
        write_pyramidal_tiff_bands(target, (3000, 3000), _band(3000), mpp=1.0)
    assert list(tmp_path.iterdir()) == []


def test_training_without_room_for_the_cache_goes_on_without_it(trained_project, tmp_path) -> None:
    import shutil

    from cdfis_desktop.core.config import RunConfig
    from cdfis_desktop.core.storage import Project
    from cdfis_desktop.core.training.prepare import prepare_data

    folder = tmp_path / "project"
    shutil.copytree(trained_project.folder, folder)
    with Project.open(folder) as project:
        with file_size_limit(64 << 10):
            data = prepare_data(project, RunConfig(input_px=32, batch_size=8))
            images, _, _ = data.dataset.load_batch(data.train_indices[:4])
    assert images.shape == (4, 3, 32, 32)
    assert "patch cache cannot be written" in data.warning and "without it" in data.warning
    assert list((folder / "cache").glob("patches-*")) == []


def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 12 MiB file system (tmpfs; root only, else skipped)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield from _tmpfs(tmp_path / "disk", "12m")


@pytest.mark.realdata
def test_import_patches_onto_a_full_disk_exits_2_and_leaves_no_scratch(
    tiny_disk: Path, real_data: Path
) -> None:
    """The issue's repro: the mosaic pyramid of a patch set on a disk with little room.
    Before: SIGBUS (exit -7), a .tmp file and a .pyramid-* folder left behind."""
    (tiny_disk / "filler").write_bytes(b"\0" * (9 << 20))  # 3 MiB left
    idc = real_data / "patches" / "idc"
    result = subprocess.run(
        [sys.executable, "-m", "cdfis_desktop", "import-patches", "--project",
         str(tiny_disk / "project"), "--csv", str(idc / "labels.csv"), "--root", str(idc)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr and "free" in result.stderr
    slides = tiny_disk / "project" / "slides"
    leftovers = [p.name for p in slides.iterdir() if p.name.startswith(".")]
    assert leftovers == []
