"""Polygon edges cut into pieces that each lie inside one pixel, and their area deposits.

This is the signed-area accumulation used by font rasterizers (font-rs, stb_truetype), vectorised:
a piece inside pixel (row, col) from S to E leaves ``d * (col + 1 - xm)`` in column ``col`` and the
rest of ``d = E_y - S_y`` in column ``col + 1``, where ``xm`` is its mean x; a running sum along the
row then gives every pixel's winding-weighted covered area exactly (for an outline that does not
cross itself). The cost grows with the perimeter, because only edges are visited.

Everything left of the canvas lands in column 0 (it covers all pixels to its right); pieces at or
right of the canvas are kept but never deposited. Rows outside the canvas are dropped.

The cutting is bookkeeping without gradients (``plan_pieces``). The deposits are one autograd
function with a hand-written backward: a piece's end is either an edge end or the point where the
edge crosses a pixel boundary, and such a crossing moves along the boundary when the edge moves,
which is a two-line formula. Letting autograd record the ~40 elementwise steps of the cutting
instead cost more than the compositing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .fusion import fusable
from .geometry import Polygons
from .tiles import TileLayout

FREE, ROW_CLIP, COLUMN_CLIP = 0, 1, 2  # what fixes a piece's end: the edge's own end, or a boundary


@dataclass(frozen=True)
class PiecePlan:
    """Each piece: its edge, pixel, and ends S, E at edge parameters ``ts`` < ``te``."""

    edge: Tensor  # (Q,) long
    row: Tensor  # (Q,) long
    col: Tensor  # (Q,) long, -1 = left of the canvas, width = right of it
    ts: Tensor  # (Q,)
    te: Tensor
    start_kind: Tensor  # (Q,) uint8: FREE / ROW_CLIP / COLUMN_CLIP
    end_kind: Tensor
    start: Tensor  # (Q, 2) S
    end: Tensor  # (Q, 2) E
    width: int


@dataclass(frozen=True)
class Deposits:
    """Area deposits: ``weights[i]`` is added at ``pixel_index[i]`` of the sorted block layout
    ``(tile_w, tile_h, n)`` and at ``row_index[i]`` of the path-major per-row totals ``(tile_h, n)``.
    Dropped deposits point one past the end of each buffer."""

    weights: Tensor  # (2Q,) differentiable
    pixel_index: Tensor  # (2Q,) long
    row_index: Tensor  # (2Q,) long
    plan: PiecePlan
    ends: Tensor  # (E, 4) the edges, differentiable

    @property
    def own_pixel(self) -> Tensor:
        """(Q,) each piece's own pixel in the block layout (the left-column deposits)."""
        return self.pixel_index[: self.plan.edge.numel()]


def _expand(count: Tensor) -> tuple[Tensor, Tensor]:
    """For counts per item: (item index, rank within item) of every output slot."""
    item = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
    first = torch.cumsum(count, 0) - count
    return item, torch.arange(item.numel(), device=count.device) - first.index_select(0, item)


def _param(p0: Tensor, delta: Tensor, at: Tensor) -> Tensor:
    """Edge parameter where the coordinate reaches ``at`` (+-inf where the edge is parallel)."""
    return (at - p0) / delta


@fusable
def _row_spans(ends: Tensor, keep: Tensor, height: int) -> tuple[Tensor, Tensor]:
    """Per edge: the rows it spans as a count (0 for dropped edges), and its table x0 y0 dx dy r0."""
    x0, y0, x1, y1 = ends.unbind(1)
    ylo, yhi = torch.minimum(y0, y1), torch.maximum(y0, y1)
    keep = keep & (yhi >= 0) & (ylo < height)
    r0 = ylo.clamp(0, height - 1).floor().long()
    r1 = torch.maximum(yhi.clamp(0, height).ceil().long() - 1, r0).clamp(max=height - 1)
    table = torch.stack([x0, y0, x1 - x0, y1 - y0, r0.to(ends.dtype)], 1)
    return torch.where(keep, r1 - r0 + 1, 0), table


@fusable
def _row_pieces(table: Tensor, edge: Tensor, k: Tensor, width: int) -> tuple[Tensor, Tensor]:
    """Row piece ``k`` of each listed edge: the part with r <= y <= r + 1, as a parameter range.
    Returns its cell count and its table x0 y0 dx dy row ts te t_in t_out c0."""
    ex0, ey0, edx, edy, er0 = table.index_select(0, edge).unbind(1)
    rowf = er0 + k
    flat = edy == 0
    ta, tb = _param(ey0, edy, rowf), _param(ey0, edy, rowf + 1)
    t_in = torch.where(flat, 0.0, torch.minimum(ta, tb))
    t_out = torch.where(flat, 1.0, torch.maximum(ta, tb))
    rts, rte = t_in.clamp(min=0), t_out.clamp(max=1)
    xa, xb = ex0 + rts * edx, ex0 + rte * edx
    xlo, xhi = torch.minimum(xa, xb), torch.maximum(xa, xb)
    c0 = xlo.floor().clamp(-1, width).long()
    c1 = torch.maximum((xhi.ceil() - 1).clamp(-1, width).long(), c0)
    return c1 - c0 + 1, torch.stack([ex0, ey0, edx, edy, rowf, rts, rte, t_in, t_out, c0.to(table.dtype)], 1)


@fusable
def _cell_pieces(row_table: Tensor, rp: Tensor, edge: Tensor, k: Tensor, width: int) -> tuple[Tensor, ...]:
    """Cell piece ``k`` of each listed row piece: the part inside one pixel, its ends clipped
    exactly onto the pixel's boundary."""
    px0, py0, pdx, pdy, row_q, rts, rte, t_in, t_out, pc0 = row_table.index_select(0, rp).unbind(1)
    e = edge.index_select(0, rp)
    colf = pc0 + k
    col = colf.long()
    vertical = pdx == 0
    lo_x = torch.where(col < 0, -torch.inf, colf)  # column -1 reaches to -inf, column W to +inf
    hi_x = torch.where(col >= width, torch.inf, colf + 1)
    ca, cb = _param(px0, pdx, lo_x), _param(px0, pdx, hi_x)
    c_in = torch.where(vertical, -torch.inf, torch.minimum(ca, cb)).nan_to_num(nan=-torch.inf)
    c_out = torch.where(vertical, torch.inf, torch.maximum(ca, cb)).nan_to_num(nan=torch.inf)
    ts = torch.maximum(rts, c_in)
    te = torch.maximum(torch.minimum(rte, c_out), ts)  # rounding can cross them on a corner
    start_kind = torch.where(c_in > rts, COLUMN_CLIP, torch.where(t_in > 0, ROW_CLIP, FREE)).to(torch.uint8)
    end_kind = torch.where(c_out < rte, COLUMN_CLIP, torch.where(t_out < 1, ROW_CLIP, FREE)).to(torch.uint8)
    down, right = pdy > 0, pdx > 0
    # clipped ends sit exactly on their boundary, so the pieces of a row add up exactly
    sx = torch.where(start_kind == COLUMN_CLIP, torch.where(right, lo_x, hi_x), px0 + ts * pdx)
    sy = torch.where(start_kind == ROW_CLIP, torch.where(down, row_q, row_q + 1), py0 + ts * pdy)
    ex = torch.where(end_kind == COLUMN_CLIP, torch.where(right, hi_x, lo_x), px0 + te * pdx)
    ey = torch.where(end_kind == ROW_CLIP, torch.where(down, row_q + 1, row_q), py0 + te * pdy)
    return e, row_q.long(), col, ts, te, start_kind, end_kind, torch.stack([sx, sy], 1), torch.stack([ex, ey], 1)


@torch.no_grad()
def plan_pieces(ends: Tensor, keep: Tensor, height: int, width: int) -> PiecePlan:
    """Cut edges ``ends`` (E, 4) = x0 y0 x1 y1 at integer rows, then integer columns.

    Per-item values travel as rows of one table and are gathered together: one row gather of k
    values costs about what one gather of a single value does.
    """
    rows, edge_table = _row_spans(ends, keep, height)
    edge, k = _expand(rows)
    cells, row_table = _row_pieces(edge_table, edge, k, width)
    rp, k = _expand(cells)
    return PiecePlan(*_cell_pieces(row_table, rp, edge, k, width), width)


def _move_with_edge(g: Tensor, kind: Tensor, delta: Tensor) -> Tensor:
    """Gradient on a piece end -> gradient on the point of the edge it follows.

    A crossing with the line y = k moves along that line when the edge moves: dX = dP - D (dP_y / D_y)
    where dP = (1 - t) dP0 + t dP1 and D = P1 - P0. Transposed, the gradient g on X becomes
    g - n (g . D) / (n . D) on the edge point; likewise for x = k. A free end is the edge's end itself.
    """
    gx, gy = g.unbind(1)
    ddx, ddy = delta.unbind(1)
    row = kind == ROW_CLIP
    column = kind == COLUMN_CLIP
    safe_dy = torch.where(ddy == 0, 1.0, ddy)
    safe_dx = torch.where(ddx == 0, 1.0, ddx)
    out_x = torch.where(column, -gy * ddy / safe_dx, gx)
    out_y = torch.where(row, -gx * ddx / safe_dy, gy)
    return torch.stack([out_x, out_y], 1)


@fusable
def _piece_weights(start: Tensor, end: Tensor, col: Tensor, width: int) -> tuple[Tensor, ...]:
    """(2Q,) deposits [left column ..., right column ...], and what the backward needs."""
    d = end[:, 1] - start[:, 1]
    xm_raw = 0.5 * (start[:, 0] + end[:, 0])
    xm = xm_raw.clamp(0, width)
    wr = d * (xm - col.to(start.dtype))
    return torch.cat([d - wr, wr]), d, xm, xm_raw


@fusable
def _piece_grads(g_w: Tensor, ends: Tensor, d: Tensor, xm: Tensor, xm_raw: Tensor, edge: Tensor, col: Tensor,
                 ts: Tensor, te: Tensor, start_kind: Tensor, end_kind: Tensor, width: int) -> Tensor:
    """Gradient on the deposits -> gradient on the edge ends."""
    q = d.numel()
    gl, gr = g_w[:q], g_w[q:]
    colf = col.to(ends.dtype)
    g_d = gl * (colf + 1 - xm) + gr * (xm - colf)
    g_xm = d * (gr - gl) * ((xm_raw >= 0) & (xm_raw <= width))
    half = 0.5 * g_xm
    delta = (ends[:, 2:] - ends[:, :2]).index_select(0, edge)
    g_s = _move_with_edge(torch.stack([half, -g_d], 1), start_kind, delta)
    g_e = _move_with_edge(torch.stack([half, g_d], 1), end_kind, delta)
    # the end at parameter t is (1 - t) P0 + t P1
    ts, te = ts[:, None], te[:, None]
    g_p0 = (1 - ts) * g_s + (1 - te) * g_e
    g_p1 = ts * g_s + te * g_e
    return torch.zeros_like(ends).index_add_(0, edge, torch.cat([g_p0, g_p1], 1))


class PieceDeposits(torch.autograd.Function):
    """(E, 4) edge ends -> (2Q,) deposits [left column ..., right column ...]."""

    @staticmethod
    def forward(ctx, ends: Tensor, plan: PiecePlan):
        weights, d, xm, xm_raw = _piece_weights(plan.start, plan.end, plan.col, plan.width)
        ctx.save_for_backward(ends, d, xm, xm_raw)
        ctx.plan = plan
        return weights

    @staticmethod
    def backward(ctx, g_w):
        ends, d, xm, xm_raw = ctx.saved_tensors
        p: PiecePlan = ctx.plan
        return _piece_grads(g_w, ends, d, xm, xm_raw, p.edge, p.col, p.ts, p.te, p.start_kind, p.end_kind,
                            p.width), None


@fusable
def _addresses(per_path: Tensor, path: Tensor, row: Tensor, col: Tensor, rank: Tensor, th: int, tw: int,
               n: int) -> tuple[Tensor, Tensor]:
    """Each piece's two deposits (its own column and the next) addressed into the block layout and
    into the per-row totals; dropped deposits point one past the end of each buffer."""
    across, first, ty0, tx0 = per_path.index_select(0, path).unbind(1)
    tile_row = torch.div(row, th, rounding_mode="floor")
    row_in = row - tile_row * th
    run = first + (tile_row - ty0) * across

    def address(c: Tensor) -> tuple[Tensor, Tensor]:
        cc = c.clamp(min=0)
        tile_col = torch.div(cc, tw, rounding_mode="floor")
        local = tile_col - tx0
        ok = (c >= 0) & (local >= 0) & (local < across)
        block = (run + local).clamp(0, max(n - 1, 0))
        pixel = ((cc - tile_col * tw) * th + row_in) * n + rank.index_select(0, block)
        return torch.where(ok, pixel, th * tw * n).long(), torch.where(ok, row_in * n + block, th * n).long()

    pl, rl = address(col)
    pr, rr = address(col + 1)
    return torch.cat([pl, pr]), torch.cat([rl, rr])


def deposits(poly: Polygons, layout: TileLayout) -> Deposits:
    """Every area deposit of every path, addressed into the block layout."""
    v = poly.vertices
    ends = torch.cat([v, v.index_select(0, poly.next_vertex)], 1)
    keep_edge = layout.visible.index_select(0, poly.path_id)
    plan = plan_pieces(ends.detach(), keep_edge, layout.height, layout.width)
    weights = PieceDeposits.apply(ends, plan)
    with torch.no_grad():
        th, tw, n = layout.tile_h, layout.tile_w, layout.num_blocks
        # int32 where it fits: int64 arithmetic is several times slower on CPU
        small = torch.int32 if th * tw * max(n, 1) < 2**31 - 1 else torch.long
        per_path = torch.stack([layout.tiles_across, layout.first_block, layout.tile_y0, layout.tile_x0], 1)
        pixel, row = _addresses(per_path.to(small), poly.path_id.index_select(0, plan.edge), plan.row.to(small),
                                plan.col.to(small), layout.rank.to(small), th, tw, n)
    return Deposits(weights, pixel, row, plan, ends)
