"""Data maps of training dynamics: pure numpy, no SQL (the store feeds it epoch by epoch).

Inputs, per epoch and per patch id (the per-epoch aggregates of :mod:`..storage.aggregates`):
``label_seen`` (steps that trained on the patch), ``label_probability_sum``,
``margin_sum`` and ``label_correct`` over those steps. In an epoch where a patch was
trained, its epoch values are the means ``p_e = probability_sum / seen``, ``m_e =
margin_sum / seen`` and ``c_e = correct / seen``. Over the E epochs that trained it:

- **confidence** = mean of ``p_e`` and **variability** = their standard deviation
  (population, 1/E), and **correctness** = mean of ``c_e``: data cartography,
  Swayamdipta et al. 2020 (EMNLP), section 2;
- **AUM** = mean of ``m_e``, the area under the margin of Pleiss et al. 2020 (NeurIPS):
  the label's logit minus the largest other logit, averaged over training. A mislabelled
  patch is pulled towards its true class by the other patches like it, so its margin stays
  low or negative: the lowest AUM ranks first among likely label errors;
- **final loss** = ``-ln p_e`` of the last epoch that trained it (cross-entropy at the
  end of training): the baseline that ranks by loss alone.

Regions (cartography, figure 1): **ambiguous** = the most variable third of the trained
patches (variability at or above its 2/3 quantile, and above 0); of the rest, **easy** when
confidence >= 0.5, else **hard** to learn. Patches never trained have NaN values and region
``NONE``.

Thread rules: pure functions and one accumulator object per computation; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdfis_desktop.core.errors import ReviewError

REGION_NAMES = ("easy", "ambiguous", "hard")
"""Region codes 0, 1, 2 (see the module docstring)."""
NONE = -1
"""Region code of a patch the run never trained on."""
AMBIGUOUS_QUANTILE = 2.0 / 3.0
EASY_CONFIDENCE = 0.5
MIN_PROBABILITY = 1e-12
"""Floor of a probability before its logarithm (final loss at most ~27.6 nats)."""


@dataclass(frozen=True)
class DataMap:
    """Per-patch training dynamics of one run, indexed by patch id (length n = highest
    patch id the run trained + 1; index 0 is unused as ids start at 1).

    ``epochs_seen`` int32[n]: epochs that trained the patch (0: never, values NaN);
    ``confidence``, ``variability``, ``correctness`` float32[n] in [0, 1]; ``aum`` float32[n]
    (logit units); ``final_loss`` float32[n] (nats); ``region`` int8[n] (:func:`regions`
    of the whole map: 0 easy, 1 ambiguous, 2 hard, :data:`NONE`). ``n_epochs``: epochs
    folded in."""

    epochs_seen: np.ndarray
    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray
    aum: np.ndarray
    final_loss: np.ndarray
    region: np.ndarray
    n_epochs: int

    ARRAYS = (
        "epochs_seen",
        "confidence",
        "variability",
        "correctness",
        "aum",
        "final_loss",
        "region",
    )

    def __len__(self) -> int:
        return int(self.epochs_seen.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The named arrays (what the store keeps)."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_epochs: int) -> DataMap:
        """Inverse of :meth:`arrays`."""
        return cls(**{name: arrays[name] for name in cls.ARRAYS}, n_epochs=n_epochs)

    def at(self, name: str, patch_ids: np.ndarray) -> np.ndarray:
        """``name``'s values of ``patch_ids`` (int64[k]); for ids past the end NaN (0 for
        ``epochs_seen``, :data:`NONE` for ``region``)."""
        values = getattr(self, name)
        ids = np.asarray(patch_ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < values.shape[0])
        missing = {"epochs_seen": 0, "region": NONE}.get(name, np.nan)
        out = np.full(ids.shape[0], missing, values.dtype)
        out[inside] = values[ids[inside]]
        return out

    def trained_ids(self) -> np.ndarray:
        """int64 ids of the patches trained in at least one epoch, ascending."""
        return np.flatnonzero(self.epochs_seen > 0).astype(np.int64)


class DataMapAccumulator:
    """Folds epochs of dynamics sums into running per-patch sums (float64), then gives the
    :class:`DataMap`. Memory: six arrays of n, whatever the number of epochs."""

    _SUMS = ("epochs", "p", "p2", "c", "m", "last_p")

    def __init__(self) -> None:
        self._n = 0
        self._epochs = 0
        self._sums = {name: np.zeros(0) for name in self._SUMS}

    def add_epoch(
        self,
        seen: np.ndarray,
        probability_sum: np.ndarray,
        margin_sum: np.ndarray,
        correct: np.ndarray,
    ) -> None:
        """One epoch's arrays indexed by patch id (any equal length; see module)."""
        n = int(seen.shape[0])
        self._grow(n)
        trained = np.flatnonzero(seen > 0)
        count = seen[trained].astype(np.float64)
        p = probability_sum[trained] / count
        s = self._sums
        s["epochs"][trained] += 1
        s["p"][trained] += p
        s["p2"][trained] += p * p
        s["c"][trained] += correct[trained] / count
        s["m"][trained] += margin_sum[trained] / count
        s["last_p"][trained] = p
        self._epochs += 1

    def _grow(self, n: int) -> None:
        if n <= self._n:
            return
        for name in self._SUMS:
            grown = np.zeros(n, np.float64)
            grown[: self._n] = self._sums[name]
            self._sums[name] = grown
        self._n = n

    def result(self) -> DataMap:
        """The data map of the epochs added so far."""
        s = self._sums
        epochs = s["epochs"]
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = s["p"] / epochs
            variance = np.maximum(s["p2"] / epochs - confidence * confidence, 0.0)
            correctness = s["c"] / epochs
            aum = s["m"] / epochs
        final_loss = np.where(epochs > 0, -np.log(np.maximum(s["last_p"], MIN_PROBABILITY)), np.nan)
        variability = np.sqrt(variance)
        return DataMap(
            epochs_seen=epochs.astype(np.int32),
            confidence=confidence.astype(np.float32),
            variability=variability.astype(np.float32),
            correctness=correctness.astype(np.float32),
            aum=aum.astype(np.float32),
            final_loss=final_loss.astype(np.float32),
            region=regions(confidence, variability),
            n_epochs=self._epochs,
        )


def regions(
    confidence: np.ndarray,
    variability: np.ndarray,
    *,
    ambiguous_quantile: float = AMBIGUOUS_QUANTILE,
    easy_confidence: float = EASY_CONFIDENCE,
) -> np.ndarray:
    """int8 region code per entry (0 easy, 1 ambiguous, 2 hard, :data:`NONE` where NaN);
    see the module docstring. Inputs float[k], NaN where the patch was never trained."""
    confidence = np.asarray(confidence, dtype=np.float64)
    variability = np.asarray(variability, dtype=np.float64)
    codes = np.full(confidence.shape[0], NONE, np.int8)
    valid = ~np.isnan(confidence) & ~np.isnan(variability)
    if not valid.any():
        return codes
    cut = float(np.quantile(variability[valid], ambiguous_quantile))
    ambiguous = valid & (variability >= cut) & (variability > 0)
    codes[valid & ~ambiguous & (confidence >= easy_confidence)] = 0
    codes[valid & ~ambiguous & (confidence < easy_confidence)] = 2
    codes[ambiguous] = 1
    return codes


@dataclass(frozen=True)
class Ranking:
    """A way to order trained patches as likely label errors: by the data-map array ``key``,
    lowest first when ``ascending``; ``description`` says it in a line."""

    key: str
    ascending: bool
    description: str


RANKINGS = {
    "aum": Ranking("aum", True, "lowest area under the margin first (Pleiss et al. 2020)"),
    "confidence": Ranking(
        "confidence", True, "lowest mean label probability over the epochs first (cartography)"
    ),
    "final_loss": Ranking("final_loss", False, "highest loss in the last trained epoch first"),
}
"""The label-error rankings the review queue offers, by name; ``aum`` is the default
(:data:`DEFAULT_RANKING`) and ``final_loss`` the loss-only baseline. All read the stored
data map, so switching costs a sort, not a recomputation."""
DEFAULT_RANKING = "aum"


def ranking_of(name: str) -> Ranking:
    """The :data:`RANKINGS` entry called ``name``; ReviewError (naming the choices) else."""
    if name not in RANKINGS:
        raise ReviewError(f"unknown ranking {name!r}: choose one of {', '.join(RANKINGS)}")
    return RANKINGS[name]


def label_error_ranking(
    data_map: DataMap, patch_ids: np.ndarray, method: str = DEFAULT_RANKING
) -> np.ndarray:
    """Positions into ``patch_ids`` (int64[k]) of the trained ones, likeliest label error
    first by ``method`` (a :data:`RANKINGS` name), then lowest confidence, then lowest id.
    Raises ReviewError for an unknown method."""
    ranking = ranking_of(method)
    ids = np.asarray(patch_ids, dtype=np.int64)
    trained = np.flatnonzero(data_map.at("epochs_seen", ids) > 0)
    value = data_map.at(ranking.key, ids[trained]).astype(np.float64)
    order = np.lexsort(
        (
            ids[trained],
            data_map.at("confidence", ids[trained]),
            value if ranking.ascending else -value,
        )
    )
    return trained[order]


def precision_at_k(ranked_ids: np.ndarray, positives: np.ndarray, k: int) -> float:
    """Share of ``positives`` (ids) among the first ``k`` of ``ranked_ids``."""
    top = np.asarray(ranked_ids)[: max(int(k), 0)]
    if top.size == 0:
        return 0.0
    return float(np.isin(top, positives).sum()) / float(k)
