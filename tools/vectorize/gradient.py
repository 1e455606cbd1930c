"""Linear gradient fills as the optimizer holds them: four more numbers per path in the colour rows.

The axis is kept in fractions of the path's control-point box, so every fill number lies in [0, 1]
and takes the colours' learning rate and clamp, and pruning, addition and the optimizer's row
bookkeeping need no change. ``split`` turns the rows into what the renderer and the SVG take: the
start colour and opacity, and the axis in user space with the end colour; ``render_rows`` draws
them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .render import RenderResult, render_with_stats

FLAT = 4  # r, g, b, opacity
COLUMNS = 11  # then the end colour r, g, b and the axis start x, y and end x, y in box fractions
START_AXIS = (0.0, 0.0, 1.0, 1.0)  # the box's diagonal: colour changes along x and along y both pull the axis


def extend(colors: Tensor) -> Tensor:
    """(P, 4) flat rows -> (P, 11) gradient rows that paint the same (end colour = start colour)."""
    axis = colors.new_tensor(START_AXIS).expand(colors.shape[0], 4)
    return torch.cat([colors, colors[:, :3], axis], 1)


def split(points: Tensor, colors: Tensor) -> tuple[Tensor, Tensor | None]:
    """(P, 4) colours and (P, 7) gradients (None for flat rows), for ``points`` (P, 3K, 2)."""
    if colors.shape[1] == FLAT:
        return colors, None
    if colors.shape[1] != COLUMNS:
        raise ValueError(f"colour rows must have {FLAT} (flat) or {COLUMNS} (gradient) numbers, got {colors.shape[1]}")
    p = points.detach()
    lo, hi = p.amin(1), p.amax(1)
    size = hi - lo
    start = lo + colors[:, 7:9] * size
    end = lo + colors[:, 9:11] * size
    return colors[:, :FLAT], torch.cat([start, end, colors[:, 4:7]], 1)


def flat_gradients(colors: Tensor) -> Tensor:
    """(P, 7) renderer gradients that paint ``colors``' own RGB: a zero-length axis (``AXIS_EPS``),
    for flat paths in a set that also holds gradients."""
    return torch.cat([colors.new_zeros(colors.shape[0], 4), colors[:, :3]], 1)


def render_rows(points: Tensor, colors: Tensor, height: int, width: int, **kwargs) -> RenderResult:
    """``render_with_stats`` of the optimizer's (P, 3K, 2) points and (P, 4) or (P, 11) colour rows."""
    flat, gradients = split(points, colors)
    return render_with_stats(points, flat, height, width, gradients=gradients, **kwargs)
