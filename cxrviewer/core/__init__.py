"""The bottom layer: the Qt-free imaging and model pipeline every other layer builds on.

Layers: cli | commands | ui | state | teaching | **core**. `core` imports only the standard
library and third-party numerics/imaging/ML packages (numpy, OpenCV, pydicom, ONNX Runtime,
TensorFlow lazily) — never Qt, `cxrviewer.ui`, `state`, `teaching`, the commands or the trainer
(import-linter contracts in pyproject.toml). Results cross threads and processes as frozen
dataclasses (`types`).

* `types`, `errors` — the frozen values (XrayImage, Prediction, CamResult, …) and the one error
  family (`CxrError`, one line for the user);
* `labels` — the label rules shared with the trainer (Kermany names, folder names, what sums
  to pneumonia); `model_call` — the model's call at its card's operating threshold;
* `io/` — reading DICOM and raster files; `imaging` — display windows; `study` — grouping
  files into studies; `pyramid`, `memory`, `lru`, `concurrency`, `decode_pool` — the machinery
  that keeps big images and many files responsive;
* `model/` — model folders, cards, preprocessing (the one path to model input), the engines,
  and `model.batch`, the batched runner over image files that `cxrviewer predict` and
  `cxr-train evaluate-model` share; `ood_gate` — the out-of-distribution gate the engine applies;
* `xai/` — class activation maps, their overlay mechanics, sanity checks and the audit;
* `inference/` — the inference worker process and its client protocol.
"""
