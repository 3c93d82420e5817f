"""What the importance overlay shows, as the user chose it, and rendering it.

:class:`OverlayState` is the user's choice (metric, colormap, range, epoch, comparison);
:func:`build_overlay` hands it to the core overlay service
(:mod:`cdfis_desktop.core.heatmap.overlay`), the same path the report and the exports
take, and returns its :class:`~cdfis_desktop.core.heatmap.overlay.Overlay` (RGBA layer,
values, Qt-free legend). No Qt here; any thread may call :func:`build_overlay`, but the
viewer must be updated from the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdfis_desktop.core.heatmap.overlay import Overlay, OverlayRequest, render_overlay

if TYPE_CHECKING:
    from cdfis_desktop.core.storage import Project, SlideRecord


@dataclass(frozen=True)
class OverlayState:
    """The overlay the user asked for.

    ``metric``: a key of the registry (``core.heatmap.metrics``); ``colormap`` None = the
    metric's default. ``epoch`` None = cumulative over the run. ``value_range`` None =
    automatic, over every epoch of the run (``range_over="run"``, so epochs compare) or
    over the values shown (``"view"``). ``compare``: ``none``,
    ``epoch`` (this epoch minus ``compare_epoch``) or ``run`` (this run minus
    ``compare_run`` at the same epoch). ``opacity`` is applied by the viewer, not baked
    into the layer.
    """

    metric: str = "favour"
    colormap: str | None = None
    opacity: float = 0.45
    value_range: tuple[float, float] | None = None
    range_over: str = "run"
    epoch: int | None = None
    compare: str = "none"
    compare_epoch: int | None = None
    compare_run: int | None = None

    def view_fields(self) -> dict[str, Any]:
        """The :class:`OverlayRequest` fields that say which values to draw and on what
        range (epoch, comparison, range), shared by the viewer and the PNG export."""
        return {
            "epoch": self.epoch,
            "compare": self.compare,
            "compare_epoch": self.compare_epoch,
            "compare_run": self.compare_run,
            "value_range": self.value_range,
            "range_over": self.range_over,
        }


def build_overlay(
    project: Project, run_id: int, slide: SlideRecord, state: OverlayState
) -> Overlay:
    """Render ``state`` for ``slide`` and run ``run_id`` (opaque layer: the viewer applies
    the opacity). Raises ``ConfigError`` (e.g. ``loss`` for a run scored by gradient norm)
    and ``StoreError``."""
    return render_overlay(
        project,
        OverlayRequest(slide, run_id, state.metric, colormap=state.colormap, **state.view_fields()),
    )
