"""What a run carries besides graph state: options, the artifact store, the trace, the model, the
live view. Nodes reach it through a closure, so none of it (and no pixels) enters graph state."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artifacts import ArtifactStore
from .trace import TraceWriter
from .vlm import DEFAULT_MODEL, DEFAULT_URL, Model, Sampling


@dataclass
class RunOptions:
    image: Path
    out: Path | None = None
    hints: list[str] = field(default_factory=list)
    planner: str = "auto"  # auto | vlm | heuristic
    vlm_url: str = field(default_factory=lambda: os.environ.get("AMODAL_VLM_URL", DEFAULT_URL))
    model: str = field(default_factory=lambda: os.environ.get("AMODAL_VLM_MODEL", DEFAULT_MODEL))
    api_key: str | None = field(default_factory=lambda: os.environ.get("AMODAL_VLM_API_KEY"))
    max_layers: int = 10
    paths: int = 1024  # path budget of the whole image, shared by area
    size: int = 512  # longest side the photo is worked at (0: full resolution); the SVG keeps its size
    iters: int | None = None  # optimizer steps per layer (None: 300 + paths / 2)
    refine_steps: int = 300  # joint refinement of all layers on the composite (0: off)
    hidden_weight: float = 0.05  # fitting weight of a layer's parts hidden behind layers in front
    device: str = "auto"
    seed: int = 0
    quiet: bool = False
    step_budget: int | None = None  # model turns (None: 4 per layer + 4)
    image_window: int = 3  # images kept in the history sent to the model
    max_tool_failures: int = 3  # consecutive failures of one tool that end the run
    sampling: Sampling = field(default_factory=Sampling)

    @property
    def turns(self) -> int:
        return self.step_budget if self.step_budget is not None else 4 * self.max_layers + 4

    def validate(self) -> RunOptions:
        if self.planner not in ("auto", "vlm", "heuristic"):
            raise ValueError(f"--planner must be auto, vlm or heuristic, got {self.planner!r}")
        if not 1 <= self.max_layers <= 10:
            raise ValueError(f"--max-layers must be in 1..10, got {self.max_layers}")
        if self.paths < 8:
            raise ValueError(f"--paths must be at least 8, got {self.paths}")
        if self.size != 0 and self.size < 32:
            raise ValueError(f"--size must be 0 (full resolution) or at least 32, got {self.size}")
        if self.iters is not None and self.iters < 0:
            raise ValueError(f"--iters must be >= 0, got {self.iters}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.turns < 1:
            raise ValueError("the step budget must be at least 1")
        return self


@dataclass
class RunContext:
    run_dir: Path
    options: RunOptions
    store: ArtifactStore
    trace: TraceWriter
    model: Model
    planner: str  # vlm | heuristic | replay
    view: object  # agent.live.LiveView
    backends: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    outputs: dict = field(default_factory=dict)  # what finalize wrote (layers, svg)

    def artifact(self, node: str, array: np.ndarray, kind: str) -> str:
        """Store an image and record it in the trace; returns its id."""
        aid = self.store.put(array)
        a = np.asarray(array)
        self.trace.emit(node, "artifact", {"id": aid, "kind": kind, "shape": list(a.shape)})
        return aid

    def note(self, node: str, text: str) -> None:
        """Something the user must be told (a fallback, a backend missing): live output, trace, manifest."""
        if text not in self.notes:
            self.notes.append(text)
        self.trace.emit(node, "decision", {"note": text})

    class timer:
        def __init__(self, ctx: RunContext, key: str):
            self.ctx, self.key = ctx, key

        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            self.ctx.timings[self.key] += time.perf_counter() - self.t
            return False
