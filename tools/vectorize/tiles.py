"""Which (path, tile) blocks a scene touches, and the order they are composited in.

Work is done only inside each path's bounding box, cut into small square tiles. A "block" is one
(path, tile) pair; all per-pixel arrays have shape ``(tile_h, tile_w, n_blocks)``. Blocks are sorted
by (tile, painter order) with one integer sort, so compositing becomes segmented scans over runs of
consecutive blocks: cost follows covered area, never paths x pixels.

Two orders appear: "path-major" (a path's blocks consecutive, row by row through its box: where
coverage carries from left to right) and "sorted" (tile-major: where compositing happens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .fusion import fusable


@dataclass(frozen=True)
class TileLayout:
    height: int
    width: int
    tile_h: int
    tile_w: int
    tiles_x: int
    tiles_y: int
    num_blocks: int
    # per path
    visible: Tensor  # (P,) bool: the bounding box meets the canvas
    tile_x0: Tensor  # (P,) first tile column of the box
    tile_y0: Tensor  # (P,) first tile row of the box
    tiles_across: Tensor  # (P,) tiles per row of the box (0 when not visible)
    first_block: Tensor  # (P,) path-major index of the path's first block
    # per block, path-major order
    run_start: Tensor  # (n,) first block of the same (path, tile row) run
    run_end: Tensor  # (n,) last block of that run
    rank: Tensor  # (n,) sorted position of each path-major block
    # per block, sorted order
    order: Tensor  # (n,) path-major index of each sorted block
    block_path: Tensor  # (n,) path of each sorted block
    segment: Tensor  # (n,) which touched tile (segment) each sorted block belongs to
    # per touched tile (segment)
    tiles: Tensor  # (nt,) tile id = tile_row * tiles_x + tile_col
    seg_start: Tensor  # (nt,) first sorted block of the segment
    seg_end: Tensor  # (nt,) last sorted block of the segment

    @property
    def block_pixels(self) -> int:
        return self.tile_h * self.tile_w

    @property
    def num_tiles_touched(self) -> int:
        return int(self.tiles.numel())


def path_bounds(vertices: Tensor, path_id: Tensor, num_paths: int) -> Tensor:
    """(P, 4) = xmin, ymin, xmax, ymax of each path's polygon (no gradient)."""
    v = vertices.detach()
    lo = v.new_full((num_paths, 2), float("inf"))
    hi = v.new_full((num_paths, 2), float("-inf"))
    idx = path_id[:, None].expand(-1, 2)
    lo = lo.scatter_reduce(0, idx, v, "amin")
    hi = hi.scatter_reduce(0, idx, v, "amax")
    return torch.cat([lo, hi], 1)


@fusable
def _path_tiles(bounds: Tensor, height: int, width: int, tile: int) -> tuple[Tensor, ...]:
    """Per path: whether its box meets the canvas, its first tile column and row, tiles per row
    and blocks (both 0 when not visible)."""
    xmin, ymin, xmax, ymax = bounds.unbind(1)
    visible = (xmax > 0) & (xmin < width) & (ymax > 0) & (ymin < height)
    # clamp before the integer cast so far-away coordinates cannot overflow
    tx0 = xmin.clamp(0, width - 1).floor().long() // tile
    tx1 = xmax.clamp(0, width - 1).floor().long() // tile
    ty0 = ymin.clamp(0, height - 1).floor().long() // tile
    ty1 = ymax.clamp(0, height - 1).floor().long() // tile
    across = torch.where(visible, tx1 - tx0 + 1, 0)
    down = torch.where(visible, ty1 - ty0 + 1, 0)
    return visible, tx0, ty0, across, across * down


@fusable
def _block_tiles(bpath: Tensor, first: Tensor, across: Tensor, tx0: Tensor, ty0: Tensor,
                 tiles_x: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per path-major block: its (path, tile row) run's first and last block, and its tile id."""
    local = torch.arange(bpath.numel(), device=bpath.device) - first[bpath]
    b_across = across[bpath]
    local_row = torch.div(local, b_across, rounding_mode="floor")
    local_col = local - local_row * b_across
    run_start = first[bpath] + local_row * b_across
    tile_id = (ty0[bpath] + local_row) * tiles_x + tx0[bpath] + local_col
    return run_start, run_start + b_across - 1, tile_id


@torch.no_grad()
def build_layout(bounds: Tensor, height: int, width: int, tile: int) -> TileLayout:
    device = bounds.device
    num_paths = bounds.shape[0]
    tiles_x = (width + tile - 1) // tile
    tiles_y = (height + tile - 1) // tile
    visible, tx0, ty0, across, per_path = _path_tiles(bounds, height, width, tile)
    first = torch.cumsum(per_path, 0) - per_path
    n = int(per_path.sum())
    bpath = torch.repeat_interleave(torch.arange(num_paths, device=device), per_path, output_size=n)
    run_start, run_end, tile_id = _block_tiles(bpath, first, across, tx0, ty0, tiles_x)

    _, order = torch.sort(tile_id * max(num_paths, 1) + bpath)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=device)
    sorted_tiles = tile_id[order]
    tiles, segment, counts = torch.unique_consecutive(sorted_tiles, return_inverse=True, return_counts=True)
    seg_end = torch.cumsum(counts, 0) - 1
    seg_start = seg_end - counts + 1
    return TileLayout(
        height=height,
        width=width,
        tile_h=tile,
        tile_w=tile,
        tiles_x=tiles_x,
        tiles_y=tiles_y,
        num_blocks=n,
        visible=visible,
        tile_x0=tx0,
        tile_y0=ty0,
        tiles_across=across,
        first_block=first,
        run_start=run_start,
        run_end=run_end,
        rank=rank,
        order=order,
        block_path=bpath[order],
        segment=segment,
        tiles=tiles,
        seg_start=seg_start,
        seg_end=seg_end,
    )
