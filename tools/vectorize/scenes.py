"""Random scenes of blob-like closed paths, for tests and benchmarks."""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry import unit_circle


def random_blobs(
    num_paths: int,
    height: int,
    width: int,
    *,
    radius: tuple[float, float] = (5.0, 40.0),
    segments: int = 4,
    jitter: float = 0.25,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """(P, 3K, 2) points and (P, 4) straight RGBA colours (opacity 0.5-1) of jittered circles whose
    centres are uniform over the canvas and radii uniform in ``radius``."""
    g = torch.Generator().manual_seed(seed)
    center = torch.rand(num_paths, 1, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [width, height], dtype=torch.float64
    )
    r = radius[0] + (radius[1] - radius[0]) * torch.rand(num_paths, 1, 1, generator=g, dtype=torch.float64)
    base = unit_circle(segments)[None]
    wobble = 1 + jitter * (2 * torch.rand(num_paths, 3 * segments, 2, generator=g, dtype=torch.float64) - 1)
    points = center + r * base * wobble
    colors = torch.rand(num_paths, 4, generator=g, dtype=torch.float64)
    colors[:, 3] = 0.5 + 0.5 * colors[:, 3]
    return points.to(dtype), colors.to(dtype)
