"""MainWindow: menus, toolbar, docks and the image canvas, wired to the loader.

Extension points for later panels (the AI second reader):

* `image_changed(object)` — the XrayImage now shown (None when nothing is shown).
* `add_dock(dock, area)` — add a QDockWidget (it gets a View-menu toggle and is saved
  with the window state; give it an objectName).
* `canvas.add_overlay_item(item)` — a graphics item registered to the image
  (see `ImageCanvas`).
* `menu("view")`, `toolbar`, `action("invert")`… — add or reuse actions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QSpinBox,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.core.errors import printable_name
from cxrviewer.core.imaging import chest_presets, full_range_window, percentile_window
from cxrviewer.core.types import Window, WindowPreset, XrayImage
from cxrviewer.ui.about import AboutDialog
from cxrviewer.ui.ai_controller import AiController
from cxrviewer.ui.canvas import ImageCanvas, PixelReadout
from cxrviewer.ui.loader import FolderScanner, ImageLoader, ScanResult, TagListing
from cxrviewer.ui.measure import Measurement
from cxrviewer.ui.notices import NoticeBanner, Problem, ProblemsDock
from cxrviewer.ui.drops import accept_local_files, dropped_local_files
from cxrviewer.ui.loupe import Loupe
from cxrviewer.ui.reading_room import ReadingRoom
from cxrviewer.ui.theme import set_tone
from cxrviewer.ui.settings import ViewerSettings
from cxrviewer.ui.study_browser import BrowserEntry, StudyBrowserDock
from cxrviewer.ui.tag_dock import TagDock
from cxrviewer.ui.trainee_controller import TraineeController

log = logging.getLogger(__name__)

IMAGE_FILTER = (
    "Images (*.dcm *.dicom *.dic *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
    "DICOM (*.dcm *.dicom *.dic);;All files (*)"
)
LOADING_MESSAGE_DELAY_MS = 150
AUTO_PRESET = "Auto (percentile)"
FULL_PRESET = "Full range"


def _current_log_path() -> Path | None:
    try:
        from cxrviewer.core.logs import current_log_path
    except ImportError:
        return None
    return current_log_path()


class MainWindow(QMainWindow):
    """The viewer window. Open files with `open_paths`; the newest load request wins."""

    image_changed = Signal(object)        # XrayImage | None
    images_opened = Signal(list)          # list[Path] now in the browser, in order
    problem_reported = Signal(object)     # Problem
    tags_shown = Signal(str)              # path whose DICOM tag listing the tag dock now shows

    def __init__(
        self,
        settings: ViewerSettings | None = None,
        log_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("cxrviewer")
        self.setAcceptDrops(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
        )
        self.settings = settings if settings is not None else ViewerSettings()
        self.log_path = log_path

        self._entries: list[BrowserEntry] = []
        self._index = -1
        self._image: XrayImage | None = None
        self._request_id = 0
        self._advance_on_failure = False
        self._shown_tags: TagListing | None = None
        self._actions: dict[str, QAction] = {}
        self._menus: dict[str, QMenu] = {}

        self.canvas = ImageCanvas(self)
        self.canvas.setObjectName("imageCanvas")
        self.notice = NoticeBanner(self)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.loader = ImageLoader(self)
        self._loading_timer = QTimer(self)
        self._loading_timer.setSingleShot(True)
        self._loading_timer.setInterval(LOADING_MESSAGE_DELAY_MS)
        self._loading_timer.timeout.connect(self._on_loading_timer_timeout)
        self.scanner = FolderScanner(self)
        self._scan_id = 0
        self.study_dock = StudyBrowserDock(self)
        self.tag_dock = TagDock(self)
        self.problems_dock = ProblemsDock(self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.study_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.tag_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()

        self.pixel_label = QLabel(self)
        self.pixel_label.setObjectName("pixelReadout")
        self.pixel_label.setMinimumWidth(220)
        self.clinical_label = QLabel(NOT_FOR_CLINICAL_USE, self)
        self.clinical_label.setObjectName("notForClinicalUse")
        self.clinical_label.setStyleSheet("padding: 0 6px;")
        set_tone(self.clinical_label, "problem")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.clinical_label)

        self.frame_spin = QSpinBox(self)
        self.frame_spin.setObjectName("frameSpin")
        self.frame_spin.setPrefix("Frame ")
        self.frame_spin.setMinimum(1)
        self.frame_spin.setMaximum(1)
        self.frame_spin.setEnabled(False)
        self.frame_spin.setKeyboardTracking(False)
        self.frame_spin.setToolTip("Frame of a multi-frame image")

        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self._connect_signals()
        self.ai = AiController(self)   # AI dock, Model menu, overlay; loads the model after show
        self.trainee = TraineeController(self)   # read first, model card, sanity check, exports
        from cxrviewer.ui.practice import PracticeController   # Tools ▸ Practice Packet… (#16)
        self.practice = PracticeController(self)   # timed packets of labelled cases, score sheet
        from cxrviewer.ui.compare import CompareController   # View ▸ Compare (1×2) (#16)
        self.compare = CompareController(self)   # second viewport, linked window/zoom/pan/orientation
        self._restore_settings()
        self._update_enabled()

    # ============================================================== extension points
    def add_dock(
        self,
        dock: QDockWidget,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        tabify_with: QDockWidget | None = None,
    ) -> QDockWidget:
        """Add a dock (e.g. the AI panel) with a View-menu toggle; returns `dock`."""
        if not dock.objectName():
            dock.setObjectName(type(dock).__name__)
        self.addDockWidget(area, dock)
        if tabify_with is not None:
            self.tabifyDockWidget(tabify_with, dock)
        self._menus["panels"].addAction(dock.toggleViewAction())
        return dock

    def action(self, name: str) -> QAction:
        """A named action: open, open_folder, zoom_in, fit, invert, ruler, …"""
        return self._actions[name]

    def action_names(self) -> list[str]:
        return list(self._actions)

    def menu(self, name: str) -> QMenu:
        """'file', 'view', 'image', 'tools', 'help', 'panels', 'presets', 'recent'."""
        return self._menus[name]

    @property
    def toolbar(self) -> QToolBar:
        return self._toolbar

    # ================================================================ public API
    def current_image(self) -> XrayImage | None:
        return self._image

    def shown_tags(self) -> TagListing | None:
        """The DICOM tag listing in the tag dock (None while it is being read)."""
        return self._shown_tags

    def current_index(self) -> int:
        return self._index

    def current_path(self) -> Path | None:
        return self._entries[self._index].path if 0 <= self._index < len(self._entries) else None

    def image_paths(self) -> list[Path]:
        return [entry.path for entry in self._entries]

    def problems(self) -> list[Problem]:
        return self.problems_dock.problems()

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open files and folders (folders recursively); shows the first image.

        Listing folders and reading DICOM headers for the study tree happen on a worker
        thread; `images_opened` fires when the list is ready, `image_changed` when the
        first image is shown.
        """
        raw = [Path(p) for p in paths if str(p)]
        if not raw:
            return
        for path in raw:
            self.settings.add_recent_file(path)
        first = raw[0]
        self.settings.set_last_folder(first if first.is_dir() else first.parent)
        self._rebuild_recent_menu()
        existing = []
        for path in raw:
            if path.exists():
                existing.append(path)
            else:
                self.report_problem(path, f"{printable_name(path.name)}: file or folder not found")
        if not existing:
            return
        self.settings.set_last_study(existing)
        self.statusBar().showMessage(f"Looking for images in {', '.join(p.name for p in existing)}…")
        self._scan_id = self.scanner.request(existing)

    def reopen_last_study(self) -> bool:
        """Open what was open last time (files/folders that still exist); False when none does."""
        existing = [path for path in self.settings.last_study() if Path(path).exists()]
        if existing:
            self.open_paths(existing)
        return bool(existing)

    def show_index(self, index: int, frame: int = 0) -> None:
        """Load and show image `index` (frame `frame`) of the opened list."""
        if not 0 <= index < len(self._entries):
            return
        self._index = index
        entry = self._entries[index]
        self.study_dock.tree.set_current(index)
        self.statusBar().showMessage(f"Loading {entry.path.name}…")
        self._request_id = self.loader.request(entry.path, frame)
        self._loading_timer.start()   # say "Loading…" on the view only if it takes a while
        self._update_enabled()

    def next_image(self) -> None:
        self._advance_on_failure = False
        if self._index + 1 < len(self._entries):
            self.show_index(self._index + 1)

    def previous_image(self) -> None:
        self._advance_on_failure = False
        if self._index > 0:
            self.show_index(self._index - 1)

    def set_frame(self, frame: int) -> None:
        """Show frame `frame` (0-based) of the current multi-frame image."""
        image = self._image
        if image is None or not 0 <= frame < image.frame_count or frame == image.frame_index:
            return
        self.show_index(self._index, frame)

    def next_frame(self) -> None:
        if self._image is not None:
            self.set_frame(min(self._image.frame_index + 1, self._image.frame_count - 1))

    def previous_frame(self) -> None:
        if self._image is not None:
            self.set_frame(max(self._image.frame_index - 1, 0))

    def report_problem(self, path: Path, message: str) -> None:
        """Non-modal: banner + Problems list; never a blocking dialog."""
        problem = Problem(Path(path), message)
        self.problems_dock.add_problem(problem)
        count = len(self.problems_dock.problems())
        more = f"  ({count} problems)" if count > 1 else ""
        self.notice.show_notice(f"Could not open {problem.text}{more}")
        self.statusBar().showMessage(problem.text, 10000)
        log.warning("%s", problem.text)
        self.problem_reported.emit(problem)

    def show_problems(self) -> None:
        """Show the Problems dock (short: the image keeps most of the height)."""
        was_hidden = self.problems_dock.isHidden()
        self.problems_dock.show()
        self.problems_dock.raise_()
        if was_hidden and not self.problems_dock.isFloating():
            self.resizeDocks([self.problems_dock], [130], Qt.Orientation.Vertical)

    def set_anonymise(self, anonymise: bool) -> None:
        self.action("anonymise").setChecked(anonymise)

    def is_anonymised(self) -> bool:
        return self.action("anonymise").isChecked()

    # ============================================================ actions and menus
    def _add_action(
        self,
        name: str,
        text: str,
        slot: Callable[..., object] | None = None,
        shortcuts: Sequence[QKeySequence | str | QKeySequence.StandardKey] = (),
        *,
        tip: str = "",
        checkable: bool = False,
        icon_text: str = "",
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(f"action_{name}")
        keys = [QKeySequence(k) for k in shortcuts]
        if keys:
            action.setShortcuts(keys)
        action.setCheckable(checkable)
        if icon_text:
            action.setIconText(icon_text)
        shown = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
        action.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({shown})" if shown else ""))
        action.setStatusTip(tip or text.replace("&", ""))
        if slot is not None:
            (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)   # shortcuts work even with the toolbar hidden
        self._actions[name] = action
        return action

    def _create_actions(self) -> None:
        c = self.canvas
        add = self._add_action
        add("open", "&Open…", self._on_open_triggered, [QKeySequence.StandardKey.Open], icon_text="Open")
        add("open_folder", "Open &Folder…", self._on_open_folder_triggered, ["Ctrl+Shift+O"], icon_text="Folder")
        add("clear_recent", "Clear Recent", self._on_clear_recent_triggered)
        add("quit", "&Quit", self.close, [QKeySequence.StandardKey.Quit])

        add("zoom_in", "Zoom &In", lambda: c.zoom_in(), ["+", "=", QKeySequence.StandardKey.ZoomIn], icon_text="Zoom +")
        add("zoom_out", "Zoom &Out", lambda: c.zoom_out(), ["-", QKeySequence.StandardKey.ZoomOut], icon_text="Zoom −")
        add("fit", "&Fit to Window", c.fit_to_window, ["F"], icon_text="Fit")
        add("actual_size", "&Actual Size (1:1)", c.zoom_actual_size, ["1"], icon_text="1:1")
        add("anonymise", "&Anonymise Display", self._on_anonymise_toggled, ["Ctrl+Shift+A"],
            checkable=True, tip="Hide names, IDs, birth dates, accession numbers and institution")
        add("next_image", "&Next Image", self.next_image, ["PgDown"], icon_text="Next ▶")
        add("previous_image", "&Previous Image", self.previous_image, ["PgUp"], icon_text="◀ Prev")
        add("next_frame", "Next F&rame", self.next_frame, ["]"])
        add("previous_frame", "Previous Fra&me", self.previous_frame, ["["])

        add("reset_window", "Default &Window", c.reset_window, ["W"], tip="Back to the image's default window")
        add("invert", "&Invert", self._on_invert_toggled, ["I"], checkable=True, icon_text="Invert")
        add("rotate_cw", "Rotate 90° &Clockwise", c.rotate_clockwise, ["Ctrl+R"], icon_text="⟳ 90°")
        add("rotate_ccw", "Rotate 90° C&ounter-clockwise", c.rotate_counterclockwise, ["Ctrl+Shift+R"], icon_text="⟲ 90°")
        add("flip_h", "Flip &Horizontal", c.flip_horizontal, ["H"], icon_text="Flip H")
        add("flip_v", "Flip &Vertical", c.flip_vertical, ["V"], icon_text="Flip V")
        add("reset", "&Reset View", c.reset_view, ["R"], icon_text="Reset",
            tip="Default window, no invert/rotation/flip, fit, clear measurements")

        add("ruler", "&Ruler", self._on_ruler_toggled, ["M"], checkable=True, icon_text="Ruler",
            tip="Measure a distance: drag on the image")
        add("clear_measurements", "&Clear Measurements", c.clear_measurements, ["Delete"])

        add("shortcuts", "&Keyboard Shortcuts", self._on_shortcuts_triggered, ["F1"],
            tip="Every keyboard shortcut, searchable")
        add("about", "&About cxrviewer", self._on_about_triggered)

        # Arrow keys also page through images while the canvas has focus (they stay free
        # for the tree, table and search box elsewhere).
        for key, slot in (
            ("Right", self.next_image), ("Down", self.next_image),
            ("Left", self.previous_image), ("Up", self.previous_image),
        ):
            shortcut = QShortcut(QKeySequence(key), self.canvas)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.setWhatsThis(f"{'Next' if slot == self.next_image else 'Previous'} image (on the image)")
            shortcut.activated.connect(slot)

    def _create_menus(self) -> None:
        bar = self.menuBar()
        a = self._actions
        file_menu = bar.addMenu("&File")
        file_menu.addAction(a["open"])
        file_menu.addAction(a["open_folder"])
        recent = file_menu.addMenu("Open &Recent")
        recent.setObjectName("recentMenu")
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])

        view_menu = bar.addMenu("&View")
        for name in ("zoom_in", "zoom_out", "fit", "actual_size"):
            view_menu.addAction(a[name])
        view_menu.addSeparator()
        view_menu.addAction(a["anonymise"])
        view_menu.addSeparator()
        for name in ("next_image", "previous_image", "next_frame", "previous_frame"):
            view_menu.addAction(a[name])
        view_menu.addSeparator()
        panels = view_menu.addMenu("&Panels")
        for dock in (self.study_dock, self.tag_dock, self.problems_dock):
            panels.addAction(dock.toggleViewAction())

        image_menu = bar.addMenu("&Image")
        presets = image_menu.addMenu("Window &Presets")
        presets.setObjectName("presetsMenu")
        image_menu.addAction(a["reset_window"])
        image_menu.addSeparator()
        for name in ("invert", "rotate_cw", "rotate_ccw", "flip_h", "flip_v"):
            image_menu.addAction(a[name])
        image_menu.addSeparator()
        image_menu.addAction(a["reset"])

        tools_menu = bar.addMenu("&Tools")
        tools_menu.addAction(a["ruler"])
        tools_menu.addAction(a["clear_measurements"])

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        help_menu.addAction(a["about"])

        self._menus.update(
            file=file_menu, view=view_menu, image=image_menu, tools=tools_menu,
            help=help_menu, panels=panels, presets=presets, recent=recent,
        )
        self.reading_room = ReadingRoom(self, view_menu, self.settings.qsettings)
        self.loupe = Loupe(self, view_menu)
        self._preset_group = QActionGroup(self)
        self._preset_group.setExclusive(False)
        self._rebuild_recent_menu()
        self._rebuild_presets_menu()

    def _create_toolbar(self) -> None:
        bar = QToolBar("Main toolbar", self)
        bar.setObjectName("mainToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        bar.setIconSize(QSize(16, 16))
        bar.setMovable(True)
        a = self._actions
        for name in ("open", "open_folder"):
            bar.addAction(a[name])
        bar.addSeparator()
        for name in ("previous_image", "next_image"):
            bar.addAction(a[name])
        bar.addWidget(self.frame_spin)
        bar.addSeparator()
        for name in ("fit", "actual_size", "zoom_in", "zoom_out"):
            bar.addAction(a[name])
        bar.addSeparator()
        presets_button = QToolButton(bar)
        presets_button.setObjectName("presetsButton")
        presets_button.setText("Window ▾")
        presets_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        presets_button.setToolTip("Window presets (right-drag on the image to adjust)")
        presets_button.setMenu(self._menus["presets"])
        presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(presets_button)
        for name in ("invert", "rotate_ccw", "rotate_cw", "flip_h", "flip_v", "reset"):
            bar.addAction(a[name])
        bar.addSeparator()
        bar.addAction(a["ruler"])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self._toolbar = bar
        self._menus["view"].addAction(bar.toggleViewAction())

    def _connect_signals(self) -> None:
        self.scanner.scanned.connect(self._on_scanner_scanned)
        self.loader.image_loaded.connect(self._on_loader_image_loaded)
        self.loader.load_failed.connect(self._on_loader_load_failed)
        self.loader.tags_ready.connect(self._on_loader_tags_ready)
        self.canvas.pixel_hovered.connect(self._on_canvas_pixel_hovered)
        self.canvas.measurement_added.connect(self._on_canvas_measurement_added)
        self.canvas.view_changed.connect(self._on_canvas_view_changed)
        self.canvas.window_changed.connect(self._on_canvas_window_changed)
        self.study_dock.tree.image_selected.connect(self._on_study_tree_image_selected)
        self.problems_dock.problem_activated.connect(self._on_problems_dock_problem_activated)
        self.notice.details_requested.connect(self._on_notice_details_requested)
        self.frame_spin.valueChanged.connect(self._on_frame_spin_value_changed)
        self._menus["recent"].aboutToShow.connect(self._rebuild_recent_menu)

    # ================================================================== settings
    def _restore_settings(self) -> None:
        anonymise = self.settings.anonymise()
        self.action("anonymise").setChecked(anonymise)
        self._apply_anonymise(anonymise)
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = self.settings.window_state()
        self._default_layout_pending = state is None or not self.restoreState(state)
        self._restore_heatmap_settings()

    def _restore_heatmap_settings(self) -> None:
        """Heat-map opacity, threshold, colour map, style and scale as the user left them."""
        controls = self.ai.controls
        remembered = self.settings.heatmap()
        setters = {
            "opacity": controls.set_opacity, "threshold": controls.set_threshold,
            "colormap": controls.set_colormap, "style": controls.set_style,
            "normalisation": controls.set_normalisation,
        }
        for key, value in remembered.items():
            try:
                setters[key](value)
            except (ValueError, TypeError):   # a colour map this version no longer has
                log.info("ignored the remembered heat-map %s %r", key, value)
        save = self.settings.set_heatmap_value
        controls.opacity_changed.connect(lambda value: save("opacity", value))
        controls.threshold_changed.connect(lambda value: save("threshold", value))
        controls.colormap_changed.connect(lambda value: save("colormap", value))
        controls.style_changed.connect(lambda value: save("style", value))
        controls.normalisation_changed.connect(lambda value: save("normalisation", value))

    def save_settings(self) -> None:
        self.settings.set_geometry_and_state(self.saveGeometry(), self.saveState())
        self.settings.set_anonymise(self.is_anonymised())
        self.settings.sync()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._default_layout_pending:
            self._default_layout_pending = False
            self.resizeDocks([self.study_dock, self.tag_dock], [230, 420], Qt.Orientation.Horizontal)
            self.ai.apply_default_layout()
            self.trainee.apply_default_layout()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        # Gone from the screen at once: stopping the workers below may wait for a TensorFlow
        # call already running (an import, an XLA compile) to return.
        self.hide()
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        self.scanner.shutdown()
        self.study_dock.tree.thumbnails.shutdown()
        self.loader.shutdown()
        self.ai.shutdown()
        super().closeEvent(event)

    # =============================================================== drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_local_files(event)

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        accept_local_files(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_local_files(event)
        if paths:
            self.open_paths(paths)

    # ===================================================================== slots
    def _on_open_triggered(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_folder(), IMAGE_FILTER)
        if files:
            self.open_paths(files)

    def _on_open_folder_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_folder())
        if folder:
            self.open_paths([folder])

    def _on_clear_recent_triggered(self) -> None:
        self.settings.clear_recent_files()
        self._rebuild_recent_menu()

    def _on_recent_triggered(self, path: str) -> None:
        self.open_paths([path])

    def _on_about_triggered(self) -> None:
        dialog = AboutDialog(self.log_path or _current_log_path(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_shortcuts_triggered(self) -> None:
        from cxrviewer.ui.shortcut_sheet import ShortcutSheet

        dialog = ShortcutSheet(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_anonymise_toggled(self, checked: bool) -> None:
        self._apply_anonymise(checked)
        self.settings.set_anonymise(checked)

    def _on_invert_toggled(self, checked: bool) -> None:
        self.canvas.set_inverted(checked)

    def _on_ruler_toggled(self, checked: bool) -> None:
        self.canvas.set_ruler_enabled(checked)

    def _on_preset_triggered(self, window: Window) -> None:
        self.canvas.set_window(window)
        current = self.canvas.window()
        if current is not None:   # a click on the ticked preset untoggles it: tick it again
            self._on_canvas_window_changed(current)

    def _on_scanner_scanned(self, result: ScanResult) -> None:
        if result.request_id != self._scan_id:
            return
        if result.error:
            self.report_problem(result.requested[0], f"{result.requested[0].name}: {result.error}")
            return
        entries = list(result.entries)
        if not entries:
            names = ", ".join(p.name for p in result.requested)
            self.notice.show_notice(f"No images found in {names}", problem=False)
            self.statusBar().showMessage(f"No images found in {names}", 10000)
            self.images_opened.emit([])
            return
        self._entries = entries
        self.loader.clear_cache()
        self.study_dock.tree.set_entries(entries)
        failed = self._report_scan_problems(result.problems)
        self.images_opened.emit(self.image_paths())
        self._advance_on_failure = True
        self.show_index(next((i for i in range(len(entries)) if i not in failed), 0))

    def _report_scan_problems(self, problems: tuple[tuple[Path, str], ...]) -> set[int]:
        """Every file the folder scan found unopenable goes to Problems now (not when visited)."""
        messages = dict(problems)
        failed: set[int] = set()
        for index, entry in enumerate(self._entries):
            message = messages.get(entry.path)
            if message is not None:
                self.problems_dock.add_problem(Problem(entry.path, message))
                self.study_dock.tree.mark_failed(index, message)
                failed.add(index)
        if failed:
            count = len(self.problems_dock.problems())
            self.notice.show_notice(f"{len(failed)} of {len(self._entries)} files cannot be opened"
                                    f"  ({count} problem{'s' if count != 1 else ''})")
        return failed

    def _on_loading_timer_timeout(self) -> None:
        path = self.current_path()
        if path is not None:
            self.canvas.set_message(f"Loading {path.name}…")

    def _on_loader_image_loaded(self, request_id: int, image: XrayImage) -> None:
        if request_id != self._request_id:
            return   # stale: a newer request is pending
        self._loading_timer.stop()
        previous = self._image
        keep_view = previous is not None and previous.path == image.path
        self._image = image
        self._advance_on_failure = False
        self.canvas.set_image(image, keep_view=keep_view)
        self.study_dock.tree.thumbnails.offer(image)   # no second decode for its thumbnail
        self.statusBar().showMessage(image.display_name, 3000)
        if not keep_view:
            self._shown_tags = None
            self.tag_dock.tags.clear("Reading tags…")   # they follow from the loader thread
        self._rebuild_presets_menu()
        self._update_frame_spin()
        self._update_title()
        self.notice.hide_note()
        if image.notes:
            note = f"{image.display_name}: " + "; ".join(image.notes)
            if not self.notice.isHidden() and self.notice.is_problem():
                self.statusBar().showMessage(note, 10000)   # keep the problem in view
            else:
                self.notice.show_notice(note, problem=False)
        self._update_enabled()
        self.image_changed.emit(image)

    def _on_loader_tags_ready(self, request_id: int, listing: TagListing) -> None:
        if request_id != self._request_id or listing is self._shown_tags:
            return   # stale, or this file's listing is already shown (another frame)
        self._shown_tags = listing
        self.tag_dock.tags.set_rows(listing.rows, listing.message)
        self.tags_shown.emit(listing.path)

    def _on_loader_load_failed(self, request_id: int, path: str, message: str) -> None:
        if request_id != self._request_id:
            return
        self._loading_timer.stop()
        self.report_problem(Path(path), message)
        if 0 <= self._index < len(self._entries):
            self.study_dock.tree.mark_failed(self._index, message)
        if self._advance_on_failure and self._index + 1 < len(self._entries):
            self.show_index(self._index + 1)   # on opening, skip to the first good image
            return
        self._advance_on_failure = False
        self._show_nothing(f"Could not open {message}")

    def _on_canvas_pixel_hovered(self, readout: PixelReadout | None) -> None:
        self.pixel_label.setText(readout.text if readout is not None else "")

    def _on_canvas_measurement_added(self, measurement: Measurement) -> None:
        self.statusBar().showMessage(f"Distance: {measurement.text}", 10000)

    def _on_canvas_view_changed(self) -> None:
        self.action("invert").blockSignals(True)
        self.action("invert").setChecked(self.canvas.is_inverted())
        self.action("invert").blockSignals(False)

    def _on_canvas_window_changed(self, window: Window) -> None:
        for action in self._preset_group.actions():
            action.setChecked(action.data() == (window.center, window.width))

    def _on_study_tree_image_selected(self, index: int) -> None:
        self._advance_on_failure = False
        if index != self._index or self._image is None:
            self.show_index(index)

    def _on_problems_dock_problem_activated(self, path: Path) -> None:
        for index, entry in enumerate(self._entries):
            if entry.path == path:
                self.show_index(index)
                return

    def _on_notice_details_requested(self) -> None:
        self.show_problems()

    def _on_frame_spin_value_changed(self, value: int) -> None:
        self.set_frame(value - 1)

    # =================================================================== helpers
    def _apply_anonymise(self, anonymise: bool) -> None:
        self.canvas.set_anonymise(anonymise)
        self.tag_dock.tags.set_anonymise(anonymise)
        self.study_dock.tree.set_anonymise(anonymise)

    def _show_nothing(self, message: str) -> None:
        self._image = None
        self.canvas.set_image(None)
        self.canvas.set_message(message)
        self._shown_tags = None
        self.tag_dock.tags.clear("No image")
        self._rebuild_presets_menu()
        self._update_frame_spin()
        self._update_title()
        self._update_enabled()
        self.image_changed.emit(None)

    def _image_presets(self, image: XrayImage) -> list[WindowPreset]:
        presets = list(image.presets)
        names = {p.name for p in presets}
        if AUTO_PRESET not in names:
            presets.append(WindowPreset(AUTO_PRESET, percentile_window(image.pixels)))
        if FULL_PRESET not in names:
            presets.append(WindowPreset(FULL_PRESET, full_range_window(image.pixels)))
        return presets

    def _rebuild_presets_menu(self) -> None:
        menu = self._menus["presets"]
        menu.clear()
        for action in self._preset_group.actions():
            self._preset_group.removeAction(action)
        image = self._image
        if image is None:
            menu.addAction("No image").setEnabled(False)
            return
        current = self.canvas.window()
        menu.setToolTipsVisible(True)
        entries = chest_presets(image)   # lung, mediastinum, bone: HU for CT, else relative
        tips = {id(preset): tip for preset, tip in entries}
        own = self._image_presets(image)
        for number, preset in enumerate(own + [preset for preset, _ in entries], 1):
            if number == len(own) + 1:
                menu.addSection("Chest")
            window = preset.window
            text = f"{preset.name}   (C {window.center:.6g}, W {window.width:.6g})"
            action = menu.addAction(text)
            action.setToolTip(tips.get(id(preset), preset.name))
            action.setCheckable(True)
            action.setData((window.center, window.width))
            action.setObjectName(f"preset_{number}")
            if number <= 9:
                action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setChecked(current == window)
            action.triggered.connect(lambda _=False, w=window: self._on_preset_triggered(w))
            self._preset_group.addAction(action)

    def preset_actions(self) -> list[QAction]:
        return list(self._preset_group.actions())

    def _rebuild_recent_menu(self) -> None:
        menu = self._menus["recent"]
        menu.clear()
        recent = self.settings.recent_files()
        for number, path in enumerate(recent, 1):
            action = menu.addAction(f"&{number % 10}  {path}")
            action.setData(path)
            action.triggered.connect(lambda _=False, p=path: self._on_recent_triggered(p))
        if not recent:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        menu.addAction(self._actions["clear_recent"])

    def recent_menu_paths(self) -> list[str]:
        return [a.data() for a in self._menus["recent"].actions() if isinstance(a.data(), str)]

    def _update_frame_spin(self) -> None:
        image = self._image
        count = image.frame_count if image is not None else 1
        self.frame_spin.blockSignals(True)
        self.frame_spin.setMaximum(max(count, 1))
        self.frame_spin.setValue((image.frame_index + 1) if image is not None else 1)
        self.frame_spin.setSuffix(f" / {count}")
        self.frame_spin.blockSignals(False)
        self.frame_spin.setEnabled(count > 1)

    def _update_title(self) -> None:
        image = self._image
        if image is None:
            self.setWindowTitle("cxrviewer")
            return
        position = f"  ({self._index + 1}/{len(self._entries)})" if len(self._entries) > 1 else ""
        self.setWindowTitle(f"{image.display_name}{position} — cxrviewer")

    def _update_enabled(self) -> None:
        has_image = self._image is not None
        for name in (
            "zoom_in", "zoom_out", "fit", "actual_size", "reset_window", "invert", "rotate_cw",
            "rotate_ccw", "flip_h", "flip_v", "reset", "clear_measurements",
        ):
            self._actions[name].setEnabled(has_image)
        self._actions["next_image"].setEnabled(self._index + 1 < len(self._entries))
        self._actions["previous_image"].setEnabled(self._index > 0)
        frames = self._image.frame_count if self._image is not None else 1
        self._actions["next_frame"].setEnabled(frames > 1)
        self._actions["previous_frame"].setEnabled(frames > 1)
