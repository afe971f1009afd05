"""Tools ▸ My Reads: the trainee's recorded reads, and opening the image a read was made on.

Reads keep a content hash, never a path: the image is found among those seen this session,
else by hashing the open study's files (bounded, on the GUI thread).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Qt

from cxrviewer.core.errors import CxrError
from cxrviewer.core.types import XrayImage
from cxrviewer.state.session import ViewerSession
from cxrviewer.ui.dialogs.my_reads import MyReadsDialog
from cxrviewer.ui.features.read_first_session import ReadFirstSession
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell

READ_LOOKUP_BYTES = 200 * 2**20   # at most this much of the open study is hashed to find a read's image


class PacketShelf(Protocol):
    """The practice packets My Reads lists (`ui.practice.PracticeController`)."""

    def data_folder(self) -> Path: ...

    def open_packet(self, summary: object) -> object: ...


class MyReadsFeature(QObject):
    """The My Reads action and dialog, and `open_read_image`."""

    def __init__(self, shell: Shell, viewer: ViewerSession, reads: ReadFirstSession,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.viewer, self.reads = shell, viewer, reads
        self.dialog: MyReadsDialog | None = None
        self._seen: dict[str, Path] = {}     # content hash → file, of images shown this session
        self._packets: PacketShelf | None = None
        self.action = make_action(shell.host(), "my_reads", "My &Reads…", self.open,
                                  "Your recorded reads: agreement with the model and the labels, calibration")

    def image_shown(self, image: XrayImage | None) -> None:
        if image is not None and image.sha256:
            self._seen[image.sha256] = Path(image.path)

    def set_packets(self, packets: PacketShelf | None) -> None:
        """Where My Reads › Packets finds the practice packets, and who opens one (the practice controller)."""
        self._packets = packets

    def open(self) -> MyReadsDialog | None:
        packets = self._packets
        try:
            dialog = MyReadsDialog(self.reads.store(), parent=self.shell.host(),
                                   packets_folder=packets.data_folder() if packets is not None else None)
        except CxrError as exc:
            self.shell.show_notice(f"Your reads could not be opened: {exc}")
            return None
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open_requested.connect(self.open_read_image)
        if packets is not None:
            dialog.packet_open_requested.connect(packets.open_packet)
        dialog.open()
        self.dialog = dialog
        return dialog

    def open_read_image(self, sha256: str, frame: int = 0) -> bool:
        """Show the image a read was made on: one seen this session, else one of the open study's files
        with that content hash. False (and a note) when it is not among them."""
        paths = [Path(p).resolve() for p in self.viewer.paths()]
        known = self._seen.get(sha256)
        if known is not None and known.resolve() in paths:
            self.shell.show_index(paths.index(known.resolve()), frame)
            return True
        from cxrviewer.core.model.card import sha256_file

        seen = {path.resolve() for path in self._seen.values()}
        budget = READ_LOOKUP_BYTES   # hashing is on the GUI thread: only as much as reads in well under a second
        for index, path in enumerate(paths):
            if path in seen:
                continue   # its hash is known, and it is not this one
            try:
                size = path.stat().st_size
                if not path.is_file() or size > budget:
                    continue
                budget -= size
                digest = sha256_file(path)
            except OSError:
                continue
            self._seen[digest] = path
            if digest == sha256:
                self.shell.show_index(index, frame)
                return True
        self.shell.show_notice("That image is not in the study that is open: open its folder, then choose the "
                               "read again. (Reads keep only a content hash of the image, never its name or path.)",
                               False)
        return False
