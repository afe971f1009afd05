"""Corner text on narrow and short panes: the left and right blocks (and the top and bottom rows) never
overlap; lines are elided with "…" or, when even that cannot fit, the last lines are dropped; wide panes
look as they always did. The rectangles come from `layout_corner_text`, which `paint_corner_text` draws.
The narrow canvas's picture goes to tests/gui/_output/corner_text_narrow.png."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication

from cxrviewer.core.types import Window
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.corner_text import (
    MIN_VISIBLE_CHARS,
    CornerText,
    ViewState,
    build_corner_text,
    corner_font,
    corner_text_bounds,
    layout_corner_text,
)

from .helpers import make_xray
from .image_compare import OUTPUT_DIR, qimage_to_rgb, write_png
from .synthetic import gradient

LONG_METADATA = {
    "PatientName": "Vandenberghe-Oyelaran^Maximiliana^Christabel",
    "PatientID": "PID-1234567890",
    "PatientBirthDate": "19700102",
    "PatientSex": "F",
    "AccessionNumber": "ACC-77712345",
    "InstitutionName": "Royal Northern Teaching Hospital NHS Foundation Trust",
    "StudyDate": "20240315",
    "StudyDescription": "Chest PA and lateral, inspiratory",
    "Modality": "CR",
    "ViewPosition": "PA",
    "BodyPartExamined": "CHEST",
    "SeriesDescription": "PA erect, 180 cm focus-film distance",
}
MARGIN = 8.0


@pytest.fixture
def font(qapp):
    return corner_font(QApplication.font())


def long_text() -> CornerText:
    view = ViewState(window=Window(2000, 4000), zoom=1.17, rotation_degrees=90, flipped=True, inverted=True,
                     width=2048, height=2500)
    return build_corner_text(LONG_METADATA, view, anonymise=False)


def old_layout(rect: QRectF, text: CornerText, font) -> list[tuple[str, str, float, float]]:
    """Where every line was drawn before panes were fitted: whole, against its corner."""
    metrics, placed = QFontMetricsF(font), []
    for corner in ("top_left", "top_right", "bottom_left", "bottom_right"):
        lines = getattr(text, corner)
        for i, line in enumerate(lines):
            width = metrics.horizontalAdvance(line)
            x = rect.right() - MARGIN - width if corner.endswith("right") else rect.left() + MARGIN
            if corner.startswith("bottom"):
                y = rect.bottom() - MARGIN - (len(lines) - 1 - i) * metrics.lineSpacing() - metrics.descent()
            else:
                y = rect.top() + MARGIN + i * metrics.lineSpacing() + metrics.ascent()
            placed.append((corner, line, x, y))
    return placed


def assert_apart(bounds: dict[str, QRectF], rect: QRectF) -> None:
    for left, right in (("top_left", "top_right"), ("bottom_left", "bottom_right")):
        if left in bounds and right in bounds:
            assert not bounds[left].intersects(bounds[right]), (left, bounds[left], right, bounds[right])
    tops = [bounds[c] for c in ("top_left", "top_right") if c in bounds]
    bottoms = [bounds[c] for c in ("bottom_left", "bottom_right") if c in bounds]
    assert not any(t.intersects(b) for t in tops for b in bottoms)
    for box in bounds.values():          # and nothing runs off the pane (the halo may touch its edge)
        assert box.left() >= rect.left() and box.right() <= rect.right() + 1


def test_a_wide_pane_draws_every_line_whole_where_it_always_was(font) -> None:
    text = long_text()
    rect = QRectF(0, 0, 1400, 900)
    before = old_layout(rect, text, font)
    now = [(p.corner, p.text, p.origin.x(), p.origin.y()) for p in layout_corner_text(rect, text, font)]
    assert [n[:2] for n in now] == [b[:2] for b in before] and len(now) == len(text.all_lines())
    assert [n[2:] for n in now] == [b[2:] for b in before]          # the same arithmetic: equal exactly


@pytest.mark.parametrize("width", [640, 420, 340, 260, 180, 120])
def test_on_a_narrow_pane_the_left_and_right_blocks_do_not_meet(font, width: int) -> None:
    text = long_text()
    rect = QRectF(0, 0, width, 600)
    metrics = QFontMetricsF(font)
    natural = {c: max(metrics.horizontalAdvance(line) for line in getattr(text, c))
               for c in ("top_left", "top_right")}
    if width >= 420:       # the collision this guards against: whole lines would overlap at these widths
        assert natural["top_left"] + natural["top_right"] > width - 2 * MARGIN
    bounds = corner_text_bounds(rect, text, font)
    assert_apart(bounds, rect)
    placed = layout_corner_text(rect, text, font)
    shown = {p.text for p in placed}
    assert any(line.endswith("…") for line in shown)                 # elided, not cut off at the edge
    for line in placed:                                              # each is its own line or its start + "…"
        source = getattr(text, line.corner)
        assert line.text in source or any(s.startswith(line.text[:-1]) for s in source if line.text.endswith("…"))
    if width >= 260:       # room for both: no corner loses its first line
        assert {p.corner for p in placed} == {"top_left", "top_right", "bottom_left", "bottom_right"}


def test_a_short_pane_drops_the_last_lines_rather_than_stack_top_on_bottom(font) -> None:
    text = long_text()
    metrics = QFontMetricsF(font)
    rect = QRectF(0, 0, 1400, 2 * MARGIN + 4.5 * metrics.lineSpacing())      # room for 4 rows, not 3 + 3
    placed = layout_corner_text(rect, text, font)
    assert_apart(corner_text_bounds(rect, text, font), rect)
    kept = {c: [p.text for p in placed if p.corner == c] for c in ("top_left", "top_right", "bottom_right")}
    assert 0 < len(kept["top_left"]) < len(text.top_left) and kept["top_left"] == list(text.top_left[:len(kept["top_left"])])
    assert kept["top_right"] == list(text.top_right[:len(kept["top_right"])])     # the first lines stay
    assert kept["bottom_right"] == list(text.bottom_right[:len(kept["bottom_right"])])


def test_a_narrow_canvas_paints_the_fitted_text(qtbot, font) -> None:
    """The widget draws what the layout says: elided lines on a 300 px canvas, blocks apart."""
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(300, 420)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(make_xray(gradient(200, 300), window=Window(2000, 4000), metadata=LONG_METADATA))
    canvas.set_title("Practice case 3 of 12")
    canvas.flush_render()
    qtbot.wait(20)
    viewport = QRectF(canvas.viewport().rect())
    bounds = canvas.corner_text_bounds()
    assert_apart(bounds, viewport)
    first = [p.text for p in layout_corner_text(viewport, canvas.corner_text(), font) if p.corner == "top_left"]
    assert first[0] == "Practice case 3 of 12"          # the title comes first, whole when it fits its share
    picture = canvas.viewport().grab().toImage()
    write_png(OUTPUT_DIR / "corner_text_narrow.png", qimage_to_rgb(picture))
    rgb = qimage_to_rgb(picture)
    gap = bounds["top_left"].right() + 2, bounds["top_right"].left() - 2     # between the blocks: no ink
    top, bottom = int(bounds["top_left"].top()), int(bounds["top_left"].bottom())
    assert gap[1] > gap[0] and rgb[top:bottom, int(gap[0]):int(gap[1])].max() < 40


def test_compare_in_a_small_window_keeps_each_sides_corners_apart(qtbot, make_window, make_dicom) -> None:
    """The walk's case: compare 1×2 in a small window (docks open: panes under 400 px), DICOMs with long
    names. On each side the left and right blocks are apart and the patient's name is elided, not dropped.
    The window's picture goes to tests/gui/_output/corner_text_compare.png."""
    from .helpers import LOAD_TIMEOUT_MS, open_and_wait

    window = make_window(size=(1100, 700))
    current = make_dicom(gradient(200, 300).astype(np.uint16), name="current.dcm", **LONG_METADATA)
    prior = make_dicom(gradient(200, 300).astype(np.uint16), name="prior.dcm", **LONG_METADATA)
    open_and_wait(qtbot, window, [current])
    window.compare.compare_with(prior)
    qtbot.waitUntil(lambda: window.compare.image() is not None and window.compare.image().path == prior,
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.wait(50)
    write_png(OUTPUT_DIR / "corner_text_compare.png", qimage_to_rgb(window.grab().toImage()))
    for canvas in (window.canvas, window.compare.canvas):
        canvas.flush_render()
        viewport = QRectF(canvas.viewport().rect())
        assert viewport.width() < 400                                     # narrow: the collision's setting
        assert_apart(canvas.corner_text_bounds(), viewport)
        placed = layout_corner_text(viewport, canvas.corner_text(), corner_font(QApplication.font()))
        top_left = [p.text for p in placed if p.corner == "top_left"]
        assert top_left[0].endswith("…") and len(top_left[0]) > MIN_VISIBLE_CHARS
        assert "Vandenberghe-Oyelaran, Maximiliana Christabel".startswith(top_left[0][:-1])
