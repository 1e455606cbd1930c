"""Cleaning a segmenter's mask into one plausible object: the clean-up every backend's mask gets
(``clean_mask``), and GrabCut's own (``drop_neighbours``: its colour model takes in a neighbour that
reaches into the box). Boxes are half-open pixel boxes ``(x0, y0, x1, y1)``, as in ``tools.segment``."""

from __future__ import annotations

import cv2
import numpy as np

from .inpaint import dilate

Box = tuple[int, int, int, int]
EDGES = ("left", "top", "right", "bottom")  # a box's sides, in this order everywhere

# A neighbour's piece inside a GrabCut mask (``drop_neighbours``), chosen on the peel bench's tuning scenes:
SEPARATION = 3.0  # the mask's two colour clusters: squared distance of their means over their summed variance
EDGE_STEP = 50.0  # CIELAB distance across the piece's border with the rest, at least (a strong, sharp edge)
OWN_SHARE = 0.5  # share of its colour cluster's pixels the piece holds, at least (not a texture's patch)
MIN_PIECE = 0.02  # of the mask's area
RAGGED = 2.2  # perimeter^2 / (4 pi area) above which a piece is a texture's patch, not a neighbour's part
SPAN_SLACK = 0.04  # of the box's side (at least 2 px): how near each side of the box the rest must still reach
FILLS_NOTCH = 0.1  # solidity (area over convex hull area) a piece adds to the rest, above which it is the object's own


def clean_mask(mask: np.ndarray, box: Box, keep: np.ndarray | None = None) -> np.ndarray:
    """The clean-up every backend's mask gets: stray specks away from the object dropped (not those
    that touch ``keep``, pixels the model pointed at on the object), small enclosed holes filled."""
    return fill_small_holes(keep_object_components(mask, box, keep))


def drop_neighbours(image: np.ndarray, mask: np.ndarray, box: Box, seed: int = 0,
                    keep: np.ndarray | None = None) -> np.ndarray:
    """``mask`` without the pieces of neighbouring objects that sit inside the object's box.

    GrabCut learns the object's colours from everything in the box, so a neighbour that reaches
    into it gets a colour component of its own and is kept; the peel then gives that piece to the
    wrong layer, and the neighbour loses it for good. Such a piece splits off cleanly by colour:
    of the mask's two colour clusters, it is one compact connected part that holds most of its
    cluster (a texture's patches do neither), it meets the rest across a strong edge (a shaded fill
    has none), it does not cover the box's centre, it does not fill a notch in the rest (a
    neighbour bulges out of the object; an object's own second tone, cut off, leaves a notch), and
    without it the rest still reaches every side of the box the mask reaches. Those pieces are dropped
    (never one that touches ``keep``); the rest is returned as is.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) < 50:
        return mask
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    pixels = lab[ys, xs]
    cv2.setRNGSeed(int(seed))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, cluster, centres = cv2.kmeans(pixels, 2, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    cluster = cluster.ravel()
    sizes = np.bincount(cluster, minlength=2)
    spread = sum(float(pixels[cluster == k].var(0).sum()) for k in (0, 1) if sizes[k])
    if float(((centres[0] - centres[1]) ** 2).sum()) < SEPARATION * spread:
        return mask  # one colour population (flat, shaded or textured alike): nothing to split
    labels = np.full(mask.shape, -1, np.int8)
    labels[ys, xs] = cluster
    x0, y0, x1, y1 = box
    slack_x, slack_y = max(2.0, SPAN_SLACK * (x1 - x0)), max(2.0, SPAN_SLACK * (y1 - y0))
    # how far the mask itself reaches towards each side of the box: a sharp corner's faint tip can
    # end short of a box drawn round every pixel the object tints, and that says nothing of the piece
    reach = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    out = mask.copy()
    for k in (0, 1):
        part = cv2.morphologyEx((labels == k).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, comp, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        for c in range(1, count):
            area = int(stats[c, cv2.CC_STAT_AREA])
            piece = comp == c
            rest = out & ~piece
            if (area < max(10, MIN_PIECE * len(ys)) or area / sizes[k] < OWN_SHARE
                    or piece[(y0 + y1) // 2, (x0 + x1) // 2] or rest.sum() < area
                    or (keep is not None and (piece & keep).any())):
                continue
            ry, rx = np.nonzero(rest)
            if not (rx.min() <= reach[0] + slack_x and rx.max() + 1 >= reach[2] - slack_x
                    and ry.min() <= reach[1] + slack_y and ry.max() + 1 >= reach[3] - slack_y):
                continue  # the box was drawn round both: the piece is the object's own
            near_rest, near_piece = piece & dilate(rest, 2), rest & dilate(piece, 2)
            if near_rest.sum() < 3 or near_piece.sum() < 3 or _raggedness(piece) > RAGGED:
                continue
            step = np.linalg.norm(np.median(lab[near_rest], 0) - np.median(lab[near_piece], 0))
            # a neighbour bulges out of the object; a piece that fills a notch in it is its own (a second tone)
            if step >= EDGE_STEP and _solidity(rest | piece) - _solidity(rest) <= FILLS_NOTCH:
                # the piece, and its own cluster's pixels that the opening trimmed off its rim
                out &= ~(piece | (dilate(piece, 2) & (labels == k)))
    return keep_object_components(out, box, keep) if out.sum() < mask.sum() else mask


def _solidity(mask: np.ndarray) -> float:
    """The mask's area over its convex hull's (both in pixels): 1 for a convex shape."""
    ys, xs = np.nonzero(mask)
    hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
    filled = cv2.fillConvexPoly(np.zeros(mask.shape, np.uint8), hull, 1)
    return float(mask.sum()) / max(int(filled.sum()), 1)


def _raggedness(piece: np.ndarray) -> float:
    """Perimeter squared over 4 pi times the area: near 1 for a disc or a wedge between two outlines,
    large for a ragged patch."""
    contours, _ = cv2.findContours(piece.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return perimeter ** 2 / (4 * np.pi * max(int(piece.sum()), 1))


def keep_object_components(mask: np.ndarray, box: Box, keep: np.ndarray | None = None) -> np.ndarray:
    """Keep the components that reach the middle third of the box or touch ``keep``, plus the largest.

    GrabCut often leaves specks of look-alike background in the box corners; the object itself is the
    big blob, or whatever the model centred its box on or pointed at (a handle can be a separate
    piece, so all count).
    """
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.copy()
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = 1 + int(np.argmax(areas))
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cy0, cy1 = y0 + h // 3, max(y0 + (2 * h) // 3, y0 + h // 3 + 1)
    cx0, cx1 = x0 + w // 3, max(x0 + (2 * w) // 3, x0 + w // 3 + 1)
    central = np.unique(comp[cy0:cy1, cx0:cx1])
    min_area = max(4, int(0.01 * areas.max()))  # a centred speck is noise, not a second object part
    kept = {largest} | {int(c) for c in central if c != 0 and stats[c, cv2.CC_STAT_AREA] >= min_area}
    if keep is not None:
        kept |= {int(c) for c in np.unique(comp[keep]) if c != 0}
    return np.isin(comp, sorted(kept))


def shortfall(mask: np.ndarray, box: Box) -> tuple[str, float]:
    """The side of ``box`` the mask ends furthest short of, and by what share of the box's extent
    across it (0 when the mask reaches every side)."""
    x0, y0, x1, y1 = box
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return EDGES[0], 1.0
    w, h = x1 - x0, y1 - y0
    gaps = ((int(xs.min()) - x0) / w, (int(ys.min()) - y0) / h,
            (x1 - 1 - int(xs.max())) / w, (y1 - 1 - int(ys.max())) / h)
    k = int(np.argmax(gaps))
    return EDGES[k], max(float(gaps[k]), 0.0)


def enclosed_holes(mask: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """The holes of ``mask``: a label image of its complement (4-connected; 0 on the mask) and, for
    each hole the mask encloses (one that does not reach the image's edge), its label -> area."""
    _, comp, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    height, width = mask.shape
    holes = {c: int(area) for c, (x, y, w, h, area) in enumerate(stats[1:], 1)
             if x > 0 and y > 0 and x + w < width and y + h < height}
    return comp, holes


def fill_small_holes(mask: np.ndarray, max_fraction: float = 0.03) -> np.ndarray:
    """Fill enclosed holes smaller than ``max_fraction`` of the mask area (at least 16 px).

    GrabCut pits highlights and specular spots inside objects; real openings (a ring, a mug handle's eye)
    are large, so they stay.
    """
    limit = max(16, int(max_fraction * mask.sum()))
    comp, holes = enclosed_holes(mask)
    return mask | np.isin(comp, [c for c, area in holes.items() if area <= limit])
