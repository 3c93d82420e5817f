"""The metric registry: the one list of per-patch values a run can be drawn or exported by.

Each :class:`Metric` holds its key (the name in the CLI, exports and settings), a title
and a definition for people, its kind, its units, the colormap it is drawn with unless the
user picks another, and how its values come from a slide's
:class:`~cdfis_desktop.core.storage.SlideMeasurements`. The GUI's metric menu, the overlay
service, the PDF report, the PNG/CSV/GeoJSON exports and the CLI's ``--metric`` choices all
read :data:`METRICS`; nothing else lists metrics.

Kinds and their default colormaps (docs/method.md, "Favoured and ignored patches"):

- ``count`` (times chosen, times scored): sequential (viridis), range from percentiles;
- ``signed`` (favour, centred on 0 = what uniform sampling would give): diverging
  (RdBu_r), range symmetric around 0;
- ``score`` (mean/last score, prediction probability): sequential (viridis);
- ``categorical`` (label, prediction): one colour per class, no range.

Values are float64 ``[n]`` per patch, NaN where the metric has no value for a patch (never
scored; for counts and favour, training patches never scored count 0 draws). Pure
functions; safe from any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cdfis_desktop.core import statistics
from cdfis_desktop.core.errors import ConfigError
from cdfis_desktop.core.heatmap.colormaps import DEFAULT_COLORMAP, DIFFERENCE_COLORMAP

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import SlideMeasurements

KINDS = ("count", "signed", "score", "categorical")


@dataclass(frozen=True)
class Metric:
    """One per-patch value of a run (see the module docstring).

    ``scored_by``: set for the score aliases (``loss``, ``gradnorm``, ``gradnorm_wb``):
    the metric exists only for a run that scored patches by it and then equals
    ``mean_score``. ``categories``: the names of a categorical metric's values 0, 1, ...
    when they are not the project's classes (None: classes).
    """

    key: str
    title: str
    definition: str
    kind: str
    units: str
    compute: Callable[[SlideMeasurements], np.ndarray]
    scored_by: str | None = None
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.key!r}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def default_colormap(self) -> str | None:
        """Diverging for signed values, sequential for counts and scores, None (class
        colours) for categorical metrics."""
        if self.categorical:
            return None
        return DIFFERENCE_COLORMAP if self.kind == "signed" else DEFAULT_COLORMAP

    @property
    def is_measurement(self) -> bool:
        """One of the per-patch numbers of the CSV and GeoJSON exports (not a class, not
        an alias of another measurement)."""
        return not self.categorical and self.scored_by is None

    def unavailable_reason(self, run_id: int, score_metric: str) -> str | None:
        """Why run ``run_id`` (which scored patches by ``score_metric``) has no values of
        this metric, in words for the user; None when it has them."""
        if self.scored_by is None or self.scored_by == score_metric:
            return None
        return (
            f"{self.title} ({self.key}) is not recorded: run {run_id} scored patches by "
            f"{score_metric!r}, not {self.key!r}; use metric {score_metric!r} or 'mean_score' "
            "(Mean score)"
        )

    def values(self, measurements: SlideMeasurements) -> np.ndarray:
        """float64[n] values of the slide's patches (NaN = no value). Raises ConfigError
        when the run did not record this metric (see :meth:`unavailable_reason`)."""
        reason = self.unavailable_reason(measurements.run_id, measurements.score_metric)
        if reason is not None:
            raise ConfigError(reason)
        return np.asarray(self.compute(measurements), dtype=np.float64)


def _scored(m: SlideMeasurements, values: np.ndarray) -> np.ndarray:
    """``values`` where the patch was scored in the span, NaN elsewhere."""
    return np.where(m.times_scored > 0, values, np.nan)


def _times_chosen(m: SlideMeasurements) -> np.ndarray:
    # a training patch never scored was still a candidate for every draw: 0 draws
    return np.where(m.times_scored > 0, m.times_chosen, np.where(m.is_train, 0.0, np.nan))


def _favour(m: SlideMeasurements) -> np.ndarray:
    expected = statistics.expected_uniform(m.run_draws, m.n_train)
    return statistics.favour(_times_chosen(m), expected)


def _mean_score(m: SlideMeasurements) -> np.ndarray:
    return statistics.mean_score(m.score_sum, m.times_scored)


def _per_trained_step(m: SlideMeasurements, total: np.ndarray) -> np.ndarray:
    """``total`` / steps that trained the patch in the span (NaN where none)."""
    return np.where(m.label_seen > 0, total / np.maximum(m.label_seen, 1), np.nan)


def _class_or_nan(labels: np.ndarray) -> np.ndarray:
    return np.where(labels >= 0, labels, np.nan)


def _score_alias(key: str, title: str, what: str) -> Metric:
    return Metric(
        key,
        title,
        f"The mean {what} of the patch over the steps it was scored: the same values as "
        f"Mean score, for a run that scored patches by {key}.",
        "score",
        key,
        _mean_score,
        scored_by=key,
    )


METRICS: tuple[Metric, ...] = (
    Metric(
        "times_scored",
        "Times scored",
        "How many times the sampler computed the patch's score, i.e. looked at it as a "
        "candidate for a mini-batch.",
        "count",
        "scorings",
        lambda m: _scored(m, m.times_scored),
    ),
    Metric(
        "times_chosen",
        "Times chosen",
        "How many times the sampler put the patch into a training mini-batch (0 for a "
        "training patch it never chose).",
        "count",
        "draws",
        _times_chosen,
    ),
    Metric(
        "favour",
        "Favoured / ignored vs uniform",
        "Times chosen minus the times uniform sampling would have chosen the patch (the "
        "run's draws / its training patches). Above 0: favoured; below 0: ignored; 0: as "
        "often as uniform sampling.",
        "signed",
        "draws",
        _favour,
    ),
    Metric(
        "mean_score",
        "Mean score",
        "The mean of the patch's scores (the run's score metric: loss or gradient norm) "
        "over the steps it was scored.",
        "score",
        "score",
        _mean_score,
    ),
    Metric(
        "last_score",
        "Last score",
        "The patch's score at the last step it was scored.",
        "score",
        "score",
        lambda m: _scored(m, m.last_score),
    ),
    Metric(
        "prediction_probability",
        "Prediction probability",
        "The model's probability of the class it predicted for the patch, at the latest "
        "validation (or the epoch shown).",
        "score",
        "probability",
        lambda m: m.prediction_probability,
    ),
    _score_alias("loss", "Loss", "loss"),
    _score_alias("gradnorm", "Gradient norm", "last-layer bias gradient norm"),
    _score_alias(
        "gradnorm_wb", "Gradient norm (weight + bias)", "last-layer weight and bias gradient norm"
    ),
    Metric(
        "label_probability",
        "Label probability",
        "The model's probability of the patch's label in the training steps that trained "
        "on it (mean over the epoch shown, or over the run): low where the model disagrees "
        "with the label; over the run, the data-map confidence (Swayamdipta et al. 2020).",
        "score",
        "probability",
        lambda m: _per_trained_step(m, m.label_probability_sum),
    ),
    Metric(
        "margin",
        "Label margin",
        "The label's logit minus the largest other logit in the training steps that trained "
        "on the patch (mean over the epoch shown, or over the run: the area under the "
        "margin of Pleiss et al. 2020). Below 0: the model ranks another class first, a "
        "likely label error.",
        "signed",
        "logit",
        lambda m: _per_trained_step(m, m.margin_sum),
    ),
    Metric(
        "training_correctness",
        "Training correctness",
        "The share of the training steps on the patch in which the model ranked its label first.",
        "score",
        "share",
        lambda m: _per_trained_step(m, m.label_correct.astype(np.float64)),
    ),
    Metric(
        "label",
        "Label",
        "The patch's class from the slide's annotations or labels file.",
        "categorical",
        "class",
        lambda m: _class_or_nan(m.label),
    ),
    Metric(
        "prediction",
        "Prediction",
        "The class the model predicted for the patch at the latest validation (or the "
        "epoch shown).",
        "categorical",
        "class",
        lambda m: _class_or_nan(m.prediction),
    ),
    Metric(
        "data_map_region",
        "Data-map region",
        "Where the patch lies on the run's data map (Swayamdipta et al. 2020): easy (learnt "
        "early and confidently), ambiguous (the most variable third of the label "
        "probability across epochs) or hard to learn (low confidence: often a label error "
        "or an artefact). Shown once the run's data map has been computed.",
        "categorical",
        "region",
        lambda m: _class_or_nan(m.region),
        categories=("easy", "ambiguous", "hard to learn"),
    ),
)
"""Every metric, in menu order (the measurements first, in export column order)."""

_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The registry entry of ``key``; ConfigError naming the choices for an unknown key."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ConfigError(
            f"unknown heatmap metric {key!r}; choose one of: {', '.join(_BY_KEY)}"
        ) from None


def metric_keys() -> tuple[str, ...]:
    """Every metric key, in menu order (e.g. the CLI's ``--metric`` choices)."""
    return tuple(_BY_KEY)


def measurement_metrics() -> tuple[Metric, ...]:
    """The per-patch numbers of the CSV and GeoJSON exports, in column order."""
    return tuple(m for m in METRICS if m.is_measurement)
