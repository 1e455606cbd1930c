"""GroundingDINO (Liu et al. 2023, "Grounding DINO") through transformers: the model's keywords in,
scored boxes out; the first half of the method's segment step (the box then goes to SAM).

Why a detector when the VLM already gives a box: Qwen3-VL's boxes are loose and sometimes off by an
object's width, while the detector's box hugs what the keywords name; the VLM's box says which of
the detections it meant. Weights come from ``AMODAL_GROUNDING_DINO_MODEL`` (a ``save_pretrained``
folder) or the Hugging Face cache, read offline. The ``segment`` tool's detector is
``tools.detect.GroundingDinoDetector``; this module is the model alone, loaded once per process
and device.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .weights import load_pretrained, locate_model, model_missing, quiet_transformers

ENV = "AMODAL_GROUNDING_DINO_MODEL"
REPOS = ("IDEA-Research/grounding-dino-base", "IDEA-Research/grounding-dino-tiny")  # best first
BOX_THRESHOLD = 0.35  # GroundingDINO's own defaults (its demo and the paper's pipeline)
TEXT_THRESHOLD = 0.25


def locate() -> tuple[Path | None, str]:
    """The model folder, and where it came from or where it was looked for."""
    return locate_model(ENV, REPOS)


def missing(path: Path | None, where: str) -> str | None:
    """Why GroundingDINO cannot run here, in one line that says what to do (None when it can)."""
    return model_missing("GroundingDINO", ENV, REPOS, path, where)


def prompt(keywords: list[str]) -> str:
    """GroundingDINO's text prompt: lower-case phrases, each ended by a full stop."""
    return " ".join(f"{k.strip().lower().rstrip('.')}." for k in keywords if k.strip())


@functools.cache
def load(path: str, device: str):
    """(model, processor, seconds the load took), once per process and device."""
    return load_pretrained("GroundingDinoForObjectDetection", "GroundingDinoProcessor", path, device)


def predict(model, processor, image: np.ndarray, keywords: list[str], device: str,
            box_threshold: float = BOX_THRESHOLD, text_threshold: float = TEXT_THRESHOLD,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as pixel ``x0, y0, x1, y1`` on ``image`` and their scores (N,), best first."""
    h, w = image.shape[:2]
    with quiet_transformers():
        inputs = processor(images=image, text=prompt(keywords), return_tensors="pt")
    with torch.inference_mode():
        out = model(**{k: v.to(device) for k, v in inputs.items()})
    with quiet_transformers():
        found = processor.post_process_grounded_object_detection(
            out, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold, target_sizes=[(h, w)])[0]
    scores = found["scores"].float().cpu().numpy()
    order = np.argsort(-scores, kind="stable")
    return found["boxes"].float().cpu().numpy()[order], scores[order]
