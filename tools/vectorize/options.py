"""The one options object for Adaptive Layered Vectorization, shared by the CLI, the Python API
and the agent, so a setting means the same thing wherever it is given and its default is written
once: here. A layered run reads ``paths`` as the whole image's budget, shared among its layers
(``stack.share_budget``), and ``steps`` as every layer's step count."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

PruneMethod = Literal["occlusion", "area", "opacity"]
InitMethod = Literal["content", "random"]


@dataclass
class VectorizeOptions:
    # budget and schedule
    paths: int = 1024  # ceiling on the number of paths of this layer
    iters: int | None = None  # Adam steps; None: see ``steps``
    # cubic segments per closed path. 6 gives +0.9 dB at 256 paths and +1.3 at 1024 on the report set for
    # 1.33x the bytes and 13-18% more time, but 4 segments on as many bytes (1.33x the paths) are level
    # (report, 256 paths) or 0.15 dB better (tuning, 1024), so 4 stays (bench/results/fit-ab-six-segments-cpu.txt)
    segments: int = 4
    gradients: bool = False  # each path filled with a linear gradient (SVG linearGradient), not one colour
    seed: int = 0
    device: str = "auto"  # "cpu", "cuda", or "auto" (CUDA when torch sees a GPU)
    fused: bool = False  # renderer stages compiled into fused kernels (torch.compile; see vectorize/fusion.py)
    # content-adaptive initialisation
    init: InitMethod = "content"  # "random" only for the ablation
    init_fraction: float = 0.5  # share of the ceiling placed before the first step
    # optimiser: Adam, own learning rates, linear decay to lr * lr_final
    lr_points: float = 1.5  # pixels per step (Adam is scale-free)
    lr_colors: float = 0.03
    lr_final: float = 0.5  # was 0.1 until 2026-12-07: tuning set +0.34 dB at 256 paths, +0.35 at 1024
    coarse_until: float = 0.6  # fraction of iters rendered at half the resolution before the full one
    exact_from: float = 0.85  # fraction of iters from which the fit renders crossings exactly (what viewers show)
    # error-driven addition
    add: bool = True
    warmup: int = 60  # steps before the first addition / pruning
    interval: int = 40  # steps between additions / prunings
    add_until: float = 0.7  # fraction of iters after which nothing is added
    temperature: float = 0.15  # softmax temperature on the error field (in units of its 99th percentile)
    target_psnr: float = 45.0  # the error budget aims at this fidelity
    budget_window: int = 4  # additions whose per-path gain is averaged
    # pruning
    prune: bool = True
    prune_method: PruneMethod = "occlusion"
    prune_min_visible: float = 0.6  # px^2 of visible alpha below which a path goes
    # objective
    mask_weight: float = 4.0  # weight of rendered alpha outside the layer's mask (also in joint refinement)
    # a stack of layers (the agent's result): per-layer fits, then a joint pass on the composite
    hidden_weight: float = 0.05  # fitting weight of a layer's parts hidden behind the layers in front
    refine_steps: int = 300  # joint refinement of all layers on the composite (0: off)
    refine_lr_points: float = 1.0  # smaller than a lone fit's: the joint pass only settles shared edges
    refine_lr_colors: float = 0.01
    refine_layer_weight: float = 0.3  # in the joint pass, each layer's fit to its own raster beside the composite

    def validate(self) -> VectorizeOptions:
        """Raise ValueError naming the first bad setting."""
        checks = [
            (self.paths >= 1, "paths must be at least 1"),
            (self.iters is None or self.iters >= 0, "iters must be >= 0"),
            (self.segments >= 2, "segments must be at least 2"),
            (self.device in ("cpu", "cuda", "auto"), "device must be cpu, cuda or auto"),
            (self.init in ("content", "random"), "init must be content or random"),
            (0 < self.init_fraction <= 1, "init_fraction must be in (0, 1]"),
            (self.lr_points > 0 and self.lr_colors > 0, "learning rates must be positive"),
            (0 < self.lr_final <= 1, "lr_final must be in (0, 1]"),
            (self.interval >= 1 and self.warmup >= 0, "interval must be >= 1 and warmup >= 0"),
            (0 <= self.add_until <= 1, "add_until must be in [0, 1]"),
            (0 <= self.exact_from <= 1, "exact_from must be in [0, 1]"),
            (0 <= self.coarse_until <= 1, "coarse_until must be in [0, 1]"),
            (self.temperature > 0, "temperature must be positive"),
            (self.budget_window >= 1, "budget_window must be >= 1"),
            (self.prune_method in ("occlusion", "area", "opacity"), "prune_method must be occlusion, area or opacity"),
            (self.prune_min_visible >= 0, "prune_min_visible must be >= 0"),
            (self.mask_weight >= 0, "mask_weight must be >= 0"),
            (0 <= self.hidden_weight <= 1, "hidden_weight must be in [0, 1]"),
            (self.refine_steps >= 0, "refine_steps must be >= 0"),
            (self.refine_layer_weight >= 0, "refine_layer_weight must be >= 0"),
            (self.refine_lr_points > 0 and self.refine_lr_colors > 0, "refine learning rates must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self

    @property
    def steps(self) -> int:
        """Adam steps a fit takes: ``iters``, or by default 300 + paths / 2, less 5 steps per 24 paths
        between 256 and 1024 paths (160 fewer from 1024 paths on; the one place that rule lives).
        On the tuning set, 1024 paths in 652 steps instead of 812 took 20% less time for 0.09 dB
        (37.71 -> 37.62), and 556 steps lost 0.22 dB. Larger budgets keep the half step per path
        beyond 1024: at 2048 paths on a 512 px tuning photo, 838 or 950 steps lost 0.6 dB against 1324."""
        if self.iters is not None:
            return self.iters
        return 300 + (12 * self.paths - 5 * min(max(self.paths - 256, 0), 768)) // 24

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VectorizeOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown vectorize options: {', '.join(sorted(unknown))}")
        return cls(**data).validate()
