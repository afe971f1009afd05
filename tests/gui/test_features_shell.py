"""Trainee features need only a Shell and the state models, never the MainWindow (#15 item 2)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMenu, QVBoxLayout, QWidget

from cxrviewer.state.ai import AiSession
from cxrviewer.state.read_first import ReadFirstFlow
from cxrviewer.state.session import ViewerSession
from cxrviewer.teaching.reads import ReadStore
from cxrviewer.ui.docks.read_first_panel import ReadFirstPanel
from cxrviewer.ui.features.model_card import ModelCardFeature
from cxrviewer.ui.features.my_reads import MyReadsFeature
from cxrviewer.ui.features.read_first_session import ReadFirstSession
from cxrviewer.ui.features.sanity import SanityCheck
from tests.state_fakes import FakeEngine, image, model


class FakeShell:
    """Records what features ask of the window."""

    def __init__(self, host: QWidget) -> None:
        self._host = host
        self.layout = QVBoxLayout(host)
        self.statuses: list[str] = []
        self.notices: list[tuple[str, bool]] = []
        self.menu_actions: list[tuple[str, str]] = []
        self.shown: list[tuple[int, int]] = []
        self.opened: list[list[object]] = []

    def host(self) -> QWidget:
        return self._host

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        self.statuses.append(message)

    def show_notice(self, message: str, problem: bool = True) -> None:
        self.notices.append((message, problem))

    def add_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 tabify_with: QDockWidget | None = None) -> QDockWidget:
        return dock

    def split_docks(self, first: object, second: object, orientation: Qt.Orientation) -> None: ...

    def size_docks(self, docks: object, sizes: list[int], orientation: Qt.Orientation) -> None: ...

    def add_menu_action(self, menu_id: str, action: QAction, before: str | None = None, at_top: bool = False) -> None:
        self.menu_actions.append((menu_id, action.objectName()))

    def add_menu_separator(self, menu_id: str, before: str | None = None) -> None: ...

    def add_menu(self, menu: QMenu, before_menu_id: str) -> None: ...

    def add_toolbar_action(self, action: QAction, separator: bool = True) -> None: ...

    def add_status_widget(self, widget: QWidget, index: int = 0) -> None: ...

    def add_above_view(self, widget: QWidget) -> None:
        self.layout.addWidget(widget)

    def is_anonymised(self) -> bool:
        return False

    def open_paths(self, paths: object) -> None:
        self.opened.append(list(paths))   # type: ignore[call-overload]

    def show_index(self, index: int, frame: int = 0) -> None:
        self.shown.append((index, frame))


@pytest.fixture
def shell(qtbot) -> FakeShell:
    host = QWidget()
    qtbot.addWidget(host)
    return FakeShell(host)


def test_model_card_and_banner_with_a_fake_shell(shell: FakeShell) -> None:
    ai, viewer, flow = AiSession(FakeEngine()), ViewerSession(), ReadFirstFlow()
    feature = ModelCardFeature(shell, ai, viewer, flow)
    assert feature.banner.parent() is shell.host()
    dialog = feature.open()                     # no model yet: the placeholder card
    assert dialog.isVisible() and feature.dialog is dialog
    ai.set_model(model())
    viewer.show(image())
    feature.new_image()                          # a plain radiograph like the training data: no warning
    assert feature.warnings() == []


class FakeChecks(QObject):
    """The sanity/audit half of the inference service's API, without a worker."""

    sanity_ready = Signal(object)
    sanity_failed = Signal(int, str)
    audit_ready = Signal(object)
    audit_failed = Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[object, ...]] = []

    def request_sanity(self, image: object, class_index: object, layer: object, method: object) -> int:
        self.asked.append(("sanity", class_index, layer, method))
        return len(self.asked)

    def request_audit(self, image: object, class_index: object, method: object, layer: object) -> int:
        self.asked.append(("audit", class_index, layer, method))
        return len(self.asked)


def test_sanity_check_says_why_it_cannot_run_then_asks_the_service(shell: FakeShell) -> None:
    checks = FakeChecks()
    ai, viewer, flow = AiSession(FakeEngine()), ViewerSession(), ReadFirstFlow()
    check = SanityCheck(shell, checks, ai, viewer, flow)  # type: ignore[arg-type]
    assert check.run() is None and "Open an image first" in shell.notices[-1][0]
    viewer.show(image())
    assert check.run() is None and "No AI model is loaded" in shell.notices[-1][0]
    ai.set_model(model())
    assert check.run() is None and "Read first" in shell.notices[-1][0]      # before the call: not revealed
    flow.set_enabled(False)
    dialog = check.run()
    assert dialog is not None and checks.asked == [("sanity", None, None, "gradcam")]
    checks.sanity_failed.emit(1, "worker said no")
    assert "worker said no" in dialog.summary_text()
    dialog.close()


def test_my_reads_finds_the_image_of_a_read_through_the_shell(shell: FakeShell, tmp_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Entry:
        path: Path

    files = []
    for name in ("a.png", "b.png"):
        path = tmp_path / name
        path.write_bytes(name.encode() * 10)
        files.append(path)
    viewer: ViewerSession[Entry] = ViewerSession()
    viewer.set_entries([Entry(p) for p in files])
    reads = ReadFirstSession(ReadFirstPanel(), ReadStore(tmp_path / "reads.sqlite3"))
    feature = MyReadsFeature(shell, viewer, reads)
    import hashlib

    assert feature.open_read_image(hashlib.sha256(b"b.png" * 10).hexdigest())
    assert shell.shown == [(1, 0)]
    assert not feature.open_read_image("0" * 64) and "not in the study" in shell.notices[-1][0]
    reads.store().close()


def test_the_window_hands_each_feature_its_state_models(window) -> None:
    """#15: the window creates the inference service and the AI sessions; the features receive them."""
    from cxrviewer.core.inference.protocol import COMPARE_LANE

    assert window.ai.session is window.ai_session and window.ai.service is window.inference
    assert window.ai_session.engine is window.inference
    assert window.ai.overlay_settings is window.ai_session.overlay
    side = window.compare.ai.session          # the compare side's own session, on the same overlay settings
    assert side is not window.ai_session and side.overlay is window.ai_session.overlay
    assert side.engine.lane == COMPARE_LANE and side.engine.service is window.inference
    assert window.trainee.sanity.service is window.inference
    practice = window.practice                # handed its models, not the window
    assert practice.viewer is window.session and practice.reading is window.trainee.reading
    assert practice.ai is window.ai and practice.shell is window
    assert not hasattr(practice, "window")


# ------------------------------------------------------------ viewer tools: a canvas and a Shell, no window
def _canvas_on(shell: FakeShell):
    from cxrviewer.ui.viewer.canvas import ImageCanvas

    canvas = ImageCanvas(shell.host())
    shell.layout.addWidget(canvas)
    shell.host().resize(500, 500)
    shell.host().show()
    return canvas


def test_the_magnifier_and_the_angle_tool_need_only_the_canvas_a_shell_and_the_ruler(shell: FakeShell) -> None:
    from PySide6.QtCore import QPoint, QPointF

    from cxrviewer.ui.viewer.angle_tool import AngleTool
    from cxrviewer.ui.viewer.loupe import Loupe

    canvas = _canvas_on(shell)
    canvas.set_image(image(size=128))
    ruler = QAction("Ruler", shell.host(), checkable=True)
    ruler.toggled.connect(canvas.set_ruler_enabled)
    loupe = Loupe(canvas, shell)
    tool = AngleTool(canvas, shell, ruler, menu_before="clear_measurements")
    assert ("view", "action_magnifier") in shell.menu_actions and ("tools", "action_angle") in shell.menu_actions
    loupe.set_enabled(True)
    loupe.show_at(QPoint(canvas.viewport().width() // 2, canvas.viewport().height() // 2))
    assert loupe.label.isVisible()
    ruler.setChecked(True)
    tool.set_enabled(True)                        # the two take turns
    assert not ruler.isChecked() and not canvas.is_ruler_enabled()
    for x, y in ((100, 20), (20, 20), (20, 100)):
        tool.place(canvas.image_to_viewport(QPointF(x, y)))
    assert shell.statuses[-1] == "Angle: 90.0°" and len(tool.angles()) == 1
    ruler.setChecked(True)
    assert not tool.is_enabled()


def test_compare_needs_a_canvas_a_shell_the_session_the_study_tree_and_a_problem_callback(
        qtbot, shell: FakeShell, viewer_settings, tmp_path: Path) -> None:
    import numpy as np

    from cxrviewer.ui.docks.study_browser import StudyTree
    from cxrviewer.ui.viewer.compare import CompareController
    from tests.gui.synthetic import write_png

    canvas = _canvas_on(shell)
    problems: list[tuple[Path, str]] = []
    tree = StudyTree()
    qtbot.addWidget(tree)
    compare = CompareController(shell, canvas, ViewerSession(), tree, viewer_settings,
                                lambda path, message: problems.append((path, message)))
    assert compare.splitter.parentWidget() is shell.host() and compare.splitter.indexOf(canvas) == 0
    assert ("view", "action_compare") in shell.menu_actions
    path = tmp_path / "prior.png"
    write_png(path, np.full((60, 50), 90, np.uint8))
    compare.compare_with(path)
    qtbot.waitUntil(lambda: compare.image() is not None, timeout=30_000)
    assert compare.is_open() and compare.pane.title.text() == "prior.png"
    compare.compare_with(tmp_path / "missing.png")
    qtbot.waitUntil(lambda: bool(problems), timeout=30_000)
    assert problems[0][0] == tmp_path / "missing.png" and compare.image() is None
    compare.shutdown()
