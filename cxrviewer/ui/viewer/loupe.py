"""The magnifier (loupe): View › Magnifier (L) shows the part of the image under the cursor 3× larger,
in a square that follows the cursor — the way a radiologist leans in to a subtle line or nodule.

It magnifies what the canvas shows (window, invert, heat map, ruler), so what is seen through
the loupe is what the view shows, only bigger; it never changes the view itself.
It is handed the canvas it magnifies and the window as a `Shell` (for its View-menu action).
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.viewer.canvas import ImageCanvas

LOUPE_SIDE = 220          # pixels of the magnifier square on screen
MAGNIFICATION = 3


class Loupe(QObject):
    """Watches the canvas viewport's mouse moves while enabled and draws the magnified square."""

    def __init__(self, canvas: ImageCanvas, shell: Shell) -> None:
        super().__init__(shell.host())
        self.setObjectName("loupe")
        self.canvas = canvas
        viewport = self.canvas.viewport()
        self.label = QLabel(viewport)
        self.label.setObjectName("loupeLabel")
        self.label.setFixedSize(LOUPE_SIDE, LOUPE_SIDE)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.label.hide()
        self.action = QAction("&Magnifier", shell.host(), checkable=True)
        self.action.setObjectName("action_magnifier")
        self.action.setShortcut(QKeySequence("L"))
        self.action.setToolTip(f"A {MAGNIFICATION}× magnifier that follows the cursor over the image (L)")
        self.action.toggled.connect(self.set_enabled)
        shell.add_menu_action("view", self.action)   # its shortcut works anywhere in the window
        viewport.installEventFilter(self)

    def is_enabled(self) -> bool:
        return self.action.isChecked()

    def set_enabled(self, enabled: bool) -> None:
        if self.action.isChecked() != enabled:
            self.action.setChecked(enabled)
            return
        viewport = self.canvas.viewport()
        if enabled:
            self.show_at(viewport.mapFromGlobal(viewport.cursor().pos()))
        else:
            self.label.hide()

    def show_at(self, point: QPoint) -> None:
        """Magnify around `point` (viewport coordinates); hidden when the point is off the viewport."""
        viewport = self.canvas.viewport()
        if not viewport.rect().contains(point) or self.canvas.image() is None:
            self.label.hide()
            return
        source_side = LOUPE_SIDE // MAGNIFICATION
        source = QRect(point.x() - source_side // 2, point.y() - source_side // 2, source_side, source_side)
        self.label.hide()                      # never magnify the loupe itself
        grabbed = viewport.grab(source)
        magnified = grabbed.scaled(LOUPE_SIDE, LOUPE_SIDE, Qt.AspectRatioMode.IgnoreAspectRatio,
                                   Qt.TransformationMode.FastTransformation)   # crisp pixels, no blur
        framed = QPixmap(magnified)
        painter = QPainter(framed)
        painter.setPen(QPen(Qt.GlobalColor.white, 2))
        painter.drawRect(1, 1, LOUPE_SIDE - 2, LOUPE_SIDE - 2)
        painter.end()
        self.label.setPixmap(framed)
        self.label.move(self._position(point, viewport))
        self.label.show()
        self.label.raise_()

    @staticmethod
    def _position(point: QPoint, viewport: QWidget) -> QPoint:
        """Beside the cursor (right and below), flipped to the other side near an edge."""
        gap = 24
        x = point.x() + gap if point.x() + gap + LOUPE_SIDE <= viewport.width() else point.x() - gap - LOUPE_SIDE
        y = point.y() + gap if point.y() + gap + LOUPE_SIDE <= viewport.height() else point.y() - gap - LOUPE_SIDE
        return QPoint(max(0, x), max(0, y))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if self.is_enabled():
            if event.type() == QEvent.Type.MouseMove and isinstance(event, QMouseEvent):
                self.show_at(event.position().toPoint())
            elif event.type() == QEvent.Type.Leave:
                self.label.hide()
        return False
