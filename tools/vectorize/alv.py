"""Adaptive Layered Vectorization: fit one raster layer with closed cubic Bezier paths.

The loop is plain gradient descent through the renderer, with the path set itself adapting:
content-adaptive initialisation (``init``), error-driven addition on an error budget (``add``) and
occlusion-aware pruning (``prune``) at fixed intervals after a warm-up. The objective is the squared
error on premultiplied RGBA inside the layer's mask plus a term on rendered alpha beyond it
(``optimize.spill_penalty``), so paint stays inside the layer. Everything is seeded; one run's
numbers are reproducible on the same device.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from . import fusion
from .add import ErrorBudget, error_field, new_paths, sample_positions
from .gradient import extend, render_rows
from .init import random_init, rectangle_path, superpixel_init
from .optimize import PathOptimizer, psnr_from_mse, spill_penalty
from .options import VectorizeOptions
from .pathset import PathSet
from .prune import keep_mask, prune_scores

# lines per pixel where the fit resolves self-crossings: half the renderer's default costs a third
# less and is still within 1/16 of exact there (final renders and pruning use the default)
FIT_EXACT_LINES = 8
# half-size pixels per path of the ceiling below which a fit takes no coarse steps: denser fits are
# all small paths, which the half size blurs (on the tuning set, 1024 paths at 256 px lost 0.06 dB)
COARSE_ROOM = 32


@dataclass
class Progress:
    step: int
    total: int
    loss: float
    psnr: float  # of the premultiplied RGB inside the layer, on our renderer
    paths: int
    added: int = 0
    pruned: int = 0


def _support(mask: Tensor) -> Tensor:
    """Where the layer is: all of its mask's support, a matted rim included."""
    return (mask > 0).to(mask.dtype)


@dataclass(frozen=True)
class _Level:
    """What one step compares against at one resolution: the target, where the layer is, the weight
    of each pixel's error, and ``scale`` (x, y) from the layer's pixels to this level's."""

    target: Tensor
    mask: Tensor  # what the layer may paint (soft on a matted rim)
    recon_w: Tensor
    scale: Tensor | None  # None at full resolution
    height: int
    width: int

    @functools.cached_property
    def inside(self) -> Tensor:
        return _support(self.mask)

    @functools.cached_property
    def inside_px(self) -> float:
        return float(self.inside.sum().clamp(min=1)) * 3

    def half(self) -> _Level:
        """The same at half the resolution (area-averaged), for the fit's coarse steps."""
        h, w = max(1, round(self.height / 2)), max(1, round(self.width / 2))

        def down(t: Tensor) -> Tensor:
            x = t if t.dim() == 3 else t[..., None]
            x = F.interpolate(x.permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
            return x if t.dim() == 3 else x[..., 0]

        scale = torch.tensor([w / self.width, h / self.height], device=self.target.device)
        return _Level(down(self.target), down(self.mask), down(self.recon_w), scale, h, w)


@dataclass
class VectorizeResult:
    points: Tensor  # (P, 3K, 2) on the CPU
    colors: Tensor  # (P, 4) straight RGBA, or (P, 11) gradient rows (``gradient``) with ``options.gradients``
    height: int
    width: int
    options: VectorizeOptions
    device: str
    seconds: float
    history: list[dict] = field(default_factory=list)  # one entry per addition / pruning round
    psnr: float = 0.0  # of the final paths inside the layer, on our renderer

    @property
    def num_paths(self) -> int:
        return int(self.points.shape[0])

    def pathset(self) -> PathSet:
        return PathSet.from_uniform(self.points, self.colors)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


def check_target(target: Tensor, mask: Tensor | None) -> Tensor:
    """Validate a premultiplied (H, W, 4) target and (H, W) mask; return the mask (ones if None)."""
    if target.dim() != 3 or target.shape[2] != 4:
        raise ValueError(f"target must be (H, W, 4) premultiplied RGBA, got {tuple(target.shape)}")
    if target.shape[0] < 1 or target.shape[1] < 1:
        raise ValueError("target image is empty")
    if not bool(torch.isfinite(target).all()):
        raise ValueError("target has NaN or infinite values")
    if mask is None:
        return torch.ones(target.shape[:2], dtype=target.dtype, device=target.device)
    if mask.shape != target.shape[:2]:
        raise ValueError(f"mask is {tuple(mask.shape)} but the image is {tuple(target.shape[:2])}")
    return mask.to(target.dtype)


def fit_layer(
    target: Tensor,
    mask: Tensor | None = None,
    options: VectorizeOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 10,
    weight: Tensor | None = None,
) -> VectorizeResult:
    """Fit paths to a premultiplied (H, W, 4) target in [0, 1]; ``mask`` (H, W) in [0, 1] marks the
    layer (default: everywhere), softly on a matted rim: fitted wherever above 0, with alpha beyond
    it penalised where it is under a half. ``options.paths`` is the ceiling on the path count.
    ``weight`` (H, W), optional, scales the reconstruction error per pixel: a layered result passes
    less weight where layers in front will hide this one, so paths go where they will be seen."""
    opts = (options or VectorizeOptions()).validate()
    started = time.perf_counter()  # a first fused fit's seconds include compiling the stages
    with fusion.using(opts.fused, resolve_device(opts.device).type):
        return _fit_layer(target, mask, opts, on_progress, progress_every, weight, started)


def _fit_layer(target: Tensor, mask: Tensor | None, opts: VectorizeOptions,
               on_progress: Callable[[Progress], None] | None, progress_every: int,
               weight: Tensor | None, started: float) -> VectorizeResult:
    mask = check_target(target, mask)
    if weight is not None and weight.shape != mask.shape:
        raise ValueError(f"weight is {tuple(weight.shape)} but the image is {tuple(mask.shape)}")
    device = resolve_device(opts.device)
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    h, w = target.shape[:2]
    k = opts.segments
    target_cpu = target.float().cpu()
    mask_cpu = mask.float().cpu()
    opaque = bool((target_cpu[..., 3] > 0.999).all())

    n_init = max(1, min(opts.paths, round(opts.init_fraction * opts.paths)) - int(opaque))
    if opts.init == "content":
        points, colors = _content_init(target_cpu, mask_cpu, None if weight is None else weight.float().cpu(),
                                       n_init, k, opts.seed)
    else:
        points, colors = random_init(target_cpu, mask_cpu, n_init, k, gen)
    if opaque:  # a canvas-sized back path so no pixel starts uncovered
        mean = (target_cpu[..., :3] * mask_cpu[..., None]).sum((0, 1)) / mask_cpu.sum().clamp(min=1)
        base = rectangle_path(-0.5, -0.5, w + 0.5, h + 0.5, k)[None]
        points = torch.cat([base, points])
        colors = torch.cat([torch.cat([mean, torch.ones(1)])[None], colors])
    points = points[: opts.paths].to(device).contiguous()
    colors = colors[: opts.paths].to(device).contiguous()
    if opts.gradients:  # each path starts as its flat colour; the fit opens the gradient where it pays
        colors = extend(colors)
    inside = _support(mask_cpu.to(device))
    recon_w = inside if weight is None else inside * weight.float().to(device)
    full = _Level(target_cpu.to(device), mask_cpu.to(device), recon_w, None, h, w)
    coarse_end = round(opts.coarse_until * opts.steps)
    # early steps place and shape paths, which half the pixels show as well at a quarter of the cost,
    # as long as the half-size image leaves each path of the ceiling room to be seen
    roomy = h * w / 4 >= COARSE_ROOM * opts.paths
    coarse = full.half() if coarse_end > 0 and roomy and min(h, w) >= 32 else None
    lo = torch.tensor([-0.25 * w, -0.25 * h], device=device)
    hi = torch.tensor([1.25 * w, 1.25 * h], device=device)
    # an opaque layer's back path is its canvas: fixed geometry, fully opaque, only its colour learnt
    optimizer = PathOptimizer(points, colors, opts.lr_points, opts.lr_colors, opts.lr_final, opts.steps,
                              pinned=[0] if opaque else None, bounds=(lo, hi))
    budget = ErrorBudget(target_loss=10 ** (-opts.target_psnr / 10), window=opts.budget_window)
    add_end = int(opts.add_until * opts.steps)
    # short runs adapt sooner and more often (the defaults are sized for a few hundred steps)
    warmup, interval = min(opts.warmup, opts.steps // 8), max(1, min(opts.interval, opts.steps // 12))
    rounds = [s for s in range(warmup, opts.steps, interval) if s > 0]
    history: list[dict] = []
    exact_start = round(opts.exact_from * opts.steps)

    for step in range(opts.steps):
        points.requires_grad_(True)
        colors.requires_grad_(True)
        lv = coarse if coarse is not None and step < coarse_end else full
        drawn = points if lv.scale is None else points * lv.scale
        res = render_rows(drawn, colors, lv.height, lv.width, exact=step >= exact_start,
                          exact_lines=FIT_EXACT_LINES)
        img = res.image
        sq = (img - lv.target) ** 2
        rgb_err = float((sq[..., :3].detach() * lv.inside[..., None]).sum()) / lv.inside_px
        # reconstruction inside the layer, and a penalty on paint beyond it
        loss = ((sq.sum(-1) * lv.recon_w).sum() + opts.mask_weight * spill_penalty(img[..., 3], lv.mask)) / (
            4 * lv.inside_px / 3)
        loss.backward()
        points, colors = optimizer.step(step, points, colors)
        loss_v = float(loss.detach())
        event: dict = {}
        if step in rounds:
            with torch.no_grad():
                points, colors, kept, added = _adapt(step, add_end, rounds, opts, res.visible_alpha, img.detach(),
                                                     lv, full, opaque, points, colors, budget, loss_v, gen)
            optimizer.keep(kept)
            optimizer.append(added)
            event = {"step": step, "loss": loss_v, "psnr": psnr_from_mse(rgb_err), "paths": int(points.shape[0]),
                     "added": added, "pruned": int(res.visible_alpha.numel() - kept.numel())}
            history.append(event)
        if on_progress is not None and (step % progress_every == 0 or step == opts.steps - 1 or event):
            on_progress(Progress(step + 1, opts.steps, loss_v, psnr_from_mse(rgb_err), int(points.shape[0]),
                                 event.get("added", 0), event.get("pruned", 0)))

    points, colors = _final_prune(points, colors, opts, opaque, h, w)
    with torch.no_grad():
        final = render_rows(points, colors, h, w).image[..., :3] - full.target[..., :3]
        final_psnr = psnr_from_mse(float((final**2 * full.inside[..., None]).sum()) / full.inside_px)
    return VectorizeResult(points.detach().cpu(), colors.detach().cpu(), h, w, opts, str(device),
                           time.perf_counter() - started, history, final_psnr)


def _content_init(target: Tensor, mask: Tensor, weight: Tensor | None, n: int, k: int, seed: int):
    """Superpixel start, with the count split between the parts that will be seen and those hidden
    behind layers in front in proportion to their weighted area: hidden parts get a coarse cover
    (the layer stays complete), visible parts the detail."""
    if weight is None:
        return superpixel_init(target, mask, n, k, seed)
    seen = mask * (weight >= 0.5)
    hidden = mask * (weight < 0.5)
    a_seen, a_hidden = float(seen.sum()), float((hidden * weight).sum())
    n_hidden = 0 if float(hidden.sum()) < 1 else max(2, round(n * a_hidden / max(a_seen + a_hidden, 1e-9)))
    back = superpixel_init(target, hidden, min(n_hidden, n - 1), k, seed) if n_hidden else None
    front = superpixel_init(target, seen, n - (back[0].shape[0] if back else 0), k, seed)
    if back is None:
        return front
    return torch.cat([back[0], front[0]]), torch.cat([back[1], front[1]])


def _adapt(step, add_end, rounds, opts, visible, img, lv: _Level, full: _Level, opaque, points, colors, budget,
           loss, gen):
    """One pruning + addition round: (points, colors, indices kept, number added). ``img`` and
    ``visible`` were rendered at level ``lv``; paths are pruned and placed in ``full``'s pixels (a
    coarse level's error field, brought to full size, places them on the broad errors)."""
    n = points.shape[0]
    h, w = full.height, full.width
    keep = torch.ones(n, dtype=torch.bool, device=points.device)
    if opts.prune:
        occlusion = opts.prune_method == "occlusion"
        if occlusion and lv.scale is not None:
            visible = visible / float(lv.scale.prod())  # visible alpha in the layer's px^2
        scores = visible if occlusion else prune_scores(points, colors, h, w, opts.prune_method)
        keep = keep_mask(scores, opts.prune_method, opts.prune_min_visible)
        if opaque:
            keep[0] = True  # the canvas-sized back path
    kept = keep.nonzero().squeeze(1)
    points, colors = points[kept], colors[kept]
    added = 0
    if opts.add and step < add_end:
        budget.record(loss)
        left = [r for r in rounds if step <= r < add_end]
        room = opts.paths - points.shape[0]
        even = room / max(len(left), 1)  # an even share of what is left per remaining round
        # the gain per path also credits plain optimisation progress to the added paths, so on its own
        # the rule under-adds on small layers; while above the target, add at least half an even share
        count = budget.count(loss, max(1, math.ceil(0.5 * even)), min(room, math.ceil(2 * even)))
        if count > 0:
            err = error_field(img, lv.target) * lv.recon_w
            if lv.scale is not None:
                err = F.interpolate(err[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
            high = float((err > err.mean()).sum())
            radius = min(max(math.sqrt(high / (math.pi * count)), 1.0), 0.06 * max(h, w))
            pos = sample_positions(err.cpu(), count, opts.temperature, radius, gen)
            new_p, new_c = new_paths(pos, radius, full.target.cpu(), opts.segments)
            points = torch.cat([points, new_p.to(points.device)])
            if colors.shape[1] != new_c.shape[1]:
                new_c = extend(new_c)
            colors = torch.cat([colors, new_c.to(colors.device)])
            added = int(new_p.shape[0])
        budget.added(loss, added)
    return points, colors, kept, added


def _final_prune(points: Tensor, colors: Tensor, opts: VectorizeOptions, opaque: bool, h: int, w: int):
    """Drop paths that contribute (almost) nothing visible to the result."""
    if not opts.prune or points.shape[0] == 0:
        return points, colors
    with torch.no_grad():
        vis = render_rows(points, colors, h, w).visible_alpha
    keep = vis >= 0.05
    if opaque:
        keep[0] = True
    return points[keep], colors[keep]
