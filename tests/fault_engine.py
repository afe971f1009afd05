"""The real worker engine with faults injected, for tests/robustness/test_faults.py.

The worker process imports `open_with_faults` by name. Faults are read from
`<models root>/faults.json` at each load and each request, so a test switches them on and off
while the same worker keeps running (as a real fault would come and go):

    {"load": "memory" | "import" | "warm_up",
     "predict": "memory-once" | "project-error"}

"memory-once" removes itself after the first request it breaks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cxrviewer.core.errors import InferenceError
from cxrviewer.core.inference.worker import open_worker_model

FACTORY = "tests.fault_engine:open_with_faults"
FAULTS_FILE = "faults.json"


def set_faults(root: Path, **faults: str) -> None:
    (Path(root) / FAULTS_FILE).write_text(json.dumps(faults))


def _faults(root: Path) -> dict[str, str]:
    path = Path(root) / FAULTS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


class _Faulty:
    def __init__(self, engine: Any, root: Path) -> None:
        self._engine = engine
        self._root = root

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def warm_up(self) -> None:
        if _faults(self._root).get("load") == "warm_up":
            raise RuntimeError("simulated: XLA compilation failed")
        self._engine.warm_up()

    def predict_and_cam(self, *args: Any, **kwargs: Any) -> Any:
        faults = _faults(self._root)
        fault = faults.get("predict")
        if fault == "memory-once":
            faults.pop("predict")
            set_faults(self._root, **faults)
            raise MemoryError("simulated: failed to allocate 3.2 GiB for the CAM")
        if fault == "project-error":
            raise InferenceError("the image is too small for the model (4 × 4 pixels)")
        return self._engine.predict_and_cam(*args, **kwargs)


def open_with_faults(name: str, root: Path | None) -> Any:
    assert root is not None
    fault = _faults(root).get("load")
    if fault == "memory":
        raise MemoryError()
    if fault == "import":
        raise ImportError("simulated: No module named 'tensorflow'")
    return _Faulty(open_worker_model(name, root), Path(root))
