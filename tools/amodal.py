"""Cutting one object out of the residual as a complete, clean layer (the image side of ``inpaint``).

Two things the peel knows that a plain cut-out ignores:

* **Where the object may be hidden.** Every object peeled before this one was in front of it, and
  the pixels those layers took are known exactly; so is the canvas ``pad_canvas`` added beyond the
  photo's frame. The object can only continue there (``complete_mask``), and its hidden pixels are
  filled from its own visible appearance (``fill_hidden``), never from whatever an inpainter put
  into the earlier hole.
* **What is behind its edge.** Once the hole is filled, the residual is an estimate of what lies
  behind the object, so along the object's rim the photo is a known mix of the two. Alpha and
  colour there are solved from that mix (``matte_rim``), so moving or recolouring the layer carries
  no ring of the table with it, and the background fill takes the whole transition zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .inpaint import Inpainter, dilate, erode
from .shape_completion import complete_mask

RIM = 2  # px of transition zone on each side of the mask's edge
MIN_SOURCE = 30  # visible interior pixels below which the hidden part is given their mean colour
OUTLIER = 5.0  # median absolute deviations off the colour trend beyond which a seen pixel is not copied into hiding


@dataclass(frozen=True)
class Cut:
    """One object's layer on the residual's canvas, and the residual with it removed."""

    layer: np.ndarray  # (H, W, 4) uint8, straight RGBA
    residual: np.ndarray  # (H, W, 3) uint8, the hole filled
    amodal: np.ndarray  # (H, W) bool: the object's full extent as far as this canvas shows it
    hidden: np.ndarray  # (H, W) bool: the part of it completed behind earlier layers or the frame


def _trend(image: np.ndarray, source: np.ndarray) -> np.ndarray:
    """A smooth (quadratic in x, y) fit of the object's colour on ``source``, over the whole canvas,
    clamped to the range seen: shading and gradients continue into the hidden part."""
    ys, xs = np.nonzero(source)
    h, w = source.shape
    scale = max(h, w)

    def design(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        y, x = y / scale, x / scale
        return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1)

    a = design(ys.astype(np.float64), xs.astype(np.float64))
    vals = image[ys, xs].astype(np.float64)
    coef = np.linalg.solve(a.T @ a + 1e-4 * len(ys) * np.eye(6), a.T @ vals)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = design(gy, gx) @ coef
    return np.clip(out, vals.min(0) - 8, vals.max(0) + 8)


def fill_hidden(image: np.ndarray, visible: np.ndarray, hidden: np.ndarray, inpainter: Inpainter,
                seed: int = 0) -> np.ndarray:
    """``image`` with ``hidden`` painted from the object's own visible interior: its smooth colour
    trend continued, plus its texture copied by the inpainter from the object alone (the inpainter
    sees a crop in which everything but the object's interior is unknown)."""
    out = image.copy()
    if not hidden.any():
        return out
    source = erode(visible, 2)
    if source.sum() < MIN_SOURCE:
        source = visible
    if source.sum() < MIN_SOURCE:
        out[hidden] = image[visible].mean(0).round().astype(np.uint8) if visible.any() else out[hidden]
        return out
    trend = _trend(image, source)
    # a shadow cast by what stood in front, or a highlight, departs far from the object's own colour
    # trend; copied into the hidden part it traces the occluder, so texture and trend come from the rest
    off = np.linalg.norm(image.astype(np.float64) - trend, axis=-1)
    typical = float(np.median(off[source]))
    spread = max(float(np.median(np.abs(off[source] - typical))), 1.0)
    own = source & (off <= typical + OUTLIER * spread)
    if own.sum() >= MIN_SOURCE and own.sum() < source.sum():
        source, trend = own, _trend(image, own)
    detail = np.clip(image.astype(np.float64) - trend + 128, 0, 255).astype(np.uint8)
    region = dilate(visible | hidden, 2)
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.ascontiguousarray(detail[y0:y1, x0:x1])
    filled = inpainter.inpaint(crop, ~source[y0:y1, x0:x1], seed=seed).astype(np.float64) - 128
    painted = np.clip(trend[y0:y1, x0:x1] + filled, 0, 255).round().astype(np.uint8)
    h = hidden[y0:y1, x0:x1]
    out[y0:y1, x0:x1][h] = painted[h]
    return out


def _nearest(values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Every pixel's value taken from the nearest ``source`` pixel."""
    _, labels = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(source)
    index = np.zeros(labels.max() + 1, np.int64)
    index[labels[ys, xs]] = np.ravel_multi_index((ys, xs), source.shape)
    return values.reshape(-1, values.shape[-1])[index[labels]]


def matte_rim(image: np.ndarray, behind: np.ndarray, colours: np.ndarray, amodal: np.ndarray,
              occluded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alpha and colour of the layer in its rim (``RIM`` px each side of the amodal edge), and the
    fill behind it made to agree with the photo (``occluded``: where front layers hide it entirely).

    Seen rim pixels are ``alpha * object + (1 - alpha) * behind``, with the object's colour taken
    from its nearest interior pixel and ``behind`` from the filled residual: alpha is the projection
    of the photo's colour on that line, trusted as far as the two colours differ, and leaning on the
    shape's own anti-aliased edge elsewhere (and wherever the rim is hidden). Then whichever side
    dominates a pixel gives back the photo exactly: the layer's colour where alpha is at least a half,
    the fill's where it is less, so layer over fill is the photo and each keeps the other's colour out.
    """
    solid = erode(amodal, RIM)
    rim = dilate(amodal, RIM) & ~solid
    shape = cv2.GaussianBlur(amodal.astype(np.float64), (0, 0), 0.6)
    alpha = np.where(solid, 1.0, 0.0)
    rgb, bg = colours.astype(np.float64), behind.astype(np.float64)
    if not rim.any():
        return alpha, rgb, behind
    inner = solid if solid.any() else amodal
    fg = _nearest(rgb, inner).reshape(rgb.shape)
    img = image.astype(np.float64)
    diff = fg - bg
    norm2 = (diff ** 2).sum(-1)
    solved = np.clip(((img - bg) * diff).sum(-1) / np.maximum(norm2, 1e-6), 0, 1)
    shows = ~occluded
    trust = np.clip((np.sqrt(norm2) - 20) / 60, 0, 1) * ~dilate(occluded, 1)
    alpha[rim] = (trust * solved + (1 - trust) * shape)[rim]
    rgb[rim] = fg[rim]
    a = alpha[..., None]
    exact_fg = rim & shows & (alpha >= 0.5)
    exact_bg = rim & shows & (alpha < 0.5)
    rgb[exact_fg] = np.clip((img - (1 - a) * bg) / np.maximum(a, 1e-6), 0, 255)[exact_fg]
    bg[exact_bg] = np.clip((img - a * fg) / np.maximum(1 - a, 1e-6), 0, 255)[exact_bg]
    return alpha, rgb, bg.round().astype(np.uint8)


def cut(residual: np.ndarray, visible: np.ndarray, occluded: np.ndarray, inpainter: Inpainter,
        seed: int = 0, prompt: str = "", texture: Inpainter | None = None) -> Cut:
    """The object under ``visible`` as a complete, matted layer, and the residual with it removed.

    ``occluded`` says how much each canvas pixel is known to be hidden (0..1; or bool, hidden or
    not): the cover of earlier layers, and the canvas beyond the photo's frame. The object may
    continue wherever it is above 0, and its outline is read up to where it reaches a half (a
    segmenter takes a front layer's faint rim for what shows through it); its own appearance is
    painted only where it is 1, since under a front layer's soft rim the residual still shows, and
    keeping it there is what makes the stack composite back to the photo. ``inpainter`` fills what
    is behind the object (as ``prompt`` says, where it reads one); ``texture`` (default:
    ``inpainter``) continues the object's own texture into its hidden part, which a prompt about the
    background must not steer."""
    visible = np.asarray(visible, bool)
    cover = np.asarray(occluded, np.float64)
    occluded, opaque = cover > 0, cover >= 1 - 1e-6
    amodal = complete_mask(visible, occluded, cover >= 0.5)
    seen = amodal & ~occluded
    hidden = amodal & occluded
    hole = dilate(amodal, RIM)
    behind = inpainter.inpaint(residual, hole, seed=seed, prompt=prompt)
    colours = fill_hidden(residual, seen, hidden & opaque, texture or inpainter, seed)
    alpha, rgb, behind = matte_rim(residual, behind, colours, amodal, opaque)
    layer = np.dstack([np.clip(rgb, 0, 255).round().astype(np.uint8), np.round(alpha * 255).astype(np.uint8)])
    return Cut(layer, behind, amodal, hidden)
