"""The project store: one folder per project, one SQLite database (through SQLAlchemy).

Storage layout and its size/speed trade-offs: :mod:`.schema` (history keyed by flushed
block, float32 values as 4-byte bit patterns), :mod:`.aggregates` (per-epoch aggregates as
one row of packed numpy arrays indexed by patch id per run and epoch) and :mod:`.history`
(the batched writer folding each flush into those arrays in the same transaction).

A project folder holds ``project.toml`` (name, created, schema version, app version),
``project.db`` (SQLite, WAL), ``checkpoints/``, ``cache/``, ``slides/`` and ``locks/``.

Public API (all on :class:`Project`; values returned are immutable, see :mod:`.records`)::

    Project.create(folder, *, url=None) -> Project
    Project.open(folder, *, create=False, url=None, sqlite_pragmas=None) -> Project
        .folder .db_path .checkpoints_dir .cache_dir .slides_dir .locks_dir .name .url
        .read_only (a read-only folder: queries only)
        .close() / with-statement
    slides   .add_slide(path, *, fingerprint, width, height, mpp, mpp_overridden=False,
                        vendor="", group="") -> int
             .set_slide_mpp(slide_id, mpp)  .set_slide_group(slide_id, group)
             .slides() -> list[SlideRecord]  .delete_slide(slide_id)
             .set_class_names(names)  .class_names() -> list[str]   (label k -> names[k])
    patches  .add_patches(slide_id, *, l0_x, l0_y, l0_size, patch_px, mpp, label,
                          tissue_fraction, split=None) -> int64[n] ids
             .patches(slide_id=None, split=None, *, patch_ids=None) -> PatchTable
             .patch_keys(patch_ids=None) -> (id, slide_id, label) int64 arrays
             .set_splits(patch_ids, splits)
    runs     .create_run(config: RunConfig, *, n_train, device=None, name="") -> int
                 (validates the config once; status running, lock taken)
             .set_run_status(run_id, status, *, error=None)  .set_switch_step(run_id, step)
             .history_writer(run_id, *, flush_every_steps=20, resume_after_step=None)
                 -> HistoryWriter: .record(step, epoch, patch_ids, score, probability,
                                           times_chosen, weight) .flush() .close()
             .truncate_run(run_id, after_step)  .recover_interrupted_runs() -> list[int]
             .log_metrics(run_id, step, epoch, wall_s, *, train_loss=None, val_loss=None,
                          val_accuracy=None, val_balanced_accuracy=None, val_auc=None,
                          samples_per_s=None)
             .set_predictions(run_id, epoch, patch_ids, predicted_label, probability)
             .register_checkpoint(run_id, step, epoch, path) -> int
             .latest_checkpoint(run_id) -> CheckpointRecord | None  .checkpoints(run_id)
    queries  .runs() -> list[RunSummary]  .run(run_id) -> RunSummary
             .metrics(run_id) -> dict[str, ndarray]  .compare_runs(ids) -> RunComparison
             .epochs(run_id) -> list[int]  .score_ages(run_id) -> ScoreAges
             .slide_measurements(run_id, slide_id, epoch=None) -> SlideMeasurements
                 (every per-patch aggregate, label and prediction of one slide; heatmap
                 values per metric: core.heatmap.metrics)
             .favoured_patches(run_id, n, *, ignored=False, slide_id=None, label=None,
                               epoch=None) -> list[PatchStat]
             .patch_history(run_id, patch_id) -> PatchHistory
             .score_distribution(run_id, *, step=None, epoch=None) -> float32[n]
    reviews  .add_review_decisions(decisions, *, now=None) -> list[int]      (see .reviews)
             .review_decisions(*, in_force_at=None) -> ReviewTable
    dynamics .fold_dynamics(run_id, fold, *, max_epochs=None) -> last step | None
             .save_data_map(run_id, *, last_step, n_epochs, arrays)
             .stored_data_map(run_id) -> StoredDataMap | None        (see .datamaps)

Thread rules: one Project per database per process; each call runs its own transaction
on a pooled connection, so any method may be called from any thread. The training thread
is the only writer of a run (history writer, metrics, predictions, checkpoints, status);
the GUI thread may call every query and ``slides``/``patches``/``class_names`` while it
writes. A run is written by one process at a time (an OS file lock, see :mod:`.locks`);
a run left ``running`` by a dead process shows as ``interrupted``.

Errors (all :class:`~cdfis_desktop.core.errors.StoreError`): StorageFullError (disk or
size limit full; nothing committed is lost), NotAProjectError (not a project / not
SQLite), SchemaVersionError (written by a newer version; older ones are migrated after a
backup, see :mod:`.migrations`), DamagedDatabaseError (fails the integrity check at
open, see :mod:`.integrity`), RunLockedError (another process writes the run). Also
here: :mod:`.location` (the database stays inside the folder), :mod:`.slide_removal`.
"""

from __future__ import annotations

from cdfis_desktop.core.storage.history import HistoryWriter
from cdfis_desktop.core.storage.project import Project
from cdfis_desktop.core.storage.records import (
    EXCLUDE_REASONS,
    REVIEW_ACTIONS,
    RUN_STATUSES,
    SPLITS,
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
from cdfis_desktop.core.storage.schema import ALL_EPOCHS, SCHEMA_VERSION

__all__ = [
    "ALL_EPOCHS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "SPLITS",
    "CheckpointRecord",
    "HistoryWriter",
    "PatchHistory",
    "PatchStat",
    "PatchTable",
    "Project",
    "RunComparison",
    "RunSummary",
    "ScoreAges",
    "SlideMeasurements",
    "SlideRecord",
    "StoredDataMap",
    "EXCLUDE_REASONS",
    "REVIEW_ACTIONS",
    "ReviewInput",
    "ReviewTable",
]
