"""Coverage-guided fuzzing of `load_image` and the DICOM header/tag readers with atheris (libFuzzer).

Optional and not run in CI (tests/robustness/test_fuzz_loader.py is the deterministic,
CI-sized fuzzer). atheris is not a project dependency; install it where you like:

    pip install --target /tmp/atheris atheris
    PYTHONPATH=/tmp/atheris:. python tools/fuzz_atheris.py --make-corpus fuzz_corpus
    PYTHONPATH=/tmp/atheris:. nice -n 19 python tools/fuzz_atheris.py fuzz_corpus -- \
        -max_total_time=3600 -timeout=30 -rss_limit_mb=4096 -artifact_prefix=fuzz_findings/

`--make-corpus DIR` writes the seeds of the CI fuzzer (real files from ../shared up to
--max-seed-kb, synthetic DICOMs for every transfer syntax, PNG/TIFF/BMP, and the issue #14
families: JP2 wrapper, RLE, progressive JPEG, PNG with zTXt, sequence items, YBR_FULL) into
DIR; `--issue-14-only` writes only the last group. Arguments
after `--` go to libFuzzer. A finding is any exception other than ImageLoadError, an
ImageLoadError produced by the loader's catch-all ("unexpected error"), a loaded image that
is not displayable, a timeout (-timeout) or a crash of the process; libFuzzer saves the input
as crash-*/timeout-* under -artifact_prefix. Reproduce one with:

    PYTHONPATH=/tmp/atheris:. python tools/fuzz_atheris.py fuzz_findings/crash-<sha1>
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    sys.exit("atheris is not installed: pip install atheris (see the module docstring)")

with atheris.instrument_imports(include=["cxrviewer", "pydicom"]):
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import dicom_tag_rows, load_image, read_header

INPUT = Path(tempfile.gettempdir()) / f"cxrviewer-atheris-{os.getpid()}"


def check_image(image) -> None:
    """Raise when a loaded image is not displayable (shared with the CI fuzzer's rules)."""
    from tests.robustness.fuzzing import check_image as problems_of

    problem = problems_of(image)
    if problem:
        raise AssertionError(f"loaded but {problem}")


def test_one_input(data: bytes) -> None:
    INPUT.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = load_image(INPUT)
        except ImageLoadError as exc:
            if exc.reason.startswith("unexpected error"):
                raise AssertionError(f"the loader's catch-all fired: {exc.reason}") from exc
        else:
            check_image(image)
        for reader in (read_header, dicom_tag_rows):
            try:
                reader(INPUT)
            except ImageLoadError:
                pass


def make_corpus(folder: Path, max_seed_kb: int, issue_14_only: bool = False) -> int:
    from tests.robustness.fuzzing import hostile2_seeds
    from tests.robustness.test_fuzz_loader import all_seeds

    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in hostile2_seeds() if issue_14_only else all_seeds():
        if len(seed.data) <= max_seed_kb * 1024:
            name = seed.name.replace(":", "_").replace("/", "_")
            (folder / name).write_bytes(seed.data)
            written += 1
    return written


def main() -> None:
    argv = sys.argv[1:]
    fuzzer_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="corpus folders, or single inputs to reproduce")
    parser.add_argument("--make-corpus", type=Path, metavar="DIR", help="write the seed corpus and exit")
    parser.add_argument("--max-seed-kb", type=int, default=256, help="skip bigger seeds (slow to mutate)")
    parser.add_argument("--issue-14-only", action="store_true",
                        help="with --make-corpus: only the issue #14 families (tests/robustness/hostile2.py)")
    args = parser.parse_args(own)
    if args.make_corpus:
        written = make_corpus(args.make_corpus, args.max_seed_kb, args.issue_14_only)
        print(f"{written} seeds written to {args.make_corpus}")
        return
    atheris.Setup([sys.argv[0], *fuzzer_args, *args.paths], test_one_input)
    try:
        atheris.Fuzz()
    finally:
        INPUT.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
