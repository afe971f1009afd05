"""OverlaySettings: each change announced once, with what it costs; only a target change may recompute."""
from __future__ import annotations

import pytest

from cxrviewer.state.overlay import CamTarget, Cost, OverlayChange, OverlaySettings


def test_each_field_has_its_cost_and_equal_values_are_silent() -> None:
    settings = OverlaySettings()
    changes: list[OverlayChange] = []
    settings.changed.connect(changes.append)
    settings.set_opacity(0.7)
    settings.set_opacity(0.7)
    settings.set_colormap("jet")
    settings.set_threshold(0.2)
    settings.set_style("contours")
    settings.set_normalisation("absolute")
    settings.set_absolute_max(2.5)
    settings.set_visible(False)
    settings.set_target(CamTarget(2, "gradcam", "conv"))
    settings.set_target(CamTarget(2, "gradcam", "conv"))
    assert [(c.field, c.cost) for c in changes] == [
        ("opacity", Cost.REDRAW), ("colormap", Cost.RECOLOUR), ("threshold", Cost.RECOLOUR),
        ("style", Cost.RECOLOUR), ("normalisation", Cost.RESCALE), ("absolute_max", Cost.RESCALE),
        ("visible", Cost.REDRAW), ("target", Cost.RECOMPUTE)]
    assert changes[-1].settings == settings.snapshot() and settings.snapshot().scale_max == 2.5
    assert [c for c in changes if c.cost is Cost.RECOMPUTE] == changes[-1:]


@pytest.mark.parametrize("setter, value", [("set_opacity", 1.5), ("set_threshold", -0.1),
                                           ("set_colormap", "rainbow"), ("set_style", "dots"),
                                           ("set_normalisation", "global"), ("set_absolute_max", 0.0)])
def test_invalid_values_are_refused(setter: str, value: object) -> None:
    settings = OverlaySettings()
    before = settings.snapshot()
    with pytest.raises(ValueError):
        getattr(settings, setter)(value)
    assert settings.snapshot() == before


def test_the_fields_read_the_current_snapshot_and_cannot_be_assigned() -> None:
    settings = OverlaySettings()
    settings.set_opacity(0.3)
    settings.set_target(CamTarget(1, "hirescam", "relu"))
    assert settings.opacity == 0.3 == settings.snapshot().opacity
    assert settings.target == CamTarget(1, "hirescam", "relu") and settings.visible is True
    with pytest.raises(AttributeError, match="set_opacity"):
        settings.opacity = 0.9   # type: ignore[misc]
    assert settings.opacity == 0.3


def test_quiet_updates_announce_nothing() -> None:
    settings = OverlaySettings()
    changes: list[OverlayChange] = []
    settings.changed.connect(changes.append)
    settings.set_absolute_max_quietly(4.0)
    settings.set_target_quietly(CamTarget(1))
    assert changes == [] and settings.absolute_max == 4.0 and settings.target == CamTarget(1)
