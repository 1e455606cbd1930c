"""Polygon edges cut into pieces that each lie inside one pixel, and their area deposits.

This is the signed-area accumulation used by font rasterizers (font-rs, stb_truetype), vectorised:
a piece inside pixel (row, col) with signed height ``dy`` and mean x ``xm`` leaves
``dy * (col + 1 - xm)`` in column ``col`` and the rest of ``dy`` in column ``col + 1``; a running sum
along the row then gives every pixel's winding-weighted covered area exactly (for a polygon that
does not cross itself). The cost grows with the perimeter, because only edges are visited.

Everything left of the canvas lands in column 0 (it covers all pixels to its right); pieces at or
right of the canvas are kept but never deposited. Rows outside the canvas are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .geometry import Polygons
from .tiles import TileLayout

_FAR = 1e30


@dataclass(frozen=True)
class Deposits:
    """Area deposits: ``weights[i]`` is added at ``pixel_index[i]`` of the sorted block layout
    ``(tile_w, tile_h, n)`` and at ``row_index[i]`` of the path-major per-row totals ``(tile_h, n)``.
    Dropped deposits point one past the end of each buffer."""

    weights: Tensor  # (2Q,) differentiable
    pixel_index: Tensor  # (2Q,) long
    row_index: Tensor  # (2Q,) long


def _row_pieces(x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor, keep: Tensor, height: int):
    """Split edges at integer y. Returns (edge index, row, xa, xb, dy) of each row piece."""
    with torch.no_grad():
        ylo = torch.minimum(y0, y1)
        yhi = torch.maximum(y0, y1)
        keep = keep & (yhi >= 0) & (ylo < height)
        r0 = ylo.clamp(0, height - 1).floor().long()
        r1 = torch.maximum(yhi.clamp(0, height).ceil().long() - 1, r0).clamp(max=height - 1)
        count = torch.where(keep, r1 - r0 + 1, 0)
        edge = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
        first = torch.cumsum(count, 0) - count
        row = r0[edge] + torch.arange(edge.numel(), device=count.device) - first[edge]
        rowf = row.to(x0.dtype)
    px0, py0, px1, py1 = (t[edge] for t in (x0, y0, x1, y1))
    ya = torch.clamp(py0, rowf, rowf + 1)
    yb = torch.clamp(py1, rowf, rowf + 1)
    dy = yb - ya  # signed, and keeps the gradient of horizontal edges
    with torch.no_grad():
        a_inside = ya == py0
        b_inside = yb == py1
    span = py1 - py0
    safe = torch.where(a_inside & b_inside, torch.ones_like(span), span)
    ta = torch.where(a_inside, torch.zeros_like(span), ((ya - py0) / safe).clamp(0, 1))
    tb = torch.where(b_inside, torch.ones_like(span), ((yb - py0) / safe).clamp(0, 1))
    dx = px1 - px0
    return edge, row, px0 + ta * dx, px0 + tb * dx, dy


def _cell_pieces(xa: Tensor, xb: Tensor, dy: Tensor, width: int):
    """Split row pieces at integer x. Returns (row-piece index, col, wl, wr) of each cell piece."""
    with torch.no_grad():
        xlo = torch.minimum(xa, xb)
        xhi = torch.maximum(xa, xb)
        flo = xlo.floor()
        chi = xhi.ceil() - 1
        single_column = chi <= flo
        c0 = flo.clamp(-1, width).long()
        c1 = torch.maximum(chi.clamp(-1, width).long(), c0)
        count = c1 - c0 + 1
        piece = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
        first = torch.cumsum(count, 0) - count
        col = c0[piece] + torch.arange(piece.numel(), device=count.device) - first[piece]
        colf = col.to(xa.dtype)
        single = single_column[piece]
        lo = torch.where(col < 0, torch.full_like(colf, -_FAR), colf)
        hi = torch.where(col >= width, torch.full_like(colf, _FAR), colf + 1)
    qa, qb, qdy = xa[piece], xb[piece], dy[piece]
    sa = torch.clamp(qa, lo, hi)
    sb = torch.clamp(qb, lo, hi)
    span = qb - qa
    one = torch.ones_like(span)
    frac = torch.where(single, one, (sb - sa) / torch.where(single, one, span))
    d = qdy * frac
    xm = (0.5 * (sa + sb)).clamp(0, width)
    wr = d * (xm - colf)
    return piece, col, d - wr, wr


def deposits(poly: Polygons, layout: TileLayout) -> Deposits:
    """Every area deposit of every path, addressed into the block layout."""
    v = poly.vertices
    w = v[poly.next_vertex]
    keep_edge = layout.visible[poly.path_id]
    edge, row, xa, xb, dy = _row_pieces(v[:, 0], v[:, 1], w[:, 0], w[:, 1], keep_edge, layout.height)
    piece, col, wl, wr = _cell_pieces(xa, xb, dy, layout.width)
    with torch.no_grad():
        th, tw, n = layout.tile_h, layout.tile_w, layout.num_blocks
        path = poly.path_id[edge[piece]]
        row = row[piece]
        tile_row = torch.div(row, th, rounding_mode="floor")
        row_in = row - tile_row * th
        across = layout.tiles_across[path]
        run = layout.first_block[path] + (tile_row - layout.tile_y0[path]) * across
        tx0 = layout.tile_x0[path]

        def address(c: Tensor) -> tuple[Tensor, Tensor]:
            cc = c.clamp(min=0)
            tile_col = torch.div(cc, tw, rounding_mode="floor")
            local = tile_col - tx0
            ok = (c >= 0) & (local >= 0) & (local < across)
            block = (run + local).clamp(0, max(n - 1, 0))
            pixel = ((cc - tile_col * tw) * th + row_in) * n + layout.rank[block]
            return torch.where(ok, pixel, th * tw * n), torch.where(ok, row_in * n + block, th * n)

        pl, rl = address(col)
        pr, rr = address(col + 1)
    return Deposits(torch.cat([wl, wr]), torch.cat([pl, pr]), torch.cat([rl, rr]))
