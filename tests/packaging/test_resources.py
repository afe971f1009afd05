"""resources_dir(): ONE lookup for models, fonts, icons and self-test images — from the source
checkout, from an installed wheel and from the frozen bundle (sys._MEIPASS, simulated here;
tests/packaging/test_frozen.py checks the real bundle)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cxrviewer.commands import selftest
from cxrviewer.core import resources
from cxrviewer.core.model import registry
from cxrviewer.core.resources import resource_path, resources_dir

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "resources" / "selftest" / "manifest.json").read_text(encoding="utf-8"))
EXPECTED_RESOURCES = (
    "fonts/DejaVuSans.ttf", "icons/cxrviewer.svg", "selftest/manifest.json", "colormaps/colormaps.npz",
    *(f"selftest/{entry['file']}" for entry in MANIFEST["fixtures"]),
)


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch):
    monkeypatch.delenv(resources.RESOURCES_ENV, raising=False)
    monkeypatch.delenv(registry.MODELS_DIR_ENV, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)


def test_source_checkout_uses_the_repository_resources():
    folder = resources_dir()
    assert folder.resolve() == (ROOT / "resources").resolve()
    for relative in EXPECTED_RESOURCES:
        assert (folder / relative).is_file(), relative
    assert selftest.install_mode() == "source checkout"


def test_environment_override_wins_even_when_frozen(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv(resources.RESOURCES_ENV, str(tmp_path / "mine"))
    assert resources_dir() == tmp_path / "mine"


def test_frozen_bundle_uses_meipass(monkeypatch, tmp_path):
    bundle = tmp_path / "_internal"
    model = bundle / "resources" / "models" / "bundled"
    model.mkdir(parents=True)
    (model / "weights.keras").write_bytes(b"not read by the scan")
    (model / "model.json").write_text(json.dumps({
        "name": "bundled", "labels": ["NORMAL", "PNEUMONIA"], "input_size": 32, "backbone": "x",
        "cam_layer": "relu", "weights_file": "weights.keras", "weights_sha256": "0" * 64,
    }), encoding="utf-8")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)

    assert resources_dir() == bundle / "resources"
    assert resource_path("fonts", "DejaVuSans.ttf") == bundle / "resources" / "fonts" / "DejaVuSans.ttf"
    assert registry.models_root() == bundle / "resources" / "models"
    assert [entry.name for entry in registry.scan_models().models] == ["bundled"]
    assert selftest.install_mode() == "frozen app"


# --------------------------------------------------------------------------- wheel

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the project (pip wheel --no-deps, offline, no build isolation)."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, source / name)
    for name in ("cxrviewer", "trainer", "resources"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("cxrviewer-*.whl")
    return built


def test_wheel_ships_the_resources_inside_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for relative in EXPECTED_RESOURCES:
        assert f"cxrviewer/resources/{relative}" in names, relative
    for folder in sorted((ROOT / "resources" / "models").glob("*/model.json")):
        assert f"cxrviewer/resources/models/{folder.parent.name}/model.json" in names
    assert not any(name.startswith("resources/") for name in names), "resources must not be a top-level package"


def test_installed_wheel_finds_its_resources_and_decodes_the_fixtures(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import json, cxrviewer\n"
        "from cxrviewer.core.resources import resources_dir\n"
        "from cxrviewer.commands.selftest import install_mode, run_selftest\n"
        "report = run_selftest()\n"
        "print(json.dumps({'package': cxrviewer.__file__, 'resources': str(resources_dir()),\n"
        "                  'mode': install_mode(),\n"
        "                  'checks': [[c.name, c.status, c.detail] for c in report.checks]}))\n"
    )
    env = {key: value for key, value in os.environ.items()
           if key not in (resources.RESOURCES_ENV, "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), CXRVIEWER_MODELS_DIR=str(tmp_path / "no-models"),
               CXRVIEWER_LOG_DIR=str(tmp_path / "logs"))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(info["package"]).resolve().is_relative_to(site.resolve())
    assert Path(info["resources"]) == site / "cxrviewer" / "resources"
    assert info["mode"] == "installed package"
    checks = {name: (status, detail) for name, status, detail in info["checks"]}
    decoded = [name for name in checks if name.startswith("decode ")]
    assert len(decoded) == len(MANIFEST["fixtures"])
    assert all(checks[name][0] == "PASS" for name in ["resources", *decoded]), checks
    assert checks["model"][0] == "FAIL" and "no bundled model" in checks["model"][1]
