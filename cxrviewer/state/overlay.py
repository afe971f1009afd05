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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any, Generic, TypeVar, cast, overload

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


T = TypeVar("T")


class _Current(Generic[T]):
    """`settings.opacity` and the like: that field of the current snapshot (read-only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._field = name

    @overload
    def __get__(self, settings: None, owner: type) -> _Current[T]: ...
    @overload
    def __get__(self, settings: OverlaySettings, owner: type) -> T: ...

    def __get__(self, settings: OverlaySettings | None, owner: type) -> _Current[T] | T:
        return self if settings is None else cast(T, getattr(settings.snapshot(), self._field))

    def __set__(self, settings: OverlaySettings, value: T) -> None:
        raise AttributeError(f"{self._field} is read-only: use set_{self._field}()")


def _flag(value: bool, field: str) -> bool:
    return bool(value)


def _unit(value: float, field: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{field} must be between 0 and 1, not {value!r}")
    return number


def _positive(value: float, field: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"the absolute scale's top must be positive, not {value!r}")
    return number


def _one_of(choices: Iterable[str], what: str) -> Callable[[str, str], str]:
    def check(value: str, field: str) -> str:
        if value not in choices:
            raise ValueError(f"unknown {what} {value!r}")
        return value
    return check


def _target(value: CamTarget, field: str) -> CamTarget:
    return value


def _setter(field: str, check: Callable[[T, str], T]) -> Callable[[OverlaySettings, T], None]:
    """`settings.set_<field>(value)`: validated by `check` (ValueError), announced only when it changes."""
    def set_field(settings: OverlaySettings, value: T) -> None:
        settings._set(field, check(value, field))
    set_field.__name__ = set_field.__qualname__ = f"set_{field}"
    return set_field


class OverlaySettings:
    """The heat map's look and target. `changed` fires once per field that really changed."""

    def __init__(self, initial: OverlaySnapshot | None = None) -> None:
        self._now = initial if initial is not None else OverlaySnapshot()
        self.changed: Event[OverlayChange] = Event("overlay settings changed")

    def snapshot(self) -> OverlaySnapshot:
        return self._now

    # -- reading: the current snapshot's fields -----------------------------------------------
    visible: _Current[bool] = _Current()
    opacity: _Current[float] = _Current()
    colormap: _Current[str] = _Current()
    threshold: _Current[float] = _Current()
    style: _Current[str] = _Current()
    normalisation: _Current[str] = _Current()
    absolute_max: _Current[float] = _Current()
    target: _Current[CamTarget] = _Current()

    # -- writing (validated; a value equal to the current one announces nothing) -------------
    set_visible = _setter("visible", _flag)
    set_opacity = _setter("opacity", _unit)
    set_threshold = _setter("threshold", _unit)
    set_colormap = _setter("colormap", _one_of(COLORMAPS, "colour map"))
    set_style = _setter("style", _one_of(STYLES, "heat-map style"))
    set_normalisation = _setter("normalisation", _one_of(NORMALISATION_MODES, "normalisation"))
    set_absolute_max = _setter("absolute_max", _positive)
    set_target = _setter("target", _target)

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
