"""Which paths can go: scores for pruning, lowest first.

Occlusion-aware (ours): each path's *visible* alpha in the final composition, i.e. the sum over its
pixels of its alpha times the transmittance of everything above it. The renderer computes this in
the same pass as the image (cumulative occlusion from the top down), so it costs nothing extra. A
path buried under opaque ones scores zero however large it is, which area and opacity cannot see.
Area and opacity are the usual baselines, kept for the paper's comparison.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry import check_paths, flatten
from .gradient import render_rows


@torch.no_grad()
def polygon_area(points: Tensor) -> Tensor:
    """(P,) absolute area enclosed by each flattened (P, 3K, 2) path (shoelace formula)."""
    counts, owner = check_paths(points, points.new_zeros(points.shape[0], 4), None)
    poly = flatten(points, counts, owner, points.shape[0])
    v, w = poly.vertices, poly.vertices[poly.next_vertex]
    cross = v[:, 0] * w[:, 1] - v[:, 1] * w[:, 0]
    return (0.5 * points.new_zeros(points.shape[0]).index_add_(0, poly.path_id, cross)).abs()


@torch.no_grad()
def prune_scores(points: Tensor, colors: Tensor, height: int, width: int, method: str,
                 background: Tensor | None = None) -> Tensor:
    """(P,) importance of each path under ``method``: occlusion | area | opacity."""
    if method == "occlusion":
        return render_rows(points, colors, height, width, background=background).visible_alpha
    if method == "area":
        return polygon_area(points)
    if method == "opacity":
        return colors[:, 3].clone()
    raise ValueError(f"unknown prune method {method!r}")


def lowest(scores: Tensor, fraction: float) -> Tensor:
    """Indices of the ``fraction`` of paths with the lowest scores (ties: the lower index first)."""
    k = round(fraction * scores.numel())
    order = torch.sort(scores, stable=True).indices
    return order[:k]


def keep_mask(scores: Tensor, method: str, min_visible: float) -> Tensor:
    """(P,) bool: which paths survive a pruning round. Occlusion and area compare px^2 of (visible)
    alpha with ``min_visible``; opacity drops paths under 2% opacity, which change nothing visible."""
    threshold = 0.02 if method == "opacity" else min_visible
    return scores >= threshold
