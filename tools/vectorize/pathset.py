"""A set of filled paths in painter's order: the unit layers are made of, read from and written to.

The optimizer works on a uniform ``(P, 3K, 2)`` tensor; files can hold paths of any length, with
holes. ``PathSet`` holds the general (ragged) form and renders it, so everything that reads an SVG
back sees exactly what the optimizer saw. Gradient fills are held as the renderer and the SVG take
them: an axis in user space and the end colour (``render``'s ``gradients``); flat paths in a set
with gradients have a zero-length axis, which paints the start colour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .gradient import flat_gradients, split
from .render import RenderResult, render_with_stats


@dataclass
class PathSet:
    points: Tensor  # (N, 2) float
    segment_counts: Tensor  # (S,) long: cubic segments of each closed outline
    owner: Tensor  # (S,) long: path each outline belongs to
    colors: Tensor  # (P, 4) straight RGBA in [0, 1]; with a gradient, RGB at the axis start
    evenodd: Tensor  # (P,) bool
    gradients: Tensor | None = None  # (P, 7): axis start x, y, end x, y, RGB at the end; None: all flat

    @staticmethod
    def empty(dtype: torch.dtype = torch.float32) -> PathSet:
        long = torch.zeros(0, dtype=torch.long)
        return PathSet(torch.zeros(0, 2, dtype=dtype), long, long.clone(), torch.zeros(0, 4, dtype=dtype),
                       torch.zeros(0, dtype=torch.bool))

    @staticmethod
    def from_uniform(points: Tensor, colors: Tensor) -> PathSet:
        """From the optimizer's (P, 3K, 2) points and (P, 4) colours, or (P, 11) gradient rows
        (``gradient.split``), detached."""
        p, m, _ = points.shape
        flat, gradients = split(points.detach(), colors.detach().clamp(0, 1))
        return PathSet(
            points.detach().reshape(-1, 2).clone(),
            torch.full((p,), m // 3, dtype=torch.long),
            torch.arange(p),
            flat.clone(),
            torch.zeros(p, dtype=torch.bool),
            None if gradients is None else gradients.clone(),
        )

    def _gradient_rows(self) -> Tensor:
        """(P, 7) for every path: flat paths as a zero-length axis with the end colour their colour."""
        return self.gradients if self.gradients is not None else flat_gradients(self.colors)

    def transformed(self, scale: float, offset: Tensor) -> PathSet:
        """Every point (and gradient axis) at ``point * scale + offset``."""
        grads = None
        if self.gradients is not None:
            axis = self.gradients[:, :4].reshape(-1, 2, 2) * scale + offset.to(self.gradients.dtype)
            grads = torch.cat([axis.reshape(-1, 4), self.gradients[:, 4:]], 1)
        return replace(self, points=self.points * scale + offset.to(self.points.dtype), gradients=grads)

    def to(self, dtype: torch.dtype) -> PathSet:
        return replace(self, points=self.points.to(dtype), colors=self.colors.to(dtype),
                       gradients=None if self.gradients is None else self.gradients.to(dtype))

    @property
    def num_paths(self) -> int:
        return int(self.colors.shape[0])

    def outlines(self) -> list[tuple[int, Tensor]]:
        """(owner path, (3K, 2) points) for every outline, in order."""
        out = []
        start = 0
        for owner, k in zip(self.owner.tolist(), self.segment_counts.tolist(), strict=True):
            out.append((owner, self.points[start : start + 3 * k]))
            start += 3 * k
        return out

    def concat(self, other: PathSet) -> PathSet:
        """This set with ``other`` painted on top."""
        grads = None
        if self.gradients is not None or other.gradients is not None:
            grads = torch.cat([self._gradient_rows(), other._gradient_rows().to(self.colors.dtype)])
        return PathSet(
            torch.cat([self.points, other.points.to(self.points.dtype)]),
            torch.cat([self.segment_counts, other.segment_counts]),
            torch.cat([self.owner, other.owner + self.num_paths]),
            torch.cat([self.colors, other.colors.to(self.colors.dtype)]),
            torch.cat([self.evenodd, other.evenodd]),
            grads,
        )

    def select(self, keep: list[int]) -> PathSet:
        """The paths whose indices are in ``keep`` (order kept, renumbered)."""
        remap = {old: new for new, old in enumerate(keep)}
        parts, counts, owners = [], [], []
        for owner, pts in self.outlines():
            if owner in remap:
                parts.append(pts)
                counts.append(pts.shape[0] // 3)
                owners.append(remap[owner])
        idx = torch.as_tensor(keep, dtype=torch.long)
        return PathSet(
            torch.cat(parts) if parts else self.points[:0],
            torch.as_tensor(counts, dtype=torch.long),
            torch.as_tensor(owners, dtype=torch.long),
            self.colors[idx],
            self.evenodd[idx],
            None if self.gradients is None else self.gradients[idx],
        )

    def render(self, height: int, width: int, *, background: Tensor | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
               **kwargs) -> RenderResult:
        d = device if device is not None else self.points.device
        return render_with_stats(
            self.points.to(device=d, dtype=dtype),
            self.colors.to(device=d, dtype=dtype),
            height,
            width,
            segment_counts=self.segment_counts.to(d),
            subpath_owner=self.owner.to(d),
            fill_rule=self.evenodd.to(d),
            background=background,
            gradients=None if self.gradients is None else self.gradients.to(device=d, dtype=dtype),
            **kwargs,
        )


def dump_paths(points: Tensor, colors: Tensor) -> str:
    """The optimizer's (P, 3K, 2) points and (P, 4) or (P, 11) colour rows as JSON text, full float precision: a
    layer vectorized by the model's ``vectorize`` call is kept this way until the stack is refined."""
    import json

    return json.dumps({"points": points.tolist(), "colors": colors.tolist()})


def load_paths(text: str) -> tuple[Tensor, Tensor]:
    """Inverse of ``dump_paths``."""
    import json

    data = json.loads(text)
    pts = torch.tensor(data["points"], dtype=torch.float32).reshape(len(data["colors"]), -1, 2)
    return pts, torch.tensor(data["colors"], dtype=torch.float32)
