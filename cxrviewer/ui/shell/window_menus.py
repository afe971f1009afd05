"""The window's own actions, menus and toolbar, the window-preset menu and the recent-files menu.

Built once by `MainWindow`; the menus are registered by id in its `ActionRegistry` so that
features can add to them ("file", "view", "image", "tools", "help", "panels", "presets", "recent").
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QSpinBox, QToolBar, QToolButton

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.core.imaging import chest_presets, full_range_window, percentile_window
from cxrviewer.core.types import Window, WindowPreset, XrayImage
from cxrviewer.ui.shell.theme import set_tone

if TYPE_CHECKING:
    from cxrviewer.ui.shell.main_window import MainWindow
    from cxrviewer.ui.viewer.canvas import ImageCanvas

IMAGE_FILTER = (
    "Images (*.dcm *.dicom *.dic *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
    "DICOM (*.dcm *.dicom *.dic);;All files (*)"
)
AUTO_PRESET = "Auto (percentile)"
FULL_PRESET = "Full range"


def create_actions(w: MainWindow) -> None:
    c = w.canvas
    add = w.registry.add
    add("open", "&Open…", lambda: open_files_dialog(w), [QKeySequence.StandardKey.Open], icon_text="Open")
    add("open_folder", "Open &Folder…", lambda: open_folder_dialog(w), ["Ctrl+Shift+O"], icon_text="Folder")
    add("clear_recent", "Clear Recent", w._on_clear_recent_triggered)
    add("quit", "&Quit", w.close, [QKeySequence.StandardKey.Quit])

    add("zoom_in", "Zoom &In", lambda: c.zoom_in(), ["+", "=", QKeySequence.StandardKey.ZoomIn], icon_text="Zoom +")
    add("zoom_out", "Zoom &Out", lambda: c.zoom_out(), ["-", QKeySequence.StandardKey.ZoomOut], icon_text="Zoom −")
    add("fit", "&Fit to Window", c.fit_to_window, ["F"], icon_text="Fit")
    add("actual_size", "&Actual Size (1:1)", c.zoom_actual_size, ["1"], icon_text="1:1")
    add("anonymise", "&Anonymise Display", w._on_anonymise_toggled, ["Ctrl+Shift+A"],
        checkable=True, tip="Hide names, IDs, birth dates, accession numbers and institution")
    add("next_image", "&Next Image", w.next_image, ["PgDown"], icon_text="Next ▶")
    add("previous_image", "&Previous Image", w.previous_image, ["PgUp"], icon_text="◀ Prev")
    add("next_frame", "Next F&rame", w.next_frame, ["]"])
    add("previous_frame", "Previous Fra&me", w.previous_frame, ["["])

    add("reset_window", "Default &Window", c.reset_window, ["W"], tip="Back to the image's default window")
    add("invert", "&Invert", w._on_invert_toggled, ["I"], checkable=True, icon_text="Invert")
    add("rotate_cw", "Rotate 90° &Clockwise", c.rotate_clockwise, ["Ctrl+R"], icon_text="⟳ 90°")
    add("rotate_ccw", "Rotate 90° C&ounter-clockwise", c.rotate_counterclockwise, ["Ctrl+Shift+R"], icon_text="⟲ 90°")
    add("flip_h", "Flip &Horizontal", c.flip_horizontal, ["H"], icon_text="Flip H")
    add("flip_v", "Flip &Vertical", c.flip_vertical, ["V"], icon_text="Flip V")
    add("reset", "&Reset View", c.reset_view, ["R"], icon_text="Reset",
        tip="Default window, no invert/rotation/flip, fit, clear measurements")

    add("ruler", "&Ruler", w._on_ruler_toggled, ["M"], checkable=True, icon_text="Ruler",
        tip="Measure a distance: drag on the image")
    add("clear_measurements", "&Clear Measurements", c.clear_measurements, ["Delete"])

    add("shortcuts", "&Keyboard Shortcuts", lambda: show_shortcuts(w), ["F1"], tip="Every keyboard shortcut, searchable")
    add("about", "&About cxrviewer", lambda: show_about(w))

    # Arrow keys also page through images while the canvas has focus (they stay free
    # for the tree, table and search box elsewhere).
    for key, slot, what in (("Right", w.next_image, "Next"), ("Down", w.next_image, "Next"),
                            ("Left", w.previous_image, "Previous"), ("Up", w.previous_image, "Previous")):
        shortcut = QShortcut(QKeySequence(key), c)
        shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        shortcut.setWhatsThis(f"{what} image (on the image)")
        shortcut.activated.connect(slot)


def create_menus(w: MainWindow) -> None:
    bar, a, reg = w.menuBar(), w.registry.action, w.registry.register_menu
    file_menu = reg("file", bar.addMenu("&File"))
    file_menu.addAction(a("open"))
    file_menu.addAction(a("open_folder"))
    recent = reg("recent", file_menu.addMenu("Open &Recent"))
    recent.setObjectName("recentMenu")
    file_menu.addSeparator()
    file_menu.addAction(a("quit"))

    view_menu = reg("view", bar.addMenu("&View"))
    for name in ("zoom_in", "zoom_out", "fit", "actual_size"):
        view_menu.addAction(a(name))
    view_menu.addSeparator()
    view_menu.addAction(a("anonymise"))
    view_menu.addSeparator()
    for name in ("next_image", "previous_image", "next_frame", "previous_frame"):
        view_menu.addAction(a(name))
    view_menu.addSeparator()
    panels = reg("panels", view_menu.addMenu("&Panels"))
    for dock in (w.study_dock, w.tag_dock, w.problems_dock):
        panels.addAction(dock.toggleViewAction())

    image_menu = reg("image", bar.addMenu("&Image"))
    presets = reg("presets", image_menu.addMenu("Window &Presets"))
    presets.setObjectName("presetsMenu")
    image_menu.addAction(a("reset_window"))
    image_menu.addSeparator()
    for name in ("invert", "rotate_cw", "rotate_ccw", "flip_h", "flip_v"):
        image_menu.addAction(a(name))
    image_menu.addSeparator()
    image_menu.addAction(a("reset"))

    tools_menu = reg("tools", bar.addMenu("&Tools"))
    tools_menu.addAction(a("ruler"))
    tools_menu.addAction(a("clear_measurements"))

    help_menu = reg("help", bar.addMenu("&Help"))
    help_menu.addAction(a("shortcuts"))
    help_menu.addAction(a("about"))


def create_toolbar(w: MainWindow) -> QToolBar:
    bar = QToolBar("Main toolbar", w)
    bar.setObjectName("mainToolbar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    bar.setIconSize(QSize(16, 16))
    bar.setMovable(True)
    a = w.registry.action
    for name in ("open", "open_folder"):
        bar.addAction(a(name))
    bar.addSeparator()
    for name in ("previous_image", "next_image"):
        bar.addAction(a(name))
    bar.addWidget(w.frame_spin)
    bar.addSeparator()
    for name in ("fit", "actual_size", "zoom_in", "zoom_out"):
        bar.addAction(a(name))
    bar.addSeparator()
    presets_button = QToolButton(bar)
    presets_button.setObjectName("presetsButton")
    presets_button.setText("Window ▾")
    presets_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
    presets_button.setToolTip("Window presets (right-drag on the image to adjust)")
    presets_button.setMenu(w.registry.menu("presets"))
    presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    bar.addWidget(presets_button)
    for name in ("invert", "rotate_ccw", "rotate_cw", "flip_h", "flip_v", "reset"):
        bar.addAction(a(name))
    bar.addSeparator()
    bar.addAction(a("ruler"))
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    w.registry.menu("view").addAction(bar.toggleViewAction())
    return bar


def image_presets(image: XrayImage) -> list[WindowPreset]:
    """The image's own presets, plus an automatic (percentile) and a full-range window."""
    presets = list(image.presets)
    names = {p.name for p in presets}
    if AUTO_PRESET not in names:
        presets.append(WindowPreset(AUTO_PRESET, percentile_window(image.pixels)))
    if FULL_PRESET not in names:
        presets.append(WindowPreset(FULL_PRESET, full_range_window(image.pixels)))
    return presets


class WindowPresets:
    """Image ▸ Window Presets for the image shown: its own, then the chest presets; Ctrl+1… for the
    first nine; the preset matching the canvas' window is ticked."""

    def __init__(self, menu: QMenu, canvas: ImageCanvas) -> None:
        self.menu, self.canvas = menu, canvas
        self.group = QActionGroup(menu)
        self.group.setExclusive(False)
        canvas.window_changed.connect(self._on_canvas_window_changed)

    def actions(self) -> list[QAction]:
        return list(self.group.actions())

    def rebuild(self, image: XrayImage | None) -> None:
        menu, group = self.menu, self.group
        menu.clear()
        for action in group.actions():
            group.removeAction(action)
        if image is None:
            menu.addAction("No image").setEnabled(False)
            return
        current = self.canvas.window()
        menu.setToolTipsVisible(True)
        entries = chest_presets(image)   # lung, mediastinum, bone: HU for CT, else relative
        tips = {id(preset): tip for preset, tip in entries}
        own = image_presets(image)
        for number, preset in enumerate(own + [preset for preset, _ in entries], 1):
            if number == len(own) + 1:
                menu.addSection("Chest")
            window = preset.window
            action = menu.addAction(f"{preset.name}   (C {window.center:.6g}, W {window.width:.6g})")
            action.setToolTip(tips.get(id(preset), preset.name))
            action.setCheckable(True)
            action.setData((window.center, window.width))
            action.setObjectName(f"preset_{number}")
            if number <= 9:
                action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.setChecked(current == window)
            action.triggered.connect(lambda _=False, win=window: self._on_preset_triggered(win))
            group.addAction(action)

    def _on_preset_triggered(self, window: Window) -> None:
        self.canvas.set_window(window)
        current = self.canvas.window()
        if current is not None:   # a click on the ticked preset untoggles it: tick it again
            self._on_canvas_window_changed(current)

    def _on_canvas_window_changed(self, window: Window) -> None:
        for action in self.group.actions():
            action.setChecked(action.data() == (window.center, window.width))


def rebuild_recent_menu(menu: QMenu, recent: list[str], clear_action: QAction, on_recent: object) -> None:
    menu.clear()
    for number, path in enumerate(recent, 1):
        action = menu.addAction(f"&{number % 10}  {path}")
        action.setData(path)
        action.triggered.connect(lambda _=False, p=path: on_recent(p))  # type: ignore[operator]
    if not recent:
        menu.addAction("No recent files").setEnabled(False)
    menu.addSeparator()
    menu.addAction(clear_action)


def create_status_labels(w: MainWindow) -> tuple[QLabel, QLabel]:
    """The pixel readout and the "not for clinical use" label, in the status bar."""
    pixel_label = QLabel(w)
    pixel_label.setObjectName("pixelReadout")
    pixel_label.setMinimumWidth(220)
    clinical_label = QLabel(NOT_FOR_CLINICAL_USE, w)
    clinical_label.setObjectName("notForClinicalUse")
    clinical_label.setStyleSheet("padding: 0 6px;")
    set_tone(clinical_label, "problem")
    w.statusBar().addPermanentWidget(pixel_label)
    w.statusBar().addPermanentWidget(clinical_label)
    return pixel_label, clinical_label


def create_frame_spin(w: MainWindow) -> QSpinBox:
    spin = QSpinBox(w)
    spin.setObjectName("frameSpin")
    spin.setPrefix("Frame ")
    spin.setMinimum(1)
    spin.setMaximum(1)
    spin.setEnabled(False)
    spin.setKeyboardTracking(False)
    spin.setToolTip("Frame of a multi-frame image")
    return spin


def update_frame_spin(spin: QSpinBox, image: XrayImage | None) -> None:
    count = image.frame_count if image is not None else 1
    spin.blockSignals(True)
    spin.setMaximum(max(count, 1))
    spin.setValue((image.frame_index + 1) if image is not None else 1)
    spin.setSuffix(f" / {count}")
    spin.blockSignals(False)
    spin.setEnabled(count > 1)


def update_title(w: MainWindow) -> None:
    image, count = w.session.image, len(w.session.entries)
    if image is None:
        w.setWindowTitle("cxrviewer")
        return
    position = f"  ({w.session.index + 1}/{count})" if count > 1 else ""
    w.setWindowTitle(f"{image.display_name}{position} — cxrviewer")


def update_enabled(w: MainWindow) -> None:
    image = w.session.image
    for name in ("zoom_in", "zoom_out", "fit", "actual_size", "reset_window", "invert", "rotate_cw",
                 "rotate_ccw", "flip_h", "flip_v", "reset", "clear_measurements"):
        w.action(name).setEnabled(image is not None)
    position = w.session.position()
    w.action("next_image").setEnabled(position.has_next)
    w.action("previous_image").setEnabled(position.has_previous)
    frames = image.frame_count if image is not None else 1
    w.action("next_frame").setEnabled(frames > 1)
    w.action("previous_frame").setEnabled(frames > 1)


def open_files_dialog(w: MainWindow) -> None:
    files, _ = QFileDialog.getOpenFileNames(w, "Open images", w.settings.last_folder(), IMAGE_FILTER)
    if files:
        w.open_paths(files)


def open_folder_dialog(w: MainWindow) -> None:
    folder = QFileDialog.getExistingDirectory(w, "Open folder", w.settings.last_folder())
    if folder:
        w.open_paths([folder])


def show_about(w: MainWindow) -> None:
    from cxrviewer.ui.dialogs.about import AboutDialog

    log_path = w.log_path
    if log_path is None:
        try:
            from cxrviewer.core.logs import current_log_path

            log_path = current_log_path()
        except ImportError:
            log_path = None
    dialog = AboutDialog(log_path, w)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()


def show_shortcuts(w: MainWindow) -> None:
    from cxrviewer.ui.dialogs.shortcut_sheet import ShortcutSheet

    dialog = ShortcutSheet(w)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
