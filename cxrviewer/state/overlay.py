"""`OverlaySettings`: how the heat map is drawn and which map is wanted, with what each change costs.

One evented model replaces reading the settings back from the controls' widgets. Every
change is announced once, with its cost, so the price of a slider move is a rule here and
not a habit of whoever wires the slider:

* opacity, visibility                 → `Cost.REDRAW`: the overlay item only;
* colour map, threshold, style        → `Cost.RECOLOUR`: the cached index image through the LUT;
* normalisation, absolute maximum     → `Cost.RESCALE`: the index image from the cached raw CAM;
* class, method, layer (`CamTarget`)  → `Cost.RECOMPUTE`: the only change that may go back to the model.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from cxrviewer.core.xai.cam import GRADCAM
from cxrviewer.core.xai.overlay import COLORMAPS, NORMALISATION_MODES
from cxrviewer.core.xai.overlay_style import DEFAULT_COLORMAP, DEFAULT_OPACITY, DEFAULT_THRESHOLD, HEATMAP, STYLES
from cxrviewer.state.events import Event

__all__ = ["CamTarget", "Cost", "OverlayChange", "OverlaySettings", "OverlaySnapshot", "COST_OF"]


@dataclass(frozen=True)
class CamTarget:
    """Which map to compute: class (None = the model's call), method, layer (None = the card's)."""

    class_index: int | None = None
    method: str = GRADCAM
    layer: str | None = None


class Cost(Enum):
    """What a settings change costs the viewer, cheapest first."""

    REDRAW = 1
    RECOLOUR = 2
    RESCALE = 3
    RECOMPUTE = 4


@dataclass(frozen=True)
class OverlaySnapshot:
    """The overlay settings at one moment (frozen: safe to keep, compare and hand across threads)."""

    visible: bool = True
    opacity: float = DEFAULT_OPACITY
    colormap: str = DEFAULT_COLORMAP
    threshold: float = DEFAULT_THRESHOLD
    style: str = HEATMAP
    normalisation: str = "per_image"
    absolute_max: float = 1.0
    target: CamTarget = CamTarget()

    @property
    def is_absolute(self) -> bool:
        return self.normalisation == "absolute"

    @property
    def scale_max(self) -> float | None:
        """The absolute scale's top, None for the per-image scale."""
        return self.absolute_max if self.is_absolute else None


COST_OF: dict[str, Cost] = {
    "visible": Cost.REDRAW, "opacity": Cost.REDRAW,
    "colormap": Cost.RECOLOUR, "threshold": Cost.RECOLOUR, "style": Cost.RECOLOUR,
    "normalisation": Cost.RESCALE, "absolute_max": Cost.RESCALE,
    "target": Cost.RECOMPUTE,
}
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OverlaySnapshot))


@dataclass(frozen=True)
class OverlayChange:
    """One field changed: its name, its cost, and the settings after the change."""

    field: str
    cost: Cost
    settings: OverlaySnapshot

    @property
    def value(self) -> Any:
        return getattr(self.settings, self.field)


def _unit(value: float, name: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    return number


class OverlaySettings:
    """The heat map's look and target. `changed` fires once per field that really changed."""

    def __init__(self, initial: OverlaySnapshot | None = None) -> None:
        self._now = initial if initial is not None else OverlaySnapshot()
        self.changed: Event[OverlayChange] = Event("overlay settings changed")

    def snapshot(self) -> OverlaySnapshot:
        return self._now

    # -- reading ------------------------------------------------------------------------------
    @property
    def visible(self) -> bool:
        return self._now.visible

    @property
    def opacity(self) -> float:
        return self._now.opacity

    @property
    def colormap(self) -> str:
        return self._now.colormap

    @property
    def threshold(self) -> float:
        return self._now.threshold

    @property
    def style(self) -> str:
        return self._now.style

    @property
    def normalisation(self) -> str:
        return self._now.normalisation

    @property
    def absolute_max(self) -> float:
        return self._now.absolute_max

    @property
    def target(self) -> CamTarget:
        return self._now.target

    # -- writing (validated; a value equal to the current one announces nothing) -------------
    def set_visible(self, visible: bool) -> None:
        self._set("visible", bool(visible))

    def set_opacity(self, opacity: float) -> None:
        self._set("opacity", _unit(opacity, "opacity"))

    def set_threshold(self, threshold: float) -> None:
        self._set("threshold", _unit(threshold, "threshold"))

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"unknown colour map {name!r}")
        self._set("colormap", name)

    def set_style(self, style: str) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown heat-map style {style!r}")
        self._set("style", style)

    def set_normalisation(self, mode: str) -> None:
        if mode not in NORMALISATION_MODES:
            raise ValueError(f"unknown normalisation {mode!r}")
        self._set("normalisation", mode)

    def set_absolute_max(self, value: float) -> None:
        number = float(value)
        if not number > 0:
            raise ValueError(f"the absolute scale's top must be positive, not {value!r}")
        self._set("absolute_max", number)

    def set_target(self, target: CamTarget) -> None:
        self._set("target", target)

    def set_absolute_max_quietly(self, value: float) -> None:
        """The scale's top chosen by the AI session (first map seen, or the card): no change to act on."""
        self._now = replace(self._now, absolute_max=float(value))

    def set_target_quietly(self, target: CamTarget) -> None:
        """A new model resets the target; the new model re-runs the image anyway, so nothing to announce."""
        self._now = replace(self._now, target=target)

    def _set(self, name: str, value: Any) -> None:
        if getattr(self._now, name) == value:
            return
        self._now = replace(self._now, **{name: value})
        self.changed.emit(OverlayChange(name, COST_OF[name], self._now))
