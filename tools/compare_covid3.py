"""covid3 models side by side on validation (a covid3 split.csv) and on adult_mixed (which no bundled covid3
trained on): `python tools/compare_covid3.py SPLIT.csv ADULT_MIXED_MANIFEST.csv NAME=MODEL.keras ...`.
Wrote the table of resources/models/covid3/evaluation/v3_attempt.md.
Each model at its own validation-fitted temperature and Youden threshold on p(COVID-19).
Pre-registered: ship the candidate only if adult_mixed COVID-19 recall rises, the share of adult
normals called COVID-19 does not rise, viral recall on adult viral does not fall, and validation
accuracy is within 0.02 of v1's."""
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sklearn.metrics import roc_auc_score

from cxrviewer.core.model.architecture import load_keras_model
from trainer import metrics as m
from trainer.data import read_manifest, read_split
from trainer.dataset import decode_samples
from trainer.metrics import youden_threshold
from trainer.train import predict_images

LABELS = ["COVID-19", "NORMAL", "VIRAL"]
SPLIT, MANIFEST = Path(sys.argv[1]), Path(sys.argv[2])
MODELS = dict(arg.split("=", 1) for arg in sys.argv[3:])
split = read_split(SPLIT)
val = [s for s in split if s.split == "val"]
test = [s for s in split if s.split == "test"]
xv, yv = decode_samples(val, 192), np.array([LABELS.index(s.label) for s in val])
xt, yt = decode_samples(test, 192), np.array([LABELS.index(s.label) for s in test])
with open(MANIFEST, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
am = read_manifest(MANIFEST)
xa = decode_samples(am, 192)
label = np.array([r["label"] for r in rows])
sub = np.array([r["subtype"] for r in rows])
viral = (label == "PNEUMONIA") & np.char.startswith(sub.astype(str), "viral")
other_pna = (label == "PNEUMONIA") & ~viral
out = {}
for name, path in MODELS.items():
    model = load_keras_model(path)
    pv = predict_images(model, xv)
    T = m.fit_temperature(pv, yv)
    pv = m.apply_temperature(pv, T)
    thr = youden_threshold((yv == 0).astype(int), pv[:, 0])
    pt = m.apply_temperature(predict_images(model, xt), T)
    pa = m.apply_temperature(predict_images(model, xa), T)
    covid_called = pa[:, 0] >= thr
    argmax = pa.argmax(1)
    row = {"threshold": round(float(thr), 3), "val_accuracy": round(float((pv.argmax(1) == yv).mean()), 3),
           "val_covid_auc": round(float(roc_auc_score(yv == 0, pv[:, 0])), 4),
           "test_accuracy": round(float((pt.argmax(1) == yt).mean()), 3),
           "test_covid_auc": round(float(roc_auc_score(yt == 0, pt[:, 0])), 4),
           "adult_mixed_covid_recall": round(float(covid_called[label == "COVID-19"].mean()), 3),
           "adult_mixed_normals_called_covid": round(float(covid_called[label == "NORMAL"].mean()), 3),
           "adult_mixed_viral_called_viral": round(float(((~covid_called) & (argmax == 2))[viral].mean()), 3),
           "adult_mixed_viral_called_covid": round(float(covid_called[viral].mean()), 3),
           "adult_mixed_other_pneumonia_called_covid": round(float(covid_called[other_pna].mean()), 3),
           "adult_mixed_covid_auc_vs_rest": round(float(roc_auc_score(label == "COVID-19", pa[:, 0])), 4),
           "n": {"covid": int((label == "COVID-19").sum()), "normal": int((label == "NORMAL").sum()),
                 "viral": int(viral.sum()), "other_pneumonia": int(other_pna.sum())}}
    out[name] = row
    print(name, json.dumps(row), flush=True)
print(json.dumps(out, indent=1))
