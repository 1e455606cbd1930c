"""Where paths start: shapes and colours taken from the target's own pixels.

Starting from random blobs wastes most of the step budget on moving paths to where the content is.
Instead the layer is cut into superpixels (SLIC) and every superpixel becomes an ellipse with its
centroid, second moments and mean colour, largest at the back: the first render is already a coarse
mosaic of the target. Later additions go where the error is (``add.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .geometry import unit_circle


def ellipse_paths(center: Tensor, axes: Tensor, angle: Tensor, segments: int) -> Tensor:
    """(N, 3 * segments, 2) closed cubic ellipses."""
    base = unit_circle(segments, center.dtype).to(center.device)  # (M, 2)
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    x = base[None, :, 0] * axes[:, None, 0]
    y = base[None, :, 1] * axes[:, None, 1]
    return torch.stack([c * x - s * y, s * x + c * y], -1) + center[:, None, :]


def rectangle_path(x0: float, y0: float, x1: float, y1: float, segments: int) -> Tensor:
    """(3 * segments, 2) a closed cubic path that covers the rectangle: with 4 or more segments the
    rectangle itself (a knot on every corner, the other knots spread over the sides by length); with
    2 or 3, which cannot make four corners, an ellipse through (just outside) the corners.

    It is the back path of an opaque layer, so a corner it cut off would be a hole in the layer.
    """
    if segments < 4:
        centre = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2], dtype=torch.float64)
        semi = torch.tensor([x1 - x0, y1 - y0], dtype=torch.float64) / 2 * math.sqrt(2) * 1.05
        return (unit_circle(segments) * semi + centre).float()
    corners = torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float64)
    sides = [float((corners[(i + 1) % 4] - corners[i]).abs().sum()) for i in range(4)]
    # one segment per side, the rest to the sides by length (largest remainder)
    share = [(segments - 4) * s / max(sum(sides), 1e-12) for s in sides]
    count = [1 + int(v) for v in share]
    for i in sorted(range(4), key=lambda i: int(share[i]) - share[i])[: segments - sum(count)]:
        count[i] += 1
    knots = [corners[i] + (corners[(i + 1) % 4] - corners[i]) * j / count[i] for i in range(4) for j in range(count[i])]
    pts = []
    for k in range(segments):
        a, b = knots[k], knots[(k + 1) % segments]
        pts += [a, a + (b - a) / 3, a + 2 * (b - a) / 3]
    return torch.stack(pts).float()


def superpixel_init(target: Tensor, mask: Tensor, count: int, segments: int, seed: int) -> tuple[Tensor, Tensor]:
    """``count`` ellipses fitted to SLIC superpixels of the premultiplied (H, W, 4) target inside
    ``mask`` (H, W); back-to-front by size. Returns (N, 3 * segments, 2) points, (N, 4) colours."""
    from skimage.segmentation import slic

    h, w = mask.shape
    inside = mask.cpu().numpy() > 0.5
    alpha = target[..., 3].clamp(min=1e-6)
    straight = (target[..., :3] / alpha[..., None]).clamp(0, 1).cpu().numpy()
    if count < 1 or not inside.any():
        return torch.zeros(0, 3 * segments, 2), torch.zeros(0, 4)
    labels = slic(straight, n_segments=count, compactness=10, start_label=0, mask=inside,
                  channel_axis=-1, enforce_connectivity=True)
    labels = np.where(inside, labels, -1)
    ids = labels.reshape(-1)
    keep = ids >= 0
    ids = ids[keep]
    n = int(ids.max()) + 1 if ids.size else 0
    yy, xx = np.mgrid[0:h, 0:w]
    x = xx.reshape(-1)[keep] + 0.5
    y = yy.reshape(-1)[keep] + 0.5

    def per_label(v: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=v, minlength=n)

    cnt = np.maximum(per_label(np.ones_like(x)), 1)
    mx, my = per_label(x) / cnt, per_label(y) / cnt
    sxx = per_label(x * x) / cnt - mx**2 + 1 / 12
    syy = per_label(y * y) / cnt - my**2 + 1 / 12
    sxy = per_label(x * y) / cnt - mx * my
    rgb = np.stack([per_label(straight[..., c].reshape(-1)[keep]) for c in range(3)], 1) / cnt[:, None]
    a = per_label(target[..., 3].cpu().numpy().reshape(-1)[keep]) / cnt
    # ellipse with the region's second moments: semi-axes 2 * sqrt(eigenvalue), a little larger so
    # neighbours overlap instead of leaving cracks
    tr, det = sxx + syy, sxx * syy - sxy**2
    disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0))
    l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 1e-3)
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    axes = 2.2 * np.sqrt(np.stack([l1, l2], 1))
    present = np.flatnonzero(per_label(np.ones_like(x)) > 0)
    order = present[np.argsort(-cnt[present], kind="stable")]
    points = ellipse_paths(torch.as_tensor(np.stack([mx, my], 1)[order]), torch.as_tensor(axes[order]),
                           torch.as_tensor(angle[order]), segments)
    colors = torch.as_tensor(np.concatenate([rgb[order], a[order, None]], 1))
    return points.float(), colors.float().clamp(0, 1)


def random_init(target: Tensor, mask: Tensor, count: int, segments: int, generator: torch.Generator
                ) -> tuple[Tensor, Tensor]:
    """Ablation baseline: circles at uniform random positions in the canvas, random colours."""
    h, w = mask.shape
    center = torch.rand(count, 2, generator=generator) * torch.tensor([w, h])
    r = math.sqrt(h * w / max(count, 1) / math.pi) * (0.5 + torch.rand(count, 1, generator=generator))
    points = ellipse_paths(center.double(), r.expand(-1, 2).double(), torch.zeros(count, dtype=torch.float64),
                           segments)
    colors = torch.rand(count, 4, generator=generator)
    colors[:, 3] = 1.0
    return points.float(), colors
