"""Explanations of a model's call, Qt-free: class activation maps (`cam`), their display
mechanics (`overlay`: normalise, upsample, colour maps, contours, blend) and style defaults
(`overlay_style`), sanity checks (`sanity`: randomisation test, lung-heat, heat-map gate) and
the explanation audit (`audit`: deletion/insertion curves, method agreement).

Part of `cxrviewer.core`: imports numpy and the rest of `core` only (TensorFlow lazily).
"""
from __future__ import annotations
