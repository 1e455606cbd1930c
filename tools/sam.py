"""SAM (Kirillov et al. 2023, "Segment Anything") through transformers: a box in, the object's mask out.

Why SAM: it is the method's mask model, learnt on object shapes; GrabCut's colour models cannot tell
the recorded example's red cup body from the red saucer it stands on. Weights come from
``AMODAL_SAM_MODEL`` (a local model folder as ``save_pretrained`` writes it) or the Hugging Face
cache, biggest model first, read offline: nothing is downloaded. transformers is part of the
``[models]`` extra and is imported only when weights were found, so the base install never loads
it. The ``segment`` backend is ``tools.segment.SamSegmenter``; this module is the model alone. A
model is loaded once per process and device, and reused by every later call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .weights import load_pretrained, locate_model, model_missing, quiet_transformers

ENV = "AMODAL_SAM_MODEL"
REPOS = ("facebook/sam-vit-huge", "facebook/sam-vit-large", "facebook/sam-vit-base")  # best first


def locate() -> tuple[Path | None, str]:
    """The model folder, and where it came from or where it was looked for."""
    return locate_model(ENV, REPOS)


def missing(path: Path | None, where: str) -> str | None:
    """Why SAM cannot run here, in one line that says what to do (None when it can)."""
    return model_missing("SAM", ENV, REPOS, path, where)


@functools.cache
def load(path: str, device: str):
    """(model, processor, seconds the load took), once per process and device."""
    return load_pretrained("SamModel", "SamProcessor", path, device)


def predict(model, processor, image: np.ndarray, box: tuple[int, int, int, int], device: str,
            points: Sequence[tuple[float, float]] = (),
            exclude: Sequence[tuple[float, float]] = ()) -> tuple[np.ndarray, float]:
    """The best of SAM's three masks for ``box`` (pixels, half-open ``x0, y0, x1, y1``: its edges) and
    the clicks ``points`` (on the object) and ``exclude`` (off it), pixel (x, y), as a boolean (H, W)
    array, and SAM's predicted IoU for it."""
    prompt: dict = {"input_boxes": [[[float(v) for v in box]]]}
    clicks = [*points, *exclude]
    if clicks:  # one prompt: the box and all the clicks together
        prompt["input_points"] = [[[[float(x), float(y)] for x, y in clicks]]]
        prompt["input_labels"] = [[[1] * len(points) + [0] * len(exclude)]]
    with quiet_transformers():
        inputs = processor(images=image, return_tensors="pt", **prompt)
    with torch.inference_mode():
        out = model(**{k: v.to(device) for k, v in inputs.items()}, multimask_output=True)
    masks = processor.image_processor.post_process_masks(out.pred_masks.float().cpu(), inputs["original_sizes"],
                                                         inputs["reshaped_input_sizes"])[0][0]  # (3, H, W)
    scores = out.iou_scores[0, 0].float().cpu()
    best = int(scores.argmax())
    return masks[best].numpy().astype(bool), float(scores[best])
