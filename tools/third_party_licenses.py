"""List the licences of the Python distributions bundled in the frozen app, and refuse GPL ones.

Used by build_spec.spec at build time: it passes the top-level names of everything PyInstaller
collected; this module maps them to installed distributions (through each distribution's
RECORD), reads their licence from the metadata (License-Expression, else the License field,
else the trove classifiers, else the first line of a shipped licence file) and

* writes THIRD_PARTY_LICENSES (name, version, licence, home page of each), and
* fails the build when a distribution is GPL-only: every alternative of its licence requires
  the GPL (LGPL, or a GPL alternative next to a permissive one, is fine; so is GPL with a
  linking exception such as PyInstaller's bootloader exception). pylibjpeg-libjpeg (GPLv3) is
  refused by name as well.

Standalone: `python tools/third_party_licenses.py [--all | NAME ...] [--output FILE]` prints
or writes the listing for the whole environment or the named top-level modules and exits 1
when a GPL-only distribution is among them.
"""
from __future__ import annotations

import argparse
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

FORBIDDEN_DISTRIBUTIONS = frozenset({"pylibjpeg-libjpeg"})   # GPLv3 JPEG plugin: never bundle
# GPL exceptions that allow linking/bundling with code under any licence
LINKING_EXCEPTIONS = frozenset({
    "gcc-exception-2.0", "gcc-exception-3.1", "classpath-exception-2.0", "bootloader-exception",
    "llvm-exception", "libtool-exception", "autoconf-exception-3.0", "font-exception-2.0",
})
_TEXT_LIMIT = 120   # longer License fields are a licence's full text, not its name


@dataclass(frozen=True)
class DistributionLicense:
    name: str
    version: str
    license: str
    source: str          # which metadata the licence came from
    home: str
    gpl_only: bool


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- SPDX expressions

def _tokens(expression: str) -> list[str]:
    return re.findall(r"\(|\)|[^\s()]+", expression)


def spdx_gpl_only(expression: str) -> bool:
    """True when every alternative of an SPDX expression needs the (A)GPL without an exception.

    OR: GPL-only when all alternatives are; AND: when any part is; `X WITH exception`: not when
    the exception permits linking.
    """
    tokens = _tokens(expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def primary() -> bool:
        token = take()
        if token == "(":
            value = disjunction()
            if peek() == ")":
                take()
            return value
        gpl = bool(re.match(r"^A?GPL-?\d|^A?GPL$", token, re.IGNORECASE))
        if peek() is not None and peek().upper() == "WITH":
            take()
            exception = take() if peek() is not None else ""
            if exception.lower() in LINKING_EXCEPTIONS:
                return False
        return gpl

    def conjunction() -> bool:
        value = primary()
        while peek() is not None and peek().upper() == "AND":
            take()
            value = primary() or value
        return value

    def disjunction() -> bool:
        value = conjunction()
        while peek() is not None and peek().upper() == "OR":
            take()
            value = conjunction() and value
        return value

    return disjunction() if tokens else False


# --------------------------------------------------------------------------- free text and classifiers

def text_gpl_only(text: str) -> bool:
    """A licence name in words ("GPLv3", "GNU General Public License") that is GPL without an LGPL,
    exception or permissive alternative."""
    lowered = text.lower()
    gpl = re.search(r"\bagpl|\bgpl|gnu general public licen[cs]e|gnu affero", lowered) is not None
    if not gpl:
        return False
    weaker = re.search(r"\blgpl|lesser|library general|exception", lowered) is not None
    alternative = (re.search(r"\bor\b", lowered) is not None
                   and re.search(r"\b(mit|bsd|apache|mpl|isc|psf|zlib)", lowered) is not None)
    return not (weaker or alternative)


def classifier_licenses(meta: metadata.PackageMetadata) -> list[str]:
    return [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]


def _license_file_first_line(dist: metadata.Distribution) -> str:
    for file in dist.files or ():
        if re.match(r"^(licen[cs]e|copying)", file.name, re.IGNORECASE):
            try:
                text = Path(file.locate()).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.strip():
                    return line.strip()[:_TEXT_LIMIT]
    return ""


def describe(dist: metadata.Distribution) -> DistributionLicense:
    """The licence of one distribution and whether it is GPL-only."""
    meta = dist.metadata
    name = meta["Name"]
    expression = (meta.get("License-Expression") or "").strip()
    text = (meta.get("License") or "").strip()
    classifiers = classifier_licenses(meta)
    home = meta.get("Home-page") or ""
    if not home:
        for url in meta.get_all("Project-URL") or []:
            label, _, link = url.partition(",")
            if label.strip().lower() in ("homepage", "home", "source", "repository", "source code"):
                home = link.strip()
                break
    short_text = text if text and len(text) <= _TEXT_LIMIT and "\n" not in text else ""
    if expression:
        license, source, gpl = expression, "License-Expression", spdx_gpl_only(expression)
    elif short_text:
        license, source = short_text, "License"
        gpl = text_gpl_only(short_text) and (not classifiers or all(text_gpl_only(c) for c in classifiers))
    elif classifiers:
        license, source = " OR ".join(classifiers), "classifiers"
        gpl = all(text_gpl_only(c) for c in classifiers)
    else:
        first = text.splitlines()[0].strip() if text else _license_file_first_line(dist)
        license, source = (first or "UNKNOWN"), ("License (full text)" if text else "licence file")
        gpl = text_gpl_only(first) if first else False
    if normalise(name) in FORBIDDEN_DISTRIBUTIONS:
        gpl = True
    return DistributionLicense(name, meta["Version"], license, source, home, gpl)


# --------------------------------------------------------------------------- bundled distributions

def top_level_index() -> dict[str, set[str]]:
    """Top-level file or folder name in site-packages (module, package, *.libs, dist-info) → distributions."""
    index: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0] in ("..", "__pycache__"):
                continue
            top = parts[0]
            names = {top}
            if len(parts) == 1:
                names.add(top.split(".")[0])    # single-file module: gdcm.py → gdcm
            for key in names:
                index.setdefault(key, set()).add(name)
    return index


def bundled_distributions(top_level_names: Iterable[str]) -> list[metadata.Distribution]:
    """Installed distributions that own any of the given top-level names, sorted by name."""
    index = top_level_index()
    wanted: set[str] = set()
    for top in top_level_names:
        wanted |= index.get(top, set())
    found = {normalise(name): metadata.distribution(name) for name in wanted}
    return [found[key] for key in sorted(found)]


def fixed_entries() -> list[DistributionLicense]:
    """Bundled parts that are not distributions: the interpreter and PyInstaller's bootloader."""
    entries = [DistributionLicense(
        "Python", platform.python_version(), "PSF-2.0", "interpreter", "https://www.python.org", False,
    )]
    try:
        version = metadata.version("pyinstaller")
    except metadata.PackageNotFoundError:
        version = "?"
    entries.append(DistributionLicense(
        "PyInstaller bootloader", version,
        "GPL-2.0-or-later WITH Bootloader-exception (the exception permits bundling any program)",
        "fixed", "https://pyinstaller.org", False,
    ))
    return entries


def listing(entries: Sequence[DistributionLicense], title: str) -> str:
    lines = [title, "Generated at build time from the bundled distributions' metadata.", ""]
    for entry in entries:
        lines.append(f"== {entry.name} {entry.version}")
        lines.append(f"License: {entry.license}  [{entry.source}]")
        if entry.home:
            lines.append(f"Home: {entry.home}")
        lines.append("")
    return "\n".join(lines)


def gpl_offenders(entries: Iterable[DistributionLicense]) -> list[DistributionLicense]:
    return [entry for entry in entries if entry.gpl_only]


def write_listing(
    path: str | Path, top_level_names: Iterable[str], title: str = "Third-party software in cxrviewer",
) -> list[DistributionLicense]:
    """Write THIRD_PARTY_LICENSES for the bundle and return the GPL-only entries (empty = OK)."""
    entries = fixed_entries() + [describe(dist) for dist in bundled_distributions(top_level_names)]
    Path(path).write_text(listing(entries, title) + "\n", encoding="utf-8")
    return gpl_offenders(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="top-level module names (default with --all: every distribution)")
    parser.add_argument("--all", action="store_true", help="every installed distribution")
    parser.add_argument("--output", type=Path, default=None, help="write the listing here instead of stdout")
    args = parser.parse_args(argv)
    if args.all:
        dists = sorted(metadata.distributions(), key=lambda d: normalise(d.metadata["Name"] or ""))
    else:
        dists = bundled_distributions(args.names)
    entries = [describe(dist) for dist in dists if dist.metadata["Name"]]
    text = listing(entries, "Third-party licences")
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    offenders = gpl_offenders(entries)
    for entry in offenders:
        print(f"GPL-only: {entry.name} {entry.version} ({entry.license})", file=sys.stderr)
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
