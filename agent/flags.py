"""The run flags, declared once: ``peel`` and ``batch`` take the same ones, with one help text and one
default each (read from the options dataclasses, where every default is written)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path

import typer

from tools.export import PNG_DIR, PSD_NAME, parse_formats
from tools.vectorize.options import VectorizeOptions

from .context import RunOptions
from .vlm import DEFAULT_MODEL, DEFAULT_URL, TOTAL_WAIT


def default(cls: type, name: str):
    """A dataclass field's default: options are declared once, in their dataclass, and the CLI reads them."""
    f = next(f for f in fields(cls) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


HINT = typer.Option([], "--hint", help='Guidance for the model, e.g. "keep the shadow with the cup" (repeatable).')
PLANNER = typer.Option(default(RunOptions, "planner"), "--planner",
                       help="auto (VLM if it answers within 2 s, else heuristic), vlm or heuristic.")
VLM_URL = typer.Option(None, "--vlm-url",
                       help=f"OpenAI-compatible endpoint [default: $AMODAL_VLM_URL or {DEFAULT_URL}].")
MODEL = typer.Option(None, "--model", help=f"Model name [default: $AMODAL_VLM_MODEL or {DEFAULT_MODEL}].")
TIMEOUT = typer.Option(default(RunOptions, "timeout"), "--timeout",
                       help=f"Seconds one model call may take; a turn, retries included, waits at most {TOTAL_WAIT}x "
                       "this before the run stops.")
SEGMENTER = typer.Option(default(RunOptions, "segmenter"), "--segmenter",
                         help="Mask backend: auto (the best that works here), sam3, sam or grabcut.")
MAX_LAYERS = typer.Option(default(RunOptions, "max_layers"), "--max-layers", help="Most objects to peel (1..10).")
PATHS = typer.Option(default(VectorizeOptions, "paths"), "--paths",
                     help="Path budget of the whole image, shared by layer area.")
SIZE = typer.Option(default(RunOptions, "size"), "--size", help="Longest side, in pixels, the photo is worked at "
                    "(0: full resolution); result.svg keeps the photo's size.")
ITERS = typer.Option(None, "--iters", help="Optimizer steps per layer [default: scaled with --paths].")
GRADIENTS = typer.Option(default(VectorizeOptions, "gradients"), "--gradients/--flat",
                         help="Fill each path with a linear gradient (SVG linearGradient) instead of one colour: "
                         "smoother shading, about twice the file size and 1.5x the fitting time.")
SEGMENTS = typer.Option(default(VectorizeOptions, "segments"), "--segments",
                        help="Cubic segments per closed path (2 or more). 6 instead of 4: about 1 dB more at the same "
                        "--paths for 1.33x the file size and ~15% more fitting time; for the same bytes, 4 segments "
                        "on more paths are as good.")
DEVICE = typer.Option(default(VectorizeOptions, "device"), "--device", help="auto, cpu or cuda.")
FUSED = typer.Option(default(VectorizeOptions, "fused"), "--fused/--eager",
                     help="Compile the renderer's stages into fused kernels (torch.compile; needs a C++ compiler on "
                     "the CPU): fits take 21-29% less time on 2 CPU cores, after a one-off compile of ~10 s per "
                     "process (~45 s the first time on a machine). Pays off on long or batch runs.")
SEED = typer.Option(default(VectorizeOptions, "seed"), "--seed",
                    help="Seed for sampling, segmentation, inpainting and vectorization.")
EXPORT = typer.Option("", "--export", help="Also write these formats into the run folder, rendered from the vectors "
                      f"at the photo's size: psd ({PSD_NAME}), png ({PNG_DIR}/); e.g. psd,png.")
QUIET = typer.Option(False, "--quiet", help="No live output (for scripts); errors are still said.")


def run_options(image: Path, out: Path | None, hint: list[str], planner: str, vlm_url: str | None, model: str | None,
                timeout: float, segmenter: str, max_layers: int, paths: int, size: int, iters: int | None,
                device: str, seed: int, export_formats: str, quiet: bool, gradients: bool,
                fused: bool = False, segments: int = default(VectorizeOptions, "segments")) -> RunOptions:
    """The run flags as one validated RunOptions."""
    exports = parse_formats(export_formats) if export_formats else []
    options = RunOptions(image=image, out=out, hints=list(hint), planner=planner, segmenter=segmenter, timeout=timeout,
                         max_layers=max_layers, size=size, exports=exports,
                         quiet=quiet, vectorize=VectorizeOptions(paths=paths, iters=iters, device=device, seed=seed,
                                                                gradients=gradients, fused=fused,
                                                                segments=segments))
    if vlm_url:
        options.vlm_url = vlm_url
    if model:
        options.model = model
    options.sampling.seed = seed
    return options.validate()
