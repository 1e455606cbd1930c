"""What a run carries besides graph state: options, the photo, the tools offered, the artifact store,
the trace, the model, the live view. Nodes get it as LangGraph's run context, so none of it (and no
pixels) enters graph state or checkpoints."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from torch import Tensor

from tools.atomic import write_text_atomic
from tools.vectorize.options import VectorizeOptions
from tools.vectorize.pathset import dump_paths, load_paths

from .artifacts import ArtifactStore
from .toolspec import ToolSet
from .trace import TraceWriter
from .vlm import DEFAULT_MODEL, DEFAULT_TIMEOUT, DEFAULT_URL, Model, Sampling

MIN_RUN_PATHS = 8  # a run needs a few paths for its background at least


@dataclass
class RunOptions:
    """Settings of one run. Vectorizing settings live in ``vectorize`` (its ``paths`` is the whole
    image's budget, shared by area; its ``seed`` is the run's seed); each default is written once."""

    image: Path
    out: Path | None = None
    hints: list[str] = field(default_factory=list)
    planner: str = "auto"  # auto | vlm | heuristic
    segmenter: str = "auto"  # auto (the best that works here) or a name in tools.segment.SEGMENTERS
    vlm_url: str = field(default_factory=lambda: os.environ.get("AMODAL_VLM_URL", DEFAULT_URL))
    model: str = field(default_factory=lambda: os.environ.get("AMODAL_VLM_MODEL", DEFAULT_MODEL))
    api_key: str | None = field(default_factory=lambda: os.environ.get("AMODAL_VLM_API_KEY"))
    timeout: float = DEFAULT_TIMEOUT  # seconds per model call (a turn waits at most vlm.TOTAL_WAIT times this)
    max_layers: int = 10
    size: int = 512  # longest side the photo is worked at (0: full resolution); the SVG keeps its size
    quiet: bool = False
    step_budget: int | None = None  # model turns (None: 4 per layer + 4)
    image_window: int = 3  # images kept in the history sent to the model
    max_tool_failures: int = 3  # consecutive failures of one tool that end the run
    exports: list[str] = field(default_factory=list)  # extra formats of the result: "psd", "png"
    sampling: Sampling = field(default_factory=Sampling)
    vectorize: VectorizeOptions = field(default_factory=VectorizeOptions)

    @property
    def seed(self) -> int:
        return self.vectorize.seed

    @property
    def device(self) -> str:
        """``--device``: the vectorizer's, and every model backend's."""
        return self.vectorize.device

    @property
    def turns(self) -> int:
        return self.step_budget if self.step_budget is not None else 4 * self.max_layers + 4

    def validate(self) -> RunOptions:
        if self.planner not in ("auto", "vlm", "heuristic"):
            raise ValueError(f"--planner must be auto, vlm or heuristic, got {self.planner!r}")
        from tools.segment import choose_segmenter

        try:
            choose_segmenter(self.segmenter)  # a named backend that is missing fails before the run starts
        except ValueError as exc:
            raise ValueError(f"--segmenter: {exc}") from None
        if not 0 < self.timeout <= 3600:
            raise ValueError(f"--timeout must be in (0, 3600] seconds, got {self.timeout:g}")
        if not 1 <= self.max_layers <= 10:
            raise ValueError(f"--max-layers must be in 1..10, got {self.max_layers}")
        if self.vectorize.paths < MIN_RUN_PATHS:
            raise ValueError(f"--paths must be at least {MIN_RUN_PATHS}, got {self.vectorize.paths}")
        if self.size != 0 and self.size < 32:
            raise ValueError(f"--size must be 0 (full resolution) or at least 32, got {self.size}")
        try:
            self.vectorize.validate()
        except ValueError as exc:
            raise ValueError(f"--{exc}") from None
        if self.turns < 1:
            raise ValueError("the step budget must be at least 1")
        if self.exports:
            from tools.export import parse_formats

            self.exports = parse_formats(",".join(self.exports))
        return self

    def to_dict(self) -> dict:
        """JSON for the trace and manifest (no API key)."""
        d = asdict(self)
        d["image"] = str(self.image)
        d["out"] = str(self.out) if self.out else None
        d.pop("api_key", None)
        return d

    @classmethod
    def from_dict(cls, d: dict, image: Path, out: Path | None) -> RunOptions:
        """Options from ``to_dict`` output, for another image and folder (the API key comes from the
        environment again). Runs recorded before ``vectorize`` was nested kept its settings at the top."""
        o = dict(d)
        sampling = Sampling(**o.pop("sampling"))
        vec = dict(o.pop("vectorize", {}))
        vec_fields = {f.name for f in fields(VectorizeOptions)}
        vec.update({k: o.pop(k) for k in list(o) if k in vec_fields})
        keep = {k: v for k, v in o.items() if k in {f.name for f in fields(cls)} - {"image", "out", "api_key"}}
        keep.setdefault("size", 0)  # runs recorded before --size existed worked at full resolution
        return cls(image=image, out=out, sampling=sampling, vectorize=VectorizeOptions.from_dict(vec), **keep)

    @classmethod
    def recorded(cls, image: Path, out: Path, recorded: dict) -> RunOptions:
        """The options a recorded run used (``to_dict`` output), where it ran and how it reached its
        model aside: quiet, with the heuristic planner (callers that replay set the model)."""
        options = cls.from_dict({k: v for k, v in recorded.items()
                                 if k not in ("quiet", "planner", "vlm_url", "model")}, image, out)
        options.quiet, options.planner = True, "heuristic"
        return options


@dataclass
class RunContext:
    run_dir: Path
    options: RunOptions
    store: ArtifactStore
    trace: TraceWriter
    model: Model
    planner: str  # vlm | heuristic | replay
    view: object  # agent.live.LiveView
    tools: ToolSet  # what the model is offered in this run
    photo: np.ndarray  # (H, W, 3) in [0, 1] as given, loaded once per run
    backends: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    outputs: dict = field(default_factory=dict)  # what finalize wrote (layers, svg)

    def artifact(self, node: str, array: np.ndarray, kind: str) -> str:
        """Store an image and record it in the trace; returns its id."""
        aid = self.store.put(array)
        self.trace.emit(node, "artifact", {"id": aid, "kind": kind, "shape": list(np.shape(array))})
        return aid

    def note(self, node: str, text: str) -> None:
        """Something the user must be told (a fallback, a backend missing): live output, trace, manifest."""
        if text not in self.notes:
            self.notes.append(text)
        self.trace.emit(node, "decision", {"note": text})

    @contextmanager
    def on_device(self, device: str):
        """Run the block with every backend (and the vectorizer) on ``device``, then go back."""
        before = self.options.vectorize
        self.options.vectorize = replace(before, device=device)
        try:
            yield
        finally:
            self.options.vectorize = before

    @contextmanager
    def timer(self, key: str):
        """Adds the block's wall time to ``timings[key]`` (the manifest's ``timings_s``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] += time.perf_counter() - start

    def write_vector(self, key: str, points: Tensor, colors: Tensor) -> str:
        """Fitted paths go to a JSON sidecar in the run folder; state keeps its name."""
        name = f"vectors/{key[:16]}.json"
        write_text_atomic(self.run_dir / name, dump_paths(points, colors))
        return name

    def read_vector(self, name: str) -> tuple[Tensor, Tensor]:
        return load_paths((self.run_dir / name).read_text())
