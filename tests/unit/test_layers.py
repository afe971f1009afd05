"""Layer chooser naming: which CAM layers come first and how they are labelled."""
from __future__ import annotations

from cxrviewer.core.model.layers import block_role, layer_label, split_layers


def test_block_ends_are_recognised_by_keras_densenet_names() -> None:
    assert block_role("relu") == "end of the last dense block"
    assert block_role("pool2_relu") == "end of dense block 1"
    assert block_role("pool4_relu") == "end of dense block 3"
    assert block_role("pool4_pool") == block_role("conv5_block3_1_relu") == block_role("prelu") == ""


def test_the_cards_layer_is_always_in_the_main_group_even_when_it_is_no_block_end() -> None:
    layers = ["relu", "pool2_pool", "conv2_relu", "pool1_pool", "conv1_relu"]   # the tiny test model
    assert split_layers(layers, "conv2_relu") == (["relu", "conv2_relu"], ["pool2_pool", "pool1_pool", "conv1_relu"])
    assert split_layers(layers, None) == (["relu"], ["pool2_pool", "conv2_relu", "pool1_pool", "conv1_relu"])
    assert split_layers([], "relu") == ([], [])


def test_labels_carry_the_role_the_grid_and_the_card_mark_when_known() -> None:
    grids = {"relu": (6, 6), "conv3_block1_0_relu": (24, 24)}
    assert layer_label("relu", grids, "relu") == "relu — end of the last dense block, 6 × 6 (model card)"
    assert layer_label("conv3_block1_0_relu", grids) == "conv3_block1_0_relu — 24 × 24"
    assert layer_label("pool3_relu", grids) == "pool3_relu — end of dense block 2"
    assert layer_label("mystery", {}) == "mystery"
