"""The :class:`Project`: a folder with ``project.toml``, ``project.db``, ``checkpoints/``,
``cache/``, ``slides/`` and ``locks/``; its slides, patches, runs and what runs record.

This module owns the folder's lifecycle (creating, opening, ``project.toml``, the engine,
closing). What the store does is split by concern, each module with one SQL style, and
:class:`Project` is the one object callers hold, delegating to them:

- :mod:`.catalogue`: slides, patches, class names (writes);
- :mod:`.run_lifecycle`: creating runs, status, writer locks, recovery, truncation;
- :mod:`.run_writes`: metrics, predictions, checkpoint registrations;
- :mod:`.history`: the batched importance-history writer and its aggregates;
- :mod:`.queries`: every read.

Thread rules: one :class:`Project` (one engine) per database per process; every method
opens its own short transaction on a pooled connection, so any method may be called from
any thread. Only the training thread writes a run (``history_writer``, ``log_metrics``,
``set_predictions``, ``register_checkpoint``, ``set_run_status``); the GUI thread may call
every read method (``slides``, ``patches``, ``runs``, ``slide_measurements``, ...) while it
writes: SQLite's WAL lets readers see the last committed batch without blocking it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from cdfis_desktop import __version__
from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import CdfisError, ConfigError, NotAProjectError, StoreError
from cdfis_desktop.core.progress import CancelToken, ProgressCallback
from cdfis_desktop.core.storage import (
    catalogue,
    datamaps,
    queries,
    reviews,
    run_lifecycle,
    run_writes,
)
from cdfis_desktop.core.storage.database import (
    make_engine,
    prepare_schema,
    stored_schema_version,
)
from cdfis_desktop.core.storage.history import HistoryWriter
from cdfis_desktop.core.storage.integrity import (
    check_needed,
    database_bytes,
    ensure_intact,
    record_clean_close,
)
from cdfis_desktop.core.storage.location import DATABASE_FILE, locate_database
from cdfis_desktop.core.storage.locks import RunLocks
from cdfis_desktop.core.storage.records import (
    CheckpointRecord,
    PatchHistory,
    PatchStat,
    PatchTable,
    ReviewInput,
    ReviewTable,
    RunComparison,
    RunSummary,
    ScoreAges,
    SlideMeasurements,
    SlideRecord,
    StoredDataMap,
)
from cdfis_desktop.core.storage.schema import SCHEMA_VERSION

PROJECT_TOML = "project.toml"


class Project:
    """An open project. Use :meth:`create` / :meth:`open`, then ``with`` or :meth:`close`."""

    def __init__(
        self,
        folder: Path,
        *,
        create: bool,
        url: str | None,
        sqlite_pragmas: Mapping[str, int | str] | None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.folder = folder.resolve()
        settings = _read_or_create_toml(self.folder, create=create, url=url)
        self.name: str = str(settings.get("name", self.folder.name))
        location = locate_database(self.folder, url or settings.get("database_url"))
        self.url: str = location.url
        self.read_only = location.read_only
        self._db_file = location.path
        self._where = str(location.path)
        self._locks = RunLocks(self.locks_dir)
        self._geometry = queries.SlideGeometryCache()
        default_database = location.is_default
        if not create and default_database and not self.db_path.exists():
            raise NotAProjectError(
                f"{self.folder} has a {PROJECT_TOML} but its database {DATABASE_FILE} is "
                "missing; restore it (project.db.v*-backup-* files are copies made before "
                f"upgrades), or delete {PROJECT_TOML} to make a new project here"
            )
        self.engine = make_engine(self.url, sqlite_pragmas=sqlite_pragmas)
        try:
            ensure_intact(
                self.engine, self.db_path, self.cache_dir, progress=progress, cancel=cancel
            )
            prepare_schema(
                self.engine,
                # beside project.toml, an empty database file is an unfinished creation
                create=create or (default_database and (self.folder / PROJECT_TOML).exists()),
                where=self._where,
                db_path=self.db_path,
                progress=progress,
                cancel=cancel,
            )
            self.recover_interrupted_runs()
        except BaseException:
            self.engine.dispose()
            raise

    # ---- lifecycle -------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | os.PathLike[str], *, url: str | None = None) -> Project:
        """Create a new project in ``folder`` (made if missing). Raises :class:`StoreError`
        if it already holds a project or cannot be written."""
        path = Path(folder).expanduser()
        if (path / PROJECT_TOML).exists() or (path / DATABASE_FILE).exists():
            raise StoreError(f"{path} already holds a cdfis project; open it instead")
        return cls(path, create=True, url=url, sqlite_pragmas=None)

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        create: bool = False,
        url: str | None = None,
        sqlite_pragmas: Mapping[str, int | str] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Project:
        """Open the project in ``folder`` (or create it when ``create`` and absent).

        ``url``: another SQLite file inside ``folder`` instead of ``project.db`` (see
        :mod:`.location`; the store's SQL is SQLite's: ``group_concat``, ``WITHOUT ROWID``
        tables, upserts). ``sqlite_pragmas``: extra PRAGMAs for every SQLite connection
        (e.g. ``max_page_count``). A damaged database is refused (see :mod:`.integrity`);
        a read-only folder is opened read-only (:attr:`read_only`). An older schema is
        migrated after a backup (:meth:`pending_upgrade` says whether it will be; the
        backup and the migration report to ``progress`` and stop at ``cancel`` with
        :class:`Cancelled`, the database left at its old version); the integrity check
        after an unclean close (:meth:`pending_check_bytes`) reports to ``progress`` too and
        stops at ``cancel`` (nothing opened; the next open checks again); runs left ``running``
        whose writer is gone are marked ``interrupted``. Raises :class:`NotAProjectError`,
        :class:`SchemaVersionError`, :class:`DamagedDatabaseError`, :class:`StoreError`."""
        path = Path(folder).expanduser()
        if path.is_file():
            raise NotAProjectError(
                f"{path} is a file; choose the project folder (the one holding {PROJECT_TOML})"
            )
        exists = (path / PROJECT_TOML).exists() or (path / DATABASE_FILE).exists()
        if not exists and not create:
            raise NotAProjectError(
                f"{path} is not a cdfis project (no {PROJECT_TOML} or {DATABASE_FILE}); "
                "create one first or choose another folder"
            )
        return cls(
            path,
            create=not exists,
            url=url,
            sqlite_pragmas=sqlite_pragmas,
            progress=progress,
            cancel=cancel,
        )

    @staticmethod
    def pending_upgrade(folder: str | os.PathLike[str]) -> tuple[int, int] | None:
        """``(stored, current)`` schema versions when :meth:`open` would migrate the
        project in ``folder`` (a backup and an upgrade: long for a big database), else None
        (also when it is not a readable project: :meth:`open` then says why). Reads the
        database read-only; any thread."""
        db_path = _database_file(folder)
        version = None if db_path is None else stored_schema_version(db_path)
        return None if version is None or version >= SCHEMA_VERSION else (version, SCHEMA_VERSION)

    @staticmethod
    def pending_check_bytes(folder: str | os.PathLike[str]) -> int:
        """Bytes (database and WAL) that :meth:`open` will read in the integrity check of
        the project in ``folder``, 0 when it skips the check (no change since the last
        clean close, see :mod:`.integrity`) or it is not a readable project. Reads file
        metadata only; any thread."""
        db_path = _database_file(folder)
        if db_path is None or not db_path.exists():
            return 0
        if not check_needed(db_path, Path(folder).expanduser().resolve() / "cache"):
            return 0
        return database_bytes(db_path)

    @staticmethod
    def long_open(folder: str | os.PathLike[str]) -> bool:
        """Whether :meth:`open` of the project in ``folder`` will upgrade its schema or run
        an integrity check of at least ``integrity.LONG_CHECK_BYTES``: long enough that the
        GUI opens it behind a progress dialog and the CLI prints progress. File metadata
        and the schema version only; any thread."""
        from cdfis_desktop.core.storage import integrity

        return (
            Project.pending_upgrade(folder) is not None
            or Project.pending_check_bytes(folder) >= integrity.LONG_CHECK_BYTES
        )

    @property
    def db_path(self) -> Path:
        """The SQLite file (``project.db`` unless project.toml names another one inside
        the folder, see :mod:`.location`)."""
        return self._db_file

    @property
    def checkpoints_dir(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"

    @property
    def slides_dir(self) -> Path:
        return self.folder / "slides"

    @property
    def locks_dir(self) -> Path:
        return self.folder / "locks"

    def close(self) -> None:
        """Release this process's run locks and the engine. Runs still ``running`` show as
        ``interrupted`` at the next open."""
        self._locks.release_all()
        self.engine.dispose()
        if not self.read_only:
            record_clean_close(self.db_path, self.cache_dir)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- catalogue: slides, classes, patches (writes: .catalogue) ----------------------

    def add_slide(
        self,
        path: str | os.PathLike[str],
        *,
        fingerprint: str,
        width: int,
        height: int,
        mpp: float | None,
        mpp_overridden: bool = False,
        vendor: str = "",
        group: str = "",
    ) -> int:
        """Add a slide (width/height level-0 px, mpp µm/px at level 0 or None); ``group``
        is the patient/case id. Returns the new slide id."""
        return catalogue.add_slide(
            self.engine,
            self._where,
            path,
            fingerprint=fingerprint,
            width=width,
            height=height,
            mpp=mpp,
            mpp_overridden=mpp_overridden,
            vendor=vendor,
            group=group,
        )

    def set_slide_mpp(self, slide_id: int, mpp: float) -> None:
        """Override a slide's level-0 µm/px (marks it ``mpp_overridden``).
        Raises ConfigError if ``mpp`` is not positive, StoreError for an unknown slide."""
        if not mpp > 0:
            raise ConfigError(f"mpp must be positive (got {mpp})")
        catalogue.update_slide(
            self.engine, self._where, slide_id, mpp=float(mpp), mpp_overridden=True
        )

    def set_slide_group(self, slide_id: int, group: str) -> None:
        """Set the patient/case id of a slide (used to split by patient)."""
        catalogue.update_slide(self.engine, self._where, slide_id, group_name=group)

    def slides(self) -> list[SlideRecord]:
        """All slides, ordered by id (``SlideRecord.open()`` opens one)."""
        return queries.slide_records(self.engine, self._where, self.folder)

    def delete_slide(self, slide_id: int) -> None:
        """Delete a slide, its patches, and every run's history, aggregates and predictions
        for those patches. Runs themselves are kept."""
        catalogue.delete_slide(self.engine, self._where, slide_id)

    def set_class_names(self, names: Sequence[str]) -> None:
        """Replace the class names; ``patches.label`` k means ``names[k]``."""
        catalogue.set_class_names(self.engine, self._where, names)

    def class_names(self) -> list[str]:
        """Class names in label order (empty when none set)."""
        return queries.class_names(self.engine, self._where)

    def add_patches(
        self,
        slide_id: int,
        *,
        l0_x: np.ndarray,
        l0_y: np.ndarray,
        l0_size: int | np.ndarray,
        patch_px: int | np.ndarray,
        mpp: float | np.ndarray,
        label: int | np.ndarray,
        tissue_fraction: float | np.ndarray,
        split: str | None | Sequence[str | None] = None,
        source: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Bulk-insert n patches of one slide; scalars are broadcast to n.

        l0_x, l0_y: int[n] level-0 top-left corners; l0_size: level-0 side px; patch_px:
        side px at ``mpp`` µm/px; label: int (-1 unlabelled); tissue_fraction in [0, 1];
        split: ``train``/``val``/``test``/None; source: each patch's image file name (a
        patch-set import) or None. Returns the new ids, int64[n], in input order. Raises
        ValueError on mismatched lengths or an unknown split."""
        return catalogue.add_patches(
            self.engine,
            self._where,
            slide_id,
            l0_x=l0_x,
            l0_y=l0_y,
            l0_size=l0_size,
            patch_px=patch_px,
            mpp=mpp,
            label=label,
            tissue_fraction=tissue_fraction,
            split=split,
            source=source,
        )

    def patches(
        self,
        slide_id: int | None = None,
        split: str | None = None,
        *,
        patch_ids: np.ndarray | None = None,
    ) -> PatchTable:
        """Patches, optionally of one slide, one split and/or with the given ids (unknown
        ids are left out), ordered by id."""
        return queries.patch_table(self.engine, self._where, slide_id, split, patch_ids)

    def patch_keys(
        self, patch_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(id, slide_id, label) int64 arrays of all patches (or ``patch_ids``), by id."""
        return queries.patch_keys(self.engine, self._where, patch_ids)

    def set_splits(self, patch_ids: np.ndarray, splits: str | None | Sequence[str | None]) -> None:
        """Assign ``train``/``val``/``test``/None to patches (a scalar applies to all)."""
        catalogue.set_splits(self.engine, self._where, patch_ids, splits)

    # ---- run lifecycle: creation, status, locks, recovery (.run_lifecycle) -------------

    def create_run(
        self, config: RunConfig, *, n_train: int, device: str | None = None, name: str = ""
    ) -> int:
        """Start a run of ``config`` on ``n_train`` training patches (status ``running``;
        this process takes its writer lock).

        ``config`` is validated here (``RunConfig.validate``, the one place run settings
        are checked) and stored as ``config.to_dict()``; its sampler rule, mode, score
        metric and seed are also kept as columns. ``device``: the device the run actually
        uses (default ``config.device``). Versions of python, numpy, cdfis, and torch (if
        imported) are recorded. Returns the run id. Raises ConfigError for invalid
        settings."""
        return run_lifecycle.create_run(
            self.engine, self._where, self._locks, config, n_train=n_train, device=device,
            name=name,
        )  # fmt: skip

    def set_run_status(self, run_id: int, status: str, *, error: str | None = None) -> None:
        """Set a run's status. ``running`` (e.g. on resume) takes the writer lock; any
        other status records the end time and releases it. Raises RunLockedError if
        another live process writes the run, ConfigError for an unknown status."""
        run_lifecycle.set_run_status(self.engine, self._where, self._locks, run_id, status, error)

    def set_switch_step(self, run_id: int, step: int) -> None:
        """Record the step at which importance sampling switched on."""
        run_lifecycle.set_switch_step(self.engine, self._where, run_id, step)

    def recover_interrupted_runs(self) -> list[int]:
        """Mark ``interrupted`` every ``running`` run whose writer lock is free (its process
        died). The lock is held while the run is marked, so a process resuming the run at
        that moment gets RunLockedError instead of running under a wrong status. Called on
        open and by :meth:`runs`. Returns the ids marked (none in a read-only project)."""
        if self.read_only:
            return []
        return run_lifecycle.recover_interrupted_runs(self.engine, self._where, self._locks)

    def history_writer(
        self, run_id: int, *, flush_every_steps: int = 20, resume_after_step: int | None = None
    ) -> HistoryWriter:
        """The batched history writer of a ``running`` run (training thread only).

        ``resume_after_step``: when resuming from a checkpoint at that step, history and
        metrics after it are deleted and the aggregates rebuilt, so the re-run steps are
        not counted twice. Raises RunLockedError (another process writes the run),
        StoreError (unknown or not running)."""
        return run_lifecycle.history_writer(
            self.engine,
            self._where,
            self._locks,
            run_id,
            flush_every_steps=flush_every_steps,
            resume_after_step=resume_after_step,
        )

    def truncate_run(self, run_id: int, after_step: int) -> None:
        """Delete the run's history, metrics and checkpoints after ``after_step`` and
        rebuild its aggregates from the remaining history (one transaction). Takes the
        run's writer lock (kept until the run ends or the project closes); raises
        RunLockedError while another process writes the run."""
        run_lifecycle.truncate_run(self.engine, self._where, self._locks, run_id, after_step)

    # ---- run writes: metrics, predictions, checkpoints (.run_writes) --------------------

    def log_metrics(
        self,
        run_id: int,
        step: int,
        epoch: int,
        wall_s: float,
        *,
        train_loss: float | None = None,
        val_loss: float | None = None,
        val_accuracy: float | None = None,
        val_balanced_accuracy: float | None = None,
        val_auc: float | None = None,
        samples_per_s: float | None = None,
    ) -> None:
        """Record metrics at a step (``wall_s``: training seconds since the run started).
        Logging the same step twice merges: values given later win, None keeps the old."""
        values = {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "val_balanced_accuracy": val_balanced_accuracy,
            "val_auc": val_auc,
            "samples_per_s": samples_per_s,
        }
        run_writes.log_metrics(self.engine, self._where, run_id, step, epoch, wall_s, values)

    def set_predictions(
        self,
        run_id: int,
        epoch: int,
        patch_ids: np.ndarray,
        predicted_label: np.ndarray,
        probability: np.ndarray,
    ) -> None:
        """Store per-patch predictions at an epoch (int64[n] ids, int[n] labels, float[n]
        probability of the predicted class); replaces earlier values of the same epoch."""
        run_writes.set_predictions(
            self.engine, self._where, run_id, epoch, patch_ids, predicted_label, probability
        )

    def register_checkpoint(
        self, run_id: int, step: int, epoch: int, path: str | os.PathLike[str]
    ) -> int:
        """Register a written checkpoint file; stored relative to the project folder when
        inside it (so the project can be moved). Returns the checkpoint id."""
        return run_writes.register_checkpoint(
            self.engine, self._where, self.folder, run_id, step, epoch, path
        )

    # ---- reads (.queries; safe from the GUI thread while training writes) --------------

    def latest_checkpoint(self, run_id: int) -> CheckpointRecord | None:
        """The checkpoint with the highest step (then latest registered), or None."""
        checkpoints = self.checkpoints(run_id)
        return checkpoints[-1] if checkpoints else None

    def checkpoints(self, run_id: int) -> list[CheckpointRecord]:
        """The run's checkpoints ordered by step, absolute paths."""
        return queries.checkpoints(self.engine, self._where, self.folder, run_id)

    def runs(self) -> list[RunSummary]:
        """Summaries of all runs, newest first (stale ``running`` runs marked first)."""
        self.recover_interrupted_runs()
        return queries.run_summaries(self.engine, self._where, None)

    def run(self, run_id: int) -> RunSummary:
        """The summary of one run; StoreError if unknown."""
        self.recover_interrupted_runs()
        found = queries.run_summaries(self.engine, self._where, [run_id])
        if not found:
            raise StoreError(f"no run with id {run_id} in {self._where}")
        return found[0]

    def metrics(self, run_id: int) -> dict[str, np.ndarray]:
        """The run's metric series ordered by step (see :func:`queries.metric_series`)."""
        return queries.metric_series(self.engine, self._where, run_id)

    def compare_runs(self, run_ids: Sequence[int]) -> RunComparison:
        """Summaries and metric series of several runs, in the order given."""
        summaries = [self.run(run_id) for run_id in run_ids]
        return RunComparison(
            summaries=summaries, metrics={s.id: self.metrics(s.id) for s in summaries}
        )

    def score_ages(self, run_id: int) -> ScoreAges:
        """Score age (median, 90th percentile) at each epoch's end (see :func:`queries.score_ages`)."""
        return queries.score_ages(self.engine, self._where, run_id)

    def chosen_shares(self, run_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Share of training patches chosen at least once by each epoch's end (see
        :func:`queries.chosen_shares`)."""
        return queries.chosen_shares(self.engine, self._where, run_id)

    def epochs(self, run_id: int) -> list[int]:
        """Epochs with recorded history, ascending."""
        return queries.epochs(self.engine, self._where, run_id)

    def slide_measurements(
        self, run_id: int, slide_id: int, epoch: int | None = None
    ) -> SlideMeasurements:
        """Every per-patch aggregate, label and prediction of one slide in one run, in one
        snapshot (see :func:`queries.slide_measurements`); heatmap values per metric come
        from ``core.heatmap.metrics``."""
        return queries.slide_measurements(
            self.engine, self._where, self._geometry, run_id, slide_id, epoch
        )

    def favoured_patches(
        self,
        run_id: int,
        n: int,
        *,
        ignored: bool = False,
        slide_id: int | None = None,
        label: int | None = None,
        epoch: int | None = None,
    ) -> list[PatchStat]:
        """The ``n`` most favoured (or, with ``ignored``, most ignored) training patches."""
        return queries.favoured_patches(
            self.engine,
            self._where,
            run_id,
            n,
            ignored=ignored,
            slide_id=slide_id,
            label=label,
            epoch=epoch,
        )

    def patch_history(self, run_id: int, patch_id: int) -> PatchHistory:
        """Every recorded step of one patch in a run."""
        return queries.patch_history(self.engine, self._where, run_id, patch_id)

    def score_distribution(
        self, run_id: int, *, step: int | None = None, epoch: int | None = None
    ) -> np.ndarray:
        """float32 scores of all candidates at ``step``, or every latest score of ``epoch``."""
        return queries.score_distribution(self.engine, self._where, run_id, step, epoch)

    # ---- review decisions (see :mod:`.reviews`) ----------------------------------------

    def add_review_decisions(
        self, decisions: Sequence[ReviewInput], *, now: float | None = None
    ) -> list[int]:
        """Store review decisions, all or none (see :func:`reviews.add_decisions`)."""
        return reviews.add_decisions(
            self.engine,
            self._where,
            decisions,
            class_count=max(len(self.class_names()), 2),
            now=now,
        )

    def review_decisions(self, *, in_force_at: float | None = None) -> ReviewTable:
        """All decisions, or each patch's decision in force at a time (``math.inf``: now)."""
        return reviews.decisions(self.engine, self._where, in_force_at=in_force_at)

    # ---- data maps (see :mod:`.datamaps`) ---------------------------------------------

    def fold_dynamics(
        self, run_id: int, fold: datamaps.EpochFold, *, max_epochs: int | None = None
    ) -> int | None:
        """Feed each epoch's training-dynamics sums to ``fold``; returns the run's last
        history step (see :func:`datamaps.fold_epochs`)."""
        return datamaps.fold_epochs(self.engine, self._where, run_id, fold, max_epochs=max_epochs)

    def save_data_map(
        self, run_id: int, *, last_step: int, n_epochs: int, arrays: dict[str, np.ndarray]
    ) -> None:
        """Store the run's data map (replacing an older one)."""
        datamaps.save(
            self.engine, self._where, run_id, last_step=last_step, n_epochs=n_epochs, arrays=arrays
        )

    def stored_data_map(self, run_id: int) -> StoredDataMap | None:
        """The run's stored data map, if any (``fresh`` says whether it is up to date)."""
        return datamaps.load(self.engine, self._where, run_id)


def _database_file(folder: str | os.PathLike[str]) -> Path | None:
    """The database file of the project in ``folder`` (None: no readable project.toml or
    a database outside it); reads project.toml only."""
    path = Path(folder).expanduser().resolve()
    try:
        settings = _read_or_create_toml(path, create=False, url=None)
        return locate_database(path, settings.get("database_url")).path
    except CdfisError:
        return None


def _read_or_create_toml(folder: Path, *, create: bool, url: str | None) -> dict[str, Any]:
    """Read ``project.toml``; when ``create``, make the folders and write it atomically.
    Raises StoreError (cannot write) or NotAProjectError (unreadable TOML)."""
    toml_path = folder / PROJECT_TOML
    if create:
        settings: dict[str, Any] = {
            "name": folder.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "schema_version": SCHEMA_VERSION,
            "app_version": __version__,
        }
        if url:
            settings["database_url"] = url
        try:
            for sub in ("", "checkpoints", "cache", "slides", "locks"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            partial = toml_path.with_name(PROJECT_TOML + ".partial")
            partial.write_bytes(tomli_w.dumps(settings).encode("utf-8"))
            os.replace(partial, toml_path)
        except OSError as exc:
            raise StoreError(
                f"cannot create a project in {folder}: {exc.strerror or exc}; choose a folder "
                "you can write to"
            ) from exc
        return settings
    if not toml_path.exists():
        return {}
    try:
        return tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise NotAProjectError(
            f"{toml_path} is not a readable project file ({exc}); fix or delete it"
        ) from exc
