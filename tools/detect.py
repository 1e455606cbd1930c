"""Open-vocabulary detection: the model's keywords in, a box out (the ``segment`` tool's optional
first step, before the mask model).

GroundingDINO (``tools/grounding_dino.py``) is the method's detector. Where it works, the tool
schema makes ``bbox_2d`` optional and the model's keywords go to the detector; the model's box, when
given, says which detection it meant. Where it does not, the model's own ``bbox_2d`` is the box and
the schema makes it required, so the model is never promised a detector this machine lacks.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from .registry import first_available
from .weights import ModelBackend

Box = tuple[int, int, int, int]


class Detector(Protocol):
    """What every entry of ``DETECTORS`` provides; every one is built as ``backend(device=...)``."""

    name: ClassVar[str]

    @classmethod
    def available(cls) -> tuple[bool, str]: ...

    def detect(self, image: np.ndarray, keywords: list[str], hint: Box | None = None) -> tuple[Box | None, str]: ...


def box_iou(a: Box, b: Box) -> float:
    """IoU of two half-open pixel boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pick(boxes: list[Box], scores: list[float], hint: Box | None) -> tuple[Box | None, str]:
    """The detection the model meant: the one that agrees best with its box (IoU, then score), or the
    best scored when it gave none; None when there is none, or none overlaps its box. The text says
    which, for the tool result."""
    if not boxes:
        return None, "found nothing for the keywords"
    if hint is None:
        return boxes[0], f"kept the best of {len(boxes)} detections (score {scores[0]:.2f})"
    overlaps = [box_iou(b, hint) for b in boxes]
    best = max(range(len(boxes)), key=lambda i: (overlaps[i], scores[i]))
    if overlaps[best] == 0:
        return None, f"none of its {len(boxes)} detections overlaps bbox_2d"
    return boxes[best], (f"kept the detection that agrees best with bbox_2d (IoU {overlaps[best]:.2f}, "
                         f"score {scores[best]:.2f}, {len(boxes)} found)")


class GroundingDinoDetector(ModelBackend):
    """GroundingDINO on the keywords (``tools.grounding_dino``), boxes rounded outwards to pixels."""

    name: ClassVar[str] = "groundingdino"
    module: ClassVar[str] = "grounding_dino"

    def detect(self, image: np.ndarray, keywords: list[str], hint: Box | None = None) -> tuple[Box | None, str]:
        from .grounding_dino import predict
        from .segment import outward_boxes

        model, processor = self.loaded()
        found, scores = predict(model, processor, image, keywords, self.device)
        h, w = image.shape[:2]
        return pick(outward_boxes(found, w, h), [float(s) for s in scores], hint)


# Registered backends, best first.
DETECTORS: dict[str, type[Detector]] = {
    "groundingdino": GroundingDinoDetector,
}


def choose_detector() -> tuple[type[Detector] | None, str | None]:
    """The detector that works here (None when none does), and a note naming any passed over."""
    return first_available(DETECTORS)
