"""Compare view (#16): a second viewport beside the main image, optionally linked.

View › Compare (1×2) splits the central area: the main canvas on the left, a compare pane
on the right (its own `ImageCanvas`, its own image and corner text). The pane is fed by
View › Compare With (priors of the current patient first, then "Other File…"), by
"Compare with this" on a study-tree row, or by dropping a file on the pane. Images load on
the pane's own `ImageLoader` (a worker thread, newest request wins), never on the GUI thread.

While "Link" is on (the default), window/level, zoom, pan, invert, rotation and flips follow
from either side to the other. A change pushed to the other canvas makes that canvas emit
its own signals; `_syncing` swallows them, so nothing echoes back. Zoom is linked relative
to each side's fit-to-window zoom and pan as the image point (in fractions of the image) at
the view centre, so two images of different sizes stay aligned. Window/level is linked
relative to each image's default window (identical defaults: identical windows).

The controller is handed what it works with, not the window: the main canvas (the splitter
takes its place in its parent's layout), the window as a `Shell` (View-menu actions, the
anonymise state, the dialog parent), the `ViewerSession` (what is open and shown), the study
tree (priors, "Compare with this"), the settings (last folder) and a `report_problem` callback.

Each side has its own AI result: the compare side's call, heat map and gates come from
`ui/features/compare_ai.py` (a second AiSession on the window's overlay settings, in the inference
worker's "compare" lane), hidden while Read First hides the main image's result.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QSplitter,
    QToolButton,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.core.types import Window, XrayImage
from cxrviewer.state.session import ViewerSession
from cxrviewer.ui.docks.study_browser import FILES_KEY, INDEX_ROLE, BrowserEntry, StudyTree
from cxrviewer.ui.features.compare_ai import CompareAi, CompareAiModels
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.drops import LocalFileDrops
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.shell.settings import ViewerSettings
from cxrviewer.ui.viewer.canvas import ImageCanvas, Orientation
from cxrviewer.ui.widgets import make
from cxrviewer.ui.widgets.elided_label import ElidedLabel
from cxrviewer.ui.workers.loader import ImageLoader

log = logging.getLogger(__name__)

EMPTY_MESSAGE = "Compare: drop an image here, or use View › Compare With"
IMAGE_FILTER = (
    "Images (*.dcm *.dicom *.dic *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
    "DICOM (*.dcm *.dicom *.dic);;All files (*)"
)
_ZOOM_TOLERANCE = 1e-6
_PAN_TOLERANCE_PX = 0.75


# ------------------------------------------------------------------------ pure helpers
def linked_window(source: Window, source_default: Window, target_default: Window) -> Window:
    """The target's window for `source`: the same change relative to each default window.

    The source's default maps to the target's default; widths scale by the ratio of the
    default widths. Two images with the same default window get the same window.
    """
    scale = target_default.width / source_default.width if source_default.width > 0 else 1.0
    center = target_default.center + (source.center - source_default.center) * scale
    return Window(center, source.width * scale)


def study_date(entry: BrowserEntry) -> str:
    """The study date (YYYYMMDD) of a DICOM browser entry, '' when unknown.

    `BrowserEntry` carries no date field; `entries_from_paths` starts the study label with
    the raw DICOM StudyDate, so it is read from there.
    """
    first = entry.study_label.split(" ", 1)[0] if entry.study_label else ""
    digits = first.replace("-", "") if len(first) == 10 and first[4::3] == "--" else first
    return digits if len(digits) == 8 and digits.isdigit() else ""


def prior_candidates(entries: Sequence[BrowserEntry], current: Path | None) -> list[BrowserEntry]:
    """Images of the current image's patient (same PatientID) from other studies, newest first."""
    if current is None:
        return []
    here = next((e for e in entries if e.path == current), None)
    if here is None or here.patient_key == FILES_KEY or not here.patient_id:
        return []
    others = [
        e for e in entries
        if e.patient_key != FILES_KEY and e.patient_id == here.patient_id
        and e.study_key != here.study_key and e.path != current
    ]
    return sorted(others, key=lambda e: (study_date(e), e.study_key, str(e.path)), reverse=True)


def _compose(op: Orientation, m: Orientation) -> Orientation:
    a, b, c, d = op
    e, f, g, h = m
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


_OPS: dict[str, Orientation] = {
    "rotate_clockwise": (0, -1, 1, 0),
    "rotate_counterclockwise": (0, 1, -1, 0),
    "flip_horizontal": (-1, 0, 0, 1),
    "flip_vertical": (1, 0, 0, -1),
}


def orientation_steps(start: Orientation, goal: Orientation) -> list[str]:
    """The shortest list of `ImageCanvas` method names that turns `start` into `goal`."""
    frontier: list[tuple[Orientation, list[str]]] = [(start, [])]
    seen = {start}
    while frontier:
        nxt: list[tuple[Orientation, list[str]]] = []
        for matrix, steps in frontier:
            if matrix == goal:
                return steps
            for name, op in _OPS.items():
                moved = _compose(op, matrix)
                if moved not in seen:
                    seen.add(moved)
                    nxt.append((moved, steps + [name]))
        frontier = nxt
    return []


# ---------------------------------------------------------------------------- widgets
class ComparePane(LocalFileDrops, QWidget):
    """The second viewport: a small header (name, Compare With ▾, Link, ✕) over a canvas."""

    file_dropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePane")
        self.setAcceptDrops(True)
        self.canvas = ImageCanvas(self)
        self.canvas.setObjectName("compareCanvas")
        self.title = ElidedLabel("Compare", self, "compareTitle")   # a long name elides in the middle
        self.title.setContentsMargins(6, 0, 6, 0)
        self.choose_button = make.tool_button(self, "compareChooseButton", "Compare With ▾")
        self.choose_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.choose_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.link_button = make.tool_button(self, "compareLinkButton")
        self.close_button = make.tool_button(self, "compareCloseButton")
        header = QHBoxLayout()
        header.setContentsMargins(2, 2, 2, 2)
        header.setSpacing(4)
        header.addWidget(self.title, 1)
        header.addWidget(self.choose_button)
        header.addWidget(self.link_button)
        header.addWidget(self.close_button)
        self.column = QVBoxLayout(self)    # the header, (the AI line,) the canvas
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(0)
        self.column.addLayout(header)
        self.column.addWidget(self.canvas, 1)

    def local_files_dropped(self, paths: list[str]) -> None:
        self.file_dropped.emit(paths[0])   # one image per side


# ------------------------------------------------------------------------- controller
class CompareController(QObject):
    """Owns the compare pane, its loader, its menu entries and the link between the sides."""

    compare_toggled = Signal(bool)
    compare_image_changed = Signal(object)   # XrayImage | None on the compare side

    def __init__(self, shell: Shell, canvas: ImageCanvas, session: ViewerSession[BrowserEntry], tree: StudyTree,
                 settings: ViewerSettings, report_problem: Callable[[Path, str], None],
                 ai: CompareAiModels | None = None) -> None:
        super().__init__(shell.host())
        self.setObjectName("compareController")
        self.shell, self.session, self.tree, self.settings = shell, session, tree, settings
        self.report_problem = report_problem
        self.main_canvas = canvas
        self.pane = ComparePane()
        self.canvas = self.pane.canvas
        self.canvas.set_anonymise(shell.is_anonymised())   # then the window keeps it in step (set_anonymise)
        self.loader = ImageLoader(self)
        self._request_id = 0
        self._syncing = False

        self._install_splitter()
        self._create_actions()
        self._connect_signals()
        self._extend_study_tree()
        self.ai = (CompareAi(self, self.canvas, self.pane.column, 1, self.compare_image_changed, ai)
                   if ai is not None else None)   # the compare side's own call and map, under the header
        self.pane.hide()
        shell.host().installEventFilter(self)

    # ------------------------------------------------------------------------ setup
    def _install_splitter(self) -> None:
        """Put the main canvas and the (hidden) compare pane side by side in a splitter, where the canvas was."""
        parent = self.main_canvas.parentWidget()
        layout = parent.layout()
        index = layout.indexOf(self.main_canvas)
        layout.removeWidget(self.main_canvas)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, parent)
        self.splitter.setObjectName("compareSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.main_canvas)
        self.splitter.addWidget(self.pane)
        layout.insertWidget(index, self.splitter, 1)

    def _create_actions(self) -> None:
        w = self.shell.host()
        self.compare_action = QAction("&Compare (1×2)", w, checkable=True)
        self.compare_action.setObjectName("action_compare")
        self.compare_action.setToolTip("Show a second image beside this one")
        self.compare_action.toggled.connect(self._on_compare_action_toggled)
        self.link_action = QAction("&Link Compared Views", w, checkable=True)
        self.link_action.setObjectName("action_compare_link")
        self.link_action.setIconText("Link")
        self.link_action.setToolTip("Link window/level, zoom, pan, rotation and flips of both sides")
        self.link_action.setChecked(True)
        self.link_action.toggled.connect(self._on_link_action_toggled)
        self.other_file_action = make_action(w, "compare_other_file", "Other &File…", self._on_other_file_triggered)
        self.close_action = make_action(w, "compare_close", "Close Compare", lambda: self.set_open(False))
        self.close_action.setIconText("✕")

        self.compare_with_menu = QMenu("Compare &With", w)
        self.compare_with_menu.setObjectName("compareWithMenu")
        self.compare_with_menu.aboutToShow.connect(self._rebuild_compare_with_menu)
        self._rebuild_compare_with_menu()

        self.shell.add_menu_separator("view")
        for action in (self.compare_action, self.compare_with_menu.menuAction(), self.link_action):
            self.shell.add_menu_action("view", action)
        self.pane.choose_button.setMenu(self.compare_with_menu)
        self.pane.link_button.setDefaultAction(self.link_action)
        self.pane.close_button.setDefaultAction(self.close_action)

    def _connect_signals(self) -> None:
        for canvas in (self.main_canvas, self.canvas):
            canvas.window_changed.connect(lambda _w, c=canvas: self._on_side_changed(c, window=True))
            canvas.zoom_changed.connect(lambda _z, c=canvas: self._on_side_changed(c, geometry=True))
            canvas.view_changed.connect(lambda c=canvas: self._on_side_changed(c, view=True, geometry=True))
            for bar in (canvas.horizontalScrollBar(), canvas.verticalScrollBar()):
                bar.valueChanged.connect(lambda _v, c=canvas: self._on_side_changed(c, geometry=True))
        self.loader.image_loaded.connect(self._on_loader_image_loaded)
        self.loader.load_failed.connect(self._on_loader_load_failed)
        self.pane.file_dropped.connect(self._on_pane_file_dropped)

    def _extend_study_tree(self) -> None:
        tree = self.tree
        if tree.contextMenuPolicy() != Qt.ContextMenuPolicy.DefaultContextMenu:
            return   # someone else owns the tree's context menu
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._on_study_tree_context_menu_requested)

    # ----------------------------------------------------------------------- public API
    def is_open(self) -> bool:
        return self.compare_action.isChecked()

    def set_open(self, shown: bool) -> None:
        """Open (True) or close the compare pane, as View ▸ Compare (1×2) does."""
        self.compare_action.setChecked(shown)

    def is_linked(self) -> bool:
        return self.link_action.isChecked()

    def set_linked(self, linked: bool) -> None:
        self.link_action.setChecked(linked)

    def image(self) -> XrayImage | None:
        return self.canvas.image()

    def set_anonymise(self, anonymise: bool) -> None:
        """The window's anonymise switch, for the compare side's corner text."""
        self.canvas.set_anonymise(anonymise)

    def compare_with(self, path: str | Path) -> int:
        """Open compare (if closed) and load `path` on the compare side; returns the request id."""
        self.set_open(True)
        path = Path(path)
        self.pane.title.setText(f"Loading {path.name}…")
        self._request_id = self.loader.request(path)
        return self._request_id

    def prior_candidates(self) -> list[BrowserEntry]:
        """Other studies of the current patient (same PatientID), newest first."""
        return prior_candidates(self.tree.entries(), self.session.current_path())

    def context_menu_for(self, item: QTreeWidgetItem | None) -> QMenu | None:
        """The study-tree row menu ("Compare with this"), or None for a non-image row."""
        value = item.data(0, INDEX_ROLE) if item is not None else None
        paths = self.session.paths()
        if value is None or not 0 <= int(value) < len(paths):
            return None
        path = paths[int(value)]
        menu = QMenu(self.tree)
        action = menu.addAction("Compare with this")
        action.setObjectName("action_compare_with_this")
        action.setEnabled(path != self.session.current_path() or self.session.image is None)
        action.triggered.connect(lambda _=False, p=path: self.compare_with(p))
        return menu

    def shutdown(self) -> None:
        self.loader.shutdown()

    # ---------------------------------------------------------------------- linking
    def sync_from(self, source: ImageCanvas) -> None:
        """Copy everything linkable from `source` to the other side (used after a load)."""
        self._on_side_changed(source, window=True, view=True, geometry=True)

    def _other(self, canvas: ImageCanvas) -> ImageCanvas:
        return self.canvas if canvas is self.main_canvas else self.main_canvas

    def _on_side_changed(
        self, source: ImageCanvas, *, window: bool = False, view: bool = False, geometry: bool = False
    ) -> None:
        if self._syncing or not self.is_open() or not self.is_linked():
            return
        target = self._other(source)
        if source.image() is None or target.image() is None:
            return
        self._syncing = True
        try:
            if view:
                self._copy_view(source, target)
            if window:
                self._copy_window(source, target)
            if geometry:
                self._copy_geometry(source, target)
        finally:
            self._syncing = False

    @staticmethod
    def _copy_view(source: ImageCanvas, target: ImageCanvas) -> None:
        for name in orientation_steps(target.orientation(), source.orientation()):
            getattr(target, name)()
        target.set_inverted(source.is_inverted())

    @staticmethod
    def _copy_window(source: ImageCanvas, target: ImageCanvas) -> None:
        window, src_image, dst_image = source.window(), source.image(), target.image()
        if window is None or src_image is None or dst_image is None:
            return
        wanted = linked_window(window, src_image.default_window, dst_image.default_window)
        target.set_window(wanted, interactive=True)

    @staticmethod
    def _fit_zoom(canvas: ImageCanvas) -> float:
        image = canvas.image()
        if image is None:
            return 1.0
        height, width = image.shape
        bounds = canvas.image_root().mapRectToScene(QRectF(0, 0, width, height))
        viewport = canvas.viewport().rect()
        if bounds.isEmpty() or viewport.isEmpty():
            return 1.0
        ratio = float(canvas.devicePixelRatioF()) or 1.0
        return min(viewport.width() / bounds.width(), viewport.height() / bounds.height()) * ratio

    def _copy_geometry(self, source: ImageCanvas, target: ImageCanvas) -> None:
        if source.is_fit_mode():
            if not target.is_fit_mode() or abs(target.zoom() - self._fit_zoom(target)) > 1e-3 * target.zoom():
                target.fit_to_window()
            return
        wanted = source.zoom() / self._fit_zoom(source) * self._fit_zoom(target)
        if abs(target.zoom() - wanted) > _ZOOM_TOLERANCE * wanted:
            target.set_zoom(wanted)
        src_image, dst_image = source.image(), target.image()
        assert src_image is not None and dst_image is not None
        sh, sw = src_image.shape
        th, tw = dst_image.shape
        centre = source.viewport_to_image(QPointF(source.viewport().rect().center()))
        point = QPointF(centre.x() / sw * tw, centre.y() / sh * th)
        view_centre = QPointF(target.viewport().rect().center())
        now = target.image_to_viewport(point)
        if abs(now.x() - view_centre.x()) > _PAN_TOLERANCE_PX or abs(now.y() - view_centre.y()) > _PAN_TOLERANCE_PX:
            target.centerOn(target.image_root().mapToScene(point))

    # ------------------------------------------------------------------------ slots
    def _on_compare_action_toggled(self, checked: bool) -> None:
        if checked:
            self.pane.show()
            total = max(self.splitter.width(), 2)
            self.splitter.setSizes([total // 2, total - total // 2])
            if self.canvas.image() is None:
                self.canvas.set_message(EMPTY_MESSAGE)
                self.pane.title.setText("Compare")
            else:
                self.sync_from(self.main_canvas)
        else:
            self.loader.cancel()
            self.canvas.set_image(None)   # frees the second image's memory
            self.pane.title.setText("Compare")
            self.pane.hide()
            self.compare_image_changed.emit(None)
        self.compare_toggled.emit(checked)

    def _on_link_action_toggled(self, linked: bool) -> None:
        if linked:
            self.sync_from(self.main_canvas)   # the main image leads when linking again

    def _on_other_file_triggered(self) -> None:
        folder = self.settings.last_folder()
        path, _ = QFileDialog.getOpenFileName(self.shell.host(), "Compare with", folder, IMAGE_FILTER)
        if path:
            self.compare_with(path)

    def _on_pane_file_dropped(self, path: str) -> None:
        self.compare_with(path)

    def _on_loader_image_loaded(self, request_id: int, image: XrayImage) -> None:
        if request_id != self._request_id or not self.is_open():
            return
        self._syncing = True
        try:
            self.canvas.set_image(image)
        finally:
            self._syncing = False
        self.pane.title.setText(image.display_name if not self.shell.is_anonymised() else image.path.name)
        self.pane.title.setToolTip(str(image.path))
        self.sync_from(self.main_canvas)
        self.compare_image_changed.emit(image)

    def _on_loader_load_failed(self, request_id: int, path: str, message: str) -> None:
        if request_id != self._request_id:
            return
        self.pane.title.setText("Compare")
        self.canvas.set_image(None)
        self.canvas.set_message(f"Could not open {message}")
        log.info("compare: could not open %s", path)
        self.report_problem(Path(path), message)
        self.compare_image_changed.emit(None)

    def _on_study_tree_context_menu_requested(self, pos: QPoint) -> None:
        tree = self.tree
        menu = self.context_menu_for(tree.itemAt(pos))
        if menu is not None:
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            menu.popup(tree.viewport().mapToGlobal(pos))

    def _rebuild_compare_with_menu(self) -> None:
        menu = self.compare_with_menu
        menu.clear()
        anonymise = self.shell.is_anonymised()
        priors = self.prior_candidates()
        if priors:
            menu.addSection("Same patient, other studies")
            for entry in priors:
                date = study_date(entry)
                shown = f"{date[:4]}-{date[4:6]}-{date[6:]}" if date else "Undated"
                description = entry.study_label.split(" ", 1)[1] if date and " " in entry.study_label else (
                    "" if date else entry.study_label
                )
                text = "  ·  ".join(part for part in (shown, description, entry.label) if part)
                action = menu.addAction(text)
                action.setData(str(entry.path))
                action.setToolTip(entry.path.name if anonymise else str(entry.path))
                action.triggered.connect(lambda _=False, p=entry.path: self.compare_with(p))
            menu.addSeparator()
        menu.addAction(self.other_file_action)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.shell.host() and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False
