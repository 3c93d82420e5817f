"""Data maps of training dynamics and the review queue built on them (issue 17).

Headless (numpy; the store through :class:`~cdfis_desktop.core.storage.Project`).

- :mod:`.statistics`: SQL-free cartography (confidence, variability, correctness,
  regions; Swayamdipta et al. 2020) and area under the margin (Pleiss et al. 2020).
- :mod:`.service`: a run's data map, stored once and read back while fresh.
"""

from __future__ import annotations

from cdfis_desktop.core.datamaps.service import compute_data_map, data_map
from cdfis_desktop.core.datamaps.statistics import (
    DEFAULT_RANKING,
    NONE,
    RANKINGS,
    REGION_NAMES,
    DataMap,
    DataMapAccumulator,
    label_error_ranking,
    precision_at_k,
    regions,
)

__all__ = [
    "DEFAULT_RANKING",
    "NONE",
    "RANKINGS",
    "REGION_NAMES",
    "DataMap",
    "DataMapAccumulator",
    "compute_data_map",
    "data_map",
    "label_error_ranking",
    "precision_at_k",
    "regions",
]
