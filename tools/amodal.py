"""Cutting one object out of the residual as a complete, clean layer.

Two things the peel knows that a plain cut-out ignores:

* **Where the object is hidden.** Every object peeled before this one was in front of it, and the
  pixels those layers took are known exactly. Where this object's outline runs into that region it
  continues there (``complete_mask``: the visible shape's convex closure, clipped to the known
  occluded region), and its hidden pixels are filled from its own visible appearance
  (``fill_from_own``), not from whatever the inpainter put into the earlier hole.
* **What is behind its edge.** The filled residual is an estimate of the background, so along the
  object's rim the photo is a mix of object and background with a known background. A soft alpha
  that follows the photo's edges (a guided filter of the mask) and foreground colours solved from
  ``photo = alpha * fg + (1 - alpha) * background`` keep the surroundings out of the layer: moving
  or recolouring it carries no ring of the table with it. The background fill takes the whole
  transition zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .inpaint import Inpainter, dilate

RIM = 2  # px of transition zone on each side of the mask's edge
MIN_SOURCE = 30  # visible object pixels below which its hidden part is filled by diffusion, not patches


@dataclass(frozen=True)
class Cut:
    """One object's layer on the residual's canvas, and the residual with it removed."""

    layer: np.ndarray  # (H, W, 4) uint8, straight RGBA
    residual: np.ndarray  # (H, W, 3) uint8, the hole filled
    amodal: np.ndarray  # (H, W) bool: the object's full extent as far as this canvas shows it
    hidden: np.ndarray  # (H, W) bool: the part of it completed behind earlier layers


def complete_mask(visible: np.ndarray, occluded: np.ndarray) -> np.ndarray:
    """``visible`` continued across ``occluded`` (the pixels earlier, front layers took).

    The hidden part can only lie where something in front was, so every guess is clipped to that
    region. The guess continues the object's own outline, the part of its contour that is a real
    edge (not the seam with an occluder or the frame): an ellipse when that edge fits one within a
    pixel (round things), else each seam is bridged by the edge's tangents at both of its ends,
    meeting where they cross (corners), and at the least by the visible part's convex closure. An
    object that does not touch the occluded region stays as seen.
    """
    visible = np.asarray(visible, bool)
    occluded = np.asarray(occluded, bool) & ~visible
    if not visible.any() or not (dilate(visible, 2) & occluded).any():
        return visible.copy()
    seam = dilate(occluded, 2)
    frame = np.zeros(visible.shape, bool)
    frame[:2], frame[-2:], frame[:, :2], frame[:, -2:] = True, True, True, True
    contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)[:, 0]  # (N, 2) x, y in order around the outline
    real = ~(seam | frame)[contour[:, 1], contour[:, 0]]
    guess = _ellipse(contour[real], visible.shape)
    if guess is None:
        guess = _bridged(contour, real, visible.shape)
    hull = cv2.convexHull(contour.astype(np.int32))
    closure = np.zeros(visible.shape, np.uint8)
    cv2.fillConvexPoly(closure, hull, 1)
    extra = (guess | closure.astype(bool)) & occluded
    # only occluded pieces joined to the visible part belong to this object
    _, labels = cv2.connectedComponents(extra.astype(np.uint8), connectivity=8)
    near = np.unique(labels[dilate(visible, 1) & extra])
    return visible | np.isin(labels, near[near > 0])


def _ellipse(points: np.ndarray, shape: tuple[int, ...], tolerance: float = 0.75) -> np.ndarray | None:
    """The filled ellipse through ``points`` when they lie on one within ``tolerance`` px, else None."""
    if len(points) < 12:
        return None
    (cx, cy), (d1, d2), angle = cv2.fitEllipse(points.astype(np.float32))
    if min(d1, d2) < 2 or max(d1, d2) > 4 * max(shape):
        return None
    t = np.deg2rad(angle)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    u = (dx * np.cos(t) + dy * np.sin(t)) / (d1 / 2)
    v = (-dx * np.sin(t) + dy * np.cos(t)) / (d2 / 2)
    if np.mean(np.abs(np.hypot(u, v) - 1)) * (d1 + d2) / 4 > tolerance:
        return None
    out = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(out, ((cx, cy), (d1 + 1, d2 + 1), angle), 1, -1)  # contour pixels are half a pixel inside
    return out.astype(bool)


def _bridged(contour: np.ndarray, real: np.ndarray, shape: tuple[int, ...], back: int = 6) -> np.ndarray:
    """The outline with every seam replaced by the tangents of the real edge at its two ends, up to
    where they cross, or far into the occluder when they do not (an edge running on behind it)."""
    n = len(contour)
    if real.all() or not real.any():
        return np.zeros(shape[:2], bool)
    start = int(np.argmax(~real & np.roll(real, 1)))  # first seam point after a real one
    order = np.roll(np.arange(n), -start)
    polygon: list[np.ndarray] = []
    i, far = 0, 2.0 * max(shape)
    while i < n:
        k = order[i]
        if real[k]:
            polygon.append(contour[k].astype(np.float64))
            i += 1
            continue
        j = i
        while j < n and not real[order[j]]:
            j += 1
        a, b = order[(i - 1) % n], order[j % n]  # the real points on both sides of the seam
        da = contour[a] - contour[order[(i - 1 - back) % n]]
        db = contour[b] - contour[order[(j + back) % n]]
        pa, pb = contour[a].astype(np.float64), contour[b].astype(np.float64)
        ua, ub = da / max(np.hypot(*da), 1e-9), db / max(np.hypot(*db), 1e-9)
        cross = ua[0] * ub[1] - ua[1] * ub[0]
        hit = None
        if abs(cross) > 1e-6:
            ta = ((pb - pa)[0] * ub[1] - (pb - pa)[1] * ub[0]) / cross
            tb = ((pb - pa)[0] * ua[1] - (pb - pa)[1] * ua[0]) / cross
            if ta > 0 and tb > 0:
                hit = pa + ta * ua
        polygon += [pa, hit] if hit is not None else [pa, pa + far * ua, pb + far * ub]
        i = j
    out = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(out, [np.round(np.array(polygon)).astype(np.int32)], 1)
    return out.astype(bool)


def fill_from_own(image: np.ndarray, visible: np.ndarray, hidden: np.ndarray, inpainter: Inpainter,
                  seed: int = 0) -> np.ndarray:
    """``image`` with ``hidden`` filled from the object's own visible pixels only.

    The inpainter works on a crop around the object in which everything but the object's visible
    interior is unknown, so it can only copy the object; too small a visible part is diffused.
    """
    out = image.copy()
    if not hidden.any():
        return out
    source = cv2.erode(visible.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # no rim pixels
    if source.sum() < MIN_SOURCE:
        source = visible
    region = dilate(visible | hidden, 2)
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop, known = image[y0:y1, x0:x1].copy(), source[y0:y1, x0:x1]
    if not known.any():
        return out
    unknown = ~known
    if known.sum() >= MIN_SOURCE:
        filled = inpainter.inpaint(np.ascontiguousarray(crop), unknown, seed=seed)
    else:
        filled = cv2.inpaint(np.ascontiguousarray(crop), unknown.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    h = hidden[y0:y1, x0:x1]
    out[y0:y1, x0:x1][h] = filled[h]
    return out


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_alpha(image: np.ndarray, mask: np.ndarray, r: int = RIM, eps: float = 1e-3) -> np.ndarray:
    """The hard ``mask`` filtered with the photo as guide (He et al.'s colour guided filter): its
    edge moves onto the photo's edge and becomes as soft as the photo's own."""
    guide = image.astype(np.float64) / 255
    p = mask.astype(np.float64)
    mean_i = np.stack([_box(guide[..., c], r) for c in range(3)], -1)
    mean_p = _box(p, r)
    cov_ip = np.stack([_box(guide[..., c] * p, r) for c in range(3)], -1) - mean_i * mean_p[..., None]
    var = np.empty((*guide.shape[:2], 3, 3))
    for a in range(3):
        for b in range(a, 3):
            var[..., a, b] = var[..., b, a] = _box(guide[..., a] * guide[..., b], r) - mean_i[..., a] * mean_i[..., b]
    coef = np.linalg.solve(var + eps * np.eye(3), cov_ip[..., None])[..., 0]
    offset = mean_p - (coef * mean_i).sum(-1)
    mean_coef = np.stack([_box(coef[..., c], r) for c in range(3)], -1)
    return np.clip((mean_coef * guide).sum(-1) + _box(offset, r), 0, 1)


def foreground(image: np.ndarray, background: np.ndarray, alpha: np.ndarray, solid: np.ndarray) -> np.ndarray:
    """Object colours along a soft edge: solved from the compositing equation where alpha is large
    enough to trust, taken from the nearest solid object pixel elsewhere, and blended between the
    two by alpha (a thin rim solved from a guessed background is noise)."""
    img, bg = image.astype(np.float64), background.astype(np.float64)
    a = np.maximum(alpha, 1e-3)[..., None]
    solved = np.clip((img - (1 - a) * bg) / a, 0, 255)
    if not solid.any():
        return solved.round().astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels((~solid).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(solid)
    index = np.zeros(labels.max() + 1, np.int64)
    index[labels[ys, xs]] = np.ravel_multi_index((ys, xs), solid.shape)
    nearest = img.reshape(-1, 3)[index[labels]]
    w = np.clip((alpha - 0.3) / 0.7, 0, 1)[..., None]
    return (w * solved + (1 - w) * nearest).round().astype(np.uint8)


def cut(residual: np.ndarray, visible: np.ndarray, occluded: np.ndarray, inpainter: Inpainter,
        seed: int = 0) -> Cut:
    """The object under ``visible`` as a complete layer, and the residual with it removed and filled."""
    visible = np.asarray(visible, bool)
    amodal = complete_mask(visible, occluded)
    hidden = amodal & ~visible
    hole = dilate(amodal, RIM)
    filled = inpainter.inpaint(residual, hole, seed=seed)
    # alpha: follows the photo's edge where the object is seen, the completed shape where it is hidden
    shape = cv2.GaussianBlur(amodal.astype(np.float64), (0, 0), 0.7)
    alpha = np.where(dilate(occluded, RIM), shape, guided_alpha(residual, amodal))
    solid = cv2.erode(amodal.astype(np.uint8), np.ones((2 * RIM + 1,) * 2, np.uint8)).astype(bool)
    alpha = np.where(solid, 1.0, np.where(hole, alpha, 0.0))
    colours = foreground(residual, filled, alpha, solid & visible)
    colours = fill_from_own(colours, visible, hidden, inpainter, seed)
    layer = np.dstack([colours, np.round(alpha * 255).astype(np.uint8)])
    return Cut(layer, filled, amodal, hidden)
