"""The observer primitive under every state model."""
from __future__ import annotations

from cxrviewer.state.events import Event


def test_connect_emit_disconnect_in_order() -> None:
    event: Event[int] = Event("n")
    seen: list[tuple[str, int]] = []
    first = event.connect(lambda n: seen.append(("a", n)))
    event.connect(lambda n: seen.append(("b", n)))
    event.emit(1)
    event.disconnect(first)
    event.disconnect(first)          # twice: ignored
    event.emit(2)
    assert seen == [("a", 1), ("b", 1), ("b", 2)] and len(event) == 1


def test_blocked_emits_nothing_and_a_listener_may_disconnect_while_called() -> None:
    event: Event[str] = Event()
    seen: list[str] = []

    def once(value: str) -> None:
        seen.append(value)
        event.disconnect(once)

    event.connect(once)
    with event.blocked():
        event.emit("hidden")
    event.emit("x")
    event.emit("y")
    assert seen == ["x"]


def test_the_state_layer_imports_neither_qt_nor_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, cxrviewer.state.ai, cxrviewer.state.overlay, cxrviewer.state.session, "
            "cxrviewer.state.read_first; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'tensorflow', 'keras', 'cxrviewer'}"
            " and (m.startswith('cxrviewer.ui') or not m.startswith('cxrviewer'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
