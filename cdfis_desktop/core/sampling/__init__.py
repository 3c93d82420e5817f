"""CDF-based importance sampling (Knutsson et al., VCBM 2023) and its peers; pure torch.

The method and every rule are described in ``docs/method.md``. Pieces:

- :func:`draw` (``draw.py``): the pure selection function (cdf, topk, bottomk, uniform;
  floor; weighting; the degenerate-score rule).
- ``scores.py``: per-sample scores on the model's device (:func:`score_batch`,
  closed-form :func:`scores_from_outputs`, exact :func:`exact_gradient_norms`) and the
  model protocol :class:`FeatureClassifier` (``forward_features(x) -> h`` and an
  ``nn.Linear`` named ``classifier``).
- ``warmup.py``: warm-up rules (``none``, ``steps:N``, ``epochs:N``, ``loss:F``,
  ``variance:T``).
- ``samplers.py``: :func:`make_sampler` -> :class:`PresampleSampler` (the paper),
  :class:`HistorySampler` (ours) or :class:`PruneSampler` (epoch-level pruning, after
  InfoBatch), with ``state_dict()`` / ``load_state_dict()``.
- ``pruning.py``: the pure pruning rule (drop probabilities by the CDF rank, weights).
- ``presets.py``: the named sampler presets that ``cdfis train``, ``cdfis compare`` and
  the GUI offer.

The training loop (one thread owns the sampler)::

    sampler = make_sampler(config.sampler, dataset_size=N, batch_size=b, seed=seed)
    sampler.update_warmup(step=0, epoch=0, val_loss=initial_val_loss)
    for step in ...:
        plan = sampler.plan(step, epoch, progress)        # BatchPlan; progress: share of the run done
        scores = None
        if plan.needs_scores:                             # presample mode, sampling on
            xc, yc = load(plan.candidate_indices)         # B = r*b candidates
            scores = score_batch(model, xc, yc, metric, train_mode=cfg.score_in_train_mode)
        selection = sampler.select(plan, scores)          # Selection
        x, y = load(selection.dataset_indices)            # b rows (repeats possible)
        h = model.forward_features(x); logits = model.classifier(h)
        per_sample = F.cross_entropy(logits, y, reduction="none")
        (selection.weights.to(device) * per_sample).mean().backward(); optimizer.step()
        observed = scores_from_outputs(logits.detach(), y, metric, h.detach())
        sampler.observe(selection.dataset_indices, observed)   # history + variance warm-up
        record = selection.completed_record(observed)          # DrawRecord -> the store
        sampler.update_warmup(step=step + 1, epoch=epoch, val_loss=val_loss_or_None)

``sampler.is_active`` / ``sampler.switch_step`` tell whether and when importance sampling
switched on. An epoch, for the samplers, is ``ceil(N / b)`` steps.
"""

from __future__ import annotations

from cdfis_desktop.core.sampling.draw import DRAW_RULES, Draw, draw, probabilities
from cdfis_desktop.core.sampling.records import BatchPlan, DrawRecord, Selection
from cdfis_desktop.core.sampling.samplers import (
    HistorySampler,
    PresampleSampler,
    PruneSampler,
    Sampler,
    make_sampler,
)
from cdfis_desktop.core.sampling.scores import (
    FeatureClassifier,
    exact_gradient_norms,
    score_batch,
    scores_from_outputs,
)
from cdfis_desktop.core.sampling.warmup import WarmupRule

__all__ = [
    "DRAW_RULES",
    "BatchPlan",
    "Draw",
    "DrawRecord",
    "FeatureClassifier",
    "HistorySampler",
    "PresampleSampler",
    "PruneSampler",
    "Sampler",
    "Selection",
    "WarmupRule",
    "draw",
    "exact_gradient_norms",
    "make_sampler",
    "probabilities",
    "score_batch",
    "scores_from_outputs",
]
