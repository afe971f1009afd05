"""Model registry: scanning model folders (cards only, no TensorFlow), problems, defaults."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cxrviewer.core.model import registry
from cxrviewer.core.model.card import ModelCard


def _card(name: str, weights_file: str = "model.keras") -> ModelCard:
    return ModelCard(
        name=name, labels=("NORMAL", "PNEUMONIA"), input_size=32, backbone="tiny-test", cam_layer="relu",
        weights_file=weights_file, weights_sha256="0" * 64,
    )


def _model_folder(root: Path, folder: str, name: str | None = None) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    card = _card(name or folder)
    card.write(path)
    (path / card.weights_file).write_bytes(b"weights")
    return path


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "models"
    base.mkdir()
    _model_folder(base, "b_model", "pneumonia2")
    _model_folder(base, "a_model", "alpha")
    return base


def test_lists_models_sorted_by_folder(root):
    cards = registry.list_models(root)
    assert [card.name for card in cards] == ["alpha", "pneumonia2"]
    scan = registry.scan_models(root)
    assert [entry.folder.name for entry in scan.models] == ["a_model", "b_model"]
    assert scan.problems == []


def test_broken_folders_are_skipped_logged_and_reported(root, caplog):
    (root / "no_card").mkdir()
    (root / "bad_json").mkdir()
    (root / "bad_json" / "model.json").write_text("{not json")
    (root / "no_labels_field").mkdir()
    data = _card("x").to_dict()
    del data["labels"]
    (root / "no_labels_field" / "model.json").write_text(json.dumps(data))
    no_weights = root / "no_weights"
    no_weights.mkdir()
    _card("noweights").write(no_weights)
    (root / ".hidden").mkdir()
    (root / "stray_file.txt").write_text("ignored")

    with caplog.at_level(logging.WARNING, logger="cxrviewer.core.model.registry"):
        models, problems = registry.scan_models(root)
    assert [entry.name for entry in models] == ["alpha", "pneumonia2"]
    messages = {problem.folder.name: problem.message for problem in problems}
    assert set(messages) == {"no_card", "bad_json", "no_labels_field", "no_weights"}
    assert "no model.json" in messages["no_card"]
    assert "not valid JSON" in messages["bad_json"]
    assert "lacks the field 'labels'" in messages["no_labels_field"]
    assert "weights file 'model.keras' is missing" in messages["no_weights"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4


def test_duplicate_names_keep_the_first_folder(root):
    _model_folder(root, "c_model", "alpha")
    models, problems = registry.scan_models(root)
    assert [entry.folder.name for entry in models] == ["a_model", "b_model"]
    assert len(problems) == 1 and "already used by 'a_model'" in problems[0].message


def test_root_argument_beats_env_which_beats_resources(root, tmp_path, monkeypatch):
    other = tmp_path / "other"
    _model_folder(other, "only", "envmodel")
    monkeypatch.setenv(registry.MODELS_DIR_ENV, str(other))
    assert [c.name for c in registry.list_models()] == ["envmodel"]
    assert [c.name for c in registry.list_models(root)] == ["alpha", "pneumonia2"]
    monkeypatch.delenv(registry.MODELS_DIR_ENV)
    assert registry.models_root() == registry.resource_path("models")


def test_missing_root_gives_nothing(tmp_path):
    assert registry.scan_models(tmp_path / "absent") == ([], [])


def test_default_model_prefers_pneumonia3():
    assert registry.default_model_name([_card("a"), _card("pneumonia3"), _card("z")]) == "pneumonia3"
    assert registry.default_model_name([_card("b"), _card("a")]) == "b"
    assert registry.default_model_name([]) is None


def test_resolve_by_name_or_folder(root, tmp_path):
    assert registry.resolve_model_folder("pneumonia2", root) == root / "b_model"
    elsewhere = _model_folder(tmp_path / "loose", "mine")
    assert registry.resolve_model_folder(elsewhere, root) == elsewhere
    with pytest.raises(LookupError, match=r"no model named 'nope'.*available: alpha, pneumonia2"):
        registry.resolve_model_folder("nope", root)


def test_asking_for_a_broken_model_by_name_says_why_it_is_unavailable(root):
    broken = _model_folder(root, "covid3")
    (broken / "model.keras").unlink()
    with pytest.raises(LookupError, match=r"model folder 'covid3' skipped: weights file 'model.keras' is missing"):
        registry.resolve_model_folder("covid3", root)
