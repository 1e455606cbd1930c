"""Vectorizing a stack of layers: sharing the path budget, fitting each layer, then all of them jointly.

Budget: the paper's rule, the whole image's paths shared among layers in proportion to their area,
where a layer's area is weighted by how much of it will be seen (``visibility_weights``), so paths
are not spent on what the layers in front hide. Hidden parts are still fitted, with less weight, so
every layer stays complete.

Joint refinement: fitting layers one by one spends each layer's paths on its own target; where
layers meet, both silhouettes approximate the same edge and their errors add up in the composite.
A short joint pass optimises every path of every layer on what the user actually sees (the stack
over the photo's frame), while a penalty on each object layer's alpha outside its own mask keeps
every layer the object it is: the edges move by fractions of a pixel, paint does not spill onto
neighbours. Hidden parts get no gradient from the composite and keep their amodal completion.

The stack is composited over transparency and matched to the opaque photo, alpha included: over a
white backdrop the background layer could turn partly transparent and let the backdrop supply its
light tones, and then any viewer with another backdrop, or any edit that moves an object, would
show it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from . import fusion
from .alv import Progress, VectorizeResult, fit_layer, resolve_device
from .gradient import render_rows
from .optimize import PathOptimizer, psnr_from_mse, spill_penalty
from .options import VectorizeOptions

MIN_LAYER_PATHS = 8  # even a sliver of a layer gets a few paths


@dataclass
class StackLayer:
    """One layer placed on the stack's canvas: its RGBA (uint8, straight alpha) and its top-left."""

    rgba: np.ndarray
    offset: tuple[int, int]
    opaque: bool = False  # the background: no mask, fills its whole canvas


def visibility_weights(layers: list[StackLayer], canvas: tuple[int, int], hidden: float) -> list[np.ndarray]:
    """Per layer (back to front), on its own pixels: 1 where nothing in front covers it, ``hidden``
    under the layers in front."""
    cw, ch = canvas
    cover = np.zeros((ch, cw), np.float32)
    weights: list[np.ndarray] = [np.empty(0)] * len(layers)
    for i in range(len(layers) - 1, -1, -1):  # front to back
        dx, dy = layers[i].offset
        h, w = layers[i].rgba.shape[:2]
        weights[i] = 1 - (1 - hidden) * cover[dy : dy + h, dx : dx + w]
        a = layers[i].rgba[..., 3].astype(np.float32) / 255
        cover[dy : dy + h, dx : dx + w] = 1 - (1 - cover[dy : dy + h, dx : dx + w]) * (1 - a)
    return weights


def share_budget(areas: list[float], paths: int) -> list[int]:
    """``paths`` shared in proportion to ``areas``, at least ``MIN_LAYER_PATHS`` each."""
    total = sum(areas) or 1.0
    return [max(MIN_LAYER_PATHS, round(paths * a / total)) for a in areas]


def layer_areas(layers: list[StackLayer], weights: list[np.ndarray] | None = None) -> list[float]:
    """Each layer's (weighted) area: its alpha, or its whole canvas when opaque."""
    out = []
    for i, layer in enumerate(layers):
        alpha = np.ones(layer.rgba.shape[:2], np.float32) if layer.opaque else layer.rgba[..., 3] / np.float32(255)
        out.append(float((alpha * (weights[i] if weights is not None else 1.0)).sum()))
    return out


def premultiplied(rgba: np.ndarray) -> Tensor:
    """uint8 straight RGBA -> (H, W, 4) premultiplied float tensor, what ``fit_layer`` fits."""
    t = torch.from_numpy(rgba.astype(np.float32) / 255)
    return torch.cat([t[..., :3] * t[..., 3:], t[..., 3:]], -1)


def fit_stack_layer(layer: StackLayer, paths: int, options: VectorizeOptions, weight: np.ndarray | None = None,
                    on_progress: Callable[[Progress], None] | None = None) -> VectorizeResult:
    """One layer of a stack with the run's options: its share of the budget, the run's step count
    (a single vectorization of the whole budget would take as many; small layers are cheap per step,
    and the extra steps buy them ~1.5 dB)."""
    target = premultiplied(layer.rgba)
    opts = replace(options, paths=paths, iters=options.steps)
    w = None if weight is None else torch.from_numpy(weight.astype(np.float32))
    return fit_layer(target, None if layer.opaque else target[..., 3], opts, on_progress, weight=w)


def layer_images(points: Tensor, colors: Tensor, sizes: list[int], canvas: tuple[int, int]) -> list[Tensor]:
    """Each layer alone on the canvas (premultiplied RGBA), all from one render.

    The joint pass needs every layer on its own (its own terms) and the stack (the composite).
    Rendered one by one, the small layers cost more in set-up than in pixels, and the composite
    draws every path a second time; so the layers are laid side by side on one wide strip, each
    slot wider than all the points' extent (a cubic stays inside its control points' hull, so no
    layer reaches into the next slot), drawn in one call, and cut apart.
    """
    cw, ch = canvas
    xs = points[..., 0].detach()
    left = min(math.floor(float(xs.min())), 0) if xs.numel() else 0  # whole pixels: the grid stays the same
    right = max(math.ceil(float(xs.max())), cw) if xs.numel() else cw
    gap = right - left + 2
    starts = [i * gap - left for i in range(len(sizes))]  # where each layer's canvas begins on the strip
    shift = torch.cat([torch.full((n,), float(x), dtype=points.dtype, device=points.device)
                       for x, n in zip(starts, sizes, strict=True)])
    moved = points + torch.stack([shift, torch.zeros_like(shift)], -1)[:, None, :]
    strip = render_rows(moved, colors, ch, starts[-1] + right + 1).image
    return [strip[:, x : x + cw] for x in starts]


CROP_MARGIN = 8  # px around a layer's raster where its own terms are still measured


def _crop_box(rgba: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) on the canvas: the layer's painted pixels and a margin (the whole canvas when
    it paints none)."""
    h, w = rgba.shape[:2]
    ys, xs = np.nonzero(rgba[..., 3])
    if ys.size == 0:
        return 0, 0, w, h
    m = CROP_MARGIN
    x0, y0 = max(int(xs.min()) - m, 0), max(int(ys.min()) - m, 0)
    return x0, y0, min(int(xs.max()) + 1 + m, w), min(int(ys.max()) + 1 + m, h)


def own_crops(layers: list[tuple[Tensor, Tensor, np.ndarray, bool]]) -> list[tuple[int, int, int, int]]:
    """Where each layer's own terms are measured: around an object's raster, and for the background
    the box of all the objects: elsewhere nothing is in front of it, so the composite term already
    asks it for its raster, and rendering it a second time there would only cost."""
    crops = [_crop_box(rgba) for _, _, rgba, _ in layers]
    objects = [c for c, (_, _, _, opaque) in zip(crops, layers, strict=True) if not opaque]
    if not objects:
        return crops
    union = (min(c[0] for c in objects), min(c[1] for c in objects),
             max(c[2] for c in objects), max(c[3] for c in objects))
    return [union if opaque else c for c, (_, _, _, opaque) in zip(crops, layers, strict=True)]


def refine_stack(
    layers: list[tuple[Tensor, Tensor, np.ndarray, bool]],
    photo: np.ndarray,
    frame_offset: tuple[int, int],
    canvas_size: tuple[int, int],
    options: VectorizeOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[list[tuple[Tensor, Tensor]], dict]:
    """``layers``: back to front, each (points (P, 3K, 2) and colours (P, 4) in canvas coordinates,
    the layer's raster as straight RGBA uint8 (H, W, 4) on the canvas, and whether it is the opaque
    background, whose first path is its canvas as ``fit_layer`` made it and stays fixed and opaque).
    ``photo``: (h, w, 3) in [0, 1], the frame at ``frame_offset`` on the canvas. Runs
    ``options.refine_steps`` steps. Returns the refined (points, colours) per layer and the composite
    PSNR before and after (our renderer, inside the frame).

    The composite alone would let a layer's hidden part, or the background under an object, drift
    anywhere (nobody sees them in the flattened picture, and they are what a moved object reveals),
    so every layer also keeps to its own raster (``refine_layer_weight``), and stays inside it.
    """
    with fusion.using(options.fused, resolve_device(options.device).type):
        return _refine_stack(layers, photo, frame_offset, canvas_size, options, on_progress)


def _refine_stack(layers: list[tuple[Tensor, Tensor, np.ndarray, bool]], photo: np.ndarray,
                  frame_offset: tuple[int, int], canvas_size: tuple[int, int], options: VectorizeOptions,
                  on_progress: Callable[[Progress], None] | None) -> tuple[list[tuple[Tensor, Tensor]], dict]:
    steps = options.refine_steps
    dev = resolve_device(options.device)
    cw, ch = canvas_size
    fx, fy = frame_offset
    fh, fw = photo.shape[:2]
    rgb = torch.from_numpy(photo.astype(np.float32)).to(dev)
    target = torch.cat([rgb, torch.ones_like(rgb[..., :1])], -1)  # the photo is opaque everywhere
    sizes = [int(p.shape[0]) for p, _, _, _ in layers]
    points = torch.cat([p for p, _, _, _ in layers]).float().to(dev).contiguous()
    colors = torch.cat([c for _, c, _, _ in layers]).float().to(dev).contiguous()
    starts = np.cumsum([0, *sizes])
    canvas_rows = [int(starts[i]) for i, (_, _, _, opaque) in enumerate(layers) if opaque and sizes[i] > 0]
    # each layer's own terms are measured on a crop (an object is small next to the canvas)
    crops = own_crops(layers)
    own = [premultiplied(rgba[y0:y1, x0:x1]).to(dev) for (_, _, rgba, _), (x0, y0, x1, y1) in zip(layers, crops,
                                                                                                   strict=True)]

    def over_white_mse(pts: Tensor, cols: Tensor) -> float:
        """What the manifest reports (as resvg renders result.svg over white)."""
        image = render_rows(pts, cols, ch, cw, background=torch.ones(3, device=dev)).image[fy : fy + fh,
                                                                                            fx : fx + fw]
        return float(((image[..., :3] - rgb) ** 2).mean())

    with torch.no_grad():
        before = over_white_mse(points, colors)
    optimizer = PathOptimizer(points, colors, options.refine_lr_points, options.refine_lr_colors, options.lr_final,
                              steps, pinned=canvas_rows)
    for step in range(steps):
        points.requires_grad_(True)
        colors.requires_grad_(True)
        images = layer_images(points, colors, sizes, (cw, ch))
        composite = images[0]
        for image in images[1:]:  # premultiplied "over": the same picture as drawing every path in order
            composite = image + (1 - image[..., 3:]) * composite
        loss = ((composite[fy : fy + fh, fx : fx + fw] - target) ** 2).sum(-1).mean() / 3
        for i, (_, _, _, opaque) in enumerate(layers):
            if sizes[i] == 0:
                continue
            x0, y0, x1, y1 = crops[i]
            image = images[i][y0:y1, x0:x1]
            loss = loss + options.refine_layer_weight * ((image - own[i]) ** 2).sum() / (4 * ch * cw)
            if not opaque:
                loss = loss + options.mask_weight * spill_penalty(image[..., 3], own[i][..., 3]) / (fh * fw)
        loss.backward()
        points, colors = optimizer.step(step, points, colors)
        if on_progress is not None:
            value = float(loss.detach())
            on_progress(Progress(step + 1, steps, value, psnr_from_mse(value), int(points.shape[0])))
    with torch.no_grad():
        after = over_white_mse(points, colors)
    out = [(points[starts[i] : starts[i + 1]].cpu(), colors[starts[i] : starts[i + 1]].cpu())
           for i in range(len(layers))]
    return out, {"psnr_before": round(psnr_from_mse(before), 3), "psnr_after": round(psnr_from_mse(after), 3),
                 "steps": steps}
