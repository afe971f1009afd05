"""tools/third_party_licenses.py: licence detection, the GPL refusal, and the app's own dependencies."""
from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _load_tool():
    spec = importlib.util.spec_from_file_location("third_party_licenses", ROOT / "tools" / "third_party_licenses.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("third_party_licenses", module)
    spec.loader.exec_module(module)
    return module


tpl = _load_tool()


@pytest.mark.parametrize(("expression", "gpl_only"), [
    ("MIT", False),
    ("GPL-3.0-only", True),
    ("GPL-2.0-or-later", True),
    ("AGPL-3.0-or-later", True),
    ("LGPL-3.0-only", False),
    ("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only", False),   # PySide6: the LGPL option is taken
    ("MIT AND GPL-2.0-only", True),
    ("(MIT OR GPL-3.0-only) AND Apache-2.0", False),
    ("GPL-2.0-or-later WITH Classpath-exception-2.0", False),
    ("GPL-2.0-or-later WITH Bootloader-exception", False),
    ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", False),
])
def test_spdx_expressions(expression, gpl_only):
    assert tpl.spdx_gpl_only(expression) is gpl_only


@pytest.mark.parametrize(("text", "gpl_only"), [
    ("GPLv3", True),
    ("GNU General Public License v2 (GPLv2)", True),
    ("GNU General Public License v3 or later (GPLv3+)", True),
    ("GNU Lesser General Public License v3 (LGPLv3)", False),
    ("BSD or GPL", False),
    ("GPLv2-or-later with a special exception", False),
    ("Apache 2.0", False),
])
def test_licence_names_in_words(text, gpl_only):
    assert tpl.text_gpl_only(text) is gpl_only


def fake_distribution(tmp_path: Path, name: str, **fields: str) -> metadata.Distribution:
    folder = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
    folder.mkdir()
    lines = ["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0"]
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in fields.items()]
    (folder / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return metadata.PathDistribution(folder)


def test_gpl_distributions_are_refused(tmp_path):
    assert tpl.describe(fake_distribution(tmp_path, "gpl-thing", License="GPLv3")).gpl_only
    assert tpl.describe(fake_distribution(tmp_path, "expr-thing", License_Expression="GPL-3.0-or-later")).gpl_only
    assert tpl.describe(fake_distribution(
        tmp_path, "classified", Classifier="License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
    )).gpl_only
    assert not tpl.describe(fake_distribution(tmp_path, "lgpl-thing", License_Expression="LGPL-3.0-only")).gpl_only
    # the GPL JPEG plugin is refused by name, whatever its metadata says
    assert tpl.describe(fake_distribution(tmp_path, "pylibjpeg-libjpeg", License="MIT")).gpl_only


def test_listing_maps_modules_to_distributions(tmp_path):
    listing = tmp_path / "THIRD_PARTY_LICENSES"

    offenders = tpl.write_listing(listing, {"numpy", "numpy.libs", "PySide6", "openjpeg", "pydicom", "gdcm"})

    text = listing.read_text(encoding="utf-8")
    assert offenders == []
    for name in ("numpy", "PySide6_Essentials", "pylibjpeg-openjpeg", "pydicom", "python-gdcm",
                 "Python", "PyInstaller bootloader"):
        assert any(line.startswith(f"== {name} ") for line in text.splitlines()), name
    assert "License: LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only" in text


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return [req for req in requirements if req.marker is None or req.marker.evaluate()]


def test_the_apps_dependencies_are_not_gpl():
    """Every runtime dependency in pyproject.toml (what the bundle is made of) is GPL-free."""
    entries = [tpl.describe(metadata.distribution(req.name)) for req in _runtime_requirements()]
    assert len(entries) >= 10
    assert [entry for entry in entries if entry.gpl_only] == []
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("pylibjpeg-libjpeg")
