"""Differentiable rasterizer for closed cubic Bezier paths with solid RGBA or linear gradient fills.

``render`` is the one entry point: paths in painter's order (index 0 at the back), exact area
anti-aliasing of the flattened outline, nonzero or evenodd fill, alpha compositing over a colour
or a transparent background. It returns premultiplied RGBA, differentiable with respect to the
control points and the colours, with the same code on CPU and CUDA.

Why not DiffVG: it is not on PyPI and is hard to build; this is plain PyTorch, and on CPU it is
much faster because its cost follows the paths' perimeter and covered area (see ``edges`` and
``tiles``), not paths x pixels.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass

import torch
from torch import Tensor

from .composite import TileRaster
from .crossings import SUBSCANLINES, crossing_overrides
from .edges import deposits
from .geometry import check_paths, flatten
from .tiles import TileLayout, build_layout, path_bounds

FILL_RULES = ("nonzero", "evenodd")


@dataclass(frozen=True)
class RenderResult:
    image: Tensor  # (H, W, 4) premultiplied RGBA
    visible_alpha: Tensor  # (P,) per path: sum over pixels of its alpha times what lies above it


def _check_size(height: int, width: int) -> None:
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an int, got {v!r}")
        if v < 1:
            raise ValueError(f"{name} must be at least 1, got {v}")
        if v > 1 << 15:
            raise ValueError(f"{name} {v} is larger than the supported 32768")


def _background(background: Tensor | None, like: Tensor) -> Tensor:
    """Straight RGBA background as a (4,) tensor; None is transparent."""
    if background is None:
        return like.new_zeros(4)
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device).detach().flatten()
    if bg.numel() == 3:
        bg = torch.cat([bg, bg.new_ones(1)])
    if bg.numel() != 4:
        raise ValueError(f"background must be RGB or RGBA (3 or 4 values), got {bg.numel()}")
    if not bool(torch.isfinite(bg).all()) or bool((bg < 0).any() or (bg > 1).any()):
        raise ValueError("background values must lie in [0, 1]")
    return bg


def _evenodd_paths(fill_rule: str | Tensor, num_paths: int, device: torch.device) -> Tensor:
    """(P,) bool, True where a path is filled evenodd."""
    if isinstance(fill_rule, str):
        if fill_rule not in FILL_RULES:
            raise ValueError(f"fill_rule must be one of {FILL_RULES} or a per-path bool tensor, got {fill_rule!r}")
        return torch.full((num_paths,), fill_rule == "evenodd", dtype=torch.bool, device=device)
    rule = torch.as_tensor(fill_rule, device=device)
    if rule.dtype != torch.bool or rule.shape != (num_paths,):
        raise ValueError(f"a per-path fill_rule must be a bool tensor of shape ({num_paths},) (True = evenodd)")
    return rule


def render_with_stats(
    points: Tensor,
    colors: Tensor,
    height: int,
    width: int,
    *,
    segment_counts: Tensor | None = None,
    subpath_owner: Tensor | None = None,
    background: Tensor | None = None,
    fill_rule: str | Tensor = "nonzero",
    samples: int | None = None,
    tolerance: float = 0.1,
    tile: int = 8,
    exact: bool = True,
    exact_lines: int = SUBSCANLINES,
    gradients: Tensor | None = None,
) -> RenderResult:
    """Render and also report each path's visible alpha (for occlusion-aware pruning).

    points: (P, 3K, 2) in pixel units (x right, y down), or (N, 2) with ``segment_counts`` (S,)
    giving each closed outline's segment count and, for paths of several outlines (holes),
    ``subpath_owner`` (S,) giving each outline's path (see ``geometry``).
    colors: (P, 4) straight RGBA; values are clamped to [0, 1].
    background: None (transparent) or straight RGB / RGBA in [0, 1].
    fill_rule: "nonzero", "evenodd", or a (P,) bool tensor, True where a path is evenodd.
    samples: chords per cubic segment; None (default) picks them per segment so the flattened
    outline stays within ``tolerance`` pixels of the curve.
    tile: side of the square work tiles in pixels.
    exact: resolve the pixels where a path's outline meets itself (``crossings``); False keeps the
    bare area sum there, which is faster where outlines fold a lot and wrong in those pixels.
    exact_lines: lines per pixel of that resolution (the error there is at most about 1 / (2 lines)).
    gradients: None (flat fills) or (P, 7) linear gradient fills, as SVG's ``linearGradient`` with
    user-space axis and ``pad`` spread: the axis start x, y and end x, y, then the RGB at the end;
    ``colors`` gives the RGB at the start and the opacity. The colour is taken at pixel centres.
    """
    _check_size(height, width)
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise ValueError(f"samples must be a positive int or None, got {samples!r}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")
    if not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive int, got {tile!r}")
    counts, owner = check_paths(points, colors, segment_counts, subpath_owner)
    if gradients is not None and gradients.shape != (colors.shape[0], 7):
        raise ValueError(f"gradients must be ({colors.shape[0]}, 7), got {tuple(gradients.shape)}")
    bg = _background(background, colors)
    colors = colors.clamp(0, 1)
    poly = flatten(points, counts, owner, colors.shape[0], samples, tolerance)
    layout = build_layout(path_bounds(poly.vertices, poly.path_id, poly.num_paths), height, width, tile)
    evenodd_paths = _evenodd_paths(fill_rule, poly.num_paths, colors.device)
    evenodd = evenodd_paths.index_select(0, layout.block_path) if bool(evenodd_paths.any()) else None
    dep = deposits(poly, layout)
    overrides = None if not exact else crossing_overrides(
        dep.ends, dep.plan, poly.path_id, poly.next_vertex, evenodd_paths, dep.own_pixel, height,
        layout.block_pixels * layout.num_blocks, exact_lines)
    block_colors = colors.index_select(0, layout.block_path)
    fill = block_colors[:, :3].t()
    if gradients is not None:
        fill = _gradient_fill(gradients, fill, layout)
    need_grad = torch.is_grad_enabled() and (dep.weights.requires_grad or fill.requires_grad
                                             or block_colors.requires_grad)
    rgb, trans, visible = TileRaster.apply(
        dep.weights, block_colors[:, 3], fill,
        dep.weights[:0] if overrides is None else overrides.coverage, dep, layout, evenodd,
        None if overrides is None else overrides.index, need_grad
    )
    image = _assemble(rgb, trans, bg, layout)
    per_path = visible.new_zeros(poly.num_paths).index_add_(0, layout.block_path, visible)
    return RenderResult(image, per_path)


AXIS_EPS = 0.01  # px^2: an axis shorter than 0.1 px paints its start colour (a file writes it flat)


def _gradient_fill(gradients: Tensor, start: Tensor, layout: TileLayout) -> Tensor:
    """(3, B, n) colour of every pixel of every block: the start colour ``start`` (3, n) blended
    towards the end colour along the path's axis, ``t`` clamped to [0, 1] (``pad``)."""
    g = gradients.index_select(0, layout.block_path)  # (n, 7)
    th, tw = layout.tile_h, layout.tile_w
    tile = layout.tiles.index_select(0, layout.segment)
    x0 = ((tile % layout.tiles_x) * tw).to(g.dtype) + 0.5  # the block's first pixel centre
    y0 = (torch.div(tile, layout.tiles_x, rounding_mode="floor") * th).to(g.dtype) + 0.5
    dx, dy = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    length2 = dx * dx + dy * dy
    inv = torch.where(length2 > AXIS_EPS, 1 / length2.clamp(min=AXIS_EPS), torch.zeros_like(length2))
    kx, ky = dx * inv, dy * inv  # t rises by these per pixel step; t is affine inside a tile
    t0 = ((x0 - g[:, 0]) * dx + (y0 - g[:, 1]) * dy) * inv
    local = torch.arange(th * tw, device=g.device)
    lx = torch.div(local, th, rounding_mode="floor").to(g.dtype)[:, None]  # pixel x * th + y: column-major
    ly = (local % th).to(g.dtype)[:, None]
    t = torch.addcmul(torch.addcmul(t0[None], ly, ky[None]), lx, kx[None]).clamp(0, 1)  # (B, n)
    end = g[:, 4:7].clamp(0, 1).t()  # (3, n)
    return torch.addcmul(start[:, None, :], t[None], (end - start)[:, None, :])


def render(points: Tensor, colors: Tensor, height: int, width: int, **kwargs) -> Tensor:
    """(H, W, 4) premultiplied RGBA image of the paths; see ``render_with_stats`` for arguments."""
    return render_with_stats(points, colors, height, width, **kwargs).image


def _assemble(rgb: Tensor, trans: Tensor, bg: Tensor, layout: TileLayout) -> Tensor:
    """Place the touched tiles on the background and crop to the canvas."""
    th, tw, ty, tx = layout.tile_h, layout.tile_w, layout.tiles_y, layout.tiles_x
    bg_premul = torch.cat([bg[:3] * bg[3], bg[3:]])
    # over the background: colour + T * bg, alpha = (1 - T) + T * bg_alpha
    tiles = torch.cat([rgb, (1 - trans)[None]], 0) + trans[None] * bg_premul[:, None, None]
    canvas = bg_premul[:, None, None].expand(4, th * tw, ty * tx).clone()
    canvas = canvas.index_copy(2, layout.tiles, tiles)
    image = canvas.view(4, tw, th, ty, tx).permute(3, 2, 4, 1, 0).reshape(ty * th, tx * tw, 4)
    return image[: layout.height, : layout.width]


def unpremultiply(image: Tensor) -> Tensor:
    """Premultiplied RGBA -> straight RGBA (colour 0 where alpha is 0)."""
    alpha = image[..., 3:]
    rgb = torch.where(alpha > 0, image[..., :3] / alpha.clamp(min=1e-12), torch.zeros_like(image[..., :3]))
    return torch.cat([rgb.clamp(0, 1), alpha], -1)


def tune_cpu_allocator() -> bool:
    """Keep large temporaries on the glibc heap instead of fresh mmaps every iteration.

    The renderer allocates and frees tens of MB per step; glibc's default returns such blocks to
    the OS and page-faults them back in on the next step. Raising the mmap and trim thresholds
    gave 25-40% on CPU here. Process-wide, so only the CLI and benchmarks call it; set
    AMODAL_NO_MALLOPT=1 to skip. Returns whether it was applied.
    """
    if os.environ.get("AMODAL_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    ok &= libc.mallopt(m_trim_threshold, 1 << 34)
    ok &= libc.mallopt(m_top_pad, 256 * 1024 * 1024)
    return bool(ok)

