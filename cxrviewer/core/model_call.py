"""The model's call: one answer to "what does the model say?", used everywhere it is said.

The arg-max class is not the model's decision. Each model card has an operating threshold,
fitted on validation, for ONE score; the call is what that score decides at that threshold:

* pneumonia models (NORMAL + pneumonia subtypes, e.g. pneumonia3): the pneumonia probability
  (the sum of the subtypes) at or above the threshold → the more likely subtype; below it →
  NORMAL. So p(VIRAL) = 0.47, p(BACTERIAL) = 0.37, p(NORMAL) = 0.17 at threshold 0.85 is a
  NORMAL call (pneumonia probability 0.84 < 0.85), although VIRAL is the top class.
* COVID-19 models (covid3): p(COVID-19) at or above the threshold → COVID-19 (the card's
  "covid_vs_rest" operating point, chosen for sensitivity); below it → the more likely of the
  other classes.
* any other model: the top class (its threshold only applies to the top probability).

The AI panel's headline, the heat-map gate, read-first agreement, My Reads, exports,
`predict` and the trainer's evaluation all use `model_call`, so they cannot disagree.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.core.types import Prediction

PNEUMONIA_RULE = "pneumonia"
COVID_RULE = "covid"
TOP_RULE = "top"


@dataclass(frozen=True)
class ModelCall:
    """The class the model calls for one image, and the rule and numbers that decided it."""

    label: str                    # the called class, e.g. "NORMAL"
    kind: str                     # PNEUMONIA_RULE, COVID_RULE or TOP_RULE
    score_name: str               # "pneumonia probability", "p(COVID-19)", "p(VIRAL)"
    score: float                  # the score the threshold applies to
    threshold: float              # the card's operating threshold
    rule: str                     # the decision rule in one line (for JSON and tooltips)
    top_label: str                # the arg-max class (may differ from `label`)
    label_probability: float      # p(label)

    @property
    def positive(self) -> bool:
        """True when the score is at or above the operating threshold."""
        return self.score >= self.threshold

    @property
    def differs_from_top(self) -> bool:
        return self.label != self.top_label

    @property
    def reason(self) -> str:
        """Why this is the call, e.g. "pneumonia probability 0.84 is below the operating threshold 0.85"."""
        return self._wording()[0]

    @property
    def headline(self) -> str:
        """The call with its reason, e.g. "NORMAL (pneumonia probability 0.84 < threshold 0.85)"."""
        return self._wording()[1]

    def _wording(self) -> tuple[str, str]:
        """(reason, headline): the long and the short way of saying why this is the call."""
        if self.kind == TOP_RULE:
            p = f"p = {self.score:.2f}"
            return f"{self.label} is the most likely class ({p})", f"{self.label} (the most likely class, {p})"
        side, sign = ("at or above", "≥") if self.positive else ("below", "<")
        score = f"{self.score_name} {self.score:.2f}"
        return (f"{score} is {side} the operating threshold {self.threshold:.2f}",
                f"{self.label} ({score} {sign} threshold {self.threshold:.2f})")

    def as_json(self) -> dict[str, object]:
        return {"label": self.label, "score_name": self.score_name, "score": round(self.score, 6),
                "threshold": round(self.threshold, 6), "rule": self.rule}


def _best(labels: list[str], p: list[float], candidates: Sequence[str]) -> str:
    return max(candidates, key=lambda label: p[labels.index(label)])


def model_call(labels: Sequence[str], probabilities: Sequence[float], threshold: float) -> ModelCall:
    """The model's call at its operating threshold (see the module docstring for the rules)."""
    from cxrviewer.core.labels import pneumonia_labels

    labels = [str(label) for label in labels]
    p = [float(value) for value in probabilities]
    if not labels or len(labels) != len(p):
        raise ValueError(f"{len(labels)} labels but {len(p)} probabilities")
    threshold = float(threshold)
    top = _best(labels, p, labels)
    others = list(pneumonia_labels(labels))
    if others:
        score = sum(p[labels.index(label)] for label in others)
        subtype = _best(labels, p, others)
        label = subtype if score >= threshold else "NORMAL"
        summed = " + ".join(others)
        rule = (f"pneumonia probability ({summed}) ≥ {threshold:.4g} → the more likely of "
                f"{', '.join(others)}; else NORMAL") if len(others) > 1 else \
            f"p({others[0]}) ≥ {threshold:.4g} → {others[0]}; else NORMAL"
        return ModelCall(label, PNEUMONIA_RULE, "pneumonia probability", score, threshold, rule, top,
                         p[labels.index(label)])
    if "COVID-19" in labels and len(labels) > 1:
        score = p[labels.index("COVID-19")]
        rest = [label for label in labels if label != "COVID-19"]
        label = "COVID-19" if score >= threshold else _best(labels, p, rest)
        rule = f"p(COVID-19) ≥ {threshold:.4g} → COVID-19; else the more likely of {', '.join(rest)}"
        return ModelCall(label, COVID_RULE, "p(COVID-19)", score, threshold, rule, top, p[labels.index(label)])
    score = p[labels.index(top)]
    return ModelCall(top, TOP_RULE, f"p({top})", score, threshold, "the most likely class", top, score)


def top_call(labels: Sequence[str], probabilities: Sequence[float]) -> ModelCall:
    """The arg-max class as a call (no operating threshold known, e.g. a read stored before it was)."""
    labels = [str(label) for label in labels]
    p = [float(value) for value in probabilities]
    top = _best(labels, p, labels)
    score = p[labels.index(top)]
    return ModelCall(top, TOP_RULE, f"p({top})", score, 0.0, "the most likely class", top, score)


def call_for(prediction: Prediction, card: ModelCard | None) -> ModelCall:
    """The call for a prediction under its model card (threshold 0.5 without a card)."""
    threshold = card.operating_threshold if card is not None else 0.5
    return model_call(prediction.labels, prediction.probabilities, threshold)
