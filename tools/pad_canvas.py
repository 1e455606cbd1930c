"""The ``pad_canvas`` tool's image side: grow the residual canvas where an object is cut off by the frame.

Why: an object truncated by the photo's edge can only become a complete (amodal) layer if there is
canvas beyond the edge to complete it on. The new border is outpainted with the same inpainting
backends as ``inpaint``, and the object's mask is re-made on the bigger canvas so later tools can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from tools.inpaint import OUTPAINT_ORDER, Inpainter, choose_inpainter

SIDES = ("left", "top", "right", "bottom")


@dataclass(frozen=True)
class PadResult:
    """The padded image and mask; ``offset`` (left, top) maps old pixel (x, y) to (x + left, y + top)."""

    image: np.ndarray
    mask: np.ndarray
    offset: tuple[int, int]
    size: tuple[int, int]  # (W2, H2)
    note: str | None = None  # which inpainter ``auto`` settled for, if not the best


def default_margin(mask: np.ndarray) -> int:
    """How far the canvas grows when the model gives no margin: as far as ``complete_mask`` may
    continue the object beyond what is seen (``REACH`` x the square root of its area), 8..512 px."""
    from tools.shape_completion import REACH

    return int(min(max(math.ceil(REACH * math.sqrt(float(np.count_nonzero(mask)))), 8), 512))


def pad_sides(touches: Iterable[str], margin: int) -> dict[str, int]:
    """``margin`` pixels on each side the mask touches, 0 on the others (all four keys present)."""
    touches = list(touches)
    unknown = [t for t in touches if t not in SIDES]
    if unknown:
        raise ValueError(f"unknown side(s) {unknown}; sides are {', '.join(SIDES)}")
    if int(margin) < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return {side: int(margin) if side in touches else 0 for side in SIDES}


def pad_and_outpaint(image: np.ndarray, mask: np.ndarray, sides: Mapping[str, int], seed: int = 0,
                     inpainter: type[Inpainter] | Inpainter | None = None) -> PadResult:
    """Grow the canvas by ``sides`` pixels per side and outpaint the new border.

    ``inpainter`` is a backend class (or instance) from ``tools.inpaint.INPAINTERS``; by default the best
    available one. Original pixels keep their exact values at their new position, and the returned mask
    is the old one placed at the offset (the new border is False: nothing is known to be object there).
    """
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f"image must be an HxWx3 uint8 array, got {getattr(image, 'shape', None)}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        raise ValueError(f"unknown side(s) {unknown}; sides are {', '.join(SIDES)}")
    left, top, right, bottom = (int(sides.get(s, 0)) for s in SIDES)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"padding must be >= 0 on every side, got {dict(sides)}")

    height, width = image.shape[:2]
    w2, h2 = width + left + right, height + top + bottom
    new_mask = np.zeros((h2, w2), bool)
    new_mask[top:top + height, left:left + width] = mask
    if w2 == width and h2 == height:
        return PadResult(image.copy(), new_mask, (0, 0), (width, height))

    note = None
    if inpainter is None:
        inpainter, note = choose_inpainter("auto", OUTPAINT_ORDER)
    backend = inpainter() if isinstance(inpainter, type) else inpainter
    # Start from replicated edges rather than black, so even a backend that only partly fills the
    # border cannot leave a black frame.
    padded = cv2.copyMakeBorder(np.ascontiguousarray(image), top, bottom, left, right, cv2.BORDER_REPLICATE)
    border = np.ones((h2, w2), bool)
    border[top:top + height, left:left + width] = False
    filled = backend.inpaint(padded, border, seed=seed)
    filled[top:top + height, left:left + width] = image
    return PadResult(filled, new_mask, (left, top), (w2, h2), note)
