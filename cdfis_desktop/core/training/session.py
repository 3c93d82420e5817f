"""The live state of one training process: model, optimiser, sampler, RNG, counters.

:class:`TrainingSession` runs one training step at a time and saves/restores everything
needed to continue exactly (``state_dict``). It knows nothing about the store or reports:
:mod:`.engine` drives it and the handlers. Thread rules: the training thread only.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cdfis_desktop.core.config import RunConfig
from cdfis_desktop.core.errors import ConfigError, TrainingError
from cdfis_desktop.core.sampling import (
    BatchPlan,
    DrawRecord,
    make_sampler,
    score_batch,
    scores_from_outputs,
)
from cdfis_desktop.core.training.augment import (
    Augmentation,
    augment_and_normalise,
    downscale,
    normalise,
)
from cdfis_desktop.core.training.devices import DeviceSetup, out_of_memory_as_training_error
from cdfis_desktop.core.training.distributed import DistContext
from cdfis_desktop.core.training.dynamics import StepDynamics, step_dynamics
from cdfis_desktop.core.training.models import build_model
from cdfis_desktop.core.training.prepare import TrainingData


@dataclass(frozen=True)
class StepResult:
    """One step done: ``loss`` the mean cross-entropy of the trained rows (unweighted, nats);
    ``record`` the completed draw record in this rank's shard index space; ``patch_ids
    int64[n]`` the store id of each record entry; ``duration_s`` the step's wall time;
    ``samples_forwarded`` the rows that went through the model (scored and trained),
    ``samples_backpropagated`` the rows trained on; ``dynamics`` the trained entries'
    label probability and margin (:mod:`.dynamics`)."""

    loss: float
    record: DrawRecord
    patch_ids: np.ndarray
    duration_s: float
    samples_forwarded: int
    samples_backpropagated: int
    dynamics: StepDynamics


class TrainingSession:
    """Model, optimiser (AdamW), loss scaler, sampler and augmentation RNG of one process.

    The process trains on ``data.train_indices[rank::world_size]`` (its shard). ``step``
    counts steps done (the next step is ``step + 1``). Raises :class:`ConfigError` (bad
    model/sampler settings) while building.
    """

    def __init__(
        self, config: RunConfig, data: TrainingData, setup: DeviceSetup, context: DistContext
    ) -> None:
        self.config = config
        self.data = data
        self.setup = setup
        self.context = context
        self.shard = data.train_indices[context.rank :: context.world_size]
        if len(self.shard) < config.batch_size:
            raise ConfigError(
                f"batch size {config.batch_size} is larger than the {len(self.shard)} training "
                f"patches{' per process' if context.enabled else ''}; use --batch "
                f"{max(1, len(self.shard) // 2)} or fewer"
            )
        torch.manual_seed(config.seed)
        self.module = build_model(
            config.model, data.num_classes, weights_path=config.weights_path
        ).to(setup.device)
        self.model: nn.Module = self.module
        if context.enabled:
            device_ids = [setup.device.index] if setup.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)
        self.optimizer = torch.optim.AdamW(
            self.module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scaler = setup.grad_scaler()
        self.sampler = make_sampler(
            config.sampler, len(self.shard), config.batch_size, config.seed + 7919 * context.rank
        )
        self.generator = torch.Generator().manual_seed(config.seed + 104729 * (context.rank + 1))
        self.augmentation = Augmentation() if config.augment else None
        self.steps_per_epoch = math.ceil(
            len(data.train_indices) / (config.batch_size * context.world_size)
        )
        self.step = 0
        self.train_s = 0.0
        # machine-independent cost: rows sent through the model (scoring passes included)
        # and rows trained on (back-propagated), this process, since the run started
        self.samples_forwarded = 0
        self.samples_backpropagated = 0
        self._features: torch.Tensor | None = None
        if config.sampler.metric == "gradnorm_wb":
            classifier = self.module.classifier
            assert isinstance(classifier, torch.nn.Module)
            classifier.register_forward_pre_hook(self._keep_features)

    def epoch_of_step(self, step: int) -> int:
        """0-based epoch in which 1-based ``step`` runs (step 0, before training, counts
        as epoch 0): the one epoch numbering of the store, the reports and the GUI."""
        return max((step - 1) // self.steps_per_epoch, 0)

    @property
    def epochs_done(self) -> int:
        """Completed epochs after :attr:`step` steps."""
        return self.step // self.steps_per_epoch

    @property
    def step_limit(self) -> int | None:
        """The step count implied by ``epochs`` and ``max_steps`` (None: neither is set)."""
        limits = [self.config.max_steps] if self.config.max_steps is not None else []
        if self.config.epochs is not None:
            limits.append(self.config.epochs * self.steps_per_epoch)
        return min(limits) if limits else None

    @property
    def progress(self) -> float | None:
        """Share of the run done after :attr:`step` steps and :attr:`train_s` seconds of
        training, in [0, 1]: the larger of the step and time shares, since the run stops
        at whichever limit comes first (None: no step or time limit, e.g. early stopping
        only)."""
        shares = []
        if self.step_limit is not None:
            shares.append(self.step / self.step_limit)
        if self.config.time_budget_s is not None:
            shares.append(self.train_s / self.config.time_budget_s)
        return min(max(shares), 1.0) if shares else None

    def train_step(self) -> StepResult:
        """Plan, load, (score,) select and train one mini-batch; ``step`` += 1.

        Raises :class:`TrainingError` for a non-finite loss (the weights are left as they
        were before the step) or when the device runs out of memory.
        """
        started = time.perf_counter()
        step = self.step + 1
        cfg = self.config
        with out_of_memory_as_training_error(cfg.batch_size):
            plan = self.sampler.plan(step, self.epoch_of_step(step), self.progress)
            rows = self.shard[plan.candidate_indices.numpy()]
            images, labels, _ = self.data.dataset.load_batch(rows)
            images = images.to(self.setup.device, non_blocking=self.setup.pin_memory)
            labels = labels.to(self.setup.device, non_blocking=self.setup.pin_memory)
            scored = 0
            if plan.needs_scores:
                scores = self._score(plan, images, labels)
                scored = scores.shape[0]
                selection = self.sampler.select(plan, scores)
            else:
                selection = self.sampler.select(plan)
            positions = selection.positions.to(self.setup.device)
            x = augment_and_normalise(images[positions], self.augmentation, self.generator)
            y = labels[positions]
            weights = selection.weights.to(self.setup.device, torch.float32)
            with self.setup.autocast():
                logits = self.model(x)
            per_sample = F.cross_entropy(logits.float(), y, reduction="none")
            loss = (weights * per_sample).mean()
            loss_value = float(per_sample.detach().mean())
            if not math.isfinite(float(loss.detach())):
                raise TrainingError(
                    f"the training loss became {float(loss.detach())} at step {step}; the run "
                    "stopped with the weights of the step before. Try a lower learning rate "
                    "(or --weighting none), then resume or start a new run"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        observed = self._observed_scores(logits.detach(), y, per_sample.detach())
        self.sampler.observe(selection.dataset_indices, observed)
        record = selection.completed_record(observed)
        dynamics = step_dynamics(logits, y, selection.dataset_indices, record)
        patch_ids = self.data.dataset.patch_ids[self.shard[record.dataset_index]]
        self.step = step
        trained = int(y.shape[0])
        self.samples_forwarded += scored + trained
        self.samples_backpropagated += trained
        duration = time.perf_counter() - started
        self.train_s += duration
        return StepResult(
            loss_value, record, patch_ids, duration, scored + trained, trained, dynamics
        )

    def _score(self, plan: BatchPlan, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The sampler's metric for the loaded rows at ``plan.scored_positions``, float32[m],
        from a forward pass without gradients (see :class:`BatchPlan` for the input; clean
        candidates are scored at ``SamplerConfig.score_scale`` of their side length)."""
        at = plan.scored_positions.to(self.setup.device)
        if plan.score_as_trained:
            x = augment_and_normalise(images[at], self.augmentation, self.generator)
            train_mode = True
        else:
            x = downscale(normalise(images[at]), self.config.sampler.score_scale)
            train_mode = self.config.sampler.score_in_train_mode
        with self.setup.autocast():
            return score_batch(
                self.module, x, labels[at], self.config.sampler.metric, train_mode=train_mode
            )

    def _observed_scores(
        self, logits: torch.Tensor, y: torch.Tensor, per_sample_loss: torch.Tensor
    ) -> torch.Tensor:
        """The sampler's metric for the trained rows, from the training forward pass."""
        metric = self.config.sampler.metric
        if metric == "loss":
            return per_sample_loss
        return scores_from_outputs(logits, y, metric, self._features)

    def _keep_features(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._features = inputs[0].detach()

    # ---- exact resume ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """This process's part of a checkpoint (model/optimiser are the same on all ranks)."""
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "train_s": self.train_s,
            "samples_forwarded": self.samples_forwarded,
            "samples_backpropagated": self.samples_backpropagated,
        }

    def rank_state_dict(self) -> dict[str, Any]:
        """What differs between ranks: the sampler and the random number generators (plus
        the weights' digest, which must not differ)."""
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }
        if self.setup.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.setup.device)
        return {
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "weights_sha1": self.weights_digest(),
        }

    def weights_digest(self) -> str:
        """SHA-1 of the model's parameters: equal on all ranks of a healthy data-parallel
        run (stored per rank in checkpoints, so it can be checked). Buffers (BatchNorm
        running statistics) are left out: each rank updates them from its own batch and
        DDP copies rank 0's at every forward, so between steps they may differ."""
        digest = hashlib.sha1()
        for parameter in self.module.parameters():
            digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def load_state_dict(self, state: dict[str, Any], rank_state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` and this rank's :meth:`rank_state_dict`."""
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.train_s = float(state["train_s"])
        self.samples_forwarded = int(state.get("samples_forwarded", 0))  # older checkpoints
        self.samples_backpropagated = int(state.get("samples_backpropagated", 0))
        self.sampler.load_state_dict(rank_state["sampler"])
        rng = rank_state["rng"]
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        if "cuda" in rng and self.setup.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.setup.device)
