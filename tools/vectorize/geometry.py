"""Closed cubic Bezier paths: input checks and flattening into polygons.

The rasterizer works on straight edges. Flattening every cubic segment with one fixed Bernstein
matrix keeps it a single batched product, so gradients reach the control points through autograd
with no special cases, on CPU and CUDA alike.

Paths come in two shapes:
- uniform: a ``(P, 3K, 2)`` tensor, every path with ``K`` segments (what the optimizer uses);
- ragged: a flat ``(N, 2)`` tensor plus ``segment_counts`` ``(P,)`` (what SVG files give back).
Path ``p`` with ``K`` segments owns ``3K`` points ``q0 c1 c2 q1 c1 c2 ... q_{K-1} c1 c2``; segment ``k``
runs from ``q_k`` through two controls to ``q_{k+1}``, wrapping to ``q_0`` (the path is closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_BASIS_CACHE: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}


def bernstein_basis(samples: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(samples, 4) cubic Bernstein weights at t = i / samples, i = 0..samples-1."""
    key = (samples, torch.device(device), dtype)
    basis = _BASIS_CACHE.get(key)
    if basis is None:
        t = torch.arange(samples, dtype=torch.float64) / samples
        u = 1 - t
        basis = torch.stack([u**3, 3 * u**2 * t, 3 * u * t**2, t**3], 1).to(device=device, dtype=dtype)
        _BASIS_CACHE[key] = basis
    return basis


@dataclass(frozen=True)
class Polygons:
    """Flattened paths: vertex ``i`` of path ``path_id[i]`` joins vertex ``next_vertex[i]``."""

    vertices: Tensor  # (V, 2), differentiable
    path_id: Tensor  # (V,) long
    next_vertex: Tensor  # (V,) long
    num_paths: int


def check_paths(points: Tensor, colors: Tensor, segment_counts: Tensor | None) -> Tensor:
    """Validate the path tensors and return the per-path segment counts as a long tensor.

    Raises ValueError with a message a user can act on; a bad shape must never reach an index
    kernel, where it would turn into a crash or a silently wrong image.
    """
    if not isinstance(points, Tensor) or not isinstance(colors, Tensor):
        raise ValueError("points and colors must be torch tensors")
    if not points.is_floating_point():
        raise ValueError(f"points must be a floating-point tensor, got {points.dtype}")
    if colors.dtype != points.dtype:
        raise ValueError(f"colors dtype {colors.dtype} differs from points dtype {points.dtype}")
    if colors.device != points.device:
        raise ValueError(f"colors are on {colors.device} but points on {points.device}")
    if colors.dim() != 2 or colors.shape[1] != 4:
        raise ValueError(f"colors must have shape (P, 4) RGBA, got {tuple(colors.shape)}")
    num_paths = colors.shape[0]
    if segment_counts is None:
        if points.dim() != 3 or points.shape[2] != 2 or points.shape[1] % 3 != 0:
            raise ValueError(
                f"points must have shape (P, 3K, 2) (K cubic segments per closed path), got {tuple(points.shape)}"
            )
        if points.shape[0] != num_paths:
            raise ValueError(f"{points.shape[0]} paths in points but {num_paths} colours")
        if num_paths and points.shape[1] == 0:
            raise ValueError("every path needs at least one cubic segment (3 points)")
        counts = torch.full((num_paths,), points.shape[1] // 3, dtype=torch.long, device=points.device)
    else:
        if points.dim() != 2 or points.shape[1] != 2:
            raise ValueError(f"with segment_counts, points must have shape (N, 2), got {tuple(points.shape)}")
        counts = torch.as_tensor(segment_counts, dtype=torch.long, device=points.device)
        if counts.dim() != 1 or counts.shape[0] != num_paths:
            raise ValueError(f"segment_counts must have shape ({num_paths},), got {tuple(counts.shape)}")
        if num_paths and bool((counts < 1).any()):
            raise ValueError("every path needs at least one cubic segment")
        if int(counts.sum()) * 3 != points.shape[0]:
            raise ValueError(f"segment_counts ask for {int(counts.sum()) * 3} points but points has {points.shape[0]}")
    if points.numel() and not bool(torch.isfinite(points).all()):
        raise ValueError("points contain NaN or infinite coordinates")
    if colors.numel() and not bool(torch.isfinite(colors).all()):
        raise ValueError("colors contain NaN or infinite values")
    return counts


def flatten(points: Tensor, segment_counts: Tensor, samples: int) -> Polygons:
    """Replace each cubic segment by ``samples`` chords (its Bernstein points)."""
    device = points.device
    num_paths = segment_counts.shape[0]
    if points.dim() == 3:  # uniform: gather (P, K, 4, 2) control quadruples with one index
        k = points.shape[1] // 3
        idx = (torch.arange(k, device=device)[:, None] * 3 + torch.arange(4, device=device)) % (3 * k)
        ctrl = points[:, idx].reshape(-1, 4, 2)
    else:
        seg_path = torch.repeat_interleave(torch.arange(num_paths, device=device), segment_counts)
        path_start = 3 * (torch.cumsum(segment_counts, 0) - segment_counts)
        local = 3 * (torch.arange(seg_path.numel(), device=device) - (path_start // 3)[seg_path])
        span = 3 * segment_counts[seg_path]
        idx = path_start[seg_path, None] + (local[:, None] + torch.arange(4, device=device)) % span[:, None]
        ctrl = points[idx]
    basis = bernstein_basis(samples, device, points.dtype)
    vertices = torch.einsum("sj,njd->nsd", basis, ctrl).reshape(-1, 2)
    per_path = segment_counts * samples
    path_id = torch.repeat_interleave(torch.arange(num_paths, device=device), per_path)
    first = torch.cumsum(per_path, 0) - per_path
    next_vertex = torch.arange(vertices.shape[0], device=device) + 1
    if num_paths:
        next_vertex[first + per_path - 1] = first
    return Polygons(vertices, path_id, next_vertex, num_paths)
