"""cxrviewer: offline chest X-ray viewer with an AI second reader.

For teaching and research only — not a medical device, not for clinical use.
"""
from __future__ import annotations

__version__ = "0.1.0"

NOT_FOR_CLINICAL_USE = "For teaching and research — not for clinical use"
