"""The model's call (core.model_call): the card's decision rule, not the arg-max."""
from __future__ import annotations

import pytest

from cxrviewer.core.model_call import COVID_RULE, PNEUMONIA_RULE, TOP_RULE, model_call
from cxrviewer.core.xai.sanity import heatmap_gate

PNEUMONIA = ("NORMAL", "BACTERIAL", "VIRAL")
COVID = ("COVID-19", "NORMAL", "VIRAL")
BORDERLINE = (0.165, 0.37, 0.465)     # person1022_virus…: pneumonia 0.835, VIRAL the top class
PNEUMONIA3_THRESHOLD = 0.8506959676742554


def test_borderline_pneumonia_below_threshold_is_a_normal_call() -> None:
    call = model_call(PNEUMONIA, BORDERLINE, PNEUMONIA3_THRESHOLD)
    assert call.kind == PNEUMONIA_RULE
    assert call.top_label == "VIRAL" and call.label == "NORMAL" and call.differs_from_top
    assert call.score == pytest.approx(0.835) and not call.positive
    assert call.reason == "pneumonia probability 0.83 is below the operating threshold 0.85"
    assert call.headline.startswith("NORMAL (pneumonia probability 0.83 < threshold 0.85")
    assert "BACTERIAL + VIRAL" in call.rule
    # the heat-map gate says the same thing
    gate = heatmap_gate(PNEUMONIA, BORDERLINE, 2, PNEUMONIA3_THRESHOLD)
    assert gate.call == "NORMAL" and not gate.shown_by_default
    assert heatmap_gate(PNEUMONIA, BORDERLINE, 0, PNEUMONIA3_THRESHOLD).shown_by_default


def test_pneumonia_at_threshold_calls_the_more_likely_subtype() -> None:
    call = model_call(PNEUMONIA, (0.1, 0.5, 0.4), 0.9)
    assert call.label == "BACTERIAL" and call.positive and call.label_probability == pytest.approx(0.5)
    # a NORMAL top class can still be a pneumonia call when the sum passes the threshold
    assert model_call(PNEUMONIA, (0.4, 0.35, 0.25), 0.5).label == "BACTERIAL"
    assert model_call(("NORMAL", "PNEUMONIA"), (0.3, 0.7), 0.7).label == "PNEUMONIA"
    assert model_call(("NORMAL", "PNEUMONIA"), (0.31, 0.69), 0.7).label == "NORMAL"
    assert call.reason == "pneumonia probability 0.90 is at or above the operating threshold 0.90"
    assert call.headline == "BACTERIAL (pneumonia probability 0.90 ≥ threshold 0.90)"


def test_the_top_rule_says_the_most_likely_class() -> None:
    from cxrviewer.core.model_call import top_call

    call = top_call(("CLEAR", "OPAQUE"), (0.3, 0.7))
    assert call.kind == TOP_RULE and call.label == "OPAQUE"
    assert call.reason == "OPAQUE is the most likely class (p = 0.70)"
    assert call.headline == "OPAQUE (the most likely class, p = 0.70)"


def test_covid_rule_is_its_own_threshold_on_p_covid() -> None:
    call = model_call(COVID, (0.25, 0.6, 0.15), 0.19)
    assert call.kind == COVID_RULE and call.label == "COVID-19" and call.top_label == "NORMAL"
    low = model_call(COVID, (0.15, 0.3, 0.55), 0.19)
    assert low.label == "VIRAL" and not low.positive and low.score_name == "p(COVID-19)"
    assert "else the more likely of NORMAL, VIRAL" in low.rule


def test_other_models_call_the_top_class() -> None:
    call = model_call(("A", "B"), (0.3, 0.7), 0.9)
    assert call.kind == TOP_RULE and call.label == "B" and not call.differs_from_top
    with pytest.raises(ValueError):
        model_call(("A", "B"), (1.0,), 0.5)
