"""ImageLoader: off the GUI thread, newest request wins, stale results dropped, cache."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.ui.workers.loader import ImageLoader

from .synthetic import write_png


@pytest.fixture
def loader(qtbot):
    instance = ImageLoader()
    yield instance
    instance.shutdown()


@pytest.fixture
def pngs(tmp_path: Path) -> list[Path]:
    return [write_png(tmp_path / f"{i}.png", np.full((300, 300), i * 10, np.uint8)) for i in range(3)]


def test_only_the_newest_request_is_delivered(qtbot, loader: ImageLoader, pngs) -> None:
    delivered: list[tuple[int, Path]] = []
    loader.image_loaded.connect(lambda rid, image: delivered.append((rid, image.path)))
    loader.request(pngs[0])
    loader.request(pngs[1])
    newest = loader.request(pngs[2])
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000):
        pass
    loader.wait()
    qtbot.wait(20)
    assert delivered == [(newest, pngs[2])]


def test_loading_happens_off_the_gui_thread(qtbot, loader: ImageLoader, pngs, monkeypatch) -> None:
    import cxrviewer.core.io as io

    threads: list[threading.Thread] = []
    real = io.load_image

    def spy(path, frame=0, **kwargs):
        threads.append(threading.current_thread())
        return real(path, frame=frame, **kwargs)

    monkeypatch.setattr(io, "load_image", spy)
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000):
        loader.request(pngs[0])
    assert threads and threads[0] is not threading.main_thread()


def test_failures_are_signalled_with_the_reason(qtbot, loader: ImageLoader, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really")
    with qtbot.waitSignal(loader.load_failed, timeout=30_000) as blocker:
        loader.request(bad)
    _, path, message = blocker.args
    assert path == str(bad) and "bad.png" in message


def test_cached_image_is_delivered_asynchronously(qtbot, loader: ImageLoader, pngs) -> None:
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000) as first:
        loader.request(pngs[0])
    got = []
    loader.image_loaded.connect(lambda rid, image: got.append(image))
    loader.request(pngs[0])
    assert got == []                      # not re-entrant: arrives via the event loop
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5_000)
    assert got[0] is first.args[1]


# ------------------------------------------------------------------------------- tag listings
def test_tags_are_listed_off_the_gui_thread_after_the_image(qtbot, loader: ImageLoader, make_dicom, monkeypatch) -> None:
    import cxrviewer.core.decode_pool as decode_pool

    path = make_dicom(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), name="tags.dcm")
    threads: list[threading.Thread] = []
    real = decode_pool.tag_rows_isolated

    def spy(target, **kwargs):
        threads.append(threading.current_thread())
        return real(target, **kwargs)   # a DICOM file: listed in the "view" decode process

    monkeypatch.setattr(decode_pool, "tag_rows_isolated", spy)
    order: list[str] = []
    loader.image_loaded.connect(lambda rid, image: order.append("image"))
    loader.tags_ready.connect(lambda rid, listing: order.append("tags"))
    with qtbot.waitSignal(loader.tags_ready, timeout=30_000) as blocker:
        request_id = loader.request(path)
    got_id, listing = blocker.args
    assert got_id == request_id and order == ["image", "tags"]
    assert threads and threads[0] is not threading.main_thread()
    assert listing.path == str(path) and listing.message == ""
    assert ("(0010,0020)", "Patient ID", "LO", "TEST001") in listing.rows

    # Asking again (another frame, a revisit) delivers the cached listing without re-reading.
    with qtbot.waitSignal(loader.tags_ready, timeout=30_000) as again:
        loader.request(path)
    assert again.args[1] is listing and len(threads) == 1


def test_a_non_dicom_file_lists_no_tags_and_says_why(qtbot, loader: ImageLoader, pngs) -> None:
    with qtbot.waitSignal(loader.tags_ready, timeout=30_000) as blocker:
        loader.request(pngs[0])
    listing = blocker.args[1]
    assert listing.rows == () and listing.message.startswith("No DICOM tags:")
    assert "not a DICOM file" in listing.message


def test_tags_of_a_superseded_request_are_not_delivered(qtbot, loader: ImageLoader, make_dicom, pngs) -> None:
    first = make_dicom(np.zeros((32, 32), np.uint16), name="first.dcm")
    delivered: list[str] = []
    loader.tags_ready.connect(lambda rid, listing: delivered.append(listing.path))
    loader.request(first)
    newest = loader.request(pngs[1])
    with qtbot.waitSignal(loader.tags_ready, timeout=30_000, check_params_cb=lambda rid, _: rid == newest):
        pass
    loader.wait()
    qtbot.wait(20)
    assert delivered == [str(pngs[1])]


def test_a_large_image_arrives_with_its_display_pyramid_built_off_the_gui_thread(qtbot, loader: ImageLoader,
                                                                                 tmp_path: Path) -> None:
    from cxrviewer.core.pyramid import PYRAMID_MIN_PIXELS, pyramid_of

    pixels = (np.arange(2500 * 2000, dtype=np.uint32) % 251).astype(np.uint8).reshape(2500, 2000)
    assert pixels.size >= PYRAMID_MIN_PIXELS
    path = write_png(tmp_path / "large.png", pixels)
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000) as got:
        loader.request(path)
    image = got.args[1]
    built = pyramid_of(image)
    assert built is not None and built.levels[2].shape == (1250, 1000)
    small = write_png(tmp_path / "small.png", pixels[:100, :100])
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000) as got_small:
        loader.request(small)
    assert pyramid_of(got_small.args[1]) is None   # small images render in milliseconds anyway
