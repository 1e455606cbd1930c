"""Exact coverage in the pixels where a path's outline meets itself.

The signed-area sum in ``edges`` gives each pixel the integral of the winding number over it. The
fill wants the integral of min(|w|, 1) (nonzero) or of the distance to the nearest even number
(evenodd). The two agree wherever the winding numbers inside the pixel lie in one piece where the
fill is linear in w: {0, 1}, {-1, 0}, w >= 1 or w <= -1 (evenodd: two consecutive integers). One
stretch of outline crossing a pixel changes w by one, so only pixels the outline enters more than
once can go wrong: a self-crossing, a fold, the waist of a figure-eight. There the sum cancels or
doubles, and an optimizer learns to use that: what it sees is not what a browser shows.

Those pixels are found from the pieces (a pixel whose pieces do not form one chain of consecutive
edges), and their coverage is recomputed: on ``SUBSCANLINES`` horizontal lines through the pixel,
the outline's crossings are sorted, the winding between them is known from the pieces to the
left in the same row, and the covered length along each line is exact. The result replaces the
area-sum value only where the windings found really leave one linear piece, so pixels the area
sum gets exactly right keep it. Gradients reach the edge ends through the crossings' x positions;
the cost follows the number of such pixels, not the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .edges import FREE, PiecePlan, _expand

SUBSCANLINES = 16


@dataclass(frozen=True)
class Overrides:
    """Coverage values that replace the area sum at ``index`` of the block pixel buffer."""

    index: Tensor  # (M,) long
    coverage: Tensor  # (M,) differentiable


@dataclass(frozen=True)
class _Candidates:
    row: Tensor  # (M,) long
    col: Tensor  # (M,) long
    evenodd: Tensor  # (M,) bool
    inner_owner: Tensor  # (N,) which candidate each of its own pieces belongs to
    inner_piece: Tensor  # (N,) long piece index
    left_owner: Tensor  # (L,) which candidate each piece left of it in its row belongs to
    left_piece: Tensor  # (L,) long piece index
    address: Tensor  # (M,) long index into the pixel buffer


def _group_starts(sorted_keys: Tensor) -> tuple[Tensor, Tensor]:
    """For sorted keys: (start of each item's group, count of each item's group)."""
    _, inverse, counts = torch.unique_consecutive(sorted_keys, return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    return starts.index_select(0, inverse), counts.index_select(0, inverse)


def _ranges(first: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """(owner, position) of every position in the ranges [first, first + count)."""
    owner, rank = _expand(count)
    return owner, first.index_select(0, owner) + rank


@torch.no_grad()
def _candidates(plan: PiecePlan, path_of_edge: Tensor, next_edge: Tensor, evenodd: Tensor,
                own_pixel: Tensor, height: int, dropped: int) -> _Candidates | None:
    q = plan.edge.numel()
    if q == 0:
        return None
    dev = own_pixel.device
    # A run is a chain of pieces of consecutive edges inside one pixel; a piece starts a run unless
    # its edge begins in the pixel where the previous edge ended. Runs are counted in the block
    # pixel buffer itself: a few passes over the pieces, no sort, for every scene.
    edge = plan.edge
    prev_edge = torch.empty_like(next_edge)
    prev_edge[next_edge] = torch.arange(next_edge.numel(), device=dev)
    ends_free = plan.end_kind == FREE
    last_pixel = torch.full_like(path_of_edge, -1).index_copy_(0, edge[ends_free], own_pixel[ends_free])
    chained = (plan.start_kind == FREE) & (last_pixel.index_select(0, prev_edge.index_select(0, edge)) == own_pixel)
    # one byte per pixel keeps this pass cheap on CPU (a count past 255 wraps: such a pixel keeps its
    # area sum); CUDA gets int32, which its atomics are sure to handle
    small = torch.uint8 if dev.type == "cpu" else torch.int32
    runs = torch.zeros(dropped + 1, dtype=small, device=dev).index_add_(0, own_pixel, (~chained).to(small))
    runs[dropped] = 0
    in_candidate = runs.index_select(0, own_pixel) >= 2
    if not bool(in_candidate.any()):
        return None
    # the pieces of every (path, row) holding a candidate pixel, sorted by pixel
    path = path_of_edge.index_select(0, edge)
    row_key = path * height + plan.row
    flagged = torch.zeros(int(path_of_edge.max()) * height + height + 1, dtype=torch.bool, device=dev)
    flagged[row_key[in_candidate]] = True
    sub = torch.nonzero(flagged.index_select(0, row_key)).squeeze(1)
    key = row_key.index_select(0, sub) * (plan.width + 2) + plan.col.index_select(0, sub) + 1
    key, order = torch.sort(key)
    order = sub.index_select(0, order)  # sorted position -> piece
    start, count = _group_starts(key)
    firsts = torch.nonzero((start == torch.arange(key.numel(), device=dev))
                           & in_candidate.index_select(0, order)).squeeze(1)
    inner_owner, inner = _ranges(firsts, count.index_select(0, firsts))
    # the pieces left of the pixel in the same (path, row) run up to its first piece
    row_start, _ = _group_starts(row_key.index_select(0, order))
    lo = row_start.index_select(0, firsts)
    left_owner, left = _ranges(lo, firsts - lo)
    first_piece = order.index_select(0, firsts)
    return _Candidates(plan.row.index_select(0, first_piece), plan.col.index_select(0, first_piece),
                       evenodd.index_select(0, path.index_select(0, first_piece)), inner_owner,
                       order.index_select(0, inner), left_owner, order.index_select(0, left),
                       own_pixel.index_select(0, first_piece))


def _lines(plan: PiecePlan, pieces: Tensor, row: Tensor, s: int) -> tuple[Tensor, Tensor, Tensor]:
    """The scanlines ``row + (i + 0.5) / s`` each piece crosses, as a range [lo, hi) of i, and its
    direction (+1 downwards). Half-open in y, as every scanline rule must be."""
    sy = plan.start[:, 1].index_select(0, pieces) - row
    ey = plan.end[:, 1].index_select(0, pieces) - row
    lo = (torch.minimum(sy, ey) * s - 0.5).ceil().clamp(0, s).long()
    hi = (torch.maximum(sy, ey) * s - 0.5).ceil().clamp(0, s).long()
    return lo, torch.maximum(hi, lo), torch.where(ey > sy, 1, -1)


def _fill(w: Tensor, evenodd: Tensor) -> Tensor:
    return torch.where(evenodd, torch.remainder(w, 2), w.abs().clamp(max=1))


def _line_starts(line: Tensor) -> Tensor:
    """Whether each entry of a sorted ``line`` is its line's first (no entries: none)."""
    first = torch.ones_like(line, dtype=torch.bool)
    first[1:] = line[1:] != line[:-1]
    return first


def _stretches(xl: Tensor, line: Tensor, lines: int) -> tuple[Tensor, Tensor]:
    """For crossings sorted by (line, x) at ``xl`` in [0, 1] along the pixel: the length from each
    to the next crossing of its line (or the pixel's right side), and each line's stretch before
    its first crossing (the whole pixel for lines crossed nowhere)."""
    first = _line_starts(line)
    nxt = torch.ones_like(xl)
    nxt[:-1] = torch.where(first[1:], 1.0, xl[1:])
    after = nxt - xl
    before = xl.new_ones(lines).index_put((line[first],), xl[first])
    return after, before


def _one_linear_piece(w_left: Tensor, before: Tensor, w_after: Tensor, after: Tensor, owner: Tensor,
                      evenodd: Tensor) -> Tensor:
    """(M,) whether the windings met in each pixel (those on stretches of non-zero length) lie
    where the fill is linear in w, so the area sum is already exact there."""
    m = evenodd.numel()
    big = torch.iinfo(w_left.dtype).max
    lo = torch.where(before > 1e-9, w_left, big).view(m, -1).amin(1).scatter_reduce(
        0, owner, torch.where(after > 1e-9, w_after, big), "amin")
    hi = torch.where(before > 1e-9, w_left, -big).view(m, -1).amax(1).scatter_reduce(
        0, owner, torch.where(after > 1e-9, w_after, -big), "amax")
    nonzero = (lo >= 1) | (hi <= -1) | ((lo >= 0) & (hi <= 1)) | ((lo >= -1) & (hi <= 0))
    return torch.where(evenodd, hi - lo <= 1, nonzero)


def crossing_overrides(ends: Tensor, plan: PiecePlan, path_of_edge: Tensor, next_edge: Tensor,
                       evenodd: Tensor, own_pixel: Tensor, height: int, dropped: int,
                       subscanlines: int = SUBSCANLINES) -> Overrides | None:
    """Exact coverage for the pixels where the area sum is wrong; ``None`` when there are none.

    ``ends`` (E, 4) are the edges (differentiable), ``evenodd`` (P,) bool per path, ``own_pixel``
    (Q,) each piece's address in the pixel buffer (``dropped`` where it has none). Every crossing
    of a candidate pixel's lines is one entry (no padding); the walk runs without gradients, and
    the differentiable lengths are rebuilt only for the pixels whose result is used.
    """
    cand = _candidates(plan, path_of_edge, next_edge, evenodd, own_pixel, height, dropped)
    if cand is None:
        return None
    m, s, dev = cand.row.numel(), subscanlines, ends.device
    row = cand.row.to(plan.start.dtype)
    with torch.no_grad():
        # winding left of the pixel on each line: a difference array over the lines each left piece spans
        lo, hi, step = _lines(plan, cand.left_piece, row.index_select(0, cand.left_owner), s)
        diff = torch.zeros(m, s + 1, dtype=torch.int32, device=dev)
        base = cand.left_owner * (s + 1)
        diff.view(-1).index_add_(0, torch.cat([base + lo, base + hi]), torch.cat([step, -step]).to(torch.int32))
        w_left = torch.cumsum(diff[:, :s], 1, dtype=torch.int32).view(-1)  # (M * S,)
        # one entry per (own piece, line it crosses)
        lo, hi, step = _lines(plan, cand.inner_piece, row.index_select(0, cand.inner_owner), s)
        which, line_of = _ranges(lo, hi - lo)
        owner = cand.inner_owner.index_select(0, which)
        line = owner * s + line_of
        piece = cand.inner_piece.index_select(0, which)
        step = step.index_select(0, which).to(torch.int32)
        x = _entry_x(ends.detach(), plan, piece, line_of, cand.row[owner], cand.col[owner], s)
        order = torch.sort(line.double() * 2 + x.double()).indices
        line, piece, step, x = (t.index_select(0, order) for t in (line, piece, step, x))
        running = torch.cumsum(step, 0, dtype=torch.int32)
        firsts = _line_starts(line)
        start_run = (running - step)[firsts]
        w_after = w_left.index_select(0, line) + running - torch.repeat_interleave(
            start_run, torch.diff(torch.cat([torch.nonzero(firsts).squeeze(1), line.new_tensor([line.numel()])])))
        after, before = _stretches(x, line, m * s)
        owner = torch.div(line, s, rounding_mode="floor")
        wrong = ~_one_linear_piece(w_left, before, w_after, after, owner, cand.evenodd)
        if not bool(wrong.any()):
            return None
        keep = wrong.index_select(0, owner)
        line, piece, w_after = (t[keep] for t in (line, piece, w_after))
        pixels = torch.nonzero(wrong).squeeze(1)
    # the same walk with gradients, on the wrong pixels' crossings only
    owner = torch.div(line, s, rounding_mode="floor")
    x = _entry_x(ends, plan, piece, line - owner * s, cand.row[owner], cand.col[owner], s)
    after, before = _stretches(x, line, m * s)
    eo = cand.evenodd.repeat_interleave(s)
    per_line = (_fill(w_left, eo).to(x.dtype) * before).index_add(
        0, line, _fill(w_after, eo.index_select(0, line)).to(x.dtype) * after)
    coverage = per_line.view(m, s).index_select(0, pixels).sum(1) / s
    return Overrides(cand.address.index_select(0, pixels), coverage)


def _entry_x(ends: Tensor, plan: PiecePlan, piece: Tensor, line_of: Tensor, row: Tensor, col: Tensor,
             s: int) -> Tensor:
    """Where each piece crosses its line, as a fraction of the pixel's width (differentiable)."""
    x0, y0, x1, y1 = ends.index_select(0, plan.edge.index_select(0, piece)).unbind(1)
    y = row.to(ends.dtype) + (line_of.to(ends.dtype) + 0.5) / s
    x = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (x - col.to(ends.dtype)).clamp(0, 1)
