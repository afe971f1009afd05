"""`cxr-train heatmap-findings`: the per-map shares the card's measured findings are made of."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.heatmap_findings import _summarise, map_shares, regions


def _chest(size: int = 96) -> np.ndarray:
    """Bright body, two dark lung fields, the top fifth bright (neck and shoulders)."""
    image = np.full((size, size), 200, np.uint8)
    image[int(size * 0.25):int(size * 0.85), int(size * 0.15):int(size * 0.45)] = 40
    image[int(size * 0.25):int(size * 0.85), int(size * 0.55):int(size * 0.85)] = 40
    return image


def test_regions_cover_the_image_once() -> None:
    masks = regions(50)
    total = sum(mask.astype(int) for mask in masks.values())
    assert np.all(total == 1)
    assert masks["top_fifth"][:10].all() and not masks["top_fifth"][10:].any()


def test_a_map_on_the_neck_is_counted_there() -> None:
    cam = np.zeros((6, 6), np.float32)
    cam[0, 2:4] = 1.0
    shares = map_shares(cam, _chest())
    assert shares["top_fifth"] > 0.6 and shares["peak_in_top_fifth"] == 1.0
    assert shares["outside_lungs"] > 0.9


def test_a_flat_map_is_outside_the_lungs_as_often_as_the_mask_says() -> None:
    shares = map_shares(np.ones((6, 6), np.float32), _chest())
    assert shares["outside_lungs"] == pytest.approx(shares["flat_map_outside_lungs"], abs=0.02)
    assert sum(shares[k] for k in ("top_fifth", "border", "centre")) == pytest.approx(1.0)


def test_an_empty_map_has_no_shares_and_is_left_out_of_the_means() -> None:
    empty = map_shares(np.zeros((6, 6), np.float32), _chest())
    assert empty["top_fifth"] is None and empty["outside_lungs"] is None
    neck = np.zeros((6, 6), np.float32)
    neck[0, :] = 1.0
    summary = _summarise([empty, map_shares(neck, _chest())])
    assert summary["images"] == 2 and summary["peak_in_top_fifth"] == 1.0


@pytest.mark.parametrize("command", ["heatmap-findings", "operating-point", "fit-ood"])
def test_a_missing_model_folder_is_one_line_and_exit_2(command, tmp_path, capsys) -> None:
    from trainer.cli import main

    assert main([command, "--model", str(tmp_path / "nowhere"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cxr-train: error:") and "nowhere" in err[0]
