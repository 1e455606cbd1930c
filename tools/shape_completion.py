"""Shape continuation: where an object goes on behind the layers in front of it (``complete_mask``).

The peel knows exactly which pixels earlier, front layers took, and which canvas ``pad_canvas``
added beyond the photo's frame: the only places an object can be hidden. Its outline is continued
there from the part of its contour that is a real edge, not a seam with an occluder; ``tools.amodal``
then paints the hidden part and mats the layer.
"""

from __future__ import annotations

import cv2
import numpy as np

from .inpaint import dilate
from .mask_cleanup import enclosed_holes

SLACK = 1.0  # px a supporting line may sit outside the contour pixel it was taken at (pixel centres)
WINDOW = 5  # contour points on each side used to estimate an edge direction
REACH = 0.75  # how far an unclosed outline is continued, in units of the visible part's mean width
BRIDGE = 2 / 3  # a bridging cubic's control arms, in units of the gap it spans (parallel sides: a half-disc cap)
RUN_ON = 0.3  # how far the edges run straight on past a seam before the bridge alone decides (x mean width)
STRAIGHT = 1.0  # px a contour point may stray from a straight side's line and still extend it
CORNER = 3.0  # how far straight sides run on to meet at a hidden corner, in units of their seen length
ARC = 0.4  # share of the way round an ellipse must be seen before it is trusted
SHORT_ARC = 0.2  # ... or this share, when the ellipse shows nowhere the photo does not show the object
SHOWN = 0.01  # share of such an ellipse allowed on seen pixels outside the object (its outline's own pixels)
MIN_RUN = 3  # real contour points below which a run gives no edge direction


def _real_run(real: np.ndarray, i: int, step: int) -> list[int]:
    """Up to ``WINDOW`` contour indices after ``i`` (``step`` +1) or before it (-1) while they are real:
    a window never reaches across a seam, so the last points before an occluder keep their edge's
    direction."""
    run = []
    for k in range(1, WINDOW + 1):
        j = (i + step * k) % len(real)
        if not real[j]:
            break
        run.append(j)
    return run


def _direction(points: np.ndarray) -> np.ndarray:
    """Unit direction of the line fitted to ``points`` (sign arbitrary)."""
    return np.linalg.svd(points - points.mean(0), full_matrices=False)[2][0]


def _sides(contour: np.ndarray) -> list[np.ndarray]:
    """Contour indices of each straight piece: the runs between the vertices of the outline
    simplified to within ``STRAIGHT`` px."""
    approx = cv2.approxPolyDP(contour.reshape(-1, 1, 2).astype(np.int32), STRAIGHT, True)[:, 0]
    n, at, vertices = len(contour), 0, []
    for v in approx:  # the simplified outline's vertices are contour points, in contour order
        hits = np.flatnonzero((contour == v).all(1))
        if len(hits):
            at = int(hits[np.argmin((hits - at) % n)])
            vertices.append(at)
    return [(a + np.arange((b - a) % n + 1)) % n for a, b in zip(vertices, vertices[1:] + vertices[:1], strict=True)]


def _edge_normals(contour: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals at the real contour points, and which points had enough neighbours to
    trust: on a straight side, the side's own (a few pixels' staircase says little about a long
    edge's direction, and a tangent a few degrees off cuts a hidden corner); elsewhere from a line
    fitted to the point's real neighbours."""
    normals, ok = np.zeros((len(contour), 2)), np.zeros(len(contour), bool)
    for side in _sides(contour):
        side = side[real[side]]
        if len(side) > 2 * WINDOW + 1:  # longer than a point's own window on both sides
            d = _direction(contour[side].astype(np.float64))
            normals[side], ok[side] = np.array([d[1], -d[0]]), True
    for i in np.flatnonzero(real & ~ok):  # the rest: curves, corners and short pieces
        idx = [i, *_real_run(real, i, 1), *_real_run(real, i, -1)]
        if len(idx) < 4:
            continue
        d = _direction(contour[idx].astype(np.float64))
        normals[i], ok[i] = np.array([d[1], -d[0]]), True
    return normals, ok


def _orient_outward(points: np.ndarray, normals: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Flip each normal so that a step along it leaves the visible mask (more of it outside)."""
    h, w = visible.shape
    score = np.zeros(len(points))
    for step in (1.5, 2.5, 3.5):
        for sign in (1, -1):
            q = np.round(points + sign * step * normals).astype(int)
            qx, qy = np.clip(q[:, 0], 0, w - 1), np.clip(q[:, 1], 0, h - 1)
            score += sign * (~visible[qy, qx])
    return np.where((score >= 0)[:, None], normals, -normals)


def _supported_region(points: np.ndarray, normals: np.ndarray, visible: np.ndarray,
                      candidates: np.ndarray) -> np.ndarray:
    """The candidate pixels inside every supporting half-plane of the visible edge that does not cut
    the visible part itself: a convex outline is exactly the intersection of its tangents, and a
    tangent at a concave bend (or a corner's ill-defined one) would cut the object, so it is skipped."""
    vy, vx = np.nonzero(visible)
    cy, cx = np.nonzero(candidates)
    inside = np.ones(len(cy), bool)
    allowed = max(2, int(0.003 * len(vy)))
    for p, nrm in zip(points, normals, strict=True):
        if ((vx - p[0]) * nrm[0] + (vy - p[1]) * nrm[1] > SLACK + 0.5).sum() > allowed:
            continue
        inside &= (cx - p[0]) * nrm[0] + (cy - p[1]) * nrm[1] <= SLACK
    out = np.zeros(visible.shape, bool)
    out[cy[inside], cx[inside]] = True
    return out


def _ellipse(points: np.ndarray, shape: tuple[int, int],
             tolerance: float = 0.6) -> tuple[np.ndarray, float] | None:
    """The filled ellipse through ``points`` and the share of the way round it they go, when they lie
    on one within ``tolerance`` px and go at least ``SHORT_ARC`` of the way round; else None."""
    if len(points) < 16:
        return None
    (cx, cy), (d1, d2), angle = cv2.fitEllipse(points.astype(np.float32))
    if not (np.isfinite([cx, cy, d1, d2]).all() and min(d1, d2) >= 3 and max(d1, d2) <= 3 * max(shape)):
        return None
    t = np.deg2rad(angle)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    u = (dx * np.cos(t) + dy * np.sin(t)) / (d1 / 2)
    v = (-dx * np.sin(t) + dy * np.cos(t)) / (d2 / 2)
    if np.mean(np.abs(np.hypot(u, v) - 1)) * (d1 + d2) / 4 > tolerance:
        return None
    turned = np.unwrap(np.sort(np.arctan2(v, u)))
    gaps = np.diff(np.concatenate([turned, turned[:1] + 2 * np.pi]))
    seen = 1 - gaps.max() / (2 * np.pi)
    if seen < SHORT_ARC:
        return None
    out = np.zeros(shape, np.uint8)
    cv2.ellipse(out, ((cx, cy), (d1 + 1, d2 + 1), angle), 1, -1)  # contour pixels are half a pixel inside
    return out.astype(bool), seen


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of the maximal runs of True in a circular sequence."""
    n = len(flags)
    if flags.all():
        return [(0, n - 1)]
    order = (int(np.argmin(flags)) + np.arange(n)) % n  # start on a False, so no run wraps round
    steps = np.diff(np.concatenate([[0], flags[order].astype(np.int8), [0]]))
    return [(int(order[a]), int(order[b - 1])) for a, b in
            zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1), strict=True)]


def _heading(contour: np.ndarray, real: np.ndarray, i: int, step: int) -> tuple[np.ndarray, float] | None:
    """Unit direction in which the real edge ending at point ``i`` runs on into the gap, and how long
    that edge is straight behind ``i``: fitted to the real points behind it (``step`` +1: those before
    ``i`` in contour order; -1: those after), first over ``WINDOW`` points, then grown point by point
    while a line refitted to all of them stays within ``STRAIGHT`` px (a polygon's side, not a curve's
    chord; a line kept from the first few points of a sloping staircase would stop the side early)."""
    idx = [i, *_real_run(real, i, -step)]
    if len(idx) < MIN_RUN:
        return None
    pts = contour[idx].astype(np.float64)
    d = _direction(pts)
    n = len(real)
    for k in range(len(idx), n):
        j = (i - step * k) % n
        if not real[j]:
            break
        grown = np.concatenate([pts, contour[j][None].astype(np.float64)])
        g = _direction(grown)
        off = grown - grown.mean(0)
        if np.abs(off[:, 0] * g[1] - off[:, 1] * g[0]).max() > STRAIGHT:
            break
        pts, d = grown, g
    d = d if d @ (pts[0] - pts[-1]) >= 0 else -d
    return d, float(np.abs((pts - pts[0]) @ d).max())


def _bridge(p0: np.ndarray, h0: tuple[np.ndarray, float] | None, p1: np.ndarray,
            h1: tuple[np.ndarray, float] | None) -> np.ndarray:
    """Points from ``p0`` to ``p1`` that continue the edges arriving there (headings ``h0``, ``h1``,
    both pointing into the gap, with their straight lengths): their corner when the two lines meet
    within a gap's length of both ends, or within ``CORNER`` times its straight length of each side
    (straight sides run on to where they meet), else the cubic with control arms of ``BRIDGE`` times
    the gap (the smoothest closure; between parallel sides a near half-disc cap)."""
    gap = float(np.linalg.norm(p1 - p0))
    if h0 is None or h1 is None or gap < 1:
        return np.empty((0, 2))
    (t0, l0), (t1, l1) = h0, h1
    m = np.stack([t0, -t1], 1)
    if abs(np.linalg.det(m)) > 1e-3:
        s0, s1 = np.linalg.solve(m, p1 - p0)
        if 0 < s0 <= max(gap, CORNER * l0) and 0 < s1 <= max(gap, CORNER * l1):
            return (p0 + s0 * t0)[None]
    q0, q1 = p0 + BRIDGE * gap * t0, p1 + BRIDGE * gap * t1
    t = np.linspace(0, 1, max(8, int(3 * gap)))[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * q0 + 3 * (1 - t) * t ** 2 * q1 + t ** 3 * p1


def _bridged_outline(contour: np.ndarray, real: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The filled outline with each seam (a run of contour along an occluder or the canvas edge)
    replaced by the bridge between the real edges on either side of it."""
    n = len(contour)
    seams = _runs(~real)
    outline: list[np.ndarray] = []
    for k, (first, last) in enumerate(seams):
        a, b = (first - 1) % n, (last + 1) % n
        p0, p1 = contour[a].astype(np.float64), contour[b].astype(np.float64)
        outline += [p0[None], _bridge(p0, _heading(contour, real, a, 1), p1, _heading(contour, real, b, -1))]
        stop = seams[(k + 1) % len(seams)][0]  # the real run from b up to the next seam
        outline.append(contour[(b + np.arange((stop - b) % n)) % n].astype(np.float64))
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(np.concatenate(outline)).astype(np.int32)], 1)
    return dilate(out.astype(bool), 1)  # contour pixels are the outline's inner edge


def complete_mask(visible: np.ndarray, occluded: np.ndarray, hides: np.ndarray | None = None) -> np.ndarray:
    """``visible`` continued across its outline (``_continued``), with every hole in it that front
    layers hide entirely filled: a saucer all round its cup goes on under the cup, though no edge of
    its outline meets it."""
    occluded = np.asarray(occluded, bool)
    out = _continued(np.asarray(visible, bool), occluded, hides)
    comp, holes = enclosed_holes(out)
    seen = set(np.unique(comp[~occluded & ~out]).tolist())  # holes where the photo shows something else
    return out | np.isin(comp, [c for c in holes if c not in seen])


def _continued(visible: np.ndarray, occluded: np.ndarray, hides: np.ndarray | None = None) -> np.ndarray:
    """``visible`` continued into ``occluded`` (what earlier, front layers took, and canvas beyond
    the photo's frame), the only place a hidden part can be. ``hides`` (default: all of
    ``occluded``) is where the occluders hide more than they show: the object's outline is read up to
    there, so a front layer's faint outer rim does not cut its edges short.

    The continuation follows the part of the object's contour that is a real edge, not a seam with
    an occluder: an ellipse when that edge is one (round things); else each seam is bridged by the
    edges on either side of it, which meet at their corner or close with a smooth cap, and never
    beyond the edge's supporting lines (the largest convex shape the edges allow). Only hidden
    pieces that join the visible part are kept. An object that does not touch the occluded region
    stays as seen.
    """
    hides = occluded if hides is None else np.asarray(hides, bool) & occluded
    visible = visible & ~hides
    if visible.sum() < 8 or not (dilate(visible, 1) & occluded & ~visible).any():
        return visible
    h, w = visible.shape
    seam = dilate(hides, 2) | dilate(occluded & ~visible, 1)  # along an occluder, or its faint rim where unseen
    seam[:1], seam[-1:], seam[:, :1], seam[:, -1:] = True, True, True, True  # the canvas edge is no edge either
    contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)[:, 0]  # (N, 2) x, y around the outline
    real = ~seam[contour[:, 1], contour[:, 0]]
    if real.sum() < 6 or real.all():  # all seam, or the main outline nowhere meets the occluder (a stray
        return visible                # piece does): nothing to continue
    normals, ok = _edge_normals(contour, real)
    points = contour[ok].astype(np.float64)
    normals = _orient_outward(points, normals[ok], visible)
    guess = _supported_region(points, normals, visible, occluded)
    ellipse, seen = _ellipse(contour[real], (h, w)) or (None, 0.0)
    # a short arc fits too many ellipses: under ARC of the way round, only one whose rest would stay hidden
    if ellipse is not None and seen < ARC and (ellipse & ~occluded & ~dilate(visible, 1)).sum() > SHOWN * ellipse.sum():
        ellipse = None
    reach = cv2.distanceTransform((~visible).astype(np.uint8), cv2.DIST_L2, 5)
    width = np.sqrt(visible.sum())
    if ellipse is not None:
        guess &= ellipse
    else:  # the edges run on a little (good continuation) before the smoothest closure takes over
        guess &= _bridged_outline(contour, real, (h, w)) | (reach <= RUN_ON * width)
    # however the outline closes, a compact object goes on behind the occluder about as far as it is wide
    extra = guess & occluded & (reach <= max(4.0, REACH * width))
    _, labels = cv2.connectedComponents(extra.astype(np.uint8), connectivity=8)
    joined = np.unique(labels[dilate(visible, 1) & extra])
    return visible | np.isin(labels, joined[joined > 0])
