"""The optimisation step every fit shares: one layer on its own (``alv``) and a whole stack (``stack``).

Both move control points and colours with Adam under the same linear learning-rate decay, keep
colours in [0, 1], hold an opaque layer's canvas path fixed, and penalise paint outside a layer's
mask. Writing that once keeps a fix to one (say, the pinned canvas path) from missing the other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .adam import RowAdam

MAX_PSNR = 99.0  # what a perfect fit reports (a finite number, so JSON and tables can hold it)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error on [0, 1] values, capped at ``MAX_PSNR``."""
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else min(MAX_PSNR, -10 * math.log10(mse))


def spill_penalty(alpha: Tensor, mask: Tensor) -> Tensor:
    """Sum of squared alpha painted beyond ``mask`` where the mask is under a half: outside a hard
    mask, all of it; on a matted rim's outer half, what exceeds the rim's own alpha. The inner half
    of a rim is the layer's to cover, so an edge is free to sit where the rim says, not pushed inside
    it (which shows whatever is behind as a line round the layer)."""
    return (((alpha - mask).clamp(min=0) * (mask < 0.5)) ** 2).sum()


class PathOptimizer:
    """Adam on (points, colours) with the linear decay to ``lr_final``, the colour clamp, optional
    bounds on the points, and canvas paths (``pinned`` rows) whose geometry and opacity stay fixed."""

    def __init__(self, points: Tensor, colors: Tensor, lr_points: float, lr_colors: float, lr_final: float,
                 total_steps: int, pinned: list[int] | None = None,
                 bounds: tuple[Tensor, Tensor] | None = None):
        self.lr_points, self.lr_colors, self.lr_final = lr_points, lr_colors, lr_final
        self.total = max(total_steps, 1)
        self.opt_p, self.opt_c = RowAdam(points, lr_points), RowAdam(colors, lr_colors)
        self.pinned = list(pinned or [])
        self.pinned_points = points[self.pinned].detach().clone()
        self.bounds = bounds

    @torch.no_grad()
    def step(self, step: int, points: Tensor, colors: Tensor) -> tuple[Tensor, Tensor]:
        """Apply one update from the gradients on ``points``/``colors``; returns detached copies."""
        scale = 1 - (1 - self.lr_final) * step / self.total
        self.opt_p.step(points, points.grad, self.lr_points * scale)
        self.opt_c.step(colors, colors.grad, self.lr_colors * scale)
        points = points.detach()
        if self.bounds is not None:
            points = torch.maximum(torch.minimum(points, self.bounds[1]), self.bounds[0])
        colors = colors.detach().clamp_(0, 1)
        if self.pinned:
            points[self.pinned] = self.pinned_points
            colors[self.pinned, 3] = 1.0
        return points, colors

    def keep(self, index: Tensor) -> None:
        """Rows were pruned: keep the moments of ``index`` (pinned rows must survive, at the front)."""
        self.opt_p.keep(index)
        self.opt_c.keep(index)

    def append(self, rows: int) -> None:
        """Rows were added at the end: fresh moments for them."""
        self.opt_p.append(rows)
        self.opt_c.append(rows)
