"""Joint refinement of all layers against the photo, after each layer was fitted on its own.

Fitting layers one by one spends each layer's paths on its own target; where layers meet, both
silhouettes approximate the same edge and their errors add up in the composite. A short joint pass
optimises every path of every layer on what the user actually sees (the stack over the photo's
frame), while a penalty on each object layer's alpha outside its own mask keeps every layer the
object it is: the edges move by fractions of a pixel, paint does not spill onto neighbours. Hidden
parts get no gradient from the composite and keep their amodal completion.

The stack is composited over transparency and matched to the opaque photo, alpha included: over a
white backdrop the background layer could turn partly transparent and let the backdrop supply its
light tones, and then any viewer with another backdrop, or any edit that moves an object, would
show it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from tools.vectorize.adam import RowAdam
from tools.vectorize.alv import resolve_device
from tools.vectorize.render import render, render_with_stats


def refine_stack(
    layers: list[tuple[Tensor, Tensor, np.ndarray | None]],
    photo: np.ndarray,
    frame_offset: tuple[int, int],
    canvas_size: tuple[int, int],
    steps: int,
    device: str = "cpu",
    lr_points: float = 1.0,
    lr_colors: float = 0.01,
    mask_weight: float = 4.0,
    on_progress=None,
) -> tuple[list[tuple[Tensor, Tensor]], dict]:
    """``layers``: back to front, each (points (P, 3K, 2) and colours (P, 4) in canvas coordinates,
    the layer's mask (H, W) on the canvas, or None for the opaque background, whose first path is its
    canvas as ``fit_layer`` made it and stays fixed and opaque). ``photo``: (h, w, 3)
    in [0, 1], the frame at ``frame_offset`` on the canvas. Returns the refined (points, colours)
    per layer and the composite PSNR before and after (our renderer, inside the frame)."""
    dev = resolve_device(device)
    cw, ch = canvas_size
    fx, fy = frame_offset
    fh, fw = photo.shape[:2]
    rgb = torch.from_numpy(photo.astype(np.float32)).to(dev)
    target = torch.cat([rgb, torch.ones_like(rgb[..., :1])], -1)  # the photo is opaque everywhere
    sizes = [int(p.shape[0]) for p, _, _ in layers]
    points = torch.cat([p for p, _, _ in layers]).float().to(dev).contiguous()
    colors = torch.cat([c for _, c, _ in layers]).float().to(dev).contiguous()
    starts = np.cumsum([0, *sizes])
    canvas_rows = [int(starts[i]) for i, (_, _, m) in enumerate(layers) if m is None and sizes[i] > 0]
    canvas_paths = points[canvas_rows].clone()
    outside = [None if m is None else torch.from_numpy(1 - m.astype(np.float32)).to(dev) for _, _, m in layers]

    def composite(pts: Tensor, cols: Tensor) -> Tensor:
        """Premultiplied RGBA of the stack inside the frame, over transparency."""
        return render(pts, cols, ch, cw)[fy : fy + fh, fx : fx + fw]

    def over_white_mse(pts: Tensor, cols: Tensor) -> float:
        """What the manifest reports (as resvg renders result.svg over white)."""
        img = composite(pts, cols)
        return float(((img[..., :3] + 1 - img[..., 3:] - rgb) ** 2).mean())

    with torch.no_grad():
        before = over_white_mse(points, colors)
    opt_p, opt_c = RowAdam(points, lr_points), RowAdam(colors, lr_colors)
    for step in range(steps):
        points.requires_grad_(True)
        colors.requires_grad_(True)
        loss = ((composite(points, colors) - target) ** 2).sum(-1).mean() / 3
        for i, out in enumerate(outside):
            if out is None or sizes[i] == 0:
                continue
            a, b = starts[i], starts[i + 1]
            alpha = render_with_stats(points[a:b], colors[a:b], ch, cw).image[..., 3]
            loss = loss + mask_weight * ((alpha * out) ** 2).sum() / (fh * fw)
        loss.backward()
        scale = 1 - 0.9 * step / max(steps, 1)
        with torch.no_grad():
            opt_p.step(points, points.grad, lr_points * scale)
            opt_c.step(colors, colors.grad, lr_colors * scale)
            points = points.detach()
            colors = colors.detach().clamp_(0, 1)
            points[canvas_rows] = canvas_paths
            colors[canvas_rows, 3] = 1.0
        if on_progress is not None:
            on_progress(step + 1, float(loss.detach()))
    with torch.no_grad():
        after = over_white_mse(points, colors)
    out = [(points[starts[i] : starts[i + 1]].cpu(), colors[starts[i] : starts[i + 1]].cpu())
           for i in range(len(layers))]
    return out, {"psnr_before": round(-10 * np.log10(max(before, 1e-10)), 3),
                 "psnr_after": round(-10 * np.log10(max(after, 1e-10)), 3), "steps": steps}
