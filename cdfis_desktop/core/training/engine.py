"""The training engine: ``Trainer.iter_run(config, cancel)`` yields immutable reports.

The CLI (``cdfis train``) and the GUI's worker thread drive the same generator::

    trainer = Trainer(project)
    for report in trainer.iter_run(config, cancel):   # or trainer.iter_resume(run_id, cancel)
        ...  # RunStarted, StepReport, EpochReport, RunFinished (see .reports)

What a run does, in order:

1. Check everything before any work (``RunConfig.validate``, device, dataset, split,
   model, sampler): bad settings raise :class:`ConfigError` and no run is recorded.
2. Record the run in the store (``create_run`` with ``RunConfig.to_dict()``, status
   ``running``), or for a resume load the latest checkpoint and set it running again
   (history, metrics and checkpoints after the checkpoint's step are dropped, because
   the resumed steps re-create them).
3. Decode every patch once (into RAM, or into the project's patch cache when they do not
   fit; ``LoadProgress`` reports, ``num_workers`` worker processes; see
   :meth:`PatchDataset.iter_load`). Validate once before the first step (the initial
   held-out loss the ``loss:F`` warm-up rule needs), then train step by step. Each step the
   sampler's draw record goes to the history writer (batched), and train loss and samples/s
   to the metrics. Validation at each epoch end (or every ``val_every_steps`` steps, or
   each time the training time passes a multiple of ``val_every_s``) logs the metrics,
   stores the validation patches' predictions, feeds the warm-up rule and early stopping;
   the first validation at or after each of ``test_at_s`` also scores the test set
   (``test_groups``) and puts its metrics in the report (not in the store). A checkpoint is
   written every ``checkpoint_every_steps`` steps (history flushed first).
4. Stop at the first of: ``epochs``, ``max_steps``, ``time_budget_s`` of training time
   (evaluation excluded), early stopping, or the cancel token. At the end: a last
   validation if the last step was not validated, predictions for **all** patches
   (training and validation; at earlier validations only the validation patches, which
   keeps them cheap), a checkpoint, status ``finished`` / ``cancelled``.

A non-finite loss stops the run with :class:`TrainingError` (status ``failed``; the last
checkpoint written before stays the one to resume from); running out of device memory
raises a :class:`TrainingError` naming a batch size to try. For both, the generator
yields a ``RunFinished`` report with status ``failed`` and then raises the error. Closing
the generator early counts as a cancel. A resumed run on the same CPU reproduces the
uninterrupted run exactly (tested).

Thread rules: a Trainer runs one run at a time, in the thread iterating the generator; the
cancel token may be set from any thread. The run's store writes (history, metrics,
predictions) go through one background thread (:mod:`.writer`) so they overlap with the
next step; it is drained before checkpoints and status changes. Multi-process runs: see :mod:`.distributed`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import CdfisError, ConfigError, StoreError
from cdfis_desktop.core.progress import Cancelled, CancelToken
from cdfis_desktop.core.sampling import DrawRecord, WarmupRule
from cdfis_desktop.core.storage import Project
from cdfis_desktop.core.training.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from cdfis_desktop.core.training.datasets import PatchDataset
from cdfis_desktop.core.training.devices import resolve_device
from cdfis_desktop.core.training.distributed import DistContext, init_from_environment
from cdfis_desktop.core.training.dynamics import StepDynamics
from cdfis_desktop.core.training.evaluation import Evaluation, evaluate
from cdfis_desktop.core.training.handlers import ChosenTracker, EarlyStopping, HistoryRecorder
from cdfis_desktop.core.training.metrics import ClassificationMetrics
from cdfis_desktop.core.training.prepare import DEFAULT_VAL_FRACTION, prepare_data
from cdfis_desktop.core.training.reports import (
    EpochReport,
    LoadProgress,
    Report,
    RunFinished,
    RunStarted,
    StepReport,
)
from cdfis_desktop.core.training.session import StepResult, TrainingSession
from cdfis_desktop.core.training.writer import BackgroundWriter


@dataclass(frozen=True)
class _Store:
    """Rank 0's link to the store: the history recorder and the thread that writes."""

    recorder: HistoryRecorder
    writer: BackgroundWriter


@dataclass
class _RunState:
    """Mutable bookkeeping of the run being driven (training thread only). ``store`` is
    None on ranks other than 0, which never write the store."""

    run_id: int
    session: TrainingSession
    store: _Store | None
    chosen: ChosenTracker
    early: EarlyStopping
    last_validated_step: int = -1
    last_validated_s: float = 0.0
    tests_done: int = 0
    last_checkpoint: str = ""
    ended: bool = False


class Trainer:
    """Trains on a project's labelled patches (or an explicit ``dataset`` whose patch ids
    are registered in ``project``) and records the run in the project's store.

    ``val_fraction``: share of patches (whole patient groups) held out for validation when
    the project has no preset ``val`` split. ``run_name``: stored with new runs.
    """

    def __init__(
        self,
        project: Project,
        *,
        dataset: PatchDataset | None = None,
        val_fraction: float = DEFAULT_VAL_FRACTION,
        run_name: str = "",
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.val_fraction = val_fraction
        self.run_name = run_name

    def iter_run(self, config: RunConfig, cancel: CancelToken | None = None) -> Iterator[Report]:
        """Start a new run; yields its reports (see the module docstring). With
        ``config.use_review`` it trains with the review decisions in force now."""
        if config.use_review and config.review_as_of is None:
            config = replace(config, review_as_of=time.time())
        return self._iterate(config, cancel or CancelToken(), None)

    def iter_resume(self, run_id: int, cancel: CancelToken | None = None) -> Iterator[Report]:
        """Continue run ``run_id`` from its latest checkpoint with its stored configuration
        (from the start when it has none and recorded nothing). Raises :class:`StoreError`
        for an unknown run, :class:`ConfigError` for a finished one or one that recorded
        steps but has no checkpoint (resuming would drop its history)."""
        summary = self.project.run(run_id)
        if summary.status == "finished":
            raise ConfigError(f"run {run_id} has already finished; start a new run instead")
        config = RunConfig.from_dict(summary.config)
        if summary.steps and self.project.latest_checkpoint(run_id) is None:
            raise ConfigError(
                f"run {run_id} stopped at step {summary.steps}, before its first checkpoint "
                f"(every {config.checkpoint_every_steps} steps): resuming would start it again "
                f"from step 0 and drop its {summary.steps} recorded steps. Its history is kept "
                "as it is; start a new run with the same settings instead"
            )
        return self._iterate(config, cancel or CancelToken(), run_id)

    # ---- the run ---------------------------------------------------------------------

    def _iterate(
        self, config: RunConfig, cancel: CancelToken, resume_run_id: int | None
    ) -> Iterator[Report]:
        if self.project.read_only:
            raise StoreError(
                f"{self.project.folder} is read-only: training records its runs in the "
                "project; copy the project to a folder you can write to and train there"
            )
        config.validate()
        WarmupRule.parse(config.sampler.warmup)  # a typo fails here, before any loading
        setup = resolve_device(config.device)
        context = init_from_environment(setup.device.type)
        if context.enabled and setup.device.type == "cuda":
            setup = replace(setup, device=torch.device("cuda", context.local_rank))
        data = prepare_data(self.project, config, self.dataset, val_fraction=self.val_fraction)
        session = TrainingSession(config, data, setup, context)
        state = _RunState(
            run_id=-1,
            session=session,
            store=None,
            chosen=ChosenTracker(len(session.shard)),
            early=EarlyStopping(config.early_stopping_patience),
        )
        resumed_from = self._restore(state, resume_run_id, context)
        state.last_validated_s = session.train_s
        state.tests_done = sum(t < session.train_s for t in config.test_at_s or ())
        if context.is_main:
            state.run_id, state.store = self._open_run(config, session, resume_run_id)
        state.run_id = int(context.broadcast_from_main(state.run_id))
        try:
            yield RunStarted(
                run_id=state.run_id,
                n_train=len(data.train_indices),
                n_val=len(data.val_indices),
                device=str(setup.device),
                split_method=data.split_method,
                warning=data.warning,
                steps_per_epoch=session.steps_per_epoch,
                max_steps=session.step_limit,
                resumed_from_step=resumed_from,
            )
            yield from self._train(state, cancel, context)
        except GeneratorExit:
            if not state.ended:
                self._finish(state, context, "cancelled")
            raise
        except CdfisError as exc:
            if state.ended:
                raise
            yield self._fail(state, context, str(exc))
            raise
        except BaseException as exc:
            if not state.ended:
                self._fail(state, context, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if state.store is not None:  # never leave the writer thread behind
                state.store.writer.close(raise_error=False)

    def _train(
        self, state: _RunState, cancel: CancelToken, context: DistContext
    ) -> Iterator[Report]:
        session = state.session
        config = session.config
        yield from self._load_patches(state, cancel)
        if session.step == 0 and not cancel.cancelled:
            if session.sampler.is_active:  # warm-up "none": on from the start
                self._record_switch(state, context)
            yield from self._validate(state, context)
        limit = session.step_limit
        while True:
            cancel.wait_while_paused()
            stop = (
                cancel.cancelled
                or (limit is not None and session.step >= limit)
                or (config.time_budget_s is not None and session.train_s >= config.time_budget_s)
                or state.early.should_stop
            )
            if context.any_rank(stop):
                break
            result = session.train_step()
            yield from self._after_step(state, context, result)
            if session.sampler.update_warmup(step=session.step, epoch=session.epochs_done):
                self._record_switch(state, context)
            if self._validation_due(state):
                yield from self._validate(state, context)
            if session.step % config.checkpoint_every_steps == 0:
                self._checkpoint(state, context)
        status = "cancelled" if cancel.cancelled else "finished"
        if status == "finished" and state.last_validated_step != session.step:
            yield from self._validate(state, context)
        yield self._finish(state, context, status)

    def _load_patches(self, state: _RunState, cancel: CancelToken) -> Iterator[Report]:
        """Decode the dataset's patches once (into RAM or the disk cache, with
        ``num_workers`` worker processes) before anything reads them; a cancel stops it
        (no cache is left half-built) and the run ends cancelled before its first step."""
        config = state.session.config
        dataset = state.session.data.dataset
        try:
            for progress in dataset.iter_load(cancel, workers=config.num_workers):
                yield LoadProgress(state.run_id, progress.done, progress.total, progress.message)
        except Cancelled:
            return

    def _after_step(
        self, state: _RunState, context: DistContext, result: StepResult
    ) -> Iterator[Report]:
        session = state.session
        state.chosen.on_step(result.record)
        gathered = context.gather_to_main(
            (
                result.patch_ids,
                result.record,
                result.loss,
                result.samples_forwarded,
                result.dynamics,
            )
        )
        if gathered is None or state.store is None:
            return
        step, epoch = session.step, session.epoch_of_step(session.step)
        patch_ids = np.concatenate([g[0] for g in gathered])
        records = [g[1] for g in gathered]
        loss = float(np.mean([g[2] for g in gathered]))
        dynamics = StepDynamics.concatenate([g[4] for g in gathered])
        writer = state.store.writer
        writer.submit(
            state.store.recorder.on_step,
            step,
            epoch,
            patch_ids,
            DrawRecord.concatenate(records),
            dynamics,
        )
        forwarded = int(sum(g[3] for g in gathered))
        backpropagated = result.samples_backpropagated * context.world_size  # equal per rank
        samples_per_s = backpropagated / result.duration_s
        writer.submit(
            self.project.log_metrics,
            state.run_id,
            step,
            epoch,
            session.train_s,
            train_loss=loss,
            samples_per_s=samples_per_s,
        )
        yield StepReport(
            run_id=state.run_id,
            step=step,
            epoch=epoch,
            epoch_progress=step / session.steps_per_epoch,
            wall_s=session.train_s,
            train_loss=loss,
            samples_per_s=samples_per_s,
            is_active=session.sampler.is_active,
            candidate_scores=np.concatenate([r.score for r in records]).copy(),
            chosen_share=state.chosen.share,
            samples_forwarded=forwarded,
            samples_backpropagated=backpropagated,
        )

    def _validation_due(self, state: _RunState) -> bool:
        session = state.session
        every_s = session.config.val_every_s
        if every_s is not None:  # the same grid of training times for every sampler
            return session.train_s // every_s > state.last_validated_s // every_s
        every = session.config.val_every_steps
        if every is not None:
            return session.step % every == 0
        return session.step % session.steps_per_epoch == 0

    def _validate(self, state: _RunState, context: DistContext) -> Iterator[Report]:
        """Evaluate on rank 0, share the loss, feed warm-up and early stopping."""
        session = state.session
        evaluation: Evaluation | None = None
        test: ClassificationMetrics | None = None
        test_at_s = sorted(session.config.test_at_s or ())
        test_due = state.tests_done < len(test_at_s) and (
            session.train_s >= test_at_s[state.tests_done]
        )
        state.tests_done = sum(t <= session.train_s for t in test_at_s)
        if context.is_main:
            evaluation = evaluate(
                session.module, session.data.dataset, session.data.val_indices, session.setup
            )
            if test_due:
                test = evaluate(
                    session.module, session.data.dataset, session.data.test_indices, session.setup
                ).metrics
        val_loss = float(
            context.broadcast_from_main(None if evaluation is None else evaluation.metrics.loss)
        )
        switched = session.sampler.update_warmup(
            step=session.step, epoch=session.epochs_done, val_loss=val_loss
        )
        if switched:
            self._record_switch(state, context)
        is_best = state.early.on_validation(val_loss)
        state.last_validated_step = session.step
        state.last_validated_s = session.train_s
        if evaluation is None or state.store is None:
            return
        m = evaluation.metrics
        epoch_index = session.epoch_of_step(session.step)
        writer = state.store.writer
        writer.submit(
            self.project.log_metrics,
            state.run_id,
            session.step,
            epoch_index,
            session.train_s,
            val_loss=m.loss,
            val_accuracy=m.accuracy,
            val_balanced_accuracy=m.balanced_accuracy,
            val_auc=m.auc,
        )
        if session.step > 0:
            writer.submit(
                self.project.set_predictions,
                state.run_id,
                epoch_index,
                evaluation.patch_ids,
                evaluation.predicted,
                evaluation.predicted_probability,
            )
        yield EpochReport(
            run_id=state.run_id,
            step=session.step,
            epoch=epoch_index,
            wall_s=session.train_s,
            val_loss=m.loss,
            val_accuracy=m.accuracy,
            val_balanced_accuracy=m.balanced_accuracy,
            val_auc=m.auc,
            switched_on=switched,
            is_best=is_best,
            samples_forwarded=session.samples_forwarded * context.world_size,
            samples_backpropagated=session.samples_backpropagated * context.world_size,
            test=test,
        )

    def _record_switch(self, state: _RunState, context: DistContext) -> None:
        switch_step = state.session.sampler.switch_step
        if state.store is not None and switch_step is not None:
            state.store.writer.submit(self.project.set_switch_step, state.run_id, switch_step)

    # ---- store, checkpoints, endings -----------------------------------------------

    def _open_run(
        self, config: RunConfig, session: TrainingSession, resume_run_id: int | None
    ) -> tuple[int, _Store]:
        flush = config.history_flush_steps
        if resume_run_id is None:
            run_id = self.project.create_run(
                config,
                n_train=len(session.data.train_indices),
                device=str(session.setup.device),
                name=self.run_name,
            )
            writer = self.project.history_writer(run_id, flush_every_steps=flush)
        else:
            run_id = resume_run_id
            self.project.set_run_status(run_id, "running")
            writer = self.project.history_writer(
                run_id, flush_every_steps=flush, resume_after_step=session.step
            )
        return run_id, _Store(HistoryRecorder(writer), BackgroundWriter())

    def _restore(
        self, state: _RunState, resume_run_id: int | None, context: DistContext
    ) -> int | None:
        """Load the run's latest checkpoint into the session; returns its step (None: new)."""
        if resume_run_id is None:
            return None
        path: str | None = None
        if context.is_main:
            record = self.project.latest_checkpoint(resume_run_id)
            path = None if record is None else record.path
        path = context.broadcast_from_main(path)
        if path is None:
            return 0
        checkpoint = load_checkpoint(Path(path))
        ranks = checkpoint["ranks"]
        if len(ranks) != context.world_size:
            raise ConfigError(
                f"run {resume_run_id} was trained by {len(ranks)} process(es); resume it with "
                f"the same number (torchrun --nproc-per-node {len(ranks)})"
            )
        state.session.load_state_dict(checkpoint["session"], ranks[context.rank])
        state.chosen.load_state_dict(checkpoint["engine"]["chosen"][context.rank])
        state.early.load_state_dict(checkpoint["engine"]["early"])
        state.last_checkpoint = path
        return state.session.step

    def _checkpoint(self, state: _RunState, context: DistContext) -> None:
        """Flush history, then write and register a checkpoint (collective across ranks)."""
        session = state.session
        ranks = context.gather_to_main(session.rank_state_dict())
        chosen = context.gather_to_main(state.chosen.state_dict())
        if ranks is None or chosen is None or state.store is None:
            return
        state.store.writer.submit(state.store.recorder.flush)
        state.store.writer.drain()
        path = checkpoint_path(self.project.checkpoints_dir, state.run_id, session.step)
        save_checkpoint(
            path,
            {
                "session": session.state_dict(),
                "ranks": ranks,
                "engine": {"chosen": chosen, "early": state.early.state_dict()},
                "config": session.config.to_dict(),
            },
        )
        self.project.register_checkpoint(
            state.run_id, session.step, session.epoch_of_step(session.step), path
        )
        state.last_checkpoint = str(path)

    def _finish(self, state: _RunState, context: DistContext, status: str) -> RunFinished:
        """Final predictions (finished runs), checkpoint, history closed, status set."""
        state.ended = True
        session = state.session
        if status == "finished" and state.store is not None and session.step > 0:
            everything = np.concatenate([session.data.train_indices, session.data.val_indices])
            final = evaluate(session.module, session.data.dataset, everything, session.setup)
            state.store.writer.submit(
                self.project.set_predictions,
                state.run_id,
                session.epoch_of_step(session.step),
                final.patch_ids,
                final.predicted,
                final.predicted_probability,
            )
        self._checkpoint(state, context)
        message = ""
        if state.store is not None:
            state.store.writer.submit(state.store.recorder.close)
            state.store.writer.close()
            self.project.set_run_status(state.run_id, status)
            if status == "cancelled":
                message = (
                    f"run {state.run_id} stopped at step {session.step}; continue it with "
                    f"cdfis train --project {self.project.folder} --resume {state.run_id}"
                )
        return RunFinished(
            run_id=state.run_id,
            status=status,
            step=session.step,
            wall_s=session.train_s,
            message=message,
            checkpoint=state.last_checkpoint,
        )

    def _fail(self, state: _RunState, context: DistContext, error: str) -> RunFinished:
        """Keep what was recorded, mark the run failed (no new checkpoint: weights may be bad)."""
        state.ended = True
        if state.store is not None:
            state.store.writer.close(raise_error=False)
            try:
                with contextlib.suppress(CdfisError):  # e.g. the disk is still full
                    state.store.recorder.close()
            finally:
                self.project.set_run_status(state.run_id, "failed", error=error)
        return RunFinished(
            run_id=state.run_id,
            status="failed",
            step=state.session.step,
            wall_s=state.session.train_s,
            message=error,
            checkpoint=state.last_checkpoint,
        )
