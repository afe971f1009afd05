"""Non-modal notices: a dismissible banner over the view and a Problems list dock.

Bad files never raise a blocking dialog: the banner names the newest problem, the dock keeps
them all, and the rest of the study stays usable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    @property
    def text(self) -> str:
        """The message, led by the file's printable name (bidi, control and undecodable
        characters escaped, as in the loader's messages) unless it already names the file."""
        from cxrviewer.core.errors import printable_name

        name = printable_name(self.path.name)
        return self.message if name in self.message else f"{name}: {self.message}"


class NoticeBanner(QFrame):
    """A one-line warning strip with 'Show problems' and a close button."""

    details_requested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "#noticeBanner { background: #5a4300; border: 1px solid #b88a00; }"
            "#noticeBanner QLabel { color: #fff4cc; }"
        )
        self.label = QLabel(self)
        self.label.setObjectName("noticeText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Show problems", self)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.details_button)
        layout.addWidget(self.close_button)
        self._is_problem = False
        self.details_button.clicked.connect(self._on_details_button_clicked)
        self.close_button.clicked.connect(self._on_close_button_clicked)
        self.hide()

    def show_notice(self, text: str, *, problem: bool = True) -> None:
        """Show `text`; `problem=False` is for notes about the shown image (no details)."""
        self._is_problem = problem
        self.label.setText(text)
        self.details_button.setVisible(problem)
        self.show()

    def is_problem(self) -> bool:
        return self._is_problem

    def hide_note(self) -> None:
        """Hide the banner if it shows a note (problems stay until dismissed)."""
        if not self._is_problem:
            self.hide()

    def text(self) -> str:
        return self.label.text()

    def _on_details_button_clicked(self) -> None:
        self.details_requested.emit()

    def _on_close_button_clicked(self) -> None:
        self.hide()
        self.dismissed.emit()


class ProblemsDock(QDockWidget):
    """Every file that could not be opened in this session, with the reason."""

    problem_activated = Signal(object)   # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.setObjectName("problemsDock")
        body = QWidget(self)
        self.list = QListWidget(body)
        self.list.setObjectName("problemsList")
        self.list.setWordWrap(True)
        self.clear_button = QPushButton("Clear", body)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignRight)
        self.setWidget(body)
        self._problems: list[Problem] = []
        self.clear_button.clicked.connect(self._on_clear_button_clicked)
        self.list.itemActivated.connect(self._on_list_item_activated)

    def add_problem(self, problem: Problem) -> None:
        if problem in self._problems:
            return
        self._problems.append(problem)
        item = QListWidgetItem(problem.text)
        item.setToolTip(str(problem.path))
        item.setData(Qt.ItemDataRole.UserRole, str(problem.path))
        self.list.addItem(item)
        self.setWindowTitle(f"Problems ({len(self._problems)})")

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def clear(self) -> None:
        self._problems.clear()
        self.list.clear()
        self.setWindowTitle("Problems")

    def _on_clear_button_clicked(self) -> None:
        self.clear()

    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        self.problem_activated.emit(Path(item.data(Qt.ItemDataRole.UserRole)))
