"""Where new paths go and how many: importance sampling of the error, and an error budget.

Positions: a temperature-scaled softmax over the smoothed per-pixel error (the L2 norm of the
loss gradient with respect to the image), sampled without replacement and thinned so that two new
paths do not start on top of each other. Count: the mean loss reduction that one added path bought
over a sliding window of recent additions says how many more are needed to reach the target loss.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .init import ellipse_paths


def error_field(image: Tensor, target: Tensor, smooth: int = 5) -> Tensor:
    """(H, W) L2 norm over channels of the residual, box-smoothed so regions beat lone pixels."""
    err = (image - target).norm(dim=-1)
    if smooth > 1:
        err = F.avg_pool2d(err[None, None], smooth, stride=1, padding=smooth // 2, count_include_pad=False)[0, 0]
    return err


def sample_positions(err: Tensor, count: int, temperature: float, min_dist: float,
                     generator: torch.Generator) -> Tensor:
    """(k <= count, 2) pixel centres drawn from softmax(err / (temperature * q99(err))).

    Normalising by the 99th percentile (not the mean) keeps the distribution from collapsing onto a
    single peak; many candidates are drawn so the thinning still finds ``count`` spread-out ones."""
    w = err.shape[1]
    if count <= 0:
        return torch.zeros(0, 2)
    flat = err.reshape(-1).double()
    scale = torch.quantile(flat, 0.99).clamp(min=1e-12)
    probs = torch.softmax(flat / (temperature * scale), 0)
    draw = min(flat.numel(), 20 * count)
    idx = torch.multinomial(probs, draw, replacement=False, generator=generator)
    xy = torch.stack([(idx % w).double() + 0.5, (idx // w).double() + 0.5], 1)
    chosen: list[Tensor] = []
    for p in xy:  # greedy thinning in drawing order
        if all(float((p - q).norm()) >= min_dist for q in chosen):
            chosen.append(p)
            if len(chosen) == count:
                break
    return torch.stack(chosen).float()


def new_paths(positions: Tensor, radius: float, target: Tensor, segments: int) -> tuple[Tensor, Tensor]:
    """Circles at ``positions`` coloured by the target's pixels there (straight RGBA)."""
    n = positions.shape[0]
    h, w = target.shape[:2]
    xi = positions[:, 0].long().clamp(0, w - 1)
    yi = positions[:, 1].long().clamp(0, h - 1)
    px = target[yi, xi]
    a = px[:, 3:].clamp(min=1e-6)
    colors = torch.cat([(px[:, :3] / a).clamp(0, 1), px[:, 3:]], 1)
    colors[:, 3] = colors[:, 3].clamp(min=0.5)
    points = ellipse_paths(positions.double(), torch.full((n, 2), radius, dtype=torch.float64),
                           torch.zeros(n, dtype=torch.float64), segments)
    return points.float(), colors.float()


@dataclass
class ErrorBudget:
    """How many paths to add next, from what recent additions bought."""

    target_loss: float
    window: int
    gains: deque = field(default_factory=deque)
    _pending: tuple[float, int] | None = None

    def record(self, loss: float) -> None:
        """Call at every addition round, before adding: credits the previous round's paths."""
        if self._pending is not None:
            before, added = self._pending
            if added > 0:
                self.gains.append(max(before - loss, 0.0) / added)
                while len(self.gains) > self.window:
                    self.gains.popleft()
            self._pending = None

    def count(self, loss: float, lo: int, hi: int) -> int:
        """(loss - target) / mean gain per path, clamped to [lo, hi]; ``hi`` before any history."""
        if loss <= self.target_loss or hi <= 0:
            return 0
        gain = sum(self.gains) / len(self.gains) if self.gains else 0.0
        n = hi if gain <= 0 else math.ceil((loss - self.target_loss) / gain)
        return int(min(max(n, lo), hi))

    def added(self, loss: float, n: int) -> None:
        self._pending = (loss, n)
