"""How the heat-map layer chooser names the CAM target layers.

A DenseNet-121 has ~180 layers a CAM can be computed at. A trainee needs the few that mean
something — the end of each dense block, coarse to fine — with the grid each map is drawn
on; the rest stay available below them. Keras's DenseNet names the BN-ReLU that ends dense
block N (before transition N's convolution) "pool{N+1}_relu", and the one after the last
block "relu".
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_BLOCK_END = re.compile(r"^pool(\d+)_relu$")
LAST_BLOCK_END = "relu"


def block_role(name: str) -> str:
    """'end of dense block N' / 'end of the last dense block', or '' for any other layer."""
    if name == LAST_BLOCK_END:
        return "end of the last dense block"
    match = _BLOCK_END.match(name)
    return f"end of dense block {int(match.group(1)) - 1}" if match else ""


def split_layers(layers: Sequence[str], default: str | None) -> tuple[list[str], list[str]]:
    """(main, more): the card's layer and the block ends first (in the given order), then the rest."""
    main = [name for name in layers if name == default or block_role(name)]
    more = [name for name in layers if name not in main]
    return main, more


def layer_label(name: str, grid: Mapping[str, tuple[int, int]], default: str | None = None) -> str:
    """e.g. 'relu — end of the last dense block, 6 × 6 (model card)'."""
    parts = [part for part in (block_role(name), _grid_text(grid.get(name))) if part]
    text = name + (" — " + ", ".join(parts) if parts else "")
    return text + (" (model card)" if name == default else "")


def _grid_text(size: tuple[int, int] | None) -> str:
    return f"{size[0]} × {size[1]}" if size else ""
