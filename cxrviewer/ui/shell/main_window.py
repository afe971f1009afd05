"""MainWindow: the shell — menus, toolbar, docks and the image canvas, wired to the loader.

What is open and shown lives in `state.session.ViewerSession` (`self.session`). The window
also creates the other state models and the one inference service: `self.inference`
(InferenceService), `self.ai_session` (state.ai.AiSession on its OverlaySettings) and the
compare side's AiSession (its "compare" lane). The features (the AI second reader, the
trainee features, practice packets, compare) are handed those models and the window as a
`ui.shell.Shell` (status line, notices, docks, menu actions by menu id, open files); none
builds its own state model or reaches through the window.

* `image_changed(object)` — the XrayImage now shown (None when nothing is shown), emitted
  after the AI and trainee features have heard of it through the session.
* `add_dock(dock, area)` — a QDockWidget with a View ▸ Panels toggle, saved with the window state.
* `canvas.add_overlay_item(item)` — a graphics item registered to the image (see `ImageCanvas`).
* `menu("view")`, `toolbar`, `action("invert")`… — the action registry (`ui.actions`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QVBoxLayout, QWidget

from cxrviewer.core.errors import printable_name
from cxrviewer.core.types import XrayImage
from cxrviewer.state.ai import AiSession
from cxrviewer.state.overlay import OverlaySettings
from cxrviewer.state.session import ViewerSession
from cxrviewer.ui.docks.notices import NoticeBanner, Problem, ProblemsDock
from cxrviewer.ui.docks.study_browser import BrowserEntry, StudyBrowserDock, with_display_names
from cxrviewer.ui.docks.tag_dock import TagDock
from cxrviewer.ui.features.ai import AiController
from cxrviewer.ui.features.compare_ai import CompareAiModels, compare_session
from cxrviewer.ui.features.trainee import TraineeController
from cxrviewer.ui.shell import window_menus
from cxrviewer.ui.shell.actions import ActionRegistry
from cxrviewer.ui.shell.drops import LocalFileDrops
from cxrviewer.ui.shell.reading_room import ReadingRoom
from cxrviewer.ui.shell.settings import ViewerSettings, bind_heatmap_settings
from cxrviewer.ui.shell.window_shell import WindowShell
from cxrviewer.ui.viewer.canvas import ImageCanvas, PixelReadout
from cxrviewer.ui.viewer.loupe import Loupe
from cxrviewer.ui.viewer.measure import Measurement
from cxrviewer.ui.widgets import make
from cxrviewer.ui.workers.inference_service import InferenceService
from cxrviewer.ui.workers.loader import FolderScanner, ImageLoader, ScanResult, TagListing

log = logging.getLogger(__name__)

LOADING_MESSAGE_DELAY_MS = 150


class MainWindow(LocalFileDrops, WindowShell, QMainWindow):
    """The viewer window. Open files with `open_paths`; the newest load request wins."""

    image_changed = Signal(object)        # XrayImage | None
    images_opened = Signal(list)          # list[Path] now in the browser, in order
    problem_reported = Signal(object)     # Problem
    tags_shown = Signal(str)              # path whose DICOM tag listing the tag dock now shows

    def __init__(self, settings: ViewerSettings | None = None, log_path: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("cxrviewer")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.settings = settings if settings is not None else ViewerSettings()
        self.log_path = log_path
        self.session: ViewerSession[BrowserEntry] = ViewerSession()
        self._shown_tags: TagListing | None = None
        self.registry = ActionRegistry(self)

        self.canvas = ImageCanvas(self)
        self.canvas.setObjectName("imageCanvas")
        self.notice = NoticeBanner(self)
        central = QWidget(self)
        self._central_layout = layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.loader = ImageLoader(self)
        self._loading_timer = make.timer(self, self._on_loading_timer_timeout, LOADING_MESSAGE_DELAY_MS,
                                         single_shot=True)
        self.scanner = FolderScanner(self)
        self.study_dock = StudyBrowserDock(self)
        self.tag_dock = TagDock(self)
        self.problems_dock = ProblemsDock(self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.study_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.tag_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()

        self.pixel_label, self.clinical_label = window_menus.create_status_labels(self)
        self.frame_spin = window_menus.create_frame_spin(self)
        window_menus.create_actions(self)
        window_menus.create_menus(self)
        self.reading_room = ReadingRoom(self, self.canvas, self.menu("view"), self.settings.qsettings)
        self.loupe = Loupe(self.canvas, self)
        from cxrviewer.ui.viewer.angle_tool import AngleTool  # Tools ▸ Angle (A), right below the ruler (#16)
        self.angle_tool = AngleTool(self.canvas, self, self.action("ruler"), menu_before="clear_measurements")
        self.presets = window_menus.WindowPresets(self.menu("presets"), self.canvas)
        self._rebuild_recent_menu()
        self._rebuild_presets_menu()
        self._toolbar = window_menus.create_toolbar(self)
        self._connect_signals()
        # the state models the features share: the viewer session (above), the AI session on the
        # inference service (one worker process) and its overlay settings, the compare side's AI session
        self.inference = InferenceService(self)
        self.ai_session = AiSession(self.inference, OverlaySettings())
        compare_ai = CompareAiModels(self.inference, self.ai_session, compare_session(self.inference, self.ai_session))
        # features: each gets the state models and the window as a Shell (AI dock, Model menu, overlay first)
        self.ai = AiController(self, self.canvas, self.session, self.ai_session, self.inference,
                               self.settings.qsettings)
        self.trainee = TraineeController(self, self.canvas, self.session, self.settings, self.ai_session,
                                         self.inference, self.ai)
        from cxrviewer.ui.features.practice import PracticeController  # Tools ▸ Practice Packet… (#16)
        self.practice = PracticeController(self, self.session, self.canvas, self.settings, self.trainee.reading,
                                           self.ai)   # timed packets of labelled cases, score sheet
        self.trainee.my_reads.set_packets(self.practice)   # My Reads › Packets lists and opens them
        from cxrviewer.ui.viewer.compare import CompareController  # View ▸ Compare (1×2) (#16)
        self.compare = CompareController(self, self.canvas, self.session, self.study_dock.tree, self.settings,
                                         self.report_problem, compare_ai)   # second viewport, linked views
        self.session.image_changed.connect(self.image_changed.emit)   # after the features above
        self._restore_settings()
        self._update_enabled()

    # ============================================================== the registry
    def action(self, name: str) -> QAction:
        """A named action: open, open_folder, zoom_in, fit, invert, ruler, …"""
        return self.registry.action(name)

    def action_names(self) -> list[str]:
        return self.registry.names()

    def menu(self, name: str) -> QMenu:
        """'file', 'view', 'image', 'tools', 'help', 'panels', 'presets', 'recent'."""
        return self.registry.menu(name)

    @property
    def toolbar(self) -> QToolBar:
        return self._toolbar

    # ================================================================ public API
    def current_image(self) -> XrayImage | None:
        return self.session.image

    def shown_tags(self) -> TagListing | None:
        """The DICOM tag listing in the tag dock (None while it is being read)."""
        return self._shown_tags

    def current_index(self) -> int:
        return self.session.index

    def current_path(self) -> Path | None:
        return self.session.current_path()

    def image_paths(self) -> list[Path]:
        return self.session.paths()

    def problems(self) -> list[Problem]:
        return self.problems_dock.problems()

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open files and folders (folders recursively); shows the first image.

        Listing folders and reading DICOM headers happen on a worker thread; `images_opened`
        fires when the list is ready, `image_changed` when the first image is shown.
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
        shown = ", ".join(self.session.shown_name(p) for p in existing)
        self.statusBar().showMessage(f"Looking for images in {shown}…")
        self.session.set_scan_id(self.scanner.request(existing))

    def reopen_last_study(self) -> bool:
        """Open what was open last time (files/folders that still exist); False when none does."""
        existing = [path for path in self.settings.last_study() if Path(path).exists()]
        if existing:
            self.open_paths(existing)
        return bool(existing)

    def show_index(self, index: int, frame: int = 0) -> None:
        """Load and show image `index` (frame `frame`) of the opened list."""
        if not self.session.select(index):
            return
        entry = self.session.entries[index]
        self.study_dock.tree.set_current(index)
        self.statusBar().showMessage(f"Loading {self.session.shown_name(entry.path)}…")
        self.session.begin_load(self.loader.request(entry.path, frame))
        self._loading_timer.start()   # say "Loading…" on the view only if it takes a while
        self._update_enabled()

    def next_image(self) -> None:
        self.session.advance_on_failure = False
        if self.session.position().has_next:
            self.show_index(self.session.index + 1)

    def previous_image(self) -> None:
        self.session.advance_on_failure = False
        if self.session.position().has_previous:
            self.show_index(self.session.index - 1)

    def set_frame(self, frame: int) -> None:
        """Show frame `frame` (0-based) of the current multi-frame image."""
        image = self.session.image
        if image is None or not 0 <= frame < image.frame_count or frame == image.frame_index:
            return
        self.show_index(self.session.index, frame)

    def next_frame(self) -> None:
        image = self.session.image
        if image is not None:
            self.set_frame(min(image.frame_index + 1, image.frame_count - 1))

    def previous_frame(self) -> None:
        image = self.session.image
        if image is not None:
            self.set_frame(max(image.frame_index - 1, 0))

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

    def preset_actions(self) -> list[QAction]:
        return self.presets.actions()

    def recent_menu_paths(self) -> list[str]:
        return [a.data() for a in self.menu("recent").actions() if isinstance(a.data(), str)]

    # ================================================================== wiring and settings
    def _connect_signals(self) -> None:
        self._connect_workers()
        self.canvas.pixel_hovered.connect(self._on_canvas_pixel_hovered)
        self.canvas.measurement_added.connect(self._on_canvas_measurement_added)
        self.canvas.view_changed.connect(self._on_canvas_view_changed)
        self.study_dock.tree.image_selected.connect(self._on_study_tree_image_selected)
        self.problems_dock.problem_activated.connect(self._on_problems_dock_problem_activated)
        self.notice.details_requested.connect(self.show_problems)
        self.frame_spin.valueChanged.connect(self._on_frame_spin_value_changed)
        self.menu("recent").aboutToShow.connect(self._rebuild_recent_menu)

    def _connect_workers(self) -> None:
        """The folder scan and the image loader answer on the GUI thread; stale answers are dropped there."""
        self.scanner.scanned.connect(self._on_scanner_scanned)
        self.loader.image_loaded.connect(self._on_loader_image_loaded)
        self.loader.load_failed.connect(self._on_loader_load_failed)
        self.loader.tags_ready.connect(self._on_loader_tags_ready)

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
        bind_heatmap_settings(self.settings, self.ai.overlay_settings)

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
        # Gone from the screen at once: stopping the workers below may wait for a call already running.
        self.hide()
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        self.scanner.shutdown()
        self.study_dock.tree.thumbnails.shutdown()
        self.loader.shutdown()
        self.ai.shutdown()
        super().closeEvent(event)

    def local_files_dropped(self, paths: list[str]) -> None:
        self.open_paths(paths)

    # ===================================================================== slots
    def _on_clear_recent_triggered(self) -> None:
        self.settings.clear_recent_files()
        self._rebuild_recent_menu()

    def _on_anonymise_toggled(self, checked: bool) -> None:
        self._apply_anonymise(checked)
        self.settings.set_anonymise(checked)

    def _on_invert_toggled(self, checked: bool) -> None:
        self.canvas.set_inverted(checked)

    def _on_ruler_toggled(self, checked: bool) -> None:
        self.canvas.set_ruler_enabled(checked)

    def _on_scanner_scanned(self, result: ScanResult) -> None:
        if not self.session.is_current_scan(result.request_id):
            return
        if result.error:
            self.report_problem(result.requested[0], f"{result.requested[0].name}: {result.error}")
            return
        entries = with_display_names(list(result.entries), self.session.display_name)
        if not entries:
            names = ", ".join(p.name for p in result.requested)
            self.notice.show_notice(f"No images found in {names}", problem=False)
            self.statusBar().showMessage(f"No images found in {names}", 10000)
            self.images_opened.emit([])
            return
        self.session.set_entries(entries)
        self.loader.clear_cache()
        self.study_dock.tree.set_entries(entries)
        failed = self._report_scan_problems(result.problems)
        self.images_opened.emit(self.image_paths())
        self.session.advance_on_failure = True
        self.show_index(next((i for i in range(len(entries)) if i not in failed), 0))

    def _report_scan_problems(self, problems: tuple[tuple[Path, str], ...]) -> set[int]:
        """Every file the folder scan found unopenable goes to Problems now (not when visited)."""
        messages = dict(problems)
        failed: set[int] = set()
        for index, entry in enumerate(self.session.entries):
            message = messages.get(entry.path)
            if message is not None:
                self.problems_dock.add_problem(Problem(entry.path, message))
                self.study_dock.tree.mark_failed(index, message)
                failed.add(index)
        if failed:
            count = len(self.problems_dock.problems())
            self.notice.show_notice(f"{len(failed)} of {len(self.session.entries)} files cannot be opened"
                                    f"  ({count} problem{'s' if count != 1 else ''})")
        return failed

    def _on_loading_timer_timeout(self) -> None:
        path = self.current_path()
        if path is not None:
            self.canvas.set_message(f"Loading {self.session.shown_name(path)}…")

    def _on_loader_image_loaded(self, request_id: int, image: XrayImage) -> None:
        if not self.session.is_current_load(request_id):
            return   # stale: a newer request is pending
        self._loading_timer.stop()
        previous = self.session.image
        keep_view = previous is not None and previous.path == image.path
        named = self.session.named(image)            # a practice case: never its file's name
        self.canvas.set_title(named.display_name if named is not image else "")
        image = named
        self.session.accept_loaded(request_id, image)   # announced below, once the window shows it
        self.canvas.set_image(image, keep_view=keep_view)
        self.study_dock.tree.thumbnails.offer(image)   # no second decode for its thumbnail
        self.statusBar().showMessage(image.display_name, 3000)
        if not keep_view:
            self._shown_tags = None
            self.tag_dock.tags.clear("Reading tags…")   # they follow from the loader thread
        self._rebuild_presets_menu()
        window_menus.update_frame_spin(self.frame_spin, image)
        window_menus.update_title(self)
        self.notice.hide_note()
        if image.notes:
            note = f"{image.display_name}: " + "; ".join(image.notes)
            if not self.notice.isHidden() and self.notice.is_problem():
                self.statusBar().showMessage(note, 10000)   # keep the problem in view
            else:
                self.notice.show_notice(note, problem=False)
        self._update_enabled()
        self.session.announce()   # → the AI and trainee features, then image_changed

    def _on_loader_tags_ready(self, request_id: int, listing: TagListing) -> None:
        if not self.session.is_current_load(request_id) or listing is self._shown_tags:
            return   # stale, or this file's listing is already shown (another frame)
        self._shown_tags = listing
        self.tag_dock.tags.set_rows(listing.rows, listing.message)
        self.tags_shown.emit(listing.path)

    def _on_loader_load_failed(self, request_id: int, path: str, message: str) -> None:
        if not self.session.is_current_load(request_id):
            return
        self._loading_timer.stop()
        self.report_problem(Path(path), message)
        index = self.session.index
        if 0 <= index < len(self.session.entries):
            self.study_dock.tree.mark_failed(index, message)
        following = self.session.accept_failure(request_id)
        if following is not None:
            self.show_index(following)   # on opening, skip to the first good image
            return
        self._show_nothing(f"Could not open {message}")

    def _on_canvas_pixel_hovered(self, readout: PixelReadout | None) -> None:
        self.pixel_label.setText(readout.text if readout is not None else "")

    def _on_canvas_measurement_added(self, measurement: Measurement) -> None:
        self.statusBar().showMessage(f"Distance: {measurement.text}", 10000)

    def _on_canvas_view_changed(self) -> None:
        self.action("invert").blockSignals(True)
        self.action("invert").setChecked(self.canvas.is_inverted())
        self.action("invert").blockSignals(False)

    def _on_study_tree_image_selected(self, index: int) -> None:
        self.session.advance_on_failure = False
        if index != self.session.index or self.session.image is None:
            self.show_index(index)

    def _on_problems_dock_problem_activated(self, path: Path) -> None:
        index = self.session.index_of(path)
        if index is not None:
            self.show_index(index)

    def _on_frame_spin_value_changed(self, value: int) -> None:
        self.set_frame(value - 1)

    # =================================================================== helpers
    def _apply_anonymise(self, anonymise: bool) -> None:
        self.canvas.set_anonymise(anonymise)
        self.compare.set_anonymise(anonymise)
        self.tag_dock.tags.set_anonymise(anonymise)
        self.study_dock.tree.set_anonymise(anonymise)

    def _show_nothing(self, message: str) -> None:
        self.session.clear_image()
        self.canvas.set_image(None)
        self.canvas.set_message(message)
        self._shown_tags = None
        self.tag_dock.tags.clear("No image")
        self._rebuild_presets_menu()
        window_menus.update_frame_spin(self.frame_spin, None)
        window_menus.update_title(self)
        self._update_enabled()
        self.session.announce()

    def _rebuild_presets_menu(self) -> None:
        self.presets.rebuild(self.session.image)

    def _rebuild_recent_menu(self) -> None:
        window_menus.rebuild_recent_menu(self.menu("recent"), self.settings.recent_files(),
                                         self.action("clear_recent"), lambda path: self.open_paths([path]))

    def _update_enabled(self) -> None:
        window_menus.update_enabled(self)
