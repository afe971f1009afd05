"""Qt-free evented application state that the widgets bind to (after napari's `components/`).

Layers: cli | commands | ui | **state** | teaching | core. This package imports `core` and
`teaching`, never `ui` or Qt, so its rules are unit-tested with a fake engine:

* `events.Event[T]` — a tiny typed observer (connect / disconnect / emit);
* `readonly.ReadOnly[T]` — a model's public read-only view of one of its private fields;
* `session.ViewerSession` — the open entries, the current index and image, newest-wins load ids;
* `overlay.OverlaySettings` — the heat map's look and target, each change announced with its cost;
* `ai.AiSession` — the loaded model, results per image, the pending request, the gates;
* `read_first.ReadFirstFlow` — the trainee's read as an Enum state machine.
"""
