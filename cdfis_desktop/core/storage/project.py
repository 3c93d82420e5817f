"""The :class:`Project`: a folder with ``project.toml``, ``project.db``, ``checkpoints/``,
``cache/``, ``slides/`` and ``locks/``; its slides, patches, runs and what runs record.

Thread rules: one :class:`Project` (one engine) per database per process; every method
opens its own short transaction on a pooled connection, so any method may be called from
any thread. Only the training thread writes a run (``history_writer``, ``log_metrics``,
``set_predictions``, ``register_checkpoint``, ``set_run_status``); the GUI thread may call
every read method (``slides``, ``patches``, ``runs``, ``heatmap_values``, ...) while it
writes: SQLite's WAL lets readers see the last committed batch without blocking it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
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
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from cdfis_desktop import __version__
from cdfis_desktop.core.config import SAMPLER_MODES, SAMPLER_RULES, SCORE_METRICS
from cdfis_desktop.core.errors import ConfigError, NotAProjectError, StoreError
from cdfis_desktop.core.storage import aggregates, datamaps, queries, reviews
from cdfis_desktop.core.storage.database import (
    begin_writing,
    make_engine,
    prepare_schema,
    translated_errors,
)
from cdfis_desktop.core.storage.history import HistoryWriter, rebuild_aggregates
from cdfis_desktop.core.storage.locks import RunLock, writer_identity
from cdfis_desktop.core.storage.records import (
    RUN_STATUSES,
    SPLITS,
    CheckpointRecord,
    HeatmapValues,
    PatchHistory,
    PatchStat,
    PatchTable,
    ReviewInput,
    ReviewTable,
    RunComparison,
    RunSummary,
    SlideRecord,
    StoredDataMap,
)
from cdfis_desktop.core.storage.schema import (
    SCHEMA_VERSION,
    Checkpoint,
    ClassName,
    Patch,
    Run,
    Slide,
)

PROJECT_TOML = "project.toml"
DATABASE_FILE = "project.db"


class Project:
    """An open project. Use :meth:`create` / :meth:`open`, then ``with`` or :meth:`close`."""

    def __init__(
        self,
        folder: Path,
        *,
        create: bool,
        url: str | None,
        sqlite_pragmas: Mapping[str, int | str] | None,
    ) -> None:
        self.folder = folder.resolve()
        settings = _read_or_create_toml(self.folder, create=create, url=url)
        self.name: str = str(settings.get("name", self.folder.name))
        self.url: str = url or str(settings.get("database_url") or f"sqlite:///{self.db_path}")
        self._where = str(self.db_path) if self.url.startswith("sqlite") else self.url
        self._locks: dict[int, RunLock] = {}
        self._geometry = queries.SlideGeometryCache()
        default_database = self.url == f"sqlite:///{self.db_path}"
        if not create and default_database and not self.db_path.exists():
            raise NotAProjectError(
                f"{self.folder} has a {PROJECT_TOML} but its database {DATABASE_FILE} is "
                "missing; restore it (project.db.v*-backup-* files are copies made before "
                f"upgrades), or delete {PROJECT_TOML} to make a new project here"
            )
        self.engine = make_engine(self.url, sqlite_pragmas=sqlite_pragmas)
        try:
            prepare_schema(
                self.engine,
                # beside project.toml, an empty database file is an unfinished creation
                create=create or (default_database and (self.folder / PROJECT_TOML).exists()),
                where=self._where,
                db_path=self.db_path if self.engine.dialect.name == "sqlite" else None,
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
    ) -> Project:
        """Open the project in ``folder`` (or create it when ``create`` and absent).

        ``url``: any SQLAlchemy URL instead of ``<folder>/project.db``. ``sqlite_pragmas``:
        extra PRAGMAs for every SQLite connection (e.g. ``max_page_count``). An older
        schema is migrated after a backup; runs left ``running`` whose writer is gone are
        marked ``interrupted``. Raises :class:`NotAProjectError`,
        :class:`SchemaVersionError`, :class:`StoreError`."""
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
        return cls(path, create=not exists, url=url, sqlite_pragmas=sqlite_pragmas)

    @property
    def db_path(self) -> Path:
        return self.folder / DATABASE_FILE

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
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- slides and classes ----------------------------------------------------------

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
        with translated_errors(self._where), Session(self.engine) as session, session.begin():
            slide = Slide(
                path=str(path),
                fingerprint=fingerprint,
                width=int(width),
                height=int(height),
                mpp=None if mpp is None else float(mpp),
                mpp_overridden=bool(mpp_overridden),
                vendor=vendor,
                group_name=group,
                added_at=time.time(),
            )
            session.add(slide)
            session.flush()
            return int(slide.id)

    def set_slide_mpp(self, slide_id: int, mpp: float) -> None:
        """Override a slide's level-0 µm/px (marks it ``mpp_overridden``).
        Raises ConfigError if ``mpp`` is not positive, StoreError for an unknown slide."""
        if not mpp > 0:
            raise ConfigError(f"mpp must be positive (got {mpp})")
        self._update_slide(slide_id, mpp=float(mpp), mpp_overridden=True)

    def set_slide_group(self, slide_id: int, group: str) -> None:
        """Set the patient/case id of a slide (used to split by patient)."""
        self._update_slide(slide_id, group_name=group)

    def _update_slide(self, slide_id: int, **values: Any) -> None:
        with translated_errors(self._where), self.engine.begin() as conn:
            result = conn.execute(update(Slide).where(Slide.id == slide_id).values(**values))
            if result.rowcount == 0:
                raise StoreError(f"no slide with id {slide_id} in {self._where}")

    def slides(self) -> list[SlideRecord]:
        """All slides, ordered by id."""
        with translated_errors(self._where), self.engine.connect() as conn:
            rows = conn.execute(select(Slide.__table__).order_by(Slide.id)).mappings().all()
        return [
            SlideRecord(
                id=r["id"],
                path=r["path"],
                fingerprint=r["fingerprint"],
                width=r["width"],
                height=r["height"],
                mpp=r["mpp"],
                mpp_overridden=bool(r["mpp_overridden"]),
                vendor=r["vendor"],
                group=r["group_name"],
            )
            for r in rows
        ]

    def delete_slide(self, slide_id: int) -> None:
        """Delete a slide, its patches, and every run's history, aggregates and predictions
        for those patches. Runs themselves are kept."""
        patch_ids = select(Patch.id).where(Patch.slide_id == slide_id).scalar_subquery()
        with translated_errors(self._where), self.engine.begin() as conn:
            begin_writing(conn)  # no history flush may commit between reading and rewriting
            doomed = conn.execute(select(Patch.id).where(Patch.slide_id == slide_id)).scalars()
            aggregates.zero_patches(conn, np.fromiter(doomed, dtype=np.int64))
            for table in ("history", "predictions"):
                conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE patch_id IN (SELECT id FROM patches "
                        "WHERE slide_id = :slide_id)"
                    ),
                    {"slide_id": slide_id},
                )
            conn.execute(delete(Patch).where(Patch.id.in_(patch_ids)))
            conn.exec_driver_sql("DELETE FROM data_maps")  # recomputed without those patches
            conn.exec_driver_sql(queries.BUMP_PATCHES_VERSION)
            result = conn.execute(delete(Slide).where(Slide.id == slide_id))
            if result.rowcount == 0:
                raise StoreError(f"no slide with id {slide_id} in {self._where}")

    def set_class_names(self, names: Sequence[str]) -> None:
        """Replace the class names; ``patches.label`` k means ``names[k]``."""
        with translated_errors(self._where), self.engine.begin() as conn:
            conn.execute(delete(ClassName))
            if names:
                conn.execute(
                    insert(ClassName),
                    [{"label": k, "name": str(n)} for k, n in enumerate(names)],
                )

    def class_names(self) -> list[str]:
        """Class names in label order (empty when none set)."""
        with translated_errors(self._where), self.engine.connect() as conn:
            return list(conn.execute(select(ClassName.name).order_by(ClassName.label)).scalars())

    # ---- patches ---------------------------------------------------------------------

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
        xs = np.asarray(l0_x, dtype=np.int64).ravel()
        n = xs.shape[0]
        columns = {
            "l0_y": np.broadcast_to(np.asarray(l0_y, dtype=np.int64), (n,)),
            "l0_size": np.broadcast_to(np.asarray(l0_size, dtype=np.int64), (n,)),
            "patch_px": np.broadcast_to(np.asarray(patch_px, dtype=np.int64), (n,)),
            "mpp": np.broadcast_to(np.asarray(mpp, dtype=np.float64), (n,)),
            "label": np.broadcast_to(np.asarray(label, dtype=np.int64), (n,)),
            "tissue_fraction": np.broadcast_to(np.asarray(tissue_fraction, np.float64), (n,)),
        }
        splits = _split_list(split, n)
        sources = [None] * n if source is None else [None if s is None else str(s) for s in source]
        if len(sources) != n:
            raise ValueError(f"got {len(sources)} sources for {n} patches")
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        rows = list(
            zip(
                [int(slide_id)] * n,
                xs.tolist(),
                *(columns[k].tolist() for k in columns),
                splits,
                sources,
                strict=True,
            )
        )
        sql = (
            "INSERT INTO patches (slide_id, l0_x, l0_y, l0_size, patch_px, mpp, label, "
            "tissue_fraction, split, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        with translated_errors(self._where), self.engine.begin() as conn:
            begin_writing(conn)  # no other writer may change the ids between these reads
            exists = conn.execute(select(Slide.id).where(Slide.id == slide_id)).scalar()
            if exists is None:
                raise StoreError(f"no slide with id {slide_id} in {self._where}")
            first = conn.execute(select(func.coalesce(func.max(Patch.id), 0))).scalar_one()
            conn.exec_driver_sql(sql, rows)
            conn.exec_driver_sql(queries.BUMP_PATCHES_VERSION)
            ids = (
                conn.execute(
                    select(Patch.id)
                    .where(Patch.slide_id == slide_id, Patch.id > first)
                    .order_by(Patch.id)
                )
                .scalars()
                .all()
            )
        return np.asarray(ids, dtype=np.int64)

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
        ids = np.asarray(patch_ids, dtype=np.int64).ravel().tolist()
        values = _split_list(splits, len(ids))
        with translated_errors(self._where), self.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE patches SET split = ? WHERE id = ?", list(zip(values, ids, strict=True))
            )
            conn.exec_driver_sql(queries.BUMP_PATCHES_VERSION)

    # ---- runs ------------------------------------------------------------------------

    def create_run(
        self,
        config: Mapping[str, Any],
        *,
        sampler_rule: str,
        sampler_mode: str,
        metric: str,
        seed: int,
        device: str,
        n_train: int,
        name: str = "",
    ) -> int:
        """Start a run (status ``running``; this process takes its writer lock).

        ``config`` is ``RunConfig.to_dict()`` (JSON-serialisable). Versions of python,
        numpy, cdfis, and torch (if imported) are recorded. Returns the run id. Raises
        ConfigError for an unknown sampler rule/mode/metric or a non-JSON config."""
        for what, value, allowed in (
            ("sampler rule", sampler_rule, SAMPLER_RULES),
            ("sampler mode", sampler_mode, SAMPLER_MODES),
            ("score metric", metric, SCORE_METRICS),
        ):
            if value not in allowed:
                raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
        try:
            config_json = json.dumps(dict(config), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the run configuration cannot be stored as JSON: {exc}") from exc
        pid, host = writer_identity()
        with translated_errors(self._where), Session(self.engine) as session, session.begin():
            run = Run(
                name=name,
                config=config_json,
                sampler_rule=sampler_rule,
                sampler_mode=sampler_mode,
                metric=metric,
                seed=int(seed),
                device=device,
                n_train=int(n_train),
                versions=json.dumps(software_versions()),
                status="running",
                started_at=time.time(),
                writer_pid=pid,
                writer_host=host,
            )
            session.add(run)
            session.flush()
            run_id = int(run.id)
            # Lock before the commit makes the run visible: no reader can see it
            # "running" without a live lock and mark it interrupted.
            lock = RunLock(self.locks_dir, run_id)
            lock.acquire()
        self._locks[run_id] = lock
        return run_id

    def set_run_status(self, run_id: int, status: str, *, error: str | None = None) -> None:
        """Set a run's status. ``running`` (e.g. on resume) takes the writer lock; any
        other status records the end time and releases it. Raises RunLockedError if
        another live process writes the run, ConfigError for an unknown status."""
        if status not in RUN_STATUSES:
            raise ConfigError(f"unknown run status {status!r}; choose one of: {RUN_STATUSES}")
        lock = self._lock_for(run_id)
        values: dict[str, Any]
        if status == "running":
            pid, host = writer_identity()
            values = {"ended_at": None, "error": None, "writer_pid": pid, "writer_host": host}
        else:
            values = {"ended_at": time.time(), "error": error}
        with translated_errors(self._where), self.engine.begin() as conn:
            result = conn.execute(
                update(Run).where(Run.id == run_id).values(status=status, **values)
            )
            if result.rowcount == 0:
                raise StoreError(f"no run with id {run_id} in {self._where}")
        if status != "running":
            lock.release()
            self._locks.pop(run_id, None)

    def _lock_for(self, run_id: int) -> RunLock:
        """This process's lock of ``run_id``, taken now if free; RunLockedError if not."""
        lock = self._locks.get(run_id) or RunLock(self.locks_dir, run_id)
        lock.acquire()
        self._locks[run_id] = lock
        return lock

    def set_switch_step(self, run_id: int, step: int) -> None:
        """Record the step at which importance sampling switched on."""
        with translated_errors(self._where), self.engine.begin() as conn:
            conn.execute(update(Run).where(Run.id == run_id).values(switch_step=int(step)))

    def recover_interrupted_runs(self) -> list[int]:
        """Mark ``interrupted`` every ``running`` run whose writer lock is free (its process
        died). The lock is held while the run is marked, so a process resuming the run at
        that moment gets RunLockedError instead of running under a wrong status. Called on
        open and by :meth:`runs`. Returns the ids marked."""
        with translated_errors(self._where), self.engine.connect() as conn:
            running = conn.execute(select(Run.id).where(Run.status == "running")).scalars().all()
        stale = []
        for run_id in running:
            lock = RunLock(self.locks_dir, run_id)
            if run_id in self._locks or not lock.try_acquire():
                continue  # written by this project or by a live process
            try:
                with translated_errors(self._where), self.engine.begin() as conn:
                    marked = conn.execute(
                        update(Run)
                        .where(Run.id == run_id, Run.status == "running")
                        .values(
                            status="interrupted",
                            error="the writing process ended without closing the run",
                        )
                    ).rowcount
            finally:
                lock.release()
            if marked:
                stale.append(run_id)
        return stale

    def history_writer(
        self, run_id: int, *, flush_every_steps: int = 20, resume_after_step: int | None = None
    ) -> HistoryWriter:
        """The batched history writer of a ``running`` run (training thread only).

        ``resume_after_step``: when resuming from a checkpoint at that step, history and
        metrics after it are deleted and the aggregates rebuilt, so the re-run steps are
        not counted twice. Raises RunLockedError (another process writes the run),
        StoreError (unknown or not running)."""
        status = self._run_status(run_id)
        if status != "running":
            raise StoreError(
                f"run {run_id} is {status}; set it running (resume) before writing history"
            )
        self._lock_for(run_id)
        if resume_after_step is not None:
            self.truncate_run(run_id, resume_after_step)
        with translated_errors(self._where), self.engine.connect() as conn:
            last = conn.exec_driver_sql(
                "SELECT step, epoch FROM history_steps WHERE run_id = ? ORDER BY step DESC LIMIT 1",
                (run_id,),
            ).one_or_none()
        last_recorded = None if last is None else (int(last[0]), int(last[1]))
        return HistoryWriter(self.engine, self._where, run_id, flush_every_steps, last_recorded)

    def _run_status(self, run_id: int) -> str:
        with translated_errors(self._where), self.engine.connect() as conn:
            status = conn.execute(select(Run.status).where(Run.id == run_id)).scalar()
        if status is None:
            raise StoreError(f"no run with id {run_id} in {self._where}")
        return str(status)

    def truncate_run(self, run_id: int, after_step: int) -> None:
        """Delete the run's history, metrics and checkpoints after ``after_step`` and
        rebuild its aggregates from the remaining history (one transaction). Takes the
        run's writer lock (kept until the run ends or the project closes); raises
        RunLockedError while another process writes the run."""
        self._lock_for(run_id)
        with translated_errors(self._where), self.engine.begin() as conn:
            params = {"run_id": run_id, "step": int(after_step)}
            # history is keyed by block: seek to the first block holding a later step
            conn.execute(
                text(
                    "DELETE FROM history WHERE run_id = :run_id AND block >= (SELECT "
                    "COALESCE(MIN(block), :step + 1) FROM history_steps WHERE run_id = :run_id "
                    "AND step > :step) AND block + step_offset > :step"
                ),
                params,
            )
            for table in ("history_steps", "metrics", "checkpoints"):
                conn.execute(
                    text(f"DELETE FROM {table} WHERE run_id = :run_id AND step > :step"), params
                )
            rebuild_aggregates(conn, run_id)
            last = conn.execute(
                text("SELECT MAX(step) FROM history_steps WHERE run_id = :run_id"), params
            ).scalar()
            conn.execute(update(Run).where(Run.id == run_id).values(last_step=last))

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
        values = [train_loss, val_loss, val_accuracy, val_balanced_accuracy, val_auc, samples_per_s]
        sql = (
            "INSERT INTO metrics (run_id, step, epoch, wall_s, train_loss, val_loss, "
            "val_accuracy, val_balanced_accuracy, val_auc, samples_per_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, step) DO UPDATE SET "
            "epoch = excluded.epoch, wall_s = excluded.wall_s, "
            + ", ".join(
                f"{c} = COALESCE(excluded.{c}, {c})"
                for c in (
                    "train_loss",
                    "val_loss",
                    "val_accuracy",
                    "val_balanced_accuracy",
                    "val_auc",
                    "samples_per_s",
                )
            )
        )
        params = (
            run_id,
            int(step),
            int(epoch),
            float(wall_s),
            *(None if v is None else float(v) for v in values),
        )
        with translated_errors(self._where), self.engine.begin() as conn:
            conn.exec_driver_sql(sql, params)
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(last_step=func.max(func.coalesce(Run.last_step, 0), int(step)))
            )

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
        ids = np.asarray(patch_ids, dtype=np.int64).ravel()
        labels = np.asarray(predicted_label, dtype=np.int64).ravel()
        probs = np.asarray(probability, dtype=np.float64).ravel()
        if not ids.shape == labels.shape == probs.shape:
            raise ValueError("patch_ids, predicted_label and probability must have one length")
        rows = list(
            zip(
                repeat_int(run_id, ids.shape[0]),
                repeat_int(epoch, ids.shape[0]),
                ids.tolist(),
                labels.tolist(),
                probs.tolist(),
                strict=True,
            )
        )
        with translated_errors(self._where), self.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO predictions (run_id, epoch, patch_id, predicted_label, probability) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, epoch, patch_id) DO UPDATE SET "
                "predicted_label = excluded.predicted_label, probability = excluded.probability",
                rows,
            )

    def register_checkpoint(
        self, run_id: int, step: int, epoch: int, path: str | os.PathLike[str]
    ) -> int:
        """Register a written checkpoint file; stored relative to the project folder when
        inside it (so the project can be moved). Returns the checkpoint id."""
        target = Path(path).resolve()
        stored = (
            str(target.relative_to(self.folder))
            if target.is_relative_to(self.folder)
            else str(target)
        )
        with translated_errors(self._where), self.engine.begin() as conn:
            result = conn.execute(
                insert(Checkpoint).values(
                    run_id=run_id,
                    step=int(step),
                    epoch=int(epoch),
                    path=stored,
                    created_at=time.time(),
                )
            )
            return int(result.inserted_primary_key[0])

    def latest_checkpoint(self, run_id: int) -> CheckpointRecord | None:
        """The checkpoint with the highest step (then latest registered), or None."""
        checkpoints = self.checkpoints(run_id)
        return checkpoints[-1] if checkpoints else None

    def checkpoints(self, run_id: int) -> list[CheckpointRecord]:
        """The run's checkpoints ordered by step, absolute paths."""
        with translated_errors(self._where), self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(Checkpoint.__table__)
                    .where(Checkpoint.run_id == run_id)
                    .order_by(Checkpoint.step, Checkpoint.id)
                )
                .mappings()
                .all()
            )
        return [
            CheckpointRecord(
                id=r["id"],
                run_id=r["run_id"],
                step=r["step"],
                epoch=r["epoch"],
                path=str(self.folder / r["path"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    # ---- queries (safe from the GUI thread while training writes) ----------------------

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

    def epochs(self, run_id: int) -> list[int]:
        """Epochs with recorded history, ascending."""
        return queries.epochs(self.engine, self._where, run_id)

    def heatmap_values(
        self, run_id: int, slide_id: int, metric: str, epoch: int | None = None
    ) -> HeatmapValues:
        """One value per patch of the slide (see :func:`queries.heatmap_values`)."""
        return queries.heatmap_values(
            self.engine, self._where, self._geometry, run_id, slide_id, metric, epoch
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


def repeat_int(value: int, n: int) -> list[int]:
    """``[int(value)] * n`` (a column of a bulk insert)."""
    return [int(value)] * n


def software_versions() -> dict[str, str]:
    """Versions recorded with each run: python, cdfis, numpy, sqlalchemy, torch if loaded."""
    import sqlalchemy

    versions = {
        "python": platform.python_version(),
        "cdfis": __version__,
        "numpy": np.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = str(getattr(torch, "__version__", "unknown"))
    return versions


def _split_list(split: str | None | Sequence[str | None], n: int) -> list[str | None]:
    values = [split] * n if split is None or isinstance(split, str) else list(split)
    if len(values) != n:
        raise ValueError(f"got {len(values)} splits for {n} patches")
    bad = {v for v in values if v is not None and v not in SPLITS}
    if bad:
        raise ValueError(f"unknown split(s) {sorted(bad)}; use one of {SPLITS} or None")
    return values


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
