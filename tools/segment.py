"""The ``segment`` tool's image side: a box in, a clean boolean mask of the object in that box out.

SAM 3 (``tools/sam3.py``) finds the object from its name and the model's box in one model and comes
first where it runs (its weights and a working torchvision); SAM (``tools/sam.py``) is the method's
mask model, cut from the box a detector or the model gives; GrabCut is the CPU default of
docs/design.md §8 (no download, ships with OpenCV). All sit in ``SEGMENTERS`` under one interface and
share the mask clean-up, so the tool code never needs to know which ran; a ``grounded`` one reads
the keywords itself, so no detector runs before it.

Boxes are pixel boxes ``(x0, y0, x1, y1)``, half-open like numpy slices (``x1``/``y1`` exclusive), so
``mask[y0:y1, x0:x1]`` is the box and ``mask_stats(...)["bbox"]`` can be fed straight back in.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import cv2
import numpy as np

from .mask_cleanup import EDGES, Box, clean_mask, drop_neighbours, shortfall
from .registry import first_available
from .weights import ModelBackend

CONTEXT = 0.5  # GrabCut's background ring around the box, as a share of the box's longer side
CONTEXT_MIN = 12  # px, at least
MIN_FILL = 0.02  # of the box: a GrabCut mask smaller than this is a failure, not a thin object
SHORT = 0.3  # share of the box's side a GrabCut mask may end short of it before the box's core is tried
GROWN = "the mask grew from the box's core taken as the object"  # what the notes say then
POINT_RADIUS = 0.015  # a point prompt's disc of certain object (or not-object), share of the image's longer side

Point = tuple[float, float]  # (x, y) in pixels


@dataclass(frozen=True)
class SegmentResult:
    """A mask plus a note for the model when the backend had to fall back (None when it did not), how
    a grounded backend chose the object (None for the others), and whether the mask is only a guess:
    the ellipse inscribed in the box, because nothing was found there (``guess``), or a mask grown
    from the box's core taken as the object, because nothing was found from the box alone."""

    mask: np.ndarray
    note: str | None = None
    found: str | None = None
    guessed: bool = False

    @staticmethod
    def guess(shape: tuple[int, int], box: Box, note: str, found: str | None = None) -> SegmentResult:
        """The ellipse inscribed in ``box``, for when the backend found nothing there."""
        return SegmentResult(ellipse_mask(shape, box), note, found, guessed=True)


class Segmenter(Protocol):
    """What every entry of ``SEGMENTERS`` provides; every one is built as ``backend(device=...)``."""

    name: ClassVar[str]
    grounded: ClassVar[bool]  # finds the object from the keywords itself; ``box`` may then be None
    takes_points: ClassVar[bool]  # reads ``points`` (on the object) and ``exclude`` (not on it)

    @classmethod
    def available(cls) -> tuple[bool, str]: ...

    def segment(self, image: np.ndarray, box: Box | None, seed: int = 0, keywords: Sequence[str] = (),
                points: Sequence[Point] = (), exclude: Sequence[Point] = ()) -> SegmentResult: ...


def box_from_relative(bbox_2d: Sequence[float], width: int, height: int) -> Box:
    """Pixel box from Qwen3-VL's grounding box ``[x1, y1, x2, y2]`` in relative 0..1000 units.

    The model's boxes may be swapped or spill past the frame, so they are ordered and clipped rather
    than rejected; the result always spans at least one pixel. Only malformed input raises, with a
    message short enough to hand back to the model.
    """
    values = list(bbox_2d) if isinstance(bbox_2d, Sequence | np.ndarray) else None
    if (
        values is None
        or len(values) != 4
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        or not all(math.isfinite(float(v)) for v in values)
    ):
        raise ValueError(f"bbox_2d must be 4 finite numbers [x1, y1, x2, y2] in 0..1000, got {bbox_2d!r}")
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    rx0, ry0, rx1, ry1 = (float(v) for v in values)
    x0, x1 = _pixel_span(min(rx0, rx1), max(rx0, rx1), width)
    y0, y1 = _pixel_span(min(ry0, ry1), max(ry0, ry1), height)
    return x0, y0, x1, y1


def _pixel_span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Half-open pixel span covering relative ``lo..hi``, clipped to ``[0, size]``, at least 1 px."""
    a = min(max(math.floor(lo / 1000 * size), 0), size - 1)
    b = min(max(math.ceil(hi / 1000 * size), a + 1), size)
    return a, b


def clip_box(box: Sequence[int], width: int, height: int) -> Box:
    """Ordered, in-frame, at-least-1-px integer box; the tools accept slightly sloppy pixel boxes."""
    if len(box) != 4:
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    x0 = min(max(x0, 0), width - 1)
    y0 = min(max(y0, 0), height - 1)
    return x0, y0, min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)


def outward_boxes(boxes: Iterable[Sequence[float]], width: int, height: int) -> list[Box]:
    """A model's float ``x0, y0, x1, y1`` boxes as pixel boxes rounded outwards (so they hold all of
    what was found), in frame."""
    return [clip_box((math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)), width, height)
            for x0, y0, x1, y1 in boxes]


def ellipse_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Ellipse inscribed in ``box``; the fallback shape when a segmenter finds nothing.

    Pixel centres are tested against the ellipse, so the pixel at the box centre is always inside and
    the mask is never empty, even for a 1x1 box.
    """
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = (x1 - x0) / 2, (y1 - y0) / 2
    ys = (np.arange(shape[0]) + 0.5 - cy) / ry
    xs = (np.arange(shape[1]) + 0.5 - cx) / rx
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def point_discs(shape: tuple[int, int], points: Sequence[Point]) -> np.ndarray:
    """Boolean (H, W): a small disc round each point prompt (``POINT_RADIUS``), the pixels it vouches
    for; a model's point lands a pixel or two off, and a lone pixel barely moves a colour model."""
    out = np.zeros(shape, np.uint8)
    radius = max(1, round(POINT_RADIUS * max(shape)))
    for x, y in points:
        cv2.circle(out, (min(int(x), shape[1] - 1), min(int(y), shape[0] - 1)), radius, 1, -1)  # its pixel
    return out.astype(bool)


def _grown(box: Box, seeds: np.ndarray, width: int, height: int) -> Box:
    """``box`` grown to take in the object's point seeds: a point outside the box says the object
    goes on there."""
    if not seeds.any():
        return box
    ys, xs = np.nonzero(seeds)
    return clip_box((min(box[0], int(xs.min())), min(box[1], int(ys.min())),
                     max(box[2], int(xs.max()) + 1), max(box[3], int(ys.max()) + 1)), width, height)


def _check_image(image: np.ndarray) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f"image must be an HxWx3 uint8 array, got {getattr(image, 'shape', None)}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("image is empty")


class GrabCutSegmenter:
    """OpenCV GrabCut initialised with the box, then cleaned into one plausible object mask."""

    name: ClassVar[str] = "grabcut"
    grounded: ClassVar[bool] = False
    takes_points: ClassVar[bool] = True
    min_side: ClassVar[int] = 4  # below this GrabCut has too few foreground samples for its 5 GMM components

    def __init__(self, iterations: int = 5, device: str = "auto") -> None:  # CPU only: ``device`` is ignored
        self.iterations = iterations

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if hasattr(cv2, "grabCut"):
            return True, f"cv2.grabCut from OpenCV {cv2.__version__}"
        return False, "cv2 has no grabCut: pip install opencv-python-headless"

    def _foreground(self, crop: np.ndarray, rect: Box, seed: int, sure: np.ndarray, never: np.ndarray,
                    seeded: bool = False) -> np.ndarray:
        """GrabCut's object pixels in ``crop``, from ``rect`` (crop coordinates): everything outside it
        background, inside it unknown; ``seeded``: the ellipse inscribed in ``rect``, shrunk by a
        quarter of its shorter side, is the object for certain; ``sure`` / ``never``: pixels that are
        the object / are not, for certain (point prompts)."""
        labels = np.zeros(crop.shape[:2], np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        x0, y0, x1, y1 = rect
        mode = cv2.GC_INIT_WITH_RECT
        if seeded or sure.any() or never.any():
            labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
            mode = cv2.GC_INIT_WITH_MASK
        if seeded:
            core = cv2.erode(ellipse_mask(crop.shape[:2], rect).astype(np.uint8), np.ones((3, 3), np.uint8),
                             iterations=max(1, min(x1 - x0, y1 - y0) // 4))
            labels[core > 0] = cv2.GC_FGD
        labels[sure] = cv2.GC_FGD
        labels[never] = cv2.GC_BGD
        cv2.setRNGSeed(int(seed))
        # Channel order does not matter to GrabCut's colour GMMs, so RGB goes in as is.
        cv2.grabCut(crop, labels, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, self.iterations, mode)
        return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)

    def segment(self, image: np.ndarray, box: Sequence[int], seed: int = 0, keywords: Sequence[str] = (),
                points: Sequence[Point] = (), exclude: Sequence[Point] = ()) -> SegmentResult:
        """Boolean (H, W) mask of the object in ``box`` (pixel, half-open); never empty; ``keywords``
        are not read. ``points`` are on the object (the box grows to take them in, and the mask keeps
        them), ``exclude`` on what is not (the mask leaves them out): a colour model alone cannot tell
        a red cup's body from the red saucer it stands on, a point on each can.

        ``seed`` seeds OpenCV's RNG (GrabCut's k-means initialisation) so equal inputs give equal masks.
        """
        _check_image(image)
        height, width = image.shape[:2]
        sure, never = point_discs((height, width), points), point_discs((height, width), exclude)
        sure &= ~never
        box = _grown(clip_box(box, width, height), sure, width, height)
        x0, y0, x1, y1 = box
        if min(x1 - x0, y1 - y0) < self.min_side:
            note = f"box {list(box)} is under {self.min_side} px on a side; used the ellipse inscribed in it"
            return SegmentResult.guess((height, width), box, note)

        note = None
        rect = box
        if x0 == 0 and y0 == 0 and x1 == width and y1 == height:
            # GrabCut learns the background model from outside the rectangle, so it needs some outside.
            rect = (2, 2, width - 2, height - 2)
            note = "box covers the whole image; shrank it by 2 px so GrabCut has some background"
            if min(rect[2] - rect[0], rect[3] - rect[1]) < self.min_side:
                return SegmentResult.guess((height, width), box, "image too small for GrabCut; used an ellipse")

        # The background model is learnt from a ring around the box, not the whole photo: what
        # surrounds the object is what it must be told apart from.
        ring = max(CONTEXT_MIN, round(CONTEXT * max(rect[2] - rect[0], rect[3] - rect[1])))
        cx0, cy0 = max(rect[0] - ring, 0), max(rect[1] - ring, 0)
        cx1, cy1 = min(rect[2] + ring, width), min(rect[3] + ring, height)
        crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
        inner = (rect[0] - cx0, rect[1] - cy0, rect[2] - cx0, rect[3] - cy0)
        prompts = sure[cy0:cy1, cx0:cx1], never[cy0:cy1, cx0:cx1]
        fg = np.zeros((height, width), bool)
        least = MIN_FILL * (x1 - x0) * (y1 - y0)  # a speck under this: the box's colours all read as background
        try:
            fg[cy0:cy1, cx0:cx1] = self._foreground(crop, inner, seed, *prompts)
            seeded = fg.sum() < least
            if seeded:
                # every colour of the box read as background (the ring around it holds them too, e.g. where
                # an earlier layer's hole was filled with this object's continuation): the box's core is
                # taken for the object, so its colours get a model of their own, and GrabCut settles the rest
                fg[cy0:cy1, cx0:cx1] = self._foreground(crop, inner, seed, *prompts, seeded=True)
        except cv2.error as exc:  # e.g. fewer background pixels than GMM components
            reason = str(exc).strip().splitlines()[-1][:120]
            return SegmentResult.guess((height, width), box, f"GrabCut failed ({reason}); used an ellipse")
        if fg.sum() < least:
            kept = f"only {int(fg.sum())} px" if fg.any() else "no foreground"
            return SegmentResult.guess((height, width), box,
                                       f"GrabCut found {kept} in the box; used the ellipse inscribed in it")
        mask = drop_neighbours(image, clean_mask(fg, box, sure), box, seed, sure) & ~never
        if seeded:
            grown = f"GrabCut found nothing from the box alone; {GROWN}"
            return SegmentResult(mask, "; ".join(filter(None, [note, grown])), guessed=True)
        side, short = shortfall(mask, box)
        if short > SHORT and not (points or exclude):
            # the box is tight, so the object reaches each side; a mask far short of one kept only what
            # stands out from the ring (a photo-textured object on a photo): grown from the box's core,
            # it is kept if it then reaches every side (not when a side was drawn round a lone speck)
            try:
                fg[cy0:cy1, cx0:cx1] = self._foreground(crop, inner, seed, *prompts, seeded=True)
            except cv2.error:  # the first mask stands
                return SegmentResult(mask, note)
            cored = drop_neighbours(image, clean_mask(fg, box, sure), box, seed, sure)
            if cored.sum() >= least and shortfall(cored, box)[1] <= SHORT:
                grown = f"GrabCut's mask ended {short:.0%} of the box short of its {side} side; {GROWN}"
                return SegmentResult(cored, "; ".join(filter(None, [note, grown])))
        return SegmentResult(mask, note)


class SamSegmenter(ModelBackend):
    """SAM on the box (``tools.sam``): the best of its three masks, then the shared clean-up."""

    name: ClassVar[str] = "sam"
    module: ClassVar[str] = "sam"
    grounded: ClassVar[bool] = False
    takes_points: ClassVar[bool] = True

    def segment(self, image: np.ndarray, box: Sequence[int], seed: int = 0, keywords: Sequence[str] = (),
                points: Sequence[Point] = (), exclude: Sequence[Point] = ()) -> SegmentResult:
        """Boolean (H, W) mask of the object in ``box`` (pixel, half-open); never empty. ``points`` and
        ``exclude`` go to SAM as its positive and negative clicks beside the box. SAM is deterministic,
        so ``seed`` is unused; ``keywords`` are not read."""
        from .sam import predict

        _check_image(image)
        height, width = image.shape[:2]
        box = clip_box(box, width, height)
        model, processor = self.loaded()
        mask, _ = predict(model, processor, image, box, self.device, points, exclude)
        if not mask.any():
            return SegmentResult.guess((height, width), box,
                                       "SAM found no object in the box; used the ellipse inscribed in it")
        return SegmentResult(clean_mask(mask, box, point_discs((height, width), points)))


class Sam3Segmenter(ModelBackend):
    """SAM 3 on the first keyword and the model's box (``tools.sam3``): of the instances it finds, the
    one the box means (``tools.detect.pick``), then the shared clean-up."""

    name: ClassVar[str] = "sam3"
    module: ClassVar[str] = "sam3"
    grounded: ClassVar[bool] = True
    takes_points: ClassVar[bool] = False  # its concept model takes text and boxes, no clicks

    def segment(self, image: np.ndarray, box: Sequence[int] | None, seed: int = 0, keywords: Sequence[str] = (),
                points: Sequence[Point] = (), exclude: Sequence[Point] = ()) -> SegmentResult:
        """Boolean (H, W) mask of the object ``keywords[0]`` names, in or near ``box`` (pixel,
        half-open, optional when there are keywords); never empty. Deterministic: ``seed`` is unused;
        point prompts are not read (``takes_points``: the tool does not offer them with SAM 3)."""
        from .detect import pick
        from .sam3 import predict

        _check_image(image)
        height, width = image.shape[:2]
        box = clip_box(box, width, height) if box is not None else None
        words = [k.strip() for k in keywords if k.strip()]
        if not words and box is None:
            raise ValueError("sam3 needs keywords or bbox_2d")
        text = words[0].lower() if words else "object"
        model, processor = self.loaded()
        masks, boxes, scores = predict(model, processor, image, text, box, self.device)
        pixel_boxes = outward_boxes(boxes, width, height)
        chosen, how = pick(pixel_boxes, [float(s) for s in scores], box)
        found = f"sam3 on {text!r}: {how}"
        if chosen is None:
            if box is None:
                raise ValueError(f"{found}: call segment with bbox_2d, or other keywords")
            return SegmentResult.guess((height, width), box, f"{found}; used the ellipse inscribed in your box", found)
        mask = masks[pixel_boxes.index(chosen)]
        if not mask.any():
            return SegmentResult.guess((height, width), chosen,
                                       f"{found}, but its mask is empty; used the ellipse inscribed in its box", found)
        return SegmentResult(clean_mask(mask, chosen), None, found)


# Registered backends, best first: a run uses the first that works here.
SEGMENTERS: dict[str, type[Segmenter]] = {
    "sam3": Sam3Segmenter,
    "sam": SamSegmenter,
    "grabcut": GrabCutSegmenter,
}


def choose_segmenter(name: str = "auto") -> tuple[type[Segmenter], str | None]:
    """The backend ``name`` asks for (``auto``: the first that works here), and a note for the model
    and the user when a better one was passed over (None when the best ran). A named backend that is
    missing is a ValueError with one line that says what to do."""
    key = str(name).strip().lower()
    if key == "auto":
        backend, note = first_available(SEGMENTERS)
        if backend is None:
            raise ValueError(f"no segmentation backend is available: {note}")
        return backend, note
    if key in SEGMENTERS:
        ok, why = SEGMENTERS[key].available()
        if not ok:
            raise ValueError(f"segmenter {key} is not available: {why}")
        return SEGMENTERS[key], None
    raise ValueError(f"unknown segmenter {name!r}; valid: {', '.join(['auto', *SEGMENTERS])}")


def mask_stats(mask: np.ndarray) -> dict:
    """Compact JSON-able facts about a mask for the model: how big, where, which frame edges it touches.

    ``bbox`` is half-open ``[x0, y0, x1, y1]`` in pixels (None for an empty mask); ``touches`` tells the
    model the object may be cut off by the frame, which is what ``pad_canvas`` is for.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bbox = None if rows.size == 0 else [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
    touched = (mask[:, 0].any(), mask[0, :].any(), mask[:, -1].any(), mask[-1, :].any())
    return {
        "area_fraction": round(float(mask.mean()), 4),
        "bbox": bbox,
        "touches": [edge for edge, hit in zip(EDGES, touched, strict=True) if hit],
    }


def overlay(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 255),
            dim: float = 0.35) -> np.ndarray:
    """Preview for the model: the image dimmed outside the mask and a 2-px outline just inside its edge.

    Magenta by default because it is rare in photos, so the outline stays visible on most objects.
    """
    _check_image(image)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    out = np.where(mask[..., None], image, np.round(image * dim).astype(np.uint8))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    out[mask & ~inner] = color
    return out
