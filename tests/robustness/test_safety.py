"""Untrusted files never run code: Keras safe mode, no pickle, no network libraries in the viewer.

A model file is data from elsewhere (a colleague's folder, a download). Keras 3 refuses to
deserialize Python code (Lambda layers, custom functions) from a .keras file in safe mode;
the viewer must load every model that way. Nothing in the viewer unpickles anything.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cxrviewer.core.errors import ModelLoadError
from cxrviewer.core.model.card import CARD_FILENAME, ModelCard, sha256_file
from cxrviewer.core.model.runtime import load_classifier
from tests.model_factory import make_model_folder

REPO = Path(__file__).resolve().parents[2]
VIEWER = REPO / "cxrviewer"


def test_model_file_with_python_code_is_refused(tmp_path: Path) -> None:
    """A .keras file whose Lambda layer carries Python bytecode: safe mode refuses to load it."""
    import keras

    folder = make_model_folder(tmp_path, "pneumonia3")
    card = ModelCard.read(folder)
    original = keras.saving.load_model(folder / card.weights_file, safe_mode=True, compile=False)
    marker = tmp_path / "code_ran.txt"

    # An anonymous function: Keras stores its bytecode in the file. Running it leaves a file behind.
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")   # path as a code constant

    inputs = keras.Input(original.input_shape[1:], name="image")
    hidden = keras.layers.Lambda(payload, name="payload")(inputs)
    hostile = keras.Model(inputs, original(hidden), name="hostile")
    weights = folder / card.weights_file
    marker.unlink(missing_ok=True)
    hostile.save(weights)
    marker.unlink(missing_ok=True)
    data = json.loads((folder / CARD_FILENAME).read_text())
    data["weights_sha256"] = sha256_file(weights)      # the checksum matches: only safe mode stands
    (folder / CARD_FILENAME).write_text(json.dumps(data))

    with pytest.raises(ModelLoadError, match="could not be loaded") as info:
        load_classifier(folder)
    assert not marker.exists(), "code from the model file ran"
    assert "safe_mode" in str(info.value) or "unsafe" in str(info.value).lower(), str(info.value)

    # The same file loads without safe mode (and its code then runs): safe mode is what refused it.
    unsafe = keras.saving.load_model(weights, safe_mode=False, compile=False)
    unsafe(keras.ops.zeros((1, *original.input_shape[1:])))
    assert marker.exists()


def _calls_and_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import and every attribute call in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {kw.arg: ast.unparse(kw.value) for kw in node.keywords}
            if keywords.get("allow_pickle") == "True":
                found.append((node.lineno, f"{name}(allow_pickle=True)"))
            if name.endswith("load_model") and keywords.get("safe_mode") != "True":
                found.append((node.lineno, f"{name} without safe_mode=True"))
    return found


FORBIDDEN = ("pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "torch.load", "requests", "urllib3",
             "urllib.request", "http.client", "ftplib", "smtplib", "xmlrpc", "socketserver")


def test_viewer_code_never_unpickles_and_loads_models_in_safe_mode() -> None:
    problems = []
    for path in sorted(VIEWER.rglob("*.py")):
        for line, name in _calls_and_imports(path):
            relative = path.relative_to(REPO)
            if "allow_pickle=True" in name or "without safe_mode" in name:
                problems.append(f"{relative}:{line}: {name}")
            elif any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                problems.append(f"{relative}:{line}: imports {name}")
            elif name == "socket" and relative != Path("cxrviewer/commands/selftest.py"):   # selftest blocks sockets
                problems.append(f"{relative}:{line}: imports socket")
    assert problems == []


def test_the_static_check_can_fail(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import pickle\nimport numpy as np\nnp.load('x', allow_pickle=True)\n"
                      "keras.saving.load_model('m.keras', compile=False)\n")
    names = [name for _, name in _calls_and_imports(module)]
    assert "pickle" in names
    assert "np.load(allow_pickle=True)" in names
    assert "keras.saving.load_model without safe_mode=True" in names
