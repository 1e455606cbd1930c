"""Closed cubic Bezier paths: input checks and flattening into polygons.

The rasterizer works on straight edges. Flattening every cubic segment with one fixed Bernstein
matrix keeps it a single batched product, so gradients reach the control points through autograd
with no special cases, on CPU and CUDA alike.

Paths come in two shapes:
- uniform: a ``(P, 3K, 2)`` tensor, every path one closed outline of ``K`` segments (what the
  optimizer uses);
- ragged: a flat ``(N, 2)`` tensor plus ``segment_counts`` ``(S,)``, one entry per closed outline,
  and optionally ``subpath_owner`` ``(S,)`` naming the path each outline belongs to (what SVG files
  give back: a path with a hole is two outlines filled together under one fill rule).
An outline with ``K`` segments owns ``3K`` points ``q0 c1 c2 q1 c1 c2 ... q_{K-1} c1 c2``; segment
``k`` runs from ``q_k`` through two controls to ``q_{k+1}``, wrapping to ``q_0`` (it is closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .fusion import fusable

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
    path_id: Tensor  # (V,) long: the path whose fill this vertex's outline belongs to
    next_vertex: Tensor  # (V,) long
    num_paths: int


def check_paths(
    points: Tensor, colors: Tensor, segment_counts: Tensor | None, subpath_owner: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Validate the path tensors; return per-outline segment counts and owning path (long tensors).

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
        if subpath_owner is not None:
            raise ValueError("subpath_owner needs ragged points with segment_counts")
        owner = torch.arange(num_paths, device=points.device)
    else:
        if points.dim() != 2 or points.shape[1] != 2:
            raise ValueError(f"with segment_counts, points must have shape (N, 2), got {tuple(points.shape)}")
        counts = torch.as_tensor(segment_counts, dtype=torch.long, device=points.device)
        if counts.dim() != 1:
            raise ValueError(f"segment_counts must be one-dimensional, got shape {tuple(counts.shape)}")
        if subpath_owner is None:
            owner = torch.arange(counts.shape[0], device=points.device)
        else:
            owner = torch.as_tensor(subpath_owner, dtype=torch.long, device=points.device)
            if owner.shape != counts.shape:
                raise ValueError("subpath_owner must have one entry per segment_counts entry")
        if owner.numel() and (bool((owner < 0).any()) or bool((owner >= num_paths).any())):
            raise ValueError(f"subpath_owner must name paths 0..{num_paths - 1}")
        if subpath_owner is None and counts.shape[0] != num_paths:
            raise ValueError(f"segment_counts must have shape ({num_paths},), got {tuple(counts.shape)}")
        if counts.numel() and bool((counts < 1).any()):
            raise ValueError("every path needs at least one cubic segment")
        if int(counts.sum()) * 3 != points.shape[0]:
            raise ValueError(f"segment_counts ask for {int(counts.sum()) * 3} points but points has {points.shape[0]}")
    if points.numel() and not bool(torch.isfinite(points).all()):
        raise ValueError("points contain NaN or infinite coordinates")
    if colors.numel() and not bool(torch.isfinite(colors).all()):
        raise ValueError("colors contain NaN or infinite values")
    return counts, owner


def segment_samples(ctrl: Tensor, tolerance: float, max_samples: int) -> Tensor:
    """Chords per cubic segment so the polygon stays within ``tolerance`` px of the curve.

    With n uniform steps the chord error is at most |B''| / (8 n^2) and |B''| <= 6 * dd, where dd is
    the larger second difference of the control points, so n = ceil(sqrt(0.75 dd / tolerance)).
    At least 4 chords keep tiny paths' areas right.
    """
    with torch.no_grad():
        return _chords(ctrl, tolerance, max(max_samples, 4))


@fusable
def _chords(ctrl: Tensor, tolerance: float, most: int) -> Tensor:
    d1 = (ctrl[:, 0] - 2 * ctrl[:, 1] + ctrl[:, 2]).norm(dim=1)
    d2 = (ctrl[:, 1] - 2 * ctrl[:, 2] + ctrl[:, 3]).norm(dim=1)
    return torch.sqrt(0.75 * torch.maximum(d1, d2) / tolerance).ceil().clamp(4, most).long()


@fusable
def _curve_points(ctrl: Tensor, per_segment: Tensor, seg: Tensor) -> Tensor:
    """The points at t = i / n, i = 0..n-1, of each listed segment (n its chord count)."""
    first = torch.cumsum(per_segment, 0) - per_segment
    t = ((torch.arange(seg.numel(), device=seg.device) - first[seg]).to(ctrl.dtype) / per_segment[seg]).unsqueeze(1)
    u = 1 - t
    basis = torch.cat([u**3, 3 * u * u * t, 3 * u * t * t, t**3], 1)
    return torch.einsum("vj,vjd->vd", basis, ctrl.index_select(0, seg))


def flatten(
    points: Tensor,
    segment_counts: Tensor,
    owner: Tensor,
    num_paths: int,
    samples: int | None = None,
    tolerance: float = 0.1,
    max_samples: int = 64,
) -> Polygons:
    """Replace each cubic segment by chords between points of the curve.

    ``samples`` fixes the chord count of every segment; ``None`` picks it per segment from the
    curvature (``segment_samples``), so large or wild curves stay accurate and small ones cheap.
    """
    device = points.device
    num_outlines = segment_counts.shape[0]
    if points.dim() == 3:  # uniform: one index gathers every (start, c1, c2, end) quadruple
        k = points.shape[1] // 3
        idx = (torch.arange(k, device=device)[:, None] * 3 + torch.arange(4, device=device)) % (3 * k)
        ctrl = points.index_select(1, idx.reshape(-1)).reshape(-1, 4, 2)
    else:
        seg_outline = torch.repeat_interleave(torch.arange(num_outlines, device=device), segment_counts)
        outline_start = 3 * (torch.cumsum(segment_counts, 0) - segment_counts)
        local = 3 * (torch.arange(seg_outline.numel(), device=device) - (outline_start // 3)[seg_outline])
        span = 3 * segment_counts[seg_outline]
        idx = outline_start[seg_outline, None] + (local[:, None] + torch.arange(4, device=device)) % span[:, None]
        ctrl = points.index_select(0, idx.reshape(-1)).reshape(-1, 4, 2)
    num_segments = ctrl.shape[0]
    if samples is not None:
        basis = bernstein_basis(samples, device, points.dtype)
        vertices = torch.einsum("sj,njd->nsd", basis, ctrl).reshape(-1, 2)
        per_segment = torch.full((num_segments,), samples, dtype=torch.long, device=device)
    else:
        per_segment = segment_samples(ctrl.detach(), tolerance, max_samples)
        total = int(per_segment.sum())
        seg = torch.repeat_interleave(torch.arange(num_segments, device=device), per_segment, output_size=total)
        vertices = _curve_points(ctrl, per_segment, seg)
    seg_outline_ids = torch.repeat_interleave(torch.arange(num_outlines, device=device), segment_counts,
                                              output_size=num_segments)
    per_outline = torch.zeros(num_outlines, dtype=torch.long, device=device).index_add_(
        0, seg_outline_ids, per_segment)
    path_id = torch.repeat_interleave(owner, per_outline, output_size=vertices.shape[0])
    first = torch.cumsum(per_outline, 0) - per_outline
    next_vertex = torch.arange(vertices.shape[0], device=device) + 1
    if num_outlines:
        next_vertex[first + per_outline - 1] = first
    return Polygons(vertices, path_id, next_vertex, num_paths)


def unit_circle(segments: int = 4, dtype: torch.dtype = torch.float64) -> Tensor:
    """(3 * segments, 2) control points of a closed cubic approximation of the unit circle."""
    k = 4 / 3 * torch.tan(torch.tensor(torch.pi / (2 * segments), dtype=torch.float64))
    a0 = torch.arange(segments, dtype=torch.float64) * (2 * torch.pi / segments)
    a1 = a0 + 2 * torch.pi / segments
    p0 = torch.stack([a0.cos(), a0.sin()], 1)
    p1 = torch.stack([a1.cos(), a1.sin()], 1)
    t0 = torch.stack([-a0.sin(), a0.cos()], 1)
    t1 = torch.stack([-a1.sin(), a1.cos()], 1)
    return torch.stack([p0, p0 + k * t0, p1 - k * t1], 1).reshape(-1, 2).to(dtype)
