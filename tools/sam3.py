"""SAM 3 (Meta, 2025, "Segment Anything with Concepts") through transformers: the object's name and
the model's box in, its mask out, in one model.

Why it is preferred where it runs: it detects from text and masks in one pass, and is newer than the
GroundingDINO + SAM pair. transformers' ``Sam3Model`` and its image processor need torchvision
(``roi_align``, ``batched_nms``), which this project never installs (no torchvision wheel loads beside
the CPU torch we pin); GPU users normally have the one that matches their torch. So SAM 3 is
available only where torchvision imports and works, and says why not otherwise. Weights come from
``AMODAL_SAM3_MODEL`` (a ``save_pretrained`` folder) or the Hugging Face cache, read offline; they
are under Meta's SAM License, not Apache/MIT. The ``segment`` backend is
``tools.segment.Sam3Segmenter``; this module is the model alone, loaded once per process and device.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .weights import load_pretrained, locate_model, model_missing, quiet_transformers

ENV = "AMODAL_SAM3_MODEL"
REPOS = ("facebook/sam3",)
LICENCE = "Meta's SAM License, not Apache/MIT"
THRESHOLD = 0.5  # instance score and mask threshold (transformers' example uses 0.5 for both)


@functools.cache
def torchvision_problem() -> str | None:
    """Why torchvision cannot serve SAM 3 here (None when it can): not installed, or built for another torch."""
    if importlib.util.find_spec("torchvision") is None:
        return ("SAM 3 needs torchvision (transformers' SAM 3 uses its roi_align and nms), which is not installed: "
                "install the torchvision release that matches your torch")
    try:
        import torchvision.ops

        torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    except Exception as exc:  # a wheel for another torch fails at import or at its first operator
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        return f"SAM 3 needs torchvision, which does not work beside torch {torch.__version__} ({line})"
    return None


def locate() -> tuple[Path | None, str]:
    """The model folder, and where it came from or where it was looked for."""
    return locate_model(ENV, REPOS)


def missing(path: Path | None, where: str) -> str | None:
    """Why SAM 3 cannot run here, in one line that says what to do (None when it can)."""
    problems = [model_missing("SAM 3", ENV, REPOS, path, where), torchvision_problem()]
    return "; ".join(p for p in problems if p) or None


@functools.cache
def load(path: str, device: str):
    """(model, processor, seconds the load took), once per process and device."""
    return load_pretrained("Sam3Model", "Sam3Processor", path, device)


def predict(model, processor, image: np.ndarray, text: str, box: tuple[int, int, int, int] | None,
            device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The instances of ``text`` SAM 3 finds, best scored first, with ``box`` (pixels, half-open) as
    a positive box prompt when given: masks (N, H, W) boolean, boxes (N, 4) as pixel ``x0, y0, x1,
    y1`` and scores (N,)."""
    h, w = image.shape[:2]
    prompt = {"input_boxes": [[[float(v) for v in box]]], "input_boxes_labels": [[1]]} if box is not None else {}
    with quiet_transformers():
        inputs = processor(images=image, text=text, return_tensors="pt", **prompt)
    with torch.inference_mode():
        out = model(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()})
    with quiet_transformers():
        found = processor.post_process_instance_segmentation(out, threshold=THRESHOLD, mask_threshold=THRESHOLD,
                                                             target_sizes=[(h, w)])[0]
    scores = found["scores"].float().cpu().numpy()
    order = np.argsort(-scores, kind="stable")
    masks = found["masks"].cpu().numpy().astype(bool).reshape(-1, h, w)
    return masks[order], found["boxes"].float().cpu().numpy().reshape(-1, 4)[order], scores[order]
